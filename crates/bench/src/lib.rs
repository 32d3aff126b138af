//! The benchmark suite: our proxy and server measured side by side with what users would
//! pick instead (redis-server directly, twemproxy), in the same run on the same machine,
//! with the Redis world's own load tool, `redis-benchmark`.
//!
//! - [`setup`]: installs the Redis tools and twemproxy when missing, builds our binaries.
//! - [`processes`], [`services`]: starts every target on free loopback ports and stops
//!   exactly what it started (on drop, on error, on Ctrl-C).
//! - [`load`]: one bounded redis-benchmark run and its CSV; [`loadgen`]: our own open-loop
//!   generator (`bench load`: fixed rate, Zipf keys, HDR latencies); [`stats`]: medians and
//!   within-repetition ratios; [`sanity`]: no failed request, the data landed;
//!   [`memory`]: resident bytes per key; [`idle`]: resident bytes per idle client; [`migration`]: how fast our proxy moves keys onto
//!   an added server under load; [`microbench`]: `cargo bench -p ring`.
//! - [`report`]: the terminal table, `results.md` and `results.svg`.
//!
//! [`suite::run`] strings them together.
#![warn(missing_docs)]

pub mod args;
pub mod hit_ratio;
pub mod idle;
pub mod load;
pub mod loadgen;
pub mod machine;
pub mod memory;
pub mod microbench;
pub mod migration;
pub mod numbers;
pub mod probe;
pub mod processes;
pub mod procfs;
pub mod report;
pub mod sanity;
pub mod services;
pub mod setup;
pub mod stats;
pub mod suite;
pub mod target;

pub use args::Args;
pub use suite::run;
