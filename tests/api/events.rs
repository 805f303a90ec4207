//! Server-Sent Events: live delivery, `Last-Event-ID` resume exactly once and in order,
//! single-use tickets, and per-user visibility.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

use crate::kit::Session;
pub use crate::kit::{Msg, read_events};
use crate::upstream::{Entry, Upstream, tone};
use musicd::api::types::{Accepted, EventBody, TaskView};

fn completed(n: usize) -> impl Fn(&[Msg]) -> bool {
    move |m: &[Msg]| m.iter().filter(|e| e.event == "task.completed").count() >= n
}

#[tokio::test]
async fn resume_with_last_event_id_and_visibility() {
    let app = TestApp::start(|_| {}).await;
    let admin = Session::admin(&app).await;
    admin
        .post(
            "/users",
            json!({ "username": "carol", "password": "carol-password" }),
        )
        .await;
    let carol = Session::sign_in(&app, "carol", "carol-password").await;

    // A reference stream that stays connected, and one that will disconnect early.
    let reference = an_event_stream_opens(&admin).await;
    let mut early = admin.events("").await;
    let carol_stream = a_ticket_opens_one_stream(&carol).await;
    let reference = tokio::spawn(read_events(
        reference,
        Duration::from_secs(30),
        completed(4),
    ));
    let carol_events = tokio::spawn(read_events(carol_stream, Duration::from_secs(8), |_| false));

    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(admin.ping(json!({ "sleep_ms": 300 })).await);
    }
    // The early client reads until the first completion, then goes away.
    let first = early.read(Duration::from_secs(20), completed(1)).await;
    let last_seen = first.last().unwrap().id.clone();
    drop(early);
    for _ in 0..2 {
        ids.push(admin.ping(json!({ "sleep_ms": 300 })).await);
    }
    let all = reference.await.unwrap();
    the_reference_saw_four_tasks_in_order(&all);
    resuming_replays_exactly_what_followed(&admin, &all, &last_seen).await;
    // Filtering by task.
    let mut one = admin
        .events(&format!("task_id={}&last_event_id={}", ids[3], all[0].id))
        .await;
    let got = one.read(Duration::from_secs(5), completed(1)).await;
    assert!(!got.is_empty() && got.iter().all(|m| m.data["task_id"] == json!(ids[3])));

    // Carol saw none of the admin's events.
    let carol_saw = carol_events.await.unwrap();
    assert!(carol_saw.is_empty(), "{carol_saw:?}");
    app.stop().await;
}

/// `GET /events` answers 200 as `text/event-stream`.
async fn an_event_stream_opens(s: &Session) -> reqwest::Response {
    let res = s
        .client
        .get(format!("{}/api/v1/events", s.base))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    res
}

/// Carol connects with a ticket, as a browser would: it opens one stream, and is refused
/// the second time.
async fn a_ticket_opens_one_stream(carol: &Session) -> reqwest::Response {
    let t: Value = carol
        .client
        .post(format!("{}/api/v1/events/ticket", carol.base))
        .bearer_auth(&carol.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = t["data"]["ticket"].as_str().unwrap().to_string();
    let url = format!("{}/api/v1/events?ticket={ticket}", carol.base);
    let stream = carol.client.get(&url).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    let reused = carol.client.get(&url).send().await.unwrap();
    assert_eq!(reused.status(), 401, "tickets are single-use");
    stream
}

/// The reference stream saw the four tasks created, ids only growing, each message's data
/// naming its type, and progress in the `working` stage.
fn the_reference_saw_four_tasks_in_order(all: &[Msg]) {
    assert_eq!(
        all.iter().filter(|m| m.event == "task.created").count(),
        4,
        "{all:?}"
    );
    let mut prev = None;
    for m in all {
        let id = musicd::events::EventId::parse(&m.id).expect("event id");
        assert!(prev.is_none_or(|p| p < id), "ids only grow");
        prev = Some(id);
        assert_eq!(m.data["type"], json!(m.event));
    }
    assert!(
        all.iter()
            .any(|m| m.event == "task.progress" && m.data["stage"] == "working")
    );
}

/// Reconnect with Last-Event-ID: exactly what the reference saw after that id.
async fn resuming_replays_exactly_what_followed(admin: &Session, all: &[Msg], last_seen: &str) {
    let resumed = admin
        .client
        .get(format!("{}/api/v1/events", admin.base))
        .bearer_auth(&admin.token)
        .header("last-event-id", last_seen)
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
}

/// A download told as the shared wire types: what `/tasks` answers and what `/events` sends
/// read back as `TaskView` and `EventBody`, and they agree on how the download ended.
#[tokio::test]
async fn a_download_reads_back_as_the_shared_wire_types() {
    let app = TestApp::start(|c| c.fetch_allow_private = true).await;
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audio = std::sync::Arc::new(tone(dir.path(), "a.mp3", 440, 2));
    up.set("a.mp3", Entry::File(audio, "audio/mpeg"));
    let admin = Session::admin(&app).await;
    let mut events = admin.events("kinds=task.").await;

    let id = admin.download(&up.url("a.mp3")).await;
    let task: TaskView = admin.wait_done(&id).await;
    assert_eq!(task.kind, "download");
    assert_eq!(task.source.as_deref(), Some(up.url("a.mp3").as_str()));
    let tracks = admin.children(&id).await;
    assert_eq!(tracks.len(), 1, "{tracks:?}");
    assert_eq!(tracks[0].status, "done");

    let ended = |m: &[Msg]| {
        m.iter()
            .any(|m| m.event == "task.completed" && m.data["task_id"] == json!(id))
    };
    let seen: Vec<EventBody> = events
        .read(Duration::from_secs(30), ended)
        .await
        .iter()
        .map(|m| {
            m.body()
                .unwrap_or_else(|| panic!("not an EventBody: {m:?}"))
        })
        .collect();
    let own: Vec<&str> = seen
        .iter()
        .filter(|e| e.task_id() == id)
        .map(EventBody::kind)
        .collect();
    assert_eq!(own.first(), Some(&"task.created"), "{own:?}");
    assert_eq!(own.last(), Some(&"task.completed"), "{own:?}");
    let last = seen.iter().rev().find(|e| e.task_id() == id).unwrap();
    let body = last.task().expect("a task event");
    assert_eq!(
        (body.status.as_str(), body.attempts),
        ("done", task.attempts)
    );
    assert!(
        seen.iter().any(|e| e.parent_id() == Some(id.as_str())),
        "the track's events name their parent"
    );

    let missing = admin.get("/tasks/no-such-task").await.error(404);
    assert_eq!(missing, "not_found");
    let ping: Accepted = admin.post("/diagnostics/ping", json!({})).await.good();
    assert_eq!(admin.wait_ended(&ping.task_id).await.status, "done");
    app.stop().await;
}
