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

/// A directive as a unit's inbox carries it: everything but `target`, the sender's
/// address list (for a directive to 1,000 named units, 1,000 ids that every one of the
/// 1,000 pushes would otherwise repeat).
pub fn inbox_directive(directive: &Directive) -> Value {
    let mut view = self::directive(directive);
    if let Value::Object(fields) = &mut view {
        fields.remove("target");
    }
    view
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

/// One inbox entry as listed; `directive` is an [`inbox_directive`].
pub fn entry(kind: &str, directive: &Value, state: &UnitState) -> Value {
    json!({
        "seq": state.seq,
        "kind": kind,
        "directive": directive,
        "state": self::state(state),
    })
}

/// The push of one new inbox entry on `unit:<id>`, `{"type":"entry","entry":…}` with
/// the same fields as [`entry`], built around a directive serialised once for all the
/// units it goes to (`directive_json`, an [`inbox_directive`] as JSON text).
pub fn entry_push(kind: &str, directive_json: &str, state: &UnitState) -> String {
    format!(
        r#"{{"type":"entry","entry":{{"seq":{},"kind":{},"directive":{directive_json},"state":{}}}}}"#,
        state.seq,
        Value::from(kind),
        self::state(state),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directive::{Priority, Target};

    /// The push built around a once-serialised directive is the listed entry, field for
    /// field, including text that needs escaping.
    #[test]
    fn an_entry_push_is_the_listed_entry_with_its_type() {
        let directive = Directive {
            id: "d1".into(),
            title: "Flood \"warning\"\n第二段".into(),
            body: "**now** \\ </script>".into(),
            priority: Priority::parse("urgent").unwrap(),
            target: Target::from_json(r#"{"units":["u1","u2"]}"#).unwrap(),
            ack_required: true,
            deadline: Some(99),
            created_by: "admin".into(),
            created_at: 7,
            version: 2,
        };
        let state = UnitState {
            directive_id: "d1".into(),
            unit_id: "u2".into(),
            seq: 41,
            version: 2,
            delivered_at: Some(8),
            read_at: None,
            acked_at: None,
            acked_by: None,
        };
        let listed = inbox_directive(&directive);
        assert!(
            listed.get("target").is_none(),
            "a unit's copy has no address list"
        );
        assert_eq!(listed["title"], "Flood \"warning\"\n第二段");
        let pushed: Value =
            serde_json::from_str(&entry_push("corrected", &listed.to_string(), &state)).unwrap();
        assert_eq!(
            pushed,
            json!({"type": "entry", "entry": entry("corrected", &listed, &state)})
        );
        assert_eq!(pushed["entry"]["seq"], 41);
    }
}
