#!/usr/bin/env bash
# Re-capture every golden vector in core/tests/vectors/ against a real ZooKeeper 3.8.
# Each capture gets a fresh server (the scenarios and their zxids assume an empty tree).
#   core/tests/vectors/capture/capture_all.sh [PORT]      (default port 21811)
# Needs root the first time (apt-get install zookeeper); see scripts/zk-reference.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
vectors="$(dirname "$here")"
repo="$(cd "$vectors/../../.." && pwd)"
ref="$repo/scripts/zk-reference.sh"
port="${1:-21811}"
py="${KAZOO_VENV:-$repo/target/venv-kazoo}/bin/python"

"$ref" install
trap '"$ref" stop "$port" || true' EXIT

fresh() {
    "$ref" stop "$port" >/dev/null 2>&1 || true
    "$ref" start "$port" >/dev/null
}

cd "$here"
fresh
"$py" capture_kazoo.py "$port" "$vectors/kazoo_session.txt"
fresh
python3 capture_java.py "$port" "$vectors"
fresh
"$py" capture_semantics.py "$port" "$vectors/zk38_semantics.json"
