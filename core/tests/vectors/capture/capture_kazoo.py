#!/usr/bin/env python3
"""Drive one kazoo 2.11.0 session through the recording proxy against a real ZooKeeper 3.8
and write kazoo_session.txt (see ../README.md for the format and how to re-capture).

Usage (with the kazoo venv's python):
    capture_kazoo.py ZK_PORT OUT_FILE
The server must be fresh or at least have no /vec node.
"""

import sys
import threading
import time

import kazoo.version
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NotEmptyError
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE

from proxy import RecordingProxy
import zkwire

SESSION_TIMEOUT_S = 4.0  # the server's minimum (2 x tickTime); kazoo then pings after ~1.3 s idle


def run(zk, proxy):
    m = proxy.mark
    events = []
    fired = threading.Event()

    def on_event(ev):
        events.append(ev)
        fired.set()

    def wait_event():
        assert fired.wait(5), "watch event did not arrive"
        fired.clear()

    m("step: create persistent /vec (op 1, flags 0)")
    zk.create("/vec", b"root")
    m("step: create ephemeral /vec/eph (flags 1)")
    zk.create("/vec/eph", b"e", ephemeral=True)
    m("step: create persistent-sequential /vec/seq- (flags 2)")
    zk.create("/vec/seq-", b"s", sequence=True)
    m("step: create ephemeral-sequential /vec/eseq- (flags 3)")
    zk.create("/vec/eseq-", b"", ephemeral=True, sequence=True)
    m("step: create with include_data=True (op 15 create2)")
    zk.create("/vec/c2", b"with-stat", include_data=True)
    m("step: getData /vec")
    zk.get("/vec")
    m("step: setData /vec version=-1")
    zk.set("/vec", b"root-v2")
    m("step: setData /vec with matching version=1")
    zk.set("/vec", b"root-v3", version=1)
    m("step: getChildren2 /vec (get_children include_data=True, op 12)")
    zk.get_children("/vec", include_data=True)
    m("step: plain getChildren /vec (op 8)")
    zk.get_children("/vec")
    m("step: exists on a missing node -> NONODE")
    zk.exists("/vec/missing")
    m("step: exists on an existing node -> Stat")
    zk.exists("/vec/eph")
    m("step: create of an existing node -> NODEEXISTS")
    try:
        zk.create("/vec", b"again")
    except NodeExistsError:
        pass
    m("step: delete of a non-empty node -> NOTEMPTY")
    try:
        zk.delete("/vec")
    except NotEmptyError:
        pass

    m("step: multi that fails: create ok, check bad version, setData -> [OK, BADVERSION, RUNTIMEINCONSISTENCY]")
    t = zk.transaction()
    t.create("/vec/t1", b"t")
    t.check("/vec", 99)
    t.set_data("/vec", b"never")
    t.commit()
    m("step: multi that succeeds: create, check, setData, delete")
    t = zk.transaction()
    t.create("/vec/t2", b"t")
    t.check("/vec", 2)
    t.set_data("/vec/c2", b"in-multi")
    t.delete("/vec/t2")
    t.commit()

    m("step: getData watch on /vec/w, then setData fires NodeDataChanged")
    zk.create("/vec/w", b"w0")
    zk.get("/vec/w", watch=on_event)
    zk.set("/vec/w", b"w1")
    wait_event()
    m("step: exists watch on missing /vec/x, then create fires NodeCreated")
    zk.exists("/vec/x", watch=on_event)
    zk.create("/vec/x", b"")
    wait_event()
    m("step: getChildren watch on /vec/x, then child create fires NodeChildrenChanged")
    zk.get_children("/vec/x", watch=on_event)
    zk.create("/vec/x/child", b"")
    wait_event()
    m("step: getData watch on /vec/x/child, then delete fires NodeDeleted")
    zk.get("/vec/x/child", watch=on_event)
    zk.delete("/vec/x/child")
    wait_event()

    m("step: add_auth digest bob:secret (op 100, xid -4)")
    zk.add_auth("digest", "bob:secret")
    bob_all = make_digest_acl("bob", "secret", all=True)
    m("step: create /vec/secure with ACL digest bob:<hash> ALL")
    zk.create("/vec/secure", b"s", acl=[bob_all])
    m("step: getACL /vec/secure")
    zk.get_acls("/vec/secure")
    m("step: setACL /vec/secure to [digest bob ALL, world:anyone READ] version=0")
    zk.set_acls("/vec/secure", [bob_all, OPEN_ACL_UNSAFE[0].__class__(1, OPEN_ACL_UNSAFE[0].id)], version=0)
    m("step: getACL /vec/secure after setACL")
    zk.get_acls("/vec/secure")
    m("step: sync /vec")
    zk.sync("/vec")
    m("step: idle for 3 s so kazoo sends a ping (xid -2, op 11)")
    time.sleep(3.0)
    m("step: delete /vec/eph version=0")
    zk.delete("/vec/eph", version=0)
    m("step: close (op -11)")
    zk.stop()
    zk.close()
    return events


def main(argv):
    zk_port, out = int(argv[1]), argv[2]
    proxy = RecordingProxy(0, "127.0.0.1", zk_port).start()
    zk = KazooClient(hosts="127.0.0.1:%d" % proxy.port, timeout=SESSION_TIMEOUT_S)
    proxy.mark("step: connect, new session, timeout %d ms" % int(SESSION_TIMEOUT_S * 1000))
    zk.start()
    events = run(zk, proxy)
    time.sleep(0.5)
    proxy.stop()
    conns = proxy.connections()
    assert len(conns) == 1, "expected one connection, got %d" % len(conns)
    header = [
        "Golden vectors: one kazoo %s session against Apache ZooKeeper (Debian zookeeper %s),"
        % (kazoo.version.__version__, zkwire.debian_zookeeper_version()),
        "recorded by core/tests/vectors/capture/capture_kazoo.py through capture/proxy.py.",
        "Format: '# ' comment lines; 'C <hex>' client->server frame, 'S <hex>' server->client frame,",
        "hex = whole frame including its 4-byte length prefix. One TCP connection per file: the first C",
        "frame is the ConnectRequest, the first S frame the ConnectResponse. Comments starting '# ==' mark",
        "the scenario step that the following frames belong to. Session ids, passwords, zxids and times",
        "are run-specific.",
    ]
    zkwire.write_vector_file(out, header, conns[0].frames)
    print("wrote %s: %d frames, %d watch events seen by kazoo" % (out, len(conns[0].frames), len(events)))


if __name__ == "__main__":
    main(sys.argv)
