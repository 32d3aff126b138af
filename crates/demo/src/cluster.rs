//! A small cluster the walkthrough starts for itself: cache servers and a proxy from the
//! binaries next to the demo's own executable, each on a free port.
//!
//! Every process is started with `--port 0`; the OS picks the port and the process names it
//! in its `listening on 127.0.0.1:PORT` log line, so nothing races for ports and nothing
//! clashes with a cluster already running. Each [`Spawned`] kills (SIGKILL) and reaps its
//! process when dropped, so the processes stop on every path out of a step, errors included.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// How long a process may take to print its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines kept per process, shown when it fails to start.
const LOG_TAIL: usize = 20;
/// Checks for the exit of a process whose stderr closed, and the pause between them (1 s).
const EXIT_POLLS: usize = 50;
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// What the binaries print once they listen, before `host:port`.
const LISTENING: &str = "listening on ";

/// Path of one of the workspace's binaries, in the directory of the running demo
/// (`target/debug/server` next to `target/debug/demo`). Fails, saying how to build it, when it
/// is not there.
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the demo's own executable")?;
    let dir = exe.parent().ok_or_else(|| anyhow!("{} has no parent directory", exe.display()))?;
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        let release = if dir.file_name().is_some_and(|d| d == "release") { " --release" } else { "" };
        bail!(
            "this step starts its own cluster from the `{name}` binary next to the demo, and {} does not exist.\n\n\
             Build the binaries with:\n    cargo build{release} -p server -p proxy -p demo\n\
             or run everything with ./demo.sh --all (it builds them first)",
            path.display()
        );
    }
    Ok(path)
}

/// One process the demo started; killed and reaped when dropped.
#[derive(Debug)]
pub struct Spawned {
    label: String,
    child: Child,
    addr: String,
    /// The last [`LOG_TAIL`] lines of its stderr, for error messages.
    log: Arc<Mutex<VecDeque<String>>>,
    stopped: bool,
}

impl Spawned {
    /// Starts `binary` with `--port 0` and `args`, and waits (up to [`START_TIMEOUT`]) for it to
    /// say where it listens. Its stderr is read on a thread until it exits, so a chatty
    /// process never blocks on a full pipe.
    pub fn start(binary: &Path, label: &str, args: &[&str]) -> Result<Spawned> {
        let mut child = Command::new(binary)
            .args(["--port", "0"])
            .args(args)
            // The `listening on` line is logged at info; colour codes would only get in the way.
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {label} ({})", binary.display()))?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("{label}: no stderr pipe"))?;
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL)));
        let (addr_tx, addr_rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = listening_addr(&line) {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut tail = sink.lock().unwrap_or_else(|p| p.into_inner());
                if tail.len() == LOG_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        // From here on the guard owns the child: every early return below stops it.
        let mut spawned = Spawned { label: label.to_string(), child, addr: String::new(), log, stopped: false };
        match addr_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => {
                spawned.addr = addr;
                Ok(spawned)
            }
            Err(RecvTimeoutError::Timeout) => bail!(
                "{label} ({}) did not say `listening on` within {} s; its last log lines:\n{}",
                binary.display(),
                START_TIMEOUT.as_secs(),
                spawned.log_tail()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                // Its stderr closed: it is exiting. Give it a moment, then make sure.
                let mut status = None;
                for _ in 0..EXIT_POLLS {
                    status = spawned.child.try_wait().ok().flatten();
                    if status.is_some() {
                        break;
                    }
                    std::thread::sleep(EXIT_POLL_INTERVAL);
                }
                let status = match status {
                    Some(status) => status.to_string(),
                    None => {
                        let _ = spawned.child.kill();
                        spawned.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
                    }
                };
                spawned.stopped = true;
                bail!(
                    "{label} ({}) exited ({status}) before listening; its last log lines:\n{}",
                    binary.display(),
                    spawned.log_tail()
                )
            }
        }
    }

    /// What the walkthrough calls it: `node-1`, `proxy`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// `127.0.0.1:PORT`, where it listens.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` and wait for it to be gone.
    pub fn kill(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.child.kill().with_context(|| format!("killing {} (pid {})", self.label, self.pid()))?;
        self.child.wait().with_context(|| format!("waiting for {} (pid {})", self.label, self.pid()))?;
        self.stopped = true;
        Ok(())
    }

    /// Whether it has been stopped (killed and reaped).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    fn log_tail(&self) -> String {
        let tail = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if tail.is_empty() {
            return "    (nothing)".to_string();
        }
        tail.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Cache servers and a proxy over them, all started by the demo.
#[derive(Debug)]
pub struct LocalCluster {
    /// The proxy (dropped, so stopped, first).
    pub proxy: Spawned,
    /// The cache servers, in the order they were named.
    pub servers: Vec<Spawned>,
}

impl LocalCluster {
    /// Starts a cache server per name (`--name NAME --no-greeting`), then a proxy with
    /// `--servers` over all of them and `proxy_flags`. If any process fails to start, the
    /// ones already started are stopped before the error returns.
    pub fn start(names: &[&str], proxy_flags: &[&str]) -> Result<LocalCluster> {
        let server_bin = sibling_binary("server")?;
        let proxy_bin = sibling_binary("proxy")?;
        let mut servers = Vec::with_capacity(names.len());
        for name in names {
            servers.push(Spawned::start(&server_bin, name, &["--name", name, "--no-greeting"])?);
        }
        let list = servers.iter().map(|s| s.addr().to_string()).collect::<Vec<_>>().join(",");
        let mut args = vec!["--no-greeting", "--servers", &list];
        args.extend_from_slice(proxy_flags);
        let proxy = Spawned::start(&proxy_bin, "proxy", &args)?;
        Ok(LocalCluster { proxy, servers })
    }

    /// Kills every process still running and waits for each; how many it stopped.
    pub fn stop(mut self) -> Result<usize> {
        let mut stopped = 0;
        for process in std::iter::once(&mut self.proxy).chain(self.servers.iter_mut()) {
            if !process.is_stopped() {
                process.kill()?;
                stopped += 1;
            }
        }
        Ok(stopped)
    }
}

/// `127.0.0.1:40001` from `... listening on 127.0.0.1:40001 (replicas=3)`.
fn listening_addr(line: &str) -> Option<String> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let addr = rest.split_whitespace().next()?;
    let (host, port) = addr.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)).then(|| addr.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_gives_the_address() {
        let server = "2026-01-01T00:00:00Z  INFO [cache-A] listening on 127.0.0.1:33567 (greeting=false)";
        assert_eq!(listening_addr(server).as_deref(), Some("127.0.0.1:33567"));
        let proxy = "INFO [proxy] listening on 127.0.0.1:44381 (replicas=3)";
        assert_eq!(listening_addr(proxy).as_deref(), Some("127.0.0.1:44381"));
        assert_eq!(listening_addr("listening on 127.0.0.1:0"), None);
        assert_eq!(listening_addr("Added server: 127.0.0.1:6381"), None);
    }

    #[test]
    fn a_missing_binary_says_how_to_build_it() {
        let err = sibling_binary("no-such-binary-here").unwrap_err().to_string();
        assert!(err.contains("cargo build") && err.contains("-p server -p proxy"), "{err}");
        assert!(err.contains("./demo.sh --all"), "{err}");
    }

    #[test]
    fn a_process_that_never_listens_is_stopped_and_explained() {
        // `sh -c` ignores --port and exits at once: the error names it and nothing is left.
        let err = Spawned::start(Path::new("/bin/sh"), "shell", &["-c", "echo nope >&2"]).unwrap_err().to_string();
        assert!(err.contains("shell") && err.contains("before listening"), "{err}");
    }
}
