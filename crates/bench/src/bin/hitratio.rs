//! `hitratio`: replays request traces against caches bounded by the same `maxmemory` and
//! prints their hit ratios side by side (issue 12, "How it is checked").
//!
//! ```text
//! cargo build --release -p server -p bench --bin hitratio && target/release/hitratio
//! ```
//!
//! Each trace is replayed cache-aside, as an application would: a batch of GETs, then a
//! SET (value of `--value-size` bytes) for every miss. Targets: redis-server with
//! `allkeys-lru` and `allkeys-lfu`, and our `server` with each evicting policy, each
//! started fresh on a free port with `--maxmemory`. Traces, over `--keys` distinct keys
//! (about 10x what fits):
//! - `zipf-0.8`, `zipf-1.0`: Zipf-distributed requests;
//! - `zipf-1.0+scans`: the same, with a one-time scan of never-seen keys (a tenth of the
//!   key count) every tenth of the trace: LRU's weak point.
//!
//! The traces are generated from a fixed seed, so every target sees the same requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::BytesMut;
use clap::Parser;
use resp::{Frame, Limits};

/// Replays Zipf and scan-mixed traces against redis-server and our server at the same
/// maxmemory and prints the hit ratios.
#[derive(Parser, Debug)]
struct Args {
    /// Distinct keys in the Zipf traces.
    #[arg(long, default_value_t = 200_000)]
    keys: usize,
    /// Requests per trace.
    #[arg(long, default_value_t = 1_000_000)]
    requests: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 200)]
    value_size: usize,
    /// maxmemory of every target, in bytes (default: room for about a tenth of the keys).
    #[arg(long, default_value_t = 8 << 20)]
    maxmemory: usize,
    /// Requests per pipelined batch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
}

/// What a replay measured.
struct Outcome {
    hits: usize,
    requests: usize,
    seconds: f64,
    keys_held: i64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let traces = [
        ("zipf-0.8", zipf_trace(args.keys, args.requests, 0.8, 1, false)),
        ("zipf-1.0", zipf_trace(args.keys, args.requests, 1.0, 2, false)),
        ("zipf-1.0+scans", zipf_trace(args.keys, args.requests, 1.0, 3, true)),
    ];
    let server = std::env::current_exe()?.parent().context("exe dir")?.join("server");
    if !server.exists() {
        bail!("{} not found: cargo build --release -p server first", server.display());
    }
    let mut targets: Vec<(String, Target)> = vec![
        ("redis allkeys-lru".into(), Target::Redis("allkeys-lru")),
        ("redis allkeys-lfu".into(), Target::Redis("allkeys-lfu")),
    ];
    for policy in ["allkeys-sieve", "allkeys-lru", "allkeys-lfu", "allkeys-random"] {
        targets.push((format!("ours {policy}"), Target::Ours(server.clone(), policy)));
    }
    println!(
        "keys {}, requests {}, value {} B, maxmemory {} B; hit ratio % (kreq/s, keys held at the end)",
        args.keys, args.requests, args.value_size, args.maxmemory
    );
    print!("| target |");
    traces.iter().for_each(|(name, _)| print!(" {name} |"));
    println!();
    print!("|---|");
    traces.iter().for_each(|_| print!("---|"));
    println!();
    for (name, target) in &targets {
        print!("| {name} |");
        for (_, trace) in &traces {
            let outcome = target.replay(trace, &args)?;
            print!(
                " {:.2} ({:.0}, {}) |",
                100.0 * outcome.hits as f64 / outcome.requests as f64,
                outcome.requests as f64 / outcome.seconds / 1000.0,
                outcome.keys_held
            );
            std::io::stdout().flush()?;
        }
        println!();
    }
    Ok(())
}

/// A cache to replay against, started fresh for each trace.
enum Target {
    Redis(&'static str),
    Ours(PathBuf, &'static str),
}

impl Target {
    fn replay(&self, trace: &[u64], args: &Args) -> anyhow::Result<Outcome> {
        let maxmemory = args.maxmemory.to_string();
        let process = match self {
            Target::Redis(policy) => {
                launch::redis_server_with(None, &["--maxmemory", &maxmemory, "--maxmemory-policy", policy])?
            }
            Target::Ours(path, policy) => launch::Launch::new(path)
                .name("server")
                .port(0)
                .args(["--no-greeting", "--maxmemory", &maxmemory, "--maxmemory-policy", policy])
                .timeout(Duration::from_secs(30))
                .start()?,
        };
        let mut conn = Conn::connect(&process.addr())?;
        let value = vec![b'v'; args.value_size];
        let started = Instant::now();
        let mut hits = 0;
        for batch in trace.chunks(args.batch) {
            let keys: Vec<String> = batch.iter().map(|k| format!("key:{k:016x}")).collect();
            let replies = conn.pipeline(keys.iter().map(|k| vec![&b"GET"[..], k.as_bytes()]))?;
            let mut sets = Vec::new();
            for (key, reply) in keys.iter().zip(replies) {
                match reply {
                    Frame::Bulk(_) => hits += 1,
                    _ => sets.push(vec![&b"SET"[..], key.as_bytes(), &value]),
                }
            }
            for reply in conn.pipeline(sets)? {
                if let Frame::Error(e) = reply {
                    bail!("SET failed: {}", String::from_utf8_lossy(&e));
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let keys_held = match conn.pipeline([vec![&b"DBSIZE"[..]]])?.pop() {
            Some(Frame::Integer(n)) => n,
            _ => -1,
        };
        Ok(Outcome { hits, requests: trace.len(), seconds, keys_held })
    }
}

/// A blocking RESP connection for pipelined batches.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    fn connect(addr: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Conn { stream, buf: BytesMut::new() })
    }

    /// Sends every command at once, then reads one reply each.
    fn pipeline<'a>(&mut self, commands: impl IntoIterator<Item = Vec<&'a [u8]>>) -> anyhow::Result<Vec<Frame>> {
        let mut out = BytesMut::new();
        let mut n = 0;
        for command in commands {
            resp::write::command(&mut out, &command);
            n += 1;
        }
        self.stream.write_all(&out)?;
        let mut replies = Vec::with_capacity(n);
        let mut chunk = vec![0u8; 256 * 1024];
        while replies.len() < n {
            if let Some(frame) = Frame::parse(&mut self.buf, &Limits::default())? {
                replies.push(frame);
                continue;
            }
            let read = self.stream.read(&mut chunk)?;
            if read == 0 {
                bail!("connection closed");
            }
            self.buf.extend_from_slice(&chunk[..read]);
        }
        Ok(replies)
    }
}

/// A fixed-seed xorshift generator: the same trace for every target.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `requests` key ids, Zipf(`alpha`) over `keys` ranks (rank r has weight 1/r^alpha); with
/// `scans`, a scan of `keys / 10` fresh ids every `requests / 10` requests.
fn zipf_trace(keys: usize, requests: usize, alpha: f64, seed: u64, scans: bool) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(keys);
    let mut total = 0.0;
    for rank in 1..=keys {
        total += 1.0 / (rank as f64).powf(alpha);
        cdf.push(total);
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
    let mut trace = Vec::with_capacity(requests);
    let mut fresh = keys as u64;
    while trace.len() < requests {
        if scans && !trace.is_empty() && trace.len() % (requests / 10).max(1) == 0 {
            for _ in 0..keys / 10 {
                trace.push(fresh);
                fresh += 1;
            }
        }
        let x = rng.unit() * total;
        let rank = cdf.partition_point(|&c| c < x).min(keys - 1);
        // Spread the popular ranks over the key space.
        trace.push((rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16);
    }
    trace.truncate(requests);
    trace
}
