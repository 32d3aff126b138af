//! Bad and oversized input: a clear -ERR, the connection closed when the stream cannot be
//! trusted any more, memory bounded, and the process still serving everyone else.

use e2e::{proxy, server, start, Conn, Process};
use resp::Frame;

/// A server and a proxy with small limits, both without greeting.
fn targets() -> (Process, Process) {
    targets_with(&["--no-greeting", "--max-inline-len", "1024", "--max-bulk-len", "4096", "--max-args", "16"])
}

/// A server and a proxy in front of it, both started with `flags`.
fn targets_with(flags: &[&str]) -> (Process, Process) {
    let server = server("cache-A", flags);
    let proxy = proxy(&[server.addr()], flags);
    (server, proxy)
}

fn for_both(check: impl Fn(&Process)) {
    let (server, proxy) = targets();
    check(&server);
    check(&proxy);
}

#[test]
fn an_inline_line_over_the_limit_is_refused_and_closed() {
    for_both(|target| {
        let mut c = Conn::connect(&target.addr());
        // 64 KiB without a newline: refused once past the 1 KiB limit, not buffered.
        c.send_raw(&vec![b'a'; 64 * 1024]);
        assert_eq!(c.read_frame(), Frame::error("ERR Protocol error: too big inline request"));
        assert!(c.is_closed());
        let mut other = Conn::connect(&target.addr());
        assert_eq!(other.call(&["PING"]), Frame::simple("PONG"));
    });
}

#[test]
fn a_bulk_over_the_limit_is_refused_before_it_arrives() {
    for_both(|target| {
        let mut c = Conn::connect(&target.addr());
        c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1000000000\r\n");
        assert_eq!(c.read_frame(), Frame::error("ERR Protocol error: invalid bulk length"));
        assert!(c.is_closed());
    });
}

#[test]
fn too_many_arguments_are_refused() {
    for_both(|target| {
        let mut c = Conn::connect(&target.addr());
        c.send_raw(b"*100000\r\n");
        assert_eq!(c.read_frame(), Frame::error("ERR Protocol error: invalid multibulk length"));
        assert!(c.is_closed());
    });
}

#[test]
fn malformed_requests_get_protocol_errors_after_earlier_replies() {
    for_both(|target| {
        let mut c = Conn::connect(&target.addr());
        // A good request, then garbage in the same packet: the good one is answered first.
        c.send_raw(b"PING\r\n*1\r\n+PING\r\n");
        assert_eq!(c.read_frame(), Frame::simple("PONG"));
        assert_eq!(c.read_frame(), Frame::error("ERR Protocol error: expected '$', got '+'"));
        assert!(c.is_closed());
        let mut q = Conn::connect(&target.addr());
        q.send_raw(b"GET \"unterminated\r\n");
        assert_eq!(q.read_frame(), Frame::error("ERR Protocol error: unbalanced quotes in request"));
    });
}

#[test]
fn wrong_arguments_keep_the_connection() {
    for_both(|target| {
        let mut c = Conn::connect(&target.addr());
        assert_eq!(c.call(&["GET"]), Frame::error("ERR wrong number of arguments for 'get' command"));
        assert_eq!(
            c.call(&["SET", "k", "v", "EX", "nope"]),
            Frame::error("ERR value is not an integer or out of range")
        );
        assert_eq!(c.call(&["SET", "k", "v", "EX", "0"]), Frame::error("ERR invalid expire time in 'set' command"));
        assert_eq!(c.call(&["SET", "k", "v", "BOGUS"]), Frame::error("ERR syntax error"));
        assert_eq!(c.call(&["MSET", "a", "1", "b"]), Frame::error("ERR wrong number of arguments for 'mset' command"));
        assert_eq!(c.call(&["PING"]), Frame::simple("PONG"));
    });
}

#[test]
fn clients_beyond_the_limit_are_refused() {
    for binary in ["server", "proxy"] {
        let target = start(binary, &["--no-greeting", "--max-clients", "2"]);
        let mut first = Conn::connect(&target.addr());
        let mut second = Conn::connect(&target.addr());
        assert_eq!(first.call(&["PING"]), Frame::simple("PONG"));
        assert_eq!(second.call(&["PING"]), Frame::simple("PONG"));
        let mut third = Conn::connect(&target.addr());
        assert_eq!(third.read_frame(), Frame::error("ERR max number of clients reached"));
        assert!(third.is_closed());
        drop(first);
        // The slot frees once the first client is gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut next = Conn::connect(&target.addr());
            next.send_raw(b"PING\r\n");
            if next.read_frame() == Frame::simple("PONG") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{binary}: slot never freed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Resident memory of a process, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
}

#[test]
fn a_client_that_does_not_read_its_replies_holds_bounded_memory() {
    const VALUE_LEN: usize = 16 * 1024;
    const GETS: usize = 16_000; // 256 MiB of replies
    let (server, proxy) = targets_with(&["--no-greeting", "--max-bulk-len", "1048576"]);
    // The server stops running a client's requests at 256 KiB of unsent replies; the proxy
    // finishes the batch it is on, cut to about 1 MiB of replies once their size is known.
    for (target, bound) in [(&server, 16 << 20), (&proxy, 16 << 20)] {
        let mut setup = Conn::connect(&target.addr());
        let value = vec![b'v'; VALUE_LEN];
        assert_eq!(setup.call(&[&b"SET"[..], b"big", &value]), Frame::simple("OK"));
        let before = resident_bytes(target.pid());

        let stream = std::net::TcpStream::connect(target.addr()).expect("connect");
        stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).expect("timeout");
        let mut requests = bytes::BytesMut::new();
        for _ in 0..GETS {
            resp::write::command(&mut requests, &["GET", "big"]);
        }
        let mut writer = stream.try_clone().expect("clone");
        let sender = std::thread::spawn(move || std::io::Write::write_all(&mut writer, &requests));
        // Replies pile up while nobody reads them: the server must stop running requests.
        std::thread::sleep(std::time::Duration::from_millis(700));
        let grown = resident_bytes(target.pid()).saturating_sub(before);
        assert!(grown < bound, "{} grew by {grown} bytes for a client that does not read", target.addr());
        // And every reply still arrives, in order, once the client reads.
        let mut reader = std::io::BufReader::with_capacity(1 << 20, stream);
        let header = format!("${VALUE_LEN}\r\n");
        let mut reply = vec![0u8; header.len() + VALUE_LEN + 2];
        for i in 0..GETS {
            std::io::Read::read_exact(&mut reader, &mut reply).unwrap_or_else(|e| panic!("reply {i}: {e}"));
            assert!(
                reply.starts_with(header.as_bytes()) && reply[header.len()..].starts_with(&value[..16]),
                "reply {i}"
            );
        }
        sender.join().expect("sender thread").expect("requests sent");
    }
}
