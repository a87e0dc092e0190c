//! The README's provider: `readme-provider -i app.conf` serves UserServiceRpc.

use std::time::Duration;

use mprpc::prelude::*;
use my_app::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer,
};

struct UserService;

impl UserServiceRpc for UserService {
    fn login(&self, _ctx: &CallContext, req: LoginRequest) -> Result<LoginResponse, Status> {
        let sucess = req.name == "zhang san" && req.pwd == "123456";
        mprpc::tracing::info!(sucess, "login"); // no tracing dependency needed
        Ok(LoginResponse {
            sucess,
            ..Default::default()
        })
    }

    fn register(
        &self,
        ctx: &CallContext,
        req: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        // The caller's deadline travels with the call: a slow handler stops
        // once nobody waits for its answer (no deadline: None and false).
        if ctx.expired() {
            return Err(Status::deadline_exceeded("the caller gave up"));
        }
        let left = ctx.remaining().unwrap_or(Duration::MAX);
        if left < Duration::from_millis(5) {
            return Err(Status::deadline_exceeded("too little time to register"));
        }
        if req.name.is_empty() {
            return Err(Status::application("name is empty")); // the caller's error_text()
        }
        Ok(RegisterResponse {
            sucess: true,
            ..Default::default()
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Parses -i app.conf (--help shows this description) and starts logging.
    let app = Application::init_about("Serves UserServiceRpc: Login and Register");
    let mut provider = RpcProvider::new(&app.config);
    provider.notify_service(UserServiceRpcServer::new(UserService));
    provider.run()?; // prints its address, registers in ZooKeeper, serves until SIGTERM
    Ok(())
}
