#!/usr/bin/env bash
# Redis's own test suite (tests/unit of a Redis source tree, external mode) against a
# redis-server directly and through our proxy in front of one redis-server, unit by unit,
# each on a fresh redis-server. Prints tests passed per unit, side by side.
#
#   bench/redis-suite.sh /path/to/redis-source [unit ...]
#
# The Redis source is not part of this repository: bring it with
#   git clone --depth 1 --branch 7.0.15 https://github.com/redis/redis
# (use the tag of the installed redis-server: `redis-server --version`). Tests tagged
# needs:debug, needs:repl and needs:save are skipped for both: they need DEBUG, replication
# or persistence of one server process, which a sharding proxy does not offer.
set -euo pipefail
src=${1:?usage: bench/redis-suite.sh /path/to/redis-source [unit ...]}
shift
units=("$@")
if ((${#units[@]} == 0)); then
  units=(type/incr type/string type/hash type/list type/set type/zset type/stream type/stream-cgroups
         expire keyspace multi scripting pubsub hyperloglog geo bitops dump functions info-command)
fi
here="$(cd "$(dirname "$0")/.." && pwd)"
cargo build --release -q -p proxy --manifest-path "$here/Cargo.toml"
proxy_bin="$here/target/release/proxy"
mkdir -p "$src/src"
for tool in redis-server redis-cli redis-benchmark; do
  [ -e "$src/src/$tool" ] || ln -sf "$(command -v $tool)" "$src/src/$tool"
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Runs one unit against host:port; prints "passed failed".
run_unit() {
  local unit=$1 port=$2 log
  log=$(cd "$src" && timeout 600 ./runtest --host 127.0.0.1 --port "$port" --singledb --clients 1 \
        --tags -needs:debug --tags -needs:repl --tags -needs:save --single "unit/$unit" 2>&1 |
        sed 's/\x1b\[[0-9;]*m//g' || true)
  local ok err
  ok=$(grep -c '^\[ok\]' <<<"$log" || true)
  err=$(grep -cE '^\[(err|exception)\]' <<<"$log" || true)
  echo "$ok $err"
}

printf '%-22s %18s %18s\n' unit "redis-server" "through the proxy"
total_direct=0 total_proxy=0
for unit in "${units[@]}"; do
  port=$(free_port)
  redis-server --port "$port" --save '' --appendonly no --enable-debug-command yes >/dev/null 2>&1 & pids+=($!)
  sleep 0.3
  read -r d_ok d_err < <(run_unit "$unit" "$port")
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true

  port=$(free_port)
  redis-server --port "$port" --save '' --appendonly no --enable-debug-command yes >/dev/null 2>&1 & pids+=($!)
  pport=$(free_port)
  # No request timeout: some tests keep a server busy on purpose (long scripts, SCRIPT KILL).
  "$proxy_bin" --port "$pport" --no-greeting --server-timeout-ms 0 --servers "127.0.0.1:$port" 2>/dev/null & pids+=($!)
  sleep 0.3
  read -r p_ok p_err < <(run_unit "$unit" "$pport")
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  kill "${pids[-1]}" 2>/dev/null || true
  printf '%-22s %10s ok %3s err %10s ok %3s err\n' "$unit" "$d_ok" "$d_err" "$p_ok" "$p_err"
  total_direct=$((total_direct + d_ok)) total_proxy=$((total_proxy + p_ok))
done
printf '%-22s %10s ok %17s ok\n' total "$total_direct" "$total_proxy"
