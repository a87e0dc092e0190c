//! `loadgen --stream server --stream-async`: the `Channel`'s server streams
//! consumed as `futures_core::Stream`s, every stream a task of one
//! current-thread tokio runtime, instead of one blocking sender thread per
//! stream. The same shape as the tonic client (`tonic_client`): closed
//! loop, `--connections` streams open at once over the Channel's
//! `--connections` connections, each `--stream-messages` replies, each
//! reply's latency its gap from the open or the reply before.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_core::Stream;
use mprpc::client::Channel;
use mprpc_examples::bench::{EchoResponse, PumpRequest};

use super::tally::{gather, Tally, Window};
use super::{micros_since, print_report, Plan};
use crate::cli::Args;
use crate::cpu;
use crate::mprpc_target::MprpcTarget;

/// Runs the async server-stream load and prints its report.
pub(super) fn run(args: &Args, plan: Plan) -> Result<(), String> {
    let mut target_args = args.clone();
    target_args.service = plan.service.clone();
    let target = MprpcTarget::connect(&target_args, Default::default(), None)?;
    let channel = target.channels()[0].clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let plan = Arc::new(plan);
    let streams = args.connections as usize;
    let (total, elapsed, cpu) = runtime.block_on(async {
        // One stream first, unmeasured: fails fast with the reason.
        let mut probe = Tally::default();
        one(&plan, &channel, &mut probe)
            .await
            .map_err(|e| format!("probe stream {}.{} failed: {e}", plan.service, plan.method))?;
        let start = Instant::now();
        let measure_from = start + args.warmup;
        let end = measure_from + args.duration;
        let pids = args.cpu_pid.clone();
        let cpu = std::thread::spawn(move || cpu::measure_window(&pids, measure_from, end));
        let tasks: Vec<_> = (0..streams)
            .map(|_| tokio::spawn(sender(plan.clone(), channel.clone(), measure_from, end)))
            .collect();
        let total = gather(tasks).await?;
        let elapsed = Instant::now().saturating_duration_since(measure_from);
        let cpu = cpu
            .join()
            .map_err(|_| "the CPU sampler panicked".to_string())?;
        Ok::<_, String>((total, elapsed, cpu))
    })?;
    let header = format!(
        "stream: server {}.{} at {}, {streams} streams at once, {} messages of {} bytes each \
         (client: mprpc Channel, streams as futures on one current-thread tokio runtime)",
        plan.service,
        plan.method,
        target.describe.join(", "),
        plan.messages,
        plan.payload
    );
    print_report(&total, &header, plan.kind, elapsed, cpu);
    Ok(())
}

/// One task: streams back to back until `end`; those opened before
/// `measure_from` (the warm-up) are not recorded.
async fn sender(plan: Arc<Plan>, channel: Channel, measure_from: Instant, end: Instant) -> Tally {
    let window = Window { measure_from, end };
    let (mut tally, mut warm_up) = (Tally::default(), Tally::default());
    while let Some(into) = window.next(&mut tally, &mut warm_up) {
        let outcome = one(&plan, &channel, into).await;
        into.end_stream(outcome);
    }
    tally
}

/// One `Pump` stream read as a `Stream`, each reply recorded.
async fn one(plan: &Plan, channel: &Channel, tally: &mut Tally) -> Result<(), String> {
    let request = PumpRequest {
        count: plan.messages,
        size: plan.payload as u32,
    };
    let mut previous = Instant::now();
    let mut replies = channel.server_stream::<_, EchoResponse>(
        &plan.service,
        &plan.method,
        &request,
        &plan.options,
    );
    let mut received = 0u32;
    let mut bad = false;
    while let Some(reply) = poll_fn(|cx| Pin::new(&mut replies).poll_next(cx)).await {
        let reply = reply.map_err(|status| status.code().as_str().to_owned())?;
        tally.record(micros_since(previous));
        previous = Instant::now();
        tally.received += 1;
        received += 1;
        bad |= reply.payload.len() != plan.payload;
    }
    if received != plan.messages {
        Err("ShortStream".into())
    } else if bad {
        Err("BadReply".into())
    } else {
        Ok(())
    }
}
