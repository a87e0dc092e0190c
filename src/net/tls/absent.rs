//! TLS when mprpc is built without its `tls` feature: the settings types
//! exist, so options and code that hold an `Option<ServerTls>` or
//! `Option<ClientTls>` compile unchanged, but have no values (nothing can
//! build one), so every connection is plain.

use super::TlsMode;

/// A provider's TLS; with the `tls` feature off it cannot be built.
#[derive(Debug, Clone)]
pub enum ServerTls {}

impl ServerTls {
    /// Whether TLS is optional or required on the port.
    pub fn mode(&self) -> TlsMode {
        match *self {}
    }

    /// Only TLS clients get in.
    pub fn is_required(&self) -> bool {
        match *self {}
    }

    /// Clients must present a certificate the client CA signed.
    pub fn is_mutual(&self) -> bool {
        match *self {}
    }
}

/// A consumer's TLS; with the `tls` feature off it cannot be built.
#[derive(Debug, Clone)]
pub enum ClientTls {}
