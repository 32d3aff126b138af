//! Connection and introspection commands that the server and the proxy answer alike:
//! PING, ECHO, SELECT, CLIENT, HELLO, COMMAND, CONFIG GET.

use bytes::{Bytes, BytesMut};
use resp::command::{Command, CommandInfo, KeySpec};
use resp::{write, Frame};

/// The Redis version reported to clients (HELLO, INFO): the command set follows Redis 7.
pub const REDIS_VERSION: &str = "7.0.0";

/// The commands [`run`] answers (table names).
pub const COMMANDS: &[&str] = &[
    "ping",
    "echo",
    "select",
    "hello",
    "client|setname",
    "client|getname",
    "client|setinfo",
    "client|id",
    "client|info",
    "client|list",
    "command",
    "command|count",
    "command|info",
    "command|docs",
    "command|list",
    "command|getkeys",
    "config|get",
    "config|set",
    "config|resetstat",
];

/// What a connection remembers about its client.
#[derive(Debug, Clone)]
pub struct ClientState {
    /// The connection's id (`CLIENT ID`).
    pub id: u64,
    /// `CLIENT SETNAME`'s name.
    pub name: Option<Bytes>,
    /// The protocol `HELLO` chose: 2 or 3.
    pub protocol: u8,
    /// Passed `--requirepass` (AUTH or HELLO ... AUTH); see `auth`.
    pub authenticated: bool,
    /// Authenticated as the proxy's admin (`AUTH admin <admin-password>`).
    pub admin: bool,
    /// Failed AUTHs on this connection (throttled, then closed: see `auth`).
    pub auth_failures: u32,
}

impl ClientState {
    /// A new client with a process-wide unique id.
    pub fn new() -> Self {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            name: None,
            protocol: 2,
            authenticated: false,
            admin: false,
            auth_failures: 0,
        }
    }
}

impl Default for ClientState {
    fn default() -> Self {
        Self::new()
    }
}

/// Which commands a binary serves, for `COMMAND`, `COMMAND COUNT/LIST/INFO/DOCS`.
pub type Serves = fn(&Command) -> bool;

/// Answers one of [`COMMANDS`] (argument count already checked) into `out`; the error text
/// on failure. `serves` says which commands to list.
pub fn run(
    command: &Command,
    args: &[Bytes],
    client: &mut ClientState,
    serves: Serves,
    out: &mut BytesMut,
) -> Result<(), String> {
    match command.name {
        "ping" => match args.get(1) {
            Some(message) => write::bulk(out, message),
            None => write::simple(out, b"PONG"),
        },
        "echo" => write::bulk(out, &args[1]),
        "select" if &args[1][..] == b"0" => write::simple(out, b"OK"),
        "select" => return Err("ERR DB index is out of range".into()),
        "hello" => hello(args, client, out)?,
        "client|setname" => {
            if args[2].iter().any(|b| *b <= b' ' || *b > b'~') {
                return Err("ERR Client names cannot contain spaces, newlines or special characters.".into());
            }
            client.name = (!args[2].is_empty()).then(|| args[2].clone());
            write::simple(out, b"OK");
        }
        "client|getname" => match &client.name {
            Some(name) => write::bulk(out, name),
            None => write::null(out),
        },
        "client|setinfo" => write::simple(out, b"OK"),
        "client|id" => write::integer(out, client.id as i64),
        "client|info" | "client|list" => {
            let name = client.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
            let line = format!("id={} name={} db=0 resp={}\n", client.id, name, client.protocol);
            write::bulk(out, line.as_bytes());
        }
        "command" => {
            let served: Vec<&Command> = resp::command::table().top_level().filter(|c| serves(c)).collect();
            write::array_header(out, served.len());
            served.iter().for_each(|c| info_frame(c.info, c.arity).encode(out));
        }
        "command|count" => write::integer(out, resp::command::table().top_level().filter(|c| serves(c)).count() as i64),
        "command|list" => {
            let names: Vec<&str> = resp::command::table().top_level().filter(|c| serves(c)).map(|c| c.name).collect();
            write::array_header(out, names.len());
            names.iter().for_each(|n| write::bulk(out, n.as_bytes()));
        }
        "command|info" => {
            write::array_header(out, args.len() - 2);
            for name in &args[2..] {
                match find_served(name, serves) {
                    Some(c) => info_frame(c.info, c.arity).encode(out),
                    None => write::null_array(out),
                }
            }
        }
        "command|docs" => {
            let served: Vec<&Command> = if args.len() > 2 {
                args[2..].iter().filter_map(|name| find_served(name, serves)).collect()
            } else {
                resp::command::table().top_level().filter(|c| serves(c)).collect()
            };
            write::array_header(out, served.len() * 2);
            for c in served {
                write::bulk(out, c.name.as_bytes());
                docs_frame(c.info).encode(out);
            }
        }
        "command|getkeys" => {
            let target = &args[2..];
            let found = resp::command::lookup(target).map_err(|_| "ERR Invalid command specified".to_string())?;
            if !found.accepts(target.len()) {
                return Err("ERR Invalid number of arguments specified for command".into());
            }
            let keys =
                found.key_positions(target).map_err(|_| "ERR Invalid arguments specified for command".to_string())?;
            if keys.is_empty() {
                return Err("ERR The command has no key arguments".into());
            }
            write::array_header(out, keys.len());
            keys.iter().for_each(|&i| write::bulk(out, &target[i]));
        }
        "config|get" => config_get(&args[2..], out),
        "config|set" | "config|resetstat" => write::simple(out, b"OK"),
        _ => return Err("ERR unknown command".into()),
    }
    Ok(())
}

fn find_served(name: &[u8], serves: Serves) -> Option<&'static Command> {
    let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    resp::command::table().by_name(&name).filter(|c| serves(c))
}

/// HELLO [protover]: RESP2 only for now.
fn hello(args: &[Bytes], client: &mut ClientState, out: &mut BytesMut) -> Result<(), String> {
    if args.get(1).is_some_and(|v| &v[..] != b"2") {
        return Err("NOPROTO sorry, this protocol version is not supported".into());
    }
    client.protocol = 2;
    let fields = [
        ("server", Frame::bulk("redis")),
        ("version", Frame::bulk(REDIS_VERSION)),
        ("proto", Frame::Integer(2)),
        ("id", Frame::Integer(client.id as i64)),
        ("mode", Frame::bulk("standalone")),
        ("role", Frame::bulk("master")),
        ("modules", Frame::Array(vec![])),
    ];
    let items = fields.into_iter().flat_map(|(k, v)| [Frame::bulk(k), v]).collect();
    Frame::Array(items).encode(out);
    Ok(())
}

/// CONFIG GET parameter...: what redis-benchmark and client libraries ask at start.
fn config_get(parameters: &[Bytes], out: &mut BytesMut) {
    const KNOWN: &[(&str, &str)] = &[("save", ""), ("appendonly", "no"), ("databases", "1")];
    let mut found = Vec::new();
    for parameter in parameters {
        let parameter = String::from_utf8_lossy(parameter).to_ascii_lowercase();
        for (name, value) in KNOWN {
            if (parameter == *name || parameter == "*") && !found.iter().any(|(n, _)| n == name) {
                found.push((*name, *value));
            }
        }
    }
    write::array_header(out, found.len() * 2);
    for (name, value) in found {
        write::bulk(out, name.as_bytes());
        write::bulk(out, value.as_bytes());
    }
}

fn statuses(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|s| Frame::simple(s.to_string())).collect())
}

fn bulks(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|s| Frame::bulk(s.to_string())).collect())
}

/// A row of `COMMAND INFO`, as Redis 7 writes it.
fn info_frame(info: &CommandInfo, arity: i32) -> Frame {
    Frame::Array(vec![
        Frame::bulk(info.name),
        Frame::Integer(arity.into()),
        statuses(info.flags),
        Frame::Integer(info.first_key.into()),
        Frame::Integer(info.last_key.into()),
        Frame::Integer(info.key_step.into()),
        statuses(info.acl_categories),
        bulks(info.tips),
        Frame::Array(info.key_specs.iter().map(key_spec_frame).collect()),
        Frame::Array(info.subcommands.iter().map(|s| info_frame(s, s.arity)).collect()),
    ])
}

fn key_spec_frame(spec: &KeySpec) -> Frame {
    use resp::command::{BeginSearch, FindKeys};
    let pairs = |items: Vec<(&'static str, Frame)>| {
        Frame::Array(items.into_iter().flat_map(|(k, v)| [Frame::bulk(k), v]).collect())
    };
    let begin = match spec.begin {
        BeginSearch::Index(i) => {
            pairs(vec![("type", Frame::bulk("index")), ("spec", pairs(vec![("index", Frame::Integer(i.into()))]))])
        }
        BeginSearch::Keyword { keyword, start_from } => pairs(vec![
            ("type", Frame::bulk("keyword")),
            ("spec", pairs(vec![("keyword", Frame::bulk(keyword)), ("startfrom", Frame::Integer(start_from.into()))])),
        ]),
        BeginSearch::Unknown => pairs(vec![("type", Frame::bulk("unknown")), ("spec", pairs(vec![]))]),
    };
    let find = match spec.find {
        FindKeys::Range { last_key, step, limit } => pairs(vec![
            ("type", Frame::bulk("range")),
            (
                "spec",
                pairs(vec![
                    ("lastkey", Frame::Integer(last_key.into())),
                    ("keystep", Frame::Integer(step.into())),
                    ("limit", Frame::Integer(limit.into())),
                ]),
            ),
        ]),
        FindKeys::KeyNum { key_num_index, first_key, step } => pairs(vec![
            ("type", Frame::bulk("keynum")),
            (
                "spec",
                pairs(vec![
                    ("keynumidx", Frame::Integer(key_num_index.into())),
                    ("firstkey", Frame::Integer(first_key.into())),
                    ("keystep", Frame::Integer(step.into())),
                ]),
            ),
        ]),
        FindKeys::Unknown => pairs(vec![("type", Frame::bulk("unknown")), ("spec", pairs(vec![]))]),
    };
    pairs(vec![("flags", statuses(spec.flags)), ("begin_search", begin), ("find_keys", find)])
}

/// A `COMMAND DOCS` entry: summary, since, group, complexity, subcommands.
fn docs_frame(info: &CommandInfo) -> Frame {
    let mut items = vec![
        Frame::bulk("summary"),
        Frame::bulk(info.summary),
        Frame::bulk("since"),
        Frame::bulk(info.since),
        Frame::bulk("group"),
        Frame::bulk(info.group),
        Frame::bulk("complexity"),
        Frame::bulk(info.complexity),
    ];
    if !info.subcommands.is_empty() {
        items.push(Frame::bulk("subcommands"));
        items.push(Frame::Array(info.subcommands.iter().flat_map(|s| [Frame::bulk(s.name), docs_frame(s)]).collect()));
    }
    Frame::Array(items)
}
