//! String commands: GET, SET, MGET, MSET, INCR, DECR, INCRBY, DECRBY.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::{write, Protocol};

use super::{int_arg, show, Outcome, Reply};
use crate::store::{ttl_until_unix_ms, IncrError, SetOptions};
use crate::Ctx;

/// The commands this module runs (table names).
pub const COMMANDS: &[&str] = &["get", "set", "mget", "mset", "incr", "decr", "incrby", "decrby"];

/// Runs one of [`COMMANDS`]; a miss is written in the client's protocol (`$-1` or `_`).
pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], proto: Protocol, out: &mut BytesMut) -> Outcome {
    match name {
        "get" => get(ctx, &args[1], proto, out),
        "set" => set(ctx, args, proto, out)?,
        "mget" => {
            write::array_header(out, args.len() - 1);
            for key in &args[1..] {
                ctx.store.get_with(key, |value| bulk_or_null(out, proto, value));
            }
        }
        "mset" if args.len().is_multiple_of(2) => {
            return Err(Reply::Other("ERR wrong number of arguments for 'mset' command".into()));
        }
        "mset" => {
            for pair in args[1..].chunks_exact(2) {
                ctx.store.set(&pair[0], &pair[1], SetOptions::default(), false);
            }
            write::simple(out, b"OK");
        }
        _ => incr(ctx, name, args, out)?,
    }
    Ok(())
}

/// GET key
fn get(ctx: &Ctx, key: &[u8], proto: Protocol, out: &mut BytesMut) {
    ctx.store.get_with(key, |value| {
        if ctx.log_requests {
            match value {
                Some(v) => tracing::info!("[{}] GET {} -> {}", ctx.name, show(key), show(v)),
                None => tracing::info!("[{}] GET {} -> (nil)", ctx.name, show(key)),
            }
        }
        bulk_or_null(out, proto, value)
    });
}

fn bulk_or_null(out: &mut BytesMut, proto: Protocol, value: Option<&[u8]>) {
    match value {
        Some(v) => write::bulk(out, v),
        None => write::null(out, proto),
    }
}

/// SET key value [EX seconds|PX milliseconds|EXAT unix-s|PXAT unix-ms|KEEPTTL] [NX|XX] [GET]
fn set(ctx: &Ctx, args: &[Bytes], proto: Protocol, out: &mut BytesMut) -> Outcome {
    let (key, value) = (&args[1], &args[2]);
    let (options, want_old) = set_options(&args[3..])?;
    let (stored, old) = ctx.store.set(key, value, options, want_old);
    if ctx.log_requests {
        tracing::info!("[{}] SET {} = {}", ctx.name, show(key), show(value));
    }
    match (want_old, stored) {
        (true, _) => bulk_or_null(out, proto, old.as_deref()),
        (false, true) => write::simple(out, b"OK"),
        (false, false) => write::null(out, proto),
    }
    Ok(())
}

fn set_options(args: &[Bytes]) -> Result<(SetOptions, bool), Reply> {
    let mut options = SetOptions::default();
    let mut want_old = false;
    let mut rest = args.iter();
    while let Some(word) = rest.next() {
        let word = word.to_ascii_uppercase();
        match &word[..] {
            b"NX" if !options.only_if_present => options.only_if_absent = true,
            b"XX" if !options.only_if_absent => options.only_if_present = true,
            b"GET" => want_old = true,
            b"KEEPTTL" if options.ttl.is_none() => options.keep_ttl = true,
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if options.ttl.is_none() && !options.keep_ttl => {
                let n = int_arg(rest.next().ok_or(Reply::Syntax)?)?;
                let n = u64::try_from(n).ok().filter(|&n| n > 0).ok_or(Reply::InvalidExpire("set"))?;
                options.ttl = Some(match &word[..] {
                    b"EX" => Duration::from_secs(n),
                    b"PX" => Duration::from_millis(n),
                    b"EXAT" => ttl_until_unix_ms(n.saturating_mul(1000)),
                    _ => ttl_until_unix_ms(n),
                });
            }
            _ => return Err(Reply::Syntax),
        }
    }
    Ok((options, want_old))
}

/// INCR key, DECR key, INCRBY key n, DECRBY key n
fn incr(ctx: &Ctx, name: &str, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let amount = match args.get(2) {
        Some(arg) => int_arg(arg)?,
        None => 1,
    };
    let delta = if name.starts_with("decr") { amount.checked_neg().ok_or(Reply::Overflow)? } else { amount };
    match ctx.store.incr_by(&args[1], delta) {
        Ok(n) => write::integer(out, n),
        Err(IncrError::NotAnInteger) => return Err(Reply::NotAnInteger),
        Err(IncrError::Overflow) => return Err(Reply::Overflow),
    }
    Ok(())
}
