//! Retry delays: exponential backoff with full jitter, capped, and overridden by an
//! upstream `Retry-After` when one was given.

use std::time::Duration;

use rand::Rng;

/// The delay before retry number `attempt` (1 = the first retry): a random point in
/// `[base·2^(attempt-1) / 2, base·2^(attempt-1)]`, at most `max`. A `retry_after` from the
/// upstream wins when it is longer.
pub fn delay(
    attempt: u32,
    base: Duration,
    max: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(max);
    let floor = ceiling / 2;
    let jittered = if ceiling > floor {
        rand::rng().random_range(floor..=ceiling)
    } else {
        ceiling
    };
    match retry_after {
        Some(ra) if ra > jittered => ra.min(max.max(ra)),
        _ => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let base = Duration::from_secs(1);
        let max = Duration::from_secs(60);
        for attempt in 1..10 {
            let d = delay(attempt, base, max, None);
            let ceiling = (base * 2u32.pow(attempt - 1)).min(max);
            assert!(d <= ceiling && d >= ceiling / 2, "attempt {attempt}: {d:?}");
        }
        assert!(delay(40, base, max, None) <= max);
    }

    #[test]
    fn honours_retry_after() {
        let d = delay(
            1,
            Duration::from_millis(10),
            Duration::from_secs(60),
            Some(Duration::from_secs(5)),
        );
        assert_eq!(d, Duration::from_secs(5));
    }
}
