#!/usr/bin/env bash
# One command for the whole demo: build, start three cache servers and the proxy on the seed's
# ports, wait until each answers, run the walkthrough, and stop exactly what this script started
# (also on Ctrl-C or failure). Exits with the demo's status.
#
#   ./demo.sh            run the walkthrough (the seed's seven steps)
#   ./demo.sh --all      and then what production needs: REBALANCE, virtual nodes, ring versus
#                        hash mod N, replication with a server killed, placements (steps 8 to 12)
#   ./demo.sh --help     the demo's flags (every argument is passed to the demo)
#
# For --all nothing more is started here: the replication step starts (and stops) its own
# three cache servers and proxy on free ports, from the binaries this script builds.
#
# It never touches a process it did not start: if a port is taken it says which and exits.
set -euo pipefail

readonly HOST=127.0.0.1
readonly PROXY_PORT=6380
readonly SERVER_PORTS=(6381 6382 6383)
readonly SERVER_NAMES=(cache-A cache-B cache-C)
# Waiting for a process to answer: tries x interval (about 10 s).
readonly WAIT_TRIES=100
readonly WAIT_INTERVAL=0.1
# Stopping: TERM first, KILL after this many tries x interval (about 5 s).
readonly STOP_TRIES=50

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

say() { printf 'demo.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo not found; install Rust from https://rustup.rs and try again"
# The proxy's etcd client (--topology) compiles etcd's protobuf definitions when it is built.
command -v protoc >/dev/null 2>&1 || [ -n "${PROTOC:-}" ] ||
  die "protoc not found: building the proxy needs it (the etcd client behind --topology); install it with: sudo apt-get install -y protobuf-compiler"

# Help and version need no cluster: build the demo and let it answer.
for arg in "$@"; do
  case "$arg" in
    -h | --help | -help | -V | --version)
      cargo build --quiet -p demo
      if [[ "$arg" == -h || "$arg" == --help || "$arg" == -help ]]; then
        printf 'Usage: ./demo.sh [DEMO OPTIONS]\n'
        printf 'Builds, starts cache-A/B/C on %s and the proxy on %s, runs the demo with these options, and stops them.\n' \
          "${SERVER_PORTS[*]}" "$PROXY_PORT"
        printf 'With --all the demo goes on to steps 8 to 12; step 11 starts and stops a cluster of its own on free ports.\n\n'
      fi
      exec "$bin/demo" "$@"
      ;;
  esac
done

# True if something accepts connections on the port (bash's /dev/tcp, no extra tools).
port_in_use() {
  (exec 2>/dev/null 3<>"/dev/tcp/$HOST/$1")
}

check_ports() {
  local port
  for port in "$PROXY_PORT" "${SERVER_PORTS[@]}"; do
    if port_in_use "$port"; then
      say "port $port on $HOST is already in use, so the demo cluster cannot start."
      say "Stop whatever listens there (see: ss -ltnp 'sport = :$port') and run ./demo.sh again."
      exit 1
    fi
  done
}

check_ports
say "building (cargo build -p server -p proxy -p demo)..."
cargo build --quiet -p server -p proxy -p demo
check_ports # again: the build may have taken a while

logs="$(mktemp -d "${TMPDIR:-/tmp}/consistent-hashing-demo.XXXXXX")"
pids=()

# Called by the EXIT trap (shellcheck cannot see that).
# shellcheck disable=SC2317
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  local pid i
  for pid in ${pids[@]+"${pids[@]}"}; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    for ((i = 0; i < STOP_TRIES; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep "$WAIT_INTERVAL"
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if ((${#pids[@]} > 0)); then
    say "stopped the cluster; logs are in $logs"
  fi
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start LOGFILE COMMAND...: runs COMMAND in the background, its output to LOGFILE, and records
# its PID. Its stderr is a file, not a terminal, so the seed's line per request
# (`[proxy] SET k -> routing to ...`, `[cache-A] SET k = v`) is asked for with --log-requests:
# `tail -f` the log files to watch them.
start() {
  local log="$1"
  shift
  "$@" --log-requests >"$log" 2>&1 &
  pids+=("$!")
}

# wait_ready NAME PORT PID LOG: until a connection on PORT gets a `+OK` greeting.
wait_ready() {
  local name="$1" port="$2" pid="$3" log="$4" greeting i
  for ((i = 0; i < WAIT_TRIES; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$name exited instead of listening on port $port; its log ($log):"
      tail -n 20 "$log" >&2 || true
      exit 1
    fi
    if greeting="$(
      exec 2>/dev/null 3<>"/dev/tcp/$HOST/$port" && IFS= read -r -t 1 line <&3 && printf '%s' "$line"
    )" && [[ "$greeting" == +OK* ]]; then
      return 0
    fi
    sleep "$WAIT_INTERVAL"
  done
  say "$name did not answer on port $port; its log ($log):"
  tail -n 20 "$log" >&2 || true
  exit 1
}

say "starting cache-A, cache-B, cache-C on ports ${SERVER_PORTS[*]} and the proxy on $PROXY_PORT (logs: $logs)"
for i in "${!SERVER_PORTS[@]}"; do
  start "$logs/${SERVER_NAMES[$i]}.log" \
    "$bin/server" --port "${SERVER_PORTS[$i]}" --name "${SERVER_NAMES[$i]}"
done
start "$logs/proxy.log" "$bin/proxy" --port "$PROXY_PORT"
proxy_pid="${pids[${#pids[@]} - 1]}"

for i in "${!SERVER_PORTS[@]}"; do
  wait_ready "${SERVER_NAMES[$i]}" "${SERVER_PORTS[$i]}" "${pids[$i]}" "$logs/${SERVER_NAMES[$i]}.log"
done
wait_ready proxy "$PROXY_PORT" "$proxy_pid" "$logs/proxy.log"
echo >&2

status=0
"$bin/demo" "$@" || status=$?
exit "$status"
