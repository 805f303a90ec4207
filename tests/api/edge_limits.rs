//! What the HTTP edge refuses to hold: a client that never finishes its request head, more
//! connections than `http.max_connections`, a body that stalls, oversized or too many form
//! fields; and who counts as the client behind proxies.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::library::{head_offset, multipart, tus_create};

/// Reads until the server closes the connection; `false` if it is still open after `wait`.
async fn closed_within(s: &mut tokio::net::TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(wait, read_all).await.is_ok()
}

#[tokio::test]
async fn a_partial_request_head_is_cut_off() {
    let app = TestApp::start(|c| c.http.header_read_timeout = Duration::from_secs(1)).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    assert!(
        closed_within(&mut s, Duration::from_secs(10)).await,
        "a connection with half a request head was still open after 10 s"
    );
    // Whole requests are served as before.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let app = TestApp::start(|c| c.http.max_connections = 2).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let idle_a = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _idle_b = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let third = quick.get(app.url("/healthz")).send().await;
    assert!(
        third.is_err(),
        "a third connection was served while two held both slots"
    );
    // One slot frees: the next request is served.
    drop(idle_a);
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let r = patient.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_stalled_upload_body_times_out_and_tus_keeps_its_offset() {
    let app = TestApp::start(|c| c.http.body_idle_timeout = Duration::from_secs(1)).await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let total = 100_000usize;
    let created = tus_create(c, &app.base, &admin, total, "stall.flac").await;
    assert_eq!(created.status(), 201);
    let loc = created.headers()["location"].to_str().unwrap().to_string();
    // A PATCH that announces the whole file, sends 40,000 bytes and then nothing, with its
    // connection left open.
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PATCH {loc} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\
         Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n\
         Upload-Offset: 0\r\nContent-Length: {total}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![7u8; 40_000]).await.unwrap();
    s.flush().await.unwrap();
    // HEAD waits for a running chunk: it answers once the stalled one has given up, with the
    // offset the stalled chunk reached.
    let (status, offset) = tokio::time::timeout(
        Duration::from_secs(15),
        head_offset(c, &app.base, &admin, &loc),
    )
    .await
    .expect("the stalled PATCH still held the upload after 15 s");
    assert_eq!(status, 200);
    assert_eq!(offset, Some(40_000));
    drop(s);
    app.stop().await;
}

#[tokio::test]
async fn form_fields_are_capped_and_nothing_is_kept() {
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let uploads = app.data().join("uploads");
    let huge = "x".repeat(200 * 1024);
    let (s, r) = multipart(
        c,
        &app,
        &admin,
        "a.mp3",
        vec![1u8; 1000],
        &[("title", &huge)],
    )
    .await;
    assert_eq!(s, 413, "{r}");
    assert_eq!(r["error"]["code"], json!("payload_too_large"), "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("`title`"),
        "{r}"
    );
    // Too many fields.
    let names: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
    let fields: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    let (s, r) = multipart(c, &app, &admin, "a.mp3", vec![1u8; 1000], &fields).await;
    assert_eq!(s, 413, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("parts"),
        "{r}"
    );
    let left: Vec<_> = std::fs::read_dir(&uploads)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "upload bytes were kept: {left:?}");
    let tasks = get_json(c, app.url("/api/v1/tasks"), &admin).await;
    assert_eq!(tasks["data"]["items"], json!([]), "{tasks}");
    app.stop().await;
}

/// Five wrong logins, each with its own `X-Forwarded-For`; the statuses.
async fn wrong_logins(app: &TestApp, forwarded: impl Fn(usize) -> String) -> Vec<u16> {
    let mut out = Vec::new();
    for i in 0..5 {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded(i))
            .json(&json!({ "username": ADMIN, "password": "wrong-password" }))
            .send()
            .await
            .unwrap();
        out.push(res.status().as_u16());
    }
    out
}

#[tokio::test]
async fn a_forged_forwarded_for_does_not_escape_login_throttling() {
    let throttled = |c: &mut musicd::config::Config| {
        c.http.trust_forwarded_for = true;
        c.security.login_burst = 3;
        c.security.login_per_minute = 3;
    };
    // One proxy in front: the client is the right-most entry, whatever it put to the left.
    let app = TestApp::start(throttled).await;
    let got = wrong_logins(&app, |i| format!("10.9.{i}.1, 198.51.100.7")).await;
    assert_eq!(got, vec![401, 401, 401, 429, 429]);
    app.stop().await;
    // Behind two proxies, the trusted one is skipped.
    let app = TestApp::start(|c| {
        throttled(c);
        c.http.trusted_proxies = vec!["203.0.113.0/24".into()];
    })
    .await;
    let got = wrong_logins(&app, |i| format!("10.9.{i}.1, 198.51.100.7, 203.0.113.5")).await;
    assert_eq!(got, vec![401, 401, 401, 429, 429]);
    app.stop().await;
}
