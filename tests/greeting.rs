//! The greeting serves people and never confuses programs (issue 10, "Ordinary clients just
//! work at default flags"): both binaries at their default flags, greeting on.
//!
//! - real `redis-cli`, one-shot, gets exactly its replies (it opens with a multibulk array);
//! - a raw client that stays silent after connecting gets the greeting (a person at `nc`);
//! - an inline `PING` right after connecting gets the greeting, then `+PONG`;
//! - a multibulk client never sees the greeting, however long it waits;
//! - `--no-greeting` still silences it;
//! - interactive `redis-cli` in a tmux pane answers each command (when tmux is installed).

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{have, proxy, run_bounded, server, Cluster, Conn, Process, PROGRAM_TIMEOUT};
use resp::Frame;

const SERVER_GREETING: &str = "+OK cache-A ready";
const PROXY_GREETING: &str = "+OK proxy ready (type HELP for commands)";
/// Longer than the default greeting delay (250 ms): a greeting would have been sent by then.
const PAST_THE_DELAY: Duration = Duration::from_millis(700);

fn port(process: &Process) -> String {
    process.addr().rsplit(':').next().unwrap_or_default().to_string()
}

/// `redis-cli -p PORT args...` with default flags: its standard output.
fn redis_cli(port: &str, args: &[&str]) -> String {
    assert!(have("redis-cli"), "redis-cli is not installed (apt-get install -y redis-tools)");
    let output = run_bounded(Command::new("redis-cli").arg("-p").arg(port).args(args), PROGRAM_TIMEOUT)
        .expect("redis-cli finished in time");
    assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Both binaries at default flags: the server, and a proxy in front of two servers.
fn both() -> (Process, Cluster) {
    (server("cache-A", &[]), Cluster::ours(2, &[], &[]))
}

#[test]
fn redis_cli_one_shot_gets_exact_output_from_the_server() {
    let server = server("cache-A", &[]);
    let port = port(&server);
    assert_eq!(redis_cli(&port, &["PING"]), "PONG\n");
    assert_eq!(redis_cli(&port, &["SET", "cli:k", "v"]), "OK\n");
    assert_eq!(redis_cli(&port, &["GET", "cli:k"]), "v\n");
    assert_eq!(redis_cli(&port, &["GET", "cli:missing"]), "\n");
    assert_eq!(redis_cli(&port, &["WHOAMI"]), "cache-A\n");
    assert_eq!(redis_cli(&port, &["DEL", "cli:k"]), "1\n");
}

#[test]
fn redis_cli_one_shot_gets_exact_output_from_the_proxy() {
    let cluster = Cluster::ours(2, &[], &[]);
    let port = port(&cluster.proxy);
    assert_eq!(redis_cli(&port, &["PING"]), "PONG\n");
    assert_eq!(redis_cli(&port, &["SET", "cli:k", "v"]), "OK\n");
    assert_eq!(redis_cli(&port, &["GET", "cli:k"]), "v\n");
    assert_eq!(redis_cli(&port, &["GET", "cli:missing"]), "\n");
    let mut servers = cluster.addrs();
    servers.sort();
    assert_eq!(redis_cli(&port, &["SERVERS"]), servers.join("\n") + "\n");
}

#[test]
fn a_silent_client_is_greeted_at_once() {
    let (server, cluster) = both();
    for (addr, greeting) in [(server.addr(), SERVER_GREETING), (cluster.proxy.addr(), PROXY_GREETING)] {
        let started = Instant::now();
        let mut c = Conn::connect(&addr);
        c.expect_lines(&[greeting]);
        // At once for a person: the default delay is 250 ms.
        assert!(started.elapsed() < Duration::from_secs(2), "greeting took {:?}", started.elapsed());
        c.exchange("PING", &["+PONG"]);
    }
}

#[test]
fn an_inline_ping_right_after_connect_gets_the_greeting_then_pong() {
    let (server, cluster) = both();
    for (addr, greeting) in [(server.addr(), SERVER_GREETING), (cluster.proxy.addr(), PROXY_GREETING)] {
        let mut c = Conn::connect(&addr);
        c.send_raw(b"PING\r\n");
        c.expect_lines(&[greeting, "+PONG"]);
        c.exchange("PING", &["+PONG"]);
    }
}

#[test]
fn a_multibulk_client_never_sees_the_greeting() {
    let (server, cluster) = both();
    for addr in [server.addr(), cluster.proxy.addr()] {
        let mut c = Conn::connect(&addr);
        assert_eq!(c.call(&["PING"]), Frame::simple("PONG"), "{addr}");
        std::thread::sleep(PAST_THE_DELAY);
        assert_eq!(c.call(&["SET", "mb:k", "v"]), Frame::simple("OK"), "{addr}");
        assert_eq!(c.call(&["GET", "mb:k"]), Frame::bulk("v"), "{addr}");
        // Inline later on is still a program's connection: no greeting then either.
        c.exchange("PING", &["+PONG"]);
    }
}

#[test]
fn no_greeting_still_silences_it() {
    let server = server("cache-A", &["--no-greeting"]);
    let proxy = proxy(&[server.addr()], &["--no-greeting"]);
    for addr in [server.addr(), proxy.addr()] {
        let mut c = Conn::connect(&addr);
        std::thread::sleep(PAST_THE_DELAY);
        c.exchange("PING", &["+PONG"]);
    }
}

/// Runs `tmux args...`; whether it succeeded.
fn tmux(args: &[&str]) -> Option<String> {
    let output = run_bounded(Command::new("tmux").args(args), PROGRAM_TIMEOUT)?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A tmux session, killed when dropped (also when the test fails).
struct TmuxSession(String);

impl Drop for TmuxSession {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

/// Interactive redis-cli in a detached tmux pane: what a person sees after each command.
#[test]
fn interactive_redis_cli_through_tmux() {
    if !have("tmux") || !have("redis-cli") {
        println!("skipped: tmux or redis-cli is not installed");
        return;
    }
    let (server, cluster) = both();
    for process in [&server, &cluster.proxy] {
        let session = format!("e2e-greeting-{}-{}", std::process::id(), port(process));
        let command = format!("redis-cli -p {}", port(process));
        assert!(tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "30", &command]).is_some());
        let _session = TmuxSession(session.clone());
        let pane = |session: &str| tmux(&["capture-pane", "-p", "-t", session]).unwrap_or_default();
        // Keys typed before redis-cli shows its prompt would reach the terminal, not redis-cli.
        let prompt = format!(":{}>", port(process));
        let ready = e2e::wait_until(Duration::from_secs(10), || pane(&session).contains(&prompt));
        assert!(ready, "no prompt; the pane shows:\n{}", pane(&session));
        let typed =
            [("SET tmux:k hello", "OK"), ("GET tmux:k", "\"hello\""), ("PING", "PONG"), ("GET tmux:none", "(nil)")];
        let mut expected = Vec::new();
        for (line, reply) in typed {
            tmux(&["send-keys", "-t", &session, line, "Enter"]);
            expected.push(reply.to_string());
            let seen = e2e::wait_until(Duration::from_secs(10), || {
                let text = pane(&session);
                let replies: Vec<String> = text
                    .lines()
                    .filter(|l| !l.contains(prompt.as_str()) && !l.trim().is_empty())
                    .map(|l| l.trim().to_string())
                    .collect();
                replies == expected
            });
            assert!(seen, "after {line:?}, the pane shows:\n{}\nexpected replies {expected:?}", pane(&session));
        }
    }
}
