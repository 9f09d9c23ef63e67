//! `session`: being written.
