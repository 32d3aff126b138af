//! Server commands: WHOAMI and INFO; the connection commands shared with the proxy.

use bytes::{Bytes, BytesMut};
use resp::{write, Protocol};
use service::common;

use super::{Outcome, Reply};
use crate::Ctx;

/// The commands this module runs (table names); the connection commands are shared with
/// the proxy ([`common::COMMANDS`]).
pub const COMMANDS: &[&str] = &["whoami", "info"];

/// Runs one of [`COMMANDS`]; INFO's text is a verbatim string in RESP3, as Redis sends it.
pub fn run(ctx: &Ctx, name: &str, _args: &[Bytes], proto: Protocol, out: &mut BytesMut) -> Outcome {
    match name {
        "whoami" => write::simple(out, ctx.name.as_bytes()),
        "info" => write::verbatim(out, proto, info(ctx).as_bytes()),
        _ => return Err(Reply::Other(format!("ERR {name} is not an admin command"))),
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
        common::REDIS_VERSION,
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
