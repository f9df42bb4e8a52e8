#!/usr/bin/env bash
# Lints openapi/openapi.json with two standard OpenAPI linters, redocly's `recommended`
# rules and spectral's `oas` rules; any error fails. The known warnings: the WebSocket
# operation succeeds with 101 (an upgrade), not 2xx, and `health` / `verifyToken` have no
# 4xx answer because they have none, and a self-hosted gateway names no contact.
# Usage: tests/spec/lint.sh [spec]   (tools go to $WAGATE_LINT_DIR, default /var/tmp/wagate-spec-lint)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
spec=$(realpath "${1:-$root/openapi/openapi.json}")
tools=${WAGATE_LINT_DIR:-/var/tmp/wagate-spec-lint}
redocly_version=2.77.0
spectral_version=6.16.3
if [ ! -x "$tools/node_modules/.bin/redocly" ] || [ ! -x "$tools/node_modules/.bin/spectral" ] \
  || ! grep -q "\"version\": \"$redocly_version\"" "$tools/node_modules/@redocly/cli/package.json" \
  || ! grep -q "\"version\": \"$spectral_version\"" "$tools/node_modules/@stoplight/spectral-cli/package.json"; then
  mkdir -p "$tools"
  npm install --prefix "$tools" --no-audit --no-fund --loglevel=error \
    "@redocly/cli@$redocly_version" "@stoplight/spectral-cli@$spectral_version"
fi
cd "$tools"
printf 'extends: ["spectral:oas"]\n' > spectral.yaml
echo "--- spectral (oas)"
"$tools/node_modules/.bin/spectral" lint "$spec" --ruleset spectral.yaml --fail-severity error
echo "--- redocly (recommended)"
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  "$tools/node_modules/.bin/redocly" lint "$spec" --extends recommended --format stylish
