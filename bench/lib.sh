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

# start_server [VAR=value...]: starts the server with that environment; sets base, server_pid, server_dir
start_server() {
  local dir port
  dir=$(mktemp -d)
  port=$(free_port)
  # The benchmarks' webhook receiver listens on loopback.
  env WAGATE_NETWORK__ALLOW_NETWORKS='["127.0.0.1/32"]' "${@}" "$bin" serve --listen "127.0.0.1:$port" --data-dir "$dir" >"$dir/server.log" 2>&1 &
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

# pair_phone PHONE: adds the phone and links it through the sandbox (after set_password_and_login)
pair_phone() {
  local auth=(-H "Authorization: Bearer $token")
  json_post /api/v1/user/phones "{\"phone\":\"$1\"}" "${auth[@]}" >/dev/null
  curl -fs -X POST "$base/api/v1/user/phones/$1/connect" "${auth[@]}" >/dev/null
  curl -fs -X POST "$base/api/v1/sandbox/phones/$1/scan" "${auth[@]}" >/dev/null
}

# start_receiver: builds examples/webhook_receiver and starts it on a free port; sets
# rport and receiver (its pid)
start_receiver() {
  (cd "$root" && cargo build --release --quiet --example webhook_receiver)
  rport=$(free_port)
  "$CARGO_TARGET_DIR/release/examples/webhook_receiver" "127.0.0.1:$rport" >/dev/null 2>&1 &
  receiver=$!
}

# wrk_run <wrk args...>: prints "requests/s p50_ms p99_ms non2xx" from one wrk run
wrk_run() {
  wrk --latency "$@" | python3 "$root/bench/wrk_summary.py"
}

machine() {
  echo "$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(rustc --version)"
}
