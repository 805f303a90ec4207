//! `deliver`: one message to one hook (io pool). A webhook gets the JSON payload signed the
//! Standard Webhooks way; a preset (ntfy, Gotify, Discord) gets a readable message in its own
//! format. Through the same address guard as downloads. A 2xx delivers; 408, 429, 5xx and
//! transport failures retry with the `[notify]` backoff; any other answer fails at once. The
//! last failure marks the hook `failing`, and `disabled` after `notify.disable_after` in a row.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{JobCtx, JobError, Outcome};
use crate::db::webhooks::{self, Attempt, Hook};
use crate::failure::code;
use crate::notify;
use crate::wire::HookPayload;

/// The ledger kind.
pub const KIND: &str = "deliver";

/// Largest answer read from a receiver.
const MAX_ANSWER: u64 = 64 * 1024;

/// A delivery's options: the hook, and the message (the same on every attempt).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliverOptions {
    /// The hook.
    pub hook_id: String,
    /// `webhook-id`: `msg_…`, unique per message.
    pub message_id: String,
    /// The message.
    pub payload: HookPayload,
}

#[async_trait::async_trait]
impl super::Job for DeliverOptions {
    const KIND: &'static str = KIND;
    const POOL: crate::queue::Pool = crate::queue::Pool::Io;

    async fn run(self, ctx: &JobCtx) -> Result<Outcome, JobError> {
        run(ctx, self).await
    }
}

/// The vault's name for a hook's secret.
pub fn seal_name(hook_id: &str) -> (&'static str, String) {
    ("webhook", hook_id.to_string())
}

async fn run(ctx: &JobCtx, o: DeliverOptions) -> Result<Outcome, JobError> {
    let shared = &ctx.shared;
    let Some(hook) = webhooks::get(&shared.db, &o.hook_id).await? else {
        return Ok(Outcome::Skipped("the hook was deleted".into()));
    };
    if hook.enabled == 0 && o.payload.kind != notify::TEST {
        return Ok(Outcome::Skipped(format!(
            "the hook is disabled: {}",
            hook.disabled_reason.as_deref().unwrap_or("turned off")
        )));
    }
    let secret = match &hook.secret {
        Some(sealed) => {
            let (p, n) = seal_name(&hook.id);
            Some(shared.vault.open(p, &n, sealed).ok_or_else(|| {
                JobError::permanent(
                    code::CREDENTIALS_UNREADABLE,
                    "the hook's secret cannot be opened (was the credentials secret changed?)",
                )
            })?)
        }
        None => None,
    };
    let req = request(&hook, secret.as_deref(), &o)?;
    let mut opts = crate::providers::fetch_options(&shared.config);
    opts.max_bytes = MAX_ANSWER;
    opts.read_timeout = shared.config.notify.timeout;
    opts.connect_timeout = opts.connect_timeout.min(shared.config.notify.timeout);
    let started = Instant::now();
    let sent = tokio::time::timeout(
        shared.config.notify.timeout,
        musicd_media::request::send(&req, &opts, &ctx.stop),
    )
    .await;
    let latency_ms = started.elapsed().as_millis() as i64;
    let status_code = match &sent {
        Ok(Ok(a)) => Some(a.status as i64),
        _ => None,
    };
    let result = match sent {
        Err(_) => Err(JobError::transient(
            code::TIMEOUT,
            format!(
                "no answer within {} s",
                shared.config.notify.timeout.as_secs()
            ),
        )),
        Ok(Err(_)) if ctx.stop.is_cancelled() => return Err(JobError::Interrupted),
        Ok(Err(e)) => Err(super::pipeline_error(e)),
        Ok(Ok(a)) => judge(&a),
    };
    let attempts = ctx.task.attempts;
    let last = match &result {
        Ok(_) => false,
        Err(JobError::Permanent { .. }) => true,
        Err(_) => attempts >= ctx.task.max_attempts,
    };
    let outcome = match (&result, last) {
        (Ok(_), _) => "delivered",
        (Err(_), true) => "failed",
        (Err(_), false) => "retrying",
    };
    let error = result.as_ref().err().map(|e| e.to_string());
    webhooks::record_attempt(
        &shared.db,
        &hook.id,
        &Attempt {
            id: String::new(),
            message_id: o.message_id.clone(),
            event: o.payload.kind.clone(),
            task_id: Some(ctx.task.id.clone()),
            attempt: attempts,
            at: crate::db::now_ms() - latency_ms,
            status_code,
            latency_ms,
            outcome: outcome.into(),
            error: error.clone(),
        },
    )
    .await?;
    match result {
        Ok(status) => {
            webhooks::delivered(&shared.db, &hook.id).await?;
            tracing::info!(hook_id = hook.id, status, latency_ms, "message delivered");
            Ok(Outcome::Done)
        }
        Err(e) => {
            if last {
                let now = webhooks::failed(
                    &shared.db,
                    &hook.id,
                    &format!(
                        "{e} (after {attempts} attempt{})",
                        if attempts == 1 { "" } else { "s" }
                    ),
                    shared.config.notify.disable_after as i64,
                )
                .await?;
                if let Some(h) = now.filter(|h| h.enabled == 0) {
                    tracing::warn!(
                        hook_id = h.id,
                        "hook disabled: {}",
                        h.disabled_reason.unwrap_or_default()
                    );
                }
            }
            Err(with_backoff(ctx, e))
        }
    }
}

/// A 2xx is delivered; 408, 429 and 5xx are worth another attempt; a redirect or any other
/// answer is not.
fn judge(a: &musicd_media::request::Answer) -> Result<u16, JobError> {
    let s = a.status;
    let said = String::from_utf8_lossy(&a.bytes[..a.bytes.len().min(200)])
        .trim()
        .to_string();
    let said = if said.is_empty() {
        String::new()
    } else {
        format!(": {said}")
    };
    match s {
        200..=299 => Ok(s),
        408 | 429 | 500..=599 => Err(JobError::Transient {
            code: code::UPSTREAM_ERROR,
            message: format!("HTTP {s} from the receiver{said}"),
            retry_after: a.retry_after,
        }),
        300..=399 => Err(JobError::permanent(
            code::UPSTREAM_ERROR,
            format!(
                "HTTP {s} from the receiver: redirects are not followed (to {})",
                a.location.as_deref().unwrap_or("nowhere")
            ),
        )),
        _ => Err(JobError::permanent(
            code::UPSTREAM_ERROR,
            format!("HTTP {s} from the receiver{said}"),
        )),
    }
}

/// A transient error waits the `[notify]` backoff (or the receiver's `Retry-After`, when
/// longer) instead of the queue's.
fn with_backoff(ctx: &JobCtx, e: JobError) -> JobError {
    match e {
        JobError::Transient {
            code,
            message,
            retry_after,
        } => {
            let n = &ctx.shared.config.notify;
            let wait = crate::queue::backoff::delay(
                ctx.task.attempts as u32,
                n.backoff_base,
                n.backoff_max,
                retry_after,
            );
            JobError::Transient {
                code,
                message,
                retry_after: Some(wait),
            }
        }
        e => e,
    }
}

/// The request for one attempt: signed JSON for a webhook, a preset's own format otherwise.
fn request(
    hook: &Hook,
    secret: Option<&str>,
    o: &DeliverOptions,
) -> Result<musicd_media::request::Request, JobError> {
    let bad = |m: String| JobError::permanent(code::VALIDATION_ERROR, m);
    let (url, headers, body) = if hook.kind == "webhook" {
        let body = serde_json::to_vec(&o.payload).map_err(|e| bad(e.to_string()))?;
        let ts = chrono::Utc::now().timestamp();
        let mut headers = vec![
            ("webhook-id".to_string(), o.message_id.clone()),
            ("webhook-timestamp".to_string(), ts.to_string()),
        ];
        if let Some(secret) = secret {
            let key = notify::sign::key_of(secret).map_err(|e| bad(format!("secret {e}")))?;
            headers.push((
                "webhook-signature".to_string(),
                notify::sign::sign(&key, &o.message_id, ts, &body),
            ));
        }
        (hook.url.clone(), headers, body)
    } else {
        let m = notify::message(&o.payload.kind, &o.payload.data);
        let out = notify::targets::preset(&hook.kind, &hook.url, secret, &m).map_err(bad)?;
        (out.url, out.headers, out.body)
    };
    Ok(musicd_media::request::Request {
        method: Some(reqwest::Method::POST),
        url,
        headers,
        body: Some(("application/json".into(), body)),
        follow: false,
    })
}
