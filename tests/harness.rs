//! The end-to-end harness: starts the real `server`, `proxy` and `redis-server` processes on
//! free loopback ports, talks to them over TCP, and stops every process it started when the
//! handle drops (also when a test fails).
//!
//! Our binaries are started with `--port 0`: the OS picks a free port and the harness reads
//! it from the process's `listening on` log line, so tests never race for ports and can run
//! in parallel.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use resp::{Frame, Limits};

pub use launch::{have, Process};

/// How long a process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Read timeout of test connections: a reply that takes longer is a failure.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client program (redis-cli, python) may run.
pub const PROGRAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Binaries already built by this test process.
static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Path of one of the workspace's binaries, built (if stale) once per test process.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target profile dir").to_path_buf();
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if !built.iter().any(|b| b == name) {
        // Cargo builds only the test targets' own package's binaries: build ours (a no-op
        // when they are fresh), so a test never runs a stale binary.
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "-p", name, "--bin", name]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("running cargo build");
        assert!(status.success(), "cargo build of {name} failed");
        built.push(name.to_string());
    }
    profile_dir.join(name)
}

/// Starts one of our binaries with `--port 0` and waits for its `listening on` line.
pub fn start(binary_name: &str, args: &[&str]) -> Process {
    start_with_env(binary_name, args, &[])
}

/// Like [`start`], with extra environment variables (`RUST_LOG`).
pub fn start_with_env(binary_name: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    start_on_port(binary_name, 0, args, env)
}

/// Starts one of our binaries on `port` (0: the OS picks), e.g. to restart a killed server
/// where the proxy expects it. It runs with `RUST_LOG=info` and `NO_COLOR=1` (then `env`), and
/// every log line it prints is kept for [`Process::wait_for_log`].
pub fn start_on_port(binary_name: &str, port: u16, args: &[&str], env: &[(&str, &str)]) -> Process {
    started(
        launch::Launch::new(binary(binary_name))
            .name(binary_name)
            .port(port)
            .args(args)
            .envs(env.iter().copied())
            .timeout(START_TIMEOUT)
            .start(),
    )
}

/// The process, or a panic saying why it did not start (and the cause the OS gave, if any).
fn started(result: Result<Process, launch::Error>) -> Process {
    result.unwrap_or_else(|error| match std::error::Error::source(&error) {
        Some(cause) => panic!("{error}: {cause}"),
        None => panic!("{error}"),
    })
}

/// Starts a cache server named `name`; `extra` flags follow.
pub fn server(name: &str, extra: &[&str]) -> Process {
    let mut args = vec!["--name", name];
    args.extend_from_slice(extra);
    start("server", &args)
}

/// Starts a proxy in front of `servers` (added at start); `extra` flags follow.
pub fn proxy(servers: &[String], extra: &[&str]) -> Process {
    let list = servers.join(",");
    let mut args: Vec<&str> = Vec::new();
    if !servers.is_empty() {
        args.extend(["--servers", list.as_str()]);
    }
    args.extend_from_slice(extra);
    start("proxy", &args)
}

/// Whether the proxy binary lists `flag` (`--hash-tag`) in its `--help`, for tests that use
/// a flag newer than some builds of it.
pub fn proxy_knows(flag: &str) -> bool {
    Command::new(binary("proxy"))
        .arg("--help")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).split_whitespace().any(|word| word == flag))
}

/// Three cache servers (cache-A, B, C) and a proxy in front of them.
pub struct Cluster {
    /// The cache servers.
    pub servers: Vec<Process>,
    /// The proxy.
    pub proxy: Process,
}

impl Cluster {
    /// `n` of our servers and a proxy over all of them; `server_flags` go to each server,
    /// `proxy_flags` to the proxy.
    pub fn ours(n: usize, server_flags: &[&str], proxy_flags: &[&str]) -> Self {
        let servers: Vec<Process> =
            (0..n).map(|i| server(&format!("cache-{}", (b'A' + i as u8) as char), server_flags)).collect();
        let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
        Cluster { proxy: proxy(&addrs, proxy_flags), servers }
    }

    /// `n` real `redis-server`s and a proxy over all of them.
    pub fn redis(n: usize, proxy_flags: &[&str]) -> Self {
        let servers: Vec<Process> = (0..n).map(|_| redis_server()).collect();
        let addrs: Vec<String> = servers.iter().map(Process::addr).collect();
        Cluster { proxy: proxy(&addrs, proxy_flags), servers }
    }

    /// The servers' addresses.
    pub fn addrs(&self) -> Vec<String> {
        self.servers.iter().map(Process::addr).collect()
    }
}

/// Starts a real `redis-server` on a free port with persistence off.
pub fn redis_server() -> Process {
    redis_server_on(None)
}

/// Starts a real `redis-server` with persistence off on `port`, or on a free port.
pub fn redis_server_on(port: Option<u16>) -> Process {
    assert!(have("redis-server"), "redis-server is not installed (apt-get install -y redis-server)");
    started(launch::redis_server(port))
}

/// A port that was free a moment ago (for programs that cannot listen on port 0).
pub fn free_port() -> u16 {
    launch::free_port().expect("free port")
}

/// A test connection speaking RESP, with exact-bytes helpers for the seed's contract.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

impl Conn {
    /// Connects (no greeting is consumed).
    pub fn try_connect(addr: &str) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: BytesMut::new() })
    }

    /// Connects; panics if it cannot.
    pub fn connect(addr: &str) -> Self {
        Self::try_connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    /// Connects and reads the greeting line, which must be `expected` (e.g. `+OK proxy ready ...`).
    pub fn connect_greeted(addr: &str, expected: &str) -> Self {
        let mut conn = Self::connect(addr);
        conn.expect_lines(&[expected]);
        conn
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one inline line (LF added).
    pub fn send_line(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    /// One read, retried when a signal interrupts it (the tests kill processes, and the
    /// SIGCHLD that follows can land in any read).
    fn read_some(&mut self, chunk: &mut [u8]) -> usize {
        loop {
            match self.stream.read(chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other.expect("read"),
            }
        }
    }

    /// Reads exactly `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            let mut chunk = [0u8; 4096];
            let read = self.read_some(&mut chunk);
            assert!(read > 0, "connection closed; had {:?}", String::from_utf8_lossy(&self.buf));
            self.buf.extend_from_slice(&chunk[..read]);
        }
        self.buf.split_to(n).to_vec()
    }

    /// Reads the exact lines given (each followed by CRLF).
    pub fn expect_lines(&mut self, lines: &[&str]) {
        let expected: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        let got = self.read_bytes(expected.len());
        assert_eq!(String::from_utf8_lossy(&got), expected);
    }

    /// Sends an inline line and checks the exact reply lines.
    pub fn exchange(&mut self, line: &str, reply: &[&str]) {
        self.send_line(line);
        self.expect_lines(reply);
    }

    /// Reads one reply frame.
    pub fn read_frame(&mut self) -> Frame {
        loop {
            if let Some(frame) = Frame::parse(&mut self.buf, &Limits::default()).expect("valid reply") {
                return frame;
            }
            let mut chunk = [0u8; 64 * 1024];
            let read = self.read_some(&mut chunk);
            assert!(read > 0, "connection closed");
            self.buf.extend_from_slice(&chunk[..read]);
        }
    }

    /// Sends a multibulk command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Frame {
        let mut out = BytesMut::new();
        resp::write::command(&mut out, args);
        self.send_raw(&out);
        self.read_frame()
    }

    /// Whether the peer closed the connection (reads until EOF, bounded by the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }
}

/// A bulk reply with `text`.
pub fn bulk(text: &str) -> Frame {
    Frame::bulk(text.to_string())
}

/// The eight keys of the seed's walkthrough.
pub use demo::DEMO_KEYS;

/// `n` keys named `<prefix>:<i>`, taken in turn from each server of `ring`, so that
/// multi-key commands over them span every server (few virtual nodes spread similar keys
/// unevenly, so consecutive names alone may all land on one server).
pub fn keys_on_each_server(ring: &ring::HashRing, prefix: &str, n: usize) -> Vec<String> {
    let mut per_server: Vec<Vec<String>> = vec![Vec::new(); ring.len()];
    let want = n.div_ceil(ring.len().max(1));
    for i in 0..1_000_000 {
        let key = format!("{prefix}:{i}");
        if let Some(id) = ring.locate(key.as_bytes()) {
            let bucket = &mut per_server[id.0 as usize];
            if bucket.len() < want {
                bucket.push(key);
            }
        }
        if per_server.iter().all(|b| b.len() >= want) {
            break;
        }
    }
    let mut keys: Vec<String> = Vec::new();
    for round in 0..want {
        keys.extend(per_server.iter().filter_map(|b| b.get(round).cloned()));
    }
    keys.truncate(n);
    keys
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Conn {
    /// Sends many commands at once (pipelined) and reads all their replies.
    pub fn pipeline<A: AsRef<[u8]>>(&mut self, commands: &[Vec<A>]) -> Vec<Frame> {
        let mut out = BytesMut::new();
        for args in commands {
            resp::write::command(&mut out, args);
        }
        self.send_raw(&out);
        (0..commands.len()).map(|_| self.read_frame()).collect()
    }

    /// A field of a `field:value` text reply (INFO, MIGRATION).
    pub fn field(&mut self, command: &[&str], name: &str) -> Option<String> {
        let Frame::Bulk(text) = self.call(command) else { return None };
        let text = String::from_utf8_lossy(&text).into_owned();
        text.lines().find_map(|line| line.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string()))
    }

    /// Waits (up to `timeout`) until the proxy's migration is no longer running; its final state.
    pub fn wait_for_migration(&mut self, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.field(&["MIGRATION"], "migration").unwrap_or_default();
            if state != "running" || Instant::now() >= deadline {
                return state;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs `command` with its output captured, killed (by its pid) after `timeout`; `None` if
/// it did not finish in time.
pub fn run_bounded(command: &mut Command, timeout: Duration) -> Option<Output> {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    let mut stderr = child.stderr.take()?;
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (stdout, stderr) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    status.map(|status| Output { status, stdout, stderr })
}

/// Whether python3 can import redis-py, installing it with pip when it cannot; why not if not.
pub fn redis_py() -> Result<(), String> {
    if !have("python3") {
        return Err("python3 is not installed".into());
    }
    let imports = |timeout| {
        run_bounded(Command::new("python3").args(["-c", "import redis"]), timeout).is_some_and(|o| o.status.success())
    };
    if imports(PROGRAM_TIMEOUT) {
        return Ok(());
    }
    let pip = run_bounded(Command::new("python3").args(["-m", "pip", "install", "--quiet", "redis"]), PROGRAM_TIMEOUT);
    if imports(PROGRAM_TIMEOUT) {
        return Ok(());
    }
    Err(match pip {
        Some(output) => format!("`pip install redis` failed: {}", String::from_utf8_lossy(&output.stderr).trim()),
        None => "`pip install redis` did not finish in time".into(),
    })
}

/// A fresh directory under the system's temp dir, removed with everything in it on drop
/// (also when a test fails).
pub struct TempDir(PathBuf);

impl TempDir {
    /// `$TMPDIR/e2e-<tag>-<pid>-<n>`, created empty.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("e2e-{tag}-{}-{}", std::process::id(), free_port()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// The directory's path.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Connects to `port` on loopback from the client address 127.0.0.2 (not local to Redis).
pub fn connect_from_127_0_0_2(port: u16) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let from: std::net::SocketAddr = "127.0.0.2:0".parse().expect("address");
    socket.bind(&from.into()).expect("bind 127.0.0.2");
    let to: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    socket.connect_timeout(&to.into(), Duration::from_secs(5)).expect("connect");
    let stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
    stream
}
