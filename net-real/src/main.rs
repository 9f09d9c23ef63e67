//! `paddock`: placeholder while the tree lands.
fn main() {}
