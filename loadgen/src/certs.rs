//! `loadgen certs DIR`: the development CA and certificates of
//! [`mprpc::net::certs`] (what `mprpc certs` writes), for 127.0.0.1 and
//! localhost, so a TLS comparison on this machine needs no openssl and no
//! real PKI. Not for anything but loopback benchmarks.

use std::path::Path;

use mprpc::net::certs::{self, DEFAULT_SERVER_NAMES};

/// Writes `ca.crt`, `provider.crt`, `provider.key` (and a client pair) into `dir`.
pub fn write(dir: &Path) -> Result<(), String> {
    let names: Vec<String> = DEFAULT_SERVER_NAMES
        .iter()
        .map(|n| (*n).to_owned())
        .collect();
    let written = certs::write(dir, &names).map_err(|e| e.to_string())?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
