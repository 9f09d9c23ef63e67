#!/usr/bin/env bash
# snapshot-catchup.sh [N]: a 3-server ensemble on loopback loads N znodes of 128 B (default
# 10^6), then a follower is killed (-9), its dataDir wiped (myid kept) and restarted; prints
# how long until `srvr` shows it at the leader's zxid, and its peak and final RSS.
# Needs release builds: cargo build --release -p paddock-net-real --bin paddock, then
# cargo build --release -p paddock-benches --bin paddock-load (separately: building the
# simulator in the same command turns on core's debug_invariants for the server too).
set -u
N=${1:-1000000}
cd "$(dirname "$0")/.."
B=target/release/paddock
D=${WORK:-/tmp/paddock-snapshot-catchup}; rm -rf $D; mkdir -p $D
for i in 1 2 3; do
  mkdir -p $D/n$i; echo $i > $D/n$i/myid
  printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=2318%d\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\n4lw.commands.whitelist=*\nserver.1=127.0.0.1:23881:23981\nserver.2=127.0.0.1:23882:23982\nserver.3=127.0.0.1:23883:23983\n%s' $D/n$i $i "${EXTRA:-}" > $D/zoo$i.cfg
  $B serve --config $D/zoo$i.cfg > $D/log$i 2>&1 & echo $! > $D/pid$i
done
flw() { python3 -c '
import socket,sys
try:
    s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),timeout=1); s.sendall(b"srvr"); d=b""
    while True:
        c=s.recv(4096)
        if not c: break
        d+=c
    print(d.decode())
except OSError: pass' 2318$1; }
mode() { flw $1 | sed -n 's/^Mode: //p'; }
zxid() { flw $1 | sed -n 's/^Zxid: //p'; }
sleep 3
L=0; for i in 1 2 3; do [ "$(mode $i)" = leader ] && L=$i; done
echo "leader $L"
target/release/paddock-load --server 127.0.0.1:2318$L --op create --clients 16 --inflight 16 --size 128 --count $N --seconds 3600 --warmup 0 --prefix /big > /dev/null 2>$D/load.err
tail -1 $D/load.err
F=$(( L % 3 + 1 ))
kill -9 $(cat $D/pid$F); wait $(cat $D/pid$F) 2>/dev/null
find $D/n$F -mindepth 1 ! -name myid -delete
sleep 1
LZ=$(zxid $L); echo "leader zxid $LZ; follower $F wiped"
S=$(date +%s%3N)
$B serve --config $D/zoo$F.cfg > $D/log${F}b 2>&1 & echo $! > $D/pid$F
P=$(cat $D/pid$F)
while [ "$(zxid $F)" != "$LZ" ]; do sleep 0.05; done
echo "caught up in $(( $(date +%s%3N) - S )) ms; follower peak $(grep VmHWM /proc/$P/status) now $(grep VmRSS /proc/$P/status)"
grep -h "sending a snapshot" $D/log$L | tail -2
echo "longest event-loop steps on the follower:"
grep "slow event-loop" $D/log${F}b | grep -o 'input="[a-z-]*" busy_us=[0-9]*' | sort -t= -k3 -n | tail -3
for i in 1 2 3; do kill $(cat $D/pid$i) 2>/dev/null; done; wait 2>/dev/null
