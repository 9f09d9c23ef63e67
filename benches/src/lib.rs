//! paddock-benches: criterion benches of paddock-core.
