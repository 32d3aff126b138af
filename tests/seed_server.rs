//! The seed's cache server contract, line by line (DESIGN.md, "The seed contract").

use e2e::{server, start, Conn, Process, REPLY_TIMEOUT};
use resp::Frame;

fn greeted(server: &Process) -> Conn {
    Conn::connect_greeted(&server.addr(), "+OK cache-A ready")
}

#[test]
fn every_seed_command_replies_as_the_seed_did() {
    let server = server("cache-A", &[]);
    let mut c = greeted(&server);
    c.exchange("PING", &["+PONG"]);
    c.exchange("WHOAMI", &["+cache-A"]);
    c.exchange("SET user:1001 Alice", &["+OK"]);
    c.exchange("GET user:1001", &["$5", "Alice"]);
    c.exchange("SET greeting hello big  world", &["+OK"]);
    c.exchange("GET greeting", &["$16", "hello big  world"]);
    c.exchange("GET nobody", &["$-1"]);
    c.send_line("KEYS");
    // `*2` then one `+key` line per key, in the store's order.
    let Frame::Array(mut keys) = c.read_frame() else { panic!("KEYS is an array") };
    keys.sort_by_key(|k| k.as_bytes().cloned());
    assert_eq!(keys, [Frame::simple("greeting"), Frame::simple("user:1001")]);
    c.exchange("DEL user:1001", &[":1"]);
    c.exchange("DEL user:1001", &[":0"]);
    c.exchange("QUIT", &["+BYE"]);
    assert!(c.is_closed(), "QUIT closes the connection");
}

#[test]
fn wrong_arguments_and_unknown_commands_keep_the_connection() {
    let server = server("cache-A", &[]);
    let mut c = greeted(&server);
    c.exchange("SET onlykey", &["-ERR usage: SET key value"]);
    c.exchange("GET", &["-ERR usage: GET key"]);
    c.exchange("GET a b", &["-ERR usage: GET key"]);
    c.exchange("DEL", &["-ERR usage: DEL key"]);
    c.exchange("FROBNICATE x", &["-ERR unknown command"]);
    c.exchange("PING", &["+PONG"]);
}

#[test]
fn names_are_case_insensitive_and_lines_end_in_lf_or_crlf() {
    let server = server("cache-A", &[]);
    let mut c = greeted(&server);
    c.send_raw(b"set k v\r\n");
    c.expect_lines(&["+OK"]);
    c.send_raw(b"gEt k\n");
    c.expect_lines(&["$1", "v"]);
    c.send_raw(b"whoami\r\n");
    c.expect_lines(&["+cache-A"]);
}

#[test]
fn operations_are_logged_as_the_seed_logged_them() {
    // The harness reads stderr through a pipe, not a terminal: the seed's per-command lines
    // need --log-requests there.
    let server = server("cache-A", &["--log-requests"]);
    let mut c = greeted(&server);
    c.exchange("SET user:1001 Alice", &["+OK"]);
    c.exchange("GET user:1001", &["$5", "Alice"]);
    c.exchange("GET nobody", &["$-1"]);
    c.exchange("DEL user:1001", &[":1"]);
    for line in [
        "[cache-A] SET user:1001 = Alice",
        "[cache-A] GET user:1001 -> Alice",
        "[cache-A] GET nobody -> (nil)",
        "[cache-A] DEL user:1001 -> 1",
    ] {
        assert!(server.wait_for_log(line, REPLY_TIMEOUT), "missing log line {line:?} in {:?}", server.logs());
    }
}

#[test]
fn no_line_per_command_when_stderr_is_not_a_terminal() {
    // By default (stderr is a pipe here), and with --no-log-requests after --log-requests.
    for flags in [&["--max-clients", "1"][..], &["--max-clients", "1", "--log-requests", "--no-log-requests"][..]] {
        let server = server("cache-A", flags);
        let mut c = greeted(&server);
        c.exchange("SET user:1001 Alice", &["+OK"]);
        c.exchange("GET user:1001", &["$5", "Alice"]);
        c.exchange("DEL user:1001", &[":1"]);
        // A second client is refused with a warning logged after the commands: once it is
        // in, their lines would be too.
        let mut refused = Conn::connect(&server.addr());
        refused.expect_lines(&["-ERR max number of clients reached"]);
        assert!(server.wait_for_log("refusing client", REPLY_TIMEOUT), "{:?}", server.logs());
        let logs = server.logs();
        let per_command =
            |line: &String| ["SET", "GET", "DEL"].iter().any(|c| line.contains(&format!("[cache-A] {c} ")));
        assert!(!logs.iter().any(per_command), "{flags:?}: {logs:?}");
    }
}

#[test]
fn default_name_is_cache_port_and_go_style_flags_work() {
    // `-port 0` the Go way: the OS picks the port; the name defaults to cache-<port>.
    let server = start("server", &["-bind", "127.0.0.1"]);
    let mut c = Conn::connect(&server.addr());
    c.expect_lines(&["+OK cache-0 ready"]);
    let named = start("server", &["-name", "cache-Z"]);
    Conn::connect_greeted(&named.addr(), "+OK cache-Z ready");
}

#[test]
fn no_greeting_serves_redis_clients() {
    let server = server("cache-A", &["--no-greeting"]);
    let mut c = Conn::connect(&server.addr());
    c.exchange("PING", &["+PONG"]);
}

#[test]
fn help_explains_every_flag() {
    for binary in ["server", "proxy", "demo"] {
        let output = std::process::Command::new(e2e::binary(binary)).arg("--help").output().expect("run --help");
        assert!(output.status.success());
        let text = String::from_utf8_lossy(&output.stdout);
        let flags: &[&str] = match binary {
            "server" => &["--port", "--name", "--bind", "--no-greeting", "--max-clients", "--max-bulk-len"],
            "proxy" => &["--port", "--replicas", "--servers", "--bind", "--no-greeting", "--connect-timeout-ms"],
            _ => &["--proxy", "--servers"],
        };
        for flag in flags {
            assert!(text.contains(flag), "{binary} --help lacks {flag}:\n{text}");
        }
    }
}
