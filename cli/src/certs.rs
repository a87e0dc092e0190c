//! `mprpc certs DIR`: a development CA, a provider certificate for the
//! names and IP addresses given and a client certificate for mutual TLS
//! (`mprpc::net::certs`, the same files `loadgen certs` writes), then the config
//! lines of both sides that use them.

use std::path::PathBuf;

use clap::Args;
use mprpc::net::certs::{self, DEFAULT_SERVER_NAMES, FILES};

use crate::error::{Error, Result};

/// `mprpc certs`.
#[derive(Debug, Args)]
pub(crate) struct CertsArgs {
    /// Where the PEM files go (created if missing).
    dir: PathBuf,
    /// A DNS name or IP address consumers dial the provider by (repeat for
    /// several) [default: localhost and 127.0.0.1].
    #[arg(long = "name", value_name = "HOST_OR_IP")]
    names: Vec<String>,
}

/// Writes the files and prints how to use them.
pub(crate) fn run(args: &CertsArgs) -> Result<()> {
    let names = if args.names.is_empty() {
        DEFAULT_SERVER_NAMES
            .iter()
            .map(|n| (*n).to_owned())
            .collect()
    } else {
        args.names.clone()
    };
    let written = certs::write(&args.dir, &names).map_err(|e| Error::new(e.to_string()))?;
    for (path, (_, key)) in written.iter().zip(FILES) {
        println!("wrote {}  ({key})", path.display());
    }
    let file = |name: &str| args.dir.join(name).display().to_string();
    println!(
        "\nprovider config:\n  tls=required\n  tls_cert={}\n  tls_key={}\n  tls_client_ca={}    # mutual TLS (optional)\n\
         consumer config:\n  tls_ca={}\n  tls_client_cert={}    # mutual TLS\n  tls_client_key={}\n\
         the provider's certificate names: {}",
        file("provider.crt"),
        file("provider.key"),
        file("ca.crt"),
        file("ca.crt"),
        file("client.crt"),
        file("client.key"),
        names.join(", ")
    );
    Ok(())
}
