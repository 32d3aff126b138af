//! DUMP and RESTORE, so that the proxy moves keys between servers the same way whatever
//! they hold: `DUMP` on the old owner, `RESTORE key ttl payload` on the new one.
//!
//! The payload is this server's own, version-tagged (`chd` + version byte + the value); a
//! redis-server's payload is refused with Redis's own error, as a redis-server refuses ours.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp::{write, Protocol};

use super::{int_arg, Outcome, Reply};
use crate::store::{ttl_until_unix_ms, SetOptions};
use crate::Ctx;

/// The commands this module runs (table names).
pub const COMMANDS: &[&str] = &["dump", "restore"];

/// The payload's first bytes: our tag and the format's version.
const PAYLOAD_HEADER: &[u8] = b"chd\x01";

pub fn run(ctx: &Ctx, name: &str, args: &[Bytes], protocol: Protocol, out: &mut BytesMut) -> Outcome {
    match name {
        "dump" => ctx.store.get_with(&args[1], |value| match value {
            Some(value) => write::bulk(out, &payload(value)),
            None => write::null(out, protocol),
        }),
        _ => restore(ctx, args, out)?,
    }
    Ok(())
}

/// The DUMP payload of `value` (what RESTORE takes back; MIGRATE sends it too).
pub fn payload(value: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(PAYLOAD_HEADER.len() + value.len());
    payload.extend_from_slice(PAYLOAD_HEADER);
    payload.extend_from_slice(value);
    payload
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(ctx: &Ctx, args: &[Bytes], out: &mut BytesMut) -> Outcome {
    let (key, ttl, payload) = (&args[1], int_arg(&args[2])?, &args[3]);
    let mut replace = false;
    let mut absolute = false;
    let mut options = args[4..].iter();
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"ABSTTL" => absolute = true,
            b"IDLETIME" | b"FREQ" => {
                int_arg(options.next().ok_or(Reply::Syntax)?)?;
            }
            _ => return Err(Reply::Syntax),
        }
    }
    if ttl < 0 {
        return Err(Reply::Other("ERR Invalid TTL value, must be >= 0".into()));
    }
    let value = payload
        .strip_prefix(PAYLOAD_HEADER)
        .ok_or_else(|| Reply::Other("ERR DUMP payload version or checksum are wrong".into()))?;
    let ttl = match (ttl, absolute) {
        (0, _) => None,
        (at, true) => Some(ttl_until_unix_ms(at as u64)),
        (ms, false) => Some(Duration::from_millis(ms as u64)),
    };
    let options = SetOptions { ttl, only_if_absent: !replace, ..SetOptions::default() };
    let (stored, _) = ctx.store.set(key, value, options, false);
    if !stored {
        return Err(Reply::Other("BUSYKEY Target key name already exists.".into()));
    }
    write::simple(out, b"OK");
    Ok(())
}
