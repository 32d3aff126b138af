//! One server's health as the proxy sees it: up or down, failures in a row, ejections, and
//! whether the pool (through etcd) agreed that it is down. The checks that change it are in
//! [`crate::health_check`]; a request that times out counts a failure here too.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One server's health as the checks see it.
#[derive(Debug)]
pub struct Health {
    up: AtomicBool,
    /// A quorum of the pool's proxies reports the server failing (`--topology etcd://...`):
    /// down for every proxy, even one that still reaches it.
    pool_down: AtomicBool,
    failures: AtomicU32,
    /// Times the server was marked down.
    ejections: AtomicU64,
    down_since: Mutex<Option<Instant>>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            failures: AtomicU32::new(0),
            ejections: AtomicU64::new(0),
            pool_down: AtomicBool::new(false),
            down_since: Mutex::new(None),
        }
    }
}

impl Health {
    /// Whether the server takes traffic: this proxy's checks pass and the pool has not
    /// agreed that it is down.
    pub fn is_up(&self) -> bool {
        self.up.load(Relaxed) && !self.pool_down.load(Relaxed)
    }

    /// Whether this proxy's own checks pass (what it reports to the pool).
    pub fn is_locally_up(&self) -> bool {
        self.up.load(Relaxed)
    }

    /// Whether a quorum of the pool's proxies reports the server failing.
    pub fn is_pool_down(&self) -> bool {
        self.pool_down.load(Relaxed)
    }

    /// Records the pool's verdict; true when it changed.
    pub fn set_pool_down(&self, down: bool) -> bool {
        self.pool_down.swap(down, Relaxed) != down
    }

    /// The state for SERVERS DETAIL.
    pub fn state(&self) -> &'static str {
        match (self.is_locally_up(), self.pool_down.load(Relaxed)) {
            (true, false) => "up",
            (true, true) => "pool-down",
            (false, _) => "down",
        }
    }

    /// Times the server was marked down since it joined.
    pub fn ejections(&self) -> u64 {
        self.ejections.load(Relaxed)
    }

    /// Failed checks in a row.
    pub fn failures(&self) -> u32 {
        self.failures.load(Relaxed)
    }

    /// Whether a down server is due for another try.
    pub(crate) fn due(&self, retry_timeout: Duration) -> bool {
        let since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        since.is_none_or(|t| t.elapsed() >= retry_timeout)
    }

    /// Counts a failure seen outside the checks (a request that timed out): the next failed
    /// check is that much closer to the failure limit. The checks alone mark servers down
    /// or up.
    pub fn note_failure(&self) {
        self.failures.fetch_add(1, Relaxed);
    }

    /// Records a check with a failure limit of three (for tests of other modules).
    #[cfg(test)]
    pub(crate) fn record_for_test(&self, ok: bool) -> bool {
        self.record(ok, 3)
    }

    /// Records a check; true when the state changed.
    pub(crate) fn record(&self, ok: bool, failure_limit: u32) -> bool {
        let mut since = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            self.failures.store(0, Relaxed);
            *since = None;
            return !self.up.swap(true, Relaxed);
        }
        let failures = self.failures.fetch_add(1, Relaxed) + 1;
        if !self.is_locally_up() {
            *since = Some(Instant::now());
            return false;
        }
        if failures >= failure_limit {
            self.up.store(false, Relaxed);
            self.ejections.fetch_add(1, Relaxed);
            *since = Some(Instant::now());
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_the_failure_limit_and_up_after_one_success() {
        let health = Health::default();
        assert!(!health.record(false, 3));
        assert!(!health.record(false, 3));
        assert!(health.is_up(), "two failures are below the limit");
        assert!(health.record(false, 3), "the third failure marks it down");
        assert_eq!(health.state(), "down");
        assert!(!health.record(false, 3), "still down: no change to report");
        assert!(!health.due(Duration::from_secs(60)), "a down server waits for the retry timeout");
        assert!(health.due(Duration::ZERO));
        assert!(health.record(true, 3), "one success puts it back");
        assert!(health.is_up());
        assert_eq!(health.failures(), 0);
    }

    #[test]
    fn request_timeouts_count_towards_the_limit() {
        let health = Health::default();
        health.note_failure();
        health.note_failure();
        assert!(health.is_up(), "timeouts alone do not mark a server down");
        assert!(health.record(false, 3), "one failed check after two timeouts reaches the limit");
        assert!(!health.is_up());
    }

    #[test]
    fn a_success_resets_the_count() {
        let health = Health::default();
        health.record(false, 2);
        health.record(true, 2);
        assert!(!health.record(false, 2));
        assert!(health.is_up());
    }
}
