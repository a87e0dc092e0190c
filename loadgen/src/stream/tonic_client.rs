//! `loadgen --stream server --target tonic` (the `tonic` feature): drives
//! `tonic-echo-server`'s `Pump` with tonic's own generated client, as
//! `--target mprpc` drives the echo provider with the `Channel`: closed
//! loop, `--connections` N streams open at once, each on its own HTTP/2
//! connection (as the `Channel` gives each of N sender threads its own
//! connection), each `--stream-messages` replies of `--payload` bytes,
//! each reply's latency its gap from the open or the reply before. One
//! tokio runtime on the current thread runs every stream (tonic's
//! cheapest client on one core).

use std::time::Instant;

use tonic::transport::{Channel as TonicChannel, Endpoint};

use super::tally::{gather, Tally, Window};
use super::{micros_since, print_report, StreamKind};
use crate::cli::Args;
use crate::cpu;

mod pb {
    tonic::include_proto!("mprpc.bench");
}

use pb::echo_stream_service_client::EchoStreamServiceClient;
use pb::PumpRequest;

type Client = EchoStreamServiceClient<TonicChannel>;

/// Runs the tonic server-stream load and prints its report.
pub(super) fn run(args: &Args, kind: StreamKind) -> Result<(), String> {
    if kind != StreamKind::Server {
        return Err("--target tonic: only --stream server".into());
    }
    let addr = crate::request::direct_addr(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let request = PumpRequest {
        count: args.stream.stream_messages,
        size: args.payload as u32,
    };
    let streams = args.connections as usize;
    let (total, elapsed, cpu) = runtime.block_on(async {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("--addr {addr}: {e}"))?
            .tcp_nodelay(true)
            .timeout(args.timeout);
        let mut clients = Vec::with_capacity(streams);
        for _ in 0..streams {
            let channel = endpoint
                .connect()
                .await
                .map_err(|e| format!("tonic connect {addr}: {e}"))?;
            clients.push(EchoStreamServiceClient::new(channel));
        }
        // One stream first, unmeasured: fails fast with the reason.
        let mut probe = Tally::default();
        let outcome = one(&mut clients[0], request, args.payload, &mut probe).await;
        outcome.map_err(|e| format!("probe stream Pump failed: {e}"))?;
        let start = Instant::now();
        let measure_from = start + args.warmup;
        let end = measure_from + args.duration;
        let pids = args.cpu_pid.clone();
        let cpu = std::thread::spawn(move || cpu::measure_window(&pids, measure_from, end));
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|client| {
                let payload = args.payload;
                tokio::spawn(sender(client, request, payload, measure_from, end))
            })
            .collect();
        let total = gather(tasks).await?;
        let elapsed = Instant::now().saturating_duration_since(measure_from);
        let cpu = cpu
            .join()
            .map_err(|_| "the CPU sampler panicked".to_string())?;
        Ok::<_, String>((total, elapsed, cpu))
    })?;
    let header = format!(
        "stream: server mprpc.bench.EchoStreamService.Pump at {addr} (gRPC, tonic), \
         {streams} streams at once, {} messages of {} bytes each (client: tonic, \
         {streams} connections, one current-thread tokio runtime)",
        request.count, request.size
    );
    print_report(&total, &header, kind, elapsed, cpu);
    Ok(())
}

/// One task: streams back to back on its connection until `end`; those
/// opened before `measure_from` (the warm-up) are not recorded.
async fn sender(
    mut client: Client,
    request: PumpRequest,
    payload: usize,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let window = Window { measure_from, end };
    let (mut tally, mut warm_up) = (Tally::default(), Tally::default());
    while let Some(into) = window.next(&mut tally, &mut warm_up) {
        let outcome = one(&mut client, request, payload, into).await;
        into.end_stream(outcome);
    }
    tally
}

/// One `Pump` stream, each reply recorded; `ShortStream`/`BadReply` as
/// the `Channel`'s runs name them, else the gRPC status code.
async fn one(
    client: &mut Client,
    request: PumpRequest,
    payload: usize,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut previous = Instant::now();
    let failed = |status: tonic::Status| format!("{:?}", status.code());
    let mut replies = client.pump(request).await.map_err(failed)?.into_inner();
    let mut received = 0u32;
    let mut bad = false;
    while let Some(reply) = replies.message().await.map_err(failed)? {
        tally.record(micros_since(previous));
        previous = Instant::now();
        tally.received += 1;
        received += 1;
        bad |= reply.payload.len() != payload;
    }
    if received != request.count {
        Err("ShortStream".into())
    } else if bad {
        Err("BadReply".into())
    } else {
        Ok(())
    }
}
