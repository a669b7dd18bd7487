//! The directive jobs the nodes run on a clock:
//! - reminders and escalations ("nudges") for directives awaiting acknowledgement: which
//!   units are still silent, which nudges they have had, and recording a new one exactly
//!   once (the primary key decides between nodes that race);
//! - scheduled directives: kept as composed until their send time, then sent under their
//!   own id (so the directive table's primary key makes the send happen once).

use super::{Store, StoreError, with_pool};
use crate::directive::{Directive, Priority, Target};

/// A targeted unit that has not acknowledged a directive that asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilentUnit {
    pub directive_id: String,
    pub unit_id: String,
    /// When the directive was sent (ms since the epoch).
    pub sent_at: i64,
}

/// A nudge already sent: (directive, unit, kind, number).
pub type SentNudge = (String, String, String, i64);

impl Store {
    /// Units that have not acknowledged (the current version of) directives sent at or
    /// after `since` that ask for acknowledgement and were not retracted, ordered by
    /// directive then unit.
    pub async fn silent_units(&self, since: i64) -> Result<Vec<SilentUnit>, StoreError> {
        let rows: Vec<(String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT i.directive_id, i.unit_id, d.created_at FROM directive_inbox i \
                 JOIN directive d ON d.id = i.directive_id \
                 WHERE d.ack_required AND d.retracted_at IS NULL AND d.created_at >= $1 \
                   AND i.acked_at IS NULL \
                 ORDER BY i.directive_id, i.unit_id",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(directive_id, unit_id, sent_at)| SilentUnit {
                directive_id,
                unit_id,
                sent_at,
            })
            .collect())
    }

    /// The nudges sent for directives sent at or after `since`.
    pub async fn nudges_since(&self, since: i64) -> Result<Vec<SentNudge>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT n.directive_id, n.unit_id, n.kind, n.number FROM directive_nudge n \
                 JOIN directive d ON d.id = n.directive_id WHERE d.created_at >= $1",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Records a nudge; `true` when this call recorded it (the caller then sends it),
    /// `false` when it was recorded before (by this node or another).
    pub async fn record_nudge(
        &self,
        directive: &str,
        unit: &str,
        kind: &str,
        number: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO directive_nudge (directive_id, unit_id, kind, number, sent_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(directive)
            .bind(unit)
            .bind(kind)
            .bind(number)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }
}

/// A directive waiting for its send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledDirective {
    /// As it will be sent (`created_at` is when it was composed; the send sets it anew).
    pub directive: Directive,
    /// When to send it (ms since the epoch).
    pub send_at: i64,
}

type ScheduledRow = (
    String,
    String,
    String,
    String,
    String,
    bool,
    Option<i64>,
    String,
    i64,
    i64,
);

const SCHEDULED_COLUMNS: &str = "id, title, body, priority, target, ack_required, deadline, \
                                 created_by, created_at, send_at";

fn to_scheduled(row: ScheduledRow) -> Result<ScheduledDirective, StoreError> {
    let (
        id,
        title,
        body,
        priority,
        target,
        ack_required,
        deadline,
        created_by,
        created_at,
        send_at,
    ) = row;
    let corrupt = |what: String| StoreError::Corrupt(format!("scheduled directive {id:?}: {what}"));
    Ok(ScheduledDirective {
        directive: Directive {
            priority: Priority::parse(&priority).map_err(|e| corrupt(e.to_string()))?,
            target: Target::from_json(&target).map_err(|e| corrupt(e.to_string()))?,
            id,
            title,
            body,
            ack_required,
            deadline,
            created_by,
            created_at,
            version: 1,
        },
        send_at,
    })
}

impl Store {
    /// Keeps `directive` (validated) to be sent at `send_at`.
    /// [`StoreError::DirectiveExists`] when the id is taken.
    pub async fn schedule_directive(
        &self,
        directive: &Directive,
        send_at: i64,
    ) -> Result<(), StoreError> {
        directive.validate()?;
        let result = with_pool!(self, |pool| {
            sqlx::query(&format!(
                "INSERT INTO scheduled_directive ({SCHEDULED_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(&directive.id)
            .bind(&directive.title)
            .bind(&directive.body)
            .bind(directive.priority.as_str())
            .bind(directive.target.to_json())
            .bind(directive.ack_required)
            .bind(directive.deadline)
            .bind(&directive.created_by)
            .bind(directive.created_at)
            .bind(send_at)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::DirectiveExists(directive.id.clone()))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Pending scheduled directives: all (by send time), or only those due at `due_at`.
    pub async fn scheduled_directives(
        &self,
        due_at: Option<i64>,
    ) -> Result<Vec<ScheduledDirective>, StoreError> {
        let sql = format!(
            "SELECT {SCHEDULED_COLUMNS} FROM scheduled_directive \
             WHERE state = 'pending' AND send_at <= $1 ORDER BY send_at, id"
        );
        let rows: Vec<ScheduledRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(due_at.unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(to_scheduled).collect()
    }

    /// Moves a pending scheduled directive to `state` (`sent` or `cancelled`) at `at`;
    /// `false` when it was not pending (sent or cancelled already, or unknown).
    pub async fn finish_scheduled(
        &self,
        id: &str,
        state: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let changed = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE scheduled_directive SET state = $2, done_at = $3 \
                 WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .bind(state)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed == 1)
    }
}
