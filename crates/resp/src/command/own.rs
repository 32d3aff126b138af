//! The commands that are ours, not Redis's: the seed's `HELP` and `WHOAMI`, and the proxy's
//! ring commands. Same shape as Redis's rows, so `COMMAND INFO` and the checks treat them
//! alike.

use super::facts::CommandInfo;

const fn own(name: &'static str, arity: i32, flags: &'static [&'static str], summary: &'static str) -> CommandInfo {
    CommandInfo {
        name,
        arity,
        first_key: 0,
        last_key: 0,
        key_step: 0,
        flags,
        acl_categories: &["@slow"],
        tips: &[],
        key_specs: &[],
        group: "consistent-hashing",
        since: "0.1.0",
        summary,
        complexity: "",
        subcommands: &[],
    }
}

/// Our own commands.
#[rustfmt::skip]
pub static COMMANDS: &[CommandInfo] = &[
    own("help", 1, &["loading", "stale", "fast"], "The list of commands"),
    own("whoami", 1, &["loading", "stale", "fast"], "The cache server's name"),
    own("add_server", -2, &["admin", "noscript"], "Adds a server to the ring: host:port [weight] [MIGRATE]"),
    own("remove_server", -2, &["admin", "noscript"], "Removes a server from the ring: host:port [MIGRATE]"),
    own("servers", -1, &["loading", "stale"], "The ring's servers, sorted; with DETAIL their state and share"),
    own("route", -2, &["loading", "stale", "fast"], "The server a key routes to; with DETAIL its hash, point and replicas"),
    own("rebalance", 1, &["admin", "noscript"], "Moves every key to where the current ring puts it"),
    own("set_distribution", -2, &["admin", "noscript"], "Places keys by another distribution: name [hash] [MIGRATE]"),
    own("migration", 1, &["loading", "stale"], "The progress of the running or last migration"),
    // Redis 7.2's, which client libraries send at connect; the facts come from 7.0.
    own("client|setinfo", 4, &["noscript", "loading", "stale"], "Sets information about the client (LIB-NAME, LIB-VER)"),
];

/// Usage lines the seed showed for a wrong argument count; every other command answers
/// with Redis's `wrong number of arguments` error.
pub(crate) const SEED_USAGE: &[(&str, &str)] = &[
    ("set", "SET key value"),
    ("get", "GET key"),
    ("del", "DEL key"),
    ("add_server", "ADD_SERVER host:port"),
    ("remove_server", "REMOVE_SERVER host:port"),
    ("route", "ROUTE key"),
];

/// Arities that differ from Redis's so that the seed's forms work: the seed's bare `KEYS`
/// lists every key (the proxy sends `KEYS *` to servers that need a pattern).
pub(crate) const SEED_ARITY: &[(&str, i32)] = &[("keys", -1)];
