//! The seed's wire format (one call per short connection): not supported yet.
//!
//! PLUG-IN POINT. Endpoints with `WireFormat::Legacy` come only from the
//! seed's ZooKeeper layout. The driver routes every call whose chosen
//! endpoint speaks that format to [`start`], and nowhere else; a real
//! implementation replaces the body (e.g. a blocking short connection on a
//! helper thread that completes the call through `completion`).

use std::net::SocketAddr;

use crate::status::Status;

/// Starts a call to a legacy provider. For now: fails it at once.
pub(crate) fn start(addr: SocketAddr, service: &str) -> Result<(), Status> {
    Err(Status::unavailable(format!(
        "legacy wire format not supported yet (provider {addr} of service '{service}')"
    )))
}
