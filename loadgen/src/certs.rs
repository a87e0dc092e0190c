//! `loadgen certs DIR`: a throwaway CA and a provider certificate for
//! 127.0.0.1 and localhost, so a TLS comparison on this machine needs no
//! openssl and no real PKI. Not for anything but loopback benchmarks.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Writes `ca.crt`, `provider.crt` and `provider.key` into `dir`.
pub fn write(dir: &Path) -> Result<(), String> {
    let fail = |what: &str, e: rcgen::Error| format!("certs: {what}: {e}");
    std::fs::create_dir_all(dir).map_err(|e| format!("certs: {}: {e}", dir.display()))?;

    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "loadgen test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let ca_cert = ca.self_signed(&ca_key).map_err(|e| fail("CA", e))?;
    let issuer = Issuer::new(ca, ca_key);

    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let mut leaf = CertificateParams::new(names).map_err(|e| fail("provider", e))?;
    leaf.distinguished_name
        .push(DnType::CommonName, "loadgen provider");
    let key = KeyPair::generate().map_err(|e| fail("provider key", e))?;
    let cert = leaf
        .signed_by(&key, &issuer)
        .map_err(|e| fail("provider", e))?;

    for (name, text) in [
        ("ca.crt", ca_cert.pem()),
        ("provider.crt", cert.pem()),
        ("provider.key", key.serialize_pem()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("certs: {}: {e}", path.display()))?;
    }
    println!(
        "wrote ca.crt, provider.crt, provider.key in {}",
        dir.display()
    );
    Ok(())
}
