//! Fetch against a loopback server that misbehaves in the ways real servers do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use musicd_media::ErrorCode;
use musicd_media::fetch::{FetchOptions, fetch};
use tokio_util::sync::CancellationToken;

const LEN: usize = 1 << 20;

#[derive(Clone)]
struct App {
    data: Arc<Vec<u8>>,
    hits: Arc<AtomicUsize>,
    port: u16,
}

fn range_start(h: &HeaderMap) -> Option<usize> {
    let v = h.get(header::RANGE)?.to_str().ok()?;
    v.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()
}

/// A body that sends `data` and then either ends or breaks the connection.
fn body(data: Vec<u8>, break_after: Option<usize>) -> Body {
    let stream = async_stream(data, break_after);
    Body::from_stream(stream)
}

fn async_stream(
    data: Vec<u8>,
    break_after: Option<usize>,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    let cut = break_after.unwrap_or(data.len()).min(data.len());
    let chunks: Vec<Result<Bytes, std::io::Error>> = data[..cut]
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .chain(break_after.map(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "cut",
            ))
        }))
        .collect();
    futures_util::stream::iter(chunks)
}

fn full(data: &[u8], from: usize, break_after: Option<usize>) -> Response {
    let len = data.len();
    let mut b = Response::builder();
    let status = if from > 0 {
        b = b.header(
            header::CONTENT_RANGE,
            format!("bytes {from}-{}/{len}", len - 1),
        );
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    b.status(status)
        .header(header::CONTENT_LENGTH, (len - from).to_string())
        .body(body(data[from..].to_vec(), break_after))
        .unwrap()
}

async fn route(
    State(app): State<App>,
    AxPath(kind): AxPath<String>,
    headers: HeaderMap,
) -> Response {
    let n = app.hits.fetch_add(1, Ordering::SeqCst);
    let data = &app.data;
    match kind.as_str() {
        "ok" => full(data, range_start(&headers).unwrap_or(0), None),
        // First response breaks half-way; later ones honour Range.
        "break" => {
            if n == 0 {
                full(data, 0, Some(LEN / 2))
            } else {
                full(data, range_start(&headers).unwrap_or(0), None)
            }
        }
        // Breaks once, and always ignores Range.
        "norange" => full(data, 0, if n == 0 { Some(LEN / 3) } else { None }),
        // Answers a different range than asked.
        "wrongrange" => {
            if n == 0 {
                full(data, 0, Some(LEN / 2))
            } else if range_start(&headers).is_some() {
                full(data, 10, None)
            } else {
                full(data, 0, None)
            }
        }
        "throttle" => {
            if n == 0 {
                Response::builder()
                    .status(StatusCode::TOO_MANY_REQUESTS)
                    .header(header::RETRY_AFTER, "1")
                    .body(Body::empty())
                    .unwrap()
            } else {
                full(data, 0, None)
            }
        }
        // Announces the full length, sends less, and ends cleanly.
        "short" => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, LEN.to_string())
            .body(body(data[..LEN - 1000].to_vec(), None))
            .unwrap(),
        "missing" => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap(),
        "to-metadata" => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, "http://169.254.169.254/latest/meta-data/")
            .body(Body::empty())
            .unwrap(),
        "to-ok" => Response::builder()
            .status(StatusCode::FOUND)
            .header(
                header::LOCATION,
                format!("http://127.0.0.1:{}/ok", app.port),
            )
            .body(Body::empty())
            .unwrap(),
        "echo-auth" => {
            let auth = headers
                .get(header::AUTHORIZATION)
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default();
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from(auth))
                .unwrap()
        }
        "to-other-origin" => Response::builder()
            .status(StatusCode::FOUND)
            // Same server, other origin (127.0.0.2 is loopback too on Linux).
            .header(
                header::LOCATION,
                format!("http://127.0.0.2:{}/echo-auth", app.port),
            )
            .body(Body::empty())
            .unwrap(),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::empty())
            .unwrap(),
    }
}

async fn server() -> (SocketAddr, App) {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data: Vec<u8> = (0..LEN)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let app = App {
        data: Arc::new(data),
        hits: Arc::new(AtomicUsize::new(0)),
        port: addr.port(),
    };
    let router = Router::new()
        .route("/{kind}", get(route))
        .with_state(app.clone());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (SocketAddr::from(([127, 0, 0, 1], addr.port())), app)
}

fn opts() -> FetchOptions {
    FetchOptions {
        allow_private: true,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(5),
        ..Default::default()
    }
}

async fn get_ok(path: &str) -> (Vec<u8>, App) {
    let (addr, app) = server().await;
    let staging = tempfile::tempdir().unwrap();
    let f = fetch(
        &format!("http://{addr}/{path}"),
        staging.path(),
        &opts(),
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    (std::fs::read(f.path()).unwrap(), app)
}

#[tokio::test]
async fn plain_download() {
    let (bytes, app) = get_ok("ok").await;
    assert_eq!(bytes, *app.data);
}

#[tokio::test]
async fn resumes_after_broken_connection() {
    let (bytes, app) = get_ok("break").await;
    assert_eq!(bytes, *app.data);
    assert_eq!(app.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn restarts_when_range_is_ignored() {
    let (bytes, app) = get_ok("norange").await;
    assert_eq!(bytes, *app.data);
}

#[tokio::test]
async fn restarts_when_range_is_wrong() {
    let (bytes, app) = get_ok("wrongrange").await;
    assert_eq!(bytes, *app.data);
}

#[tokio::test]
async fn waits_for_retry_after() {
    let t = Instant::now();
    let (bytes, app) = get_ok("throttle").await;
    assert_eq!(bytes, *app.data);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "did not wait: {:?}",
        t.elapsed()
    );
    assert_eq!(app.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn short_body_is_retried_then_fails_and_leaves_nothing() {
    let (addr, app) = server().await;
    let staging = tempfile::tempdir().unwrap();
    let o = FetchOptions {
        max_attempts: 3,
        ..opts()
    };
    let err = fetch(
        &format!("http://{addr}/short"),
        staging.path(),
        &o,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamError);
    assert!(err.transient);
    assert_eq!(app.hits.load(Ordering::SeqCst), 3);
    assert_eq!(
        std::fs::read_dir(staging.path()).unwrap().count(),
        0,
        "temp file left behind"
    );
}

#[tokio::test]
async fn not_found_fails_at_once() {
    let (addr, app) = server().await;
    let staging = tempfile::tempdir().unwrap();
    let err = fetch(
        &format!("http://{addr}/missing"),
        staging.path(),
        &opts(),
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::UpstreamError);
    assert!(!err.transient);
    assert!(err.message.contains("404"), "{}", err.message);
    assert_eq!(app.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn private_addresses_are_refused() {
    let (addr, app) = server().await;
    let staging = tempfile::tempdir().unwrap();
    let strict = FetchOptions {
        allow_private: false,
        ..opts()
    };
    // Directly.
    let err = fetch(
        &format!("http://{addr}/ok"),
        staging.path(),
        &strict,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::BlockedAddress);
    let err = fetch(
        &format!("http://localhost:{}/ok", addr.port()),
        staging.path(),
        &strict,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::BlockedAddress);
    assert_eq!(app.hits.load(Ordering::SeqCst), 0);
    // Through a redirect: the start host is explicitly allowed, the metadata address is not.
    let allow_start = FetchOptions {
        allow_ips: vec![IpAddr::from([127, 0, 0, 1])],
        ..strict
    };
    let err = fetch(
        &format!("http://{addr}/to-metadata"),
        staging.path(),
        &allow_start,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::BlockedAddress, "{err}");
    // A redirect to an allowed host still works.
    let ok = fetch(
        &format!("http://{addr}/to-ok"),
        staging.path(),
        &allow_start,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(ok.path()).unwrap(), *app.data);
}

#[tokio::test]
async fn credentials_do_not_follow_redirects_to_other_origins() {
    let (addr, _app) = server().await;
    let staging = tempfile::tempdir().unwrap();
    let o = FetchOptions {
        headers: vec![("Authorization".into(), "Bearer secret".into())],
        ..opts()
    };
    let same = fetch(
        &format!("http://{addr}/echo-auth"),
        staging.path(),
        &o,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(same.path()).unwrap(), b"Bearer secret");
    let other = fetch(
        &format!("http://{addr}/to-other-origin"),
        staging.path(),
        &o,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(other.path()).unwrap(), b"");
}

#[tokio::test]
async fn cancellation_removes_the_temp_file() {
    let (addr, _app) = server().await;
    let staging = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let err = fetch(
        &format!("http://{addr}/ok"),
        staging.path(),
        &opts(),
        &|_| {},
        &cancel,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Cancelled);
    assert_eq!(std::fs::read_dir(staging.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn size_cap_is_enforced() {
    let (addr, _app) = server().await;
    let staging = tempfile::tempdir().unwrap();
    let o = FetchOptions {
        max_bytes: 1000,
        ..opts()
    };
    let err = fetch(
        &format!("http://{addr}/ok"),
        staging.path(),
        &o,
        &|_| {},
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooLarge);
}
