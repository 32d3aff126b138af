#!/usr/bin/env bash
# What --metrics-port costs the proxy: redis-benchmark SET and GET (-P 16 -c 50) through a
# release proxy in front of two release servers, with metrics off and on (scraped every
# second, as Prometheus would), alternating, three rounds. Run it on a quiet machine
# (load average under 1.5): on a shared one the rounds differ by more than the cost.
# Usage: bench/metrics-overhead.sh [requests per test, default 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000000}"
cargo build --release -q -p server -p proxy
bin="${CARGO_TARGET_DIR:-target}/release"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
"$bin/server" --port 18381 --no-log-requests --no-greeting >/dev/null 2>&1 & pids+=($!)
"$bin/server" --port 18382 --no-log-requests --no-greeting >/dev/null 2>&1 & pids+=($!)
sleep 0.5
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2 3; do
  for mode in off on; do
    extra=()
    [ "$mode" = on ] && extra=(--metrics-port 18390)
    "$bin/proxy" --port 18380 --servers 127.0.0.1:18381,127.0.0.1:18382 --no-log-requests --no-greeting \
      "${extra[@]}" >/dev/null 2>&1 &
    proxy=$!
    sleep 0.5
    scraper=""
    if [ "$mode" = on ]; then
      (while sleep 1; do curl -s 127.0.0.1:18390/metrics >/dev/null || true; done) &
      scraper=$!
    fi
    rps=$(redis-benchmark -p 18380 -t set,get -P 16 -c 50 -n "$n" -q --csv 2>/dev/null |
      awk -F'"' '/^"(SET|GET)"/ { printf "%s %s  ", $2, $4 }')
    echo "round $round metrics=$mode: $rps"
    [ -n "$scraper" ] && kill "$scraper"
    kill "$proxy"
    wait "$proxy" 2>/dev/null || true
  done
done
