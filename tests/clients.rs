//! Real client libraries at their default settings through the proxy in front of three
//! redis-servers, with the proxy's default greeting on (no `--no-greeting`): what a newcomer
//! meets first (issue 10, "How it is checked", real clients).
//!
//! - the `redis` crate: a pipeline of mixed types, a MULTI/EXEC transaction on one hash tag,
//!   a script loaded and called, a BLPOP woken by an LPUSH from another connection, pub/sub
//!   with a message delivered;
//! - redis-py at its default (RESP3 in redis-py 5+ / 8.x), driven by
//!   `tests/clients/redis_py_check.py` doing the same steps (installed with `pip install
//!   redis` when missing; skipped, with the reason printed, when that fails);
//! - `redis-cli -p PORT SET k v` and `GET k`, one-shot with default flags: exact output.
//!
//! The ones that still fail (blocking commands and pub/sub, which need dedicated server
//! connections) are ignored with the reason; run them with:
//!
//! ```text
//! cargo test -p e2e --test clients -- --ignored --nocapture
//! ```
//!
//! `E2E_CLIENTS_AGAINST_REDIS=1` points the same checks at the first redis-server directly,
//! to check the checks. When the proxy knows `--hash-tag`, it is started with `--hash-tag "{}"` so that the
//! transaction's keys (`{acct}a`, `{acct}b`) meet on one server.

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use e2e::{have, redis_py, run_bounded, wait_until, Cluster, Conn, PROGRAM_TIMEOUT, REPLY_TIMEOUT};
use redis::{Commands, RedisResult};
use resp::Frame;

/// How long to wait for a BLPOP to show up as blocked on a backend.
const BLOCKED_TIMEOUT: Duration = Duration::from_secs(5);

/// Three redis-servers and our proxy with its default greeting (and hash tags when known).
fn cluster() -> Cluster {
    let flags: &[&str] = if e2e::proxy_knows("--hash-tag") { &["--hash-tag", "{}"] } else { &[] };
    Cluster::redis(3, flags)
}

/// Where the clients connect: the proxy, or the first redis-server itself when
/// `E2E_CLIENTS_AGAINST_REDIS` is set (to check the checks against the real thing).
fn target(cluster: &Cluster) -> String {
    match std::env::var_os("E2E_CLIENTS_AGAINST_REDIS") {
        Some(_) => cluster.servers[0].addr(),
        None => cluster.proxy.addr(),
    }
}

/// A `redis` crate connection at default settings (a timeout so that a hang fails).
fn client(addr: &str) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let conn = client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect");
    conn.set_read_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
    conn
}

/// How many clients are blocked (BLPOP) on the backends, asked of each directly.
fn blocked_clients(backends: &[String]) -> i64 {
    backends
        .iter()
        .map(|addr| {
            let mut conn = Conn::connect(addr);
            match conn.call(&["INFO", "clients"]) {
                Frame::Bulk(text) => String::from_utf8_lossy(&text)
                    .lines()
                    .find_map(|l| l.strip_prefix("blocked_clients:").and_then(|n| n.trim().parse().ok()))
                    .unwrap_or(0),
                _ => 0,
            }
        })
        .sum()
}

#[test]
fn redis_crate_pipeline_of_mixed_types() {
    let cluster = cluster();
    let mut c = client(&target(&cluster));
    #[allow(clippy::type_complexity)]
    let (ok, value, fields, hash, pushed, list, added, members, zadded, scored, counter): (
        String,
        String,
        i64,
        Vec<(String, String)>,
        i64,
        Vec<String>,
        i64,
        Vec<String>,
        i64,
        Vec<(String, f64)>,
        i64,
    ) = redis::pipe()
        .cmd("SET")
        .arg("rs:s")
        .arg("v")
        .cmd("GET")
        .arg("rs:s")
        .cmd("HSET")
        .arg("rs:h")
        .arg(&["a", "1", "b", "2"])
        .cmd("HGETALL")
        .arg("rs:h")
        .cmd("RPUSH")
        .arg("rs:l")
        .arg(&["x", "y"])
        .cmd("LRANGE")
        .arg("rs:l")
        .arg(0)
        .arg(-1)
        .cmd("SADD")
        .arg("rs:set")
        .arg("m")
        .cmd("SMEMBERS")
        .arg("rs:set")
        .cmd("ZADD")
        .arg("rs:z")
        .arg(1.5)
        .arg("a")
        .cmd("ZRANGE")
        .arg("rs:z")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .cmd("INCR")
        .arg("rs:n")
        .query(&mut c)
        .expect("the pipeline");
    assert_eq!((ok.as_str(), value.as_str()), ("OK", "v"));
    assert_eq!((fields, hash), (2, vec![("a".into(), "1".into()), ("b".into(), "2".into())]));
    assert_eq!((pushed, list), (2, vec!["x".to_string(), "y".to_string()]));
    assert_eq!((added, members), (1, vec!["m".to_string()]));
    assert_eq!((zadded, scored), (1, vec![("a".to_string(), 1.5)]));
    assert_eq!(counter, 1);
}

#[test]
fn redis_crate_transaction_on_one_tag() {
    let cluster = cluster();
    let mut c = client(&target(&cluster));
    let (set, total, other, both): (String, i64, String, Vec<String>) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("{acct}a")
        .arg(10)
        .cmd("INCRBY")
        .arg("{acct}a")
        .arg(5)
        .cmd("SET")
        .arg("{acct}b")
        .arg("x")
        .cmd("MGET")
        .arg("{acct}a")
        .arg("{acct}b")
        .query(&mut c)
        .expect("MULTI ... EXEC");
    assert_eq!((set.as_str(), total, other.as_str()), ("OK", 15, "OK"));
    assert_eq!(both, ["15", "x"]);
    // The connection is usable afterwards, outside the transaction.
    assert_eq!(c.get::<_, String>("{acct}a").expect("GET"), "15");
}

#[test]
fn redis_crate_script_loaded_and_called() {
    let cluster = cluster();
    let mut c = client(&target(&cluster));
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        .query(&mut c)
        .expect("SCRIPT LOAD");
    assert_eq!(sha, "8cd00688c05c46bde4a2e60658ef20a2e5c0b248");
    // Keys on every server: the script must be known wherever a key lands.
    for (i, key) in ["rs:c1", "rs:c2", "rs:c3", "rs:c4", "rs:c5", "rs:c6"].iter().enumerate() {
        let got: i64 = redis::cmd("EVALSHA").arg(&sha).arg(1).arg(key).arg(i + 1).query(&mut c).expect("EVALSHA");
        assert_eq!(got, i as i64 + 1, "{key}");
    }
    let got: String =
        redis::cmd("EVAL").arg("return redis.call('GET', KEYS[1])").arg(1).arg("rs:c6").query(&mut c).expect("EVAL");
    assert_eq!(got, "6");
}

#[test]
fn redis_crate_blpop_woken_by_lpush() {
    let cluster = cluster();
    let addr = target(&cluster);
    let mut popper = client(&addr);
    let waiting = thread::spawn(move || -> RedisResult<Option<(String, String)>> { popper.blpop("rs:queue", 10.0) });
    let backends = cluster.addrs();
    assert!(wait_until(BLOCKED_TIMEOUT, || blocked_clients(&backends) == 1), "BLPOP never blocked on a backend");
    // Other clients keep being served while one is blocked.
    let mut pusher = client(&addr);
    assert_eq!(pusher.set::<_, _, String>("rs:other", "v").expect("SET"), "OK");
    assert_eq!(pusher.lpush::<_, _, i64>("rs:queue", "hello").expect("LPUSH"), 1);
    let popped = waiting.join().expect("the popping thread").expect("BLPOP");
    assert_eq!(popped, Some(("rs:queue".to_string(), "hello".to_string())));
}

#[test]
fn redis_crate_pubsub_message_delivered() {
    let cluster = cluster();
    let addr = target(&cluster);
    let mut subscriber = client(&addr);
    let mut pubsub = subscriber.as_pubsub();
    pubsub.set_read_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
    pubsub.subscribe("rs:channel").expect("SUBSCRIBE");
    let mut publisher = client(&addr);
    let receivers: i64 = publisher.publish("rs:channel", "hello").expect("PUBLISH");
    assert_eq!(receivers, 1);
    let message = pubsub.get_message().expect("a message");
    assert_eq!(message.get_channel_name(), "rs:channel");
    assert_eq!(message.get_payload::<String>().expect("payload"), "hello");
}

#[test]
fn redis_py_at_its_default_resp3() {
    if let Err(why) = redis_py() {
        println!("skipped: redis-py is not available: {why}");
        return;
    }
    let cluster = cluster();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients").join("redis_py_check.py");
    let mut command = Command::new("python3");
    command.arg(&script).arg(target(&cluster)).args(cluster.addrs());
    let output = run_bounded(&mut command, PROGRAM_TIMEOUT).expect("redis_py_check.py finished in time");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{}", stdout.trim());
    assert!(
        output.status.success() && stdout.lines().last() == Some("OK"),
        "redis-py through the proxy: {}{}",
        stdout.trim(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn redis_cli_one_shot_with_default_flags() {
    assert!(have("redis-cli"), "redis-cli is not installed (apt-get install -y redis-tools)");
    let cluster = cluster();
    let addr = target(&cluster);
    let port = addr.rsplit(':').next().unwrap_or_default().to_string();
    let cli = |args: &[&str]| -> String {
        let output = run_bounded(Command::new("redis-cli").arg("-p").arg(&port).args(args), PROGRAM_TIMEOUT)
            .expect("redis-cli finished in time");
        assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert_eq!(cli(&["SET", "cli:k", "v"]), "OK\n");
    assert_eq!(cli(&["GET", "cli:k"]), "v\n");
    assert_eq!(cli(&["GET", "cli:missing"]), "\n");
    assert_eq!(cli(&["PING"]), "PONG\n");
}
