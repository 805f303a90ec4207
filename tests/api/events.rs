//! Server-Sent Events: live delivery, `Last-Event-ID` resume exactly once and in order,
//! single-use tickets, and per-user visibility.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::*;

/// One parsed SSE message.
#[derive(Clone, Debug, PartialEq)]
pub struct Msg {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// Reads SSE messages from a response until `until` holds for the list or `timeout` passes.
pub async fn read_events(
    res: reqwest::Response,
    timeout: Duration,
    until: impl Fn(&[Msg]) -> bool,
) -> Vec<Msg> {
    let mut body = res.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !until(&out) {
        let chunk = match tokio::time::timeout_at(deadline, body.next()).await {
            Ok(Some(Ok(c))) => c,
            _ => break,
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(pos) = buf.find("\n\n") {
            let block: String = buf.drain(..pos + 2).collect();
            let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if !event.is_empty() {
                out.push(Msg {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                });
            }
        }
    }
    out
}

fn completed(n: usize) -> impl Fn(&[Msg]) -> bool {
    move |m: &[Msg]| m.iter().filter(|e| e.event == "task.completed").count() >= n
}

#[tokio::test]
async fn resume_with_last_event_id_and_visibility() {
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

    // A reference stream that stays connected, and one that will disconnect early.
    let reference = c
        .get(app.url("/api/v1/events"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(reference.status(), 200);
    assert!(
        reference.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let early = c
        .get(app.url("/api/v1/events"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    // Carol connects with a ticket, as a browser would.
    let t: Value = c
        .post(app.url("/api/v1/events/ticket"))
        .bearer_auth(&carol)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = t["data"]["ticket"].as_str().unwrap().to_string();
    let carol_stream = c
        .get(app.url(&format!("/api/v1/events?ticket={ticket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(carol_stream.status(), 200);
    let reused = c
        .get(app.url(&format!("/api/v1/events?ticket={ticket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(reused.status(), 401, "tickets are single-use");

    let reference = tokio::spawn(read_events(
        reference,
        Duration::from_secs(30),
        completed(4),
    ));
    let carol_events = tokio::spawn(read_events(carol_stream, Duration::from_secs(8), |_| false));

    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(ping(c, &app.base, &admin, json!({ "sleep_ms": 300 })).await);
    }
    // The early client reads until the first completion, then goes away.
    let first = read_events(early, Duration::from_secs(20), completed(1)).await;
    let last_seen = first.last().unwrap().id.clone();
    for _ in 0..2 {
        ids.push(ping(c, &app.base, &admin, json!({ "sleep_ms": 300 })).await);
    }
    let all = reference.await.unwrap();
    assert_eq!(
        all.iter().filter(|m| m.event == "task.created").count(),
        4,
        "{all:?}"
    );
    let mut prev = None;
    for m in &all {
        let id = musicd::events::EventId::parse(&m.id).expect("event id");
        assert!(prev.is_none_or(|p| p < id), "ids only grow");
        prev = Some(id);
        assert_eq!(m.data["type"], json!(m.event));
    }
    assert!(
        all.iter()
            .any(|m| m.event == "task.progress" && m.data["stage"] == "working")
    );

    // Reconnect with Last-Event-ID: exactly what the reference saw after that id.
    let resumed = c
        .get(app.url("/api/v1/events"))
        .bearer_auth(&admin)
        .header("last-event-id", &last_seen)
        .send()
        .await
        .unwrap();
    let expected: Vec<Msg> = all
        .iter()
        .skip_while(|m| m.id != last_seen)
        .skip(1)
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    let got = read_events(resumed, Duration::from_secs(10), |m| {
        m.len() >= expected.len()
    })
    .await;
    assert_eq!(
        got.iter().map(|m| &m.id).collect::<Vec<_>>(),
        expected.iter().map(|m| &m.id).collect::<Vec<_>>()
    );

    // Filtering by task.
    let one = c
        .get(app.url(&format!(
            "/api/v1/events?task_id={}&last_event_id={}",
            ids[3], all[0].id
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let got = read_events(one, Duration::from_secs(5), completed(1)).await;
    assert!(!got.is_empty() && got.iter().all(|m| m.data["task_id"] == json!(ids[3])));

    // Carol saw none of the admin's events.
    let carol_saw = carol_events.await.unwrap();
    assert!(carol_saw.is_empty(), "{carol_saw:?}");
    app.stop().await;
}
