//! The private network and its fault knobs, as root: reachability, partitions, loss,
//! bandwidth, heal, cleanup on drop, coexisting networks and the sweep of stale
//! namespaces. Tests run in parallel, so each uses its own prefix (`pdt{pid}{tag}`; the
//! `pdt` root keeps them apart from real runs' `pdc`), and every socket lives on a thread
//! of its own that entered a namespace.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use paddock_chaos::netns::{self, NetError, Network};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Root and the tools (installed when missing).
fn setup() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests need root (network namespaces, nftables)"
    );
    netns::ensure_tools().unwrap();
}

/// A fresh network with a prefix unique to the calling test.
fn network(tag: &str, servers: usize) -> Arc<Network> {
    setup();
    let prefix = format!("pdt{}{tag}", std::process::id());
    Arc::new(Network::create(&prefix, servers).unwrap())
}

/// The namespaces `ip netns list` shows that start with `prefix`.
fn listed(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

/// Where a socket lives.
#[derive(Clone, Copy, Debug)]
enum At {
    Clients,
    Server(usize),
}

fn enter(net: &Network, at: At) {
    match at {
        At::Clients => net.enter_clients().unwrap(),
        At::Server(i) => net.enter_server(i).unwrap(),
    }
}

/// A listener in server `i`'s namespace that writes `send` bytes to every connection;
/// stops when dropped.
struct Listener {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Listener {
    fn start(net: &Arc<Network>, i: usize, send: usize) -> Listener {
        let (net, stop) = (Arc::clone(net), Arc::new(AtomicBool::new(false)));
        let (tx, rx) = mpsc::channel();
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            net.enter_server(i).unwrap();
            let listener = TcpListener::bind((net.server_ip(i), 0)).unwrap();
            listener.set_nonblocking(true).unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        let _ = stream.write_all(&vec![7u8; send]);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Listener {
            addr: rx.recv().unwrap(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether a TCP connect from `from` to `to` succeeds within [`CONNECT_TIMEOUT`].
fn connects(net: &Arc<Network>, from: At, to: SocketAddr) -> bool {
    let net = Arc::clone(net);
    thread::spawn(move || {
        enter(&net, from);
        let started = Instant::now();
        let outcome = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "connect took too long"
        );
        outcome.is_ok()
    })
    .join()
    .unwrap()
}

// The addresses, names and the exec prefix follow the documented scheme.
#[test]
fn names_and_addresses_follow_the_scheme() {
    let net = network("n", 2);
    let prefix = format!("pdt{}n", std::process::id());
    assert_eq!(net.servers(), 2);
    assert_eq!(net.server_ns(2), format!("{prefix}-s2"));
    assert_eq!(net.client_ns(), format!("{prefix}-c"));
    assert_eq!(net.switch_ns(), format!("{prefix}-sw"));
    assert_eq!(net.server_ip(1), Ipv4Addr::new(10, 77, 0, 1));
    assert_eq!(net.client_ip(), Ipv4Addr::new(10, 77, 0, 100));
    assert_eq!(
        net.exec_prefix(1),
        ["ip", "netns", "exec", &format!("{prefix}-s1")]
    );
    let mut listed = listed(&prefix);
    listed.sort();
    assert_eq!(
        listed,
        ["c", "s1", "s2", "sw"].map(|r| format!("{prefix}-{r}"))
    );
    // The address really is there, on eth0, in server 2's namespace.
    let mut cmd = net.exec_prefix(2);
    cmd.extend(["ip", "-4", "-o", "addr", "show", "dev", "eth0"].map(str::to_owned));
    let out = Command::new(&cmd[0]).args(&cmd[1..]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.77.0.2/24"));
}

// Reachability from the clients and between servers; a partition cuts exactly the pairs
// across groups; heal restores them; 100% loss on a server cuts it off; heal restores.
#[test]
fn partition_loss_and_heal() {
    let net = network("p", 3);
    let listeners: Vec<Listener> = (1..=3).map(|i| Listener::start(&net, i, 0)).collect();
    let addr = |i: usize| listeners[i - 1].addr;
    assert_eq!(addr(2).ip(), Ipv4Addr::new(10, 77, 0, 2));

    for i in 1..=3 {
        assert!(connects(&net, At::Clients, addr(i)), "clients -> s{i}");
    }
    assert!(connects(&net, At::Server(1), addr(2)));

    net.partition(&[vec![1], vec![2, 3]]).unwrap();
    assert!(
        !connects(&net, At::Server(1), addr(2)),
        "s1 -> s2 across the cut"
    );
    assert!(
        !connects(&net, At::Server(2), addr(1)),
        "s2 -> s1 across the cut"
    );
    assert!(
        connects(&net, At::Server(2), addr(3)),
        "s2 -> s3 inside a group"
    );
    assert!(
        connects(&net, At::Server(3), addr(2)),
        "s3 -> s2 inside a group"
    );
    for i in 1..=3 {
        assert!(
            connects(&net, At::Clients, addr(i)),
            "clients -> s{i} under partition"
        );
    }

    // A new partition replaces the old one.
    net.partition(&[vec![1, 2], vec![3]]).unwrap();
    assert!(connects(&net, At::Server(1), addr(2)));
    assert!(!connects(&net, At::Server(2), addr(3)));

    net.heal().unwrap();
    assert!(
        connects(&net, At::Server(1), addr(2)),
        "s1 -> s2 after heal"
    );
    assert!(
        connects(&net, At::Server(2), addr(3)),
        "s2 -> s3 after heal"
    );

    net.loss(2, 100).unwrap();
    assert!(
        !connects(&net, At::Clients, addr(2)),
        "clients -> s2 under 100% loss"
    );
    assert!(
        !connects(&net, At::Server(1), addr(2)),
        "s1 -> s2 under 100% loss"
    );
    assert!(connects(&net, At::Clients, addr(3)), "loss on s2 only");
    // Loss only affects packets from the network, not server 2 talking to itself.
    assert!(connects(&net, At::Server(2), addr(2)), "s2 -> s2 over lo");
    net.heal().unwrap();
    assert!(
        connects(&net, At::Clients, addr(2)),
        "clients -> s2 after heal"
    );

    // Healing twice, or with nothing to heal, is fine.
    net.heal().unwrap();
    net.loss(1, 0).unwrap();

    // A bridge: s2 reaches s1 and s3, which cannot reach each other.
    net.cut(&[(1, 3)]).unwrap();
    assert!(!connects(&net, At::Server(1), addr(3)), "s1 -> s3 cut");
    assert!(!connects(&net, At::Server(3), addr(1)), "s3 -> s1 cut");
    assert!(connects(&net, At::Server(1), addr(2)), "s1 -> s2 bridged");
    assert!(connects(&net, At::Server(3), addr(2)), "s3 -> s2 bridged");
    assert!(connects(&net, At::Server(2), addr(1)), "s2 -> s1 bridged");
    net.heal().unwrap();
    assert!(
        connects(&net, At::Server(1), addr(3)),
        "s1 -> s3 after heal"
    );
}

// tbf on a server's eth0 slows what it sends; heal lifts it.
#[test]
fn bandwidth_limits_egress_until_heal() {
    let net = network("b", 1);
    const BYTES: usize = 48 * 1024;
    let listener = Listener::start(&net, 1, BYTES);
    let fetch = |net: &Arc<Network>| {
        let (net, to) = (Arc::clone(net), listener.addr);
        thread::spawn(move || {
            net.enter_clients().unwrap();
            // The clock starts once connected: a loaded machine may take longer than
            // `CONNECT_TIMEOUT` to finish a handshake (a lost SYN waits a second for its
            // retransmission), which says nothing about the shaping under test.
            let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
            let started = Instant::now();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut got = Vec::new();
            stream.read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), BYTES);
            started.elapsed()
        })
        .join()
        .unwrap()
    };
    assert!(fetch(&net) < Duration::from_millis(300));
    // 384 kbit/s = 48 KiB/s: 48 KiB take about a second.
    net.bandwidth(1, 384).unwrap();
    let limited = fetch(&net);
    assert!(
        limited > Duration::from_millis(600) && limited < Duration::from_secs(3),
        "{limited:?}"
    );
    net.heal().unwrap();
    assert!(fetch(&net) < Duration::from_millis(300));
}

// Dropping the network deletes every namespace it made; the interfaces go with them.
#[test]
fn drop_removes_every_namespace() {
    let net = network("d", 2);
    let prefix = format!("pdt{}d", std::process::id());
    net.partition(&[vec![1], vec![2]]).unwrap();
    net.bandwidth(2, 1000).unwrap();
    assert_eq!(listed(&prefix).len(), 4);
    drop(Arc::into_inner(net).unwrap());
    assert!(listed(&prefix).is_empty(), "{:?}", listed(&prefix));
}

// Two networks with different prefixes live side by side, with the same addresses and
// interface names, each private; a second network with a taken prefix is refused without
// harming the first. A partition of five servers is quick.
#[test]
fn two_networks_coexist() {
    let a = network("x", 5);
    let b = network("y", 2);
    let in_b = Listener::start(&b, 2, 0);
    let in_a = Listener::start(&a, 2, 0);
    assert!(connects(&a, At::Clients, in_a.addr));
    assert!(connects(&b, At::Clients, in_b.addr));
    // Same address, different network: nobody listens on that port in the other one.
    if in_a.addr.port() != in_b.addr.port() {
        assert!(!connects(&a, At::Server(1), in_b.addr));
    }

    let started = Instant::now();
    a.partition(&[vec![1, 2], vec![3, 4, 5]]).unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(500),
        "partition of 5 took {took:?}"
    );
    assert!(!connects(&a, At::Server(4), in_a.addr));
    assert!(
        connects(&b, At::Server(1), in_b.addr),
        "b is not partitioned"
    );
    let started = Instant::now();
    a.heal().unwrap();
    assert!(started.elapsed() < Duration::from_millis(500));

    let prefix = format!("pdt{}y", std::process::id());
    assert!(matches!(
        Network::create(&prefix, 1),
        Err(NetError::Invalid(_))
    ));
    assert!(
        connects(&b, At::Clients, in_b.addr),
        "b survived the refused duplicate"
    );
}

// Bad prefixes, server counts, server numbers, groups and percentages are refused.
#[test]
fn invalid_arguments_are_refused() {
    for prefix in ["", "has-dash", "x y", "waytoolongforanamespaceprefix"] {
        assert!(
            matches!(Network::create(prefix, 1), Err(NetError::Invalid(_))),
            "{prefix:?}"
        );
    }
    assert!(matches!(
        Network::create("pdtok", 0),
        Err(NetError::Invalid(_))
    ));
    assert!(matches!(
        Network::create("pdtok", 100),
        Err(NetError::Invalid(_))
    ));
    let net = network("i", 3);
    for groups in [
        vec![vec![1], vec![2]],
        vec![vec![1, 2], vec![2, 3]],
        vec![vec![1, 2, 3, 4]],
        vec![vec![0, 1, 2, 3]],
    ] {
        assert!(
            matches!(net.partition(&groups), Err(NetError::Invalid(_))),
            "{groups:?}"
        );
    }
    assert!(matches!(net.loss(4, 10), Err(NetError::Invalid(_))));
    assert!(matches!(net.loss(1, 101), Err(NetError::Invalid(_))));
    assert!(matches!(net.bandwidth(1, 0), Err(NetError::Invalid(_))));
    assert!(matches!(net.enter_server(0), Err(NetError::Invalid(_))));
}

// A namespace named after a dead pid is swept; one named after this live process is not.
#[test]
fn sweep_stale_removes_dead_runs_namespaces() {
    setup();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let me = std::process::id();
    let stale = format!("pdz{dead}-s1");
    let alive = format!("pdz{me}-s1");
    for ns in [&stale, &alive] {
        let status = Command::new("ip")
            .args(["netns", "add", ns])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let removed = netns::sweep_stale("pdz");
    let left = listed("pdz");
    let _ = Command::new("ip").args(["netns", "del", &alive]).status();
    assert!(removed.unwrap() >= 1);
    assert!(!left.contains(&stale), "{left:?}");
    assert!(left.contains(&alive), "{left:?}");
    assert!(!Path::new("/var/run/netns").join(&stale).exists());
}

// SIGTERM sets the flag instead of ending the process.
#[test]
fn sigterm_sets_the_flag() {
    let flag = netns::install_signal_flag().unwrap();
    assert!(!flag.load(Ordering::SeqCst));
    rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::TERM)
        .unwrap();
    let started = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the flag was not set"
        );
        thread::sleep(Duration::from_millis(5));
    }
}
