//! Who a directive goes to: subtrees, kinds, tags and explicit units, resolved against
//! the org tree to a set of unit ids by the pure [`Target::resolve`].
//!
//! Meaning: the units inside any of the `subtrees` (or the whole tree when there are
//! none), narrowed to the `kinds` (any of; all when empty) and to the `tags` (any of; all
//! when empty), plus every unit in `units`. A target with every list empty is rejected,
//! so "everyone" is said explicitly by targeting the root's subtree. Unknown unit ids in
//! `subtrees` or `units` are an error, not silently skipped.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::org::{Kind, Unit};

use super::DirectiveError;

/// A directive's target, before resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Roots of subtrees (each root included).
    pub subtrees: Vec<String>,
    pub kinds: Vec<Kind>,
    pub tags: Vec<String>,
    /// Units named one by one, added whatever the other lists say.
    pub units: Vec<String>,
}

impl Target {
    /// A target of one subtree.
    pub fn subtree(id: impl Into<String>) -> Target {
        Target {
            subtrees: vec![id.into()],
            ..Target::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.subtrees.is_empty()
            && self.kinds.is_empty()
            && self.tags.is_empty()
            && self.units.is_empty()
    }

    /// The ids of the targeted units among `units` (the whole tree), in path order, each
    /// once.
    pub fn resolve(&self, units: &[Unit]) -> Result<Vec<String>, DirectiveError> {
        if self.is_empty() {
            return Err(DirectiveError::EmptyTarget);
        }
        let by_id: HashMap<&str, &Unit> = units.iter().map(|u| (u.id.as_str(), u)).collect();
        let mut roots = Vec::with_capacity(self.subtrees.len());
        for id in &self.subtrees {
            let unit = by_id
                .get(id.as_str())
                .ok_or_else(|| DirectiveError::UnknownUnit(id.clone()))?;
            roots.push(unit.path.as_str());
        }
        // (path, id) so the result comes out in path order.
        let mut chosen: BTreeSet<(&str, &str)> = BTreeSet::new();
        for id in &self.units {
            let unit = by_id
                .get(id.as_str())
                .ok_or_else(|| DirectiveError::UnknownUnit(id.clone()))?;
            chosen.insert((&unit.path, &unit.id));
        }
        let filtered = !self.subtrees.is_empty() || !self.kinds.is_empty() || !self.tags.is_empty();
        if filtered {
            for unit in units {
                let in_scope =
                    roots.is_empty() || roots.iter().any(|root| unit.path.starts_with(root));
                let kind_ok = self.kinds.is_empty() || self.kinds.contains(&unit.kind);
                let tag_ok =
                    self.tags.is_empty() || unit.tags.iter().any(|tag| self.tags.contains(tag));
                if in_scope && kind_ok && tag_ok {
                    chosen.insert((&unit.path, &unit.id));
                }
            }
        }
        if chosen.is_empty() {
            return Err(DirectiveError::NoUnitsMatched);
        }
        Ok(chosen.into_iter().map(|(_, id)| id.to_owned()).collect())
    }

    /// The target as JSON, as the store keeps it:
    /// `{"subtrees":[…],"kinds":[…],"tags":[…],"units":[…]}`.
    pub fn to_json(&self) -> String {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        json!({
            "subtrees": self.subtrees,
            "kinds": kinds,
            "tags": self.tags,
            "units": self.units,
        })
        .to_string()
    }

    /// Reads what [`Target::to_json`] wrote. Missing lists are empty.
    pub fn from_json(text: &str) -> Result<Target, DirectiveError> {
        let bad = |why: String| DirectiveError::BadTarget(why);
        let value: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let list = |key: &str| -> Result<Vec<String>, DirectiveError> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| bad(format!("{key} holds a non-string")))
                    })
                    .collect(),
                Some(_) => Err(bad(format!("{key} is not a list"))),
            }
        };
        let kinds = list("kinds")?
            .iter()
            .map(|k| Kind::parse(k).map_err(|e| bad(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok(Target {
            subtrees: list("subtrees")?,
            kinds,
            tags: list("tags")?,
            units: list("units")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::Level;

    fn unit(id: &str, path: &str, level: Level, kind: Kind, tags: &[&str]) -> Unit {
        let ids: Vec<&str> = path.trim_matches('/').split('/').collect();
        Unit {
            id: id.to_owned(),
            parent: (ids.len() > 1).then(|| ids[ids.len() - 2].to_owned()),
            level,
            kind,
            name: id.to_owned(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            path: path.to_owned(),
        }
    }

    /// hq ─ c1 ─ k1 ─ u1 (university, "science")
    ///    │    └ s1 (station)
    ///    └ c10 ─ u2 (university)
    ///    └ c1-x (a sibling whose id extends c1's: must not count as inside c1)
    fn tree() -> Vec<Unit> {
        vec![
            unit("hq", "/hq/", Level::Headquarters, Kind::Headquarters, &[]),
            unit("c1", "/hq/c1/", Level::City, Kind::CityOffice, &[]),
            unit("k1", "/hq/c1/k1/", Level::County, Kind::CountyOffice, &[]),
            unit(
                "u1",
                "/hq/c1/k1/u1/",
                Level::Unit,
                Kind::University,
                &["science"],
            ),
            unit("s1", "/hq/c1/s1/", Level::Unit, Kind::Station, &["rural"]),
            unit("c10", "/hq/c10/", Level::City, Kind::CityOffice, &[]),
            unit("u2", "/hq/c10/u2/", Level::Unit, Kind::University, &[]),
            unit(
                "c1-x",
                "/hq/c1-x/",
                Level::City,
                Kind::CityOffice,
                &["science"],
            ),
        ]
    }

    #[test]
    fn a_subtree_is_exactly_its_units() {
        let ids = Target::subtree("c1").resolve(&tree()).unwrap();
        assert_eq!(ids, ["c1", "k1", "u1", "s1"]);
        assert_eq!(Target::subtree("hq").resolve(&tree()).unwrap().len(), 8);
    }

    #[test]
    fn kinds_and_tags_narrow_and_units_add() {
        let universities = Target {
            kinds: vec![Kind::University],
            ..Target::default()
        };
        assert_eq!(universities.resolve(&tree()).unwrap(), ["u1", "u2"]);
        let in_c1 = Target {
            subtrees: vec!["c1".into()],
            kinds: vec![Kind::University, Kind::Station],
            tags: vec!["rural".into()],
            units: vec!["u2".into(), "s1".into()],
        };
        assert_eq!(in_c1.resolve(&tree()).unwrap(), ["s1", "u2"]);
        let science = Target {
            tags: vec!["science".into()],
            ..Target::default()
        };
        assert_eq!(
            science.resolve(&tree()).unwrap(),
            ["c1-x", "u1"],
            "path order"
        );
        let overlapping = Target {
            subtrees: vec!["c1".into(), "k1".into()],
            units: vec!["u1".into()],
            ..Target::default()
        };
        assert_eq!(overlapping.resolve(&tree()).unwrap().len(), 4, "each once");
    }

    #[test]
    fn bad_targets_are_errors() {
        assert_eq!(
            Target::default().resolve(&tree()),
            Err(DirectiveError::EmptyTarget)
        );
        assert_eq!(
            Target::subtree("nope").resolve(&tree()),
            Err(DirectiveError::UnknownUnit("nope".into()))
        );
        let none = Target {
            subtrees: vec!["c10".into()],
            kinds: vec![Kind::Station],
            ..Target::default()
        };
        assert_eq!(none.resolve(&tree()), Err(DirectiveError::NoUnitsMatched));
    }

    #[test]
    fn json_round_trip() {
        let target = Target {
            subtrees: vec!["c1".into()],
            kinds: vec![Kind::University],
            tags: vec!["a \"b\"".into()],
            units: vec!["u2".into()],
        };
        assert_eq!(Target::from_json(&target.to_json()).unwrap(), target);
        assert!(Target::from_json("{\"kinds\":[\"spaceship\"]}").is_err());
        assert!(Target::from_json("[").is_err());
    }
}
