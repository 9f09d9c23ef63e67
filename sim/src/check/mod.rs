//! The checkers: each reads the history of a finished run and either passes or names
//! the first bad event. They run in a fixed order; the first failure is the verdict.

mod agreement;

use crate::history::History;
use crate::world::World;

/// A checker's verdict against a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The checker's name (part of the one-line summary).
    pub checker: &'static str,
    /// The first bad event, in words.
    pub event: String,
}

impl Failure {
    /// A failure of `checker` at `event`.
    pub fn new(checker: &'static str, event: impl Into<String>) -> Failure {
        Failure {
            checker,
            event: event.into(),
        }
    }
}

/// Runs every checker over a finished run.
pub fn check_all(world: &World) -> Result<(), Failure> {
    agreement::check(&world.history)?;
    Ok(())
}

/// Checks that need only the history (for tests of the checkers themselves).
pub fn check_history(history: &History) -> Result<(), Failure> {
    agreement::check(history)
}
