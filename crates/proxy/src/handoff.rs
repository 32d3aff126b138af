//! Hinted handoff: no acknowledged write is hidden when a server comes back.
//!
//! While a server is marked down, its keys are served by the next servers clockwise. A write
//! to one of them lands there, and the returning server still holds the key's older value
//! (after a pause, a flap, or a restart with old data on disk). Routing goes back to the
//! returning server, so without repair a read would answer the old value: twemproxy's
//! issues #604 and #438.
//!
//! So, as Dynamo's hinted handoff and Cassandra's hints do, every write that lands elsewhere
//! because a server is down is recorded here: (down server, key, the server that holds the
//! newer value). Such writes hold the key's migration lock while they run. When the server
//! is back, a hinted key is repaired before anyone uses it (the session gates requests on
//! hinted keys, and a background task repairs the rest): the holder's value is copied back
//! with `DUMP`/`RESTORE ... REPLACE`, or the stale copy is deleted when the holder has none
//! (the key was deleted meanwhile), and the holder's copy is removed.
//!
//! The record is bounded ([`Hints::new`]'s `max_keys` per server). When it overflows, the
//! returning server is flushed before it takes traffic again: a cache that starts cold
//! never answers a stale value, which a partial repair could not promise.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;

use bytes::Bytes;

/// The keys written elsewhere while one server was down.
#[derive(Debug, Default)]
struct ServerHints {
    /// Key -> the address of the server that took the write.
    keys: HashMap<Bytes, String>,
    /// More keys than the bound were written: the server must be flushed on return.
    overflowed: bool,
}

/// Every server's hints.
#[derive(Debug)]
pub struct Hints {
    by_server: Mutex<HashMap<String, ServerHints>>,
    /// Some hint is recorded (the fast path checks only this).
    pending: AtomicBool,
    max_keys: usize,
}

impl Hints {
    /// An empty record keeping at most `max_keys` keys per down server.
    pub fn new(max_keys: usize) -> Self {
        Self { by_server: Mutex::default(), pending: AtomicBool::new(false), max_keys }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ServerHints>> {
        self.by_server.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any hint waits for repair.
    pub fn pending(&self) -> bool {
        self.pending.load(Relaxed)
    }

    /// Records that `key`, owned by the down server `down`, was written on `holder`.
    pub fn record(&self, down: &str, key: &Bytes, holder: &str) {
        let mut all = self.lock();
        let hints = all.entry(down.to_string()).or_default();
        if hints.overflowed {
            return;
        }
        if hints.keys.len() >= self.max_keys && !hints.keys.contains_key(key) {
            tracing::warn!(
                backend = down,
                max = self.max_keys,
                "[proxy] hint log of {down} is full: it will be flushed when it comes back"
            );
            hints.overflowed = true;
            hints.keys.clear();
        } else {
            hints.keys.insert(key.clone(), holder.to_string());
        }
        self.pending.store(true, Relaxed);
    }

    /// Whether `server` must be flushed before it takes traffic again.
    pub fn overflowed(&self, server: &str) -> bool {
        self.lock().get(server).is_some_and(|h| h.overflowed)
    }

    /// Forgets everything about `server` (after it was flushed, or left the ring).
    pub fn clear(&self, server: &str) {
        let mut all = self.lock();
        all.remove(server);
        self.pending.store(!all.is_empty(), Relaxed);
    }

    /// The hints of `key` for servers that `is_up` says are back: (server, holder).
    pub fn for_key(&self, key: &[u8], is_up: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        let all = self.lock();
        all.iter()
            .filter(|(server, _)| is_up(server))
            .filter_map(|(server, hints)| hints.keys.get(key).map(|holder| (server.clone(), holder.clone())))
            .collect()
    }

    /// Up to `n` hinted keys of `server`.
    pub fn some_keys(&self, server: &str, n: usize) -> Vec<Bytes> {
        self.lock().get(server).map(|h| h.keys.keys().take(n).cloned().collect()).unwrap_or_default()
    }

    /// Servers with hints.
    pub fn servers(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Drops the hint of `key` for `server` once it is repaired.
    pub fn done(&self, server: &str, key: &[u8]) {
        let mut all = self.lock();
        if let Some(hints) = all.get_mut(server) {
            hints.keys.remove(key);
            if hints.keys.is_empty() && !hints.overflowed {
                all.remove(server);
            }
        }
        self.pending.store(!all.is_empty(), Relaxed);
    }

    /// Hinted keys in all (for INFO).
    pub fn len(&self) -> usize {
        self.lock().values().map(|h| h.keys.len()).sum()
    }

    /// Whether no key is hinted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_are_recorded_repaired_and_bounded() {
        let hints = Hints::new(2);
        assert!(!hints.pending());
        hints.record("a:1", &Bytes::from_static(b"k1"), "b:2");
        assert!(hints.pending());
        assert_eq!(hints.for_key(b"k1", |_| true), vec![("a:1".to_string(), "b:2".to_string())]);
        assert!(hints.for_key(b"k1", |_| false).is_empty(), "only servers that are back are repaired");
        hints.done("a:1", b"k1");
        assert!(!hints.pending());
        for key in ["x", "y", "z"] {
            hints.record("a:1", &Bytes::copy_from_slice(key.as_bytes()), "b:2");
        }
        assert!(hints.overflowed("a:1"), "the third key overflows a bound of two");
        hints.clear("a:1");
        assert!(!hints.overflowed("a:1") && !hints.pending());
    }
}
