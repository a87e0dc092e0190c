//! Certificates for trying TLS and mutual TLS without openssl: a fresh CA,
//! a provider certificate for the names and IP addresses given, and a
//! client certificate, all signed by that CA (feature `certs`).
//!
//! A self-signed certificate used as the provider's own fails the handshake
//! (`CaUsedAsEndEntity`) and one without the dialled IP in its names fails
//! `NotValidForName`: what works is a CA plus leaves that name the provider.
//! `mprpc certs DIR` and `loadgen certs DIR` both write these files; real
//! deployments use their own PKI.

use std::fmt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The names a provider certificate holds when none are given.
pub const DEFAULT_SERVER_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// The files [`write()`] creates, and which config key takes each.
pub const FILES: &[(&str, &str)] = &[
    (
        "ca.crt",
        "tls_ca (consumer) and tls_client_ca (provider, for mutual TLS)",
    ),
    ("provider.crt", "tls_cert (provider)"),
    ("provider.key", "tls_key (provider)"),
    ("client.crt", "tls_client_cert (consumer, for mutual TLS)"),
    ("client.key", "tls_client_key (consumer, for mutual TLS)"),
];

/// Why the certificates could not be made or written.
#[derive(Clone, PartialEq, Eq)]
pub struct CertsError(String);

impl fmt::Display for CertsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot make certificates: {}", self.0)
    }
}

impl fmt::Debug for CertsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for CertsError {}

/// A CA and the certificates it signed, PEM-encoded.
#[derive(Clone)]
pub struct DevPki {
    /// The CA's certificate (its key is not kept).
    pub ca_cert: String,
    /// The provider's certificate, for the names given.
    pub server_cert: String,
    /// The provider's private key.
    pub server_key: String,
    /// A client certificate, for mutual TLS.
    pub client_cert: String,
    /// The client's private key.
    pub client_key: String,
}

impl fmt::Debug for DevPki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevPki").finish_non_exhaustive() // keys are secrets
    }
}

/// Makes a CA, a provider certificate valid for each of `server_names`
/// (DNS names or IP addresses) and a client certificate.
pub fn generate(server_names: &[String]) -> Result<DevPki, CertsError> {
    let fail = |what: &str, e: rcgen::Error| CertsError(format!("{what}: {e}"));
    if server_names.is_empty() {
        return Err(CertsError("no provider name or IP address given".into()));
    }
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "mprpc development CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail("CA", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let leaf =
        |names: Vec<String>, common_name: &str, purpose| -> Result<(String, String), CertsError> {
            let mut params = CertificateParams::new(names)
                .map_err(|e| fail(&format!("{common_name} names"), e))?;
            params
                .distinguished_name
                .push(DnType::CommonName, common_name);
            params.extended_key_usages = vec![purpose];
            let key = KeyPair::generate().map_err(|e| fail(common_name, e))?;
            let cert = params
                .signed_by(&key, &issuer)
                .map_err(|e| fail(common_name, e))?;
            Ok((cert.pem(), key.serialize_pem()))
        };
    let (server_cert, server_key) = leaf(
        server_names.to_vec(),
        "mprpc provider",
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let (client_cert, client_key) = leaf(
        vec!["mprpc-client".to_owned()],
        "mprpc client",
        ExtendedKeyUsagePurpose::ClientAuth,
    )?;
    Ok(DevPki {
        ca_cert: ca_cert.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    })
}

/// Makes the certificates ([`generate`]) and writes the [`FILES`] into
/// `dir` (created if missing); returns the paths written.
pub fn write(dir: &Path, server_names: &[String]) -> Result<Vec<PathBuf>, CertsError> {
    let pki = generate(server_names)?;
    let fail = |path: &Path, e: std::io::Error| CertsError(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let contents = [
        &pki.ca_cert,
        &pki.server_cert,
        &pki.server_key,
        &pki.client_cert,
        &pki.client_key,
    ];
    let mut written = Vec::with_capacity(FILES.len());
    for ((name, _), text) in FILES.iter().zip(contents) {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| fail(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;
    use crate::net::tls::{ClientTls, ServerTls, TlsMode};

    #[test]
    fn written_files_load_as_mutual_tls_settings_of_both_sides() {
        let dir = std::env::temp_dir().join(format!("mprpc-certs-{}", std::process::id()));
        let names: Vec<String> = DEFAULT_SERVER_NAMES
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let written = write(&dir, &names).unwrap();
        assert_eq!(written.len(), FILES.len());
        let file = |name: &str| dir.join(name);
        let ca = file("ca.crt");
        let server = ServerTls::from_pem_files(
            &file("provider.crt"),
            &file("provider.key"),
            Some(&ca),
            TlsMode::Required,
        )
        .unwrap();
        assert!(server.is_mutual());
        ClientTls::from_pem_files(&ca, Some((&file("client.crt"), &file("client.key")))).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_names_is_an_error() {
        assert!(generate(&[])
            .unwrap_err()
            .to_string()
            .contains("no provider name"));
    }
}
