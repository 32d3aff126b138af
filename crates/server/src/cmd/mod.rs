//! Commands: argument checks from the shared table (`resp::command`), then one module per
//! family applies them to the store and writes the reply.

mod admin;
mod keyspace;
mod strings;

use bytes::{Bytes, BytesMut};
use resp::Request;

use crate::Ctx;

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Flush and close (QUIT).
    Quit,
}

/// Runs one request and appends its reply to `out`.
pub fn execute(ctx: &Ctx, request: &Request, out: &mut BytesMut) -> Flow {
    ctx.stats.record_command();
    let Some(spec) = resp::command::lookup(request.name()) else {
        resp::write::error(out, b"ERR unknown command");
        return Flow::Continue;
    };
    let args = &request.args[..];
    if !spec.accepts(args.len()) {
        resp::write::error(out, spec.usage_error().as_bytes());
        return Flow::Continue;
    }
    let handled = match spec.name {
        "QUIT" => {
            resp::write::simple(out, b"BYE");
            return Flow::Quit;
        }
        name if strings::COMMANDS.contains(&name) => strings::run(ctx, name, args, out),
        name if keyspace::COMMANDS.contains(&name) => keyspace::run(ctx, name, args, out),
        name if admin::runs(name) => admin::run(ctx, name, args, out),
        _ => Err(Reply::UnknownCommand),
    };
    if let Err(error) = handled {
        resp::write::error(out, error.text().as_bytes());
    }
    Flow::Continue
}

/// An error reply of a command, with Redis's wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A command of the proxy's (ADD_SERVER, ROUTE, ...) sent to a cache server.
    UnknownCommand,
    /// Options that do not parse.
    Syntax,
    /// An argument that should be an integer.
    NotAnInteger,
    /// An expire time that is not positive.
    InvalidExpire(&'static str),
    /// INCR on a value that would overflow.
    Overflow,
    /// Anything else, with its text.
    Other(String),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::UnknownCommand => "ERR unknown command".into(),
            Reply::Syntax => "ERR syntax error".into(),
            Reply::NotAnInteger => "ERR value is not an integer or out of range".into(),
            Reply::InvalidExpire(cmd) => format!("ERR invalid expire time in '{cmd}' command"),
            Reply::Overflow => "ERR increment or decrement would overflow".into(),
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
