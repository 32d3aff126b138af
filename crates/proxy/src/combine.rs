//! Writing the replies of a planned batch, in request order.

use bytes::BytesMut;
use resp::{write, Frame, Protocol};

use crate::backend::{BackendError, Replies};
use crate::jobs::Part;
use crate::plan::{Combine, SCAN_SERVER_BITS};

/// The replies of a batch's jobs, indexed like [`Part::job`].
pub type Results = [Result<Replies, BackendError>];

/// Writes a forwarded reply unchanged, or the error that stopped it.
pub fn forward(results: &Results, part: Part, out: &mut BytesMut) {
    match &results[part.job] {
        Ok(replies) => out.extend_from_slice(replies.get(part.index)),
        Err(error) => write::error(out, error.reply_text().as_bytes()),
    }
}

/// Puts several replies back together as `combine` says. The replies came on links of the
/// client's `protocol`, so their RESP3 types are kept as they are.
pub fn combine(combine: &Combine, parts: &[Part], results: &Results, protocol: Protocol, out: &mut BytesMut) {
    let frames: Result<Vec<Frame>, String> = parts
        .iter()
        .map(|part| match &results[part.job] {
            Ok(replies) => match replies.frame(part.index) {
                Frame::Error(e) | Frame::BlobError(e) => Err(String::from_utf8_lossy(&e).into_owned()),
                frame => Ok(frame),
            },
            Err(error) => Err(error.reply_text()),
        })
        .collect();
    let written = frames.and_then(|frames| write_combined(combine, frames, protocol, out));
    if let Err(text) = written {
        write::error(out, text.as_bytes());
    }
}

fn write_combined(combine: &Combine, frames: Vec<Frame>, protocol: Protocol, out: &mut BytesMut) -> Result<(), String> {
    let unexpected = |frame: &Frame| format!("ERR unexpected reply from server: {frame:?}");
    match combine {
        Combine::Sum => {
            let mut total = 0i64;
            for frame in &frames {
                match frame {
                    Frame::Integer(n) => total = total.saturating_add(*n),
                    other => return Err(unexpected(other)),
                }
            }
            write::integer(out, total);
        }
        Combine::Same => {
            let first = frames.first().ok_or("ERR no servers available")?;
            if let Some(other) = frames.iter().find(|f| *f != first) {
                return Err(format!("ERR servers answered differently: {first:?} and {other:?}"));
            }
            first.encode(out);
        }
        Combine::AllOnes => {
            let lists = frames.iter().map(array).collect::<Result<Vec<_>, _>>()?;
            let len = lists.first().map_or(0, |l| l.len());
            write::array_header(out, len);
            for i in 0..len {
                let all = lists.iter().all(|l| matches!(l.get(i), Some(Frame::Integer(1))));
                write::integer(out, i64::from(all));
            }
        }
        Combine::FirstNonNull => match frames.iter().find(|f| !f.is_null()) {
            Some(frame) => frame.encode(out),
            None => write::null(out, protocol),
        },
        Combine::Union => {
            let mut items: Vec<&Frame> = Vec::new();
            for list in frames.iter().map(array) {
                for item in list? {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
            }
            write::array_header(out, items.len());
            items.iter().for_each(|item| item.encode(out));
        }
        Combine::SumPairs => {
            let mut sums: Vec<(&Frame, i64)> = Vec::new();
            for list in frames.iter().map(array) {
                for pair in list?.chunks(2) {
                    let [channel, Frame::Integer(n)] = pair else { return Err(unexpected(&pair[0])) };
                    match sums.iter_mut().find(|(c, _)| *c == channel) {
                        Some((_, total)) => *total += n,
                        None => sums.push((channel, *n)),
                    }
                }
            }
            write::array_header(out, sums.len() * 2);
            for (channel, total) in sums {
                channel.encode(out);
                write::integer(out, total);
            }
        }
        Combine::AllOk => {
            if let Some(other) = frames.iter().find(|f| !matches!(f, Frame::Simple(s) if &s[..] == b"OK")) {
                return Err(unexpected(other));
            }
            write::simple(out, b"OK");
        }
        Combine::Keys { seed_style, distinct } => {
            let mut keys = all_keys(&frames)?;
            if *distinct {
                keys.sort_unstable();
                keys.dedup();
            }
            let write_key = if *seed_style { write::text } else { write::bulk };
            write::array_header(out, keys.len());
            keys.iter().for_each(|key| write_key(out, key));
        }
        Combine::CountDistinct => {
            let mut keys = all_keys(&frames)?;
            keys.sort_unstable();
            keys.dedup();
            write::integer(out, keys.len() as i64);
        }
        Combine::Mget(slots) => {
            let lists = frames.iter().map(array).collect::<Result<Vec<_>, _>>()?;
            write::array_header(out, slots.len());
            for &(part, element) in slots {
                lists.get(part).and_then(|l| l.get(element)).ok_or("ERR short MGET reply from server")?.encode(out);
            }
        }
        Combine::Info(own) => {
            let (mut keys, mut expires) = (0u64, 0u64);
            for frame in &frames {
                let text = frame.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                for line in text.lines().filter_map(|l| l.strip_prefix("db0:")) {
                    for field in line.split(',') {
                        match field.split_once('=') {
                            Some(("keys", n)) => keys += n.trim().parse::<u64>().unwrap_or(0),
                            Some(("expires", n)) => expires += n.trim().parse::<u64>().unwrap_or(0),
                            _ => {}
                        }
                    }
                }
            }
            let mut text = own.clone();
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            text.push_str("# Keyspace\r\n");
            if keys > 0 {
                text.push_str(&format!("db0:keys={keys},expires={expires},avg_ttl=0\r\n"));
            }
            write::verbatim(out, protocol, text.as_bytes());
        }
        Combine::Scan { server, servers } => {
            let reply = frames.first().ok_or("ERR no SCAN reply")?;
            let [cursor, keys] = array(reply)?.as_slice() else {
                return Err(unexpected(reply));
            };
            let next = cursor.as_bytes().and_then(|c| std::str::from_utf8(c).ok()?.parse::<u64>().ok());
            let next = next.ok_or_else(|| unexpected(cursor))?;
            if next >> (64 - SCAN_SERVER_BITS) != 0 {
                return Err("ERR server cursor too large for the proxy".into());
            }
            let cursor = match next {
                0 if server + 1 < *servers => *server as u64 + 1,
                0 => 0,
                n => (n << SCAN_SERVER_BITS) | *server as u64,
            };
            write::array_header(out, 2);
            write::bulk(out, cursor.to_string().as_bytes());
            keys.encode(out);
        }
    }
    Ok(())
}

/// Every key of every server's KEYS reply.
fn all_keys(frames: &[Frame]) -> Result<Vec<&[u8]>, String> {
    let mut keys = Vec::new();
    for frame in frames {
        for key in array(frame)? {
            keys.push(
                key.as_bytes().map(|b| &b[..]).ok_or_else(|| format!("ERR unexpected reply from server: {key:?}"))?,
            );
        }
    }
    Ok(keys)
}

fn array(frame: &Frame) -> Result<&Vec<Frame>, String> {
    match frame {
        Frame::Array(items) | Frame::Set(items) => Ok(items),
        other => Err(format!("ERR unexpected reply from server: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_reply(cursor: &str, keys: &[&str]) -> Frame {
        Frame::Array(vec![
            Frame::bulk(cursor.to_string()),
            Frame::Array(keys.iter().map(|k| Frame::bulk(k.to_string())).collect()),
        ])
    }

    fn combined(how: &Combine, frames: Vec<Frame>) -> Frame {
        let mut out = BytesMut::new();
        write_combined(how, frames, Protocol::Resp2, &mut out).unwrap();
        Frame::parse(&mut out, &resp::Limits::default()).unwrap().unwrap()
    }

    #[test]
    fn scan_cursors_carry_the_server_index() {
        let first = Combine::Scan { server: 0, servers: 3 };
        // The server is not done: its cursor moves up, the server index stays in the low bits.
        assert_eq!(combined(&first, vec![scan_reply("5", &["a"])]), scan_reply("5120", &["a"]));
        // The server is done: the next one starts at cursor 0.
        assert_eq!(combined(&first, vec![scan_reply("0", &["b"])]), scan_reply("1", &["b"]));
        let last = Combine::Scan { server: 2, servers: 3 };
        assert_eq!(combined(&last, vec![scan_reply("0", &[])]), scan_reply("0", &[]));
        assert_eq!(combined(&last, vec![scan_reply("7", &[])]), scan_reply(&((7 << 10) | 2).to_string(), &[]));
    }

    #[test]
    fn mget_puts_values_back_in_key_order() {
        // Keys 0 and 2 on the first server, key 1 on the second.
        let how = Combine::Mget(vec![(0, 0), (1, 0), (0, 1)]);
        let parts = vec![Frame::Array(vec![Frame::bulk("a"), Frame::Null]), Frame::Array(vec![Frame::bulk("b")])];
        assert_eq!(combined(&how, parts), Frame::Array(vec![Frame::bulk("a"), Frame::bulk("b"), Frame::Null]));
    }

    #[test]
    fn keys_are_listed_once_under_replication() {
        let how = Combine::Keys { seed_style: true, distinct: true };
        let parts =
            vec![Frame::Array(vec![Frame::simple("k1"), Frame::simple("k2")]), Frame::Array(vec![Frame::bulk("k2")])];
        assert_eq!(combined(&how, parts), Frame::Array(vec![Frame::simple("k1"), Frame::simple("k2")]));
    }

    #[test]
    fn resp3_replies_keep_their_types() {
        let how = Combine::Mget(vec![(0, 0), (1, 0)]);
        let parts = vec![Frame::Array(vec![Frame::Resp3Null]), Frame::Array(vec![Frame::bulk("b")])];
        let mut out = BytesMut::new();
        write_combined(&how, parts, Protocol::Resp3, &mut out).unwrap();
        assert_eq!(&out[..], b"*2\r\n_\r\n$1\r\nb\r\n");
        out.clear();
        write_combined(&Combine::FirstNonNull, vec![Frame::Resp3Null, Frame::Resp3Null], Protocol::Resp3, &mut out)
            .unwrap();
        assert_eq!(&out[..], b"_\r\n");
        out.clear();
        write_combined(&Combine::FirstNonNull, vec![], Protocol::Resp2, &mut out).unwrap();
        assert_eq!(&out[..], b"$-1\r\n");
        let same = Frame::Map(vec![(Frame::bulk("k"), Frame::double(0.5))]);
        out.clear();
        write_combined(&Combine::Same, vec![same.clone(), same.clone()], Protocol::Resp3, &mut out).unwrap();
        assert_eq!(out.freeze(), same.to_bytes());
    }

    #[test]
    fn sums_and_acknowledgements() {
        assert_eq!(combined(&Combine::Sum, vec![Frame::Integer(2), Frame::Integer(3)]), Frame::Integer(5));
        assert_eq!(combined(&Combine::AllOk, vec![Frame::simple("OK"), Frame::simple("OK")]), Frame::simple("OK"));
        let mut out = BytesMut::new();
        assert!(write_combined(
            &Combine::AllOk,
            vec![Frame::simple("OK"), Frame::Integer(1)],
            Protocol::Resp2,
            &mut out
        )
        .is_err());
    }
}
