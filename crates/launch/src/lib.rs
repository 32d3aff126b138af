//! Starting processes on free loopback ports, and stopping them when their handle drops.
//!
//! - [`Launch`]: one of our binaries (`server`, `proxy`), started with `--port 0` so that the OS
//!   picks a free port; the port is learned from the process's `listening on HOST:PORT` log
//!   line ([`listening_addr`]), read from its stderr on a thread that keeps its log lines (all
//!   of them or a bounded tail, [`KeepLogs`]) and drains the pipe until the process exits.
//! - [`redis_server`]: a real `redis-server` on a free port with persistence off, ready once it
//!   answers `PING` ([`redis_command`] for callers that manage the process themselves).
//! - [`Process`]: the handle; it kills (SIGKILL) and reaps the process on drop, so a process
//!   never outlives the test or the step that started it, whatever path leads out of it.
//! - [`free_port`] and [`have`]: the small helpers around them.
//!
//! Nothing here panics on what a process prints or does: failures are [`Error`]s, and what a
//! caller does with them (a panic in a test, a message in the demo) is up to the caller.
#![warn(missing_docs)]

mod error;
mod launch;
mod process;
mod redis;

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Command, Stdio};

pub use error::Error;
pub use launch::{listening_addr, Launch, DEFAULT_START_TIMEOUT, LISTENING};
pub use process::{KeepLogs, Process};
pub use redis::{ping, redis_command, redis_server, redis_server_with, REDIS_ATTEMPTS, REDIS_READY_TIMEOUT};

/// A loopback port that was free a moment ago, for programs that cannot listen on port 0
/// (`redis-server`, `nutcracker`). Another process may take it before the program binds it:
/// whoever uses it checks that the program got it, and retries with another when it did not.
pub fn free_port() -> io::Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr().map(|addr| addr.port())
}

/// Whether `command` is on the `PATH` (or, when it names a path, whether that is an executable),
/// as the shell's `command -v` finds it.
pub fn have(command: &str) -> bool {
    // The name is passed as an argument, never spliced into the script.
    Command::new("sh")
        .args(["-c", "command -v \"$1\"", "sh", command])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_is_a_real_port() {
        assert_ne!(free_port().unwrap(), 0);
    }

    #[test]
    fn have_finds_what_is_on_the_path_and_nothing_else() {
        assert!(have("sh"));
        assert!(!have("no-such-command-here"));
        // Shell syntax in the name is a name, not a command.
        assert!(!have("sh; true"));
        assert!(!have(""));
    }
}
