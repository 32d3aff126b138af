//! The command line.

use std::path::PathBuf;

use clap::Parser;

use crate::migration::BackendChoice;
use crate::target::Target;

/// The benchmark suite: our proxy and server side by side with redis-server and twemproxy,
/// in one run on one machine.
///
/// Installs what is missing (redis-server, redis-tools, nutcracker: apt-get), builds our
/// server and proxy in release, starts every target on free loopback ports, loads each with
/// redis-benchmark (SET and GET, pipeline 1 and 16; then MGET of 10 keys, HSET, LPUSH, 4 KiB
/// and 64 KiB values, 1,000 and 10,000 clients, and a 90/10 GET/SET Zipf mix from our
/// open-loop generator, `bench load`; targets alternate within each repetition), measures
/// memory per idle client, checks that no request failed and that the data landed, measures resident
/// memory per key, times our proxy moving keys onto an added server while a client reads
/// and writes (issue 6's migration target), and stops everything it started (also on
/// Ctrl-C). Prints a table and writes results.md and results.svg.
///
/// Targets: `redis` (redis-server directly), `twemproxy` (nutcracker, ketama, in front of
/// three redis-servers), `proxy-redis` (our proxy in front of the same three), `proxy-ours`
/// (our proxy in front of three of our servers), `server` (our server alone).
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about)]
pub struct Args {
    /// Repetitions; every figure is the median over them, every ratio the median of the
    /// ratios within each (use at least 3 on a shared machine).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub reps: u32,

    /// Requests per redis-benchmark run at pipeline 1 (-n).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests_p1: u64,

    /// Requests per redis-benchmark run at pipeline 16 (-n).
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests_p16: u64,

    /// Parallel client connections of redis-benchmark (-c).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,

    /// Value size in bytes (-d).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub value_size: u32,

    /// Distinct random keys (-r): key:000000000000 up to the keyspace.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keyspace: u64,

    /// Requests of the untimed SET warm-up (pipeline 16) against each target before the
    /// first repetition, so that every repetition finds the keyspace filled; 0 skips it.
    #[arg(long, default_value_t = 200_000)]
    pub warmup_requests: u64,

    /// Seconds one redis-benchmark run may take before it is killed and counted as failed.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_secs: u64,

    /// Targets to measure, comma-separated, in the order each repetition visits them
    /// (ratios need `twemproxy` and `redis` among them).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_values_t = Target::ALL
    )]
    pub targets: Vec<Target>,

    /// Skip the memory test (our server and redis-server each loaded with --memory-keys
    /// keys through redis-cli --pipe).
    #[arg(long)]
    pub skip_memory: bool,

    /// Keys (16 bytes, with 32-byte values) loaded by the memory test.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_keys: u64,

    /// Skip the migration test (our proxy in front of three backends moves --migration-keys
    /// keys onto a fourth with `ADD_SERVER host:port MIGRATE` while a client reads and writes).
    #[arg(long)]
    pub skip_migration: bool,

    /// Keys (16 bytes, with 32-byte values) loaded before the migration test adds a server.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub migration_keys: u64,

    /// Backends of the migration test: our servers, redis-servers, or both (one run each).
    #[arg(long, value_enum, default_value_t = BackendChoice::Both)]
    pub migration_backends: BackendChoice,

    /// Also run the ring's micro-benchmarks (`cargo bench -p ring`, about 1.5 minutes) at
    /// the end.
    #[arg(long)]
    pub ring: bool,

    /// Directory for results.md and results.svg [default: bench/ in the workspace root].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// A quick check before a commit (under 90 s once built): one repetition of the core
    /// rows (SET and GET at P1 and P16) against redis, twemproxy and proxy/redis, with 50,000
    /// requests at P1, 200,000 at P16 and a 100,000-request warm-up; no wider rows, no
    /// idle-client, memory or migration test. Overrides --reps, --targets, --requests-p1,
    /// --requests-p16, --warmup-requests and the --skip flags.
    #[arg(long)]
    pub quick: bool,

    /// Only the core rows (SET and GET at P1 and P16), not the wider shapes (MGET of 10 keys,
    /// HSET, LPUSH, the Zipf mix, 1,000 and 10,000 clients, 4 KiB and 64 KiB values).
    #[arg(long)]
    pub core_only: bool,

    /// Requests/s scheduled by the Zipf mix row (our open-loop generator, `bench load`).
    #[arg(long, default_value_t = 20_000.0)]
    pub mix_rate: f64,

    /// Seconds of the Zipf mix row.
    #[arg(long, default_value_t = 5.0)]
    pub mix_secs: f64,

    /// Idle connections opened to each target (one PING each) to measure its memory per
    /// client connection.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub idle_clients: u32,

    /// Skip the memory-per-idle-client test.
    #[arg(long)]
    pub skip_idle: bool,

    /// Skip the hit-ratio replays (redis-server's LRU and LFU against our policies at the
    /// same maxmemory, about 2 minutes).
    #[arg(long)]
    pub skip_hit_ratio: bool,
}

impl Args {
    /// The arguments as the run uses them: `--quick` applied.
    pub fn effective(&self) -> Args {
        if !self.quick {
            return self.clone();
        }
        Args {
            reps: 1,
            requests_p1: 50_000,
            requests_p16: 200_000,
            warmup_requests: 100_000,
            targets: vec![Target::Redis, Target::Twemproxy, Target::ProxyRedis],
            skip_memory: true,
            skip_migration: true,
            skip_idle: true,
            skip_hit_ratio: true,
            core_only: true,
            ring: false,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let args = Args::parse_from(["bench"]);
        assert_eq!(args.reps, 3);
        assert_eq!(args.requests_p1, 100_000);
        assert_eq!(args.requests_p16, 500_000);
        assert_eq!(args.clients, 50);
        assert_eq!(args.value_size, 32);
        assert_eq!(args.keyspace, 100_000);
        assert_eq!(args.targets, Target::ALL);
        assert!(!args.skip_memory && !args.ring && !args.skip_migration);
        assert_eq!(args.migration_keys, 1_000_000);
        assert_eq!(args.migration_backends, BackendChoice::Both);
        assert!(!args.quick && !args.core_only && !args.skip_idle && !args.skip_hit_ratio);
        assert_eq!((args.mix_rate, args.mix_secs, args.idle_clients), (20_000.0, 5.0, 1_000));
        assert_eq!(args.effective().reps, 3);
    }

    #[test]
    fn quick_is_one_repetition_of_the_core_rows() {
        let args = Args::parse_from(["bench", "--quick", "--reps", "5"]).effective();
        assert_eq!((args.reps, args.requests_p1, args.requests_p16), (1, 50_000, 200_000));
        assert_eq!(args.targets, [Target::Redis, Target::Twemproxy, Target::ProxyRedis]);
        assert!(args.core_only && args.skip_memory && args.skip_migration && args.skip_idle && args.skip_hit_ratio);
    }

    #[test]
    fn targets_are_a_comma_separated_list() {
        let args = Args::parse_from(["bench", "--targets", "redis,proxy-redis", "--reps", "1"]);
        assert_eq!(args.targets, [Target::Redis, Target::ProxyRedis]);
        assert!(Args::try_parse_from(["bench", "--reps", "0"]).is_err());
        assert!(Args::try_parse_from(["bench", "--targets", "memcached"]).is_err());
    }

    #[test]
    fn migration_backends_are_ours_redis_or_both() {
        let args = Args::parse_from(["bench", "--migration-backends", "redis", "--migration-keys", "1000"]);
        assert_eq!((args.migration_backends, args.migration_keys), (BackendChoice::Redis, 1_000));
        assert!(Args::try_parse_from(["bench", "--migration-backends", "twemproxy"]).is_err());
        assert!(Args::try_parse_from(["bench", "--migration-keys", "0"]).is_err());
    }
}
