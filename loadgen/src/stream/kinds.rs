//! One stream of each kind, start to end, counted into a [`Tally`]: what
//! was sent and received, each message's latency, and the stream's
//! outcome (its status code's name, or `ShortStream`/`BadReply` when it
//! ended well but its messages do not add up).

use std::time::Instant;

use bytes::Bytes;
use mprpc::client::Channel;
use mprpc::Status;
use mprpc_examples::bench::{EchoRequest, EchoResponse, PumpRequest, StreamSummary};

use super::tally::Tally;
use super::{micros_since, Plan, StreamKind};

/// Runs one stream of `plan`'s kind on `channel`, recorded in `tally`.
pub(super) fn one(plan: &Plan, channel: &Channel, tally: &mut Tally) {
    let outcome = match plan.kind {
        StreamKind::Server => server(plan, channel, tally),
        StreamKind::Client => client(plan, channel, tally),
        StreamKind::Bidi => bidi(plan, channel, tally),
    };
    tally.end_stream(outcome);
}

/// How a stream ended, as the report names it.
type Outcome = Result<(), String>;

fn failed(status: Status) -> Outcome {
    Err(status.code().as_str().to_owned())
}

/// The provider sends `plan.messages` replies; each one's latency is its
/// gap from the open or from the reply before.
fn server(plan: &Plan, channel: &Channel, tally: &mut Tally) -> Outcome {
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
    loop {
        match replies.recv() {
            Ok(Some(reply)) => {
                tally.record(micros_since(previous));
                previous = Instant::now();
                tally.received += 1;
                received += 1;
                bad |= reply.payload.len() != plan.payload;
            }
            Ok(None) => break,
            Err(status) => return failed(status),
        }
    }
    counted(received, plan.messages, bad)
}

/// loadgen sends `plan.messages` requests (each `send`'s time is its
/// latency: it waits for credit), then the provider's count must match.
fn client(plan: &Plan, channel: &Channel, tally: &mut Tally) -> Outcome {
    let request = echo_request(plan);
    let call = channel.client_stream::<EchoRequest, StreamSummary>(
        &plan.service,
        &plan.method,
        &plan.options,
    );
    let mut sent = 0u64;
    let mut send_error = None;
    for _ in 0..plan.messages {
        let started = Instant::now();
        if let Err(status) = call.send(&request) {
            send_error = Some(status);
            break;
        }
        tally.record(micros_since(started));
        tally.sent += 1;
        sent += 1;
    }
    match (call.finish(), send_error) {
        (Err(status), _) | (Ok(_), Some(status)) => failed(status),
        (Ok(summary), None) => {
            tally.provider_counted += summary.messages;
            let all = sent == u64::from(plan.messages) && summary.messages == sent;
            let bytes = summary.bytes == sent * plan.payload as u64;
            counted(all as u32, 1, !bytes)
        }
    }
}

/// Each request's echo is awaited before the next is sent: its round trip
/// is its latency.
fn bidi(plan: &Plan, channel: &Channel, tally: &mut Tally) -> Outcome {
    let request = echo_request(plan);
    let (requests, mut replies) = channel.bidi_stream::<EchoRequest, EchoResponse>(
        &plan.service,
        &plan.method,
        &plan.options,
    );
    let mut received = 0u32;
    let mut bad = false;
    for _ in 0..plan.messages {
        let started = Instant::now();
        if let Err(status) = requests.send(&request) {
            // The stream's own end says why (a send only sees that it ended).
            return match replies.recv() {
                Err(ended) => failed(ended),
                Ok(_) => failed(status),
            };
        }
        tally.sent += 1;
        match replies.recv() {
            Ok(Some(reply)) => {
                tally.record(micros_since(started));
                tally.received += 1;
                received += 1;
                bad |= reply.payload.len() != plan.payload;
            }
            Ok(None) => return counted(received, plan.messages, bad),
            Err(status) => return failed(status),
        }
    }
    requests.finish();
    match replies.recv() {
        Ok(None) => counted(received, plan.messages, bad),
        Ok(Some(_)) => Err("BadReply".into()),
        Err(status) => failed(status),
    }
}

/// An `EchoRequest` of `plan.payload` bytes.
fn echo_request(plan: &Plan) -> EchoRequest {
    EchoRequest {
        payload: Bytes::from(vec![0u8; plan.payload]),
    }
}

/// A stream that ended well: `ShortStream` unless all `expected`
/// messages came, `BadReply` if one was not the size asked for.
pub(super) fn counted(got: u32, expected: u32, bad: bool) -> Outcome {
    if got != expected {
        Err("ShortStream".into())
    } else if bad {
        Err("BadReply".into())
    } else {
        Ok(())
    }
}
