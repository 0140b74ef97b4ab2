//! HTTPS for `--tls`: the server's certificate and its rustls
//! configuration (the front door every TLS connection passes is
//! `conn/tls.rs`; the clients' side is `client/tls.rs`).
//!
//! - rustls with the `ring` provider, handed explicitly to every config
//!   (never a process-wide default), so nothing else needs to pick one.
//! - ALPN offers `h2` then `http/1.1` (browsers take `h2`), or only
//!   `http/1.1` with `--http1-only`, for side-by-side comparisons. The
//!   server serves a connection with the protocol ALPN chose (`server.rs`).
//! - With no `--cert`/`--key`, a self-signed certificate for `localhost`
//!   and `127.0.0.1` is made at start by rcgen. A browser refuses it until
//!   told to trust it: the server prints its SHA-256 fingerprint, and the
//!   base64 SHA-256 of its public key that Chromium's
//!   `--ignore-certificate-errors-spki-list` takes.

use base64::Engine;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// ALPN's name for HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN's name for HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why TLS could not be set up.
#[derive(Debug)]
pub enum TlsError {
    /// A PEM file could not be read or held nothing usable.
    Pem(String),
    /// rcgen could not make the self-signed certificate.
    Generate(String),
    /// rustls refused the certificate and key.
    Config(rustls::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pem(why) => write!(f, "TLS certificate or key: {why}"),
            Self::Generate(why) => write!(f, "generating a certificate: {why}"),
            Self::Config(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The one crypto provider every config here uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its private key, and what a browser needs to
/// know to trust it.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The DER of the key's SubjectPublicKeyInfo, which Chromium pins.
    spki: Vec<u8>,
    /// Made at start (self-signed), not read from files.
    pub generated: bool,
}

impl Identity {
    /// A self-signed certificate for `localhost` and `127.0.0.1` (and
    /// `::1`), with a fresh ECDSA P-256 key.
    pub fn self_signed() -> Result<Self, TlsError> {
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        use rcgen::PublicKeyData;
        let spki = certified.signing_key.subject_public_key_info();
        let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        Ok(Self {
            chain: vec![certified.cert.der().clone()],
            key,
            spki,
            generated: true,
        })
    }

    /// A certificate chain and a private key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let pem = |path: &Path, e: &dyn std::fmt::Display| {
            TlsError::Pem(format!("{}: {e}", path.display()))
        };
        let chain = CertificateDer::pem_file_iter(cert)
            .map_err(|e| pem(cert, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem(cert, &e))?;
        if chain.is_empty() {
            return Err(pem(cert, &"no CERTIFICATE block"));
        }
        let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, &e))?;
        // rcgen reads the key to give its public half, for the SPKI pin.
        let pair = rcgen::KeyPair::try_from(&key_der).map_err(|e| pem(key, &e))?;
        use rcgen::PublicKeyData;
        Ok(Self {
            spki: pair.subject_public_key_info(),
            chain,
            key: key_der,
            generated: false,
        })
    }

    /// The leaf certificate's SHA-256 fingerprint, as browsers show it
    /// (`AB:CD:...`).
    pub fn fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.chain[0]);
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// base64 of the SHA-256 of the public key (SPKI), the value of
    /// Chromium's `--ignore-certificate-errors-spki-list`.
    pub fn spki_hash(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.spki);
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    }

    /// The leaf certificate in PEM, for clients that want to trust it.
    pub fn cert_pem(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(&self.chain[0]);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    }
}

/// The server's TLS settings: its rustls config and what to tell people.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    pub identity: Arc<Identity>,
    /// ALPN offers only `http/1.1`.
    pub http1_only: bool,
}

impl ServerTls {
    pub fn new(identity: Identity, http1_only: bool) -> Result<Self, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_single_cert(identity.chain.clone(), identity.key.clone_key())
            .map_err(TlsError::Config)?;
        config.alpn_protocols = if http1_only {
            vec![ALPN_HTTP1.to_vec()]
        } else {
            vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()]
        };
        Ok(Self {
            config: Arc::new(config),
            identity: Arc::new(identity),
            http1_only,
        })
    }

    /// A self-signed identity: what `--tls` without `--cert` serves.
    pub fn self_signed(http1_only: bool) -> Result<Self, TlsError> {
        Self::new(Identity::self_signed()?, http1_only)
    }

    /// What a person needs to trust this server in a browser, printed at
    /// start.
    pub fn how_to_trust(&self, addr: std::net::SocketAddr) -> String {
        let identity = &self.identity;
        let mut text = format!(
            "  TLS:       certificate SHA-256 {}\n  protocols: {}\n",
            identity.fingerprint(),
            if self.http1_only {
                "http/1.1 only"
            } else {
                "h2, http/1.1"
            }
        );
        if identity.generated {
            text.push_str(&format!(
                "  The certificate is self-signed (made at start, for localhost and 127.0.0.1).\n  \
                 Chromium: chromium --ignore-certificate-errors-spki-list={} https://{addr}/\n  \
                 Other browsers: open https://{addr}/ and accept the warning after checking the fingerprint.\n  \
                 curl: curl -k --http2 https://{addr}/healthz\n",
                identity.spki_hash()
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_has_a_fingerprint_and_a_pin() {
        let tls = ServerTls::self_signed(false).unwrap();
        let fingerprint = tls.identity.fingerprint();
        assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
        let pin = tls.identity.spki_hash();
        assert_eq!(pin.len(), 44, "base64 of 32 bytes: {pin}");
        assert_eq!(
            tls.config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let h1 = ServerTls::self_signed(true).unwrap();
        assert_eq!(h1.config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn pem_files_round_trip_with_the_same_pin() {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = std::env::temp_dir().join(format!("skyrocket-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let identity = Identity::from_pem_files(&cert, &key).unwrap();
        assert!(!identity.generated);
        use rcgen::PublicKeyData;
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &generated.signing_key.subject_public_key_info(),
        );
        assert_eq!(
            identity.spki_hash(),
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
        );
        assert_eq!(identity.cert_pem().trim(), generated.cert.pem().trim());
        let missing = Identity::from_pem_files(&dir.join("nope.pem"), &key).unwrap_err();
        assert!(missing.to_string().contains("nope.pem"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
