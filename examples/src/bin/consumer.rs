//! `consumer -i test.conf`: the seed's callers. Finds the providers of
//! UserServiceRpc and FriendServiceRpc in ZooKeeper (or, with
//! `registry=none`, dials rpcserverip:rpcserverport), calls Login, Register
//! and GetFriendsList and prints what the seed's callers print. With
//! `--gateway` it instead calls the gateway example's
//! GatewayServiceRpc.GetUserPage (which asks both services itself). Exits
//! non-zero if any call failed.

use std::process::ExitCode;

use clap::Parser;
use mprpc::prelude::*;
use mprpc_examples::fixbug::{
    FriendServiceRpcStub, GatewayServiceRpcStub, GetFriendsListRequest, GetUserPageRequest,
    LoginRequest, RegisterRequest, ResultCode, UserServiceRpcStub,
};

/// Calls the seed's example services (Login, Register, GetFriendsList).
#[derive(Debug, Parser)]
#[command(name = "consumer", version)]
struct Args {
    #[command(flatten)]
    app: mprpc::AppArgs,
    /// Call GatewayServiceRpc.GetUserPage (the `gateway` example, which
    /// calls Login and GetFriendsList itself) instead of the three calls.
    #[arg(long)]
    gateway: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let app = Application::init_with(&args.app);
    let channel = match mprpc::discovery::from_config(&app.config) {
        Ok(discover) => match Channel::new(discover, ChannelOptions::from_config(&app.config)) {
            Ok(channel) => channel,
            Err(e) => {
                eprintln!("consumer: cannot start the client: {e}");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("consumer: cannot find providers: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.gateway {
        return if get_user_page(&GatewayServiceRpcStub::new(channel)) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let users = UserServiceRpcStub::new(channel.clone());
    let friends = FriendServiceRpcStub::new(channel);

    // Run all three, as the seed's callers would, then report.
    let results = [login(&users), register(&users), get_friends_list(&friends)];
    if results.iter().all(|ok| *ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The application error in a reply, if its `ResultCode` carries one.
fn app_error(result: Option<&ResultCode>) -> Option<String> {
    result
        .filter(|code| code.errcode != 0)
        .map(|code| String::from_utf8_lossy(&code.errmsg).into_owned())
}

fn login(stub: &UserServiceRpcStub) -> bool {
    let request = LoginRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
    };
    let mut controller = Controller::new();
    let Ok(response) = stub.login(&mut controller, &request) else {
        println!("{}", controller.error_text());
        return false;
    };
    match app_error(response.result.as_ref()) {
        None => {
            println!("rpc login response success:{}", u8::from(response.sucess));
            true
        }
        Some(errmsg) => {
            println!("rpc login response error : {errmsg}");
            false
        }
    }
}

fn register(stub: &UserServiceRpcStub) -> bool {
    let request = RegisterRequest {
        id: 2000,
        name: "mprpc".into(),
        pwd: "666666".into(),
    };
    let mut controller = Controller::new();
    let Ok(response) = stub.register(&mut controller, &request) else {
        println!("{}", controller.error_text());
        return false;
    };
    match app_error(response.result.as_ref()) {
        None => {
            println!(
                "rpc register response success:{}",
                u8::from(response.sucess)
            );
            true
        }
        Some(errmsg) => {
            println!("rpc register response error : {errmsg}");
            false
        }
    }
}

fn get_friends_list(stub: &FriendServiceRpcStub) -> bool {
    let request = GetFriendsListRequest { userid: 1000 };
    let mut controller = Controller::new();
    let Ok(response) = stub.get_friends_list(&mut controller, &request) else {
        println!("{}", controller.error_text());
        return false;
    };
    match app_error(response.result.as_ref()) {
        None => {
            println!("rpc GetFriendsList response success!");
            for (i, name) in response.friends.iter().enumerate() {
                println!("index:{} name:{}", i + 1, String::from_utf8_lossy(name));
            }
            true
        }
        Some(errmsg) => {
            println!("rpc GetFriendsList response error : {errmsg}");
            false
        }
    }
}

fn get_user_page(stub: &GatewayServiceRpcStub) -> bool {
    let request = GetUserPageRequest {
        name: "zhang san".into(),
        pwd: "123456".into(),
        userid: 1000,
    };
    let mut controller = Controller::new();
    let Ok(response) = stub.get_user_page(&mut controller, &request) else {
        println!("{}", controller.error_text());
        return false;
    };
    match app_error(response.result.as_ref()) {
        None => {
            println!("rpc GetUserPage response success!");
            println!("login success:{}", u8::from(response.login_sucess));
            for (i, name) in response.friends.iter().enumerate() {
                println!("index:{} name:{}", i + 1, String::from_utf8_lossy(name));
            }
            true
        }
        Some(errmsg) => {
            println!("rpc GetUserPage response error : {errmsg}");
            false
        }
    }
}
