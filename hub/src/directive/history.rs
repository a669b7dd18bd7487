//! Corrections and retraction, the pure part: what a version holds ([`Content`]), what
//! changed between two versions ([`changes`]), and the kinds of entries a unit's inbox
//! holds ([`EntryKind`]).
//!
//! A directive is sent as version 1. A correction makes version N+1 with new
//! [`Content`] (the target and the sender stay; the units are those of the first send):
//! each targeted unit gets a `corrected` entry and must acknowledge again. A retraction
//! withdraws it: each unit gets a `retracted` entry and acknowledgements stop. Every
//! version is kept; earlier acknowledgements stay recorded with the version they were for.

use super::{Directive, DirectiveError, Priority};

/// What a unit's inbox entry says about a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// The directive arrived (its first version).
    Sent,
    /// A new version replaced the previous one; acknowledge again.
    Corrected,
    /// The directive was withdrawn.
    Retracted,
}

impl EntryKind {
    pub const ALL: [EntryKind; 3] = [EntryKind::Sent, EntryKind::Corrected, EntryKind::Retracted];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Sent => "sent",
            EntryKind::Corrected => "corrected",
            EntryKind::Retracted => "retracted",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// The fields a correction may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    pub title: String,
    pub body: String,
    pub priority: Priority,
    pub ack_required: bool,
    pub deadline: Option<i64>,
}

impl Content {
    /// The content of `directive` as it is.
    pub fn of(directive: &Directive) -> Content {
        Content {
            title: directive.title.clone(),
            body: directive.body.clone(),
            priority: directive.priority,
            ack_required: directive.ack_required,
            deadline: directive.deadline,
        }
    }

    /// `directive` corrected to this content as version `version`, checked like a new
    /// directive.
    pub fn apply(&self, directive: &Directive, version: i32) -> Result<Directive, DirectiveError> {
        let corrected = Directive {
            title: self.title.clone(),
            body: self.body.clone(),
            priority: self.priority,
            ack_required: self.ack_required,
            deadline: self.deadline,
            version,
            ..directive.clone()
        };
        corrected.validate()?;
        Ok(corrected)
    }
}

/// One field that differs between two versions, as text for a page to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// `title`, `body`, `priority`, `ack_required` or `deadline`.
    pub field: &'static str,
    pub before: String,
    pub after: String,
}

/// What changed from `before` to `after`, field by field in a fixed order (title, body,
/// priority, ack_required, deadline). A missing deadline reads as `none`, a deadline as
/// its ms since the epoch (pages format it).
pub fn changes(before: &Content, after: &Content) -> Vec<FieldChange> {
    let deadline = |d: Option<i64>| d.map_or_else(|| "none".to_owned(), |ms| ms.to_string());
    let pairs = [
        ("title", before.title.clone(), after.title.clone()),
        ("body", before.body.clone(), after.body.clone()),
        (
            "priority",
            before.priority.as_str().to_owned(),
            after.priority.as_str().to_owned(),
        ),
        (
            "ack_required",
            before.ack_required.to_string(),
            after.ack_required.to_string(),
        ),
        (
            "deadline",
            deadline(before.deadline),
            deadline(after.deadline),
        ),
    ];
    pairs
        .into_iter()
        .filter(|(_, before, after)| before != after)
        .map(|(field, before, after)| FieldChange {
            field,
            before,
            after,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content() -> Content {
        Content {
            title: "Flood drill".into(),
            body: "Meet at 9.".into(),
            priority: Priority::Important,
            ack_required: true,
            deadline: Some(100),
        }
    }

    #[test]
    fn changes_are_listed_field_by_field() {
        assert!(changes(&content(), &content()).is_empty());
        let after = Content {
            body: "Meet at 10.".into(),
            priority: Priority::Urgent,
            deadline: None,
            ..content()
        };
        let got = changes(&content(), &after);
        let fields: Vec<&str> = got.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["body", "priority", "deadline"]);
        assert_eq!(
            got[2],
            FieldChange {
                field: "deadline",
                before: "100".into(),
                after: "none".into()
            }
        );
        assert_eq!(
            (got[1].before.as_str(), got[1].after.as_str()),
            ("important", "urgent")
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in EntryKind::ALL {
            assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EntryKind::parse("deleted"), None);
    }

    #[test]
    fn a_correction_is_validated() {
        let directive = Directive {
            id: "d1".into(),
            title: "x".into(),
            body: String::new(),
            priority: Priority::Routine,
            target: super::super::Target::subtree("root"),
            ack_required: false,
            deadline: None,
            created_by: "a".into(),
            created_at: 0,
            version: 1,
        };
        let corrected = content().apply(&directive, 2).unwrap();
        assert_eq!(
            (corrected.version, corrected.title.as_str()),
            (2, "Flood drill")
        );
        assert_eq!(corrected.target, directive.target);
        let empty = Content {
            title: " ".into(),
            ..content()
        };
        assert_eq!(empty.apply(&directive, 2), Err(DirectiveError::EmptyTitle));
    }
}
