//! `wire`: being written.
