//! The front door's certificate: PEM files from the configuration, or a self-signed one made at
//! first start, served through a resolver that notices when the files are replaced.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::FrontError;

/// A certificate chain file and its private key file.
#[derive(Debug, Clone)]
pub struct CertPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The self-signed pair in `state_dir`, created (key 0600) when either file is missing.
pub fn ensure_self_signed(state_dir: &Path) -> Result<CertPaths, FrontError> {
    let paths = CertPaths {
        cert: state_dir.join("cert.pem"),
        key: state_dir.join("key.pem"),
    };
    if paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    let (uid, gid) = crate::host::fs::own_ids();
    if !state_dir.exists() {
        crate::host::fs::create_dir(state_dir, 0o700, uid, gid)?;
    }
    let names = device_names();
    let (cert_pem, key_pem) = self_signed(&names).map_err(|e| FrontError::Cert {
        path: paths.cert.clone(),
        message: format!("creating a self-signed certificate: {e}"),
    })?;
    // The key first: a crash between the two writes leaves no certificate, so the next start
    // makes a new pair instead of serving a certificate whose key is gone.
    crate::host::fs::write_file(&paths.key, key_pem.as_bytes(), 0o600, uid, gid)?;
    crate::host::fs::write_file(&paths.cert, cert_pem.as_bytes(), 0o644, uid, gid)?;
    tracing::info!(
        "created a self-signed certificate {} for {}",
        paths.cert.display(),
        names.join(", ")
    );
    Ok(paths)
}

/// A self-signed certificate (ECDSA P-256: cheap handshakes on small boards) and its key, PEM.
fn self_signed(names: &[String]) -> Result<(String, String), rcgen::Error> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    // A day back for clients whose clocks run behind; ten years, because nothing renews it.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The names a browser may use for this device: its hostname, hostname.local (mDNS),
/// localhost, and its addresses.
fn device_names() -> Vec<String> {
    let hostname = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let mut names = Vec::new();
    if !hostname.is_empty() && hostname != "localhost" {
        names.push(hostname.clone());
        if !hostname.contains('.') {
            names.push(format!("{hostname}.local"));
        }
    }
    names.push("localhost".into());
    let mut addresses = local_addresses();
    addresses.sort();
    addresses.dedup();
    names.extend(addresses.iter().map(IpAddr::to_string));
    names
}

/// This machine's IPv4 addresses (the kernel's local routes) and global IPv6 addresses, read
/// from /proc: libc's getifaddrs would need unsafe code.
fn local_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    // In fib_trie each address is a `|-- a.b.c.d` line, followed by `/32 host LOCAL` when the
    // address is one of this machine's.
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut last = None;
    for line in trie.lines() {
        let line = line.trim_start();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.parse::<std::net::Ipv4Addr>().ok();
        } else if line.starts_with("/32 host LOCAL") {
            found.extend(last.take().map(IpAddr::V4));
        }
    }
    // Each line: 32 hex digits, ifindex, prefix length, scope (0 = global), flags, name.
    let if_inet6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    for line in if_inet6.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let scope_global_or_host = fields
            .get(3)
            .is_some_and(|scope| *scope == "00" || *scope == "10");
        if let (Some(hex), true) = (fields.first(), scope_global_or_host) {
            if let Ok(bits) = u128::from_str_radix(hex, 16) {
                found.push(IpAddr::V6(bits.into()));
            }
        }
    }
    found
}

/// `AA:BB:…`: the SHA-256 of the certificate, as browsers show it.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Reads and checks a pair: the chain parses, the key parses, and the key is the chain's.
pub fn load(paths: &CertPaths, provider: &CryptoProvider) -> Result<CertifiedKey, FrontError> {
    let cert_error = |message: String| FrontError::Cert {
        path: paths.cert.clone(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(&paths.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error("no CERTIFICATE block in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&paths.key).map_err(|e| FrontError::Cert {
        path: paths.key.clone(),
        message: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| FrontError::Cert {
        path: paths.key.clone(),
        message: format!("does not fit {}: {e}", paths.cert.display()),
    })
}

/// What identifies a file's version: device, inode, size and modification time. A rename over
/// the file changes the inode, an in-place rewrite the time.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// Serves the current pair and picks up replaced files, for new handshakes only: connections
/// already open keep the session they have.
#[derive(Debug)]
pub struct Reloading {
    paths: CertPaths,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    checked: Instant,
    stamps: [Stamp; 2],
    current: Arc<CertifiedKey>,
}

/// How often the files are looked at, at most: a stat of two files per second is nothing,
/// one per handshake would be waste.
const RECHECK: Duration = Duration::from_secs(1);

impl Reloading {
    pub fn new(paths: CertPaths, provider: Arc<CryptoProvider>) -> Result<Self, FrontError> {
        let stamps = [stamp(&paths.cert), stamp(&paths.key)];
        let current = load(&paths, &provider)?;
        log_loaded(&paths, &current, "serving");
        Ok(Self {
            paths,
            provider,
            state: Mutex::new(State {
                checked: Instant::now(),
                stamps,
                current: Arc::new(current),
            }),
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            let stamps = [stamp(&self.paths.cert), stamp(&self.paths.key)];
            if stamps != state.stamps {
                // Kept even when loading fails, so a broken pair is reported once, not every
                // second; the next change of either file is tried again.
                state.stamps = stamps;
                match load(&self.paths, &self.provider) {
                    Ok(new) => {
                        log_loaded(&self.paths, &new, "replaced: now serving");
                        state.current = Arc::new(new);
                    }
                    Err(e) => tracing::warn!(
                        "certificate not replaced, still serving the previous one: {e}"
                    ),
                }
            }
        }
        Arc::clone(&state.current)
    }
}

fn log_loaded(paths: &CertPaths, key: &CertifiedKey, what: &str) {
    tracing::info!(
        "certificate {what} {} (SHA-256 {})",
        paths.cert.display(),
        key.end_entity_cert().map(fingerprint).unwrap_or_default()
    );
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(&paths.key) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "{}: the private key is readable by others than its owner (mode {:04o}); make it 0600",
                paths.key.display(),
                meta.permissions().mode() & 0o7777
            );
        }
    }
}

impl ResolvesServerCert for Reloading {
    // Runs on the runtime's thread during a handshake: the once-a-second stat and, rarely, the
    // read of two small files are cheaper than handing them to another thread.
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_certificate_loads_and_names_this_device() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let paths = ensure_self_signed(&state).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&paths.key), 0o600);
        assert_eq!(mode(&state), 0o700);
        let provider = rustls::crypto::ring::default_provider();
        let loaded = load(&paths, &provider).unwrap();
        let first = fingerprint(loaded.end_entity_cert().unwrap());
        assert_eq!(first.len(), 32 * 3 - 1);
        // A second start keeps the pair.
        let again = ensure_self_signed(&state).unwrap();
        let reloaded = load(&again, &provider).unwrap();
        assert_eq!(fingerprint(reloaded.end_entity_cert().unwrap()), first);
        assert!(device_names().contains(&"localhost".to_string()));
        assert!(local_addresses().contains(&IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = ensure_self_signed(&dir.path().join("a")).unwrap();
        let b = ensure_self_signed(&dir.path().join("b")).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let mixed = CertPaths {
            cert: a.cert.clone(),
            key: b.key.clone(),
        };
        let err = load(&mixed, &provider).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: does not fit", b.key.display())),
            "{err}"
        );
        std::fs::write(&a.cert, "not a certificate\n").unwrap();
        let err = load(&a, &provider).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: no CERTIFICATE", a.cert.display())),
            "{err}"
        );
    }
}
