//! Bad and oversized input: a clear -ERR, the connection closed when the stream cannot be
//! trusted any more, memory bounded, and the process still serving everyone else.

use e2e::{proxy, server, start, Conn, Process};
use resp::Frame;

/// A server and a proxy with small limits, both without greeting.
fn targets() -> (Process, Process) {
    let limits = ["--no-greeting", "--max-inline-len", "1024", "--max-bulk-len", "4096", "--max-args", "16"];
    let server = server("cache-A", &limits);
    let proxy = proxy(&[server.addr()], &limits);
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
        assert_eq!(c.call(&["GET"]), Frame::error("ERR usage: GET key"));
        assert_eq!(
            c.call(&["SET", "k", "v", "EX", "nope"]),
            Frame::error("ERR value is not an integer or out of range")
        );
        assert_eq!(c.call(&["SET", "k", "v", "EX", "0"]), Frame::error("ERR invalid expire time in 'set' command"));
        assert_eq!(c.call(&["SET", "k", "v", "BOGUS"]), Frame::error("ERR syntax error"));
        assert_eq!(c.call(&["MSET", "a", "1", "b"]), Frame::error("ERR usage: MSET key value [key value ...]"));
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
