//! paddock-net-real: the thin real-network runtime around `paddock_core`.
//!
//! Everything that decides anything stays in core; this crate owns what touches the
//! operating system: configuration files, sockets, files and fsync. One thread owns the
//! `Node` (`server`); the disk (`disk`, over `storage`), the peer links (`peer`) and all
//! client connections together (`client_io`, event-driven) have their own threads and
//! talk to it through channels.

pub mod backup;
pub mod client;
pub mod client_io;
pub mod config;
pub mod disk;
pub mod four_letter;
pub mod http;
pub mod inspect;
pub mod jaas;
pub mod peer;
pub mod peer_auth;
pub mod server;
pub mod storage;
pub mod tls;
pub mod zk_export;
pub mod zk_import;
