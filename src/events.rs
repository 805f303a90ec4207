//! The event bus: progress and state changes of tasks, with ids that only grow (`<ms>-<seq>`,
//! the shape of Redis stream ids). In-process it is a broadcast channel plus a replay ring;
//! with Redis, events go to a stream (`XADD`, bounded) that every API process tails, so events
//! from a separate `musicd worker` reach clients of `musicd serve`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::streams::{StreamRangeReply, StreamReadReply};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::wire::EventBody;

/// Events kept for `Last-Event-ID` replay (per process; the Redis stream keeps as many).
pub const REPLAY_WINDOW: usize = 10_000;

/// A growing event id: milliseconds and a sequence within the millisecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(pub u64, pub u64);

impl EventId {
    /// Parses `<ms>-<seq>`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.trim().split_once('-')?;
        Some(EventId(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// One event.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    /// Growing id.
    #[serde(skip)]
    pub id: Option<EventId>,
    /// Whose task this is (for per-user visibility); not sent to clients.
    pub owner_id: Option<String>,
    /// Its type and the body clients receive (`kind` and `data` in the stored JSON).
    #[serde(flatten)]
    pub body: EventBody,
}

/// What a replay found.
#[derive(Debug)]
pub enum Replay {
    /// Every event after the given id, in order.
    Events(Vec<Arc<Event>>),
    /// The id is older than the replay window: some events are gone.
    Gap(Vec<Arc<Event>>),
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    /// Ids at or after this one were all seen by this process.
    start: EventId,
    last: EventId,
}

/// The bus. Cheap to share behind an `Arc`.
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    ring: Mutex<Ring>,
    redis: Option<(ConnectionManager, String)>,
    /// The tail's own connection: `XREAD BLOCK` holds a connection for up to a second, and
    /// on a shared multiplexed connection every publish would wait behind it.
    tail_conn: Option<ConnectionManager>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.redis.is_some() {
            "EventBus(redis)"
        } else {
            "EventBus(local)"
        })
    }
}

fn now_ms() -> u64 {
    crate::db::now_ms().max(0) as u64
}

impl EventBus {
    /// An in-process bus.
    pub fn local() -> Arc<Self> {
        Arc::new(Self::new(None))
    }

    /// A bus over a Redis stream named `<prefix>:events`.
    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let conn = ConnectionManager::new(client.clone()).await?;
        // The tail blocks in XREAD for up to a second: the default response timeout is shorter.
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)));
        let tail = ConnectionManager::new_with_config(client, config).await?;
        let mut bus = Self::new(Some((conn, format!("{prefix}:events"))));
        bus.tail_conn = Some(tail);
        Ok(Arc::new(bus))
    }

    fn new(redis: Option<(ConnectionManager, String)>) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            tx,
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(1024),
                start: EventId(now_ms(), 0),
                last: EventId(now_ms(), 0),
            }),
            redis,
            tail_conn: None,
        }
    }

    /// Publishes an event. With Redis, local subscribers receive it through the tail task.
    pub async fn publish(&self, owner_id: Option<&str>, body: EventBody) {
        let kind = body.kind();
        let event = Event {
            id: None,
            owner_id: owner_id.map(str::to_string),
            body,
        };
        metrics::counter!("musicd_events_total", "kind" => kind).increment(1);
        match &self.redis {
            None => self.deliver_local(event),
            Some((conn, key)) => {
                let body = match serde_json::to_string(&event) {
                    Ok(b) => b,
                    Err(e) => return tracing::warn!("event not serializable: {e}"),
                };
                let mut c = conn.clone();
                let r: redis::RedisResult<String> = xadd(key, body).query_async(&mut c).await;
                if let Err(e) = r {
                    tracing::warn!("cannot publish event to Redis: {e}");
                }
            }
        }
    }

    /// Publishes many events of one owner; with Redis, in pipelined batches (a 10,000-track
    /// request announces its children in a few round trips, not 10,000).
    pub async fn publish_many(&self, owner_id: Option<&str>, bodies: Vec<EventBody>) {
        let Some((conn, key)) = &self.redis else {
            for body in bodies {
                self.publish(owner_id, body).await;
            }
            return;
        };
        for b in &bodies {
            metrics::counter!("musicd_events_total", "kind" => b.kind()).increment(1);
        }
        let mut c = conn.clone();
        for chunk in bodies.chunks(500) {
            let mut pipe = redis::pipe();
            for body in chunk {
                let event = Event {
                    id: None,
                    owner_id: owner_id.map(str::to_string),
                    body: body.clone(),
                };
                let body = serde_json::to_string(&event).unwrap_or_default();
                pipe.add_command(xadd(key, body)).ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut c).await {
                tracing::warn!("cannot publish events to Redis: {e}");
            }
        }
    }

    /// Assigns an id (local mode) and hands the event to the ring and live subscribers.
    fn deliver_local(&self, mut event: Event) {
        let mut ring = self.ring.lock().expect("event ring");
        let id = match event.id {
            Some(id) => id,
            None => {
                let ms = now_ms();
                if ms > ring.last.0 {
                    EventId(ms, 0)
                } else {
                    EventId(ring.last.0, ring.last.1 + 1)
                }
            }
        };
        if id <= ring.last && !ring.events.is_empty() {
            return; // already delivered (Redis tail overlap)
        }
        ring.last = id;
        event.id = Some(id);
        let event = Arc::new(event);
        if ring.events.len() == REPLAY_WINDOW {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        drop(ring);
        let _ = self.tx.send(event);
    }

    /// A live subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// A live subscription and the id it starts after: every later event reaches it.
    pub fn subscribe_now(&self) -> (broadcast::Receiver<Arc<Event>>, EventId) {
        let ring = self.ring.lock().expect("event ring");
        (self.tx.subscribe(), ring.last)
    }

    /// The newest id delivered here.
    pub fn last_id(&self) -> EventId {
        self.ring.lock().expect("event ring").last
    }

    /// Events after `after`, from the ring, or from the Redis stream when the ring does not
    /// reach back that far.
    pub async fn replay(&self, after: EventId) -> Replay {
        let (in_ring, complete) = {
            let ring = self.ring.lock().expect("event ring");
            let items: Vec<_> = ring
                .events
                .iter()
                .filter(|e| e.id.is_some_and(|id| id > after))
                .cloned()
                .collect();
            let first = ring.events.front().and_then(|e| e.id);
            // Complete when the ring reaches back to `after`, or holds everything this
            // process has seen and `after` is no older than that.
            let complete = first.is_some_and(|f| f <= after)
                || (ring.events.len() < REPLAY_WINDOW && after >= ring.start);
            (items, complete)
        };
        if complete {
            return Replay::Events(in_ring);
        }
        if let Some((conn, key)) = &self.redis {
            let mut c = conn.clone();
            let r: redis::RedisResult<StreamRangeReply> = redis::cmd("XRANGE")
                .arg(key)
                .arg(format!("({after}"))
                .arg("+")
                .arg("COUNT")
                .arg(REPLAY_WINDOW)
                .query_async(&mut c)
                .await;
            if let Ok(reply) = r {
                let events: Vec<_> = reply
                    .ids
                    .iter()
                    .filter_map(parse_entry)
                    .map(Arc::new)
                    .collect();
                return Replay::Events(events);
            }
        }
        Replay::Gap(in_ring)
    }

    /// With Redis: tails the stream into the local ring and subscribers until `stop`.
    pub async fn tail(self: Arc<Self>, stop: CancellationToken) {
        let (Some((_, key)), Some(conn)) = (&self.redis, &self.tail_conn) else {
            return;
        };
        let mut conn = conn.clone();
        let mut last = "$".to_string();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let r: redis::RedisResult<Option<StreamReadReply>> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(1000)
                .arg("COUNT")
                .arg(500)
                .arg("STREAMS")
                .arg(key)
                .arg(&last)
                .query_async(&mut conn)
                .await;
            match r {
                Ok(Some(reply)) => {
                    for k in reply.keys {
                        for entry in k.ids {
                            last = entry.id.clone();
                            if let Some(e) = parse_entry(&entry) {
                                self.deliver_local(e);
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("event stream read failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Appends one event to the stream, trimming it to about the replay window.
fn xadd(key: &str, body: String) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(key)
        .arg("MAXLEN")
        .arg("~")
        .arg(REPLAY_WINDOW)
        .arg("*")
        .arg("e")
        .arg(body);
    cmd
}

fn parse_entry(entry: &redis::streams::StreamId) -> Option<Event> {
    let id = EventId::parse(&entry.id)?;
    let body: String = entry.get("e")?;
    let mut event: Event = serde_json::from_str(&body).ok()?;
    event.id = Some(id);
    Some(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_grow_and_replay_follows_them() {
        let bus = EventBus::local();
        let mut rx = bus.subscribe();
        for i in 0..5 {
            let data = crate::wire::TaskEvent {
                task_id: format!("t{i}"),
                ..Default::default()
            };
            bus.publish(Some("u"), crate::wire::TaskEventKind::Progress.with(data))
                .await;
        }
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(rx.recv().await.unwrap().id.unwrap());
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let Replay::Events(rest) = bus.replay(ids[1]).await else {
            panic!("gap")
        };
        assert_eq!(
            rest.iter().map(|e| e.id.unwrap()).collect::<Vec<_>>(),
            ids[2..].to_vec()
        );
        assert_eq!(EventId::parse(&ids[3].to_string()), Some(ids[3]));
    }
}
