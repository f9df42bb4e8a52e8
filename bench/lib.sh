# Shared helpers for the benchmark scripts: build the release binary, start a server on a
# free loopback port with a fresh data dir, set the owner's password, and read wrk output.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wagate-target}"
bin="$CARGO_TARGET_DIR/release/wagate"
password="benchmark password"

need() { command -v "$1" >/dev/null || { echo "missing $1: apt-get install -y $2" >&2; exit 1; }; }

build_release() {
  (cd "$root" && cargo build --release --quiet)
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server VAR_PREFIX [extra env...]: sets ${prefix}_url, ${prefix}_pid, ${prefix}_dir
start_server() {
  local dir port
  dir=$(mktemp -d)
  port=$(free_port)
  env "${@}" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir" >"$dir/server.log" 2>&1 &
  server_pid=$!
  server_dir=$dir
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 200); do
    curl -fs "$base/api/v1/health" >/dev/null && return 0
    sleep 0.05
  done
  echo "server did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  rm -rf "$server_dir"
}

json_post() { curl -fs -X POST "$base$1" -H 'Content-Type: application/json' -d "$2" "${@:3}"; }

set_password_and_login() {
  json_post /api/v1/auth/change-password "{\"newPassword\":\"$password\"}" >/dev/null
  token=$(json_post /api/v1/auth/login "{\"password\":\"$password\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
}

# wrk_rps <wrk args...>: prints "requests/s p50 p99" from one wrk run
wrk_run() {
  wrk --latency "$@" | python3 "$root/bench/wrk_summary.py"
}

machine() {
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(rustc --version)"
}
