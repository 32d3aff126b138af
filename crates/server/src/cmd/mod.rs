//! Commands: looked up once in the shared table (`resp::command`), argument count checked
//! against it, then run by the family module whose handler table claims them.

mod admin;
mod bits;
mod dump;
mod keyspace;
mod migrate;
mod strings;

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use resp::command::{Command, Flags, LookupError};
use resp::Request;
use service::auth::{self, Gate};
use service::common::{self, ClientState};

use crate::Ctx;

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Flush and close (QUIT).
    Quit,
}

/// The command families, each a module with a `run` and a list of the table rows it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Strings,
    Bits,
    Keyspace,
    Dump,
    Migrate,
    Admin,
    /// SHUTDOWN: stops the server; no reply, as Redis (the connection closes).
    Shutdown,
    /// The connection commands shared with the proxy (`service::common`).
    Connection,
    /// AUTH, answered by `service::auth`'s gate before dispatch.
    Auth,
    Quit,
}

/// Every table row the server claims, and the family that runs it.
fn claims() -> impl Iterator<Item = (&'static str, Family)> {
    let family = |names: &'static [&'static str], family| names.iter().map(move |n| (*n, family));
    // CONFIG GET/SET are the server's own (maxmemory); the rest of `common` is shared.
    let shared = common::COMMANDS.iter().filter(|n| !admin::COMMANDS.contains(n)).map(|n| (*n, Family::Connection));
    family(strings::COMMANDS, Family::Strings)
        .chain(family(bits::COMMANDS, Family::Bits))
        .chain(family(keyspace::COMMANDS, Family::Keyspace))
        .chain(family(dump::COMMANDS, Family::Dump))
        .chain(family(migrate::COMMANDS, Family::Migrate))
        .chain(family(admin::COMMANDS, Family::Admin))
        .chain(family(&["shutdown"], Family::Shutdown))
        .chain(shared)
        .chain(family(&["auth"], Family::Auth))
        .chain(family(&["quit"], Family::Quit))
}

/// The handler of every command, indexed by [`Command::id`].
static HANDLERS: LazyLock<Vec<Option<Family>>> = LazyLock::new(|| {
    let table = resp::command::table();
    let mut handlers = vec![None; table.commands().len()];
    for (name, family) in claims() {
        if let Some(command) = table.by_name(name) {
            handlers[command.id] = Some(family);
        }
    }
    handlers
});

/// Whether the server runs `command` (what `COMMAND` lists).
pub fn serves(command: &Command) -> bool {
    HANDLERS.get(command.id).is_some_and(|h| h.is_some())
}

/// Runs one request and appends its reply to `out`.
pub fn execute(ctx: &Ctx, client: &mut ClientState, request: &Request, out: &mut BytesMut) -> Flow {
    ctx.stats.record_command();
    let args = &request.args[..];
    let command = match resp::command::lookup(args) {
        Ok(command) => command,
        Err(error) => {
            unknown(request, error, out);
            return Flow::Continue;
        }
    };
    let Some(family) = HANDLERS.get(command.id).copied().flatten() else {
        match held_elsewhere(command) {
            Some(kind) => resp::write::error(out, strings_only(kind).as_bytes()),
            None => unknown(request, LookupError::UnknownCommand, out),
        }
        return Flow::Continue;
    };
    if !command.accepts(args.len()) {
        resp::write::error(out, command.arity_error(request.raw.is_none()).as_bytes());
        return Flow::Continue;
    }
    match ctx.auth.gate(command, args, client) {
        Gate::Run => {}
        Gate::Ok => {
            resp::write::simple(out, b"OK");
            return Flow::Continue;
        }
        Gate::Error(text) => {
            resp::write::error(out, text.as_bytes());
            // Too many wrong passwords: this reply is the connection's last.
            return if auth::must_close(client) { Flow::Quit } else { Flow::Continue };
        }
    }
    if command.flags.contains(Flags::DENYOOM) && ctx.store.refuses_writes() {
        resp::write::error(out, OOM.as_bytes());
        return Flow::Continue;
    }
    let handled = match family {
        Family::Quit => {
            // The seed's `+BYE` to a person typing, Redis's `+OK` to programs.
            resp::write::simple(out, if request.raw.is_none() { b"BYE" } else { b"OK" });
            return Flow::Quit;
        }
        Family::Shutdown => {
            return match admin::shutdown(ctx, args) {
                // Redis answers a SHUTDOWN that goes ahead by closing the connection.
                Ok(()) => Flow::Quit,
                Err(error) => {
                    resp::write::error(out, error.text().as_bytes());
                    Flow::Continue
                }
            };
        }
        Family::Strings => strings::run(ctx, command.name, args, client.protocol, out),
        Family::Bits => bits::run(ctx, command.name, args, client.protocol, out),
        Family::Keyspace => keyspace::run(ctx, command.name, args, client.protocol, out),
        Family::Dump => dump::run(ctx, command.name, args, client.protocol, out),
        Family::Migrate => migrate::run(ctx, command.name, args, client.protocol, out),
        Family::Admin => admin::run(ctx, command.name, args, client.protocol, out),
        Family::Connection => common::run(command, args, client, serves, out).map_err(Reply::Other),
        Family::Auth => Err(Reply::Other("ERR AUTH is answered before dispatch".into())),
    };
    if let Err(error) = handled {
        resp::write::error(out, error.text().as_bytes());
    }
    Flow::Continue
}

/// Redis's reply to a denyoom command when `maxmemory` is reached and nothing can be evicted.
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// The ACL categories of data types this server does not hold, and what to call them: a
/// command of one of them (HSET, LPUSH, ...) is in the table but not served here.
const OTHER_TYPES: &[(&str, &str)] = &[
    ("@hash", "hashes"),
    ("@list", "lists"),
    ("@set", "sets"),
    ("@sortedset", "sorted sets"),
    ("@stream", "streams"),
    ("@geo", "geo indexes"),
    ("@hyperloglog", "HyperLogLogs"),
];

/// The data type `command` works on, when it is one this server does not hold (from the
/// command table's ACL categories).
fn held_elsewhere(command: &Command) -> Option<&'static str> {
    OTHER_TYPES.iter().find(|(category, _)| command.info.acl_categories.contains(category)).map(|(_, kind)| *kind)
}

/// The error for a command of a type the server does not hold.
fn strings_only(kind: &str) -> String {
    format!("ERR this cache server holds strings only; put the proxy in front of redis-servers for {kind}")
}

/// The seed's `-ERR unknown command` for a person typing (inline), Redis's wording, which
/// names the command, for programs.
fn unknown(request: &Request, error: LookupError, out: &mut BytesMut) {
    if request.raw.is_none() {
        resp::write::error(out, b"ERR unknown command");
    } else {
        resp::write::error(out, error.reply_text(&request.args).as_bytes());
    }
}

/// An error reply of a command, with Redis's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Options that do not parse.
    Syntax,
    /// An argument that should be an integer.
    NotAnInteger,
    /// An expire time that is not positive.
    InvalidExpire(&'static str),
    /// INCR on a value that would overflow.
    Overflow,
    /// An argument that should be a float.
    NotAFloat,
    /// An offset or index out of range.
    OutOfRange,
    /// A string would grow past 512 MiB.
    TooLong,
    /// Anything else, with its text.
    Other(String),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Syntax => "ERR syntax error".into(),
            Reply::NotAnInteger => "ERR value is not an integer or out of range".into(),
            Reply::InvalidExpire(cmd) => format!("ERR invalid expire time in '{cmd}' command"),
            Reply::Overflow => "ERR increment or decrement would overflow".into(),
            Reply::NotAFloat => "ERR value is not a valid float".into(),
            Reply::OutOfRange => "ERR offset is out of range".into(),
            Reply::TooLong => "ERR string exceeds maximum allowed size (proto-max-bulk-len)".into(),
            Reply::Other(text) => text.clone(),
        }
    }
}

/// The result of a family's `run`: the reply is already in `out` when `Ok`.
type Outcome = Result<(), Reply>;

/// An argument as a decimal i64.
fn int_arg(arg: &Bytes) -> Result<i64, Reply> {
    crate::store::parse_i64(arg).ok_or(Reply::NotAnInteger)
}

/// Bytes as text for logs, non-printable bytes escaped (`\x00`, `\n`, `\"`).
fn show(bytes: &[u8]) -> service::escape::Printable<'_> {
    service::escape::printable(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_the_server_claims_is_in_the_table_and_handled() {
        let table = resp::command::table();
        for (name, family) in claims() {
            let command = table.by_name(name).unwrap_or_else(|| panic!("{name} is not in the command table"));
            assert_eq!(HANDLERS[command.id], Some(family), "{name}");
        }
        assert!(serves(table.by_name("get").unwrap()));
        assert!(!serves(table.by_name("add_server").unwrap()), "ring commands are the proxy's");
        assert_eq!(held_elsewhere(table.by_name("hset").unwrap()), Some("hashes"));
        assert_eq!(held_elsewhere(table.by_name("lpush").unwrap()), Some("lists"));
        assert_eq!(held_elsewhere(table.by_name("pfadd").unwrap()), Some("HyperLogLogs"));
        assert_eq!(held_elsewhere(table.by_name("subscribe").unwrap()), None);
    }
}
