//! Keyspace commands: DEL, UNLINK, EXISTS, TOUCH, KEYS, SCAN, DBSIZE, FLUSHALL, FLUSHDB,
//! EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX|XX|GT|LT), EXPIRETIME, PEXPIRETIME, PERSIST,
//! TTL, PTTL, TYPE, RENAME, RENAMENX, COPY, RANDOMKEY, OBJECT, WAIT.

use bytes::{Bytes, BytesMut};
use resp::{write, Protocol};

use super::{int_arg, show, Outcome, Reply};
use crate::store::{Change, Expiry, Policy, Ttl};
use crate::Ctx;

/// The commands this module runs.
pub const COMMANDS: &[&str] = &[
    "del",
    "unlink",
    "exists",
    "touch",
    "keys",
    "scan",
    "dbsize",
    "flushall",
    "flushdb",
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "expiretime",
    "pexpiretime",
    "persist",
    "ttl",
    "pttl",
    "type",
    "rename",
    "renamenx",
    "copy",
    "randomkey",
    "object|encoding",
    "object|freq",
    "object|idletime",
    "object|refcount",
    "object|help",
    "memory|usage",
    "wait",
];

/// Redis 7.0's OBJECT HELP, line for line.
const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// Strings up to this length are `embstr` in Redis's OBJECT ENCODING.
const EMBSTR_MAX: usize = 44;
/// Redis shares the integers below this (OBJECT REFCOUNT answers `i32::MAX` for them).
const SHARED_INTEGERS: i64 = 10_000;

/// SCAN's default COUNT, as in Redis.
const DEFAULT_SCAN_COUNT: usize = 10;

/// Runs one of [`COMMANDS`]; a missing key's nil is written in the client's protocol.
pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], proto: Protocol, out: &mut BytesMut) -> Outcome {
    let store = &ctx.store;
    match name {
        "del" | "unlink" => {
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
        "touch" => write::integer(out, args[1..].iter().filter(|key| store.touch_key(key)).count() as i64),
        "expire" | "pexpire" | "expireat" | "pexpireat" => expire(ctx, name, args, out)?,
        "expiretime" | "pexpiretime" => {
            let reply = match store.peek(&args[1]) {
                None => -2,
                Some((_, None)) => -1,
                Some((_, Some(at))) if name == "expiretime" => ((at + 500) / 1000) as i64,
                Some((_, Some(at))) => at as i64,
            };
            write::integer(out, reply);
        }
        "type" => write::simple(out, if store.peek(&args[1]).is_some() { b"string" } else { b"none" }),
        "rename" | "renamenx" => rename(ctx, name == "renamenx", args, out)?,
        "copy" => copy(ctx, args, out)?,
        "randomkey" => match store.random_key() {
            Some(key) => write::bulk(out, &key),
            None => write::null(out, proto),
        },
        "wait" => {
            int_arg(&args[1])?;
            int_arg(&args[2])?;
            write::integer(out, 0);
        }
        "memory|usage" => {
            // MEMORY USAGE key [SAMPLES count]: the count is checked, as Redis does; a
            // string has nothing to sample.
            for option in args[3..].chunks(2) {
                match option {
                    [word, count] if word.eq_ignore_ascii_case(b"SAMPLES") => {
                        if int_arg(count)? < 0 {
                            return Err(Reply::Syntax);
                        }
                    }
                    _ => return Err(Reply::Syntax),
                }
            }
            match store.memory_usage(&args[2]) {
                Some(bytes) => write::integer(out, bytes as i64),
                None => write::null(out, proto),
            }
        }
        "object|help" => {
            write::array_header(out, OBJECT_HELP.len());
            OBJECT_HELP.iter().for_each(|line| write::simple(out, line.as_bytes()));
        }
        "object|encoding" | "object|refcount" => match store.peek(&args[2]) {
            None => write::null(out, proto),
            Some((value, _)) => {
                let int = value.len() <= 20 && crate::store::parse_i64(&value).is_some();
                if name == "object|encoding" {
                    let encoding = match (int, value.len() <= EMBSTR_MAX) {
                        (true, _) => "int",
                        (false, true) => "embstr",
                        (false, false) => "raw",
                    };
                    write::bulk(out, encoding.as_bytes());
                } else {
                    let shared = int
                        && crate::store::parse_i64(&value).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
                        && (store.maxmemory() == 0
                            || !matches!(
                                store.policy(),
                                Policy::AllKeysLru | Policy::AllKeysLfu | Policy::VolatileLru | Policy::VolatileLfu
                            ));
                    write::integer(out, if shared { i64::from(i32::MAX) } else { 1 });
                }
            }
        },
        "object|freq" | "object|idletime" => {
            let lfu = store.policy().is_lfu();
            if name == "object|freq" && !lfu {
                return Err(Reply::Other(format!("ERR An LFU maxmemory policy is not selected, {POLICY_NOTE}")));
            }
            if name == "object|idletime" && lfu {
                return Err(Reply::Other(format!("ERR An LFU maxmemory policy is selected, {IDLE_NOTE}")));
            }
            match store.access(&args[2]) {
                None => write::null(out, proto),
                Some(access) if lfu => write::integer(out, i64::from(access.freq)),
                Some(access) => write::integer(out, access.idle_secs as i64),
            }
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

const POLICY_NOTE: &str = "access frequency not tracked. Please note that when switching between policies at \
                           runtime LRU and LFU data will take some time to adjust.";
const IDLE_NOTE: &str = "idle time not tracked. Please note that when switching between policies at runtime LRU \
                         and LFU data will take some time to adjust.";

/// EXPIRE key seconds [NX|XX|GT|LT], and PEXPIRE, EXPIREAT, PEXPIREAT: Redis 7.0's
/// `expireGenericCommand`, checks in its order.
fn expire(ctx: &Ctx, name: &str, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &args[3..] {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => return Err(Reply::Other(format!("ERR Unsupported option {}", String::from_utf8_lossy(option)))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::Other("ERR NX and XX, GT or LT options at the same time are not compatible".into()));
    }
    if gt && lt {
        return Err(Reply::Other("ERR GT and LT options at the same time are not compatible".into()));
    }
    let when = int_arg(&args[2])?;
    let invalid = || Reply::Other(format!("ERR invalid expire time in '{name}' command"));
    let when = if name == "expire" || name == "expireat" { when.checked_mul(1000).ok_or_else(invalid)? } else { when };
    let base = if name.ends_with("at") { 0 } else { ctx.store.unix_now_ms() as i64 };
    let when = when.checked_add(base).ok_or_else(invalid)?;
    let applied = ctx.store.update(&args[1], |view| {
        let Some(view) = view else { return (Change::Keep, false) };
        let current = view.expires_at.map(|at| at as i64);
        let refused = (nx && current.is_some())
            || (xx && current.is_none())
            || (gt && current.is_none_or(|c| when <= c))
            || (lt && current.is_some_and(|c| when >= c));
        if refused {
            return (Change::Keep, false);
        }
        // A time in the past removes the key.
        (Change::Expire(Expiry::At(u64::try_from(when).unwrap_or(0))), true)
    });
    write::integer(out, i64::from(applied));
    Ok(())
}

/// RENAME key newkey, RENAMENX key newkey: the value and its expiry move.
fn rename(ctx: &Ctx, nx: bool, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let (from, to) = (&args[1], &args[2]);
    let Some((value, expires_at)) = ctx.store.peek(from) else {
        return Err(Reply::Other("ERR no such key".into()));
    };
    if from == to {
        match nx {
            true => write::integer(out, 0),
            false => write::simple(out, b"OK"),
        }
        return Ok(());
    }
    if nx && ctx.store.peek(to).is_some() {
        write::integer(out, 0);
        return Ok(());
    }
    ctx.store.remove(from);
    ctx.store.put(to, &value, expires_at);
    match nx {
        true => write::integer(out, 1),
        false => write::simple(out, b"OK"),
    }
    Ok(())
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let mut replace = false;
    let mut db = 0;
    let mut rest = args[3..].iter();
    while let Some(option) = rest.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" => db = int_arg(rest.next().ok_or(Reply::Syntax)?)?,
            _ => return Err(Reply::Syntax),
        }
    }
    if db != 0 {
        return Err(Reply::Other("ERR DB index is out of range".into()));
    }
    let (from, to) = (&args[1], &args[2]);
    if from == to {
        return Err(Reply::Other("ERR source and destination objects are the same".into()));
    }
    let Some((value, expires_at)) = ctx.store.peek(from) else {
        write::integer(out, 0);
        return Ok(());
    };
    if !replace && ctx.store.peek(to).is_some() {
        write::integer(out, 0);
        return Ok(());
    }
    ctx.store.put(to, &value, expires_at);
    write::integer(out, 1);
    Ok(())
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
///
/// Every key here is a string: `TYPE string` (any case) filters nothing, any other type name
/// filters everything, as Redis 7.0 answers for a type it holds no key of (or does not know).
fn scan(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let cursor = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|c| c.parse::<u64>().ok())
        .ok_or(Reply::Other("ERR invalid cursor".into()))?;
    let mut pattern = None;
    let mut count = DEFAULT_SCAN_COUNT;
    // No TYPE: every key.
    let mut only_strings = true;
    for option in args[2..].chunks(2) {
        match (option[0].to_ascii_uppercase().as_slice(), option.get(1)) {
            (b"MATCH", Some(p)) => pattern = Some(&p[..]),
            (b"COUNT", Some(n)) => {
                count = usize::try_from(int_arg(n)?).ok().filter(|&n| n > 0).ok_or(Reply::Syntax)?;
            }
            (b"TYPE", Some(t)) => only_strings = t.eq_ignore_ascii_case(b"string"),
            _ => return Err(Reply::Syntax),
        }
    }
    let (next, mut keys) = ctx.store.scan(cursor, count, pattern);
    if !only_strings {
        keys.clear();
    }
    write::array_header(out, 2);
    write::bulk(out, next.to_string().as_bytes());
    write::array_header(out, keys.len());
    keys.iter().for_each(|key| write::bulk(out, key));
    Ok(())
}
