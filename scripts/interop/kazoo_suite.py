#!/usr/bin/env python3
"""kazoo_suite.py: drive a ZooKeeper-protocol server with kazoo 2.11, one normalized line per step.

    kazoo_suite.py --hosts 127.0.0.1:2181,127.0.0.1:2182 [--root /interop-kazoo]
    kazoo_suite.py --hosts ... --failover

Suite mode runs CRUD, ephemeral and sequential nodes, data and children watches, transactions,
digest ACLs and the recipes Lock, Election, Counter, Barrier and Queue under a fresh root znode,
printing `step-name: result` for each step. Results keep what the protocol decides (data,
versions, sequence numbers, error types, event order) and drop what differs from run to run
(zxids, times, session ids), so the outputs of two servers can be diffed line by line. A step that
raises prints `step-name: FAIL <ExceptionType> <message>` and the script exits 1 at the end.

Failover mode is driven line by line over stdin/stdout by a test that kills servers: it prints
`connected-port: N` after creating an ephemeral node, waits for `killed` on stdin, checks that the
same session carries on through another server, waits for `restarted`, and checks again.
"""

import argparse
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.protocol.states import KazooState
from kazoo.security import make_digest_acl

# Upper bound for any single wait on the server (a watch firing, a recipe thread finishing).
WAIT_S = 10.0


class Suite:
    """Runs named steps, prints their normalized results and remembers failures."""

    def __init__(self, hosts, root):
        self.hosts = hosts
        self.root = root
        self.failures = []
        self.clients = []

    def client(self, auth=None):
        # randomize_hosts=False keeps the first connection on the first host, so runs repeat.
        zk = KazooClient(hosts=self.hosts, timeout=10.0, randomize_hosts=False)
        zk.start(timeout=WAIT_S)
        if auth is not None:
            zk.add_auth("digest", auth)
        self.clients.append(zk)
        return zk

    def step(self, name, fn):
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - any failure is reported, not raised
            result = "FAIL %s %s" % (type(e).__name__, e)
            self.failures.append(name)
        print("%s: %s" % (name, result), flush=True)

    def close(self):
        for zk in self.clients:
            try:
                zk.stop()
                zk.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def stat_str(stat):
    """The run-independent fields of a Stat (no zxids, times or owners)."""
    return "version=%d cversion=%d aversion=%d dataLength=%d numChildren=%d ephemeral=%s" % (
        stat.version,
        stat.cversion,
        stat.aversion,
        stat.dataLength,
        stat.numChildren,
        stat.ephemeralOwner != 0,
    )


def raises(fn):
    """Runs fn, expecting an exception; returns its type name (or `no error` and the value)."""
    try:
        value = fn()
    except Exception as e:  # noqa: BLE001 - the type is the result
        return type(e).__name__
    return "no error: %r" % (value,)


def acl_str(acls):
    return ",".join(
        "%s:%s:%d" % (a.id.scheme, a.id.id, a.perms) for a in sorted(acls, key=lambda a: a.id.id)
    )


def wait_for(cond, what):
    deadline = time.monotonic() + WAIT_S
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.02)


def crud_steps(s, zk, r):
    s.step("create", lambda: zk.create(r + "/a", b"alpha"))
    s.step("create-exists", lambda: raises(lambda: zk.create(r + "/a", b"again")))
    s.step("create-no-parent", lambda: raises(lambda: zk.create(r + "/x/y", b"")))
    s.step("create-makepath", lambda: zk.create(r + "/p/q/r", b"deep", makepath=True))
    s.step("ensure-path", lambda: zk.ensure_path(r + "/p/q"))
    s.step("exists-missing", lambda: zk.exists(r + "/missing"))
    s.step("exists", lambda: stat_str(zk.exists(r + "/a")))

    def get_a():
        data, stat = zk.get(r + "/a")
        return "%r %s" % (data, stat_str(stat))

    s.step("get", get_a)
    s.step("get-missing", lambda: raises(lambda: zk.get(r + "/missing")))
    s.step("set", lambda: stat_str(zk.set(r + "/a", b"beta")))
    s.step("set-version-ok", lambda: stat_str(zk.set(r + "/a", b"gamma", version=1)))
    s.step("set-version-bad", lambda: raises(lambda: zk.set(r + "/a", b"x", version=7)))
    s.step("get-after-set", get_a)

    def zxid_order():
        stat = zk.exists(r + "/a")
        return "mzxid>czxid=%s mtime>=ctime=%s" % (stat.mzxid > stat.czxid, stat.mtime >= stat.ctime)

    s.step("stat-order", zxid_order)
    s.step("set-empty", lambda: stat_str(zk.set(r + "/a", b"")))
    s.step("create-empty-data", lambda: zk.create(r + "/empty"))
    s.step("get-empty", lambda: repr(zk.get(r + "/empty")[0]))
    s.step("set-missing", lambda: raises(lambda: zk.set(r + "/missing", b"x")))
    s.step("children", lambda: sorted(zk.get_children(r)))
    s.step("children-stat", lambda: stat_str(zk.get_children(r, include_data=True)[1]))
    s.step("children-missing", lambda: raises(lambda: zk.get_children(r + "/missing")))
    s.step("delete-not-empty", lambda: raises(lambda: zk.delete(r + "/p")))
    s.step("delete-version-bad", lambda: raises(lambda: zk.delete(r + "/empty", version=3)))
    s.step("delete", lambda: zk.delete(r + "/empty", version=0))
    s.step("delete-missing", lambda: raises(lambda: zk.delete(r + "/empty")))
    s.step("delete-recursive", lambda: zk.delete(r + "/p", recursive=True))
    s.step("children-after-delete", lambda: sorted(zk.get_children(r)))
    s.step("bad-path", lambda: raises(lambda: zk.create(r + "/bad//path", b"")))
    s.step("sync", lambda: zk.sync(r))
    s.step("big-data", lambda: stat_str(zk.create(r + "/big", b"z" * 500000, include_data=True)[1]))
    s.step("big-data-get", lambda: len(zk.get(r + "/big")[0]))


def ephemeral_sequential_steps(s, zk, r):
    other = s.client()
    s.step("ephemeral-create", lambda: other.create(r + "/eph", b"e", ephemeral=True))

    def owner():
        stat = zk.exists(r + "/eph")
        return "owner-is-creator=%s %s" % (stat.ephemeralOwner == other.client_id[0], stat_str(stat))

    s.step("ephemeral-owner", owner)
    s.step(
        "ephemeral-child", lambda: raises(lambda: other.create(r + "/eph/child", b"", ephemeral=True))
    )

    def close_other():
        other.stop()
        other.close()
        return zk.exists(r + "/eph")

    s.step("ephemeral-gone-after-close", close_other)
    s.step("sequential-1", lambda: zk.create(r + "/seq/n-", b"1", sequence=True, makepath=True))
    s.step("sequential-2", lambda: zk.create(r + "/seq/n-", b"2", sequence=True))
    s.step("sequential-other-name", lambda: zk.create(r + "/seq/m-", b"3", sequence=True))
    s.step("sequential-after-delete", lambda: seq_after_delete(zk, r))
    s.step(
        "ephemeral-sequential",
        lambda: zk.create(r + "/seq/e-", b"", ephemeral=True, sequence=True),
    )
    s.step("sequential-children", lambda: sorted(zk.get_children(r + "/seq")))


def seq_after_delete(zk, r):
    # The sequence counter is the parent's cversion, which deletes also bump.
    zk.delete(r + "/seq/m-0000000002")
    return zk.create(r + "/seq/n-", b"4", sequence=True)


def watch_steps(s, zk, r):
    data_events = []
    s.step("data-watch-create", lambda: zk.create(r + "/w", b"w0"))

    @zk.DataWatch(r + "/w")
    def on_data(data, stat):  # noqa: ARG001 - stat checked via version below
        data_events.append((data, stat.version if stat else None))

    def data_watch_after(action, count):
        action()
        wait_for(lambda: len(data_events) >= count, "DataWatch call %d" % count)
        return list(data_events)

    s.step("data-watch-initial", lambda: data_watch_after(lambda: None, 1))
    s.step("data-watch-set", lambda: data_watch_after(lambda: zk.set(r + "/w", b"w1"), 2))
    s.step("data-watch-delete", lambda: data_watch_after(lambda: zk.delete(r + "/w"), 3))

    child_events = []
    zk.create(r + "/cw", b"")
    zk.ChildrenWatch(r + "/cw")(lambda children: child_events.append(sorted(children)))

    def child_watch_after(action, count):
        action()
        wait_for(lambda: len(child_events) >= count, "ChildrenWatch call %d" % count)
        return list(child_events)

    s.step("children-watch-initial", lambda: child_watch_after(lambda: None, 1))
    s.step("children-watch-add", lambda: child_watch_after(lambda: zk.create(r + "/cw/c1"), 2))
    s.step("children-watch-add2", lambda: child_watch_after(lambda: zk.create(r + "/cw/c2"), 3))
    s.step("children-watch-remove", lambda: child_watch_after(lambda: zk.delete(r + "/cw/c1"), 4))
    s.step("children-watch-data-change-silent", lambda: silent_child_watch(zk, r, child_events))
    s.step("get-watch", lambda: one_shot_get_watch(zk, r))
    s.step("exists-watch-create", lambda: exists_watch(zk, r))
    s.step("children-one-shot", lambda: children_one_shot(zk, r))


def silent_child_watch(zk, r, child_events):
    # Setting a child's data is not a children change: no new call may arrive.
    before = len(child_events)
    zk.set(r + "/cw/c2", b"data")
    zk.create(r + "/cw-marker", b"")  # a round trip after the set, so an event would be here
    time.sleep(0.3)
    return "calls-added=%d" % (len(child_events) - before)


def collect_events(events):
    return [(e.type, e.state, e.path) for e in events]


def one_shot_get_watch(zk, r):
    events = []
    fired = threading.Event()

    def watcher(event):
        events.append(event)
        fired.set()

    zk.create(r + "/gw", b"g0")
    zk.get(r + "/gw", watch=watcher)
    zk.set(r + "/gw", b"g1")
    if not fired.wait(WAIT_S):
        raise TimeoutError("get watch did not fire")
    zk.set(r + "/gw", b"g2")  # one-shot: this second change must not fire again
    zk.sync(r)
    time.sleep(0.3)
    return collect_events(events)


def exists_watch(zk, r):
    events = []
    fired = threading.Event()

    def watcher(event):
        events.append(event)
        fired.set()

    before = zk.exists(r + "/ew", watch=watcher)
    zk.create(r + "/ew", b"")
    if not fired.wait(WAIT_S):
        raise TimeoutError("exists watch did not fire")
    return "before=%s events=%s" % (before, collect_events(events))


def children_one_shot(zk, r):
    events = []
    fired = threading.Event()

    def watcher(event):
        events.append(event)
        fired.set()

    zk.create(r + "/co", b"")
    zk.get_children(r + "/co", watch=watcher)
    zk.create(r + "/co/x", b"")
    if not fired.wait(WAIT_S):
        raise TimeoutError("children watch did not fire")
    zk.delete(r + "/co/x")
    zk.delete(r + "/co")
    time.sleep(0.3)
    return collect_events(events)


def result_str(results):
    """A transaction's results: paths, stats, True for ops that return nothing, error types."""
    out = []
    for res in results:
        if isinstance(res, Exception):
            out.append(type(res).__name__)
        elif hasattr(res, "version"):
            out.append("stat(version=%d)" % res.version)
        else:
            out.append(repr(res))
    return out


def transaction_steps(s, zk, r):
    zk.create(r + "/t", b"t0")

    def ok():
        t = zk.transaction()
        t.create(r + "/t/a", b"a")
        t.create(r + "/t/s-", b"", sequence=True)
        t.set_data(r + "/t", b"t1", version=0)
        t.check(r + "/t", 1)
        t.delete(r + "/t/a")
        return result_str(t.commit())

    s.step("txn-ok", ok)
    s.step("txn-ok-state", lambda: (sorted(zk.get_children(r + "/t")), zk.get(r + "/t")[0]))

    def failed_check():
        t = zk.transaction()
        t.create(r + "/t/b", b"b")
        t.check(r + "/t", 99)
        t.set_data(r + "/t", b"never")
        return result_str(t.commit())

    s.step("txn-fail-check", failed_check)

    def failed_create():
        t = zk.transaction()
        t.set_data(r + "/t", b"never")
        t.create(r + "/t/s-0000000001", b"dup")
        t.delete(r + "/t/none")
        return result_str(t.commit())

    s.step("txn-fail-exists", failed_create)

    def failed_delete():
        t = zk.transaction()
        t.delete(r + "/t")
        return result_str(t.commit())

    s.step("txn-fail-not-empty", failed_delete)
    s.step("txn-fail-state", lambda: (sorted(zk.get_children(r + "/t")), zk.get(r + "/t")[0]))


def acl_steps(s, zk, r):
    owner = s.client(auth="alice:secret")
    stranger = s.client()
    intruder = s.client(auth="mallory:guess")
    acl = make_digest_acl("alice", "secret", all=True)
    read_only = make_digest_acl("bob", "pw", read=True)
    s.step("acl-create", lambda: owner.create(r + "/acl", b"private", acl=[acl]))
    owner.create(r + "/acl-locked-leaf", b"", acl=[acl])
    s.step("acl-get-acls", lambda: acl_str(owner.get_acls(r + "/acl")[0]))
    s.step("acl-owner-get", lambda: owner.get(r + "/acl")[0])
    s.step("acl-stranger-get", lambda: raises(lambda: stranger.get(r + "/acl")))
    s.step("acl-intruder-set", lambda: raises(lambda: intruder.set(r + "/acl", b"x")))
    s.step("acl-stranger-exists", lambda: stat_str(stranger.exists(r + "/acl")))
    s.step("acl-stranger-get-acls", lambda: raises(lambda: stranger.get_acls(r + "/acl")))
    s.step("acl-stranger-create-child", lambda: raises(lambda: stranger.create(r + "/acl/c", b"")))
    # Delete permission is checked on the parent, so the stranger tries a child of /acl.
    s.step("acl-owner-create-child", lambda: owner.create(r + "/acl/c", b"", acl=[acl]))
    s.step("acl-stranger-delete-child", lambda: raises(lambda: stranger.delete(r + "/acl/c")))
    s.step("acl-stranger-delete-open-parent", lambda: stranger.delete(r + "/acl-locked-leaf"))
    s.step("acl-set-acls-bad-version", lambda: raises(lambda: owner.set_acls(r + "/acl", [acl], 5)))
    s.step("acl-set-acls", lambda: stat_str(owner.set_acls(r + "/acl", [acl, read_only], 0)))
    bob = s.client(auth="bob:pw")
    s.step("acl-bob-get", lambda: bob.get(r + "/acl")[0])
    s.step("acl-bob-set", lambda: raises(lambda: bob.set(r + "/acl", b"no")))

    def late_auth():
        stranger.add_auth("digest", "alice:secret")
        return stranger.get(r + "/acl")[0]

    s.step("acl-add-auth-later", late_auth)
    s.step("acl-owner-delete", lambda: owner.delete(r + "/acl", recursive=True))
    # kazoo replaces an empty ACL list by its default (open) ACL before sending.
    s.step("acl-empty-list", lambda: acl_str(zk.get_acls(zk.create(r + "/noacl", b"", acl=[]))[0]))


def lock_steps(s, zk, r):
    other = s.client()
    lock_a = zk.Lock(r + "/lock", "a")
    lock_b = other.Lock(r + "/lock", "b")
    s.step("lock-acquire", lambda: lock_a.acquire(timeout=WAIT_S))
    s.step("lock-contenders", lambda: lock_a.contenders())
    s.step("lock-other-nonblocking", lambda: lock_b.acquire(blocking=False))
    got = threading.Event()

    def wait_b():
        if lock_b.acquire(timeout=WAIT_S):
            got.set()

    waiter = threading.Thread(target=wait_b)

    def release_hands_over():
        waiter.start()
        wait_for(lambda: len(lock_a.contenders()) == 2, "second lock contender")
        before = got.is_set()
        lock_a.release()
        return "held-before-release=%s acquired-after=%s" % (before, got.wait(WAIT_S))

    s.step("lock-handover", release_hands_over)
    s.step("lock-contenders-after", lambda: lock_b.contenders())
    s.step("lock-release", lambda: lock_b.release())
    waiter.join(WAIT_S)


def election_steps(s, zk, r):
    other = s.client()
    first = zk.Election(r + "/election", "first")
    second = other.Election(r + "/election", "second")
    leader = threading.Event()
    stop_first = threading.Event()
    second_leader = threading.Event()

    def lead_first():
        leader.set()
        stop_first.wait(WAIT_S)

    def lead_second():
        second_leader.set()

    t1 = threading.Thread(target=lambda: first.run(lead_first))
    t1.start()
    s.step("election-first-leads", lambda: leader.wait(WAIT_S))
    t2 = threading.Thread(target=lambda: second.run(lead_second))
    t2.start()

    def contenders():
        wait_for(lambda: len(first.contenders()) == 2, "two election contenders")
        return first.contenders()

    s.step("election-contenders", contenders)
    s.step("election-second-waits", lambda: second_leader.is_set())

    def handover():
        stop_first.set()
        return second_leader.wait(WAIT_S)

    s.step("election-handover", handover)
    t1.join(WAIT_S)
    t2.join(WAIT_S)
    s.step("election-after", lambda: first.contenders())


def counter_steps(s, zk, r):
    counter = zk.Counter(r + "/counter")
    other = s.client().Counter(r + "/counter")

    def add(c, n):
        c += n
        return c.value

    s.step("counter-initial", lambda: counter.value)
    s.step("counter-add", lambda: add(counter, 5))
    s.step("counter-other-sub", lambda: add(other, -2))
    s.step("counter-value", lambda: counter.value)
    s.step("counter-float", lambda: add(zk.Counter(r + "/fcounter", default=0.5), 1.25))


def barrier_steps(s, zk, r):
    barrier = zk.Barrier(r + "/barrier")
    waiter = s.client().Barrier(r + "/barrier")
    s.step("barrier-wait-unset", lambda: waiter.wait(0.2))
    s.step("barrier-create", lambda: barrier.create())
    s.step("barrier-wait-held", lambda: waiter.wait(0.3))
    passed = []
    t = threading.Thread(target=lambda: passed.append(waiter.wait(WAIT_S)))
    t.start()

    def remove():
        time.sleep(0.2)
        result = barrier.remove()
        t.join(WAIT_S)
        return "removed=%s waiter-passed=%s" % (result, passed)

    s.step("barrier-remove", remove)


def queue_steps(s, zk, r):
    queue = zk.Queue(r + "/queue")
    consumer = s.client().Queue(r + "/queue")
    s.step("queue-empty-get", lambda: consumer.get())
    s.step("queue-put", lambda: [queue.put(b"one"), queue.put(b"two"), queue.put(b"three")])
    s.step("queue-put-priority", lambda: queue.put(b"urgent", priority=10))
    s.step("queue-len", lambda: len(consumer))
    s.step("queue-get-order", lambda: [consumer.get() for _ in range(4)])
    s.step("queue-empty-again", lambda: (consumer.get(), len(queue)))
    locking = zk.LockingQueue(r + "/lqueue")
    s.step("lqueue-put-all", lambda: locking.put_all([b"x", b"y"]))
    s.step("lqueue-get-consume", lambda: (locking.get(WAIT_S), locking.consume(), len(locking)))


def run_suite(hosts, root):
    s = Suite(hosts, root)
    zk = s.client()
    try:
        s.step("connect", lambda: zk.state)
        s.step("server-version-major-minor", lambda: zk.server_version()[:2])
        if zk.exists(root):
            zk.delete(root, recursive=True)
        s.step("root", lambda: zk.create(root, b"suite"))
        crud_steps(s, zk, root)
        ephemeral_sequential_steps(s, zk, root)
        watch_steps(s, zk, root)
        transaction_steps(s, zk, root)
        acl_steps(s, zk, root)
        lock_steps(s, zk, root)
        election_steps(s, zk, root)
        counter_steps(s, zk, root)
        barrier_steps(s, zk, root)
        queue_steps(s, zk, root)
        s.step("cleanup", lambda: zk.delete(root, recursive=True))
    finally:
        s.close()
    if s.failures:
        print("failed steps: %s" % " ".join(s.failures), file=sys.stderr)
        return 1
    return 0


def expect_line(word):
    line = sys.stdin.readline().strip()
    if line != word:
        raise RuntimeError("expected %r on stdin, got %r" % (word, line))


def connected_port(zk):
    return zk._connection._socket.getpeername()[1]  # kazoo has no public accessor for this


def run_failover(hosts, root):
    """Keeps one session alive across the kill and restart of the server it is connected to."""
    s = Suite(hosts, root)
    states = []
    zk = s.client()
    zk.add_listener(states.append)
    session_id = zk.client_id[0]
    try:
        if zk.exists(root):
            zk.delete(root, recursive=True)
        s.step("failover-setup", lambda: zk.create(root + "/eph", b"mine", ephemeral=True, makepath=True))
        port = connected_port(zk)
        print("connected-port: %d" % port, flush=True)
        expect_line("killed")

        def carries_on():
            wait_for(lambda: KazooState.CONNECTED in states, "reconnect after the kill")
            zk.set(root + "/eph", b"after-kill")
            return "states=%s same-session=%s moved=%s ephemeral=%r" % (
                states,
                zk.client_id[0] == session_id,
                connected_port(zk) != port,
                zk.get(root + "/eph")[0],
            )

        s.step("failover-after-kill", carries_on)
        s.step("failover-write", lambda: zk.create(root + "/after-kill", b"x"))
        print("ready-for-restart", flush=True)
        expect_line("restarted")

        def restarted_caught_up():
            # A fresh client pinned to the restarted server reads what was written while it was down.
            direct = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10.0)
            direct.start(timeout=WAIT_S)
            s.clients.append(direct)
            direct.sync(root)
            return "children=%s ephemeral=%r" % (
                sorted(direct.get_children(root)),
                direct.get(root + "/eph")[0],
            )

        s.step("failover-restarted-server-has-writes", restarted_caught_up)

        def session_still_alive():
            zk.create(root + "/after-restart", b"y")
            return "same-session=%s children=%s" % (
                zk.client_id[0] == session_id,
                sorted(zk.get_children(root)),
            )

        s.step("failover-session-still-alive", session_still_alive)
        s.step("failover-cleanup", lambda: zk.delete(root, recursive=True))
    finally:
        s.close()
    if s.failures:
        print("failed steps: %s" % " ".join(s.failures), file=sys.stderr)
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", required=True, help="comma-separated host:port list")
    parser.add_argument("--root", default="/interop-kazoo", help="znode the suite works under")
    parser.add_argument("--failover", action="store_true", help="run the kill/restart protocol")
    args = parser.parse_args()
    if args.failover:
        return run_failover(args.hosts, args.root)
    return run_suite(args.hosts, args.root)


if __name__ == "__main__":
    sys.exit(main())
