//! The keyspace: binary keys and values with optional expiry, bounded by `maxmemory`.
//!
//! Sharded by key hash, each shard behind a std mutex that is never held across an
//! `.await`. A shard keeps its entries in a dense slab (`Vec<Entry>`) indexed by a
//! `hashbrown::HashTable<u32>` of slot numbers: the slab gives O(1) random sampling (for
//! Redis's sampled LRU/LFU/random/TTL policies, RANDOMKEY and active expiry) and a parallel
//! SIEVE queue ([`crate::sieve`]). An entry is a single heap block holding its expiry,
//! access metadata, key and value.
//!
//! Memory: each shard counts its bytes honestly (blocks as the allocator rounds them, slab
//! and table capacity) and has `maxmemory / SHARDS` of budget; a write that would exceed it
//! first evicts from its own shard by the policy, under the lock it already holds, so the
//! fast path takes no other lock and touches no shared counter.

use std::cell::Cell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hashbrown::HashTable;
use tokio::time::Instant;

use crate::glob::glob_match;
use crate::sieve::Sieve;

/// Number of shards; a power of two. The shard is the top bits of a key's hash, so SCAN
/// walks the keyspace in hash order across shards.
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;
/// SCAN cursors are the top 48 bits of a key's hash: small enough that a proxy can add a
/// server index to them and still fit in a u64.
const CURSOR_BITS: u32 = 48;
/// The shard of a key's hash: its top [`SHARD_BITS`] bits.
fn shard_index(hash: u64) -> usize {
    (hash >> (64 - SHARD_BITS)) as usize
}

/// The hash a shard's table files a key under: the key's hash turned right by 7 bits.
/// hashbrown keeps a hash's top 7 bits as each slot's tag, checked before comparing keys,
/// and places a key by its low bits. The top bits of our hash chose the shard, so they are
/// the same for every key in it: as tags, 6 of the 7 bits were the same everywhere and a
/// lookup compared 2.7 keys on average instead of about one (callgrind, GET at pipeline
/// 16). Turned right, the tag is the hash's low 7 bits and the place the bits above them.
fn table_hash(hash: u64) -> u64 {
    hash.rotate_right(TAG_BITS)
}

/// The bits of a hash hashbrown keeps as a slot's tag.
const TAG_BITS: u32 = 7;

/// Header of an entry block: expiry (u64), key length (u32), access metadata (u32).
const HEADER: usize = 16;
/// Redis's `maxmemory-samples` default: candidates compared per eviction.
const SAMPLES: usize = 5;
/// Random probes spent looking for keys with a TTL (volatile-* policies) per eviction.
const VOLATILE_PROBES: usize = 64;
/// Most entries one write evicts; the rest waits for later writes (bounds a write's pause
/// after `CONFIG SET maxmemory` lowers the bound).
const MAX_EVICTIONS_PER_WRITE: usize = 64;
/// Slots an active-expiry step examines per lock hold.
const EXPIRE_CHUNK: usize = 64;
/// Redis's LFU: initial counter, `lfu-log-factor`, `lfu-decay-time` (minutes).
const LFU_INIT: u32 = 5;
const LFU_LOG_FACTOR: f64 = 10.0;
const LFU_DECAY_SECS: u32 = 60;
/// Metadata bits: visited (SIEVE), the LFU counter, last access in seconds (wrapping).
const VISITED: u32 = 1 << 31;
const FREQ_SHIFT: u32 = 23;
const CLOCK_MASK: u32 = (1 << FREQ_SHIFT) - 1;
/// Redis's limit on a string's length (`proto-max-bulk-len`).
pub const MAX_STRING: usize = 512 * 1024 * 1024;

/// How the server makes room when `maxmemory` is reached (Redis's `maxmemory-policy`
/// names, plus ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// Refuse writes with `-OOM`.
    NoEviction,
    /// Least recently used among all keys (sampled, as Redis).
    AllKeysLru,
    /// Least frequently used among all keys (Redis's log counter, sampled).
    AllKeysLfu,
    /// Any key.
    AllKeysRandom,
    /// Least recently used among keys with a TTL.
    VolatileLru,
    /// Least frequently used among keys with a TTL.
    VolatileLfu,
    /// Any key with a TTL.
    VolatileRandom,
    /// The key with a TTL nearest its expiry (sampled).
    VolatileTtl,
    /// SIEVE over all keys (NSDI '24; see [`crate::sieve`]): ours, the default.
    #[default]
    AllKeysSieve,
}

impl Policy {
    /// Every policy, in `Policy as u8` order.
    pub const ALL: [Policy; 9] = [
        Policy::NoEviction,
        Policy::AllKeysLru,
        Policy::AllKeysLfu,
        Policy::AllKeysRandom,
        Policy::VolatileLru,
        Policy::VolatileLfu,
        Policy::VolatileRandom,
        Policy::VolatileTtl,
        Policy::AllKeysSieve,
    ];

    /// The names in the order Redis lists them in its CONFIG SET error, ours last.
    pub const NAMES_IN_REDIS_ORDER: &str = "volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, \
                                            allkeys-lfu, allkeys-random, noeviction, allkeys-sieve";

    /// The name `CONFIG` and the flag use.
    pub fn name(self) -> &'static str {
        match self {
            Policy::NoEviction => "noeviction",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
            Policy::AllKeysSieve => "allkeys-sieve",
        }
    }

    /// The policy of a name, case-insensitive.
    pub fn parse(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.name().eq_ignore_ascii_case(name))
    }

    /// Whether it tracks access frequency (OBJECT FREQ) rather than idle time.
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    fn volatile_only(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }
}

/// One key and its value in one allocation: `[expires_at u64][key_len u32][meta u32][key][value]`.
struct Entry(Box<[u8]>);

impl Entry {
    fn new(key: &[u8], value: &[u8], expires_at: u64, meta: u32) -> Self {
        let mut block = Vec::with_capacity(HEADER + key.len() + value.len());
        block.extend_from_slice(&expires_at.to_le_bytes());
        block.extend_from_slice(&(key.len() as u32).to_le_bytes());
        block.extend_from_slice(&meta.to_le_bytes());
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

    fn meta(&self) -> u32 {
        u32::from_le_bytes(self.0[12..16].try_into().unwrap_or_default())
    }

    fn set_meta(&mut self, meta: u32) {
        self.0[12..16].copy_from_slice(&meta.to_le_bytes());
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

    /// Bytes the allocator hands out for the block (glibc: 8 bytes of header, 16-byte
    /// granules, 32 at least) plus its slab slot.
    fn cost(&self) -> usize {
        block_cost(self.0.len())
    }
}

fn block_cost(len: usize) -> usize {
    (len + 8).next_multiple_of(16).max(32)
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

/// A live key as [`Store::update`] shows it.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// Its value.
    pub value: &'a [u8],
    /// When it expires, Unix milliseconds.
    pub expires_at: Option<u64>,
}

/// What [`Store::update`] does to the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing.
    Keep,
    /// Store this value, with this expiry.
    Put(Vec<u8>, Expiry),
    /// Remove the key.
    Delete,
    /// Change only the expiry.
    Expire(Expiry),
}

/// A key's expiry after a [`Change`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// As it was (none for a new key).
    Keep,
    /// None.
    Persist,
    /// At this Unix time in milliseconds (a past time removes the key).
    At(u64),
}

/// Access metadata of a key (OBJECT FREQ, OBJECT IDLETIME).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Seconds since the last access.
    pub idle_secs: u64,
    /// The LFU counter, decayed.
    pub freq: u8,
}

/// Counters for INFO stats, summed over the shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Lookups that found a live key.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// Keys removed to make room.
    pub evicted: u64,
    /// Keys removed because their TTL passed.
    pub expired: u64,
}

#[derive(Default)]
struct Shard {
    /// Slot numbers, by key hash.
    index: HashTable<u32>,
    /// The entries, dense: a removal moves the last one into the hole.
    slots: Vec<Entry>,
    /// SIEVE's queue over `slots`.
    sieve: Sieve,
    /// Entries with an expiry.
    volatile: usize,
    /// Sum of the entries' [`Entry::cost`].
    blocks: usize,
    /// Over budget and could not evict (counted in [`Store::over`]).
    over: bool,
    /// Where active expiry continues in `slots`.
    expire_cursor: usize,
    counters: Counters,
}

impl Shard {
    /// Bytes this shard holds: blocks, slab, queue and table (buckets of 4 bytes and a
    /// control byte, at 7/8 load).
    fn used(&self) -> usize {
        self.blocks
            + self.slots.capacity() * std::mem::size_of::<Entry>()
            + self.sieve.heap_bytes()
            + self.index.capacity() * 8 / 7 * (std::mem::size_of::<u32>() + 1)
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<usize> {
        let slots = &self.slots;
        self.index.find(table_hash(hash), |&i| slots[i as usize].key() == key).map(|&i| i as usize)
    }

    fn insert(&mut self, hash: u64, entry: Entry, hasher: &hashbrown::DefaultHashBuilder) -> usize {
        let slot = self.slots.len();
        self.blocks += entry.cost();
        self.volatile += usize::from(entry.expires_at() != 0);
        self.slots.push(entry);
        self.sieve.push();
        let Shard { index, slots, .. } = self;
        index.insert_unique(table_hash(hash), slot as u32, |&i| table_hash(hasher.hash_one(slots[i as usize].key())));
        slot
    }

    fn replace(&mut self, slot: usize, entry: Entry) {
        let old = &self.slots[slot];
        self.blocks = self.blocks - old.cost() + entry.cost();
        self.volatile = self.volatile + usize::from(entry.expires_at() != 0) - usize::from(old.expires_at() != 0);
        self.slots[slot] = entry;
    }

    fn set_expiry(&mut self, slot: usize, at: u64) {
        let entry = &mut self.slots[slot];
        self.volatile = self.volatile + usize::from(at != 0) - usize::from(entry.expires_at() != 0);
        entry.set_expires_at(at);
    }

    fn remove_at(&mut self, slot: usize, hasher: &hashbrown::DefaultHashBuilder) -> Entry {
        let hash = table_hash(hasher.hash_one(self.slots[slot].key()));
        if let Ok(found) = self.index.find_entry(hash, |&i| i as usize == slot) {
            found.remove();
        }
        let last = self.slots.len() - 1;
        let entry = self.slots.swap_remove(slot);
        self.sieve.swap_remove(slot as u32);
        if slot != last {
            let moved = table_hash(hasher.hash_one(self.slots[slot].key()));
            if let Some(i) = self.index.find_mut(moved, |&i| i as usize == last) {
                *i = slot as u32;
            }
        }
        self.blocks -= entry.cost();
        self.volatile -= usize::from(entry.expires_at() != 0);
        entry
    }

    /// Gives back slab and table capacity when a quarter or less is in use (after keys
    /// expired in bulk), keeping room to double.
    fn shrink(&mut self, hasher: &hashbrown::DefaultHashBuilder) {
        const MIN: usize = 64;
        let len = self.slots.len();
        if self.slots.capacity() > MIN && self.slots.capacity() / 4 >= len {
            self.slots.shrink_to((len * 2).max(MIN));
            self.sieve.shrink_to((len * 2).max(MIN));
            let Shard { index, slots, .. } = self;
            index.shrink_to((len * 2).max(MIN), |&i| table_hash(hasher.hash_one(slots[i as usize].key())));
        }
    }

    /// A random slot holding a key with a TTL, if a few probes find one.
    fn random_volatile(&self) -> Option<usize> {
        if self.volatile == 0 {
            return None;
        }
        (0..VOLATILE_PROBES).map(|_| random_below(self.slots.len())).find(|&i| self.slots[i].expires_at() != 0)
    }
}

/// The keyspace. Cheap to share behind an `Arc`.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    hasher: hashbrown::DefaultHashBuilder,
    epoch: Instant,
    /// Unix milliseconds at `epoch`.
    epoch_unix_ms: u64,
    /// Seconds since `epoch`, updated by [`Store::tick`]: LRU and LFU read it, not the clock.
    clock: AtomicU32,
    /// `maxmemory` in bytes; 0: unbounded.
    maxmemory: AtomicUsize,
    /// `Policy as u8`.
    policy: AtomicU8,
    /// Shards over budget that could not evict: while any is, denyoom commands get `-OOM`.
    over: AtomicUsize,
    /// Active expiry: the shard it continues with, time spent, longest step.
    expire_shard: AtomicUsize,
    expire_micros: AtomicU64,
    expire_max_step_micros: AtomicU64,
    /// Active-expiry lock holds by length: ≤10 µs, ≤100 µs, ≤1 ms, ≤10 ms, longer.
    expire_pauses: [AtomicU64; 5],
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// Seeds of the per-thread generators: each thread takes the next.
static SEEDS: AtomicU64 = AtomicU64::new(0x2545_F491_4F6C_DD1D);

thread_local! {
    static RNG: Cell<u64> = Cell::new(SEEDS.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed) | 1);
}

/// A random number below `n` (xorshift64*, per thread; `n` > 0).
fn random_below(n: usize) -> usize {
    RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % n.max(1)
    })
}

impl Store {
    /// An empty keyspace.
    pub fn new() -> Self {
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            epoch: Instant::now(),
            epoch_unix_ms: unix.as_millis() as u64,
            clock: AtomicU32::new(0),
            maxmemory: AtomicUsize::new(0),
            policy: AtomicU8::new(Policy::default() as u8),
            over: AtomicUsize::new(0),
            expire_shard: AtomicUsize::new(0),
            expire_micros: AtomicU64::new(0),
            expire_max_step_micros: AtomicU64::new(0),
            expire_pauses: Default::default(),
        }
    }

    /// Milliseconds on the store's clock; never 0, which marks "no expiry".
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// The store's clock as Unix milliseconds (follows tokio's paused clock in tests).
    pub fn unix_now_ms(&self) -> u64 {
        self.epoch_unix_ms + self.now() - 1
    }

    fn to_unix(&self, at: u64) -> u64 {
        self.epoch_unix_ms + at - 1
    }

    /// A Unix time as the store's clock (at least 1: a past time is expired at once).
    fn unix_to_clock(&self, unix_ms: u64) -> u64 {
        unix_ms.saturating_sub(self.epoch_unix_ms).saturating_add(1)
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
        let index = shard_index(hash);
        // A panic while holding the lock cannot leave an entry half-written: recover the data.
        lock(&self.shards[index])
    }

    /// Sets `maxmemory` (bytes, 0: unbounded), then evicts down to it.
    pub fn set_maxmemory(&self, bytes: usize) {
        self.maxmemory.store(bytes, Relaxed);
        self.enforce();
    }

    /// `maxmemory` in bytes.
    pub fn maxmemory(&self) -> usize {
        self.maxmemory.load(Relaxed)
    }

    /// Sets the eviction policy.
    pub fn set_policy(&self, policy: Policy) {
        self.policy.store(policy as u8, Relaxed);
        self.enforce();
    }

    /// The eviction policy.
    pub fn policy(&self) -> Policy {
        Policy::ALL.get(self.policy.load(Relaxed) as usize).copied().unwrap_or_default()
    }

    /// Whether denyoom commands are refused (`-OOM`): some shard is over its budget and its
    /// policy found nothing to evict. One relaxed load.
    pub fn refuses_writes(&self) -> bool {
        self.over.load(Relaxed) > 0
    }

    /// Evicts every shard down to its budget (after the bound or policy changed). The slab
    /// and table give back capacity as keys go: sized for the old key count, they would
    /// otherwise count against the new bound until nearly every key was evicted.
    fn enforce(&self) {
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            // Unbounded here: an operator lowered the bound and asked for it.
            loop {
                let stuck = self.make_room(&mut shard, 0);
                shard.shrink(&self.hasher);
                if stuck || self.budget() == 0 || shard.used() <= self.budget() {
                    break;
                }
            }
            self.settle(&mut shard);
        }
    }

    /// Budget of one shard; 0: unbounded.
    fn budget(&self) -> usize {
        self.maxmemory.load(Relaxed) / SHARDS
    }

    /// Evicts up to [`MAX_EVICTIONS_PER_WRITE`] entries until `extra` more bytes fit.
    /// Returns whether it is stuck: over budget and the policy has nothing to evict.
    fn make_room(&self, shard: &mut Shard, extra: usize) -> bool {
        let budget = self.budget();
        if budget == 0 || shard.used() + extra <= budget {
            return false;
        }
        let policy = self.policy();
        for _ in 0..MAX_EVICTIONS_PER_WRITE {
            if shard.used() + extra <= budget {
                return false;
            }
            let Some(victim) = self.victim(shard, policy) else { return true };
            let entry = shard.remove_at(victim, &self.hasher);
            if entry.is_expired(self.now()) {
                shard.counters.expired += 1;
            } else {
                shard.counters.evicted += 1;
            }
        }
        false
    }

    /// Evicts if a write left `shard` over budget (a table or slab that grew), and records
    /// whether it is stuck there (see [`Store::refuses_writes`]).
    fn settle(&self, shard: &mut Shard) {
        let budget = self.budget();
        let over = budget != 0 && shard.used() > budget && self.make_room(shard, 0);
        if over != shard.over {
            shard.over = over;
            if over {
                self.over.fetch_add(1, Relaxed);
            } else {
                self.over.fetch_sub(1, Relaxed);
            }
        }
    }

    /// The slot the policy evicts next, if any.
    fn victim(&self, shard: &mut Shard, policy: Policy) -> Option<usize> {
        let len = shard.slots.len();
        if len == 0 {
            return None;
        }
        let clock = self.clock.load(Relaxed);
        match policy {
            Policy::NoEviction => None,
            Policy::AllKeysSieve => {
                let Shard { sieve, slots, .. } = shard;
                sieve
                    .victim(|i| {
                        let entry = &mut slots[i as usize];
                        let meta = entry.meta();
                        entry.set_meta(meta & !VISITED);
                        meta & VISITED != 0
                    })
                    .map(|i| i as usize)
            }
            Policy::AllKeysRandom => Some(random_below(len)),
            Policy::VolatileRandom => shard.random_volatile(),
            _ => {
                // Redis's approximation: the worst of a few random candidates.
                let mut best: Option<(u64, usize)> = None;
                for _ in 0..SAMPLES {
                    let slot = if policy.volatile_only() { shard.random_volatile()? } else { random_below(len) };
                    let entry = &shard.slots[slot];
                    let meta = entry.meta();
                    // Higher is a better victim.
                    let score = match policy {
                        Policy::VolatileTtl => u64::MAX - entry.expires_at(),
                        p if p.is_lfu() => {
                            (255 - u64::from(decayed_freq(meta, clock))) << 32 | u64::from(idle(meta, clock))
                        }
                        _ => u64::from(idle(meta, clock)),
                    };
                    if best.is_none_or(|(s, _)| score > s) {
                        best = Some((score, slot));
                    }
                }
                best.map(|(_, slot)| slot)
            }
        }
    }

    /// Records an access to a live entry: SIEVE's visited bit, LRU's clock, LFU's counter.
    fn touch(&self, entry: &mut Entry) {
        let meta = entry.meta();
        let clock = self.clock.load(Relaxed);
        let freq = if self.policy().is_lfu() { lfu_increment(decayed_freq(meta, clock)) } else { meta_freq(meta) };
        let touched = VISITED | freq << FREQ_SHIFT | (clock & CLOCK_MASK);
        // Most hits change nothing (same second, bit already set): skip the store.
        if touched != meta {
            entry.set_meta(touched);
        }
    }

    fn fresh_meta(&self) -> u32 {
        LFU_INIT << FREQ_SHIFT | (self.clock.load(Relaxed) & CLOCK_MASK)
    }

    /// Finds the live slot of `key`, removing it when expired; counts a hit or miss.
    fn lookup(&self, shard: &mut Shard, hash: u64, key: &[u8], count: bool) -> Option<usize> {
        let found = shard.find(hash, key);
        let live = match found {
            Some(slot) if self.expired(&shard.slots[slot]) => {
                shard.remove_at(slot, &self.hasher);
                shard.counters.expired += 1;
                self.settle(shard);
                None
            }
            other => other,
        };
        if count {
            if live.is_some() {
                shard.counters.hits += 1;
            } else {
                shard.counters.misses += 1;
            }
        }
        live
    }

    /// Runs `f` with the live value of `key`, or `None`, under the shard's lock (so a GET
    /// copies the value straight into the reply buffer). Counts as an access.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> R {
        let hash = self.hash(key);
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        match self.lookup(shard, hash, key, true) {
            Some(slot) => {
                let entry = &mut shard.slots[slot];
                self.touch(entry);
                f(Some(entry.value()))
            }
            None => f(None),
        }
    }

    /// The live value of `key`, copied.
    pub fn get(&self, key: &[u8]) -> Option<Bytes> {
        self.get_with(key, |value| value.map(Bytes::copy_from_slice))
    }

    /// The live value of `key` and its expiry (Unix ms), copied, without counting an access.
    pub fn peek(&self, key: &[u8]) -> Option<(Bytes, Option<u64>)> {
        let hash = self.hash(key);
        let mut shard = self.shard(hash);
        let slot = self.lookup(&mut shard, hash, key, false)?;
        let entry = &shard.slots[slot];
        let at = entry.expires_at();
        Some((Bytes::copy_from_slice(entry.value()), (at != 0).then(|| self.to_unix(at))))
    }

    /// Bytes `key` costs (MEMORY USAGE): its block as the allocator rounds it, and its
    /// slot in the slab, the table and the SIEVE queue (without their spare capacity, which
    /// `used_memory` counts too). Not counted as an access.
    pub fn memory_usage(&self, key: &[u8]) -> Option<usize> {
        let hash = self.hash(key);
        let mut shard = self.shard(hash);
        let slot = self.lookup(&mut shard, hash, key, false)?;
        let table_slot = (std::mem::size_of::<u32>() + 1) * 8 / 7;
        Some(shard.slots[slot].cost() + std::mem::size_of::<Entry>() + Sieve::BYTES_PER_ENTRY + table_slot)
    }

    /// Access metadata of `key` (OBJECT IDLETIME, OBJECT FREQ), not counted as an access.
    pub fn access(&self, key: &[u8]) -> Option<Access> {
        let hash = self.hash(key);
        let mut shard = self.shard(hash);
        let slot = self.lookup(&mut shard, hash, key, false)?;
        let meta = shard.slots[slot].meta();
        let clock = self.clock.load(Relaxed);
        Some(Access { idle_secs: u64::from(idle(meta, clock)), freq: decayed_freq(meta, clock) as u8 })
    }

    /// Stores `value` under `key` as the options say. Returns whether it was stored (NX/XX
    /// may refuse) and the previous live value when `want_old` is set.
    pub fn set(&self, key: &[u8], value: &[u8], options: SetOptions, want_old: bool) -> (bool, Option<Bytes>) {
        let hash = self.hash(key);
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        self.make_room(shard, block_cost(HEADER + key.len() + value.len()));
        let current = self.lookup(shard, hash, key, false);
        let live = current.map(|slot| &shard.slots[slot]);
        let old = if want_old { live.map(|e| Bytes::copy_from_slice(e.value())) } else { None };
        let exists = live.is_some();
        if (options.only_if_absent && exists) || (options.only_if_present && !exists) {
            return (false, old);
        }
        let expires_at = match (options.ttl, live) {
            (Some(ttl), _) => self.now() + (ttl.as_millis() as u64).max(1),
            (None, Some(e)) if options.keep_ttl => e.expires_at(),
            _ => 0,
        };
        let entry = Entry::new(key, value, expires_at, self.fresh_meta());
        match current {
            Some(slot) => shard.replace(slot, entry),
            None => {
                shard.insert(hash, entry, &self.hasher);
            }
        }
        self.settle(shard);
        (true, old)
    }

    /// Reads and changes `key` in one step under its shard's lock: `f` sees the live value
    /// and says what to do. Counts as an access when the key stays.
    pub fn update<R>(&self, key: &[u8], f: impl FnOnce(Option<View<'_>>) -> (Change, R)) -> R {
        let hash = self.hash(key);
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        self.make_room(shard, 0);
        let slot = self.lookup(shard, hash, key, false);
        let view = slot.map(|slot| {
            let entry = &shard.slots[slot];
            let at = entry.expires_at();
            View { value: entry.value(), expires_at: (at != 0).then(|| self.to_unix(at)) }
        });
        let old_at = slot.map_or(0, |slot| shard.slots[slot].expires_at());
        let (change, result) = f(view);
        let at = |expiry: Expiry| match expiry {
            Expiry::Keep => old_at,
            Expiry::Persist => 0,
            Expiry::At(unix) => self.unix_to_clock(unix),
        };
        match (change, slot) {
            (Change::Keep, Some(slot)) => self.touch(&mut shard.slots[slot]),
            (Change::Keep, None) | (Change::Delete, None) | (Change::Expire(_), None) => {}
            (Change::Put(value, expiry), slot) => {
                let at = at(expiry);
                if at != 0 && at <= self.now() {
                    if let Some(slot) = slot {
                        shard.remove_at(slot, &self.hasher);
                    }
                } else {
                    self.make_room(shard, block_cost(HEADER + key.len() + value.len()));
                    // Eviction may have moved or taken the slot: look it up again.
                    let entry = Entry::new(key, &value, at, self.fresh_meta());
                    match shard.find(hash, key) {
                        Some(slot) => {
                            shard.replace(slot, entry);
                            self.touch(&mut shard.slots[slot]);
                        }
                        None => {
                            shard.insert(hash, entry, &self.hasher);
                        }
                    }
                }
            }
            (Change::Delete, Some(slot)) => {
                shard.remove_at(slot, &self.hasher);
            }
            (Change::Expire(expiry), Some(slot)) => {
                let at = at(expiry);
                if at != 0 && at <= self.now() {
                    shard.remove_at(slot, &self.hasher);
                } else {
                    shard.set_expiry(slot, at);
                }
            }
        }
        self.settle(shard);
        result
    }

    /// The index of the shard that holds `key`: keys with the same index can be taken
    /// together with [`Store::take_together`].
    pub fn shard_of(&self, key: &[u8]) -> usize {
        shard_index(self.hash(key))
    }

    /// Runs `f` on the live values of `keys`, which must all be in one shard (the same
    /// [`Store::shard_of`]), under that shard's one lock; then deletes the keys `f` names by
    /// their index in `keys`. No command on any of them runs between the read and the delete
    /// (MIGRATE sends them to another server in between). Keys of another shard are seen as
    /// missing.
    pub fn take_together<R>(&self, keys: &[Bytes], f: impl FnOnce(&[Option<View<'_>>]) -> (Vec<usize>, R)) -> R {
        let Some(first) = keys.first() else { return f(&[]).1 };
        let index = self.shard_of(first);
        let mut guard = lock(&self.shards[index]);
        let shard = &mut *guard;
        let hashes: Vec<u64> = keys.iter().map(|key| self.hash(key)).collect();
        // Expired keys go first, so the views below borrow a table that no longer changes.
        let slots: Vec<Option<usize>> = keys
            .iter()
            .zip(&hashes)
            .map(|(key, &hash)| {
                let same_shard = shard_index(hash) == index;
                same_shard.then(|| self.lookup(shard, hash, key, false)).flatten()
            })
            .collect();
        let slots: Vec<Option<usize>> =
            keys.iter().zip(&hashes).zip(slots).map(|((key, &hash), slot)| slot.and(shard.find(hash, key))).collect();
        let views: Vec<Option<View<'_>>> = slots
            .iter()
            .map(|slot| {
                slot.map(|slot| {
                    let entry = &shard.slots[slot];
                    let at = entry.expires_at();
                    View { value: entry.value(), expires_at: (at != 0).then(|| self.to_unix(at)) }
                })
            })
            .collect();
        let (delete, result) = f(&views);
        drop(views);
        for i in delete {
            // Found again by key: each removal may move the others' slots.
            if let (Some(key), Some(&hash)) = (keys.get(i), hashes.get(i)) {
                if let Some(slot) = shard.find(hash, key) {
                    shard.remove_at(slot, &self.hasher);
                }
            }
        }
        self.settle(shard);
        result
    }

    /// Stores `value` under `key` with an expiry (Unix ms) or none, replacing what was there.
    pub fn put(&self, key: &[u8], value: &[u8], expires_at: Option<u64>) {
        let expiry = expires_at.map_or(Expiry::Persist, Expiry::At);
        self.update(key, |_| (Change::Put(value.to_vec(), expiry), ()));
    }

    /// Removes `key`; whether a live key was removed.
    pub fn remove(&self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        match shard.find(hash, key) {
            Some(slot) => {
                let entry = shard.remove_at(slot, &self.hasher);
                self.settle(shard);
                !self.expired(&entry)
            }
            None => false,
        }
    }

    /// Whether `key` holds a live value (counts a hit or miss, as EXISTS does in Redis).
    pub fn contains(&self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let mut shard = self.shard(hash);
        self.lookup(&mut shard, hash, key, true).is_some()
    }

    /// Records an access to `key` (TOUCH); whether it exists.
    pub fn touch_key(&self, key: &[u8]) -> bool {
        let hash = self.hash(key);
        let mut guard = self.shard(hash);
        let shard = &mut *guard;
        match self.lookup(shard, hash, key, false) {
            Some(slot) => {
                self.touch(&mut shard.slots[slot]);
                true
            }
            None => false,
        }
    }

    /// Sets (`Some`) or clears (`None`) the expiry of a live key; whether the key exists.
    /// A zero TTL deletes the key, as in Redis.
    pub fn expire(&self, key: &[u8], ttl: Option<Duration>) -> bool {
        let expiry = match ttl {
            None => Expiry::Persist,
            Some(ttl) => Expiry::At(self.unix_now_ms().saturating_add(ttl.as_millis() as u64)),
        };
        self.update(key, |view| (Change::Expire(expiry), view.is_some()))
    }

    /// The time to live of `key`.
    pub fn ttl(&self, key: &[u8]) -> Ttl {
        let hash = self.hash(key);
        let now = self.now();
        let mut shard = self.shard(hash);
        match self.lookup(&mut shard, hash, key, false).map(|slot| shard.slots[slot].expires_at()) {
            None => Ttl::Missing,
            Some(0) => Ttl::Persistent,
            Some(at) => Ttl::Millis(at - now),
        }
    }

    /// Adds `delta` to the integer stored at `key` (0 when absent), keeping its expiry.
    pub fn incr_by(&self, key: &[u8], delta: i64) -> Result<i64, IncrError> {
        self.update(key, |view| {
            let old = match view {
                Some(v) => match parse_i64(v.value) {
                    Some(n) => n,
                    None => return (Change::Keep, Err(IncrError::NotAnInteger)),
                },
                None => 0,
            };
            match old.checked_add(delta) {
                Some(new) => (Change::Put(new.to_string().into_bytes(), Expiry::Keep), Ok(new)),
                None => (Change::Keep, Err(IncrError::Overflow)),
            }
        })
    }

    /// A random live key.
    pub fn random_key(&self) -> Option<Bytes> {
        let now = self.now();
        let start = random_below(SHARDS);
        for i in 0..SHARDS {
            let shard = lock(&self.shards[(start + i) % SHARDS]);
            let len = shard.slots.len();
            if len == 0 {
                continue;
            }
            // A few tries past expired keys, then any live one of the shard.
            let pick = (0..8).map(|_| random_below(len)).find(|&s| !shard.slots[s].is_expired(now));
            let pick = pick.or_else(|| shard.slots.iter().position(|e| !e.is_expired(now)));
            if let Some(slot) = pick {
                return Some(Bytes::copy_from_slice(shard.slots[slot].key()));
            }
        }
        None
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
                    if shard.volatile == 0 { 0 } else { shard.slots.iter().filter(|e| e.is_expired(now)).count() };
                shard.slots.len() - expired
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
            let mut shard = lock(shard);
            let counters = shard.counters;
            shard.index = HashTable::new();
            shard.slots = Vec::new();
            shard.sieve.clear();
            shard.volatile = 0;
            shard.blocks = 0;
            shard.expire_cursor = 0;
            shard.counters = counters;
            self.settle(&mut shard);
        }
    }

    /// Calls `f` with every live key, its value and its expiry (Unix ms), one shard at a time
    /// (each shard is locked only while its own entries are visited).
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8], Option<u64>)) {
        let now = self.now();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for entry in shard.slots.iter().filter(|e| !e.is_expired(now)) {
                let at = entry.expires_at();
                f(entry.key(), entry.value(), (at != 0).then(|| self.to_unix(at)));
            }
        }
    }

    /// Every live key matching the glob `pattern`.
    pub fn keys(&self, pattern: &[u8]) -> Vec<Bytes> {
        let now = self.now();
        let mut keys = Vec::new();
        for shard in self.shards.iter() {
            let shard = lock(shard);
            let live = shard.slots.iter().filter(|e| !e.is_expired(now));
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
                .slots
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

    /// Drops every expired entry of one shard (`index` wraps); returns how many.
    pub fn sweep(&self, index: usize) -> usize {
        let mut removed = 0;
        let mut guard = lock(&self.shards[index % SHARDS]);
        let shard = &mut *guard;
        let mut slot = 0;
        while slot < shard.slots.len() {
            if self.expired(&shard.slots[slot]) {
                shard.remove_at(slot, &self.hasher);
                removed += 1;
            } else {
                slot += 1;
            }
        }
        shard.counters.expired += removed as u64;
        self.settle(shard);
        removed
    }

    /// Updates the coarse clock that LRU and LFU read; called ~10 times a second.
    pub fn tick(&self) {
        self.clock.store(self.epoch.elapsed().as_secs() as u32, Relaxed);
    }

    /// One active-expiry cycle, as Redis's `activeExpireCycle`: walks the slots of the
    /// shards holding keys with a TTL, [`EXPIRE_CHUNK`] slots per lock hold, removing the
    /// expired ones, until `budget` time has passed or every shard was walked once. Returns
    /// the keys removed. The longest single lock hold is kept for INFO.
    pub fn active_expire(&self, budget: Duration) -> usize {
        let started = std::time::Instant::now();
        let mut removed = 0;
        let now = self.now();
        let mut visited_shards = 0;
        while visited_shards < SHARDS && started.elapsed() < budget {
            let index = self.expire_shard.load(Relaxed) % SHARDS;
            let mut guard = lock(&self.shards[index]);
            // The pause clients of this shard see: from taking the lock to releasing it.
            let step = std::time::Instant::now();
            let shard = &mut *guard;
            let mut done = shard.volatile == 0;
            if !done {
                let mut slot = shard.expire_cursor;
                let mut examined = 0;
                while slot < shard.slots.len() && examined < EXPIRE_CHUNK {
                    examined += 1;
                    if shard.slots[slot].is_expired(now) {
                        // The last slot moved here: look at this slot again.
                        shard.remove_at(slot, &self.hasher);
                        shard.counters.expired += 1;
                        removed += 1;
                    } else {
                        slot += 1;
                    }
                }
                done = slot >= shard.slots.len();
                shard.expire_cursor = if done { 0 } else { slot };
                if done {
                    shard.shrink(&self.hasher);
                }
                self.settle(shard);
            }
            drop(guard);
            let micros = step.elapsed().as_micros() as u64;
            self.expire_max_step_micros.fetch_max(micros, Relaxed);
            let bucket = [10, 100, 1000, 10_000].iter().position(|&limit| micros <= limit).unwrap_or(4);
            self.expire_pauses[bucket].fetch_add(1, Relaxed);
            if done {
                self.expire_shard.store(index + 1, Relaxed);
                visited_shards += 1;
            }
        }
        self.expire_micros.fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        removed
    }

    /// Active expiry's total time (ms) and longest lock hold (µs), for INFO.
    pub fn expire_times(&self) -> (u64, u64) {
        (self.expire_micros.load(Relaxed) / 1000, self.expire_max_step_micros.load(Relaxed))
    }

    /// Active expiry's lock holds counted by length: ≤10 µs, ≤100 µs, ≤1 ms, ≤10 ms, longer
    /// (a hold includes any time the OS took the thread away meanwhile).
    pub fn expire_pauses(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.expire_pauses[i].load(Relaxed))
    }

    /// Number of shards, for sweeping them in turn.
    pub fn shard_count(&self) -> usize {
        SHARDS
    }

    /// Bytes held by keys, values and the tables (INFO's `used_memory`): what `maxmemory`
    /// bounds.
    pub fn memory_estimate(&self) -> usize {
        self.shards.iter().map(|s| lock(s).used()).sum()
    }

    /// The INFO stats counters, summed.
    pub fn counters(&self) -> Counters {
        self.shards.iter().fold(Counters::default(), |sum, s| {
            let c = lock(s).counters;
            Counters {
                hits: sum.hits + c.hits,
                misses: sum.misses + c.misses,
                evicted: sum.evicted + c.evicted,
                expired: sum.expired + c.expired,
            }
        })
    }

    /// Zeroes the INFO stats counters (CONFIG RESETSTAT).
    pub fn reset_counters(&self) {
        for shard in self.shards.iter() {
            lock(shard).counters = Counters::default();
        }
    }
}

fn meta_freq(meta: u32) -> u32 {
    (meta >> FREQ_SHIFT) & 0xff
}

fn idle(meta: u32, clock: u32) -> u32 {
    clock.wrapping_sub(meta & CLOCK_MASK) & CLOCK_MASK
}

/// The LFU counter less one per [`LFU_DECAY_SECS`] idle, as Redis's `LFUDecrAndReturn`.
fn decayed_freq(meta: u32, clock: u32) -> u32 {
    meta_freq(meta).saturating_sub(idle(meta, clock) / LFU_DECAY_SECS)
}

/// Redis's `LFULogIncr`: the higher the counter, the less likely it grows.
fn lfu_increment(counter: u32) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT));
    let p = 1.0 / (base * LFU_LOG_FACTOR + 1.0);
    let r = random_below(1 << 20) as f64 / f64::from(1u32 << 20);
    if r < p {
        counter + 1
    } else {
        counter
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
    if text.starts_with('+') || (text.len() > 1 && text.starts_with('0')) || text.starts_with("-0") {
        return None;
    }
    text.parse().ok()
}

/// Converts an absolute Unix time in milliseconds (EXAT/PXAT) to a TTL from now.
pub fn ttl_until_unix_ms(at_ms: u64) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_millis(at_ms).saturating_sub(now)
}

/// Parses a memory size as Redis's config does: bytes, or a number with `k`/`m`/`g`
/// (powers of 1000) or `kb`/`mb`/`gb` (powers of 1024), any case.
pub fn parse_memory(text: &str) -> Option<usize> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: u64 = digits.parse().ok()?;
    usize::try_from(n.checked_mul(unit)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_shard_are_taken_together_and_only_the_named_ones_deleted() {
        let store = Store::new();
        let first = Bytes::from_static(b"k0");
        let shard = store.shard_of(&first);
        let mut keys: Vec<Bytes> =
            (0..100_000).map(|i| Bytes::from(format!("k{i}"))).filter(|k| store.shard_of(k) == shard).take(4).collect();
        assert_eq!(keys.len(), 4);
        for key in &keys[..3] {
            store.put(key, b"v", None);
        }
        // keys[3] is missing; a key of another shard is seen as missing too.
        let other = (0..100_000).map(|i| Bytes::from(format!("o{i}"))).find(|k| store.shard_of(k) != shard).unwrap();
        store.put(&other, b"v", None);
        keys.push(other.clone());
        let seen = store.take_together(&keys, |views| {
            let seen: Vec<bool> = views.iter().map(Option::is_some).collect();
            (vec![0, 2, 3], seen)
        });
        assert_eq!(seen, [true, true, true, false, false]);
        assert!(!store.contains(&keys[0]) && store.contains(&keys[1]) && !store.contains(&keys[2]));
        assert!(store.contains(&other), "a key of another shard is never touched");
    }

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
        // The first read removed it (lazy expiry, as Redis).
        let swept: usize = (0..store.shard_count()).map(|i| store.sweep(i)).sum();
        assert_eq!(swept, 0);
        assert_eq!(store.volatile_len(), 0);
        assert_eq!(store.counters().expired, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn active_expiry_removes_keys_nobody_reads() {
        let store = Store::new();
        let ttl = SetOptions { ttl: Some(Duration::from_millis(100)), ..Default::default() };
        for i in 0..10_000 {
            store.set(format!("k{i}").as_bytes(), b"v", ttl, false);
        }
        store.set(b"p", b"v", SetOptions::default(), false);
        tokio::time::advance(Duration::from_millis(101)).await;
        let mut removed = 0;
        for _ in 0..1000 {
            removed += store.active_expire(Duration::from_secs(1));
            if removed == 10_000 {
                break;
            }
        }
        assert_eq!(removed, 10_000);
        assert_eq!(store.len(), 1);
        assert_eq!(store.volatile_len(), 0);
    }

    /// Fills a store bounded at 1 MiB with `policy` and returns it.
    fn filled(policy: Policy) -> Store {
        let store = Store::new();
        store.set_policy(policy);
        store.set_maxmemory(1 << 20);
        for i in 0..50_000 {
            store.set(format!("key:{i}").as_bytes(), &[b'x'; 100], SetOptions::default(), false);
        }
        store
    }

    #[test]
    fn every_evicting_policy_stays_within_maxmemory() {
        for policy in [Policy::AllKeysSieve, Policy::AllKeysLru, Policy::AllKeysLfu, Policy::AllKeysRandom] {
            let store = filled(policy);
            let used = store.memory_estimate();
            assert!(used <= 1 << 20, "{policy:?}: {used} bytes");
            assert!(store.len() > 3000, "{policy:?}: only {} keys", store.len());
            assert!(store.counters().evicted > 40_000, "{policy:?}");
            assert!(!store.refuses_writes());
        }
    }

    /// Lowering `maxmemory` under a full store evicts down to the new bound and no further:
    /// the tables sized for the old key count give their capacity back as keys go, instead
    /// of counting against the bound until every key is evicted.
    #[test]
    fn lowering_maxmemory_keeps_what_fits_under_the_new_bound() {
        let store = Store::new();
        for i in 0..200_000 {
            store.set(format!("key:{i}").as_bytes(), &[b'x'; 100], SetOptions::default(), false);
        }
        let full = store.memory_estimate();
        store.set_maxmemory(full / 5);
        let used = store.memory_estimate();
        assert!(used <= full / 5, "{used} bytes over the bound {}", full / 5);
        assert!(store.len() > 200_000 / 5 / 2, "only {} of 200,000 keys kept under a fifth of the memory", store.len());
    }

    #[test]
    fn noeviction_and_volatile_without_candidates_refuse_writes() {
        for policy in [Policy::NoEviction, Policy::VolatileLru, Policy::VolatileTtl] {
            let store = filled(policy);
            assert!(store.refuses_writes(), "{policy:?}");
            assert_eq!(store.counters().evicted, 0);
            store.clear();
            assert!(!store.refuses_writes(), "{policy:?}: emptied");
        }
    }

    #[test]
    fn sieve_keeps_the_keys_that_are_read() {
        let store = Store::new();
        store.set_maxmemory(1 << 20);
        for i in 0..50_000 {
            store.set(format!("key:{i}").as_bytes(), &[b'x'; 100], SetOptions::default(), false);
            // A small hot set, read between writes.
            store.get(format!("key:{}", i % 100).as_bytes());
        }
        let hot = (0..100).filter(|i| store.contains(format!("key:{i}").as_bytes())).count();
        assert!(hot >= 95, "{hot} of 100 hot keys kept");
    }

    #[test]
    fn memory_sizes_parse_as_redis_does() {
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("100mb"), Some(100 << 20));
        assert_eq!(parse_memory("2GB"), Some(2 << 30));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1x"), None);
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllKeysLru));
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
