//! paddock-core: the pure, sans-IO heart of Paddock.
//!
//! Everything that decides anything lives here: the znode tree, sessions, watches, ACLs,
//! the ZooKeeper wire codec, the storage record codec and the replication protocol.
//! Core never reads a clock, a socket, a file, an environment variable or global
//! randomness, and never spawns a thread: `now` and every byte arrive as arguments, and
//! everything the world must do comes back as values: see [`node::Node`] for the
//! `step` / `next_deadline` contract and docs/consensus.md for replication.

pub mod acl;
#[cfg(feature = "planted-bugs")]
pub mod bugs;
pub(crate) mod bytes;
pub mod error;
pub mod ids;
pub mod limits;
pub mod node;
pub mod replication;
pub mod sasl;
pub mod session;
pub mod stat;
pub mod storage;
pub mod tree;
pub mod watch;
pub mod wire;
pub mod work;
pub mod zk_files;
