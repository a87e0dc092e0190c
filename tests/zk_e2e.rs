//! End to end through a real ZooKeeper: providers (`RpcProvider`: server +
//! registrar) and a consumer (Channel over ZkDiscover). Calls spread over
//! providers, a kill -9'd provider drops out, ZooKeeper outages do not stop
//! calls, and a rolling restart under load loses no call.

mod common;

use std::net::SocketAddr;
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::helper_process::spawn_helper;
use common::zk::{wait_until, ZkServer};
use mprpc::app::provider::{ProviderHandle, RpcProvider};
use mprpc::client::{Channel, ChannelOptions};
use mprpc::registry::ZkDiscover;
use mprpc::{CallContext, CallOptions, Config, Discover, Service, Status};

const SOON: Duration = Duration::from_secs(10);

/// Answers `Who.Am` with its provider's name and counts its calls.
struct Who {
    name: String,
    calls: Arc<AtomicUsize>,
}

impl Service for Who {
    fn name(&self) -> &'static str {
        "Who"
    }
    fn methods(&self) -> &'static [&'static str] {
        &["Am"]
    }
    fn call(
        &self,
        method: &str,
        _ctx: &CallContext,
        _request: Bytes,
        response: &mut BytesMut,
    ) -> Result<(), Status> {
        if method != "Am" {
            return Err(Status::unknown_method("Who", method));
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        response.extend_from_slice(self.name.as_bytes());
        Ok(())
    }
}

fn config(connect: &str) -> Config {
    let mut config = Config::default();
    config.registry.zookeeper = Some(connect.to_owned());
    config.registry.session_timeout = Duration::from_millis(1000);
    config.provider.rpc_server_ip = "127.0.0.1".into();
    config.provider.rpc_server_port = 0;
    config.server.reactor_threads = 1;
    config.server.worker_threads = 1;
    config
}

/// A provider running in this process.
struct Provider {
    handle: ProviderHandle,
    calls: Arc<AtomicUsize>,
}

impl Provider {
    fn start(config: &Config, name: &str) -> Provider {
        let calls = Arc::new(AtomicUsize::new(0));
        let mut provider = RpcProvider::new(config);
        provider.notify_service(Who {
            name: name.to_owned(),
            calls: calls.clone(),
        });
        let handle = provider.start().expect("provider starts and registers");
        Provider { handle, calls }
    }

    fn addr(&self) -> SocketAddr {
        self.handle.addr()
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Graceful shutdown (`config.drain` long): deregister, drain while
    /// consumers notice, then stop after answering what is in flight.
    fn stop_gracefully(self) {
        self.handle.shutdown_gracefully();
    }
}

fn consumer(config: &Config) -> (Channel, Arc<ZkDiscover>) {
    let discover = ZkDiscover::connect(config).expect("discovery connects");
    let options = ChannelOptions::default()
        .call_timeout(Duration::from_secs(3))
        .connect_timeout(Duration::from_millis(500));
    (Channel::new(discover.clone(), options).unwrap(), discover)
}

fn who(channel: &Channel) -> Result<String, Status> {
    let reply = channel.call("Who", "Am", Bytes::new(), &CallOptions::default(), None)?;
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

fn discovered(discover: &ZkDiscover) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = discover
        .providers("Who")
        .map(|e| e.iter().map(|e| e.addr).collect())
        .unwrap_or_default();
    addrs.sort();
    addrs
}

fn init_logs() {
    mprpc::app::logging::init_for_tests();
}

#[test]
fn calls_spread_over_two_providers_and_survive_a_zookeeper_outage() {
    init_logs();
    let mut zk = ZkServer::start();
    let mut config = config(&zk.connect_string());
    config.registry.session_timeout = Duration::from_secs(4);
    let a = Provider::start(&config, "a");
    let b = Provider::start(&config, "b");
    let (channel, discover) = consumer(&config);
    assert!(wait_until(SOON, || discovered(&discover).len() == 2));
    for _ in 0..100 {
        who(&channel).expect("call succeeds");
    }
    assert!(
        a.calls() > 10 && b.calls() > 10,
        "a={} b={}",
        a.calls(),
        b.calls()
    );

    zk.stop();
    let (a0, b0) = (a.calls(), b.calls());
    for _ in 0..100 {
        who(&channel).expect("calls work from the cached provider list");
    }
    assert!(a.calls() > a0 && b.calls() > b0, "both still used");
}

/// Runs `helper_provider_process` as a child and returns it with its address.
fn spawn_provider_process(connect: &str, name: &str) -> (Child, SocketAddr) {
    let envs = [
        ("MPRPC_E2E_HELPER_ZK", connect.to_owned()),
        ("MPRPC_E2E_HELPER_NAME", name.to_owned()),
    ];
    let (child, addr) = spawn_helper("helper_provider_process", &envs, "HELPER SERVING ");
    (child, addr.parse().expect("the helper prints its address"))
}

/// Not a test: the provider process that `spawn_provider_process` runs and kills.
#[test]
#[ignore]
fn helper_provider_process() {
    let (Ok(connect), Ok(name)) = (
        std::env::var("MPRPC_E2E_HELPER_ZK"),
        std::env::var("MPRPC_E2E_HELPER_NAME"),
    ) else {
        return;
    };
    let provider = Provider::start(&config(&connect), &name);
    println!("HELPER SERVING {}", provider.addr());
    std::thread::sleep(Duration::from_secs(60)); // bounded if never killed
    drop(provider);
}

#[test]
fn a_killed_provider_gets_no_more_calls_and_a_new_one_gets_traffic() {
    init_logs();
    let zk = ZkServer::start();
    let config = config(&zk.connect_string());
    let stays = Provider::start(&config, "stays");
    let (mut doomed, doomed_addr) = spawn_provider_process(&zk.connect_string(), "doomed");
    let (channel, discover) = consumer(&config);
    assert!(wait_until(SOON, || discovered(&discover).len() == 2));
    let mut answers = Vec::new();
    for _ in 0..40 {
        answers.push(who(&channel).expect("call succeeds"));
    }
    assert!(answers.iter().any(|a| a == "doomed"));
    assert!(answers.iter().any(|a| a == "stays"));

    doomed.kill().unwrap(); // SIGKILL
    doomed.wait().unwrap();
    // Calls keep succeeding: a call that cannot reach the dead provider was
    // never sent, so it is retried on the other one.
    for _ in 0..40 {
        assert_eq!(who(&channel).expect("call succeeds after kill -9"), "stays");
    }
    // Its session times out and the watch removes it from rotation.
    assert!(wait_until(SOON, || discovered(&discover) == vec![stays.addr()]));
    assert!(!discovered(&discover).contains(&doomed_addr));

    let fresh = Provider::start(&config, "fresh");
    assert!(wait_until(SOON, || discovered(&discover).len() == 2));
    for _ in 0..40 {
        who(&channel).expect("call succeeds");
    }
    assert!(fresh.calls() > 0, "the new provider gets traffic");
}

#[test]
fn a_rolling_restart_under_load_loses_no_call() {
    init_logs();
    let zk = ZkServer::start();
    let mut config = config(&zk.connect_string());
    config.provider.drain = Duration::from_millis(500);
    let a = Provider::start(&config, "a");
    let b = Provider::start(&config, "b");
    let (channel, discover) = consumer(&config);
    assert!(wait_until(SOON, || discovered(&discover).len() == 2));

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..3)
        .map(|_| {
            let (channel, stop, ok) = (channel.clone(), stop.clone(), ok.clone());
            std::thread::spawn(move || -> Vec<Status> {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match who(&channel) {
                        Ok(_) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(status) => failures.push(status),
                    }
                }
                failures
            })
        })
        .collect();

    // Under load: calls flow before the restart begins.
    assert!(wait_until(SOON, || ok.load(Ordering::Relaxed) >= 10));
    let calls_before = ok.load(Ordering::Relaxed);
    a.stop_gracefully();
    let a2 = Provider::start(&config, "a2");
    assert!(wait_until(SOON, || discovered(&discover).len() == 2));
    b.stop_gracefully();
    let b2 = Provider::start(&config, "b2");
    assert!(wait_until(SOON, || discovered(&discover)
        == sorted(vec![a2.addr(), b2.addr()])));
    assert!(wait_until(SOON, || a2.calls() > 0 && b2.calls() > 0));
    // The restart interrupted nothing: calls went on through it and after.
    let after_restart = ok.load(Ordering::Relaxed);
    assert!(
        after_restart > calls_before,
        "no call got through the restart"
    );
    assert!(wait_until(SOON, || ok.load(Ordering::Relaxed) >= after_restart + 10));

    stop.store(true, Ordering::Relaxed);
    let failures: Vec<Status> = load.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(failures.is_empty(), "calls lost: {failures:?}");
}

fn sorted(mut v: Vec<SocketAddr>) -> Vec<SocketAddr> {
    v.sort();
    v
}

#[test]
fn a_call_larger_than_the_published_frame_limit_fails_before_it_is_sent() {
    init_logs();
    let zk = ZkServer::start();
    let mut config = config(&zk.connect_string());
    config.server.max_frame_size = 4096;
    config.channel.max_frame_size = 4096;
    let provider = Provider::start(&config, "small-frames");
    // The consumer's own limit is the 16 MiB default: only the published
    // limit can stop the call here.
    let (channel, discover) = consumer(&{
        let mut config = config.clone();
        config.server.max_frame_size = mprpc::protocol::mprpc::DEFAULT_MAX_FRAME;
        config.channel.max_frame_size = mprpc::protocol::mprpc::DEFAULT_MAX_FRAME;
        config
    });
    assert!(wait_until(SOON, || discovered(&discover).len() == 1));
    let big = Bytes::from(vec![0u8; 64 * 1024]);
    let status = channel
        .call("Who", "Am", big, &CallOptions::default(), None)
        .unwrap_err();
    assert_eq!(status.code(), mprpc::Code::ResourceExhausted, "{status}");
    assert!(
        status.message().contains("providers of 'Who' accept"),
        "refused locally: {status}"
    );
    assert_eq!(provider.calls(), 0);
    assert_eq!(who(&channel).unwrap(), "small-frames");
}
