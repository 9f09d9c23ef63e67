// JavaSession: drives the Apache ZooKeeper 3.8 Java client through the recording proxy, to capture
// the opcodes kazoo never sends (create2 container/TTL, addWatch, getEphemerals,
// getAllChildrenNumber, whoAmI, multiRead, checkWatches/removeWatches, setWatches/setWatches2 on
// reconnect). Run by capture_java.py, which owns the proxy: before each step this program prints
// "STEP <label>" and waits for a line on stdin, so the label lands right before the step's frames
// and the proxy can cut ("DROP ...") or refuse ("HOLD ...", "RELEASE ...") connections on cue.
//
// Usage: java -cp <zk jars>:capture JavaSession PROXY_PORT ZK_PORT
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.Ids;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class JavaSession {
    static final int SESSION_TIMEOUT_MS = 4000;
    static final BufferedReader IN = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    static final BlockingQueue<WatchedEvent> EVENTS = new LinkedBlockingQueue<>();
    static volatile CountDownLatch connected = new CountDownLatch(1);

    static void step(String label) throws Exception {
        System.out.println("STEP " + label);
        System.out.flush();
        if (IN.readLine() == null) {
            throw new IllegalStateException("orchestrator went away");
        }
    }

    static byte[] b(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static WatchedEvent nextEvent() throws InterruptedException {
        WatchedEvent ev = EVENTS.poll(5, TimeUnit.SECONDS);
        if (ev == null) {
            throw new IllegalStateException("expected a watch event");
        }
        System.err.println("event " + ev);
        return ev;
    }

    static void expectError(String what, KeeperException.Code code, ThrowingRunnable r) throws Exception {
        try {
            r.run();
            throw new IllegalStateException(what + ": expected " + code);
        } catch (KeeperException e) {
            if (e.code() != code) {
                throw e;
            }
        }
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        String proxy = "127.0.0.1:" + args[0];
        String direct = "127.0.0.1:" + args[1];
        Watcher main = ev -> {
            if (ev.getType() == Watcher.Event.EventType.None) {
                if (ev.getState() == Watcher.Event.KeeperState.SyncConnected) {
                    connected.countDown();
                }
            } else {
                EVENTS.add(ev);
            }
        };
        step("connect, new session, timeout " + SESSION_TIMEOUT_MS + " ms");
        ZooKeeper zk = new ZooKeeper(proxy, SESSION_TIMEOUT_MS, main);
        if (!connected.await(10, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no connection");
        }
        basicOps(zk);
        newerOps(zk);
        watchOps(zk);
        reconnectWithSetWatches(zk, direct);
        reconnectWithSetWatches2(zk);
        step("idle for 2.5 s so the Java client pings (xid -2)");
        Thread.sleep(2500);
        step("close (op -11)");
        zk.close();
        System.out.println("DONE");
    }

    static void basicOps(ZooKeeper zk) throws Exception {
        step("addAuthInfo digest alice:pw (op 100, xid -4)");
        zk.addAuthInfo("digest", b("alice:pw"));
        step("create /j with null data (op 1, data length -1)");
        zk.create("/j", null, Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        step("create with Stat: create2 (op 15) /j/p2");
        zk.create("/j/p2", b("p2"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT, new Stat());
        step("create container /j/cont (op 19, flags 4)");
        zk.create("/j/cont", b("c"), Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER);
        step("create TTL node /j/ttl ttl=60000 (op 21, flags 5)");
        zk.create("/j/ttl", b("t"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, new Stat(), 60000);
        step("create sequential TTL node /j/ttlseq- ttl=60000 (op 21, flags 6)");
        zk.create("/j/ttlseq-", b("t"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, new Stat(), 60000);
        step("create ephemeral /j/e1 with CREATOR_ALL_ACL (auth expansion), ephemeral-sequential /j/cont/e2");
        zk.create("/j/e1", b("e"), Ids.CREATOR_ALL_ACL, CreateMode.EPHEMERAL);
        zk.create("/j/cont/e2", b("e"), Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL);
        step("getACL /j/e1 (auth:'' expanded to digest alice)");
        zk.getACL("/j/e1", new Stat());
        step("sync /j");
        CountDownLatch synced = new CountDownLatch(1);
        zk.sync("/j", (rc, path, ctx) -> synced.countDown(), null);
        synced.await(5, TimeUnit.SECONDS);
    }

    static void newerOps(ZooKeeper zk) throws Exception {
        step("getEphemerals prefix / (op 103)");
        zk.getEphemerals("/");
        step("getEphemerals prefix /j/cont (op 103)");
        zk.getEphemerals("/j/cont");
        step("getAllChildrenNumber /j (op 104)");
        zk.getAllChildrenNumber("/j");
        step("getAllChildrenNumber / (op 104)");
        zk.getAllChildrenNumber("/");
        step("whoAmI (op 107)");
        zk.whoAmI();
        step("multiRead (op 22): getData /j/p2, getData /j/missing, getChildren /j");
        try {
            zk.multi(Arrays.asList(Op.getData("/j/p2"), Op.getData("/j/missing"), Op.getChildren("/j")));
        } catch (KeeperException e) {
            System.err.println("multiRead: " + e);
        }
        step("multi (op 14) with create2-style ops: create container, create TTL, delete");
        zk.multi(Arrays.asList(
                Op.create("/j/mc", b(""), Ids.OPEN_ACL_UNSAFE, CreateMode.CONTAINER),
                Op.create("/j/mt", b(""), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_WITH_TTL, 5000),
                Op.create("/j/mp", b(""), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT),
                Op.delete("/j/mp", -1)));
    }

    static void watchOps(ZooKeeper zk) throws Exception {
        Watcher dataWatcher = ev -> EVENTS.add(ev);
        step("addWatch /j PERSISTENT_RECURSIVE (op 106, mode 1)");
        zk.addWatch("/j", AddWatchMode.PERSISTENT_RECURSIVE);
        step("create /j/cont/kid under the recursive watch -> NodeCreated /j/cont/kid");
        zk.create("/j/cont/kid", b("k"), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        nextEvent();
        step("setData /j/p2 under the recursive watch -> NodeDataChanged /j/p2");
        zk.setData("/j/p2", b("p2b"), -1);
        nextEvent();
        step("addWatch /j/cont PERSISTENT (op 106, mode 0)");
        zk.addWatch("/j/cont", AddWatchMode.PERSISTENT);
        step("delete /j/cont/kid -> events from the persistent and recursive watches");
        zk.delete("/j/cont/kid", -1);
        nextEvent();
        step("removeAllWatches /j type Any (op 18) removes the recursive watch");
        zk.removeAllWatches("/j", Watcher.WatcherType.Any, false);
        step("removeAllWatches /j/cont type Any (op 18)");
        zk.removeAllWatches("/j/cont", Watcher.WatcherType.Any, false);
        EVENTS.clear();
        step("getData /j/ttl with a watcher, then removeWatches(watcher, Data) sends checkWatches (op 17)");
        zk.getData("/j/ttl", dataWatcher, new Stat());
        zk.removeWatches("/j/ttl", dataWatcher, Watcher.WatcherType.Data, false);
        step("removeAllWatches /j/p2 type Data with no watch -> NOWATCHER (op 18)");
        try {
            zk.removeAllWatches("/j/p2", Watcher.WatcherType.Data, false);
        } catch (KeeperException e) {
            System.err.println("removeAllWatches: " + e);
        }
        EVENTS.clear();
    }

    static void reconnectWithSetWatches(ZooKeeper zk, String direct) throws Exception {
        step("set one-shot watches: getData /j/p2, exists /j/later (missing), getChildren /j/cont, getData /j/ttl");
        zk.getData("/j/p2", true, new Stat());
        zk.exists("/j/later", true);
        zk.getChildren("/j/cont", true);
        zk.getData("/j/ttl", true, new Stat());
        connected = new CountDownLatch(1);
        step("HOLD: cut the connection and refuse reconnects while another client changes the tree");
        ZooKeeper other = new ZooKeeper(direct, SESSION_TIMEOUT_MS, ev -> { });
        other.setData("/j/p2", b("changed-while-away"), -1);
        other.create("/j/later", b(""), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        other.close();
        step("RELEASE: reconnect, same session; setWatches (op 101, xid -8) with catch-up events");
        if (!connected.await(15, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no reconnection");
        }
        Thread.sleep(300);
        EVENTS.clear();
        step("getData /j/ttl still watched after reconnect; setData fires NodeDataChanged");
        zk.setData("/j/ttl", b("t2"), -1);
        nextEvent();
    }

    static void reconnectWithSetWatches2(ZooKeeper zk) throws Exception {
        step("addWatch /j PERSISTENT_RECURSIVE again, and getChildren watch on /j");
        zk.addWatch("/j", AddWatchMode.PERSISTENT_RECURSIVE);
        zk.getChildren("/j", true);
        connected = new CountDownLatch(1);
        step("DROP: cut the connection; the client reconnects at once with setWatches2 (op 105)");
        if (!connected.await(15, TimeUnit.SECONDS)) {
            throw new IllegalStateException("no reconnection");
        }
        Thread.sleep(300);
        EVENTS.clear();
        step("create /j/after under the restored recursive watch -> NodeCreated, and NodeChildrenChanged /j");
        zk.create("/j/after", b(""), Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        nextEvent();
    }
}
