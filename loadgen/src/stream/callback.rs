//! `loadgen --stream server|bidi --stream-callback`: the `Channel`'s
//! streams consumed by `StreamHandler`s on its I/O threads
//! (`server_stream_with`, `bidi_stream_with`), no loadgen thread per
//! stream. Closed loop as the other modes: `--connections` streams open at
//! once, a stream's `on_closed` opens the next (from the I/O thread, no
//! hand-off), each `--stream-messages` messages of `--payload` bytes; a
//! bidi handler sends each next message from inside `on_messages`.
//!
//! Bookkeeping is per delivered batch: one clock read per batch, not two
//! per message. A message's latency means: for a server stream, the gap
//! from the stream's open or its previous delivery for the first message
//! of a batch, and 1 µs (the histogram's floor) for the others, which
//! arrived in the same read (the thread mode records near-zero gaps for
//! them too: they sit in the batch its reader took); for bidi, its round
//! trip (from the `try_send` to the delivery of its echo; one message is
//! in flight, so each batch is one echo).

use std::sync::mpsc::{channel as queue, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mprpc::client::stream::{StreamBatch, StreamHandler, StreamRequests};
use mprpc::client::Channel;
use mprpc::Status;
use mprpc_examples::bench::{EchoRequest, EchoResponse, PumpRequest};

use super::tally::{Tally, Window};
use super::{print_report, Plan, StreamKind};
use crate::cli::Args;
use crate::cpu;
use crate::mprpc_target::MprpcTarget;

/// How long after the run's end the streams still open may take to end.
const FINISH_GRACE: Duration = Duration::from_secs(30);

/// Runs the callback load and prints its report.
pub(super) fn run(args: &Args, plan: Plan) -> Result<(), String> {
    let mut target_args = args.clone();
    target_args.service = plan.service.clone();
    let target = MprpcTarget::connect(&target_args, Default::default(), None)?;
    let plan = Arc::new(plan);
    // One stream first, unmeasured: fails fast with the reason.
    let mut probe = Tally::default();
    super::kinds::one(&plan, &target.channels()[0], &mut probe);
    if let Some((outcome, _)) = probe.outcomes.iter().find(|(o, _)| *o != "ok") {
        return Err(format!(
            "probe stream {}.{} failed: {outcome}",
            plan.service, plan.method
        ));
    }
    let streams = args.connections as usize;
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let pids = args.cpu_pid.clone();
    let cpu = std::thread::spawn(move || cpu::measure_window(&pids, measure_from, end));
    let (done, finished) = queue();
    for i in 0..streams {
        let slot = Slot {
            plan: plan.clone(),
            channel: target.channels()[i % target.channels().len()].clone(),
            window: Window { measure_from, end },
            measured: Tally::default(),
            warm_up: Tally::default(),
            done: done.clone(),
        };
        slot.open_next();
    }
    drop(done);
    let mut total = Tally::default();
    for _ in 0..streams {
        let left = (end + FINISH_GRACE).saturating_duration_since(Instant::now());
        let tally = finished
            .recv_timeout(left)
            .map_err(|_| "streams still open 30 s after the run's end".to_string())?;
        total = total.merge(tally);
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    let cpu = cpu
        .join()
        .map_err(|_| "the CPU sampler panicked".to_string())?;
    let header = format!(
        "stream: {} {}.{} at {}, {streams} streams at once, {} messages of {} bytes each \
         (client: mprpc Channel, streams consumed by handlers on its I/O thread)",
        plan.kind.name(),
        plan.service,
        plan.method,
        target.describe.join(", "),
        plan.messages,
        plan.payload
    );
    print_report(&total, &header, plan.kind, elapsed, cpu);
    Ok(())
}

/// One of the `--connections` streams open at once, across the streams it
/// opens back to back: where they count, and where its tally goes at the
/// end.
struct Slot {
    plan: Arc<Plan>,
    channel: Channel,
    window: Window,
    measured: Tally,
    warm_up: Tally,
    done: Sender<Tally>,
}

impl Slot {
    /// Opens this slot's next stream, or sends its tally once the run is
    /// over.
    fn open_next(self) {
        let now = Instant::now();
        if now >= self.window.end {
            let _ = self.done.send(self.measured);
            return;
        }
        let measured = now >= self.window.measure_from;
        let plan = self.plan.clone();
        let channel = self.channel.clone();
        match plan.kind {
            StreamKind::Server => {
                let request = PumpRequest {
                    count: plan.messages,
                    size: plan.payload as u32,
                };
                let stream = Stream::<()>::new(self, measured, now, None);
                channel.server_stream_with::<_, EchoResponse, _>(
                    &plan.service,
                    &plan.method,
                    &request,
                    &plan.options,
                    stream,
                );
            }
            StreamKind::Bidi => {
                let request = EchoRequest {
                    payload: Bytes::from(vec![0u8; plan.payload]),
                };
                let stream = Stream::new(self, measured, now, Some(request));
                channel.bidi_stream_with::<EchoRequest, EchoResponse, _>(
                    &plan.service,
                    &plan.method,
                    &plan.options,
                    stream,
                );
            }
            StreamKind::Client => unreachable!("--stream-callback is checked: server or bidi"),
        }
    }
}

/// One stream's handler; `Req`: what it sends (`()` for a server stream).
struct Stream<Req> {
    /// `None` only while `on_closed` hands it to the next stream.
    slot: Option<Slot>,
    /// Opened after the warm-up: counted.
    measured: bool,
    /// The open, the previous delivery (server) or the last send (bidi).
    last: Instant,
    received: u32,
    sent: u32,
    bad: bool,
    /// A bidi stream's request, sent again and again.
    request: Option<Req>,
}

impl<Req: prost::Message> Stream<Req> {
    fn new(slot: Slot, measured: bool, now: Instant, request: Option<Req>) -> Stream<Req> {
        Stream {
            slot: Some(slot),
            measured,
            last: now,
            received: 0,
            sent: 0,
            bad: false,
            request,
        }
    }

    fn tally(&mut self) -> &mut Tally {
        let slot = self.slot.as_mut().expect("a stream's slot until it closes");
        match self.measured {
            true => &mut slot.measured,
            false => &mut slot.warm_up,
        }
    }

    /// Sends a bidi stream's next request (stamping its time), or
    /// half-closes after the last; nothing for a server stream.
    fn send_next(&mut self, requests: &StreamRequests<Req>, now: Instant) {
        let Some(request) = self.request.take() else {
            return;
        };
        self.send(requests, &request, now);
        self.request = Some(request);
    }

    fn send(&mut self, requests: &StreamRequests<Req>, request: &Req, now: Instant) {
        let messages = self.slot.as_ref().map_or(0, |s| s.plan.messages);
        if self.sent >= messages {
            return requests.half_close();
        }
        // Not sent: ended meanwhile (`on_closed` says how) or no credit
        // (`on_writable` comes when some does).
        if let Ok(true) = requests.try_send(request) {
            self.last = now;
            self.sent += 1;
            self.tally().sent += 1;
        }
    }
}

/// Microseconds from `from` to `to`, at least 1.
fn micros(from: Instant, to: Instant) -> u64 {
    (to.saturating_duration_since(from).as_micros() as u64).max(1)
}

impl<Req: prost::Message + 'static> StreamHandler<Req, EchoResponse> for Stream<Req> {
    fn on_writable(&mut self, requests: &StreamRequests<Req>) {
        // The first message, or one a `try_send` found no credit for:
        // either way none is in flight.
        if self.sent == self.received {
            self.send_next(requests, Instant::now());
        }
    }

    fn on_messages(
        &mut self,
        messages: StreamBatch<'_, EchoResponse>,
        requests: &StreamRequests<Req>,
    ) {
        let now = Instant::now();
        let gap = micros(self.last, now);
        let payload = self.slot.as_ref().map_or(0, |s| s.plan.payload);
        let mut count = 0u64;
        let mut bad = false;
        for reply in messages {
            count += 1;
            bad |= reply.payload.len() != payload;
        }
        self.bad |= bad;
        self.received += count as u32;
        let tally = self.tally();
        tally.received += count;
        if count > 0 {
            tally.record(gap);
        }
        if count > 1 {
            tally.record_n(1, count - 1);
        }
        self.last = now;
        self.send_next(requests, now);
    }

    fn on_closed(&mut self, outcome: Result<(), Status>) {
        let outcome = match outcome {
            Err(status) => Err(status.code().as_str().to_owned()),
            Ok(()) => {
                let expected = self.slot.as_ref().map_or(0, |s| s.plan.messages);
                super::kinds::counted(self.received, expected, self.bad)
            }
        };
        self.tally().end_stream(outcome);
        if let Some(slot) = self.slot.take() {
            slot.open_next();
        }
    }
}
