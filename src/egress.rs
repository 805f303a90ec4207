//! The egress proxy: the way out for programs that do their own networking (yt-dlp).
//!
//! A filtering HTTP proxy bound to loopback for the life of the process. It takes `CONNECT
//! host:port` (https, tunnelled) and absolute-form requests (`GET http://host/…`), resolves
//! each destination itself, checks every address with the native fetcher's rules
//! (`fetch_allow_private`, `fetch_allow_ips`), and connects to an address it checked, so a
//! second lookup cannot hand the program another address (no DNS rebinding). Stripe's
//! smokescreen is the model.
//!
//! With `fetch.proxy` (an `http://` proxy), connections are handed to that proxy instead
//! (`CONNECT` for tunnels, absolute-form requests as they are); as for the native fetcher,
//! only literal hosts can be checked then, since that proxy resolves names.
//!
//! Each run of a program gets a [`Session`]: a random token sent as the proxy credential
//! (`http://musicd:<token>@127.0.0.1:<port>`). Requests without a live token are refused
//! (407), and every refusal is recorded on the session, so the job can fail with
//! `blocked_address` naming what was refused even when the program only said "403".

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// How long a destination may take to resolve and accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a client may take to send a request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

type Body = BoxBody<Bytes, hyper::Error>;

/// Which destinations are allowed: the native fetcher's rules.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// Allow loopback, private and link-local destinations.
    pub allow_private: bool,
    /// Blocked addresses allowed anyway.
    pub allow_ips: Vec<IpAddr>,
    /// The operator's proxy (`fetch.proxy`, `http://` only) to chain to instead of
    /// connecting directly; only literal hosts can be checked then.
    pub upstream: Option<UpstreamProxy>,
}

/// An HTTP proxy that the egress proxy hands connections to.
#[derive(Clone, Debug)]
pub struct UpstreamProxy {
    host: String,
    port: u16,
    /// `Proxy-Authorization` from the URL's user and password.
    auth: Option<hyper::header::HeaderValue>,
}

impl UpstreamProxy {
    /// From `fetch.proxy`; `None` for an empty or non-`http://` URL.
    pub fn parse(raw: &str) -> Option<Self> {
        let url = url::Url::parse(raw).ok()?;
        if url.scheme() != "http" {
            return None;
        }
        let auth = (!url.username().is_empty()).then(|| {
            let pair = format!("{}:{}", url.username(), url.password().unwrap_or_default());
            let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
            hyper::header::HeaderValue::from_str(&format!("Basic {b64}")).ok()
        });
        Some(Self {
            host: url.host_str()?.trim_matches(['[', ']']).to_string(),
            port: url.port_or_known_default()?,
            auth: auth.flatten(),
        })
    }
}

struct Inner {
    rules: Rules,
    /// Refusals recorded per live session token.
    sessions: Mutex<HashMap<String, Vec<String>>>,
}

/// The running proxy. Dropping it stops the listener.
pub struct Egress {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress").field("addr", &self.addr).finish()
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Egress {
    /// Binds `127.0.0.1:0` and serves until dropped.
    pub async fn start(rules: Rules) -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            rules,
            sessions: Mutex::new(HashMap::new()),
        });
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, inner.clone(), stop.clone()));
        tracing::debug!(%addr, "egress proxy listening");
        Ok(Arc::new(Self { addr, inner, stop }))
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A session for one program run; its refusals are kept until it is dropped.
    pub fn session(self: &Arc<Self>) -> Session {
        let token = hex::encode(rand::random::<[u8; 16]>());
        if let Ok(mut s) = self.inner.sessions.lock() {
            s.insert(token.clone(), Vec::new());
        }
        Session {
            egress: self.clone(),
            token,
        }
    }
}

/// One program run's use of the proxy.
pub struct Session {
    egress: Arc<Egress>,
    token: String,
}

impl Session {
    /// The proxy URL to give the program (`--proxy`), with this session's credential.
    pub fn proxy_url(&self) -> String {
        format!("http://musicd:{}@{}", self.token, self.egress.addr)
    }

    /// What the proxy refused for this session so far, one message each.
    pub fn refusals(&self) -> Vec<String> {
        self.egress
            .inner
            .sessions
            .lock()
            .ok()
            .and_then(|s| s.get(&self.token).cloned())
            .unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut s) = self.egress.inner.sessions.lock() {
            s.remove(&self.token);
        }
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("egress proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let inner = inner.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(inner.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                _ = stop.cancelled() => {}
                r = conn => if let Err(e) = r {
                    tracing::debug!("egress proxy connection: {e}");
                },
            }
        });
    }
}

fn text(status: StatusCode, msg: String) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from(msg)).map_err(|e| match e {}).boxed());
    *res.status_mut() = status;
    res
}

/// The session token from `Proxy-Authorization: Basic base64(musicd:<token>)`.
fn session_token(req: &Request<Incoming>) -> Option<String> {
    let v = req
        .headers()
        .get(hyper::header::PROXY_AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let (_, token) = std::str::from_utf8(&raw).ok()?.split_once(':')?;
    Some(token.to_string())
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let known = session_token(&req).filter(|t| {
        inner
            .sessions
            .lock()
            .map(|s| s.contains_key(t))
            .unwrap_or(false)
    });
    let Some(token) = known else {
        let mut res = text(
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            "musicd egress proxy: no valid session credential\n".into(),
        );
        res.headers_mut().insert(
            hyper::header::PROXY_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Basic realm=\"musicd\""),
        );
        return Ok(res);
    };
    let target = match destination(&req) {
        Ok(t) => t,
        Err(msg) => return Ok(text(StatusCode::BAD_REQUEST, format!("{msg}\n"))),
    };
    let tunnel = req.method() == Method::CONNECT;
    let upstream = inner.rules.upstream.as_ref();
    let connected = match upstream {
        None => connect_checked(&inner.rules, &target.0, target.1).await,
        Some(up) => via_upstream(&inner.rules, up, &target.0, target.1, tunnel).await,
    };
    let stream = match connected {
        Ok(s) => s,
        Err(Refused::Blocked(msg)) => {
            tracing::info!("egress refused: {msg}");
            if let Ok(mut s) = inner.sessions.lock()
                && let Some(list) = s.get_mut(&token)
            {
                list.push(msg.clone());
            }
            return Ok(text(StatusCode::FORBIDDEN, format!("{msg}\n")));
        }
        Err(Refused::Unreachable(msg)) => {
            return Ok(text(StatusCode::BAD_GATEWAY, format!("{msg}\n")));
        }
    };
    if tunnel {
        tokio::spawn(async move {
            match hyper::upgrade::on(req).await {
                Ok(upgraded) => {
                    let mut client = TokioIo::new(upgraded);
                    let mut server = stream;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                Err(e) => tracing::debug!("egress tunnel upgrade failed: {e}"),
            }
        });
        return Ok(Response::new(Empty::new().map_err(|e| match e {}).boxed()));
    }
    Ok(forward(req, stream, upstream).await)
}

/// Host and port a request is for: the authority of a `CONNECT`, or the URI of an
/// absolute-form `http` request.
fn destination(req: &Request<Incoming>) -> Result<(String, u16), String> {
    let uri = req.uri();
    if req.method() == Method::CONNECT {
        let a = uri.authority().ok_or("CONNECT needs host:port")?;
        let port = a.port_u16().ok_or("CONNECT needs host:port")?;
        return Ok((a.host().trim_matches(['[', ']']).to_string(), port));
    }
    if uri.scheme_str() != Some("http") {
        return Err("only absolute http:// requests and CONNECT are proxied".into());
    }
    let host = uri.host().ok_or("the request URI has no host")?;
    Ok((
        host.trim_matches(['[', ']']).to_string(),
        uri.port_u16().unwrap_or(80),
    ))
}

enum Refused {
    /// The guard refused every address.
    Blocked(String),
    /// Resolution or connection failed.
    Unreachable(String),
}

/// Resolves `host` once, drops refused addresses, and connects to the first that answers.
async fn connect_checked(rules: &Rules, host: &str, port: u16) -> Result<TcpStream, Refused> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            let lookup = tokio::net::lookup_host((host, port));
            match tokio::time::timeout(CONNECT_TIMEOUT, lookup).await {
                Ok(Ok(a)) => a.collect(),
                Ok(Err(e)) => {
                    return Err(Refused::Unreachable(format!("cannot resolve {host}: {e}")));
                }
                Err(_) => return Err(Refused::Unreachable(format!("resolving {host} timed out"))),
            }
        }
    };
    let refuses =
        |ip: IpAddr| musicd_media::fetch::refuses(ip, rules.allow_private, &rules.allow_ips);
    let (blocked, allowed): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.into_iter().partition(|a| refuses(a.ip()));
    if allowed.is_empty() {
        return Err(match blocked.first() {
            Some(a) => Refused::Blocked(format!(
                "{host} resolves to {}, a loopback, private or link-local address: refused \
                 (MUSICD_FETCH_ALLOW_PRIVATE or fetch_allow_ips allows it)",
                a.ip()
            )),
            None => Refused::Unreachable(format!("{host} has no address")),
        });
    }
    let mut last = String::new();
    for a in allowed {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = format!("cannot connect to {host} ({a}): {e}"),
            Err(_) => last = format!("connecting to {host} ({a}) timed out"),
        }
    }
    Err(Refused::Unreachable(last))
}

/// A connection for `host:port` through the operator's proxy: refused when the host is
/// literally a blocked address (names are the proxy's to resolve); for a tunnel, the proxy
/// has answered our `CONNECT` with 200.
async fn via_upstream(
    rules: &Rules,
    up: &UpstreamProxy,
    host: &str,
    port: u16,
    tunnel: bool,
) -> Result<TcpStream, Refused> {
    if let Some(ip) = musicd_media::fetch::literal_address(host)
        && musicd_media::fetch::refuses(ip, rules.allow_private, &rules.allow_ips)
    {
        return Err(Refused::Blocked(format!(
            "{host} is {ip}, a loopback, private or link-local address: refused"
        )));
    }
    let unreachable =
        |e: String| Refused::Unreachable(format!("fetch.proxy {}:{}: {e}", up.host, up.port));
    let connect = TcpStream::connect((up.host.as_str(), up.port));
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .map_err(|_| unreachable("connecting timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    if !tunnel {
        return Ok(stream);
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    if let Some(a) = up.auth.as_ref().and_then(|a| a.to_str().ok()) {
        head.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    // The answer's head, byte by byte: nothing of the tunnel may be read past it.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() > 8192 {
            return Err(unreachable(
                "answered CONNECT with an over-long head".into(),
            ));
        }
        let n = tokio::time::timeout(CONNECT_TIMEOUT, stream.read(&mut byte))
            .await
            .map_err(|_| unreachable("no answer to CONNECT".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        if n == 0 {
            return Err(unreachable("closed the connection on CONNECT".into()));
        }
        answer.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&answer);
    let line = status.lines().next().unwrap_or_default().to_string();
    if line.split_whitespace().nth(1) != Some("200") {
        return Err(unreachable(format!(
            "refused CONNECT {host}:{port}: {line}"
        )));
    }
    Ok(stream)
}

/// Sends an absolute-form request on over the connection that was made for it, and relays
/// the answer: to the destination in origin form, or to the operator's proxy as it is (with
/// that proxy's credential).
async fn forward(
    mut req: Request<Incoming>,
    stream: TcpStream,
    upstream: Option<&UpstreamProxy>,
) -> Response<Body> {
    for h in ["proxy-authorization", "proxy-connection"] {
        req.headers_mut().remove(h);
    }
    match upstream {
        Some(up) => {
            if let Some(a) = &up.auth {
                req.headers_mut()
                    .insert(hyper::header::PROXY_AUTHORIZATION, a.clone());
            }
        }
        None => {
            let origin_form = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            match origin_form.parse() {
                Ok(u) => *req.uri_mut() = u,
                Err(_) => return text(StatusCode::BAD_REQUEST, "bad request URI\n".into()),
            }
        }
    }
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("upstream handshake: {e}\n"),
            );
        }
    };
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("egress upstream connection: {e}");
        }
    });
    match sender.send_request(req).await {
        Ok(res) => res.map(BodyExt::boxed),
        Err(e) => text(StatusCode::BAD_GATEWAY, format!("upstream request: {e}\n")),
    }
}
