//! Why a process did not start.

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a process did not start (or did not become ready). The process itself, if it ran, has
/// been killed and reaped by the time the caller sees this.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The program could not be started, or its stderr could not be read.
    Spawn {
        /// What was started, as the caller named it.
        name: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// It did not print its `listening on` line in time.
    Timeout {
        /// What was started.
        name: String,
        /// How long it was given.
        after: Duration,
        /// The log lines it printed meanwhile (as many as it kept).
        logs: Vec<String>,
    },
    /// It exited (or closed its stderr) before printing its `listening on` line.
    Exited {
        /// What was started.
        name: String,
        /// Its exit status, when it could be collected.
        status: Option<ExitStatus>,
        /// The log lines it printed (as many as it kept).
        logs: Vec<String>,
    },
    /// A program needed is not on the `PATH`.
    NotInstalled {
        /// The program.
        command: String,
    },
    /// It started on every attempt but never answered `PING` (or lost its port each time).
    NotReady {
        /// What was started.
        name: String,
        /// How many times it was started.
        attempts: usize,
    },
    /// No free port could be found.
    FreePort(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn { name, .. } => write!(f, "starting {name}"),
            Error::Timeout { name, after, logs } => write!(
                f,
                "{name} did not say `listening on` within {} s; its last log lines:\n{}",
                after.as_secs_f64(),
                Indented(logs)
            ),
            Error::Exited { name, status, logs } => {
                let status = status.map_or_else(|| "status unknown".to_string(), |s| s.to_string());
                write!(f, "{name} exited ({status}) before listening; its last log lines:\n{}", Indented(logs))
            }
            Error::NotInstalled { command } => write!(f, "{command} is not installed (not on the PATH)"),
            Error::NotReady { name, attempts } => {
                write!(f, "{name} did not answer PING after any of {attempts} starts")
            }
            Error::FreePort(_) => write!(f, "finding a free loopback port"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn { source, .. } | Error::FreePort(source) => Some(source),
            _ => None,
        }
    }
}

/// Log lines, each indented by four spaces, or `(nothing)`.
struct Indented<'a>(&'a [String]);

impl fmt::Display for Indented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "    (nothing)");
        }
        for (i, line) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "    {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_names_the_process_and_shows_its_logs() {
        let error = Error::Timeout {
            name: "node-1 (target/debug/server)".to_string(),
            after: Duration::from_secs(10),
            logs: vec!["one".to_string(), "two".to_string()],
        };
        assert_eq!(
            error.to_string(),
            "node-1 (target/debug/server) did not say `listening on` within 10 s; its last log lines:\n    one\n    two"
        );
    }

    #[test]
    fn an_early_exit_without_logs_says_so() {
        let error = Error::Exited { name: "proxy".to_string(), status: None, logs: Vec::new() };
        assert_eq!(
            error.to_string(),
            "proxy exited (status unknown) before listening; its last log lines:\n    (nothing)"
        );
    }
}
