//! Authentication and authorization, walked over every registered route.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::kit::Session;

/// Routes that answer without credentials.
const PUBLIC: &[&str] = &[
    "/api/v1/auth/login",
    "/api/v1/auth/register",
    "/api/v1/auth/refresh",
    "/api/v1/auth/status",
    // POST signs a browser in; GET and DELETE need its cookie (the web tests cover them).
    "/api/v1/auth/session",
    "/api/v1/health",
    "/api/v1/healthz",
    "/api/v1/readyz",
    // Spotify's redirect back: the single-use state of a connect is its credential.
    "/api/v1/providers/spotify/callback",
];

/// Routes that take a signed link instead of a token: a token alone is refused too.
const SIGNED_LINK: &[&str] = &["/api/v1/library/stream/{id}"];

/// Route prefixes only an admin may use.
const ADMIN_ONLY: &[&str] = &[
    "/api/v1/users",
    "/api/v1/diagnostics",
    "/api/v1/config",
    "/api/v1/credentials",
    "/api/v1/metrics",
    "/api/v1/health/deep",
    // Media servers: their addresses and what they answered.
    "/api/v1/integrations",
    // Connecting the Spotify account the whole daemon reads playlists with.
    "/api/v1/providers/spotify/connect",
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
    let admin = Session::admin(&app).await;
    let bad_tokens = bad_tokens(&admin).await;
    let routes = all_routes(&app).await;
    bad_tokens_are_refused_everywhere(&app, &routes, &bad_tokens).await;
    users_are_kept_from_admin_routes(&app, &admin, &routes).await;
    app.stop().await;
}

/// Tokens that must not sign anyone in, by label: none, a real admin token for an existing
/// user but expired, one signed with another secret, `alg: none` with the admin's id (no
/// signature at all), and garbage.
async fn bad_tokens(admin: &Session) -> Vec<(&'static str, Option<String>)> {
    let me: Value = admin.get("/auth/me").await.body;
    let admin_id = me["data"]["user"]["id"].as_str().unwrap().to_string();
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": admin_id, "role": "admin", "iat": now - 7200, "exp": now - 3600, "typ": "access" }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let other_secret = forge("another-secret-0123456789-0123456789-abcdef", 3600);
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
    vec![
        ("missing", None),
        ("expired", Some(expired)),
        ("other secret", Some(other_secret)),
        ("alg none", Some(none)),
        ("garbage", Some("abc.def.ghi".to_string())),
    ]
}

/// Every route but the public ones answers each bad token with 401 `unauthorized`.
async fn bad_tokens_are_refused_everywhere(
    app: &TestApp,
    routes: &[(Method, String, String)],
    bad_tokens: &[(&str, Option<String>)],
) {
    for (m, template, path) in routes {
        if PUBLIC.contains(&template.as_str()) {
            continue;
        }
        for (label, tok) in bad_tokens {
            let res = send(app, m, path, tok.as_deref()).await;
            assert_eq!(res.status(), 401, "{m} {path} with {label} token");
            if *m == Method::HEAD {
                continue; // no body
            }
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["success"], json!(false), "{m} {path}");
            assert_eq!(body["error"]["code"], json!("unauthorized"), "{m} {path}");
        }
    }
}

/// A plain user: admin routes are 403, signed-link routes 401, the others neither.
async fn users_are_kept_from_admin_routes(
    app: &TestApp,
    admin: &Session,
    routes: &[(Method, String, String)],
) {
    let res = admin
        .post(
            "/users",
            json!({ "username": "alice", "password": "alice-password" }),
        )
        .await;
    assert_eq!(res.status, 201);
    let user = app.login("alice", "alice-password").await;
    for (m, template, path) in routes {
        if PUBLIC.contains(&template.as_str()) {
            continue;
        }
        let res = send(app, m, path, Some(&user)).await;
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
}

#[tokio::test]
async fn login_me_refresh_rotation_and_logout() {
    let app = TestApp::start(|_| {}).await;
    let refresh1 = login_answers_with_rate_limits_and_me_knows_the_user(&app).await;
    refresh_rotates_and_reuse_revokes_the_family(&app, &refresh1).await;
    logout_revokes_the_refresh_token(&app).await;
    // Wrong password.
    let bad = Session::anonymous(&app)
        .post(
            "/auth/login",
            json!({ "username": ADMIN, "password": "nope-nope-nope" }),
        )
        .await;
    assert_eq!(bad.status, 401);
    app.stop().await;
}

/// A login answers with rate-limit headers and a token pair; `/auth/me` with its access
/// token names the admin. The refresh token.
async fn login_answers_with_rate_limits_and_me_knows_the_user(app: &TestApp) -> String {
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "username": ADMIN, "password": ADMIN_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-ratelimit-limit"));
    let pair: Value = res.json().await.unwrap();
    let access = pair["data"]["access_token"].as_str().unwrap();
    let me = Session::with_token(app, access).get("/auth/me").await.body;
    assert_eq!(me["data"]["user"]["username"], json!(ADMIN));
    assert_eq!(me["data"]["user"]["role"], json!("admin"));
    pair["data"]["refresh_token"].as_str().unwrap().to_string()
}

/// Rotation: the first refresh works once; reuse of the old token is refused and revokes
/// the family, including the new token.
async fn refresh_rotates_and_reuse_revokes_the_family(app: &TestApp, refresh1: &str) {
    let anon = Session::anonymous(app);
    let r2 = anon
        .post("/auth/refresh", json!({ "refresh_token": refresh1 }))
        .await
        .body;
    let refresh2 = r2["data"]["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_string();
    assert_ne!(refresh1, refresh2);
    let reuse = anon
        .post("/auth/refresh", json!({ "refresh_token": refresh1 }))
        .await;
    assert_eq!(reuse.status, 401);
    let after = anon
        .post("/auth/refresh", json!({ "refresh_token": refresh2 }))
        .await;
    assert_eq!(after.status, 401, "reuse must revoke the whole family");
}

/// Logout revokes: the logged-out refresh token no longer refreshes.
async fn logout_revokes_the_refresh_token(app: &TestApp) {
    let anon = Session::anonymous(app);
    let pair = anon
        .post(
            "/auth/login",
            json!({ "username": ADMIN, "password": ADMIN_PW }),
        )
        .await
        .body;
    let access = pair["data"]["access_token"].as_str().unwrap();
    let refresh = pair["data"]["refresh_token"].as_str().unwrap();
    let out = Session::with_token(app, access)
        .post("/auth/logout", json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(out.status, 200);
    let again = anon
        .post("/auth/refresh", json!({ "refresh_token": refresh }))
        .await;
    assert_eq!(again.status, 401);
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

/// The status of `m path` with `key` in `X-API-Key`.
async fn with_api_key(app: &TestApp, m: Method, path: &str, key: &str) -> u16 {
    let mut req = app
        .client
        .request(m.clone(), app.url(path))
        .header("x-api-key", key);
    if m == Method::POST {
        req = req.json(&json!({ "name": "x" }));
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn api_keys_are_shown_once_and_scoped() {
    let app = TestApp::start(|_| {}).await;
    let admin = Session::admin(&app).await;
    let (id, key) = a_key_is_shown_once(&admin).await;
    // Read works with X-API-Key and with Bearer; write does not.
    assert_eq!(
        with_api_key(&app, Method::GET, "/api/v1/auth/me", &key).await,
        200
    );
    metrics_need_an_admin_key(&app, &admin, &key).await;
    let write = with_api_key(&app, Method::POST, "/api/v1/api-keys", &key).await;
    assert_eq!(write, 403);
    // An admin-role user's read key is still not an admin credential.
    assert_eq!(
        with_api_key(&app, Method::GET, "/api/v1/users", &key).await,
        403
    );
    // Revoked keys stop working.
    let del = admin.delete(&format!("/api-keys/{id}")).await;
    assert_eq!(del.status, 200);
    let gone = with_api_key(&app, Method::GET, "/api/v1/auth/me", &key).await;
    assert_eq!(gone, 401);
    app.stop().await;
}

/// The admin makes a read key: its answer shows the key (`mk_…`), the list does not. Its id
/// and key.
async fn a_key_is_shown_once(admin: &Session) -> (String, String) {
    let created = admin
        .post("/api-keys", json!({ "name": "cron", "scopes": ["read"] }))
        .await
        .body;
    let key = created["data"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("mk_"));
    let listed = admin
        .client
        .get(format!("{}/api/v1/api-keys", admin.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains(&key));
    let id = created["data"]["api_key"]["id"].as_str().unwrap();
    (id.to_string(), key)
}

/// Metrics are for admins: a read key is refused, an admin key (as Bearer, the way
/// Prometheus sends it) is served.
async fn metrics_need_an_admin_key(app: &TestApp, admin: &Session, key: &str) {
    let metrics = Session::with_token(app, key).get("/metrics").await;
    assert_eq!(metrics.status, 403);
    let ops = admin
        .post(
            "/api-keys",
            json!({ "name": "prometheus", "scopes": ["admin"] }),
        )
        .await
        .body;
    let ops = ops["data"]["key"].as_str().unwrap().to_string();
    let metrics = app
        .client
        .get(app.url("/api/v1/metrics"))
        .bearer_auth(&ops)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(text.contains("musicd_http_requests_total"), "{text}");
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
