//! Commands the table does not know but a backend does (a newer Redis, a module): their
//! facts are read from the backend's own `COMMAND INFO` reply, once, and routed like any
//! other command by their key specs.

use crate::Frame;

use super::facts::{BeginSearch, CommandInfo, FindKeys, KeySpec};
use super::Command;

/// Most commands learned per process: their facts live as long as the process.
pub const MAX_LEARNED: usize = 256;

fn leak_str(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

fn text(frame: &Frame) -> String {
    frame.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}

fn int(frame: &Frame) -> Option<i64> {
    match frame {
        Frame::Integer(n) => Some(*n),
        _ => None,
    }
}

fn items(frame: &Frame) -> &[Frame] {
    match frame {
        Frame::Array(items) | Frame::Set(items) => items,
        _ => &[],
    }
}

/// A RESP2 flat map (key, value, key, value) or a RESP3 map, as pairs.
fn pairs(frame: &Frame) -> Vec<(String, &Frame)> {
    match frame {
        Frame::Map(entries) => entries.iter().map(|(k, v)| (text(k), v)).collect(),
        other => items(other).chunks(2).filter(|p| p.len() == 2).map(|p| (text(&p[0]), &p[1])).collect(),
    }
}

fn field<'f>(fields: &[(String, &'f Frame)], name: &str) -> Option<&'f Frame> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn strings(frame: &Frame) -> &'static [&'static str] {
    let list: Vec<&'static str> = items(frame).iter().map(|f| leak_str(text(f))).collect();
    Box::leak(list.into_boxed_slice())
}

fn key_spec(frame: &Frame) -> KeySpec {
    let fields = pairs(frame);
    let spec_of = |name: &str| -> (String, Vec<(String, &Frame)>) {
        match field(&fields, name) {
            Some(part) => {
                let part = pairs(part);
                let kind = field(&part, "type").map(text).unwrap_or_default();
                let spec = field(&part, "spec").map(pairs).unwrap_or_default();
                (kind, spec)
            }
            None => (String::new(), Vec::new()),
        }
    };
    let num = |spec: &[(String, &Frame)], name: &str| field(spec, name).and_then(int).unwrap_or(0) as i32;
    let (begin_kind, begin_spec) = spec_of("begin_search");
    let begin = match begin_kind.as_str() {
        "index" => BeginSearch::Index(num(&begin_spec, "index")),
        "keyword" => BeginSearch::Keyword {
            keyword: leak_str(field(&begin_spec, "keyword").map(text).unwrap_or_default()),
            start_from: num(&begin_spec, "startfrom"),
        },
        _ => BeginSearch::Unknown,
    };
    let (find_kind, find_spec) = spec_of("find_keys");
    let find = match find_kind.as_str() {
        "range" => FindKeys::Range {
            last_key: num(&find_spec, "lastkey"),
            step: num(&find_spec, "keystep"),
            limit: num(&find_spec, "limit"),
        },
        "keynum" => FindKeys::KeyNum {
            key_num_index: num(&find_spec, "keynumidx"),
            first_key: num(&find_spec, "firstkey"),
            step: num(&find_spec, "keystep"),
        },
        _ => FindKeys::Unknown,
    };
    KeySpec { flags: field(&fields, "flags").map(strings).unwrap_or(&[]), begin, find }
}

/// The facts of one row of a `COMMAND INFO` reply, or `None` when the reply says the
/// command does not exist (a null) or does not read as a command row.
pub fn facts_from_info(row: &Frame) -> Option<&'static CommandInfo> {
    let items = items(row);
    if items.len() < 6 {
        return None;
    }
    let name = text(&items[0]).to_ascii_lowercase();
    if name.is_empty() {
        return None;
    }
    let key_specs: Vec<KeySpec> =
        items.get(8).map(|f| self::items(f).iter().map(key_spec).collect()).unwrap_or_default();
    let info = CommandInfo {
        name: leak_str(name),
        arity: int(&items[1])? as i32,
        first_key: int(&items[3])? as i32,
        last_key: int(&items[4])? as i32,
        key_step: int(&items[5])? as i32,
        flags: strings(&items[2]),
        acl_categories: items.get(6).map(strings).unwrap_or(&[]),
        tips: items.get(7).map(strings).unwrap_or(&[]),
        key_specs: Box::leak(key_specs.into_boxed_slice()),
        group: "learned",
        since: "",
        summary: "learned from a server's COMMAND INFO",
        complexity: "",
        subcommands: &[],
    };
    Some(Box::leak(Box::new(info)))
}

/// A command built from facts a backend reported, routed by the same rules as the table's
/// rows ([`super::policy::default_route`]). Its `id` is past the table's.
pub fn command_from(info: &'static CommandInfo) -> &'static Command {
    Box::leak(Box::new(Command::from_info(usize::MAX, info)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{lookup, Route};
    use bytes::Bytes;

    /// What redis-server 7.0 answers to `COMMAND INFO hset`, as a frame.
    fn hset_row() -> Frame {
        let s = |t: &str| Frame::simple(t.to_string());
        let b = |t: &str| Frame::bulk(t.to_string());
        Frame::Array(vec![
            b("hsetx"),
            Frame::Integer(-4),
            Frame::Array(vec![s("write"), s("denyoom"), s("fast")]),
            Frame::Integer(1),
            Frame::Integer(1),
            Frame::Integer(1),
            Frame::Array(vec![s("@write"), s("@hash"), s("@fast")]),
            Frame::Array(vec![]),
            Frame::Array(vec![Frame::Array(vec![
                b("flags"),
                Frame::Array(vec![s("RW"), s("update")]),
                b("begin_search"),
                Frame::Array(vec![b("type"), b("index"), b("spec"), Frame::Array(vec![b("index"), Frame::Integer(1)])]),
                b("find_keys"),
                Frame::Array(vec![
                    b("type"),
                    b("range"),
                    b("spec"),
                    Frame::Array(vec![
                        b("lastkey"),
                        Frame::Integer(0),
                        b("keystep"),
                        Frame::Integer(1),
                        b("limit"),
                        Frame::Integer(0),
                    ]),
                ]),
            ])]),
            Frame::Array(vec![]),
        ])
    }

    #[test]
    fn a_learned_command_routes_like_the_tables() {
        let info = facts_from_info(&hset_row()).unwrap();
        let learned = command_from(info);
        let table = lookup(&[Bytes::from_static(b"HSET")]).unwrap();
        assert_eq!(learned.route, Route::Keyed);
        assert_eq!(learned.arity, table.arity);
        assert!(learned.is_write());
        let args: Vec<Bytes> = ["HSETX", "h", "f", "v"].iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        assert_eq!(learned.key_positions(&args).unwrap(), vec![1]);
        assert!(facts_from_info(&Frame::NullArray).is_none());
    }
}
