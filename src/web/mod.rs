//! The web app: a page and its own small scripts and styles, compiled into the binary and
//! served at `/`. It is a client of the public API (`/api/v1`), signed in with the session
//! cookie; [`security_headers`] puts the Content-Security-Policy and friends on every answer.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One file of the app.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($name:literal => $mime:expr),* $(,)?) => {
        &[$(Asset { name: $name, mime: $mime, body: include_bytes!(concat!("assets/", $name)) }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file, by its path under `/assets/` (`index.html` is the page at `/`).
static ASSETS: &[Asset] = assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/events.js" => JS,
    "js/tus.js" => JS,
    "js/ui.js" => JS,
    "js/words.js" => JS,
    "js/pages/login.js" => JS,
    "js/pages/add.js" => JS,
    "js/pages/queue.js" => JS,
    "js/pages/task.js" => JS,
    "js/pages/watches.js" => JS,
    "js/pages/library.js" => JS,
    "js/pages/uploads.js" => JS,
    "js/pages/history.js" => JS,
    "js/pages/settings.js" => JS,
    "js/pages/account.js" => JS,
    "js/pages/notifications.js" => JS,
};

/// The policy of every answer: only our own scripts, styles and media; covers may come from
/// the catalogs' image hosts over HTTPS; nobody may frame the app.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: https:; media-src 'self'; connect-src 'self'; font-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The routes of the app: `/` and `/assets/…`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", axum::routing::get(index))
        .route("/assets/{*path}", axum::routing::get(asset))
        .layer(tower_http::compression::CompressionLayer::new())
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// Strong validators, computed once: a browser revalidates (`no-cache`) and gets a 304.
fn etag(i: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    &TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.body))[..16]))
            .collect()
    })[i]
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let tag = etag(i);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, ASSETS[i].mime)], ASSETS[i].body).into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(tag).expect("hex is a valid header"),
    );
    res
}

/// Adds the security headers to every answer that has none of its own. The OpenAPI viewer
/// at `/api/v1/docs` runs inline script, so it keeps a policy without the CSP.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let docs = req.uri().path().starts_with("/api/v1/docs");
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    if !docs {
        set(h, header::CONTENT_SECURITY_POLICY, CSP);
    }
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `assets/` is served, so none is forgotten in the list.
    #[test]
    fn every_asset_file_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/assets");
        let mut files = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    let rel = p.strip_prefix(&root).unwrap().to_string_lossy();
                    files.push(rel.replace('\\', "/"));
                }
            }
        }
        for f in &files {
            assert!(ASSETS.iter().any(|a| a.name == f), "{f} is not served");
        }
        assert_eq!(files.len(), ASSETS.len());
    }
}
