"""Decode ZooKeeper client-protocol frames just enough to annotate a recording, and write
the golden-vector text format.

This is our own small jute reader (the layouts are in docs/protocol.md); it is used only
to write the `# ...` comment line above each frame, never to produce the frame bytes, which
are copied verbatim from the socket. A frame it cannot decode still gets recorded, with a
comment saying so.

Vector file format (one TCP connection per file):
    # comment lines start with '#'
    # <what this frame is>
    C <hex of the whole client->server frame, 4-byte length prefix included>
    # <what this frame is>
    S <hex of the whole server->client frame>
The first C line is the ConnectRequest, the first S line the ConnectResponse.
"""

import struct
import subprocess

OPS = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch", 107: "whoAmI",
    -10: "createSession", -11: "closeSession", -1: "error",
}

ERRORS = {
    0: "OK", -1: "SYSTEMERROR", -2: "RUNTIMEINCONSISTENCY", -3: "DATAINCONSISTENCY",
    -4: "CONNECTIONLOSS", -5: "MARSHALLINGERROR", -6: "UNIMPLEMENTED", -7: "OPERATIONTIMEOUT",
    -8: "BADARGUMENTS", -12: "UNKNOWNSESSION", -13: "NEWCONFIGNOQUORUM",
    -14: "RECONFIGINPROGRESS", -100: "APIERROR", -101: "NONODE", -102: "NOAUTH",
    -103: "BADVERSION", -108: "NOCHILDRENFOREPHEMERALS", -110: "NODEEXISTS", -111: "NOTEMPTY",
    -112: "SESSIONEXPIRED", -113: "INVALIDCALLBACK", -114: "INVALIDACL", -115: "AUTHFAILED",
    -118: "SESSIONMOVED", -119: "NOTREADONLY", -120: "EPHEMERALONLOCALSESSION",
    -121: "NOWATCHER", -122: "REQUESTTIMEOUT", -123: "RECONFIGDISABLED",
    -124: "SESSIONCLOSEDREQUIRESASLAUTH", -125: "QUOTAEXCEEDED", -127: "THROTTLEDOP",
}

EVENT_TYPES = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}


def err_name(code):
    return ERRORS.get(code, "err%d" % code)


class Reader:
    """Sequential big-endian jute reader over one frame payload."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("short frame")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def long(self):
        return struct.unpack(">q", self.take(8))[0]

    def bool(self):
        return self.take(1)[0] != 0

    def buffer(self):
        n = self.int()
        return None if n == -1 else self.take(n)

    def ustring(self):
        b = self.buffer()
        return None if b is None else b.decode("utf-8", "replace")

    def strings(self):
        n = self.int()
        return None if n == -1 else [self.ustring() for _ in range(n)]

    def acls(self):
        n = self.int()
        out = []
        for _ in range(max(n, 0)):
            perms = self.int()
            out.append("%d:%s:%s" % (perms, self.ustring(), self.ustring()))
        return out

    def stat(self):
        f = struct.unpack(">qqqqiiiqiiq", self.take(68))
        return ("stat{czxid=%#x mzxid=%#x version=%d cversion=%d aversion=%d eph=%#x "
                "len=%d children=%d pzxid=%#x}" % (f[0], f[1], f[4], f[5], f[6], f[7], f[8], f[9], f[10]))

    def rest(self):
        return len(self.data) - self.pos


def show_data(b):
    if b is None:
        return "null"
    if len(b) > 24:
        return repr(b[:24]) + "...(%d bytes)" % len(b)
    return repr(b)


def _path_watch(r):
    return "%s watch=%d" % (r.ustring(), r.bool())


def _create(r, op):
    path, data, acl, flags = r.ustring(), r.buffer(), r.acls(), r.int()
    s = "%s data=%s acl=%s flags=%d" % (path, show_data(data), acl, flags)
    if op == 21:
        s += " ttl=%d" % r.long()
    return s


def _multi_ops(r):
    parts = []
    while True:
        typ, done, _err = r.int(), r.bool(), r.int()
        if done:
            return parts
        parts.append("%s(%s)" % (OPS.get(typ, typ), _request_body(r, typ)))


def _request_body(r, op):
    """Describe a request body of opcode `op` (the header is already read)."""
    if op in (1, 15, 19, 21):
        return _create(r, op)
    if op == 2 or op == 13:
        return "%s version=%d" % (r.ustring(), r.int())
    if op in (3, 4, 8, 12):
        return _path_watch(r)
    if op == 5:
        return "%s data=%s version=%d" % (r.ustring(), show_data(r.buffer()), r.int())
    if op in (6, 9, 103, 104):
        return "%s" % r.ustring()
    if op == 7:
        return "%s acl=%s version=%d" % (r.ustring(), r.acls(), r.int())
    if op in (14, 22):
        return "; ".join(_multi_ops(r))
    if op in (17, 18):
        return "%s type=%d" % (r.ustring(), r.int())
    if op == 100:
        return "type=%d scheme=%s auth=%s" % (r.int(), r.ustring(), show_data(r.buffer()))
    if op in (101, 105):
        rel = r.long()
        names = ["data", "exist", "child"] + (["persistent", "recursive"] if op == 105 else [])
        return "relZxid=%#x " % rel + " ".join("%s=%s" % (n, r.strings()) for n in names)
    if op == 106:
        return "%s mode=%d" % (r.ustring(), r.int())
    return ""


def describe_connect_request(payload):
    r = Reader(payload)
    proto, last_zxid, timeout_ms, sid, pw = r.int(), r.long(), r.int(), r.long(), r.buffer()
    ro = ("readOnly=%d" % r.bool()) if r.rest() else "no readOnly byte"
    return ("ConnectRequest protocol=%d lastZxidSeen=%#x timeOut=%d sessionId=%#x passwd=%d bytes %s"
            % (proto, last_zxid, timeout_ms, sid, len(pw or b""), ro))


def describe_connect_response(payload):
    r = Reader(payload)
    proto, timeout_ms, sid, pw = r.int(), r.int(), r.long(), r.buffer()
    ro = ("readOnly=%d" % r.bool()) if r.rest() else "no readOnly byte"
    return ("ConnectResponse protocol=%d timeOut=%d sessionId=%#x passwd=%d bytes %s"
            % (proto, timeout_ms, sid, len(pw or b""), ro))


def describe_request(payload):
    """Return (xid, op, text) for a client frame after the handshake."""
    r = Reader(payload)
    xid, op = r.int(), r.int()
    body = _request_body(r, op)
    name = OPS.get(op, "unknown")
    return xid, op, ("%s %s (op %d, xid %d)" % (name, body, op, xid)).replace("  ", " ")


def _multi_results(r):
    parts = []
    while True:
        typ, done, err = r.int(), r.bool(), r.int()
        if done:
            return parts
        if typ == -1:
            parts.append("error(%s)" % err_name(r.int()))
        elif typ == 1:
            parts.append("create(%s)" % r.ustring())
        elif typ == 15:
            parts.append("create2(%s %s)" % (r.ustring(), r.stat()))
        elif typ == 5:
            parts.append("setData(%s)" % r.stat())
        elif typ == 4:
            parts.append("getData(%s %s)" % (show_data(r.buffer()), r.stat()))
        elif typ == 8:
            parts.append("getChildren(%s)" % r.strings())
        else:
            parts.append("%s" % OPS.get(typ, typ))


def _reply_body(r, op):
    if op == 1:
        return "path=%s" % r.ustring()
    if op in (15, 19, 21):
        return "path=%s %s" % (r.ustring(), r.stat())
    if op in (3, 5, 7):
        return r.stat()
    if op == 4:
        return "data=%s %s" % (show_data(r.buffer()), r.stat())
    if op == 6:
        return "acl=%s %s" % (r.acls(), r.stat())
    if op == 8 or op == 103:
        return "children=%s" % r.strings()
    if op == 12:
        return "children=%s %s" % (r.strings(), r.stat())
    if op == 9:
        return "path=%s" % r.ustring()
    if op in (14, 22):
        return "results: " + "; ".join(_multi_results(r))
    if op == 104:
        return "count=%d" % r.int()
    if op == 106:
        return "ErrorResponse err=%d" % r.int()
    if op == 107:
        n = r.int()
        return "clientInfo=%s" % [(r.ustring(), r.ustring()) for _ in range(max(n, 0))]
    return ""


def describe_reply(payload, pending):
    """Describe a server frame; `pending` maps xid -> op of requests sent so far."""
    r = Reader(payload)
    xid, zxid, err = r.int(), r.long(), r.int()
    if xid == -1:
        typ, state, path = r.int(), r.int(), r.ustring()
        return "watch event %s (type %d) state=%d path=%s (xid -1, zxid %d, err %d)" % (
            EVENT_TYPES.get(typ, "?"), typ, state, path, zxid, err)
    # Pings (-2) and auth (-4) have fixed xids and are answered outside the request queue.
    op = pending.pop(xid, {-2: 11, -4: 100}.get(xid))
    if op is None:
        return "reply to unknown xid %d zxid=%#x err=%s" % (xid, zxid, err_name(err))
    name = OPS.get(op, "?")
    head = "reply to xid %d (%s, op %s): %s zxid=%#x" % (xid, name, op, err_name(err), zxid)
    if err != 0:
        return head + (" header only" if r.rest() == 0 else " +%d body bytes" % r.rest())
    body = _reply_body(r, op)
    return head + (" " + body if body else " header only")


def annotate(frames):
    """frames: list of ('C'|'S', bytes, marks) with bytes = whole frame incl. length prefix.
    Returns the lines of a vector file (without trailing newlines)."""
    lines = []
    pending = {}
    seen_c = seen_s = False
    for direction, frame, marks in frames:
        for m in marks:
            lines.append("# == %s" % m)
        payload = frame[4:]
        try:
            if direction == "C" and not seen_c:
                text = describe_connect_request(payload)
                seen_c = True
            elif direction == "S" and not seen_s:
                text = describe_connect_response(payload)
                seen_s = True
            elif direction == "C":
                xid, op, text = describe_request(payload)
                if xid >= 0 or xid == -8:
                    pending[xid] = op
            else:
                text = describe_reply(payload, pending)
        except (ValueError, UnicodeDecodeError, struct.error) as e:
            text = "undecodable by the annotator (%s)" % e
        lines.append("# " + text)
        lines.append("%s %s" % (direction, frame.hex()))
    return lines


def write_vector_file(path, header_lines, frames):
    with open(path, "w", encoding="utf-8") as f:
        for h in header_lines:
            f.write("# %s\n" % h if h else "#\n")
        for line in annotate(frames):
            f.write(line + "\n")


def debian_zookeeper_version():
    """Version of the installed Debian `zookeeper` package, for the headers of recorded files."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zookeeper"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"
