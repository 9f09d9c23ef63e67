//! The file abstraction the storage engine ([`super::Store`]) runs on, and [`MemFiles`],
//! its in-memory implementation with crash semantics.
//!
//! A node's files live in two directories ([`Dir`]): the data directory (snapshots, hard
//! state) and the log directory (segments), which a runtime may map to one. Names are
//! plain file names, never paths. Each operation returns a typed [`FileError`]; the
//! engine never retries one, and a runtime that sees a failed `sync` must stop (the bytes
//! it covered may or may not be on the disk: see docs/storage.md).
//!
//! Durability contract (what the engine assumes, and what [`MemFiles`] models): bytes
//! written to a file are durable only after a `sync` of that file has returned; creating,
//! renaming and removing a name is durable only after a `sync_dir` of its directory has
//! returned. A crash may keep any prefix of the bytes written since the last sync, and
//! forgets unsynced bytes beyond it.

use std::collections::BTreeMap;

/// One of a node's two directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dir {
    /// `dataDir`: snapshots and the hard state.
    Data,
    /// `dataLogDir` (the data directory when unset): log segments.
    Log,
}

impl Dir {
    /// Both directories.
    pub const ALL: [Dir; 2] = [Dir::Data, Dir::Log];

    /// The directory's name in messages and in a saved disk (`data`, `log`).
    pub fn name(self) -> &'static str {
        match self {
            Dir::Data => "data",
            Dir::Log => "log",
        }
    }
}

/// The file operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    /// Listing a directory.
    List,
    /// Reading a whole file.
    Read,
    /// Creating (or emptying) a file.
    Create,
    /// Writing bytes at an offset.
    Write,
    /// Setting a file's length.
    SetLen,
    /// Making a file's bytes durable (`fdatasync`).
    Sync,
    /// Making a directory's names durable.
    SyncDir,
    /// Renaming a file.
    Rename,
    /// Removing a file.
    Remove,
}

/// What went wrong with a file operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileErrorKind {
    /// The file does not exist.
    #[error("no such file")]
    NotFound,
    /// The device is full (`ENOSPC`).
    #[error("no space left on device")]
    NoSpace,
    /// Any other error (`EIO` and the like), as the system described it.
    #[error("{0}")]
    Io(String),
}

/// A failed file operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op:?} {}/{name}: {kind}", dir.name())]
pub struct FileError {
    /// What was attempted.
    pub op: FileOp,
    /// In which directory.
    pub dir: Dir,
    /// On which file (empty for directory operations).
    pub name: String,
    /// What went wrong.
    pub kind: FileErrorKind,
}

impl FileError {
    /// An error of `kind` for `op` on `dir/name`.
    pub fn new(op: FileOp, dir: Dir, name: &str, kind: FileErrorKind) -> FileError {
        FileError {
            op,
            dir,
            name: name.to_owned(),
            kind,
        }
    }
}

/// The operations the storage engine needs from a file system. See the module
/// documentation for the durability contract.
pub trait Files {
    /// The names of the files in `dir`, in any order.
    fn list(&mut self, dir: Dir) -> Result<Vec<String>, FileError>;
    /// The whole content of `dir/name`.
    fn read(&mut self, dir: Dir, name: &str) -> Result<Vec<u8>, FileError>;
    /// Up to `len` bytes of `dir/name` from `offset` (fewer at its end, none past it),
    /// and the file's whole length.
    fn read_at(
        &mut self,
        dir: Dir,
        name: &str,
        offset: u64,
        len: usize,
    ) -> Result<(Vec<u8>, u64), FileError>;
    /// Creates `dir/name` empty, emptying it if it exists.
    fn create(&mut self, dir: Dir, name: &str) -> Result<(), FileError>;
    /// Writes `bytes` at `offset` of `dir/name`, extending it (with zeros before `offset`
    /// when it is shorter).
    fn write_at(
        &mut self,
        dir: Dir,
        name: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), FileError>;
    /// Cuts or extends (with zeros) `dir/name` to `len` bytes.
    fn set_len(&mut self, dir: Dir, name: &str, len: u64) -> Result<(), FileError>;
    /// Makes the bytes and length of `dir/name` durable.
    fn sync(&mut self, dir: Dir, name: &str) -> Result<(), FileError>;
    /// Makes the names in `dir` (creations, renames, removals) durable.
    fn sync_dir(&mut self, dir: Dir) -> Result<(), FileError>;
    /// Renames `dir/from` to `dir/to`, replacing `to` if it exists.
    fn rename(&mut self, dir: Dir, from: &str, to: &str) -> Result<(), FileError>;
    /// Removes `dir/name`.
    fn remove(&mut self, dir: Dir, name: &str) -> Result<(), FileError>;
}

/// One in-memory file: what reads see, and what a crash leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct MemFile {
    /// The content as written (the page cache).
    data: Vec<u8>,
    /// The content as of the last sync (the platter).
    durable: Vec<u8>,
    /// The byte range changed since the last sync, when any changed.
    dirty: Option<(usize, usize)>,
}

impl MemFile {
    fn touch(&mut self, from: usize, to: usize) {
        self.dirty = Some(match self.dirty {
            None => (from, to),
            Some((a, b)) => (a.min(from), b.max(to)),
        });
    }

    fn sync(&mut self) {
        if let Some((from, _)) = self.dirty.take() {
            let from = from.min(self.data.len());
            self.durable.resize(from, 0);
            self.durable
                .extend_from_slice(self.data.get(from..).unwrap_or(&[]));
        }
    }

    /// A sync that failed (`EIO`) the way Linux fails it: the pages it should have
    /// written are marked clean without reaching the disk, so reads still return them
    /// but the disk holds the file's new length with what it had before (zeros where it
    /// had nothing), and no later sync writes them.
    fn sync_lost(&mut self) {
        if self.dirty.take().is_some() {
            self.durable.resize(self.data.len(), 0);
        }
    }

    /// The content after a crash that let the first `kept` unsynced bytes (from the
    /// lowest changed offset) reach the disk.
    fn crash(&mut self, kept: usize) {
        if let Some((from, _)) = self.dirty.take() {
            let end = from.saturating_add(kept).min(self.data.len());
            let mut after = self.durable.clone();
            if let Some(landed) = self.data.get(from..end) {
                if after.len() < end {
                    after.resize(end, 0);
                }
                if let Some(target) = after.get_mut(from..end) {
                    target.copy_from_slice(landed);
                }
            }
            self.durable = after;
        }
        self.data = self.durable.clone();
    }

    /// Bytes written since the last sync, counted from the lowest changed offset.
    fn unsynced_bytes(&self) -> usize {
        self.dirty.map_or(0, |(from, to)| to.saturating_sub(from))
    }
}

/// A failure [`MemFiles`] injects into its next matching operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Injected {
    /// The next create, write or set_len fails with this error and changes nothing
    /// (`EIO`: [`FileErrorKind::Io`], `ENOSPC`: [`FileErrorKind::NoSpace`]).
    Write(FileErrorKind),
    /// The next sync fails with `EIO`, and its bytes never reach the disk although
    /// reads keep returning them until a crash (the page-cache lie of Linux).
    Sync,
}

/// An in-memory [`Files`]: deterministic, with the crash semantics of the durability
/// contract, for the simulator and tests. Names are durable at once (as if every
/// directory were synced after each change): the engine syncs directories anyway, and
/// losing a name is injected explicitly ([`MemFiles::lose`]). A process restart keeps
/// the files as they are (the page cache survives); [`MemFiles::crash`] is a power loss.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemFiles {
    files: BTreeMap<(Dir, String), MemFile>,
    armed: Option<Injected>,
}

impl MemFiles {
    /// No files.
    pub fn new() -> MemFiles {
        MemFiles::default()
    }

    fn get(&self, op: FileOp, dir: Dir, name: &str) -> Result<&MemFile, FileError> {
        self.files
            .get(&(dir, name.to_owned()))
            .ok_or_else(|| FileError::new(op, dir, name, FileErrorKind::NotFound))
    }

    fn get_mut(&mut self, op: FileOp, dir: Dir, name: &str) -> Result<&mut MemFile, FileError> {
        self.files
            .get_mut(&(dir, name.to_owned()))
            .ok_or_else(|| FileError::new(op, dir, name, FileErrorKind::NotFound))
    }

    /// Every file with its content as reads see it, in name order.
    pub fn contents(&self) -> impl Iterator<Item = (Dir, &str, &[u8])> {
        self.files
            .iter()
            .map(|((dir, name), file)| (*dir, name.as_str(), file.data.as_slice()))
    }

    /// Puts `bytes` in `dir/name` as if written and synced (loading a saved disk).
    pub fn insert(&mut self, dir: Dir, name: &str, bytes: Vec<u8>) {
        let file = MemFile {
            durable: bytes.clone(),
            data: bytes,
            dirty: None,
        };
        self.files.insert((dir, name.to_owned()), file);
    }

    /// Makes the next matching operation fail ([`Injected`]); replaces what was armed.
    pub fn arm(&mut self, fault: Injected) {
        self.armed = Some(fault);
    }

    /// Disarms an injected failure that has not fired; returns it.
    pub fn disarm(&mut self) -> Option<Injected> {
        self.armed.take()
    }

    /// The armed write failure for `op` on `dir/name`, if one is armed (it fires once).
    fn write_fault(&mut self, op: FileOp, dir: Dir, name: &str) -> Result<(), FileError> {
        if let Some(Injected::Write(kind)) = &self.armed {
            let error = FileError::new(op, dir, name, kind.clone());
            self.armed = None;
            return Err(error);
        }
        Ok(())
    }

    /// Bytes written and not yet synced, all files together.
    pub fn unsynced_bytes(&self) -> u64 {
        self.files
            .values()
            .map(|file| file.unsynced_bytes() as u64)
            .sum()
    }

    /// The process died: every file goes back to its durable content, except that
    /// `kept(dir, name, unsynced_bytes)` of each file's unsynced bytes (counted from the
    /// lowest offset changed since its sync) reach the disk first, as a torn write.
    /// Returns the bytes kept that way.
    pub fn crash(&mut self, mut kept: impl FnMut(Dir, &str, usize) -> usize) -> u64 {
        let mut torn = 0u64;
        for ((dir, name), file) in &mut self.files {
            let unsynced = file.unsynced_bytes();
            let keep = if unsynced > 0 {
                kept(*dir, name, unsynced).min(unsynced)
            } else {
                0
            };
            torn += keep as u64;
            file.crash(keep);
        }
        torn
    }

    /// Flips bit `bit` (0–7) of byte `offset` of `dir/name`, in what reads see and in what
    /// a crash leaves (damage on the medium). False when there is no such byte.
    pub fn flip_bit(&mut self, dir: Dir, name: &str, offset: u64, bit: u8) -> bool {
        let Some(file) = self.files.get_mut(&(dir, name.to_owned())) else {
            return false;
        };
        let Ok(at) = usize::try_from(offset) else {
            return false;
        };
        let mask = 1u8 << (bit % 8);
        let mut flipped = false;
        for bytes in [&mut file.data, &mut file.durable] {
            if let Some(byte) = bytes.get_mut(at) {
                *byte ^= mask;
                flipped = true;
            }
        }
        flipped
    }

    /// Removes `dir/name` outright, durable or not (a lost file). False when absent.
    pub fn lose(&mut self, dir: Dir, name: &str) -> bool {
        self.files.remove(&(dir, name.to_owned())).is_some()
    }
}

impl Files for MemFiles {
    fn list(&mut self, dir: Dir) -> Result<Vec<String>, FileError> {
        Ok(self
            .files
            .keys()
            .filter(|(d, _)| *d == dir)
            .map(|(_, name)| name.clone())
            .collect())
    }

    fn read(&mut self, dir: Dir, name: &str) -> Result<Vec<u8>, FileError> {
        Ok(self.get(FileOp::Read, dir, name)?.data.clone())
    }

    fn read_at(
        &mut self,
        dir: Dir,
        name: &str,
        offset: u64,
        len: usize,
    ) -> Result<(Vec<u8>, u64), FileError> {
        let data = &self.get(FileOp::Read, dir, name)?.data;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        let piece = data.get(start..end).unwrap_or_default().to_vec();
        Ok((piece, data.len() as u64))
    }

    fn create(&mut self, dir: Dir, name: &str) -> Result<(), FileError> {
        self.write_fault(FileOp::Create, dir, name)?;
        let file = self.files.entry((dir, name.to_owned())).or_default();
        file.touch(0, file.data.len().max(1));
        file.data.clear();
        Ok(())
    }

    fn write_at(
        &mut self,
        dir: Dir,
        name: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), FileError> {
        self.write_fault(FileOp::Write, dir, name)?;
        let file = self.get_mut(FileOp::Write, dir, name)?;
        let too_large = || FileError::new(FileOp::Write, dir, name, FileErrorKind::NoSpace);
        let start = usize::try_from(offset).map_err(|_| too_large())?;
        let end = start.checked_add(bytes.len()).ok_or_else(too_large)?;
        if file.data.len() < start {
            file.touch(file.data.len(), start);
        }
        if file.data.len() < end {
            file.data.resize(end, 0);
        }
        if let Some(target) = file.data.get_mut(start..end) {
            target.copy_from_slice(bytes);
        }
        file.touch(start, end);
        Ok(())
    }

    fn set_len(&mut self, dir: Dir, name: &str, len: u64) -> Result<(), FileError> {
        self.write_fault(FileOp::SetLen, dir, name)?;
        let file = self.get_mut(FileOp::SetLen, dir, name)?;
        let len = usize::try_from(len)
            .map_err(|_| FileError::new(FileOp::SetLen, dir, name, FileErrorKind::NoSpace))?;
        file.touch(len.min(file.data.len()), len.max(file.data.len()));
        file.data.resize(len, 0);
        Ok(())
    }

    fn sync(&mut self, dir: Dir, name: &str) -> Result<(), FileError> {
        if self.armed == Some(Injected::Sync) {
            self.armed = None;
            self.get_mut(FileOp::Sync, dir, name)?.sync_lost();
            let eio = FileErrorKind::Io("input/output error (injected)".to_owned());
            return Err(FileError::new(FileOp::Sync, dir, name, eio));
        }
        self.get_mut(FileOp::Sync, dir, name)?.sync();
        Ok(())
    }

    fn sync_dir(&mut self, _dir: Dir) -> Result<(), FileError> {
        Ok(())
    }

    fn rename(&mut self, dir: Dir, from: &str, to: &str) -> Result<(), FileError> {
        let file = self
            .files
            .remove(&(dir, from.to_owned()))
            .ok_or_else(|| FileError::new(FileOp::Rename, dir, from, FileErrorKind::NotFound))?;
        self.files.insert((dir, to.to_owned()), file);
        Ok(())
    }

    fn remove(&mut self, dir: Dir, name: &str) -> Result<(), FileError> {
        self.files
            .remove(&(dir, name.to_owned()))
            .map(drop)
            .ok_or_else(|| FileError::new(FileOp::Remove, dir, name, FileErrorKind::NotFound))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Synced bytes survive a crash; unsynced ones vanish, or a prefix of them lands.
    #[test]
    fn crash_keeps_synced_bytes_and_a_prefix_of_the_rest() {
        let mut files = MemFiles::new();
        files.create(Dir::Log, "a").unwrap();
        files.write_at(Dir::Log, "a", 0, b"hello").unwrap();
        files.sync(Dir::Log, "a").unwrap();
        files.write_at(Dir::Log, "a", 5, b" world").unwrap();
        assert_eq!(files.unsynced_bytes(), 6);
        let mut clean = files.clone();
        assert_eq!(clean.crash(|_, _, _| 0), 0);
        assert_eq!(clean.read(Dir::Log, "a").unwrap(), b"hello");
        assert_eq!(files.crash(|_, _, n| n / 2), 3);
        assert_eq!(files.read(Dir::Log, "a").unwrap(), b"hello wo");
        assert_eq!(files.unsynced_bytes(), 0);
    }

    // An overwrite inside synced bytes, and a cut, are undone by a crash before the sync.
    #[test]
    fn unsynced_overwrite_and_cut_are_undone_by_a_crash() {
        let mut files = MemFiles::new();
        files.create(Dir::Data, "f").unwrap();
        files.write_at(Dir::Data, "f", 0, &[0; 8]).unwrap();
        files.sync(Dir::Data, "f").unwrap();
        files.write_at(Dir::Data, "f", 2, b"xy").unwrap();
        files.set_len(Dir::Data, "f", 3).unwrap();
        assert_eq!(files.read(Dir::Data, "f").unwrap(), [0, 0, b'x']);
        files.crash(|_, _, _| 0);
        assert_eq!(files.read(Dir::Data, "f").unwrap(), [0; 8]);
        files.write_at(Dir::Data, "f", 2, b"xy").unwrap();
        files.sync(Dir::Data, "f").unwrap();
        files.crash(|_, _, _| 0);
        assert_eq!(
            files.read(Dir::Data, "f").unwrap(),
            [0, 0, b'x', b'y', 0, 0, 0, 0]
        );
    }

    // An injected failed sync loses its bytes at the next crash though reads return them
    // until then, and a later good sync does not write them; an injected write failure
    // changes nothing. Each fires once.
    #[test]
    fn injected_failures_fire_once() {
        let mut files = MemFiles::new();
        files.create(Dir::Log, "a").unwrap();
        files.write_at(Dir::Log, "a", 0, b"abc").unwrap();
        files.sync(Dir::Log, "a").unwrap();
        files.write_at(Dir::Log, "a", 3, b"def").unwrap();
        files.arm(Injected::Sync);
        assert!(files.sync(Dir::Log, "a").is_err());
        assert_eq!(files.read(Dir::Log, "a").unwrap(), b"abcdef");
        files.write_at(Dir::Log, "a", 6, b"g").unwrap();
        files.sync(Dir::Log, "a").unwrap();
        files.crash(|_, _, _| 0);
        assert_eq!(files.read(Dir::Log, "a").unwrap(), b"abc\0\0\0g");
        files.arm(Injected::Write(FileErrorKind::NoSpace));
        let err = files.write_at(Dir::Log, "a", 7, b"h").unwrap_err();
        assert_eq!(err.kind, FileErrorKind::NoSpace);
        files.write_at(Dir::Log, "a", 7, b"h").unwrap();
        assert_eq!(files.disarm(), None);
    }

    // Operations on missing files fail with NotFound and name the file.
    #[test]
    fn missing_files_are_typed_errors() {
        let mut files = MemFiles::new();
        let err = files.read(Dir::Data, "nope").unwrap_err();
        assert_eq!(err.kind, FileErrorKind::NotFound);
        assert_eq!(err.to_string(), "Read data/nope: no such file");
        assert!(files.rename(Dir::Data, "nope", "x").is_err());
        assert!(!files.lose(Dir::Data, "nope"));
        let err = files.read_at(Dir::Data, "nope", 0, 4).unwrap_err();
        assert_eq!(err.kind, FileErrorKind::NotFound);
    }

    // A read at an offset returns what lies there, fewer bytes at the end and none past
    // it, with the file's whole length.
    #[test]
    fn read_at_returns_a_piece_and_the_length() {
        let mut files = MemFiles::new();
        files.insert(Dir::Data, "f", b"abcdef".to_vec());
        assert_eq!(
            files.read_at(Dir::Data, "f", 1, 3).unwrap(),
            (b"bcd".to_vec(), 6)
        );
        assert_eq!(
            files.read_at(Dir::Data, "f", 4, 10).unwrap(),
            (b"ef".to_vec(), 6)
        );
        assert_eq!(
            files.read_at(Dir::Data, "f", 9, 10).unwrap(),
            (Vec::new(), 6)
        );
    }
}
