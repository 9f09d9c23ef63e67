#!/usr/bin/env python3
"""Drive the ZooKeeper 3.8 Java client (JavaSession.java, compiled here with javac against the
Debian jars) through the recording proxy and write one vector file per TCP connection:
    OUT_DIR/java_session.txt             first connection (new session, most ops)
    OUT_DIR/java_reconnect_setwatches.txt second connection: same session, setWatches (op 101)
    OUT_DIR/java_reconnect_setwatches2.txt third connection: setWatches2 (op 105), persistent watches
Usage: capture_java.py ZK_PORT OUT_DIR     (python3; no kazoo needed)
The server must be fresh or at least have no /j node.
"""

import os
import subprocess
import sys
import tempfile

from proxy import RecordingProxy
import zkwire

HERE = os.path.dirname(os.path.abspath(__file__))
JARS = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
OUT_NAMES = ["java_session.txt", "java_reconnect_setwatches.txt", "java_reconnect_setwatches2.txt"]


def drive(proxy, zk_port, classes):
    cmd = ["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", JARS + ":" + classes,
           "JavaSession", str(proxy.port), str(zk_port)]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    for line in child.stdout:
        line = line.rstrip("\n")
        if line == "DONE":
            break
        if not line.startswith("STEP "):
            continue
        label = line[5:]
        if label.startswith("HOLD"):
            proxy.hold()
        elif label.startswith("RELEASE"):
            proxy.release()
        elif label.startswith("DROP"):
            proxy.drop_connections()
        proxy.mark("step: " + label)
        child.stdin.write("OK\n")
        child.stdin.flush()
    if child.wait(30) != 0:
        raise SystemExit("JavaSession failed with exit code %d" % child.returncode)


def main(argv):
    zk_port, out_dir = int(argv[1]), argv[2]
    classes = tempfile.mkdtemp(prefix="paddock-javasession-")
    subprocess.run(["javac", "-cp", JARS, "-d", classes, os.path.join(HERE, "JavaSession.java")], check=True)
    proxy = RecordingProxy(0, "127.0.0.1", zk_port).start()
    drive(proxy, zk_port, classes)
    proxy.stop()
    conns = proxy.connections()
    assert len(conns) == len(OUT_NAMES), "expected %d connections, got %d" % (len(OUT_NAMES), len(conns))
    for i, (name, conn) in enumerate(zip(OUT_NAMES, conns)):
        header = [
            "Golden vectors: the Apache ZooKeeper Java client 3.8.0 against Apache ZooKeeper 3.8.0",
            "(Debian zookeeper %s, extendedTypesEnabled=true), connection %d of %d of one session," % (zkwire.debian_zookeeper_version(), i + 1, len(conns)),
            "recorded by core/tests/vectors/capture/capture_java.py (JavaSession.java) through capture/proxy.py.",
            "Format: '# ' comment lines; 'C <hex>' client->server frame, 'S <hex>' server->client frame,",
            "hex = whole frame including its 4-byte length prefix. One TCP connection per file: the first C",
            "frame is the ConnectRequest, the first S frame the ConnectResponse. Comments starting '# ==' mark",
            "the scenario step that the following frames belong to. Session ids, passwords, zxids and times",
            "are run-specific.",
        ]
        zkwire.write_vector_file(os.path.join(out_dir, name), header, conn.frames)
        print("wrote %s: %d frames" % (name, len(conn.frames)))


if __name__ == "__main__":
    main(sys.argv)
