//! Migration moves keys of every type (strings with TTLs, hashes, lists, sets, sorted sets)
//! with MIGRATE, from 3 to 4 real redis-servers, while a writer keeps writing; and, on
//! both kinds of server, replicated keys to servers that want a password.
//!
//! `cargo test -p e2e --test migration_types`; `MIGRATION_TYPES_KEYS=100000` for the full
//! size of the issue (CI runs 20,000).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use e2e::{bulk, redis_server, Cluster, Conn, Process};
use resp::Frame;

const DEFAULT_KEYS: usize = 20_000;
/// Requests per pipelined write while loading.
const CHUNK: usize = 1000;

fn key_count() -> usize {
    std::env::var("MIGRATION_TYPES_KEYS").ok().and_then(|n| n.parse().ok()).unwrap_or(DEFAULT_KEYS)
}

/// The commands that create key `i`, by type (i mod 5).
fn create(i: usize) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<String>>();
    let key = format!("k:{i}");
    match i % 5 {
        0 => vec![s(&["SET", &key, &format!("v{i}"), "EX", "100000"])],
        1 => vec![s(&["HSET", &key, "a", &i.to_string(), "b", "x"])],
        2 => vec![s(&["RPUSH", &key, "1", "2", &i.to_string()])],
        3 => vec![s(&["SADD", &key, "m", &i.to_string()])],
        _ => vec![s(&["ZADD", &key, "1", "one", "2", &i.to_string()])],
    }
}

/// Checks key `i` through the proxy: type, contents, TTL.
fn check(c: &mut Conn, i: usize) -> Result<(), String> {
    let key = format!("k:{i}");
    let n = i.to_string();
    let (read, expected): (Vec<&str>, Frame) = match i % 5 {
        0 => (vec!["GET", &key], bulk(&format!("v{i}"))),
        1 => (vec!["HGET", &key, "a"], bulk(&n)),
        2 => (vec!["LINDEX", &key, "2"], bulk(&n)),
        3 => (vec!["SISMEMBER", &key, &n], Frame::Integer(1)),
        _ => (vec!["ZSCORE", &key, &n], bulk("2")),
    };
    let got = c.call(&read);
    if got != expected {
        return Err(format!("{key}: {read:?} answered {got:?}, expected {expected:?}"));
    }
    if i.is_multiple_of(5) {
        match c.call(&["TTL", &key]) {
            Frame::Integer(t) if t > 99_000 => {}
            other => return Err(format!("{key}: TTL {other:?} after the move")),
        }
    }
    Ok(())
}

#[test]
fn every_type_moves_with_its_ttl_from_three_to_four_redis_servers() {
    let n = key_count();
    let cluster = Cluster::redis(3, &["--no-greeting"]);
    let proxy = cluster.proxy.addr();
    let mut c = Conn::connect(&proxy);
    let commands: Vec<Vec<String>> = (0..n).flat_map(create).collect();
    for chunk in commands.chunks(CHUNK) {
        for reply in c.pipeline(chunk) {
            assert!(!matches!(reply, Frame::Error(_)), "loading: {reply:?}");
        }
    }

    // A writer adds new hashes while keys move; every acknowledged one must read back.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, proxy) = (stop.clone(), proxy.clone());
        thread::spawn(move || {
            let mut w = Conn::connect(&proxy);
            let mut written = 0usize;
            while !stop.load(Ordering::Relaxed) && written < 50_000 {
                let key = format!("w:{written}");
                assert_eq!(w.call(&["HSET", &key, "f", &written.to_string()]), Frame::Integer(1));
                written += 1;
            }
            written
        })
    };
    let newcomer = redis_server();
    let reply = c.call(&["ADD_SERVER", &newcomer.addr(), "MIGRATE"]);
    assert!(matches!(&reply, Frame::Simple(_)), "{reply:?}");
    let state = c.wait_for_migration(Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert_eq!(state, "done", "{:?}", c.call(&["MIGRATION"]));

    let failures: Vec<String> = (0..n).filter_map(|i| check(&mut c, i).err()).take(10).collect();
    assert!(failures.is_empty(), "keys not readable after the move: {failures:?}");
    for i in 0..written {
        assert_eq!(c.call(&["HGET", &format!("w:{i}"), "f"]), bulk(&i.to_string()), "acknowledged write w:{i}");
    }
    // No key left behind: every server holds only keys the ring gives it.
    let mut servers = cluster.addrs();
    servers.push(newcomer.addr());
    let mut total = 0;
    for addr in &servers {
        let mut direct = Conn::connect(addr);
        let Frame::Array(keys) = direct.call(&["KEYS", "*"]) else { panic!("KEYS on {addr}") };
        total += keys.len();
        for key in keys.iter().take(500) {
            let Frame::Bulk(key) = key else { panic!("{key:?}") };
            let owner = c.call(&["ROUTE", &String::from_utf8_lossy(key)]);
            assert_eq!(owner, Frame::simple(addr.clone()), "{} left on {addr}", String::from_utf8_lossy(key));
        }
    }
    assert_eq!(total, n + written, "keys in all servers after the move");
    println!("moved {n} keys of 5 types with {written} concurrent writes; all read back");
}

/// Four servers of one kind that want the password `pw`.
fn protected_servers(ours: bool) -> Vec<Process> {
    (0..4)
        .map(|i| {
            if ours {
                e2e::server(&format!("cache-{i}"), &["--no-greeting", "--requirepass", "pw"])
            } else {
                let server = redis_server();
                let mut conn = Conn::connect(&server.addr());
                assert_eq!(conn.call(&["CONFIG", "SET", "requirepass", "pw"]), Frame::Simple("OK".into()));
                server
            }
        })
        .collect()
}

#[test]
fn replicated_keys_move_to_every_replica_on_servers_with_a_password() {
    for ours in [true, false] {
        let servers = protected_servers(ours);
        let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
        let flags = ["--no-greeting", "--server-password", "pw", "--replication-factor", "2"];
        let proxy = e2e::proxy(&addrs[..3], &flags);
        let mut c = Conn::connect(&proxy.addr());
        let keys: Vec<String> = (0..3000).map(|i| format!("rf:{i}")).collect();
        let commands: Vec<Vec<&str>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| if i % 3 == 0 { vec!["SET", k, k, "EX", "100000"] } else { vec!["SET", k, k] })
            .collect();
        assert!(c.pipeline(&commands).iter().all(|r| !r.is_error()));
        let reply = c.call(&["ADD_SERVER", &addrs[3], "MIGRATE"]);
        assert!(matches!(&reply, Frame::Simple(_)), "{reply:?}");
        assert_eq!(c.wait_for_migration(Duration::from_secs(60)), "done", "{:?}", c.call(&["MIGRATION"]));
        let moved = c.field(&["MIGRATION"], "keys_moved").unwrap_or_default();

        // Each key on exactly two servers, its TTL kept on both.
        let mut copies = vec![0; keys.len()];
        for addr in &addrs {
            let mut direct = Conn::connect(addr);
            assert_eq!(direct.call(&["AUTH", "pw"]), Frame::Simple("OK".into()));
            let ttls: Vec<Vec<&str>> = keys.iter().map(|k| vec!["TTL", k.as_str()]).collect();
            for (i, reply) in direct.pipeline(&ttls).into_iter().enumerate() {
                match reply {
                    Frame::Integer(-2) => {}
                    Frame::Integer(-1) if i % 3 != 0 => copies[i] += 1,
                    Frame::Integer(t) if i % 3 == 0 && t > 99_000 => copies[i] += 1,
                    other => panic!("{} on {addr}: TTL {other:?}", keys[i]),
                }
            }
        }
        if !ours {
            // The keys went with MIGRATE, not with the DUMP and RESTORE fallback.
            let stats: String = addrs
                .iter()
                .map(|addr| {
                    let mut direct = Conn::connect(addr);
                    direct.call(&["AUTH", "pw"]);
                    match direct.call(&["INFO", "commandstats"]) {
                        Frame::Bulk(text) => String::from_utf8_lossy(&text).into_owned(),
                        other => panic!("INFO on {addr}: {other:?}"),
                    }
                })
                .collect();
            assert!(stats.contains("cmdstat_migrate:") && !stats.contains("cmdstat_dump:"), "{stats}");
        }
        let wrong: Vec<(&String, usize)> = keys.iter().zip(copies).filter(|(_, n)| *n != 2).take(5).collect();
        assert!(wrong.is_empty(), "keys not on exactly two servers: {wrong:?}");
        for (key, reply) in
            keys.iter().zip(c.pipeline(&keys.iter().map(|k| vec!["GET", k.as_str()]).collect::<Vec<_>>()))
        {
            assert_eq!(reply, bulk(key));
        }
        println!("{}: {moved} keys moved with replication factor 2 and AUTH", if ours { "ours" } else { "redis" });
    }
}
