//! The seed's proxy contract and its example `nc` session, line by line, against real
//! servers on free ports; plus pooling, concurrency and a server dying mid-session.

use std::thread;

use e2e::{bulk, proxy, server, Cluster, Conn, DEMO_KEYS, REPLY_TIMEOUT};
use resp::Frame;
use ring::HashRing;

const GREETING: &str = "+OK proxy ready (type HELP for commands)";

/// A key that `two` servers give to `first_owner` and that moves to `third` when it joins.
fn key_that_moves(a: &str, b: &str, c: &str) -> (String, String) {
    let mut ring = HashRing::new(3);
    ring.add(a);
    ring.add(b);
    let mut bigger = ring.clone();
    bigger.add(c);
    (0..10_000)
        .map(|i| format!("user:{i}"))
        .find(|key| bigger.get(key.as_bytes()) == Some(c))
        .map(|key| {
            let owner = ring.get(key.as_bytes()).unwrap_or_default().to_string();
            (key, owner)
        })
        .expect("some key moves to the newcomer")
}

#[test]
fn the_seed_example_session() {
    // The harness reads stderr through a pipe, not a terminal: the seed's per-request lines
    // need --log-requests there.
    let log = ["--log-requests"];
    let (a, b, c) = (server("cache-A", &log), server("cache-B", &log), server("cache-C", &log));
    let proxy = proxy(&[], &log);
    let mut s = Conn::connect_greeted(&proxy.addr(), GREETING);
    s.exchange(&format!("ADD_SERVER {}", a.addr()), &[&format!("+OK added {}", a.addr())]);
    s.exchange(&format!("ADD_SERVER {}", b.addr()), &[&format!("+OK added {}", b.addr())]);
    let mut sorted = [a.addr(), b.addr()];
    sorted.sort();
    s.exchange("SERVERS", &["*2", &format!("+{}", sorted[0]), &format!("+{}", sorted[1])]);

    let (key, owner) = key_that_moves(&a.addr(), &b.addr(), &c.addr());
    s.exchange(&format!("ROUTE {key}"), &[&format!("+{owner}")]);
    s.exchange(&format!("SET {key} Alice"), &["+OK"]);
    s.exchange(&format!("GET {key}"), &["$5", "Alice"]);

    // Now add a third server and see routing change: the key moved, its value did not.
    s.exchange(&format!("ADD_SERVER {}", c.addr()), &[&format!("+OK added {}", c.addr())]);
    s.exchange(&format!("ROUTE {key}"), &[&format!("+{}", c.addr())]);
    s.exchange(&format!("GET {key}"), &["$-1"]);

    s.exchange("SET user:2002 Bob", &["+OK"]);
    s.exchange("DEL user:2002", &[":1"]);
    s.exchange("DEL user:2002", &[":0"]);
    s.exchange("KEYS", &["*1", &format!("+{key}")]);
    s.send_line("HELP");
    let help = s.read_frame();
    assert!(
        matches!(&help, Frame::Simple(t) if t.starts_with(b"Commands: SET/GET/DEL/KEYS, ADD_SERVER/REMOVE_SERVER/SERVERS, ROUTE, PING, QUIT")),
        "{help:?}"
    );
    s.exchange("PING", &["+PONG"]);
    s.exchange("FROBNICATE", &["-ERR unknown command (type HELP)"]);
    s.exchange(&format!("REMOVE_SERVER {}", c.addr()), &[&format!("+OK removed {}", c.addr())]);
    s.exchange(&format!("GET {key}"), &["$5", "Alice"]);
    s.exchange("QUIT", &["+BYE"]);
    assert!(s.is_closed());

    let owner_name = if owner == a.addr() { "cache-A" } else { "cache-B" };
    let owner_process = if owner == a.addr() { &a } else { &b };
    for line in [
        format!("[proxy] listening on {}", proxy.addr()),
        format!("[proxy] Added server: {}", a.addr()),
        format!("[proxy] SET {key} -> routing to {owner}"),
    ] {
        assert!(proxy.wait_for_log(&line, REPLY_TIMEOUT), "missing {line:?} in {:?}", proxy.logs());
    }
    assert!(owner_process.wait_for_log(&format!("[{owner_name}] SET {key} = Alice"), REPLY_TIMEOUT));
}

#[test]
fn no_line_per_request_when_stderr_is_not_a_terminal() {
    // The harness reads stderr through a pipe: by default, and with --no-log-requests after
    // --log-requests, only lifecycle lines.
    for flags in [&[][..], &["--log-requests", "--no-log-requests"][..]] {
        let (a, b) = (server("cache-A", &[]), server("cache-B", &[]));
        let proxy = proxy(&[a.addr()], flags);
        let mut s = Conn::connect_greeted(&proxy.addr(), GREETING);
        s.exchange("SET user:1001 Alice", &["+OK"]);
        s.exchange("GET user:1001", &["$5", "Alice"]);
        // A lifecycle line logged after the requests: once it is in, theirs would be too.
        s.exchange(&format!("ADD_SERVER {}", b.addr()), &[&format!("+OK added {}", b.addr())]);
        let added = format!("[proxy] Added server: {}", b.addr());
        assert!(proxy.wait_for_log(&added, REPLY_TIMEOUT), "missing {added:?} in {:?}", proxy.logs());
        let logs = proxy.logs();
        assert!(!logs.iter().any(|line| line.contains("routing to")), "{flags:?}: {logs:?}");
    }
}

#[test]
fn wrong_arguments_and_empty_ring() {
    let proxy = proxy(&[], &[]);
    let mut s = Conn::connect_greeted(&proxy.addr(), GREETING);
    for (line, reply) in [
        ("ADD_SERVER", "-ERR usage: ADD_SERVER host:port"),
        ("REMOVE_SERVER", "-ERR usage: REMOVE_SERVER host:port"),
        ("ROUTE", "-ERR usage: ROUTE key"),
        ("SET k", "-ERR usage: SET key value"),
        ("GET", "-ERR usage: GET key"),
        ("DEL", "-ERR usage: DEL key"),
        ("GET k", "-ERR no servers available"),
        ("SET k v", "-ERR no servers available"),
        ("ROUTE k", "-ERR no servers available"),
        ("KEYS", "*0"),
        ("SERVERS", "*0"),
        ("ADD_SERVER nonsense", "-ERR invalid server address 'nonsense': expected host:port"),
        ("REMOVE_SERVER 127.0.0.1:1", "-ERR 127.0.0.1:1 is not in the ring"),
    ] {
        s.exchange(line, &[reply]);
    }
    // Nothing listens on port 1: ADD_SERVER says so, and FORCE adds it anyway.
    s.send_line("add_server 127.0.0.1:1");
    let refused = s.read_frame();
    assert!(
        matches!(&refused, Frame::Error(t) if t.starts_with(b"ERR 127.0.0.1:1 did not answer, so it was not added")),
        "{refused:?}"
    );
    s.exchange("add_server 127.0.0.1:1 force", &["+OK added 127.0.0.1:1"]);
    s.exchange("ADD_SERVER 127.0.0.1:1", &["-ERR 127.0.0.1:1 is already in the ring"]);
    s.exchange("route k", &["+127.0.0.1:1"]);
}

#[test]
fn routes_match_the_seed_ring() {
    // ROUTE needs no live server: these are the seed's own addresses, added with FORCE as
    // nothing listens there.
    let proxy = proxy(&[], &[]);
    let mut s = Conn::connect_greeted(&proxy.addr(), GREETING);
    let seed = ["127.0.0.1:6381", "127.0.0.1:6382", "127.0.0.1:6383"];
    let mut ring = HashRing::new(3);
    for (n, addr) in seed.iter().enumerate() {
        s.exchange(&format!("ADD_SERVER {addr} FORCE"), &[&format!("+OK added {addr}")]);
        ring.add(addr);
        if n == 0 {
            continue;
        }
        for key in DEMO_KEYS {
            let expected = ring.get(key.as_bytes()).unwrap();
            s.exchange(&format!("ROUTE {key}"), &[&format!("+{expected}")]);
        }
        // The pins from DESIGN.md: the original program's routing.
        if n == 1 {
            s.exchange("ROUTE user:1001", &["+127.0.0.1:6382"]);
            s.exchange("ROUTE session:abc", &["+127.0.0.1:6381"]);
        } else {
            s.exchange("ROUTE user:1001", &["+127.0.0.1:6383"]);
        }
    }
}

#[test]
fn fifty_concurrent_clients_never_see_each_others_replies() {
    let cluster = Cluster::ours(3, &[], &["--no-greeting"]);
    let addr = cluster.proxy.addr();
    let workers: Vec<_> = (0..50)
        .map(|client| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut conn = Conn::connect(&addr);
                for i in 0..100 {
                    let (key, value) = (format!("client{client}:key{i}"), format!("value-{client}-{i}"));
                    assert_eq!(conn.call(&["SET", &key, &value]), Frame::simple("OK"));
                    assert_eq!(conn.call(&["GET", &key]), bulk(&value));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("client thread");
    }
    let mut check = Conn::connect(&addr);
    assert_eq!(check.call(&["DBSIZE"]), Frame::Integer(5000));
}

#[test]
fn connections_are_pooled_across_clients() {
    let cluster = Cluster::ours(1, &[], &["--no-greeting"]);
    for i in 0..20 {
        let mut c = Conn::connect(&cluster.proxy.addr());
        assert_eq!(c.call(&["SET", &format!("k{i}"), "v"]), Frame::simple("OK"));
    }
    // One pooled connection served all twenty clients: the server saw one proxy connection
    // (plus this one).
    let mut direct = Conn::connect_greeted(&cluster.servers[0].addr(), "+OK cache-A ready");
    let Frame::Bulk(info) = direct.call(&["INFO"]) else { panic!("INFO is a bulk string") };
    let info = String::from_utf8_lossy(&info);
    assert!(info.contains("total_connections_received:2\r\n"), "{info}");
}

#[test]
fn a_dead_server_gives_err_and_the_proxy_keeps_serving() {
    // The seed's behaviour: without health checks the dead server's keys answer -ERR.
    let mut cluster = Cluster::ours(3, &[], &["--no-greeting", "--no-auto-eject"]);
    let addrs = cluster.addrs();
    let mut ring = HashRing::new(3);
    addrs.iter().for_each(|a| {
        ring.add(a);
    });
    let mut c = Conn::connect(&cluster.proxy.addr());
    let keys: Vec<String> = (0..60).map(|i| format!("key:{i}")).collect();
    for key in &keys {
        assert_eq!(c.call(&["SET", key, "v"]), Frame::simple("OK"));
    }
    // Kill the owner of the first key, so that some keys are on the dead server.
    let victim = addrs.iter().position(|a| Some(a.as_str()) == ring.get(keys[0].as_bytes())).unwrap();
    cluster.servers[victim].kill().expect("kill");
    let dead = &addrs[victim];
    for key in &keys {
        let reply = c.call(&["GET", key]);
        if ring.get(key.as_bytes()) == Some(dead.as_str()) {
            let Frame::Error(text) = reply else { panic!("{key} on the dead server: {reply:?}") };
            let text = String::from_utf8_lossy(&text);
            assert!(text.starts_with("ERR") && text.contains(dead.as_str()), "{text}");
        } else {
            assert_eq!(reply, bulk("v"), "{key} lives on a server that is up");
        }
    }
    // A refused connection is reported promptly and names the server.
    let dead_key = keys.iter().find(|k| ring.get(k.as_bytes()) == Some(dead.as_str())).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(c.call(&["GET", dead_key]), Frame::error(format!("ERR connect to {dead}: connection refused")));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let mut fresh = Conn::connect(&cluster.proxy.addr());
    assert_eq!(fresh.call(&["PING"]), Frame::simple("PONG"));
}

#[test]
fn remove_server_closes_its_pooled_connections() {
    let cluster = Cluster::ours(2, &[], &["--no-greeting"]);
    let mut c = Conn::connect(&cluster.proxy.addr());
    for i in 0..20 {
        c.call(&["SET", &format!("k{i}"), "v"]);
    }
    let gone = &cluster.servers[0];
    assert_eq!(c.call(&["REMOVE_SERVER", &gone.addr()]), Frame::simple(format!("OK removed {}", gone.addr())));
    let mut direct = Conn::connect_greeted(&gone.addr(), "+OK cache-A ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let Frame::Bulk(info) = direct.call(&["INFO"]) else { panic!() };
        if String::from_utf8_lossy(&info).contains("connected_clients:1\r\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the proxy's connection to a removed server stayed open");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_broken_connection_is_redialled_when_the_server_comes_back() {
    let mut cluster = Cluster::ours(1, &["--no-greeting"], &["--no-greeting", "--no-auto-eject"]);
    let mut c = Conn::connect(&cluster.proxy.addr());
    assert_eq!(c.call(&["SET", "k", "v"]), Frame::simple("OK"));
    let port = cluster.servers[0].port;
    cluster.servers[0].kill().expect("kill");
    assert!(matches!(c.call(&["GET", "k"]), Frame::Error(_)));
    let _back = e2e::start_on_port("server", port, &["--no-greeting", "--name", "cache-A"], &[]);
    // The pooled connection died with the server; the next request dials a new one.
    assert_eq!(c.call(&["SET", "k", "again"]), Frame::simple("OK"));
    assert_eq!(c.call(&["GET", "k"]), bulk("again"));
}

#[test]
fn commands_a_proxy_cannot_serve_are_refused_by_name() {
    let cluster = Cluster::ours(2, &[], &["--no-greeting"]);
    let mut c = Conn::connect(&cluster.proxy.addr());
    assert_eq!(
        c.call(&["MONITOR"]),
        Frame::error("ERR MONITOR is not supported through the proxy: it watches one server; ask a server directly")
    );
    assert_eq!(
        c.call(&["WHOAMI"]),
        Frame::error(
            "ERR WHOAMI is not supported through the proxy: it names one cache server; ask a cache server directly"
        )
    );
    assert_eq!(c.call(&["PING"]), Frame::simple("PONG"));
}
