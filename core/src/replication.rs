//! `replication`: being written.
