#!/usr/bin/env bash
# Every figure in BENCHMARKS.md, one after another, on a release build.
# Usage: bench/run.sh [--quick]   (--quick: shorter runs and fewer phones, for a smoke check)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wagate-target}"
quick=${1:-}
if [ "$quick" = "--quick" ]; then
  secs=3; phones=200; many=500; soak=30; history=100000; events=2000; emu=50
else
  secs=10; phones=1000; many=10000; soak=600; history=1000000; events=20000; emu=200
fi
(cd "$here/.." && cargo build --release --quiet && cargo build --release --quiet --example webhook_receiver)
bin="$CARGO_TARGET_DIR/release/wagate"
section() { echo; echo "######## $* ($(date -u +%H:%M:%S))"; }
section "auth overhead";           "$here/auth.sh" "$secs" 3
section "sends";                   "$here/messaging.sh" "$((secs + 5))"
section "history";                 "$here/history.sh" "$history" "$secs"
section "webhooks";                "$here/webhooks.sh" "$events" "$((secs + 5))"
section "phones at scale ($phones)";  python3 "$here/phones.py" "$bin" "$phones" 200
section "phones at scale ($many)";    python3 "$here/phones.py" "$bin" "$many" 50
section "soak (${soak} s)";        "$here/soak.sh" "$soak"
# Last: it builds the release binary with the `emulator` feature.
section "real engine via wa-emulator ($emu)"; "$here/emulator.sh" "$emu"
section "real engine messaging via wa-emulator"; "$here/emulator_messaging.sh" "$((secs + 10))" "$((events / 20))"
