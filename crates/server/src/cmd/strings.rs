//! String commands: GET, SET, MGET, MSET, INCR, DECR, INCRBY, DECRBY, SETEX, PSETEX,
//! SETNX, GETSET, GETDEL, GETEX, APPEND, STRLEN, GETRANGE, SUBSTR, SETRANGE, INCRBYFLOAT,
//! MSETNX, LCS, with Redis 7.0's semantics and error texts.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::{write, Protocol};

use super::{int_arg, show, Outcome, Reply};
use crate::store::{ttl_until_unix_ms, Change, Expiry, IncrError, SetOptions, MAX_STRING};
use crate::Ctx;

/// The commands this module runs (table names).
pub const COMMANDS: &[&str] = &[
    "get",
    "set",
    "mget",
    "mset",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "setex",
    "psetex",
    "setnx",
    "getset",
    "getdel",
    "getex",
    "append",
    "strlen",
    "getrange",
    "substr",
    "setrange",
    "incrbyfloat",
    "msetnx",
    "lcs",
];

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
        "setex" | "psetex" => {
            let n = int_arg(&args[2])?;
            let ms = if name == "setex" { n.checked_mul(1000) } else { Some(n) };
            let ms = ms.and_then(|ms| u64::try_from(ms).ok()).filter(|&ms| ms > 0);
            let ms = ms.ok_or(Reply::InvalidExpire(if name == "setex" { "setex" } else { "psetex" }))?;
            let options = SetOptions { ttl: Some(Duration::from_millis(ms)), ..SetOptions::default() };
            ctx.store.set(&args[1], &args[3], options, false);
            write::simple(out, b"OK");
        }
        "setnx" => {
            let options = SetOptions { only_if_absent: true, ..SetOptions::default() };
            write::integer(out, i64::from(ctx.store.set(&args[1], &args[2], options, false).0));
        }
        "getset" => {
            let (_, old) = ctx.store.set(&args[1], &args[2], SetOptions::default(), true);
            bulk_or_null(out, proto, old.as_deref());
        }
        "getdel" => {
            let old = ctx.store.update(&args[1], |v| match v {
                Some(v) => (Change::Delete, Some(Bytes::copy_from_slice(v.value))),
                None => (Change::Keep, None),
            });
            bulk_or_null(out, proto, old.as_deref());
        }
        "getex" => getex(ctx, args, proto, out)?,
        "append" => {
            let len = ctx.store.update(&args[1], |v| {
                let old = v.map_or(&[][..], |v| v.value);
                if old.len() + args[2].len() > MAX_STRING {
                    return (Change::Keep, Err(Reply::TooLong));
                }
                let value = [old, &args[2]].concat();
                let len = value.len();
                (Change::Put(value, Expiry::Keep), Ok(len))
            })?;
            write::integer(out, len as i64);
        }
        "strlen" => {
            let len = ctx.store.update(&args[1], |v| (Change::Keep, v.map_or(0, |v| v.value.len())));
            write::integer(out, len as i64);
        }
        "getrange" | "substr" => {
            let (start, end) = (int_arg(&args[2])?, int_arg(&args[3])?);
            ctx.store.get_with(&args[1], |v| {
                let value = v.unwrap_or_default();
                write::bulk(out, range(value.len(), start, end).map_or(&[][..], |(s, e)| &value[s..=e]));
            });
        }
        "setrange" => setrange(ctx, args, out)?,
        "incrbyfloat" => incr_by_float(ctx, args, out)?,
        "msetnx" if args.len().is_multiple_of(2) => {
            return Err(Reply::Other("ERR wrong number of arguments for 'msetnx' command".into()));
        }
        "msetnx" => {
            let pairs = args[1..].chunks_exact(2);
            // Checked first, then written: not atomic across shards, as nothing here is.
            let any = pairs.clone().any(|pair| ctx.store.peek(&pair[0]).is_some());
            if !any {
                pairs.for_each(|pair| {
                    ctx.store.set(&pair[0], &pair[1], SetOptions::default(), false);
                });
            }
            write::integer(out, i64::from(!any));
        }
        "lcs" => lcs(ctx, args, proto, out)?,
        _ => incr(ctx, name, args, out)?,
    }
    Ok(())
}

/// Redis's GETRANGE clamping of `start..=end` over a string of `len` bytes; `None`: empty.
pub(super) fn range(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = len as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 { (len + start).max(0) } else { start };
    let end = if end < 0 { (len + end).max(0) } else { end };
    let end = end.min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    Some((start as usize, end as usize))
}

/// GETEX key [EX seconds|PX milliseconds|EXAT unix-s|PXAT unix-ms|PERSIST]: Redis 7.0's
/// order of checks: syntax, then a missing key (nil), then the expire time.
fn getex(ctx: &Ctx, args: &[Bytes], proto: Protocol, out: &mut BytesMut) -> Outcome {
    let mut option: Option<(Vec<u8>, Option<&Bytes>)> = None;
    let mut rest = args[2..].iter();
    while let Some(word) = rest.next() {
        let word = word.to_ascii_uppercase();
        match &word[..] {
            b"PERSIST" if option.is_none() => option = Some((word, None)),
            b"EX" | b"PX" | b"EXAT" | b"PXAT" if option.is_none() => {
                option = Some((word, Some(rest.next().ok_or(Reply::Syntax)?)));
            }
            _ => return Err(Reply::Syntax),
        }
    }
    let now = ctx.store.unix_now_ms() as i64;
    let expiry = |word: &[u8], arg: Option<&Bytes>| -> Result<Expiry, Reply> {
        let Some(arg) = arg else { return Ok(Expiry::Persist) };
        let n = int_arg(arg)?;
        let invalid = Reply::InvalidExpire("getex");
        let ms = match word {
            b"EX" | b"EXAT" => n.checked_mul(1000).ok_or(invalid.clone())?,
            _ => n,
        };
        if ms <= 0 {
            return Err(invalid);
        }
        let base = if word.ends_with(b"AT") { 0 } else { now };
        Ok(Expiry::At(ms.checked_add(base).ok_or(invalid)? as u64))
    };
    let value = ctx.store.update(&args[1], |v| {
        let Some(v) = v else { return (Change::Keep, Ok(None)) };
        let change = match &option {
            None => Change::Keep,
            Some((word, arg)) => match expiry(word, *arg) {
                Ok(expiry) => Change::Expire(expiry),
                Err(e) => return (Change::Keep, Err(e)),
            },
        };
        (change, Ok(Some(Bytes::copy_from_slice(v.value))))
    })?;
    bulk_or_null(out, proto, value.as_deref());
    Ok(())
}

/// SETRANGE key offset value
fn setrange(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let offset = int_arg(&args[2])?;
    let offset = usize::try_from(offset).map_err(|_| Reply::OutOfRange)?;
    let patch = &args[3];
    let len = ctx.store.update(&args[1], |v| {
        let old = v.map_or(&[][..], |v| v.value);
        if patch.is_empty() {
            return (Change::Keep, Ok(old.len()));
        }
        if offset.saturating_add(patch.len()) > MAX_STRING {
            return (Change::Keep, Err(Reply::TooLong));
        }
        let mut value = old.to_vec();
        if value.len() < offset + patch.len() {
            value.resize(offset + patch.len(), 0);
        }
        value[offset..offset + patch.len()].copy_from_slice(patch);
        let len = value.len();
        (Change::Put(value, Expiry::Keep), Ok(len))
    })?;
    write::integer(out, len as i64);
    Ok(())
}

/// INCRBYFLOAT key increment
fn incr_by_float(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let increment = parse_float(&args[2]).ok_or(Reply::NotAFloat)?;
    let text = ctx.store.update(&args[1], |v| {
        let old = match v {
            Some(v) => match parse_float(v.value) {
                Some(f) => f,
                None => return (Change::Keep, Err(Reply::NotAFloat)),
            },
            None => 0.0,
        };
        let new = old + increment;
        if !new.is_finite() {
            return (Change::Keep, Err(Reply::Other("ERR increment would produce NaN or Infinity".into())));
        }
        let text = format_float(new);
        (Change::Put(text.clone().into_bytes(), Expiry::Keep), Ok(text))
    })?;
    write::bulk(out, text.as_bytes());
    Ok(())
}

/// A float as Redis's `string2ld` reads one: no spaces, no NaN.
fn parse_float(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty() || text.trim() != text {
        return None;
    }
    text.parse::<f64>().ok().filter(|f| !f.is_nan())
}

/// A float as INCRBYFLOAT writes it: fixed notation without trailing zeros. Redis computes
/// in `long double` and prints 17 decimals; 15 significant digits of an `f64` give the same
/// text for the values people add (0.1 + 0.2 is `0.3`).
fn format_float(value: f64) -> String {
    let digits = if value == 0.0 { 1 } else { value.abs().log10().floor() as i64 + 1 };
    let decimals = (15 - digits).clamp(0, 17) as usize;
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.') } else { &text };
    if text == "-0" {
        "0".into()
    } else {
        text.to_string()
    }
}

/// One LCS match: its range in each string, and its length.
type Match = ((usize, usize), (usize, usize), usize);

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
fn lcs(ctx: &Ctx, args: &[Bytes], proto: Protocol, out: &mut BytesMut) -> Outcome {
    let (mut len_only, mut idx, mut min_len, mut with_len) = (false, false, 0i64, false);
    let mut rest = args[3..].iter();
    while let Some(word) = rest.next() {
        match word.to_ascii_uppercase().as_slice() {
            b"LEN" => len_only = true,
            b"IDX" => idx = true,
            b"WITHMATCHLEN" => with_len = true,
            b"MINMATCHLEN" => min_len = int_arg(rest.next().ok_or(Reply::Syntax)?)?.max(0),
            _ => return Err(Reply::Syntax),
        }
    }
    if len_only && idx {
        return Err(Reply::Other("ERR If you want both the length and indexes, please just use IDX.".into()));
    }
    let a = ctx.store.get(&args[1]).unwrap_or_default();
    let b = ctx.store.get(&args[2]).unwrap_or_default();
    if (a.len() as u64 + 1).saturating_mul(b.len() as u64 + 1) > 1 << 28 {
        return Err(Reply::Other(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len".into(),
        ));
    }
    // The dynamic-programming table, as Redis builds it.
    let width = b.len() + 1;
    let mut table = vec![0u32; (a.len() + 1) * width];
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[a.len() * width + b.len()] as usize;
    if len_only {
        write::integer(out, total as i64);
        return Ok(());
    }
    // Walk back from the end, collecting the common string and the matching ranges.
    let mut common = vec![0u8; total];
    let mut at = total;
    let mut matches: Vec<Match> = Vec::new();
    let mut current: Option<((usize, usize), (usize, usize))> = None;
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        if a[i - 1] == b[j - 1] {
            at -= 1;
            common[at] = a[i - 1];
            let (ai, bj) = (i - 1, j - 1);
            current = match current {
                Some(((a0, a1), (b0, b1))) if a0 == ai + 1 && b0 == bj + 1 => Some(((ai, a1), (bj, b1))),
                Some(range) => {
                    let len = range.0 .1 - range.0 .0 + 1;
                    if len as i64 >= min_len {
                        matches.push((range.0, range.1, len));
                    }
                    Some(((ai, ai), (bj, bj)))
                }
                None => Some(((ai, ai), (bj, bj))),
            };
            i -= 1;
            j -= 1;
        } else if table[(i - 1) * width + j] > table[i * width + j - 1] {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    if let Some(range) = current {
        let len = range.0 .1 - range.0 .0 + 1;
        if len as i64 >= min_len {
            matches.push((range.0, range.1, len));
        }
    }
    if !idx {
        write::bulk(out, &common);
        return Ok(());
    }
    write::map_header(out, proto, 2);
    write::bulk(out, b"matches");
    write::array_header(out, matches.len());
    for ((a0, a1), (b0, b1), len) in matches {
        write::array_header(out, if with_len { 3 } else { 2 });
        for (from, to) in [(a0, a1), (b0, b1)] {
            write::array_header(out, 2);
            write::integer(out, from as i64);
            write::integer(out, to as i64);
        }
        if with_len {
            write::integer(out, len as i64);
        }
    }
    write::bulk(out, b"len");
    write::integer(out, total as i64);
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
    let delta = if name.starts_with("decr") {
        amount.checked_neg().ok_or_else(|| Reply::Other("ERR decrement would overflow".into()))?
    } else {
        amount
    };
    match ctx.store.incr_by(&args[1], delta) {
        Ok(n) => write::integer(out, n),
        Err(IncrError::NotAnInteger) => return Err(Reply::NotAnInteger),
        Err(IncrError::Overflow) => return Err(Reply::Overflow),
    }
    Ok(())
}
