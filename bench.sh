#!/usr/bin/env bash
# The benchmark suite in one command: installs what is missing (redis-server, redis-tools,
# nutcracker), builds the server and the proxy in release, measures every target with
# redis-benchmark, and writes bench/results.md and bench/results.svg.
# Arguments go to the suite: ./bench.sh --help lists them (./bench.sh --reps 5, --ring, ...).
set -euo pipefail
cd "$(dirname "$0")"
export BENCH_INVOKED_AS="./bench.sh"
cargo build --release -p bench
# exec the suite itself (not `cargo run`, which stays the parent), so that a SIGTERM sent to
# this script's process reaches the suite, which then stops everything it started.
bench="${CARGO_TARGET_DIR:-target}/release/bench"
if [ -x "$bench" ]; then
  exec "$bench" "$@"
fi
exec cargo run --release -p bench -- "$@"
