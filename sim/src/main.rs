//! `paddock-sim`: placeholder while the tree lands.
fn main() {}
