//! The five things the suite puts under load.

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
}

impl Target {
    /// Every target, in the order each repetition visits them.
    pub const ALL: [Target; 5] =
        [Target::Redis, Target::Twemproxy, Target::ProxyRedis, Target::ProxyOurs, Target::Server];

    /// Its name in tables and progress lines.
    pub fn label(self) -> &'static str {
        match self {
            Target::Redis => "redis",
            Target::Twemproxy => "twemproxy",
            Target::ProxyRedis => "proxy/redis",
            Target::ProxyOurs => "proxy/ours",
            Target::Server => "server",
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
        }
    }

    /// Whether its data lives in our servers, which keep strings only (no HSET, LPUSH):
    /// the rows of those commands leave it out.
    pub fn strings_only(self) -> bool {
        matches!(self, Target::ProxyOurs | Target::Server)
    }

    /// Whether it is one of the two proxies of ours (which report error counters).
    pub fn is_our_proxy(self) -> bool {
        matches!(self, Target::ProxyRedis | Target::ProxyOurs)
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
        assert_eq!(names, ["redis", "twemproxy", "proxy-redis", "proxy-ours", "server"]);
    }
}
