#!/usr/bin/env bash
# API fuzzing: schemathesis (PyPI) against the live spec of a server on the sandbox engine,
# authenticated with a permanent token, every operation, positive and negative data.
# Fails on any 5xx and on any response that breaks the spec (status, schema, headers,
# content type). Usage: tests/fuzz/run.sh [path/to/wagate] [max examples per operation]
#
# Left out: `positive_data_acceptance`, because validity the schema cannot express is
# checked on purpose (libphonenumber's per-country rules for phone numbers, the recipient
# rules, URL safety); such requests get a 400 with a clear code, which that check counts
# as a failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/debug/wagate}
examples=${2:-100}
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv=${WAGATE_FUZZ_VENV:-/var/tmp/wagate-fuzz-venv}
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The seed webhook points at this server itself, on loopback.
WAGATE_ENGINE=sandbox RUST_LOG=warn WAGATE_AUTH__LOGIN_MAX_FAILURES=100000 \
  WAGATE_NETWORK__ALLOW_NETWORKS='["127.0.0.1/32"]' \
  "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "$base/api/v1/health" >/dev/null && break; sleep 0.1; done
post() { curl -fs -X POST "$base$1" -H 'Content-Type: application/json' -H "Authorization: Bearer ${token:-}" -d "$2"; }
post /api/v1/auth/change-password '{"newPassword":"fuzzing password"}' >/dev/null || { cat "$work/server.log"; exit 1; }
token=$(post /api/v1/auth/generate-token '{"password":"fuzzing password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# Some data for the fuzzer to find: a paired phone, a virtual account, a group, a webhook.
post /api/v1/sandbox/accounts '{"phone":"+12015550150","name":"Alice"}' >/dev/null
post /api/v1/user/phones '{"phone":"+12015550101"}' >/dev/null
post /api/v1/user/phones/+12015550101/connect '{}' >/dev/null
post /api/v1/sandbox/phones/+12015550101/scan '{}' >/dev/null
post /api/v1/sandbox/groups '{"subject":"Fuzz","members":["+12015550101","+12015550150"]}' >/dev/null
post /api/v1/user/webhooks "{\"url\":\"$base/api/v1/health\",\"services\":[\"message.received\"]}" >/dev/null

fuzz() {
  "$venv/bin/schemathesis" run "$base/api/v1/openapi.json" --url "$base" \
    -H "Authorization: Bearer $token" \
    --checks all --exclude-checks positive_data_acceptance \
    --max-examples "$examples" --workers 2 --no-color --seed 42 "$@" ${WAGATE_FUZZ_ARGS:-}
}
status=0
# Revoking tokens would revoke the fuzzer's own (it finds the id in the token list), so
# that operation runs last, on its own.
fuzz --exclude-operation-id revokeToken || status=$?
fuzz --include-operation-id revokeToken || status=$?
if grep -q "panicked" "$work/server.log"; then
  echo "the server panicked during fuzzing:"; grep -B2 -A10 "panicked" "$work/server.log"; status=1
fi
kill -0 "$server" 2>/dev/null || { echo "the server died during fuzzing"; tail -50 "$work/server.log"; status=1; }
exit $status
