//! A loopback HTTP server that records every request and answers what the test scripted per
//! path: a webhook receiver, and the stand-ins for ntfy, Gotify, Discord, Navidrome, Jellyfin,
//! Plex and LRCLIB (each answers in its service's documented shape, set by the test).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One request received.
#[derive(Clone, Debug)]
pub struct Got {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Lowercased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
}

/// An answer: status, content type, body.
#[derive(Clone, Debug)]
pub struct Reply(pub u16, pub &'static str, pub String);

#[derive(Default)]
struct Inner {
    got: Vec<Got>,
    /// Per path: answers used once each, in order, then `always`.
    once: HashMap<String, Vec<Reply>>,
    always: HashMap<String, Reply>,
}

/// The server.
#[derive(Clone)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl Receiver {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { inner, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `path` answers `r` from now on (after any `then` answers).
    pub fn always(&self, path: &str, r: Reply) {
        self.inner.lock().unwrap().always.insert(path.into(), r);
    }

    /// `path` answers these first, one per request.
    pub fn first(&self, path: &str, replies: Vec<Reply>) {
        self.inner.lock().unwrap().once.insert(path.into(), replies);
    }

    /// Requests to paths starting with `prefix`, in arrival order.
    pub fn got(&self, prefix: &str) -> Vec<Got> {
        self.inner
            .lock()
            .unwrap()
            .got
            .iter()
            .filter(|g| g.path().starts_with(prefix))
            .cloned()
            .collect()
    }
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut i = inner.lock().unwrap();
    i.got.push(Got {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at: Instant::now(),
    });
    let path = uri.path().to_string();
    let scripted = i
        .once
        .get_mut(&path)
        .filter(|v| !v.is_empty())
        .map(|v| v.remove(0));
    let Reply(status, ct, body) =
        scripted
            .or_else(|| i.always.get(&path).cloned())
            .unwrap_or(Reply(
                404,
                "application/json",
                r#"{"error":"not found"}"#.into(),
            ));
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", ct)],
        body,
    )
        .into_response()
}
