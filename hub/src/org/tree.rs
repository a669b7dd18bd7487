//! Tree arithmetic on materialised paths, and import planning. Pure: no IO.
//!
//! # Why a materialised path
//! Each unit stores `path` = `/` + the ids from the root down to itself, each followed by
//! `/`. A subtree is then one range scan on an ordinary B-tree index
//! (`path >= '/sx/xian/' AND path < '/sx/xian0'`, see [`subtree_range`]) on both SQLite and
//! PostgreSQL (where the column is `COLLATE "C"` so comparison is bytewise), and a unit's
//! ancestors are read off its own path without a query. A recursive CTE would need no extra
//! column, but every subtree read — the hot path once directives target subtrees and
//! moderators are scoped to one — would walk the tree level by level. The price is paid on
//! a move: one `UPDATE` rewrites the prefix of every path in the moved subtree, which is
//! rare and bounded by the subtree's size.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{Level, OrgError, Unit, UnitSpec};

/// The path of a root unit.
pub fn root_path(id: &str) -> String {
    format!("/{id}/")
}

/// The path of unit `id` under a parent whose path is `parent_path`.
pub fn child_path(parent_path: &str, id: &str) -> String {
    format!("{parent_path}{id}/")
}

/// The ids along a path, root first, the unit itself last.
pub fn path_ids(path: &str) -> Vec<&str> {
    path.split('/').filter(|part| !part.is_empty()).collect()
}

/// The half-open range `[low, high)` of paths inside the subtree rooted at `path` (the
/// root included): exactly the strings that start with `path`. `path` ends with `/`, and
/// `0` is the byte after `/`, so `high` is `path` with its last byte replaced by `0`.
pub fn subtree_range(path: &str) -> (String, String) {
    let stem = path.strip_suffix('/').unwrap_or(path);
    (path.to_owned(), format!("{stem}0"))
}

/// Checks that a unit at `child_level` may sit under `parent`.
pub fn check_parent(child_id: &str, child_level: Level, parent: &Unit) -> Result<(), OrgError> {
    if parent.level >= child_level {
        return Err(OrgError::LevelOrder {
            child: child_id.to_owned(),
            child_level,
            parent: parent.id.clone(),
            parent_level: parent.level,
        });
    }
    Ok(())
}

/// Checks moving `unit` (with its subtree) under `new_parent` and returns the unit's new
/// path. Rejects a move under the unit itself or one of its descendants, and a parent
/// whose level is not above the unit's (the descendants are below the unit already).
pub fn check_move(unit: &Unit, new_parent: &Unit) -> Result<String, OrgError> {
    if new_parent.is_within(unit) {
        return Err(OrgError::Cycle {
            unit: unit.id.clone(),
            new_parent: new_parent.id.clone(),
        });
    }
    check_parent(&unit.id, unit.level, new_parent)?;
    Ok(child_path(&new_parent.path, &unit.id))
}

/// One row of an import: the unit and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub line: usize,
    pub spec: UnitSpec,
}

/// A problem with one row (or the file as a whole, line 1) of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub message: String,
}

impl RowError {
    pub fn new(line: usize, message: impl fmt::Display) -> RowError {
        RowError {
            line,
            message: message.to_string(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Every problem found in an import, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportErrors(pub Vec<RowError>);

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "import rejected, nothing was applied ({} problem{}):",
            self.0.len(),
            if self.0.len() == 1 { "" } else { "s" }
        )?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ImportErrors {}

/// What an import writes: units to insert (parents before children) and units whose
/// stored row changes (fields from the file, or only the path because an ancestor moved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportPlan {
    pub inserts: Vec<Unit>,
    pub updates: Vec<Unit>,
    /// Rows of the file that match the store already.
    pub unchanged: usize,
}

/// A unit of the tree as it would be after the import.
struct Node<'a> {
    parent: Option<&'a str>,
    level: Level,
    /// The import line that defines it; `None` for a unit only in the store.
    line: Option<usize>,
}

/// Checks `rows` against the `existing` tree as a whole and plans the writes. A row whose
/// id exists updates that unit (and moves it, with its subtree, when the parent changes);
/// other rows create units; units not in the file are left alone. Reports every problem
/// (bad fields, duplicate ids, unknown parents, level order, a second root, cycles) with
/// its line, so that nothing is applied unless everything can be.
pub fn plan_import(existing: &[Unit], rows: &[ImportRow]) -> Result<ImportPlan, ImportErrors> {
    let mut errors = Vec::new();
    let mut nodes: HashMap<&str, Node<'_>> = existing
        .iter()
        .map(|unit| {
            let node = Node {
                parent: unit.parent.as_deref(),
                level: unit.level,
                line: None,
            };
            (unit.id.as_str(), node)
        })
        .collect();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    let mut valid_rows = Vec::new();
    for row in rows {
        let id = row.spec.id.as_str();
        if let Some(first) = first_line.get(id) {
            errors.push(RowError::new(
                row.line,
                format!("duplicate id {id:?} (first given on line {first})"),
            ));
            continue;
        }
        if super::validate_id(id).is_ok() {
            first_line.insert(id, row.line);
        }
        if let Err(error) = row.spec.validate() {
            errors.push(RowError::new(row.line, format!("unit {id:?}: {error}")));
            continue;
        }
        valid_rows.push(row);
    }
    for row in &valid_rows {
        let node = Node {
            parent: row.spec.parent.as_deref(),
            level: row.spec.level,
            line: Some(row.line),
        };
        nodes.insert(row.spec.id.as_str(), node);
    }
    // Rows whose own fields were bad: keep their ids known so that their children do not
    // also report "unknown parent".
    let bad_ids: HashSet<&str> = rows
        .iter()
        .map(|row| row.spec.id.as_str())
        .filter(|id| !nodes.contains_key(id))
        .collect();

    // Parents and level order, for every edge that the file defines or whose parent's
    // level the file changes.
    for (&id, node) in &nodes {
        let Some(parent_id) = node.parent else {
            continue;
        };
        let Some(parent) = nodes.get(parent_id) else {
            if let Some(line) = node.line
                && !bad_ids.contains(parent_id)
            {
                errors.push(RowError::new(
                    line,
                    format!(
                        "unit {id:?}: unknown parent {parent_id:?} (neither in the file nor in \
                         the store)"
                    ),
                ));
            }
            continue;
        };
        if parent.level >= node.level
            && let Some(line) = node.line.or(parent.line)
        {
            let error = OrgError::LevelOrder {
                child: id.to_owned(),
                child_level: node.level,
                parent: parent_id.to_owned(),
                parent_level: parent.level,
            };
            errors.push(RowError::new(line, error));
        }
    }

    // One root.
    let mut roots: Vec<(&str, Option<usize>)> = nodes
        .iter()
        .filter(|(_, node)| node.parent.is_none())
        .map(|(&id, node)| (id, node.line))
        .collect();
    roots.sort_by_key(|&(id, line)| (line.is_some(), line, id));
    if let Some(&(first, _)) = roots.first() {
        for &(id, line) in &roots[1..] {
            if let Some(line) = line {
                let error = OrgError::SecondRoot {
                    existing: first.to_owned(),
                    new: id.to_owned(),
                };
                errors.push(RowError::new(line, error));
            }
        }
    }

    // Cycles: only a row of the file can close one.
    for row in &valid_rows {
        let id = row.spec.id.as_str();
        let mut chain = vec![id];
        let mut current = row.spec.parent.as_deref();
        while let Some(step) = current {
            chain.push(step);
            if step == id {
                errors.push(RowError::new(
                    row.line,
                    format!(
                        "unit {id:?} would be its own ancestor: {}",
                        chain.join(" → parent ")
                    ),
                ));
                break;
            }
            if chain.len() > nodes.len() + 1 {
                break; // a cycle above this row; its own rows report it
            }
            current = nodes.get(step).and_then(|node| node.parent);
        }
    }

    if !errors.is_empty() {
        errors.sort_by_key(|error| error.line);
        return Err(ImportErrors(errors));
    }

    let paths = compute_paths(&nodes);
    let existing_by_id: HashMap<&str, &Unit> = existing
        .iter()
        .map(|unit| (unit.id.as_str(), unit))
        .collect();
    let mut plan = ImportPlan::default();
    for row in &valid_rows {
        let spec = &row.spec;
        let unit = Unit {
            id: spec.id.clone(),
            parent: spec.parent.clone(),
            level: spec.level,
            kind: spec.kind,
            name: spec.name.clone(),
            tags: spec.tags.clone(),
            path: paths[spec.id.as_str()].clone(),
        };
        match existing_by_id.get(spec.id.as_str()) {
            None => plan.inserts.push(unit),
            Some(&old) if *old == unit => plan.unchanged += 1,
            Some(_) => plan.updates.push(unit),
        }
    }
    for unit in existing {
        if nodes[unit.id.as_str()].line.is_none() && paths[unit.id.as_str()] != unit.path {
            let mut moved = unit.clone();
            moved.path = paths[unit.id.as_str()].clone();
            plan.updates.push(moved);
        }
    }
    // Parents before children: a parent's path is a proper prefix of its child's.
    plan.inserts.sort_by(|a, b| a.path.cmp(&b.path));
    plan.updates.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(plan)
}

/// Paths of every node; the caller has checked that every parent exists and there is no
/// cycle.
fn compute_paths(nodes: &HashMap<&str, Node<'_>>) -> HashMap<String, String> {
    let mut paths: HashMap<String, String> = HashMap::with_capacity(nodes.len());
    for &start in nodes.keys() {
        let mut chain = Vec::new();
        let mut current = Some(start);
        let mut base = String::from("/");
        while let Some(id) = current {
            if let Some(known) = paths.get(id) {
                base = known.clone();
                break;
            }
            chain.push(id);
            current = nodes.get(id).and_then(|node| node.parent);
        }
        for id in chain.into_iter().rev() {
            base = child_path(&base, id);
            paths.insert(id.to_owned(), base.clone());
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::Kind;

    fn unit(id: &str, parent: Option<&Unit>, level: Level) -> Unit {
        Unit {
            id: id.into(),
            parent: parent.map(|p| p.id.clone()),
            level,
            kind: Kind::Other,
            name: id.into(),
            tags: vec![],
            path: match parent {
                Some(p) => child_path(&p.path, id),
                None => root_path(id),
            },
        }
    }

    fn row(line: usize, id: &str, parent: Option<&str>, level: Level) -> ImportRow {
        ImportRow {
            line,
            spec: UnitSpec {
                id: id.into(),
                parent: parent.map(Into::into),
                level,
                kind: Kind::Other,
                name: id.into(),
                tags: vec![],
            },
        }
    }

    #[test]
    fn paths_and_ranges() {
        assert_eq!(root_path("sx"), "/sx/");
        assert_eq!(child_path("/sx/", "xian"), "/sx/xian/");
        assert_eq!(path_ids("/sx/xian/yanta/"), ["sx", "xian", "yanta"]);
        let (low, high) = subtree_range("/sx/xian/");
        assert_eq!((low.as_str(), high.as_str()), ("/sx/xian/", "/sx/xian0"));
        for inside in ["/sx/xian/", "/sx/xian/a/", "/sx/xian/~~/"] {
            assert!(low.as_str() <= inside && inside < high.as_str(), "{inside}");
        }
        for outside in [
            "/sx/xian-2/",
            "/sx/xian./",
            "/sx/xianz/",
            "/sx/",
            "/sx/xia/",
        ] {
            assert!(
                !(low.as_str() <= outside && outside < high.as_str()),
                "{outside}"
            );
        }
    }

    #[test]
    fn move_rules() {
        let hq = unit("hq", None, Level::Headquarters);
        let city = unit("c1", Some(&hq), Level::City);
        let city2 = unit("c2", Some(&hq), Level::City);
        let county = unit("k1", Some(&city), Level::County);
        assert_eq!(check_move(&county, &city2), Ok("/hq/c2/k1/".into()));
        assert!(matches!(
            check_move(&city, &county),
            Err(OrgError::Cycle { .. })
        ));
        assert!(matches!(
            check_move(&city, &city),
            Err(OrgError::Cycle { .. })
        ));
        assert!(matches!(
            check_move(&city, &city2),
            Err(OrgError::LevelOrder { .. })
        ));
        assert!(county.ancestor_ids() == ["hq", "c1"] && county.is_within(&city));
    }

    #[test]
    fn plan_creates_in_parent_order_whatever_the_file_order() {
        let rows = [
            row(2, "k1", Some("c1"), Level::County),
            row(3, "c1", Some("hq"), Level::City),
            row(4, "hq", None, Level::Headquarters),
        ];
        let plan = plan_import(&[], &rows).unwrap();
        let paths: Vec<&str> = plan.inserts.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["/hq/", "/hq/c1/", "/hq/c1/k1/"]);
        assert!(plan.updates.is_empty());
    }

    #[test]
    fn plan_moves_existing_descendants_with_a_reparented_unit() {
        let hq = unit("hq", None, Level::Headquarters);
        let c1 = unit("c1", Some(&hq), Level::City);
        let c2 = unit("c2", Some(&hq), Level::City);
        let k1 = unit("k1", Some(&c1), Level::County);
        let s1 = unit("s1", Some(&k1), Level::Unit);
        let existing = [hq, c1, c2, k1, s1.clone()];
        let plan = plan_import(&existing, &[row(2, "k1", Some("c2"), Level::County)]).unwrap();
        let paths: Vec<&str> = plan.updates.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["/hq/c2/k1/", "/hq/c2/k1/s1/"]);
        let same = plan_import(&existing, &[row(2, "s1", Some("k1"), Level::Unit)]).unwrap();
        assert_eq!((same.unchanged, same.updates.len()), (1, 0));
    }

    #[test]
    fn plan_reports_every_problem_with_its_line() {
        let hq = unit("hq", None, Level::Headquarters);
        let existing = [hq];
        let rows = [
            row(2, "c1", Some("hq"), Level::City),
            row(3, "c1", Some("hq"), Level::City),
            row(4, "k1", Some("nowhere"), Level::County),
            row(5, "k2", Some("k3"), Level::County),
            row(6, "k3", Some("k2"), Level::County),
            row(7, "hq2", None, Level::Headquarters),
            row(8, "u1", Some("c1"), Level::City),
            row(9, "c9", Some("hq"), Level::Headquarters),
            row(10, "u2", Some("c9"), Level::Unit),
        ];
        let errors = plan_import(&existing, &rows).unwrap_err().0;
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert!(
            errors[0]
                .message
                .contains("duplicate id \"c1\" (first given on line 2)")
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == 4 && e.message.contains("unknown parent"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == 5 && e.message.contains("own ancestor"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == 6 && e.message.contains("own ancestor"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == 7 && e.message.contains("second root"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == 8 && e.message.contains("must be below"))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.line == 9 && e.message.contains("cannot have a parent"))
        );
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
        assert!(!lines.contains(&2));
        assert!(
            !lines.contains(&10),
            "no knock-on error for the bad row's child"
        );
        let text = ImportErrors(errors).to_string();
        assert!(
            text.starts_with("import rejected, nothing was applied"),
            "{text}"
        );
    }

    #[test]
    fn a_level_change_that_breaks_an_existing_child_is_reported_on_the_changed_row() {
        let hq = unit("hq", None, Level::Headquarters);
        let c1 = unit("c1", Some(&hq), Level::City);
        let k1 = unit("k1", Some(&c1), Level::County);
        let errors = plan_import(&[hq, c1, k1], &[row(5, "c1", Some("hq"), Level::Unit)])
            .unwrap_err()
            .0;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 5);
    }
}
