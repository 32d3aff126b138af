//! Migration throughput: our proxy in front of three backends moves keys onto a fourth
//! (`ADD_SERVER <fourth> MIGRATE`) while a concurrent client keeps reading and writing,
//! timed against issue 6's target (1,000,000 keys of 16 bytes with 32-byte values
//! rebalance from 3 to 4 servers in under 10 s), then checked: no key lost, duplicated or
//! changed.
//!
//! How the key count is made exact while the client writes: the loaded keys are the memory
//! test's `mem:` keys, and the client's keyspace is loaded alongside them (the
//! `key:000000000000` ... keys that `redis-benchmark -r K` picks from, one per index). The
//! client then only overwrites and reads keys that already exist, so the sum of DBSIZE over
//! the four backends must be the same before and after the migration: N + K. The sampled
//! read-back uses `mem:` keys only, which the client never writes, so their values are
//! known exactly.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use resp::Frame;

use crate::load::{self, Test};
use crate::memory;
use crate::numbers::thousands;
use crate::probe;
use crate::processes::{Background, Ending, ScratchDir};
use crate::sanity::Check;
use crate::services::{our_proxy, our_server, redis_server, Service};
use crate::setup::{Binaries, Tools};

/// Issue 6's target for 1,000,000 keys.
pub const TARGET: Duration = Duration::from_secs(10);
/// Backends in the ring before the migration (one more is added).
const RING_BEFORE: usize = 3;
/// How often `MIGRATION` is asked while the keys move.
const POLL: Duration = Duration::from_millis(50);
/// How long a migration may run before it counts as stuck.
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(120);
/// The concurrent client's hard time limit (its watchdog kills it then, whatever happens).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the concurrent client runs before the migration starts (it prints its first
/// progress line after 250 ms).
const CLIENT_LEAD: Duration = Duration::from_millis(600);
/// Requests each client process is given (`-n`): more than it can do before it is stopped.
const CLIENT_REQUESTS: u64 = 1_000_000_000;
/// Connections of each of the client's two processes (`-c`): 4 in all.
const CLIENT_CONNECTIONS: u32 = 2;
/// Loaded keys read back through the proxy afterwards.
const SAMPLE: u64 = 1_000;
/// How many wrong values or problems a report quotes.
const QUOTED: usize = 3;

/// Which backends the migration test runs with (`--migration-backends`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Our servers.
    Ours,
    /// Real redis-servers.
    Redis,
    /// Both, ours first.
    Both,
}

impl BackendChoice {
    /// The kinds to run, in order.
    pub fn kinds(self) -> Vec<BackendKind> {
        match self {
            BackendChoice::Ours => vec![BackendKind::Ours],
            BackendChoice::Redis => vec![BackendKind::Redis],
            BackendChoice::Both => vec![BackendKind::Ours, BackendKind::Redis],
        }
    }
}

/// The kind of backend behind the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Our servers.
    Ours,
    /// redis-servers.
    Redis,
}

impl BackendKind {
    /// Its name in tables.
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Ours => "ours",
            BackendKind::Redis => "redis-server",
        }
    }

    fn start(self, tools: &Tools, binaries: &Binaries, scratch: &ScratchDir, index: usize) -> Result<Service> {
        match self {
            BackendKind::Ours => our_server(binaries, &format!("migration-ours-{index}"), scratch),
            BackendKind::Redis => redis_server(tools, &format!("migration-redis-{index}"), scratch),
        }
    }
}

/// The keys of the concurrent client's keyspace loaded with the N keys: 1% of N, at least
/// one.
pub fn client_keys(keys: u64) -> u64 {
    (keys / 100).max(1)
}

/// The `i`th key of redis-benchmark's keyspace: `key:` and the 12 digits it puts in place
/// of `__rand_int__`.
pub fn client_key(i: u64) -> String {
    format!("key:{i:012}")
}

/// The state in a `MIGRATION` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Keys are moving.
    Running,
    /// The last migration ended without errors.
    Done,
    /// The last migration ended with errors.
    Failed,
    /// No migration has run.
    Idle,
}

impl State {
    fn parse(text: &str) -> Option<State> {
        Some(match text {
            "running" => State::Running,
            "done" => State::Done,
            "failed" => State::Failed,
            "idle" => State::Idle,
            _ => return None,
        })
    }

    /// Its name in the proxy's reply.
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Done => "done",
            State::Failed => "failed",
            State::Idle => "idle",
        }
    }
}

/// Our proxy's `MIGRATION` reply.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationStatus {
    /// `migration:`.
    pub state: State,
    /// `keys_scanned:`.
    pub scanned: u64,
    /// `keys_moved:`.
    pub moved: u64,
    /// `keys_remaining:`.
    pub remaining: u64,
    /// `scan_rate_keys_per_sec:`.
    pub scan_rate: u64,
    /// `elapsed_ms:`, from the start to the end of the key moves, measured by the proxy.
    pub elapsed_ms: u64,
    /// `errors:`.
    pub errors: u64,
    /// `last_error:`, when there was one.
    pub last_error: Option<String>,
}

impl MigrationStatus {
    /// Parses the `field:value\r\n` lines of a `MIGRATION` reply; unknown fields are
    /// skipped, a missing or malformed one is an error.
    pub fn parse(text: &str) -> Result<MigrationStatus> {
        let field = |name: &str| {
            text.lines().find_map(|line| {
                let (key, value) = line.trim_end_matches('\r').split_once(':')?;
                (key == name).then(|| value.trim().to_string())
            })
        };
        let number = |name: &str| -> Result<u64> {
            let value = field(name).with_context(|| format!("no {name} in the MIGRATION reply {text:?}"))?;
            value.parse().with_context(|| format!("{name} is not a number in the MIGRATION reply: {value:?}"))
        };
        let state = field("migration").context("no migration: state in the MIGRATION reply")?;
        Ok(MigrationStatus {
            state: State::parse(&state).with_context(|| format!("unknown migration state {state:?}"))?,
            scanned: number("keys_scanned")?,
            moved: number("keys_moved")?,
            remaining: number("keys_remaining")?,
            scan_rate: number("scan_rate_keys_per_sec")?,
            elapsed_ms: number("elapsed_ms")?,
            errors: number("errors")?,
            last_error: field("last_error"),
        })
    }

    /// Asks the proxy at `addr`.
    pub fn query(addr: &str) -> Result<MigrationStatus> {
        match probe::call(addr, &["MIGRATION"])? {
            Frame::Bulk(text) => MigrationStatus::parse(&String::from_utf8_lossy(&text)),
            other => bail!("MIGRATION on {addr} replied {other:?}"),
        }
    }
}

/// One of the concurrent client's redis-benchmark processes, once stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRun {
    /// Its test (`SET` or `GET`).
    pub test: &'static str,
    /// Its overall requests/s from its last progress line.
    pub rps: Option<f64>,
    /// How long it ran, seconds.
    pub seconds: f64,
    /// The failed requests it reported.
    pub errors: Vec<String>,
    /// Why it did not run for the whole migration (it exits on its first error).
    pub failure: Option<String>,
}

/// The figures and checks of one migration.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRow {
    /// The backends.
    pub kind: BackendKind,
    /// Keys loaded (`mem:` keys).
    pub keys: u64,
    /// Keys of the concurrent client's keyspace loaded with them (`key:` keys).
    pub client_keys: u64,
    /// The proxy's last `MIGRATION` reply.
    pub status: MigrationStatus,
    /// From the `ADD_SERVER` reply until `MIGRATION` no longer said `running`, measured here.
    pub wall: Duration,
    /// Whether it still ran when this test stopped waiting.
    pub timed_out: bool,
    /// The sum of DBSIZE over the four backends before the migration.
    pub dbsize_before: i64,
    /// DBSIZE of each backend afterwards (the added one last).
    pub dbsize_after: Vec<(String, i64)>,
    /// Loaded keys read back through the proxy.
    pub sampled: u64,
    /// Those that were missing or wrong, a few quoted.
    pub sample_wrong: Vec<String>,
    /// How many were missing or wrong.
    pub sample_wrong_count: u64,
    /// The concurrent client.
    pub client: Vec<ClientRun>,
}

impl MigrationRow {
    /// Keys the backends must hold, before and after: the loaded ones and the client's.
    pub fn expected_keys(&self) -> i64 {
        (self.keys + self.client_keys) as i64
    }

    /// The sum of DBSIZE over the four backends afterwards.
    pub fn dbsize_after_total(&self) -> i64 {
        self.dbsize_after.iter().map(|(_, n)| n).sum()
    }

    /// The proxy's elapsed time, seconds.
    pub fn proxy_secs(&self) -> f64 {
        self.status.elapsed_ms as f64 / 1000.0
    }

    /// The time judged against the target: the longer of the proxy's figure and ours.
    pub fn judged_secs(&self) -> f64 {
        self.proxy_secs().max(self.wall.as_secs_f64())
    }

    /// Keys moved per second of the proxy's elapsed time.
    pub fn moved_per_sec(&self) -> f64 {
        self.status.moved as f64 / self.proxy_secs().max(1e-3)
    }

    /// The concurrent client's requests/s (both processes), when both reported them.
    pub fn client_rps(&self) -> Option<f64> {
        self.client.iter().map(|c| c.rps).sum()
    }

    /// Failed requests the concurrent client reported.
    pub fn client_errors(&self) -> usize {
        self.client.iter().map(|c| c.errors.len()).sum()
    }

    /// Whether it finished within [`TARGET`].
    pub fn under_target(&self) -> bool {
        !self.timed_out && self.judged_secs() < TARGET.as_secs_f64()
    }

    /// What went wrong; empty when every check passed (the target is judged apart).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.timed_out {
            problems.push(format!("still running after {} s", MIGRATION_TIMEOUT.as_secs()));
        } else if self.status.state != State::Done {
            problems.push(format!("MIGRATION says {}", self.status.state.name()));
        }
        if self.status.errors > 0 {
            let last = self.status.last_error.as_deref().map(|e| format!(" (last: {e})")).unwrap_or_default();
            problems.push(format!("MIGRATION errors:{}{last}", self.status.errors));
        }
        if self.dbsize_before != self.expected_keys() {
            problems.push(format!(
                "DBSIZE total before {} != {}",
                thousands(self.dbsize_before as f64),
                thousands(self.expected_keys() as f64)
            ));
        }
        if self.dbsize_after_total() != self.expected_keys() {
            problems.push(format!(
                "DBSIZE total after {} != {}",
                thousands(self.dbsize_after_total() as f64),
                thousands(self.expected_keys() as f64)
            ));
        }
        if self.sample_wrong_count > 0 {
            problems.push(format!("{} of {} sampled keys missing or wrong", self.sample_wrong_count, self.sampled));
        }
        for run in &self.client {
            if let Some(failure) = &run.failure {
                problems.push(format!("concurrent {} client {failure}", run.test));
            }
            if !run.errors.is_empty() {
                problems.push(format!("concurrent {} client: {} error lines", run.test, run.errors.len()));
            }
        }
        problems
    }

    /// `PASS`, or `FAIL` and why.
    pub fn verdict(&self) -> String {
        let problems = self.problems();
        if !problems.is_empty() {
            "FAIL (checks)".to_string()
        } else if !self.under_target() {
            format!("FAIL (over {} s)", TARGET.as_secs())
        } else {
            "PASS".to_string()
        }
    }
}

/// One migration test: its backends and what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The backends.
    pub kind: BackendKind,
    /// Keys it was to load.
    pub keys: u64,
    /// Its figures, or why it could not be measured.
    pub result: Result<MigrationRow, String>,
}

/// Runs the migration test once per backend kind, one after the other.
pub fn measure(
    tools: &Tools,
    binaries: &Binaries,
    scratch: &ScratchDir,
    keys: u64,
    choice: BackendChoice,
) -> Vec<Attempt> {
    let stream = scratch.path().join("migration.resp");
    let client_keys = client_keys(keys);
    let pairs = (0..keys)
        .map(|i| (memory::key(i), memory::value(i)))
        .chain((0..client_keys).map(|i| (client_key(i), memory::value(i))));
    let written = memory::write_pairs(&stream, pairs).map_err(|e| format!("{e:#}"));
    let attempts = choice
        .kinds()
        .into_iter()
        .map(|kind| {
            let result = match &written {
                Ok(()) => {
                    eprintln!("migration ({}): 3 -> 4 backends with {keys} keys", kind.label());
                    run(kind, tools, binaries, scratch, &stream, keys, client_keys).map_err(|e| format!("{e:#}"))
                }
                Err(e) => Err(e.clone()),
            };
            Attempt { kind, keys, result }
        })
        .collect();
    let _ = std::fs::remove_file(&stream);
    attempts
}

/// One migration: start, load, migrate under load, check. Every process it starts stops
/// when it returns (the proxy first, then the backends).
fn run(
    kind: BackendKind,
    tools: &Tools,
    binaries: &Binaries,
    scratch: &ScratchDir,
    stream: &Path,
    keys: u64,
    client_keys: u64,
) -> Result<MigrationRow> {
    let backends =
        (1..=RING_BEFORE + 1).map(|i| kind.start(tools, binaries, scratch, i)).collect::<Result<Vec<Service>>>()?;
    let (ring, spare) = backends.split_at(RING_BEFORE);
    let spare = &spare[0];
    let ring: Vec<&Service> = ring.iter().collect();
    let proxy = our_proxy(binaries, &format!("migration-proxy-{}", kind.label()), &ring, scratch)?;

    eprintln!("migration ({}): loading {keys} + {client_keys} keys through the proxy (redis-cli --pipe)", kind.label());
    let pipe_errors = memory::pipe(tools, proxy.port, "the proxy", stream, keys + client_keys)?;
    if pipe_errors != 0 {
        bail!("redis-cli --pipe through the proxy: {pipe_errors} errors");
    }
    let dbsize_before: i64 = dbsizes(&backends)?.iter().map(|(_, n)| n).sum();
    let idle = MigrationStatus::query(&proxy.addr())?;
    if idle.state == State::Running {
        bail!("a migration is already running before ADD_SERVER");
    }

    let client = Client::start(tools, proxy.port, client_keys)?;
    eprintln!("migration ({}): ADD_SERVER {} MIGRATE", kind.label(), spare.addr());
    let reply = probe::call(&proxy.addr(), &["ADD_SERVER", &spare.addr(), "MIGRATE"])?;
    let started = Instant::now();
    match &reply {
        Frame::Simple(text) if text.starts_with(b"OK") => {}
        other => bail!("ADD_SERVER {} MIGRATE replied {other:?}", spare.addr()),
    }
    let (status, timed_out) = loop {
        let status = MigrationStatus::query(&proxy.addr())?;
        if status.state != State::Running {
            break (status, false);
        }
        if started.elapsed() >= MIGRATION_TIMEOUT {
            break (status, true);
        }
        std::thread::sleep(POLL);
    };
    let wall = started.elapsed();
    let client = client.stop();

    let dbsize_after = dbsizes(&backends)?;
    let (sampled, sample_wrong_count, sample_wrong) = read_sample(&proxy.addr(), keys)?;
    let row = MigrationRow {
        kind,
        keys,
        client_keys,
        status,
        wall,
        timed_out,
        dbsize_before,
        dbsize_after,
        sampled,
        sample_wrong,
        sample_wrong_count,
        client,
    };
    eprintln!(
        "migration ({}): {} moved in {:.2} s (wall {:.2} s): {}",
        kind.label(),
        thousands(row.status.moved as f64),
        row.proxy_secs(),
        row.wall.as_secs_f64(),
        row.verdict()
    );
    Ok(row)
}

/// DBSIZE of every backend.
fn dbsizes(backends: &[Service]) -> Result<Vec<(String, i64)>> {
    backends.iter().map(|b| Ok((b.label.clone(), probe::dbsize(&b.addr())?))).collect()
}

/// The indexes of the loaded keys read back: up to [`SAMPLE`], spread evenly.
pub fn sample_indexes(keys: u64) -> Vec<u64> {
    let count = keys.min(SAMPLE);
    (0..count).map(|j| j * keys / count).collect()
}

/// Reads the sampled keys back through the proxy (one pipelined batch): how many were
/// read, how many were missing or wrong, and the first few of those.
fn read_sample(proxy: &str, keys: u64) -> Result<(u64, u64, Vec<String>)> {
    let indexes = sample_indexes(keys);
    let names: Vec<String> = indexes.iter().map(|&i| memory::key(i)).collect();
    let commands: Vec<[&str; 2]> = names.iter().map(|k| ["GET", k.as_str()]).collect();
    let commands: Vec<&[&str]> = commands.iter().map(|c| &c[..]).collect();
    let replies = probe::pipeline(proxy, &commands)?;
    let mut wrong = 0;
    let mut quoted = Vec::new();
    for ((&i, key), reply) in indexes.iter().zip(&names).zip(&replies) {
        let expected = memory::value(i);
        if !matches!(reply, Frame::Bulk(v) if v[..] == *expected.as_bytes()) {
            wrong += 1;
            if quoted.len() < QUOTED {
                quoted.push(format!("GET {key}: {reply:?}, expected {expected:?}"));
            }
        }
    }
    Ok((indexes.len() as u64, wrong, quoted))
}

/// The concurrent client: two redis-benchmark processes side by side for the whole
/// migration, one SETting and one GETting the client's keys, 2 connections each.
/// (One `redis-benchmark -t get,set` runs its tests one after the other, so with a request
/// count large enough to outlast the migration it would only ever SET.)
struct Client {
    runs: Vec<(Test, Background)>,
}

impl Client {
    /// Starts both processes and lets them run for [`CLIENT_LEAD`]; an error if either
    /// exited by then.
    fn start(tools: &Tools, port: u16, client_keys: u64) -> Result<Client> {
        let mut runs = Vec::new();
        for test in [Test::Set, Test::Get] {
            let mut command = Command::new(&tools.redis_benchmark);
            command.args(client_arguments(port, test, client_keys));
            runs.push((test, Background::start("redis-benchmark", &mut command, CLIENT_TIMEOUT)?));
        }
        std::thread::sleep(CLIENT_LEAD);
        if runs.iter().any(|(_, run)| run.exited().is_some()) {
            let said: Vec<String> = runs
                .into_iter()
                .map(|(test, run)| {
                    let finished = run.stop();
                    format!("{}: {}{}", test.name(), finished.stdout.trim(), finished.stderr.trim())
                })
                .collect();
            bail!("the concurrent client exited at start: {}", said.join("; "));
        }
        Ok(Client { runs })
    }

    /// Stops both and reads what they said.
    fn stop(self) -> Vec<ClientRun> {
        self.runs
            .into_iter()
            .map(|(test, run)| {
                let finished = run.stop();
                // Progress lines end in CR, not LF.
                let output = format!("{}\n{}", finished.stdout, finished.stderr).replace('\r', "\n");
                let (errors, _warnings) = load::error_lines(&output);
                let rps = parse_progress(&output, test.name());
                let said = || {
                    output
                        .lines()
                        .map(str::trim)
                        .rfind(|l| !l.is_empty() && !l.starts_with("WARNING") && !l.contains("rps="))
                        .map(|l| format!(": {l}"))
                        .unwrap_or_default()
                };
                let failure = match finished.ending {
                    Ending::Stopped if rps.is_none() => Some("printed no progress line".to_string()),
                    Ending::Stopped => None,
                    Ending::Exited(status) => Some(format!("exited ({status}) before the migration ended{}", said())),
                    Ending::TimedOut => {
                        Some(format!("killed after {:.0} s (time limit)", finished.elapsed.as_secs_f64()))
                    }
                };
                ClientRun { test: test.name(), rps, seconds: finished.elapsed.as_secs_f64(), errors, failure }
            })
            .collect()
    }
}

/// The arguments of one of the concurrent client's processes.
pub fn client_arguments(port: u16, test: Test, client_keys: u64) -> Vec<String> {
    [
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-t",
        test.flag().unwrap_or("get"),
        "-c",
        &CLIENT_CONNECTIONS.to_string(),
        "-d",
        &memory::VALUE_LEN.to_string(),
        "-r",
        &client_keys.to_string(),
        "-n",
        &CLIENT_REQUESTS.to_string(),
    ]
    .map(str::to_string)
    .to_vec()
}

/// The overall requests/s of `test` from redis-benchmark's last progress line
/// (`SET: rps=41234.0 (overall: 40123.4) avg_msec=0.090 (overall: 0.091)`).
pub fn parse_progress(output: &str, test: &str) -> Option<f64> {
    let prefix = format!("{test}: rps=");
    output.split(['\r', '\n']).filter_map(|line| line.trim().strip_prefix(prefix.as_str())).rev().find_map(|rest| {
        let overall = rest.split_once("(overall: ")?.1;
        overall.split_once(')')?.0.trim().parse::<f64>().ok().filter(|rps| rps.is_finite())
    })
}

/// One sanity check per attempt: the migration ended `done` without errors, no key was
/// lost or duplicated, the sampled values read back, the concurrent client saw no error.
pub fn checks(attempts: &[Attempt]) -> Vec<Check> {
    attempts
        .iter()
        .map(|attempt| {
            let name = format!("migration ({})", attempt.kind.label());
            match &attempt.result {
                Err(why) => {
                    Check { ok: false, text: format!("{name}: could not be measured: {why}"), details: Vec::new() }
                }
                Ok(row) => {
                    let problems = row.problems();
                    let mut details: Vec<String> = problems.iter().take(QUOTED * 2).cloned().collect();
                    details.extend(row.sample_wrong.iter().cloned());
                    for run in &row.client {
                        details.extend(run.errors.iter().take(QUOTED).map(|e| format!("{}: {e}", run.test)));
                    }
                    details.push(format!(
                        "concurrent client: {} over {:.1} s",
                        row.client
                            .iter()
                            .map(|c| match c.rps {
                                Some(rps) => format!("{} {} req/s", c.test, thousands(rps)),
                                None => format!("{} -", c.test),
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        row.client.iter().map(|c| c.seconds).fold(0.0, f64::max)
                    ));
                    details.push(format!(
                        "DBSIZE after: {}",
                        row.dbsize_after
                            .iter()
                            .map(|(label, n)| format!("{label} {}", thousands(*n as f64)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    Check {
                        ok: problems.is_empty(),
                        text: format!(
                            "{name}: {}, errors:{}, DBSIZE total {} before and {} after (expected {} = {} loaded + \
                             {} client keys), {}/{} sampled keys read back intact, concurrent client {} error lines",
                            row.status.state.name(),
                            row.status.errors,
                            thousands(row.dbsize_before as f64),
                            thousands(row.dbsize_after_total() as f64),
                            thousands(row.expected_keys() as f64),
                            thousands(row.keys as f64),
                            thousands(row.client_keys as f64),
                            thousands((row.sampled - row.sample_wrong_count) as f64),
                            thousands(row.sampled as f64),
                            row.client_errors()
                        ),
                        details,
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const REPLY: &str = "migration:done\r\nkeys_scanned:1010000\r\nkeys_moved:346123\r\nkeys_remaining:0\r\n\
                         scan_rate_keys_per_sec:561111\r\nelapsed_ms:1800\r\nerrors:0\r\n";

    /// A passing row of 1,000,000 keys.
    pub(crate) fn sample_row(kind: BackendKind) -> MigrationRow {
        MigrationRow {
            kind,
            keys: 1_000_000,
            client_keys: 10_000,
            status: MigrationStatus::parse(REPLY).unwrap(),
            wall: Duration::from_millis(1_850),
            timed_out: false,
            dbsize_before: 1_010_000,
            dbsize_after: vec![
                ("a".into(), 221_000),
                ("b".into(), 222_000),
                ("c".into(), 220_877),
                ("d".into(), 346_123),
            ],
            sampled: 1_000,
            sample_wrong: Vec::new(),
            sample_wrong_count: 0,
            client: vec![
                ClientRun { test: "SET", rps: Some(20_000.0), seconds: 2.5, errors: Vec::new(), failure: None },
                ClientRun { test: "GET", rps: Some(21_000.0), seconds: 2.5, errors: Vec::new(), failure: None },
            ],
        }
    }

    #[test]
    fn the_migration_reply_is_parsed() {
        let status = MigrationStatus::parse(REPLY).unwrap();
        assert_eq!(
            status,
            MigrationStatus {
                state: State::Done,
                scanned: 1_010_000,
                moved: 346_123,
                remaining: 0,
                scan_rate: 561_111,
                elapsed_ms: 1_800,
                errors: 0,
                last_error: None,
            }
        );
        let failed = format!("{}last_error:copy to 127.0.0.1:1 failed: x\r\n", REPLY.replace("errors:0", "errors:2"))
            .replace("migration:done", "migration:failed");
        let status = MigrationStatus::parse(&failed).unwrap();
        assert_eq!((status.state, status.errors), (State::Failed, 2));
        assert_eq!(status.last_error.as_deref(), Some("copy to 127.0.0.1:1 failed: x"));
        let running = REPLY.replace("migration:done", "migration:running");
        assert_eq!(MigrationStatus::parse(&running).unwrap().state, State::Running);
    }

    #[test]
    fn a_bad_migration_reply_is_an_error() {
        assert!(MigrationStatus::parse("").is_err());
        assert!(MigrationStatus::parse(&REPLY.replace("migration:done", "migration:dancing")).is_err());
        assert!(MigrationStatus::parse(&REPLY.replace("keys_moved:346123", "keys_moved:many")).is_err());
        assert!(MigrationStatus::parse(&REPLY.replace("elapsed_ms:1800\r\n", "")).is_err());
    }

    #[test]
    fn progress_lines_give_the_overall_rate() {
        let output = "WARNING: Could not fetch server CONFIG\n\
                      \rSET: rps=0.0 (overall: inf) avg_msec=0.154 (overall: 0.154)\r          \r\
                      SET: rps=44442.2 (overall: 44462.2) avg_msec=0.062 (overall: 0.062)\r    \r\
                      SET: rps=56128.0 (overall: 50283.4) avg_msec=0.050 (overall: 0.055)\r";
        assert_eq!(parse_progress(output, "SET"), Some(50_283.4));
        assert_eq!(parse_progress(output, "GET"), None);
        assert_eq!(parse_progress("SET: rps=0.0 (overall: inf) avg_msec=0.1 (overall: 0.1)\r", "SET"), None);
        assert_eq!(parse_progress("Could not connect to Redis\n", "SET"), None);
    }

    #[test]
    fn the_client_uses_the_loaded_keyspace() {
        assert_eq!(
            client_arguments(7000, Test::Get, 10_000).join(" "),
            "-h 127.0.0.1 -p 7000 -t get -c 2 -d 32 -r 10000 -n 1000000000"
        );
        assert_eq!(client_keys(1_000_000), 10_000);
        assert_eq!(client_keys(50), 1);
        assert_eq!(client_key(42), "key:000000000042");
        assert_eq!(client_key(0).len(), memory::KEY_LEN);
    }

    #[test]
    fn samples_spread_over_the_keys() {
        let indexes = sample_indexes(1_000_000);
        assert_eq!(indexes.len(), 1_000);
        assert_eq!((indexes[0], indexes[1], indexes[999]), (0, 1_000, 999_000));
        assert_eq!(sample_indexes(3), [0, 1, 2]);
    }

    #[test]
    fn a_clean_fast_migration_passes() {
        let row = sample_row(BackendKind::Ours);
        assert_eq!(row.problems(), Vec::<String>::new());
        assert_eq!(row.verdict(), "PASS");
        assert!((row.judged_secs() - 1.85).abs() < 1e-9);
        assert!((row.moved_per_sec() - 192_290.555).abs() < 0.01);
        assert_eq!(row.client_rps(), Some(41_000.0));
        let check = &checks(&[Attempt { kind: row.kind, keys: row.keys, result: Ok(row) }])[0];
        assert!(check.ok);
        assert!(check
            .text
            .starts_with("migration (ours): done, errors:0, DBSIZE total 1,010,000 before and 1,010,000"));
    }

    #[test]
    fn lost_keys_errors_and_slowness_fail() {
        let mut row = sample_row(BackendKind::Redis);
        row.wall = Duration::from_secs(11);
        assert!(row.problems().is_empty());
        assert_eq!(row.verdict(), "FAIL (over 10 s)");

        let mut row = sample_row(BackendKind::Redis);
        row.dbsize_after[3].1 -= 1;
        row.status.errors = 1;
        row.client[0].failure = Some("exited (exit status: 1) before the migration ended".into());
        let problems = row.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[1].starts_with("DBSIZE total after 1,009,999 != 1,010,000"));
        assert_eq!(row.verdict(), "FAIL (checks)");
        let attempts = [
            Attempt { kind: row.kind, keys: row.keys, result: Ok(row) },
            Attempt { kind: BackendKind::Ours, keys: 5, result: Err("ours did not start".into()) },
        ];
        let checks = checks(&attempts);
        assert!(checks.iter().all(|c| !c.ok));
        assert_eq!(checks[1].text, "migration (ours): could not be measured: ours did not start");
    }
}
