//! The seed's `UserService` callee: Login and Register.
//!
//! As in the seed, each rpc unpacks the request, runs a "local service"
//! function that prints what it got, and packs its result with errcode 0.

use bytes::Bytes;
use mprpc::{CallContext, Status};

use crate::fixbug::{
    LoginRequest, LoginResponse, RegisterRequest, RegisterResponse, ResultCode, UserServiceRpc,
};

/// A local user service published as `UserServiceRpc`.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserService;

impl UserService {
    /// The local business logic of Login; the seed's always answers false.
    pub fn login_local(&self, name: &str, pwd: &str) -> bool {
        println!("doing local service: Login");
        println!("name:{name} pwd:{pwd}");
        false
    }

    /// The local business logic of Register; the seed's always answers true.
    pub fn register_local(&self, id: u32, name: &str, pwd: &str) -> bool {
        println!("doing local service: Register");
        println!("id:{id}name:{name} pwd:{pwd}");
        true
    }
}

/// errcode 0, errmsg "": the seed's `mutable_result()` success marker.
fn ok_code() -> Option<ResultCode> {
    Some(ResultCode {
        errcode: 0,
        errmsg: Bytes::new(),
    })
}

impl UserServiceRpc for UserService {
    fn login(&self, _ctx: &CallContext, request: LoginRequest) -> Result<LoginResponse, Status> {
        let name = String::from_utf8_lossy(&request.name);
        let pwd = String::from_utf8_lossy(&request.pwd);
        let sucess = self.login_local(&name, &pwd);
        Ok(LoginResponse {
            result: ok_code(),
            sucess,
        })
    }

    fn register(
        &self,
        _ctx: &CallContext,
        request: RegisterRequest,
    ) -> Result<RegisterResponse, Status> {
        let name = String::from_utf8_lossy(&request.name);
        let pwd = String::from_utf8_lossy(&request.pwd);
        let sucess = self.register_local(request.id, &name, &pwd);
        Ok(RegisterResponse {
            result: ok_code(),
            sucess,
        })
    }
}
