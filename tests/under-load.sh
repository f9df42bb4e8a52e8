#!/usr/bin/env bash
# Runs the whole suite on a machine made busy on purpose, to catch tests that assume a fast
# one: a CPU hog per core (or `--one-core`: the tests pinned to CPU 0 beside a hog), then
# `cargo test --workspace` RUNS times on SQLite and, with PG_URL set, on PostgreSQL.
#   tests/under-load.sh [RUNS] [--one-core]
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
pin=()
hogs=$(nproc)
if [[ "${2:-}" == "--one-core" ]]; then pin=(taskset -c 0); hogs=1; fi
cargo test --workspace --no-run -q >/dev/null 2>&1 || { echo "the tests do not build"; exit 1; }
pids=()
for _ in $(seq 1 "$hogs"); do (while :; do :; done) & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
passed=0; total=0
for db in sqlite ${PG_URL:+postgres}; do
  for run in $(seq 1 "$runs"); do
    total=$((total + 1))
    log="target/under-load-$db-$run.log"
    mkdir -p target
    start=$(date +%s)
    if [[ "$db" == postgres ]]; then
      WAGATE_TEST_DATABASE_URL="$PG_URL" "${pin[@]}" cargo test --workspace >"$log" 2>&1
    else
      "${pin[@]}" cargo test --workspace >"$log" 2>&1
    fi
    rc=$?
    [[ $rc == 0 ]] && passed=$((passed + 1))
    echo "$db run $run: $([[ $rc == 0 ]] && echo passed || echo FAILED) in $(( $(date +%s) - start )) s ($log)"
    [[ $rc == 0 ]] || grep -E "^test .* FAILED|panicked" "$log" | head -20
  done
done
echo "$passed of $total runs passed under load"
[[ $passed == "$total" ]]
