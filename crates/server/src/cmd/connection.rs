//! Connection commands: PING, ECHO, WHOAMI, SELECT, CLIENT, HELLO.

use bytes::{Bytes, BytesMut};
use resp::{write, Frame};

use super::{Outcome, Reply};
use crate::Ctx;

/// The commands this module runs.
pub const COMMANDS: &[&str] = &["PING", "ECHO", "WHOAMI", "SELECT", "CLIENT", "HELLO"];

pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    match name {
        "PING" => match args.get(1) {
            Some(message) => write::bulk(out, message),
            None => write::simple(out, b"PONG"),
        },
        "ECHO" => write::bulk(out, &args[1]),
        "WHOAMI" => write::simple(out, ctx.name.as_bytes()),
        "SELECT" => {
            if &args[1][..] != b"0" {
                return Err(Reply::Other("ERR DB index is out of range".into()));
            }
            write::simple(out, b"OK");
        }
        "CLIENT" => client(args, out)?,
        _ => hello(ctx, args, out)?,
    }
    Ok(())
}

/// CLIENT SETNAME|SETINFO|GETNAME|ID|INFO: enough for client libraries to connect.
fn client(args: &[Bytes], out: &mut BytesMut) -> Outcome {
    match args[1].to_ascii_uppercase().as_slice() {
        b"SETNAME" | b"SETINFO" => write::simple(out, b"OK"),
        b"GETNAME" => write::null(out),
        b"ID" => write::integer(out, 1),
        b"INFO" => write::bulk(out, b"id=1 db=0"),
        _ => return Err(Reply::Other("ERR unknown CLIENT subcommand".into())),
    }
    Ok(())
}

/// HELLO [2]: RESP2 only.
fn hello(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    if args.get(1).is_some_and(|v| &v[..] != b"2") {
        return Err(Reply::Other("NOPROTO this server speaks RESP2 only".into()));
    }
    let fields = [
        ("server", Frame::bulk("redis")),
        ("version", Frame::bulk(crate::REDIS_VERSION)),
        ("proto", Frame::Integer(2)),
        ("id", Frame::Integer(1)),
        ("mode", Frame::bulk("standalone")),
        ("role", Frame::bulk("master")),
        ("modules", Frame::Array(vec![])),
        ("name", Frame::bulk(ctx.name.clone())),
    ];
    let items = fields
        .into_iter()
        .flat_map(|(k, v)| [Frame::bulk(k), v])
        .collect();
    Frame::Array(items).encode(out);
    Ok(())
}
