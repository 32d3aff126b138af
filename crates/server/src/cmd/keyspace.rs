//! Keyspace commands: DEL, EXISTS, KEYS, SCAN, DBSIZE, FLUSHALL, FLUSHDB, EXPIRE, PEXPIRE,
//! PERSIST, TTL, PTTL.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::write;

use super::{int_arg, show, Outcome, Reply};
use crate::store::Ttl;
use crate::Ctx;

/// The commands this module runs.
pub const COMMANDS: &[&str] =
    &["del", "exists", "keys", "scan", "dbsize", "flushall", "flushdb", "expire", "pexpire", "persist", "ttl", "pttl"];

/// SCAN's default COUNT, as in Redis.
const DEFAULT_SCAN_COUNT: usize = 10;

pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let store = &ctx.store;
    match name {
        "del" => {
            let removed = args[1..].iter().filter(|key| store.remove(key)).count();
            if ctx.log_requests {
                tracing::info!("[{}] DEL {} -> {removed}", ctx.name, show(&args[1..].join(&b' ')));
            }
            write::integer(out, removed as i64);
        }
        "exists" => write::integer(out, args[1..].iter().filter(|key| store.contains(key)).count() as i64),
        "keys" => {
            // The seed's `KEYS` lists `+key` lines; Redis's `KEYS pattern` answers bulk strings.
            let keys = store.keys(args.get(1).map_or(&b"*"[..], |p| &p[..]));
            let write_key = if args.len() == 1 { write::text } else { write::bulk };
            write::array_header(out, keys.len());
            keys.iter().for_each(|key| write_key(out, key));
        }
        "scan" => scan(ctx, args, out)?,
        "dbsize" => write::integer(out, store.len() as i64),
        "flushall" | "flushdb" => {
            store.clear();
            write::simple(out, b"OK");
        }
        "expire" | "pexpire" => {
            let n = int_arg(&args[2])?;
            let unit = if name == "expire" { 1000 } else { 1 };
            let ttl = Duration::from_millis(u64::try_from(n).unwrap_or(0).saturating_mul(unit));
            write::integer(out, i64::from(store.expire(&args[1], Some(ttl))));
        }
        "persist" => {
            let had_ttl = matches!(store.ttl(&args[1]), Ttl::Millis(_));
            write::integer(out, i64::from(had_ttl && store.expire(&args[1], None)));
        }
        _ => {
            let reply = match store.ttl(&args[1]) {
                Ttl::Missing => -2,
                Ttl::Persistent => -1,
                Ttl::Millis(ms) if name == "ttl" => ((ms + 500) / 1000) as i64,
                Ttl::Millis(ms) => ms as i64,
            };
            write::integer(out, reply);
        }
    }
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count]
fn scan(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or(Reply::Other("ERR invalid cursor".into()))?;
    let mut pattern = None;
    let mut count = DEFAULT_SCAN_COUNT;
    for option in args[2..].chunks(2) {
        match (option[0].to_ascii_uppercase().as_slice(), option.get(1)) {
            (b"MATCH", Some(p)) => pattern = Some(&p[..]),
            (b"COUNT", Some(n)) => {
                count = usize::try_from(int_arg(n)?).ok().filter(|&n| n > 0).ok_or(Reply::Syntax)?;
            }
            _ => return Err(Reply::Syntax),
        }
    }
    let (next, keys) = ctx.store.scan(cursor, count, pattern);
    write::array_header(out, 2);
    write::bulk(out, next.to_string().as_bytes());
    write::array_header(out, keys.len());
    keys.iter().for_each(|key| write::bulk(out, key));
    Ok(())
}
