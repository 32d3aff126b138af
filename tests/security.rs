//! Keeping strangers out: `--requirepass` with Redis's texts (compared with a real
//! redis-server), the proxy's `--admin-password`, the proxy authenticating to its servers
//! (`--server-password`), protected mode, and throttled AUTH failures.

use std::time::Duration;

use e2e::{proxy, server, Conn, Process};
use resp::Frame;

const PASSWORD: &str = "s3cret-pw";

/// A real redis-server with `extra` flags.
fn redis_with(extra: &[&str]) -> Process {
    assert!(e2e::have("redis-server"), "redis-server is not installed");
    launch::redis_server_with(None, extra).unwrap_or_else(|e| panic!("redis-server: {e}"))
}

/// The reply's text, for comparing errors across implementations.
fn shown(frame: &Frame) -> String {
    match frame {
        Frame::Simple(t) => format!("+{}", String::from_utf8_lossy(t)),
        Frame::Error(t) => format!("-{}", String::from_utf8_lossy(t)),
        Frame::Array(items) => format!("array of {}", items.len()),
        other => format!("{other:?}"),
    }
}

/// The replies of `requests`, sent one after the other on one connection to `addr`.
fn replies(addr: &str, requests: &[&[&str]]) -> Vec<String> {
    let mut c = Conn::connect(addr);
    requests.iter().map(|r| shown(&c.call(r))).collect()
}

#[test]
fn auth_texts_match_redis() {
    let redis = redis_with(&["--requirepass", PASSWORD]);
    let ours = server("cache-A", &["--no-greeting", "--requirepass", PASSWORD]);
    let proxy = proxy(&[ours.addr()], &["--no-greeting", "--requirepass", PASSWORD, "--server-password", PASSWORD]);
    let session: &[&[&str]] = &[
        &["GET", "k"],
        &["PING"],
        &["AUTH", "wrong"],
        &["AUTH", "default", "wrong"],
        &["AUTH", "nobody", PASSWORD],
        &["AUTH", "a", "b", "c"],
        &["HELLO", "2"],
        &["HELLO", "2", "AUTH", "default", "wrong"],
        &["HELLO", "2", "AUTH"],
        &["GET", "k"],
        &["AUTH", PASSWORD],
        &["AUTH", "default", PASSWORD],
        &["PING"],
        &["SET", "k", "v"],
        &["GET", "k"],
    ];
    let expected = replies(&redis.addr(), session);
    assert_eq!(expected[0], "-NOAUTH Authentication required.");
    assert_eq!(expected[2], "-WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(replies(&ours.addr(), session), expected, "server");
    assert_eq!(replies(&proxy.addr(), session), expected, "proxy");

    // HELLO ... AUTH authenticates and answers HELLO.
    let hello: &[&[&str]] = &[&["HELLO", "2", "AUTH", "default", PASSWORD], &["PING"]];
    let expected = replies(&redis.addr(), hello);
    assert_eq!(expected, ["array of 14", "+PONG"]);
    assert_eq!(replies(&ours.addr(), hello), expected, "server");
    assert_eq!(replies(&proxy.addr(), hello), expected, "proxy");

    // The seed's nc session, with a password: NOAUTH until AUTH, then as before.
    let mut s = Conn::connect(&proxy.addr());
    s.exchange("GET user:1", &["-NOAUTH Authentication required."]);
    s.exchange(&format!("AUTH {PASSWORD}"), &["+OK"]);
    s.exchange("SET user:1 Alice", &["+OK"]);
    s.exchange("GET user:1", &["$5", "Alice"]);
}

#[test]
fn without_a_password_auth_answers_as_redis_does() {
    let redis = redis_with(&[]);
    let ours = server("cache-A", &["--no-greeting"]);
    let proxy = proxy(&[ours.addr()], &["--no-greeting"]);
    let session: &[&[&str]] =
        &[&["AUTH", "x"], &["AUTH", "default", "x"], &["AUTH", "other", "x"], &["AUTH", "a", "b", "c"], &["PING"]];
    let expected = replies(&redis.addr(), session);
    assert!(expected[0].starts_with("-ERR AUTH <password> called without any password configured"), "{expected:?}");
    assert_eq!(replies(&ours.addr(), session), expected, "server");
    assert_eq!(replies(&proxy.addr(), session), expected, "proxy");
    // The seed's nc session needs no flag.
    let seed = e2e::proxy(&[], &[]);
    let mut s = Conn::connect_greeted(&seed.addr(), "+OK proxy ready (type HELP for commands)");
    s.exchange("PING", &["+PONG"]);
}

#[test]
fn ring_and_destructive_commands_need_the_admin_password() {
    let (a, b) = (server("cache-A", &[]), server("cache-B", &[]));
    let proxy = proxy(&[a.addr()], &["--no-greeting", "--requirepass", PASSWORD, "--admin-password", "root-pw"]);
    let mut c = Conn::connect(&proxy.addr());
    assert_eq!(shown(&c.call(&["FLUSHALL"])), "-NOAUTH Authentication required.");
    assert_eq!(c.call(&["AUTH", PASSWORD]), Frame::simple("OK"));
    assert_eq!(c.call(&["SET", "k", "v"]), Frame::simple("OK"));
    for command in [
        &["FLUSHALL"][..],
        &["FLUSHDB"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["ADD_SERVER", &b.addr()],
        &["REMOVE_SERVER", &a.addr()],
        &["REBALANCE"],
    ] {
        let reply = shown(&c.call(command));
        assert!(reply.starts_with("-NOPERM ") && reply.contains("AUTH admin <password>"), "{command:?}: {reply}");
    }
    assert_eq!(c.call(&["GET", "k"]), e2e::bulk("v"), "nothing was erased");
    assert_eq!(
        shown(&c.call(&["AUTH", "admin", "wrong"])),
        "-WRONGPASS invalid username-password pair or user is disabled."
    );
    // AUTH and a ring command in one pipeline: the ring command sees the AUTH.
    let replies = c.pipeline(&[vec!["AUTH", "admin", "root-pw"], vec!["ADD_SERVER", &b.addr()]]);
    assert_eq!(replies, [Frame::simple("OK"), Frame::simple(format!("OK added {}", b.addr()))]);
    assert_eq!(c.call(&["FLUSHALL"]), Frame::simple("OK"));
    // An admin connection is authenticated too.
    let mut admin = Conn::connect(&proxy.addr());
    assert_eq!(admin.call(&["AUTH", "admin", "root-pw"]), Frame::simple("OK"));
    assert_eq!(admin.call(&["DBSIZE"]), Frame::Integer(0));
}

#[test]
fn failed_auths_are_throttled_then_the_connection_is_closed() {
    let ours = server("cache-A", &["--no-greeting", "--requirepass", PASSWORD]);
    let proxy = proxy(&[ours.addr()], &["--no-greeting", "--requirepass", PASSWORD, "--server-password", PASSWORD]);
    for addr in [ours.addr(), proxy.addr()] {
        let mut c = Conn::connect(&addr);
        let started = std::time::Instant::now();
        for _ in 0..10 {
            assert_eq!(
                shown(&c.call(&["AUTH", "guess"])),
                "-WRONGPASS invalid username-password pair or user is disabled."
            );
        }
        assert!(c.is_closed(), "{addr}: closed after ten wrong passwords");
        if addr == proxy.addr() {
            assert!(started.elapsed() >= Duration::from_millis(1500), "the proxy slows guesses down");
        }
        // A new connection may still log in.
        let mut c = Conn::connect(&addr);
        assert_eq!(c.call(&["AUTH", PASSWORD]), Frame::simple("OK"));
    }
}

#[test]
fn the_proxy_authenticates_to_password_protected_redis_servers() {
    let (a, b) = (redis_with(&["--requirepass", PASSWORD]), redis_with(&["--requirepass", PASSWORD]));
    let front = proxy(&[a.addr(), b.addr()], &["--no-greeting", "--server-password", PASSWORD]);
    let mut c = Conn::connect(&front.addr());
    for i in 0..20 {
        assert_eq!(c.call(&["SET", &format!("k{i}"), "v"]), Frame::simple("OK"));
    }
    assert_eq!(c.call(&["DBSIZE"]), Frame::Integer(20), "both servers took keys");
    // Without the password the servers refuse the proxy, and the client is told why.
    let blind = proxy(&[a.addr()], &["--no-greeting"]);
    let reply = shown(&Conn::connect(&blind.addr()).call(&["GET", "k1"]));
    assert!(reply.starts_with("-ERR") && reply.contains("NOAUTH"), "{reply}");
    let wrong = proxy(&[a.addr()], &["--no-greeting", "--server-password", "nope"]);
    let reply = shown(&Conn::connect(&wrong.addr()).call(&["GET", "k1"]));
    assert!(reply.contains("AUTH refused: WRONGPASS"), "{reply}");
}

/// Everything the peer sends until it closes (bounded by the read timeout).
fn read_to_close(mut stream: std::net::TcpStream, send: &[u8]) -> String {
    use std::io::{Read, Write};
    let _ = stream.write_all(send);
    let mut text = Vec::new();
    let _ = stream.read_to_end(&mut text);
    String::from_utf8_lossy(&text).into_owned()
}

#[test]
fn protected_mode_refuses_clients_beyond_loopback_without_a_password() {
    let redis = redis_with(&["--bind", "0.0.0.0"]);
    let redis_says = read_to_close(e2e::connect_from_127_0_0_2(redis.port), b"PING\r\n");
    assert!(redis_says.starts_with("-DENIED Redis is running in protected mode"), "{redis_says}");

    let open = ["--bind", "0.0.0.0", "--no-greeting"];
    let ours = server("cache-A", &open);
    let front = proxy(&[], &open);
    for p in [&ours, &front] {
        assert!(
            p.wait_for_log("listening beyond loopback without --requirepass", e2e::REPLY_TIMEOUT),
            "{:?}",
            p.logs()
        );
        let said = read_to_close(e2e::connect_from_127_0_0_2(p.port), b"PING\r\n");
        assert!(said.starts_with("-DENIED ") && said.contains("--protected-mode no") && said.contains("--requirepass"));
        assert!(said.ends_with("\r\n") && !said.contains("PONG"), "{said}");
        // Loopback itself is served.
        assert_eq!(Conn::connect(&p.addr()).call(&["PING"]), Frame::simple("PONG"));
    }
    // A password, or --protected-mode no, serves the client.
    let with_password = server("cache-B", &["--bind", "0.0.0.0", "--no-greeting", "--requirepass", PASSWORD]);
    let said = read_to_close(e2e::connect_from_127_0_0_2(with_password.port), b"PING\r\nQUIT\r\n");
    assert!(said.starts_with("-NOAUTH"), "{said}");
    let unprotected = proxy(&[], &["--bind", "0.0.0.0", "--no-greeting", "--protected-mode", "no"]);
    let said = read_to_close(e2e::connect_from_127_0_0_2(unprotected.port), b"PING\r\nQUIT\r\n");
    assert_eq!(said, "+PONG\r\n+BYE\r\n");
}

#[test]
fn add_server_checks_what_it_adds() {
    let live = server("cache-A", &[]);
    let locked = redis_with(&["--requirepass", PASSWORD]);
    let front = proxy(&[], &["--no-greeting", "--connect-timeout-ms", "500"]);
    let mut c = Conn::connect(&front.addr());
    let port = front.port;
    for own in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("0.0.0.0:{port}")] {
        assert_eq!(shown(&c.call(&["ADD_SERVER", &own])), format!("-ERR {own} is this proxy's own address"));
        assert_eq!(shown(&c.call(&["ADD_SERVER", &own, "FORCE"])), format!("-ERR {own} is this proxy's own address"));
    }
    let dead = format!("127.0.0.1:{}", e2e::free_port());
    let reply = shown(&c.call(&["ADD_SERVER", &dead]));
    assert!(
        reply.starts_with(&format!("-ERR {dead} did not answer, so it was not added (connect to {dead}: ")),
        "{reply}"
    );
    let reply = shown(&c.call(&["ADD_SERVER", &locked.addr()]));
    assert!(reply.contains("NOAUTH"), "a server that wants a password is named as such: {reply}");
    assert_eq!(c.call(&["SERVERS"]), Frame::Array(vec![]), "nothing was added");
    assert_eq!(c.call(&["ADD_SERVER", &dead, "FORCE"]), Frame::simple(format!("OK added {dead}")));
    assert_eq!(c.call(&["ADD_SERVER", &live.addr()]), Frame::simple(format!("OK added {}", live.addr())));
}

#[test]
fn the_proxy_remembers_its_ring_across_a_kill() {
    let (a, b, c) = (server("cache-A", &[]), server("cache-B", &[]), server("cache-C", &[]));
    let dir = std::env::temp_dir().join(format!("proxy-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("ring.json");
    let _ = std::fs::remove_file(&file);
    let path = file.to_string_lossy().into_owned();
    let flags = ["--no-greeting", "--state-file", path.as_str()];
    let mut first = proxy(&[c.addr()], &flags);
    let mut conn = Conn::connect(&first.addr());
    assert_eq!(conn.call(&["REMOVE_SERVER", &c.addr()]), Frame::simple(format!("OK removed {}", c.addr())));
    assert_eq!(conn.call(&["ADD_SERVER", &a.addr()]), Frame::simple(format!("OK added {}", a.addr())));
    assert_eq!(conn.call(&["ADD_SERVER", &b.addr(), "3"]), Frame::simple(format!("OK added {}", b.addr())));
    let servers = conn.call(&["SERVERS"]);
    let keys: Vec<String> = (0..30).map(|i| format!("user:{i}")).collect();
    let routes: Vec<Frame> = keys.iter().map(|k| conn.call(&["ROUTE", k])).collect();
    for key in &keys {
        assert_eq!(conn.call(&["SET", key, key]), Frame::simple("OK"));
    }
    first.kill().expect("kill -9");

    // Restarted from the file alone; --servers would be ignored in its favour.
    let second = proxy(&[c.addr()], &flags);
    assert!(second.wait_for_log("ring loaded from the state file", e2e::REPLY_TIMEOUT), "{:?}", second.logs());
    let mut conn = Conn::connect(&second.addr());
    assert_eq!(conn.call(&["SERVERS"]), servers);
    assert!(matches!(&servers, Frame::Array(list) if list.len() == 2));
    for (key, route) in keys.iter().zip(&routes) {
        assert_eq!(&conn.call(&["ROUTE", key]), route, "{key}");
        assert_eq!(conn.call(&["GET", key]), e2e::bulk(key), "{key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
