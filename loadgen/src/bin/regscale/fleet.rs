//! Simulated providers and consumers built on the library's own registry:
//! each provider is a [`Registrar`] (its own session and ephemeral node, no
//! RPC port behind it), each consumer a [`ZkDiscover`] that has looked the
//! service up once (its own session and watch), exactly what a provider or
//! consumer process holds. Fleets are opened by a few threads at once, so
//! thousands of sessions start in seconds without a burst that ZooKeeper
//! would refuse.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mprpc::registry::{Registrar, ZkDiscover};
use mprpc::service::ServiceInfo;
use mprpc::{Config, Discover};
use parking_lot::Mutex;

/// The one service every simulated provider serves and every consumer calls.
pub const SERVICE: &str = "RegistryScaleService";
const METHODS: &[&str] = &["Call"];

/// The registry settings every simulated process uses.
pub fn config(connect: &str, session_timeout: Duration) -> Config {
    let mut config = Config::default();
    config.registry.zookeeper = Some(connect.to_owned());
    config.registry.session_timeout = session_timeout;
    // Opening thousands of sessions queues them at the leader: be patient.
    config.channel.connect_timeout = Duration::from_secs(30);
    // Only our layout: the seed's one-provider-per-method nodes would
    // measure the seed's layout, not the fan-out to consumers.
    config.registry.seed_layout = false;
    config
}

/// Provider `i`'s address: a name in 10.0.0.0/8, nothing listens there.
pub fn provider_addr(i: usize) -> SocketAddr {
    let i = i as u32 + 1;
    SocketAddr::from((Ipv4Addr::from(0x0a00_0000 | i), 8000))
}

/// Registers provider `i`.
pub fn start_provider(config: &Config, i: usize) -> Result<Registrar, String> {
    Registrar::start(
        config,
        provider_addr(i),
        vec![ServiceInfo::new(SERVICE, METHODS)],
    )
    .map_err(|e| format!("provider {i}: {e}"))
}

/// Opens a consumer and looks the service up once (arming its watch).
pub fn start_consumer(config: &Config) -> Result<Arc<ZkDiscover>, String> {
    let discover = ZkDiscover::connect(config).map_err(|e| format!("consumer: {e}"))?;
    discover
        .providers(SERVICE)
        .map_err(|e| format!("consumer lookup: {e}"))?;
    Ok(discover)
}

/// Runs `open(i)` for i in 0..count on `threads` threads; reports progress
/// every tenth on stderr. The first error stops the rest.
pub fn open_all<T: Send>(
    what: &str,
    count: usize,
    threads: usize,
    open: impl Fn(usize) -> Result<T, String> + Sync,
) -> Result<Vec<T>, String> {
    let next = AtomicUsize::new(0);
    let opened: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let step = (count / 10).max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, count.max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || failure.lock().is_some() {
                    return;
                }
                match open(i) {
                    Ok(item) => opened.lock()[i] = Some(item),
                    Err(e) => {
                        failure.lock().get_or_insert(e);
                        return;
                    }
                }
                if (i + 1).is_multiple_of(step) {
                    eprintln!("regscale: {what}: {} of {count} opened", i + 1);
                }
            });
        }
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok(opened.into_inner().into_iter().flatten().collect())
}

/// This process's resident memory in bytes (0 if /proc cannot tell).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}
