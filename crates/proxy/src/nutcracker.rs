//! twemproxy's configuration file (`nutcracker.yml`), read as twemproxy reads it and mapped
//! onto our own flags (`proxy --config nutcracker.yml`).
//!
//! [`parse`] reads one pool (the only one, or `--pool NAME`); [`pool_names`] lists them, and
//! the binary serves each pool of a file with several on a listener of its own. Every key twemproxy reads is either mapped (see [`Pool`]), accepted with a note
//! saying why it has no effect here (`backlog`, `tcpkeepalive`, `reuseport`, `preconnect`),
//! or refused with an error naming the key and its line: never silently ignored. Defaults
//! are twemproxy's (`hash: fnv1a_64`, `distribution: ketama`, no `timeout`, no ejection,
//! `server_retry_timeout: 30000`, `server_failure_limit: 2`), not our flags' defaults.

use std::collections::HashSet;

use ring::{Distribution, Hash, HashTag};
use serde_yaml::Value;

/// twemproxy's `CONF_DEFAULT_SERVER_RETRY_TIMEOUT` (ms).
const DEFAULT_SERVER_RETRY_TIMEOUT_MS: u64 = 30_000;
/// twemproxy's `CONF_DEFAULT_SERVER_FAILURE_LIMIT`.
const DEFAULT_SERVER_FAILURE_LIMIT: u32 = 2;
/// twemproxy's `CONF_DEFAULT_SERVER_CONNECTIONS`.
const DEFAULT_SERVER_CONNECTIONS: usize = 1;

/// Every pool key twemproxy 0.5 reads (`conf_commands` in `nc_conf.c`).
const KEYS: &[&str] = &[
    "listen",
    "hash",
    "hash_tag",
    "distribution",
    "timeout",
    "backlog",
    "client_connections",
    "redis",
    "tcpkeepalive",
    "reuseport",
    "redis_auth",
    "redis_db",
    "preconnect",
    "auto_eject_hosts",
    "server_connections",
    "server_retry_timeout",
    "server_failure_limit",
    "servers",
];

/// One server entry: `host:port:weight [name]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// `host:port`.
    pub addr: String,
    /// Its weight (at least 1).
    pub weight: u32,
    /// Its name, hashed by ketama instead of the address.
    pub name: Option<String>,
}

/// The pool, as our settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The pool's name (the top-level key).
    pub name: String,
    /// `listen`'s host (our `--bind`).
    pub bind: String,
    /// `listen`'s port (our `--port`).
    pub port: u16,
    /// `hash` (our `--hash`).
    pub hash: Hash,
    /// `hash_tag` (our `--hash-tag`).
    pub hash_tag: HashTag,
    /// `distribution` (our `--distribution`).
    pub distribution: Distribution,
    /// `timeout` in ms (our `--server-timeout-ms`); 0: none, twemproxy's default.
    pub timeout_ms: u64,
    /// `client_connections` (our `--max-clients`); 0: twemproxy's "no limit".
    pub client_connections: usize,
    /// `redis_auth`: clients must AUTH with it, and it is given to the servers
    /// (our `--requirepass` and `--server-password`).
    pub redis_auth: Option<String>,
    /// `auto_eject_hosts` (our `--no-auto-eject` when false).
    pub auto_eject_hosts: bool,
    /// `server_connections` (our `--server-connections`).
    pub server_connections: usize,
    /// `server_retry_timeout` in ms (our `--server-retry-timeout-ms`).
    pub server_retry_timeout_ms: u64,
    /// `server_failure_limit` (our `--server-failure-limit`).
    pub server_failure_limit: u32,
    /// `servers`, in file order.
    pub servers: Vec<Server>,
    /// Keys accepted without effect here, and why (logged at start).
    pub notes: Vec<String>,
}

/// Where an error is: the file's name and the 1-based line of `needle` at or after `from`.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    /// The line of the first line at or after line `from` whose text, trimmed, starts with
    /// `needle` (1-based; `from` when none does).
    fn line(&self, from: usize, needle: &str) -> usize {
        self.text
            .lines()
            .enumerate()
            .skip(from.saturating_sub(1))
            .find(|(_, l)| l.trim_start().trim_start_matches("- ").trim_start().starts_with(needle))
            .map_or(from, |(i, _)| i + 1)
    }

    fn error(&self, line: usize, message: impl std::fmt::Display) -> String {
        format!("{} line {line}: {message}", self.file)
    }
}

/// Reads the pool `pick` (or the only pool) of the twemproxy configuration `text`, read from
/// `file` (named in errors).
/// The names of the pools in `text` (the file `file`), in file order.
pub fn pool_names(file: &str, text: &str) -> Result<Vec<String>, String> {
    let src = Source { file, text };
    let root: Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        src.error(line, format!("not valid YAML: {e}"))
    })?;
    match root {
        Value::Mapping(pools) => Ok(pools.keys().map(scalar).collect()),
        _ => Err(src.error(1, "expected pools: `name:` mappings at the top level")),
    }
}

pub fn parse(file: &str, text: &str, pick: Option<&str>) -> Result<Pool, String> {
    let src = Source { file, text };
    let root: Value = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        src.error(line, format!("not valid YAML: {e}"))
    })?;
    let Value::Mapping(pools) = root else {
        return Err(src.error(1, "expected pools: `name:` mappings at the top level"));
    };
    let names: Vec<String> = pools.keys().map(scalar).collect();
    let (name, body) = match pick {
        Some(want) => {
            let body = pools.iter().find(|(k, _)| scalar(k) == want).map(|(_, v)| v);
            let body = body.ok_or_else(|| src.error(1, format!("no pool {want:?}; pools: {}", names.join(", "))))?;
            (want.to_string(), body)
        }
        None => match pools.iter().next() {
            Some((k, v)) if pools.len() == 1 => (scalar(k), v),
            Some(_) => {
                return Err(src.error(
                    1,
                    format!(
                        "{} pools ({}): one pool per proxy process; pick one with --pool NAME and run a proxy per pool",
                        pools.len(),
                        names.join(", ")
                    ),
                ))
            }
            None => return Err(src.error(1, "no pool")),
        },
    };
    let at = src.line(1, &format!("{name}:"));
    let Value::Mapping(body) = body else {
        return Err(src.error(at, format!("pool {name:?}: expected its keys (listen, servers, ...)")));
    };
    let line = |key: &str| src.line(at, &format!("{key}:"));
    let err = |key: &str, message: String| src.error(line(key), format!("pool {name:?}: {key}: {message}"));

    let mut seen = HashSet::new();
    for key in body.keys() {
        let key = scalar(key);
        if !KEYS.contains(&key.as_str()) {
            return Err(err(&key, format!("unknown key; twemproxy's keys are {}", KEYS.join(", "))));
        }
        seen.insert(key);
    }
    let get = |key: &str| body.get(key);
    let number = |key: &str| -> Result<Option<i64>, String> {
        match get(key) {
            None => Ok(None),
            Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
            Some(v) => {
                scalar(v).parse().map(Some).map_err(|_| err(key, format!("expected a number, got {:?}", scalar(v))))
            }
        }
    };
    let non_negative = |key: &str| -> Result<Option<u64>, String> {
        match number(key)? {
            Some(n) if n < 0 => Err(err(key, format!("must not be negative, got {n}"))),
            other => Ok(other.map(|n| n as u64)),
        }
    };
    let boolean = |key: &str| -> Result<Option<bool>, String> {
        match get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(err(key, format!("expected true or false, got {:?}", scalar(v)))),
        }
    };
    let text_of = |key: &str| get(key).map(scalar);

    if boolean("redis")? != Some(true) {
        return Err(err(
            "redis",
            "memcache pools are not supported: this proxy speaks Redis; set `redis: true` (twemproxy's default is false)"
                .into(),
        ));
    }
    let listen = text_of("listen").ok_or_else(|| src.error(at, format!("pool {name:?}: listen: missing")))?;
    let listen_addr = listen.split_whitespace().next().unwrap_or_default();
    if listen_addr.starts_with('/') {
        return Err(err("listen", format!("unix sockets ({listen_addr}) are not supported; listen on host:port")));
    }
    let (bind, port) = listen_addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| err("listen", format!("expected host:port, got {listen:?}")))?;
    let hash = match text_of("hash") {
        None => Hash::TWEMPROXY_DEFAULT,
        Some(h) => h.parse().map_err(|e: String| err("hash", e))?,
    };
    let distribution = match text_of("distribution") {
        None => Distribution::TWEMPROXY_DEFAULT,
        Some(d) => d.parse().map_err(|e: String| err("distribution", e))?,
    };
    let hash_tag = match text_of("hash_tag") {
        None => HashTag::NONE,
        Some(t) => HashTag::parse(&t)
            .filter(HashTag::is_set)
            .ok_or_else(|| err("hash_tag", format!("expected two characters such as \"{{}}\", got {t:?}")))?,
    };
    if let Some(db) = number("redis_db")?.filter(|&db| db != 0) {
        return Err(err("redis_db", format!("database {db} is not supported: the proxy uses each server's db 0")));
    }
    let timeout_ms = match number("timeout")? {
        None => 0,
        Some(t) if t <= 0 => return Err(err("timeout", format!("must be positive, got {t}"))),
        Some(t) => t as u64,
    };
    let server_connections = match non_negative("server_connections")? {
        None => DEFAULT_SERVER_CONNECTIONS,
        Some(0) => return Err(err("server_connections", "must be at least 1".into())),
        Some(n) => n as usize,
    };
    let server_failure_limit = match non_negative("server_failure_limit")? {
        None => DEFAULT_SERVER_FAILURE_LIMIT,
        Some(0) => return Err(err("server_failure_limit", "must be at least 1".into())),
        Some(n) => u32::try_from(n).map_err(|_| err("server_failure_limit", "too large".into()))?,
    };
    let mut notes = Vec::new();
    for (key, why) in [
        ("backlog", "the listen backlog is the OS default"),
        ("tcpkeepalive", "server connections use the OS keepalive settings"),
        ("reuseport", "one process listens"),
    ] {
        if seen.contains(key) {
            notes.push(format!("{key} (line {}) has no effect: {why}", line(key)));
        }
    }
    if boolean("preconnect")? == Some(true) {
        notes
            .push(format!("preconnect (line {}): servers are connected by the first health check", line("preconnect")));
    }
    let servers = parse_servers(&src, at, &name, get("servers"))?;
    Ok(Pool {
        name: name.clone(),
        bind,
        port,
        hash,
        hash_tag,
        distribution,
        timeout_ms,
        client_connections: non_negative("client_connections")?.unwrap_or(0) as usize,
        redis_auth: text_of("redis_auth").filter(|p| !p.is_empty()),
        auto_eject_hosts: boolean("auto_eject_hosts")?.unwrap_or(false),
        server_connections,
        server_retry_timeout_ms: non_negative("server_retry_timeout")?.unwrap_or(DEFAULT_SERVER_RETRY_TIMEOUT_MS),
        server_failure_limit,
        servers,
        notes,
    })
}

/// `servers:`: a list of `host:port:weight [name]`, parsed from the end as twemproxy does.
fn parse_servers(src: &Source<'_>, at: usize, pool: &str, value: Option<&Value>) -> Result<Vec<Server>, String> {
    let list_line = src.line(at, "servers:");
    let Some(Value::Sequence(entries)) = value else {
        return Err(src.error(list_line, format!("pool {pool:?}: servers: expected a list of host:port:weight [name]")));
    };
    if entries.is_empty() {
        return Err(src.error(list_line, format!("pool {pool:?}: servers: the list is empty")));
    }
    let mut servers: Vec<Server> = Vec::new();
    for entry in entries {
        let text = scalar(entry);
        let line = src.line(list_line, &text);
        let bad = |why: &str| src.error(line, format!("pool {pool:?}: server {text:?}: {why}"));
        if text.starts_with('/') {
            return Err(bad("unix socket servers are not supported"));
        }
        let (spec, name) = match text.split_once(' ') {
            Some((spec, name)) if !name.trim().is_empty() => (spec, Some(name.trim().to_string())),
            _ => (text.trim(), None),
        };
        let (addr, weight) = spec.rsplit_once(':').ok_or_else(|| bad("expected host:port:weight [name]"))?;
        let weight: u32 =
            weight.parse().map_err(|_| bad("expected host:port:weight [name]: the weight is not a number"))?;
        if weight == 0 {
            return Err(bad("has a zero weight"));
        }
        match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => return Err(bad("expected host:port:weight [name]: no valid port")),
        }
        if servers.iter().any(|s| s.addr == addr) {
            return Err(bad("the same host:port is listed twice"));
        }
        if name.is_some() && servers.iter().any(|s| s.name == name) {
            return Err(bad("the same name is given twice"));
        }
        servers.push(Server { addr: addr.to_string(), weight, name });
    }
    Ok(servers)
}

/// A YAML scalar as text (`true`, `8080`, `fnv1a_64`).
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  hash_tag: \"{}\"
  distribution: ketama
  auto_eject_hosts: true
  redis: true
  redis_auth: secret
  server_retry_timeout: 2000
  server_failure_limit: 1
  server_connections: 2
  timeout: 400
  backlog: 1024
  preconnect: true
  servers:
   - 127.0.0.1:6379:1 server1
   - 127.0.0.1:6380:2 server2
";

    #[test]
    fn twemproxys_example_pool_maps_onto_our_settings() {
        let pool = parse("nutcracker.yml", GOOD, None).unwrap();
        assert_eq!(pool.name, "alpha");
        assert_eq!((pool.bind.as_str(), pool.port), ("127.0.0.1", 22121));
        assert_eq!(pool.hash, Hash::Fnv1a_64);
        assert_eq!(pool.distribution, Distribution::Ketama);
        assert_eq!(pool.hash_tag, HashTag::parse("{}").unwrap());
        assert_eq!(pool.timeout_ms, 400);
        assert_eq!(pool.redis_auth.as_deref(), Some("secret"));
        assert!(pool.auto_eject_hosts);
        assert_eq!((pool.server_connections, pool.server_retry_timeout_ms, pool.server_failure_limit), (2, 2000, 1));
        assert_eq!(
            pool.servers,
            [
                Server { addr: "127.0.0.1:6379".into(), weight: 1, name: Some("server1".into()) },
                Server { addr: "127.0.0.1:6380".into(), weight: 2, name: Some("server2".into()) },
            ]
        );
        assert_eq!(pool.notes.len(), 2, "{:?}", pool.notes);
        assert!(pool.notes[0].starts_with("backlog (line 13)"), "{:?}", pool.notes);
    }

    #[test]
    fn twemproxys_defaults() {
        let pool = parse("f.yml", "p:\n  listen: 0.0.0.0:1\n  redis: true\n  servers:\n   - h:2:1\n", None).unwrap();
        assert_eq!(pool.hash, Hash::Fnv1a_64);
        assert_eq!(pool.distribution, Distribution::Ketama);
        assert_eq!(pool.timeout_ms, 0);
        assert!(!pool.auto_eject_hosts);
        assert_eq!((pool.server_connections, pool.server_retry_timeout_ms, pool.server_failure_limit), (1, 30_000, 2));
        assert_eq!(pool.servers[0].name, None);
    }

    /// Broken files and the error each gets: the key and the line are always named.
    #[test]
    fn broken_files_name_the_key_and_line() {
        let base = "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - h:2:1\n";
        let cases: &[(&str, &str)] = &[
            ("p:\n  listen: [1\n", "f.yml line 3: not valid YAML"),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  distribution: consistent\n  servers:\n   - h:2:1\n",
                "f.yml line 4: pool \"p\": distribution: unknown distribution \"consistent\"",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  hash: fnv\n  servers:\n   - h:2:1\n",
                "f.yml line 4: pool \"p\": hash: unknown hash \"fnv\"",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - h:2:0\n",
                "f.yml line 5: pool \"p\": server \"h:2:0\": has a zero weight",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - h:1\n",
                "f.yml line 5: pool \"p\": server \"h:1\": expected host:port:weight [name]: no valid port",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  servers:\n   - h:2:1\n",
                "f.yml line 1: pool \"p\": redis: memcache pools are not supported",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  sentinels: x\n  servers:\n   - h:2:1\n",
                "f.yml line 4: pool \"p\": sentinels: unknown key",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  redis_db: 3\n  servers:\n   - h:2:1\n",
                "f.yml line 4: pool \"p\": redis_db: database 3 is not supported",
            ),
            (
                "p:\n  listen: /tmp/s.sock\n  redis: true\n  servers:\n   - h:2:1\n",
                "f.yml line 2: pool \"p\": listen: unix sockets",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  servers:\n   - h:2:1 a\n   - h:3:1 a\n",
                "f.yml line 6: pool \"p\": server \"h:3:1 a\": the same name is given twice",
            ),
            (
                "p:\n  listen: 127.0.0.1:1\n  redis: true\n  timeout: soon\n  servers:\n   - h:2:1\n",
                "f.yml line 4: pool \"p\": timeout: expected a number",
            ),
        ];
        for (text, want) in cases {
            let got = parse("f.yml", text, None).unwrap_err();
            assert!(got.starts_with(want), "for {text:?}\n got: {got}\nwant: {want}");
        }
        let two = format!("{base}q:\n  listen: 127.0.0.1:2\n  redis: true\n  servers:\n   - h:3:1\n");
        assert!(parse("f.yml", &two, None).unwrap_err().contains("one pool per proxy process"));
        assert_eq!(parse("f.yml", &two, Some("q")).unwrap().port, 2);
        assert!(parse("f.yml", &two, Some("r")).unwrap_err().contains("no pool \"r\""));
    }
}
