//! Speaking Redis: a client library, redis-cli and redis-benchmark against the server and
//! the proxy, and the proxy in front of real redis-server processes.

use std::process::Command;
use std::time::Duration;

use e2e::{server, Cluster, Conn, Process};
use redis::Commands;
use ring::HashRing;

fn client(addr: &str) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let conn = client.get_connection_with_timeout(Duration::from_secs(10)).expect("connect");
    conn.set_read_timeout(Some(e2e::REPLY_TIMEOUT)).expect("timeout");
    conn
}

fn ring_of(addrs: &[String]) -> HashRing {
    let mut ring = HashRing::new(3);
    addrs.iter().for_each(|a| {
        ring.add(a);
    });
    ring
}

/// The data-command suite, through a proxy whose ring holds `addrs`.
fn data_command_suite(proxy: &str, addrs: &[String]) {
    let mut c = client(proxy);
    let ring = ring_of(addrs);
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();

    // Binary-safe keys and values: spaces, CR, LF, NUL.
    let value: &[u8] = b"a value\r\nwith\0 bytes\n";
    let key: &[u8] = b"bin key\r\n\0";
    let _: () = c.set(key, value).unwrap();
    let back: Vec<u8> = c.get(key).unwrap();
    assert_eq!(back, value);

    // SET options.
    let set_nx: Option<String> = redis::cmd("SET").arg("nx").arg("1").arg("NX").query(&mut c).unwrap();
    assert_eq!(set_nx.as_deref(), Some("OK"));
    let again: Option<String> = redis::cmd("SET").arg("nx").arg("2").arg("NX").query(&mut c).unwrap();
    assert_eq!(again, None);
    let xx: Option<String> = redis::cmd("SET").arg("absent").arg("1").arg("XX").query(&mut c).unwrap();
    assert_eq!(xx, None);

    // TTLs, and expired keys are never returned.
    let _: () = redis::cmd("SET").arg("ttl:ex").arg("v").arg("EX").arg(100).query(&mut c).unwrap();
    let ttl: i64 = c.ttl("ttl:ex").unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    let _: () = redis::cmd("SET").arg("ttl:px").arg("v").arg("PX").arg(200).query(&mut c).unwrap();
    let pttl: i64 = c.pttl("ttl:px").unwrap();
    assert!((1..=200).contains(&pttl), "{pttl}");
    let _: () = c.set("ttl:later", "v").unwrap();
    assert_eq!(c.ttl::<_, i64>("ttl:later").unwrap(), -1);
    assert!(c.expire::<_, bool>("ttl:later", 100).unwrap());
    assert_eq!(c.ttl::<_, i64>("nope").unwrap(), -2);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.get::<_, Option<String>>("ttl:px").unwrap(), None);
    assert!(!c.exists::<_, bool>("ttl:px").unwrap());

    // Counters.
    assert_eq!(c.incr::<_, _, i64>("counter", 1).unwrap(), 1);
    assert_eq!(c.incr::<_, _, i64>("counter", 41).unwrap(), 42);
    assert_eq!(c.decr::<_, _, i64>("counter", 2).unwrap(), 40);
    let _: () = c.set("word", "abc").unwrap();
    let not_int: redis::RedisResult<i64> = c.incr("word", 1);
    assert!(not_int.is_err());

    // Multi-key commands across servers, answered in the caller's order.
    let keys = e2e::keys_on_each_server(&ring, "multi", 40);
    let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("value of {k}"))).collect();
    let _: () = c.mset(&pairs).unwrap();
    let mut asked = keys.clone();
    asked.insert(7, "multi:missing".into());
    let values: Vec<Option<String>> = c.mget(&asked).unwrap();
    let expected: Vec<Option<String>> =
        asked.iter().map(|k| (k != "multi:missing").then(|| format!("value of {k}"))).collect();
    assert_eq!(values, expected);
    assert_eq!(c.exists::<_, usize>(&asked).unwrap(), 40);
    assert_eq!(c.del::<_, usize>(&keys[..10]).unwrap(), 10);
    assert_eq!(c.exists::<_, usize>(&keys).unwrap(), 30);

    // Whole-keyspace commands cover every server.
    let dbsize: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    let mut all: Vec<Vec<u8>> = c.keys("*").unwrap();
    assert_eq!(all.len(), dbsize);
    let mut scanned: Vec<Vec<u8>> = c.scan_match::<_, Vec<u8>>("*").unwrap().collect::<Result<_, _>>().unwrap();
    all.sort();
    scanned.sort();
    scanned.dedup();
    assert_eq!(scanned, all, "SCAN visits every key on every server");
    let multi: Vec<String> = c.keys("multi:*").unwrap();
    assert_eq!(multi.len(), 30);

    // Pipelining: 10,000 commands in one batch come back complete and in order.
    let mut pipe = redis::pipe();
    for i in 0..5_000 {
        pipe.cmd("SET").arg(format!("p:{i}")).arg(i).ignore();
        pipe.cmd("GET").arg(format!("p:{i}"));
    }
    let got: Vec<i64> = pipe.query(&mut c).unwrap();
    assert_eq!(got, (0..5_000).collect::<Vec<i64>>());

    // Connection commands.
    let echo: String = redis::cmd("ECHO").arg("hi there").query(&mut c).unwrap();
    assert_eq!(echo, "hi there");
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    let info: String = redis::cmd("INFO").query(&mut c).unwrap();
    assert!(info.contains("redis_version:"));
    info_sections_as_redis_gives_them(&mut c);
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    assert_eq!(redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap(), 0);
}

/// `INFO section...` gives those sections only, as Redis does: `INFO keyspace` the servers'
/// keys summed (what monitoring and redis-py's `info("keyspace")` read), an unknown section
/// nothing, no section or `all` every one.
fn info_sections_as_redis_gives_them(c: &mut redis::Connection) {
    let mut headers = |args: &[&str]| -> Vec<String> {
        let text: String = redis::cmd("INFO").arg(args).query(c).unwrap();
        text.lines().filter(|l| l.starts_with('#')).map(str::to_string).collect()
    };
    assert_eq!(headers(&["keyspace"]), ["# Keyspace"]);
    assert_eq!(headers(&["SERVER", "clients"]), ["# Server", "# Clients"]);
    assert!(headers(&["nosuchsection"]).is_empty());
    let all = headers(&[]);
    assert_eq!(all.first().map(String::as_str), Some("# Server"));
    assert_eq!(all.last().map(String::as_str), Some("# Keyspace"));
    assert_eq!(headers(&["all"]), all);
    let keyspace: String = redis::cmd("INFO").arg("keyspace").query(c).unwrap();
    let keys: usize = redis::cmd("DBSIZE").query(c).unwrap();
    assert!(keyspace.contains(&format!("db0:keys={keys},")), "DBSIZE {keys}: {keyspace}");
}

#[test]
fn client_library_through_the_proxy_over_our_servers() {
    let cluster = Cluster::ours(3, &["--no-greeting"], &["--no-greeting"]);
    data_command_suite(&cluster.proxy.addr(), &cluster.addrs());
}

#[test]
fn client_library_through_the_proxy_over_real_redis() {
    let cluster = Cluster::redis(3, &["--no-greeting"]);
    data_command_suite(&cluster.proxy.addr(), &cluster.addrs());
    // The proxy's own sections answer alone, without asking the servers.
    let ring: String = redis::cmd("INFO").arg("ring").query(&mut client(&cluster.proxy.addr())).unwrap();
    assert!(ring.starts_with("# Ring\r\n") && ring.contains("servers:3\r\n") && !ring.contains("# Keyspace"), "{ring}");
}

#[test]
fn proxy_works_over_servers_that_greet() {
    // The proxy skips its own server's greeting when it opens a connection.
    let cluster = Cluster::ours(2, &[], &["--no-greeting"]);
    data_command_suite(&cluster.proxy.addr(), &cluster.addrs());
}

#[test]
fn client_library_against_the_server_alone() {
    let server = server("cache-A", &["--no-greeting"]);
    data_command_suite(&server.addr(), &[server.addr()]);
}

#[test]
fn the_server_on_two_event_loops_serves_the_suite_and_a_benchmark() {
    let server = server("cache-A", &["--no-greeting", "--threads", "2"]);
    data_command_suite(&server.addr(), &[server.addr()]);
    redis_benchmark(&server);
}

#[test]
fn the_server_without_coalescing_serves_the_suite() {
    let server = server("cache-A", &["--no-greeting", "--coalesce-us", "0"]);
    data_command_suite(&server.addr(), &[server.addr()]);
}

/// `tool` under coreutils' `timeout`: a hung server fails the test instead of hanging CI.
fn bounded(tool: &str, seconds: u32) -> Command {
    let mut command = Command::new("timeout");
    command.args(["--kill-after=5", &seconds.to_string(), tool]);
    command
}

fn redis_cli(process: &Process, args: &[&str]) -> String {
    let output = bounded("redis-cli", 30)
        .args(["-h", "127.0.0.1", "-p", &process.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli is installed");
    assert!(output.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn redis_cli_session(target: &Process, addrs: &[String]) {
    let value = "two words\nand a second line";
    assert_eq!(redis_cli(target, &["SET", "cli:bin", value]), "OK\n");
    assert_eq!(redis_cli(target, &["GET", "cli:bin"]), format!("{value}\n"));
    let ring = ring_of(addrs);
    let keys = e2e::keys_on_each_server(&ring, "cli", 12);
    for k in &keys {
        redis_cli(target, &["SET", k, &format!("v-{k}")]);
    }
    let mut args = vec!["MGET"];
    args.extend(keys.iter().map(String::as_str));
    let expected: String = keys.iter().map(|k| format!("v-{k}\n")).collect();
    assert_eq!(redis_cli(target, &args), expected);
    assert_eq!(redis_cli(target, &["SET", "cli:ttl", "v", "PX", "150"]), "OK\n");
    assert_eq!(redis_cli(target, &["GET", "cli:ttl"]), "v\n");
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(redis_cli(target, &["GET", "cli:ttl"]), "\n");
    assert_eq!(redis_cli(target, &["TTL", "cli:ttl"]), "-2\n");
}

#[test]
fn redis_cli_against_the_server_and_the_proxy() {
    let cluster = Cluster::ours(3, &["--no-greeting"], &["--no-greeting"]);
    redis_cli_session(&cluster.servers[0], &[cluster.servers[0].addr()]);
    redis_cli_session(&cluster.proxy, &cluster.addrs());
}

fn redis_benchmark(target: &Process) {
    let output = bounded("redis-benchmark", 120)
        .args(["-h", "127.0.0.1", "-p", &target.port.to_string()])
        .args(["-t", "set,get,mset", "-P", "16", "-c", "50", "-n", "100000", "-r", "100000", "-e", "--csv"])
        .output()
        .expect("redis-benchmark is installed");
    // redis-benchmark has no built-in MGET test: run one as a custom command.
    let mget = bounded("redis-benchmark", 120)
        .args(["-h", "127.0.0.1", "-p", &target.port.to_string()])
        .args(["-P", "16", "-c", "50", "-n", "100000", "-r", "100000", "-e", "--csv"])
        .args([
            "MGET",
            "key:__rand_int__",
            "key:__rand_int__",
            "key:__rand_int__",
            "key:__rand_int__",
            "key:__rand_int__",
        ])
        .output()
        .expect("redis-benchmark is installed");
    let mget_out = String::from_utf8_lossy(&mget.stdout);
    assert!(mget.status.success() && mget_out.contains("\"MGET"), "MGET benchmark: {mget_out}");
    assert!(!mget_out.contains("ERR"), "errors during the MGET benchmark:\n{mget_out}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "redis-benchmark failed: {stderr}");
    assert!(!stdout.contains("ERR") && !stderr.contains("ERR"), "errors during the benchmark:\n{stdout}\n{stderr}");
    for test in ["\"SET\"", "\"GET\"", "\"MSET (10 keys)\""] {
        assert!(stdout.contains(test), "no {test} line in:\n{stdout}");
    }
    // The values the benchmark wrote read back.
    let mut conn = Conn::connect(&target.addr());
    let resp::Frame::Array(scan) = conn.call(&["SCAN", "0", "COUNT", "100"]) else { panic!("SCAN reply") };
    let resp::Frame::Array(keys) = &scan[1] else { panic!("SCAN keys") };
    assert!(!keys.is_empty(), "the benchmark stored keys");
    for key in keys {
        let key = key.as_bytes().expect("key");
        assert!(key.starts_with(b"key:"), "{key:?}");
        // redis-benchmark writes 3-byte values (-d 3, its default).
        let value = conn.call(&[&b"GET"[..], key]);
        assert!(matches!(&value, resp::Frame::Bulk(v) if v.len() == 3), "{value:?}");
    }
}

#[test]
fn redis_benchmark_against_the_server_and_the_proxy() {
    let cluster = Cluster::ours(3, &["--no-greeting"], &["--no-greeting"]);
    redis_benchmark(&cluster.servers[0]);
    redis_benchmark(&cluster.proxy);
}

/// A client that sends its requests and shuts down its side (as `nc -N` does) gets every
/// reply, then the end of the stream.
#[test]
fn a_client_that_shuts_down_its_side_gets_every_reply_then_eof() {
    let cluster = Cluster::ours(2, &["--no-greeting"], &["--no-greeting"]);
    for target in [&cluster.servers[0], &cluster.proxy] {
        for round in 0..20 {
            let mut stream = std::net::TcpStream::connect(target.addr()).expect("connect");
            stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
            let mut requests = bytes::BytesMut::new();
            for i in 0..200 {
                resp::write::command(&mut requests, &["SET", &format!("half:{round}:{i}"), "v"]);
                resp::write::command(&mut requests, &["GET", &format!("half:{round}:{i}")]);
            }
            std::io::Write::write_all(&mut stream, &requests).expect("send");
            stream.shutdown(std::net::Shutdown::Write).expect("shutdown");
            let mut replies = Vec::new();
            std::io::Read::read_to_end(&mut stream, &mut replies).expect("read to EOF");
            assert_eq!(replies, b"+OK\r\n$1\r\nv\r\n".repeat(200), "{} round {round}", target.addr());
        }
    }
}

/// A command the table does not know but the servers do (here HSET renamed to HSETX, as a
/// newer Redis or a module would bring one) is learned from a server's COMMAND INFO and
/// routed by its key spec: each key lands on its owner.
#[test]
fn commands_unknown_to_the_table_are_learned_from_the_servers() {
    let servers: Vec<e2e::Process> = (0..3)
        .map(|_| launch::redis_server_with(None, &["--rename-command", "HSET", "HSETX"]).expect("redis-server"))
        .collect();
    let addrs: Vec<String> = servers.iter().map(e2e::Process::addr).collect();
    let proxy = e2e::proxy(&addrs, &["--no-greeting"]);
    let mut c = e2e::Conn::connect(&proxy.addr());
    for i in 0..30 {
        let key = format!("learned:{i}");
        assert_eq!(c.call(&["HSETX", &key, "f", "v"]), resp::Frame::Integer(1), "{key}");
        let resp::Frame::Simple(owner) = c.call(&["ROUTE", &key]) else { panic!("ROUTE {key}") };
        let owner = String::from_utf8_lossy(&owner).into_owned();
        let mut direct = e2e::Conn::connect(&owner);
        assert_eq!(direct.call(&["HGET", &key, "f"]), e2e::bulk("v"), "{key} on its owner {owner}");
    }
    // A name no server knows keeps Redis's error.
    let reply = c.call(&["NOSUCHCOMMAND", "x"]);
    assert_eq!(reply, resp::Frame::error("ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' "));
}
