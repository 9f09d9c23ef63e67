//! `zoo_cfg`: arbitrary text into `paddock_net_real::config::parse`: a clear error or a
//! valid config, never a panic.
//!
//! "Clear" is checked as: the error names a line that exists in the text (or 0 for the
//! file as a whole, with a non-empty key) and a non-empty reason. "Valid" as: the relations
//! the parser promises to enforce hold (a positive tick, session timeout bounds in order,
//! a non-empty data directory, a positive frame limit, warnings on existing lines), and
//! parsing is a pure function (the same text gives the same answer twice).

use paddock_net_real::config::parse;

/// The target body. See the module documentation.
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    let parsed = parse(&text);
    assert_eq!(parse(&text), parsed, "parsing the same text twice differs");
    match parsed {
        Err(error) => {
            assert!(
                error.line <= lines,
                "error names line {} of {lines}",
                error.line
            );
            // A line with nothing before its `=` is refused with an empty key; the line
            // number then says where. A file-level error (line 0) must name its key.
            assert!(
                !error.key.is_empty() || error.line > 0,
                "error names neither key nor line: {error}"
            );
            assert!(!error.reason.is_empty(), "error gives no reason: {error}");
        }
        Ok((config, warnings)) => {
            assert!(config.tick_time_ms > 0, "tickTime 0 accepted");
            assert!(
                config.min_session_timeout_ms <= config.max_session_timeout_ms,
                "session timeout bounds out of order: {config:?}"
            );
            assert!(!config.data_dir.is_empty(), "empty dataDir accepted");
            assert!(
                config.jute_max_buffer_bytes > 0,
                "jute.maxbuffer 0 accepted"
            );
            for warning in warnings {
                assert!(
                    (1..=lines).contains(&warning.line),
                    "warning on line {} of {lines}",
                    warning.line
                );
            }
        }
    }
}
