//! The command table: the single source of what every command is.
//!
//! - Facts, generated from a redis-server's own `COMMAND`/`COMMAND DOCS` by `cmdgen`
//!   ([`redis`]): arity (Redis's signed convention), flags, key specs, docs.
//! - Our own commands ([`own`]): the seed's `HELP`, `WHOAMI` and the proxy's ring commands.
//! - Policy ([`policy`]): how the proxy treats each command ([`Route`]).
//!
//! Both binaries look a request up once ([`lookup`]: a hash lookup on the lower-cased
//! name, subcommand included) and switch on the fields of the [`Command`] they get.

pub mod facts;
mod keys;
pub mod learn;
mod own;
pub mod policy;
pub mod redis;

use std::collections::HashMap;

/// The table's hasher: foldhash, several times faster than the default SipHash on short
/// command names (the names are ours, so no defence against chosen collisions is needed).
type NameHasher = foldhash::fast::FixedState;
use std::sync::LazyLock;

use bytes::Bytes;

pub use facts::{BeginSearch, CommandInfo, FindKeys, KeySpec};
pub use keys::KeyError;
pub use policy::{Merge, Route};

/// Longest command name looked up, subcommand included; longer names are unknown.
const MAX_NAME_LEN: usize = 64;

/// Command flags the binaries act on, as bits (Redis's names in [`CommandInfo::flags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(u32);

impl Flags {
    /// Changes data.
    pub const WRITE: Flags = Flags(1);
    /// Only reads data.
    pub const READONLY: Flags = Flags(1 << 1);
    /// May grow memory (refused under `maxmemory` with `noeviction`).
    pub const DENYOOM: Flags = Flags(1 << 2);
    /// Administers the server.
    pub const ADMIN: Flags = Flags(1 << 3);
    /// Pub/Sub.
    pub const PUBSUB: Flags = Flags(1 << 4);
    /// Not allowed in scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// May block the connection (`BLPOP`, `XREAD BLOCK`, `WAIT`).
    pub const BLOCKING: Flags = Flags(1 << 6);
    /// O(1) or O(log n).
    pub const FAST: Flags = Flags(1 << 7);
    /// Key positions depend on the arguments.
    pub const MOVABLE_KEYS: Flags = Flags(1 << 8);
    /// Not allowed inside MULTI.
    pub const NO_MULTI: Flags = Flags(1 << 9);
    /// Allowed before authentication.
    pub const NO_AUTH: Flags = Flags(1 << 10);
    /// Ours, not Redis's: changes the proxy's ring, or erases or reconfigures every server,
    /// so it needs the admin password when one is set (`--admin-password`). Set from
    /// [`policy::GUARDED`].
    pub const GUARDED: Flags = Flags(1 << 11);

    const NAMES: &[(&str, Flags)] = &[
        ("write", Flags::WRITE),
        ("readonly", Flags::READONLY),
        ("denyoom", Flags::DENYOOM),
        ("admin", Flags::ADMIN),
        ("pubsub", Flags::PUBSUB),
        ("noscript", Flags::NOSCRIPT),
        ("blocking", Flags::BLOCKING),
        ("fast", Flags::FAST),
        ("movablekeys", Flags::MOVABLE_KEYS),
        ("no_multi", Flags::NO_MULTI),
        ("no_auth", Flags::NO_AUTH),
    ];

    /// The bits of Redis's flag names (names without a bit are kept only in the facts).
    pub fn from_names(names: &[&str]) -> Flags {
        let bits =
            names.iter().filter_map(|n| Self::NAMES.iter().find(|(name, _)| name == n)).fold(0, |b, (_, f)| b | f.0);
        Flags(bits)
    }

    /// The bits of both.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// One command as the binaries see it: Redis's facts plus the proxy's route.
#[derive(Debug)]
pub struct Command {
    /// Index in the table (for per-command handler tables and counters).
    pub id: usize,
    /// Redis's lower-case name; a subcommand is `container|sub`.
    pub name: &'static str,
    /// The name as logs and errors show it: upper case, a subcommand after a space.
    pub display: &'static str,
    /// Redis's arity (the seed's bare `KEYS` widens one).
    pub arity: i32,
    /// Flags the binaries act on.
    pub flags: Flags,
    /// How the proxy treats it.
    pub route: Route,
    /// Where the keys are (Redis's key specs, plus ours where Redis's are incomplete).
    pub key_specs: &'static [KeySpec],
    /// The seed's usage line, for the seed's own commands.
    pub usage: Option<&'static str>,
    /// The facts it came from, for `COMMAND INFO` and `COMMAND DOCS`.
    pub info: &'static CommandInfo,
    /// Whether it is a container of subcommands (`CONFIG`, `SCRIPT`, `CLIENT`).
    pub has_subcommands: bool,
    /// The argument index of its only key when that is fixed (`GET`, `SET`, `HSET`): the
    /// proxy's fast path.
    pub fixed_key: Option<usize>,
}

impl Command {
    /// The command of `info`, with its route from the policy (or derived from the facts),
    /// the seed's usage line and arity where the seed has them.
    pub(crate) fn from_info(id: usize, info: &'static CommandInfo) -> Command {
        let name = info.name;
        let lookup = |list: &[(&str, Route)]| list.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
        // A subcommand without a route of its own takes its container's (`CLIENT KILL` is
        // answered by the proxy, as `CLIENT` is).
        let container = name.split_once('|').map(|(c, _)| c);
        let container_route = container.and_then(|c| policy::ROUTES.iter().find(|(n, _)| *n == c).map(|(_, r)| *r));
        let route = lookup(policy::ROUTES).or(container_route).unwrap_or_else(|| policy::default_route(info));
        let key_specs = if name == "sort" { SORT_KEYS } else { info.key_specs };
        let display: &'static str = Box::leak(name.replace('|', " ").to_ascii_uppercase().into_boxed_str());
        Command {
            id,
            name,
            display,
            arity: own::SEED_ARITY.iter().find(|(n, _)| *n == name).map_or(info.arity, |(_, a)| *a),
            flags: if policy::GUARDED.contains(&name) {
                Flags::from_names(info.flags).union(Flags::GUARDED)
            } else {
                Flags::from_names(info.flags)
            },
            route,
            key_specs,
            usage: own::SEED_USAGE.iter().find(|(n, _)| *n == name).map(|(_, u)| *u),
            info,
            has_subcommands: !info.subcommands.is_empty(),
            fixed_key: keys::fixed_key(key_specs),
        }
    }
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Command {}

impl Command {
    /// Whether `n` arguments (the name included) satisfy the arity.
    pub fn accepts(&self, n: usize) -> bool {
        let arity = self.arity.unsigned_abs() as usize;
        if self.arity >= 0 {
            n == arity
        } else {
            n >= arity
        }
    }

    /// The error for a wrong argument count (without `-`): the seed's usage line for the
    /// seed's commands typed by a person (`inline`), Redis's wording for everything else, so
    /// client libraries see what redis-server would send.
    pub fn arity_error(&self, inline: bool) -> String {
        match self.usage {
            Some(usage) if inline => format!("ERR usage: {usage}"),
            // A subcommand is named as Redis 7.0 names it: `'config|get'`.
            _ => format!("ERR wrong number of arguments for '{}' command", self.name),
        }
    }

    /// Whether it changes data: flagged `write`, or a key spec says it may write its keys
    /// (`EVAL`, `FCALL`: `RW`).
    pub fn is_write(&self) -> bool {
        self.flags.contains(Flags::WRITE)
            || self.key_specs.iter().any(|spec| {
                spec.flags.iter().any(|f| matches!(*f, "RW" | "OW" | "RM" | "insert" | "delete" | "update"))
            })
    }

    /// Whether it may block its connection.
    pub fn is_blocking(&self) -> bool {
        self.flags.contains(Flags::BLOCKING)
    }

    /// Appends the argument indexes of the keys of `args` to `out`, in argument order.
    pub fn keys_into(&self, args: &[Bytes], out: &mut Vec<usize>) -> Result<(), KeyError> {
        keys::find(self.key_specs, args, out)
    }

    /// The argument indexes of the keys of `args`.
    pub fn key_positions(&self, args: &[Bytes]) -> Result<Vec<usize>, KeyError> {
        if let Some(i) = self.fixed_key {
            return Ok(if i < args.len() { vec![i] } else { Vec::new() });
        }
        let mut out = Vec::new();
        self.keys_into(args, &mut out)?;
        Ok(out)
    }
}

/// Why [`lookup`] found no command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    /// No command by that name.
    UnknownCommand,
    /// A container (`CONFIG`) without a known subcommand.
    UnknownSubcommand(&'static Command),
}

impl LookupError {
    /// Redis's error text (without `-`) for the request `args`.
    pub fn reply_text(&self, args: &[Bytes]) -> String {
        match self {
            LookupError::UnknownCommand => {
                let name = args.first().map(|a| String::from_utf8_lossy(a)).unwrap_or_default();
                format!("ERR unknown command '{}', with args beginning with: {}", name, quoted_args(args.get(1..)))
            }
            LookupError::UnknownSubcommand(container) => {
                let sub = args.get(1).map(|a| String::from_utf8_lossy(a)).unwrap_or_default();
                format!("ERR unknown subcommand '{sub}'. Try {} HELP.", container.display)
            }
        }
    }
}

/// Redis's `'a' 'b' ` list of the first arguments of an unknown command.
fn quoted_args(args: Option<&[Bytes]>) -> String {
    let mut text = String::new();
    for arg in args.unwrap_or_default() {
        if text.len() >= 128 {
            break;
        }
        let arg = String::from_utf8_lossy(arg);
        let room = 128 - text.len();
        let shown: String = arg.chars().take(room).collect();
        text.push_str(&format!("'{shown}' "));
    }
    text
}

/// The table: every command, and an index by lower-case name.
pub struct Table {
    commands: Vec<Command>,
    /// Lower-case names (ASCII, so kept as bytes: a lookup skips UTF-8 validation).
    by_name: HashMap<&'static [u8], usize, NameHasher>,
}

/// Key specs Redis marks incomplete that the proxy must still see: `SORT ... STORE dst`.
static SORT_KEYS: &[KeySpec] = &[
    KeySpec {
        flags: &["RO", "access"],
        begin: BeginSearch::Index(1),
        find: FindKeys::Range { last_key: 0, step: 1, limit: 0 },
    },
    KeySpec {
        flags: &["OW", "update"],
        begin: BeginSearch::Keyword { keyword: "STORE", start_from: 2 },
        find: FindKeys::Range { last_key: 0, step: 1, limit: 0 },
    },
];

impl Table {
    fn build() -> Table {
        let mut table = Table { commands: Vec::new(), by_name: HashMap::default() };
        for info in redis::COMMANDS.iter().chain(own::COMMANDS) {
            table.add(info);
            for sub in info.subcommands {
                table.add(sub);
            }
        }
        table
    }

    fn add(&mut self, info: &'static CommandInfo) {
        let command = Command::from_info(self.commands.len(), info);
        self.by_name.insert(info.name.as_bytes(), command.id);
        self.commands.push(command);
    }

    /// Every command, subcommands included, in table order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// The top-level commands (what `COMMAND` lists).
    pub fn top_level(&self) -> impl Iterator<Item = &Command> {
        self.commands.iter().filter(|c| !c.name.contains('|'))
    }

    /// A command by its lower-case table name (`get`, `config|get`).
    pub fn by_name(&self, name: &str) -> Option<&Command> {
        self.by_name.get(name.as_bytes()).map(|&i| &self.commands[i])
    }

    fn find(&'static self, name: &[u8], sub: Option<&[u8]>) -> Option<&'static Command> {
        let mut buf = [0u8; MAX_NAME_LEN];
        let len = name.len() + sub.map_or(0, |s| s.len() + 1);
        if len > MAX_NAME_LEN {
            return None;
        }
        buf[..name.len()].copy_from_slice(name);
        if let Some(sub) = sub {
            buf[name.len()] = b'|';
            buf[name.len() + 1..len].copy_from_slice(sub);
        }
        buf[..len].make_ascii_lowercase();
        self.by_name.get(&buf[..len]).map(|&i| &self.commands[i])
    }
}

static TABLE: LazyLock<Table> = LazyLock::new(Table::build);

/// The command table.
pub fn table() -> &'static Table {
    &TABLE
}

/// The command `args` names, its subcommand resolved (`CONFIG GET` is `config|get`).
pub fn lookup(args: &[Bytes]) -> Result<&'static Command, LookupError> {
    let table = table();
    let name = args.first().map(|a| &a[..]).unwrap_or_default();
    let command = table.find(name, None).ok_or(LookupError::UnknownCommand)?;
    if !command.has_subcommands {
        return Ok(command);
    }
    match args.get(1) {
        // A container alone (`CONFIG`) fails its arity check.
        None => Ok(command),
        Some(sub) => table.find(name, Some(sub)).ok_or(LookupError::UnknownSubcommand(command)),
    }
}

/// A command by name alone, subcommands not resolved (for callers that hold a name).
pub fn lookup_name(name: &[u8]) -> Option<&'static Command> {
    table().find(name, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<Bytes> {
        text.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    fn keys(text: &str) -> Vec<String> {
        let args = args(text);
        let command = lookup(&args).unwrap();
        let positions = command.key_positions(&args).unwrap();
        positions.iter().map(|&i| String::from_utf8_lossy(&args[i]).into_owned()).collect()
    }

    #[test]
    fn lookup_ignores_case_and_resolves_subcommands() {
        assert_eq!(lookup(&args("get k")).unwrap().name, "get");
        assert_eq!(lookup(&args("Add_Server x")).unwrap().name, "add_server");
        assert_eq!(lookup(&args("config get maxmemory")).unwrap().name, "config|get");
        assert_eq!(lookup(&args("NOPE")).unwrap_err(), LookupError::UnknownCommand);
        assert!(matches!(lookup(&args("CONFIG NOPE")), Err(LookupError::UnknownSubcommand(_))));
        assert_eq!(lookup(&args("CONFIG")).unwrap().name, "config");
    }

    #[test]
    fn arity_follows_redis_and_the_seed() {
        let set = lookup(&args("SET")).unwrap();
        assert!(!set.accepts(2) && set.accepts(3) && set.accepts(6));
        assert_eq!(set.arity_error(true), "ERR usage: SET key value");
        assert_eq!(set.arity_error(false), "ERR wrong number of arguments for 'set' command");
        let get = lookup(&args("GET")).unwrap();
        assert!(get.accepts(2) && !get.accepts(3));
        let hset = lookup(&args("HSET")).unwrap();
        assert_eq!(hset.arity_error(true), "ERR wrong number of arguments for 'hset' command");
        let config_get = lookup(&args("CONFIG GET")).unwrap();
        assert_eq!(config_get.arity_error(false), "ERR wrong number of arguments for 'config|get' command");
        assert!(lookup(&args("KEYS")).unwrap().accepts(1), "the seed's bare KEYS");
        assert!(set.is_write() && !get.is_write());
        assert!(lookup(&args("EVAL")).unwrap().is_write(), "a script may write its keys");
        assert!(lookup(&args("BLPOP")).unwrap().is_blocking());
    }

    #[test]
    fn unknown_commands_are_named_as_redis_names_them() {
        let args = args("FOO a b");
        assert_eq!(
            lookup(&args).unwrap_err().reply_text(&args),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
    }

    #[test]
    fn key_specs_find_every_kind_of_key() {
        assert_eq!(keys("GET k"), ["k"]);
        assert_eq!(keys("HSET h f v f2 v2"), ["h"]);
        assert_eq!(keys("MSET a 1 b 2"), ["a", "b"]);
        assert_eq!(keys("DEL a b c"), ["a", "b", "c"]);
        assert_eq!(keys("EVAL s 2 a b x y"), ["a", "b"]);
        assert!(keys("EVAL s 0 x").is_empty());
        let eval = |text: &str| lookup(&args(text)).unwrap().key_positions(&args(text));
        assert_eq!(eval("EVAL s 9223372036854775807 a"), Err(KeyError), "found by fuzzing: overflowed");
        assert_eq!(eval("EVAL s 3 a b"), Err(KeyError));
        assert_eq!(keys("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), ["d", "a", "b"]);
        assert_eq!(keys("XREAD COUNT 2 STREAMS s1 s2 0 0"), ["s1", "s2"]);
        assert_eq!(keys("XREADGROUP GROUP g c STREAMS s1 >"), ["s1"]);
        assert_eq!(keys("SORT l BY w_* STORE dst"), ["l", "dst"]);
        assert_eq!(keys("LMOVE a b LEFT RIGHT"), ["a", "b"]);
        assert_eq!(keys("BLPOP a b 0"), ["a", "b"]);
        assert_eq!(keys("GEORADIUS g 0 0 1 km STORE d"), ["g", "d"]);
        assert_eq!(keys("MIGRATE h 1 k 0 5"), ["k"]);
        assert_eq!(keys("OBJECT ENCODING k"), ["k"]);
    }

    #[test]
    fn routes_come_from_the_policy_or_the_facts() {
        let route = |text: &str| lookup(&args(text)).unwrap().route;
        assert_eq!(route("GET k"), Route::Keyed);
        assert_eq!(route("HSET h f v"), Route::Keyed);
        assert_eq!(route("MGET a"), Route::Split(Merge::Values));
        assert_eq!(route("SCRIPT LOAD s"), Route::FanOut(Merge::Same));
        assert_eq!(route("MULTI"), Route::Transaction);
        assert_eq!(route("ADD_SERVER x"), Route::Ring);
        assert_eq!(route("SUBSCRIBE c"), Route::PubSub);
        assert!(matches!(route("SHUTDOWN"), Route::Refused(_)));
        assert_eq!(route("LOLWUT"), Route::AnyServer);
    }

    #[test]
    fn the_table_is_whole() {
        let table = table();
        assert!(table.commands().len() > 350, "{}", table.commands().len());
        for command in table.commands() {
            assert_eq!(table.by_name(command.name).map(|c| c.id), Some(command.id), "{} twice", command.name);
        }
    }
}
