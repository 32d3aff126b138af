//! Dedicated server connections through the proxy in front of three redis-servers (issue 10,
//! items 4, 6, 7): the bound on blocking commands, a client that leaves while blocked, WATCH
//! aborting EXEC, and subscriptions spread over servers.
//!
//! ```text
//! cargo test -p e2e --test dedicated
//! ```

use std::time::Duration;

use e2e::{bulk, wait_until, Cluster, Conn};
use resp::Frame;

/// How long a blocked command may take to show up on a backend, or to leave it.
const SETTLE: Duration = Duration::from_secs(5);
/// The proxy's `--max-blocking-connections` in these tests.
const MAX_BLOCKING: &str = "2";

fn cluster() -> Cluster {
    Cluster::redis(3, &["--no-greeting", "--hash-tag", "{}", "--max-blocking-connections", MAX_BLOCKING])
}

/// A field of `INFO clients`, summed over the backends (asked directly).
fn backend_clients(cluster: &Cluster, field: &str) -> i64 {
    cluster
        .addrs()
        .iter()
        .map(|addr| Conn::connect(addr).field(&["INFO", "clients"], field).and_then(|v| v.parse().ok()).unwrap_or(0))
        .sum()
}

fn send(conn: &mut Conn, args: &[&str]) {
    let mut out = bytes::BytesMut::new();
    resp::write::command(&mut out, args);
    conn.send_raw(&out);
}

fn array(items: &[Frame]) -> Frame {
    Frame::Array(items.to_vec())
}

#[test]
fn blocking_commands_past_the_bound_are_refused_and_others_still_served() {
    let cluster = cluster();
    let addr = cluster.proxy.addr();
    let mut first = Conn::connect(&addr);
    let mut second = Conn::connect(&addr);
    // A reply pipelined before a blocking command arrives before it blocks.
    send(&mut first, &["SET", "{q}before", "1"]);
    send(&mut first, &["BLPOP", "{q}a", "0"]);
    assert_eq!(first.read_frame(), Frame::simple("OK"));
    send(&mut second, &["BRPOP", "{q}b", "0"]);
    assert!(wait_until(SETTLE, || backend_clients(&cluster, "blocked_clients") == 2), "two clients never blocked");

    let mut third = Conn::connect(&addr);
    let refused = third.call(&["BLPOP", "{q}c", "0"]);
    assert_eq!(
        refused,
        Frame::error("ERR too many blocked clients through the proxy (2); try again later"),
        "past --max-blocking-connections"
    );
    // The shared connections are not held up by the blocked ones.
    assert_eq!(third.call(&["LPUSH", "{q}a", "x"]), Frame::Integer(1));
    assert_eq!(first.read_frame(), array(&[bulk("{q}a"), bulk("x")]));
    // A permit is free again.
    send(&mut third, &["BLPOP", "{q}c", "5"]);
    assert_eq!(Conn::connect(&addr).call(&["RPUSH", "{q}c", "y"]), Frame::Integer(1));
    assert_eq!(third.read_frame(), array(&[bulk("{q}c"), bulk("y")]));
    assert_eq!(Conn::connect(&addr).call(&["RPUSH", "{q}b", "z"]), Frame::Integer(1));
    assert_eq!(second.read_frame(), array(&[bulk("{q}b"), bulk("z")]));
}

#[test]
fn a_client_that_leaves_while_blocked_leaves_no_blocked_connection() {
    let cluster = cluster();
    let addr = cluster.proxy.addr();
    let mut leaving = Conn::connect(&addr);
    send(&mut leaving, &["BLPOP", "{gone}q", "0"]);
    assert!(wait_until(SETTLE, || backend_clients(&cluster, "blocked_clients") == 1), "BLPOP never blocked");
    drop(leaving);
    assert!(
        wait_until(SETTLE, || backend_clients(&cluster, "blocked_clients") == 0),
        "the blocked server connection outlived its client"
    );
    // Nobody pops what is pushed now, and the permit came back.
    let mut conn = Conn::connect(&addr);
    assert_eq!(conn.call(&["RPUSH", "{gone}q", "v"]), Frame::Integer(1));
    assert_eq!(conn.call(&["LLEN", "{gone}q"]), Frame::Integer(1));
    for _ in 0..3 {
        assert_eq!(conn.call(&["BLPOP", "{gone}empty", "0.01"]), Frame::NullArray);
    }
}

#[test]
fn watch_aborts_exec_when_another_client_touches_the_key() {
    let cluster = cluster();
    let addr = cluster.proxy.addr();
    let mut conn = Conn::connect(&addr);
    let mut other = Conn::connect(&addr);
    assert_eq!(conn.call(&["WATCH", "{w}a", "{w}b"]), Frame::simple("OK"));
    assert_eq!(other.call(&["SET", "{w}b", "theirs"]), Frame::simple("OK"));
    assert_eq!(conn.call(&["MULTI"]), Frame::simple("OK"));
    assert_eq!(conn.call(&["SET", "{w}a", "mine"]), Frame::simple("QUEUED"));
    assert_eq!(conn.call(&["EXEC"]), Frame::NullArray, "EXEC after a watched key changed");
    assert_eq!(conn.call(&["GET", "{w}a"]), Frame::Null);

    // EXEC released the pin: untouched, the next transaction runs.
    assert_eq!(conn.call(&["WATCH", "{w}a"]), Frame::simple("OK"));
    assert_eq!(conn.call(&["MULTI"]), Frame::simple("OK"));
    assert_eq!(conn.call(&["SET", "{w}a", "mine"]), Frame::simple("QUEUED"));
    assert_eq!(conn.call(&["EXEC"]), array(&[Frame::simple("OK")]));

    // Watched keys on two servers cannot be watched by one connection.
    let keys = e2e::keys_on_each_server(&ring_of(&cluster), "w:", 2);
    match conn.call(&["WATCH", &keys[0], &keys[1]]) {
        Frame::Error(text) => assert!(text.starts_with(b"CROSSSLOT"), "{}", String::from_utf8_lossy(&text)),
        other => panic!("WATCH over two servers answered {other:?}"),
    }
    // A key of another server queued after WATCH aborts the transaction.
    assert_eq!(conn.call(&["WATCH", &keys[0]]), Frame::simple("OK"));
    assert_eq!(conn.call(&["MULTI"]), Frame::simple("OK"));
    assert!(conn.call(&["SET", &keys[1], "x"]).is_error());
    assert!(matches!(conn.call(&["EXEC"]), Frame::Error(text) if text.starts_with(b"EXECABORT")));
    assert_eq!(conn.call(&["GET", &keys[1]]), Frame::Null);
}

/// The proxy's ring (its default 3 virtual nodes per server).
fn ring_of(cluster: &Cluster) -> ring::HashRing {
    let mut ring = ring::HashRing::new(3);
    let addrs = cluster.addrs();
    ring.add_all(addrs.iter().map(String::as_str));
    ring
}

#[test]
fn subscriptions_over_several_servers_look_like_one_redis() {
    let cluster = cluster();
    let addr = cluster.proxy.addr();
    let mut sub = Conn::connect(&addr);
    let mut publisher = Conn::connect(&addr);
    let channels = e2e::keys_on_each_server(&ring_of(&cluster), "ch:", 3);
    for channel in &channels {
        assert_eq!(publisher.call(&["PUBLISH", channel, "nobody"]), Frame::Integer(0));
    }
    // The backends' clients with the shared connections open: what is left at the end.
    let before = backend_clients(&cluster, "connected_clients");
    let mut subscribe = vec!["SUBSCRIBE"];
    subscribe.extend(channels.iter().map(String::as_str));
    send(&mut sub, &subscribe);
    for (i, channel) in channels.iter().enumerate() {
        assert_eq!(sub.read_frame(), array(&[bulk("subscribe"), bulk(channel), Frame::Integer(i as i64 + 1)]));
    }
    assert_eq!(sub.call(&["PSUBSCRIBE", "ch:*"]), array(&[bulk("psubscribe"), bulk("ch:*"), Frame::Integer(4)]));
    // Each message once per subscription, wherever its channel lives.
    for channel in &channels {
        assert_eq!(publisher.call(&["PUBLISH", channel, "m"]), Frame::Integer(2));
        assert_eq!(sub.read_frame(), array(&[bulk("message"), bulk(channel), bulk("m")]));
        assert_eq!(sub.read_frame(), array(&[bulk("pmessage"), bulk("ch:*"), bulk(channel), bulk("m")]));
    }
    assert!(matches!(sub.call(&["GET", "k"]), Frame::Error(text) if text.starts_with(b"ERR Can't execute 'get'")));
    assert_eq!(sub.call(&["PING"]), array(&[bulk("pong"), bulk("")]));
    send(&mut sub, &["UNSUBSCRIBE"]);
    // Every channel, in no promised order, with the count going down (the pattern stays).
    let gone: Vec<Frame> = (0..3).map(|_| sub.read_frame()).collect();
    let counts: Vec<i64> = gone.iter().map(count_of).collect();
    assert_eq!(counts, [3, 2, 1], "{gone:?}");
    assert_eq!(sub.call(&["UNSUBSCRIBE"]), array(&[bulk("unsubscribe"), Frame::Null, Frame::Integer(1)]));
    assert_eq!(sub.call(&["PUNSUBSCRIBE"]), array(&[bulk("punsubscribe"), bulk("ch:*"), Frame::Integer(0)]));
    // Out of subscribed mode: an ordinary connection again, and nobody listens any more.
    assert_eq!(sub.call(&["PING"]), Frame::simple("PONG"));
    assert_eq!(publisher.call(&["PUBLISH", &channels[0], "m"]), Frame::Integer(0));
    assert!(
        wait_until(SETTLE, || backend_clients(&cluster, "connected_clients") <= before),
        "subscriber connections outlived the subscriptions"
    );
}

fn count_of(frame: &Frame) -> i64 {
    match frame {
        Frame::Array(items) => match items.last() {
            Some(Frame::Integer(n)) => *n,
            _ => -1,
        },
        _ => -1,
    }
}
