//! The README's consumer: `readme-consumer -i app.conf --name NAME` calls
//! UserServiceRpc the three ways a stub offers.

use std::sync::mpsc;
use std::time::Duration;

use clap::Parser;
use mprpc::prelude::*;
use my_app::fixbug::{LoginRequest, RegisterRequest, UserServiceRpcStub};

/// The framework's `-i FILE`, plus flags of the program's own.
#[derive(Parser)]
struct Args {
    #[command(flatten)]
    app: AppArgs,
    /// Who logs in.
    #[arg(long, default_value = "zhang san")]
    name: String,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let app = Application::init_with(&args.app);
    let discover = mprpc::discovery::from_config(&app.config)?; // ZooKeeper, watched and cached
    let channel = Channel::new(discover, ChannelOptions::from_config(&app.config))?;
    let stub = UserServiceRpcStub::new(channel);
    let request = LoginRequest {
        name: args.name.into(),
        pwd: "123456".into(),
    };

    // 1. Blocking, as in the seed: a failure is also in the controller.
    let mut controller = Controller::new();
    controller.set_timeout(Duration::from_millis(200));
    match stub.login(&mut controller, &request) {
        Ok(reply) => println!("login success:{}", reply.sucess),
        Err(_) => println!("login failed: {}", controller.error_text()),
    }

    // 2. A future: `.await` it in any executor (inside tokio, just `.await`).
    //    Dropping it before it completes cancels the call.
    let reply = futures::executor::block_on(async {
        stub.login_async(&request, &CallOptions::default()).await
    })?;
    println!("async login success:{}", reply.sucess);

    // 3. A callback, run on the client's I/O thread: keep it short and never
    //    make a blocking call in it (that is refused with FailedPrecondition).
    let (tx, rx) = mpsc::channel();
    let register = RegisterRequest {
        id: 2000,
        name: "mprpc".into(),
        pwd: "666666".into(),
    };
    stub.register_with(&register, &CallOptions::default(), move |result| {
        let _ = tx.send(result);
    });
    let reply = rx.recv()??;
    println!("register success:{}", reply.sucess);
    Ok(())
}
