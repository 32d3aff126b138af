//! Starting one of our binaries on a free port and learning the port from its log.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::process::{lock, LogBook, SharedLogs};
use crate::{Error, KeepLogs, Process};

/// What our binaries log once they listen, before `HOST:PORT`.
pub const LISTENING: &str = "listening on ";
/// How long a process may take to print its `listening on` line unless told otherwise.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Checks for the exit of a process whose stderr closed before it listened, and the pause
/// between them (1 s in all); it is killed if it is still running after that.
const EXIT_POLLS: usize = 50;
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How to start one of our binaries (`server`, `proxy`): `PROGRAM --port PORT ARGS...` with
/// `RUST_LOG=info` (the `listening on` line is logged at info) and `NO_COLOR=1` (plain log
/// lines), stdin and stdout closed, stderr read on a thread.
///
/// ```no_run
/// let server = launch::Launch::new("target/debug/server").args(["--name", "cache-A"]).start()?;
/// println!("{} listens on {}", server.pid(), server.addr());
/// # Ok::<(), launch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Launch {
    program: PathBuf,
    name: String,
    port: u16,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
    keep: KeepLogs,
}

impl Launch {
    /// `program` on port 0 (the OS picks a free one), named by its path in errors, given
    /// [`DEFAULT_START_TIMEOUT`] to listen, keeping all its log lines.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        let program = program.into();
        Launch {
            name: program.display().to_string(),
            program,
            port: 0,
            args: Vec::new(),
            env: Vec::new(),
            timeout: DEFAULT_START_TIMEOUT,
            keep: KeepLogs::All,
        }
    }

    /// What to call it in errors (`cache-A`, `proxy (target/debug/proxy)`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The port to pass as `--port` (0, the default, lets the OS pick; a fixed one restarts a
    /// process where others expect it).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Adds arguments after `--port PORT`.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable (after, so over, `RUST_LOG=info` and `NO_COLOR=1`).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// Sets several environment variables, as [`Launch::env`] does.
    pub fn envs<I, K, V>(self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        vars.into_iter().fold(self, |launch, (key, value)| launch.env(key, value))
    }

    /// How long it may take to print its `listening on` line.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Which of its log lines to keep.
    pub fn keep_logs(mut self, keep: KeepLogs) -> Self {
        self.keep = keep;
        self
    }

    /// Starts it and waits (up to the timeout) for its `listening on` line. Its stderr is read
    /// on a thread until it exits, so a chatty process never blocks on a full pipe. When it
    /// does not start listening, it is killed and reaped before the error returns.
    pub fn start(self) -> Result<Process, Error> {
        let mut command = Command::new(&self.program);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let spawn_error = |source| Error::Spawn { name: self.name.clone(), source };
        let mut child = command.spawn().map_err(spawn_error)?;
        let stderr = child.stderr.take();
        let logs = Arc::new(Mutex::new(LogBook::new(self.keep)));
        // From here on the handle owns the child: every early return below stops it.
        let mut process = Process::new(child, SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)), Arc::clone(&logs));
        let stderr = stderr.ok_or_else(|| spawn_error(std::io::Error::other("its stderr is not piped")))?;
        let (found_tx, found_rx) = mpsc::channel();
        std::thread::Builder::new().spawn(move || read_log(stderr, &logs, found_tx)).map_err(spawn_error)?;
        match found_rx.recv_timeout(self.timeout) {
            Ok(addr) => {
                process.listening_on(addr);
                Ok(process)
            }
            Err(RecvTimeoutError::Timeout) => {
                Err(Error::Timeout { name: self.name, after: self.timeout, logs: process.logs() })
            }
            Err(RecvTimeoutError::Disconnected) => {
                // Its stderr closed: it is exiting. Give it a moment, then make sure.
                let status = process.wait_for_exit(EXIT_POLLS, EXIT_POLL_INTERVAL);
                Err(Error::Exited { name: self.name, status, logs: process.logs() })
            }
        }
    }
}

/// Reads `stderr` line by line until it closes, keeping the lines in `logs` and sending the
/// address of the first `listening on` line to `found`. A line that is not UTF-8 is kept
/// with replacement characters; reading stops only at the end of the pipe (or an error).
fn read_log(stderr: impl Read, logs: &SharedLogs, found: Sender<SocketAddr>) {
    let mut reader = BufReader::new(stderr);
    let mut found = Some(found);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = String::from_utf8_lossy(line).into_owned();
        let addr = listening_addr(&line);
        // Kept before the address is announced, so that the caller's logs include the line.
        lock(logs).push(line);
        if let Some(addr) = addr {
            if let Some(found) = found.take() {
                let _ = found.send(addr);
            }
        }
    }
}

/// The address in a `listening on HOST:PORT` log line: `127.0.0.1:40001` from
/// `... INFO [proxy] listening on 127.0.0.1:40001 (replicas=3)`. `None` for any other line,
/// and for port 0 (not a port anyone listens on).
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let addr: SocketAddr = rest.split_whitespace().next()?.parse().ok()?;
    (addr.port() != 0).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn addr(line: &str) -> Option<String> {
        listening_addr(line).map(|a| a.to_string())
    }

    #[test]
    fn the_listening_line_gives_the_address() {
        let server = "2026-01-01T00:00:00Z  INFO [cache-A] listening on 127.0.0.1:33567 (greeting=false)";
        assert_eq!(addr(server).as_deref(), Some("127.0.0.1:33567"));
        let proxy = "INFO [proxy] listening on 127.0.0.1:44381 (replicas=3)";
        assert_eq!(addr(proxy).as_deref(), Some("127.0.0.1:44381"));
        assert_eq!(addr("listening on 127.0.0.1:6379").as_deref(), Some("127.0.0.1:6379"));
        assert_eq!(addr("listening on [::1]:6379 (x)").as_deref(), Some("[::1]:6379"));
    }

    #[test]
    fn other_lines_give_no_address() {
        assert_eq!(addr("listening on 127.0.0.1:0"), None);
        assert_eq!(addr("Added server: 127.0.0.1:6381"), None);
        assert_eq!(addr("INFO [cache-A] listening on  (greeting=false)"), None);
        assert_eq!(addr("listening on localhost:6379"), None);
        assert_eq!(addr("listening on 127.0.0.1:99999"), None);
        assert_eq!(addr("listening on 127.0.0.1"), None);
        assert_eq!(addr("listening on"), None);
        assert_eq!(addr(""), None);
    }

    #[test]
    fn log_lines_are_kept_and_the_first_address_announced() {
        let logs = Arc::new(Mutex::new(LogBook::new(KeepLogs::All)));
        let (tx, rx) = mpsc::channel();
        let stderr: &[u8] =
            b"starting\r\nlistening on 127.0.0.1:7001 (a)\nlistening on 127.0.0.1:7002\n\xff bytes\nlast";
        read_log(stderr, &logs, tx);
        assert_eq!(rx.try_iter().map(|a| a.port()).collect::<Vec<_>>(), [7001]);
        assert_eq!(
            lock(&logs).to_vec(),
            ["starting", "listening on 127.0.0.1:7001 (a)", "listening on 127.0.0.1:7002", "\u{fffd} bytes", "last"]
        );
    }

    /// A stand-in for our binaries: a shell script that takes `--port PORT` and acts as
    /// `$FAKE` says; removed when dropped.
    struct Fake(PathBuf);

    impl Fake {
        fn new() -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("launch-fake-{}-{n}.sh", std::process::id()));
            let script = r#"#!/bin/sh
port=$2; [ "$port" = 0 ] && port=4242
case "$FAKE" in
  listen) echo "env $RUST_LOG $NO_COLOR $EXTRA args $*" >&2
          echo "INFO [fake] listening on 0.0.0.0:$port (x)" >&2; exec sleep 30 ;;
  chatty) i=0; while [ $i -lt 20000 ]; do echo "noise $i" >&2; i=$((i+1)); done
          echo "INFO [fake] listening on 127.0.0.1:$port" >&2; exec sleep 30 ;;
  silent) exec sleep 30 ;;
  *)      echo "oops" >&2; exit 3 ;;
esac
"#;
            std::fs::write(&path, script).unwrap();
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).unwrap();
            Fake(path)
        }

        fn launch(&self) -> Launch {
            Launch::new(&self.0)
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// Starts the fake, retrying while another test thread's fork still holds the script open
    /// for writing (ETXTBSY).
    fn start(launch: Launch) -> Result<Process, Error> {
        for _ in 0..100 {
            match launch.clone().start() {
                Err(Error::Spawn { source, .. }) if source.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => return other,
            }
        }
        launch.start()
    }

    fn gone(pid: u32) -> bool {
        !Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn a_started_process_listens_where_its_log_says_and_dies_with_its_handle() {
        let fake = Fake::new();
        let process = start(fake.launch().args(["--flag"]).env("FAKE", "listen").env("EXTRA", "x")).unwrap();
        assert_eq!(process.port, 4242);
        // It listens on every address: reached on loopback.
        assert_eq!(process.addr(), "127.0.0.1:4242");
        let logs = process.logs();
        assert_eq!(logs[0], "env info 1 x args --port 0 --flag");
        assert!(logs[1].contains("listening on"), "{logs:?}");
        assert!(process.wait_for_log("[fake]", Duration::from_secs(5)));
        assert!(!process.wait_for_log("never printed", Duration::from_millis(50)));
        let pid = process.pid();
        drop(process);
        assert!(gone(pid));
    }

    #[test]
    fn a_fixed_port_is_passed_and_the_environment_can_be_overridden() {
        let fake = Fake::new();
        let mut process = start(fake.launch().port(5151).envs([("FAKE", "listen"), ("RUST_LOG", "debug")])).unwrap();
        assert_eq!(process.port, 5151);
        assert!(process.logs()[0].starts_with("env debug 1"), "{:?}", process.logs());
        let pid = process.pid();
        process.kill().unwrap();
        assert!(process.is_stopped() && gone(pid));
        process.kill().unwrap();
    }

    #[test]
    fn a_chatty_process_never_blocks_and_only_its_tail_is_kept() {
        let fake = Fake::new();
        let process = start(fake.launch().env("FAKE", "chatty").keep_logs(KeepLogs::Tail(3))).unwrap();
        let logs = process.logs();
        assert_eq!(logs, ["noise 19998", "noise 19999", "INFO [fake] listening on 127.0.0.1:4242"]);
    }

    #[test]
    fn a_process_that_never_listens_is_killed_after_the_timeout() {
        let fake = Fake::new();
        let started = Instant::now();
        let error =
            start(fake.launch().name("quiet").env("FAKE", "silent").timeout(Duration::from_millis(200))).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(&error, Error::Timeout { name, logs, .. } if name == "quiet" && logs.is_empty()), "{error}");
        assert!(error.to_string().contains("did not say `listening on` within 0.2 s"), "{error}");
    }

    #[test]
    fn a_process_that_exits_early_is_explained() {
        let fake = Fake::new();
        let error = start(fake.launch().name("early").env("FAKE", "exit")).unwrap_err();
        match &error {
            Error::Exited { name, status, logs } => {
                assert_eq!(name, "early");
                assert_eq!(status.and_then(|s| s.code()), Some(3));
                assert_eq!(logs, &["oops"]);
            }
            other => panic!("{other}"),
        }
        assert!(error.to_string().contains("early exited (exit status: 3) before listening"), "{error}");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let error = Launch::new("/no/such/program").start().unwrap_err();
        assert!(matches!(&error, Error::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound));
        assert_eq!(error.to_string(), "starting /no/such/program");
    }
}
