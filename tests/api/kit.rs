//! The test kit: a signed-in [`Session`] with typed verbs over the shared wire types
//! (`musicd::api::types`), one [`eventually`] for everything that waits, and an SSE reader
//! built on `eventsource-stream` (which keeps a multi-byte character split across chunks
//! whole). The browser is in `browser.rs`.

use std::future::Future;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use musicd::api::types::{Accepted, EventBody, Page, TaskView, is_final};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::helpers::{TestApp, login};

/// Polls `probe` every 100 ms until it gives `Some`, and returns that; panics naming `what`
/// once `timeout` has passed.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a task may take to end: CI's two cores run every test at once.
pub const TASK_ENDS_WITHIN: Duration = Duration::from_secs(180);

/// One user's signed-in view of a daemon.
#[derive(Clone)]
pub struct Session {
    /// The HTTP client.
    pub client: reqwest::Client,
    /// `http://host:port`.
    pub base: String,
    /// The access token.
    pub token: String,
}

/// An answer: its status and its JSON body (`Null` when it had none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The `data` of a success envelope, read as `T`; panics on an error answer.
    pub fn good<T: DeserializeOwned>(self) -> T {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {}: {}",
            self.status,
            self.body
        );
        assert_eq!(self.body["success"], json!(true), "{}", self.body);
        serde_json::from_value(self.body["data"].clone())
            .unwrap_or_else(|e| panic!("not the documented shape ({e}): {}", self.body))
    }

    /// The error code of an error answer with this status.
    pub fn error(self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["success"], json!(false), "{}", self.body);
        self.body["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

impl Session {
    /// Signs in as `user` on `app`.
    pub async fn sign_in(app: &TestApp, user: &str, pw: &str) -> Self {
        let token = login(&app.client, &app.base, user, pw).await;
        Self {
            client: app.client.clone(),
            base: app.base.clone(),
            token,
        }
    }

    /// Signs in as `user` on the daemon at `base` (`http://host:port`).
    pub async fn sign_in_at(base: &str, user: &str, pw: &str) -> Self {
        let client = reqwest::Client::new();
        let token = login(&client, base, user, pw).await;
        Self {
            client,
            base: base.to_string(),
            token,
        }
    }

    /// Signs in as the test admin.
    pub async fn admin(app: &TestApp) -> Self {
        Self::sign_in(app, crate::helpers::ADMIN, crate::helpers::ADMIN_PW).await
    }

    /// A session that sends `token` (an access token or an API key) as Bearer.
    pub fn with_token(app: &TestApp, token: &str) -> Self {
        Self {
            client: app.client.clone(),
            base: app.base.clone(),
            token: token.to_string(),
        }
    }

    /// No credentials at all: requests carry no `Authorization` header.
    pub fn anonymous(app: &TestApp) -> Self {
        Self::with_token(app, "")
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let req = if self.token.is_empty() {
            req
        } else {
            req.bearer_auth(&self.token)
        };
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        Reply {
            status,
            body: res.json().await.unwrap_or(Value::Null),
        }
    }

    /// `GET /api/v1{path}`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// `POST /api/v1{path}` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    /// `PUT /api/v1{path}` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.put(self.url(path)).json(&body)).await
    }

    /// `PATCH /api/v1{path}` with a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.patch(self.url(path)).json(&body))
            .await
    }

    /// `DELETE /api/v1{path}`.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path))).await
    }

    /// `POST /downloads` with `body`; the accepted task's id.
    pub async fn request(&self, body: Value) -> String {
        let r = self.post("/downloads", body).await;
        assert_eq!(r.status, 202, "{}", r.body);
        r.good::<Accepted>().task_id
    }

    /// Downloads a URL; the task id.
    pub async fn download(&self, url: &str) -> String {
        self.request(json!({ "url": url })).await
    }

    /// `POST /diagnostics/ping` with `body`; asserts the 202 and returns the task id.
    pub async fn ping(&self, body: Value) -> String {
        let r = self.post("/diagnostics/ping", body).await;
        assert_eq!(r.status, 202, "{}", r.body);
        r.good::<Accepted>().task_id
    }

    /// One task.
    pub async fn task(&self, id: &str) -> TaskView {
        self.get(&format!("/tasks/{id}")).await.good()
    }

    /// A task's children, in source order (the first page of up to 500).
    pub async fn children(&self, id: &str) -> Vec<TaskView> {
        let page: Page<TaskView> = self
            .get(&format!("/tasks/{id}/children?limit=500"))
            .await
            .good();
        page.items
    }

    /// Waits until the task has ended and returns it; the panic when it does not end shows
    /// where it and its children stand.
    pub async fn wait_ended(&self, id: &str) -> TaskView {
        let deadline = tokio::time::Instant::now() + TASK_ENDS_WITHIN;
        loop {
            let t = self.task(id).await;
            if is_final(&t.status) {
                return t;
            }
            if tokio::time::Instant::now() >= deadline {
                let kids: Vec<String> = self
                    .children(id)
                    .await
                    .iter()
                    .map(|k| {
                        format!(
                            "{} {} {:?} attempts {}",
                            k.id, k.status, k.stage, k.attempts
                        )
                    })
                    .collect();
                panic!(
                    "task {id} did not end within {TASK_ENDS_WITHIN:?}: {t:?}\nchildren: {kids:#?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the task ends `done` and returns it.
    pub async fn wait_done(&self, id: &str) -> TaskView {
        let t = self.wait_ended(id).await;
        assert_eq!(t.status, "done", "{t:?}");
        t
    }

    /// Opens the event stream with `query` (e.g. `task_id=…`).
    pub async fn events(&self, query: &str) -> Events {
        let res = self
            .client
            .get(self.url(&format!("/events?{query}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("open /events");
        assert_eq!(res.status(), 200, "GET /events?{query}");
        Events::of(res)
    }
}

/// One SSE message as sent: id, type and the JSON data.
#[derive(Clone, Debug, PartialEq)]
pub struct Msg {
    pub id: String,
    pub event: String,
    pub data: Value,
}

impl Msg {
    /// The message as the shared event type (`None` for `stream.gap` and unknown types).
    pub fn body(&self) -> Option<EventBody> {
        EventBody::parse(&self.event, &self.data.to_string())
    }
}

/// An open event stream.
pub struct Events {
    stream: futures::stream::BoxStream<'static, Msg>,
}

impl Events {
    /// Reads SSE messages from a response that is an event stream.
    pub fn of(res: reqwest::Response) -> Self {
        let stream = res
            .bytes_stream()
            .eventsource()
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| async move {
                let e = r.ok()?;
                (!e.event.is_empty() && e.event != "message").then(|| Msg {
                    id: e.id,
                    event: e.event,
                    data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
                })
            })
            .boxed();
        Self { stream }
    }

    /// Collects messages until `until` holds for what was read, the stream ends, or
    /// `timeout` passes.
    pub async fn read(&mut self, timeout: Duration, until: impl Fn(&[Msg]) -> bool) -> Vec<Msg> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while !until(&out) {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(m)) => out.push(m),
                _ => break,
            }
        }
        out
    }
}

/// Reads SSE messages from a response until `until` holds for the list or `timeout` passes.
pub async fn read_events(
    res: reqwest::Response,
    timeout: Duration,
    until: impl Fn(&[Msg]) -> bool,
) -> Vec<Msg> {
    Events::of(res).read(timeout, until).await
}
