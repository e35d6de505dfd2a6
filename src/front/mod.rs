//! The TLS front door, `redwarden-front`: rustls on the public port, HTTP/1.1 to Node-RED on
//! 127.0.0.1. It runs as its own user, apart from Node-RED, because it alone holds the private
//! key and Node-RED runs whatever code its flows contain.
//!
//! Under systemd a socket unit passes the listening socket (LISTEN_FDS: the TLS socket first,
//! an optional plain-HTTP one second), so port 443 needs no capability; otherwise it binds
//! `front.listen` (and `front.redirect_port`) itself.

mod cert;
mod idle;
mod proxy;
mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
#[cfg(target_env = "gnu")]
use tokio::sync::Notify;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
pub use cert::fingerprint;
use idle::{Activity, Tracked};

#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("front.enabled is false: set it to true in the configuration to run the front door")]
    Disabled,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Cert { path: PathBuf, message: String },
    #[error("TLS settings: {0}")]
    Tls(rustls::Error),
    #[error(transparent)]
    Fs(#[from] crate::host::fs::FsError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> FrontError {
    move |source| FrontError::Io {
        what: what.into(),
        source,
    }
}

/// Serves until the process is stopped (SIGTERM's default action: open connections simply
/// close, as they would if the process died).
pub fn run(config: &Config) -> Result<(), FrontError> {
    let front = &config.front;
    if !front.enabled {
        return Err(FrontError::Disabled);
    }
    if rustix::process::geteuid().is_root() {
        tracing::warn!("running as root: the front door holds no privilege it needs root for; run it as its own user (redwarden-front.service)");
    }
    // The private key is in this process's memory: no core dumps, no ptrace by the same uid.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| io_err("make the front door non-dumpable")(e.into()))?;
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_err("start the runtime"))?;
    // Taking the sockets unsets LISTEN_FDS in the environment: still a single thread here.
    let (tls_listener, redirect_listener, activated) = {
        let _reactor = runtime.enter();
        listeners(config)?
    };

    let provider = tls::provider();
    let paths = match (&front.cert, &front.key) {
        (Some(cert), Some(key)) => cert::CertPaths {
            cert: cert.as_path().to_path_buf(),
            key: key.as_path().to_path_buf(),
        },
        _ => cert::ensure_self_signed(front.state_dir.as_path())?,
    };
    let certs = Arc::new(cert::Reloading::new(paths, Arc::clone(&provider))?);
    let tls_config = tls::server_config(
        provider,
        certs,
        front.client_cert,
        front.client_ca.as_ref().map(|ca| ca.as_path()),
    )?;
    let shared = Arc::new(Shared {
        acceptor: TlsAcceptor::from(Arc::new(tls_config)),
        policy: Arc::new(proxy::Policy {
            upstream: SocketAddr::from((
                [127, 0, 0, 1],
                front.upstream_port(&config.nodered).get(),
            )),
            client_cert: front.client_cert,
            exempt: front
                .client_cert_exempt
                .iter()
                .map(|p| p.as_str().to_string())
                .collect(),
            idle: Duration::from_secs(front.idle_timeout_secs.into()),
        }),
        header_timeout: Duration::from_secs(front.header_timeout_secs.into()),
        limit: Arc::new(Semaphore::new(front.max_connections as usize)),
        max_connections: front.max_connections,
        #[cfg(target_env = "gnu")]
        burst: Notify::new(),
    });

    runtime.block_on(async move {
        let tls_listener = TcpListener::from_std(tls_listener).map_err(io_err("listen"))?;
        let https_port = tls_listener
            .local_addr()
            .map_err(io_err("read the listening address"))?
            .port();
        tracing::info!(
            "front door on {} ({}), forwarding to Node-RED at {}",
            tls_listener
                .local_addr()
                .map_err(io_err("read the listening address"))?,
            if activated {
                "socket from systemd"
            } else {
                "bound itself"
            },
            shared.policy.upstream
        );
        if let Some(listener) = redirect_listener {
            let listener = TcpListener::from_std(listener).map_err(io_err("listen"))?;
            tracing::info!(
                "redirecting plain HTTP on {} to https",
                listener
                    .local_addr()
                    .map_err(io_err("read the listening address"))?
            );
            tokio::spawn(accept_loop(
                listener,
                Arc::clone(&shared),
                move |tcp, peer, shared, permit| {
                    tokio::spawn(serve_redirect(tcp, peer, shared, permit, https_port));
                },
            ));
        }
        // musl's allocator hands freed pages back by itself (the static builds); glibc's keeps
        // them.
        #[cfg(target_env = "gnu")]
        tokio::spawn(release_memory_after_bursts(Arc::clone(&shared)));
        accept_loop(tls_listener, shared, |tcp, peer, shared, permit| {
            tokio::spawn(serve_tls(tcp, peer, shared, permit));
        })
        .await;
        Ok(())
    })
}

/// What every connection needs.
struct Shared {
    acceptor: TlsAcceptor,
    policy: Arc<proxy::Policy>,
    header_timeout: Duration,
    /// One permit per open connection, shared by both ports.
    limit: Arc<Semaphore>,
    max_connections: u32,
    /// Woken by every accepted connection (glibc builds: see release_memory_after_bursts).
    #[cfg(target_env = "gnu")]
    burst: Notify,
}

/// How long no connection must have come in before the heap is trimmed.
#[cfg(target_env = "gnu")]
const QUIET_BEFORE_TRIM: Duration = Duration::from_secs(5);

/// The buffers of a burst of connections stay in glibc's heap after they close: once no
/// connection has come in for a few seconds, hand the free pages back. Sleeps while idle.
#[cfg(target_env = "gnu")]
async fn release_memory_after_bursts(shared: Arc<Shared>) {
    loop {
        shared.burst.notified().await;
        while tokio::time::timeout(QUIET_BEFORE_TRIM, shared.burst.notified())
            .await
            .is_ok()
        {}
        #[allow(unsafe_code)]
        // SAFETY: malloc_trim takes the allocator's own lock and touches only free chunks.
        unsafe {
            libc::malloc_trim(0)
        };
    }
}

/// A systemd-passed listener (or two), else the configured ones bound here.
fn listeners(
    config: &Config,
) -> Result<(std::net::TcpListener, Option<std::net::TcpListener>, bool), FrontError> {
    let front = &config.front;
    // listenfd also accepts a missing LISTEN_PID; systemd's protocol does not, because a
    // variable inherited by a grandchild would hand it sockets that are not its own.
    let for_us = std::env::var("LISTEN_PID").is_ok_and(|pid| {
        pid.parse::<i32>() == Ok(rustix::process::getpid().as_raw_nonzero().get())
    });
    if for_us {
        let mut fds = listenfd::ListenFd::from_env();
        let mut take = |index| {
            fds.take_tcp_listener(index).map_err(io_err(format!(
                "use the socket passed by systemd (fd {})",
                3 + index
            )))
        };
        if let Some(tls) = take(0)? {
            let redirect = take(1)?;
            for listener in std::iter::once(&tls).chain(redirect.as_ref()) {
                listener
                    .set_nonblocking(true)
                    .map_err(io_err("use the socket passed by systemd"))?;
            }
            return Ok((tls, redirect, true));
        }
    }
    let tls = bind(front.listen.get())?;
    let redirect = front
        .redirect_port
        .map(|port| bind(SocketAddr::new(front.listen.get().ip(), port.get())))
        .transpose()?;
    Ok((tls, redirect, false))
}

/// A listening socket with a backlog deep enough for a burst of browsers (std's is 128).
fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, FrontError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    let what = format!("listen on {addr}");
    let socket = socket.map_err(io_err(what.clone()))?;
    socket.set_reuseaddr(true).map_err(io_err(what.clone()))?;
    socket.bind(addr).map_err(io_err(what.clone()))?;
    let listener = socket.listen(1024).map_err(io_err(what.clone()))?;
    listener.into_std().map_err(io_err(what))
}

/// Each connection is a descriptor, and an upstream one for each that sends a request: systemd
/// leaves the soft limit at 1024 and the hard one far above.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!("could not raise the open files limit: {e}");
        }
    }
}

/// Accepts while fewer than max_connections are open; the rest wait in the kernel's queue.
async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    serve: impl Fn(TcpStream, SocketAddr, Arc<Shared>, OwnedSemaphorePermit),
) {
    let mut was_full = false;
    loop {
        // Said once when the limit is reached, not once per connection while it stays there.
        let full = shared.limit.available_permits() == 0;
        if full && !was_full {
            tracing::warn!(
                "{} connections open (front.max_connections): new ones wait",
                shared.max_connections
            );
        }
        was_full = full;
        let Ok(permit) = Arc::clone(&shared.limit).acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((tcp, peer)) => {
                #[cfg(target_env = "gnu")]
                shared.burst.notify_one();
                let _ = tcp.set_nodelay(true);
                let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                serve(tcp, peer, Arc::clone(&shared), permit);
            }
            Err(e) => {
                // Out of descriptors or memory: give closing connections a moment.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_tls(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
) {
    let activity = Activity::new();
    let handshake = shared
        .acceptor
        .accept(Tracked::new(tcp, Arc::clone(&activity)));
    let tls = match tokio::time::timeout(shared.header_timeout, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::warn!("TLS handshake with {peer} failed: {}", handshake_error(&e));
            return;
        }
        Err(_) => {
            tracing::info!(
                "TLS handshake with {peer} not done within {} s: closed",
                shared.header_timeout.as_secs()
            );
            return;
        }
    };
    let conn = Arc::new(proxy::Conn {
        policy: Arc::clone(&shared.policy),
        peer,
        forwarded_for: proxy::forwarded_for(peer.ip()),
        has_client_cert: tls.get_ref().1.peer_certificates().is_some(),
        activity: Arc::clone(&activity),
        _permit: permit,
        upstream: Mutex::new(None),
    });
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.header_timeout)
        // rustls turns each write into records: head and body in one buffer make one record,
        // without the list of slices a vectored write makes it build (2.6% fewer instructions
        // per request in front of a fast upstream).
        .writev(false)
        .serve_connection(
            TokioIo::new(tls),
            service_fn(move |req| proxy::forward(Arc::clone(&conn), req)),
        )
        .with_upgrades();
    serve_http(http, peer, &activity, &shared).await;
}

/// Runs one HTTP connection until it ends or idles out, saying why it ended when that is news.
async fn serve_http(
    http: impl std::future::Future<Output = hyper::Result<()>>,
    peer: SocketAddr,
    activity: &Activity,
    shared: &Shared,
) {
    tokio::select! {
        served = http => match served {
            Err(e) if e.is_timeout() => tracing::info!(
                "{peer}: request headers not complete within {} s: closed",
                shared.header_timeout.as_secs()
            ),
            Err(e) => tracing::debug!("{peer}: {e}"),
            Ok(()) => {}
        },
        () = activity.idle_for(shared.policy.idle) => {
            tracing::debug!("{peer}: idle for {} s: closed", shared.policy.idle.as_secs());
        }
    }
}

async fn serve_redirect(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
    https_port: u16,
) {
    let activity = Activity::new();
    let http = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.header_timeout)
        .serve_connection(
            TokioIo::new(Tracked::new(tcp, Arc::clone(&activity))),
            service_fn(move |req| async move {
                Ok::<_, std::convert::Infallible>(proxy::redirect(&req, https_port))
            }),
        );
    serve_http(http, peer, &activity, &shared).await;
}

/// rustls's words for the common failures, in the words of the person reading the log.
fn handshake_error(e: &std::io::Error) -> String {
    use rustls::{Error, InvalidMessage};
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(Error::InvalidMessage(InvalidMessage::InvalidContentType)) => {
            "not TLS (plain HTTP sent to the TLS port?)".into()
        }
        Some(Error::PeerIncompatible(why)) => {
            format!("the client offers no TLS version, suite or signature scheme allowed here ({why:?})")
        }
        Some(Error::NoCertificatesPresented) => {
            "no client certificate (front.client_cert = \"all\")".into()
        }
        Some(Error::InvalidCertificate(why)) => format!("client certificate refused: {why:?}"),
        _ => e.to_string(),
    }
}
