//! The JSON shapes the services return (REST bodies, RPC results, channel
//! publications), in one place so the two doors and the pushes agree. The field names are
//! the contract documented in `docs/protocol.md`.

use serde_json::{Value, json};

use crate::auth::Principal;
use crate::directive::rollup::Counts;
use crate::directive::{Directive, UnitState};
use crate::org::Unit;
use crate::store::VersionRecord;

pub fn principal(principal: &Principal) -> Value {
    json!({
        "id": principal.account_id,
        "username": principal.username,
        "role": principal.role.as_str(),
        "unit": principal.unit,
    })
}

pub fn unit(unit: &Unit) -> Value {
    json!({
        "id": unit.id,
        "parent": unit.parent,
        "level": unit.level.as_str(),
        "kind": unit.kind.as_str(),
        "name": unit.name,
        "tags": unit.tags,
        "path": unit.path,
    })
}

pub fn directive(directive: &Directive) -> Value {
    let target: Value = serde_json::from_str(&directive.target.to_json()).unwrap_or(Value::Null);
    json!({
        "id": directive.id,
        "version": directive.version,
        "title": directive.title,
        "body": directive.body,
        "priority": directive.priority.as_str(),
        "target": target,
        "ack_required": directive.ack_required,
        "deadline": directive.deadline,
        "created_by": directive.created_by,
        "created_at": directive.created_at,
    })
}

pub fn state(state: &UnitState) -> Value {
    json!({
        "directive_id": state.directive_id,
        "unit_id": state.unit_id,
        "seq": state.seq,
        "version": state.version,
        "stage": state.stage().as_str(),
        "delivered_at": state.delivered_at,
        "read_at": state.read_at,
        "acked_at": state.acked_at,
        "acked_by": state.acked_by,
    })
}

pub fn counts(counts: &Counts) -> Value {
    json!({
        "targeted": counts.targeted,
        "delivered": counts.delivered,
        "read": counts.read,
        "acknowledged": counts.acknowledged,
        "overdue": counts.overdue,
        "median_ack_ms": counts.median_ack_ms,
    })
}

/// One inbox entry as pushed and as listed.
pub fn entry(kind: &str, directive: &Value, state: &UnitState) -> Value {
    json!({
        "seq": state.seq,
        "kind": kind,
        "directive": directive,
        "state": self::state(state),
    })
}

/// One version of a directive and what changed from the one before.
pub fn version(record: &VersionRecord) -> Value {
    let changes: Vec<Value> = record
        .changes
        .iter()
        .map(|c| json!({"field": c.field, "before": c.before, "after": c.after}))
        .collect();
    json!({
        "version": record.version,
        "title": record.content.title,
        "body": record.content.body,
        "priority": record.content.priority.as_str(),
        "ack_required": record.content.ack_required,
        "deadline": record.content.deadline,
        "changed_by": record.changed_by,
        "changed_at": record.changed_at,
        "note": record.note,
        "changes": changes,
    })
}
