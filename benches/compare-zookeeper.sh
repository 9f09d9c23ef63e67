#!/usr/bin/env bash
# compare-zookeeper.sh: Paddock and Apache ZooKeeper 3.8 side by side on this machine, fsync on
# for both, neither tuned (the same zoo.cfg keys for both: tickTime=2000, maxClientCnxns=0, all
# four-letter words), measured by the same pipelined load generator (`paddock-load`, on the
# independent zookeeper-client crate). Prints one table; its ratio column is Paddock / ZooKeeper
# of the row's value (above 1x is better for ops/s, below 1x for us, ms, MB and threads), and
# for load rows the p99 ratio too. Everything it started (servers, ensemble members, load
# generators) is stopped on exit, also on Ctrl-C.
#
#   benches/compare-zookeeper.sh [SECONDS per row, default 10]
#
# What it measures, in the order it runs:
#   start-up      ms from spawning a server process on an empty dataDir until it establishes a
#                 ZooKeeper session (a real connect handshake, polled every 5 ms); the median of
#                 STARTS runs. ZooKeeper's includes the JVM's start.
#   idle          IDLE_SESSIONS sessions opened against a fresh standalone server (handshake
#                 done, then no requests but the client library's pings) and held for SECONDS:
#                 the server's VmRSS and Threads (/proc/PID/status) before the sessions and half
#                 way through the hold.
#   standalone    ops/s and p50/p99 of create, set, get, mixed (90% get, 10% set) and churn
#                 (create then delete the node; each is one op) with CLIENTS sessions x INFLIGHT
#                 requests in flight, then the p50 latency of set and get with 1 session x 1.
#   big tree      (when BIG_ZNODES > 0) each standalone server takes creates (16 x 16 in flight,
#                 `paddock-load --count`) until it holds BIG_ZNODES znodes with those earlier
#                 rows left: znodes, RSS, the time a restart takes to serve again (recovery;
#                 ZooKeeper's includes its stop and is polled every 0.2 s) and the RSS after it.
#   ensemble      3 members on 127.0.0.1 (distinct ports and dataDirs; ZooKeeper members with
#                 -Xmx$ZK_ENSEMBLE_HEAP), the sessions spread round-robin over the three client
#                 ports: set (writes), get (reads) and mixed, CLIENTS x INFLIGHT.
# Each load row is preceded by WARMUP seconds of the same load (ZooKeeper's JIT). Its "cpu s"
# column is the CPU time (user + sys, seconds) of the load generator / of the server process(es)
# over the whole paddock-load run (connect, set-up, warm-up, window, drain): both share this
# machine's cores, and a load generator using as much CPU as the server may be the bottleneck.
#
# Environment: CLIENTS (16), INFLIGHT (16), SIZE (128, bytes per value), WARMUP (3, seconds per
# row), STARTS (3), IDLE_SESSIONS (10000; the fd limit is raised to fit, up to the hard limit),
# ZK_HEAP (2g: the standalone ZooKeeper's -Xmx, enough for 10^6 znodes), ZK_ENSEMBLE_HEAP (512m),
# BIG_ZNODES (0 = skip the big-tree rows; 1000000 for the issue's 10^6), PADDOCK_ZK_STATE (target/zk-ref: ZooKeeper's
# state, see scripts/zk-reference.sh). Ports used: 21820-21821 (standalone), 21830-21852
# (ZooKeeper ensemble), 21860-21882 (Paddock ensemble).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_ROW="${1:-10}"
CLIENTS="${CLIENTS:-16}"
INFLIGHT="${INFLIGHT:-16}"
SIZE="${SIZE:-128}"
WARMUP="${WARMUP:-3}"
STARTS="${STARTS:-3}"
IDLE_SESSIONS="${IDLE_SESSIONS:-10000}"
BIG_ZNODES="${BIG_ZNODES:-0}"
ZK_HEAP="${ZK_HEAP:-2g}"
ZK_ENSEMBLE_HEAP="${ZK_ENSEMBLE_HEAP:-512m}"
ZK_STATE="${PADDOCK_ZK_STATE:-$(cd "$(dirname "$0")/.." && pwd)/target/zk-ref}"
export ZK_HEAP PADDOCK_ZK_STATE="$ZK_STATE"
ZK_PORT=21820
PADDOCK_PORT=21821
ZK_ENSEMBLE_BASE=21830
PADDOCK_ENSEMBLE_BASE=21860
WORK="$(mktemp -d /tmp/paddock-compare.XXXXXX)"
HELPER="$WORK/helper.py"
ROWS="$WORK/rows"
LOAD=target/release/paddock-load
PADDOCK=target/release/paddock
# Processes this script started itself (not through zk-reference.sh), stopped by cleanup.
PIDS=()
mkdir -p "$ROWS"

# alive PID: the process exists and is not a zombie.
alive() {
    [ -r "/proc/$1/stat" ] && [ "$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# stop_pid PID: SIGTERM, SIGKILL after 10 s; forgets PID.
stop_pid() {
    local pid="$1" i kept=()
    if alive "$pid"; then
        kill "$pid" 2>/dev/null || true
        for i in $(seq 1 100); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
    for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
    PIDS=("${kept[@]}")
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    scripts/zk-reference.sh stop "$ZK_PORT" >/dev/null 2>&1 || true
    scripts/zk-reference.sh ensemble-stop "$ZK_ENSEMBLE_BASE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The measuring half, in python: process spawning with a start-up clock, the ZooKeeper
# handshake, paddock-load runs with their CPU accounting, /proc sampling and the table.
cat >"$HELPER" <<'EOF'
import json, os, socket, struct, subprocess, sys, time

TICK = os.sysconf("SC_CLK_TCK")

def cpu_s(pids):
    """User + sys seconds of the processes (all their threads); 0 for one that is gone."""
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICK

def proc_status(pid):
    """(VmRSS in MB, Threads) of a process."""
    rss, threads = None, None
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key == "VmRSS":
            rss = int(value.split()[0]) / 1024
        elif key == "Threads":
            threads = int(value)
    return rss, threads

def handshake(port):
    """True when the server on port establishes a session (then closed again)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            # ConnectRequest: protocolVersion, lastZxidSeen, timeOut ms, sessionId, passwd, readOnly.
            body = struct.pack(">iqiqi", 0, 0, 10000, 0, 16) + bytes(16) + b"\0"
            s.sendall(struct.pack(">i", len(body)) + body)
            reply = b""
            while len(reply) < 20:
                chunk = s.recv(64)
                if not chunk:
                    return False
                reply += chunk
            _, _, timeout, session = struct.unpack(">iiiq", reply[:20])
            if timeout <= 0 or session == 0:
                return False
            # closeSession (xid 1, type -11), so the probe leaves no session behind.
            s.sendall(struct.pack(">iii", 8, 1, -11))
            try:
                s.recv(64)
            except OSError:
                pass
            return True
    except OSError:
        return False

def four(port, word):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(word.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()

def spawn(log, cmd):
    return subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)

def main(argv):
    cmd = argv[0]
    if cmd == "startup":
        # startup PORT LOG CMD...: prints "PID MS" once CMD's server establishes a session.
        port, log = int(argv[1]), argv[2]
        start = time.monotonic()
        p = spawn(log, argv[3:])
        while not handshake(port):
            if p.poll() is not None:
                sys.exit(f"{argv[3]} exited with {p.returncode} during start-up; see {log}")
            if time.monotonic() - start > 120:
                p.kill()
                sys.exit(f"{argv[3]} did not serve on port {port} within 120 s; see {log}")
            time.sleep(0.005)
        print(p.pid, round((time.monotonic() - start) * 1000))
    elif cmd == "spawn":
        # spawn LOG CMD...: prints the pid of CMD, started in the background.
        print(spawn(argv[1], argv[2:]).pid)
    elif cmd == "wait-serving":
        # wait-serving PORT...: until every server says Mode: leader, follower or standalone.
        deadline = time.monotonic() + 120
        for port in map(int, argv[1:]):
            while True:
                try:
                    text = four(port, "srvr")
                except OSError:
                    text = ""
                if any(f"Mode: {m}" in text for m in ("leader", "follower", "standalone")):
                    break
                if time.monotonic() > deadline:
                    sys.exit(f"port {port} does not serve after 120 s")
                time.sleep(0.05)
    elif cmd == "proc":
        rss, threads = proc_status(int(argv[1]))
        print(f"{rss:.0f} {threads}")
    elif cmd == "znodes":
        for line in four(int(argv[1]), "mntr").splitlines():
            if line.startswith("zk_znode_count"):
                print(line.split()[1])
    elif cmd == "run":
        # run OUT PIDS SAMPLE_PID LOG CMD...: runs paddock-load; writes its JSON plus the CPU
        # seconds of it and of PIDS (comma-separated) to OUT. With SAMPLE_PID (not "-") and
        # --op idle: samples that process half way through the hold.
        out, pids, sample, log = argv[1], argv[2].split(","), argv[3], argv[4]
        load = argv[5:]
        hold = float(load[load.index("--seconds") + 1])
        before = cpu_s(pids)
        with open(log, "ab") as logf:
            p = subprocess.Popen(load, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            sampled, last = {}, ""
            for line in p.stderr:
                logf.write(line)
                last = line.decode(errors="replace").strip()
                if sample != "-" and " sessions open " in last and not sampled:
                    time.sleep(hold / 2)
                    sampled["rss_mb"], sampled["threads"] = proc_status(int(sample))
            stdout = p.stdout.read().decode()
            _, status, usage = os.wait4(p.pid, 0)
        result = {"error": last or f"exit status {status}"}
        if status == 0:
            result = json.loads(stdout)
            result.update(sampled)
            if result.get("errors"):
                result["stderr"] = last
        result["load_cpu_s"] = usage.ru_utime + usage.ru_stime
        result["server_cpu_s"] = cpu_s(pids) - before
        with open(out, "w") as f:
            json.dump(result, f)
    elif cmd == "table":
        table(argv[1])
    else:
        sys.exit(f"unknown helper command {cmd}")

def cell(v):
    if v is None:
        return "n/a"
    return f"{v:.0f}" if abs(v) >= 10 or v == int(v) else f"{v:.1f}"

def table(rows):
    """Prints the manifest's rows, ID|KIND|UNIT|NAME, in order. Results are in ROWS/FILE.zk and
    ROWS/FILE.pd, FILE being ID up to a '#' (several rows can show one result)."""
    print(f"{'row':<24}{'unit':>7}{'ZooKeeper':>11}{'p50/p99 us':>15}{'cpu s ld/srv':>14}"
          f"{'Paddock':>11}{'p50/p99 us':>15}{'cpu s ld/srv':>14}{'ratio':>8}{'p99 ratio':>10}")
    notes = []
    for line in open(os.path.join(rows, "manifest")):
        ident, kind, unit, name = line.rstrip("\n").split("|", 3)
        file, _, shown = ident.partition("#")
        values, lats, cpus, p99s = [], [], [], []
        for side in ("zk", "pd"):
            try:
                r = json.load(open(os.path.join(rows, f"{file}.{side}")))
            except (OSError, ValueError):
                r = {"error": "not measured"}
            if not isinstance(r, dict):
                values.append(r); lats.append(""); cpus.append(""); p99s.append(None)
                continue
            server = "ZooKeeper" if side == "zk" else "Paddock"
            if ("error" in r or r.get("errors")) and not shown:
                notes.append(f"{name} ({server}): " + r.get("error", r.get("stderr", "")))
            latency = kind in ("load", "p50")
            lat = f"{r['p50_us']}/{r['p99_us']}" if latency and "p50_us" in r else ""
            cpu = (f"{r['load_cpu_s']:.1f}/{r['server_cpu_s']:.1f}"
                   if "load_cpu_s" in r and not shown else "")
            value = {"load": r.get("ops_per_sec"), "p50": r.get("p50_us"),
                     "rss": r.get("rss_mb"), "threads": r.get("threads")}[kind]
            values.append(value); lats.append(lat); cpus.append(cpu); p99s.append(r.get("p99_us"))
        zk, pd = values
        ratio = f"{pd / zk:.2f}x" if zk and pd is not None else ""
        p99 = (f"{p99s[1] / p99s[0]:.2f}x"
               if kind in ("load", "p50") and p99s[0] and p99s[1] is not None else "")
        print(f"{name:<24}{unit:>7}{cell(zk):>11}{lats[0]:>15}{cpus[0]:>14}"
              f"{cell(pd):>11}{lats[1]:>15}{cpus[1]:>14}{ratio:>8}{p99:>10}")
    for note in notes:
        print(f"  note: {note}")

main(sys.argv[1:])
EOF
helper() { python3 "$HELPER" "$@"; }

# row ID KIND UNIT NAME: a table row; KIND is load (ops/s), p50, rss, threads or value (the
# number in the result file itself).
row() { echo "$1|$2|$3|$4" >>"$ROWS/manifest"; }
# value ID SIDE NUMBER
value() { echo "$3" >"$ROWS/$1.$2"; }
# measure ID SIDE SERVER_PIDS SERVERS OP CLIENTS INFLIGHT PREFIX: one paddock-load run.
measure() {
    helper run "$ROWS/$1.$2" "$3" - "$WORK/load.log" "$LOAD" --server "$4" --op "$5" \
        --clients "$6" --inflight "$7" --size "$SIZE" --seconds "$SECONDS_PER_ROW" \
        --warmup "$WARMUP" --prefix "$8" --connect-timeout 30
}
# hosts PORT...: a --server list on loopback.
hosts() { local p out=""; for p in "$@"; do out+="${out:+,}127.0.0.1:$p"; done; echo "$out"; }

# paddock_cfg FILE DIR PORT [SERVER_LINES]: the same keys zk-reference.sh gives ZooKeeper.
paddock_cfg() {
    mkdir -p "$2"
    printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\n%s' \
        "$2" "$3" "${4:-}" >"$1"
}

# start_fresh SIDE: a standalone server on an empty dataDir, timed from spawn to first session;
# sets STARTED_PID and STARTED_MS.
start_fresh() {
    local out argv
    if [ "$1" = zk ]; then
        mapfile -t argv < <(scripts/zk-reference.sh argv "$ZK_PORT")
        out=$(helper startup "$ZK_PORT" "$WORK/zk-fresh.log" "${argv[@]}")
    else
        rm -rf "$WORK/paddock"
        paddock_cfg "$WORK/paddock.cfg" "$WORK/paddock" "$PADDOCK_PORT"
        out=$(helper startup "$PADDOCK_PORT" "$WORK/paddock.log" "$PADDOCK" serve --config "$WORK/paddock.cfg")
    fi
    STARTED_PID=${out% *}
    STARTED_MS=${out#* }
    PIDS+=("$STARTED_PID")
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The client side needs one descriptor per idle session, the server too (each inherits this).
fds=$((IDLE_SESSIONS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$fds" ]; then
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$fds" ]; then
        echo "warning: the fd limit is $hard, below the $fds the idle row needs" >&2
        fds=$hard
    fi
    ulimit -n "$fds"
fi

bash scripts/zk-reference.sh install >/dev/null 2>&1
cargo build --release -q -p paddock-net-real -p paddock-benches --bin paddock --bin paddock-load

echo "machine: $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%d)"
echo "load: ${CLIENTS} sessions x ${INFLIGHT} in flight, ${SIZE}-byte values, ${SECONDS_PER_ROW} s per row after ${WARMUP} s warm-up"

# The table's rows, in the order printed.
STANDALONE_SPECS=("create $CLIENTS $INFLIGHT" "set $CLIENTS $INFLIGHT" "get $CLIENTS $INFLIGHT"
    "mixed $CLIENTS $INFLIGHT" "churn $CLIENTS $INFLIGHT" "set 1 1" "get 1 1")
ENSEMBLE_SPECS=("set $CLIENTS $INFLIGHT" "get $CLIENTS $INFLIGHT" "mixed $CLIENTS $INFLIGHT")
for spec in "${STANDALONE_SPECS[@]}"; do
    read -r op clients inflight <<<"$spec"
    if [ "$clients$inflight" = 11 ]; then
        row "$op-${clients}x$inflight" p50 us "$op ${clients}x$inflight p50"
    else
        row "$op-${clients}x$inflight" load ops/s "$op ${clients}x$inflight"
    fi
done
for spec in "${ENSEMBLE_SPECS[@]}"; do
    read -r op clients inflight <<<"$spec"
    row "ens-$op" load ops/s "ensemble $op ${clients}x$inflight"
done
row startup value ms "start-up (median of $STARTS)"
row idle-before rss MB "RSS, no sessions"
row idle rss MB "RSS, $IDLE_SESSIONS idle"
row "idle#threads" threads count "threads, $IDLE_SESSIONS idle"
if [ "$BIG_ZNODES" -gt 0 ]; then
    row big-znodes value count "big: znodes"
    row big-rss value MB "big: RSS"
    row big-recovery value ms "big: recovery"
    row big-rss-after value MB "big: RSS after restart"
fi

# Start-up (STARTS fresh starts each), then the idle sessions on the last one.
for side in zk pd; do
    times=()
    for i in $(seq 1 "$STARTS"); do
        start_fresh "$side"
        times+=("$STARTED_MS")
        [ "$i" = "$STARTS" ] || stop_pid "$STARTED_PID"
    done
    value startup "$side" "$(median "${times[@]}")"
    sleep 1
    read -r rss threads < <(helper proc "$STARTED_PID")
    echo "{\"rss_mb\": $rss, \"threads\": $threads}" >"$ROWS/idle-before.$side"
    if [ "$side" = zk ]; then port=$ZK_PORT; else port=$PADDOCK_PORT; fi
    helper run "$ROWS/idle.$side" "$STARTED_PID" "$STARTED_PID" "$WORK/load.log" "$LOAD" \
        --server "127.0.0.1:$port" --op idle --clients "$IDLE_SESSIONS" \
        --seconds "$SECONDS_PER_ROW" --connect-timeout 30
    stop_pid "$STARTED_PID"
done

# Standalone load rows, both servers up.
ZK_PID=$(scripts/zk-reference.sh start "$ZK_PORT" 2>/dev/null)
start_fresh pd
PADDOCK_PID=$STARTED_PID
for spec in "${STANDALONE_SPECS[@]}"; do
    read -r op clients inflight <<<"$spec"
    id="$op-${clients}x$inflight"
    measure "$id" zk "$ZK_PID" "127.0.0.1:$ZK_PORT" "$op" "$clients" "$inflight" "/cmp-$id"
    measure "$id" pd "$PADDOCK_PID" "127.0.0.1:$PADDOCK_PORT" "$op" "$clients" "$inflight" "/cmp-$id"
done

if [ "$BIG_ZNODES" -gt 0 ]; then
    for side in zk pd; do
        if [ "$side" = zk ]; then port=$ZK_PORT pid=$ZK_PID; else port=$PADDOCK_PORT pid=$PADDOCK_PID; fi
        # Up to BIG_ZNODES in all: the create row left its znodes, more on the faster server.
        have=$(helper znodes "$port")
        if [ "$((BIG_ZNODES - have))" -gt 0 ]; then
            "$LOAD" --server "127.0.0.1:$port" --op create --clients 16 --inflight 16 --size "$SIZE" \
                --count "$((BIG_ZNODES - have))" --seconds 3600 --warmup 0 --prefix /big \
                >/dev/null 2>>"$WORK/load.log"
        fi
        value big-znodes "$side" "$(helper znodes "$port")"
        value big-rss "$side" "$(helper proc "$pid" | cut -d' ' -f1)"
        if [ "$side" = zk ]; then
            started=$(date +%s%3N)
            ZK_PID=$(scripts/zk-reference.sh restart "$ZK_PORT" 2>/dev/null)
            value big-recovery zk $(($(date +%s%3N) - started))
            pid=$ZK_PID
        else
            stop_pid "$PADDOCK_PID"
            out=$(helper startup "$PADDOCK_PORT" "$WORK/paddock.log" "$PADDOCK" serve --config "$WORK/paddock.cfg")
            PADDOCK_PID=${out% *}
            PIDS+=("$PADDOCK_PID")
            value big-recovery pd "${out#* }"
            pid=$PADDOCK_PID
        fi
        value big-rss-after "$side" "$(helper proc "$pid" | cut -d' ' -f1)"
    done
fi
scripts/zk-reference.sh stop "$ZK_PORT" >/dev/null 2>&1
stop_pid "$PADDOCK_PID"

# 3-node ensembles on loopback, one at a time.
ens_rows() { # SIDE PIDS SERVERS
    local spec op clients inflight
    for spec in "${ENSEMBLE_SPECS[@]}"; do
        read -r op clients inflight <<<"$spec"
        measure "ens-$op" "$1" "$2" "$3" "$op" "$clients" "$inflight" "/ens-$op"
    done
}
zk_pids=$(ZK_HEAP=$ZK_ENSEMBLE_HEAP scripts/zk-reference.sh ensemble-start "$ZK_ENSEMBLE_BASE" 2>/dev/null | paste -sd,)
ens_rows zk "$zk_pids" "$(hosts "$ZK_ENSEMBLE_BASE" $((ZK_ENSEMBLE_BASE + 1)) $((ZK_ENSEMBLE_BASE + 2)))"
scripts/zk-reference.sh ensemble-stop "$ZK_ENSEMBLE_BASE" >/dev/null 2>&1

servers=""
for n in 1 2 3; do
    servers+="server.$n=127.0.0.1:$((PADDOCK_ENSEMBLE_BASE + 9 + n)):$((PADDOCK_ENSEMBLE_BASE + 19 + n))"$'\n'
done
pd_pids=()
for n in 1 2 3; do
    paddock_cfg "$WORK/ens$n.cfg" "$WORK/ens$n" $((PADDOCK_ENSEMBLE_BASE + n - 1)) "$servers"
    echo "$n" >"$WORK/ens$n/myid"
    pid=$(helper spawn "$WORK/ens$n.log" "$PADDOCK" serve --config "$WORK/ens$n.cfg")
    PIDS+=("$pid")
    pd_pids+=("$pid")
done
helper wait-serving "$PADDOCK_ENSEMBLE_BASE" $((PADDOCK_ENSEMBLE_BASE + 1)) $((PADDOCK_ENSEMBLE_BASE + 2))
ens_rows pd "$(IFS=,; echo "${pd_pids[*]}")" \
    "$(hosts "$PADDOCK_ENSEMBLE_BASE" $((PADDOCK_ENSEMBLE_BASE + 1)) $((PADDOCK_ENSEMBLE_BASE + 2)))"
for pid in "${pd_pids[@]}"; do stop_pid "$pid"; done

echo
helper table "$ROWS"
