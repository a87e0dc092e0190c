//! TLS of both sides: [`TlsMode`] (what a provider's port speaks) and
//! [`TlsError`] always; [`ServerTls`] (a provider's certificate and key,
//! and for mutual TLS the CA its clients' certificates must be signed by)
//! and [`ClientTls`] (the CA a consumer trusts, the name it expects, and
//! its own certificate for mutual TLS), built once and shared by every
//! connection.
//!
//! With the `tls` feature (on by default) rustls does the protocol
//! (`settings`); without it (`absent`) `ServerTls` and `ClientTls` are
//! types with no values, so an option holding one is always `None`, no
//! rustls or ring is built, and a config file that asks for TLS is an
//! error naming the feature.

use std::fmt;
use std::str::FromStr;

#[cfg(not(feature = "tls"))]
mod absent;
#[cfg(feature = "tls")]
mod settings;

#[cfg(not(feature = "tls"))]
pub use absent::{ClientTls, ServerTls};
#[cfg(feature = "tls")]
pub(crate) use settings::tls_io_error;
#[cfg(feature = "tls")]
pub use settings::{ClientTls, ServerTls};

/// Whether a provider's port speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TlsMode {
    /// Plain TCP only.
    #[default]
    Off,
    /// TLS and plain clients share the port, told apart by their first
    /// bytes (a TLS record starts `0x16 0x03`).
    Optional,
    /// Only TLS: a plain client is refused with a logged reason.
    Required,
}

impl FromStr for TlsMode {
    type Err = String;

    fn from_str(value: &str) -> Result<TlsMode, String> {
        match value.to_ascii_lowercase().as_str() {
            "off" | "false" | "no" => Ok(TlsMode::Off),
            "optional" => Ok(TlsMode::Optional),
            "required" | "on" | "true" | "yes" => Ok(TlsMode::Required),
            _ => Err(format!("'{value}' is not one of off, optional, required")),
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::Off => "off",
            TlsMode::Optional => "optional",
            TlsMode::Required => "required",
        })
    }
}

/// Why TLS settings could not be built: which file or setting, and what.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsError(String);

impl TlsError {
    #[cfg(feature = "tls")]
    pub(crate) fn new(message: impl Into<String>) -> TlsError {
        TlsError(message.into())
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}
