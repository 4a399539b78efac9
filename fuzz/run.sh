#!/usr/bin/env bash
# Runs each fuzz target for the given number of seconds (default 60) and prints libFuzzer's
# summary (executions and time). Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly
# toolchain. A crash leaves its input under fuzz/artifacts/<target>/ and fails the script, as
# does a target that does not build or run.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh needs a nightly toolchain and cargo-fuzz (cargo install cargo-fuzz)" >&2
  exit 2
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in libsvm run; do
  echo "== $target, ${seconds} s"
  mkdir -p "$PWD/corpus/$target"
  if ! cargo +nightly fuzz run "$target" "$PWD/corpus/$target" -- -max_total_time="$seconds" \
    >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target failed (crash inputs, if any, in fuzz/artifacts/$target)"
    exit 1
  fi
  if ! grep -E "^Done [0-9]+ runs" "$log"; then
    tail -n 40 "$log"
    echo "fuzz target $target printed no summary"
    exit 1
  fi
  test -z "$(ls -A "artifacts/$target" 2>/dev/null)" || { echo "crash inputs in fuzz/artifacts/$target"; exit 1; }
done
