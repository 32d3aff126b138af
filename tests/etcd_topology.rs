//! Many proxies, one topology (`--topology etcd://...`): a real etcd on free ports, three of
//! our proxies sharing one prefix, and our cache servers behind them.
//!
//! Each test starts its own etcd (data in a temporary directory, killed at the end, also on
//! failure). Outside CI a machine without `/usr/bin/etcd` skips them with a message; CI
//! installs Debian's `etcd-server` and runs them.

use std::collections::{BTreeSet, HashMap};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{free_port, server, start, wait_until, Conn, Process};
use resp::Frame;

const ETCD: &str = "/usr/bin/etcd";

/// A single-member etcd on free loopback ports; stopped and its data removed on drop.
struct Etcd {
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    dir: PathBuf,
}

impl Etcd {
    /// Starts etcd, or `None` (with a message) when it is not installed outside CI.
    fn start() -> Option<Etcd> {
        if !std::path::Path::new(ETCD).exists() {
            assert!(std::env::var_os("CI").is_none(), "{ETCD} is missing: .ci/run installs etcd-server");
            eprintln!("skipped: {ETCD} is not installed (apt-get install -y etcd-server)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("etcd-test-{}-{}", std::process::id(), free_port()));
        let mut etcd = Etcd { child: None, client_port: free_port(), peer_port: free_port(), dir };
        etcd.resume();
        Some(etcd)
    }

    /// `etcd://127.0.0.1:<port>/<prefix>`.
    fn url(&self, prefix: &str) -> String {
        format!("etcd://127.0.0.1:{}/{prefix}", self.client_port)
    }

    /// Starts (again) on the same ports and data.
    fn resume(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(ETCD)
            .args(["--name", "test", "--data-dir"])
            .arg(&self.dir)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("test={peer}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting etcd");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.client_port);
        assert!(wait_until(Duration::from_secs(20), || TcpStream::connect(&addr).is_ok()), "etcd did not listen");
    }

    /// Kills etcd (its data stays for [`Etcd::resume`]).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A proxy of the pool at `url`; `servers` seed the pool when etcd has no topology yet.
fn pool_proxy(url: &str, servers: &[String], extra: &[&str]) -> Process {
    let list = servers.join(",");
    let mut args = vec!["--topology", url, "--topology-lease-secs", "2", "--health-interval-ms", "100"];
    if !servers.is_empty() {
        args.extend(["--servers", list.as_str()]);
    }
    args.extend_from_slice(extra);
    start("proxy", &args)
}

fn text(frame: &Frame) -> String {
    match frame {
        Frame::Simple(b) | Frame::Error(b) | Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => format!("{other:?}"),
    }
}

/// SERVERS of the proxy at `addr`, sorted.
/// Three of our servers behind three proxies sharing the pool at `url`.
struct Pool {
    /// The servers, stopped when the pool is dropped.
    servers: Vec<Process>,
    /// Their addresses.
    addrs: Vec<String>,
    /// The proxies, stopped when the pool is dropped.
    proxies: Vec<Process>,
    /// Their addresses.
    paddrs: Vec<String>,
}

/// Starts a [`Pool`]: the first proxy with the first `initial` servers, the other two joining
/// through etcd; returns once every proxy routes over those servers.
fn three_proxy_pool(url: &str, initial: usize) -> Pool {
    let servers: Vec<Process> = (0..3).map(|i| server(&format!("cache-{i}"), &["--no-greeting"])).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let proxies = vec![pool_proxy(url, &addrs[..initial], &[]), pool_proxy(url, &[], &[]), pool_proxy(url, &[], &[])];
    let paddrs: Vec<String> = proxies.iter().map(Process::addr).collect();
    for p in &paddrs {
        assert!(wait_until(Duration::from_secs(5), || servers_of(p).len() == initial), "{p} did not join");
    }
    Pool { servers, addrs, proxies, paddrs }
}

fn servers_of(addr: &str) -> Vec<String> {
    match Conn::connect(addr).call(&["SERVERS"]) {
        Frame::Array(items) => items.iter().map(text).collect(),
        other => panic!("SERVERS: {other:?}"),
    }
}

/// Where the proxy at `addr` routes each of `keys` (ROUTE, pipelined).
fn routes(addr: &str, keys: &[String]) -> Vec<String> {
    let mut conn = Conn::connect(addr);
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(1000) {
        let commands: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["ROUTE", k.as_str()]).collect();
        out.extend(conn.pipeline(&commands).iter().map(text));
    }
    out
}

/// A field of the proxy's INFO.
fn info(addr: &str, name: &str) -> String {
    Conn::connect(addr).field(&["INFO"], name).unwrap_or_default()
}

fn keys(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i}")).collect()
}

#[test]
fn add_server_on_one_proxy_reaches_every_proxy() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("pool");
    let servers: Vec<Process> = (0..3).map(|i| server(&format!("cache-{i}"), &[])).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let p1 = pool_proxy(&url, &addrs[..2], &[]);
    // The others join with no --servers: the pool's topology is theirs.
    let p2 = pool_proxy(&url, &[], &[]);
    let p3 = pool_proxy(&url, &[], &[]);
    let proxies = [p1.addr(), p2.addr(), p3.addr()];
    let two = {
        let mut v = addrs[..2].to_vec();
        v.sort();
        v
    };
    for p in &proxies {
        assert!(wait_until(Duration::from_secs(5), || servers_of(p) == two), "{p} did not join the pool");
    }

    let stored = keys(3000, "stored");
    write_all(&proxies[0], &stored);
    let added = Conn::connect(&proxies[0]).call(&["ADD_SERVER", &addrs[2]]);
    assert_eq!(text(&added), format!("OK added {}", addrs[2]));
    let mut three = addrs.clone();
    three.sort();
    let began = Instant::now();
    for p in &proxies[1..] {
        assert!(wait_until(Duration::from_secs(1), || servers_of(p) == three), "{p} did not see ADD_SERVER within 1 s");
    }
    eprintln!("ADD_SERVER reached the other proxies in {} ms", began.elapsed().as_millis());
    let keys = keys(3000, "user");
    let first = routes(&proxies[0], &keys);
    assert!(three.iter().all(|s| first.contains(s)), "keys spread over all three servers");
    for p in &proxies[1..] {
        assert_eq!(routes(p, &keys), first, "{p} routes like the proxy that added the server");
    }

    // Without MIGRATE the moved keys miss (the seed's behaviour) until a REBALANCE, here on
    // another proxy; then every proxy reads them all.
    assert!(!missing(&proxies[1], &stored).is_empty(), "some keys changed owner");
    assert_eq!(text(&Conn::connect(&proxies[2]).call(&["REBALANCE"])), "OK rebalancing (see MIGRATION)");
    assert!(
        wait_until(Duration::from_secs(20), || proxies.iter().all(|p| info(p, "topology_migration") == "none")),
        "the rebalance finished"
    );
    for p in &proxies {
        assert!(missing(p, &stored).is_empty(), "{p} reads every key after REBALANCE");
    }

    // A proxy started later, or restarted, reads the same ring from etcd.
    let p4 = pool_proxy(&url, &[], &[]);
    assert_eq!(servers_of(&p4.addr()), three);
    assert_eq!(routes(&p4.addr(), &keys), first);
}

#[test]
fn concurrent_changes_never_split_the_view() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("race");
    let servers: Vec<Process> = (0..6).map(|i| server(&format!("cache-{i}"), &[])).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let p1 = pool_proxy(&url, &addrs[..2], &[]);
    let p2 = pool_proxy(&url, &[], &[]);
    let p3 = pool_proxy(&url, &[], &[]);
    let proxies = [p1.addr(), p2.addr(), p3.addr()];
    for p in &proxies {
        assert!(wait_until(Duration::from_secs(5), || servers_of(p).len() == 2), "{p} did not join");
    }
    let mut expected: BTreeSet<String> = addrs[..2].iter().cloned().collect();
    let mut refused = 0;
    // Pairs of ADD_SERVERs sent at once on two proxies: both apply, or one is refused.
    for round in 0..2 {
        let (a, b) = (addrs[2 + 2 * round].clone(), addrs[3 + 2 * round].clone());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let spawn = |proxy: String, server: String| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::connect(&proxy);
                barrier.wait();
                (server.clone(), conn.call(&["ADD_SERVER", &server]))
            })
        };
        let first = spawn(proxies[0].clone(), a);
        let second = spawn(proxies[1].clone(), b);
        for (server, reply) in [first.join().unwrap(), second.join().unwrap()] {
            match &reply {
                Frame::Simple(_) => {
                    expected.insert(server);
                }
                Frame::Error(e) => {
                    let e = String::from_utf8_lossy(e);
                    assert!(e.contains("changed on another proxy") && e.contains("retry"), "unclear refusal: {e}");
                    refused += 1;
                }
                other => panic!("ADD_SERVER: {other:?}"),
            }
        }
    }
    eprintln!("{refused} of 4 concurrent ADD_SERVERs were refused (lost the compare-and-swap)");
    let expected: Vec<String> = expected.into_iter().collect();
    for p in &proxies {
        assert!(wait_until(Duration::from_secs(2), || servers_of(p) == expected), "{p}: {:?}", servers_of(p));
    }
    let keys = keys(2000, "k");
    let first = routes(&proxies[0], &keys);
    for p in &proxies[1..] {
        assert_eq!(routes(p, &keys), first);
    }
}

/// Writes `keys` through `proxy` (value = key), pipelined; panics on an error reply.
fn write_all(proxy: &str, keys: &[String]) {
    let mut conn = Conn::connect(proxy);
    for chunk in keys.chunks(500) {
        let commands: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["SET", k.as_str(), k.as_str()]).collect();
        for reply in conn.pipeline(&commands) {
            assert!(!reply.is_error(), "SET through {proxy}: {reply:?}");
        }
    }
}

/// The keys of `keys` that `proxy` does not read back with their value.
fn missing(proxy: &str, keys: &[String]) -> Vec<String> {
    let mut conn = Conn::connect(proxy);
    let mut lost = Vec::new();
    for chunk in keys.chunks(500) {
        let commands: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["GET", k.as_str()]).collect();
        for (key, reply) in chunk.iter().zip(conn.pipeline(&commands)) {
            if text(&reply) != *key {
                lost.push(key.clone());
            }
        }
    }
    lost
}

/// Keys held by each server (DBSIZE).
fn dbsizes(servers: &[String]) -> Vec<i64> {
    servers
        .iter()
        .map(|s| match Conn::connect(s).call(&["DBSIZE"]) {
            Frame::Integer(n) => n,
            other => panic!("DBSIZE on {s}: {other:?}"),
        })
        .collect()
}

#[test]
fn killing_the_mover_mid_migration_loses_nothing() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("moving");
    let Pool { servers: _servers, addrs, mut proxies, paddrs } = three_proxy_pool(&url, 2);
    let before = keys(40_000, "before");
    write_all(&paddrs[0], &before);

    // Writers on all three proxies while the keys move.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = paddrs
        .iter()
        .enumerate()
        .map(|(i, proxy)| {
            let (proxy, stop) = (proxy.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut written = Vec::new();
                let Ok(mut conn) = Conn::try_connect(&proxy) else { return written };
                for n in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("during:{i}:{n}");
                    // The proxy may be the one killed: stop at its first failed reply.
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.call(&["SET", &key, &key]))) {
                        Ok(Frame::Simple(_)) => written.push(key),
                        _ => break,
                    }
                }
                written
            })
        })
        .collect();

    let reply = Conn::connect(&paddrs[1]).call(&["ADD_SERVER", &addrs[2], "MIGRATE"]);
    assert!(text(&reply).starts_with("OK added"), "{reply:?}");
    let mut mover = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            mover = paddrs.iter().position(|p| info(p, "topology_moving") == "1");
            mover.is_some()
        }),
        "no proxy started moving keys"
    );
    let mover = mover.unwrap();
    // Kill it once it has moved some keys, not all.
    let mut moved_before_kill = 0;
    wait_until(Duration::from_secs(10), || {
        moved_before_kill = info(&paddrs[mover], "keys_moved").parse::<u64>().unwrap_or(0);
        moved_before_kill > 0
    });
    assert_eq!(info(&paddrs[mover], "topology_moving"), "1", "the mover finished before it could be killed");
    proxies[mover].kill().expect("kill -9 of the mover");
    eprintln!("killed the mover (proxy {mover}) after it moved {moved_before_kill} keys");
    let survivors: Vec<String> =
        paddrs.iter().enumerate().filter(|(i, _)| *i != mover).map(|(_, p)| p.clone()).collect();

    // Another proxy takes over within the lease and finishes.
    let finished =
        wait_until(Duration::from_secs(40), || survivors.iter().all(|p| info(p, "topology_migration") == "none"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(finished, "the migration was not finished by another proxy");
    let during: Vec<String> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    eprintln!("{} keys written during the migration", during.len());

    for p in &survivors {
        let lost = missing(p, &before);
        assert!(
            lost.is_empty(),
            "{} keys written before the migration are lost through {p}: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let lost = missing(p, &during);
        assert!(
            lost.is_empty(),
            "{} keys written during the migration are lost through {p}: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
    }
    // Each key is on one server only: nothing left behind to resurface. (A write the killed
    // proxy made but could not acknowledge may exist too: that is not a copy.)
    let mut copies: HashMap<String, usize> = HashMap::new();
    for server in &addrs {
        let Frame::Array(keys) = Conn::connect(server).call(&["KEYS", "*"]) else { panic!("KEYS on {server}") };
        keys.iter().for_each(|k| *copies.entry(text(k)).or_default() += 1);
    }
    let twice: Vec<&String> = copies.iter().filter(|(_, n)| **n > 1).map(|(k, _)| k).collect();
    assert!(twice.is_empty(), "{} keys left on an old owner too: {:?}", twice.len(), &twice[..twice.len().min(5)]);
    let total: i64 = dbsizes(&addrs).iter().sum();
    assert!(total as usize >= before.len() + during.len());
    // Deleted keys stay deleted.
    let mut conn = Conn::connect(&survivors[0]);
    for key in before.iter().take(100) {
        assert_eq!(conn.call(&["DEL", key]), Frame::Integer(1));
    }
    let mut other = Conn::connect(&survivors[1]);
    for key in before.iter().take(100) {
        assert_eq!(other.call(&["GET", key]), Frame::Null, "{key} came back");
    }
}

#[test]
fn one_proxy_with_a_bad_link_does_not_eject_a_healthy_server() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("health");
    let servers: Vec<Process> = (0..2).map(|i| server(&format!("cache-{i}"), &["--requirepass", "right"])).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let flags = ["--server-failure-limit", "2", "--server-retry-timeout-ms", "200"];
    let good: Vec<&str> = flags.iter().copied().chain(["--server-password", "right"]).collect();
    let bad: Vec<&str> = flags.iter().copied().chain(["--server-password", "wrong"]).collect();
    let p1 = pool_proxy(&url, &addrs, &good);
    let p2 = pool_proxy(&url, &[], &good);
    // The third proxy cannot use the servers (wrong password): its checks fail.
    let p3 = pool_proxy(&url, &[], &bad);
    for p in [&p1, &p2, &p3] {
        assert!(wait_until(Duration::from_secs(5), || servers_of(&p.addr()).len() == 2), "did not join");
    }
    assert!(
        wait_until(Duration::from_secs(5), || info(&p3.addr(), "server0").contains("state=down")),
        "the proxy with the bad link sees the server down"
    );
    // Give the reports time to reach the others: they must not follow.
    std::thread::sleep(Duration::from_secs(2));
    for p in [&p1, &p2] {
        assert_eq!(info(&p.addr(), "topology_pool_down"), "", "one report of three is no quorum");
        let mut conn = Conn::connect(&p.addr());
        for key in keys(50, "h") {
            assert_eq!(text(&conn.call(&["SET", &key, "v"])), "OK");
        }
    }
    // A server that really fails is reported by all three: down for the pool.
    drop(servers);
    let both = {
        let mut v = addrs.clone();
        v.sort();
        v.join(",")
    };
    assert!(
        wait_until(Duration::from_secs(10), || info(&p1.addr(), "topology_pool_down") == both),
        "a quorum marks the failed servers down: {}",
        info(&p1.addr(), "topology_pool_down")
    );
}

#[test]
fn losing_etcd_keeps_serving_and_refuses_changes_until_it_returns() {
    let Some(mut etcd) = Etcd::start() else { return };
    let url = etcd.url("outage");
    let servers: Vec<Process> = (0..3).map(|i| server(&format!("cache-{i}"), &[])).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let p1 = pool_proxy(&url, &addrs[..2], &[]);
    let p2 = pool_proxy(&url, &[], &[]);
    for p in [&p1, &p2] {
        assert!(wait_until(Duration::from_secs(5), || servers_of(&p.addr()).len() == 2), "did not join");
    }
    let keys = keys(500, "o");
    write_all(&p1.addr(), &keys);

    etcd.stop();
    assert!(missing(&p2.addr(), &keys).is_empty(), "reads go on without etcd");
    write_all(&p2.addr(), &keys);
    let refused = Conn::connect(&p1.addr()).call(&["ADD_SERVER", &addrs[2]]);
    let refused = text(&refused);
    assert!(refused.contains("etcd") && refused.contains("unreachable"), "{refused}");
    assert_eq!(servers_of(&p1.addr()).len(), 2, "nothing changed");

    etcd.resume();
    assert!(
        wait_until(Duration::from_secs(15), || {
            info(&p1.addr(), "topology_etcd_reachable") == "1" && info(&p2.addr(), "topology_etcd_reachable") == "1"
        }),
        "the proxies reconnect to etcd"
    );
    let mut added = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            added = text(&Conn::connect(&p1.addr()).call(&["ADD_SERVER", &addrs[2]]));
            added.starts_with("OK")
        }),
        "ADD_SERVER after etcd returned: {added}"
    );
    assert!(wait_until(Duration::from_secs(2), || servers_of(&p2.addr()).len() == 3), "p2 resynchronised");
    let routed = routes(&p1.addr(), &keys);
    assert_eq!(routes(&p2.addr(), &keys), routed);
}

#[test]
fn five_proxies_agree_after_twenty_random_changes() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("five");
    let servers: Vec<Process> = (0..6).map(|i| server(&format!("cache-{i}"), &[])).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let mut proxies = vec![pool_proxy(&url, &addrs[..3], &[])];
    proxies.extend((0..4).map(|_| pool_proxy(&url, &[], &[])));
    let paddrs: Vec<String> = proxies.iter().map(Process::addr).collect();
    for p in &paddrs {
        assert!(wait_until(Duration::from_secs(5), || servers_of(p).len() == 3), "{p} did not join");
    }
    // A fixed pseudo-random sequence (xorshift): which proxy, which server.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut members: BTreeSet<String> = addrs[..3].iter().cloned().collect();
    for _ in 0..20 {
        let proxy = &paddrs[(next() % 5) as usize];
        let server = &addrs[(next() % 6) as usize];
        let (command, expect_in) =
            if members.contains(server) && members.len() > 1 { ("REMOVE_SERVER", false) } else { ("ADD_SERVER", true) };
        if command == "ADD_SERVER" && members.contains(server) {
            continue;
        }
        let reply = Conn::connect(proxy).call(&[command, server]);
        assert!(matches!(reply, Frame::Simple(_)), "{command} {server} on {proxy}: {reply:?}");
        if expect_in {
            members.insert(server.clone());
        } else {
            members.remove(server);
        }
    }
    let expected: Vec<String> = members.into_iter().collect();
    for p in &paddrs {
        assert!(wait_until(Duration::from_secs(2), || servers_of(p) == expected), "{p}: {:?}", servers_of(p));
    }
    let keys = keys(100_000, "agree");
    let first = routes(&paddrs[0], &keys);
    let mut spread: HashMap<&str, usize> = HashMap::new();
    first.iter().for_each(|s| *spread.entry(s.as_str()).or_default() += 1);
    eprintln!("100000 keys over {} servers: {spread:?}", spread.len());
    for p in &paddrs[1..] {
        let theirs = routes(p, &keys);
        let differ = theirs.iter().zip(&first).filter(|(a, b)| a != b).count();
        assert_eq!(differ, 0, "{p} routes {differ} of 100000 keys differently");
    }
}

#[test]
fn a_proxy_that_cannot_reach_etcd_at_start_serves_its_state_file() {
    let Some(mut etcd) = Etcd::start() else { return };
    let url = etcd.url("cache");
    let servers: Vec<Process> = (0..2).map(|i| server(&format!("cache-{i}"), &[])).collect();
    let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
    let state = etcd.dir.with_extension("ring.json");
    let state_flag = state.display().to_string();
    let mut first = pool_proxy(&url, &addrs[..1], &["--state-file", &state_flag]);
    assert_eq!(text(&Conn::connect(&first.addr()).call(&["ADD_SERVER", &addrs[1]])), format!("OK added {}", addrs[1]));
    first.kill().expect("stop the proxy");
    etcd.stop();

    // etcd is down: the restarted proxy serves the ring it cached, and refuses changes.
    let again = pool_proxy(&url, &[], &["--state-file", &state_flag]);
    let mut both = addrs.clone();
    both.sort();
    assert_eq!(servers_of(&again.addr()), both);
    let refused = text(&Conn::connect(&again.addr()).call(&["REMOVE_SERVER", &addrs[1]]));
    assert!(refused.contains("unreachable"), "{refused}");
    etcd.resume();
    assert!(
        wait_until(Duration::from_secs(15), || info(&again.addr(), "topology_etcd_reachable") == "1"),
        "joins the pool when etcd returns"
    );
    assert!(text(&Conn::connect(&again.addr()).call(&["REMOVE_SERVER", &addrs[1]])).starts_with("OK"));
    let _ = std::fs::remove_file(&state);
}

#[test]
fn a_proxy_whose_flags_place_keys_differently_refuses_to_join() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("flags");
    let cache = server("cache-0", &[]);
    let _first = pool_proxy(&url, &[cache.addr()], &[]);
    let port = free_port().to_string();
    let mut other = Command::new(e2e::binary("proxy"));
    other.args(["--port", &port, "--topology", &url, "--replicas", "160"]);
    let out = e2e::run_bounded(&mut other, Duration::from_secs(30)).expect("the proxy exits");
    assert!(!out.status.success(), "it must not serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("places keys with"), "{stderr}");
}

/// The race of a client's DEL on one proxy with the mover on another: the mover reads a key
/// on its old owner, a client on another proxy moves it, deletes it and is answered, then
/// the mover's stale copy must not land on the new owner. In each of [`RACE_ROUNDS`]
/// migrations (the third server added, removed, added again), clients on the proxies that
/// are not moving SET then DEL keys that are still being moved; once the migration is over,
/// no key whose DEL was acknowledged may exist on any server.
#[test]
fn a_delete_on_one_proxy_racing_the_mover_on_another_stays_deleted() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("resurrect");
    let Pool { servers: _servers, addrs, proxies: _proxies, paddrs } = three_proxy_pool(&url, 2);
    let (mut raced, mut back) = (0, Vec::new());
    for round in 0..RACE_ROUNDS {
        let change = if round % 2 == 0 { "ADD_SERVER" } else { "REMOVE_SERVER" };
        let (deleted, moved) = race_one_migration(&paddrs, &[change, &addrs[2], "MIGRATE"], &format!("r{round}"));
        raced += deleted.len();
        eprintln!(
            "round {round} ({change}): {} keys set then deleted on the other proxies, {moved} moved",
            deleted.len()
        );
        for server in &addrs {
            let mut conn = Conn::connect(server);
            for chunk in deleted.chunks(1000) {
                let commands: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["EXISTS", k.as_str()]).collect();
                for (key, reply) in chunk.iter().zip(conn.pipeline(&commands)) {
                    if reply != Frame::Integer(0) {
                        back.push(format!("{key} on {server}"));
                    }
                }
            }
            assert_eq!(conn.call(&["FLUSHALL"]), Frame::Simple("OK".into()));
        }
    }
    eprintln!("{raced} keys deleted during {RACE_ROUNDS} migrations, {} came back", back.len());
    assert!(back.is_empty(), "{} deleted keys came back: {:?}", back.len(), &back[..back.len().min(5)]);
}

/// Migrations in [`a_delete_on_one_proxy_racing_the_mover_on_another_stays_deleted`].
const RACE_ROUNDS: usize = 4;

/// Writes keys `prefix:N` with 32 KiB values, runs `change` (a ring change with MIGRATE) on
/// the first proxy and, while the keys move, SETs then DELs them through the proxies that
/// are not moving, each key at most once. The keys whose DEL was acknowledged, and the keys
/// the mover moved.
fn race_one_migration(paddrs: &[String], change: &[&str], prefix: &str) -> (Vec<String>, String) {
    // Large values make each batch of the mover take a while between its reads on the old
    // owner and its writes on the new one: the window a client's DEL must not fall into.
    let keys = keys(3_000, prefix);
    let value = "x".repeat(32 * 1024);
    let mut conn = Conn::connect(&paddrs[0]);
    for chunk in keys.chunks(100) {
        let commands: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["SET", k.as_str(), value.as_str()]).collect();
        assert!(conn.pipeline(&commands).iter().all(|r| !r.is_error()));
    }
    let reply = conn.call(change);
    assert!(text(&reply).starts_with("OK"), "{change:?}: {reply:?}");
    let mut mover = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            mover = paddrs.iter().position(|p| info(p, "topology_moving") == "1");
            mover.is_some() || paddrs.iter().all(|p| info(p, "topology_migration") == "none")
        }),
        "no proxy started moving keys"
    );
    // Had the migration ended already, any proxy is "not the mover": the round races less.
    let mover = mover.unwrap_or(0);
    let others: Vec<String> = paddrs.iter().enumerate().filter(|(i, _)| *i != mover).map(|(_, p)| p.clone()).collect();

    // Two clients on each proxy that is not the mover, each on its own share of the keys in
    // its own pseudo-random order, so no key is written again after its DEL.
    const CLIENTS: usize = 4;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(60);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let proxy = others[c % others.len()].clone();
            let stop = stop.clone();
            let mut mine: Vec<String> = keys.iter().skip(c).step_by(CLIENTS).cloned().collect();
            let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ (c as u64 + 1);
            for i in (1..mine.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                mine.swap(i, (state % (i as u64 + 1)) as usize);
            }
            std::thread::spawn(move || {
                let mut deleted = Vec::new();
                let mut conn = Conn::connect(&proxy);
                for key in mine {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    assert_eq!(text(&conn.call(&["SET", &key, "new"])), "OK", "SET {key}");
                    assert_eq!(conn.call(&["DEL", &key]), Frame::Integer(1), "DEL {key}");
                    deleted.push(key);
                }
                deleted
            })
        })
        .collect();
    let finished =
        wait_until(Duration::from_secs(60), || paddrs.iter().all(|p| info(p, "topology_migration") == "none"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let deleted: Vec<String> = clients.into_iter().flat_map(|c| c.join().expect("a client failed")).collect();
    assert!(finished, "the migration did not finish");
    (deleted, info(&paddrs[mover], "keys_moved"))
}

#[test]
fn set_distribution_on_one_proxy_switches_every_proxy_and_moves_the_keys() {
    let Some(etcd) = Etcd::start() else { return };
    let url = etcd.url("placement");
    let Pool { servers: _servers, addrs, proxies: _proxies, paddrs: proxies } = three_proxy_pool(&url, 3);
    let stored = keys(3000, "placed");
    write_all(&proxies[0], &stored);
    let before = routes(&proxies[0], &stored);

    let reply = text(&Conn::connect(&proxies[1]).call(&["SET_DISTRIBUTION", "ketama", "MIGRATE"]));
    assert_eq!(reply, "OK keys now placed by ketama with fnv1a_64, migrating keys (see MIGRATION)");
    let again = text(&Conn::connect(&proxies[2]).call(&["SET_DISTRIBUTION", "ketama"]));
    assert!(again.contains("already uses ketama"), "{again}");
    assert!(
        wait_until(Duration::from_secs(30), || proxies.iter().all(|p| info(p, "topology_migration") == "none")),
        "the migration finished"
    );
    let after = routes(&proxies[0], &stored);
    let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    eprintln!("SET_DISTRIBUTION ketama: {changed} of {} keys changed owner", stored.len());
    assert!(changed > 0, "ketama places keys elsewhere than the seed's ring");
    for p in &proxies[1..] {
        assert_eq!(routes(p, &stored), after, "{p} routes like the proxy that switched");
    }
    for p in &proxies {
        let lost = missing(p, &stored);
        assert!(lost.is_empty(), "{} keys not read back through {p}: {:?}", lost.len(), &lost[..lost.len().min(5)]);
    }
    // Each key is on the server the new placement names, and on no other.
    let owner: HashMap<&String, &String> = stored.iter().zip(&after).collect();
    for server in &addrs {
        let Frame::Array(keys) = Conn::connect(server).call(&["KEYS", "*"]) else { panic!("KEYS on {server}") };
        for key in keys.iter().map(text) {
            assert_eq!(owner.get(&key).copied(), Some(server), "{key} left on {server}");
        }
    }
    // A proxy started later with the default flags takes the pool's placement.
    let p4 = pool_proxy(&url, &[], &[]);
    assert_eq!(routes(&p4.addr(), &stored), after);
}
