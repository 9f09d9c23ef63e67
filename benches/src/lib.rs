//! paddock-benches: criterion benches of paddock-core (`benches/`) and `paddock-load`, a
//! pipelined ZooKeeper-protocol load generator ([`load`]) that measures Apache ZooKeeper and
//! Paddock alike.

pub mod load;
