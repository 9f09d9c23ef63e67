//! Saved disks: a simulated server's files written out as a data directory that the real
//! server starts from (`paddock-sim run --save-disks DIR`), real or saved data
//! directories read back into simulated disks for a run to start from (`--from-disks
//! DIR`, [`load_start`]), and the tree a data directory recovers to, listed line by
//! line, so both sides can be compared.
//!
//! Layout of `DIR/server-<id>/`: `data/` (snapshots, hard state), `log/` (segments),
//! `zoo.cfg` (a standalone server on those directories, with a super digest so that
//! every znode can be read), `tree.txt` (what that server must serve, or why its disk
//! does not recover).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;

use paddock_core::ids::NodeId;
use paddock_core::limits::Limits;
use paddock_core::node::{Input, Node, NodeConfig, Output};
use paddock_core::storage::{Dir, MemFiles, Store, StoreError};
use paddock_core::tree::{DataTree, Znode};

use crate::disk::store_config;
use crate::world::World;

/// The credential whose digest `zoo.cfg` names as the super user.
pub const SUPER_CREDENTIAL: &str = "super:paddock-sim";

/// Steps a standalone node may take to elect itself and apply its log.
const STANDALONE_STEPS_MAX: u32 = 100_000;

/// Why a data directory's tree could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// Recovery refused the files.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The node refused the recovered state.
    #[error("node refused the recovered state: {0}")]
    Node(String),
    /// The newest log segment is gone: no leader can re-sync a standalone server.
    #[error("refusing to start: {0}; a standalone server has no leader to re-sync it from")]
    LogLost(String),
    /// A standalone node on the files did not become leader.
    #[error("a standalone node on these files did not elect itself")]
    NoLeader,
}

/// What one server's saved directory holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedServer {
    /// The server.
    pub id: NodeId,
    /// Its directory.
    pub dir: std::path::PathBuf,
    /// The tree a standalone server on it serves, or why it does not start.
    pub tree: Result<Vec<String>, String>,
}

/// Writes every server's files under `dir` (see the module documentation).
pub fn save(world: &World, dir: &Path) -> io::Result<Vec<SavedServer>> {
    let mut saved = Vec::new();
    for (id, server) in &world.servers {
        let root = dir.join(format!("server-{}", id.0));
        let _ = fs::remove_dir_all(&root);
        for sub in Dir::ALL {
            fs::create_dir_all(root.join(sub.name()))?;
        }
        for (sub, name, bytes) in server.disk.files().contents() {
            fs::write(root.join(sub.name()).join(name), bytes)?;
        }
        fs::write(
            root.join("zoo.cfg"),
            zoo_cfg(&root.join("data"), &root.join("log")),
        )?;
        let tree =
            listing(server.disk.files().clone(), world.limits()).map_err(|error| error.to_string());
        let text = match &tree {
            Ok(lines) => lines.join("\n") + "\n",
            Err(error) => format!("does not start: {error}\n"),
        };
        fs::write(root.join("tree.txt"), text)?;
        saved.push(SavedServer {
            id: *id,
            dir: root,
            tree,
        });
    }
    Ok(saved)
}

/// A standalone `zoo.cfg` on `data` and `log`, client port 2181 on localhost.
fn zoo_cfg(data: &Path, log: &Path) -> String {
    let (user, password) = SUPER_CREDENTIAL.split_once(':').unwrap_or_default();
    let super_digest = paddock_core::acl::digest_id(user, password);
    format!(
        "# A simulated server's disk, served standalone: paddock serve --config <this file>\n\
         tickTime=2000\n\
         dataDir={}\n\
         dataLogDir={}\n\
         clientPort=2181\n\
         clientPortAddress=127.0.0.1\n\
         4lw.commands.whitelist=*\n\
         # authenticate as digest {SUPER_CREDENTIAL} to read every znode\n\
         DigestAuthenticationProvider.superDigest={super_digest}\n",
        data.display(),
        log.display()
    )
}

/// Reads a data directory (`data/` and `log/` under `root`, or `dataDir` and
/// `dataLogDir` given apart) into in-memory files.
pub fn load(data_dir: &Path, log_dir: &Path) -> io::Result<MemFiles> {
    let mut files = MemFiles::new();
    for (sub, path) in [(Dir::Data, data_dir), (Dir::Log, log_dir)] {
        for item in fs::read_dir(path)? {
            let item = item?;
            if !item.file_type()?.is_file() {
                continue;
            }
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // `myid` and `zoo.cfg` sit beside the data; they are not the store's.
            if name == "myid" || name.ends_with(".cfg") || name == "tree.txt" {
                continue;
            }
            files.insert(sub, &name, fs::read(item.path())?);
        }
    }
    Ok(files)
}

/// The disks a run starts from (`--from-disks DIR`), by server, for an ensemble of
/// `nodes`:
/// - `DIR/server-<id>/` for each server that has one (the layout `--save-disks` writes:
///   `data/` and `log/`, or one directory holding both as a real server's `dataDir`
///   does without `dataLogDir`); a server without one starts empty and catches up;
/// - otherwise `DIR` itself is one data directory (`data/` and `log/`, or a real
///   server's `dataDir`), and every server starts from a copy of it.
///
/// Fails when a directory cannot be read or none holds any file.
pub fn load_start(dir: &Path, nodes: u64) -> io::Result<BTreeMap<NodeId, MemFiles>> {
    let one = |root: &Path| -> io::Result<MemFiles> {
        let data = root.join("data");
        if data.is_dir() {
            let log = root.join("log");
            load(&data, if log.is_dir() { &log } else { &data })
        } else {
            load(root, root)
        }
    };
    let mut disks = BTreeMap::new();
    if dir.join("server-1").is_dir() {
        for id in 1..=nodes {
            let root = dir.join(format!("server-{id}"));
            if root.is_dir() {
                disks.insert(NodeId(id), one(&root)?);
            }
        }
    } else {
        let files = one(dir)?;
        for id in 1..=nodes {
            disks.insert(NodeId(id), files.clone());
        }
    }
    if disks
        .values()
        .all(|files| files.contents().next().is_none())
    {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no data directory with any file under {}", dir.display()),
        ));
    }
    Ok(disks)
}

/// The tree a standalone server recovers from `files` and serves once it leads (its
/// whole log applied), one line per znode outside `/zookeeper`, in path order.
pub fn listing(files: MemFiles, limits: Limits) -> Result<Vec<String>, SavedError> {
    let (mut store, opened) = Store::open(files, store_config(limits.clone()))?;
    if let Some(reason) = opened.log_lost {
        return Err(SavedError::LogLost(reason));
    }
    let id = NodeId(1);
    let mut config = NodeConfig::new(id, BTreeSet::from([id]));
    config.limits = limits;
    let mut node = Node::new(config, opened.durable, 1)
        .map_err(|error| SavedError::Node(error.to_string()))?;
    let mut now_ms = 0;
    let mut pending = vec![Input::Tick];
    let mut out = Vec::new();
    for _ in 0..STANDALONE_STEPS_MAX {
        let input = match pending.pop() {
            Some(input) => input,
            None if node.is_leader()
                && node.applied_index() >= node.replication_status().last_index =>
            {
                return Ok(tree_lines(node.tree()));
            }
            None => {
                now_ms = node
                    .next_deadline()
                    .map_or(now_ms + 10, |at| at.max(now_ms));
                Input::Tick
            }
        };
        node.step(now_ms, input, &mut out);
        for output in out.drain(..) {
            if let Output::Persist(write) = output {
                let done = write.perform(&mut store)?;
                store.sync()?;
                pending.extend(done);
            }
        }
    }
    Err(SavedError::NoLeader)
}

/// Visits every znode outside `/zookeeper`, each with its path.
fn each_znode(tree: &DataTree, mut visit: impl FnMut(&str, &Znode)) {
    let mut stack = vec!["/".to_owned()];
    while let Some(path) = stack.pop() {
        if path == "/zookeeper" {
            continue;
        }
        let Some(znode) = tree.node(&path) else {
            continue;
        };
        visit(&path, znode);
        let base = if path == "/" { "" } else { path.as_str() };
        stack.extend(
            tree.children(&path)
                .iter()
                .map(|child| format!("{base}/{child}")),
        );
    }
}

/// The latest creation or modification time of any znode, ms (0 for an empty tree).
pub fn tree_time_max(tree: &DataTree) -> i64 {
    let mut latest = 0;
    each_znode(tree, |_, znode| {
        let stat = znode.stat();
        latest = latest.max(stat.ctime).max(stat.mtime);
    });
    latest
}

/// One line per znode outside `/zookeeper`, in path order: path, stat, ACL, data (hex).
pub fn tree_lines(tree: &DataTree) -> Vec<String> {
    let mut lines = Vec::new();
    each_znode(tree, |path, znode| {
        let acl: Vec<String> = znode
            .acl()
            .iter()
            .map(|acl| format!("{}:{}:{}", acl.id.scheme, acl.id.id, acl.perms))
            .collect();
        lines.push(znode_line(
            path,
            &znode.stat(),
            &acl,
            znode.data().unwrap_or_default(),
        ));
    });
    lines.sort();
    lines
}

/// The line of one znode, as [`tree_lines`] writes it; a client walking a served tree
/// builds the same lines to compare.
pub fn znode_line(
    path: &str,
    stat: &paddock_core::stat::Stat,
    acl: &[String],
    data: &[u8],
) -> String {
    let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{path} czxid={:#x} mzxid={:#x} pzxid={:#x} ctime={} mtime={} version={} cversion={} \
         aversion={} owner={:#x} children={} acl={} data={hex}",
        stat.czxid,
        stat.mzxid,
        stat.pzxid,
        stat.ctime,
        stat.mtime,
        stat.version,
        stat.cversion,
        stat.aversion,
        stat.ephemeral_owner,
        stat.num_children,
        acl.join(",")
    )
}
