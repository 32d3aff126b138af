//! No acknowledged write is hidden when a server comes back (hinted handoff): a backend is
//! paused with SIGSTOP, marked down, written around, and resumed; every key must then read
//! the last acknowledged value, or nil where it was deleted.
//!
//! `cargo test -p e2e --test handoff`

use std::process::Command;
use std::time::Duration;

use e2e::{bulk, wait_until, Cluster, Conn, Process};
use resp::Frame;

/// Fast health checks, so a paused server is marked down and back within a second or two.
const HEALTH: &[&str] =
    &["--no-greeting", "--health-interval-ms", "50", "--server-failure-limit", "2", "--server-retry-timeout-ms", "100"];
const KEYS: usize = 600;

/// Sends SIGCONT on drop, so a failing test never leaves a server paused.
struct Paused<'a>(&'a Process);

impl<'a> Paused<'a> {
    fn new(process: &'a Process) -> Self {
        signal(process, "-STOP");
        Paused(process)
    }
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(process: &Process, which: &str) {
    let status = Command::new("kill").args([which, &process.pid().to_string()]).status().expect("kill");
    assert!(status.success(), "kill {which}");
}

/// The state SERVERS DETAIL shows for `addr`.
fn state(c: &mut Conn, addr: &str) -> String {
    let Frame::Array(lines) = c.call(&["SERVERS", "DETAIL"]) else { return String::new() };
    lines
        .iter()
        .filter_map(|l| l.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
        .find(|l| l.starts_with(addr))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("state=").map(str::to_string)))
        .unwrap_or_default()
}

/// Pauses server 0 until the proxy marks it down, writes `round` (a new value for most keys,
/// a delete for every seventh), resumes it, and waits until it is up again.
fn write_around_a_pause(c: &mut Conn, cluster: &Cluster, round: usize, expected: &mut [Option<String>]) {
    let addr = cluster.servers[0].addr();
    {
        let _paused = Paused::new(&cluster.servers[0]);
        assert!(wait_until(Duration::from_secs(20), || state(c, &addr) == "down"), "never marked down");
        let mut commands: Vec<Vec<String>> = Vec::new();
        for (i, slot) in expected.iter_mut().enumerate() {
            let key = format!("key:{i}");
            if (i + round).is_multiple_of(7) {
                commands.push(vec!["DEL".into(), key]);
                *slot = None;
            } else {
                let value = format!("round{round}-{i}");
                commands.push(vec!["SET".into(), key, value.clone()]);
                *slot = Some(value);
            }
        }
        for reply in c.pipeline(&commands) {
            assert!(!matches!(reply, Frame::Error(_)), "a write while the server is down: {reply:?}");
        }
    }
    assert!(wait_until(Duration::from_secs(20), || state(c, &addr) == "up"), "never back up");
}

fn stale_reads(c: &mut Conn, expected: &[Option<String>]) -> Vec<String> {
    let reads: Vec<Vec<String>> = (0..expected.len()).map(|i| vec!["GET".into(), format!("key:{i}")]).collect();
    let replies = c.pipeline(&reads);
    expected
        .iter()
        .zip(replies)
        .enumerate()
        .filter_map(|(i, (want, got))| {
            let want_frame = want.as_deref().map_or(Frame::Null, bulk);
            (got != want_frame).then(|| format!("key:{i}: read {got:?}, acknowledged {want:?}"))
        })
        .collect()
}

/// Prints a process's last log lines when the test fails.
struct LogsOnFailure<'a>(&'a Process);

impl Drop for LogsOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.0.logs();
            let lines: Vec<&String> = logs.iter().filter(|l| !l.contains("routing to")).collect();
            eprintln!(
                "proxy log (last lines):\n{}",
                lines[lines.len().saturating_sub(30)..].iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n")
            );
        }
    }
}

#[test]
fn writes_made_while_a_server_was_paused_are_not_hidden_when_it_returns() {
    let cluster = Cluster::redis(3, HEALTH);
    let _logs = LogsOnFailure(&cluster.proxy);
    let mut c = Conn::connect(&cluster.proxy.addr());
    let mut expected: Vec<Option<String>> = vec![None; KEYS];
    let load: Vec<Vec<String>> = (0..KEYS).map(|i| vec!["SET".into(), format!("key:{i}"), "old".into()]).collect();
    c.pipeline(&load);
    expected.iter_mut().for_each(|e| *e = Some("old".into()));

    write_around_a_pause(&mut c, &cluster, 1, &mut expected);
    let stale = stale_reads(&mut c, &expected);
    assert!(
        stale.is_empty(),
        "{} stale or missing reads after SIGSTOP/SIGCONT: {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );

    // A flap: down and up twice more; the last acknowledged write still wins.
    for round in 2..4 {
        write_around_a_pause(&mut c, &cluster, round, &mut expected);
    }
    let stale = stale_reads(&mut c, &expected);
    assert!(stale.is_empty(), "{} stale or missing reads after flaps: {:?}", stale.len(), &stale[..stale.len().min(5)]);
    // Once repaired, no copy is left on a server that does not own it.
    assert!(wait_until(Duration::from_secs(10), || c.field(&["INFO"], "hinted_keys").is_none_or(|n| n == "0")));
}

#[test]
fn an_overflowing_hint_log_flushes_the_returning_server_instead() {
    let mut flags = HEALTH.to_vec();
    flags.extend(["--max-hints", "10"]);
    let cluster = Cluster::redis(3, &flags);
    let mut c = Conn::connect(&cluster.proxy.addr());
    let load: Vec<Vec<String>> = (0..KEYS).map(|i| vec!["SET".into(), format!("key:{i}"), "old".into()]).collect();
    c.pipeline(&load);
    let mut expected: Vec<Option<String>> = vec![Some("old".into()); KEYS];
    write_around_a_pause(&mut c, &cluster, 1, &mut expected);
    // Keys of the flushed server that were not rewritten miss (a cold cache), but no read
    // answers a value older than an acknowledged write.
    let stale: Vec<String> =
        stale_reads(&mut c, &expected).into_iter().filter(|line| !line.contains("read Null")).collect();
    assert!(stale.is_empty(), "stale reads: {:?}", &stale[..stale.len().min(5)]);
    assert!(cluster.proxy.wait_for_log("flushed on its return", Duration::from_secs(5)));
}

#[test]
fn scan_walks_past_a_server_that_is_down_and_info_sums_the_rest() {
    let cluster = Cluster::redis(3, HEALTH);
    let mut c = Conn::connect(&cluster.proxy.addr());
    let load: Vec<Vec<String>> = (0..KEYS).map(|i| vec!["SET".into(), format!("key:{i}"), "v".into()]).collect();
    c.pipeline(&load);
    let on_first = {
        let mut direct = Conn::connect(&cluster.servers[0].addr());
        match direct.call(&["DBSIZE"]) {
            Frame::Integer(n) => n as usize,
            other => panic!("DBSIZE {other:?}"),
        }
    };
    assert_eq!(
        c.field(&["INFO"], "db0").and_then(|v| v.split(',').next().map(str::to_string)),
        Some(format!("keys={KEYS}"))
    );
    let addr = cluster.servers[0].addr();
    let _paused = Paused::new(&cluster.servers[0]);
    assert!(wait_until(Duration::from_secs(20), || state(&mut c, &addr) == "down"), "never marked down");
    let mut cursor = "0".to_string();
    let mut seen = 0;
    for _ in 0..10_000 {
        let Frame::Array(reply) = c.call(&["SCAN", &cursor, "COUNT", "100"]) else {
            panic!("SCAN while a server is down")
        };
        let (Some(Frame::Bulk(next)), Some(Frame::Array(keys))) = (reply.first(), reply.get(1)) else {
            panic!("{reply:?}")
        };
        seen += keys.len();
        cursor = String::from_utf8_lossy(next).into_owned();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "the scan ends");
    assert_eq!(seen, KEYS - on_first, "every key of the servers that are up, once");
}
