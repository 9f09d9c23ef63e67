#!/usr/bin/env bash
# zk-reference.sh: a real Apache ZooKeeper 3.8 (Debian package) and kazoo 2.11.0, for
# side-by-side checks against Paddock.
#
#   scripts/zk-reference.sh install          install ZooKeeper (apt) and kazoo with pure-sasl (venv); skips what is present
#   scripts/zk-reference.sh start [PORT]     start a standalone server on 127.0.0.1:PORT (default 21810)
#                                            with a fresh temp dataDir; prints its pid on stdout
#   scripts/zk-reference.sh stop [PORT]      stop the server started on PORT (default 21810)
#   scripts/zk-reference.sh restart [PORT]   stop it and start it again on the same dataDir;
#                                            prints its pid
#   scripts/zk-reference.sh argv [PORT]      write a fresh standalone dataDir and zoo.cfg for PORT
#                                            and print the java command line, one argument a
#                                            line, for callers that start (and time) the server
#                                            themselves; they own the process
#   scripts/zk-reference.sh ensemble-start [BASE]  start a 3-server ensemble on 127.0.0.1 (client
#                                            ports BASE..BASE+2, quorum ports BASE+10..BASE+12,
#                                            election ports BASE+20..BASE+22; default 21830) with
#                                            fresh dataDirs; prints the 3 pids once all serve
#   scripts/zk-reference.sh ensemble-stop [BASE]   stop the ensemble started on BASE
# ZK_HEAP (default 256m) is each server's -Xmx.
#   scripts/zk-reference.sh status [PORT]    print `ruok` answer and pid, exit 1 when not running
#   scripts/zk-reference.sh classpath        print the java classpath used
#   scripts/zk-reference.sh suite HOSTS [ARG...]  run scripts/interop/kazoo_suite.py --hosts HOSTS
#                                            with the venv's python (e.g. to diff two servers by hand)
#
# The server runs `org.apache.zookeeper.server.ZooKeeperServerMain` straight from the jars in
# /usr/share/java (the Debian package's zookeeper.jar lists its dependencies in its manifest
# Class-Path), with every four-letter word whitelisted (kazoo's server_version() needs `envi`),
# `zookeeper.extendedTypesEnabled=true` so TTL nodes (opcode 21) work, no limit on connections per
# client address (maxClientCnxns=0), and the AdminServer off so nothing listens on 8080. Ensemble
# members run `org.apache.zookeeper.server.quorum.QuorumPeerMain`. State lives in
# $PADDOCK_ZK_STATE (default target/zk-ref in the repository)/PORT (zoo.cfg, data/,
# server.log, pid), and for an ensemble in .../ensemble-BASE/N (data/myid as well).
# Environment: KAZOO_VENV (default target/venv-kazoo in the repository). Nothing outside
# the repository is written but the apt package.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
KAZOO_VENV="${KAZOO_VENV:-$ROOT/target/venv-kazoo}"
STATE_ROOT="${PADDOCK_ZK_STATE:-$ROOT/target/zk-ref}"
ZK_JAR=/usr/share/java/zookeeper.jar
# slf4j-simple gives the server a logger (else slf4j falls back to NOP and we lose the log).
CLASSPATH_ZK="$ZK_JAR:/usr/share/java/slf4j-simple.jar"

die() { echo "zk-reference: $*" >&2; exit 1; }

install_all() {
    # One installer at a time (test processes may call this concurrently).
    mkdir -p "$ROOT/target"
    exec 9>"$ROOT/target/.zk-reference-install.lock"
    flock 9
    if [ -f "$ZK_JAR" ] && command -v java >/dev/null 2>&1; then
        echo "zookeeper: present ($(readlink -f "$ZK_JAR"))" >&2
    else
        [ "$(id -u)" = 0 ] || die "need root to apt-get install zookeeper"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >&2
    fi
    # ZooKeeper's AdminServer (Jetty) needs the servlet API, which the package does not
    # pull in (tests/interop_admin.rs turns the AdminServer on).
    if [ ! -f /usr/share/java/servlet-api.jar ]; then
        [ "$(id -u)" = 0 ] || die "need root to apt-get install libservlet-api-java"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libservlet-api-java >&2
    fi
    # pure-sasl: kazoo's SASL (sasl_options), an optional dependency of kazoo.
    if [ -x "$KAZOO_VENV/bin/python" ] &&
        "$KAZOO_VENV/bin/python" -c 'import kazoo.version as v, puresasl; assert v.__version__ == "2.11.0"' 2>/dev/null; then
        echo "kazoo: present ($KAZOO_VENV)" >&2
    else
        python3 -m venv "$KAZOO_VENV"
        "$KAZOO_VENV/bin/pip" install -q kazoo==2.11.0 pure-sasl==0.6.2 >&2
    fi
}

# four_letter PORT WORD: prints the server's answer to a four-letter word, or nothing.
# Uses python because nc is not always installed.
four_letter() {
    python3 - "$1" "$2" <<'EOF' 2>/dev/null || true
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
    s.sendall(sys.argv[2].encode())
    out = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        out += chunk
    print(out.decode(), end="")
except OSError:
    pass
EOF
}

ruok() { four_letter "$1" ruok; }

# serving PORT: true once the server serves sessions. `ruok` says imok as soon as the listener
# is up, while ZooKeeperServer is not running yet and drops new sessions; `srvr` says
# "not currently serving requests" until it is.
serving() { four_letter "$1" srvr | grep -q '^Mode: '; }

# write_config DIR PORT [SERVER_LINES]: a fresh DIR/data and DIR/zoo.cfg for a server whose client
# port is PORT; SERVER_LINES (server.N=... lines) make it an ensemble member.
write_config() {
    local dir="$1" port="$2" servers="${3:-}"
    mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
$servers
EOF
}

# java_argv MAIN_CLASS CFG: the server's command line, one argument a line.
java_argv() {
    printf '%s\n' java "-Xmx${ZK_HEAP:-256m}" \
        -Dzookeeper.extendedTypesEnabled=true \
        -Dzookeeper.4lw.commands.whitelist='*' \
        -Dzookeeper.admin.enableServer=false \
        -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
        -cp "$CLASSPATH_ZK" "$1" "$2"
}

# launch DIR MAIN_CLASS: starts the server configured in DIR/zoo.cfg in the background, with its
# log in DIR/server.log and its pid in DIR/pid; prints nothing.
launch() {
    local dir="$1" args
    mapfile -t args < <(java_argv "$2" "$dir/zoo.cfg")
    # setsid: the server must outlive this script and not get the caller's terminal signals.
    setsid "${args[@]}" >"$dir/server.log" 2>&1 </dev/null &
    echo "$!" >"$dir/pid"
}

# wait_serving DIR PORT: waits until the server of DIR serves sessions on PORT; stops it and
# fails after 120 s or when it exits.
wait_serving() {
    local dir="$1" port="$2" pid i
    pid="$(cat "$dir/pid")"
    for i in $(seq 1 600); do
        if serving "$port"; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$dir/server.log" >&2; die "server exited during start-up"; }
        sleep 0.2
    done
    kill "$pid" 2>/dev/null || true
    tail -n 30 "$dir/server.log" >&2
    die "server did not serve on port $port within 120 s"
}

# check_free DIR PORT: fails when a server this script started from DIR runs, or PORT answers.
check_free() {
    local dir="$1" port="$2"
    [ -f "$ZK_JAR" ] || die "ZooKeeper not installed; run: $0 install"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        die "a server started by this script already runs on port $port (pid $(cat "$dir/pid")); stop it first"
    fi
    if [ "$(ruok "$port")" != "" ]; then die "port $port already answers; choose another"; fi
}

start_server() {
    local port="$1" dir="$STATE_ROOT/$1" keep="${2:-}"
    check_free "$dir" "$port"
    if [ -z "$keep" ]; then
        rm -rf "$dir"
        write_config "$dir" "$port"
    fi
    launch "$dir" org.apache.zookeeper.server.ZooKeeperServerMain
    wait_serving "$dir" "$port"
    cat "$dir/pid"
}

# stop_dir DIR WHAT: stops the server whose pid is in DIR/pid (SIGTERM, SIGKILL after 5 s).
stop_dir() {
    local dir="$1" what="$2"
    [ -f "$dir/pid" ] || { echo "zk-reference: nothing started on $what" >&2; return 0; }
    local pid
    pid="$(cat "$dir/pid")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$dir/pid"
    echo "zk-reference: stopped pid $pid ($what)" >&2
}

stop_server() { stop_dir "$STATE_ROOT/$1" "port $1"; }

argv_server() {
    local port="$1" dir="$STATE_ROOT/$1"
    check_free "$dir" "$port"
    rm -rf "$dir"
    write_config "$dir" "$port"
    java_argv org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg"
}

ensemble_start() {
    local base="$1" root="$STATE_ROOT/ensemble-$1" servers="" n
    for n in 1 2 3; do
        check_free "$root/$n" "$((base + n - 1))"
        servers+="server.$n=127.0.0.1:$((base + 9 + n)):$((base + 19 + n))"$'\n'
    done
    rm -rf "$root"
    for n in 1 2 3; do
        write_config "$root/$n" "$((base + n - 1))" "$servers"
        echo "$n" >"$root/$n/data/myid"
        launch "$root/$n" org.apache.zookeeper.server.quorum.QuorumPeerMain
    done
    for n in 1 2 3; do
        # die exits the subshell only; stop the members, then fail.
        (wait_serving "$root/$n" "$((base + n - 1))") || { ensemble_stop "$base"; exit 1; }
    done
    for n in 1 2 3; do cat "$root/$n/pid"; done
}

ensemble_stop() {
    local n
    for n in 1 2 3; do
        stop_dir "$STATE_ROOT/ensemble-$1/$n" "ensemble $1 member $n"
    done
}

cmd="${1:-}"
port="${2:-21810}"
case "$cmd" in
install) install_all ;;
start) start_server "$port" ;;
stop) stop_server "$port" ;;
restart)
    stop_server "$port"
    start_server "$port" keep
    ;;
argv) argv_server "$port" ;;
ensemble-start) ensemble_start "${2:-21830}" ;;
ensemble-stop) ensemble_stop "${2:-21830}" ;;
status)
    answer="$(ruok "$port")"
    [ "$answer" = "imok" ] || { echo "not running on port $port"; exit 1; }
    echo "imok pid=$(cat "$STATE_ROOT/$port/pid" 2>/dev/null || echo unknown)"
    ;;
classpath) echo "$CLASSPATH_ZK" ;;
suite)
    [ -n "${2:-}" ] || die "usage: $0 suite HOSTS [ARG...]"
    [ -x "$KAZOO_VENV/bin/python" ] || die "kazoo not installed; run: $0 install"
    shift
    hosts="$1"
    shift
    exec "$KAZOO_VENV/bin/python" "$(dirname "$0")/interop/kazoo_suite.py" --hosts "$hosts" "$@"
    ;;
*)
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
