//! The differential suite: the same command sequences sent to a redis-server directly and
//! through a sharding proxy in front of three other redis-servers, replies compared frame by
//! frame (sorted where Redis promises no order). It measures how much of Redis a proxy
//! passes through unchanged (issue 10, "How it is checked").
//!
//! Run it, with its report:
//!
//! ```text
//! cargo test -p e2e --test differential -- --nocapture
//! ```
//!
//! What runs, on free loopback ports:
//! - a reference `redis-server`, which runs every case twice: the first run is the expected
//!   replies, the second is the "redis" column and proves that the cases are deterministic;
//! - our `proxy --no-greeting --servers a,b,c` (plus `--hash-tag "{}"` when the proxy knows
//!   that flag) in front of three more `redis-server`s;
//! - twemproxy (`nutcracker`, when installed) in front of the same three, from a generated
//!   config (`redis: true`, `hash_tag: "{}"`, ketama), measured beside ours.
//!
//! Each case runs on fresh connections after its servers were emptied directly (keys,
//! scripts, functions), so no case depends on another. The cases are in
//! `tests/differential/cases.rs`, with their little syntax and the [`KNOWN_DIFFERENCES`]:
//! cases that may honestly differ through a sharding proxy, listed but left out of the
//! percentage. The report (per family: cases identical / total for redis, twemproxy and the
//! proxy; then every failing case with both replies) is printed and written to
//! `target/tmp/differential-report.txt`.
//!
//! The test fails when the proxy's overall figure falls below [`MIN_IDENTICAL_PERCENT`], or
//! when redis-server disagrees with itself (a case that is not deterministic is a bug here).

#[path = "differential/cases.rs"]
mod cases;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use cases::{Case, KNOWN_DIFFERENCES};
use e2e::{have, redis_server, Conn, Process, TempDir};
use resp::{Frame, Limits};
use ring::HashRing;

/// The proxy's overall figure (identical cases out of those not in [`KNOWN_DIFFERENCES`], in
/// percent) must reach this. Today's proxy reaches 255/255 (blocking commands, WATCH and
/// pub/sub on dedicated connections); the bound leaves room for two cases, since the pub/sub
/// and blocking cases wait on timers and the machines that run this are shared.
const MIN_IDENTICAL_PERCENT: f64 = 99.0;

/// How long one reply may take. Shorter than the harness's `REPLY_TIMEOUT`: a proxy that
/// never answers costs this much per case, and the whole suite must stay under a minute.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a `recv` step waits for a message a proxy may never deliver (a published
/// message, a blocked pop's answer); redis-server delivers them within a millisecond.
const RECV_TIMEOUT: Duration = Duration::from_secs(1);
/// How many rounds a `scan` step may take before it stops following the cursor.
const SCAN_ROUNDS: usize = 100;
/// Longest reply shown in the list of failing cases.
const SHOW_LEN: usize = 110;
/// Virtual nodes of the proxy's ring (its `--replicas` default), to pick `$X1`/`$X2`.
const PROXY_VNODES: usize = 3;

/// What one step got.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// A reply (normalised as the step's mode says).
    Frame(Frame),
    /// Nothing came within the timeout.
    Timeout,
    /// The peer closed the connection (twemproxy does on a command it does not support).
    Closed,
    /// Bytes that are not RESP2.
    Invalid(String),
    /// Not read: the connection was given up on an earlier step.
    Skipped,
}

/// How a step's reply is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exact,
    /// An array compared sorted.
    Sorted,
    /// Only the shape: types and lengths, not the contents (errors keep their text).
    Shape,
    /// A SCAN-family command followed until its cursor is 0; every element, sorted.
    Scan,
}

/// What a step does on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Send, then read one reply.
    Call,
    /// Send only.
    Send,
    /// Read one reply only.
    Recv,
}

/// One parsed command line of a case.
#[derive(Debug, Clone)]
struct Step {
    conn: usize,
    action: Action,
    mode: Mode,
    args: Vec<String>,
}

/// Parses a line (syntax in `cases.rs`), replacing `$X1`/`$X2` with `cross`.
fn parse_line(line: &str, cross: &[String; 2]) -> Step {
    let mut words = split_words(line).into_iter().peekable();
    let mut step = Step { conn: 0, action: Action::Call, mode: Mode::Exact, args: Vec::new() };
    while let Some(word) = words.peek() {
        match word.as_str() {
            w if w.starts_with('@') => step.conn = w[1..].parse().expect("connection number"),
            "send" => step.action = Action::Send,
            "recv" => step.action = Action::Recv,
            "sorted" => step.mode = Mode::Sorted,
            "shape" => step.mode = Mode::Shape,
            "scan" => step.mode = Mode::Scan,
            _ => break,
        }
        words.next();
    }
    step.args = words
        .map(|w| match w.as_str() {
            "$X1" => cross[0].clone(),
            "$X2" => cross[1].clone(),
            _ => w,
        })
        .collect();
    assert!(step.action == Action::Recv || !step.args.is_empty(), "empty command in {line:?}");
    step
}

/// Splits on spaces; `"..."` keeps spaces and understands `\n`, `\"` and `\\`.
fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some(other) => word.push(other),
                        None => break,
                    },
                    other => word.push(other),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

/// A client connection of one case, which records failures instead of panicking.
struct Client {
    stream: Option<TcpStream>,
    buf: BytesMut,
    /// Why it was given up, if it was: what every later step gets.
    gone: Option<Reply>,
}

impl Client {
    fn connect(addr: &str) -> Client {
        match TcpStream::connect(addr) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let _ = stream.set_write_timeout(Some(CALL_TIMEOUT));
                Client { stream: Some(stream), buf: BytesMut::new(), gone: None }
            }
            Err(_) => Client { stream: None, buf: BytesMut::new(), gone: Some(Reply::Closed) },
        }
    }

    fn send(&mut self, args: &[String]) {
        if self.gone.is_some() {
            return;
        }
        let mut out = BytesMut::new();
        resp::write::command(&mut out, args);
        let Some(stream) = self.stream.as_mut() else { return };
        if stream.write_all(&out).is_err() {
            self.gone = Some(Reply::Closed);
        }
    }

    fn read(&mut self, timeout: Duration) -> Reply {
        if let Some(gone) = &self.gone {
            return if *gone == Reply::Closed { Reply::Closed } else { Reply::Skipped };
        }
        let deadline = Instant::now() + timeout;
        let reply = loop {
            match Frame::parse(&mut self.buf, &Limits::default()) {
                Ok(Some(frame)) => return Reply::Frame(frame),
                Ok(None) => {}
                Err(e) => break Reply::Invalid(e.to_string()),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(stream) = self.stream.as_mut() else { break Reply::Closed };
            if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                break Reply::Timeout;
            }
            let mut chunk = [0u8; 16 * 1024];
            match stream.read(&mut chunk) {
                Ok(0) => break Reply::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break Reply::Timeout,
                Err(_) => break Reply::Closed,
            }
        };
        // Out of step with its replies from here on.
        self.gone = Some(reply.clone());
        reply
    }

    fn call(&mut self, args: &[String]) -> Reply {
        self.send(args);
        self.read(CALL_TIMEOUT)
    }
}

/// Runs one case against `addr` on fresh connections; one reply per step that reads.
fn run_case(addr: &str, steps: &[Step]) -> Vec<Reply> {
    let mut clients: BTreeMap<usize, Client> = BTreeMap::new();
    let mut replies = Vec::new();
    for step in steps {
        let client = clients.entry(step.conn).or_insert_with(|| Client::connect(addr));
        match (step.action, step.mode) {
            (Action::Send, _) => client.send(&step.args),
            (Action::Recv, mode) => replies.push(normalise(client.read(RECV_TIMEOUT), mode)),
            (Action::Call, Mode::Scan) => replies.push(scan(client, &step.args)),
            (Action::Call, mode) => replies.push(normalise(client.call(&step.args), mode)),
        }
    }
    replies
}

/// Follows a SCAN-family cursor to 0; every element returned, sorted, as one array.
fn scan(client: &mut Client, args: &[String]) -> Reply {
    let cursor_at = if args[0].eq_ignore_ascii_case("SCAN") { 1 } else { 2 };
    let mut args = args.to_vec();
    let mut elements = Vec::new();
    for _ in 0..SCAN_ROUNDS {
        let reply = client.call(&args);
        let Reply::Frame(Frame::Array(parts)) = &reply else { return reply };
        let [Frame::Bulk(cursor), Frame::Array(found)] = parts.as_slice() else { return reply };
        elements.extend(found.iter().cloned());
        if cursor.as_ref() == b"0" {
            return normalise(Reply::Frame(Frame::Array(elements)), Mode::Sorted);
        }
        args[cursor_at] = String::from_utf8_lossy(cursor).into_owned();
    }
    Reply::Invalid(format!("the cursor did not come back to 0 in {SCAN_ROUNDS} rounds"))
}

fn normalise(reply: Reply, mode: Mode) -> Reply {
    match (reply, mode) {
        (Reply::Frame(Frame::Array(mut items)), Mode::Sorted | Mode::Scan) => {
            items.sort_by_key(|f| f.to_bytes());
            Reply::Frame(Frame::Array(items))
        }
        (Reply::Frame(frame), Mode::Shape) => Reply::Frame(shape(frame)),
        (reply, _) => reply,
    }
}

/// The frame with its contents blanked (errors keep their text).
fn shape(frame: Frame) -> Frame {
    match frame {
        Frame::Simple(_) => Frame::simple(""),
        Frame::Integer(_) => Frame::Integer(0),
        Frame::Bulk(_) => Frame::bulk(""),
        Frame::Array(items) => Frame::Array(items.into_iter().map(shape).collect()),
        other => other,
    }
}

/// The servers behind a target, emptied (keys, scripts, functions) before each case.
struct Backends(Vec<Conn>);

impl Backends {
    fn new(addrs: &[String]) -> Self {
        Backends(addrs.iter().map(|a| Conn::connect(a)).collect())
    }

    fn flush(&mut self) {
        for conn in &mut self.0 {
            let replies = conn.pipeline(&[vec!["FLUSHALL"], vec!["SCRIPT", "FLUSH"], vec!["FUNCTION", "FLUSH"]]);
            assert!(replies.iter().all(|r| !r.is_error()), "emptying a backend: {replies:?}");
        }
    }
}

/// Every case of a target: the replies of each, in case order.
fn run_all(addr: &str, backends: &mut Backends, cases: &[Vec<Step>]) -> (Vec<Vec<Reply>>, Duration) {
    let started = Instant::now();
    let results = cases
        .iter()
        .map(|steps| {
            backends.flush();
            run_case(addr, steps)
        })
        .collect();
    (results, started.elapsed())
}

/// twemproxy (`nutcracker`), killed on drop.
struct Twemproxy {
    child: Child,
    addr: String,
    _dir: Option<TempDir>,
}

impl Drop for Twemproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts nutcracker in front of `servers` (ketama, `hash_tag: "{}"`), on free ports; `None`
/// when it is not installed or does not start.
fn start_twemproxy(servers: &[String]) -> Option<Twemproxy> {
    if !have("nutcracker") {
        return None;
    }
    let dir = TempDir::new("differential");
    for _ in 0..5 {
        let (port, stats) = (e2e::free_port(), e2e::free_port());
        let mut yaml = format!(
            "difftest:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  hash_tag: \"{{}}\"\n  \
             distribution: ketama\n  redis: true\n  auto_eject_hosts: false\n  servers:\n"
        );
        for server in servers {
            let _ = writeln!(yaml, "   - {server}:1");
        }
        let config = dir.path().join("nutcracker.yml");
        std::fs::write(&config, yaml).ok()?;
        let child = Command::new("nutcracker")
            .arg("-c")
            .arg(&config)
            .args(["-s", &stats.to_string(), "-a", "127.0.0.1", "-o"])
            .arg(dir.path().join("nutcracker.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut twemproxy = Twemproxy { child, addr: format!("127.0.0.1:{port}"), _dir: None };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if launch::ping(&twemproxy.addr, Duration::from_secs(1)) {
                twemproxy._dir = Some(dir);
                return Some(twemproxy);
            }
            if twemproxy.child.try_wait().ok().flatten().is_some() {
                break; // its port was taken meanwhile
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    None
}

/// Two keys that a ring of `addrs` puts on different servers.
fn cross_server_keys(addrs: &[String]) -> [String; 2] {
    let mut ring = HashRing::new(PROXY_VNODES);
    ring.add_all(addrs.iter().map(String::as_str));
    let first = "xs:0".to_string();
    let owner = ring.get(first.as_bytes()).map(str::to_string);
    let second = (1..10_000)
        .map(|i| format!("xs:{i}"))
        .find(|k| ring.get(k.as_bytes()).map(str::to_string) != owner)
        .expect("a key on another server");
    [first, second]
}

/// One target's results, compared with the expected replies.
struct Column {
    name: &'static str,
    results: Vec<Vec<Reply>>,
    elapsed: Duration,
}

impl Column {
    fn identical(&self, expected: &[Vec<Reply>], i: usize) -> bool {
        self.results[i] == expected[i]
    }
}

fn is_known(case: &Case) -> Option<&'static str> {
    let id = format!("{}/{}", case.family, case.name);
    KNOWN_DIFFERENCES.iter().find(|(name, _)| *name == id).map(|(_, why)| *why)
}

fn percent(n: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

fn show_reply(reply: &Reply) -> String {
    match reply {
        Reply::Frame(frame) => show_frame(frame),
        Reply::Timeout => "<no reply in time>".into(),
        Reply::Closed => "<connection closed>".into(),
        Reply::Invalid(why) => format!("<not RESP2: {why}>"),
        Reply::Skipped => "<not read: connection given up>".into(),
    }
}

fn show_frame(frame: &Frame) -> String {
    match frame {
        Frame::Simple(s) => format!("+{}", String::from_utf8_lossy(s)),
        Frame::Error(s) => format!("-{}", String::from_utf8_lossy(s)),
        Frame::Integer(n) => format!(":{n}"),
        Frame::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Frame::Null => "(nil)".into(),
        Frame::NullArray => "(nil array)".into(),
        Frame::Array(items) => format!("[{}]", items.iter().map(show_frame).collect::<Vec<_>>().join(", ")),
        // The suite speaks RESP2: a RESP3 frame is shown as it parsed.
        other => format!("{other:?}"),
    }
}

fn show_replies(replies: &[Reply]) -> String {
    let text = replies.iter().map(show_reply).collect::<Vec<_>>().join(" | ");
    match text.char_indices().nth(SHOW_LEN) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// The report: the table per family, the known differences, the failing cases.
fn report(cases: &[Case], expected: &[Vec<Reply>], columns: &[Column]) -> String {
    let mut out = String::new();
    let families: Vec<&str> = cases.iter().fold(Vec::new(), |mut list, case| {
        if !list.contains(&case.family) {
            list.push(case.family);
        }
        list
    });
    let _ = write!(out, "\n{:<14} {:>5}", "family", "cases");
    for column in columns {
        let _ = write!(out, " {:>16}", column.name);
    }
    out.push('\n');
    let counted: Vec<usize> = (0..cases.len()).filter(|&i| is_known(&cases[i]).is_none()).collect();
    for family in &families {
        let in_family: Vec<usize> = counted.iter().copied().filter(|&i| cases[i].family == *family).collect();
        let _ = write!(out, "{:<14} {:>5}", family, in_family.len());
        for column in columns {
            let same = in_family.iter().filter(|&&i| column.identical(expected, i)).count();
            let cell = format!("{same}/{} {:>3.0}%", in_family.len(), percent(same, in_family.len()));
            let _ = write!(out, " {cell:>16}");
        }
        out.push('\n');
    }
    let _ = write!(out, "{:<14} {:>5}", "overall", counted.len());
    for column in columns {
        let same = counted.iter().filter(|&&i| column.identical(expected, i)).count();
        let cell = format!("{same}/{} {:>5.1}%", counted.len(), percent(same, counted.len()));
        let _ = write!(out, " {cell:>16}");
    }
    out.push('\n');
    let _ = write!(out, "{:<20}", "time");
    for column in columns {
        let _ = write!(out, " {:>15.1}s", column.elapsed.as_secs_f64());
    }
    out.push('\n');

    let _ = writeln!(out, "\nknown differences (left out of the figures):");
    for (i, case) in cases.iter().enumerate() {
        if let Some(why) = is_known(case) {
            let verdicts: Vec<String> = columns
                .iter()
                .map(|c| format!("{} {}", c.name, if c.identical(expected, i) { "same" } else { "differs" }))
                .collect();
            let _ = writeln!(out, "  {}/{}: {why} [{}]", case.family, case.name, verdicts.join(", "));
        }
    }

    for column in columns {
        let failing: Vec<usize> = counted.iter().copied().filter(|&i| !column.identical(expected, i)).collect();
        let _ = writeln!(out, "\n{}: {} case(s) differ from redis-server", column.name, failing.len());
        for i in failing {
            let _ = writeln!(out, "  {}/{}", cases[i].family, cases[i].name);
            let _ = writeln!(out, "    redis: {}", show_replies(&expected[i]));
            let _ = writeln!(out, "    {:<5}: {}", column.name, show_replies(&column.results[i]));
        }
    }
    out
}

#[test]
fn redis_commands_through_the_proxy_match_redis_server() {
    let cases = cases::all();
    assert!(cases.len() >= 180, "only {} cases", cases.len());
    for (i, case) in cases.iter().enumerate() {
        assert!(
            !cases[..i].iter().any(|c| c.family == case.family && c.name == case.name),
            "{}/{} twice",
            case.family,
            case.name
        );
    }
    for (known, _) in KNOWN_DIFFERENCES {
        assert!(cases.iter().any(|c| format!("{}/{}", c.family, c.name) == *known), "{known} is no case");
    }

    let reference: Process = redis_server();
    let backends: Vec<Process> = (0..3).map(|_| redis_server()).collect();
    let addrs: Vec<String> = backends.iter().map(Process::addr).collect();
    let hash_tags = e2e::proxy_knows("--hash-tag");
    let mut flags = vec!["--no-greeting"];
    if hash_tags {
        flags.extend(["--hash-tag", "{}"]);
    }
    let proxy = e2e::proxy(&addrs, &flags);
    let twemproxy = start_twemproxy(&addrs);

    let cross = cross_server_keys(&addrs);
    let steps: Vec<Vec<Step>> =
        cases.iter().map(|case| case.lines.iter().map(|line| parse_line(line, &cross)).collect()).collect();

    let mut reference_backend = Backends::new(&[reference.addr()]);
    let (expected, _) = run_all(&reference.addr(), &mut reference_backend, &steps);
    let (again, elapsed) = run_all(&reference.addr(), &mut reference_backend, &steps);
    let mut columns = vec![Column { name: "redis", results: again, elapsed }];
    let mut shared = Backends::new(&addrs);
    if let Some(twemproxy) = &twemproxy {
        let (results, elapsed) = run_all(&twemproxy.addr, &mut shared, &steps);
        columns.push(Column { name: "twemproxy", results, elapsed });
    }
    let (results, elapsed) = run_all(&proxy.addr(), &mut shared, &steps);
    columns.push(Column { name: "proxy", results, elapsed });

    let mut text = report(&cases, &expected, &columns);
    let _ = writeln!(
        text,
        "\n{} cases ({} known differences); proxy flags: {}{}",
        cases.len(),
        KNOWN_DIFFERENCES.len(),
        flags.join(" "),
        if hash_tags { "" } else { " (this proxy has no --hash-tag yet)" }
    );
    if twemproxy.is_none() {
        text.push_str("twemproxy: not measured (nutcracker is not installed or did not start)\n");
    }
    println!("{text}");
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential-report.txt");
    if std::fs::write(&path, &text).is_ok() {
        println!("report written to {}", path.display());
    }

    let counted: Vec<usize> = (0..cases.len()).filter(|&i| is_known(&cases[i]).is_none()).collect();
    let figure =
        |column: &Column| percent(counted.iter().filter(|&&i| column.identical(&expected, i)).count(), counted.len());
    let redis = &columns[0];
    let not_deterministic: Vec<String> = (0..cases.len())
        .filter(|&i| !redis.identical(&expected, i))
        .map(|i| format!("{}/{}", cases[i].family, cases[i].name))
        .collect();
    assert!(not_deterministic.is_empty(), "redis-server disagrees with itself on {not_deterministic:?}");
    let proxy_figure = figure(columns.last().expect("the proxy's column"));
    assert!(
        proxy_figure >= MIN_IDENTICAL_PERCENT,
        "the proxy matches redis-server on {proxy_figure:.1}% of the cases, below {MIN_IDENTICAL_PERCENT}%"
    );
}
