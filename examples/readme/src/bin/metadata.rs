//! The guide's metadata example (docs/guide.md, "In one process"):
//! `readme-metadata` serves UserServiceRpc behind an interceptor and calls
//! it, in one process.

use std::time::Duration;

use mprpc::prelude::*;
use mprpc::server::{Server, ServerOptions};
use my_app::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, UserServiceRpc,
    UserServiceRpcServer, UserServiceRpcStub,
};

struct UserService;

impl UserServiceRpc for UserService {
    fn login(&self, ctx: &CallContext, _req: LoginRequest) -> Result<LoginResponse, Status> {
        let caller = ctx.metadata.get("caller").unwrap_or("unknown");
        println!("login from {caller}, trace id {}", ctx.trace_id); // made up at the first hop
        ctx.set_reply_metadata("served-by", "readme-metadata")
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(LoginResponse {
            sucess: true,
            ..Default::default()
        })
    }

    fn register(&self, _: &CallContext, _: RegisterRequest) -> Result<RegisterResponse, Status> {
        Err(Status::application("registration is closed"))
    }
}

/// Refuses calls without the right token (the handler never runs) and
/// sees every call's outcome once.
struct TokenCheck;

impl Interceptor for TokenCheck {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Status> {
        match call.metadata.get("token") {
            Some("s3cret") => Ok(()),
            _ => Err(Status::new(Code::Unauthenticated, "no valid token")),
        }
    }

    fn after(&self, call: &CallInfo<'_>, outcome: &Outcome) {
        println!("{}.{} -> {:?}", call.service, call.method, outcome.code);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut server = Server::with_options(ServerOptions::default()); // 127.0.0.1, a free port
    server.add_service(UserServiceRpcServer::new(UserService));
    server.add_interceptor(TokenCheck);
    let handle = server.start()?;

    let stub = UserServiceRpcStub::new(Channel::direct(handle.local_addr())?);
    let mut controller = Controller::new();
    controller
        .set_metadata("caller", "readme")?
        .set_metadata("token", "s3cret")?;
    let reply_metadata = controller.capture_reply_metadata();
    stub.login(&mut controller, &LoginRequest::default())?;
    println!(
        "served by {}",
        reply_metadata.get().get("served-by").unwrap_or("?")
    );

    let options = CallOptions::new() // one chain; no token
        .timeout(Duration::from_millis(500))
        .metadata("caller", "readme");
    let refused = stub.login_async(&LoginRequest::default(), &options).wait();
    println!("without a token: {}", refused.unwrap_err());
    handle.shutdown();
    Ok(())
}
