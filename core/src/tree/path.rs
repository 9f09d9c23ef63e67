//! Znode path rules (PathUtils.validatePath and the create/delete path checks of
//! PrepRequestProcessor) and the sequential-node suffix.
//!
//! Paths are Rust strings, so the UTF-16 rules of Java are restated on `char`s: a character
//! above U+FFFF is a surrogate pair in Java and therefore refused, like U+D800–U+F8FF.

use crate::error::ZkError;

/// The reserved subtree and its nodes (docs/protocol.md, Initial tree).
pub const ZOOKEEPER_PATH: &str = "/zookeeper";
/// Quota configuration node (kept empty: quotas are not enforced).
pub const QUOTA_PATH: &str = "/zookeeper/quota";
/// Dynamic configuration node, read by Curator's EnsembleTracker.
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// Whether `path` is one of the nodes that can never be deleted (ZooKeeper's
/// `isSpecialPath`: the root and the three reserved nodes).
pub fn is_special(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
}

/// PathUtils.validatePath: starts with `/`, does not end with `/` (except the root), has
/// no empty, `.` or `..` segment and no forbidden character. Errors are BADARGUMENTS.
pub fn validate(path: &str) -> Result<(), ZkError> {
    if path == "/" {
        return Ok(());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(ZkError::BadArguments);
    };
    if rest
        .split('/')
        .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err(ZkError::BadArguments);
    }
    if path.chars().any(is_forbidden_char) {
        return Err(ZkError::BadArguments);
    }
    Ok(())
}

fn is_forbidden_char(c: char) -> bool {
    matches!(u32::from(c), 0x0000..=0x001f | 0x007f..=0x009f | 0xd800..=0xf8ff | 0xfff0..)
}

/// The parent of a path as the create and delete checks compute it: everything before the
/// last `/`, with the root for top-level nodes (ZooKeeper stores the root under `""` too).
/// `None` (BADARGUMENTS for the caller) when there is no `/` or the path contains NUL.
pub fn parent_of(path: &str) -> Option<&str> {
    if path.contains('\0') {
        return None;
    }
    let slash = path.rfind('/')?;
    Some(if slash == 0 { "/" } else { &path[..slash] })
}

/// The suffix of a sequential node: Java's `String.format("%010d", cversion)` of the
/// parent's stored cversion, where the width includes the sign (-1 → `-000000001`) and the
/// counter is a signed 32-bit int that wraps to -2147483648 after 2147483647.
pub fn sequence_suffix(parent_cversion_stored: i32) -> String {
    format!("{parent_cversion_stored:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // validatePath accepts well-formed paths and refuses each malformed kind.
    #[test]
    fn validate_paths() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a/...",
            "/a/.b",
            "/a/b.",
            "/é",
            "/a b",
            "/\u{ffef}",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok:?}");
        }
        for bad in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a\0",
            "/a\u{1}",
            "/a\u{1f}",
            "/a\u{7f}",
            "/a\u{9f}",
            "/\u{e000}",
            "/\u{f8ff}",
            "/\u{fff0}",
            "/\u{fffd}",
            "/\u{ffff}",
            "/\u{1f600}",
        ] {
            assert_eq!(validate(bad), Err(ZkError::BadArguments), "{bad:?}");
        }
    }

    // Parents are found by the last `/`; top-level nodes have the root as parent.
    #[test]
    fn parents_and_names() {
        assert_eq!(parent_of("/a"), Some("/"));
        assert_eq!(parent_of("/a/b"), Some("/a"));
        assert_eq!(parent_of("/q/"), Some("/q"));
        assert_eq!(parent_of("/"), Some("/"));
        assert_eq!(parent_of("ab"), None);
        assert_eq!(parent_of("/a\0"), None);
    }

    // The suffix is zero-padded to 10 characters including the sign, like Java's %010d.
    #[test]
    fn suffixes() {
        assert_eq!(sequence_suffix(0), "0000000000");
        assert_eq!(sequence_suffix(7), "0000000007");
        assert_eq!(sequence_suffix(i32::MAX), "2147483647");
        assert_eq!(sequence_suffix(-1), "-000000001");
        assert_eq!(sequence_suffix(i32::MIN), "-2147483648");
        assert_eq!(sequence_suffix(i32::MAX.wrapping_add(1)), "-2147483648");
    }
}
