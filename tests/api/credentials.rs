//! Stored provider credentials: encrypted at rest, answered masked, admin only.

use serde_json::json;

use crate::helpers::*;
use crate::kit::Session;

const SECRET: &str = "jamendo-client-id-7f3a9c2e5b";
const PATH: &str = "/credentials/jamendo/client_id";

#[tokio::test]
async fn credentials_are_sealed_masked_and_admin_only() {
    let app = TestApp::start(|_| {}).await;
    let admin = Session::admin(&app).await;
    stored_credentials_are_answered_masked(&admin).await;
    the_database_holds_only_ciphertext(&app).await;
    users_get_403_on_every_verb(&app, &admin).await;
    // Bad names and empty values are refused; delete removes.
    let bad = admin
        .put("/credentials/Bad%20Name/x", json!({ "value": "v" }))
        .await;
    assert_eq!(bad.status, 400);
    let empty = admin.put(PATH, json!({ "value": " " })).await;
    assert_eq!(empty.status, 400);
    assert_eq!(admin.delete(PATH).await.status, 204);
    assert_eq!(admin.get(PATH).await.status, 404);
    app.stop().await;
}

/// The admin stores a secret: the answer, the credential and the list show it masked only.
async fn stored_credentials_are_answered_masked(admin: &Session) {
    let res = admin.put(PATH, json!({ "value": SECRET })).await;
    assert_eq!(res.status, 200);
    let body = res.body;
    assert_eq!(body["data"]["masked"], json!("••••2e5b"));
    assert!(!body.to_string().contains(SECRET));
    let got = admin.get(PATH).await.body;
    assert_eq!(got["data"]["masked"], json!("••••2e5b"));
    assert!(!got.to_string().contains(SECRET));
    let all = admin.get("/credentials").await.body;
    assert_eq!(all["data"]["items"].as_array().unwrap().len(), 1);
    assert!(!all.to_string().contains(SECRET));
}

/// The database files hold no plaintext (the main file and its write-ahead log), yet the
/// running daemon can open it (the key is outside the database).
async fn the_database_holds_only_ciphertext(app: &TestApp) {
    for f in ["musicd.db", "musicd.db-wal"] {
        let bytes = std::fs::read(app.data().join(f)).unwrap_or_default();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains(SECRET), "{f} holds the plaintext");
    }
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
        Some(SECRET)
    );
}

/// A user who is not an admin gets 403 on every verb.
async fn users_get_403_on_every_verb(app: &TestApp, admin: &Session) {
    admin
        .post(
            "/users",
            json!({ "username": "erin", "password": "erin-password" }),
        )
        .await;
    let erin = Session::sign_in(app, "erin", "erin-password").await;
    assert_eq!(erin.get(PATH).await.status, 403);
    assert_eq!(erin.put(PATH, json!({ "value": "x" })).await.status, 403);
    assert_eq!(erin.delete(PATH).await.status, 403);
}
