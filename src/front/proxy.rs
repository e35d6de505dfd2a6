//! HTTP/1.1 forwarding to Node-RED on loopback: one upstream connection per client connection,
//! reused for its keep-alive requests, bodies streamed both ways, WebSocket upgrades tunnelled.
//!
//! hyper rather than a hand-written forwarder: request smuggling lives in the corners of
//! HTTP/1.1 framing (chunked extensions, duplicate Content-Length, obs-fold, pipelining), and
//! hyper's parser is fuzzed and used at a scale no hand-written one here would be. With only its
//! http1 server and client features it adds little code and keeps a connection in a few KiB.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::sync::OwnedSemaphorePermit;

use super::idle::Activity;
use crate::config::ClientCert;

/// What Node-RED's answers stream through, or the front door's own short answers.
pub type Body = Either<Incoming, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The settings every connection shares.
#[derive(Debug)]
pub struct Policy {
    pub upstream: SocketAddr,
    pub client_cert: ClientCert,
    pub exempt: Vec<String>,
    pub idle: Duration,
}

/// One client connection, as its requests see it.
pub struct Conn {
    pub policy: Arc<Policy>,
    pub peer: SocketAddr,
    /// The peer's address as X-Forwarded-For says it.
    pub forwarded_for: HeaderValue,
    pub has_client_cert: bool,
    pub activity: Arc<Activity>,
    /// Held until the connection and any WebSocket tunnel it became are gone.
    pub _permit: OwnedSemaphorePermit,
    pub upstream: Mutex<Option<SendRequest<Incoming>>>,
}

pub async fn forward(
    conn: Arc<Conn>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let policy = &conn.policy;
    if policy.client_cert == ClientCert::Admin
        && !conn.has_client_cert
        && !exempt(req.uri().path(), &policy.exempt)
    {
        tracing::warn!(
            "{}: refused {} {}: no client certificate",
            conn.peer,
            req.method(),
            req.uri().path()
        );
        return Ok(plain(
            StatusCode::FORBIDDEN,
            "a client certificate is required\n",
        ));
    }
    let upgrade = upgrade_protocol(req.headers());
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    prepare_request(&mut parts, &conn.forwarded_for, upgrade);
    let mut response = match conn.send(Request::from_parts(parts, body)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::warn!(
                "{}: Node-RED at {} did not answer: {e}",
                conn.peer,
                policy.upstream
            );
            return Ok(plain(
                StatusCode::BAD_GATEWAY,
                "Node-RED is not answering\n",
            ));
        }
    };
    match client_upgrade {
        Some(client) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
            let upstream = hyper::upgrade::on(&mut response);
            tokio::spawn(tunnel(client, upstream, Arc::clone(&conn)));
        }
        _ => strip_hop_by_hop(response.headers_mut()),
    }
    Ok(response.map(Either::Left))
}

impl Conn {
    /// Sends on this connection's upstream connection, or on a new one when it is closed or
    /// Node-RED closed it before taking the request.
    async fn send(&self, req: Request<Incoming>) -> Result<Response<Incoming>, BoxError> {
        let mut req = req;
        let cached = self.take_upstream();
        if let Some(mut sender) = cached {
            if sender.ready().await.is_ok() {
                match sender.try_send_request(req).await {
                    Ok(response) => {
                        self.keep_upstream(sender);
                        return Ok(response);
                    }
                    Err(mut e) => match e.take_message() {
                        Some(unsent) => req = unsent,
                        None => return Err(e.into_error().into()),
                    },
                }
            }
        }
        let mut sender = self.connect().await?;
        let response = sender.send_request(req).await?;
        self.keep_upstream(sender);
        Ok(response)
    }

    fn take_upstream(&self) -> Option<SendRequest<Incoming>> {
        self.upstream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn keep_upstream(&self, sender: SendRequest<Incoming>) {
        *self.upstream.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
    }

    async fn connect(&self) -> Result<SendRequest<Incoming>, BoxError> {
        let tcp = tokio::net::TcpStream::connect(self.policy.upstream).await?;
        tcp.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(tcp))
            .await?;
        let peer = self.peer;
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!("{peer}: upstream connection: {e}");
            }
        });
        Ok(sender)
    }
}

/// Copies a WebSocket (or any upgraded protocol) both ways until either side closes or it
/// idles out.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    conn: Arc<Conn>,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!("{}: upgrade failed: {e}", conn.peer);
            return;
        }
    };
    let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = copied {
                tracing::debug!("{}: tunnel closed: {e}", conn.peer);
            }
        }
        () = conn.activity.idle_for(conn.policy.idle) => {
            tracing::debug!("{}: tunnel idle for {} s: closed", conn.peer, conn.policy.idle.as_secs());
        }
    }
}

/// The Upgrade header's value when the request asks to switch protocols.
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    tokens(headers.get_all(header::CONNECTION))
        .any(|token| token.eq_ignore_ascii_case("upgrade"))
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

fn tokens<'a>(values: impl IntoIterator<Item = &'a HeaderValue>) -> impl Iterator<Item = &'a str> {
    values
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The headers that apply to one hop only (RFC 9110 7.6.1), besides those that Connection
/// names: hyper frames each side itself.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Whether a header says who the client is: only the front door may set these, so a client
/// cannot make Node-RED (or a flow's rate limit) believe it comes from elsewhere. Expect too:
/// the front door answers `Expect: 100-continue` itself when it starts reading the body.
fn client_identity_or_expect(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "x-forwarded-port"
            | "x-real-ip"
            | "expect"
    )
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    remove_headers(headers, |_| false);
}

/// Removes the hop-by-hop headers and those `also` picks, in one pass over the names present:
/// most messages carry none of them, and removing by name costs a hash lookup per name, which
/// in front of a fast upstream was 13% of the front door's own instructions per request.
fn remove_headers(headers: &mut HeaderMap, also: fn(&HeaderName) -> bool) {
    // Connection almost always names only keep-alive or upgrade, which are hop-by-hop anyway:
    // its other names are read once, not once per header present (that was 1.1% of the
    // shipped build's instructions per request in front of a fast upstream).
    let named_by_connection: Vec<&str> = tokens(headers.get_all(header::CONNECTION))
        .filter(|token| !HOP_BY_HOP.iter().any(|hop| token.eq_ignore_ascii_case(hop)))
        .collect();
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            HOP_BY_HOP.contains(&name.as_str())
                || also(name)
                || named_by_connection
                    .iter()
                    .any(|token| token.eq_ignore_ascii_case(name.as_str()))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The X-Forwarded-For value for a client address, made once per connection.
pub fn forwarded_for(peer: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.to_canonical().to_string())
        .expect("an IP address is written in digits, hex letters, dots and colons")
}

fn prepare_request(parts: &mut Parts, forwarded_for: &HeaderValue, upgrade: Option<HeaderValue>) {
    let headers = &mut parts.headers;
    // A request in absolute form (`GET https://host/path`) names its host only in the URI.
    if !headers.contains_key(header::HOST) {
        if let Some(host) = parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            headers.insert(header::HOST, host);
        }
    }
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
    parts.version = Version::HTTP_11;
    parts.extensions = hyper::http::Extensions::new();
    remove_headers(headers, client_identity_or_expect);
    headers.insert(X_FORWARDED_FOR, forwarded_for.clone());
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    if let Some(protocol) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol);
    }
}

/// Whether `path` is under one of the prefixes. A path with dot segments, `%` or `\` is never
/// exempt: a server that normalises it could land outside the prefix (`/ui/../flows`).
fn exempt(path: &str, prefixes: &[String]) -> bool {
    let odd = path.contains(['%', '\\'])
        || path
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    !odd && prefixes.iter().any(|prefix| {
        path.strip_prefix(prefix.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

pub fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    ))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The plain-HTTP port's only answer: the same URL on https.
pub fn redirect(req: &Request<Incoming>, https_port: u16) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .and_then(host_name);
    let Some(host) = host else {
        return plain(StatusCode::BAD_REQUEST, "the request names no valid Host\n");
    };
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    match HeaderValue::from_str(&format!("https://{host}{port}{path}")) {
        Ok(location) => {
            let mut response = plain(StatusCode::MOVED_PERMANENTLY, "use https\n");
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => plain(StatusCode::BAD_REQUEST, "the request target is not valid\n"),
    }
}

/// The host part of a Host header (`name`, `name:port`, `[v6]:port`), if it is a plausible
/// host name or address.
fn host_name(host: &str) -> Option<&str> {
    let name = match host.strip_prefix('[') {
        Some(rest) => &host[..rest.find(']')? + 2],
        None => host.split(':').next()?,
    };
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b));
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().uri("https://device.local:8443/flows?x=1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn client_identity_headers_are_replaced_and_hop_headers_dropped() {
        let mut p = parts(&[
            ("x-forwarded-for", "10.9.9.9"),
            ("X-Forwarded-Proto", "http"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("expect", "100-continue"),
            ("cookie", "a=b"),
        ]);
        prepare_request(&mut p, &forwarded_for(IpAddr::from([192, 168, 1, 7])), None);
        let get = |name: &str| {
            p.headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-forwarded-for"), ["192.168.1.7"]);
        assert_eq!(get("x-forwarded-proto"), ["https"]);
        for gone in [
            "forwarded",
            "x-real-ip",
            "connection",
            "x-secret",
            "te",
            "transfer-encoding",
            "expect",
        ] {
            assert!(get(gone).is_empty(), "{gone} was forwarded");
        }
        assert_eq!(get("cookie"), ["a=b"]);
        assert_eq!(get("host"), ["device.local:8443"]);
        assert_eq!(p.uri.to_string(), "/flows?x=1");
    }

    #[test]
    fn a_response_loses_its_hop_headers_and_those_connection_names_in_any_case() {
        let mut headers = parts(&[
            ("connection", "Close, X-Trace"),
            ("x-trace", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ])
        .headers;
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<_> = headers.iter().map(|(n, v)| format!("{n}: {v:?}")).collect();
        left.sort();
        assert_eq!(
            left,
            [
                "content-type: \"text/plain\"",
                "set-cookie: \"a=1\"",
                "set-cookie: \"b=2\""
            ]
        );
    }

    #[test]
    fn a_websocket_upgrade_keeps_its_headers_and_a_mapped_address_is_plain() {
        let mut p = parts(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        let upgrade = upgrade_protocol(&p.headers);
        assert_eq!(upgrade, Some(HeaderValue::from_static("websocket")));
        prepare_request(
            &mut p,
            &forwarded_for("::ffff:10.0.0.2".parse().unwrap()),
            upgrade,
        );
        assert_eq!(p.headers["connection"], "upgrade");
        assert_eq!(p.headers["upgrade"], "websocket");
        assert!(p.headers.contains_key("sec-websocket-key"));
        assert_eq!(p.headers["x-forwarded-for"], "10.0.0.2");
        assert_eq!(
            upgrade_protocol(&parts(&[("upgrade", "websocket")]).headers),
            None
        );
    }

    #[test]
    fn exempt_paths_match_whole_segments_and_refuse_tricks() {
        let prefixes = vec!["/ui".to_string(), "/api/v1".to_string()];
        for (path, expected) in [
            ("/ui", true),
            ("/ui/", true),
            ("/ui/socket.io/", true),
            ("/api/v1/temp", true),
            ("/uix", false),
            ("/", false),
            ("/flows", false),
            ("/ui/../flows", false),
            ("/ui/./x", false),
            ("/ui/%2e%2e/flows", false),
            ("/ui\\..\\flows", false),
            ("/api/v2", false),
        ] {
            assert_eq!(exempt(path, &prefixes), expected, "{path}");
        }
    }

    #[test]
    fn host_names_for_the_redirect() {
        assert_eq!(host_name("pi.local:8080"), Some("pi.local"));
        assert_eq!(host_name("[fe80::1]:80"), Some("[fe80::1]"));
        assert_eq!(host_name("10.0.0.1"), Some("10.0.0.1"));
        assert_eq!(host_name("evil/x"), None);
        assert_eq!(host_name("a b"), None);
        assert_eq!(host_name(""), None);
        assert_eq!(host_name("[::1"), None);
    }
}
