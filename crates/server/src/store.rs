//! The keyspace: binary keys and values with optional expiry, safe under concurrency.
//!
//! Sharded by key hash, each shard a `hashbrown::HashTable` behind a std mutex that is never
//! held across an `.await`. An entry is a single heap block holding its expiry, key and
//! value, so a small key costs one allocation plus one 16-byte table slot.

use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hashbrown::HashTable;
use tokio::time::Instant;

use crate::glob::glob_match;

/// Number of shards; a power of two. The shard is the top bits of a key's hash, so SCAN
/// walks the keyspace in hash order across shards.
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
/// SCAN cursors are the top 48 bits of a key's hash: small enough that a proxy can add a
/// server index to them and still fit in a u64.
const CURSOR_BITS: u32 = 48;
/// Header of an entry block: expiry (u64) then key length (u32), little endian.
const HEADER: usize = 12;

/// One key and its value in one allocation: `[expires_at u64][key_len u32][key][value]`.
struct Entry(Box<[u8]>);

impl Entry {
    fn new(key: &[u8], value: &[u8], expires_at: u64) -> Self {
        let mut block = Vec::with_capacity(HEADER + key.len() + value.len());
        block.extend_from_slice(&expires_at.to_le_bytes());
        block.extend_from_slice(&(key.len() as u32).to_le_bytes());
        block.extend_from_slice(key);
        block.extend_from_slice(value);
        Entry(block.into_boxed_slice())
    }

    fn expires_at(&self) -> u64 {
        u64::from_le_bytes(self.0[..8].try_into().unwrap_or_default())
    }

    fn set_expires_at(&mut self, at: u64) {
        self.0[..8].copy_from_slice(&at.to_le_bytes());
    }

    fn key_len(&self) -> usize {
        u32::from_le_bytes(self.0[8..12].try_into().unwrap_or_default()) as usize
    }

    fn key(&self) -> &[u8] {
        &self.0[HEADER..HEADER + self.key_len()]
    }

    fn value(&self) -> &[u8] {
        &self.0[HEADER + self.key_len()..]
    }

    fn is_expired(&self, now: u64) -> bool {
        let at = self.expires_at();
        at != 0 && at <= now
    }
}

/// How a SET behaves, from its options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Expire after this long (EX, PX, EXAT, PXAT).
    pub ttl: Option<Duration>,
    /// Only if absent (NX).
    pub only_if_absent: bool,
    /// Only if present (XX).
    pub only_if_present: bool,
    /// Keep the current expiry (KEEPTTL).
    pub keep_ttl: bool,
}

/// A key's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// No such key.
    Missing,
    /// The key never expires.
    Persistent,
    /// The key expires in this many milliseconds.
    Millis(u64),
}

/// INCRBY failures, with Redis's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrError {
    /// The value is not a decimal integer.
    NotAnInteger,
    /// The result would not fit in an i64.
    Overflow,
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    /// Entries with an expiry, for INFO's keyspace line.
    volatile: usize,
}

/// The keyspace. Cheap to share behind an `Arc`.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: hashbrown::DefaultHashBuilder,
    epoch: Instant,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty keyspace.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds on the store's clock; never 0, which marks "no expiry".
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Whether `entry` has expired; reads the clock only for entries with an expiry, so
    /// plain GETs and SETs never pay for it.
    fn expired(&self, entry: &Entry) -> bool {
        let at = entry.expires_at();
        at != 0 && at <= self.now()
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard(&self, hash: u64) -> std::sync::MutexGuard<'_, Shard> {
        let index = (hash >> (64 - SHARD_BITS)) as usize;
        // A panic while holding the lock cannot leave an entry half-written: recover the data.
        self.shards[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` with the live value of `key`, or `None`, under the shard's lock (so a GET
    /// copies the value straight into the reply buffer).
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let hash = self.hash(key);
        let shard = self.shard(hash);
        let entry = shard.table.find(hash, |e| e.key() == key).filter(|e| !self.expired(e));
        f(entry.map(Entry::value))
    }

    /// The live value of `key`, copied.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.get_with(key, |value| value.map(Bytes::copy_from_slice))
    }

    /// Stores `value` under `key` as the options say. Returns whether it was stored (NX/XX
    /// may refuse) and the previous live value when `want_old` is set.
    pub fn set(&self, key: &[u8], value: &[u8], options: SetOptions, want_old: bool) -> (bool, Option<Bytes>) {
        let hash = self.hash(key);
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        let current = shard.table.find_mut(hash, |e| e.key() == key);
        let live = current.as_ref().filter(|e| !self.expired(e));
        let old = if want_old { live.map(|e| Bytes::copy_from_slice(e.value())) } else { None };
        let exists = live.is_some();
        if (options.only_if_absent && exists) || (options.only_if_present && !exists) {
            return (false, old);
        }
        let expires_at = match (options.ttl, &live) {
            (Some(ttl), _) => self.now() + (ttl.as_millis() as u64).max(1),
            (None, Some(e)) if options.keep_ttl => e.expires_at(),
            _ => 0,
        };
        let entry = Entry::new(key, value, expires_at);
        match current {
            Some(slot) => {
                shard.volatile -= usize::from(slot.expires_at() != 0);
                *slot = entry;
            }
            None => {
                let hasher = &self.hasher;
                shard.table.insert_unique(hash, entry, |e| hasher.hash_one(e.key()));
            }
        }
        shard.volatile += usize::from(expires_at != 0);
        (true, old)
    }

    /// Removes `key`; whether a live key was removed.
    pub fn remove(&self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let now = self.now();
        let mut shard = self.shard(hash);
        match shard.table.find_entry(hash, |e| e.key() == key) {
            Ok(found) => {
                let (entry, _) = found.remove();
                shard.volatile -= usize::from(entry.expires_at() != 0);
                !entry.is_expired(now)
            }
            Err(_) => false,
        }
    }

    /// Whether `key` holds a live value.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get_with(key, |value| value.is_some())
    }

    /// Sets (`Some`) or clears (`None`) the expiry of a live key; whether the key exists.
    /// A zero TTL deletes the key, as in Redis.
    pub fn expire(&self, key: &[u8], ttl: Option<Duration>) -> bool {
        if ttl == Some(Duration::ZERO) {
            return self.remove(key);
        }
        let hash = self.hash(key);
        let now = self.now();
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        let Some(entry) = shard.table.find_mut(hash, |e| e.key() == key).filter(|e| !e.is_expired(now)) else {
            return false;
        };
        let at = ttl.map_or(0, |ttl| now + (ttl.as_millis() as u64).max(1));
        shard.volatile = shard.volatile + usize::from(at != 0) - usize::from(entry.expires_at() != 0);
        entry.set_expires_at(at);
        true
    }

    /// The time to live of `key`.
    pub fn ttl(&self, key: &[u8]) -> Ttl {
        let hash = self.hash(key);
        let now = self.now();
        let shard = self.shard(hash);
        match shard.table.find(hash, |e| e.key() == key).filter(|e| !e.is_expired(now)) {
            None => Ttl::Missing,
            Some(e) if e.expires_at() == 0 => Ttl::Persistent,
            Some(e) => Ttl::Millis(e.expires_at() - now),
        }
    }

    /// Adds `delta` to the integer stored at `key` (0 when absent), keeping its expiry.
    pub fn incr_by(&self, key: &[u8], delta: i64) -> Result<i64, IncrError> {
        let hash = self.hash(key);
        let now = self.now();
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        let current = shard.table.find_mut(hash, |e| e.key() == key);
        let (old, expires_at) = match current.as_ref().filter(|e| !e.is_expired(now)) {
            Some(e) => (parse_i64(e.value()).ok_or(IncrError::NotAnInteger)?, e.expires_at()),
            None => (0, 0),
        };
        let new = old.checked_add(delta).ok_or(IncrError::Overflow)?;
        let entry = Entry::new(key, new.to_string().as_bytes(), expires_at);
        match current {
            Some(slot) => *slot = entry,
            None => {
                let hasher = &self.hasher;
                shard.table.insert_unique(hash, entry, |e| hasher.hash_one(e.key()));
            }
        }
        Ok(new)
    }

    /// Live keys. Exact: expired keys not yet swept are not counted (only shards holding
    /// keys with a TTL are walked to find them).
    pub fn len(&self) -> usize {
        let now = self.now();
        self.shards
            .iter()
            .map(|s| {
                let shard = lock(s);
                let expired =
                    if shard.volatile == 0 { 0 } else { shard.table.iter().filter(|e| e.is_expired(now)).count() };
                shard.table.len() - expired
            })
            .sum()
    }

    /// Whether the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).volatile).sum()
    }

    /// Removes every key.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            *lock(shard) = Shard::default();
        }
    }

    /// Every live key matching the glob `pattern`.
    pub fn keys(&self, pattern: &[u8]) -> Vec<Bytes> {
        let now = self.now();
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            let live = shard.table.iter().filter(|e| !e.is_expired(now));
            keys.extend(live.filter(|e| glob_match(pattern, e.key())).map(|e| Bytes::copy_from_slice(e.key())));
        }
        keys
    }

    /// One step of SCAN: about `count` keys from `cursor` on, in hash order, and the cursor
    /// to continue from (0 when done; always below 2^48). Every key present for the whole scan is returned at
    /// least once, however the tables grow meanwhile, because the cursor is a hash value.
    pub fn scan(&self, cursor: u64, count: usize, pattern: Option<&[u8]>) -> (u64, Vec<Bytes>) {
        let now = self.now();
        let count = count.max(1);
        let mut found: Vec<(u64, Bytes)> = Vec::new();
        let mut shard_index = (cursor >> (CURSOR_BITS - SHARD_BITS)) as usize;
        while shard_index < SHARDS {
            let shard = lock(&self.shards[shard_index]);
            let mut batch: Vec<(u64, &Entry)> = shard
                .table
                .iter()
                .filter(|e| !e.is_expired(now))
                .map(|e| (self.hash(e.key()) >> (64 - CURSOR_BITS), e))
                .filter(|(hash, _)| *hash >= cursor)
                .collect();
            batch.sort_unstable_by_key(|(hash, _)| *hash);
            let room = count - found.len();
            if batch.len() > room {
                let next = batch[room].0;
                found.extend(batch[..room].iter().map(|(h, e)| (*h, Bytes::copy_from_slice(e.key()))));
                return (next, filter_keys(found, pattern));
            }
            found.extend(batch.iter().map(|(h, e)| (*h, Bytes::copy_from_slice(e.key()))));
            drop(shard);
            shard_index += 1;
            if found.len() >= count {
                let next = if shard_index < SHARDS { (shard_index as u64) << (CURSOR_BITS - SHARD_BITS) } else { 0 };
                return (next, filter_keys(found, pattern));
            }
        }
        (0, filter_keys(found, pattern))
    }

    /// Drops the expired entries of one shard (`index` wraps); returns how many.
    pub fn sweep(&self, index: usize) -> usize {
        let now = self.now();
        let mut guard = lock(&self.shards[index % SHARDS]);
        let shard = &mut *guard;
        if shard.volatile == 0 {
            return 0;
        }
        let before = shard.table.len();
        let mut volatile_removed = 0;
        shard.table.retain(|e| {
            let expired = e.is_expired(now);
            volatile_removed += usize::from(expired);
            !expired
        });
        shard.volatile -= volatile_removed;
        before - shard.table.len()
    }

    /// Number of shards, for sweeping them in turn.
    pub fn shard_count(&self) -> usize {
        SHARDS
    }

    /// Approximate heap bytes held by keys and values (INFO's `used_memory`).
    pub fn memory_estimate(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let shard = lock(s);
                let blocks: usize = shard.table.iter().map(|e| e.0.len()).sum();
                blocks + shard.table.capacity() * (std::mem::size_of::<Entry>() + 1)
            })
            .sum()
    }
}

fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn filter_keys(found: Vec<(u64, Bytes)>, pattern: Option<&[u8]>) -> Vec<Bytes> {
    found.into_iter().map(|(_, key)| key).filter(|key| pattern.is_none_or(|p| glob_match(p, key))).collect()
}

/// Parses a value as Redis does for INCR: a decimal i64 without spaces or `+`.
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.starts_with('+') || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// Converts an absolute Unix time in milliseconds (EXAT/PXAT) to a TTL from now.
pub fn ttl_until_unix_ms(at_ms: u64) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_millis(at_ms).saturating_sub(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove() {
        let store = Store::new();
        assert_eq!(store.get(b"k"), None);
        assert!(store.set(b"k", b"v a l", SetOptions::default(), false).0);
        assert_eq!(store.get(b"k").as_deref(), Some(&b"v a l"[..]));
        assert!(store.remove(b"k"));
        assert!(!store.remove(b"k"));
        assert!(store.is_empty());
    }

    #[test]
    fn nx_xx_and_get_old_value() {
        let store = Store::new();
        let nx = SetOptions { only_if_absent: true, ..Default::default() };
        let xx = SetOptions { only_if_present: true, ..Default::default() };
        assert!(!store.set(b"k", b"1", xx, false).0);
        assert!(store.set(b"k", b"1", nx, false).0);
        assert!(!store.set(b"k", b"2", nx, false).0);
        assert_eq!(store.set(b"k", b"3", xx, true), (true, Some(Bytes::from_static(b"1"))));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_never_returned() {
        let store = Store::new();
        let ttl = SetOptions { ttl: Some(Duration::from_millis(1500)), ..Default::default() };
        store.set(b"k", b"v", ttl, false);
        store.set(b"p", b"v", SetOptions::default(), false);
        assert!(matches!(store.ttl(b"k"), Ttl::Millis(ms) if ms <= 1500 && ms > 1400));
        assert_eq!(store.ttl(b"p"), Ttl::Persistent);
        tokio::time::advance(Duration::from_millis(1501)).await;
        assert_eq!(store.get(b"k"), None);
        assert_eq!(store.ttl(b"k"), Ttl::Missing);
        assert!(!store.contains(b"k"));
        assert_eq!(store.keys(b"*"), vec![Bytes::from_static(b"p")]);
        assert_eq!(store.scan(0, 10, None).1, vec![Bytes::from_static(b"p")]);
        let swept: usize = (0..store.shard_count()).map(|i| store.sweep(i)).sum();
        assert_eq!(swept, 1);
        assert_eq!(store.volatile_len(), 0);
    }

    #[test]
    fn incr_keeps_integers_honest() {
        let store = Store::new();
        assert_eq!(store.incr_by(b"n", 5), Ok(5));
        assert_eq!(store.incr_by(b"n", -7), Ok(-2));
        store.set(b"s", b"abc", SetOptions::default(), false);
        assert_eq!(store.incr_by(b"s", 1), Err(IncrError::NotAnInteger));
        store.set(b"m", i64::MAX.to_string().as_bytes(), SetOptions::default(), false);
        assert_eq!(store.incr_by(b"m", 1), Err(IncrError::Overflow));
    }

    #[test]
    fn scan_visits_every_key_once_in_small_steps() {
        let store = Store::new();
        for i in 0..5000 {
            store.set(format!("key:{i}").as_bytes(), b"v", SetOptions::default(), false);
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let (next, keys) = store.scan(cursor, 37, None);
            // Growing the table mid-scan must not hide the keys that were there from the start.
            store.set(format!("late:{calls}").as_bytes(), b"v", SetOptions::default(), false);
            seen.extend(keys);
            calls += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..5000 {
            assert!(seen.contains(format!("key:{i}").as_bytes()), "key:{i} missed");
        }
        assert!(calls >= 5000 / 37);
    }
}
