#!/usr/bin/env bash
# Generates a Python client from openapi/openapi.json with openapi-python-client (PyPI)
# and runs smoke.py with it against a freshly started server.
# Usage: tests/sdk/check.sh [path/to/wagate]   (default: $CARGO_TARGET_DIR/debug/wagate)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/debug/wagate}
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv=${WAGATE_SDK_VENV:-/var/tmp/wagate-sdk-venv}
if [ ! -x "$venv/bin/openapi-python-client" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "openapi-python-client==0.29.1"
fi
printf 'post_hooks: []\n' > "$work/gen.yaml"
"$venv/bin/openapi-python-client" generate --path "$root/openapi/openapi.json" \
  --meta none --output-path "$work/wagate_client" --config "$work/gen.yaml" >"$work/gen.log" 2>&1
# A warning means part of the API was left out of the client: the spec must be fixed.
if grep -q "Warning" "$work/gen.log"; then
  cat "$work/gen.log"; echo "openapi-python-client could not generate every operation"; exit 1
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WAGATE_ENGINE=sandbox "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/api/v1/health" >/dev/null && break
  sleep 0.1
done
PYTHONPATH="$work" "$venv/bin/python" "$here/smoke.py" "http://127.0.0.1:$port" || {
  cat "$work/server.log"; exit 1; }
