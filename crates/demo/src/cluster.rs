//! A small cluster the walkthrough starts for itself: cache servers and a proxy from the
//! binaries next to the demo's own executable, each on a free port.
//!
//! Every process is started with `--port 0`; the OS picks the port and the process names it
//! in its `listening on 127.0.0.1:PORT` log line, so nothing races for ports and nothing
//! clashes with a cluster already running. Each [`Spawned`] kills (SIGKILL) and reaps its
//! process when dropped, so the processes stop on every path out of a step, errors included.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use launch::{KeepLogs, Launch, Process};

/// How long a process may take to print its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Log lines kept per process, shown when it fails to start.
const LOG_TAIL: usize = 20;

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
    /// `127.0.0.1:PORT`, from its `listening on` line.
    addr: String,
    process: Process,
}

impl Spawned {
    /// Starts `binary` with `--port 0` and `args`, and waits (up to [`START_TIMEOUT`]) for it to
    /// say where it listens. Its stderr is read on a thread until it exits, so a chatty
    /// process never blocks on a full pipe; its last lines explain a failed start.
    pub fn start(binary: &Path, label: &str, args: &[&str]) -> Result<Spawned> {
        // Started with RUST_LOG=info (the `listening on` line is logged at info) and NO_COLOR=1
        // (colour codes would only get in the way).
        let process = Launch::new(binary)
            .name(format!("{label} ({})", binary.display()))
            .args(args)
            .timeout(START_TIMEOUT)
            .keep_logs(KeepLogs::Tail(LOG_TAIL))
            .start()?;
        Ok(Spawned { label: label.to_string(), addr: process.addr(), process })
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
        self.process.pid()
    }

    /// `kill -9` and wait for it to be gone.
    pub fn kill(&mut self) -> Result<()> {
        self.process.kill().with_context(|| format!("stopping {} (pid {})", self.label, self.pid()))
    }

    /// Whether it has been stopped (killed and reaped).
    pub fn is_stopped(&self) -> bool {
        self.process.is_stopped()
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

#[cfg(test)]
mod tests {
    use super::*;

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
