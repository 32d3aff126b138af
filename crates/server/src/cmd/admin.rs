//! Server commands: INFO, COMMAND, CONFIG.

use bytes::{Bytes, BytesMut};
use resp::write;

use super::{Outcome, Reply};
use crate::Ctx;

/// The commands this module runs.
pub const COMMANDS: &[&str] = &["INFO", "COMMAND", "CONFIG"];

pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    match name {
        "INFO" => write::bulk(out, info(ctx).as_bytes()),
        // redis-cli asks COMMAND DOCS at start for hints; an empty answer keeps it happy.
        "COMMAND"
            if args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"COUNT")) =>
        {
            write::integer(out, resp::command::COMMANDS.len() as i64)
        }
        "COMMAND" => write::array_header(out, 0),
        _ => config(args, out)?,
    }
    Ok(())
}

/// CONFIG GET parameter: what redis-benchmark asks at start. CONFIG SET/RESETSTAT are
/// accepted and ignored.
fn config(args: &[Bytes], out: &mut BytesMut) -> Outcome {
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
        _ => return Err(Reply::Other("ERR usage: CONFIG GET parameter".into())),
    }
    Ok(())
}

fn info(ctx: &Ctx) -> String {
    let keys = ctx.store.len();
    let expires = ctx.store.volatile_len();
    format!(
        "# Server\r\nredis_version:{}\r\nserver_name:{}\r\nchd_version:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n\
         uptime_in_seconds:{}\r\n\r\n# Clients\r\nconnected_clients:{}\r\n\r\n# Memory\r\nused_memory:{}\r\n\r\n\
         # Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\r\n# Keyspace\r\n{}",
        crate::REDIS_VERSION,
        ctx.name,
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        ctx.port,
        ctx.started.elapsed().as_secs(),
        ctx.stats.clients(),
        ctx.store.memory_estimate(),
        ctx.stats.connections(),
        ctx.stats.commands(),
        if keys > 0 { format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n") } else { String::new() },
    )
}
