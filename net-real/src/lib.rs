//! paddock-net-real: the thin real-network runtime around `paddock_core`.
//!
//! Everything that decides anything stays in core; this crate owns what touches the
//! operating system: configuration files, sockets, files and fsync. One thread owns the
//! `Node` (`server`); the disk (`disk`, over `storage`), the peer links (`peer`) and each
//! client connection have their own threads and talk to it through channels.

pub mod client;
pub mod config;
pub mod disk;
pub mod four_letter;
pub mod peer;
pub mod server;
pub mod storage;
