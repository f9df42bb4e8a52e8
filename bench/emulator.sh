#!/usr/bin/env bash
# The real engine against wa-emulator: memory per linked idle phone and resume time, beside
# the sandbox engine in the same run. Usage: bench/emulator.sh [PHONES=200]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wagate-target}"
(cd "$here/.." && cargo build --release --quiet --features emulator -p wagate -p wa-emulator)
python3 "$here/emulator.py" "$CARGO_TARGET_DIR/release/wagate" "$CARGO_TARGET_DIR/release/wa-emulator" "${1:-200}"
