#!/usr/bin/env bash
# Runs each fuzz target for the given number of seconds (default 60) and prints libFuzzer's
# summary (executions and time). Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly
# toolchain. A crash leaves its input under fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
for target in libsvm run; do
  echo "== $target, ${seconds} s"
  mkdir -p "$PWD/corpus/$target"
  cargo +nightly fuzz run "$target" "$PWD/corpus/$target" -- -max_total_time="$seconds" 2>&1 \
    | grep -E "^Done|^#[0-9]+ *DONE|crash|panicked|ERROR" || true
  test -z "$(ls -A "artifacts/$target" 2>/dev/null)" || { echo "crash inputs in fuzz/artifacts/$target"; exit 1; }
done
