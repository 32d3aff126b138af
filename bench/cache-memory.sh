#!/usr/bin/env bash
# Memory of the cache server against --maxmemory (issue 12): writes distinct keys with
# redis-benchmark and prints INFO's used_memory next to the process's resident memory.
#   bench/cache-memory.sh [maxmemory] [value-size] [requests]
# e.g. bench/cache-memory.sh 0 100 1000000 (unbounded: the accounting's overhead per key)
#      bench/cache-memory.sh 256mb 1024 4000000 (4 GB written into 256 MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
maxmemory=${1:-256mb}; size=${2:-1024}; requests=${3:-4000000}
server="${CARGO_TARGET_DIR:-target}/release/server"
[ -x "$server" ] || cargo build --release -p server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" --port "$port" --no-greeting --no-log-requests --maxmemory "$maxmemory" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
start=$(date +%s.%N)
redis-benchmark -p "$port" -t set -n "$requests" -r 1000000000 -d "$size" -P 32 -c 8 -q | tail -1
end=$(date +%s.%N)
field() { redis-cli -p "$port" info "$1" | tr -d '\r' | awk -F: -v f="$2" '$1==f {print $2}'; }
used=$(field memory used_memory); keys=$(redis-cli -p "$port" dbsize)
rss=$(awk '/VmRSS/ {print $2 * 1024}' /proc/$pid/status); hwm=$(awk '/VmHWM/ {print $2 * 1024}' /proc/$pid/status)
echo "maxmemory=$maxmemory value=${size}B written=$requests keys=$keys evicted=$(field stats evicted_keys)"
echo "used_memory=$used rss=$rss peak_rss=$hwm rss-used=$((rss - used)) rss/key=$((rss / (keys > 0 ? keys : 1)))B seconds=$(echo "$end - $start" | bc)"
