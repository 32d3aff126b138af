//! Connection and introspection commands that the server and the proxy answer alike:
//! PING, ECHO, SELECT, CLIENT, HELLO, COMMAND, CONFIG.

use bytes::{Bytes, BytesMut};
use resp::{write, Frame};

/// The Redis version reported to clients (HELLO, INFO): the command set follows Redis 7.
pub const REDIS_VERSION: &str = "7.0.0";

/// The commands [`run`] answers.
pub const COMMANDS: &[&str] = &["PING", "ECHO", "SELECT", "CLIENT", "HELLO", "COMMAND", "CONFIG"];

/// Answers one of [`COMMANDS`] (argument count already checked) into `out`; the error text
/// on failure. `name` is the table's upper-case name, `who` the name HELLO reports.
pub fn run(name: &str, args: &[Bytes], who: &str, out: &mut BytesMut) -> Result<(), String> {
    match name {
        "PING" => match args.get(1) {
            Some(message) => write::bulk(out, message),
            None => write::simple(out, b"PONG"),
        },
        "ECHO" => write::bulk(out, &args[1]),
        "SELECT" if &args[1][..] == b"0" => write::simple(out, b"OK"),
        "SELECT" => return Err("ERR DB index is out of range".into()),
        "CLIENT" => client(args, out)?,
        "HELLO" => hello(args, who, out)?,
        // redis-cli asks COMMAND DOCS at start for hints; an empty answer keeps it happy.
        "COMMAND" if args.get(1).is_some_and(|a| a.eq_ignore_ascii_case(b"COUNT")) => {
            write::integer(out, resp::command::COMMANDS.len() as i64)
        }
        "COMMAND" => write::array_header(out, 0),
        "CONFIG" => config(args, out)?,
        _ => return Err("ERR unknown command".into()),
    }
    Ok(())
}

/// CLIENT SETNAME|SETINFO|GETNAME|ID|INFO: enough for client libraries to connect.
fn client(args: &[Bytes], out: &mut BytesMut) -> Result<(), String> {
    match args[1].to_ascii_uppercase().as_slice() {
        b"SETNAME" | b"SETINFO" => write::simple(out, b"OK"),
        b"GETNAME" => write::null(out),
        b"ID" => write::integer(out, 1),
        b"INFO" => write::bulk(out, b"id=1 db=0"),
        _ => return Err("ERR unknown CLIENT subcommand".into()),
    }
    Ok(())
}

/// HELLO [2]: RESP2 only.
fn hello(args: &[Bytes], who: &str, out: &mut BytesMut) -> Result<(), String> {
    if args.get(1).is_some_and(|v| &v[..] != b"2") {
        return Err("NOPROTO this server speaks RESP2 only".into());
    }
    let fields = [
        ("server", Frame::bulk("redis")),
        ("version", Frame::bulk(REDIS_VERSION)),
        ("proto", Frame::Integer(2)),
        ("id", Frame::Integer(1)),
        ("mode", Frame::bulk("standalone")),
        ("role", Frame::bulk("master")),
        ("modules", Frame::Array(vec![])),
        ("name", Frame::bulk(who.to_string())),
    ];
    let items = fields.into_iter().flat_map(|(k, v)| [Frame::bulk(k), v]).collect();
    Frame::Array(items).encode(out);
    Ok(())
}

/// CONFIG GET parameter: what redis-benchmark asks at start. CONFIG SET and RESETSTAT are
/// accepted and ignored.
fn config(args: &[Bytes], out: &mut BytesMut) -> Result<(), String> {
    match (args[1].to_ascii_uppercase().as_slice(), args.get(2)) {
        (b"GET", Some(parameter)) => {
            let value: Option<&[u8]> = match parameter.to_ascii_lowercase().as_slice() {
                b"save" => Some(b""),
                b"appendonly" => Some(b"no"),
                b"databases" => Some(b"1"),
                _ => None,
            };
            match value {
                Some(value) => {
                    write::array_header(out, 2);
                    write::bulk(out, parameter);
                    write::bulk(out, value);
                }
                None => write::array_header(out, 0),
            }
        }
        (b"SET" | b"RESETSTAT", _) => write::simple(out, b"OK"),
        _ => return Err("ERR usage: CONFIG GET parameter".into()),
    }
    Ok(())
}
