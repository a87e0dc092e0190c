//! `mprpc call` on a streaming method: a server stream's messages are
//! printed as JSON lines (one compact JSON object a line) as they arrive; a
//! client or bidirectional stream's requests are read from stdin, one JSON
//! object a line (blank lines skipped), and sent as they are read, the
//! replies printed as JSON lines meanwhile. The stream's end status is the
//! command's: an error after some replies still fails the command.

use std::io::BufRead as _;

use bytes::{Buf, Bytes};
use mprpc::client::stream::StreamReceiver;
use mprpc::client::Channel;
use mprpc::protocol::mprpc::StreamShape;
use mprpc::{CallOptions, Status};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MethodDescriptor};

use crate::error::{fail, Error, Result};
use crate::json::{self, BytesAs};

/// A message as its encoded bytes: the channel's stream API is typed, the
/// CLI encodes and decodes through reflection itself.
#[derive(Debug, Default, Clone, PartialEq)]
struct Raw(Bytes);

impl prost::Message for Raw {
    fn encode_raw(&self, buf: &mut impl bytes::BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge(&mut self, mut buf: impl Buf) -> std::result::Result<(), prost::DecodeError> {
        self.0 = buf.copy_to_bytes(buf.remaining());
        Ok(())
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> std::result::Result<(), prost::DecodeError> {
        // Only reached through `merge_length_delimited`, which streams do not use.
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

/// What a streaming `call` needs besides the channel.
pub(crate) struct StreamCall<'a> {
    pub name: &'a str,
    pub service: &'a str,
    pub method: &'a MethodDescriptor,
    pub bytes: BytesAs,
    pub options: CallOptions,
}

/// Whether `method` streams either way.
pub(crate) fn is_stream(method: &MethodDescriptor) -> bool {
    method.is_client_streaming() || method.is_server_streaming()
}

/// Runs a server stream with `request` (JSON), printing each reply.
pub(crate) fn server(call: &StreamCall, channel: &Channel, request: &str) -> Result<()> {
    let message = json::to_message(&call.method.input(), request, call.bytes)?;
    let payload = Bytes::from(message.encode_to_vec());
    let (_, replies) = channel.open_stream::<Raw, Raw>(
        call.service,
        call.method.name(),
        StreamShape::Server,
        payload,
        &call.options,
    );
    print_replies(call, replies)
}

/// Runs a client or bidirectional stream: requests from stdin's lines,
/// sent by a thread of their own while the replies are printed here.
pub(crate) fn client(call: &StreamCall, channel: &Channel) -> Result<()> {
    use std::io::IsTerminal as _;
    let shape = if call.method.is_server_streaming() {
        StreamShape::Bidi
    } else {
        StreamShape::Client
    };
    if std::io::stdin().is_terminal() {
        eprintln!(
            "mprpc: {}: one JSON request a line; end with Ctrl-D",
            call.name
        );
    }
    let (requests, replies) = channel.open_stream::<Raw, Raw>(
        call.service,
        call.method.name(),
        shape,
        Bytes::new(),
        &call.options,
    );
    let input = call.method.input();
    let bytes = call.bytes;
    let sender = std::thread::spawn(move || -> Result<()> {
        for (number, line) in std::io::stdin().lock().lines().enumerate() {
            let line = line
                .map_err(|e| Error::new(format!("cannot read stdin line {}: {e}", number + 1)))?;
            if line.trim().is_empty() {
                continue;
            }
            let message = json::to_message(&input, &line, bytes)
                .map_err(|e| Error::new(format!("stdin line {}: {e}", number + 1)))?;
            if requests.send(&Raw(message.encode_to_vec().into())).is_err() {
                return Ok(()); // the stream ended: its status comes out of the replies
            }
        }
        requests.finish();
        Ok(())
    });
    let printed = print_replies(call, replies);
    // A bad line ends the thread early (dropping `requests` half-closes the
    // stream first): it is the error to report.
    match sender.join() {
        Ok(Err(bad_line)) => Err(bad_line),
        Ok(Ok(())) => printed,
        Err(_) => fail!("the thread reading stdin panicked"),
    }
}

/// Prints each reply as a JSON line until the stream ends; its error, if it
/// ended with one.
fn print_replies(call: &StreamCall, mut replies: StreamReceiver<Raw>) -> Result<()> {
    use std::io::Write as _;
    let output = call.method.output();
    let mut out = std::io::stdout().lock();
    loop {
        match replies.recv() {
            Ok(Some(Raw(bytes))) => {
                let reply = DynamicMessage::decode(output.clone(), bytes).map_err(|e| {
                    Error::new(format!(
                        "a reply of {} is not a {}: {e}",
                        call.name,
                        output.full_name()
                    ))
                })?;
                writeln!(out, "{}", json::to_json_line(&reply, call.bytes)?)
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::new(format!("cannot write to stdout: {e}")))?;
            }
            Ok(None) => return Ok(()),
            Err(status) => return Err(stream_error(call.name, &status)),
        }
    }
}

/// A stream that ended with an error.
fn stream_error(name: &str, status: &Status) -> Error {
    crate::call::call_error(name, status)
}
