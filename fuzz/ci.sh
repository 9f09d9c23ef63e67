#!/usr/bin/env bash
# The short fuzz campaign CI runs: installs cargo-fuzz when missing, builds every target
# (stable toolchain, no sanitizer), then runs each for FUZZ_SECONDS (default 30) from its
# committed seed corpus. A crash, a timeout or an out-of-memory exits non-zero and fails
# CI; libFuzzer leaves the input in fuzz/artifacts/<target>/. New corpus entries go to
# fuzz/campaign/<target>/ (ignored by git), never into the committed seeds.
set -euo pipefail

cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=$(cargo fuzz list)
cargo fuzz build -s none

for target in $targets; do
    mkdir -p "campaign/$target" "corpus/$target"
    echo "=== fuzz $target for ${seconds}s"
    # -timeout: one input running longer than this is a hang, reported like a crash.
    cargo fuzz run -s none "$target" "campaign/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1
done
echo "=== every fuzz target ran ${seconds}s without a crash"
