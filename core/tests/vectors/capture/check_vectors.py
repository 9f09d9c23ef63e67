#!/usr/bin/env python3
"""Check that the vector files in core/tests/vectors/ keep the agreed format, so the Rust reader
can rely on it:
  - every line is a '#' comment or 'C <hex>' / 'S <hex>' (lowercase hex, no spaces);
  - every frame line comes right after a '# ' comment line describing it;
  - each frame's 4-byte length prefix equals the rest of the frame;
  - the first C frame is a ConnectRequest (45-byte payload with the readOnly byte), the first S
    frame a ConnectResponse (37 bytes: 16-byte password, readOnly byte);
  - every S reply with xid >= 0 answers an earlier C request with that xid, in FIFO order
    (notifications -1, pings -2 and auth -4 are exempt from the order);
  - zk38_semantics.json parses and every step has op, args and exactly one of result / error.
Usage: check_vectors.py [VECTORS_DIR]; exit status 1 and a message per problem when not.
"""

import glob
import json
import os
import re
import struct
import sys

FRAME_RE = re.compile(r"^([CS]) ([0-9a-f]+)$")


def check_frames(path):
    problems = []
    prev = None
    first = {"C": None, "S": None}
    pending = []  # xids of requests awaiting a reply, in send order
    for n, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        where = "%s:%d" % (os.path.basename(path), n)
        if line.startswith("#") or line == "":
            prev = line
            continue
        m = FRAME_RE.match(line)
        if not m:
            problems.append("%s: not a comment or frame line" % where)
            continue
        if prev is None or not prev.startswith("# "):
            problems.append("%s: frame without a describing comment line before it" % where)
        prev = line
        direction, frame = m.group(1), bytes.fromhex(m.group(2))
        if len(frame) < 4 or struct.unpack(">i", frame[:4])[0] != len(frame) - 4:
            problems.append("%s: length prefix does not match the frame" % where)
            continue
        payload = frame[4:]
        if first[direction] is None:
            first[direction] = payload
            want = 45 if direction == "C" else 37
            if len(payload) != want:
                problems.append("%s: first %s frame is %d bytes, want %d" % (where, direction, len(payload), want))
            continue
        xid = struct.unpack(">i", payload[:4])[0]
        if direction == "C" and xid >= 0:
            pending.append(xid)
        elif direction == "S" and xid >= 0:
            if not pending or pending[0] != xid:
                problems.append("%s: reply xid %d is not the oldest pending request %s" % (where, xid, pending[:1]))
            else:
                pending.pop(0)
    if first["C"] is None or first["S"] is None:
        problems.append("%s: no handshake" % os.path.basename(path))
    return problems


def check_semantics(path):
    problems = []
    doc = json.load(open(path, encoding="utf-8"))
    for step in doc["steps"]:
        if not {"step", "client", "op", "args", "result", "error"} <= step.keys():
            problems.append("step %s: missing keys" % step.get("step"))
        elif step["error"] is not None and step["result"] is not None:
            problems.append("step %s: both result and error" % step["step"])
    return problems


def main(argv):
    vectors = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    problems = []
    files = sorted(glob.glob(os.path.join(vectors, "*.txt")))
    for f in files:
        problems += check_frames(f)
    semantics = os.path.join(vectors, "zk38_semantics.json")
    problems += check_semantics(semantics)
    for p in problems:
        print(p)
    print("%d vector files and %s checked: %s" % (len(files), os.path.basename(semantics),
                                                  "OK" if not problems else "%d problems" % len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
