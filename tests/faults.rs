//! Holding under faults (issue 11): large requests parsed in linear time, clean shutdown
//! with every received request answered, request and idle timeouts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use e2e::{have, proxy, redis_server, server, Process};

/// Arguments in the big request: Redis's limit, 1024 * 1024, the command name included
/// (`proto-max-multibulk-len` counts every element).
const BIG_ARGS: usize = 1024 * 1024;

/// `MGET k k k ...` with `BIG_ARGS - 1` keys, as one multibulk request.
fn big_mget() -> Vec<u8> {
    let mut request = format!("*{BIG_ARGS}\r\n$4\r\nMGET\r\n").into_bytes();
    for _ in 1..BIG_ARGS {
        request.extend_from_slice(b"$1\r\nk\r\n");
    }
    request
}

/// Sends `request` to `addr` in 16 KiB writes and reads the whole reply to `MGET` of missing
/// keys; the time from the first byte sent to the last byte received.
fn time_big_mget(addr: &str, request: &[u8]) -> Duration {
    let keys = BIG_ARGS - 1;
    let header = format!("*{keys}\r\n");
    let expected = header.len() + keys * b"$-1\r\n".len();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    let started = Instant::now();
    let received = std::thread::scope(|scope| {
        let reading = scope.spawn(move || {
            let mut reply = Vec::with_capacity(expected);
            let mut chunk = vec![0u8; 64 * 1024];
            while reply.len() < expected {
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => reply.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("{addr}: reading the reply: {e}"),
                }
            }
            reply
        });
        for piece in request.chunks(16 * 1024) {
            stream.write_all(piece).expect("write");
        }
        reading.join().expect("reader thread")
    });
    let elapsed = started.elapsed();
    assert_eq!(received.len(), expected, "{addr}: whole reply");
    assert!(received.starts_with(header.as_bytes()), "{addr}: reply header");
    assert!(received[header.len()..].chunks(5).all(|c| c == b"$-1\r\n"), "{addr}: every key missing");
    elapsed
}

#[test]
fn a_million_arguments_are_parsed_in_linear_time() {
    let request = big_mget();
    let ours = server("cache-A", &["--no-greeting"]);
    let front = proxy(&[ours.addr()], &["--no-greeting"]);
    let redis: Option<Process> = have("redis-server").then(redis_server);
    let mut report = Vec::new();
    for (name, target) in [("server", Some(&ours)), ("proxy", Some(&front)), ("redis-server", redis.as_ref())] {
        let Some(target) = target else { continue };
        let elapsed = time_big_mget(&target.addr(), &request);
        eprintln!("{name}: MGET of {} keys in {elapsed:?}", BIG_ARGS - 1);
        report.push((name, elapsed));
    }
    // Rescanning a partial request on every read took the server 2.7 s in a release build,
    // far longer unoptimised; linear parsing took 1 s (server) and 1.7 s (proxy) in a debug
    // build. The bounds leave room for a machine shared with compilers.
    let bound = if cfg!(debug_assertions) { Duration::from_secs(15) } else { Duration::from_secs(3) };
    // Optimised, the issue's target holds: within twice redis-server's time (plus slack for
    // a busy machine). Measured here: server 0.36 s, proxy 0.52 s, redis-server 0.16-0.36 s.
    if let (false, Some(&(_, redis))) = (cfg!(debug_assertions), report.get(2)) {
        let bound = redis * 2 + Duration::from_secs(1);
        for (name, elapsed) in &report[..2] {
            assert!(*elapsed < bound, "{name} took {elapsed:?}, over 2x redis-server; all: {report:?}");
        }
    }
    for (name, elapsed) in &report[..2] {
        assert!(*elapsed < bound, "{name} took {elapsed:?} (bound {bound:?}); all: {report:?}");
    }
}

/// `n` pipelined `SET key:i value-i` requests as one buffer.
fn pipelined_sets(n: usize) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    for i in 0..n {
        resp::write::command(&mut out, &["SET".to_string(), format!("key:{i}"), format!("value-{i}")]);
    }
    out.to_vec()
}

/// Reads everything until EOF (bounded by the stream's read timeout).
fn read_to_eof(stream: &mut TcpStream, name: &str) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("{name}: reading after {} bytes: {e}", received.len()),
        }
    }
}

/// SIGTERM right after a client wrote 1,000 pipelined SETs: every one is answered, then the
/// connection closes and the process exits 0, for the server and for the proxy in front of it.
#[test]
fn sigterm_answers_every_request_already_sent() {
    const SETS: usize = 1000;
    let requests = pipelined_sets(SETS);
    for signal in ["TERM", "INT"] {
        for binary in ["server", "proxy"] {
            let backend = server("cache-A", &["--no-greeting"]);
            let front = proxy(&[backend.addr()], &["--no-greeting"]);
            let (mut target, name) = match binary {
                "server" => (backend, "server"),
                _ => (front, "proxy"),
            };
            let mut stream = TcpStream::connect(target.addr()).expect("connect");
            stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
            stream.write_all(&requests).expect("write");
            let started = Instant::now();
            let status = target.stop_with(signal, Duration::from_secs(10)).expect("signal");
            let status = status.unwrap_or_else(|| panic!("{name} did not exit on SIG{signal}"));
            assert!(status.success(), "{name} exited with {status} on SIG{signal}");
            let received = read_to_eof(&mut stream, name);
            assert_eq!(received, b"+OK\r\n".repeat(SETS), "{name}: replies before EOF on SIG{signal}");
            assert!(
                target.logs().iter().any(|l| l.contains("shutting down") && l.contains(&format!("SIG{signal}"))),
                "{name} logs the signal: {:?}",
                target.logs()
            );
            eprintln!("{name}: SIG{signal} -> {SETS} replies and exit 0 in {:?}", started.elapsed());
        }
    }
}

/// A client that never reads holds a shutdown up only until `--shutdown-timeout`; a second
/// signal ends it at once.
#[test]
fn a_stuck_client_delays_shutdown_only_until_the_timeout_or_a_second_signal() {
    let flags = ["--no-greeting", "--shutdown-timeout", "2"];
    for (binary, second_signal) in [("server", false), ("server", true), ("proxy", false), ("proxy", true)] {
        let backend = server("cache-A", &flags);
        let front = proxy(&[backend.addr()], &flags);
        let (mut target, _other) = if binary == "server" { (backend, front) } else { (front, backend) };
        let mut setup = TcpStream::connect(target.addr()).expect("connect");
        let value = vec![b'v'; 64 * 1024];
        let mut set = bytes::BytesMut::new();
        resp::write::command(&mut set, &[&b"SET"[..], b"big", &value]);
        setup.write_all(&set).expect("write");
        let mut ok = [0u8; 5];
        setup.read_exact(&mut ok).expect("SET reply");
        // 64 MiB of replies that nobody reads: the server's output to this client stays full.
        let stuck = TcpStream::connect(target.addr()).expect("connect");
        let mut gets = bytes::BytesMut::new();
        for _ in 0..1000 {
            resp::write::command(&mut gets, &["GET", "big"]);
        }
        (&stuck).write_all(&gets).expect("write");
        let started = Instant::now();
        let status = if second_signal {
            target.signal("TERM").expect("first signal");
            assert!(target.wait_for_log("shutting down", Duration::from_secs(10)), "first signal logged");
            target.stop_with("TERM", Duration::from_secs(10)).expect("second signal")
        } else {
            target.stop_with("TERM", Duration::from_secs(10)).expect("signal")
        };
        let status = status.expect("the server exits");
        let elapsed = started.elapsed();
        if second_signal {
            assert_eq!(status.code(), Some(1), "{binary}: a second signal exits at once with status 1");
            assert!(elapsed < Duration::from_millis(1500), "{binary}: second signal took {elapsed:?}");
        } else {
            assert!(status.success(), "{binary}: exit {status} after the shutdown timeout");
            assert!(elapsed >= Duration::from_millis(1500), "{binary}: gave up early: {elapsed:?}");
            assert!(elapsed < Duration::from_secs(6), "{binary}: shutdown took {elapsed:?}");
        }
        drop(stuck);
    }
}

/// Sends SIGCONT to a process stopped with SIGSTOP when dropped, also when a test fails.
struct Resume<'a>(&'a Process);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        let _ = self.0.signal("CONT");
    }
}

/// A key that `ring` places on `addr`.
fn key_on(ring: &ring::HashRing, addr: &str) -> String {
    (0..100_000)
        .map(|i| format!("key:{i}"))
        .find(|key| ring.get(key.as_bytes()) == Some(addr))
        .unwrap_or_else(|| panic!("no key on {addr}"))
}

/// A hung server (SIGSTOP) answers `-ERR ... timed out` after `--server-timeout-ms`, while
/// keys on the other server answer at once; after SIGCONT its keys work again.
#[test]
fn a_hung_server_times_out_without_blocking_the_others() {
    if !have("redis-server") {
        eprintln!("skipped: redis-server is not installed");
        return;
    }
    const TIMEOUT_MS: u64 = 300;
    let hung = redis_server();
    let healthy = redis_server();
    // Health checks rare enough that the hung server stays in the ring during the test.
    let timeout = TIMEOUT_MS.to_string();
    let front = proxy(
        &[hung.addr(), healthy.addr()],
        &["--no-greeting", "--server-timeout-ms", &timeout, "--health-interval-ms", "60000"],
    );
    let mut ring = ring::HashRing::new(3);
    ring.add(&hung.addr());
    ring.add(&healthy.addr());
    let (hung_key, healthy_key) = (key_on(&ring, &hung.addr()), key_on(&ring, &healthy.addr()));
    let mut client = e2e::Conn::connect(&front.addr());
    assert_eq!(client.call(&["SET", &hung_key, "v1"]), resp::Frame::simple("OK"));

    hung.signal("STOP").expect("SIGSTOP");
    let _resume = Resume(&hung);
    let mut other = e2e::Conn::connect(&front.addr());
    let started = Instant::now();
    client.send_raw(&{
        let mut out = bytes::BytesMut::new();
        resp::write::command(&mut out, &["GET", &hung_key]);
        out
    });
    // While the GET waits on the hung server, another client's keys answer at once.
    for _ in 0..5 {
        let asked = Instant::now();
        assert_eq!(other.call(&["SET", &healthy_key, "x"]), resp::Frame::simple("OK"));
        assert!(asked.elapsed() < Duration::from_millis(TIMEOUT_MS / 2), "blocked: {:?}", asked.elapsed());
    }
    let expected = format!("ERR server {} timed out after {TIMEOUT_MS} ms", hung.addr());
    assert_eq!(client.read_frame(), resp::Frame::error(expected.clone()));
    let waited = started.elapsed();
    eprintln!("GET on a hung server: {expected:?} after {waited:?}");
    assert!(waited >= Duration::from_millis(TIMEOUT_MS - 20), "answered early: {waited:?}");
    assert!(waited < Duration::from_millis(TIMEOUT_MS + 2000), "answered late: {waited:?}");
    // The same client's requests to the healthy server work at once too.
    assert_eq!(client.call(&["GET", &healthy_key]), e2e::bulk("x"));

    hung.signal("CONT").expect("SIGCONT");
    // A fresh connection: the timed-out one was dropped, its late reply never delivered.
    assert!(
        e2e::wait_until(Duration::from_secs(10), || client.call(&["GET", &hung_key]) == e2e::bulk("v1")),
        "the server answers again after SIGCONT"
    );
}

/// `--timeout 1` closes a client that sends nothing for a second, and keeps one that does.
#[test]
fn idle_clients_are_closed_after_the_timeout() {
    let backend = server("cache-A", &["--no-greeting", "--timeout", "1"]);
    let front = proxy(&[backend.addr()], &["--no-greeting", "--timeout", "1"]);
    for target in [&backend, &front] {
        let mut idle = e2e::Conn::connect(&target.addr());
        let mut busy = e2e::Conn::connect(&target.addr());
        assert_eq!(idle.call(&["PING"]), resp::Frame::simple("PONG"));
        let started = Instant::now();
        // The busy client keeps talking for twice the timeout.
        while started.elapsed() < Duration::from_secs(2) {
            assert_eq!(busy.call(&["PING"]), resp::Frame::simple("PONG"), "{}: busy client", target.addr());
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(idle.is_closed(), "{}: the idle client is closed", target.addr());
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(4), "{}: closed after {waited:?}", target.addr());
        assert_eq!(busy.call(&["PING"]), resp::Frame::simple("PONG"));
    }
    // Without the flag nobody is closed for idling (checked over a short wait).
    let patient = server("cache-B", &["--no-greeting"]);
    let mut c = e2e::Conn::connect(&patient.addr());
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.call(&["PING"]), resp::Frame::simple("PONG"));
}

/// Keys and values with control bytes are logged escaped, as redis-cli shows them, so a log
/// stays one line per command and plain text.
#[test]
fn logs_escape_non_printable_bytes() {
    let target = server("cache-A", &["--no-greeting", "--log-requests"]);
    let mut c = e2e::Conn::connect(&target.addr());
    assert_eq!(c.call(&[&b"SET"[..], b"a\0b\nc", b"x\ty\"\x7f"]), resp::Frame::simple("OK"));
    assert_eq!(c.call(&[&b"GET"[..], b"a\0b\nc"]), resp::Frame::bulk(&b"x\ty\"\x7f"[..]));
    let set = r#"[cache-A] SET a\x00b\nc = x\ty\"\x7f"#;
    let get = r#"[cache-A] GET a\x00b\nc -> x\ty\"\x7f"#;
    for line in [set, get] {
        assert!(target.wait_for_log(line, Duration::from_secs(10)), "{line} in {:?}", target.logs());
    }
    assert!(target.logs().iter().all(|l| !l.contains('\0')), "a raw NUL reached the log");
}

/// A bad `--servers` address is a command-line error naming the value and the flag, not a
/// protocol reply.
#[test]
fn a_bad_server_address_is_a_command_line_error() {
    let output = std::process::Command::new(e2e::binary("proxy"))
        .args(["--port", "0", "--servers", "127.0.0.1:6381,bogus"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run the proxy");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exit status {}", output.status);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("'bogus'") && stderr.contains("--servers"), "{stderr}");
    assert!(stderr.contains("invalid server address"), "{stderr}");
    assert!(!stderr.contains("ERR"), "a protocol prefix in a command-line message: {stderr}");
}
