//! Routing parity with the real twemproxy: the same redis-servers behind `nutcracker` and
//! behind our proxy, the same settings, and every key must land on the same redis-server.
//!
//! For each distribution x hash pair: write keys through nutcracker, read where each key
//! landed straight from each redis-server, flush, write the same keys through our proxy, and
//! compare. Keys include bytes >= 0x80 (where twemproxy's signed `char` shows) and hash tags.
//! Skipped, with a note, when `nutcracker` is not installed.

use std::collections::HashMap;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e::{free_port, have, redis_server, start, wait_until, Conn, Process, TempDir};
use resp::Frame;

/// Keys written through each proxy; `TWEMPROXY_PARITY_KEYS=100000` for the size.
const KEYS: usize = 2000;

/// How many keys the parity tests write: [`KEYS`], or `TWEMPROXY_PARITY_KEYS`.
fn key_count() -> usize {
    std::env::var("TWEMPROXY_PARITY_KEYS").ok().and_then(|n| n.parse().ok()).unwrap_or(KEYS)
}

/// A running nutcracker, killed on drop.
struct Nutcracker {
    child: Child,
    addr: String,
    _dir: TempDir,
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-pool `nutcracker.yml` listening on `port`.
fn yml(port: u16, distribution: &str, hash: &str, servers: &[String]) -> String {
    let mut text = format!(
        "alpha:\n  listen: 127.0.0.1:{port}\n  hash: {hash}\n  distribution: {distribution}\n  hash_tag: \"{{}}\"\n  \
         redis: true\n  auto_eject_hosts: false\n  timeout: 2000\n  servers:\n"
    );
    for s in servers {
        text.push_str(&format!("   - {s}\n"));
    }
    text
}

fn start_nutcracker(config: &str) -> Nutcracker {
    let dir = TempDir::new("twemproxy-nc");
    let path = dir.path().join("nutcracker.yml");
    std::fs::write(&path, config).expect("write yml");
    let listen = config.lines().find_map(|l| l.trim().strip_prefix("listen: ")).expect("listen").to_string();
    let stats = free_port().to_string();
    let child = Command::new("nutcracker")
        .args(["-c", path.to_str().expect("utf-8 path"), "-s", &stats, "-o"])
        .arg(dir.path().join("nutcracker.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nutcracker");
    let nc = Nutcracker { child, addr: listen, _dir: dir };
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(&nc.addr).is_ok()), "nutcracker did not listen");
    nc
}

/// Keys: plain, tagged, and with bytes >= 0x80.
fn keys() -> Vec<Vec<u8>> {
    (0..key_count())
        .map(|i| match i % 4 {
            0 => format!("key:{i}").into_bytes(),
            1 => format!("{{user{}}}:cart:{i}", i % 97).into_bytes(),
            2 => format!("clé:é{i}\u{ff}").into_bytes(),
            _ => format!("{i}").into_bytes(),
        })
        .collect()
}

/// Writes every key through `addr` (pipelined) and checks each got +OK.
fn write_all(addr: &str, keys: &[Vec<u8>]) {
    let mut conn = Conn::connect(addr);
    for chunk in keys.chunks(200) {
        let commands: Vec<Vec<&[u8]>> = chunk.iter().map(|k| vec![&b"SET"[..], k, b"v"]).collect();
        for reply in conn.pipeline(&commands) {
            assert_eq!(reply, Frame::Simple("OK".into()), "SET through {addr}");
        }
    }
}

/// Which server (index into `servers`) holds each key; flushes them after reading.
fn placement(servers: &[Process]) -> HashMap<Vec<u8>, usize> {
    let mut at = HashMap::new();
    for (i, server) in servers.iter().enumerate() {
        let mut conn = Conn::connect(&server.addr());
        let Frame::Array(keys) = conn.call(&["KEYS", "*"]) else { panic!("KEYS reply") };
        for key in keys {
            let Frame::Bulk(key) = key else { panic!("key") };
            assert!(at.insert(key.to_vec(), i).is_none(), "a key on two servers");
        }
        assert_eq!(conn.call(&["FLUSHALL"]), Frame::Simple("OK".into()));
    }
    at
}

/// nutcracker and our proxy (started with `ours`) over the same servers place every key alike.
/// Returns how many servers got keys.
fn same_placement(servers: &[Process], nutcracker_yml: &str, ours: &[&str]) -> usize {
    let keys = keys();
    let theirs = {
        let nc = start_nutcracker(nutcracker_yml);
        write_all(&nc.addr, &keys);
        placement(servers)
    };
    assert_eq!(theirs.len(), keys.len(), "nutcracker stored every key");
    let proxy = start("proxy", ours);
    write_all(&proxy.addr(), &keys);
    let mine = placement(servers);
    assert_eq!(mine.len(), keys.len(), "our proxy stored every key");
    let differ = keys.iter().filter(|k| theirs[*k] != mine[*k]).count();
    assert_eq!(differ, 0, "{differ} of {} keys landed elsewhere ({ours:?})", keys.len());
    theirs.values().collect::<std::collections::HashSet<_>>().len()
}

fn nutcracker_missing() -> bool {
    if have("nutcracker") {
        return false;
    }
    eprintln!("skipped: nutcracker is not installed (apt-get install -y nutcracker)");
    true
}

#[test]
fn every_hash_and_distribution_places_keys_as_nutcracker_does() {
    if nutcracker_missing() {
        return;
    }
    let servers: Vec<Process> = (0..4).map(|_| redis_server()).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let list = addrs.join(",");
    let weighted: Vec<String> = addrs.iter().map(|a| format!("{a}:1")).collect();
    let mut pairs: Vec<(&str, &str)> = [
        "one_at_a_time",
        "md5",
        "crc16",
        "crc32",
        "crc32a",
        "fnv1_64",
        "fnv1a_64",
        "fnv1_32",
        "fnv1a_32",
        "hsieh",
        "murmur",
        "jenkins",
    ]
    .iter()
    .map(|h| ("ketama", *h))
    .collect();
    pairs.extend([("modula", "fnv1a_64"), ("modula", "md5"), ("modula", "murmur")]);
    for (distribution, hash) in pairs {
        let port = free_port();
        let config = yml(port, distribution, hash, &weighted);
        let used = same_placement(
            &servers,
            &config,
            &["--servers", &list, "--distribution", distribution, "--hash", hash, "--hash-tag", "{}", "--no-greeting"],
        );
        // crc32 keeps 15 bits: under ketama every key falls before the first points.
        if hash != "crc32" || distribution != "ketama" {
            assert_eq!(used, servers.len(), "{distribution}/{hash}: keys spread over every server");
        }
    }
}

/// Our proxy reads the very `nutcracker.yml` nutcracker ran with: weights and server names
/// included (ketama hashes the names), and places every key as nutcracker did.
#[test]
fn the_same_nutcracker_yml_places_keys_alike_with_weights_and_names() {
    if nutcracker_missing() {
        return;
    }
    let servers: Vec<Process> = (0..3).map(|_| redis_server()).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let dir = TempDir::new("twemproxy-ours");
    let cases: [(&str, &str, [&str; 3]); 4] = [
        ("ketama", "fnv1a_64", [":1 alpha", ":2 beta", ":3 gamma"]),
        ("ketama", "md5", [":5 redis-c", ":1 redis-a", ":2 redis-b"]),
        ("ketama", "murmur", [":1", ":3", ":2"]),
        ("modula", "fnv1a_64", [":2", ":1", ":3"]),
    ];
    for (distribution, hash, suffixes) in cases {
        let entries: Vec<String> = addrs.iter().zip(suffixes).map(|(a, s)| format!("{a}{s}")).collect();
        let config = yml(free_port(), distribution, hash, &entries);
        let path = dir.path().join(format!("{distribution}-{hash}.yml"));
        std::fs::write(&path, &config).expect("write yml");
        let path = path.to_str().expect("utf-8 path").to_string();
        let used = same_placement(&servers, &config, &["--config", &path, "--no-greeting"]);
        assert_eq!(used, servers.len(), "{distribution}/{hash}");
    }
}

/// `-t` checks a file and exits; a broken one fails naming the key and line.
#[test]
fn test_conf_checks_the_file() {
    let dir = TempDir::new("twemproxy-conf");
    let good = dir.path().join("good.yml");
    std::fs::write(&good, yml(free_port(), "ketama", "md5", &["127.0.0.1:6379:1 a".into()])).expect("write");
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, yml(free_port(), "ketama", "md6", &["127.0.0.1:6379:1 a".into()])).expect("write");
    let proxy = e2e::binary("proxy");
    let ok = Command::new(&proxy).args(["-t", "-c"]).arg(&good).output().expect("run proxy -t");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("is valid: listen 127.0.0.1:"));
    let failed = Command::new(&proxy).args(["-t", "-c"]).arg(&bad).output().expect("run proxy -t");
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("line 3: pool \"alpha\": hash: unknown hash \"md6\""), "{stderr}");
}

/// The stats JSON of a `-s` port: one object, then the connection closes.
fn stats_json(addr: &str) -> serde_json::Value {
    let mut body = String::new();
    let mut stream = TcpStream::connect(addr).expect("connect to stats port");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    std::io::Read::read_to_string(&mut stream, &mut body).expect("read stats");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("stats JSON: {e}: {body}"))
}

/// Field names by level: `top.x`, `pool.x`, `server.x` (pool and server names abstracted).
fn field_names(stats: &serde_json::Value) -> Vec<String> {
    let mut names = Vec::new();
    let serde_json::Value::Object(top) = stats else { panic!("not an object") };
    for (key, value) in top {
        let serde_json::Value::Object(pool) = value else {
            names.push(format!("top.{key}"));
            continue;
        };
        for (key, value) in pool {
            match value {
                serde_json::Value::Object(server) => names.extend(server.keys().map(|k| format!("server.{k}"))),
                _ => names.push(format!("pool.{key}")),
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// Our `-s` port serves nutcracker's JSON: the same field names at every level, the pool
/// named as in the file, servers by name.
#[test]
fn stats_port_has_nutcrackers_field_names() {
    if nutcracker_missing() {
        return;
    }
    let servers: Vec<Process> = (0..2).map(|_| redis_server()).collect();
    let entries: Vec<String> = servers.iter().enumerate().map(|(i, s)| format!("{}:1 s{i}", s.addr())).collect();
    let config = yml(free_port(), "ketama", "fnv1a_64", &entries);
    let dir = TempDir::new("twemproxy-stats");
    let path = dir.path().join("nutcracker.yml");
    std::fs::write(&path, &config).expect("write yml");

    let nc_stats = free_port();
    let child = Command::new("nutcracker")
        .args(["-c", path.to_str().expect("utf-8"), "-s", &nc_stats.to_string(), "-o"])
        .arg(dir.path().join("nc.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nutcracker");
    let nc_addr = format!("127.0.0.1:{nc_stats}");
    let nc = Nutcracker { child, addr: nc_addr.clone(), _dir: TempDir::new("twemproxy-stats-nc") };
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(&nc.addr).is_ok()));
    let theirs = stats_json(&nc_addr);
    drop(nc);

    let our_stats = free_port();
    let proxy = start("proxy", &["-c", path.to_str().expect("utf-8"), "-s", &our_stats.to_string(), "--no-greeting"]);
    let addr = format!("127.0.0.1:{our_stats}");
    assert!(wait_until(Duration::from_secs(10), || TcpStream::connect(&addr).is_ok()));
    let mut conn = Conn::connect(&proxy.addr());
    assert_eq!(conn.call(&["SET", "k", "v"]), Frame::Simple("OK".into()));
    let ours = stats_json(&addr);
    assert_eq!(field_names(&ours), field_names(&theirs));
    assert_eq!(ours["service"], "nutcracker");
    let pool = &ours["alpha"];
    assert_eq!(pool["client_connections"], 1);
    let requests: u64 = ["s0", "s1"].iter().map(|s| pool[*s]["requests"].as_u64().expect("requests")).sum();
    assert!(requests >= 1, "{ours}");
}

/// Every distribution serves through the proxy: with two copies of each key, every key reads
/// back and sits on exactly two redis-servers (the owner and its first fallback).
#[test]
fn every_distribution_serves_with_replicas() {
    let servers: Vec<Process> = (0..3).map(|_| redis_server()).collect();
    let list = servers.iter().map(Process::addr).collect::<Vec<_>>().join(",");
    for distribution in ["seed", "ketama", "modula", "maglev", "rendezvous"] {
        let proxy = start(
            "proxy",
            &["--servers", &list, "--distribution", distribution, "--replication-factor", "2", "--no-greeting"],
        );
        let keys: Vec<Vec<u8>> = (0..300).map(|i| format!("r:{i}").into_bytes()).collect();
        write_all(&proxy.addr(), &keys);
        let mut conn = Conn::connect(&proxy.addr());
        for key in &keys {
            assert_eq!(conn.call(&[&b"GET"[..], key]), Frame::Bulk("v".into()), "{distribution}");
        }
        let mut copies: HashMap<Vec<u8>, usize> = HashMap::new();
        for server in &servers {
            let mut direct = Conn::connect(&server.addr());
            let Frame::Array(found) = direct.call(&["KEYS", "*"]) else { panic!("KEYS reply") };
            for key in found {
                let Frame::Bulk(key) = key else { panic!("key") };
                *copies.entry(key.to_vec()).or_default() += 1;
            }
            assert_eq!(direct.call(&["FLUSHALL"]), Frame::Simple("OK".into()));
        }
        assert_eq!(copies.len(), keys.len(), "{distribution}");
        assert!(copies.values().all(|&c| c == 2), "{distribution}: every key on two servers");
    }
}

/// Keys written before the online switch.
const SWITCH_KEYS: usize = 3_000;

/// The online switch: a running proxy on the seed's ring moves to ketama with
/// `SET_DISTRIBUTION ketama MIGRATE` while a client reads every key and writes some: no read
/// misses or answers an older value, and afterwards every key sits on the server ketama
/// (with twemproxy's default hash) puts it on, and on no other.
#[test]
fn a_running_cluster_moves_from_the_seed_ring_to_ketama_with_no_miss() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let dir = TempDir::new("switch");
    let state = dir.path().join("ring.json").to_string_lossy().into_owned();
    let flags = ["--no-greeting", "--state-file", state.as_str()];
    let mut cluster = e2e::Cluster::redis(3, &flags);
    let addr = cluster.proxy.addr();
    let mut c = Conn::connect(&addr);
    let load: Vec<Vec<String>> =
        (0..SWITCH_KEYS).map(|i| vec!["SET".into(), format!("key:{i}"), format!("v1-{i}")]).collect();
    c.pipeline(&load);

    let moving = Arc::new(AtomicBool::new(true));
    let client = {
        let (moving, addr) = (moving.clone(), addr.clone());
        std::thread::spawn(move || {
            let mut c = Conn::connect(&addr);
            let mut written = vec![false; SWITCH_KEYS];
            let (mut reads, mut bad) = (0usize, Vec::new());
            let started = std::time::Instant::now();
            let mut round = 0;
            while moving.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                // Every tenth key rewritten this round, then every key read back.
                let sets: Vec<Vec<String>> = (round % 10..SWITCH_KEYS)
                    .step_by(10)
                    .map(|i| vec!["SET".into(), format!("key:{i}"), format!("v2-{i}")])
                    .collect();
                for (reply, i) in c.pipeline(&sets).into_iter().zip((round % 10..SWITCH_KEYS).step_by(10)) {
                    if reply == Frame::Simple("OK".into()) {
                        written[i] = true;
                    }
                }
                let gets: Vec<Vec<String>> = (0..SWITCH_KEYS).map(|i| vec!["GET".into(), format!("key:{i}")]).collect();
                for (i, reply) in c.pipeline(&gets).into_iter().enumerate() {
                    reads += 1;
                    let newest = format!("v2-{i}");
                    let expected = if written[i] { newest.clone() } else { format!("v1-{i}") };
                    if reply != e2e::bulk(&expected) && !(reply == e2e::bulk(&newest)) {
                        bad.push(format!("key:{i}: {reply:?}, expected {expected}"));
                    }
                }
                round += 1;
            }
            (reads, bad, written)
        })
    };
    match c.call(&["SET_DISTRIBUTION", "ketama", "MIGRATE"]) {
        Frame::Simple(text) => {
            let text = String::from_utf8_lossy(&text);
            assert!(text.contains("ketama with fnv1a_64"), "{text}");
        }
        other => panic!("SET_DISTRIBUTION: {other:?}"),
    }
    assert_eq!(c.wait_for_migration(Duration::from_secs(60)), "done");
    // A last full round of reads after the move.
    std::thread::sleep(Duration::from_millis(300));
    moving.store(false, Ordering::SeqCst);
    let (reads, bad, written) = client.join().expect("client");
    assert!(bad.is_empty(), "{} misses or stale reads of {reads}: {:?}", bad.len(), &bad[..bad.len().min(5)]);

    // Every key on ketama's server for it, and only there.
    let mut ketama = ring::HashRing::with_placement(160, ring::Distribution::Ketama, None);
    for server in cluster.addrs() {
        ketama.add(&server);
    }
    let mut direct: HashMap<String, Conn> =
        cluster.addrs().into_iter().map(|a| (a.clone(), Conn::connect(&a))).collect();
    for (i, &rewritten) in written.iter().enumerate() {
        let key = format!("key:{i}");
        let owner = ketama.get(key.as_bytes()).expect("an owner").to_string();
        let value = if rewritten { format!("v2-{i}") } else { format!("v1-{i}") };
        for (server, conn) in direct.iter_mut() {
            let got = conn.call(&["GET", &key]);
            if *server == owner {
                assert_eq!(got, e2e::bulk(&value), "{key} on its ketama server {server}");
            } else {
                assert_eq!(got, Frame::Null, "{key} left behind on {server}");
            }
        }
    }
    match c.call(&["ROUTE", "key:1", "DETAIL"]) {
        Frame::Array(lines) => {
            let text = format!("{lines:?}");
            assert!(text.contains("ketama"), "ROUTE DETAIL names the placement: {text}");
        }
        Frame::Bulk(text) => assert!(String::from_utf8_lossy(&text).contains("ketama")),
        other => panic!("ROUTE DETAIL: {other:?}"),
    }
    // A restarted proxy places keys as before its restart: the state file has the placement.
    cluster.proxy.kill().expect("kill -9 of the proxy");
    let restarted = e2e::proxy(&cluster.addrs(), &flags);
    assert!(restarted.wait_for_log("keys placed by ketama with fnv1a_64", Duration::from_secs(5)));
    let mut c = Conn::connect(&restarted.addr());
    let sample: Vec<Vec<String>> =
        (0..SWITCH_KEYS).step_by(7).map(|i| vec!["GET".into(), format!("key:{i}")]).collect();
    for reply in c.pipeline(&sample) {
        assert!(matches!(reply, Frame::Bulk(_)), "a miss after the restart: {reply:?}");
    }
    // The same placement again is refused, and so are random and unknown names.
    for (args, says) in [
        (&["SET_DISTRIBUTION", "ketama"][..], "already uses ketama"),
        (&["SET_DISTRIBUTION", "random"][..], "random distribution"),
        (&["SET_DISTRIBUTION", "bogus"][..], "unknown distribution"),
        (&["SET_DISTRIBUTION", "maglev", "nohash"][..], "unknown hash"),
    ] {
        match c.call(args) {
            Frame::Error(e) => assert!(String::from_utf8_lossy(&e).contains(says), "{args:?}: {e:?}"),
            other => panic!("{args:?}: {other:?}"),
        }
    }
}

/// `SET_DISTRIBUTION ketama` without MIGRATE switches placement at once, and the keys
/// already stored miss where the new placement looks elsewhere (as after the seed's
/// ADD_SERVER), until `REBALANCE` moves each one to its ketama server; then every key reads
/// back and sits there only.
#[test]
fn rebalance_after_a_placement_switch_without_migrate_moves_every_key() {
    let cluster = e2e::Cluster::redis(3, &["--no-greeting"]);
    let mut c = Conn::connect(&cluster.proxy.addr());
    let keys: Vec<String> = (0..2_000).map(|i| format!("placed:{i}")).collect();
    let sets: Vec<Vec<String>> = keys.iter().map(|k| vec!["SET".into(), k.clone(), format!("v-{k}")]).collect();
    assert!(c.pipeline(&sets).iter().all(|r| *r == Frame::Simple("OK".into())));

    let reply = c.call(&["SET_DISTRIBUTION", "ketama"]);
    assert_eq!(
        reply,
        Frame::Simple("OK keys now placed by ketama with fnv1a_64; REBALANCE moves the keys already stored".into())
    );
    let gets: Vec<Vec<String>> = keys.iter().map(|k| vec!["GET".into(), k.clone()]).collect();
    let misses = c.pipeline(&gets).iter().filter(|r| **r == Frame::Null).count();
    assert!(misses > 0, "no key changed owner with the new placement");
    eprintln!("after SET_DISTRIBUTION ketama without MIGRATE: {misses} of {} keys miss", keys.len());

    assert_eq!(c.call(&["REBALANCE"]), Frame::Simple("OK rebalancing (see MIGRATION)".into()));
    assert_eq!(c.wait_for_migration(Duration::from_secs(60)), "done");
    for (key, reply) in keys.iter().zip(c.pipeline(&gets)) {
        assert_eq!(reply, e2e::bulk(&format!("v-{key}")), "{key} after REBALANCE");
    }
    let mut ketama = ring::HashRing::with_placement(160, ring::Distribution::Ketama, None);
    for server in cluster.addrs() {
        ketama.add(&server);
    }
    for server in cluster.addrs() {
        let Frame::Array(held) = Conn::connect(&server).call(&["KEYS", "*"]) else { panic!("KEYS on {server}") };
        for key in held {
            let Frame::Bulk(key) = key else { panic!("KEYS on {server}: {key:?}") };
            assert_eq!(ketama.get(&key), Some(server.as_str()), "{} left on {server}", String::from_utf8_lossy(&key));
        }
    }
}

/// The ring written back to the file: with `--write-config` after every ring change, else
/// on `CONFIG REWRITE` only; only the pool's `servers:` list changes, and a proxy restarted
/// from the file serves the same ring.
#[test]
fn ring_changes_are_written_back_to_the_nutcracker_yml_when_asked() {
    let servers: Vec<Process> = (0..3).map(|_| redis_server()).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let dir = TempDir::new("twemproxy-rewrite");
    let path = dir.path().join("nutcracker.yml");
    let first_two = [format!("{}:1 alpha-a", addrs[0]), format!("{}:1", addrs[1])];
    let original = format!("# kept as is\n{}", yml(free_port(), "ketama", "fnv1a_64", &first_two));
    std::fs::write(&path, &original).expect("write yml");
    let path_arg = path.to_str().expect("utf-8 path").to_string();
    let read = || std::fs::read_to_string(&path).expect("read yml");

    let proxy = start("proxy", &["--config", &path_arg, "--write-config", "--no-greeting"]);
    let mut c = Conn::connect(&proxy.addr());
    assert_eq!(c.call(&["ADD_SERVER", &addrs[2], "2"]), Frame::Simple(format!("OK added {}", addrs[2]).into()));
    let text = read();
    assert!(text.starts_with("# kept as is\nalpha:\n"), "{text}");
    assert!(text.contains(&format!("   - {}:1 alpha-a\n", addrs[0])), "the name is kept: {text}");
    assert!(text.contains(&format!("   - {}:2\n", addrs[2])), "the new server with its weight: {text}");
    assert_eq!(text.lines().count(), original.lines().count() + 1, "one line more, nothing else: {text}");
    drop(proxy);

    // Restarted from the file: the same three servers, nothing written until asked.
    let proxy = start("proxy", &["--config", &path_arg, "--no-greeting"]);
    let mut c = Conn::connect(&proxy.addr());
    match c.call(&["SERVERS"]) {
        Frame::Array(listed) => assert_eq!(listed.len(), 3, "{listed:?}"),
        other => panic!("SERVERS: {other:?}"),
    }
    assert!(matches!(c.call(&["REMOVE_SERVER", &addrs[1]]), Frame::Simple(_)));
    assert!(read().contains(&addrs[1]), "no --write-config: the file waits for CONFIG REWRITE");
    assert_eq!(c.call(&["CONFIG", "REWRITE"]), Frame::Simple("OK".into()));
    let text = read();
    assert!(!text.contains(&addrs[1]) && text.contains(&addrs[0]) && text.contains(&addrs[2]), "{text}");
    // The online switch is written too (ours reads maglev from the file; nutcracker would not).
    assert!(matches!(c.call(&["SET_DISTRIBUTION", "maglev", "MIGRATE"]), Frame::Simple(_)));
    c.wait_for_migration(Duration::from_secs(30));
    assert_eq!(c.call(&["CONFIG", "REWRITE"]), Frame::Simple("OK".into()));
    let text = read();
    assert!(text.contains("  distribution: maglev\n") && !text.contains("ketama"), "{text}");
    let check = Command::new(e2e::binary("proxy")).args(["-t", "-c", &path_arg]).output().expect("proxy -t");
    assert!(check.status.success(), "the rewritten file is valid: {}", String::from_utf8_lossy(&check.stderr));

    // A proxy started without a file has nothing to rewrite.
    let plain = start("proxy", &["--no-greeting"]);
    match Conn::connect(&plain.addr()).call(&["CONFIG", "REWRITE"]) {
        Frame::Error(e) => assert!(String::from_utf8_lossy(&e).contains("not started from a configuration file")),
        other => panic!("CONFIG REWRITE without -c: {other:?}"),
    }
}

/// A file with two pools, as nutcracker runs it: one process, a listener per pool, each with
/// its own servers and placement; one SIGTERM stops both.
#[test]
fn every_pool_of_the_file_gets_a_listener() {
    let servers: Vec<Process> = (0..3).map(|_| redis_server()).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let dir = TempDir::new("twemproxy-pools");
    let (alpha_port, beta_port) = (free_port(), free_port());
    let text = format!(
        "alpha:\n  listen: 127.0.0.1:{alpha_port}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  servers:\n   - {}:1\n   - {}:1\n\n\
         beta:\n  listen: 127.0.0.1:{beta_port}\n  hash: murmur\n  distribution: modula\n  redis: true\n  servers:\n   - {}:1\n",
        addrs[0], addrs[1], addrs[2]
    );
    let path = dir.path().join("nutcracker.yml");
    std::fs::write(&path, &text).expect("write yml");
    let path_arg = path.to_str().expect("utf-8 path").to_string();
    let mut proxy = start("proxy", &["--config", &path_arg, "--no-greeting"]);
    let beta_addr = format!("127.0.0.1:{beta_port}");
    assert!(wait_until(Duration::from_secs(10), || launch::ping(&beta_addr, Duration::from_secs(1))), "beta listens");
    let mut alpha = Conn::connect(&format!("127.0.0.1:{alpha_port}"));
    let mut beta = Conn::connect(&beta_addr);
    match (alpha.call(&["SERVERS"]), beta.call(&["SERVERS"])) {
        (Frame::Array(a), Frame::Array(b)) => assert_eq!((a.len(), b.len()), (2, 1), "{a:?} {b:?}"),
        other => panic!("SERVERS: {other:?}"),
    }
    for i in 0..200 {
        assert_eq!(beta.call(&["SET", &format!("b:{i}"), "x"]), Frame::Simple("OK".into()));
    }
    // Every key of beta is on beta's only server; alpha's servers hold none of them.
    assert_eq!(Conn::connect(&addrs[2]).call(&["DBSIZE"]), Frame::Integer(200));
    assert_eq!(Conn::connect(&addrs[0]).call(&["DBSIZE"]), Frame::Integer(0));
    match beta.call(&["ROUTE", "b:1", "DETAIL"]) {
        Frame::Array(lines) => assert!(format!("{lines:?}").contains("modula"), "{lines:?}"),
        other => panic!("ROUTE DETAIL: {other:?}"),
    }
    let status = proxy.stop_with("TERM", Duration::from_secs(20)).expect("SIGTERM").expect("exited");
    assert!(status.success(), "one signal stops every pool: {status:?}");

    // Flags that name one pool's things are refused with the pools named.
    let refused = Command::new(e2e::binary("proxy"))
        .args(["--config", &path_arg, "--state-file", "/nonexistent/ring.json"])
        .output()
        .expect("proxy");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("--state-file serves one pool") && stderr.contains("alpha, beta"),
        "{stderr}"
    );
}
