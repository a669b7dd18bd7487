//! The organisation tree: headquarters → cities → counties → grassroots units.
//!
//! This module is pure: types, validation, path arithmetic, import planning, CSV/YAML
//! parsing and writing, and the demo organisation. Nothing here touches a database or the
//! clock; [`crate::store`] persists the tree and calls into these functions, so every rule
//! is unit-tested without a database.
//!
//! - [`tree`]: materialised paths, the level rule, and [`plan_import`](tree::plan_import),
//!   which checks a whole import against the existing tree and says what to write.
//! - [`exchange`]: the CSV and YAML formats (documented there), reading with a line number
//!   for every problem, and writing.
//! - [`demo`]: the deterministic demo organisation shaped like the seed's (Shaanxi).
//!
//! # Rules every stored tree keeps
//! - Exactly one root, and it is at level [`Level::Headquarters`].
//! - A unit's level is strictly below its parent's (headquarters > city > county > unit);
//!   levels may be skipped (a university directly under a city).
//! - A unit's `path` is `/` + the ids from the root down to the unit, each followed by `/`
//!   (`/sx/xian/xian-yanta/`), so a subtree is one index range scan and a unit's
//!   ancestors are read off its path.
//! - Ids are 1–64 ASCII letters, digits, `-`, `_` or `.`; names are 1–200 characters;
//!   tags are 1–64 characters without `;`, `,` or control characters, at most 32 a unit.

pub mod demo;
pub mod exchange;
pub mod tree;

use std::fmt;

use thiserror::Error;

/// Longest unit id, in bytes.
pub const MAX_ID_LEN: usize = 64;
/// Longest unit name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Most tags on one unit.
pub const MAX_TAGS: usize = 32;

/// Where a unit sits in the hierarchy. Ordered from the top: a child's level is always
/// strictly greater than its parent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The one root (the province).
    Headquarters,
    /// A city (prefecture) or a district with city standing.
    City,
    /// A county, district or county-level city.
    County,
    /// A grassroots unit: university, enterprise, station, …
    Unit,
}

impl Level {
    /// Every level, top first.
    pub const ALL: [Level; 4] = [Level::Headquarters, Level::City, Level::County, Level::Unit];

    /// The name used in the store, CSV, YAML and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Headquarters => "headquarters",
            Level::City => "city",
            Level::County => "county",
            Level::Unit => "unit",
        }
    }

    /// Parses [`Level::as_str`]'s names.
    pub fn parse(text: &str) -> Result<Level, OrgError> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str() == text)
            .ok_or_else(|| OrgError::UnknownLevel(text.to_owned()))
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a unit is. Independent of [`Level`]: a station may sit under a county or directly
/// under a city.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Headquarters,
    CityOffice,
    CountyOffice,
    University,
    Enterprise,
    Station,
    School,
    Community,
    Agency,
    Other,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 10] = [
        Kind::Headquarters,
        Kind::CityOffice,
        Kind::CountyOffice,
        Kind::University,
        Kind::Enterprise,
        Kind::Station,
        Kind::School,
        Kind::Community,
        Kind::Agency,
        Kind::Other,
    ];

    /// The name used in the store, CSV, YAML and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Headquarters => "headquarters",
            Kind::CityOffice => "city_office",
            Kind::CountyOffice => "county_office",
            Kind::University => "university",
            Kind::Enterprise => "enterprise",
            Kind::Station => "station",
            Kind::School => "school",
            Kind::Community => "community",
            Kind::Agency => "agency",
            Kind::Other => "other",
        }
    }

    /// Parses [`Kind::as_str`]'s names.
    pub fn parse(text: &str) -> Result<Kind, OrgError> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| OrgError::UnknownKind(text.to_owned()))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller supplies to create a unit, and what one row of an import holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    pub id: String,
    /// `None` only for the headquarters.
    pub parent: Option<String>,
    pub level: Level,
    pub kind: Kind,
    pub name: String,
    pub tags: Vec<String>,
}

impl UnitSpec {
    /// Checks the fields on their own (id, parent id, name, tags; a parent exactly when
    /// not headquarters). Where the unit goes in a tree is checked by [`tree`].
    pub fn validate(&self) -> Result<(), OrgError> {
        validate_id(&self.id)?;
        if let Some(parent) = &self.parent {
            validate_id(parent)?;
            if parent == &self.id {
                return Err(OrgError::OwnParent(self.id.clone()));
            }
        }
        match (&self.parent, self.level) {
            (Some(_), Level::Headquarters) => {
                return Err(OrgError::HeadquartersWithParent(self.id.clone()));
            }
            (None, level) if level != Level::Headquarters => {
                return Err(OrgError::MissingParent(self.id.clone(), level));
            }
            _ => {}
        }
        validate_name(&self.name)?;
        if self.tags.len() > MAX_TAGS {
            return Err(OrgError::TooManyTags(self.tags.len()));
        }
        for (index, tag) in self.tags.iter().enumerate() {
            validate_tag(tag)?;
            if self.tags[..index].contains(tag) {
                return Err(OrgError::DuplicateTag(tag.clone()));
            }
        }
        Ok(())
    }
}

/// A unit as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub id: String,
    pub parent: Option<String>,
    pub level: Level,
    pub kind: Kind,
    pub name: String,
    pub tags: Vec<String>,
    /// The materialised path: `/root/…/id/`.
    pub path: String,
}

impl Unit {
    /// The ids from the root down to this unit's parent, read off the path.
    pub fn ancestor_ids(&self) -> Vec<&str> {
        let mut ids = tree::path_ids(&self.path);
        ids.pop();
        ids
    }

    /// Whether this unit is `other` or inside `other`'s subtree.
    pub fn is_within(&self, other: &Unit) -> bool {
        self.path.starts_with(&other.path)
    }

    /// The fields an import or export carries.
    pub fn spec(&self) -> UnitSpec {
        UnitSpec {
            id: self.id.clone(),
            parent: self.parent.clone(),
            level: self.level,
            kind: self.kind,
            name: self.name.clone(),
            tags: self.tags.clone(),
        }
    }
}

/// A search over units; unset fields match everything. Results are in path order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFilter {
    pub level: Option<Level>,
    pub kind: Option<Kind>,
    /// Units carrying this tag.
    pub tag: Option<String>,
    /// Only units in this unit's subtree (itself included).
    pub within: Option<String>,
    /// At most this many results (`None` = all).
    pub limit: Option<u32>,
}

/// Why a unit, a tree change or an import row is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrgError {
    #[error("id must not be empty")]
    EmptyId,
    #[error("id {0:?} is longer than {MAX_ID_LEN} bytes")]
    IdTooLong(String),
    #[error("id {0:?} may contain only ASCII letters, digits, '-', '_' and '.'")]
    BadIdChar(String),
    #[error("name must not be empty")]
    EmptyName,
    #[error("name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
    #[error("name must not contain control characters (line breaks, tabs, …)")]
    NameControlChar,
    #[error("a tag must not be empty")]
    EmptyTag,
    #[error(
        "tag {0:?} is invalid: at most {MAX_TAG_CHARS} characters, no ';', ',' or control characters"
    )]
    BadTag(String),
    #[error("tag {0:?} is given twice")]
    DuplicateTag(String),
    #[error("{0} tags given, at most {MAX_TAGS} allowed")]
    TooManyTags(usize),
    #[error("unknown level {0:?}; expected headquarters, city, county or unit")]
    UnknownLevel(String),
    #[error(
        "unknown kind {0:?}; expected headquarters, city_office, county_office, university, \
         enterprise, station, school, community, agency or other"
    )]
    UnknownKind(String),
    #[error("unit {0:?} cannot be its own parent")]
    OwnParent(String),
    #[error("unit {0:?} is headquarters and so cannot have a parent")]
    HeadquartersWithParent(String),
    #[error("unit {0:?} is at level {1} and needs a parent; only headquarters has none")]
    MissingParent(String, Level),
    #[error(
        "unit {child:?} at level {child_level} cannot be under {parent:?} at level \
         {parent_level}: a unit's level must be below its parent's"
    )]
    LevelOrder {
        child: String,
        child_level: Level,
        parent: String,
        parent_level: Level,
    },
    #[error(
        "cannot move {unit:?} under {new_parent:?}: {new_parent:?} is inside {unit:?}'s own \
         subtree, so the move would make a cycle"
    )]
    Cycle { unit: String, new_parent: String },
    #[error(
        "the organisation already has a headquarters ({existing:?}); {new:?} cannot be a second root"
    )]
    SecondRoot { existing: String, new: String },
}

/// Checks a unit id.
pub fn validate_id(id: &str) -> Result<(), OrgError> {
    if id.is_empty() {
        return Err(OrgError::EmptyId);
    }
    if id.len() > MAX_ID_LEN {
        return Err(OrgError::IdTooLong(id.to_owned()));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(OrgError::BadIdChar(id.to_owned()));
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), OrgError> {
    if name.trim().is_empty() {
        return Err(OrgError::EmptyName);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(OrgError::NameTooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(OrgError::NameControlChar);
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), OrgError> {
    if tag.trim().is_empty() {
        return Err(OrgError::EmptyTag);
    }
    if tag.chars().count() > MAX_TAG_CHARS
        || tag.chars().any(|c| c == ';' || c == ',' || c.is_control())
        || tag.trim() != tag
    {
        return Err(OrgError::BadTag(tag.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str, parent: Option<&str>, level: Level) -> UnitSpec {
        UnitSpec {
            id: id.into(),
            parent: parent.map(Into::into),
            level,
            kind: Kind::Other,
            name: "名".into(),
            tags: vec![],
        }
    }

    #[test]
    fn ids() {
        assert_eq!(validate_id("xian-yanta_1.a"), Ok(()));
        assert_eq!(validate_id(""), Err(OrgError::EmptyId));
        assert!(matches!(validate_id("a/b"), Err(OrgError::BadIdChar(_))));
        assert!(matches!(validate_id("西安"), Err(OrgError::BadIdChar(_))));
        assert!(matches!(
            validate_id(&"a".repeat(65)),
            Err(OrgError::IdTooLong(_))
        ));
    }

    #[test]
    fn levels_and_kinds_round_trip_their_names() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.as_str()), Ok(level));
        }
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Ok(kind));
        }
        assert!(Level::parse("City").is_err());
        assert!(Kind::parse("").is_err());
        assert!(Level::Headquarters < Level::City && Level::County < Level::Unit);
    }

    #[test]
    fn spec_rules() {
        assert_eq!(spec("hq", None, Level::Headquarters).validate(), Ok(()));
        assert_eq!(spec("c", Some("hq"), Level::City).validate(), Ok(()));
        assert!(matches!(
            spec("hq", Some("x"), Level::Headquarters).validate(),
            Err(OrgError::HeadquartersWithParent(_))
        ));
        assert!(matches!(
            spec("c", None, Level::City).validate(),
            Err(OrgError::MissingParent(..))
        ));
        assert!(matches!(
            spec("c", Some("c"), Level::City).validate(),
            Err(OrgError::OwnParent(_))
        ));
        let mut bad = spec("c", Some("hq"), Level::City);
        bad.tags = vec!["a".into(), "a".into()];
        assert_eq!(bad.validate(), Err(OrgError::DuplicateTag("a".into())));
        bad.tags = vec!["a;b".into()];
        assert!(matches!(bad.validate(), Err(OrgError::BadTag(_))));
        bad.tags = vec![];
        bad.name = "a\nb".into();
        assert_eq!(bad.validate(), Err(OrgError::NameControlChar));
        bad.name = " ".into();
        assert_eq!(bad.validate(), Err(OrgError::EmptyName));
    }
}
