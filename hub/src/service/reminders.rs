//! Reminders and escalation: a unit that has not acknowledged a directive is reminded
//! at intervals; after T1 its parent unit's people are told, after T2 its grandparent's.
//!
//! [`due`] decides, with no IO and an explicit `now`, which nudges one silent unit is
//! owed; [`Services::run_jobs`] looks for them every `check_interval` (and sends the
//! scheduled directives that are due), records each
//! in the store first (exactly once, even with several nodes: the insert that succeeds
//! sends) and pushes it on the unit's (or the ancestor's) `unit:` channel:
//! - `{"type":"reminder","number":n,"directive":{id,title,priority,deadline}}` to the unit;
//! - `{"type":"escalation","level":1|2,"directive":{…},"unit":{id,name}}` to the parent
//!   (level 1) or grandparent (level 2).
//!
//! After a node was down, a unit gets the latest reminder that is due, not every one it
//! missed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rootcast_config::DirectivesConfig;
use serde_json::{Value, json};

use super::directives::publish;
use super::{ServiceError, Services, now_ms, unit_channel};
use crate::node::Node;
use crate::org::Unit;

/// One nudge for one silent unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nudge {
    /// The n-th reminder to the unit (from 1).
    Reminder(i64),
    /// The parent unit is told (after T1).
    Parent,
    /// The grandparent unit is told (after T2).
    Grandparent,
}

impl Nudge {
    /// The kind and number the store records.
    pub fn key(self) -> (&'static str, i64) {
        match self {
            Nudge::Reminder(n) => ("reminder", n),
            Nudge::Parent => ("parent", 1),
            Nudge::Grandparent => ("grandparent", 1),
        }
    }

    fn from_key(kind: &str, number: i64) -> Option<Nudge> {
        match kind {
            "reminder" => Some(Nudge::Reminder(number)),
            "parent" => Some(Nudge::Parent),
            "grandparent" => Some(Nudge::Grandparent),
            _ => None,
        }
    }
}

/// The nudges a unit silent since `sent_at` is owed at `now`, given those it has had.
pub fn due(policy: &DirectivesConfig, sent_at: i64, now: i64, had: &HashSet<Nudge>) -> Vec<Nudge> {
    let elapsed = now - sent_at;
    let mut out = Vec::new();
    let interval = millis(policy.reminder_interval);
    if interval > 0 && elapsed >= interval {
        let latest = (elapsed / interval).min(i64::from(policy.max_reminders));
        let had_latest = had
            .iter()
            .any(|n| matches!(n, Nudge::Reminder(k) if *k >= latest));
        if latest >= 1 && !had_latest {
            out.push(Nudge::Reminder(latest));
        }
    }
    for (after, nudge) in [
        (policy.escalate_to_parent_after, Nudge::Parent),
        (policy.escalate_to_grandparent_after, Nudge::Grandparent),
    ] {
        let after = millis(after);
        if after > 0 && elapsed >= after && !had.contains(&nudge) {
            out.push(nudge);
        }
    }
    out
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// How far back to look: past this, every nudge a unit can be owed has been sent.
fn horizon(policy: &DirectivesConfig) -> i64 {
    let reminders =
        millis(policy.reminder_interval).saturating_mul(i64::from(policy.max_reminders));
    let latest = reminders
        .max(millis(policy.escalate_to_parent_after))
        .max(millis(policy.escalate_to_grandparent_after));
    // A day of slack for a node that was down.
    latest.saturating_add(86_400_000)
}

impl Services {
    /// The directive jobs of this node: every `policy.check_interval` it sends the
    /// scheduled directives that are due, then the due reminders and escalations, until
    /// the task is aborted or the node shuts down. Failures are logged and retried at the
    /// next check.
    pub async fn run_jobs(self: Arc<Self>, node: Arc<Node>, policy: DirectivesConfig) {
        let mut ticker = tokio::time::interval(policy.check_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if node.is_shutting_down() {
                return;
            }
            if let Err(error) = self.send_due_scheduled(&node, now_ms()).await {
                tracing::warn!(%error, "sending scheduled directives failed; retrying at the next check");
            }
            if let Err(error) = self.send_due_nudges(&node, &policy, now_ms()).await {
                tracing::warn!(%error, "sending reminders failed; retrying at the next check");
            }
        }
    }

    /// One check: sends every nudge due at `now`; returns how many were sent.
    pub async fn send_due_nudges(
        &self,
        node: &Node,
        policy: &DirectivesConfig,
        now: i64,
    ) -> Result<usize, ServiceError> {
        let since = now.saturating_sub(horizon(policy));
        let silent = self.store.silent_units(since).await?;
        if silent.is_empty() {
            return Ok(0);
        }
        let mut had: HashMap<(String, String), HashSet<Nudge>> = HashMap::new();
        for (directive, unit, kind, number) in self.store.nudges_since(since).await? {
            if let Some(nudge) = Nudge::from_key(&kind, number) {
                had.entry((directive, unit)).or_default().insert(nudge);
            }
        }
        let none = HashSet::new();
        let mut units: Option<HashMap<String, Unit>> = None;
        let mut directives: HashMap<String, Value> = HashMap::new();
        let mut sent = 0;
        for silent in silent {
            let key = (silent.directive_id.clone(), silent.unit_id.clone());
            let owed = due(policy, silent.sent_at, now, had.get(&key).unwrap_or(&none));
            for nudge in owed {
                let (kind, number) = nudge.key();
                if !self
                    .store
                    .record_nudge(&silent.directive_id, &silent.unit_id, kind, number, now)
                    .await?
                {
                    continue; // Another node (or an earlier check) sent it.
                }
                if !directives.contains_key(&silent.directive_id) {
                    let directive = self.store.require_directive(&silent.directive_id).await?;
                    directives.insert(
                        silent.directive_id.clone(),
                        json!({
                            "id": directive.id,
                            "title": directive.title,
                            "priority": directive.priority.as_str(),
                            "deadline": directive.deadline,
                        }),
                    );
                }
                let directive = &directives[&silent.directive_id];
                if units.is_none() {
                    let all = self.store.all_units().await?;
                    units = Some(all.into_iter().map(|u| (u.id.clone(), u)).collect());
                }
                let units = units.as_ref().expect("loaded above");
                let (channel, push) = match nudge {
                    Nudge::Reminder(number) => (
                        unit_channel(&silent.unit_id),
                        json!({"type": "reminder", "number": number, "directive": directive}),
                    ),
                    Nudge::Parent | Nudge::Grandparent => {
                        let level = if nudge == Nudge::Parent { 1 } else { 2 };
                        let Some(ancestor) = ancestor(units, &silent.unit_id, level) else {
                            continue; // The unit sits too high in the tree to escalate.
                        };
                        let name = units.get(&silent.unit_id).map(|u| u.name.as_str());
                        (
                            unit_channel(ancestor),
                            json!({
                                "type": "escalation",
                                "level": level,
                                "directive": directive,
                                "unit": {"id": silent.unit_id, "name": name},
                            }),
                        )
                    }
                };
                publish(node, &channel, &push).await;
                sent += 1;
            }
        }
        if sent > 0 {
            tracing::info!(sent, "reminders and escalations sent");
        }
        Ok(sent)
    }
}

/// The ancestor `levels` steps above `unit` (1 = parent, 2 = grandparent).
fn ancestor<'a>(units: &'a HashMap<String, Unit>, unit: &str, levels: usize) -> Option<&'a str> {
    let mut current = units.get(unit)?;
    for _ in 0..levels {
        current = units.get(current.parent.as_deref()?)?;
    }
    Some(current.id.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn policy() -> DirectivesConfig {
        DirectivesConfig {
            reminder_interval: Duration::from_secs(2 * 3600),
            max_reminders: 3,
            escalate_to_parent_after: Duration::from_secs(6 * 3600),
            escalate_to_grandparent_after: Duration::from_secs(24 * 3600),
            check_interval: Duration::from_secs(30),
        }
    }

    fn had(nudges: &[Nudge]) -> HashSet<Nudge> {
        nudges.iter().copied().collect()
    }

    #[test]
    fn nothing_is_due_before_the_first_interval() {
        assert_eq!(due(&policy(), 0, 2 * HOUR - 1, &had(&[])), vec![]);
    }

    #[test]
    fn reminders_come_one_per_interval_up_to_the_cap() {
        let p = policy();
        assert_eq!(due(&p, 0, 2 * HOUR, &had(&[])), vec![Nudge::Reminder(1)]);
        assert_eq!(due(&p, 0, 3 * HOUR, &had(&[Nudge::Reminder(1)])), vec![]);
        assert_eq!(
            due(&p, 0, 4 * HOUR, &had(&[Nudge::Reminder(1)])),
            vec![Nudge::Reminder(2)]
        );
        // Past the cap: the third is the last.
        let all = had(&[
            Nudge::Reminder(1),
            Nudge::Reminder(2),
            Nudge::Reminder(3),
            Nudge::Parent,
        ]);
        assert_eq!(due(&p, 0, 20 * HOUR, &all), vec![]);
    }

    #[test]
    fn after_downtime_only_the_latest_reminder_is_sent() {
        // Down from 1 h to 5 h: at 5 h the unit is owed the 2nd reminder only.
        assert_eq!(
            due(&policy(), 0, 5 * HOUR, &had(&[])),
            vec![Nudge::Reminder(2)]
        );
    }

    #[test]
    fn escalation_goes_to_the_parent_after_t1_and_the_grandparent_after_t2() {
        let p = policy();
        let reminded = [Nudge::Reminder(3)];
        assert_eq!(due(&p, 0, 6 * HOUR, &had(&reminded)), vec![Nudge::Parent]);
        assert_eq!(
            due(&p, 0, 24 * HOUR, &had(&[Nudge::Reminder(3), Nudge::Parent])),
            vec![Nudge::Grandparent]
        );
        assert_eq!(
            due(
                &p,
                0,
                30 * HOUR,
                &had(&[Nudge::Reminder(3), Nudge::Parent, Nudge::Grandparent])
            ),
            vec![]
        );
    }

    #[test]
    fn a_zero_duration_turns_a_step_off() {
        let p = DirectivesConfig {
            reminder_interval: Duration::ZERO,
            escalate_to_parent_after: Duration::ZERO,
            ..policy()
        };
        assert_eq!(due(&p, 0, 30 * HOUR, &had(&[])), vec![Nudge::Grandparent]);
    }

    #[test]
    fn keys_round_trip() {
        for nudge in [Nudge::Reminder(2), Nudge::Parent, Nudge::Grandparent] {
            let (kind, number) = nudge.key();
            assert_eq!(Nudge::from_key(kind, number), Some(nudge));
        }
        assert_eq!(Nudge::from_key("other", 1), None);
    }

    #[test]
    fn ancestors_are_found_by_parent_links() {
        let unit = |id: &str, parent: Option<&str>| Unit {
            id: id.into(),
            parent: parent.map(Into::into),
            level: crate::org::Level::Unit,
            kind: crate::org::Kind::Station,
            name: id.into(),
            tags: vec![],
            path: String::new(),
        };
        let units: HashMap<String, Unit> = [
            unit("root", None),
            unit("city", Some("root")),
            unit("county", Some("city")),
            unit("station", Some("county")),
        ]
        .into_iter()
        .map(|u| (u.id.clone(), u))
        .collect();
        assert_eq!(ancestor(&units, "station", 1), Some("county"));
        assert_eq!(ancestor(&units, "station", 2), Some("city"));
        assert_eq!(ancestor(&units, "city", 2), None);
    }
}
