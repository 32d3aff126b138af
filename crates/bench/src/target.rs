//! The things the suite puts under load.

use clap::ValueEnum;

/// A target of the load: what a user could put between their clients and their data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Target {
    /// redis-server directly: the physical limit for a proxy in front of it.
    Redis,
    /// twemproxy (nutcracker, ketama) in front of three redis-servers.
    Twemproxy,
    /// Our proxy in front of the same three redis-servers.
    ProxyRedis,
    /// Our proxy in front of three of our servers.
    ProxyOurs,
    /// Our server alone.
    Server,
    /// `proxy/redis` with `RUST_LOG=warn`: beside it, what logging costs at the defaults.
    ProxyRedisWarn,
    /// `server` with `RUST_LOG=warn`: beside it, what logging costs at the defaults.
    ServerWarn,
}

impl Target {
    /// Every target, in the order each repetition visits them.
    pub const ALL: [Target; 7] = [
        Target::Redis,
        Target::Twemproxy,
        Target::ProxyRedis,
        Target::ProxyRedisWarn,
        Target::ProxyOurs,
        Target::Server,
        Target::ServerWarn,
    ];

    /// Its name in tables and progress lines.
    pub fn label(self) -> &'static str {
        match self {
            Target::Redis => "redis",
            Target::Twemproxy => "twemproxy",
            Target::ProxyRedis => "proxy/redis",
            Target::ProxyOurs => "proxy/ours",
            Target::Server => "server",
            Target::ProxyRedisWarn => "proxy/redis warn",
            Target::ServerWarn => "server warn",
        }
    }

    /// What it is, in a few words, for the report.
    pub fn description(self) -> &'static str {
        match self {
            Target::Redis => "redis-server alone (direct)",
            Target::Twemproxy => "twemproxy (nutcracker, ketama: 160 points per server) in front of 3 redis-servers",
            Target::ProxyRedis => "our proxy (`--replicas 160`, like ketama) in front of the same 3 redis-servers",
            Target::ProxyOurs => "our proxy (`--replicas 160`) in front of 3 of our servers",
            Target::Server => "our server alone",
            Target::ProxyRedisWarn => "proxy/redis with `RUST_LOG=warn` (every log line below a warning filtered out)",
            Target::ServerWarn => "server with `RUST_LOG=warn`",
        }
    }

    /// Whether its data lives in our servers, which keep strings only (no HSET, LPUSH):
    /// the rows of those commands leave it out.
    pub fn strings_only(self) -> bool {
        matches!(self, Target::ProxyOurs | Target::Server | Target::ServerWarn)
    }

    /// The target at the defaults a user gets that this one runs with logs filtered to
    /// warnings: the pair shows what logging costs. They run the core rows only.
    pub fn default_flags_twin(self) -> Option<Target> {
        match self {
            Target::ProxyRedisWarn => Some(Target::ProxyRedis),
            Target::ServerWarn => Some(Target::Server),
            _ => None,
        }
    }

    /// Whether it is one of the two proxies of ours (which report error counters).
    pub fn is_our_proxy(self) -> bool {
        matches!(self, Target::ProxyRedis | Target::ProxyRedisWarn | Target::ProxyOurs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_distinct_and_flag_names_kebab_case() {
        let labels: std::collections::HashSet<_> = Target::ALL.iter().map(|t| t.label()).collect();
        assert_eq!(labels.len(), Target::ALL.len());
        let names: Vec<String> =
            Target::ALL.iter().filter_map(|t| t.to_possible_value().map(|v| v.get_name().to_string())).collect();
        assert_eq!(
            names,
            ["redis", "twemproxy", "proxy-redis", "proxy-redis-warn", "proxy-ours", "server", "server-warn"]
        );
    }
}
