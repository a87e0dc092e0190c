//! SIGTERM to a real provider process under load: the `echo-provider`
//! binary registered in a real ZooKeeper, four callers through a
//! ZooKeeper-discovered `Channel`, and one peer that pipelines requests and
//! never reads a reply. Graceful shutdown must deregister first (the node is
//! gone before the port closes), end every call with its own reply or a
//! clear status (none hangs, none gets another call's reply), and exit 0
//! within the drain plus the grace period.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The real-ZooKeeper harness shared with the root crate's tests.
#[path = "../../tests/common/zk.rs"]
#[allow(dead_code)]
mod zk;

/// Raw request frames, shared with the root crate's tests.
#[path = "../../tests/common/frames.rs"]
mod frames;

use mprpc::client::{Channel, ChannelOptions};
use mprpc::registry::ZkDiscover;
use mprpc::{CallOptions, Code, Config, Discover};
use mprpc_examples::bench::{EchoRequest, EchoServiceStub};

mod common;
use common::provider_process::{self, Proc};

const DRAIN: Duration = Duration::from_millis(500);
/// The server's default shutdown grace period.
const GRACE: Duration = Duration::from_secs(5);

fn providers_path() -> &'static str {
    "/mprpc/services/EchoService/providers"
}

/// Starts `echo-provider` registered in ZooKeeper at `zk_port`; returns it
/// and the port it announced.
fn start_provider(dir: &std::path::Path, zk_port: u16) -> (Proc, u16) {
    let conf = dir.join("echo.conf");
    let text = format!(
        "rpcserverip=127.0.0.1\nrpcserverport=0\nzookeeperip=127.0.0.1\nzookeeperport={zk_port}\n\
         zk_session_timeout_ms=4000\ndrain_ms={}\nreactor_threads=2\nlog_dir={}\n",
        DRAIN.as_millis(),
        dir.join("logs").display()
    );
    std::fs::write(&conf, text).unwrap();
    let started = provider_process::start(env!("CARGO_BIN_EXE_echo-provider"), &conf);
    (started.proc, started.port)
}

/// Pipelines requests on a raw connection and never reads: its replies
/// pile up on the provider until the socket and the high-water mark fill.
fn never_reading_peer(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return;
        };
        let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
        let batch = frames::request_batch(
            "EchoService",
            "Echo",
            (0..64).map(|id| (id, &[7u8; 4096][..])),
        );
        while !stop.load(Ordering::Relaxed) {
            if s.write_all(&batch).is_err() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    })
}

#[test]
fn sigterm_under_load_deregisters_first_answers_or_fails_each_call_and_exits_0() {
    let zk = zk::ZkServer::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut provider, port) = start_provider(dir.path(), zk.port());
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let raw = zk::RawZk::connect(&zk.connect_string(), None);
    assert!(zk::wait_until(Duration::from_secs(10), || {
        raw.children(providers_path())
            .is_some_and(|c| c.contains(&addr.to_string()))
    }));

    let mut config = Config::default();
    config.registry.zookeeper = Some(zk.connect_string());
    let discover = ZkDiscover::connect(&config).expect("discovery connects");
    assert!(zk::wait_until(Duration::from_secs(10), || {
        discover
            .providers("EchoService")
            .is_ok_and(|p| !p.is_empty())
    }));
    let options = ChannelOptions::default().call_timeout(Duration::from_secs(3));
    let stub = EchoServiceStub::new(Channel::new(discover.clone(), options).unwrap());

    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Arc<Mutex<Vec<Code>>> = Arc::default();
    let hog = never_reading_peer(addr, stop.clone());
    let callers: Vec<_> = (0..4)
        .map(|t| {
            let (stub, stop, outcomes) = (stub.clone(), stop.clone(), outcomes.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let payload = format!("caller {t} call {i}");
                    let request = EchoRequest {
                        payload: payload.clone().into(),
                    };
                    let began = Instant::now();
                    let call = stub.echo_async(&request, &CallOptions::default());
                    let code = match call.wait() {
                        Ok(reply) => {
                            assert_eq!(reply.payload, payload.as_bytes(), "another call's reply");
                            Code::Ok
                        }
                        Err(status) => status.code(),
                    };
                    assert!(began.elapsed() < Duration::from_secs(4), "a call hung");
                    outcomes.lock().unwrap().push(code);
                    if code != Code::Ok {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            })
        })
        .collect();
    // Load is flowing: some calls succeeded.
    assert!(zk::wait_until(Duration::from_secs(10), || {
        outcomes.lock().unwrap().len() > 200
    }));

    let pid = provider.0.id();
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Watch the node and the port: the node must go first.
    let mut node_gone = None;
    let mut port_closed = None;
    let exited = loop {
        if node_gone.is_none()
            && raw
                .children(providers_path())
                .is_some_and(|c| !c.contains(&addr.to_string()))
        {
            node_gone = Some(sent.elapsed());
        }
        if port_closed.is_none()
            && TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err()
        {
            port_closed = Some(sent.elapsed());
        }
        if let Some(status) = provider.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < DRAIN + GRACE + Duration::from_secs(5),
            "the provider did not exit within drain + grace"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    stop.store(true, Ordering::Relaxed);
    for c in callers {
        c.join().unwrap();
    }
    hog.join().unwrap();

    assert!(exited.success(), "exit status {exited:?}");
    assert!(
        took < DRAIN + GRACE + Duration::from_secs(2),
        "took {took:?}"
    );
    let node_gone = node_gone.expect("the provider node was removed");
    let port_closed = port_closed.unwrap_or(took);
    assert!(
        node_gone < port_closed,
        "deregistered at {node_gone:?}, port closed at {port_closed:?}"
    );
    let outcomes = outcomes.lock().unwrap();
    for code in outcomes.iter() {
        assert!(
            matches!(code, Code::Ok | Code::ShuttingDown | Code::Unavailable),
            "a call ended {code:?}"
        );
    }
}
