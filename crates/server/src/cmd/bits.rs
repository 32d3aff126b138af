//! Bit commands on string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, with Redis 7.0's
//! semantics (bit 0 is the most significant bit of the first byte) and error texts.

use bytes::{Bytes, BytesMut};
use resp::write;

use super::{int_arg, Outcome, Reply};
use crate::store::{Change, Expiry, MAX_STRING};
use crate::Ctx;

/// The commands this module runs (table names).
pub const COMMANDS: &[&str] = &["setbit", "getbit", "bitcount", "bitpos", "bitop", "bitfield", "bitfield_ro"];

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

/// Runs one of [`COMMANDS`].
pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], proto: resp::Protocol, out: &mut BytesMut) -> Outcome {
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
        "bitfield" | "bitfield_ro" => bitfield(ctx, name, args, proto, out)?,
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

/// What BITFIELD does on overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// One BITFIELD operation.
#[derive(Debug, Clone, Copy)]
struct FieldOp {
    /// GET (None), SET (Some(false), value) or INCRBY (Some(true), increment).
    write: Option<bool>,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// BITFIELD key [GET type offset] [SET type offset value] [INCRBY type offset increment]
/// [OVERFLOW WRAP|SAT|FAIL] ..., and BITFIELD_RO (GET only).
fn bitfield(ctx: &Ctx, name: &str, args: &[Bytes], proto: resp::Protocol, out: &mut BytesMut) -> Outcome {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let word = args[i].to_ascii_uppercase();
        let arity = match &word[..] {
            b"GET" => 3,
            b"SET" | b"INCRBY" => 4,
            b"OVERFLOW" => 2,
            _ => return Err(Reply::Syntax),
        };
        if i + arity > args.len() {
            return Err(Reply::Syntax);
        }
        if word == b"OVERFLOW" {
            overflow = match args[i + 1].to_ascii_uppercase().as_slice() {
                b"WRAP" => Overflow::Wrap,
                b"SAT" => Overflow::Sat,
                b"FAIL" => Overflow::Fail,
                _ => return Err(Reply::Other("ERR Invalid OVERFLOW type specified".into())),
            };
            i += 2;
            continue;
        }
        let (signed, bits) = field_type(&args[i + 1])?;
        let offset = field_offset(&args[i + 2], bits)?;
        let (write, value) = match &word[..] {
            b"GET" => (None, 0),
            b"SET" => (Some(false), int_arg(&args[i + 3])?),
            _ => (Some(true), int_arg(&args[i + 3])?),
        };
        if name == "bitfield_ro" && write.is_some() {
            return Err(Reply::Other("ERR BITFIELD_RO only supports the GET subcommand".into()));
        }
        ops.push(FieldOp { write, signed, bits, offset, value, overflow });
        i += arity;
    }
    let writes = ops.iter().any(|op| op.write.is_some());
    let results = ctx.store.update(&args[1], |v| {
        if !writes {
            let value = v.map_or(&[][..], |v| v.value);
            return (Change::Keep, ops.iter().map(|op| Some(read_field(value, op))).collect::<Vec<_>>());
        }
        let mut value = v.map_or_else(Vec::new, |v| v.value.to_vec());
        let needed = ops.iter().filter(|op| op.write.is_some()).map(|op| (op.offset + u64::from(op.bits)).div_ceil(8));
        let needed = needed.max().unwrap_or(0) as usize;
        if value.len() < needed {
            value.resize(needed, 0);
        }
        let mut results = Vec::with_capacity(ops.len());
        for op in &ops {
            let old = read_field(&value, op);
            let Some(incr) = op.write else {
                results.push(Some(old));
                continue;
            };
            let wanted: i128 = match (incr, op.signed) {
                (true, _) => i128::from(old) + i128::from(op.value),
                // Redis checks an unsigned SET's value as a u64: -1 is too large.
                (false, false) => i128::from(op.value as u64),
                (false, true) => i128::from(op.value),
            };
            match fit(wanted, op) {
                Some(new) => {
                    write_field(&mut value, op, new);
                    results.push(Some(if incr { new } else { old }));
                }
                None => results.push(None),
            }
        }
        (Change::Put(value, Expiry::Keep), results)
    });
    write::array_header(out, results.len());
    for result in results {
        match result {
            Some(n) => write::integer(out, n),
            None => write::null(out, proto),
        }
    }
    Ok(())
}

/// `i1`..`i64` or `u1`..`u63`.
fn field_type(arg: &Bytes) -> Result<(bool, u32), Reply> {
    let bad = || {
        Reply::Other(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.".into(),
        )
    };
    let signed = match arg.first() {
        Some(b'i' | b'I') => true,
        Some(b'u' | b'U') => false,
        _ => return Err(bad()),
    };
    let bits: u32 = std::str::from_utf8(&arg[1..]).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(bad());
    }
    Ok((signed, bits))
}

/// A bit offset, or `#n` for the n-th field of this width.
fn field_offset(arg: &Bytes, bits: u32) -> Result<u64, Reply> {
    let bad = || Reply::Other(BAD_OFFSET.into());
    let (hash, digits) = match arg.strip_prefix(b"#") {
        Some(rest) => (true, Bytes::copy_from_slice(rest)),
        None => (false, arg.clone()),
    };
    let n = u64::try_from(int_arg(&digits).map_err(|_| bad())?).map_err(|_| bad())?;
    let offset = if hash { n.checked_mul(u64::from(bits)).ok_or_else(bad)? } else { n };
    if offset >= (MAX_STRING as u64) * 8 {
        return Err(bad());
    }
    Ok(offset)
}

fn read_field(value: &[u8], op: &FieldOp) -> i64 {
    let mut raw: u64 = 0;
    for i in 0..u64::from(op.bits) {
        let bit = op.offset + i;
        let set = value.get((bit / 8) as usize).is_some_and(|byte| byte & (0x80 >> (bit % 8)) != 0);
        raw = raw << 1 | u64::from(set);
    }
    if op.signed && op.bits < 64 && raw >> (op.bits - 1) & 1 == 1 {
        (raw | !0u64 << op.bits) as i64
    } else {
        raw as i64
    }
}

fn write_field(value: &mut [u8], op: &FieldOp, field: i64) {
    let raw = field as u64;
    for i in 0..u64::from(op.bits) {
        let bit = op.offset + i;
        let mask = 0x80u8 >> (bit % 8);
        let byte = &mut value[(bit / 8) as usize];
        if raw >> (u64::from(op.bits) - 1 - i) & 1 == 1 {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
    }
}

/// `wanted` as the field holds it under the op's overflow rule; `None` when FAIL refuses.
fn fit(wanted: i128, op: &FieldOp) -> Option<i64> {
    let (min, max) =
        if op.signed { (-(1i128 << (op.bits - 1)), (1i128 << (op.bits - 1)) - 1) } else { (0, (1i128 << op.bits) - 1) };
    if (min..=max).contains(&wanted) {
        return Some(wanted as i64);
    }
    match op.overflow {
        Overflow::Fail => None,
        Overflow::Sat => Some(if wanted > max { max } else { min } as i64),
        Overflow::Wrap => {
            let low = (wanted as u128 as u64) & if op.bits == 64 { !0 } else { (1u64 << op.bits) - 1 };
            if op.signed && op.bits < 64 && low >> (op.bits - 1) & 1 == 1 {
                Some((low | !0u64 << op.bits) as i64)
            } else {
                Some(low as i64)
            }
        }
    }
}
