#!/usr/bin/env bash
# The mutation run: every mutant cargo-mutants makes of core/src/replication/ and
# core/src/node/ (their unit tests excluded), each judged by the simulator's campaigns
# alone (sim/tests/mutation_oracle.rs): a mutant is killed when some seed fails.
#
#   scripts/mutants.sh [SHARD/SHARDS] [SEEDS]
#
# SHARD/SHARDS (default 1/1) runs every SHARDS-th mutant (round-robin), so the run can
# be spread over several sessions (cargo-mutants' baseline would test the mutated
# package only, so it is skipped: the oracle passes on the unmutated tree in cargo test);
# SEEDS (default 150) is the oracle's seed count.
# Results land in target/mutants/shard-SHARD-of-SHARDS/mutants.out/ (caught.txt,
# missed.txt, unviable.txt, timeout.txt); the README's score sums them.
set -euo pipefail
cd "$(dirname "$0")/.."
shard="${1:-1/1}"
seeds="${2:-150}"
command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
out="target/mutants/shard-${shard/\//-of-}"
mkdir -p "$out"
PADDOCK_ORACLE_SEEDS="$seeds" cargo mutants \
  --profile mutants \
  --file 'core/src/replication/*.rs' --file 'core/src/node/*.rs' \
  --exclude core/src/replication/tests.rs \
  --test-package paddock-sim \
  --baseline skip \
  --shard "$shard" --sharding round-robin \
  --timeout 120 \
  --output "$out" \
  -- --test mutation_oracle
