//! TLS settings over rustls, with the `ring` provider chosen explicitly
//! (so a process-wide default provider is never needed); the bytes move
//! through `Transport` (in `src/net`), which drives rustls's non-blocking
//! API on our mio sockets. Certificates and keys are read from PEM.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::{TlsError, TlsMode};

/// A provider's TLS: what it presents and, for mutual TLS, whom it lets in.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<ServerConfig>,
    mode: TlsMode,
    mutual: bool,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("mode", &self.mode)
            .field("mutual", &self.mutual)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From PEM text: the certificate chain (leaf first), its private key,
    /// and, for mutual TLS, the CA certificates a client's certificate must
    /// chain to. `mode` must be `Optional` or `Required`.
    pub fn from_pem(
        cert_chain: &[u8],
        key: &[u8],
        client_ca: Option<&[u8]>,
        mode: TlsMode,
    ) -> Result<ServerTls, TlsError> {
        if mode == TlsMode::Off {
            return Err(TlsError::new("ServerTls with tls=off"));
        }
        let certs = certs(cert_chain, "certificate")?;
        let key = private_key(key)?;
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let roots = Arc::new(roots(pem, "client CA")?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| TlsError::new(format!("client CA: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| TlsError::new(format!("certificate and key: {e}")))?;
        Ok(ServerTls {
            config: Arc::new(config),
            mode,
            mutual: client_ca.is_some(),
        })
    }

    /// From PEM files (see [`ServerTls::from_pem`]).
    pub fn from_pem_files(
        cert_chain: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        mode: TlsMode,
    ) -> Result<ServerTls, TlsError> {
        let client_ca = client_ca.map(read).transpose()?;
        ServerTls::from_pem(&read(cert_chain)?, &read(key)?, client_ca.as_deref(), mode)
    }

    /// `Optional` or `Required`.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// Plain clients are refused.
    pub fn is_required(&self) -> bool {
        self.mode == TlsMode::Required
    }

    /// Clients must present a certificate signed by the client CA.
    pub fn is_mutual(&self) -> bool {
        self.mutual
    }

    /// A server-side session for one accepted connection.
    pub(crate) fn session(&self) -> std::io::Result<rustls::Connection> {
        let conn = rustls::ServerConnection::new(self.config.clone())
            .map_err(|e| tls_io_error(e, true))?;
        Ok(conn.into())
    }
}

/// A consumer's TLS: the CA it trusts, the name it checks the provider's
/// certificate against, and its own certificate for mutual TLS.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    /// `None`: the provider's IP address is the name checked.
    server_name: Option<ServerName<'static>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the CA certificates in `ca` (PEM); presents `identity`
    /// (certificate chain PEM, private key PEM) when a provider asks.
    pub fn from_pem(ca: &[u8], identity: Option<(&[u8], &[u8])>) -> Result<ClientTls, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::new(e.to_string()))?
            .with_root_certificates(roots(ca, "CA")?);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(certs(chain, "client certificate")?, private_key(key)?)
                .map_err(|e| TlsError::new(format!("client certificate and key: {e}")))?,
        };
        Ok(ClientTls {
            config: Arc::new(config),
            server_name: None,
        })
    }

    /// From PEM files (see [`ClientTls::from_pem`]).
    pub fn from_pem_files(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
    ) -> Result<ClientTls, TlsError> {
        let identity = match identity {
            Some((chain, key)) => Some((read(chain)?, read(key)?)),
            None => None,
        };
        let identity = identity.as_ref().map(|(c, k)| (&c[..], &k[..]));
        ClientTls::from_pem(&read(ca)?, identity)
    }

    /// Checks every provider's certificate against `name` (a DNS name or an
    /// IP address) instead of the provider's IP address.
    pub fn with_server_name(mut self, name: &str) -> Result<ClientTls, TlsError> {
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| TlsError::new(format!("server name '{name}': {e}")))?;
        self.server_name = Some(name);
        Ok(self)
    }

    /// Offers these ALPN protocols in the handshake (`b"h2"` for gRPC);
    /// none by default (mprpc's own port needs none).
    pub fn with_alpn(mut self, protocols: Vec<Vec<u8>>) -> ClientTls {
        let mut config = (*self.config).clone();
        config.alpn_protocols = protocols;
        self.config = Arc::new(config);
        self
    }

    /// A client-side rustls session to the provider at `addr`, for a
    /// client that drives rustls itself (loadgen's engine); the framework's
    /// own connections get theirs through `Transport`.
    pub fn client_connection(&self, addr: SocketAddr) -> std::io::Result<rustls::ClientConnection> {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        rustls::ClientConnection::new(self.config.clone(), name).map_err(|e| tls_io_error(e, true))
    }

    /// A client-side session to the provider at `addr`.
    pub(crate) fn session(&self, addr: SocketAddr) -> std::io::Result<rustls::Connection> {
        Ok(self.client_connection(addr)?.into())
    }
}

/// A rustls error as the `io::Error` a connection closes with.
pub(crate) fn tls_io_error(e: rustls::Error, handshaking: bool) -> std::io::Error {
    let what = if handshaking {
        "TLS handshake failed"
    } else {
        "TLS error"
    };
    let text = match what_to_do(&e) {
        Some(advice) => format!("{what}: {e}: {advice}"),
        None => format!("{what}: {e}"),
    };
    std::io::Error::new(std::io::ErrorKind::InvalidData, text)
}

/// What to change when a handshake fails for a reason a person can fix.
fn what_to_do(e: &rustls::Error) -> Option<&'static str> {
    use rustls::{AlertDescription, CertificateError, Error};
    Some(match e {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the peer's certificate is not signed by the CA this side trusts \
             (consumer: tls_ca; provider, for client certificates: tls_client_ca); \
             `mprpc certs DIR` makes a CA and certificates that work"
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "the provider's certificate does not name the address or name dialled: \
             make it for that name or IP (`mprpc certs DIR --name HOST_OR_IP`) \
             or set tls_server_name to a name it holds"
        }
        Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the certificate has expired: make a new one",
        Error::NoCertificatesPresented
        | Error::AlertReceived(AlertDescription::CertificateRequired) => {
            "the provider requires a client certificate (mutual TLS): \
             set tls_client_cert and tls_client_key"
        }
        // webpki's reason travels as text inside `Other`.
        Error::InvalidCertificate(CertificateError::Other(other))
            if format!("{other:?}").contains("CaUsedAsEndEntity") =>
        {
            "the provider presents a CA certificate (such as a self-signed \
             `openssl req -x509` one) as its own; it needs a certificate signed by \
             that CA, naming its address: `mprpc certs DIR` makes both"
        }
        _ => return None,
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::new(format!("cannot read {}: {e}", path.display())))
}

fn certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::new(format!("{what}: no CERTIFICATE in the PEM")));
    }
    Ok(certs)
}

fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| TlsError::new(format!("private key: no usable key in the PEM ({e})")))
}

fn roots(pem: &[u8], what: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(pem, what)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::new(format!("{what}: {e}")))?;
    }
    Ok(roots)
}
