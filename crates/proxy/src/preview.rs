//! `PREVIEW ADD host:port [weight]` / `PREVIEW REMOVE host:port`: what a ring change would move,
//! changing nothing. The ring's answer (which share of the key space changes owner, from
//! whom to whom) is exact arithmetic on the two rings ([`ring::handoff`]); the keys' answer
//! comes from the servers: each is walked with SCAN up to [`SAMPLE_PER_SERVER`] keys, and
//! each sampled key is placed on both rings. A server scanned to the end gives an exact
//! count; otherwise its count is scaled to its DBSIZE, with a 95% error bound.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use resp::{write, Frame, Request};
use serde::Serialize;

use crate::migration::call;
use crate::Proxy;

/// Keys sampled per server at most.
pub const SAMPLE_PER_SERVER: u64 = 10_000;
/// Keys asked per SCAN call.
const SCAN_COUNT: &[u8] = b"1000";
/// z for a two-sided 95% interval.
const Z_95: f64 = 1.96;

/// A ring change to preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `ADD_SERVER addr weight`.
    Add(String, u32),
    /// `REMOVE_SERVER addr`.
    Remove(String),
}

/// One (from, to) pair of the answer.
#[derive(Debug, Clone, Serialize)]
pub struct Move {
    /// Owner before.
    pub from: String,
    /// Owner after.
    pub to: String,
    /// Share of the key space, 0 to 1.
    pub share: f64,
    /// Keys estimated to move along this pair (exact when every key was sampled).
    pub keys: f64,
}

/// What the keys on the servers say.
#[derive(Debug, Clone, Serialize, Default)]
pub struct KeyEstimate {
    /// Keys sampled.
    pub sampled: u64,
    /// Keys the servers hold (DBSIZE, or the keys scanned when a scan went further).
    pub total: u64,
    /// Sampled keys that would move.
    pub moved_in_sample: u64,
    /// Keys estimated to move.
    pub moved: f64,
    /// Half-width of the 95% interval of `moved` (0 when exact).
    pub error: f64,
    /// Every key was sampled: `moved` is a count.
    pub exact: bool,
    /// Servers that could not be sampled.
    pub unreachable: Vec<String>,
}

/// The answer to PREVIEW.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// `add` or `remove`.
    pub op: &'static str,
    /// The server added or removed.
    pub server: String,
    /// Its weight (adds).
    pub weight: Option<u32>,
    /// Servers before and after.
    pub servers_before: usize,
    /// Servers after.
    pub servers_after: usize,
    /// Share of the key space that changes owner.
    pub moved_share: f64,
    /// By pair, largest first.
    pub moves: Vec<Move>,
    /// Keys, sampled on the live servers.
    pub keys: KeyEstimate,
    /// The ring's points after the change, `[position, owner address]` (for the page).
    pub points_after: Vec<(u32, String)>,
}

/// Parses `PREVIEW ADD host:port [weight]` / `PREVIEW REMOVE host:port`.
pub fn parse(args: &[Bytes]) -> Result<Change, String> {
    const USAGE: &str = "ERR usage: PREVIEW ADD host:port [weight] | PREVIEW REMOVE host:port";
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    match (args.get(1), args.get(2), args.get(3), args.len()) {
        (Some(op), Some(addr), weight, 3 | 4) if op.eq_ignore_ascii_case(b"ADD") => {
            let weight = match weight {
                None => 1,
                Some(w) => {
                    std::str::from_utf8(w).ok().and_then(|w| w.parse::<u32>().ok()).filter(|w| *w >= 1).ok_or(USAGE)?
                }
            };
            Ok(Change::Add(text(addr), weight))
        }
        (Some(op), Some(addr), None, 3) if op.eq_ignore_ascii_case(b"REMOVE") => Ok(Change::Remove(text(addr))),
        _ => Err(USAGE.into()),
    }
}

/// Computes the preview of `change` on the live cluster.
pub async fn preview(proxy: &Arc<Proxy>, change: &Change) -> Result<Preview, String> {
    let (addr, weight) = match change {
        Change::Add(addr, weight) => (addr.as_str(), Some(*weight)),
        Change::Remove(addr) => (addr.as_str(), None),
    };
    let topology = proxy.cluster.snapshot();
    let before = &topology.ring;
    let after = proxy.cluster.preview_ring(addr, weight).map_err(|e| e.reply_text())?;
    let handoffs = ring::handoff(before, &after);
    let tag = topology.hash_tag;
    // Per pair: estimated keys.
    let mut pair_keys: Vec<f64> = vec![0.0; handoffs.len()];
    let mut keys = KeyEstimate { exact: true, ..KeyEstimate::default() };
    let mut variance = 0.0;
    for backend in topology.backends() {
        if !backend.health.is_up() {
            keys.unreachable.push(backend.addr().to_string());
            keys.exact = false;
            continue;
        }
        let size = match call(backend, &[b"DBSIZE"]).await {
            Ok(Frame::Integer(n)) => n.max(0) as u64,
            _ => {
                keys.unreachable.push(backend.addr().to_string());
                keys.exact = false;
                continue;
            }
        };
        let mut sampled = 0u64;
        let mut moved = 0u64;
        let mut moved_by_pair = vec![0u64; handoffs.len()];
        let mut cursor: Vec<u8> = b"0".to_vec();
        let complete = loop {
            let reply = call(backend, &[b"SCAN", &cursor, b"COUNT", SCAN_COUNT]).await?;
            let Frame::Array(parts) = reply else {
                return Err(format!("ERR unexpected SCAN reply from {}", backend.addr()));
            };
            let [Frame::Bulk(next), Frame::Array(found)] = parts.as_slice() else {
                return Err(format!("ERR unexpected SCAN reply from {}", backend.addr()));
            };
            for key in found.iter().filter_map(Frame::as_bytes) {
                sampled += 1;
                let routing = tag.routing_key(key);
                let (Some(old), Some(new)) = (before.get(routing), after.get(routing)) else { continue };
                if old != new {
                    moved += 1;
                    if let Some(i) = handoffs.iter().position(|h| h.from == old && h.to == new) {
                        moved_by_pair[i] += 1;
                    }
                }
            }
            if &next[..] == b"0" {
                break true;
            }
            if sampled >= SAMPLE_PER_SERVER {
                break false;
            }
            cursor = next.to_vec();
        };
        // A finished scan saw every key (writes meanwhile may make DBSIZE differ a little).
        let total = if complete { sampled } else { size.max(sampled) };
        keys.sampled += sampled;
        keys.total += total;
        keys.moved_in_sample += moved;
        if sampled == 0 {
            continue;
        }
        let scale = total as f64 / sampled as f64;
        keys.moved += moved as f64 * scale;
        for (i, count) in moved_by_pair.iter().enumerate() {
            pair_keys[i] += *count as f64 * scale;
        }
        if !complete {
            keys.exact = false;
            // Binomial proportion with the finite population correction.
            let (n, big_n) = (sampled as f64, total as f64);
            let p = moved as f64 / n;
            let fpc = if big_n > 1.0 { (big_n - n) / (big_n - 1.0) } else { 0.0 };
            variance += big_n * big_n * p * (1.0 - p) / n * fpc.max(0.0);
        }
    }
    keys.error = Z_95 * variance.sqrt();
    let moves = handoffs
        .iter()
        .zip(pair_keys)
        .map(|(h, keys)| Move { from: h.from.clone(), to: h.to.clone(), share: h.share, keys })
        .collect::<Vec<_>>();
    Ok(Preview {
        op: if weight.is_some() { "add" } else { "remove" },
        server: addr.to_string(),
        weight,
        servers_before: before.len(),
        servers_after: after.len(),
        moved_share: handoffs.iter().map(|h| h.share).sum(),
        moves,
        keys,
        points_after: after.points().map(|(p, s)| (p, s.to_string())).collect(),
    })
}

/// The reply lines of PREVIEW.
pub fn lines(preview: &Preview) -> Vec<String> {
    let mut lines = vec![match preview.weight {
        Some(weight) => format!(
            "preview ADD_SERVER {} weight {weight}: {} -> {} servers; nothing changes until ADD_SERVER",
            preview.server, preview.servers_before, preview.servers_after
        ),
        None => format!(
            "preview REMOVE_SERVER {}: {} -> {} servers; nothing changes until REMOVE_SERVER",
            preview.server, preview.servers_before, preview.servers_after
        ),
    }];
    lines.push(format!("ring {:.2}% of the key space changes owner", preview.moved_share * 100.0));
    let width = preview.moves.iter().map(|m| m.from.len()).max().unwrap_or(0);
    for m in &preview.moves {
        let keys = if preview.keys.exact { format!("{:.0} keys", m.keys) } else { format!("~{:.0} keys", m.keys) };
        lines.push(format!("move {:width$} -> {}  {:>6.2}% of the ring  {keys}", m.from, m.to, m.share * 100.0));
    }
    let k = &preview.keys;
    let how = if k.exact {
        format!("exact: every key sampled with SCAN ({} keys)", k.sampled)
    } else {
        format!("+/- {:.0} at 95%; sampled {} of {} keys with SCAN", k.error, k.sampled, k.total)
    };
    let approx = if k.exact { "" } else { "~" };
    lines.push(format!("keys {approx}{:.0} of {} would move ({how})", k.moved, k.total));
    if !k.unreachable.is_empty() {
        lines.push(format!("unreachable {} (their keys are not counted)", k.unreachable.join(",")));
    }
    lines
}

/// Answers a PREVIEW request (argument count checked by the table).
pub async fn run(proxy: &Arc<Proxy>, request: &Request, out: &mut BytesMut) {
    let change = match parse(&request.args) {
        Ok(change) => change,
        Err(text) => return write::error(out, text.as_bytes()),
    };
    match preview(proxy, &change).await {
        Ok(preview) => {
            let lines = lines(&preview);
            write::array_header(out, lines.len());
            lines.iter().for_each(|line| write::simple(out, line.as_bytes()));
        }
        Err(text) => write::error(out, text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn parses_add_and_remove() {
        assert_eq!(parse(&args("PREVIEW ADD 127.0.0.1:1 4")), Ok(Change::Add("127.0.0.1:1".into(), 4)));
        assert_eq!(parse(&args("preview add h:2")), Ok(Change::Add("h:2".into(), 1)));
        assert_eq!(parse(&args("PREVIEW remove h:2")), Ok(Change::Remove("h:2".into())));
        for bad in [
            "PREVIEW ADD h:1 0",
            "PREVIEW ADD h:1 x",
            "PREVIEW REMOVE h:1 2",
            "PREVIEW MOVE h:1",
            "PREVIEW ADD h:1 1 2",
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad}");
        }
    }
}
