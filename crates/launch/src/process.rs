//! The handle of a started process, and the log lines kept from it.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often [`Process::wait_for_log`] looks at the logs again.
const LOG_POLL: Duration = Duration::from_millis(20);

/// Which of a process's log lines (stderr) to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepLogs {
    /// Every line, for tests that look for a line ([`Process::wait_for_log`]).
    All,
    /// The last `n` lines, for an error message about a long-running process.
    Tail(usize),
}

/// The lines kept from one process's stderr, shared with the thread that reads it.
#[derive(Debug)]
pub(crate) struct LogBook {
    keep: KeepLogs,
    lines: VecDeque<String>,
}

impl LogBook {
    pub(crate) fn new(keep: KeepLogs) -> Self {
        LogBook { keep, lines: VecDeque::new() }
    }

    /// Adds a line, dropping the oldest one when only a tail is kept and it is full.
    pub(crate) fn push(&mut self, line: String) {
        if let KeepLogs::Tail(n) = self.keep {
            if n == 0 {
                return;
            }
            while self.lines.len() >= n {
                self.lines.pop_front();
            }
        }
        self.lines.push_back(line);
    }

    pub(crate) fn to_vec(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}

/// The log lines of a process, shared between its handle and its stderr reader.
pub(crate) type SharedLogs = Arc<Mutex<LogBook>>;

/// Locks the logs even if a thread panicked while holding the lock: a list of lines stays valid.
pub(crate) fn lock(logs: &SharedLogs) -> MutexGuard<'_, LogBook> {
    logs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A process this crate started: killed (SIGKILL) and reaped when dropped.
pub struct Process {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    /// The address it listens on (loopback when it listens on every address).
    ip: IpAddr,
    /// Its log lines (stderr), as many as it keeps; none when its stderr is not read.
    logs: SharedLogs,
    /// Whether it has been killed and reaped.
    stopped: bool,
}

impl Process {
    /// Wraps a started child that listens (or will listen) on `addr`.
    pub(crate) fn new(child: Child, addr: SocketAddr, logs: SharedLogs) -> Self {
        let mut process = Process { child, port: 0, ip: Ipv4Addr::LOCALHOST.into(), logs, stopped: false };
        process.listening_on(addr);
        process
    }

    /// Records where it listens; an unspecified address (`0.0.0.0`, `::`) is reached on loopback.
    pub(crate) fn listening_on(&mut self, addr: SocketAddr) {
        self.port = addr.port();
        self.ip = match addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.into(),
            IpAddr::V6(ip) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
    }

    /// Where to connect to it: `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A copy of the log lines kept so far (empty for a process whose stderr is not read).
    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).to_vec()
    }

    /// Waits (up to `timeout`) until a log line contains `needle`; whether one did.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if lock(&self.logs).lines.iter().any(|line| line.contains(needle)) {
                return true;
            }
            std::thread::sleep(LOG_POLL);
        }
        false
    }

    /// `kill -9`, and waits for it to be gone. Does nothing when it is already stopped.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.stopped {
            return Ok(());
        }
        // One that exited on its own (and was reaped by `try_wait`) needs no signal.
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
            self.child.wait()?;
        }
        self.stopped = true;
        Ok(())
    }

    /// Sends `signal` (a name `kill` knows: `TERM`, `INT`, ...) and waits up to `timeout` for
    /// the process to exit; its exit status, or `None` if it did not exit in time (it is then
    /// killed, so the caller can report a process that ignores the signal).
    pub fn stop_with(&mut self, signal: &str, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        self.signal(signal)?;
        self.wait_exit(timeout)
    }

    /// Waits up to `timeout` for the process to exit by itself (after a SHUTDOWN, say); its
    /// exit status, or `None` if it did not exit in time (it is then killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                self.stopped = true;
                return Ok(Some(status));
            }
            std::thread::sleep(LOG_POLL);
        }
        self.kill()?;
        Ok(None)
    }

    /// Sends `signal` (a name `kill` knows: `TERM`, `STOP`, `CONT`, ...) without waiting.
    pub fn signal(&self, signal: &str) -> io::Result<()> {
        let sent = std::process::Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status()?;
        if !sent.success() {
            return Err(io::Error::other(format!("kill -{signal} {} failed", self.pid())));
        }
        Ok(())
    }

    /// Whether it has been stopped (killed and reaped).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Its exit status if it has exited (reaping it), else `None`.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for it to exit, polling `polls` times `interval` apart; kills it if it has not by
    /// then. Its exit status, if it could be collected.
    pub(crate) fn wait_for_exit(&mut self, polls: usize, interval: Duration) -> Option<ExitStatus> {
        for _ in 0..polls {
            if let Some(status) = self.exited() {
                self.stopped = true;
                return Some(status);
            }
            std::thread::sleep(interval);
        }
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        self.stopped = true;
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid())
            .field("addr", &self.addr())
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(book: &LogBook) -> Vec<String> {
        book.to_vec()
    }

    #[test]
    fn a_tail_keeps_the_last_lines() {
        let mut book = LogBook::new(KeepLogs::Tail(2));
        for line in ["a", "b", "c"] {
            book.push(line.to_string());
        }
        assert_eq!(lines(&book), ["b", "c"]);
    }

    #[test]
    fn all_keeps_every_line_and_an_empty_tail_none() {
        let mut all = LogBook::new(KeepLogs::All);
        let mut none = LogBook::new(KeepLogs::Tail(0));
        for i in 0..100 {
            all.push(i.to_string());
            none.push(i.to_string());
        }
        assert_eq!(all.lines.len(), 100);
        assert!(none.lines.is_empty());
    }
}
