//! Directives as people use them: send (admin, or a moderator inside their subtree),
//! list, catch up on a unit's inbox, receipts and acknowledgement from the unit, and the
//! live acknowledgement map.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ServiceError, Services, ack_channel, now_ms, unit_channel, views};
use crate::auth::{Principal, Role};
use crate::directive::history::{Content, EntryKind};
use crate::directive::{Change, Directive, Priority, Target, UnitState, rollup};
use crate::node::{Node, ServerPublish};
use crate::org::Unit;
use crate::org::tree::{path_ids, subtree_range};
use crate::store::StoreError;

/// Most directives a list returns.
const LIST_LIMIT: i64 = 200;

/// A directive to send, as the caller writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default = "routine")]
    pub priority: String,
    pub target: TargetRequest,
    #[serde(default)]
    pub ack_required: bool,
    /// Acknowledge by this time, ms since the epoch.
    #[serde(default)]
    pub deadline: Option<i64>,
    /// Send at this time (ms since the epoch) instead of now; a time in the past sends
    /// now.
    #[serde(default)]
    pub send_at: Option<i64>,
}

/// What a send did.
#[derive(Debug)]
pub enum SendOutcome {
    /// Sent now: `{directive, targeted}`.
    Sent(Value),
    /// Kept for later: `{scheduled}`.
    Scheduled(Value),
}

impl SendOutcome {
    pub fn into_value(self) -> Value {
        match self {
            SendOutcome::Sent(value) | SendOutcome::Scheduled(value) => value,
        }
    }
}

fn routine() -> String {
    "routine".to_owned()
}

/// Which units a directive goes to: the union of whole subtrees, units of given kinds or
/// tags (within the subtrees when some are given), and units named one by one.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    #[serde(default)]
    pub subtrees: Vec<String>,
    #[serde(default)]
    pub kinds: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub units: Vec<String>,
}

/// A receipt, read mark or acknowledgement: for which unit (the caller's own when
/// omitted).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    #[serde(default)]
    pub unit: Option<String>,
    /// The version the person acknowledges (the one they read); an acknowledgement of a
    /// version that has been corrected since is refused with 409. Without it, the
    /// current version.
    #[serde(default)]
    pub version: Option<i32>,
}

/// A correction: the new content (the target stays) and why.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectRequest {
    pub title: String,
    #[serde(default)]
    pub body: String,
    #[serde(default = "routine")]
    pub priority: String,
    #[serde(default)]
    pub ack_required: bool,
    #[serde(default)]
    pub deadline: Option<i64>,
    /// Why it was corrected, shown with the new version.
    #[serde(default)]
    pub note: String,
}

/// A retraction and why.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetractRequest {
    #[serde(default)]
    pub note: String,
}

/// Which step a unit takes on a directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnitStep {
    Receipt,
    Read,
    Acknowledge,
}

impl Services {
    /// Sends a directive now, or keeps it for its `send_at`: checks the role, resolves
    /// the target and checks that every targeted unit is inside the sender's scope
    /// (nothing is written otherwise). Sending writes it with every unit's inbox row in
    /// one transaction, then pushes the new entry to each unit's channel.
    pub async fn send_directive(
        &self,
        node: &Node,
        who: &Principal,
        request: SendRequest,
    ) -> Result<SendOutcome, ServiceError> {
        let now = now_ms();
        let send_at = request.send_at.filter(|at| *at > now);
        let directive = self.prepare_directive(who, request, now).await?;
        if let Some(send_at) = send_at {
            self.store.schedule_directive(&directive, send_at).await?;
            tracing::info!(directive = %directive.id, send_at, by = %who.account_id, "directive scheduled");
            let mut view = views::directive(&directive);
            view["send_at"] = json!(send_at);
            return Ok(SendOutcome::Scheduled(json!({"scheduled": view})));
        }
        let targeted = self.deliver(node, &directive).await?;
        tracing::info!(directive = %directive.id, units = targeted, by = %who.account_id, "directive sent");
        Ok(SendOutcome::Sent(
            json!({"directive": views::directive(&directive), "targeted": targeted}),
        ))
    }

    /// Builds and checks a directive from a request: role, fields, target, scope.
    async fn prepare_directive(
        &self,
        who: &Principal,
        request: SendRequest,
        now: i64,
    ) -> Result<Directive, ServiceError> {
        if !matches!(who.role, Role::Admin | Role::Moderator) {
            return Err(ServiceError::Forbidden(
                "only administrators and moderators send directives".into(),
            ));
        }
        let target_json =
            serde_json::to_string(&request.target).map_err(|_| ServiceError::Internal)?;
        let target = Target::from_json(&target_json)
            .map_err(|error| ServiceError::Unprocessable(error.to_string()))?;
        let priority = Priority::parse(&request.priority)
            .map_err(|error| ServiceError::Unprocessable(error.to_string()))?;
        let directive = Directive {
            id: new_directive_id(now),
            title: request.title,
            body: request.body,
            priority,
            target,
            ack_required: request.ack_required,
            deadline: request.deadline,
            created_by: who.account_id.clone(),
            created_at: now,
            version: 1,
        };
        directive
            .validate()
            .map_err(|error| ServiceError::Unprocessable(error.to_string()))?;
        let units = self.store.all_units().await?;
        let targeted = directive
            .target
            .resolve(&units)
            .map_err(|error| ServiceError::Unprocessable(error.to_string()))?;
        if !who.is_admin() {
            let targeted: HashSet<&str> = targeted.iter().map(String::as_str).collect();
            if let Some(outside) = units
                .iter()
                .find(|unit| targeted.contains(unit.id.as_str()) && !who.can_address(unit))
            {
                return Err(ServiceError::Forbidden(format!(
                    "unit {:?} ({}) is outside your scope",
                    outside.id, outside.name
                )));
            }
        }
        Ok(directive)
    }

    /// Writes a checked directive with every unit's inbox row, then pushes each unit its
    /// new entry. A directive that exists already (a scheduled send that a node finished
    /// before it crashed) is pushed again: clients drop entries they have by `seq`.
    /// Returns how many units it went to.
    async fn deliver(&self, node: &Node, directive: &Directive) -> Result<usize, ServiceError> {
        match self.store.create_directive(directive).await {
            Ok(_) | Err(StoreError::DirectiveExists(_)) => {}
            Err(other) => return Err(other.into()),
        }
        let states = self.store.states(&directive.id).await?;
        push_entries(node, EntryKind::Sent, directive, &states).await;
        Ok(states.len())
    }

    /// Sends every scheduled directive due at `now`; returns how many were sent. One
    /// that can no longer be sent (its target resolves to no unit) is cancelled, logged.
    pub async fn send_due_scheduled(&self, node: &Node, now: i64) -> Result<usize, ServiceError> {
        let mut sent = 0;
        for scheduled in self.store.scheduled_directives(Some(now)).await? {
            let mut directive = scheduled.directive;
            directive.created_at = now;
            match self.deliver(node, &directive).await {
                Ok(units) => {
                    self.store
                        .finish_scheduled(&directive.id, "sent", now)
                        .await?;
                    tracing::info!(directive = %directive.id, units, "scheduled directive sent");
                    sent += 1;
                }
                Err(ServiceError::Unprocessable(reason)) => {
                    tracing::warn!(directive = %directive.id, %reason, "scheduled directive cannot be sent; cancelled");
                    self.store
                        .finish_scheduled(&directive.id, "cancelled", now)
                        .await?;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(sent)
    }

    /// Pending scheduled directives: every one for an admin, their own for a moderator.
    pub async fn list_scheduled(&self, who: &Principal) -> Result<Value, ServiceError> {
        if !matches!(who.role, Role::Admin | Role::Moderator) {
            return Err(ServiceError::Forbidden(
                "only administrators and moderators schedule directives".into(),
            ));
        }
        let list: Vec<Value> = self
            .store
            .scheduled_directives(None)
            .await?
            .into_iter()
            .filter(|s| who.is_admin() || s.directive.created_by == who.account_id)
            .map(|s| {
                let mut view = views::directive(&s.directive);
                view["send_at"] = json!(s.send_at);
                view
            })
            .collect();
        Ok(Value::Array(list))
    }

    /// Cancels a pending scheduled directive (its author, or an admin).
    pub async fn cancel_scheduled(&self, who: &Principal, id: &str) -> Result<Value, ServiceError> {
        let pending = self.store.scheduled_directives(None).await?;
        let Some(found) = pending.iter().find(|s| s.directive.id == id) else {
            return Err(ServiceError::NotFound(format!(
                "no pending scheduled directive {id:?}"
            )));
        };
        if !who.is_admin() && found.directive.created_by != who.account_id {
            return Err(ServiceError::Forbidden(
                "only its author or an administrator cancels a scheduled directive".into(),
            ));
        }
        if !self
            .store
            .finish_scheduled(id, "cancelled", now_ms())
            .await?
        {
            return Err(ServiceError::Conflict(format!(
                "scheduled directive {id:?} was sent or cancelled meanwhile"
            )));
        }
        Ok(json!({"cancelled": id}))
    }

    /// The directives the caller may see, newest first: all for an admin; those with a
    /// targeted unit inside their subtree for a moderator; those in their unit's inbox
    /// for the unit's people.
    pub async fn list_directives(&self, who: &Principal) -> Result<Value, ServiceError> {
        let ids = match (who.role, &who.unit, &who.unit_path) {
            (Role::Admin, _, _) => self.store.recent_directive_ids(None, LIST_LIMIT).await?,
            (Role::Moderator, _, Some(path)) => {
                self.store
                    .recent_directive_ids(Some(subtree_range(path)), LIST_LIMIT)
                    .await?
            }
            (Role::Officer | Role::Member, Some(unit), _) => {
                // One entry per send, correction and retraction: each directive once,
                // by its latest entry.
                let mut entries = self.store.inbox(unit, 0).await?;
                entries.reverse();
                let mut seen = HashSet::new();
                entries
                    .into_iter()
                    .map(|entry| entry.directive.id)
                    .filter(|id| seen.insert(id.clone()))
                    .take(LIST_LIMIT as usize)
                    .collect()
            }
            _ => Vec::new(),
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(directive) = self.store.directive(&id).await? {
                out.push(self.directive_with_status(&directive).await?);
            }
        }
        Ok(Value::Array(out))
    }

    /// A directive's view with `retracted_at` (`null` unless it was retracted).
    async fn directive_with_status(&self, directive: &Directive) -> Result<Value, ServiceError> {
        let mut view = views::directive(directive);
        view["retracted_at"] = json!(self.store.retraction(&directive.id).await?.map(|r| r.at));
        Ok(view)
    }

    /// The units the caller may see: everything for an admin, the subtree for a
    /// moderator, their own unit for its people, nothing for an expert.
    pub async fn visible_units(&self, who: &Principal) -> Result<Vec<Unit>, ServiceError> {
        Ok(match (who.role, &who.unit) {
            (Role::Admin, _) => self.store.all_units().await?,
            (Role::Moderator, Some(root)) => self.store.subtree(root).await?,
            (Role::Officer | Role::Member, Some(unit)) => {
                self.store.unit(unit).await?.into_iter().collect()
            }
            _ => Vec::new(),
        })
    }

    /// The caller's account and unit.
    pub async fn me(&self, who: &Principal) -> Result<Value, ServiceError> {
        let unit = match &who.unit {
            Some(id) => self.store.unit(id).await?.map(|u| views::unit(&u)),
            None => None,
        };
        Ok(json!({"account": views::principal(who), "unit": unit}))
    }

    /// A unit's inbox after `after` (a `seq`): the unit's people read their own; an admin
    /// or a moderator whose subtree holds the unit may read it too.
    pub async fn inbox(
        &self,
        who: &Principal,
        unit: Option<&str>,
        after: i64,
    ) -> Result<Value, ServiceError> {
        let unit = self.unit_for(who, unit)?;
        if who.unit.as_deref() != Some(unit) {
            let found = self.store.require_unit(unit).await?;
            if !who.can_see(&found) {
                return Err(ServiceError::Forbidden(format!(
                    "unit {unit:?} is outside your scope"
                )));
            }
        }
        let entries = self.store.inbox(unit, after.max(0)).await?;
        let head = self.store.inbox_head(unit).await?;
        let entries: Vec<Value> = entries
            .iter()
            .map(|entry| {
                let mut view = views::entry(
                    entry.kind.as_str(),
                    &views::inbox_directive(&entry.directive),
                    &entry.state,
                );
                view["seq"] = json!(entry.seq);
                view["at"] = json!(entry.at);
                view
            })
            .collect();
        Ok(json!({"unit": unit, "head": head, "entries": entries}))
    }

    /// A unit's person or screen reports a step on a directive: it arrived (receipt), it
    /// was opened (read), or an officer acknowledges it. Idempotent; a change is pushed to
    /// the unit's channel and to the acknowledgement map of every subtree holding the
    /// unit.
    pub(crate) async fn unit_step(
        &self,
        node: &Node,
        who: &Principal,
        directive: &str,
        request: AckRequest,
        step: UnitStep,
    ) -> Result<Value, ServiceError> {
        let unit = self.unit_for(who, request.unit.as_deref())?.to_owned();
        match step {
            UnitStep::Acknowledge => {
                if !who.can_act_for(&unit) {
                    return Err(ServiceError::Forbidden(format!(
                        "only an officer of unit {unit:?} acknowledges for it"
                    )));
                }
            }
            UnitStep::Receipt | UnitStep::Read => {
                if who.unit.as_deref() != Some(unit.as_str()) {
                    return Err(ServiceError::Forbidden(format!(
                        "receipts for unit {unit:?} come from its own people and screens"
                    )));
                }
            }
        }
        let now = now_ms();
        let (state, change) = match step {
            UnitStep::Receipt => self.store.mark_delivered(&unit, directive, now).await?,
            UnitStep::Read => {
                // Opening a directive implies it arrived.
                self.store.mark_delivered(&unit, directive, now).await?;
                self.store.mark_read(&unit, directive, now).await?
            }
            UnitStep::Acknowledge => {
                self.store.mark_delivered(&unit, directive, now).await?;
                match request.version {
                    Some(version) => {
                        self.store
                            .acknowledge_version(&unit, directive, version, &who.account_id, now)
                            .await?
                    }
                    None => {
                        self.store
                            .acknowledge(&unit, directive, &who.account_id, now)
                            .await?
                    }
                }
            }
        };
        let view = views::state(&state);
        if change == Change::Changed {
            self.announce_state(node, &state, &view).await?;
        }
        Ok(json!({"state": view}))
    }

    /// Pushes a unit's new state to its own channel and to the acknowledgement map of
    /// each subtree that holds it (the unit itself and every ancestor).
    async fn announce_state(
        &self,
        node: &Node,
        state: &UnitState,
        view: &Value,
    ) -> Result<(), ServiceError> {
        let push = json!({"type": "state", "state": view});
        publish(node, &unit_channel(&state.unit_id), &push).await;
        if let Some(unit) = self.store.unit(&state.unit_id).await? {
            for root in path_ids(&unit.path) {
                publish(node, &ack_channel(&state.directive_id, root), &push).await;
            }
        }
        Ok(())
    }

    /// The acknowledgement map of a directive over the subtree of `root` (the caller's
    /// scope root by default; the whole tree for an admin): counts in total and per
    /// level, every targeted unit's state, the units not yet acknowledged, and the
    /// channel (with a subscription token) that carries the changes from now on.
    pub async fn dashboard(
        &self,
        who: &Principal,
        directive: &str,
        root: Option<&str>,
    ) -> Result<Value, ServiceError> {
        if !matches!(who.role, Role::Admin | Role::Moderator) {
            return Err(ServiceError::Forbidden(
                "only administrators and moderators see acknowledgement maps".into(),
            ));
        }
        let found = self.store.require_directive(directive).await?;
        let root = match root.or(who.unit.as_deref()) {
            Some(id) => self.store.require_unit(id).await?,
            None => self
                .store
                .all_units()
                .await?
                .into_iter()
                .find(|unit| unit.parent.is_none())
                .ok_or_else(|| ServiceError::NotFound("the org tree is empty".into()))?,
        };
        if !who.can_see(&root) {
            return Err(ServiceError::Forbidden(format!(
                "unit {:?} is outside your scope",
                root.id
            )));
        }
        let units = self.store.subtree(&root.id).await?;
        let inside: HashSet<&str> = units.iter().map(|u| u.id.as_str()).collect();
        let states: Vec<UnitState> = self
            .store
            .states(directive)
            .await?
            .into_iter()
            .filter(|state| inside.contains(state.unit_id.as_str()))
            .collect();
        let now = now_ms();
        let summary = rollup(&found, &states, &units, now);
        let by_id: std::collections::HashMap<&str, &Unit> =
            units.iter().map(|u| (u.id.as_str(), u)).collect();
        let unit_rows: Vec<Value> = states
            .iter()
            .map(|state| {
                let mut row = views::state(state);
                if let Some(unit) = by_id.get(state.unit_id.as_str()) {
                    row["name"] = json!(unit.name);
                    row["level"] = json!(unit.level.as_str());
                    row["parent"] = json!(unit.parent);
                    row["path"] = json!(unit.path);
                }
                row["overdue"] = json!(found.is_overdue(state, now));
                row
            })
            .collect();
        let by_level: serde_json::Map<String, Value> = summary
            .by_level
            .iter()
            .map(|(level, counts)| (level.as_str().to_owned(), views::counts(counts)))
            .collect();
        let channel = ack_channel(directive, &root.id);
        Ok(json!({
            "directive": self.directive_with_status(&found).await?,
            "root": views::unit(&root),
            "total": views::counts(&summary.total),
            "by_level": by_level,
            "units": unit_rows,
            "not_acknowledged": summary.not_acknowledged,
            "channel_token": self.subscription_token(who, &channel)?,
            "channel": channel,
        }))
    }

    /// Corrects a directive: a new version with new content goes to every unit it was
    /// sent to, each of which must acknowledge again. Its sender, an admin, or a
    /// moderator whose subtree holds every unit it went to may correct it.
    pub async fn correct_directive(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        request: CorrectRequest,
    ) -> Result<Value, ServiceError> {
        let directive = self.store.require_directive(id).await?;
        self.check_may_amend(who, &directive).await?;
        let content = Content {
            title: request.title,
            body: request.body,
            priority: Priority::parse(&request.priority)
                .map_err(|error| ServiceError::Unprocessable(error.to_string()))?,
            ack_required: request.ack_required,
            deadline: request.deadline,
        };
        let (corrected, units) = self
            .store
            .correct_directive(id, &content, &who.account_id, &request.note, now_ms())
            .await?;
        self.announce_amendment(node, &corrected, EntryKind::Corrected)
            .await?;
        tracing::info!(directive = %id, version = corrected.version, units = units.len(), by = %who.account_id, "directive corrected");
        Ok(json!({"directive": views::directive(&corrected), "targeted": units.len()}))
    }

    /// Retracts a directive: every unit it was sent to is told it is withdrawn, and no
    /// more acknowledgements are taken. The same people as for a correction may do it.
    pub async fn retract_directive(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        request: RetractRequest,
    ) -> Result<Value, ServiceError> {
        let directive = self.store.require_directive(id).await?;
        self.check_may_amend(who, &directive).await?;
        let (retracted, units) = self
            .store
            .retract_directive(id, &who.account_id, &request.note, now_ms())
            .await?;
        self.announce_amendment(node, &retracted, EntryKind::Retracted)
            .await?;
        tracing::info!(directive = %id, units = units.len(), by = %who.account_id, "directive retracted");
        Ok(json!({"directive": views::directive(&retracted), "targeted": units.len()}))
    }

    /// Every version of a directive with what changed, for whoever may see it.
    pub async fn directive_versions(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        let directive = self.store.require_directive(id).await?;
        self.check_may_see(who, &directive).await?;
        let versions: Vec<Value> = self
            .store
            .directive_versions(id)
            .await?
            .iter()
            .map(views::version)
            .collect();
        let retraction = self.store.retraction(id).await?;
        Ok(json!({
            "directive": views::directive(&directive),
            "versions": versions,
            "retracted": retraction.map(|r| json!({"at": r.at, "by": r.by})),
        }))
    }

    /// A correction or retraction may come from the sender, an admin, or a moderator
    /// whose subtree holds every unit the directive went to.
    async fn check_may_amend(
        &self,
        who: &Principal,
        directive: &Directive,
    ) -> Result<(), ServiceError> {
        if who.is_admin() || (who.role == Role::Moderator && directive.created_by == who.account_id)
        {
            return Ok(());
        }
        if who.role == Role::Moderator {
            let states = self.store.states(&directive.id).await?;
            let units = self.store.all_units().await?;
            let targeted: HashSet<&str> = states.iter().map(|s| s.unit_id.as_str()).collect();
            if units
                .iter()
                .filter(|unit| targeted.contains(unit.id.as_str()))
                .all(|unit| who.can_address(unit))
            {
                return Ok(());
            }
        }
        Err(ServiceError::Forbidden(
            "only the sender, an administrator, or a moderator of every unit it went to \
             corrects or retracts a directive"
                .into(),
        ))
    }

    /// Whether `who` may see `directive`: an admin; a moderator with a targeted unit in
    /// their subtree; the people of a targeted unit.
    async fn check_may_see(
        &self,
        who: &Principal,
        directive: &Directive,
    ) -> Result<(), ServiceError> {
        if who.is_admin() {
            return Ok(());
        }
        let states = self.store.states(&directive.id).await?;
        let visible = match (who.role, &who.unit) {
            (Role::Moderator, _) => {
                let units = self.store.all_units().await?;
                let targeted: HashSet<&str> = states.iter().map(|s| s.unit_id.as_str()).collect();
                units
                    .iter()
                    .any(|unit| targeted.contains(unit.id.as_str()) && who.can_see(unit))
            }
            (Role::Officer | Role::Member, Some(unit)) => states.iter().any(|s| &s.unit_id == unit),
            _ => false,
        };
        if visible {
            Ok(())
        } else {
            Err(ServiceError::NotFound(format!(
                "directive {:?} does not exist",
                directive.id
            )))
        }
    }

    /// Pushes a correction or retraction: each unit gets its new inbox entry, and every
    /// acknowledgement map being watched is told to reload (the states went back to
    /// pending for the new version).
    async fn announce_amendment(
        &self,
        node: &Node,
        directive: &Directive,
        kind: EntryKind,
    ) -> Result<(), ServiceError> {
        let states = self.store.states(&directive.id).await?;
        push_entries(node, kind, directive, &states).await;
        let view = views::directive(directive);
        let prefix = format!("ack:{}@", directive.id);
        let push = json!({"type": kind.as_str(), "directive": view});
        for (channel, _) in node.channels() {
            if channel.starts_with(&prefix) {
                publish(node, &channel, &push).await;
            }
        }
        Ok(())
    }

    /// The unit a unit-side call is about: the one named, or the caller's own.
    fn unit_for<'a>(
        &self,
        who: &'a Principal,
        named: Option<&'a str>,
    ) -> Result<&'a str, ServiceError> {
        named.or(who.unit.as_deref()).ok_or_else(|| {
            ServiceError::BadRequest("name the unit: your account belongs to none".into())
        })
    }
}

/// Pushes each unit of `states` its new inbox entry of `kind` for `directive`. The
/// directive is serialised once, not once per unit: a send to 1,000 units is 1,000
/// small publications around one shared text.
async fn push_entries(node: &Node, kind: EntryKind, directive: &Directive, states: &[UnitState]) {
    let directive_json = views::inbox_directive(directive).to_string();
    for state in states {
        let push = views::entry_push(kind.as_str(), &directive_json, state);
        publish_text(node, &unit_channel(&state.unit_id), push).await;
    }
}

/// Publishes a push; a failure is logged, not returned: the store already holds the
/// truth and clients catch up from it.
pub(super) async fn publish(node: &Node, channel: &str, data: &Value) {
    publish_text(node, channel, data.to_string()).await;
}

/// [`publish`] for a push that is JSON text already.
async fn publish_text(node: &Node, channel: &str, json: String) {
    let raw = match serde_json::value::RawValue::from_string(json) {
        Ok(raw) => raw,
        Err(_) => return,
    };
    if let Err(error) = node.publish(channel, raw, ServerPublish::default()).await {
        tracing::warn!(%channel, %error, "push failed; clients catch up from the store");
    }
}

/// A new directive id: the send time in hex (so ids sort by time) and 8 random hex
/// digits.
fn new_directive_id(now: i64) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("d{now:x}-{}", &random[..8])
}
