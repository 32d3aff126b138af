//! Bit commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, with Redis 7.0's
//! semantics (bit 0 is the most significant bit of the first byte) and error texts.

use bytes::{Bytes, BytesMut};
use resp::write;

use super::{int_arg, Outcome, Reply};
use crate::store::{Change, Expiry, MAX_STRING};
use crate::Ctx;

/// The commands this module runs (table names).
pub const COMMANDS: &[&str] = &["setbit", "getbit", "bitcount", "bitpos", "bitop"];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// Runs one of [`COMMANDS`].
pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    match name {
        "setbit" => {
            let offset = bit_offset(&args[2])?;
            let bad_bit = || Reply::Other("ERR bit is not an integer or out of range".into());
            let on = match int_arg(&args[3]).map_err(|_| bad_bit())? {
                0 => false,
                1 => true,
                _ => return Err(bad_bit()),
            };
            let old = ctx.store.update(&args[1], |v| {
                let mut value = v.map_or_else(Vec::new, |v| v.value.to_vec());
                let byte = offset / 8;
                if value.len() <= byte {
                    value.resize(byte + 1, 0);
                }
                let mask = 0x80u8 >> (offset % 8);
                let old = value[byte] & mask != 0;
                if on {
                    value[byte] |= mask;
                } else {
                    value[byte] &= !mask;
                }
                (Change::Put(value, Expiry::Keep), old)
            });
            write::integer(out, i64::from(old));
        }
        "getbit" => {
            let offset = bit_offset(&args[2])?;
            let bit = ctx.store.get_with(&args[1], |v| {
                v.and_then(|v| v.get(offset / 8)).is_some_and(|byte| byte & (0x80 >> (offset % 8)) != 0)
            });
            write::integer(out, i64::from(bit));
        }
        "bitcount" => bitcount(ctx, args, out)?,
        "bitpos" => bitpos(ctx, args, out)?,
        _ => bitop(ctx, args, out)?,
    }
    Ok(())
}

/// A bit offset: 0 up to 512 MiB of bits.
fn bit_offset(arg: &Bytes) -> Result<usize, Reply> {
    let bad = || Reply::Other(BAD_OFFSET.into());
    let n = int_arg(arg).map_err(|_| bad())?;
    usize::try_from(n).ok().filter(|&n| n < MAX_STRING * 8).ok_or_else(bad)
}

/// Whether the optional unit argument says BIT (else BYTE).
fn is_bit_unit(arg: Option<&Bytes>) -> Result<bool, Reply> {
    match arg.map(|a| a.to_ascii_uppercase()) {
        None => Ok(false),
        Some(unit) if unit == b"BIT" => Ok(true),
        Some(unit) if unit == b"BYTE" => Ok(false),
        Some(_) => Err(Reply::Syntax),
    }
}

/// Clamps `start..=end` (negative from the end) over `total` units, as Redis does.
fn clamp(total: i64, start: i64, end: i64) -> (i64, i64) {
    let start = if start < 0 { (total + start).max(0) } else { start };
    let end = if end < 0 { (total + end).max(0) } else { end };
    (start, end.min(total - 1))
}

fn bit_at(value: &[u8], bit: i64) -> bool {
    value[(bit / 8) as usize] & (0x80 >> (bit % 8)) != 0
}

/// BITCOUNT key [start end [BYTE|BIT]]
fn bitcount(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let Some(value) = ctx.store.get(&args[1]) else {
        write::integer(out, 0);
        return Ok(());
    };
    let len = value.len() as i64;
    let (first, last) = match args.len() {
        2 => (0, len * 8 - 1),
        4 | 5 => {
            let (start, end) = (int_arg(&args[2])?, int_arg(&args[3])?);
            if start < 0 && end < 0 && start > end {
                write::integer(out, 0);
                return Ok(());
            }
            if is_bit_unit(args.get(4))? {
                clamp(len * 8, start, end)
            } else {
                let (s, e) = clamp(len, start, end);
                (s * 8, e * 8 + 7)
            }
        }
        _ => return Err(Reply::Syntax),
    };
    let mut count = 0i64;
    let mut bit = first;
    while bit <= last {
        if bit % 8 == 0 && bit + 7 <= last {
            count += i64::from(value[(bit / 8) as usize].count_ones());
            bit += 8;
        } else {
            count += i64::from(bit_at(&value, bit));
            bit += 1;
        }
    }
    write::integer(out, count);
    Ok(())
}

/// BITPOS key bit [start [end [BYTE|BIT]]]
fn bitpos(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let target = match int_arg(&args[2])? {
        0 => false,
        1 => true,
        _ => return Err(Reply::Other("ERR The bit argument must be 1 or 0.".into())),
    };
    let Some(value) = ctx.store.get(&args[1]) else {
        write::integer(out, if target { -1 } else { 0 });
        return Ok(());
    };
    let len = value.len() as i64;
    let end_given = args.len() >= 5;
    let (first, last) = match args.len() {
        3 => (0, len * 8 - 1),
        4..=6 => {
            let start = int_arg(&args[3])?;
            let bits = is_bit_unit(args.get(5))?;
            let end = match args.get(4) {
                Some(end) => int_arg(end)?,
                None if bits => len * 8 + 7,
                None => len - 1,
            };
            if bits {
                clamp(len * 8, start, end)
            } else {
                let (s, e) = clamp(len, start, end);
                (s * 8, e * 8 + 7)
            }
        }
        _ => return Err(Reply::Syntax),
    };
    if first > last {
        write::integer(out, -1);
        return Ok(());
    }
    let skip = if target { 0x00 } else { 0xff };
    let mut bit = first;
    while bit <= last {
        if bit % 8 == 0 && bit + 7 <= last && value[(bit / 8) as usize] == skip {
            bit += 8;
            continue;
        }
        if bit_at(&value, bit) == target {
            write::integer(out, bit);
            return Ok(());
        }
        bit += 1;
    }
    // No such bit in range: a clear bit lies just past the string, unless an end was given.
    write::integer(out, if target || end_given { -1 } else { last + 1 });
    Ok(())
}

/// BITOP AND|OR|XOR|NOT destkey key [key ...]
fn bitop(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let op = args[1].to_ascii_uppercase();
    if !matches!(&op[..], b"AND" | b"OR" | b"XOR" | b"NOT") {
        return Err(Reply::Syntax);
    }
    if op == b"NOT" && args.len() != 4 {
        return Err(Reply::Other("ERR BITOP NOT must be called with a single source key.".into()));
    }
    let sources: Vec<Bytes> = args[3..].iter().map(|key| ctx.store.get(key).unwrap_or_default()).collect();
    let len = sources.iter().map(Bytes::len).max().unwrap_or(0);
    let byte = |source: &Bytes, i: usize| source.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..len)
        .map(|i| match &op[..] {
            b"NOT" => !byte(&sources[0], i),
            b"AND" => sources.iter().fold(0xff, |acc, s| acc & byte(s, i)),
            b"OR" => sources.iter().fold(0, |acc, s| acc | byte(s, i)),
            _ => sources.iter().fold(0, |acc, s| acc ^ byte(s, i)),
        })
        .collect();
    if result.is_empty() {
        ctx.store.remove(&args[2]);
    } else {
        ctx.store.put(&args[2], &result, None);
    }
    write::integer(out, len as i64);
    Ok(())
}
