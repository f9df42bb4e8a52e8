#!/usr/bin/env bash
# Soak: a steady load for a while (default 10 minutes) and the server's memory over time.
# Load: 150 sends/s and 50 inbound messages/s on two sandbox phones, every inbound message
# delivered to a local webhook receiver, delivery/read receipts on. RSS is sampled every
# 10 s; flat memory means the last samples stay near the ones after warm-up.
# Usage: bench/soak.sh [seconds, default 600]
source "$(dirname "$0")/lib.sh"
need hey hey
secs=${1:-600}
build_release
start_receiver
start_server RUST_LOG=warn WAGATE_ENGINE=sandbox WAGATE_MESSAGING__PACING=off
trap 'stop_server; kill $receiver 2>/dev/null' EXIT
set_password_and_login
auth=(-H "Authorization: Bearer $token")
json_post /api/v1/sandbox/accounts '{"phone":"+12015550150","name":"Alice"}' "${auth[@]}" >/dev/null
for p in +12015550101 +12015550102; do
  pair_phone "$p"
done
json_post /api/v1/user/webhooks "{\"url\":\"http://127.0.0.1:$rport/hook\",\"services\":[\"message.received\"]}" "${auth[@]}" >/dev/null
sleep 1
work=$(mktemp -d)
echo '{"recipient":"12015550150","message":"soak send"}' > "$work/send.json"
echo '{"from":"+12015550150","message":"soak inbound"}' > "$work/inbound.json"
hey -z "${secs}s" -c 3 -q 50 -m POST -T application/json "${auth[@]}" -D "$work/send.json" \
  "$base/api/v1/user/phones/%2B12015550101/message" > "$work/send.out" &
sends=$!
hey -z "${secs}s" -c 1 -q 50 -m POST -T application/json "${auth[@]}" -D "$work/inbound.json" \
  "$base/api/v1/sandbox/phones/%2B12015550102/inbound" > "$work/inbound.out" &
inbound=$!
echo "machine: $(machine)"
echo "seconds rss_mib"
: > "$work/rss"
for t in $(seq 0 10 "$secs"); do
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$server_pid/status")
  echo "$t $rss" | tee -a "$work/rss"
  [ "$t" -lt "$secs" ] && sleep 10
done
wait $sends $inbound || true
sleep 2
python3 - "$work" "$(curl -fs "http://127.0.0.1:$rport/stats")" <<'PY'
import json, re, sys
work, stats = sys.argv[1], json.loads(sys.argv[2])
samples = [tuple(map(float, l.split())) for l in open(f"{work}/rss") if l.strip()]
def hey(name):
    text = open(f"{work}/{name}.out").read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = float(re.search(r"99% in ([\d.]+) secs", text).group(1)) * 1000
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", text))
    return rps, p99, codes
for name in ("send", "inbound"):
    rps, p99, codes = hey(name)
    print(f"{name}: {rps:.0f}/s, p99 {p99:.2f} ms, status codes {codes}")
print(f"webhooks delivered: {stats['count']}, latency p99 {stats['p99Ms']:.2f} ms")
warm = [r for t, r in samples if 60 <= t <= 120] or [samples[0][1]]
last = [r for t, r in samples[-6:]]
print(f"RSS: {samples[0][1]:.1f} MiB at start, {sum(warm)/len(warm):.1f} MiB after warm-up (60-120 s), "
      f"{sum(last)/len(last):.1f} MiB over the last minute, max {max(r for _, r in samples):.1f} MiB")
PY
rm -rf "$work"
