//! `storage`: being written.
