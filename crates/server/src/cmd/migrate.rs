//! MIGRATE: moves keys to another server in one step, as Redis does, so that the proxy can
//! move a key between owners without a window in which another command sees it on both or
//! on neither.
//!
//! Like Redis, the command talks to the target synchronously (connect, send `RESTORE`, read
//! the reply, each bounded by the timeout), and deletes a key here only after the target
//! answered `+OK` for it. Redis gets its atomicity from its single thread; this server has
//! several event loops, so the keys of one shard are read, sent in one write, answered and
//! deleted under that shard's lock
//! ([`Store::take_together`](crate::store::Store::take_together)): no command on those keys,
//! on any event loop, runs between the read and the delete. The price is the same as Redis's
//! (which blocks everything meanwhile): the keys of that shard wait for the target's answer,
//! one round trip per shard touched.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::write;

use super::{dump, int_arg, Outcome, Reply};
use crate::Ctx;

/// The commands this module runs (table names).
pub const COMMANDS: &[&str] = &["migrate"];

/// The timeout Redis uses when given 0 or less.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
/// The longest reply line read from the target (its replies to AUTH, SELECT and RESTORE
/// are one line each; Redis reads at most 1 KiB).
const MAX_REPLY_LINE: u64 = 4096;

/// One MIGRATE, parsed.
#[derive(Debug)]
struct Migrate<'a> {
    host: &'a [u8],
    port: &'a [u8],
    db: i64,
    timeout: Duration,
    /// Keep the keys here (COPY).
    copy: bool,
    /// Overwrite the target's keys (REPLACE).
    replace: bool,
    /// AUTH password, or AUTH2 username password.
    auth: Option<(Option<&'a Bytes>, &'a Bytes)>,
    keys: &'a [Bytes],
}

/// MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE] [AUTH password]
/// [AUTH2 username password] [KEYS key [key ...]]
///
/// Replies `+NOKEY` when none of the keys is here, `+OK` when every key found reached the
/// target, or the target's first error (`ERR Target instance replied with error: ...`);
/// keys the target refused stay here.
pub fn run(ctx: &Ctx, _name: &str, args: &[Bytes], _protocol: resp::Protocol, out: &mut BytesMut) -> Outcome {
    let migrate = parse(args)?;
    // Redis answers NOKEY before it connects: a key that expired or moved meanwhile is a
    // normal condition, not an error.
    if !migrate.keys.iter().any(|key| ctx.store.peek(key).is_some()) {
        write::simple(out, b"NOKEY");
        return Ok(());
    }
    let mut target = Target::connect(migrate.host, migrate.port, migrate.timeout)?;
    let mut preamble = BytesMut::new();
    let mut preamble_replies = 0;
    if let Some((user, password)) = migrate.auth {
        match user {
            Some(user) => write::command(&mut preamble, &[&b"AUTH"[..], user, password]),
            None => write::command(&mut preamble, &[&b"AUTH"[..], password]),
        }
        preamble_replies += 1;
    }
    if migrate.db != 0 {
        write::command(&mut preamble, &[&b"SELECT"[..], migrate.db.to_string().as_bytes()]);
        preamble_replies += 1;
    }
    if preamble_replies > 0 {
        target.send(&preamble)?;
        for _ in 0..preamble_replies {
            let line = target.read_line()?;
            if line.first() == Some(&b'-') {
                return Err(target_error(&line));
            }
        }
    }
    let mut first_error: Option<Vec<u8>> = None;
    // The keys of one shard go together: read, sent in one write, their replies read, and the
    // accepted ones deleted, all under that shard's lock (one round trip per shard, not per
    // key, as Redis pipelines its RESTOREs).
    let mut groups: Vec<(usize, Vec<Bytes>)> = Vec::new();
    for key in migrate.keys {
        let shard = ctx.store.shard_of(key);
        match groups.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, keys)) => keys.push(key.clone()),
            None => groups.push((shard, vec![key.clone()])),
        }
    }
    for (_, keys) in &groups {
        let sent = ctx.store.take_together(keys, |views| {
            let now = ctx.store.unix_now_ms();
            let mut restores = BytesMut::new();
            let mut sent: Vec<usize> = Vec::new();
            for (i, (key, view)) in keys.iter().zip(views).enumerate() {
                let Some(view) = view else { continue };
                // The time left, as Redis sends it: relative milliseconds, at least 1; 0 is none.
                let ttl = match view.expires_at {
                    None => 0,
                    Some(at) => match at.checked_sub(now) {
                        Some(left) if left > 0 => left,
                        _ => continue,
                    },
                };
                let ttl = ttl.to_string();
                let payload = dump::payload(view.value);
                let mut restore: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), &payload];
                if migrate.replace {
                    restore.push(b"REPLACE");
                }
                write::command(&mut restores, &restore);
                sent.push(i);
            }
            if sent.is_empty() {
                return (Vec::new(), Ok(()));
            }
            if let Err(error) = target.send(&restores) {
                return (Vec::new(), Err(error));
            }
            // The keys to delete here: those the target accepted, unless they are copies.
            let mut moved = Vec::new();
            for i in sent {
                match target.read_line() {
                    // Keys whose reply never came stay here: the target may not have them.
                    Err(error) => return (moved, Err(error)),
                    Ok(line) if line.first() == Some(&b'-') => {
                        first_error.get_or_insert(line);
                    }
                    Ok(_) if migrate.copy => {}
                    // The target has it: only now does it leave this server.
                    Ok(_) => moved.push(i),
                }
            }
            (moved, Ok(()))
        });
        sent?;
    }
    match first_error {
        Some(line) => Err(target_error(&line)),
        None => {
            write::simple(out, b"OK");
            Ok(())
        }
    }
}

/// Parses the arguments, with Redis's checks in Redis's order (options, then the timeout
/// and the database).
fn parse(args: &[Bytes]) -> Result<Migrate<'_>, Reply> {
    let mut migrate = Migrate {
        host: &args[1],
        port: &args[2],
        db: 0,
        timeout: DEFAULT_TIMEOUT,
        copy: false,
        replace: false,
        auth: None,
        keys: &args[3..4],
    };
    let mut at = 6;
    while at < args.len() {
        let more = args.len() - 1 - at;
        match args[at].to_ascii_uppercase().as_slice() {
            b"COPY" => migrate.copy = true,
            b"REPLACE" => migrate.replace = true,
            b"AUTH" if more >= 1 => {
                migrate.auth = Some((None, &args[at + 1]));
                at += 1;
            }
            b"AUTH2" if more >= 2 => {
                migrate.auth = Some((Some(&args[at + 1]), &args[at + 2]));
                at += 2;
            }
            b"KEYS" => {
                if !args[3].is_empty() {
                    return Err(Reply::Other(
                        "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string".into(),
                    ));
                }
                migrate.keys = &args[at + 1..];
                break;
            }
            _ => return Err(Reply::Syntax),
        }
        at += 1;
    }
    let timeout = int_arg(&args[5])?;
    migrate.db = int_arg(&args[4])?;
    if timeout > 0 {
        migrate.timeout = Duration::from_millis(timeout as u64);
    }
    Ok(migrate)
}

/// The target's error, as Redis passes it back.
fn target_error(line: &[u8]) -> Reply {
    let text = line.strip_prefix(b"-").unwrap_or(line);
    Reply::Other(format!("ERR Target instance replied with error: {}", String::from_utf8_lossy(text)))
}

/// Redis's error when the target cannot be reached or does not answer in time.
fn io_error(writing: bool) -> Reply {
    Reply::Other(format!("IOERR error or timeout {} to target instance", if writing { "writing" } else { "reading" }))
}

/// A blocking connection to the target, every step bounded by the timeout.
struct Target {
    stream: BufReader<TcpStream>,
}

impl Target {
    /// Connects to `host:port`; Redis reports a refused or timed-out connect as a write error.
    fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Result<Self, Reply> {
        let host = std::str::from_utf8(host).map_err(|_| io_error(true))?;
        let port: u16 = std::str::from_utf8(port).ok().and_then(|p| p.parse().ok()).ok_or_else(|| io_error(true))?;
        let addrs = (host, port).to_socket_addrs().map_err(|_| io_error(true))?;
        for addr in addrs {
            let Ok(stream) = TcpStream::connect_timeout(&addr, timeout) else { continue };
            stream.set_read_timeout(Some(timeout)).map_err(|_| io_error(false))?;
            stream.set_write_timeout(Some(timeout)).map_err(|_| io_error(true))?;
            // Each RESTORE waits for its reply: do not let Nagle hold it back.
            stream.set_nodelay(true).map_err(|_| io_error(true))?;
            return Ok(Self { stream: BufReader::new(stream) });
        }
        Err(io_error(true))
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), Reply> {
        self.stream.get_mut().write_all(bytes).map_err(|_| io_error(true))
    }

    /// One reply line, without its CRLF.
    fn read_line(&mut self) -> Result<Vec<u8>, Reply> {
        let mut line = Vec::new();
        let read = (&mut self.stream).take(MAX_REPLY_LINE).read_until(b'\n', &mut line).map_err(|_| io_error(false))?;
        if read == 0 || !line.ends_with(b"\r\n") {
            return Err(io_error(false));
        }
        line.truncate(line.len() - 2);
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|a| Bytes::copy_from_slice(if a == "''" { b"" } else { a.as_bytes() })).collect()
    }

    #[test]
    fn parses_options_and_the_keys_form_with_redis_errors() {
        let a = args("MIGRATE h 1 k 0 5 COPY REPLACE AUTH2 u p");
        let m = parse(&a).unwrap();
        assert!(m.copy && m.replace);
        assert_eq!(m.keys, &a[3..4]);
        assert_eq!(m.timeout, Duration::from_millis(5));
        assert_eq!(m.auth.map(|(u, p)| (u.cloned(), p.clone())), Some((Some(a[9].clone()), a[10].clone())));

        let a = args("MIGRATE h 1 '' 0 0 AUTH p KEYS a b");
        let m = parse(&a).unwrap();
        assert_eq!(m.keys, &a[9..]);
        assert_eq!(m.timeout, DEFAULT_TIMEOUT);

        assert_eq!(parse(&args("MIGRATE h 1 k 0 5 AUTH")).unwrap_err(), Reply::Syntax);
        assert_eq!(parse(&args("MIGRATE h 1 k 0 5 AUTH2 u")).unwrap_err(), Reply::Syntax);
        assert_eq!(parse(&args("MIGRATE h 1 k 0 5 FOO")).unwrap_err(), Reply::Syntax);
        assert_eq!(parse(&args("MIGRATE h 1 k 0 x")).unwrap_err(), Reply::NotAnInteger);
        assert!(
            matches!(parse(&args("MIGRATE h 1 k 0 5 KEYS a")).unwrap_err(), Reply::Other(t) if t.contains("empty string"))
        );
    }
}
