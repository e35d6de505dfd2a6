//! The liveness probe. Any HTTP answer proves Node-RED's event loop turns; a TCP connect only
//! proves the port is open, because the kernel completes the handshake even for a frozen
//! process.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::ProbeTarget;

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}: no answer within {1:?}")]
    Timeout(SocketAddr, Duration),
    #[error("{0}: {1}")]
    Io(SocketAddr, std::io::Error),
    #[error("{0}: not an HTTP answer: {1:?}")]
    NotHttp(SocketAddr, String),
    #[error("probe host `{0}` is not an address (use an IP address or localhost)")]
    Host(String),
}

/// Where and how to probe, resolved once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prober {
    address: SocketAddr,
    /// The request line's path; None for a bare TCP connect.
    http_path: Option<String>,
    host_header: String,
}

impl Prober {
    pub fn new(target: &ProbeTarget, nodered_port: u16) -> Result<Self, ProbeError> {
        Ok(match target {
            ProbeTarget::Tcp => Self {
                address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), nodered_port),
                http_path: None,
                host_header: String::new(),
            },
            ProbeTarget::Http { host, port, path } => {
                // No name lookups: they would need a thread, and a probe must not depend on DNS.
                let ip = match host.as_str() {
                    "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    other => other
                        .parse()
                        .map_err(|_| ProbeError::Host(other.to_string()))?,
                };
                let port = port.unwrap_or(nodered_port);
                Self {
                    address: SocketAddr::new(ip, port),
                    http_path: Some(path.clone()),
                    host_header: format!("{host}:{port}"),
                }
            }
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// One probe; on success, how long the answer took.
    pub async fn probe(&self, timeout: Duration) -> Result<Duration, ProbeError> {
        let started = Instant::now();
        tokio::time::timeout(timeout, self.attempt())
            .await
            .map_err(|_| ProbeError::Timeout(self.address, timeout))??;
        Ok(started.elapsed())
    }

    async fn attempt(&self) -> Result<(), ProbeError> {
        let io = |e| ProbeError::Io(self.address, e);
        let mut stream = TcpStream::connect(self.address).await.map_err(io)?;
        let Some(path) = &self.http_path else {
            return Ok(());
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: redwarden-probe\r\nConnection: close\r\n\r\n",
            self.host_header
        );
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        let mut answer = Vec::with_capacity(64);
        let mut buf = [0u8; 64];
        while !answer.contains(&b'\n') && answer.len() < 512 {
            let n = stream.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&answer);
        let line = line.lines().next().unwrap_or_default();
        if status_code(line).is_some() {
            Ok(())
        } else {
            Err(ProbeError::NotHttp(self.address, line.to_string()))
        }
    }
}

/// The status code of an HTTP/1.x status line.
fn status_code(line: &str) -> Option<u16> {
    let mut words = line.split(' ');
    let version = words.next()?;
    let code = words.next()?;
    (version.starts_with("HTTP/1.") && code.len() == 3)
        .then(|| code.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_code("HTTP/1.1 200 OK"), Some(200));
        assert_eq!(status_code("HTTP/1.0 404 Not Found"), Some(404));
        assert_eq!(status_code("SSH-2.0-OpenSSH"), None);
        assert_eq!(status_code(""), None);
        assert_eq!(status_code("HTTP/1.1 20 OK"), None);
    }

    /// A listener that answers each connection with `answer`, or never when it is None.
    fn server(answer: Option<&'static [u8]>) -> (std::net::TcpListener, u16) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepting = listener.try_clone().unwrap();
        std::thread::spawn(move || {
            for stream in accepting.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                match answer {
                    Some(bytes) => {
                        let _ = stream.write_all(bytes);
                    }
                    // Hold the connection open without a word, as a hung event loop does.
                    None => std::thread::sleep(Duration::from_secs(5)),
                }
            }
        });
        (listener, port)
    }

    #[test]
    fn any_http_answer_is_alive_silence_and_garbage_are_not() {
        let rt = runtime();
        let target = ProbeTarget::Http {
            host: "127.0.0.1".into(),
            port: None,
            path: "/auth/login".into(),
        };
        let (_a, ok) = server(Some(b"HTTP/1.1 404 Not Found\r\n\r\n"));
        let prober = Prober::new(&target, ok).unwrap();
        assert!(rt.block_on(prober.probe(Duration::from_secs(2))).is_ok());

        let (_b, silent) = server(None);
        let prober = Prober::new(&target, silent).unwrap();
        let err = rt
            .block_on(prober.probe(Duration::from_millis(300)))
            .unwrap_err();
        assert!(matches!(err, ProbeError::Timeout(..)), "{err}");
        // A frozen process still completes the TCP handshake: a tcp probe cannot see a hang.
        let tcp = Prober::new(&ProbeTarget::Tcp, silent).unwrap();
        assert!(rt.block_on(tcp.probe(Duration::from_millis(300))).is_ok());

        let (_c, garbage) = server(Some(b"SSH-2.0-x\r\n"));
        let prober = Prober::new(&target, garbage).unwrap();
        assert!(matches!(
            rt.block_on(prober.probe(Duration::from_secs(2))),
            Err(ProbeError::NotHttp(..))
        ));
    }

    #[test]
    fn a_closed_port_fails_fast() {
        let rt = runtime();
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let prober = Prober::new(&ProbeTarget::Tcp, port).unwrap();
        assert!(matches!(
            rt.block_on(prober.probe(Duration::from_secs(2))),
            Err(ProbeError::Io(..))
        ));
    }

    #[test]
    fn host_names_other_than_localhost_are_refused() {
        let target = ProbeTarget::Http {
            host: "example.org".into(),
            port: Some(80),
            path: "/".into(),
        };
        assert!(matches!(
            Prober::new(&target, 1880),
            Err(ProbeError::Host(_))
        ));
    }
}
