//! One unit's progress through one directive:
//! `pending → delivered → read → acknowledged`, with `overdue` derived (never stored)
//! from the directive's deadline and the current time.
//!
//! Rules, checked by [`UnitState::deliver`], [`UnitState::read`] and
//! [`UnitState::acknowledge`]:
//! - Each step sets its time once. Repeating a step, or a step the unit is already past
//!   (delivering what was read), changes nothing and is not an error: devices retry.
//! - Reading needs the directive delivered first; acknowledging needs it delivered and
//!   implies reading (the read time becomes the acknowledgement time if unset).
//! - Acknowledging is only possible when the directive asks for it; acknowledging again
//!   keeps the first who and when.
//!
//! The state is for one version of the directive ([`UnitState::version`]): a correction
//! starts the unit again at `pending` for the new version (the store keeps the earlier
//! acknowledgements).

use super::DirectiveError;

/// Where a unit is with one directive. Ordered: later stages compare greater.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Pending,
    Delivered,
    Read,
    Acknowledged,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::Delivered => "delivered",
            Stage::Read => "read",
            Stage::Acknowledged => "acknowledged",
        }
    }
}

/// Whether a transition changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The state moved on; the store writes it.
    Changed,
    /// Already there (or past it): nothing to write.
    Unchanged,
}

/// One unit's inbox row for one directive. Times are ms since the epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitState {
    pub directive_id: String,
    pub unit_id: String,
    /// The place in this unit's inbox (1, 2, 3, … per unit) of the latest entry for the
    /// directive: its sending, its latest correction or its retraction.
    pub seq: i64,
    /// The version of the directive this state is for.
    pub version: i32,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    pub acked_at: Option<i64>,
    /// Who acknowledged (a user id), with `acked_at`.
    pub acked_by: Option<String>,
}

impl UnitState {
    /// A fresh, pending row for version 1.
    pub fn pending(directive_id: &str, unit_id: &str, seq: i64) -> UnitState {
        UnitState {
            directive_id: directive_id.to_owned(),
            unit_id: unit_id.to_owned(),
            seq,
            version: 1,
            delivered_at: None,
            read_at: None,
            acked_at: None,
            acked_by: None,
        }
    }

    pub fn stage(&self) -> Stage {
        if self.acked_at.is_some() {
            Stage::Acknowledged
        } else if self.read_at.is_some() {
            Stage::Read
        } else if self.delivered_at.is_some() {
            Stage::Delivered
        } else {
            Stage::Pending
        }
    }

    /// The directive reached the unit (pushed to a connected device, or fetched).
    pub fn deliver(&mut self, at: i64) -> Change {
        if self.delivered_at.is_some() {
            return Change::Unchanged;
        }
        self.delivered_at = Some(at);
        Change::Changed
    }

    /// Someone at the unit opened it.
    pub fn read(&mut self, at: i64) -> Result<Change, DirectiveError> {
        if self.stage() == Stage::Pending {
            return Err(self.bad("read"));
        }
        if self.read_at.is_some() || self.acked_at.is_some() {
            return Ok(Change::Unchanged);
        }
        self.read_at = Some(at);
        Ok(Change::Changed)
    }

    /// `by` acknowledged for the unit at `at`. Idempotent: the first who and when stay.
    pub fn acknowledge(
        &mut self,
        ack_required: bool,
        by: &str,
        at: i64,
    ) -> Result<Change, DirectiveError> {
        if !ack_required {
            return Err(DirectiveError::AckNotRequired);
        }
        if self.acked_at.is_some() {
            return Ok(Change::Unchanged);
        }
        if self.stage() == Stage::Pending {
            return Err(self.bad("acknowledged"));
        }
        self.read_at.get_or_insert(at);
        self.acked_at = Some(at);
        self.acked_by = Some(by.to_owned());
        Ok(Change::Changed)
    }

    fn bad(&self, what: &'static str) -> DirectiveError {
        DirectiveError::BadTransition {
            from: self.stage().as_str(),
            what,
        }
    }
}

/// Whether a unit is overdue at `now`: acknowledgement required, a deadline that has
/// passed, and no acknowledgement.
pub fn is_overdue(ack_required: bool, deadline: Option<i64>, state: &UnitState, now: i64) -> bool {
    ack_required && state.acked_at.is_none() && deadline.is_some_and(|deadline| now > deadline)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path() {
        let mut state = UnitState::pending("d1", "u1", 1);
        assert_eq!(state.stage(), Stage::Pending);
        assert_eq!(state.deliver(10), Change::Changed);
        assert_eq!(state.stage(), Stage::Delivered);
        assert_eq!(state.read(20), Ok(Change::Changed));
        assert_eq!(state.stage(), Stage::Read);
        assert_eq!(state.acknowledge(true, "alice", 30), Ok(Change::Changed));
        assert_eq!(state.stage(), Stage::Acknowledged);
        assert_eq!(
            (state.delivered_at, state.read_at, state.acked_at),
            (Some(10), Some(20), Some(30))
        );
    }

    #[test]
    fn repeats_are_idempotent_and_keep_the_first() {
        let mut state = UnitState::pending("d1", "u1", 1);
        state.deliver(10);
        assert_eq!(state.deliver(11), Change::Unchanged);
        assert_eq!(state.acknowledge(true, "alice", 30), Ok(Change::Changed));
        assert_eq!(state.read_at, Some(30), "acknowledging implies reading");
        assert_eq!(state.acknowledge(true, "bob", 40), Ok(Change::Unchanged));
        assert_eq!(state.read(50), Ok(Change::Unchanged));
        assert_eq!(state.deliver(60), Change::Unchanged);
        assert_eq!(
            (
                state.acked_by.as_deref(),
                state.acked_at,
                state.delivered_at
            ),
            (Some("alice"), Some(30), Some(10))
        );
    }

    #[test]
    fn invalid_transitions_are_rejected() {
        let mut state = UnitState::pending("d1", "u1", 1);
        assert!(matches!(
            state.read(1),
            Err(DirectiveError::BadTransition {
                from: "pending",
                ..
            })
        ));
        assert!(state.acknowledge(true, "alice", 1).is_err());
        state.deliver(1);
        assert_eq!(
            state.acknowledge(false, "alice", 2),
            Err(DirectiveError::AckNotRequired)
        );
        assert_eq!(state, {
            let mut expected = UnitState::pending("d1", "u1", 1);
            expected.delivered_at = Some(1);
            expected
        });
    }

    #[test]
    fn overdue_is_derived() {
        let mut state = UnitState::pending("d1", "u1", 1);
        assert!(
            !is_overdue(true, Some(100), &state, 100),
            "at the deadline: not yet"
        );
        assert!(is_overdue(true, Some(100), &state, 101));
        assert!(!is_overdue(false, Some(100), &state, 101), "no ack asked");
        assert!(!is_overdue(true, None, &state, i64::MAX), "no deadline");
        state.deliver(1);
        state.acknowledge(true, "a", 200).unwrap();
        assert!(
            !is_overdue(true, Some(100), &state, 300),
            "late but acknowledged"
        );
    }
}
