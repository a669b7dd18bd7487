//! Directives: the pure core, no IO. A directive (title, Markdown body, priority, target,
//! acknowledgement required or not, deadline) is sent to every unit its [`Target`]
//! resolves to; each unit then moves through the [`state`] machine
//! (`pending → delivered → read → acknowledged`, plus `overdue` derived from the
//! deadline), and [`rollup()`] sums the states per subtree and level for the dashboard.
//! A directive can be corrected (a new version; units acknowledge again) or retracted:
//! [`history`] holds what a version is, what changed and the inbox entry kinds.
//! [`feedback`] is the other direction: replies and problem reports from units.
//!
//! Times are milliseconds since the Unix epoch (UTC), as `i64`, the same on both store
//! backends. The store ([`crate::store`]) persists all of this; nothing here touches it.

pub mod feedback;
pub mod history;
pub mod rollup;
pub mod state;
pub mod target;

use thiserror::Error;

pub use history::{Content, EntryKind, FieldChange, changes};
pub use rollup::{Counts, RollUp, rollup};
pub use state::{Change, Stage, UnitState};
pub use target::Target;

/// Longest directive id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Largest body (Markdown source), in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How urgent a directive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Routine,
    Important,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Routine, Priority::Important, Priority::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Routine => "routine",
            Priority::Important => "important",
            Priority::Urgent => "urgent",
        }
    }

    pub fn parse(text: &str) -> Result<Priority, DirectiveError> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == text)
            .ok_or_else(|| DirectiveError::BadPriority(text.to_owned()))
    }
}

/// One directive as sent, or as of one of its versions. `version` starts at 1; each
/// correction adds one (see [`history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub id: String,
    pub title: String,
    /// Markdown source; rendering (safely) is the web layer's job.
    pub body: String,
    pub priority: Priority,
    pub target: Target,
    pub ack_required: bool,
    /// Acknowledge by this time (ms since the epoch); only meaningful with `ack_required`.
    pub deadline: Option<i64>,
    /// Who sent it (a user id; accounts come later).
    pub created_by: String,
    /// When it was sent (ms since the epoch).
    pub created_at: i64,
    pub version: i32,
}

impl Directive {
    /// Checks the fields that do not need the org tree (the target is checked when it is
    /// resolved).
    pub fn validate(&self) -> Result<(), DirectiveError> {
        validate_id(&self.id)?;
        let title = self.title.trim();
        if title.is_empty() {
            return Err(DirectiveError::EmptyTitle);
        }
        if self.title.chars().count() > MAX_TITLE_CHARS {
            return Err(DirectiveError::TitleTooLong(MAX_TITLE_CHARS));
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(DirectiveError::BodyTooLarge {
                size: self.body.len(),
                max: MAX_BODY_BYTES,
            });
        }
        if self.version < 1 {
            return Err(DirectiveError::BadVersion(self.version));
        }
        if self.target.is_empty() {
            return Err(DirectiveError::EmptyTarget);
        }
        Ok(())
    }

    /// Whether a unit in state `state` is overdue at `now`: acknowledgement is required,
    /// the deadline has passed and the unit has not acknowledged.
    pub fn is_overdue(&self, state: &UnitState, now: i64) -> bool {
        state::is_overdue(self.ack_required, self.deadline, state, now)
    }
}

/// A directive id: 1–64 ASCII letters, digits, `-`, `_` or `.`.
pub fn validate_id(id: &str) -> Result<(), DirectiveError> {
    if id.is_empty()
        || id.len() > MAX_ID_LEN
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(DirectiveError::BadId(id.to_owned()));
    }
    Ok(())
}

/// Why a directive, a target or a transition was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DirectiveError {
    #[error("directive id {0:?} must be 1-{MAX_ID_LEN} ASCII letters, digits, '-', '_' or '.'")]
    BadId(String),
    #[error("the title is empty")]
    EmptyTitle,
    #[error("the title is longer than {0} characters")]
    TitleTooLong(usize),
    #[error("the body is {size} bytes; at most {max} are allowed")]
    BodyTooLarge { size: usize, max: usize },
    #[error("version {0} is not valid (versions start at 1)")]
    BadVersion(i32),
    #[error("priority {0:?} is not one of routine, important, urgent")]
    BadPriority(String),
    #[error("the target names no subtree, kind, tag or unit")]
    EmptyTarget,
    #[error("the target names unit {0:?}, which does not exist")]
    UnknownUnit(String),
    #[error("the target matches no unit")]
    NoUnitsMatched,
    #[error("the stored target is not valid: {0}")]
    BadTarget(String),
    #[error("cannot mark {what} while the unit's state is {from}")]
    BadTransition {
        from: &'static str,
        what: &'static str,
    },
    #[error("this directive does not ask for acknowledgement")]
    AckNotRequired,
    #[error("the correction changes nothing")]
    NothingChanged,
}
