//! Authentication and authorization, walked over every registered route.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// Routes that answer without credentials.
const PUBLIC: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/refresh",
    "/api/v1/auth/status",
    "/api/v1/health",
    "/api/v1/healthz",
    "/api/v1/readyz",
];

/// Route prefixes only an admin may use.
/// Routes that take a signed link instead of a token: a token alone is refused too.
const SIGNED_LINK: &[&str] = &["/api/v1/library/stream/{id}"];

const ADMIN_ONLY: &[&str] = &[
    "/api/v1/users",
    "/api/v1/diagnostics",
    "/api/v1/config",
    "/api/v1/credentials",
    "/api/v1/metrics",
    "/api/v1/health/deep",
];

/// Every (method, path) in the OpenAPI document, with path parameters filled in.
async fn all_routes(app: &TestApp) -> Vec<(Method, String, String)> {
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
            out.push((m, path.clone(), concrete));
        }
    }
    assert!(
        out.len() >= 19,
        "expected every route in the OpenAPI document, got {}",
        out.len()
    );
    out
}

async fn send(app: &TestApp, m: &Method, path: &str, auth: Option<&str>) -> reqwest::Response {
    let mut req = app.client.request(m.clone(), app.url(path));
    if let Some(t) = auth {
        req = req.bearer_auth(t);
    }
    if *m != Method::GET && *m != Method::DELETE {
        req = req.json(&json!({}));
    }
    req.send().await.unwrap()
}

fn forge(secret: &str, exp_offset: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = json!({ "sub": "x", "role": "admin", "iat": now, "exp": now + exp_offset, "typ": "access" });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn every_route_requires_valid_credentials() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    // A real admin token for an existing user, but expired.
    let me: Value = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin_id = me["data"]["user"]["id"].as_str().unwrap().to_string();
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": admin_id, "role": "admin", "iat": now - 7200, "exp": now - 3600, "typ": "access" }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let other_secret = forge("another-secret-0123456789-0123456789-abcdef", 3600);
    // `alg: none` with the admin's id: no signature at all.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(
            json!({ "sub": admin_id, "role": "admin", "exp": now + 3600, "typ": "access" })
                .to_string()
        )
    );
    let bad_tokens = [
        ("missing", None),
        ("expired", Some(expired.as_str())),
        ("other secret", Some(other_secret.as_str())),
        ("alg none", Some(none.as_str())),
        ("garbage", Some("abc.def.ghi")),
    ];

    let routes = all_routes(&app).await;
    for (m, template, path) in &routes {
        if PUBLIC.contains(&template.as_str()) {
            continue;
        }
        for (label, tok) in &bad_tokens {
            let res = send(&app, m, path, *tok).await;
            assert_eq!(res.status(), 401, "{m} {path} with {label} token");
            if *m == Method::HEAD {
                continue; // no body
            }
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["success"], json!(false), "{m} {path}");
            assert_eq!(body["error"]["code"], json!("unauthorized"), "{m} {path}");
        }
    }

    // A plain user: admin routes are 403, the others are not.
    let res = app
        .client
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({ "username": "alice", "password": "alice-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let user = app.login("alice", "alice-password").await;
    for (m, template, path) in &routes {
        if PUBLIC.contains(&template.as_str()) {
            continue;
        }
        let res = send(&app, m, path, Some(&user)).await;
        if SIGNED_LINK.contains(&template.as_str()) {
            assert_eq!(res.status(), 401, "{m} {path} needs a signature");
        } else if ADMIN_ONLY.iter().any(|p| template.starts_with(p)) {
            assert_eq!(res.status(), 403, "{m} {path} as a user");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], json!("forbidden"));
        } else {
            assert_ne!(res.status(), 403, "{m} {path} as a user");
            assert_ne!(res.status(), 401, "{m} {path} as a user");
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn login_me_refresh_rotation_and_logout() {
    let app = TestApp::start(|_| {}).await;
    let c = &app.client;
    let res = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN, "password": ADMIN_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-ratelimit-limit"));
    let pair: Value = res.json().await.unwrap();
    let access = pair["data"]["access_token"].as_str().unwrap();
    let refresh1 = pair["data"]["refresh_token"].as_str().unwrap().to_string();
    let me: Value = c
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["user"]["username"], json!(ADMIN));
    assert_eq!(me["data"]["user"]["role"], json!("admin"));

    // Rotation: the first refresh works once.
    let r2: Value = c
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh2 = r2["data"]["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_string();
    assert_ne!(refresh1, refresh2);
    // Reuse of the old one is refused and revokes the family, including the new token.
    let reuse = c
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 401);
    let after = c
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401, "reuse must revoke the whole family");

    // Logout revokes.
    let pair: Value = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN, "password": ADMIN_PW }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = pair["data"]["access_token"].as_str().unwrap();
    let refresh = pair["data"]["refresh_token"].as_str().unwrap();
    let out = c
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(access)
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let again = c
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);

    // Wrong password.
    let bad = c
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN, "password": "nope-nope-nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn login_is_rate_limited_per_address() {
    let app = TestApp::start(|c| {
        c.security.login_burst = 3;
        c.security.login_per_minute = 3;
    })
    .await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let res = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "username": ADMIN, "password": "wrong-password" }))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        last = Some(res);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
    let last = last.unwrap();
    let retry: u64 = last.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(last.headers()["x-ratelimit-remaining"], "0");
    let body: Value = last.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("rate_limited"));
    app.stop().await;
}

#[tokio::test]
async fn api_keys_are_shown_once_and_scoped() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let c = &app.client;
    let created: Value = c
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&admin)
        .json(&json!({ "name": "cron", "scopes": ["read"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["data"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("mk_"));
    // Listed without the key.
    let listed = c
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&key));
    // Read works with X-API-Key and with Bearer; write does not.
    let me = c
        .get(app.url("/api/v1/auth/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // Metrics are for admins: a read key is refused, an admin key (as Bearer, the way
    // Prometheus sends it) is served.
    let metrics = c
        .get(app.url("/api/v1/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 403);
    let (_, ops) = post_json(
        c,
        app.url("/api/v1/api-keys"),
        &admin,
        json!({ "name": "prometheus", "scopes": ["admin"] }),
    )
    .await;
    let ops = ops["data"]["key"].as_str().unwrap().to_string();
    let metrics = c
        .get(app.url("/api/v1/metrics"))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("musicd_http_requests_total"), "{text}");
    let write = c
        .post(app.url("/api/v1/api-keys"))
        .header("x-api-key", &key)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);
    // An admin-role user's read key is still not an admin credential.
    let users = c
        .get(app.url("/api/v1/users"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 403);
    // Revoked keys stop working.
    let id = created["data"]["api_key"]["id"].as_str().unwrap();
    let del = c
        .delete(app.url(&format!("/api/v1/api-keys/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    let gone = c
        .get(app.url("/api/v1/auth/me"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn admin_manages_users_and_keeps_one_admin() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let c = &app.client;
    let bob: Value = c
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({ "username": "bob", "password": "bob-password" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_id = bob["data"]["id"].as_str().unwrap().to_string();
    let dup = c
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({ "username": "bob", "password": "bob-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    let promoted = c
        .put(app.url(&format!("/api/v1/users/{bob_id}/role")))
        .bearer_auth(&admin)
        .json(&json!({ "role": "admin" }))
        .send()
        .await
        .unwrap();
    assert_eq!(promoted.status(), 200);
    let listed: Value = c
        .get(app.url("/api/v1/users?limit=1"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"]["next_page"], json!(2));
    let del = c
        .delete(app.url(&format!("/api/v1/users/{bob_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    // The remaining admin cannot demote itself.
    let me: Value = c
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let my_id = me["data"]["user"]["id"].as_str().unwrap();
    let demote = c
        .put(app.url(&format!("/api/v1/users/{my_id}/role")))
        .bearer_auth(&admin)
        .json(&json!({ "role": "user" }))
        .send()
        .await
        .unwrap();
    assert_eq!(demote.status(), 409);
    // Registration is off by default.
    let reg = c
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({ "username": "eve", "password": "eve-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn registration_when_enabled() {
    let app = TestApp::start(|c| c.security.allow_registration = true).await;
    let reg = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({ "username": "eve", "password": "eve-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201);
    let body: Value = reg.json().await.unwrap();
    assert_eq!(body["data"]["role"], json!("user"));
    let token = app.login("eve", "eve-password").await;
    let users = app
        .client
        .get(app.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(users.status(), 403);
    app.stop().await;
}

#[tokio::test]
async fn users_see_only_their_own_tasks() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let c = &app.client;
    c.post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({ "username": "carol", "password": "carol-password" }))
        .send()
        .await
        .unwrap();
    let carol = app.login("carol", "carol-password").await;
    let task = ping(c, &app.base, &admin, json!({})).await;
    let seen = c
        .get(app.url(&format!("/api/v1/tasks/{task}")))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 404);
    let list: Value = c
        .get(app.url("/api/v1/tasks"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"]["items"].as_array().unwrap().len(), 0);
    let list: Value = c
        .get(app.url("/api/v1/tasks"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"]["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}
