//! Driving mprpc providers with the framework's own non-blocking client
//! (`Channel::call_with`). Providers are found through ZooKeeper or given
//! with `--addr`; calls are spread round robin over the channels. With
//! `--also-call` each measured call is a pair of calls sent together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mprpc::client::{Channel, ChannelOptions};
use mprpc::net::auth::AuthToken;
use mprpc::net::tls::ClientTls;
use mprpc::registry::ZkDiscover;
use mprpc::{CallOptions, Config, Discover, StaticDiscover};

use parking_lot::Mutex;

use crate::cli::{AlsoCall, Args};
use crate::driver::Target;
use crate::ledger::{stamp, Ledger, PROBE_ID};
use crate::recorder::Outcome;

pub struct MprpcTarget {
    channels: Vec<Channel>,
    service: String,
    method: String,
    request: Bytes,
    /// For Echo: the reply must be as long as the request (same message
    /// layout), anything else is counted as a `BadReply` error.
    expect_len: Option<usize>,
    options: CallOptions,
    /// `--also-call`: sent alongside each call.
    also: Option<AlsoCall>,
    /// `--ledger`: every call numbered (stamped into `payload`) and its
    /// outcome recorded; a reply must then echo the request exactly.
    /// Leaked, as the recorders are: completions hold a plain reference.
    ledger: Option<(&'static Ledger, Vec<u8>)>,
    /// What each connection talks to, for the report.
    pub describe: Vec<String>,
    /// Providers seen in ZooKeeper at start (empty with --addr).
    pub discovered: Vec<String>,
    // Keeps the ZooKeeper session (and its watches) alive for the run.
    _discover: Option<Arc<ZkDiscover>>,
}

impl MprpcTarget {
    /// `--connections` N are spread over the channels: `--channels` K, or
    /// with `--pin-providers` one channel per provider, each with
    /// `--io-threads` T I/O threads; every I/O thread opens its own
    /// N/(K·T) persistent connections per provider, rounded up.
    pub fn connect(args: &Args, request: Bytes, expect_len: Option<usize>) -> Result<Self, String> {
        let io_threads = args.io_threads as usize;
        let auth_token = args
            .token
            .as_deref()
            .map(AuthToken::new)
            .transpose()
            .map_err(|e| format!("--token: {e}"))?;
        let mut base = channel_options(&args.channel_option)?;
        if let Some(window) = args.stream.stream_window {
            base = base.stream_window(window as usize);
        }
        let base = base
            .call_timeout(args.timeout)
            .tls(client_tls(args)?)
            .auth_token(auth_token)
            .io_threads(io_threads);
        let with_conns = |channels: usize| {
            base.clone().connections_per_endpoint(
                (args.connections as usize).div_ceil(channels * io_threads),
            )
        };
        let mut channels = Vec::new();
        let mut describe = Vec::new();
        let mut discovered = Vec::new();
        let mut keep = None;
        if let Some(zk) = &args.zk {
            let mut config = Config::default();
            config.registry.zookeeper = Some(zk.clone());
            config.registry.root = args.zk_root.clone();
            if let Some(timeout) = args.zk_session_timeout {
                config.registry.session_timeout = timeout;
            }
            let discover =
                ZkDiscover::connect(&config).map_err(|e| format!("ZooKeeper {zk}: {e}"))?;
            let providers = discover
                .providers(&args.service)
                .map_err(|e| format!("no providers of {} in ZooKeeper {zk}: {e}", args.service))?;
            if providers.is_empty() {
                return Err(format!(
                    "no providers of {} in ZooKeeper {zk}",
                    args.service
                ));
            }
            discovered = providers.iter().map(|p| p.addr.to_string()).collect();
            if args.pin_providers {
                let options = with_conns(providers.len());
                for ep in providers.iter() {
                    describe.push(ep.addr.to_string());
                    let d: Arc<dyn Discover> = Arc::new(StaticDiscover::new(vec![ep.clone()]));
                    channels.push(Channel::new(d, options.clone()).map_err(|e| e.to_string())?);
                }
            } else {
                let k = args.channels as usize;
                let options = with_conns(k);
                for _ in 0..k {
                    describe.push(format!(
                        "zk:{} ({} providers)",
                        args.service,
                        providers.len()
                    ));
                    let d: Arc<dyn Discover> = discover.clone();
                    channels.push(Channel::new(d, options.clone()).map_err(|e| e.to_string())?);
                }
            }
            keep = Some(discover);
        } else if let Some(addr) = &args.addr {
            let d: Arc<dyn Discover> = Arc::new(
                StaticDiscover::single(addr.as_str()).map_err(|e| format!("--addr {addr}: {e}"))?,
            );
            let k = args.channels as usize;
            let options = with_conns(k);
            for _ in 0..k {
                describe.push(addr.clone());
                channels.push(Channel::new(d.clone(), options.clone()).map_err(|e| e.to_string())?);
            }
        } else {
            return Err("give --zk HOST:PORT or --addr HOST:PORT".into());
        }
        let ledger = args
            .ledger
            .as_ref()
            .map(|_| (&*Box::leak(Box::new(Ledger::new())), crate::payload(args)));
        Ok(MprpcTarget {
            channels,
            service: args.service.clone(),
            method: args.method.clone(),
            // The probe calls of a ledgered run carry number 0.
            request: match &ledger {
                Some((_, payload)) => stamp(payload, PROBE_ID),
                None => request,
            },
            ledger,
            expect_len,
            options: call_options(args)?,
            also: args.also_call.clone(),
            describe,
            discovered,
            _discover: keep,
        })
    }

    /// One blocking call per I/O thread of each channel (calls from this
    /// thread go round robin over them): fails fast (with the reason) when
    /// the target is unreachable or rejects the request, and opens a
    /// connection on every I/O thread before the clock starts.
    pub fn probe(&self) -> Result<(), String> {
        let each = self
            .channels
            .iter()
            .enumerate()
            .flat_map(|(i, ch)| std::iter::repeat_n((i, ch), ch.options().io_threads.max(1)));
        for (i, ch) in each {
            let reply = ch
                .call(
                    &self.service,
                    &self.method,
                    self.request.clone(),
                    &self.options,
                    None,
                )
                .map_err(|s| format!("probe call on channel {i} failed: {s}"))?;
            if let Some(n) = self.expect_len {
                if reply.len() != n {
                    return Err(format!(
                        "probe reply is {} bytes, expected the {n}-byte request echoed back",
                        reply.len()
                    ));
                }
            }
            if let Some(also) = &self.also {
                ch.call(
                    &also.service,
                    &also.method,
                    also.request.clone().into(),
                    &self.options,
                    None,
                )
                .map_err(|s| format!("probe of --also-call {also} on channel {i} failed: {s}"))?;
            }
        }
        Ok(())
    }
}

/// `--tls-ca` and `--tls-server-name` as the channels' TLS settings.
pub fn client_tls(args: &Args) -> Result<Option<ClientTls>, String> {
    let Some(ca) = &args.tls_ca else {
        return Ok(None);
    };
    let tls = ClientTls::from_pem_files(ca, None).map_err(|e| format!("--tls-ca: {e}"))?;
    match &args.tls_server_name {
        Some(name) => tls
            .with_server_name(name)
            .map(Some)
            .map_err(|e| format!("--tls-server-name: {e}")),
        None => Ok(Some(tls)),
    }
}

/// `--channel-option KEY=VALUE`s: the channel's options as a config file
/// with just these lines would set them; an unknown key is an error.
fn channel_options(pairs: &[String]) -> Result<ChannelOptions, String> {
    let text: String = pairs.iter().map(|p| format!("{p}\n")).collect();
    let (config, warnings) = Config::parse_with_warnings("--channel-option", &text)
        .map_err(|e| format!("--channel-option: {e}"))?;
    if let Some(w) = warnings.first() {
        return Err(format!("--channel-option: {w}"));
    }
    Ok(ChannelOptions::from_config(&config))
}

impl MprpcTarget {
    /// The channels (`--stream` drives them itself).
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Writes the `--ledger` file (if any); returns how many calls it holds.
    pub fn write_ledger(&self, path: &std::path::Path) -> Result<usize, String> {
        let Some((ledger, _)) = &self.ledger else {
            return Ok(0);
        };
        ledger
            .write(path)
            .map_err(|e| format!("cannot write the ledger {}: {e}", path.display()))
    }

    /// Starts one call numbered in the ledger, stamped with its number;
    /// `done` sees its outcome after the ledger does. The reply must be the
    /// request's payload, number included: a reply to another call is a
    /// `WrongReply`.
    fn call_ledgered(
        &self,
        channel: &Channel,
        ledger: &'static Ledger,
        payload: &[u8],
        done: impl FnOnce(Outcome) + Send + 'static,
    ) {
        let id = ledger.issue();
        let request = stamp(payload, id);
        let expected = request.clone();
        channel.call_detached(
            &self.service,
            &self.method,
            request,
            &self.options,
            move |result| {
                let outcome = match result {
                    Ok(reply) if reply == expected => Outcome::Ok,
                    Ok(_) => Outcome::Err("WrongReply".into()),
                    Err(status) => Outcome::Err(status.code().as_str().into()),
                };
                ledger.settle(id, &outcome);
                done(outcome)
            },
        );
    }

    /// One blocking call (`Channel::call`) on channel `conn`; with
    /// `--also-call`, both calls started, then both waited for.
    pub fn call_blocking(&self, conn: usize) -> Outcome {
        let channel = &self.channels[conn];
        let Some(also) = &self.also else {
            let result = channel.call(
                &self.service,
                &self.method,
                self.request.clone(),
                &self.options,
                None,
            );
            return outcome(result, self.expect_len);
        };
        let first = channel.call_async(
            &self.service,
            &self.method,
            self.request.clone(),
            &self.options,
        );
        let second = channel.call_async(
            &also.service,
            &also.method,
            also.request.clone().into(),
            &self.options,
        );
        let first = outcome(first.wait(), self.expect_len);
        let second = outcome(second.wait(), None);
        match first {
            Outcome::Ok => second,
            failed => failed,
        }
    }
}

/// Splits `done` in two: it runs once, after both halves ran, with the
/// first error either half saw (or `Ok`).
fn both<F: FnOnce(Outcome) + Send + 'static>(done: F) -> impl Fn(Outcome) + Send + Sync + Clone {
    struct Pair<F> {
        left: AtomicUsize,
        failed: Mutex<Option<Outcome>>,
        done: Mutex<Option<F>>,
    }
    let pair = Arc::new(Pair {
        left: AtomicUsize::new(2),
        failed: Mutex::new(None),
        done: Mutex::new(Some(done)),
    });
    move |result| {
        if let Outcome::Err(_) = result {
            pair.failed.lock().get_or_insert(result);
        }
        if pair.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            let done = pair.done.lock().take().expect("the pair finishes once");
            done(pair.failed.lock().take().unwrap_or(Outcome::Ok));
        }
    }
}

/// A call's result as the recorder counts it.
fn outcome(result: Result<Bytes, mprpc::Status>, expect: Option<usize>) -> Outcome {
    match result {
        Ok(reply) if expect.is_none_or(|n| reply.len() == n) => Outcome::Ok,
        Ok(_) => Outcome::Err("BadReply".into()),
        Err(status) => Outcome::Err(status.code().as_str().into()),
    }
}

impl Target for MprpcTarget {
    fn connections(&self) -> usize {
        self.channels.len()
    }

    fn call(&self, conn: usize, done: impl FnOnce(Outcome) + Send + 'static) {
        let expect = self.expect_len;
        let channel = &self.channels[conn];
        if let Some((ledger, payload)) = &self.ledger {
            return self.call_ledgered(channel, ledger, payload, done);
        }
        let Some(also) = &self.also else {
            // Never cancelled: no handle (`call_detached`), no reference count per
            // call; the request is borrowed (no `Bytes` clone per call).
            channel.call_detached(
                &self.service,
                &self.method,
                &self.request,
                &self.options,
                move |result| done(outcome(result, expect)),
            );
            return;
        };
        let done = both(done);
        let second = done.clone();
        channel.call_detached(
            &self.service,
            &self.method,
            &self.request,
            &self.options,
            move |result| done(outcome(result, expect)),
        );
        channel.call_detached(
            &also.service,
            &also.method,
            &also.request,
            &self.options,
            move |result| second(outcome(result, None)),
        );
    }
}

/// Each call's options: the timeout and `--metadata` entries.
fn call_options(args: &Args) -> Result<CallOptions, String> {
    let mut options = CallOptions::with_timeout(args.timeout);
    for entry in &args.metadata {
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| format!("--metadata {entry}: expected KEY=VALUE"))?;
        options = options
            .with_metadata(key, value)
            .map_err(|e| format!("--metadata {entry}: {e}"))?;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_finishes_once_after_both_with_the_first_error() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = |seen: &Arc<Mutex<Vec<Outcome>>>| {
            let seen = seen.clone();
            both(move |o| seen.lock().push(o))
        };
        let pair = record(&seen);
        pair(Outcome::Ok);
        assert!(seen.lock().is_empty(), "waits for the second half");
        pair(Outcome::Ok);
        assert_eq!(*seen.lock(), [Outcome::Ok]);

        seen.lock().clear();
        let pair = record(&seen);
        pair(Outcome::Err("unavailable".into()));
        pair(Outcome::Err("deadline_exceeded".into()));
        assert_eq!(*seen.lock(), [Outcome::Err("unavailable".into())]);

        seen.lock().clear();
        let pair = record(&seen);
        pair(Outcome::Ok);
        pair(Outcome::Err("internal".into()));
        assert_eq!(*seen.lock(), [Outcome::Err("internal".into())]);
    }
}
