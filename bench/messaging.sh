#!/usr/bin/env bash
# Send throughput and latency on the sandbox engine (pacing off, history persisted to
# SQLite): the most sends per second wrk can push through 4 phones, then the latency at a
# steady 1,000 sends/s on one phone (hey). Baseline: GET /api/v1/health, same server.
# Usage: bench/messaging.sh [seconds per run, default 15]
source "$(dirname "$0")/lib.sh"
need wrk wrk
need hey hey
secs=${1:-15}
build_release
start_server RUST_LOG=warn WAGATE_ENGINE=sandbox WAGATE_MESSAGING__PACING=off ${EXTRA_ENV:-}
trap stop_server EXIT
set_password_and_login
auth=(-H "Authorization: Bearer $token")
json_post /api/v1/sandbox/accounts '{"phone":"+12015550150","name":"Alice"}' "${auth[@]}" >/dev/null
phones=()
for n in 01 02 03 04; do
  p="+120155501$n"
  pair_phone "$p"
  phones+=("%2B120155501$n")
done
sleep 1
echo "machine: $(machine)"
echo "baseline  GET /api/v1/health (wrk -t1 -c32): $(wrk_run -t1 -c32 -d"${secs}s" "$base/api/v1/health")  [req/s p50_ms p99_ms non2xx]"
export TOKEN=$token
export PHONES=$(IFS=,; echo "${phones[*]}")
echo "max       POST …/message, 4 phones (wrk -t1 -c32): $(wrk_run -t1 -c32 -d"${secs}s" -s "$root/bench/send.lua" "$base")  [req/s p50_ms p99_ms non2xx]"
body=$(mktemp)
echo '{"recipient":"12015550150","message":"steady benchmark message"}' > "$body"
hey -z "${secs}s" -c 20 -q 50 -m POST -T application/json -H "Authorization: Bearer $token" -D "$body" \
  "$base/api/v1/user/phones/%2B12015550101/message" > "$body.out"
rm -f "$body"
python3 - "$body.out" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
p50 = float(re.search(r"50% in ([\d.]+) secs", text).group(1)) * 1000
p99 = float(re.search(r"99% in ([\d.]+) secs", text).group(1)) * 1000
codes = re.findall(r"\[(\d+)\]\s+(\d+) responses", text)
print(f"steady    POST …/message, 1 phone at 1,000/s (hey -c20 -q50): {float(rps):.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, status codes {dict(codes)}")
PY
rm -f "$body.out"
stored=$(curl -fs "$base/api/v1/user/phones/%2B12015550101/messages?limit=1" "${auth[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pagination"]["total"])')
echo "history rows stored for phone 1 after the runs: $stored"
