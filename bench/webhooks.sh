#!/usr/bin/env bash
# Webhook delivery on the sandbox engine, to a local receiver (examples/webhook_receiver.rs):
#  1. throughput: the receiver is down while N inbound messages on 4 phones are stored,
#     then it comes up, and the time until all N are delivered gives events/s;
#  2. latency: inbound messages at a steady 200/s (hey), latency from the message's
#     creation to its webhook request arriving (p50/p99 measured by the receiver).
# Baseline: the sandbox inbound call itself (stored + acknowledged) at the same rate.
# Usage: bench/webhooks.sh [events for the throughput run, default 20000] [seconds, default 15]
source "$(dirname "$0")/lib.sh"
need wrk wrk
need hey hey
events=${1:-20000}
secs=${2:-15}
build_release
start_receiver
start_server RUST_LOG=warn WAGATE_ENGINE=sandbox WAGATE_WEBHOOKS__BACKOFF_MIN=200ms WAGATE_WEBHOOKS__BACKOFF_MAX=500ms
trap 'stop_server; kill $receiver 2>/dev/null' EXIT
set_password_and_login
auth=(-H "Authorization: Bearer $token")
json_post /api/v1/sandbox/accounts '{"phone":"+12015550150","name":"Alice"}' "${auth[@]}" >/dev/null
phones=()
for n in 01 02 03 04; do
  p="+120155501$n"
  pair_phone "$p"
  phones+=("%2B120155501$n")
done
json_post /api/v1/user/webhooks "{\"url\":\"http://127.0.0.1:$rport/hook\",\"services\":[\"message.received\"]}" "${auth[@]}" >/dev/null
sleep 1
rpost() { curl -fs -X POST "http://127.0.0.1:$rport/$1" >/dev/null; }
stats() { curl -fs "http://127.0.0.1:$rport/stats"; }
echo "machine: $(machine)"

export TOKEN=$token
export PHONES=$(IFS=,; echo "${phones[*]}")
rpost down
# Store the events while the receiver is down.
python3 - "$base" "$token" "$events" "${phones[@]}" <<'PY'
import concurrent.futures, sys
sys.path.insert(0, "bench")
from client import Client
base, token, count, phones = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def send(chunk):
    c = Client(base, token)
    for i in chunk:
        status, body = c.post(f"/api/v1/sandbox/phones/{phones[i % len(phones)]}/inbound", {"from": "+12015550150", "message": f"queued {i}"})
        assert status == 200, body
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(send, [range(k, count, 8) for k in range(8)]))
PY
rpost reset
rpost up
start=$(date +%s.%N)
while :; do
  done_count=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
  [ "$done_count" -ge "$events" ] && break
  sleep 0.05
done
end=$(date +%s.%N)
python3 - "$(stats)" "$start" "$end" "$events" <<'PY'
import json, sys
s, start, end, n = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
print(f"throughput: {n} queued events delivered in {end - start:.2f} s after the receiver came up "
      f"= {n / (end - start):.0f} events/s (receiver-measured {s['perSecond']:.0f}/s between first and last arrival)")
PY

rpost reset
body=$(mktemp)
echo '{"from":"+12015550150","message":"steady"}' > "$body"
hey -z "${secs}s" -c 4 -q 50 -m POST -T application/json "${auth[@]}" -D "$body" \
  "$base/api/v1/sandbox/phones/%2B12015550101/inbound" > "$body.out"
sleep 1
python3 - "$(stats)" "$body.out" <<'PY'
import json, re, sys
s = json.loads(sys.argv[1])
text = open(sys.argv[2]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p99 = float(re.search(r"99% in ([\d.]+) secs", text).group(1)) * 1000
print(f"latency at {rps:.0f} events/s: injected -> webhook request p50 {s['p50Ms']:.2f} ms, p99 {s['p99Ms']:.2f} ms, "
      f"max {s['maxMs']:.2f} ms over {s['count']} events")
print(f"baseline: the inbound call itself (stored and acknowledged) p99 {p99:.2f} ms at the same rate")
PY
rm -f "$body" "$body.out"
