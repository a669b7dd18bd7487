//! Feedback from units, the pure part: a thread opened by a unit (a `reply`, optionally
//! about a directive, or a `problem` report), its messages, and the status rules. The
//! store ([`crate::store`]) records the unit's path and parent on the thread when it is
//! opened, so headquarters and the parent see it at the same moment (flat, not relayed).
//!
//! # Status rules ([`after_message`], [`close`])
//! - A thread starts `open` with the unit's first message.
//! - A message from anyone other than the thread's unit (its parent's people or
//!   headquarters) makes it `answered`.
//! - A message from the thread's unit on an `answered` thread reopens it (`open`): the
//!   answer did not settle it. On an `open` thread it stays `open`.
//! - Either side may close it; a `closed` thread takes no more messages and cannot be
//!   closed again (a new problem is a new thread).

use thiserror::Error;

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Largest message body, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// What a thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedbackKind {
    /// An answer to a directive (or a general reply).
    Reply,
    /// A problem the unit raises.
    Problem,
}

impl FeedbackKind {
    pub const ALL: [FeedbackKind; 2] = [FeedbackKind::Reply, FeedbackKind::Problem];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Reply => "reply",
            FeedbackKind::Problem => "problem",
        }
    }

    pub fn parse(text: &str) -> Result<FeedbackKind, FeedbackError> {
        FeedbackKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| FeedbackError::BadKind(text.to_owned()))
    }
}

/// Where a thread stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Open,
    Answered,
    Closed,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Open, Status::Answered, Status::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Answered => "answered",
            Status::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Result<Status, FeedbackError> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| FeedbackError::BadStatus(text.to_owned()))
    }
}

/// The status after a message; `from_thread_unit` when the author speaks for the unit
/// that opened the thread.
pub fn after_message(status: Status, from_thread_unit: bool) -> Result<Status, FeedbackError> {
    match (status, from_thread_unit) {
        (Status::Closed, _) => Err(FeedbackError::Closed),
        (_, true) => Ok(Status::Open),
        (_, false) => Ok(Status::Answered),
    }
}

/// The status after closing.
pub fn close(status: Status) -> Result<Status, FeedbackError> {
    match status {
        Status::Closed => Err(FeedbackError::Closed),
        _ => Ok(Status::Closed),
    }
}

/// Checks a subject: not blank, at most [`MAX_SUBJECT_CHARS`].
pub fn validate_subject(subject: &str) -> Result<(), FeedbackError> {
    if subject.trim().is_empty() {
        return Err(FeedbackError::EmptySubject);
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(FeedbackError::SubjectTooLong(MAX_SUBJECT_CHARS));
    }
    Ok(())
}

/// Checks a message body: not blank, at most [`MAX_MESSAGE_BYTES`].
pub fn validate_body(body: &str) -> Result<(), FeedbackError> {
    if body.trim().is_empty() {
        return Err(FeedbackError::EmptyBody);
    }
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(FeedbackError::BodyTooLarge {
            size: body.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    Ok(())
}

/// Why feedback was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FeedbackError {
    #[error("feedback kind {0:?} is not one of reply, problem")]
    BadKind(String),
    #[error("status {0:?} is not one of open, answered, closed")]
    BadStatus(String),
    #[error("the subject is empty")]
    EmptySubject,
    #[error("the subject is longer than {0} characters")]
    SubjectTooLong(usize),
    #[error("the message is empty")]
    EmptyBody,
    #[error("the message is {size} bytes; at most {max} are allowed")]
    BodyTooLarge { size: usize, max: usize },
    #[error("the thread is closed")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules() {
        assert_eq!(after_message(Status::Open, false), Ok(Status::Answered));
        assert_eq!(after_message(Status::Open, true), Ok(Status::Open));
        assert_eq!(after_message(Status::Answered, true), Ok(Status::Open));
        assert_eq!(after_message(Status::Answered, false), Ok(Status::Answered));
        assert_eq!(
            after_message(Status::Closed, true),
            Err(FeedbackError::Closed)
        );
        assert_eq!(close(Status::Answered), Ok(Status::Closed));
        assert_eq!(close(Status::Closed), Err(FeedbackError::Closed));
    }

    #[test]
    fn names_round_trip_and_input_is_checked() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Ok(status));
        }
        for kind in FeedbackKind::ALL {
            assert_eq!(FeedbackKind::parse(kind.as_str()), Ok(kind));
        }
        assert!(Status::parse("pending").is_err() && FeedbackKind::parse("x").is_err());
        assert_eq!(validate_subject("  "), Err(FeedbackError::EmptySubject));
        assert!(validate_subject(&"x".repeat(MAX_SUBJECT_CHARS + 1)).is_err());
        assert_eq!(validate_body(""), Err(FeedbackError::EmptyBody));
        assert!(validate_body(&"x".repeat(MAX_MESSAGE_BYTES + 1)).is_err());
        assert!(validate_subject("Water outage").is_ok() && validate_body("help").is_ok());
    }
}
