//! How the proxy treats each command: policy, not fact. Redis's facts (arity, flags, key
//! specs) come from `redis.rs`; this file adds the one thing Redis cannot say, what a
//! sharding proxy does with the command, for the commands where the default (derived from
//! the facts in [`default_route`]) is not right.

use super::facts::CommandInfo;

/// What the proxy does with a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Sent whole to the server that owns its keys; every key must route to that server. A
    /// command flagged `blocking` runs on a connection of its own.
    Keyed,
    /// Split by key owner, one sub-command per server, and the replies put back together.
    Split(Merge),
    /// Sent to every server that is up; the replies merged.
    FanOut(Merge),
    /// Sent to one server: it has no key, and any server's answer is as good.
    AnyServer,
    /// SCAN: the servers walked one after the other behind one cursor.
    Scan,
    /// Answered by the proxy itself (connection state, the ring, introspection).
    Local,
    /// Changes the ring: requests before it are answered first, requests after see the new
    /// ring.
    Ring,
    /// Answered by the proxy after it asks its servers (PREVIEW samples their keys with
    /// SCAN); changes nothing, but runs alone like a ring command, after the requests before
    /// it.
    Inspect,
    /// `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `UNWATCH`: run on one server.
    Transaction,
    /// Subscriptions and publishing: routed by channel name.
    PubSub,
    /// Not served through the proxy, with the reason.
    Refused(&'static str),
}

/// How the replies of several servers become one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// `MGET`: values put back in key order.
    Values,
    /// `DEL`, `EXISTS`, `DBSIZE`: the sum of the integers.
    Sum,
    /// `MSET`, `FLUSHALL`: `+OK` when every server said OK.
    AllOk,
    /// `KEYS`: every server's keys in one array.
    Keys,
    /// `SCRIPT LOAD`, `FUNCTION LOAD`: every server must answer the same; that answer.
    Same,
    /// `SCRIPT EXISTS`: element by element, 1 only where every server says 1.
    AllOnes,
    /// `RANDOMKEY`: the first server's answer that is not null.
    FirstNonNull,
    /// `PUBSUB CHANNELS`/`SHARDCHANNELS`: the union of the arrays.
    Union,
    /// `PUBSUB NUMSUB`: channel, count pairs summed by channel.
    SumPairs,
}

const ONE_SERVER: &str = "it acts on one server's process; ask a server directly";

/// Commands whose route is not the default one.
#[rustfmt::skip]
pub(crate) const ROUTES: &[(&str, Route)] = &[
    // Multi-key commands that are not atomic in Redis either: split by owner.
    ("mget", Route::Split(Merge::Values)),
    ("mset", Route::Split(Merge::AllOk)),
    ("del", Route::Split(Merge::Sum)),
    ("unlink", Route::Split(Merge::Sum)),
    ("exists", Route::Split(Merge::Sum)),
    ("touch", Route::Split(Merge::Sum)),
    // The whole data set.
    ("flushall", Route::FanOut(Merge::AllOk)),
    ("flushdb", Route::FanOut(Merge::AllOk)),
    ("dbsize", Route::FanOut(Merge::Sum)),
    ("keys", Route::FanOut(Merge::Keys)),
    ("randomkey", Route::FanOut(Merge::FirstNonNull)),
    ("scan", Route::Scan),
    // Scripts and functions must be everywhere a later EVALSHA or FCALL may land.
    ("script|load", Route::FanOut(Merge::Same)),
    ("script|flush", Route::FanOut(Merge::AllOk)),
    ("script|exists", Route::FanOut(Merge::AllOnes)),
    ("script|kill", Route::Refused("a script runs on one server; ask it directly")),
    ("function|load", Route::FanOut(Merge::Same)),
    ("function|flush", Route::FanOut(Merge::AllOk)),
    ("function|delete", Route::FanOut(Merge::AllOk)),
    ("function|restore", Route::FanOut(Merge::AllOk)),
    ("function|kill", Route::Refused("a function runs on one server; ask it directly")),
    ("config|set", Route::FanOut(Merge::AllOk)),
    ("config|resetstat", Route::FanOut(Merge::AllOk)),
    // Pub/Sub.
    ("subscribe", Route::PubSub),
    ("unsubscribe", Route::PubSub),
    ("psubscribe", Route::PubSub),
    ("punsubscribe", Route::PubSub),
    ("ssubscribe", Route::PubSub),
    ("sunsubscribe", Route::PubSub),
    ("publish", Route::PubSub),
    ("spublish", Route::PubSub),
    ("pubsub|channels", Route::FanOut(Merge::Union)),
    ("pubsub|shardchannels", Route::FanOut(Merge::Union)),
    ("pubsub|numsub", Route::FanOut(Merge::SumPairs)),
    ("pubsub|shardnumsub", Route::FanOut(Merge::SumPairs)),
    ("pubsub|numpat", Route::FanOut(Merge::Sum)),
    // Transactions.
    ("multi", Route::Transaction),
    ("exec", Route::Transaction),
    ("discard", Route::Transaction),
    ("watch", Route::Transaction),
    ("unwatch", Route::Transaction),
    // The connection, answered by the proxy.
    ("ping", Route::Local),
    ("echo", Route::Local),
    ("select", Route::Local),
    ("hello", Route::Local),
    ("auth", Route::Local),
    ("quit", Route::Local),
    ("reset", Route::Local),
    ("info", Route::Local),
    ("command", Route::Local),
    ("client", Route::Local),
    ("config|get", Route::AnyServer),
    // The proxy's own file (-c nutcracker.yml) gets the current ring's servers.
    ("config|rewrite", Route::Local),
    ("time", Route::AnyServer),
    // The proxy's own commands (see `own.rs`).
    ("help", Route::Local),
    ("servers", Route::Local),
    ("route", Route::Local),
    ("migration", Route::Local),
    ("add_server", Route::Ring),
    ("remove_server", Route::Ring),
    ("rebalance", Route::Ring),
    ("set_distribution", Route::Ring),
    ("preview", Route::Inspect),
    ("whoami", Route::Refused("it names one cache server; ask a cache server directly")),
    // What a sharding proxy cannot do.
    ("monitor", Route::Refused("it watches one server; ask a server directly")),
    ("swapdb", Route::Refused("the proxy serves database 0 only")),
    ("move", Route::Refused("the proxy serves database 0 only")),
    ("migrate", Route::Refused("the proxy moves keys itself (REBALANCE)")),
    ("sync", Route::Refused(ONE_SERVER)),
    ("psync", Route::Refused(ONE_SERVER)),
    ("replconf", Route::Refused(ONE_SERVER)),
    ("readonly", Route::Refused("the proxy is not a Redis Cluster node")),
    ("readwrite", Route::Refused("the proxy is not a Redis Cluster node")),
    ("asking", Route::Refused("the proxy is not a Redis Cluster node")),
    ("cluster", Route::Refused("the proxy is not a Redis Cluster node")),
];

/// Commands that need the proxy's admin password when one is set (`--admin-password`):
/// those that change the ring, and those that erase or reconfigure every server behind it.
/// They carry [`Flags::GUARDED`](super::Flags::GUARDED) in the table.
pub const GUARDED: &[&str] = &[
    "add_server",
    "remove_server",
    "rebalance",
    "set_distribution",
    "flushall",
    "flushdb",
    "config|set",
    "config|resetstat",
    "config|rewrite",
    "script|flush",
    "function|flush",
    "function|delete",
    "function|restore",
];

/// The route of a command not listed in [`ROUTES`], from its facts: keyed if its key specs
/// find keys, refused if it administers a server, otherwise any server's answer.
pub(crate) fn default_route(info: &CommandInfo) -> Route {
    let flag = |f: &str| info.flags.contains(&f);
    if !info.key_specs.is_empty() {
        Route::Keyed
    } else if flag("admin") {
        Route::Refused(ONE_SERVER)
    } else if flag("pubsub") {
        Route::PubSub
    } else {
        Route::AnyServer
    }
}
