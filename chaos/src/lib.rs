//! paddock-chaos: the real `paddock` binary under faults on a real network, judged by the
//! simulator's checkers.
//!
//! A run builds a private network of Linux network namespaces (one per server, one for the
//! clients, joined by a bridge in a switch namespace; see [`netns`]), starts an ensemble of
//! real `paddock serve` processes in it, drives clients over real TCP that record every
//! operation and watch event ([`client`]), injects faults chosen by a seed for a bounded
//! time (delays on the servers' peer links through proxies of its own, [`proxy`]), heals, and then hands the history — with the committed log read back from the
//! servers' data directories ([`verdict`]) — to the same checkers as the simulator. It
//! needs root (namespaces, nftables) and removes everything it created on exit.

pub mod client;
pub mod netns;
pub mod proxy;
pub mod run;
pub mod verdict;
