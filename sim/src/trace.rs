//! The event trace: a running hash of every event (the determinism fingerprint of a
//! run) and, on request, a JSON-lines file with one object per event:
//! `{"t": virtual ms, "node": server id (0 for the world), "kind": ..., "details": ...}`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// The trace of one run.
pub struct Trace {
    hash: u64,
    file: Option<BufWriter<File>>,
}

impl Trace {
    /// A trace that only hashes.
    pub fn hash_only() -> Trace {
        Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            file: None,
        }
    }

    /// A trace that also writes every event to `path`.
    pub fn to_file(path: &Path) -> std::io::Result<Trace> {
        Ok(Trace {
            hash: 0xcbf2_9ce4_8422_2325,
            file: Some(BufWriter::new(File::create(path)?)),
        })
    }

    fn mix(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash ^= u64::from(*b);
            self.hash = self.hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Records one event; `details` is only computed when writing a file.
    pub fn record(&mut self, at_ms: u64, node: u64, kind: &str, details: impl FnOnce() -> String) {
        self.mix(&at_ms.to_le_bytes());
        self.mix(&node.to_le_bytes());
        self.mix(kind.as_bytes());
        if let Some(file) = &mut self.file {
            let line =
                serde_json::json!({"t": at_ms, "node": node, "kind": kind, "details": details()});
            // A trace file that cannot be written loses the trace, not the run.
            let _ = writeln!(file, "{line}");
        }
    }

    /// The fingerprint so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Flushes the file.
    pub fn finish(&mut self) {
        if let Some(file) = &mut self.file {
            let _ = file.flush();
        }
    }
}
