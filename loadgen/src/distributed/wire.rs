//! Frames: what a worker's child reports (on its stdout, to its worker)
//! and what the worker publishes in ZooKeeper for the coordinator.
//!
//! A frame is `LGW1`, a big-endian u32 header length, a JSON [`Header`],
//! then the latency, service-time, send-lag and successful-call latency
//! histograms back to back in HdrHistogram's V2 deflate format (their
//! lengths are in the header). Histograms travel whole, so the
//! coordinator can add them exactly. On a pipe each frame is preceded by
//! its big-endian u32 length.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::recorder::Snapshot;
use crate::Source;

/// The largest frame written: ZooKeeper refuses nodes near 1 MB
/// (`jute.maxbuffer`), and its request framing needs some room.
pub const MAX_FRAME: usize = 1_000_000;

const MAGIC: &[u8; 4] = b"LGW1";

/// What a frame says.
#[derive(Debug)]
pub enum Frame {
    /// The child reached its target and waits for the start instant.
    Ready,
    /// Cumulative figures, once a second.
    Tick(Snapshot),
    /// The run's end: the figures, and what was driven.
    Final(Snapshot, Source),
    /// The run could not be done.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ready,
    Tick,
    Final,
    Failed,
}

/// The JSON part of a frame.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    counts: Option<Counts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<Source>,
    /// Bytes of the latency, service, lag and ok-latency histograms that follow.
    #[serde(default)]
    histograms: Vec<usize>,
}

/// A snapshot's counters (everything but its histograms).
#[derive(Debug, Serialize, Deserialize)]
struct Counts {
    sent_measured: u64,
    sent_in_window: u64,
    unanswered: u64,
    completed: u64,
    errors: u64,
    errors_by_code: BTreeMap<String, u64>,
    per_conn: Vec<u64>,
    sent: u64,
    delayed: u64,
    unsent: u64,
    unsent_late: u64,
    in_flight: u64,
}

impl Frame {
    pub fn kind(&self) -> Kind {
        match self {
            Frame::Ready => Kind::Ready,
            Frame::Tick(_) => Kind::Tick,
            Frame::Final(..) => Kind::Final,
            Frame::Failed(_) => Kind::Failed,
        }
    }

    /// The frame's bytes; an error if they would exceed [`MAX_FRAME`].
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let mut header = Header {
            kind: self.kind(),
            error: None,
            counts: None,
            source: None,
            histograms: Vec::new(),
        };
        let mut blobs = Vec::new();
        match self {
            Frame::Ready => {}
            Frame::Failed(why) => header.error = Some(why.clone()),
            Frame::Tick(s) | Frame::Final(s, _) => {
                header.counts = Some(counts(s));
                for h in [&s.latency, &s.service, &s.lag, &s.ok_latency] {
                    let start = blobs.len();
                    V2DeflateSerializer::new()
                        .serialize(h, &mut blobs)
                        .map_err(|e| format!("cannot serialize a histogram: {e:?}"))?;
                    header.histograms.push(blobs.len() - start);
                }
                if let Frame::Final(_, source) = self {
                    header.source = Some(source.clone());
                }
            }
        }
        let json = serde_json::to_vec(&header).map_err(|e| format!("frame header: {e}"))?;
        let mut out = Vec::with_capacity(8 + json.len() + blobs.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(&json);
        out.extend_from_slice(&blobs);
        if out.len() > MAX_FRAME {
            return Err(format!(
                "a {:?} frame of {} bytes exceeds ZooKeeper's node limit ({MAX_FRAME} bytes)",
                self.kind(),
                out.len()
            ));
        }
        Ok(out)
    }

    /// Parses a frame; any damage is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Frame, String> {
        let (header, mut rest) = split(bytes)?;
        let header: Header =
            serde_json::from_slice(header).map_err(|e| format!("bad frame header: {e}"))?;
        match header.kind {
            Kind::Ready => return Ok(Frame::Ready),
            Kind::Failed => return Ok(Frame::Failed(header.error.unwrap_or_default())),
            Kind::Tick | Kind::Final => {}
        }
        let counts = header.counts.ok_or("frame without counts")?;
        if header.histograms.len() != 4 {
            return Err("frame without its four histograms".into());
        }
        let mut hists = Vec::with_capacity(4);
        for &len in &header.histograms {
            if len > rest.len() {
                return Err("frame shorter than its histograms".into());
            }
            let (blob, tail) = rest.split_at(len);
            rest = tail;
            let h: Histogram<u64> = Deserializer::new()
                .deserialize(&mut &blob[..])
                .map_err(|e| format!("bad histogram in frame: {e:?}"))?;
            hists.push(h);
        }
        let ok_latency = hists.pop().expect("four histograms");
        let lag = hists.pop().expect("four histograms");
        let service = hists.pop().expect("four histograms");
        let latency = hists.pop().expect("four histograms");
        let s = snapshot(counts, [latency, service, lag, ok_latency]);
        match header.kind {
            Kind::Tick => Ok(Frame::Tick(s)),
            _ => Ok(Frame::Final(
                s,
                header.source.ok_or("final frame without its source")?,
            )),
        }
    }
}

/// The kind of an encoded frame, reading only its header.
pub fn kind_of(bytes: &[u8]) -> Result<Kind, String> {
    #[derive(Deserialize)]
    struct KindOnly {
        kind: Kind,
    }
    let (header, _) = split(bytes)?;
    serde_json::from_slice::<KindOnly>(header)
        .map(|k| k.kind)
        .map_err(|e| format!("bad frame header: {e}"))
}

/// (header JSON, histogram bytes).
fn split(bytes: &[u8]) -> Result<(&[u8], &[u8]), String> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err("not a loadgen frame".into());
    }
    let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let body = &bytes[8..];
    if len > body.len() {
        return Err("frame shorter than its header".into());
    }
    Ok(body.split_at(len))
}

fn counts(s: &Snapshot) -> Counts {
    Counts {
        sent_measured: s.sent_measured,
        sent_in_window: s.sent_in_window,
        unanswered: s.unanswered,
        completed: s.completed,
        errors: s.errors,
        errors_by_code: s.errors_by_code.clone(),
        per_conn: s.per_conn.clone(),
        sent: s.sent,
        delayed: s.delayed,
        unsent: s.unsent,
        unsent_late: s.unsent_late,
        in_flight: s.in_flight,
    }
}

/// A snapshot of `c` and its histograms: latency, service, lag, ok_latency.
fn snapshot(c: Counts, [latency, service, lag, ok_latency]: [Histogram<u64>; 4]) -> Snapshot {
    Snapshot {
        latency,
        service,
        lag,
        ok_latency,
        sent_measured: c.sent_measured,
        sent_in_window: c.sent_in_window,
        unanswered: c.unanswered,
        completed: c.completed,
        errors: c.errors,
        errors_by_code: c.errors_by_code,
        per_conn: c.per_conn,
        sent: c.sent,
        delayed: c.delayed,
        unsent: c.unsent,
        unsent_late: c.unsent_late,
        in_flight: c.in_flight,
    }
}

/// Writes one length-prefixed frame to a pipe.
pub fn write_frame(out: &mut impl Write, frame: &[u8]) -> std::io::Result<()> {
    out.write_all(&(frame.len() as u32).to_be_bytes())?;
    out.write_all(frame)?;
    out.flush()
}

/// Reads one length-prefixed frame from a pipe; `None` at a clean end.
pub fn read_frame(input: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "a {len}-byte frame exceeds {MAX_FRAME}"
        )));
    }
    let mut frame = vec![0; len];
    input.read_exact(&mut frame)?;
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::new_histogram;

    pub(crate) fn sample(values: &[u64], conns: usize) -> Snapshot {
        let mut s = Snapshot::empty(conns);
        for &v in values {
            s.latency.record(v).unwrap();
            s.service.record(v / 2 + 1).unwrap();
            s.ok_latency.record(v).unwrap();
        }
        s.lag.record(3).unwrap();
        s.completed = values.len() as u64;
        s.sent = s.completed + 5;
        s.errors_by_code.insert("Timeout".into(), 1);
        s.per_conn = (0..conns as u64).collect();
        s
    }

    #[test]
    fn frames_round_trip_with_whole_histograms() {
        let s = sample(&[10, 20, 30, 1_000_000], 3);
        let source = Source {
            endpoint: "127.0.0.1:1".into(),
            names: vec!["a".into()],
            discovered: vec![],
            counted_per: "connection".into(),
            request_bytes: 66,
            client: "engine".into(),
            window: 4,
        };
        let bytes = Frame::Final(s, source).encode().unwrap();
        assert_eq!(kind_of(&bytes), Ok(Kind::Final));
        let Frame::Final(back, src) = Frame::decode(&bytes).unwrap() else {
            panic!("not final")
        };
        assert_eq!(back.latency, sample(&[10, 20, 30, 1_000_000], 3).latency);
        assert_eq!(
            back.latency.max(),
            new_histogram().highest_equivalent(1_000_000)
        );
        assert_eq!(
            (back.completed, back.sent, back.per_conn),
            (4, 9, vec![0, 1, 2])
        );
        assert_eq!(back.errors_by_code["Timeout"], 1);
        assert_eq!(src.window, 4);
        let failed = Frame::Failed("no route".into()).encode().unwrap();
        assert!(matches!(Frame::decode(&failed), Ok(Frame::Failed(w)) if w == "no route"));
    }

    #[test]
    fn damaged_frames_are_errors() {
        let bytes = Frame::Tick(sample(&[5; 100], 1)).encode().unwrap();
        for cut in [0, 3, 8, 20, bytes.len() - 1] {
            assert!(Frame::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 10;
        flipped[last] ^= 0xff;
        assert!(Frame::decode(&flipped).is_err());
        assert!(Frame::decode(b"LGW1\0\0\0\x02{}").is_err());
    }

    #[test]
    fn pipes_carry_frames_and_refuse_giants() {
        let mut pipe = Vec::new();
        write_frame(&mut pipe, b"abc").unwrap();
        let mut input = &pipe[..];
        assert_eq!(
            read_frame(&mut input).unwrap().as_deref(),
            Some(&b"abc"[..])
        );
        assert!(read_frame(&mut input).unwrap().is_none());
        let giant = (MAX_FRAME as u32 + 1).to_be_bytes();
        assert!(read_frame(&mut &giant[..]).is_err());
    }
}
