#!/usr/bin/env python3
"""Record a behaviour transcript of a real ZooKeeper 3.8 server, driven by kazoo 2.11.0, into
zk38_semantics.json: what each operation returned (result or error name) and the full Stat
of the nodes involved, for the tree engineers to replay against Paddock's tree.

Usage (kazoo venv python; the server MUST be fresh, the first steps read the initial tree):
    capture_semantics.py ZK_PORT OUT_FILE

JSON layout:
  {"server": ..., "client": ..., "run_specific": [...], "sessions": {"A": "0x..", ...},
   "steps": [{"step": n, "client": "A", "op": "create", "args": {...},
              "result": ... | null, "error": "NODEEXISTS" | null,
              "stat": {czxid, mzxid, ctime, mtime, version, cversion, aversion,
                       ephemeralOwner, dataLength, numChildren, pzxid} | absent,
              "note": "what this step shows"}, ...]}
`result` holds the op's non-Stat output (path, data as text, children sorted, ACL list,
multi results); the Stat of the reply, when there is one, is under `stat`.
A step whose op is `stat` is a plain exists() used to show a node's Stat after earlier steps.
"""

import json
import socket
import struct
import sys

import kazoo.version
from kazoo.client import KazooClient
from kazoo.exceptions import ZookeeperError
from kazoo.security import ACL, Id, make_digest_acl, make_digest_acl_credential

import zkwire

STAT_FIELDS = ["czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeralOwner", "dataLength", "numChildren", "pzxid"]


def stat_dict(st):
    return {f: getattr(st, f) for f in STAT_FIELDS}


def acl_list(acls):
    return [{"perms": a.perms, "scheme": a.id.scheme, "id": a.id.id} for a in acls]


def plain(value):
    """Turn a kazoo return value into (result, stat) JSON-able parts."""
    if value is None or isinstance(value, (bool, str, int)):
        return value, None
    if hasattr(value, "czxid"):
        return None, stat_dict(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace"), None
    if isinstance(value, tuple) and len(value) == 2 and hasattr(value[1], "czxid") and not hasattr(value, "_fields"):
        first = value[0]
        if isinstance(first, list) and first and isinstance(first[0], ACL):
            first = acl_list(first)
        elif isinstance(first, list):
            first = sorted(first)
        else:
            first, _ = plain(first)
        return first, stat_dict(value[1])
    if isinstance(value, list):
        if value and isinstance(value[0], ACL):
            return acl_list(value), None
        if all(isinstance(v, str) for v in value):
            return sorted(value), None
        return [multi_item(v) for v in value], None
    return repr(value), None


def multi_item(v):
    if isinstance(v, ZookeeperError):
        return {"error": zkwire.err_name(v.code)}
    if hasattr(v, "czxid"):
        return {"stat": stat_dict(v)}
    return {"result": v}


class RawError(Exception):
    """A non-zero err in a raw reply header (stands in for kazoo's ZookeeperError)."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


class RawClient:
    """A bare-socket session, for requests kazoo refuses or rewrites before sending (paths it
    normalises, invalid flags, ops it lacks such as createContainer/createTTL, a top-level check)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.xid = 0
        self.sock.sendall(self._frame(struct.pack(">iqiq", 0, 0, 10000, 0) + self._buf(b"\0" * 16) + b"\0"))
        r = zkwire.Reader(self._read_frame())
        r.int(), r.int()
        self.session_id = r.long()

    @staticmethod
    def _frame(payload):
        return struct.pack(">i", len(payload)) + payload

    @staticmethod
    def _buf(b):
        return struct.pack(">i", len(b)) + b

    def _read_frame(self):
        head = self._read_exact(4)
        return self._read_exact(struct.unpack(">i", head)[0])

    def _read_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise RawError(-4)  # the server closed the connection: CONNECTIONLOSS
            out += chunk
        return out

    def call(self, op, body):
        """Send one request; return the reply body or raise RawError(err)."""
        self.xid += 1
        self.sock.sendall(self._frame(struct.pack(">ii", self.xid, op) + body))
        while True:
            r = zkwire.Reader(self._read_frame())
            xid, _zxid, err = r.int(), r.long(), r.int()
            if xid == self.xid:
                break
        if err != 0:
            raise RawError(err)
        return r

    def create(self, path, op=1, flags=0, ttl=None, data=b""):
        body = self._buf(path.encode("utf-8", "surrogatepass")) + self._buf(data)
        body += struct.pack(">i", 1) + struct.pack(">i", 31) + self._buf(b"world") + self._buf(b"anyone")
        body += struct.pack(">i", flags)
        if op == 21:
            body += struct.pack(">q", ttl)
        r = self.call(op, body)
        path_out = r.ustring()
        if op == 1:
            return path_out
        f = struct.unpack(">qqqqiiiqiiq", r.take(68))
        return path_out, StatTuple(*f)

    def exists(self, path):
        r = self.call(3, self._buf(path.encode("utf-8", "surrogatepass")) + b"\0")
        return StatTuple(*struct.unpack(">qqqqiiiqiiq", r.take(68)))

    def check(self, path, version):
        self.call(13, self._buf(path.encode("utf-8", "surrogatepass")) + struct.pack(">i", version))
        return True


class StatTuple:
    def __init__(self, *fields):
        for name, value in zip(STAT_FIELDS, fields):
            setattr(self, name, value)


class Recorder:
    def __init__(self):
        self.steps = []

    def run(self, client_name, op, args, fn, note=""):
        entry = {"step": len(self.steps) + 1, "client": client_name, "op": op, "args": args}
        try:
            result, stat = plain(fn())
            entry["result"], entry["error"] = result, None
            if stat is not None:
                entry["stat"] = stat
        except (ZookeeperError, RawError) as e:
            entry["result"], entry["error"] = None, zkwire.err_name(e.code)
        except (ValueError, TypeError) as e:
            # kazoo refused the call before sending it: not server behaviour, but recorded so
            # the transcript says why the step has no server answer.
            entry["result"], entry["error"] = None, "CLIENT_REFUSED: %s" % e
        if note:
            entry["note"] = note
        self.steps.append(entry)
        return entry


def initial_tree(rec, a):
    for path in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"]:
        rec.run("A", "getData", {"path": path}, lambda p=path: a.get(p), "initial tree of a fresh server")
        rec.run("A", "getACL", {"path": path}, lambda p=path: a.get_acls(p), "initial ACL")
        rec.run("A", "getChildren2", {"path": path}, lambda p=path: a.get_children(p, include_data=True))
    rec.run("A", "delete", {"path": "/zookeeper/config"}, lambda: a.delete("/zookeeper/config"),
            "special node cannot be deleted")
    rec.run("A", "delete", {"path": "/zookeeper"}, lambda: a.delete("/zookeeper"),
            "special node cannot be deleted (it also has children)")
    rec.run("A", "create", {"path": "/", "flags": 0}, lambda: a.create("/", b"x"), "create of / itself")


def create_modes(rec, a):
    def create(path, data, note, **kw):
        flags = (1 if kw.get("ephemeral") else 0) | (2 if kw.get("sequence") else 0)
        return rec.run("A", "create2", {"path": path, "data": data.decode(), "flags": flags},
                       lambda: a.create(path, data, include_data=True, **kw), note)

    create("/s", b"root", "persistent; stats start with czxid=mzxid=pzxid")
    rec.run("A", "stat", {"path": "/"}, lambda: a.exists("/"), "/ after a child create: cversion, pzxid, numChildren")
    create("/s/p", b"", "persistent, empty data")
    create("/s/e", b"eph", "ephemeral: ephemeralOwner = session A", ephemeral=True)
    create("/s/q-", b"1", "persistent-sequential: suffix = parent's create count so far, %010d", sequence=True)
    create("/s/eq-", b"2", "ephemeral-sequential", ephemeral=True, sequence=True)
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"), "4 creates: cversion 4, pzxid = last child create")
    rec.run("A", "delete", {"path": "/s/p", "version": -1}, lambda: a.delete("/s/p"))
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"),
            "after a child delete: visible cversion counts creates and deletes, pzxid moves")
    create("/s/q-", b"3", "sequence counter is not reused after a delete", sequence=True)
    create("/s/", b"4", "sequential path ending in '/' gives /s/<counter>", sequence=True)
    create("/s/e/child", b"", "children of an ephemeral are refused")
    create("/s/missing/child", b"", "parent missing")
    create("/s/q-0000000002", b"x", "explicit name equal to a sequential one already taken")
    rec.run("A", "getChildren2", {"path": "/s"}, lambda: a.get_children("/s", include_data=True))


def raw_requests(rec, r):
    """Requests sent from a bare socket (client "R"), byte-exact as described in args.
    Paths are encoded as UTF-8 (a lone surrogate as its 3-byte form, as Java writes it)."""
    rec.run("R", "create", {"path": "/s/x", "flags": 0}, lambda: r.create("/s/x"), "a parent for the cases below")
    # Parent = text before the last '/'. A missing parent gives NONODE before the full path is
    # validated, so the cases come in pairs: parent exists (validation error) / parent missing.
    bad_paths = ["/s/x/", "//x", "/s/.", "/s/..", "/s/x/.", "/s//x", "/s/./x", "/s/../x", "s/x", "",
                 "/s/x\u0001", "/s/x\u007f", "/s/x\u0080", "/s/x\ud800", "/s/x\uf8ff", "/s/x\ufff0",
                 "/s/\u00e9t\u00e9", "/s/a b", "/zookeeper/mine"]
    for path in bad_paths:
        rec.run("R", "create", {"path": path, "flags": 0}, lambda p=path: r.create(p),
                "path validation (sent as is, no client-side normalisation)")
    rec.run("R", "exists", {"path": "/s\u0000x"}, lambda: r.exists("/s\u0000x"), "NUL in a read path")
    rec.run("R", "exists", {"path": "//nonsense/"}, lambda: r.exists("//nonsense/"), "reads do not validate paths")
    for flags in (4, 7, -1):
        rec.run("R", "create", {"path": "/s/f%d" % flags, "flags": flags, "opcode": 1},
                lambda f=flags: r.create("/s/f%d" % f, flags=f), "create flags through opcode 1")
    rec.run("R", "createContainer", {"path": "/s/cont", "flags": 4, "opcode": 19},
            lambda: r.create("/s/cont", op=19, flags=4), "container: ephemeralOwner reported 0")
    rec.run("R", "createContainer", {"path": "/s/cont2", "flags": 0, "opcode": 19},
            lambda: r.create("/s/cont2", op=19, flags=0), "opcode 19 with non-container flags")
    for flags, ttl in ((5, 60000), (6, 60000), (5, 0), (5, -1), (0, 60000), (5, 1 << 40), (5, (1 << 40) - 1)):
        rec.run("R", "createTTL", {"path": "/s/ttl", "flags": flags, "ttl": ttl, "opcode": 21},
                lambda f=flags, t=ttl: r.create("/s/ttl", op=21, flags=f, ttl=t),
                "TTL create (extendedTypesEnabled=true): flags and ttl range")
    rec.run("R", "create2", {"path": "/s/c2", "flags": 0, "data": None, "opcode": 15},
            lambda: r.create("/s/c2", op=15), "create2 returns path and Stat")
    rec.run("R", "check", {"path": "/s", "version": -1, "opcode": 13}, lambda: r.check("/s", -1),
            "top-level check: CONNECTIONLOSS here means the server closed the connection without a reply")
    rec.run("R", "exists", {"path": "/s"}, lambda: r.exists("/s"), "is the raw connection still open after that?")


def versions(rec, a):
    rec.run("A", "setData", {"path": "/s", "data": "v1", "version": -1}, lambda: a.set("/s", b"v1"),
            "setData bumps version, mzxid, mtime; not cversion/pzxid")
    rec.run("A", "setData", {"path": "/s", "data": "v2", "version": 1}, lambda: a.set("/s", b"v2", version=1))
    rec.run("A", "setData", {"path": "/s", "data": "v3", "version": 1}, lambda: a.set("/s", b"v3", version=1),
            "stale version")
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"), "a failed setData changes nothing")
    rec.run("A", "setData", {"path": "/nope", "data": "", "version": -1}, lambda: a.set("/nope", b""))
    rec.run("A", "delete", {"path": "/s", "version": -1}, lambda: a.delete("/s"), "delete of a node with children")
    rec.run("A", "delete", {"path": "/s/q-0000000002", "version": 5}, lambda: a.delete("/s/q-0000000002", version=5))
    rec.run("A", "delete", {"path": "/s/q-0000000002", "version": 0}, lambda: a.delete("/s/q-0000000002", version=0))
    rec.run("A", "delete", {"path": "/s/q-0000000002", "version": -1}, lambda: a.delete("/s/q-0000000002"),
            "already deleted")
    rec.run("A", "setACL", {"path": "/s", "acl": "world:anyone ALL", "version": 0},
            lambda: a.set_acls("/s", [ACL(31, Id("world", "anyone"))], version=0),
            "setACL bumps aversion only (mzxid unchanged)")
    rec.run("A", "setACL", {"path": "/s", "acl": "world:anyone ALL", "version": 0},
            lambda: a.set_acls("/s", [ACL(31, Id("world", "anyone"))], version=0), "stale aversion")
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"))


def multis(rec, a):
    def commit(ops, note):
        t = a.transaction()
        desc = []
        for op in ops:
            getattr(t, op[0])(*op[1:])
            desc.append([op[0]] + [x.decode() if isinstance(x, bytes) else x for x in op[1:]])
        return rec.run("A", "multi", {"ops": desc}, t.commit, note)

    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"), "before the failing multi")
    commit([("create", "/s/m1", b"a"), ("create", "/s/p0", b"b"), ("create", "/s/e", b"c"), ("set_data", "/s", b"x")],
           "third op fails: earlier results OK (rolled back), failing one its code, later ones RUNTIMEINCONSISTENCY")
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"), "nothing applied by the failed multi")
    rec.run("A", "stat", {"path": "/s/m1"}, lambda: a.exists("/s/m1"), "not created")
    commit([("check", "/s", 7), ("create", "/s/m1", b"a")], "check with a wrong version")
    commit([("create", "/s/m2", b""), ("create", "/s/m2/kid", b""), ("set_data", "/s/m2", b"d"),
            ("create", "/s/mq-", b"", None, False, True), ("create", "/s/mq-", b"", None, False, True),
            ("check", "/s/m2", 1), ("delete", "/s/m2/kid")],
           "later ops see earlier ones; two sequential creates get consecutive counters; one zxid for all")
    rec.run("A", "stat", {"path": "/s/m2"}, lambda: a.exists("/s/m2"), "czxid = mzxid = pzxid = the multi's zxid")
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"))
    commit([("delete", "/s/m2"), ("delete", "/s/m2")], "second delete of the same node in one multi")


def acls(rec, a, b):
    bob_all = make_digest_acl("bob", "secret", all=True)
    bob_read = make_digest_acl("bob", "secret", read=True)
    rec.run("A", "addAuth", {"scheme": "digest", "auth": "bob:secret"}, lambda: a.add_auth("digest", "bob:secret"))
    rec.run("A", "create", {"path": "/acl", "acl": "digest bob ALL"}, lambda: a.create("/acl", b"secret", acl=[bob_all]))
    rec.run("A", "create", {"path": "/acl/kid", "acl": "digest bob ALL"},
            lambda: a.create("/acl/kid", b"", acl=[bob_all]))
    for op, path, fn in [("getData", "/acl", lambda: b.get("/acl")), ("exists", "/acl", lambda: b.exists("/acl")),
                         ("getChildren", "/acl", lambda: b.get_children("/acl")),
                         ("setData", "/acl", lambda: b.set("/acl", b"x")),
                         ("getACL", "/acl", lambda: b.get_acls("/acl")),
                         ("create", "/acl/x", lambda: b.create("/acl/x", b"")),
                         ("delete", "/acl/kid", lambda: b.delete("/acl/kid")),
                         ("setACL", "/acl", lambda: b.set_acls("/acl", [ACL(31, Id("world", "anyone"))]))]:
        rec.run("B", op, {"path": path}, fn,
                "client B has no auth; /acl is digest bob ALL (create/delete check the parent /acl)")
    rec.run("A", "getACL", {"path": "/acl"}, lambda: a.get_acls("/acl"), "owner sees the digest id")
    rec.run("A", "create", {"path": "/acl2", "acl": "digest bob ALL + world:anyone READ"},
            lambda: a.create("/acl2", b"", acl=[bob_all, ACL(1, Id("world", "anyone"))]))
    rec.run("B", "getACL", {"path": "/acl2"}, lambda: b.get_acls("/acl2"),
            "READ without ADMIN: digest ids masked?")
    rec.run("A", "create", {"path": "/acl3", "acl": "digest bob READ + world:anyone ADMIN"},
            lambda: a.create("/acl3", b"", acl=[bob_read, ACL(16, Id("world", "anyone"))]))
    rec.run("B", "getACL", {"path": "/acl3"}, lambda: b.get_acls("/acl3"), "ADMIN without READ")
    rec.run("B", "getData", {"path": "/acl3"}, lambda: b.get("/acl3"))
    rec.run("A", "create", {"path": "/acl4", "acl": "auth:'' ALL"},
            lambda: a.create("/acl4", b"", acl=[ACL(31, Id("auth", ""))]), "auth scheme expands to the caller's ids")
    rec.run("A", "getACL", {"path": "/acl4"}, lambda: a.get_acls("/acl4"))
    rec.run("B", "create", {"path": "/acl5", "acl": "auth:'' ALL"},
            lambda: b.create("/acl5", b"", acl=[ACL(31, Id("auth", ""))]), "auth scheme with no authenticated id")
    rec.run("A", "create", {"path": "/acl6", "acl": "digest with no ':'"},
            lambda: a.create("/acl6", b"", acl=[ACL(31, Id("digest", "nocolon"))]))
    rec.run("A", "create", {"path": "/acl7", "acl": "unknown scheme"},
            lambda: a.create("/acl7", b"", acl=[ACL(31, Id("nosuch", "x"))]))
    rec.run("A", "create", {"path": "/acl8", "acl": "ip 127.0.0.1 READ|CREATE"},
            lambda: a.create("/acl8", b"", acl=[ACL(5, Id("ip", "127.0.0.1"))]))
    rec.run("B", "getData", {"path": "/acl8"}, lambda: b.get("/acl8"), "ip ACL matches the client address")
    rec.run("B", "create", {"path": "/acl8/k"}, lambda: b.create("/acl8/k", b""))
    rec.run("B", "setData", {"path": "/acl8"}, lambda: b.set("/acl8", b"x"), "no WRITE")
    rec.run("A", "create", {"path": "/acl9", "acl": "ip 10.1.2.0/24 ALL"},
            lambda: a.create("/acl9", b"", acl=[ACL(31, Id("ip", "10.1.2.0/24"))]))
    rec.run("B", "getData", {"path": "/acl9"}, lambda: b.get("/acl9"), "ip ACL not matching")
    rec.run("A", "setACL", {"path": "/acl", "acl": "world:anyone READ", "version": -1},
            lambda: a.set_acls("/acl", [ACL(1, Id("world", "anyone"))]))
    rec.run("B", "getData", {"path": "/acl"}, lambda: b.get("/acl"), "readable after setACL")
    rec.run("A", "setACL", {"path": "/acl", "acl": "world:anyone READ", "version": -1},
            lambda: a.set_acls("/acl", [ACL(1, Id("world", "anyone"))]), "A lost ADMIN by the previous setACL")
    rec.run("B", "addAuth", {"scheme": "digest", "auth": "bob:secret"}, lambda: b.add_auth("digest", "bob:secret"))
    rec.run("B", "getData", {"path": "/acl3"}, lambda: b.get("/acl3"), "after auth B matches digest bob READ")
    rec.run("B", "getACL", {"path": "/acl2"}, lambda: b.get_acls("/acl2"), "with ADMIN the digest id is shown")
    rec.run("A", "digest", {"user": "bob", "password": "secret"},
            lambda: make_digest_acl_credential("bob", "secret"), "kazoo's digest of bob:secret, for reference")


def ephemeral_cleanup(rec, c, a):
    rec.run("C", "create", {"path": "/s/ce", "flags": 1}, lambda: c.create("/s/ce", b"", ephemeral=True))
    rec.run("C", "create", {"path": "/s/ceq-", "flags": 3}, lambda: c.create("/s/ceq-", b"", ephemeral=True, sequence=True))
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"), "before session C closes")
    c.stop()
    c.close()
    rec.run("A", "stat", {"path": "/s"}, lambda: a.exists("/s"),
            "after session C closed: its ephemerals are gone, pzxid = the closeSession zxid")
    rec.run("A", "getChildren", {"path": "/s"}, lambda: a.get_children("/s"))


def main(argv):
    port, out = int(argv[1]), argv[2]
    hosts = "127.0.0.1:%d" % port
    clients = {n: KazooClient(hosts=hosts, timeout=10.0) for n in "ABC"}
    for zk in clients.values():
        zk.start()
    sessions = {n: "%#x" % zk.client_id[0] for n, zk in clients.items()}
    a, b, c = clients["A"], clients["B"], clients["C"]
    rec = Recorder()
    initial_tree(rec, a)
    create_modes(rec, a)
    raw = RawClient(port)
    sessions["R"] = "%#x" % raw.session_id
    raw_requests(rec, raw)
    versions(rec, a)
    multis(rec, a)
    acls(rec, a, b)
    ephemeral_cleanup(rec, c, a)
    rec.run("A", "stat", {"path": "/s/e"}, lambda: a.exists("/s/e"),
            "session A's own ephemeral still there")
    doc = {
        "server": "Apache ZooKeeper (Debian zookeeper %s), standalone, fresh dataDir, "
                  "tickTime 2000, extendedTypesEnabled=true" % zkwire.debian_zookeeper_version(),
        "client": "kazoo %s" % kazoo.version.__version__,
        "recorded_by": "core/tests/vectors/capture/capture_semantics.py",
        "run_specific": ["sessions", "ctime", "mtime", "ephemeralOwner (a session id)",
                         "czxid/mzxid/pzxid and reply zxids are deterministic only for a fresh server and "
                         "this exact script (session creates and error txns take zxids too)"],
        "sessions": sessions,
        "steps": rec.steps,
    }
    for zk in (a, b):
        zk.stop()
        zk.close()
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print("wrote %s: %d steps" % (out, len(rec.steps)))


if __name__ == "__main__":
    main(sys.argv)
