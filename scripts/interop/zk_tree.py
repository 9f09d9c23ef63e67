"""A tree for the import test (net-real/tests/interop_zk_import.rs), with kazoo.

    zk_tree.py populate --hosts H [--count N]   make a tree of every kind of znode and change;
                                                prints "session SID PASSWORD" (hex) of a session
                                                it leaves open (it owns ephemerals) and exits
                                                without closing it
    zk_tree.py dump --hosts H                   print every znode (but /zookeeper/config), one
                                                line each in path order: path, data (hex), the
                                                full Stat and the ACL list
    zk_tree.py resume --hosts H --session SID --password PASSWORD
                                                resume that session, check it still owns its
                                                ephemerals, close it and check they are gone,
                                                then create /after-import; prints one line per
                                                check and the new node's czxid
"""

import argparse
import binascii
import os
import sys

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError
from kazoo.protocol.serialization import Create, long_struct
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE

ALICE = ("alice", "secret")


class CreateContainer(Create):
    """createContainer (opcode 19), which kazoo has no call for."""

    type = 19


class CreateTtl(Create):
    """createTTL (opcode 21): Create's fields, then the TTL."""

    type = 21
    ttl_ms = 3600 * 1000

    def serialize(self):
        return Create.serialize(self) + long_struct.pack(self.ttl_ms)


def call(zk, request):
    result = zk.handler.async_result()
    zk._call(request, result)
    return result.get(timeout=15)


def client(hosts, **kwargs):
    zk = KazooClient(hosts=hosts, timeout=15.0, **kwargs)
    zk.start(timeout=30)
    zk.add_auth("digest", "%s:%s" % ALICE)
    return zk


def populate(hosts, count):
    zk = client(hosts)
    alice_all = make_digest_acl(ALICE[0], ALICE[1], all=True)
    zk.create("/app", b"root of the app")
    for i in range(count):
        zk.create("/app/n%04d" % i, ("value %d" % i).encode())
        if i % 3 == 0:
            zk.set("/app/n%04d" % i, b"changed once")
            zk.set("/app/n%04d" % i, bytes(range(256)))
        if i % 5 == 0:
            zk.delete("/app/n%04d" % i)
    for _ in range(20):
        zk.create("/app/seq-", b"s", sequence=True)
    zk.create("/deep/a/b/c/d", b"", makepath=True)
    zk.create("/empty", b"")
    zk.create("/containers", b"")
    call(zk, CreateContainer("/containers/c", b"box", list(OPEN_ACL_UNSAFE), 4))
    zk.create("/containers/c/child", b"in the box")
    zk.create("/ttl", b"")
    call(zk, CreateTtl("/ttl/t", b"lives an hour", list(OPEN_ACL_UNSAFE), 5))
    zk.create("/secure", b"alice writes, all read", acl=[alice_all] + list(READ_ACL_UNSAFE))
    zk.create("/private", b"alice only", acl=[alice_all])
    zk.create("/acl-changed", b"x")
    zk.set_acls("/acl-changed", [alice_all])
    zk.set_acls("/acl-changed", list(OPEN_ACL_UNSAFE))
    tx = zk.transaction()
    tx.create("/multi", b"made by a multi")
    tx.set_data("/app", b"root, changed by a multi")
    tx.commit()
    failed = zk.transaction()
    failed.check("/app", version=100)
    failed.create("/never", b"")
    failed.commit()
    try:
        zk.set("/app", b"wrong version", version=100)
    except BadVersionError:
        pass
    # A session that closes: its ephemeral goes with it (a closeSession txn).
    other = client(hosts)
    other.create("/gone-with-its-session", b"", ephemeral=True)
    other.stop()
    other.close()
    zk.create("/eph", b"")
    zk.create("/eph/e1", b"mine", ephemeral=True)
    zk.create("/eph/seq-", b"mine too", ephemeral=True, sequence=True)
    sid, password = zk.client_id
    print("session %x %s" % (sid, binascii.hexlify(password).decode()), flush=True)
    # Leave without closing: the session stays open on the server.
    os._exit(0)


def dump(hosts):
    zk = client(hosts)
    lines = []
    todo = ["/"]
    while todo:
        path = todo.pop()
        if path == "/zookeeper/config":
            continue
        data, stat = zk.get(path)
        acls, _ = zk.get_acls(path)
        acl = ",".join("%s:%s:%d" % (a.id.scheme, a.id.id, a.perms) for a in acls)
        lines.append(
            "%s %s czxid=%x mzxid=%x ctime=%d mtime=%d version=%d cversion=%d aversion=%d "
            "owner=%x len=%d children=%d pzxid=%x acl=%s"
            % (path, binascii.hexlify(data or b"").decode() or "-", stat.czxid, stat.mzxid,
               stat.ctime, stat.mtime, stat.version, stat.cversion, stat.aversion,
               stat.ephemeralOwner, stat.dataLength, stat.numChildren, stat.pzxid, acl))
        for child in zk.get_children(path):
            todo.append(path.rstrip("/") + "/" + child)
    for line in sorted(lines):
        print(line)
    zk.stop()
    zk.close()


def resume(hosts, session, password):
    sid = int(session, 16)
    zk = client(hosts, client_id=(sid, binascii.unhexlify(password)))
    print("resumed %s" % (zk.client_id[0] == sid))
    owned = sorted(c for c in zk.get_children("/eph")
                   if zk.exists("/eph/" + c).ephemeralOwner == sid)
    print("owns %s" % " ".join(owned))
    zk.stop()
    zk.close()
    check = client(hosts)
    print("after close %s" % " ".join(sorted(check.get_children("/eph"))))
    check.create("/after-import", b"")
    print("new czxid %x" % check.exists("/after-import").czxid)
    check.stop()
    check.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["populate", "dump", "resume"])
    parser.add_argument("--hosts", required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--session")
    parser.add_argument("--password")
    args = parser.parse_args()
    if args.mode == "populate":
        populate(args.hosts, args.count)
    elif args.mode == "dump":
        dump(args.hosts)
    else:
        resume(args.hosts, args.session, args.password)


if __name__ == "__main__":
    sys.exit(main())
