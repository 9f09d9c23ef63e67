//! `tree`: being written.
