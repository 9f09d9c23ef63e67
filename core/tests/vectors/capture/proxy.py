#!/usr/bin/env python3
"""A recording TCP proxy for the ZooKeeper client protocol.

It listens on 127.0.0.1:<listen_port>, opens one upstream connection to the real server per
accepted client connection, forwards bytes both ways unchanged and as soon as they arrive,
and, on the side, splits each direction into frames on the 4-byte big-endian length prefix.
Every frame is recorded whole (prefix included) with its direction ('C' client->server,
'S' server->client), in the order the proxy read them. A connection whose first 4 bytes are
a four-letter word (e.g. kazoo's `envi`) is forwarded but not framed.

Used as a library by the capture scripts (`RecordingProxy`: start, mark, drop_connections,
connections, stop), or alone:
    proxy.py LISTEN_PORT UPSTREAM_HOST:PORT OUT_PREFIX
records until Ctrl-C or SIGTERM, then writes OUT_PREFIX-<n>.txt, one vector file per connection.
"""

import signal
import socket
import struct
import sys
import threading

# jute.maxbuffer default: anything longer cannot be a frame length (four-letter words are).
MAX_FRAME_LEN = 0xFFFFF


class Connection:
    """One proxied client connection and its recorded frames."""

    def __init__(self, index, client, upstream):
        self.index = index
        self.client = client
        self.upstream = upstream
        self.frames = []  # (direction, frame bytes, [marks])
        self.four_letter_word = None
        self.closed = threading.Event()


class RecordingProxy:
    def __init__(self, listen_port, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", listen_port))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        self.pending_marks = []
        self.stopping = False
        self.holding = False

    def start(self):
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def mark(self, label):
        """Attach `label` to the next frame recorded (on any connection)."""
        with self.lock:
            self.pending_marks.append(label)

    def connections(self):
        """Framed connections (four-letter-word connections left out), in accept order."""
        with self.lock:
            return [c for c in self.conns if c.four_letter_word is None]

    def drop_connections(self):
        """Cut every open connection (both sides), as a network failure would."""
        with self.lock:
            live = [c for c in self.conns if not c.closed.is_set()]
        for c in live:
            self._close(c)
            c.closed.wait(5)

    def hold(self):
        """Cut every open connection and refuse new ones (accept, then close at once, recording
        nothing) until release(): a server the client cannot reach for a while."""
        self.holding = True
        self.drop_connections()

    def release(self):
        self.holding = False

    def stop(self):
        self.stopping = True
        self.listener.close()
        self.drop_connections()

    def _accept_loop(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.holding:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                conn = Connection(len(self.conns) + 1, client, upstream)
                self.conns.append(conn)
            done = [threading.Event(), threading.Event()]
            threading.Thread(target=self._pump, args=(conn, client, upstream, "C", done[0]), daemon=True).start()
            threading.Thread(target=self._pump, args=(conn, upstream, client, "S", done[1]), daemon=True).start()
            threading.Thread(target=self._reap, args=(conn, done), daemon=True).start()

    def _reap(self, conn, done):
        for d in done:
            d.wait()
        conn.closed.set()

    def _close(self, conn):
        for s in (conn.client, conn.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _record(self, conn, direction, frame):
        with self.lock:
            conn.frames.append((direction, frame, self.pending_marks))
            self.pending_marks = []

    def _pump(self, conn, src, dst, direction, done):
        buf = b""
        first = True
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if first and direction == "C" and len(buf) >= 4:
                    first = False
                    (n,) = struct.unpack(">i", buf[:4])
                    if n < 0 or n > MAX_FRAME_LEN:
                        conn.four_letter_word = buf[:4].decode("ascii", "replace")
                if conn.four_letter_word is None:
                    buf = self._split(conn, direction, buf)
                # Record first, forward after: the peer cannot answer a frame before it is in
                # the recording, so a reply never lands ahead of its request.
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            # One side ended: end the other too, as a real peer would see it.
            self._close(conn)
            done.set()

    def _split(self, conn, direction, buf):
        while len(buf) >= 4:
            (n,) = struct.unpack(">i", buf[:4])
            if len(buf) < 4 + n:
                break
            self._record(conn, direction, buf[:4 + n])
            buf = buf[4 + n:]
        return buf


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    import zkwire  # noqa: E402  (sibling module; only needed for the CLI output)

    host, port = argv[2].rsplit(":", 1)
    proxy = RecordingProxy(int(argv[1]), host, int(port)).start()
    print("recording on 127.0.0.1:%d -> %s; Ctrl-C or SIGTERM to stop" % (proxy.port, argv[2]), file=sys.stderr)
    # Explicit handlers: a background job of a non-interactive shell starts with SIGINT ignored.
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    proxy.stop()
    for c in proxy.connections():
        path = "%s-%d.txt" % (argv[3], c.index)
        zkwire.write_vector_file(path, ["recorded by proxy.py from %s" % argv[2]], c.frames)
        print("wrote %s (%d frames)" % (path, len(c.frames)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
