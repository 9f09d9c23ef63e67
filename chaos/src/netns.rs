//! A private test network of Linux network namespaces, the fault knobs on it, and the
//! cleanup that removes it.
//!
//! # Layout
//!
//! [`Network::create`] with prefix `P` and `N` servers makes these namespaces:
//!
//! | namespace  | role     | interfaces                                   | address          |
//! |------------|----------|----------------------------------------------|------------------|
//! | `P-sw`     | switch   | bridge `br0`, ports `v-s1`..`v-sN`, `v-c`    | —                |
//! | `P-s{i}`   | server i | `eth0` (peer of `v-s{i}`)                    | `10.77.0.{i}/24` |
//! | `P-c`      | clients  | `eth0` (peer of `v-c`)                       | `10.77.0.100/24` |
//!
//! `lo` is up in every namespace. Each veth pair is created *inside* the switch namespace
//! with its peer placed straight into the endpoint namespace, so no interface ever exists
//! in the host's namespace and interface names only need to be unique per namespace: they
//! are fixed (`eth0`, `v-s{i}`, `v-c`, `br0`, at most 5 characters, well inside IFNAMSIZ)
//! and two networks with different prefixes never collide. The prefix only has to make the
//! namespace names unique; by convention it is a short root plus the creating process's
//! pid (`pdc{pid}`), which lets [`sweep_stale`] recognise the namespaces of a run that was
//! killed with SIGKILL.
//!
//! # Faults
//!
//! Partitions and loss are nftables rules in one table, `inet chaos`, per server
//! namespace, written atomically by an `nft -f -` script on stdin; they only match packets
//! *entering* a server (the input hook), so a cut looks like a real network fault — packets
//! vanish and connects time out — instead of failing locally with `EPERM`. Bandwidth limits
//! are a `tbf` root qdisc on the server's `eth0`. [`Network::heal`] removes all of it.
//!
//! # Cleanup
//!
//! Dropping a [`Network`] deletes every namespace it created, which removes the veths, the
//! bridge, the nftables rules and the qdiscs with them. A run interrupted by Ctrl-C or
//! SIGTERM gets there through [`install_signal_flag`]: the flag stops the run loop, and the
//! `Network` is dropped on the way out. A run killed with SIGKILL leaves its namespaces
//! behind; the next run removes them with [`sweep_stale`].
//!
//! Everything here needs root (or `CAP_NET_ADMIN` and `CAP_SYS_ADMIN`) and the `ip`, `tc`
//! and `nft` tools ([`ensure_tools`]).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rustix::fs::{Mode, OFlags};
use rustix::thread::LinkNameSpaceType;

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/var/run/netns";
/// The bridge inside the switch namespace.
const BRIDGE: &str = "br0";
/// The interface of a server or of the clients, inside its own namespace.
const ENDPOINT_IF: &str = "eth0";
/// The nftables table holding every fault rule of a server namespace.
const TABLE: &str = "chaos";
/// The first three octets of every address on the network.
const SUBNET: [u8; 3] = [10, 77, 0];
/// The last octet of the clients' address.
const CLIENT_HOST: u8 = 100;
/// The most servers a network can have: their addresses are `10.77.0.1` up to this, below
/// the clients' `10.77.0.100`.
pub const MAX_SERVERS: usize = 99;
/// The longest prefix [`Network::create`] accepts.
pub const MAX_PREFIX_LEN: usize = 24;

/// What can go wrong building, changing or removing the network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for the message.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// A command could not be started (or fed its script) at all.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why not.
        #[source]
        source: io::Error,
    },
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// An argument was out of range or malformed; nothing was changed.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A required tool is missing and could not be installed.
    #[error("`{tool}` is not available (package {package}); install it and run again")]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
}

/// Which fault state may exist in which server namespace, so that [`Network::heal`] only
/// touches what needs it.
#[derive(Debug, Default)]
struct Faults {
    /// Servers whose namespace may hold an `inet chaos` table.
    tables: BTreeSet<usize>,
    /// Servers whose `eth0` may carry a `tbf` qdisc.
    shaped: BTreeSet<usize>,
}

/// A private network of namespaces: a switch, `N` servers and the clients (see the
/// [module documentation](self) for the layout). It owns every namespace it created and
/// deletes them when dropped. It is `Send + Sync`: share it in an `Arc` between the run
/// loop and client threads.
#[derive(Debug)]
pub struct Network {
    switch: String,
    servers: Vec<String>,
    clients: String,
    /// The namespaces this value created, in creation order; the ones Drop deletes.
    created: Vec<String>,
    faults: Mutex<Faults>,
}

impl Network {
    /// Creates namespaces `{prefix}-sw` (a bridge `br0` inside it), `{prefix}-s1` ..
    /// `{prefix}-s{servers}` and `{prefix}-c`, each non-switch namespace joined to the
    /// bridge by a veth pair (`v-s{i}`/`v-c` in the switch, `eth0` in the endpoint), with
    /// addresses `10.77.0.{i}/24` for server i and `10.77.0.100/24` for the clients, `lo`
    /// up everywhere.
    ///
    /// `prefix` must be 1 to [`MAX_PREFIX_LEN`] ASCII letters, digits or `_` (no `-`, which
    /// separates the role), and should be `{root}{pid}` so that [`sweep_stale`] can tell
    /// whether its creator is alive; `servers` must be 1 to [`MAX_SERVERS`]. Fails if any
    /// of the namespaces exists already (another network with the same prefix); on any
    /// failure whatever was created so far is removed again.
    pub fn create(prefix: &str, servers: usize) -> Result<Network, NetError> {
        validate_prefix(prefix)?;
        if servers == 0 || servers > MAX_SERVERS {
            return Err(NetError::Invalid(format!(
                "{servers} servers: a network has 1 to {MAX_SERVERS}"
            )));
        }
        let mut net = Network {
            switch: format!("{prefix}-sw"),
            servers: (1..=servers).map(|i| format!("{prefix}-s{i}")).collect(),
            clients: format!("{prefix}-c"),
            created: Vec::new(),
            faults: Mutex::new(Faults::default()),
        };
        // One `ip netns add` each, so that exactly the namespaces this call made (and not
        // one that somebody else owns) are recorded for Drop.
        let names: Vec<String> = std::iter::once(net.switch.clone())
            .chain(net.servers.iter().cloned())
            .chain(std::iter::once(net.clients.clone()))
            .collect();
        for name in names {
            if Path::new(NETNS_DIR).join(&name).exists() {
                return Err(NetError::Invalid(format!(
                    "namespace {name} exists already: is another network using prefix {prefix}?"
                )));
            }
            run(Cmd::new(["ip", "netns", "add", &name]))?;
            net.created.push(name);
        }

        // The switch: the bridge and one port per endpoint; the peers go straight into the
        // endpoints' namespaces.
        let mut switch =
            format!("link set lo up\nlink add {BRIDGE} type bridge\nlink set {BRIDGE} up\n");
        for (port, ns) in net.ports() {
            let _ = write!(
                switch,
                "link add {port} type veth peer name {ENDPOINT_IF} netns {ns}\n\
                 link set {port} master {BRIDGE}\nlink set {port} up\n"
            );
        }
        run(Cmd::new(["ip", "-n", &net.switch, "-batch", "-"]).stdin(switch))?;

        // The endpoints, all at once.
        let endpoints = (1..=servers)
            .map(|i| (net.servers[i - 1].as_str(), net.server_ip(i)))
            .chain(std::iter::once((net.clients.as_str(), net.client_ip())))
            .map(|(ns, ip)| {
                Cmd::new(["ip", "-n", ns, "-batch", "-"]).stdin(format!(
                    "link set lo up\naddr add {ip}/24 dev {ENDPOINT_IF}\n\
                     link set {ENDPOINT_IF} up\n"
                ))
            })
            .collect();
        run_all(endpoints)?;
        Ok(net)
    }

    /// The switch's ports and the endpoint namespace each one leads to.
    fn ports(&self) -> Vec<(String, &str)> {
        self.servers
            .iter()
            .enumerate()
            .map(|(k, ns)| (format!("v-s{}", k + 1), ns.as_str()))
            .chain(std::iter::once(("v-c".to_owned(), self.clients.as_str())))
            .collect()
    }

    /// How many servers the network has.
    pub fn servers(&self) -> usize {
        self.servers.len()
    }

    /// The name of server `i`'s namespace (1-based), e.g. `pdc123-s2`.
    ///
    /// # Panics
    ///
    /// If `i` is not in `1..=self.servers()`.
    pub fn server_ns(&self, i: usize) -> &str {
        &self.servers[self.index(i)]
    }

    /// The name of the clients' namespace, e.g. `pdc123-c`.
    pub fn client_ns(&self) -> &str {
        &self.clients
    }

    /// The name of the switch's namespace, e.g. `pdc123-sw`.
    pub fn switch_ns(&self) -> &str {
        &self.switch
    }

    /// Server `i`'s address (1-based): `10.77.0.{i}`.
    ///
    /// # Panics
    ///
    /// If `i` is not in `1..=self.servers()`.
    pub fn server_ip(&self, i: usize) -> Ipv4Addr {
        let k = self.index(i);
        // `create` allows at most MAX_SERVERS (< 100) servers.
        let host = u8::try_from(k + 1).unwrap_or(u8::MAX);
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], host)
    }

    /// The clients' address: `10.77.0.100`.
    pub fn client_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], CLIENT_HOST)
    }

    /// The 0-based index of server `i`, panicking with a clear message when out of range.
    fn index(&self, i: usize) -> usize {
        match self.check(i) {
            Ok(k) => k,
            Err(e) => panic!("{e}"),
        }
    }

    /// The 0-based index of server `i`, or [`NetError::Invalid`].
    fn check(&self, i: usize) -> Result<usize, NetError> {
        if i == 0 || i > self.servers.len() {
            Err(NetError::Invalid(format!(
                "server {i} is not in 1..={}",
                self.servers.len()
            )))
        } else {
            Ok(i - 1)
        }
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        // The set is only a hint of where to clean; a panic elsewhere cannot break it.
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the partition: servers in different groups cannot exchange packets (both
    /// directions, any protocol — each server drops every packet coming from a server
    /// outside its group), while the clients still reach every server. Every server
    /// `1..=self.servers()` must be in exactly one group (empty groups are ignored); one
    /// group holding everybody lifts the partition. Loss and bandwidth rules are left as
    /// they are. One `nft -f -` per affected server, run in parallel, each applied
    /// atomically.
    pub fn partition(&self, groups: &[Vec<usize>]) -> Result<(), NetError> {
        let n = self.servers.len();
        let mut group_of = vec![None; n];
        for (g, group) in groups.iter().enumerate() {
            for &i in group {
                let k = self.check(i)?;
                if group_of[k].replace(g).is_some() {
                    return Err(NetError::Invalid(format!(
                        "server {i} is in more than one group of {groups:?}"
                    )));
                }
            }
        }
        if let Some(k) = group_of.iter().position(Option::is_none) {
            return Err(NetError::Invalid(format!(
                "server {} is in no group of {groups:?}",
                k + 1
            )));
        }
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|k| (k + 1..n).map(move |j| (k, j)))
            .filter(|&(k, j)| group_of[j] != group_of[k])
            .map(|(k, j)| (k + 1, j + 1))
            .collect();
        self.cut(&pairs)
    }

    /// Replaces the partition with an arbitrary one: the servers of each pair `(a, b)`
    /// cannot exchange packets (both directions, any protocol), every other pair can,
    /// and the clients still reach every server. Non-transitive cuts (a bridge: A and B
    /// both reach C but not each other) are expressible here and not as groups. An
    /// empty list lifts the partition. Loss and bandwidth rules are left as they are.
    pub fn cut(&self, pairs: &[(usize, usize)]) -> Result<(), NetError> {
        let n = self.servers.len();
        let mut blocked = vec![Vec::new(); n];
        for &(a, b) in pairs {
            let (ka, kb) = (self.check(a)?, self.check(b)?);
            if ka == kb {
                return Err(NetError::Invalid(format!("server {a} cut from itself")));
            }
            blocked[ka].push(kb);
            blocked[kb].push(ka);
        }
        let mut faults = self.faults();
        let mut cmds = Vec::new();
        let mut cut_somewhere = Vec::new();
        for (k, from) in blocked.iter_mut().enumerate() {
            from.sort_unstable();
            from.dedup();
            let cut: Vec<String> = from
                .iter()
                .map(|&j| self.server_ip(j + 1).to_string())
                .collect();
            if cut.is_empty() && !faults.tables.contains(&(k + 1)) {
                continue;
            }
            let mut script = chain_script("partition");
            if !cut.is_empty() {
                let _ = writeln!(
                    script,
                    "add rule inet {TABLE} partition iifname \"{ENDPOINT_IF}\" ip saddr {{ {} }} drop",
                    cut.join(", ")
                );
                cut_somewhere.push(k + 1);
            }
            cmds.push(self.nft(k + 1, script));
        }
        // Recorded before running, so that a half-applied partition is healed too.
        faults.tables.extend(cut_somewhere);
        run_all(cmds)
    }

    /// Drops each packet entering server `i` from the network (not over `lo`) with
    /// probability `percent`/100 (`numgen random mod 100 < percent drop` in the input hook
    /// of its namespace), replacing any earlier loss on that server; 0 removes it. Other
    /// servers' loss and the partition are left as they are.
    pub fn loss(&self, i: usize, percent: u8) -> Result<(), NetError> {
        self.check(i)?;
        if percent > 100 {
            return Err(NetError::Invalid(format!("loss of {percent}%")));
        }
        let mut faults = self.faults();
        if percent == 0 && !faults.tables.contains(&i) {
            return Ok(());
        }
        let mut script = chain_script("loss");
        if percent > 0 {
            // `numgen random mod 100` is 0..=99, and nft refuses a `< 100` that always holds.
            let chance = if percent < 100 {
                format!("numgen random mod 100 < {percent} ")
            } else {
                String::new()
            };
            let _ = writeln!(
                script,
                "add rule inet {TABLE} loss iifname \"{ENDPOINT_IF}\" {chance}drop"
            );
            faults.tables.insert(i);
        }
        run(self.nft(i, script))
    }

    /// Limits server `i`'s egress bandwidth (what it sends, to servers and clients alike)
    /// to `kbit` kilobits per second with a `tbf` root qdisc on its `eth0`
    /// (`tc qdisc replace ... tbf rate {kbit}kbit burst ... latency 200ms`), replacing any
    /// earlier limit on that server. Packets that would wait longer than the latency are
    /// dropped.
    pub fn bandwidth(&self, i: usize, kbit: u32) -> Result<(), NetError> {
        self.check(i)?;
        if kbit == 0 {
            return Err(NetError::Invalid(
                "a bandwidth of 0 kbit; use partition or loss to cut a server off".to_owned(),
            ));
        }
        // 10 ms worth of bytes, but at least two full frames.
        let burst = (u64::from(kbit) * 1000 / 8 / 100).max(2 * 1514);
        let mut faults = self.faults();
        faults.shaped.insert(i);
        run(Cmd::new([
            "tc",
            "-n",
            self.server_ns(i),
            "qdisc",
            "replace",
            "dev",
            ENDPOINT_IF,
            "root",
            "tbf",
            "rate",
            &format!("{kbit}kbit"),
            "burst",
            &burst.to_string(),
            "latency",
            "200ms",
        ]))
    }

    /// Removes every partition, loss and bandwidth rule, in parallel, one process per
    /// server that has any. Cheap when there is nothing to remove.
    pub fn heal(&self) -> Result<(), NetError> {
        let mut faults = self.faults();
        let tables: Vec<usize> = faults.tables.iter().copied().collect();
        let shaped: Vec<usize> = faults.shaped.iter().copied().collect();
        let mut cmds: Vec<Cmd> = tables
            .iter()
            .map(|&i| {
                // Declaring the table first makes the delete succeed when it is absent.
                self.nft(
                    i,
                    format!("table inet {TABLE} {{}}\ndelete table inet {TABLE}\n"),
                )
            })
            .collect();
        cmds.extend(shaped.iter().map(|&i| self.unshape(i)));
        let outcomes = run_each(cmds);
        let mut first_error = None;
        for (k, outcome) in outcomes.into_iter().enumerate() {
            let outcome = match outcome {
                // A missing qdisc is as healed as a removed one.
                Err(NetError::Command { .. })
                    if k >= tables.len() && !self.is_shaped(shaped[k - tables.len()]) =>
                {
                    Ok(())
                }
                other => other,
            };
            match outcome {
                Ok(()) if k < tables.len() => {
                    faults.tables.remove(&tables[k]);
                }
                Ok(()) => {
                    faults.shaped.remove(&shaped[k - tables.len()]);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// `tc qdisc del` of server `i`'s root qdisc.
    fn unshape(&self, i: usize) -> Cmd {
        Cmd::new([
            "tc",
            "-n",
            self.server_ns(i),
            "qdisc",
            "del",
            "dev",
            ENDPOINT_IF,
            "root",
        ])
    }

    /// Whether server `i`'s `eth0` still has a `tbf` qdisc (true when that cannot be told).
    fn is_shaped(&self, i: usize) -> bool {
        Command::new("tc")
            .args(["-n", self.server_ns(i), "qdisc", "show", "dev", ENDPOINT_IF])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_or(true, |out| {
                !out.status.success() || String::from_utf8_lossy(&out.stdout).contains("tbf")
            })
    }

    /// `nft -f -` inside server `i`'s namespace, fed `script`.
    fn nft(&self, i: usize, script: String) -> Cmd {
        Cmd::new(["ip", "netns", "exec", self.server_ns(i), "nft", "-f", "-"]).stdin(script)
    }

    /// Moves the calling *thread* into the clients' namespace: sockets it opens afterwards
    /// live there (and so do processes it spawns). Other threads are unaffected. There is
    /// no way back short of entering another namespace, so call it on a thread of its own.
    pub fn enter_clients(&self) -> Result<(), NetError> {
        enter(&self.clients)
    }

    /// Moves the calling *thread* into server `i`'s namespace, like
    /// [`enter_clients`](Self::enter_clients); for tests and tools that want to listen or
    /// connect as a server.
    pub fn enter_server(&self, i: usize) -> Result<(), NetError> {
        self.check(i)?;
        enter(self.server_ns(i))
    }

    /// The command prefix that runs a process inside server `i`'s namespace:
    /// `["ip", "netns", "exec", ns]`; append the program and its arguments.
    ///
    /// # Panics
    ///
    /// If `i` is not in `1..=self.servers()`.
    pub fn exec_prefix(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec", self.server_ns(i)]
            .map(str::to_owned)
            .to_vec()
    }
}

impl Drop for Network {
    /// Deletes every namespace this network created, with one `ip -force -batch -`, which
    /// takes the veths, the bridge, the nftables rules and the qdiscs with them (a
    /// namespace lives on, nameless, until the last process or thread inside it is gone).
    /// Never panics; failures are written to stderr.
    fn drop(&mut self) {
        if self.created.is_empty() {
            return;
        }
        let script: String = self
            .created
            .iter()
            .rev()
            .map(|ns| format!("netns del {ns}\n"))
            .collect();
        if let Err(e) = run(Cmd::new(["ip", "-force", "-batch", "-"]).stdin(script)) {
            let _ = writeln!(io::stderr(), "paddock-chaos: removing the network: {e}");
        }
        let left: Vec<&String> = self
            .created
            .iter()
            .filter(|ns| Path::new(NETNS_DIR).join(ns).exists())
            .collect();
        if !left.is_empty() {
            let _ = writeln!(
                io::stderr(),
                "paddock-chaos: namespaces left behind: {left:?} (remove with `ip netns del`)"
            );
        }
    }
}

/// Removes the namespaces of earlier runs killed with SIGKILL: every namespace whose name
/// is `{prefix_root}{pid}` followed by anything but a digit (e.g. `pdc4711-s2` for root
/// `pdc`), where no process `pid` is alive. Namespaces of live processes (this one
/// included) are left alone; a recycled pid makes a stale network survive until its pid
/// is free again. Returns how many namespaces it removed. Call it before
/// [`Network::create`].
///
/// Processes still running inside a removed namespace keep running (in a namespace
/// nobody can reach); their pids are written to stderr.
pub fn sweep_stale(prefix_root: &str) -> Result<usize, NetError> {
    if prefix_root.is_empty() {
        return Err(NetError::Invalid("an empty prefix root".to_owned()));
    }
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(NetError::Io {
                what: format!("listing {NETNS_DIR}"),
                source,
            });
        }
    };
    let me = std::process::id();
    let mut stale = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| NetError::Io {
            what: format!("listing {NETNS_DIR}"),
            source,
        })?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(prefix_root) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = digits.parse::<u32>() else {
            continue;
        };
        if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
            stale.push(name);
        }
    }
    if stale.is_empty() {
        return Ok(0);
    }
    for ns in &stale {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", ns])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            let pids = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !pids.is_empty() {
                let _ = writeln!(
                    io::stderr(),
                    "paddock-chaos: stale namespace {ns} still has processes: {pids}"
                );
            }
        }
    }
    let script: String = stale.iter().map(|ns| format!("netns del {ns}\n")).collect();
    let outcome = run(Cmd::new(["ip", "-force", "-batch", "-"]).stdin(script));
    let removed = stale
        .iter()
        .filter(|ns| !Path::new(NETNS_DIR).join(ns).exists())
        .count();
    for ns in &stale {
        let _ = writeln!(io::stderr(), "paddock-chaos: removed stale namespace {ns}");
    }
    outcome.map(|()| removed)
}

/// Makes sure `ip`, `tc` and `nft` can run, installing a missing one with
/// `apt-get install -y -qq` (running `apt-get update -qq` first only if that install
/// fails). Cheap when everything is there: one `--version` per tool.
///
/// Concurrent callers in one process take turns (apt-get would fail on its lock), and the
/// later ones find the tools installed.
pub fn ensure_tools() -> Result<(), NetError> {
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    const TOOLS: [(&str, &str, &str); 3] = [
        ("ip", "-V", "iproute2"),
        ("tc", "-V", "iproute2"),
        ("nft", "--version", "nftables"),
    ];
    for (tool, version, package) in TOOLS {
        if works(tool, version) {
            continue;
        }
        let install =
            || run(Cmd::new(["apt-get", "install", "-y", "-qq", package]).env_noninteractive());
        if install().is_err() {
            run(Cmd::new(["apt-get", "update", "-qq"]).env_noninteractive())?;
            install()?;
        }
        if !works(tool, version) {
            return Err(NetError::MissingTool { tool, package });
        }
    }
    Ok(())
}

/// Whether `tool arg` runs and succeeds.
fn works(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Registers SIGINT and SIGTERM to set the returned flag (signal-hook's `flag::register`)
/// instead of killing the process, so that the run can stop and the [`Network`] be dropped
/// normally, removing its namespaces. Callers must poll the flag (every few hundred
/// milliseconds at most, including while waiting) and return when it is set; nothing else
/// happens on a signal. A second signal of either kind while the flag is already set exits
/// at once with status 130 (SIGINT) or 143 (SIGTERM), leaving the namespaces for
/// [`sweep_stale`].
pub fn install_signal_flag() -> Result<Arc<AtomicBool>, NetError> {
    use signal_hook::consts::signal::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for (signal, status) in [(SIGINT, 130), (SIGTERM, 143)] {
        let register = |outcome: io::Result<signal_hook::SigId>| {
            outcome.map(|_| ()).map_err(|source| NetError::Io {
                what: format!("registering a handler for signal {signal}"),
                source,
            })
        };
        // Registered first, so it sees the flag as it was before this signal set it.
        register(signal_hook::flag::register_conditional_shutdown(
            signal,
            status,
            Arc::clone(&flag),
        ))?;
        register(signal_hook::flag::register(signal, Arc::clone(&flag)))?;
    }
    Ok(flag)
}

/// Moves the calling thread into the named network namespace.
fn enter(ns: &str) -> Result<(), NetError> {
    let path = Path::new(NETNS_DIR).join(ns);
    let fd =
        rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
            NetError::Io {
                what: format!("opening {}", path.display()),
                source: e.into(),
            }
        })?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&fd),
        Some(LinkNameSpaceType::Network),
    )
    .map_err(|e| NetError::Io {
        what: format!("entering network namespace {ns}"),
        source: e.into(),
    })
}

/// The start of an nft script that (re)creates the table's `chain` in the input hook,
/// empty.
fn chain_script(chain: &str) -> String {
    format!(
        "table inet {TABLE} {{\n  chain {chain} {{ type filter hook input priority filter; policy accept; }}\n}}\n\
         flush chain inet {TABLE} {chain}\n"
    )
}

/// Checks a network prefix.
fn validate_prefix(prefix: &str) -> Result<(), NetError> {
    if prefix.is_empty()
        || prefix.len() > MAX_PREFIX_LEN
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(NetError::Invalid(format!(
            "prefix {prefix:?}: it must be 1 to {MAX_PREFIX_LEN} ASCII letters, digits or '_'"
        )));
    }
    Ok(())
}

/// A command line and what to feed it on stdin.
struct Cmd {
    command: Command,
    line: String,
    stdin: Option<String>,
}

impl Cmd {
    fn new<const N: usize>(argv: [&str; N]) -> Cmd {
        let mut command = Command::new(argv[0]);
        command.args(&argv[1..]);
        Cmd {
            command,
            line: argv.join(" "),
            stdin: None,
        }
    }

    fn stdin(mut self, script: String) -> Cmd {
        self.stdin = Some(script);
        self
    }

    fn env_noninteractive(mut self) -> Cmd {
        self.command.env("DEBIAN_FRONTEND", "noninteractive");
        self
    }

    /// Starts the command and hands it its stdin.
    fn spawn(mut self) -> Result<(Child, String), NetError> {
        let spawned = self
            .command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = spawned.map_err(|source| NetError::Spawn {
            command: self.line.clone(),
            source,
        })?;
        if let (Some(script), Some(mut stdin)) = (self.stdin, child.stdin.take()) {
            // Scripts are a few hundred bytes: the pipe takes them without blocking. A
            // write error means the child died early; its status tells why.
            let _ = stdin.write_all(script.as_bytes());
        }
        Ok((child, self.line))
    }
}

/// Waits for a spawned command and turns a failure into [`NetError::Command`].
fn finish(child: Child, line: String) -> Result<(), NetError> {
    let out = child.wait_with_output().map_err(|source| NetError::Spawn {
        command: line.clone(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetError::Command {
            command: line,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs one command to completion.
fn run(cmd: Cmd) -> Result<(), NetError> {
    let (child, line) = cmd.spawn()?;
    finish(child, line)
}

/// Runs commands concurrently and returns each one's outcome, in order.
fn run_each(cmds: Vec<Cmd>) -> Vec<Result<(), NetError>> {
    let spawned: Vec<_> = cmds.into_iter().map(Cmd::spawn).collect();
    spawned
        .into_iter()
        .map(|s| s.and_then(|(child, line)| finish(child, line)))
        .collect()
}

/// Runs commands concurrently; the first failure, if any, once all have ended.
fn run_all(cmds: Vec<Cmd>) -> Result<(), NetError> {
    run_each(cmds).into_iter().collect()
}
