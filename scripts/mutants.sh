#!/usr/bin/env bash
# The mutation run: every mutant cargo-mutants makes of core/src/replication/ and
# core/src/node/ (their unit tests excluded), each judged first by core's own tests of
# the node and replication layers (its unit tests and the integration tests that drive
# a Node or a Replica), then by the simulator's campaigns (sim/tests/mutation_oracle.rs):
# a mutant is killed when one of those tests or some seed fails. Each mutant's log
# names the test binary that failed, so a kill is attributed to a test or to the oracle.
#
#   scripts/mutants.sh [SHARD/SHARDS] [SEEDS]
#   scripts/mutants.sh --oracle-only SHARD/SHARDS [SEEDS]
#   scripts/mutants.sh --again SHARD/SHARDS [SEEDS]
#
# SHARD/SHARDS (default 1/1) runs every SHARDS-th mutant (round-robin), so the run can
# be spread over several sessions (cargo-mutants' baseline would test the mutated
# package only, so it is skipped: the tests pass on the unmutated tree in cargo test);
# SEEDS (default 150) is the oracle's seed count. Only the judging test binaries are
# built per mutant. Results land in target/mutants/shard-SHARD-of-SHARDS/mutants.out/
# (caught.txt, missed.txt, unviable.txt, timeout.txt); the README's score sums them.
#
# `--list` prints the mutants a run judges (planted-bug hooks left out) and stops.
#
# `--oracle-only` judges by the campaigns alone (how shards 1 to 4 first ran), results
# in target/mutants/shard-SHARD-of-SHARDS-oracle/. `--again` takes the survivors a run
# left (its missed.txt, an oracle-only run's if there is one) and judges each again
# with both, so the README can say which survivors a test or a checker added since
# kills. Results land in target/mutants/shard-SHARD-of-SHARDS-again/mutants.out/.
# Survivors are found again by name, file:line:col included: one whose line moved since
# (an edit above it) is not judged again. cargo-mutants 27 applies no name filter to its
# four field-deletion mutants, so they are judged too.
#
# A mutant whose tests run past 150 s counts as killed (a timeout): a survivor's tests
# take 10 to 30 s, and the mutants that time out loop forever.
#
# cargo-mutants copies the working tree when it starts: leave core/ unedited until a run
# has begun, or its every mutant is judged on top of your edit.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
files=(--file 'core/src/replication/*.rs' --file 'core/src/node/*.rs'
  --exclude core/src/replication/tests.rs)
# Planted-bug hooks are not judged: they exist only with the `planted-bugs` feature, which
# the judging build (as the server's) does not enable, so each of their mutants would
# survive unseen. A hook runs from its `// planted bug:` comment to the end of the
# statement or match arm after its `#[cfg]` line (brackets balanced). One anchored
# regex per file lists their lines.
for f in core/src/replication/*.rs core/src/node/*.rs; do
  hooks=$(awk -v f="$f" '
    /\/\/ planted bug:/ { inhook = 1; depth = 0; started = 0 }
    inhook {
      lines = lines (lines == "" ? "" : "|") NR
      if ($0 !~ /^[ \t]*(\/\/|#\[cfg)/) started = 1
      t = $0; o = gsub(/[({[]/, "", t)
      t = $0; c = gsub(/[)}\]]/, "", t)
      depth += o - c
      if (started && depth <= 0 && $0 ~ /[;},][ \t]*$/) inhook = 0
    }
    END { if (lines != "") { gsub(/\./, "\\.", f); print "^" f ":(" lines "):" } }' "$f")
  [ -z "$hooks" ] || files+=(--exclude-re "$hooks")
done
# The one hook that is a whole function: `NodeConfig::plant_bug` (compiled with the
# feature only, like the hooks above).
files+=(--exclude-re 'NodeConfig::plant_bug')
# Core's tests of the two layers, then the oracle: cargo runs the test binaries in this
# order and stops at the first that fails.
both=(--test-package paddock-core,paddock-sim --cargo-arg=--lib)
for t in node_cluster peer_forgery regressions replication_cluster replication_untrusted \
  sasl_request watch_acl mutation_oracle; do
  both+=("--cargo-arg=--test=$t")
done
oracle=(--test-package paddock-sim --cargo-arg=--test=mutation_oracle)

if [ "${1:-}" = "--list" ]; then
  exec cargo mutants --list "${files[@]}"
fi

if [ "${1:-}" = "--again" ]; then
  shard="${2:?usage: scripts/mutants.sh --again SHARD/SHARDS [SEEDS]}"
  seeds="${3:-150}"
  # The survivors of an oracle-only run, else of a run by both judges (whose survivors
  # tests added since may kill).
  missed="target/mutants/shard-${shard/\//-of-}-oracle/mutants.out/missed.txt"
  [ -s "$missed" ] || missed="target/mutants/shard-${shard/\//-of-}/mutants.out/missed.txt"
  [ -s "$missed" ] || { echo "no survivors listed in $missed" >&2; exit 1; }
  out="target/mutants/shard-${shard/\//-of-}-again"
  mkdir -p "$out"
  # One anchored regex per survivor, its metacharacters escaped.
  filters=()
  while IFS= read -r name; do
    filters+=(-F "^$(printf '%s' "$name" | sed 's/[][\\.^$*+?(){}|]/\\&/g')\$")
  done <"$missed"
  PADDOCK_ORACLE_SEEDS="$seeds" exec cargo mutants \
    --profile mutants \
    "${files[@]}" "${filters[@]}" \
    "${both[@]}" \
    --baseline skip \
    --timeout 150 \
    --output "$out"
fi

judges=("${both[@]}") suffix="" timeout=150
if [ "${1:-}" = "--oracle-only" ]; then
  judges=("${oracle[@]}") suffix="-oracle" timeout=120
  shift
fi
shard="${1:-1/1}"
seeds="${2:-150}"
out="target/mutants/shard-${shard/\//-of-}$suffix"
mkdir -p "$out"
PADDOCK_ORACLE_SEEDS="$seeds" exec cargo mutants \
  --profile mutants \
  "${files[@]}" \
  "${judges[@]}" \
  --baseline skip \
  --shard "$shard" --sharding round-robin \
  --timeout "$timeout" \
  --output "$out"
