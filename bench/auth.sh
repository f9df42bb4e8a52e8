#!/usr/bin/env bash
# Auth overhead: authenticated GET /api/v1/auth/verify (Bearer token) against the public
# GET /api/v1/health, same server, same run, alternating rounds. Target: verify >= 80% of
# health's requests per second.
# Usage: bench/auth.sh [seconds per round, default 10] [rounds, default 3]
source "$(dirname "$0")/lib.sh"
need wrk wrk
secs=${1:-10}
rounds=${2:-3}
build_release
start_server RUST_LOG=warn
trap stop_server EXIT
set_password_and_login

echo "machine: $(machine)"
echo "wrk -t1 -c32 -d${secs}s, ${rounds} alternating rounds; columns: req/s p50_ms p99_ms non2xx"
health_total=0; verify_total=0; resources_total=0
for round in $(seq 1 "$rounds"); do
  h=$(wrk_run -t1 -c32 -d"${secs}s" "$base/api/v1/health")
  v=$(wrk_run -t1 -c32 -d"${secs}s" -H "Authorization: Bearer $token" "$base/api/v1/auth/verify")
  r=$(wrk_run -t1 -c32 -d"${secs}s" -H "Authorization: Bearer $token" "$base/api/v1/health/resources")
  echo "round $round  health: $h | verify(bearer): $v | resources(bearer): $r"
  health_total=$((health_total + ${h%% *}))
  verify_total=$((verify_total + ${v%% *}))
  resources_total=$((resources_total + ${r%% *}))
done
echo "mean req/s: health $((health_total / rounds)), verify $((verify_total / rounds)), resources $((resources_total / rounds))"
echo "verify/health = $((100 * verify_total / health_total))%, resources/health = $((100 * resources_total / health_total))% (target >= 80%)"
