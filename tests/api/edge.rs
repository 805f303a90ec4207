//! The HTTP edge: envelopes, validation errors naming the field, 404, 413, 415, request ids.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::kit::Session;

#[tokio::test]
async fn health_and_envelopes() {
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let res = c.get(app.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], json!(true));
    assert_eq!(body["data"]["status"], json!("ok"));
    for path in ["/healthz", "/readyz", "/api/v1/healthz", "/api/v1/readyz"] {
        assert_eq!(
            c.get(app.url(path)).send().await.unwrap().status(),
            200,
            "{path}"
        );
    }
    // A request id sent by the client comes back.
    let res = c
        .get(app.url("/api/v1/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");

    let admin = app.login(ADMIN, ADMIN_PW).await;
    let deep: Value = c
        .get(app.url("/api/v1/health/deep"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deep["data"]["status"], json!("ok"), "{deep}");
    assert_eq!(deep["data"]["checks"]["queue"]["backend"], json!("sqlite"));
    assert_eq!(deep["data"]["checks"]["database"]["ok"], json!(true));

    let missing = c
        .get(app.url("/api/v1/nope"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("not_found"));

    // The docs are served from the binary.
    let docs = c.get(app.url("/api/v1/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    assert!(!html.contains("https://"), "docs must not load from a CDN");
    app.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_validation_errors_naming_the_field() {
    let app = TestApp::start(|c| c.http.body_limit = bytesize::ByteSize::kib(4)).await;
    bad_json_is_a_validation_error_naming_the_field(&app).await;
    other_media_types_and_big_bodies_are_refused(&app).await;
    // A bad query parameter is named too.
    let admin = Session::admin(&app).await;
    let res = admin.get("/tasks?limit=abc").await;
    assert_eq!(res.status, 400);
    assert_eq!(
        res.body["error"]["details"][0]["field"],
        json!("limit"),
        "{}",
        res.body
    );
    app.stop().await;
}

/// Posts `body` to the login route, as JSON when `json` holds; the status and JSON body
/// (`Null` when it had none).
async fn post_login(app: &TestApp, body: String, json: bool) -> (u16, Value) {
    let mut req = app.client.post(app.url("/api/v1/auth/login")).body(body);
    if json {
        req = req.header("content-type", "application/json");
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Broken JSON is a `validation_error`; a missing or mistyped field is named.
async fn bad_json_is_a_validation_error_naming_the_field(app: &TestApp) {
    let (s, body) = post_login(app, "{not json".into(), true).await;
    assert_eq!(s, 400);
    assert_eq!(body["error"]["code"], json!("validation_error"));

    let (s, body) = post_login(app, r#"{"username": "admin"}"#.into(), true).await;
    assert_eq!(s, 400);
    assert_eq!(
        body["error"]["details"][0]["field"],
        json!("password"),
        "{body}"
    );

    let (s, body) = post_login(app, r#"{"username": 5, "password": "x"}"#.into(), true).await;
    assert_eq!(s, 400);
    assert_eq!(
        body["error"]["details"][0]["field"],
        json!("username"),
        "{body}"
    );
}

/// A body that is not JSON is 415; one over the body limit is 413 `payload_too_large`.
async fn other_media_types_and_big_bodies_are_refused(app: &TestApp) {
    let (s, _) = post_login(app, "username=a".into(), false).await;
    assert_eq!(s, 415);
    let big = format!(
        r#"{{"username": "{}", "password": "x"}}"#,
        "a".repeat(10_000)
    );
    let (s, body) = post_login(app, big, true).await;
    assert_eq!(s, 413);
    assert_eq!(body["error"]["code"], json!("payload_too_large"));
}

#[tokio::test]
async fn cors_follows_config() {
    let app = TestApp::start(|c| c.http.cors_origins = vec!["https://ui.example".into()]).await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/tasks"))
        .header("origin", "https://ui.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://ui.example"
    );
    let res = app
        .client
        .get(app.url("/api/v1/health"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    app.stop().await;
}
