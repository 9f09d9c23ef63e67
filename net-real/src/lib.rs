//! paddock-net-real: the thin real-network runtime around `paddock_core`.
//!
//! Everything that decides anything stays in core; this crate owns what touches the
//! operating system: configuration files, sockets, files and fsync.

pub mod config;
