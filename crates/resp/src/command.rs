//! The command table: every command's name, argument count, usage line and key positions.
//!
//! One table serves the server (argument checks), the proxy (routing by key) and `HELP`, so
//! they cannot drift apart.

/// Where a command's keys are among its arguments (`args[0]` is the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// No key: a connection or server command.
    None,
    /// One key, at `args[1]`.
    First,
    /// Every argument after the name is a key (`DEL`, `EXISTS`, `MGET`).
    All,
    /// Key-value pairs after the name: keys at 1, 3, 5, ... (`MSET`).
    Pairs,
}

/// One command of the table.
#[derive(Debug)]
pub struct CommandSpec {
    /// Upper-case name.
    pub name: &'static str,
    /// Fewest arguments, the name included.
    pub min_args: usize,
    /// Most arguments, the name included; `None` for no bound.
    pub max_args: Option<usize>,
    /// The usage line sent as `-ERR usage: ...` on a wrong argument count.
    pub usage: &'static str,
    /// Where the keys are.
    pub keys: Keys,
    /// Whether it changes data: a replicating proxy sends writes to every replica and reads
    /// to one.
    pub write: bool,
}

impl CommandSpec {
    /// Whether `n` arguments (name included) is a valid count, pairs included.
    pub fn accepts(&self, n: usize) -> bool {
        let pairs_ok = self.keys != Keys::Pairs || n % 2 == 1;
        n >= self.min_args && self.max_args.is_none_or(|max| n <= max) && pairs_ok
    }

    /// The error text for a wrong argument count (without `-`).
    pub fn usage_error(&self) -> String {
        format!("ERR usage: {}", self.usage)
    }
}

const fn spec(
    name: &'static str,
    min_args: usize,
    max_args: Option<usize>,
    usage: &'static str,
    keys: Keys,
) -> CommandSpec {
    CommandSpec { name, min_args, max_args, usage, keys, write: false }
}

/// A [`spec`] for a command that changes data.
const fn write(
    name: &'static str,
    min_args: usize,
    max_args: Option<usize>,
    usage: &'static str,
    keys: Keys,
) -> CommandSpec {
    CommandSpec { write: true, ..spec(name, min_args, max_args, usage, keys) }
}

/// Every command the server or the proxy knows. The seed's own commands keep the seed's
/// usage lines (`SET key value`, `DEL key`, `ADD_SERVER host:port`), also where a command
/// has grown optional arguments since.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    // The seed's data commands.
    spec("GET", 2, Some(2), "GET key", Keys::First),
    write("SET", 3, None, "SET key value", Keys::First),
    write("DEL", 2, None, "DEL key", Keys::All),
    spec("KEYS", 1, Some(2), "KEYS [pattern]", Keys::None),
    // Redis data commands.
    spec("EXISTS", 2, None, "EXISTS key [key ...]", Keys::All),
    spec("MGET", 2, None, "MGET key [key ...]", Keys::All),
    write("MSET", 3, None, "MSET key value [key value ...]", Keys::Pairs),
    write("EXPIRE", 3, Some(3), "EXPIRE key seconds", Keys::First),
    write("PEXPIRE", 3, Some(3), "PEXPIRE key milliseconds", Keys::First),
    write("PERSIST", 2, Some(2), "PERSIST key", Keys::First),
    spec("TTL", 2, Some(2), "TTL key", Keys::First),
    spec("PTTL", 2, Some(2), "PTTL key", Keys::First),
    write("INCR", 2, Some(2), "INCR key", Keys::First),
    write("DECR", 2, Some(2), "DECR key", Keys::First),
    write("INCRBY", 3, Some(3), "INCRBY key increment", Keys::First),
    write("DECRBY", 3, Some(3), "DECRBY key decrement", Keys::First),
    spec("DBSIZE", 1, Some(1), "DBSIZE", Keys::None),
    write("FLUSHALL", 1, Some(2), "FLUSHALL [ASYNC|SYNC]", Keys::None),
    write("FLUSHDB", 1, Some(2), "FLUSHDB [ASYNC|SYNC]", Keys::None),
    spec("SCAN", 2, None, "SCAN cursor [MATCH pattern] [COUNT count]", Keys::None),
    // Connection and server commands.
    spec("PING", 1, Some(2), "PING [message]", Keys::None),
    spec("ECHO", 2, Some(2), "ECHO message", Keys::None),
    spec("QUIT", 1, None, "QUIT", Keys::None),
    spec("WHOAMI", 1, Some(1), "WHOAMI", Keys::None),
    spec("SELECT", 2, Some(2), "SELECT index", Keys::None),
    spec("CLIENT", 2, None, "CLIENT SETNAME name|GETNAME|ID|INFO", Keys::None),
    spec("HELLO", 1, None, "HELLO [protover]", Keys::None),
    spec("INFO", 1, Some(2), "INFO [section]", Keys::None),
    spec("COMMAND", 1, None, "COMMAND [COUNT|DOCS|INFO]", Keys::None),
    spec("CONFIG", 2, None, "CONFIG GET parameter", Keys::None),
    spec("HELP", 1, Some(1), "HELP", Keys::None),
    // The proxy's ring commands.
    spec("ADD_SERVER", 2, Some(4), "ADD_SERVER host:port", Keys::None),
    spec("REMOVE_SERVER", 2, Some(3), "REMOVE_SERVER host:port", Keys::None),
    spec("SERVERS", 1, Some(2), "SERVERS [DETAIL]", Keys::None),
    spec("ROUTE", 2, Some(3), "ROUTE key", Keys::None),
    spec("REBALANCE", 1, Some(1), "REBALANCE", Keys::None),
    spec("MIGRATION", 1, Some(1), "MIGRATION", Keys::None),
];

/// Finds a command by name, ignoring ASCII case.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|spec| spec.name.as_bytes().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup(b"get").map(|s| s.name), Some("GET"));
        assert_eq!(lookup(b"Add_Server").map(|s| s.name), Some("ADD_SERVER"));
        assert!(lookup(b"NOPE").is_none());
    }

    #[test]
    fn counts_and_usage() {
        let set = lookup(b"SET").unwrap();
        assert!(!set.accepts(2));
        assert!(set.accepts(3) && set.accepts(6));
        assert_eq!(set.usage_error(), "ERR usage: SET key value");
        let mset = lookup(b"MSET").unwrap();
        assert!(mset.accepts(5) && !mset.accepts(4));
        assert!(!lookup(b"GET").unwrap().accepts(3));
        assert!(set.write && !lookup(b"GET").unwrap().write);
    }

    #[test]
    fn names_are_unique_and_upper_case() {
        for (i, a) in COMMANDS.iter().enumerate() {
            assert_eq!(a.name, a.name.to_ascii_uppercase());
            assert!(COMMANDS[i + 1..].iter().all(|b| b.name != a.name), "{} twice", a.name);
        }
    }
}
