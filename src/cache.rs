//! A small in-process cache whose entries live a few seconds: for rows read on every request
//! of a hot path (the caller's account, a streamed track), where a short staleness across
//! processes is acceptable and changes in this process forget the entry at once. A thin
//! wrapper over `moka` (bounded, expiring, concurrent) that keeps the few verbs we use.

use std::time::Duration;

/// Entries kept at most; moka evicts the least useful beyond it.
const MAX_ENTRIES: u64 = 10_000;

/// Values by key for `ttl`.
pub struct TtlCache<V> {
    inner: moka::sync::Cache<String, V>,
}

impl<V> std::fmt::Debug for TtlCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("entries", &self.inner.entry_count())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> TtlCache<V> {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: moka::sync::Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// The value of `key`, if cached and fresh.
    pub fn get(&self, key: &str) -> Option<V> {
        self.inner.get(key)
    }

    /// Caches `value` for `key`.
    pub fn put(&self, key: &str, value: V) {
        self.inner.insert(key.to_string(), value);
    }

    /// Forgets `key` (it changed).
    pub fn forget(&self, key: &str) {
        self.inner.invalidate(key);
    }

    /// Forgets every key that starts with `prefix`.
    pub fn forget_prefix(&self, prefix: &str) {
        let prefix = prefix.to_string();
        // Fails only when the cache was built without invalidation closures; it is not.
        let _ = self
            .inner
            .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_can_be_forgotten() {
        let c = TtlCache::new(Duration::from_millis(50));
        c.put("a", 1);
        assert_eq!(c.get("a"), Some(1));
        c.forget("a");
        assert_eq!(c.get("a"), None);
        c.put("u/1", 2);
        c.put("u/2", 3);
        c.put("v/1", 4);
        c.forget_prefix("u/");
        assert_eq!(
            (c.get("u/1"), c.get("u/2"), c.get("v/1")),
            (None, None, Some(4))
        );
        c.put("b", 2);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("b"), None);
    }
}
