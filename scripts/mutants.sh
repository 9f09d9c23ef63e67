#!/usr/bin/env bash
# The mutation run: every mutant cargo-mutants makes of core/src/replication/ and
# core/src/node/ (their unit tests excluded), each judged by the simulator's campaigns
# alone (sim/tests/mutation_oracle.rs): a mutant is killed when some seed fails.
#
#   scripts/mutants.sh [SHARD/SHARDS] [SEEDS]
#   scripts/mutants.sh --again SHARD/SHARDS
#
# SHARD/SHARDS (default 1/1) runs every SHARDS-th mutant (round-robin), so the run can
# be spread over several sessions (cargo-mutants' baseline would test the mutated
# package only, so it is skipped: the oracle passes on the unmutated tree in cargo test);
# SEEDS (default 150) is the oracle's seed count. Only the oracle's test binary is
# built per mutant (about 9 s after a one-line change, not the 35 s of every sim test).
# Results land in target/mutants/shard-SHARD-of-SHARDS/mutants.out/ (caught.txt,
# missed.txt, unviable.txt, timeout.txt); the README's score sums them.
#
# `--again` is the second pass: it takes that shard's survivors (missed.txt) and judges
# each again, first by core's own tests of the node and replication layers (its unit
# tests and the integration tests that drive a Node or a Replica), then by the oracle
# with today's checkers; so the README can say which survivors a test kills and which a
# later checker does, measured rather than read. Each mutant's log names the test binary
# that failed. Results land in target/mutants/shard-SHARD-of-SHARDS-again/mutants.out/.
#
# cargo-mutants copies the working tree when it starts: leave core/ unedited until a run
# has begun, or its every mutant is judged on top of your edit.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
files=(--file 'core/src/replication/*.rs' --file 'core/src/node/*.rs'
  --exclude core/src/replication/tests.rs)

if [ "${1:-}" = "--again" ]; then
  shard="${2:?usage: scripts/mutants.sh --again SHARD/SHARDS [SEEDS]}"
  seeds="${3:-150}"
  missed="target/mutants/shard-${shard/\//-of-}/mutants.out/missed.txt"
  [ -s "$missed" ] || { echo "no survivors listed in $missed" >&2; exit 1; }
  out="target/mutants/shard-${shard/\//-of-}-again"
  mkdir -p "$out"
  # One anchored regex per survivor, its metacharacters escaped.
  filters=()
  while IFS= read -r name; do
    filters+=(-F "^$(printf '%s' "$name" | sed 's/[][\\.^$*+?(){}|]/\\&/g')\$")
  done <"$missed"
  targets=()
  for t in mutation_oracle node_cluster peer_forgery replication_cluster \
    replication_untrusted sasl_request watch_acl; do
    targets+=("--cargo-arg=--test=$t")
  done
  PADDOCK_ORACLE_SEEDS="$seeds" exec cargo mutants \
    --profile mutants \
    "${files[@]}" "${filters[@]}" \
    --test-package paddock-core,paddock-sim \
    --cargo-arg=--lib "${targets[@]}" \
    --baseline skip \
    --timeout 300 \
    --output "$out"
fi

shard="${1:-1/1}"
seeds="${2:-150}"
out="target/mutants/shard-${shard/\//-of-}"
mkdir -p "$out"
PADDOCK_ORACLE_SEEDS="$seeds" exec cargo mutants \
  --profile mutants \
  "${files[@]}" \
  --test-package paddock-sim \
  --cargo-arg=--test=mutation_oracle \
  --baseline skip \
  --shard "$shard" --sharding round-robin \
  --timeout 120 \
  --output "$out"
