//! TLS for the Rust clients: rustls with the ring provider, ALPN as asked,
//! and an `insecure` mode for a server's self-signed certificate.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// ALPN's name for HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN's name for HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A rustls client config offering `alpn`. With `insecure`, any server
/// certificate is accepted (its signatures are still checked), for a
/// server's self-signed one; otherwise only `trusted` roots are.
pub fn client_config(
    alpn: &[&[u8]],
    insecure: bool,
    trusted: &[CertificateDer<'static>],
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for cert in trusted {
            // A certificate the store cannot parse is simply not trusted.
            let _ = roots.add(cert.clone());
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Accepts any certificate: for `--insecure` against a self-signed server.
/// Handshake signatures are still verified, so the peer holds the key of
/// the certificate it sent; who that is goes unchecked.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How a client reaches the server: which HTTP version it offers, and for
/// HTTPS, which certificates it trusts. The default is what every client
/// did before TLS: HTTP/1.1, which is all a plain `http://` server speaks.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// Offer HTTP/2 by ALPN (as browsers do) and use it when the server
    /// agrees: over HTTPS only, as browsers do.
    pub http2: bool,
    /// Accept any server certificate (a self-signed one).
    pub insecure: bool,
    /// Certificates trusted as roots, besides (with `insecure`) any.
    pub trusted: Vec<CertificateDer<'static>>,
}

impl Connect {
    /// HTTP/2 over HTTPS, trusting `certificate` (a test server's own).
    pub fn http2_trusting(certificate: CertificateDer<'static>) -> Self {
        Self {
            http2: true,
            insecure: false,
            trusted: vec![certificate],
        }
    }

    /// The rustls config for this choice of protocols and trust.
    pub fn tls_config(&self) -> rustls::ClientConfig {
        let alpn: &[&[u8]] = if self.http2 {
            &[ALPN_H2, ALPN_HTTP1]
        } else {
            &[ALPN_HTTP1]
        };
        client_config(alpn, self.insecure, &self.trusted)
    }

    /// A reqwest client for this choice. Each has its own connection pool:
    /// over HTTP/2 its requests share one connection, as a browser tab's do.
    pub fn http_client(&self) -> reqwest::Client {
        self.http_builder()
            .build()
            .expect("a client with a preconfigured TLS backend builds")
    }

    /// The builder of [`Self::http_client`], for a client that needs more
    /// (a name resolved to a chosen address, say).
    pub fn http_builder(&self) -> reqwest::ClientBuilder {
        let builder = http_builder_with(self.tls_config());
        match self.http2 {
            true => builder,
            false => builder.http1_only(),
        }
    }
}

/// A reqwest client builder on this crate's TLS (rustls on ring, trusting
/// nothing by default). Use it, or [`Connect::http_client`], instead of
/// `reqwest::Client::new()`/`builder()`/`reqwest::get`: without a crypto
/// provider of its own reqwest panics when building a client (clippy.toml
/// refuses those calls).
pub fn http_builder() -> reqwest::ClientBuilder {
    http_builder_with(Connect::default().tls_config())
}

fn http_builder_with(config: rustls::ClientConfig) -> reqwest::ClientBuilder {
    #[allow(clippy::disallowed_methods)]
    reqwest::Client::builder().tls_backend_preconfigured(config)
}

/// `GET url` with a fresh default client, for tests and one-off reads
/// (what `reqwest::get` does, on this crate's TLS).
pub async fn get(url: &str) -> reqwest::Result<reqwest::Response> {
    http_builder().build()?.get(url).send().await
}
