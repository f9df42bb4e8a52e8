#!/usr/bin/env bash
# History queries at 1,000,000 stored messages (SQLite): page 1 and page 10,000 of
# GET …/messages?limit=100, one client at a time (query latency) and 8 at a time
# (throughput). Baseline: GET /api/v1/health on the same server, same client counts.
# Usage: bench/history.sh [messages, default 1000000] [seconds per run, default 10]
source "$(dirname "$0")/lib.sh"
need wrk wrk
count=${1:-1000000}
secs=${2:-10}
build_release
start_server RUST_LOG=warn WAGATE_ENGINE=sandbox
set_password_and_login
curl -fs -X POST "$base/api/v1/user/phones" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{"phone":"+12015550101"}' >/dev/null
dir=$server_dir
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
python3 "$root/bench/seed_history.py" "$dir/wagate.db" "+12015550101" "$count"
env RUST_LOG=warn WAGATE_ENGINE=sandbox "$bin" serve --listen "${base#http://}" --data-dir "$dir" >"$dir/server2.log" 2>&1 &
server_pid=$!
server_dir=$dir
trap stop_server EXIT
for _ in $(seq 1 200); do curl -fs "$base/api/v1/health" >/dev/null && break; sleep 0.05; done
token=$(json_post /api/v1/auth/login "{\"password\":\"$password\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
auth=(-H "Authorization: Bearer $token")
url="$base/api/v1/user/phones/%2B12015550101/messages"
total=$(curl -fs "$url?limit=1" "${auth[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])')
deep=$(curl -fs "$url?limit=100&page=10000" "${auth[@]}" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(len(d), d[-1]["text"] if d else "")')
echo "machine: $(machine)"
echo "stored: $total messages; page 10000 (limit 100) holds: $deep"
echo "columns: req/s p50_ms p99_ms non2xx"
for c in 1 8; do
  echo "clients=$c  health:         $(wrk_run -t1 -c$c -d"${secs}s" "$base/api/v1/health")"
  echo "clients=$c  page 1:         $(wrk_run -t1 -c$c -d"${secs}s" "${auth[@]}" "$url?limit=100&page=1")"
  echo "clients=$c  page 10000:     $(wrk_run -t1 -c$c -d"${secs}s" "${auth[@]}" "$url?limit=100&page=10000")"
  echo "clients=$c  chat filter p1: $(wrk_run -t1 -c$c -d"${secs}s" "${auth[@]}" "$url?limit=100&page=1&jid=12015550007@s.whatsapp.net")"
done
