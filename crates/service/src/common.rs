//! Connection and introspection commands that the server and the proxy answer alike:
//! PING, ECHO, SELECT, CLIENT, HELLO, COMMAND, CONFIG GET.

use bytes::{Bytes, BytesMut};
use resp::command::{Command, CommandInfo, KeySpec};
use resp::{write, Frame, Protocol};

/// The Redis version reported to clients (HELLO, INFO): the command set follows Redis 7.
pub const REDIS_VERSION: &str = "7.0.0";

/// INFO's `# Server` section as both binaries start it: Redis's version, the
/// `server_name`, ours, the process, port and uptime. The caller adds its own fields.
pub fn info_server_section(server_name: &str, port: u16, started: std::time::Instant) -> String {
    format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nserver_name:{server_name}\r\nchd_version:{}\r\n\
         process_id:{}\r\ntcp_port:{port}\r\nuptime_in_seconds:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        started.elapsed().as_secs(),
    )
}

/// Whether `INFO wanted...` asks for every section: no section, `all`, `everything` or
/// `default`.
pub fn info_wants_all(wanted: &[Bytes]) -> bool {
    wanted.is_empty()
        || wanted.iter().any(|w| ["all", "everything", "default"].iter().any(|a| w.eq_ignore_ascii_case(a.as_bytes())))
}

/// Whether `INFO wanted...` asks for the section `name` (lower case, as Redis's).
pub fn info_wants(wanted: &[Bytes], name: &str) -> bool {
    info_wants_all(wanted) || wanted.iter().any(|w| w.eq_ignore_ascii_case(name.as_bytes()))
}

/// INFO's text: the `sections` (name, text from its `# Title` line) that `wanted` asks for,
/// a blank line between them, as Redis joins them.
pub fn info_text(sections: impl IntoIterator<Item = (&'static str, String)>, wanted: &[Bytes]) -> String {
    let chosen: Vec<String> =
        sections.into_iter().filter(|(name, _)| info_wants(wanted, name)).map(|(_, text)| text).collect();
    chosen.join("\r\n")
}

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
    /// The protocol `HELLO` chose (RESP2 until then): every reply to this client follows it.
    pub protocol: Protocol,
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
            protocol: Protocol::Resp2,
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

/// Answers one of [`COMMANDS`] (argument count already checked) into `out`, in the client's
/// protocol; the error text on failure. `serves` says which commands to list.
pub fn run(
    command: &Command,
    args: &[Bytes],
    client: &mut ClientState,
    serves: Serves,
    out: &mut BytesMut,
) -> Result<(), String> {
    let proto = client.protocol;
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
            client.name = valid_name(&args[2])?;
            write::simple(out, b"OK");
        }
        "client|getname" => match &client.name {
            Some(name) => write::bulk(out, name),
            None => write::null(out, proto),
        },
        "client|setinfo" => write::simple(out, b"OK"),
        "client|id" => write::integer(out, client.id as i64),
        "client|info" | "client|list" => {
            let name = client.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
            let line = format!("id={} name={} db=0 resp={}\n", client.id, name, client.protocol.version());
            write::verbatim(out, proto, line.as_bytes());
        }
        "command" => {
            let served: Vec<&Command> = resp::command::table().top_level().filter(|c| serves(c)).collect();
            write::array_header(out, served.len());
            served.iter().for_each(|c| info_frame(c.info, c.arity, proto).encode(out));
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
                    Some(c) => info_frame(c.info, c.arity, proto).encode(out),
                    None => write::null_array(out, proto),
                }
            }
        }
        "command|docs" => {
            let served: Vec<&Command> = if args.len() > 2 {
                args[2..].iter().filter_map(|name| find_served(name, serves)).collect()
            } else {
                resp::command::table().top_level().filter(|c| serves(c)).collect()
            };
            write::map_header(out, proto, served.len());
            for c in served {
                write::bulk(out, c.name.as_bytes());
                docs_frame(c.info, proto).encode(out);
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
        "config|get" => config_get(&args[2..], proto, out),
        "config|set" | "config|resetstat" => write::simple(out, b"OK"),
        _ => return Err("ERR unknown command".into()),
    }
    Ok(())
}

fn find_served(name: &[u8], serves: Serves) -> Option<&'static Command> {
    let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
    resp::command::table().by_name(&name).filter(|c| serves(c))
}

/// A `CLIENT SETNAME` / `HELLO ... SETNAME` name, checked as Redis checks it; empty clears it.
fn valid_name(name: &Bytes) -> Result<Option<Bytes>, String> {
    if name.iter().any(|b| *b <= b' ' || *b > b'~') {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.".into());
    }
    Ok((!name.is_empty()).then(|| name.clone()))
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`, as Redis 7 answers it:
/// switches the connection to RESP2 or RESP3 and describes the server, as a map in RESP3 and a
/// flat array in RESP2 (in the protocol just chosen). Without `protover` the protocol stays.
/// No password is configured, so `AUTH default <anything>` succeeds, as on a redis-server
/// without `requirepass`, and any other user is refused.
fn hello(args: &[Bytes], client: &mut ClientState, out: &mut BytesMut) -> Result<(), String> {
    let mut protocol = client.protocol;
    if let Some(version) = args.get(1) {
        let version = std::str::from_utf8(version)
            .ok()
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or("ERR Protocol version is not an integer or out of range")?;
        protocol = Protocol::from_version(version).ok_or("NOPROTO unsupported protocol version")?;
    }
    let mut name = None;
    let mut rest = args.iter().skip(2);
    while let Some(option) = rest.next() {
        let more = rest.len();
        if option.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            let user = rest.next().map(|u| &u[..]).unwrap_or_default();
            rest.next();
            if user != b"default" {
                return Err("WRONGPASS invalid username-password pair or user is disabled.".into());
            }
        } else if option.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            if let Some(given) = rest.next() {
                name = Some(valid_name(given)?);
            }
        } else {
            return Err(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(option)));
        }
    }
    if let Some(name) = name {
        client.name = name;
    }
    client.protocol = protocol;
    let fields = [
        ("server", Frame::bulk("redis")),
        ("version", Frame::bulk(REDIS_VERSION)),
        ("proto", Frame::Integer(protocol.version())),
        ("id", Frame::Integer(client.id as i64)),
        ("mode", Frame::bulk("standalone")),
        ("role", Frame::bulk("master")),
        ("modules", Frame::Array(vec![])),
    ];
    Frame::map(protocol, fields.into_iter().map(|(k, v)| (Frame::bulk(k), v)).collect()).encode(out);
    Ok(())
}

/// CONFIG GET parameter...: what redis-benchmark and client libraries ask at start.
fn config_get(parameters: &[Bytes], proto: Protocol, out: &mut BytesMut) {
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
    write::map_header(out, proto, found.len());
    for (name, value) in found {
        write::bulk(out, name.as_bytes());
        write::bulk(out, value.as_bytes());
    }
}

/// Flags, ACL categories, tips: sets of status lines in RESP3 (Redis 7.0 writes sets there).
fn statuses(items: &[&str], proto: Protocol) -> Frame {
    Frame::set(proto, items.iter().map(|s| Frame::simple(s.to_string())).collect())
}

fn bulks(items: &[&str], proto: Protocol) -> Frame {
    Frame::set(proto, items.iter().map(|s| Frame::bulk(s.to_string())).collect())
}

/// Named fields: a map in RESP3, a flat array in RESP2.
fn pairs(items: Vec<(&'static str, Frame)>, proto: Protocol) -> Frame {
    Frame::map(proto, items.into_iter().map(|(k, v)| (Frame::bulk(k), v)).collect())
}

/// A row of `COMMAND INFO`, as Redis 7 writes it.
fn info_frame(info: &CommandInfo, arity: i32, proto: Protocol) -> Frame {
    Frame::Array(vec![
        Frame::bulk(info.name),
        Frame::Integer(arity.into()),
        statuses(info.flags, proto),
        Frame::Integer(info.first_key.into()),
        Frame::Integer(info.last_key.into()),
        Frame::Integer(info.key_step.into()),
        statuses(info.acl_categories, proto),
        bulks(info.tips, proto),
        Frame::set(proto, info.key_specs.iter().map(|spec| key_spec_frame(spec, proto)).collect()),
        Frame::set(proto, info.subcommands.iter().map(|s| info_frame(s, s.arity, proto)).collect()),
    ])
}

fn key_spec_frame(spec: &KeySpec, proto: Protocol) -> Frame {
    use resp::command::{BeginSearch, FindKeys};
    let pairs = |items| pairs(items, proto);
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
    pairs(vec![("flags", statuses(spec.flags, proto)), ("begin_search", begin), ("find_keys", find)])
}

/// A `COMMAND DOCS` entry: summary, since, group, complexity, subcommands (a map in RESP3).
fn docs_frame(info: &CommandInfo, proto: Protocol) -> Frame {
    let mut items = vec![
        ("summary", Frame::bulk(info.summary)),
        ("since", Frame::bulk(info.since)),
        ("group", Frame::bulk(info.group)),
        ("complexity", Frame::bulk(info.complexity)),
    ];
    if !info.subcommands.is_empty() {
        let subcommands = info.subcommands.iter().map(|s| (Frame::bulk(s.name), docs_frame(s, proto))).collect();
        items.push(("subcommands", Frame::map(proto, subcommands)));
    }
    pairs(items, proto)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `words` as a request for `client`: the reply frame, or the error text.
    fn call(client: &mut ClientState, words: &[&str]) -> Result<Frame, String> {
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        let command = resp::command::lookup(&args).map_err(|_| "unknown".to_string())?;
        let mut out = BytesMut::new();
        run(command, &args, client, |_| true, &mut out)?;
        Ok(Frame::parse(&mut out, &resp::Limits::default()).ok().flatten().expect("one whole reply"))
    }

    #[test]
    fn hello_switches_protocols_as_redis_does() {
        let mut client = ClientState::new();
        let Ok(Frame::Map(fields)) = call(&mut client, &["HELLO", "3"]) else { panic!("HELLO 3 answers a map") };
        assert_eq!(fields.len(), 7);
        assert_eq!(fields[2], (Frame::bulk("proto"), Frame::Integer(3)));
        assert_eq!(client.protocol, Protocol::Resp3);
        // Without a version the protocol stays.
        assert!(matches!(call(&mut client, &["HELLO"]), Ok(Frame::Map(_))));
        assert_eq!(call(&mut client, &["CLIENT", "GETNAME"]), Ok(Frame::Resp3Null));
        let config = call(&mut client, &["CONFIG", "GET", "appendonly"]);
        assert_eq!(config, Ok(Frame::Map(vec![(Frame::bulk("appendonly"), Frame::bulk("no"))])));
        let Ok(Frame::Array(flat)) = call(&mut client, &["HELLO", "2", "SETNAME", "app"]) else {
            panic!("HELLO 2 answers a flat array")
        };
        assert_eq!((flat.len(), &flat[5]), (14, &Frame::Integer(2)));
        assert_eq!(client.protocol, Protocol::Resp2);
        assert_eq!(call(&mut client, &["CLIENT", "GETNAME"]), Ok(Frame::bulk("app")));
    }

    #[test]
    fn hello_errors_are_redis_errors() {
        let mut client = ClientState::new();
        let error = |client: &mut ClientState, words: &[&str]| call(client, words).err().unwrap_or_default();
        assert_eq!(error(&mut client, &["HELLO", "4"]), "NOPROTO unsupported protocol version");
        assert_eq!(error(&mut client, &["HELLO", "x"]), "ERR Protocol version is not an integer or out of range");
        assert_eq!(error(&mut client, &["HELLO", "3", "FOO"]), "ERR Syntax error in HELLO option 'FOO'");
        assert_eq!(error(&mut client, &["HELLO", "3", "AUTH", "default"]), "ERR Syntax error in HELLO option 'AUTH'");
        assert_eq!(
            error(&mut client, &["HELLO", "3", "AUTH", "bob", "pw"]),
            "WRONGPASS invalid username-password pair or user is disabled."
        );
        assert_eq!(client.protocol, Protocol::Resp2, "a refused HELLO changes nothing");
        assert!(call(&mut client, &["HELLO", "3", "AUTH", "default", "anything"]).is_ok());
        assert_eq!(client.protocol, Protocol::Resp3);
    }
}
