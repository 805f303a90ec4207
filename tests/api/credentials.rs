//! Stored provider credentials: encrypted at rest, answered masked, admin only.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn credentials_are_sealed_masked_and_admin_only() {
    let app = TestApp::start(|_| {}).await;
    let admin = app.login(ADMIN, ADMIN_PW).await;
    let c = &app.client;
    let secret = "jamendo-client-id-7f3a9c2e5b";
    let url = app.url("/api/v1/credentials/jamendo/client_id");
    let res = c
        .put(&url)
        .bearer_auth(&admin)
        .json(&json!({ "value": secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["masked"], json!("••••2e5b"));
    assert!(!body.to_string().contains(secret));

    let got: Value = c
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["data"]["masked"], json!("••••2e5b"));
    assert!(!got.to_string().contains(secret));
    let all: Value = c
        .get(app.url("/api/v1/credentials"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["data"]["items"].as_array().unwrap().len(), 1);
    assert!(!all.to_string().contains(secret));

    // The database files hold no plaintext (the main file and its write-ahead log).
    for f in ["musicd.db", "musicd.db-wal"] {
        let bytes = std::fs::read(app.data().join(f)).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains(secret), "{f} holds the plaintext");
    }
    // The running daemon can open it (the key is outside the database).
    let vault = musicd::credentials::Vault::load(&musicd::config::Config {
        data_dir: app.data(),
        ..Default::default()
    })
    .unwrap();
    let db = musicd::db::Db::connect(&format!(
        "sqlite://{}",
        app.data().join("musicd.db").display()
    ))
    .await
    .unwrap();
    assert_eq!(
        vault
            .get(&db, "jamendo", "client_id")
            .await
            .unwrap()
            .as_deref(),
        Some(secret)
    );

    // A user who is not an admin gets 403 on every verb.
    c.post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({ "username": "erin", "password": "erin-password" }))
        .send()
        .await
        .unwrap();
    let erin = app.login("erin", "erin-password").await;
    assert_eq!(
        c.get(&url)
            .bearer_auth(&erin)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let res = c
        .put(&url)
        .bearer_auth(&erin)
        .json(&json!({ "value": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        c.delete(&url)
            .bearer_auth(&erin)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // Bad names and empty values are refused; delete removes.
    let bad = c
        .put(app.url("/api/v1/credentials/Bad%20Name/x"))
        .bearer_auth(&admin)
        .json(&json!({ "value": "v" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let empty = c
        .put(&url)
        .bearer_auth(&admin)
        .json(&json!({ "value": " " }))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    assert_eq!(
        c.delete(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(
        c.get(&url)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.stop().await;
}
