//! The dashboard's numbers: one directive's unit states summed per subtree (every unit
//! that has a targeted unit at or below it) and per level, with percentages and the
//! median time to acknowledge. A pure function over the states and the org tree.

use std::collections::{BTreeMap, HashMap};

use crate::org::{Level, Unit, tree};

use super::Directive;
use super::state::{Stage, UnitState};

/// Counts over a set of targeted units. A unit that has read counts as delivered too,
/// one that has acknowledged as read and delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub targeted: u64,
    pub delivered: u64,
    pub read: u64,
    pub acknowledged: u64,
    pub overdue: u64,
    /// Median of (acknowledged at − directive sent at), ms; `None` before any
    /// acknowledgement. With an even number, the lower-rounded mean of the middle two.
    pub median_ack_ms: Option<i64>,
}

impl Counts {
    fn percent(&self, part: u64) -> f64 {
        if self.targeted == 0 {
            0.0
        } else {
            part as f64 * 100.0 / self.targeted as f64
        }
    }
    pub fn percent_delivered(&self) -> f64 {
        self.percent(self.delivered)
    }
    pub fn percent_read(&self) -> f64 {
        self.percent(self.read)
    }
    pub fn percent_acknowledged(&self) -> f64 {
        self.percent(self.acknowledged)
    }
}

/// Everything the dashboard shows for one directive at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollUp {
    /// Over every targeted unit.
    pub total: Counts,
    /// Per unit id: over the targeted units in that unit's subtree (itself included).
    /// Only units with at least one targeted unit at or below them appear.
    pub by_subtree: BTreeMap<String, Counts>,
    /// Per level: over the targeted units at that level.
    pub by_level: BTreeMap<Level, Counts>,
    /// Targeted units that have not acknowledged (only when acknowledgement is
    /// required), in path order.
    pub not_acknowledged: Vec<String>,
}

#[derive(Default)]
struct Tally {
    counts: Counts,
    ack_ms: Vec<i64>,
}

impl Tally {
    fn add(&mut self, state: &UnitState, overdue: bool, ack_ms: Option<i64>) {
        let stage = state.stage();
        let counts = &mut self.counts;
        counts.targeted += 1;
        counts.delivered += u64::from(stage >= Stage::Delivered);
        counts.read += u64::from(stage >= Stage::Read);
        counts.acknowledged += u64::from(stage == Stage::Acknowledged);
        counts.overdue += u64::from(overdue);
        self.ack_ms.extend(ack_ms);
    }

    fn finish(mut self) -> Counts {
        self.ack_ms.sort_unstable();
        let n = self.ack_ms.len();
        self.counts.median_ack_ms = match n {
            0 => None,
            _ if n % 2 == 1 => Some(self.ack_ms[n / 2]),
            _ => Some((self.ack_ms[n / 2 - 1] + self.ack_ms[n / 2]).div_euclid(2)),
        };
        self.counts
    }
}

/// Sums `states` (one per targeted unit of `directive`) at time `now`. `units` is the
/// org tree (any superset of the targeted units and their ancestors); a state whose unit
/// is missing from it (deleted since) counts only in `total`.
pub fn rollup(directive: &Directive, states: &[UnitState], units: &[Unit], now: i64) -> RollUp {
    let by_id: HashMap<&str, &Unit> = units.iter().map(|u| (u.id.as_str(), u)).collect();
    let mut total = Tally::default();
    let mut by_subtree: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_level: BTreeMap<Level, Tally> = BTreeMap::new();
    let mut not_acknowledged: Vec<(&str, &str)> = Vec::new();
    for state in states {
        let overdue = directive.is_overdue(state, now);
        let ack_ms = state.acked_at.map(|at| at - directive.created_at);
        total.add(state, overdue, ack_ms);
        let unit = by_id.get(state.unit_id.as_str());
        if directive.ack_required && state.acked_at.is_none() {
            let path = unit.map_or("", |u| u.path.as_str());
            not_acknowledged.push((path, &state.unit_id));
        }
        let Some(unit) = unit else { continue };
        by_level
            .entry(unit.level)
            .or_default()
            .add(state, overdue, ack_ms);
        for id in tree::path_ids(&unit.path) {
            by_subtree
                .entry(id.to_owned())
                .or_default()
                .add(state, overdue, ack_ms);
        }
    }
    not_acknowledged.sort_unstable();
    RollUp {
        total: total.finish(),
        by_subtree: by_subtree
            .into_iter()
            .map(|(id, tally)| (id, tally.finish()))
            .collect(),
        by_level: by_level
            .into_iter()
            .map(|(level, tally)| (level, tally.finish()))
            .collect(),
        not_acknowledged: not_acknowledged
            .into_iter()
            .map(|(_, id)| id.to_owned())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directive::{Priority, Target};
    use crate::org::Kind;

    fn unit(id: &str, path: &str, level: Level) -> Unit {
        Unit {
            id: id.to_owned(),
            parent: None,
            level,
            kind: Kind::Other,
            name: id.to_owned(),
            tags: Vec::new(),
            path: path.to_owned(),
        }
    }

    fn directive(deadline: Option<i64>) -> Directive {
        Directive {
            id: "d1".into(),
            title: "t".into(),
            body: String::new(),
            priority: Priority::Routine,
            target: Target::subtree("hq"),
            ack_required: true,
            deadline,
            created_by: "hq-admin".into(),
            created_at: 1_000,
            version: 1,
        }
    }

    fn state(
        unit: &str,
        delivered: Option<i64>,
        read: Option<i64>,
        acked: Option<i64>,
    ) -> UnitState {
        UnitState {
            delivered_at: delivered,
            read_at: read,
            acked_at: acked,
            acked_by: acked.map(|_| "someone".to_owned()),
            ..UnitState::pending("d1", unit, 1)
        }
    }

    #[test]
    fn counts_per_subtree_and_level() {
        let units = vec![
            unit("hq", "/hq/", Level::Headquarters),
            unit("c1", "/hq/c1/", Level::City),
            unit("a", "/hq/c1/a/", Level::Unit),
            unit("b", "/hq/c1/b/", Level::Unit),
            unit("c2", "/hq/c2/", Level::City),
            unit("c", "/hq/c2/c/", Level::Unit),
        ];
        let states = vec![
            state("a", Some(1_100), Some(1_200), Some(1_300)),
            state("b", Some(1_100), Some(1_500), None),
            state("c", Some(1_100), Some(1_200), Some(1_900)),
            state("c2", None, None, None),
        ];
        let roll = rollup(&directive(Some(5_000)), &states, &units, 6_000);
        let total = &roll.total;
        assert_eq!(
            (
                total.targeted,
                total.delivered,
                total.read,
                total.acknowledged,
                total.overdue
            ),
            (4, 3, 3, 2, 2)
        );
        assert_eq!(total.median_ack_ms, Some(600), "mean of 300 and 900");
        assert_eq!(total.percent_acknowledged(), 50.0);
        let c1 = &roll.by_subtree["c1"];
        assert_eq!(
            (c1.targeted, c1.acknowledged, c1.median_ack_ms),
            (2, 1, Some(300))
        );
        assert_eq!(roll.by_subtree["c2"].targeted, 2);
        assert_eq!(roll.by_subtree["hq"], *total);
        assert!(!roll.by_subtree.contains_key("hq/"));
        assert_eq!(roll.by_level[&Level::Unit].targeted, 3);
        assert_eq!(roll.by_level[&Level::City].delivered, 0);
        assert!(!roll.by_level.contains_key(&Level::Headquarters));
        assert_eq!(roll.not_acknowledged, ["b", "c2"]);
        let early = rollup(&directive(Some(5_000)), &states, &units, 5_000);
        assert_eq!(early.total.overdue, 0);
    }

    #[test]
    fn empty_and_unknown_units() {
        let roll = rollup(&directive(None), &[], &[], 0);
        assert_eq!(roll.total, Counts::default());
        assert_eq!(roll.total.percent_delivered(), 0.0);
        let roll = rollup(
            &directive(None),
            &[state("gone", Some(1), None, None)],
            &[],
            0,
        );
        assert_eq!(roll.total.delivered, 1);
        assert!(roll.by_subtree.is_empty() && roll.by_level.is_empty());
    }
}
