//! The network between servers and to clients: latency, and which links are cut.

use std::collections::BTreeSet;

use paddock_core::ids::NodeId;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::options::RunOptions;

/// The network model.
#[derive(Debug)]
pub struct Network {
    /// Directed links that drop everything.
    pub cut: BTreeSet<(NodeId, NodeId)>,
}

impl Network {
    /// A healthy network for a run.
    pub fn new(_options: &RunOptions, _rng: &mut ChaCha8Rng) -> Network {
        Network {
            cut: BTreeSet::new(),
        }
    }

    /// When a message sent now from `from` to `to` arrives (none: lost).
    pub fn deliveries(
        &mut self,
        now_ms: u64,
        from: NodeId,
        to: NodeId,
        rng: &mut ChaCha8Rng,
    ) -> Vec<u64> {
        if self.cut.contains(&(from, to)) {
            return Vec::new();
        }
        vec![now_ms + rng.random_range(1..5)]
    }

    /// True when messages from `from` reach `to` right now.
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Latency of a client link, ms.
    pub fn client_latency(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        rng.random_range(1..3)
    }

    /// Every fault off.
    pub fn heal(&mut self) {
        self.cut.clear();
    }
}
