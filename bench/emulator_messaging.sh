#!/usr/bin/env bash
# Messaging on the real engine against wa-emulator beside the sandbox engine in the same run:
# send -> recipient-decrypted latency at 50 sends/s, and inbound messages stored per second.
# Usage: bench/emulator_messaging.sh [SECONDS=20] [INBOUND=1000]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/wagate-target}"
(cd "$here/.." && cargo build --release --quiet --features emulator -p wagate -p wa-emulator)
python3 "$here/emulator_messaging.py" "$CARGO_TARGET_DIR/release/wagate" "$CARGO_TARGET_DIR/release/wa-emulator" "${1:-20}" "${2:-1000}"
