//! Certificates made at test time (rcgen), written as PEM files: a CA, a
//! provider certificate for `localhost` and 127.0.0.1, and client
//! certificates that are trusted, signed by another CA, or expired.

use std::path::PathBuf;

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Identity {
    /// (certificate PEM, key PEM).
    pub fn pem(&self) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(&self.cert).unwrap(),
            std::fs::read(&self.key).unwrap(),
        )
    }
}

/// Everything a TLS test needs, in a fresh directory.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA that signed `server` and `client`.
    pub ca: PathBuf,
    /// The provider: `localhost` and 127.0.0.1.
    pub server: Identity,
    /// A client the CA signed.
    pub client: Identity,
    /// A client signed by another CA.
    pub untrusted_client: Identity,
    /// A client the CA signed, valid only in 2000.
    pub expired_client: Identity,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = super::temp_dir("tls");
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let (ca_pem, ca) = new_ca("mprpc test CA");
        let (_, other_ca) = new_ca("someone else's CA");
        let leaf = |name: &str, sans: &[&str], issuer: &Issuer<'static, KeyPair>, expired| {
            let mut params =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            params.distinguished_name.push(DnType::CommonName, name);
            if expired {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, issuer).unwrap();
            Identity {
                cert: write(&format!("{name}.crt"), cert.pem()),
                key: write(&format!("{name}.key"), key.serialize_pem()),
            }
        };
        let server = leaf("server", &["localhost", "127.0.0.1"], &ca, false);
        let client = leaf("client", &["client"], &ca, false);
        let untrusted_client = leaf("untrusted", &["client"], &other_ca, false);
        let expired_client = leaf("expired", &["client"], &ca, true);
        Pki {
            ca: write("ca.crt", ca_pem),
            server,
            client,
            untrusted_client,
            expired_client,
        }
    }

    /// The CA certificate's PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca).unwrap()
    }
}

/// A self-signed CA: its certificate PEM and the issuer to sign with.
fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}
