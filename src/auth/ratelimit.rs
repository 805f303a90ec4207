//! Login throttling per client address (governor's GCRA), with `Retry-After` and
//! `X-RateLimit-*` headers.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::http::{HeaderMap, HeaderValue};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Keyed =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

/// A per-address limiter for login attempts.
pub struct LoginLimiter {
    limiter: Keyed,
    limit: u32,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoginLimiter({}/min)", self.limit)
    }
}

/// Too many attempts: wait `secs`; `headers` say so (`Retry-After`, `X-RateLimit-*`).
#[derive(Debug)]
pub struct Throttled {
    /// Seconds until the next attempt is allowed.
    pub secs: u64,
    /// The response headers that say it.
    pub headers: HeaderMap,
}

impl LoginLimiter {
    /// `per_minute` attempts per address, with bursts of `burst`.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("non-zero"))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero"));
        Self {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            limit: burst.max(1),
        }
    }

    /// Counts an attempt from `ip`: `Ok(headers)` to add to the response, or [`Throttled`].
    pub fn check(&self, ip: IpAddr) -> Result<HeaderMap, Throttled> {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        match self.limiter.check_key(&ip) {
            Ok(snapshot) => {
                headers.insert(
                    "x-ratelimit-remaining",
                    HeaderValue::from(snapshot.remaining_burst_capacity()),
                );
                Ok(headers)
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
                headers.insert("x-ratelimit-reset", HeaderValue::from(secs));
                headers.insert("retry-after", HeaderValue::from(secs));
                Err(Throttled { secs, headers })
            }
        }
    }

    /// Drops state of addresses that are back to full capacity.
    pub fn cleanup(&self) {
        self.limiter.retain_recent();
    }
}
