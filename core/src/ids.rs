//! Newtypes for the identifiers of the domain, so that a session id can never be passed
//! where a zxid is expected.
//!
//! A zxid is `epoch << 32 | counter` (ZooKeeper's layout): ordering zxids orders
//! transactions globally, and the epoch names the leader term that proposed it.

use serde::{Deserialize, Serialize};

/// A transaction id: the high 32 bits are the epoch, the low 32 bits the counter.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Zxid(pub u64);

impl Zxid {
    /// The zxid before any transaction.
    pub const ZERO: Zxid = Zxid(0);

    /// Builds a zxid from its epoch and counter.
    pub fn new(epoch: Epoch, counter: u32) -> Zxid {
        Zxid((u64::from(epoch.0) << 32) | u64::from(counter))
    }

    /// The epoch (leader term) this zxid was proposed in.
    pub fn epoch(self) -> Epoch {
        Epoch((self.0 >> 32) as u32)
    }

    /// The counter within the epoch.
    pub fn counter(self) -> u32 {
        (self.0 & 0xffff_ffff) as u32
    }

    /// The zxid as ZooKeeper puts it on the wire (a signed 64-bit long).
    pub fn as_wire(self) -> i64 {
        self.0 as i64
    }

    /// A zxid read from the wire; negative values (e.g. -1 in notifications) map to 0.
    pub fn from_wire(raw: i64) -> Zxid {
        Zxid(u64::try_from(raw).unwrap_or(0))
    }
}

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A leader term. Zxids of one epoch were all proposed by the same leader.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Epoch(pub u32);

/// A client session id, as ZooKeeper's signed 64-bit long (ids may use the high bit).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SessionId(pub i64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A server of the ensemble (ZooKeeper's `myid`, 1..=255).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NodeId(pub u64);

/// A client connection on one server, chosen by the runtime; unique per server while open.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ConnId(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    // A zxid splits into the epoch and counter it was built from.
    #[test]
    fn zxid_parts() {
        let z = Zxid::new(Epoch(7), 42);
        assert_eq!(z.0, 0x7_0000_002a);
        assert_eq!(z.epoch(), Epoch(7));
        assert_eq!(z.counter(), 42);
        assert_eq!(Zxid::from_wire(-1), Zxid::ZERO);
        assert_eq!(z.to_string(), "0x70000002a");
    }
}
