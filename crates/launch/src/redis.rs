//! A real `redis-server` on a free loopback port, with persistence off.

use std::ffi::OsStr;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::process::LogBook;
use crate::{free_port, have, Error, KeepLogs, Process};

/// How long one `redis-server` may take to answer `PING` before it is stopped and started
/// again (on another free port, unless the port was fixed).
pub const REDIS_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times [`redis_server`] starts `redis-server` before it gives up (a free port may
/// be taken by another process before `redis-server` binds it).
pub const REDIS_ATTEMPTS: usize = 10;
/// The pause between two `PING`s.
const PING_INTERVAL: Duration = Duration::from_millis(20);
/// The program [`redis_server`] starts, from the `PATH`.
const REDIS_SERVER: &str = "redis-server";

/// `PROGRAM --port PORT --bind 127.0.0.1 --save "" --appendonly no --daemonize no`: a
/// `redis-server` on a loopback port, in the foreground, writing nothing to disk. Add to it
/// (`--dir`) and set its stdio as needed.
pub fn redis_command(program: impl AsRef<OsStr>, port: u16) -> Command {
    let mut command = Command::new(program);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
    ]);
    command
}

/// Starts `redis-server` (from the `PATH`, see [`redis_command`]) on `port`, or on a free
/// port, with its output discarded, and waits until it answers `PING`. A start that exits
/// (its port was taken meanwhile) or is not ready within [`REDIS_READY_TIMEOUT`] is stopped
/// and tried again, up to [`REDIS_ATTEMPTS`] starts.
pub fn redis_server(port: Option<u16>) -> Result<Process, Error> {
    redis_server_with(port, &[])
}

/// Like [`redis_server`], with `extra` arguments after the usual ones (`--requirepass pw`).
/// A server with a password is ready when it answers `PING` with `-NOAUTH`.
pub fn redis_server_with(port: Option<u16>, extra: &[&str]) -> Result<Process, Error> {
    if !have(REDIS_SERVER) {
        return Err(Error::NotInstalled { command: REDIS_SERVER.to_string() });
    }
    for _ in 0..REDIS_ATTEMPTS {
        let port = match port {
            Some(port) => port,
            None => free_port().map_err(Error::FreePort)?,
        };
        let child = redis_command(REDIS_SERVER, port)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| Error::Spawn { name: REDIS_SERVER.to_string(), source })?;
        let logs = Arc::new(Mutex::new(LogBook::new(KeepLogs::All)));
        let mut process = Process::new(child, SocketAddr::from((Ipv4Addr::LOCALHOST, port)), logs);
        let deadline = Instant::now() + REDIS_READY_TIMEOUT;
        while Instant::now() < deadline {
            if answers(&process.addr(), deadline.saturating_duration_since(Instant::now())) {
                return Ok(process);
            }
            if process.exited().is_some() {
                break; // port taken meanwhile: try another
            }
            std::thread::sleep(PING_INTERVAL);
        }
        // Stopped here (and again, harmlessly, on drop).
        let _ = process.kill();
    }
    Err(Error::NotReady { name: REDIS_SERVER.to_string(), attempts: REDIS_ATTEMPTS })
}

/// Whether `addr` accepts a connection and answers `PING` with `+PONG` within `timeout`
/// (per read and write).
pub fn ping(addr: &str, timeout: Duration) -> bool {
    ping_reply(addr, timeout).is_some_and(|reply| reply == b"+PONG\r\n")
}

/// Whether `addr` answers `PING` with `+PONG`, or with `-NOAUTH` (it wants a password).
fn answers(addr: &str, timeout: Duration) -> bool {
    ping_reply(addr, timeout).is_some_and(|reply| reply == b"+PONG\r\n" || reply.starts_with(b"-NOAUTH"))
}

/// The first reply line to a `PING`, if one comes within `timeout`.
fn ping_reply(addr: &str, timeout: Duration) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).ok()?;
    let timeout = timeout.max(Duration::from_millis(1));
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").ok()?;
    let mut reply = Vec::with_capacity(64);
    let mut chunk = [0u8; 64];
    while !reply.ends_with(b"\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(read) => reply.extend_from_slice(&chunk[..read]),
            // A signal (SIGCHLD from a process a test killed) may land in any read.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
        if reply.len() > 512 {
            return None;
        }
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A one-connection server that reads the PING and answers `reply`.
    fn answering(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 14];
            conn.read_exact(&mut request).unwrap();
            assert_eq!(&request, b"*1\r\n$4\r\nPING\r\n");
            conn.write_all(reply).unwrap();
        });
        addr
    }

    #[test]
    fn ping_wants_pong() {
        assert!(ping(&answering(b"+PONG\r\n"), Duration::from_secs(5)));
        assert!(!ping(&answering(b"-LOADING Redis is loading the dataset in memory\r\n"), Duration::from_secs(5)));
        assert!(!ping(&answering(b"+PON"), Duration::from_secs(5)));
    }

    #[test]
    fn ping_of_nothing_is_false() {
        let port = free_port().unwrap();
        assert!(!ping(&format!("127.0.0.1:{port}"), Duration::from_millis(100)));
    }

    #[test]
    fn the_redis_command_turns_persistence_off() {
        let command = redis_command("redis-server", 7000);
        let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            ["--port", "7000", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        );
    }

    #[test]
    fn a_redis_server_starts_answers_and_stops() {
        if !have(REDIS_SERVER) {
            eprintln!("skipped: redis-server is not installed");
            return;
        }
        let mut redis = redis_server(None).unwrap();
        assert!(ping(&redis.addr(), Duration::from_secs(5)));
        assert!(redis.logs().is_empty());
        redis.kill().unwrap();
        assert!(!ping(&redis.addr(), Duration::from_millis(100)));
    }
}
