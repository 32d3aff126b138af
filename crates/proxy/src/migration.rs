//! Migration: moving keys to the servers that own them under the current ring, while
//! clients keep reading and writing.
//!
//! The migrator walks every source server with SCAN and moves each key that sits where the
//! ring no longer puts it. A key is moved under a lock (one of [`STRIPES`], chosen by the
//! key's hash) that client commands on keys left behind by a ring change take too: such a
//! command first moves its key, then runs on the new owner. So a read never misses a value
//! that is still on the old owner, a write is never overwritten by an older copy (the copy
//! never replaces: the owner answers BUSYKEY when it already has the key, its write is the
//! newer, and the old copy is dropped), a delete stays deleted (the old copy is moved, then
//! deleted with the key), and TTLs travel with their keys.
//!
//! # Why MIGRATE, and not DUMP then RESTORE
//!
//! The locks are this proxy's own. With a shared topology (`--topology etcd://...`) the
//! mover runs on one proxy while clients write through the others, and a move made of
//! separate steps can undo a client's DEL: the mover reads `v` on the old owner (DUMP);
//! a client on another proxy moves the key, deletes it and is answered; the mover's RESTORE
//! then brings `v` back on the new owner. So keys travel with [`Transport::Migrate`]: one
//! `MIGRATE host port "" 0 timeout [COPY] [AUTH pw] KEYS ...` on the source, without
//! REPLACE. The source runs it as one command, ordered against every other command on the
//! key (redis-server has one thread; our server holds the key's shard lock), and drops
//! the key only once the target has it. Hence:
//!
//! - every write a MIGRATE makes on a target happens while the source still holds the key;
//! - a client's command runs on the new owners only after its own move found the key
//!   gone from the source (NOKEY), took it away itself, or deleted a stale copy after
//!   BUSYKEY;
//! - so whatever a mover (on any proxy) writes lands before the client's command, and
//!   cannot undo it: a DEL stays deleted, a SET is not overwritten (RESTORE without
//!   REPLACE would answer BUSYKEY anyway).
//!
//! With `--replication-factor` above 1 a key goes first with `COPY` to each replica but the
//! first, then without `COPY` to the first: the source keeps the key until that last step,
//! so the argument holds for every copy (each is made while the source still holds the
//! key). BUSYKEY on a COPY means the replica already has the key (a newer write, or an
//! earlier mover's copy); BUSYKEY on the last step means the same for the first replica,
//! and the source's copy is stale: it is deleted.
//!
//! A source blocks while its MIGRATE waits for the target: two MIGRATEs in opposite
//! directions (a SET_DISTRIBUTION or REBALANCE moves keys every way) would wait on each
//! other until the timeout. One proxy runs one MIGRATE at a time, so its own never do;
//! two proxies' can (a client's move on one, the mover on another), and then both sources
//! stay blocked for [`MIGRATE_TIMEOUT_MS`], answer `IOERR`, and the batch falls back.
//!
//! MIGRATE cannot always be used, and then [`Transport::DumpRestore`] moves keys as before
//! (PTTL and DUMP on the source, RESTORE on each owner, DEL on the source), with the race
//! above between proxies (a single proxy's locks still order it): when the proxy reaches
//! its servers over TLS (`--server-tls`; a redis-server dials MIGRATE's target in plain
//! TCP unless it runs with `tls-cluster yes`), and, batch by batch, when a source refuses
//! MIGRATE (an unknown command) or cannot reach the target at the address the proxy uses
//! (`IOERR`). A password (`--server-password`) goes along as MIGRATE's `AUTH`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use resp::{write, Frame};
use tokio::sync::MutexGuard;

use crate::backend::{Backend, BackendError};
use crate::cluster::Topology;
use crate::Proxy;

/// Locks that order a key's move against client commands on it.
const STRIPES: usize = 4096;
/// Keys asked per SCAN call.
const SCAN_COUNT: usize = 1000;
/// Keys per MIGRATE: a redis-server serves nothing else while one runs.
const MIGRATE_KEYS: usize = 100;
/// MIGRATE's timeout, milliseconds (per connect, write and read on the source's side): how
/// long a source may stay blocked when MIGRATEs from two proxies wait on each other.
const MIGRATE_TIMEOUT_MS: &str = "1000";

/// How keys travel from an old owner to a new one (see the module's doc).
#[derive(Debug, Clone)]
pub enum Transport {
    /// `MIGRATE` on the source: the move is atomic there.
    Migrate {
        /// The servers' password (`--server-password`), sent as MIGRATE's `AUTH`.
        password: Option<Arc<str>>,
    },
    /// PTTL and DUMP on the source, RESTORE on each owner, DEL on the source: for servers
    /// reached over TLS.
    DumpRestore,
}

impl Transport {
    /// The transport for servers reached with `password`, over TLS or not.
    pub fn for_servers(password: Option<Arc<str>>, tls: bool) -> Self {
        if tls {
            Transport::DumpRestore
        } else {
            Transport::Migrate { password }
        }
    }
}

/// What one MIGRATE answered.
#[derive(Debug, PartialEq)]
enum Migrated {
    /// `+OK`: every key found reached the target.
    Ok,
    /// `+NOKEY`: none of the keys was on the source (moved or expired meanwhile).
    NoKey,
    /// The target already has a key (`BUSYKEY`).
    Busy,
    /// The source cannot run it here: MIGRATE unknown, or the target unreachable from it.
    Unsupported(String),
    /// Any other error.
    Failed(String),
}

impl Migrated {
    fn of(reply: &Frame) -> Self {
        match reply {
            Frame::Simple(text) if &text[..] == b"NOKEY" => Migrated::NoKey,
            Frame::Simple(_) => Migrated::Ok,
            Frame::Error(text) => {
                let text = String::from_utf8_lossy(text).into_owned();
                if text.contains("BUSYKEY") {
                    Migrated::Busy
                } else if text.starts_with("IOERR") || text.starts_with("ERR unknown command") {
                    Migrated::Unsupported(text)
                } else {
                    Migrated::Failed(text)
                }
            }
            other => Migrated::Failed(format!("unexpected MIGRATE reply {other:?}")),
        }
    }
}

/// Progress counters, readable while a migration runs.
#[derive(Debug, Default)]
struct Counters {
    scanned: AtomicU64,
    moved: AtomicU64,
    errors: AtomicU64,
    /// Keys on the sources when the migration began (DBSIZE).
    total: AtomicU64,
}

#[derive(Debug, Default)]
struct Times {
    started: Option<Instant>,
    finished: Option<Instant>,
    last_error: Option<String>,
    runs: u64,
}

/// The migrator: at most one migration at a time.
pub struct Migrator {
    transport: Transport,
    /// Held while a MIGRATE runs: one at a time from this proxy. A source blocks until its
    /// target answers (redis-server entirely, our server the key's shard), so MIGRATEs in
    /// opposite directions (S1 to S2 while S2 to S1, or a longer cycle) would wait on each
    /// other until the timeout; with this lock no two of this proxy's can.
    migrating: tokio::sync::Mutex<()>,
    running: AtomicBool,
    /// A migration of the shared topology (`--topology etcd://...`) is under way, whoever
    /// moves its keys: client commands move their stranded keys first, and ring changes wait.
    shared: AtomicBool,
    stripes: Box<[tokio::sync::Mutex<()>]>,
    counters: Counters,
    times: Mutex<Times>,
}

impl Default for Migrator {
    fn default() -> Self {
        Self::new(Transport::Migrate { password: None })
    }
}

impl Migrator {
    /// A migrator that moves keys with `transport`.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport,
            migrating: tokio::sync::Mutex::new(()),
            running: AtomicBool::new(false),
            shared: AtomicBool::new(false),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            counters: Counters::default(),
            times: Mutex::default(),
        }
    }

    /// Whether a migration is running, here or (with a shared topology) on any proxy.
    pub fn is_running(&self) -> bool {
        self.running.load(Relaxed) || self.shared.load(Relaxed)
    }

    /// Whether this proxy itself is moving keys (with a shared topology: whether it is the
    /// elected mover at work).
    pub fn is_moving(&self) -> bool {
        self.running.load(Relaxed)
    }

    /// Records whether the shared topology has a migration under way (set before the ring
    /// changes, cleared after the old rings are forgotten).
    pub fn set_shared(&self, running: bool) {
        self.shared.store(running, Relaxed);
    }

    /// Claims the migrator before the ring changes, so that no client command slips between
    /// the change and the start of the moves. False if one is already running.
    pub fn try_begin(&self) -> bool {
        !self.running.swap(true, Relaxed)
    }

    /// Gives the claim back when the ring change was refused.
    pub fn abort(&self) {
        self.running.store(false, Relaxed);
    }

    /// Starts moving keys in the background; `previous` is the snapshot before the ring
    /// change (requests planned on it are waited for first). The caller holds the claim.
    pub fn spawn(proxy: Arc<Proxy>, previous: Option<Arc<Topology>>) {
        tokio::spawn(async move {
            if Self::run_claimed(&proxy, previous).await {
                proxy.cluster.finish_migration();
            }
            proxy.migrator.running.store(false, Relaxed);
        });
    }

    /// Moves every misplaced key of the current snapshot, with the claim held by the caller
    /// (which gives it back, after forgetting the old rings or not): true when nothing
    /// failed. The mover of a shared topology calls it directly.
    pub async fn run_claimed(proxy: &Arc<Proxy>, previous: Option<Arc<Topology>>) -> bool {
        let migrator = &proxy.migrator;
        for counter in [&migrator.counters.scanned, &migrator.counters.moved, &migrator.counters.errors] {
            counter.store(0, Relaxed);
        }
        {
            let mut times = migrator.times.lock().unwrap_or_else(|p| p.into_inner());
            times.started = Some(Instant::now());
            times.finished = None;
            times.last_error = None;
            times.runs += 1;
        }
        if let Some(previous) = previous {
            wait_for_requests_on(previous).await;
        }
        let topology = proxy.cluster.snapshot();
        let ok = migrator.run(&topology).await;
        let mut times = migrator.times.lock().unwrap_or_else(|p| p.into_inner());
        times.finished = Some(Instant::now());
        drop(times);
        tracing::info!(
            scanned = migrator.counters.scanned.load(Relaxed),
            moved = migrator.counters.moved.load(Relaxed),
            errors = migrator.counters.errors.load(Relaxed),
            "[proxy] migration {}",
            if ok { "done" } else { "ended with errors" }
        );
        ok
    }

    /// Moves every misplaced key of every source; true when nothing failed.
    async fn run(&self, topology: &Topology) -> bool {
        let mut sources: Vec<Arc<Backend>> = Vec::new();
        let mut total = 0;
        for source in topology.backends().chain(topology.draining.iter()) {
            // A server that starts empty (a newcomer) only ever receives keys at their owner:
            // scanning it would only look at keys that are already where they belong.
            match call(source, &[b"DBSIZE"]).await {
                Ok(Frame::Integer(0)) => continue,
                Ok(Frame::Integer(n)) => total += n.max(0) as u64,
                _ => {}
            }
            sources.push(source.clone());
        }
        self.counters.total.store(total, Relaxed);
        let mut ok = true;
        // Sources are scanned one after another; each batch's moves are pipelined.
        for source in &sources {
            if let Err(error) = self.drain(topology, source).await {
                ok = false;
                self.counters.errors.fetch_add(1, Relaxed);
                tracing::warn!(backend = %source.addr(), %error, "[proxy] migration: giving up on a server");
                self.times.lock().unwrap_or_else(|p| p.into_inner()).last_error = Some(error);
            }
        }
        ok && self.counters.errors.load(Relaxed) == 0
    }

    /// SCANs `source` and moves the keys that belong elsewhere.
    async fn drain(&self, topology: &Topology, source: &Arc<Backend>) -> Result<(), String> {
        let mut cursor = b"0".to_vec();
        loop {
            let count = SCAN_COUNT.to_string();
            let reply = call(source, &[b"SCAN", &cursor, b"COUNT", count.as_bytes()]).await?;
            let Frame::Array(parts) = reply else { return Err(format!("unexpected SCAN reply {reply:?}")) };
            let [Frame::Bulk(next), Frame::Array(keys)] = parts.as_slice() else {
                return Err("unexpected SCAN reply".into());
            };
            self.counters.scanned.fetch_add(keys.len() as u64, Relaxed);
            let misplaced: Vec<Bytes> = keys
                .iter()
                .filter_map(|k| k.as_bytes().cloned())
                .filter(|key| !topology.replicas(key).iter().any(|t| topology.backend(*t).addr() == source.addr()))
                .collect();
            if !misplaced.is_empty() {
                let _locks = self.lock(misplaced.iter().map(|k| &k[..])).await;
                self.transfer(topology, source, &misplaced).await?;
            }
            if &next[..] == b"0" {
                return Ok(());
            }
            cursor = next.to_vec();
        }
    }

    /// Takes the locks of `keys` (in stripe order, so two lockers never deadlock).
    pub async fn lock<'a>(&self, keys: impl Iterator<Item = &'a [u8]>) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.map(|k| ring::fnv1a_32(k) as usize % STRIPES).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.stripes[stripe].lock().await);
        }
        guards
    }

    /// Moves `keys` (locked by the caller) from `source` to their replicas under
    /// `topology`, never replacing a key an owner already has, TTLs kept.
    pub async fn transfer(&self, topology: &Topology, source: &Arc<Backend>, keys: &[Bytes]) -> Result<(), String> {
        if let Transport::Migrate { password } = &self.transport {
            match self.migrate(topology, source, keys, password.as_deref()).await? {
                None => return Ok(()),
                Some(why) => {
                    tracing::warn!(backend = %source.addr(), reason = %why, "[proxy] migration: MIGRATE refused, moving this batch with DUMP and RESTORE");
                }
            }
        }
        self.dump_and_restore(topology, source, keys).await
    }

    /// Moves `keys` with MIGRATE: COPY to every replica but the first, then MIGRATE to the
    /// first (see the module's doc for why in that order), then DEL of the source's stale
    /// copies (the first replica answered BUSYKEY). `Some(reason)` when the source cannot
    /// run MIGRATE towards a target: the caller falls back (nothing was lost, keys still on
    /// the source are moved by the fallback).
    async fn migrate(
        &self,
        topology: &Topology,
        source: &Arc<Backend>,
        keys: &[Bytes],
        password: Option<&str>,
    ) -> Result<Option<String>, String> {
        // The keys each target gets, as copies and as the last step.
        let mut copies: Vec<(Arc<Backend>, Vec<Bytes>)> = Vec::new();
        let mut moves: Vec<(Arc<Backend>, Vec<Bytes>)> = Vec::new();
        let add = |lists: &mut Vec<(Arc<Backend>, Vec<Bytes>)>, target: &Arc<Backend>, key: &Bytes| match lists
            .iter_mut()
            .find(|(b, _)| b.addr() == target.addr())
        {
            Some((_, keys)) => keys.push(key.clone()),
            None => lists.push((target.clone(), vec![key.clone()])),
        };
        for key in keys {
            let replicas = topology.replicas(key);
            let Some((first, others)) = replicas.split_first() else { continue };
            for other in others {
                add(&mut copies, topology.backend(*other), key);
            }
            add(&mut moves, topology.backend(*first), key);
        }
        for (target, keys) in &copies {
            if let Err(why) = self.migrate_to(source, target, keys, true, password).await? {
                return Ok(Some(why));
            }
        }
        let mut stale = Vec::new();
        for (target, keys) in &moves {
            match self.migrate_to(source, target, keys, false, password).await? {
                Ok(busy) => stale.extend(busy),
                Err(why) => return Ok(Some(why)),
            }
        }
        if !stale.is_empty() {
            let mut delete = BytesMut::new();
            for key in &stale {
                write::command(&mut delete, &[&b"DEL"[..], key]);
            }
            request(source, delete, stale.len()).await?;
            self.counters.moved.fetch_add(stale.len() as u64, Relaxed);
        }
        Ok(None)
    }

    /// MIGRATEs `keys` from `source` to `target` in batches of [`MIGRATE_KEYS`], pipelined;
    /// a batch that answers an error is sent again key by key, to learn which keys the
    /// target refused. The keys the target already had (BUSYKEY), or `Err(reason)` when the
    /// source cannot run MIGRATE there.
    async fn migrate_to(
        &self,
        source: &Arc<Backend>,
        target: &Arc<Backend>,
        keys: &[Bytes],
        copy: bool,
        password: Option<&str>,
    ) -> Result<Result<Vec<Bytes>, String>, String> {
        let Some((host, port)) = split_address(target.addr()) else {
            return Ok(Err(format!("no host and port in {}", target.addr())));
        };
        let batches: Vec<&[Bytes]> = keys.chunks(MIGRATE_KEYS).collect();
        let _one_at_a_time = self.migrating.lock().await;
        let replies = request(source, migrate_commands(host, port, &batches, copy, password), batches.len()).await?;
        let mut busy = Vec::new();
        for (batch, reply) in batches.iter().zip(&replies) {
            let singles: Vec<&[Bytes]>;
            let (keys, replies) = match Migrated::of(reply) {
                Migrated::Unsupported(why) => return Ok(Err(why)),
                error @ (Migrated::Busy | Migrated::Failed(_)) if batch.len() > 1 => {
                    tracing::debug!(backend = %source.addr(), ?error, "[proxy] migration: a batch failed, key by key");
                    singles = batch.chunks(1).collect();
                    let commands = migrate_commands(host, port, &singles, copy, password);
                    (&singles[..], request(source, commands, singles.len()).await?)
                }
                _ => (std::slice::from_ref(batch), vec![reply.clone()]),
            };
            for (keys, reply) in keys.iter().zip(&replies) {
                match Migrated::of(reply) {
                    Migrated::Ok if !copy => {
                        self.counters.moved.fetch_add(keys.len() as u64, Relaxed);
                    }
                    Migrated::Ok | Migrated::NoKey => {}
                    Migrated::Busy if copy => {}
                    Migrated::Busy => busy.extend(keys.iter().cloned()),
                    Migrated::Unsupported(why) => return Ok(Err(why)),
                    Migrated::Failed(error) => {
                        return Err(format!("MIGRATE from {} to {} failed: {error}", source.addr(), target.addr()))
                    }
                }
            }
        }
        Ok(Ok(busy))
    }

    /// Moves `keys` in separate steps: RESTORE without REPLACE and with the remaining TTL
    /// on each replica, then delete from the source. Not atomic between proxies (see the
    /// module's doc): for servers MIGRATE cannot serve.
    async fn dump_and_restore(&self, topology: &Topology, source: &Arc<Backend>, keys: &[Bytes]) -> Result<(), String> {
        let mut read = BytesMut::new();
        for key in keys {
            write::command(&mut read, &[&b"PTTL"[..], key]);
            write::command(&mut read, &[&b"DUMP"[..], key]);
        }
        let replies = request(source, read, keys.len() * 2).await?;
        // Copies per target, and the keys that reached at least one target.
        let mut copies: Vec<(Arc<Backend>, BytesMut, usize)> = Vec::new();
        let mut found: Vec<&Bytes> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let (ttl, value) = (&replies[2 * i], &replies[2 * i + 1]);
            let (Frame::Integer(ttl), Frame::Bulk(value)) = (ttl, value) else {
                if !matches!(value, Frame::Null) {
                    self.counters.errors.fetch_add(1, Relaxed);
                }
                continue;
            };
            if *ttl == -2 || *ttl == 0 {
                continue;
            }
            let ttl_text = (*ttl).max(0).to_string();
            for target in topology.replicas(key) {
                let backend = topology.backend(target).clone();
                let at = match copies.iter().position(|(b, _, _)| b.addr() == backend.addr()) {
                    Some(at) => at,
                    None => {
                        copies.push((backend, BytesMut::new(), 0));
                        copies.len() - 1
                    }
                };
                let (_, out, count) = &mut copies[at];
                write::command(out, &[&b"RESTORE"[..], key, ttl_text.as_bytes(), value]);
                *count += 1;
            }
            found.push(key);
        }
        for (target, out, count) in copies {
            let replies = request(&target, out, count).await?;
            // BUSYKEY: the owner was written after the ring change; its value is the newer.
            let busy = |frame: &Frame| matches!(frame, Frame::Error(e) if e.starts_with(b"BUSYKEY"));
            if let Some(error) = replies.iter().find(|r| r.is_error() && !busy(r)) {
                return Err(format!("copy to {} failed: {error:?}", target.addr()));
            }
        }
        if found.is_empty() {
            return Ok(());
        }
        let mut delete = BytesMut::new();
        for key in &found {
            write::command(&mut delete, &[&b"DEL"[..], key]);
        }
        request(source, delete, found.len()).await?;
        self.counters.moved.fetch_add(found.len() as u64, Relaxed);
        Ok(())
    }

    /// Repairs one hinted key (locked by the caller): `server` is back after being down while
    /// `holder` took the key's writes. The holder's value replaces the server's copy (or the
    /// copy is deleted when the holder has none: the key was deleted meanwhile); the holder's
    /// copy goes unless the ring makes it a replica.
    pub async fn repair_hint(
        &self,
        topology: &Topology,
        server: &str,
        holder: &str,
        key: &Bytes,
    ) -> Result<(), String> {
        let (Some(target), Some(source)) = (topology.find(server), topology.find(holder)) else {
            // One of them left the ring: nothing routes there any more.
            return Ok(());
        };
        let mut read = BytesMut::new();
        write::command(&mut read, &[&b"PTTL"[..], key]);
        write::command(&mut read, &[&b"DUMP"[..], key]);
        let replies = request(source, read, 2).await?;
        let mut fix = BytesMut::new();
        match (&replies[0], &replies[1]) {
            (Frame::Integer(ttl), Frame::Bulk(payload)) if *ttl != 0 && *ttl != -2 => {
                let ttl = (*ttl).max(0).to_string();
                write::command(&mut fix, &[&b"RESTORE"[..], key, ttl.as_bytes(), payload, b"REPLACE"]);
            }
            (_, Frame::Error(e)) => return Err(format!("DUMP on {holder}: {}", String::from_utf8_lossy(e))),
            _ => write::command(&mut fix, &[&b"DEL"[..], key]),
        }
        let reply = request(target, fix, 1).await?;
        if let Some(Frame::Error(e)) = reply.first() {
            return Err(format!("repair on {server}: {}", String::from_utf8_lossy(e)));
        }
        let holder_is_replica = topology.replicas(key).iter().any(|id| topology.backend(*id).addr() == holder);
        if !holder_is_replica {
            let mut delete = BytesMut::new();
            write::command(&mut delete, &[&b"DEL"[..], key]);
            request(source, delete, 1).await?;
        }
        Ok(())
    }

    /// Moves `keys` (locked by the caller) from wherever earlier rings left them.
    ///
    /// A source that was closed meanwhile is skipped: a server removed with MIGRATE is
    /// closed only once the migration that drained it has finished (every key moved), and
    /// `topology` may be a snapshot from before that.
    pub async fn move_stranded(&self, topology: &Topology, keys: &[Bytes]) -> Result<(), String> {
        for key in keys {
            let targets = topology.replicas(key);
            for source in topology.stranded_sources(key, &targets) {
                match self.transfer(topology, &source, std::slice::from_ref(key)).await {
                    Err(error) if error == BackendError::Removed { addr: source.addr().to_string() }.reply_text() => {}
                    outcome => outcome?,
                }
            }
        }
        Ok(())
    }

    /// Where the running or last migration stands.
    pub fn progress(&self) -> Progress {
        let times = self.times.lock().unwrap_or_else(|p| p.into_inner());
        let scanned = self.counters.scanned.load(Relaxed);
        let moved = self.counters.moved.load(Relaxed);
        let total = self.counters.total.load(Relaxed);
        let errors = self.counters.errors.load(Relaxed);
        let running = self.is_running();
        let state = match (running, times.runs, errors) {
            (true, _, _) => "running",
            (false, 0, _) => "idle",
            (false, _, 0) => "done",
            (false, _, _) => "failed",
        };
        let elapsed = match (times.started, times.finished) {
            (Some(start), Some(end)) => end - start,
            (Some(start), None) => start.elapsed(),
            _ => Duration::ZERO,
        };
        let rate = if elapsed.as_secs_f64() > 0.0 { scanned as f64 / elapsed.as_secs_f64() } else { 0.0 };
        let remaining = total.saturating_sub(scanned);
        // Keys scanned of the keys the sources held at the start (clients' writes meanwhile
        // may add a few, so it is capped).
        let percent = match (state, total) {
            ("done", _) => 100.0,
            (_, 0) => 0.0,
            _ => (scanned as f64 / total as f64 * 100.0).min(100.0),
        };
        let eta = match running {
            true if remaining == 0 => Some(Duration::ZERO),
            true if rate > 0.0 => Some(Duration::from_secs_f64(remaining as f64 / rate)),
            true => None,
            false => Some(Duration::ZERO),
        };
        Progress {
            state,
            scanned,
            moved,
            total,
            remaining,
            errors,
            rate,
            elapsed,
            percent,
            eta,
            last_error: times.last_error.clone(),
        }
    }

    /// The MIGRATION report: state, keys scanned, moved, remaining, rate, percentage, ETA.
    pub fn report(&self) -> String {
        let p = self.progress();
        let mut text = format!(
            "migration:{}\r\nkeys_scanned:{}\r\nkeys_moved:{}\r\nkeys_remaining:{}\r\n\
             scan_rate_keys_per_sec:{:.0}\r\nelapsed_ms:{}\r\nerrors:{}\r\nprogress_percent:{:.1}\r\n",
            p.state,
            p.scanned,
            p.moved,
            p.remaining,
            p.rate,
            p.elapsed.as_millis(),
            p.errors,
            p.percent,
        );
        // Unknown until the first keys are scanned.
        if let Some(eta) = p.eta {
            text.push_str(&format!("eta_ms:{}\r\n", eta.as_millis()));
        }
        if let Some(error) = &p.last_error {
            text.push_str(&format!("last_error:{error}\r\n"));
        }
        text
    }
}

/// A migration's progress: what `MIGRATION` reports, the metrics export and the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// `idle` (none yet), `running`, `done` or `failed`.
    pub state: &'static str,
    /// Keys looked at on the source servers.
    pub scanned: u64,
    /// Keys moved to their new owners.
    pub moved: u64,
    /// Keys the sources held when it began (DBSIZE).
    pub total: u64,
    /// Of those, keys not scanned yet.
    pub remaining: u64,
    /// Keys or servers that failed.
    pub errors: u64,
    /// Keys scanned per second.
    pub rate: f64,
    /// Time since it began (to its end, once over).
    pub elapsed: Duration,
    /// Keys scanned of `total`, 0 to 100 (100 once done).
    pub percent: f64,
    /// Time left at the rate so far: zero when over, `None` while nothing is scanned yet.
    pub eta: Option<Duration>,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// Waits (at most a few seconds) until no request planned on `previous` is in flight.
pub(crate) async fn wait_for_requests_on(previous: Arc<Topology>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&previous) > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Sends `count` encoded commands to `backend` and parses the replies.
async fn request(backend: &Arc<Backend>, bytes: BytesMut, count: usize) -> Result<Vec<Frame>, String> {
    let replies = backend.send(bytes.freeze(), count).await.await;
    match replies {
        Ok(Ok(replies)) => Ok((0..count).map(|i| replies.frame(i)).collect()),
        Ok(Err(error)) => Err(error.reply_text()),
        Err(_) => Err(format!("connection to {} lost", backend.addr())),
    }
}

/// `host` and `port` of a server's address (`[::1]:6379` gives `::1`).
fn split_address(addr: &str) -> Option<(&str, &str)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']'), port))
}

/// One MIGRATE per batch of keys (the KEYS form), without REPLACE.
fn migrate_commands(host: &str, port: &str, batches: &[&[Bytes]], copy: bool, password: Option<&str>) -> BytesMut {
    let mut out = BytesMut::new();
    for batch in batches {
        let mut args: Vec<&[u8]> =
            vec![b"MIGRATE", host.as_bytes(), port.as_bytes(), b"", b"0", MIGRATE_TIMEOUT_MS.as_bytes()];
        if copy {
            args.push(b"COPY");
        }
        if let Some(password) = password {
            args.extend([&b"AUTH"[..], password.as_bytes()]);
        }
        args.push(b"KEYS");
        args.extend(batch.iter().map(|k| &k[..]));
        write::command(&mut out, &args);
    }
    out
}

/// One command to `backend`.
pub(crate) async fn call(backend: &Arc<Backend>, args: &[&[u8]]) -> Result<Frame, String> {
    let mut out = BytesMut::new();
    write::command(&mut out, args);
    let mut replies = request(backend, out, 1).await?;
    replies.pop().ok_or_else(|| "no reply".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_counts_scanned_keys_of_the_total_and_estimates_the_time_left() {
        let migrator = Migrator::default();
        let idle = migrator.progress();
        assert_eq!((idle.state, idle.percent, idle.eta), ("idle", 0.0, Some(Duration::ZERO)));
        assert!(migrator.report().contains("progress_percent:0.0\r\n"));

        assert!(migrator.try_begin());
        {
            let mut times = migrator.times.lock().unwrap();
            times.started = Some(Instant::now() - Duration::from_secs(2));
            times.runs = 1;
        }
        migrator.counters.total.store(1000, Relaxed);
        migrator.counters.scanned.store(250, Relaxed);
        let running = migrator.progress();
        assert_eq!(running.state, "running");
        assert_eq!(running.percent, 25.0);
        // 250 keys in about 2 s: the 750 left take about 6 s more.
        let eta = running.eta.expect("an estimate once keys are scanned").as_secs_f64();
        assert!((5.5..6.5).contains(&eta), "{eta}");
        assert!(migrator.report().contains("progress_percent:25.0\r\neta_ms:"));

        migrator.times.lock().unwrap().finished = Some(Instant::now());
        migrator.running.store(false, Relaxed);
        let done = migrator.progress();
        assert_eq!((done.state, done.percent, done.eta), ("done", 100.0, Some(Duration::ZERO)));
    }

    #[test]
    fn no_estimate_before_the_first_keys_are_scanned() {
        let migrator = Migrator::default();
        assert!(migrator.try_begin());
        migrator.times.lock().unwrap().started = Some(Instant::now());
        migrator.counters.total.store(1000, Relaxed);
        assert_eq!(migrator.progress().eta, None);
        assert!(!migrator.report().contains("eta_ms"));
    }
}
