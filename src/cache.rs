//! A small in-process cache whose entries live a few seconds: for rows read on every request
//! of a hot path (the caller's account, a streamed track), where a short staleness across
//! processes is acceptable and changes in this process forget the entry at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; beyond it, expired ones are dropped, then everything.
const MAX_ENTRIES: usize = 10_000;

/// Values by key for `ttl`.
#[derive(Debug)]
pub struct TtlCache<V> {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    /// An empty cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key`, if cached and fresh.
    pub fn get(&self, key: &str) -> Option<V> {
        let map = self.map.lock().expect("cache lock");
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Caches `value` for `key`.
    pub fn put(&self, key: &str, value: V) {
        let mut map = self.map.lock().expect("cache lock");
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
        }
        map.insert(key.to_string(), (Instant::now(), value));
    }

    /// Forgets `key` (it changed).
    pub fn forget(&self, key: &str) {
        self.map.lock().expect("cache lock").remove(key);
    }

    /// Forgets every key that starts with `prefix`.
    pub fn forget_prefix(&self, prefix: &str) {
        self.map
            .lock()
            .expect("cache lock")
            .retain(|k, _| !k.starts_with(prefix));
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
        c.put("b", 2);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("b"), None);
    }
}
