//! Command-line options of `loadgen`, and the small parsers they need
//! (`--qps N|max`, durations such as `10s` or `500ms`, hex requests).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::distributed::spec::Slice;

/// Load generator for mprpc providers and the servers they are compared
/// with (redis, tonic, Volo, the seed's C++ format), all driven by one engine.
///
/// Open loop (`--qps N`): requests leave on a fixed schedule and each latency
/// is measured from the request's intended send time, so a stalled server
/// cannot hide its stall (coordinated omission corrected, as wrk2 does); the
/// report says whether the target rate was held (send lag p99 ≤ 1 ms,
/// nothing unsent that was due over 1 ms before the end, achieved within 1%). Closed loop (`--qps max`): every
/// connection keeps its window of calls outstanding, to find saturation.
///
/// Any method, its request written as JSON (the schema from the provider's
/// reflection, as `mprpc call` does): `loadgen --zk HOST:PORT --service
/// UserServiceRpc --method Login --request-json '{"name":"emhhbmcgc2Fu"}'`.
/// A C++ mprpc provider in the seed's own format has no reflection: add
/// `--target seed --addr HOST:PORT --proto user.proto --bytes-text`.
///
/// Over several machines: start `loadgen worker --zk HOST:PORT` on each,
/// then run the coordinator, `loadgen --zk HOST:PORT --workers K [flags]`:
/// the workers share the rate, connections and in-flight calls, start at
/// one instant, and their histograms are merged exactly into one report.
#[derive(Debug, Clone, Parser, Serialize, Deserialize)]
#[command(
    name = "loadgen",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// `worker`: serve distributed runs (see `loadgen worker --help`).
    #[command(subcommand)]
    #[serde(skip)]
    pub command: Option<Command>,

    /// What to drive (all but mprpc need --addr).
    #[arg(long, value_enum, default_value_t = TargetKind::Mprpc)]
    pub target: TargetKind,

    /// ZooKeeper connect string (HOST:PORT[,HOST:PORT...]): discover the
    /// providers of --service there. With --workers: where the workers are
    /// (they discover the providers there too unless --addr is given).
    #[arg(long, value_name = "HOST:PORT")]
    pub zk: Option<String>,

    /// ZooKeeper root path of the registry layout.
    #[arg(long, value_name = "PATH", default_value = "/mprpc")]
    pub zk_root: String,

    /// With --zk: the discovery session's timeout (the providers'
    /// `zk_session_timeout_ms`) [default: the library's].
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    #[serde(default)]
    pub zk_session_timeout: Option<Duration>,

    /// Call one provider directly instead of discovering providers.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,

    /// Service name on the wire (the .proto service name).
    #[arg(long, short = 's', default_value = "EchoService")]
    pub service: String,

    /// Method name (the .proto method name).
    #[arg(long, short = 'm', default_value = "Echo")]
    pub method: String,

    /// Target rate in calls per second (open loop), or `max` (closed loop).
    #[arg(long, value_name = "N|max", default_value = "max", value_parser = parse_rate)]
    pub qps: Rate,

    /// How long to measure, after the warm-up (e.g. 10s, 500ms, 1m).
    #[arg(long, value_name = "TIME", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Load applied before measuring starts; its calls are not recorded.
    #[arg(long, value_name = "TIME", default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Persistent connections to open (per provider). mprpc: spread over
    /// the --channels; other targets: one TCP connection each (the seed:
    /// this many one-call connections open at a time, × the window).
    #[arg(long, short = 'c', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// mprpc: client channels (each has its own I/O thread and
    /// connections/channels connections); calls go round robin over them
    /// and are counted per channel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub channels: u32,

    /// Calls outstanding, over all connections: the engine gives each
    /// connection a window of in-flight/connections calls, refilled as each
    /// reply arrives; the `Channel` client shares it over its connections.
    /// Open loop: a due call waits for a free slot (send lag); its latency
    /// still starts at its intended time.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub in_flight: u32,

    /// Payload bytes of each EchoRequest (when the method is Echo and no
    /// --request-hex/--request-file is given).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub payload: usize,

    /// The encoded request message to send, in hex (for methods other than
    /// Echo; an empty request by default).
    #[arg(long, value_name = "HEX", conflicts_with = "request_file")]
    pub request_hex: Option<String>,

    /// Like --request-hex, read from a file (raw encoded bytes).
    #[arg(long, value_name = "PATH")]
    pub request_file: Option<PathBuf>,

    /// The request as JSON (protobuf's JSON mapping), encoded through the
    /// service's schema as `mprpc call` does: from the provider's built-in
    /// reflection, or from --proto files (needed for --target seed).
    #[arg(long, value_name = "JSON", conflicts_with_all = ["request_hex", "request_file"])]
    pub request_json: Option<String>,

    /// With --request-json: a .proto file (or an encoded FileDescriptorSet)
    /// describing the service, instead of asking the provider; may be repeated.
    #[arg(long, value_name = "FILE", requires = "request_json")]
    pub proto: Vec<PathBuf>,

    /// Where the --proto files' imports are (their own folders are searched too).
    #[arg(
        long = "import-path",
        short = 'I',
        value_name = "DIR",
        requires = "proto"
    )]
    pub import_paths: Vec<PathBuf>,

    /// With --request-json: `bytes` fields are written as UTF-8 text, not
    /// base64 (the seed's .proto files keep names in `bytes`).
    #[arg(long, requires = "request_json")]
    pub bytes_text: bool,

    /// mprpc, `--client channel` or `blocking`: every call of --service
    /// --method goes out together with this one (`SERVICE/METHOD=HEX`, its
    /// encoded request in hex, possibly empty) on the same channel, and
    /// counts once, when both have answered: an error if either failed, its
    /// latency the slower one's. E.g. a client doing itself the two calls a
    /// middle tier would make for it.
    #[arg(long, value_name = "SERVICE/METHOD=HEX", value_parser = parse_also_call)]
    pub also_call: Option<AlsoCall>,

    /// Sending threads. Each keeps its share of the rate and of the
    /// connections (engine) or of --in-flight (channel).
    #[arg(long, short = 't', default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: u32,

    /// Per-call timeout; a call that takes longer counts as an error.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// With --zk: resolve the providers once and give each its own channel,
    /// so calls per provider are counted exactly (by default the channels
    /// balance over the watched provider list, and calls are counted per
    /// channel: the client does not say which provider served a call).
    #[arg(long)]
    pub pin_providers: bool,

    /// mprpc: which client sends. `channel`: the framework's `Channel`, as
    /// an application would (non-blocking calls). `blocking`: the `Channel`
    /// with blocking `call`s, one at a time per sender thread (closed loop
    /// only; the seed's stub style). `raw`: loadgen's engine (one mio loop
    /// per thread, a window per connection), the client every other target
    /// is driven by, to compare servers on equal terms.
    #[arg(long, value_enum, default_value_t = ClientKind::Channel)]
    pub client: ClientKind,

    /// mprpc, `--client channel` or `blocking`: I/O threads (driver event
    /// loops) per channel, the `client_io_threads` key. Each owns its share
    /// of the channel's connections (--connections split over --channels ×
    /// I/O threads, rounded up). Calls from the sender threads go round
    /// robin over them; in closed loop each completion starts the next call
    /// on the I/O thread that ran it, so the load stays sharded.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub io_threads: u32,

    /// mprpc (any --client) and tonic: speak TLS, trusting servers whose
    /// certificate this CA (PEM file) signed (`loadgen certs DIR` writes a
    /// test CA and certificate). The engine's connections handshake before
    /// their first call, so no call's latency includes a handshake.
    #[arg(long, value_name = "PATH")]
    pub tls_ca: Option<PathBuf>,

    /// With --tls-ca: the name to check the provider's certificate against
    /// [default: the provider's IP address].
    #[arg(long, value_name = "NAME", requires = "tls_ca")]
    pub tls_server_name: Option<String>,

    /// mprpc, `--client channel`: request metadata (`KEY=VALUE`) every
    /// call carries, as a caller's trace or tenant headers would; may be
    /// repeated.
    #[arg(long, value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,

    /// mprpc, `--client channel` or `blocking`: the auth token the
    /// providers want (their `auth_token`), sent once per connection.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,

    /// mprpc, `--client channel` or `blocking`: a consumer config key of
    /// the channel (`KEY=VALUE`, as a config file spells it, e.g.
    /// `ping_interval_ms=500` or `tcp_user_timeout_ms=1000`); may be
    /// repeated. Applied before loadgen's own flags (--timeout,
    /// --connections, --io-threads, --tls-ca, --token), which win.
    #[arg(long, value_name = "KEY=VALUE")]
    #[serde(default)]
    pub channel_option: Vec<String>,

    /// mprpc, `--client channel`, Echo: number every call issued (stamped
    /// into the first 8 bytes of its payload, which must be at least 8),
    /// record exactly what became of each, and write them to this CSV file
    /// when the run ends (`id,sent_ms,done_ms,outcome,outcomes`; times in ms
    /// since the Unix epoch). Warm-up calls included. For fault runs:
    /// `echo-provider --handler-ledger` records the numbers its handler ran.
    #[arg(long, value_name = "PATH")]
    #[serde(skip)]
    pub ledger: Option<PathBuf>,

    /// Name of this run in the report files.
    #[arg(long, default_value = "run")]
    pub label: String,

    /// Where the JSON, .hgrm and .md reports go.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out_dir: PathBuf,

    /// Do not write report files (print only).
    #[arg(long)]
    pub no_write: bool,

    /// A server's process id: its CPU time (and loadgen's own) over the
    /// measured window goes into the report as CPU µs per call. Repeat it
    /// for a chain of servers (their sum is the servers' figure). Local
    /// runs only: a distributed worker's spec does not carry it.
    #[arg(long, value_name = "PID")]
    #[serde(skip)]
    pub cpu_pid: Vec<u32>,

    /// Coordinate K workers (`loadgen worker`) registered in --zk: the
    /// rate (--qps), --connections and --in-flight are split between them;
    /// --threads and --channels are per worker.
    #[arg(long, value_name = "K", requires = "zk", value_parser = clap::value_parser!(u32).range(1..))]
    pub workers: Option<u32>,

    /// With --workers: authenticate with this digest (`user:password`, the
    /// providers' `zk_digest`) and create the run's nodes so that only its
    /// holders may change them. The workers need the same. Never published.
    #[arg(long, value_name = "USER:PASSWORD", requires = "workers")]
    #[serde(skip)]
    pub zk_digest: Option<String>,

    /// With --workers: how long to wait for K idle workers.
    #[arg(long, value_name = "TIME", default_value = "30s", value_parser = parse_duration)]
    pub wait_workers: Duration,

    /// Internal: the per-run process a worker starts (reads its spec on stdin).
    #[arg(long, hide = true)]
    pub worker_child: bool,

    #[command(flatten)]
    #[serde(default)]
    pub stream: crate::stream::StreamArgs,

    /// This process's share of a distributed run (set by the worker).
    #[arg(skip)]
    #[serde(default)]
    pub slice: Slice,
}

impl Args {
    /// Checks that clap cannot express.
    pub fn check(&self) -> Result<(), String> {
        if self.zk.is_some() && self.addr.is_some() && self.workers.is_none() {
            return Err(
                "give --zk (discover providers) or --addr, not both (with --workers, \
                 --zk is where the workers are and --addr the target)"
                    .into(),
            );
        }
        let channel = self.target == TargetKind::Mprpc && self.client != ClientKind::Raw;
        if self.also_call.is_some() && !channel {
            return Err(
                "--also-call: only with --target mprpc and --client channel or blocking".into(),
            );
        }
        if self.io_threads > 1 && !channel {
            return Err(
                "--io-threads: the I/O threads of mprpc's `Channel` (--target mprpc \
                 --client channel or blocking); the engine's event loops are --threads"
                    .into(),
            );
        }
        if self.token.is_some() && !channel {
            return Err(
                "--token: sent by mprpc's `Channel` (--target mprpc --client channel or \
                 blocking); the engine sends no auth frame"
                    .into(),
            );
        }
        if !self.channel_option.is_empty() && !channel {
            return Err(
                "--channel-option: keys of mprpc's `Channel` (--target mprpc --client channel \
                 or blocking)"
                    .into(),
            );
        }
        if self.ledger.is_some() {
            let numbered = self.target == TargetKind::Mprpc
                && self.client == ClientKind::Channel
                && self.method == "Echo"
                && self.request_hex.is_none()
                && self.request_file.is_none()
                && self.request_json.is_none()
                && self.also_call.is_none()
                && self.workers.is_none();
            if !numbered || self.payload < 8 {
                return Err(
                    "--ledger: numbers the Echo calls of one local --client channel \
                     run (no --also-call, --request-*, --workers), --payload 8 or more"
                        .into(),
                );
            }
        }
        if self.request_json.is_some()
            && !matches!(self.target, TargetKind::Mprpc | TargetKind::Seed)
        {
            return Err("--request-json: for --target mprpc and seed (their services have protobuf schemas)".into());
        }
        if self.tls_ca.is_some() && !matches!(self.target, TargetKind::Mprpc | TargetKind::Tonic) {
            return Err("--tls-ca: TLS is spoken to --target mprpc and tonic only".into());
        }
        crate::stream::check(self)
    }
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Register in ZooKeeper as a load worker and serve the runs a
    /// coordinator (`loadgen --zk HOST:PORT --workers K ...`) hands out.
    Worker(WorkerArgs),
    /// Write a test CA and a provider certificate for 127.0.0.1 and
    /// localhost (PEM: ca.crt, provider.crt, provider.key) into DIR, for
    /// TLS runs on this machine (`tls_cert`, `tls_key`; `--tls-ca`).
    Certs(CertsArgs),
}

/// `loadgen certs`.
#[derive(Debug, Clone, clap::Args)]
pub struct CertsArgs {
    /// Where the PEM files go (created if missing).
    pub dir: PathBuf,
}

/// `loadgen worker`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// ZooKeeper connect string (HOST:PORT[,HOST:PORT...]).
    #[arg(long, value_name = "HOST:PORT")]
    pub zk: String,

    /// ZooKeeper root path (the coordinator's --zk-root).
    #[arg(long, value_name = "PATH", default_value = "/mprpc")]
    pub zk_root: String,

    /// This worker's name, unique among the workers [default: HOST-PID].
    #[arg(long)]
    pub name: Option<String>,

    /// Authenticate with this digest (`user:password`, the coordinator's
    /// --zk-digest) and create our nodes so only its holders may change them.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub zk_digest: Option<String>,
}

/// Which client drives an mprpc target (every other target is driven by
/// the engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum ClientKind {
    Channel,
    Blocking,
    Raw,
}

/// What kind of server is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum TargetKind {
    /// Our provider, in our protocol (ZooKeeper or --addr).
    Mprpc,
    /// redis-server answering RESP PING (--addr).
    Redis,
    /// A gRPC unary echo server such as tonic-echo-server (--addr):
    /// /mprpc.bench.<service>/<method>, or /<service>/<method> if the
    /// service name has a dot.
    Tonic,
    /// A framed binary Thrift echo server such as volo-echo-server (--addr):
    /// `EchoResponse <method>(1: EchoRequest req)` with --payload bytes.
    Volo,
    /// The seed C++ mprpc's format (--addr): one short connection per call;
    /// our provider answers it on its own port, and so does a C++ provider.
    Seed,
}

/// `--also-call`: a second call made alongside each measured one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlsoCall {
    pub service: String,
    pub method: String,
    /// The encoded request message.
    pub request: Vec<u8>,
}

impl std::fmt::Display for AlsoCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.service, self.method)
    }
}

/// `SERVICE/METHOD=HEX` (`=HEX` may be left out for an empty request).
pub fn parse_also_call(s: &str) -> Result<AlsoCall, String> {
    let (name, hex) = s.split_once('=').unwrap_or((s, ""));
    let (service, method) = name
        .split_once('/')
        .filter(|(s, m)| !s.is_empty() && !m.is_empty())
        .ok_or_else(|| format!("'{s}' is not SERVICE/METHOD=HEX"))?;
    Ok(AlsoCall {
        service: service.into(),
        method: method.into(),
        request: parse_hex(hex)?,
    })
}

/// `--qps`: a fixed rate or as fast as the in-flight cap allows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Rate {
    Fixed(f64),
    Max,
}

impl Rate {
    pub fn fixed(self) -> Option<f64> {
        match self {
            Rate::Fixed(q) => Some(q),
            Rate::Max => None,
        }
    }
}

pub fn parse_rate(s: &str) -> Result<Rate, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Rate::Max);
    }
    match s.parse::<f64>() {
        Ok(q) if q.is_finite() && q > 0.0 => Ok(Rate::Fixed(q)),
        _ => Err(format!("'{s}' is neither a positive rate nor 'max'")),
    }
}

/// `10`, `10s`, `500ms`, `2m`, `1.5s`: a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1e3,
        "us" | "µs" => value / 1e6,
        "m" | "min" => value * 60.0,
        other => return Err(format!("unknown unit '{other}' in '{s}'")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("'{s}' is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Hex digits to bytes; whitespace is ignored.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(text, 16).map_err(|_| format!("'{text}' is not a hex byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("max"), Ok(Rate::Max));
        assert_eq!(parse_rate("MAX"), Ok(Rate::Max));
        assert_eq!(parse_rate("2500"), Ok(Rate::Fixed(2500.0)));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-3").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex("0a02 ff00"), Ok(vec![0x0a, 0x02, 0xff, 0x00]));
        assert_eq!(parse_hex(""), Ok(vec![]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn also_call() {
        let call = parse_also_call("FriendServiceRpc/GetFriendsList=08e807").unwrap();
        assert_eq!(call.to_string(), "FriendServiceRpc.GetFriendsList");
        assert_eq!(call.request, [0x08, 0xe8, 0x07]);
        assert_eq!(parse_also_call("S/M").unwrap().request, Vec::<u8>::new());
        for bad in ["S", "S/", "/M=00", "S/M=zz", ""] {
            assert!(parse_also_call(bad).is_err(), "{bad}");
        }
        let raw = Args::try_parse_from(["loadgen", "--client", "raw", "--also-call", "S/M"]);
        assert!(raw.unwrap().check().is_err(), "the engine sends one call");
        let channel = Args::try_parse_from(["loadgen", "--addr", "a:1", "--also-call", "S/M"]);
        assert!(channel.unwrap().check().is_ok());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
        let args =
            Args::try_parse_from(["loadgen", "--addr", "127.0.0.1:1", "--qps", "100"]).unwrap();
        assert_eq!(args.qps, Rate::Fixed(100.0));
        let both = Args::try_parse_from(["loadgen", "--addr", "a:1", "--zk", "b:2"]).unwrap();
        assert!(both.check().is_err());
        let coordinator =
            Args::try_parse_from(["loadgen", "--addr", "a:1", "--zk", "b:2", "--workers", "3"])
                .unwrap();
        assert!(coordinator.check().is_ok());
        assert!(
            Args::try_parse_from(["loadgen", "--workers", "2"]).is_err(),
            "needs --zk"
        );
        let io = |extra: &[&str]| {
            let base = ["loadgen", "--addr", "a:1", "--io-threads", "2"];
            Args::try_parse_from(base.iter().chain(extra)).map(|a| a.check())
        };
        assert_eq!(io(&[]).unwrap(), Ok(()));
        assert_eq!(io(&["--client", "blocking"]).unwrap(), Ok(()));
        assert!(io(&["--client", "raw"]).unwrap().is_err(), "the engine");
        assert!(io(&["--target", "redis"]).unwrap().is_err(), "not ours");
        assert!(
            Args::try_parse_from(["loadgen", "--io-threads", "0"]).is_err(),
            "at least one"
        );
        let worker = Args::try_parse_from(["loadgen", "worker", "--zk", "b:2"]).unwrap();
        assert!(matches!(worker.command, Some(Command::Worker(w)) if w.zk == "b:2"));
    }

    #[test]
    fn args_travel_as_json() {
        let args = Args::try_parse_from([
            "loadgen",
            "--addr",
            "a:1",
            "--qps",
            "250",
            "--duration",
            "1500ms",
            "-c",
            "6",
        ])
        .unwrap();
        let back: Args = serde_json::from_str(&serde_json::to_string(&args).unwrap()).unwrap();
        assert_eq!(back.qps, Rate::Fixed(250.0));
        assert_eq!(back.duration, Duration::from_millis(1500));
        assert_eq!((back.connections, back.addr.as_deref()), (6, Some("a:1")));
        // The run's spec is world-readable: the coordinator's secret stays home.
        let secret = Args::try_parse_from([
            "loadgen",
            "--zk",
            "z:1",
            "--workers",
            "2",
            "--zk-digest",
            "u:s3cret",
        ])
        .unwrap();
        assert_eq!(secret.zk_digest.as_deref(), Some("u:s3cret"));
        assert!(!serde_json::to_string(&secret).unwrap().contains("s3cret"));
    }
}
