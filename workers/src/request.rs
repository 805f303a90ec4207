//! One guarded API request: any method, an optional body, the answer read whole into memory
//! up to a cap, whatever its status, so the caller can read an upstream's error body (a
//! catalog's `{"error": …}`). The same address guard as [`crate::fetch`]: our resolver
//! refuses blocked addresses, and GET redirects are followed by hand with every hop checked
//! and credentials kept to the first origin. Nothing is retried here: the caller's job does.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::{ErrorCode, PipelineError, Result};
use crate::fetch::{
    FetchOptions, build_client, check_url, classify_reqwest, parse_retry_after, same_origin,
    upstream_permanent, upstream_transient,
};

/// What is sent.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `GET` unless set.
    pub method: Option<reqwest::Method>,
    /// The URL.
    pub url: String,
    /// Extra headers, sent only to the URL's own origin.
    pub headers: Vec<(String, String)>,
    /// A body with its content type.
    pub body: Option<(String, Vec<u8>)>,
    /// Follow redirects (GET only); otherwise a 3xx is answered with its `location`.
    pub follow: bool,
}

/// An answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, in seconds, when given.
    pub retry_after: Option<Duration>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Location` of a redirect that was not followed.
    pub location: Option<String>,
    /// The URL that answered (after redirects).
    pub url: Url,
    /// The body.
    pub bytes: Vec<u8>,
}

/// Sends `req` and reads the answer (at most `opts.max_bytes`). Transport failures are
/// transient; a refused address is `blocked_address`.
pub async fn send(
    req: &Request,
    opts: &FetchOptions,
    cancel: &CancellationToken,
) -> Result<Answer> {
    tokio::select! {
        _ = cancel.cancelled() => Err(PipelineError::cancelled()),
        r = send_inner(req, opts) => r,
    }
}

async fn send_inner(req: &Request, opts: &FetchOptions) -> Result<Answer> {
    let start = Url::parse(&req.url)
        .map_err(|e| upstream_permanent(format!("invalid URL {:?}: {e}", req.url)))?;
    let client = build_client(opts)?;
    let method = req.method.clone().unwrap_or(reqwest::Method::GET);
    let follow = req.follow && method == reqwest::Method::GET;
    let mut url = start.clone();
    for _ in 0..=opts.max_redirects {
        check_url(&url, opts)?;
        let mut r = client.request(method.clone(), url.clone());
        if same_origin(&url, &start) {
            for (k, v) in &req.headers {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| upstream_permanent(format!("header {k}: {e}")))?;
                let value = HeaderValue::from_str(v)
                    .map_err(|e| upstream_permanent(format!("header {k}: {e}")))?;
                r = r.header(name, value);
            }
        }
        if let Some((ct, body)) = &req.body {
            r = r.header(CONTENT_TYPE, ct.as_str()).body(body.clone());
        }
        let resp = r.send().await.map_err(|e| classify_reqwest(&e))?;
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if follow && resp.status().is_redirection() {
            let loc = location.ok_or_else(|| {
                upstream_permanent(format!("{} redirect without Location", resp.status()))
            })?;
            url = url
                .join(&loc)
                .map_err(|e| upstream_permanent(format!("bad redirect target {loc:?}: {e}")))?;
            continue;
        }
        return read(resp, url, location, opts.max_bytes).await;
    }
    Err(upstream_permanent(format!(
        "more than {} redirects",
        opts.max_redirects
    )))
}

async fn read(
    resp: reqwest::Response,
    url: Url,
    location: Option<String>,
    max: u64,
) -> Result<Answer> {
    let status = resp.status().as_u16();
    let retry_after = parse_retry_after(resp.headers());
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    let host = url.host_str().unwrap_or("").to_owned();
    let mut bytes = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| upstream_transient(format!("answer from {host} broke: {e}")))?;
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(too_large(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        retry_after,
        content_type,
        location,
        url,
        bytes,
    })
}

fn too_large(max: u64) -> PipelineError {
    PipelineError::new(
        ErrorCode::TooLarge,
        format!("answer exceeds the cap of {max} bytes"),
    )
}
