//! Resident memory per key: a fresh server loaded with N keys of 16 bytes and 32-byte values
//! through `redis-cli --pipe`, its VmRSS read before and after.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::processes::{run_bounded, ScratchDir};
use crate::services::{our_server, redis_server, Service};
use crate::setup::{Binaries, Tools};
use crate::{probe, procfs};

/// Key length of the memory test, bytes.
pub const KEY_LEN: usize = 16;
/// Value length of the memory test, bytes.
pub const VALUE_LEN: usize = 32;
/// How long loading one server may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(180);
/// Let the server finish what the last reply left (freeing read buffers) before reading RSS.
const SETTLE: Duration = Duration::from_millis(300);

/// The memory figures of one server.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    /// Which server.
    pub label: String,
    /// Keys sent.
    pub keys: u64,
    /// Keys it holds afterwards (DBSIZE).
    pub dbsize: i64,
    /// VmRSS before loading, KiB.
    pub rss_before_kib: u64,
    /// VmRSS after loading, KiB.
    pub rss_after_kib: u64,
    /// Errors `redis-cli --pipe` counted in the replies.
    pub pipe_errors: u64,
}

impl MemoryRow {
    /// (VmRSS after - VmRSS before) / keys, in bytes.
    pub fn bytes_per_key(&self) -> f64 {
        let grown = self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64 * 1024.0;
        grown / self.keys.max(1) as f64
    }
}

/// The `i`th key: `mem:` and 12 digits, 16 bytes.
pub fn key(i: u64) -> String {
    format!("mem:{i:012}")
}

/// The `i`th value: `value-` and 26 digits, 32 bytes.
pub fn value(i: u64) -> String {
    format!("value-{i:026}")
}

/// Appends `SET key value` as a RESP multibulk request.
fn write_set(out: &mut impl Write, key: &str, value: &str) -> std::io::Result<()> {
    write!(out, "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n", key.len(), value.len())
}

/// Writes the RESP stream of `keys` SET commands to `path`.
pub fn write_stream(path: &Path, keys: u64) -> Result<()> {
    write_pairs(path, (0..keys).map(|i| (key(i), value(i))))
}

/// Writes one `SET key value` per pair to `path`, as a RESP stream for `redis-cli --pipe`.
pub fn write_pairs(path: &Path, pairs: impl IntoIterator<Item = (String, String)>) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for (key, value) in pairs {
        write_set(&mut out, &key, &value).with_context(|| format!("writing {}", path.display()))?;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))
}

/// `errors: 0, replies: 1000000` from redis-cli --pipe's closing line.
pub fn parse_pipe_summary(output: &str) -> Option<(u64, u64)> {
    output.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("errors:")?;
        let (errors, replies) = rest.split_once(", replies:")?;
        Some((errors.trim().parse().ok()?, replies.trim().parse().ok()?))
    })
}

/// Loads `keys` keys into a fresh redis-server and a fresh server of ours, one after the
/// other, and measures both.
pub fn measure(tools: &Tools, binaries: &Binaries, scratch: &ScratchDir, keys: u64) -> Result<Vec<MemoryRow>> {
    let stream = scratch.path().join("memory.resp");
    write_stream(&stream, keys)?;
    let mut rows = Vec::new();
    {
        let redis = redis_server(tools, "redis-memory", scratch)?;
        rows.push(load_and_measure(tools, &redis, "redis-server", &stream, keys)?);
    }
    {
        let server = our_server(binaries, "server-memory", scratch)?;
        rows.push(load_and_measure(tools, &server, "server", &stream, keys)?);
    }
    std::fs::remove_file(&stream).with_context(|| format!("removing {}", stream.display()))?;
    Ok(rows)
}

fn load_and_measure(tools: &Tools, service: &Service, label: &str, stream: &Path, keys: u64) -> Result<MemoryRow> {
    eprintln!("memory: loading {keys} keys into {label} (redis-cli --pipe)");
    std::thread::sleep(SETTLE);
    let rss_before_kib = procfs::rss_kib(service.pid())?;
    let pipe_errors = pipe(tools, service.port, label, stream, keys)?;
    std::thread::sleep(SETTLE);
    let rss_after_kib = procfs::rss_kib(service.pid())?;
    Ok(MemoryRow {
        label: label.to_string(),
        keys,
        dbsize: probe::dbsize(&service.addr())?,
        rss_before_kib,
        rss_after_kib,
        pipe_errors,
    })
}

/// Sends the RESP stream in `stream` to `127.0.0.1:<port>` through `redis-cli --pipe`
/// (bounded), checks that `replies` replies came back, and returns the errors it counted.
pub fn pipe(tools: &Tools, port: u16, label: &str, stream: &Path, replies: u64) -> Result<u64> {
    let input = File::open(stream).with_context(|| format!("opening {}", stream.display()))?;
    let mut command = Command::new(&tools.redis_cli);
    command.args(["-h", "127.0.0.1", "-p", &port.to_string(), "--pipe"]).stdin(Stdio::from(input));
    let run = run_bounded("redis-cli --pipe", &mut command, LOAD_TIMEOUT)?;
    if let Some(failure) = run.failure() {
        bail!("redis-cli --pipe into {label} {failure}: {}{}", run.stdout.trim(), run.stderr.trim());
    }
    let (errors, got) = parse_pipe_summary(&run.stdout)
        .with_context(|| format!("no `errors: N, replies: N` line from redis-cli --pipe: {}", run.stdout.trim()))?;
    if got != replies {
        bail!("redis-cli --pipe into {label}: {got} replies for {replies} commands");
    }
    Ok(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_have_their_lengths() {
        for i in [0, 7, 999_999, 123_456_789_012] {
            assert_eq!(key(i).len(), KEY_LEN);
            assert_eq!(value(i).len(), VALUE_LEN);
        }
        assert_ne!(key(1), key(2));
    }

    #[test]
    fn the_stream_is_resp_multibulk() {
        let mut out = Vec::new();
        write_set(&mut out, &key(1), &value(1)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*3\r\n$3\r\nSET\r\n$16\r\nmem:000000000001\r\n$32\r\nvalue-00000000000000000000000001\r\n"
        );
    }

    #[test]
    fn the_pipe_summary_is_parsed() {
        let output = "All data transferred. Waiting for the last reply...\n\
                      Last reply received from server.\n\
                      errors: 0, replies: 1000000\n";
        assert_eq!(parse_pipe_summary(output), Some((0, 1_000_000)));
        assert_eq!(parse_pipe_summary("nothing\n"), None);
    }

    #[test]
    fn bytes_per_key_come_from_the_growth() {
        let row = MemoryRow {
            label: "x".into(),
            keys: 1_000_000,
            dbsize: 1_000_000,
            rss_before_kib: 10_000,
            rss_after_kib: 155_500,
            pipe_errors: 0,
        };
        assert!((row.bytes_per_key() - 148.992).abs() < 1e-9);
    }
}
