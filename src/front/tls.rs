//! The TLS policy: TLS 1.2 and 1.3 only, AEAD suites with forward secrecy only, HTTP/1.1 by
//! ALPN, and client certificates from one CA when configured.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::{ResolvesServerCert, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::ServerConfig;

use super::FrontError;
use crate::config::ClientCert;

/// The ring provider, restricted to the suites a 2025 browser, curl or Node.js negotiates.
/// ring has no CBC or RSA key exchange suites anyway; naming them keeps a future rustls from
/// adding one silently.
pub fn provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite::*;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ],
        ..ring::default_provider()
    })
}

/// For TLS 1.2 clients that take no tickets: one entry each, and each stays in memory until
/// pushed out.
const RESUMABLE_SESSIONS: usize = 24;

pub fn server_config(
    provider: Arc<CryptoProvider>,
    certs: Arc<dyn ResolvesServerCert>,
    client_cert: ClientCert,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, FrontError> {
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(FrontError::Tls)?;
    let builder = match (client_cert, client_ca) {
        (ClientCert::Off, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(ca)) => {
            let mut roots = rustls::RootCertStore::empty();
            let ca_error = |message: String| FrontError::Cert {
                path: ca.to_path_buf(),
                message,
            };
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| ca_error(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| ca_error(e.to_string()))?)
                    .map_err(|e| ca_error(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(ca_error("no CERTIFICATE block in the file".into()));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            // In admin mode a client without a certificate gets through the handshake and is
            // refused per path; a certificate it does show must still be the CA's.
            let verifier = match mode {
                ClientCert::Admin => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| ca_error(format!("unusable as client CA: {e}")))?,
            )
        }
    };
    let mut config = builder.with_cert_resolver(certs);
    // The proxy speaks HTTP/1.1 only; saying so stops a client from trying h2 on it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Sessions resume from tickets the clients keep (encrypted with keys that rotate every
    // six hours), so any number of browsers resume and the front door stores nothing per
    // session. The cache is for TLS 1.2 clients that do not take tickets.
    config.ticketer = ring::Ticketer::new().map_err(FrontError::Tls)?;
    config.session_storage = ServerSessionMemoryCache::new(RESUMABLE_SESSIONS);
    Ok(config)
}
