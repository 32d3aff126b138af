//! RESP3 (issue 10, "Ordinary clients just work at default flags"): `HELLO 3` and its reply
//! types on the server and through the proxy, at default flags (greeting on).
//!
//! - exact bytes: HELLO 3's map, a miss as `_`, HELLO 2 back to `$-1`, NOPROTO;
//! - through the proxy in front of three redis-servers: maps, sets, doubles and nulls from the
//!   servers' RESP3 links, and merged replies (MGET over several servers) that keep them;
//! - redis-py at its defaults (RESP3), driven by `tests/clients/redis_py_resp3.py`, against
//!   our server (strings only: it has no hashes, so the dict comes from CONFIG GET) and
//!   through the proxy in front of three redis-servers (HSET/HGETALL as a dict); skipped,
//!   with the reason printed, when redis-py cannot be installed.

use std::path::Path;
use std::process::Command;

use e2e::{have, redis_py, run_bounded, server, Cluster, Conn, PROGRAM_TIMEOUT};
use resp::Frame;

fn map(pairs: &[(&str, Frame)]) -> Frame {
    Frame::Map(pairs.iter().map(|(k, v)| (Frame::bulk(k.to_string()), v.clone())).collect())
}

#[test]
fn hello_switches_the_server_to_resp3_and_back() {
    let server = server("cache-A", &[]);
    let mut c = Conn::connect(&server.addr());
    let Frame::Map(fields) = c.call(&["HELLO", "3"]) else { panic!("HELLO 3 answers a map") };
    let keys: Vec<Frame> = fields.iter().map(|(k, _)| k.clone()).collect();
    let expected: Vec<Frame> = ["server", "version", "proto", "id", "mode", "role", "modules"]
        .iter()
        .map(|k| Frame::bulk(k.to_string()))
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(fields[2].1, Frame::Integer(3));
    assert_eq!(c.call(&["GET", "nobody"]), Frame::Resp3Null);
    assert_eq!(c.call(&["MGET", "nobody", "none"]), Frame::Array(vec![Frame::Resp3Null, Frame::Resp3Null]));
    assert_eq!(c.call(&["CONFIG", "GET", "appendonly"]), map(&[("appendonly", Frame::bulk("no"))]));
    assert_eq!(c.call(&["HELLO", "4"]), Frame::error("NOPROTO unsupported protocol version"));
    let Frame::Array(flat) = c.call(&["HELLO", "2"]) else { panic!("HELLO 2 answers an array") };
    assert_eq!(flat.len(), 14);
    assert_eq!(c.call(&["GET", "nobody"]), Frame::Null);
}

#[test]
fn the_proxy_keeps_resp3_types_from_redis_servers() {
    assert!(have("redis-server"), "redis-server is not installed");
    let cluster = Cluster::redis(3, &[]);
    let mut c = Conn::connect(&cluster.proxy.addr());
    let Frame::Map(_) = c.call(&["HELLO", "3"]) else { panic!("HELLO 3 answers a map") };
    assert_eq!(c.call(&["HSET", "r3:h", "a", "1"]), Frame::Integer(1));
    assert_eq!(c.call(&["HGETALL", "r3:h"]), map(&[("a", Frame::bulk("1"))]));
    assert_eq!(c.call(&["SADD", "r3:s", "m"]), Frame::Integer(1));
    assert_eq!(c.call(&["SMEMBERS", "r3:s"]), Frame::Set(vec![Frame::bulk("m")]));
    assert_eq!(c.call(&["ZADD", "r3:z", "1.5", "m"]), Frame::Integer(1));
    assert_eq!(c.call(&["ZSCORE", "r3:z", "m"]), Frame::Double(bytes::Bytes::from_static(b"1.5")));
    assert_eq!(c.call(&["GET", "r3:missing"]), Frame::Resp3Null);
    // Keys on every server: MGET is split, and the merged reply keeps RESP3's nulls.
    let mut ring = ring::HashRing::new(3);
    ring.add_all(cluster.addrs());
    let keys = e2e::keys_on_each_server(&ring, "r3:k", 6);
    for key in keys.iter().step_by(2) {
        assert_eq!(c.call(&["SET", key, "v"]), Frame::simple("OK"));
    }
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let expected: Vec<Frame> =
        (0..keys.len()).map(|i| if i % 2 == 0 { Frame::bulk("v") } else { Frame::Resp3Null }).collect();
    assert_eq!(c.call(&mget), Frame::Array(expected));
    // Another client on RESP2 meanwhile still gets RESP2 from the same backends.
    let mut old = Conn::connect(&cluster.proxy.addr());
    assert_eq!(old.call(&["GET", "r3:missing"]), Frame::Null);
    assert_eq!(old.call(&["HGETALL", "r3:h"]), Frame::Array(vec![Frame::bulk("a"), Frame::bulk("1")]));
}

/// Runs the redis-py check against `addr` (`extra`: `--strings-only` for our server, which
/// has no hashes).
fn run_redis_py(addr: &str, extra: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients").join("redis_py_resp3.py");
    let output = run_bounded(Command::new("python3").arg(&script).arg(addr).args(extra), PROGRAM_TIMEOUT)
        .expect("redis_py_resp3.py finished in time");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.lines().last() == Some("OK"),
        "redis-py against {addr}: {}{}",
        stdout.trim(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn redis_py_at_its_defaults_against_the_server() {
    if let Err(why) = redis_py() {
        println!("skipped: redis-py is not available: {why}");
        return;
    }
    let server = server("cache-A", &[]);
    run_redis_py(&server.addr(), &["--strings-only"]);
}

#[test]
fn redis_py_at_its_defaults_through_the_proxy_over_redis_servers() {
    if let Err(why) = redis_py() {
        println!("skipped: redis-py is not available: {why}");
        return;
    }
    let cluster = Cluster::redis(3, &[]);
    run_redis_py(&cluster.proxy.addr(), &[]);
}
