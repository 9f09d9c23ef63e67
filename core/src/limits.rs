//! `limits`: being written.
