//! Differential test of the cache server's MIGRATE: the same sequences run from a real
//! `redis-server` to another, and from our `server` to another of ours, and every reply
//! must be identical, error texts included.
//!
//! ```text
//! cargo test -p e2e --test server_migrate -- --nocapture
//! ```
//!
//! A case is one line: commands separated by ` ; `, `>` before a command sends it to the
//! target instead of the source, `$T` stands for the target's port and `''` for an empty
//! argument. Between two kinds (ours to redis-server) MIGRATE cannot work: each refuses the
//! other's DUMP payload, and the last test shows the reply.

use e2e::{redis_server, server, Conn, Process};
use resp::Frame;

const CASES: &[(&str, &str)] = &[
    ("moves with its ttl", "SET k v ; PEXPIRE k 100000 ; MIGRATE 127.0.0.1 $T k 0 1000 ; EXISTS k ; >GET k ; >TTL k"),
    ("no expiry stays none", "SET k v ; MIGRATE 127.0.0.1 $T k 0 1000 ; >TTL k ; >GET k"),
    ("nokey", "MIGRATE 127.0.0.1 $T missing 0 1000 ; MIGRATE 127.0.0.1 $T '' 0 1000 KEYS a b ; MIGRATE 127.0.0.1 $T '' 0 1000 KEYS"),
    ("busykey keeps both", "SET k v ; >SET k w ; MIGRATE 127.0.0.1 $T k 0 1000 ; GET k ; >GET k"),
    ("replace", "SET k v ; >SET k w ; MIGRATE 127.0.0.1 $T k 0 1000 REPLACE ; EXISTS k ; >GET k"),
    ("copy", "SET k v ; MIGRATE 127.0.0.1 $T k 0 1000 COPY ; GET k ; >GET k ; MIGRATE 127.0.0.1 $T k 0 1000 COPY ; MIGRATE 127.0.0.1 $T k 0 1000 COPY REPLACE ; GET k"),
    ("keys form", "MSET a 1 b 2 c 3 ; >SET b x ; MIGRATE 127.0.0.1 $T '' 0 1000 KEYS a b c d ; EXISTS a b c ; >MGET a b c d ; MIGRATE 127.0.0.1 $T '' 0 1000 REPLACE KEYS b ; >GET b"),
    ("keys form timeout 0", "MSET a 1 b 2 ; SETEX c 100 3 ; MIGRATE 127.0.0.1 $T '' 0 0 KEYS a b c ; DBSIZE ; >MGET a b c ; >TTL c"),
    ("errors", "SET k v ; MIGRATE 127.0.0.1 $T k 0 1000 KEYS a ; MIGRATE 127.0.0.1 $T k 0 1000 FOO ; MIGRATE 127.0.0.1 $T k 0 1000 AUTH ; MIGRATE 127.0.0.1 $T k 0 1000 AUTH2 u ; MIGRATE 127.0.0.1 $T k 0 x ; MIGRATE 127.0.0.1 $T k x 1000 ; MIGRATE 127.0.0.1 $T k ; GET k"),
    ("auth to a target without one", "SET k v ; MIGRATE 127.0.0.1 $T k 0 1000 AUTH2 u x ; GET k"),
    ("expired is nokey", "SET k v PX 1 ; DEBUG SLEEP 0 ; MIGRATE 127.0.0.1 $T k 0 1000"),
];

/// Splits a case into (to the target?, arguments).
fn commands(case: &str, target_port: u16) -> Vec<(bool, Vec<String>)> {
    case.split(" ; ")
        .map(|command| {
            let (to_target, command) = match command.strip_prefix('>') {
                Some(rest) => (true, rest),
                None => (false, command),
            };
            let args = command
                .split(' ')
                .map(|arg| match arg {
                    "''" => String::new(),
                    "$T" => target_port.to_string(),
                    _ => arg.to_string(),
                })
                .collect();
            (to_target, args)
        })
        .collect()
}

/// A source and a target of one kind.
struct Pair {
    source: Conn,
    target: Conn,
    port: u16,
    _processes: [Process; 2],
}

impl Pair {
    fn new(source: Process, target: Process) -> Self {
        let port = target.addr().rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
        Pair {
            source: Conn::connect(&source.addr()),
            target: Conn::connect(&target.addr()),
            port,
            _processes: [source, target],
        }
    }

    fn run(&mut self, case: &str) -> Vec<Frame> {
        for conn in [&mut self.source, &mut self.target] {
            assert_eq!(conn.call(&["FLUSHALL"]), Frame::Simple("OK".into()));
        }
        let mut replies = Vec::new();
        for (to_target, args) in commands(case, self.port) {
            // Sleeping is Redis's DEBUG SLEEP; here it only lets a 1 ms TTL pass.
            if args[0] == "DEBUG" {
                std::thread::sleep(std::time::Duration::from_millis(20));
                continue;
            }
            let conn = if to_target { &mut self.target } else { &mut self.source };
            replies.push(conn.call(&args));
        }
        replies
    }
}

fn ours(name: &str, extra: &[&str]) -> Process {
    let mut flags = vec!["--no-greeting"];
    flags.extend_from_slice(extra);
    server(name, &flags)
}

#[test]
fn migrate_replies_as_redis_does() {
    let mut redis = Pair::new(redis_server(), redis_server());
    let mut mine = Pair::new(ours("cache-src", &[]), ours("cache-dst", &[]));
    let mut differences = Vec::new();
    let mut compared = 0;
    for (name, case) in CASES {
        let expected = redis.run(case);
        let got = mine.run(case);
        assert_eq!(expected.len(), got.len());
        for ((command, expected), got) in case.split(" ; ").filter(|c| !c.starts_with("DEBUG")).zip(expected).zip(got) {
            compared += 1;
            if expected != got {
                differences.push(format!("[{name}] {command}\n    redis: {expected:?}\n    ours:  {got:?}"));
            }
        }
    }
    println!("{compared} replies compared, {} differ", differences.len());
    assert!(differences.is_empty(), "replies differ from redis-server's:\n{}", differences.join("\n"));
}

#[test]
fn migrate_authenticates_to_a_target_with_a_password() {
    let mut redis = Pair::new(redis_server(), redis_server());
    assert_eq!(redis.target.call(&["CONFIG", "SET", "requirepass", "pw"]), Frame::Simple("OK".into()));
    assert_eq!(redis.target.call(&["AUTH", "pw"]), Frame::Simple("OK".into()));
    let mut mine = Pair::new(ours("cache-src", &[]), ours("cache-dst", &["--requirepass", "pw"]));
    assert_eq!(mine.target.call(&["AUTH", "pw"]), Frame::Simple("OK".into()));
    let case = "SET k v ; MIGRATE 127.0.0.1 $T k 0 1000 ; MIGRATE 127.0.0.1 $T k 0 1000 AUTH nope ; \
                MIGRATE 127.0.0.1 $T k 0 1000 AUTH pw COPY ; >GET k ; MIGRATE 127.0.0.1 $T k 0 1000 AUTH2 default pw REPLACE ; \
                EXISTS k ; >GET k";
    let expected = redis.run(case);
    let got = mine.run(case);
    assert_eq!(got, expected);
    // The key left only once the target answered.
    assert_eq!(got[6], Frame::Integer(0));
}

#[test]
fn migrate_to_an_unreachable_target_keeps_the_key() {
    let port = e2e::free_port();
    let mut replies = Vec::new();
    for source in [redis_server(), ours("cache-src", &[])] {
        let mut conn = Conn::connect(&source.addr());
        conn.call(&["SET", "k", "v"]);
        replies.push(conn.call(&["MIGRATE", "127.0.0.1", &port.to_string(), "k", "0", "200"]));
        assert_eq!(conn.call(&["EXISTS", "k"]), Frame::Integer(1));
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(replies[1], Frame::Error("IOERR error or timeout writing to target instance".into()));
}

#[test]
fn migrate_between_kinds_is_refused_by_the_payload_check_and_keeps_the_key() {
    let theirs = redis_server();
    let mine = ours("cache-src", &[]);
    let port = |p: &Process| p.addr().rsplit(':').next().unwrap_or_default().to_string();
    for (from, to) in [(&mine, &theirs), (&theirs, &mine)] {
        let mut conn = Conn::connect(&from.addr());
        conn.call(&["SET", "k", "v"]);
        let reply = conn.call(&["MIGRATE", "127.0.0.1", &port(to), "k", "0", "1000"]);
        let refused = "ERR Target instance replied with error: ERR DUMP payload version or checksum are wrong";
        assert_eq!(reply, Frame::Error(refused.into()), "from {}", from.addr());
        assert_eq!(conn.call(&["EXISTS", "k"]), Frame::Integer(1));
    }
}
