#!/usr/bin/env bash
# compare-zookeeper.sh: Paddock and Apache ZooKeeper 3.8 side by side, standalone on this
# machine, fsync on for both, measured by the same pipelined load generator
# (`paddock-load`, on the independent zookeeper-client crate). Each server is warmed up
# (ZooKeeper's JIT) before every measured row. Prints one table: ops/s, p50/p99 (us) and
# the ratio Paddock / ZooKeeper of ops/s (higher is better) and of p99 (lower is better).
# Everything it started is stopped on exit.
#
#   benches/compare-zookeeper.sh [SECONDS per row, default 10]
#
# Environment: CLIENTS (16), INFLIGHT (16), SIZE (128), WARMUP (3, seconds per row),
# BIG_SECONDS (0): when set, each server then takes creates for that long (about 30,000/s
# here, so 35 s loads ~10^6 znodes), and the script reports the znode count, the server's
# RSS, the time a restart takes to serve again (recovery, stop included for ZooKeeper) and
# the RSS after it. ZooKeeper runs with -Xmx$ZK_HEAP (default 2g, enough for 10^6 znodes).
# Rows not measured yet (see issue 11): 3-node ensembles, create+delete churn, 10,000 idle
# connections.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_ROW="${1:-10}"
CLIENTS="${CLIENTS:-16}"
INFLIGHT="${INFLIGHT:-16}"
SIZE="${SIZE:-128}"
WARMUP="${WARMUP:-3}"
ZK_PORT=21820
PADDOCK_PORT=21821
WORK="$(mktemp -d /tmp/paddock-compare.XXXXXX)"
PADDOCK_PID=""
BIG_SECONDS="${BIG_SECONDS:-0}"
export ZK_HEAP="${ZK_HEAP:-2g}"
ZK_STATE="${PADDOCK_ZK_STATE:-/tmp/paddock-zk-ref}"

cleanup() {
    [ -n "$PADDOCK_PID" ] && kill "$PADDOCK_PID" 2>/dev/null || true
    scripts/zk-reference.sh stop "$ZK_PORT" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

bash scripts/zk-reference.sh install >/dev/null
cargo build --release -q -p paddock-net-real -p paddock-benches --bin paddock --bin paddock-load
LOAD=target/release/paddock-load

printf 'tickTime=2000\ndataDir=%s/paddock\nclientPort=%s\nclientPortAddress=127.0.0.1\n' \
    "$WORK" "$PADDOCK_PORT" > "$WORK/paddock.cfg"
mkdir -p "$WORK/paddock"
target/release/paddock serve --config "$WORK/paddock.cfg" 2> "$WORK/paddock.log" &
PADDOCK_PID=$!
scripts/zk-reference.sh start "$ZK_PORT" >/dev/null

# row SERVER_PORT OP CLIENTS INFLIGHT -> the JSON summary
row() {
    "$LOAD" --server "127.0.0.1:$1" --op "$2" --clients "$3" --inflight "$4" --size "$SIZE" \
        --seconds "$SECONDS_PER_ROW" --warmup "$WARMUP" --prefix "/cmp-$2-$3x$4" 2>/dev/null
}

echo "machine: $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%d)"
echo "load: ${CLIENTS} sessions x ${INFLIGHT} in flight, ${SIZE}-byte values, ${SECONDS_PER_ROW} s per row after ${WARMUP} s warm-up"
{
    for spec in "create $CLIENTS $INFLIGHT" "set $CLIENTS $INFLIGHT" "get $CLIENTS $INFLIGHT" \
        "mixed $CLIENTS $INFLIGHT" "set 1 1" "get 1 1"; do
        set -- $spec
        zk=$(row "$ZK_PORT" "$1" "$2" "$3")
        pd=$(row "$PADDOCK_PORT" "$1" "$2" "$3")
        echo "$1 $2x$3|$zk|$pd"
    done
} > "$WORK/rows.txt"
python3 - "$WORK/rows.txt" <<'EOF'
import json, sys
print(f"{'row':<14}{'ZooKeeper ops/s':>16}{'p50/p99 us':>16}{'Paddock ops/s':>15}{'p50/p99 us':>16}{'ops ratio':>10}{'p99 ratio':>10}")
for line in open(sys.argv[1]):
    name, zk, pd = line.rstrip("\n").split("|")
    zk, pd = json.loads(zk), json.loads(pd)
    ratio = pd["ops_per_sec"] / zk["ops_per_sec"] if zk["ops_per_sec"] else float("nan")
    p99 = pd["p99_us"] / zk["p99_us"] if zk["p99_us"] else float("nan")
    print(f"{name:<14}{zk['ops_per_sec']:>16.0f}{str(zk['p50_us'])+'/'+str(zk['p99_us']):>16}"
          f"{pd['ops_per_sec']:>15.0f}{str(pd['p50_us'])+'/'+str(pd['p99_us']):>16}{ratio:>9.2f}x{p99:>9.2f}x"
          + ("" if zk["errors"] == 0 and pd["errors"] == 0 else f"  errors zk={zk['errors']} paddock={pd['errors']}"))
EOF

[ "$BIG_SECONDS" -gt 0 ] || exit 0

four_letter() {
    python3 - "$1" "$2" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode())
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
print(out.decode(), end="")
EOF
}
znodes() { four_letter "$1" mntr | awk '$1 == "zk_znode_count" { print $2 }'; }
rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
paddock_start() {
    target/release/paddock serve --config "$WORK/paddock.cfg" 2>> "$WORK/paddock.log" &
    PADDOCK_PID=$!
    until four_letter "$PADDOCK_PORT" srvr 2>/dev/null | grep -q '^Mode: '; do sleep 0.05; done
}

echo
echo "big tree: ${BIG_SECONDS} s of creates (16 x 16, ${SIZE} B), then a restart"
printf '%-10s%12s%12s%14s%16s\n' server znodes "RSS MB" "recovery ms" "RSS after MB"
for server in zookeeper paddock; do
    if [ "$server" = zookeeper ]; then port=$ZK_PORT; else port=$PADDOCK_PORT; fi
    "$LOAD" --server "127.0.0.1:$port" --op create --clients 16 --inflight 16 --size "$SIZE" \
        --seconds "$BIG_SECONDS" --warmup 0 --prefix /big >/dev/null 2>&1
    count=$(znodes "$port")
    if [ "$server" = zookeeper ]; then
        pid=$(cat "$ZK_STATE/$ZK_PORT/pid")
        rss=$(rss_mb "$pid")
        started=$(now_ms)
        pid=$(scripts/zk-reference.sh restart "$ZK_PORT" 2>/dev/null)
        recovery=$(( $(now_ms) - started ))
    else
        rss=$(rss_mb "$PADDOCK_PID")
        kill "$PADDOCK_PID"; wait "$PADDOCK_PID" 2>/dev/null || true
        started=$(now_ms)
        paddock_start
        recovery=$(( $(now_ms) - started ))
        pid=$PADDOCK_PID
    fi
    printf '%-10s%12s%12s%14s%16s\n' "$server" "$count" "$rss" "$recovery" "$(rss_mb "$pid")"
done
