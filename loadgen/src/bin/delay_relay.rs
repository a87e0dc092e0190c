//! `delay-relay`: a TCP relay that holds every byte for a fixed time in each
//! direction, the fault harness's (`scripts/faults.sh`) added link delay:
//! this machine's kernel has no netem. The harness redirects a provider's
//! port to the relay with an nftables rule, so neither side knows it is
//! there.
//!
//! One thread per direction reads what arrives and stamps it with its due
//! time; another writes it once due, so a chunk is delayed by the set time
//! and no more, however many follow it (the link keeps its throughput). An
//! end of stream or an error is passed on, in order, to the other side.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;

/// Relays TCP connections from --listen to --to, each byte held for
/// --delay-ms in each direction.
#[derive(Debug, Parser)]
#[command(name = "delay-relay", version, about)]
struct Args {
    /// Where to accept connections.
    #[arg(long, value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Where to relay each to.
    #[arg(long, value_name = "HOST:PORT")]
    to: SocketAddr,
    /// Added one-way delay, both directions.
    #[arg(long, value_name = "MS")]
    delay_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match TcpListener::bind(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("delay-relay: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let delay = Duration::from_millis(args.delay_ms);
    eprintln!(
        "delay-relay: {} -> {}, +{} ms each way",
        args.listen, args.to, args.delay_ms
    );
    for client in listener.incoming() {
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("delay-relay: accept: {e}");
                continue;
            }
        };
        let to = args.to;
        std::thread::spawn(move || {
            if let Err(e) = relay(client, to, delay) {
                eprintln!("delay-relay: connection to {to}: {e}");
            }
        });
    }
    ExitCode::SUCCESS
}

/// Relays one connection both ways until both directions have ended.
fn relay(client: TcpStream, to: SocketAddr, delay: Duration) -> std::io::Result<()> {
    let server = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    for s in [&client, &server] {
        s.set_nodelay(true)?;
    }
    let up = pump(client.try_clone()?, server.try_clone()?, delay);
    let down = pump(server, client, delay);
    for side in [up, down] {
        let _ = side.join();
    }
    Ok(())
}

/// What the writer of one direction is handed: bytes, or the end.
enum Chunk {
    Data(Vec<u8>),
    End,
}

/// Moves bytes from `from` to `to`, each held `delay`; returns the writer
/// thread (the reader thread ends with its side).
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration) -> std::thread::JoinHandle<()> {
    let (tx, rx) = mpsc::channel::<(Instant, Chunk)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let chunk = match from.read(&mut buf) {
                Ok(0) | Err(_) => Chunk::End,
                Ok(n) => Chunk::Data(buf[..n].to_vec()),
            };
            let end = matches!(chunk, Chunk::End);
            if tx.send((Instant::now() + delay, chunk)).is_err() || end {
                return;
            }
        }
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            match chunk {
                Chunk::Data(bytes) if to.write_all(&bytes).is_ok() => {}
                _ => break,
            }
        }
        // Ends this direction; the reader of the other one sees it.
        let _ = to.shutdown(Shutdown::Write);
    })
}
