//! Directives in the store: [`Store`] methods over the `directive` and `directive_inbox`
//! tables (migration `0002_directives`). The rules (targeting, the state machine, the
//! roll-up) are the pure [`crate::directive`]; this file reads and writes rows.
//!
//! # Guarantees
//! - [`Store::create_directive`] writes the directive and one inbox row per targeted unit
//!   in one transaction: after a crash there is either no directive or every unit's row,
//!   each exactly once (the primary key is (directive, unit)). The target is resolved
//!   inside that transaction, against the tree as it is then.
//! - Sends are serialised with each other and with tree writes (the same in-process
//!   mutex, `BEGIN IMMEDIATE` on SQLite and advisory lock on PostgreSQL as
//!   [`super::org`]), so each unit's sequence numbers are 1, 2, 3, … with no gap and no
//!   duplicate (also enforced: unique (unit, seq)).
//! - Marking delivered, read or acknowledged never overwrites a time or who already
//!   stored (one `UPDATE` with `COALESCE`), so concurrent acknowledgements by two officers
//!   keep whichever the database saw first, and retries are harmless.

use crate::directive::{Change, Directive, Priority, RollUp, Target, UnitState};
use crate::org::{Kind, Level, Unit};

use super::{BeginWrite, Store, StoreError, with_pool};

/// A directive row: id, version, title, body, priority, target, ack_required, deadline,
/// created_by, created_at.
type DirectiveRow = (
    String,
    i32,
    String,
    String,
    String,
    String,
    bool,
    Option<i64>,
    String,
    i64,
);

const DIRECTIVE_COLUMNS: &str = "d.id, d.version, d.title, d.body, d.priority, d.target, \
     d.ack_required, d.deadline, d.created_by, d.created_at";

/// An inbox row: directive_id, unit_id, seq, delivered_at, read_at, acked_at, acked_by.
type StateRow = (
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

const STATE_COLUMNS: &str =
    "i.directive_id, i.unit_id, i.seq, i.delivered_at, i.read_at, i.acked_at, i.acked_by";

/// A unit row: id, parent_id, level, kind, name, tags, path.
type UnitRow = (
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
);

/// One directive in a unit's inbox, with the unit's state for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub directive: Directive,
    /// `state.seq` is the entry's place in the inbox.
    pub state: UnitState,
}

fn to_directive(row: DirectiveRow) -> Result<Directive, StoreError> {
    let (
        id,
        version,
        title,
        body,
        priority,
        target,
        ack_required,
        deadline,
        created_by,
        created_at,
    ) = row;
    let corrupt = |what: String| StoreError::Corrupt(format!("directive {id:?}: {what}"));
    Ok(Directive {
        priority: Priority::parse(&priority).map_err(|e| corrupt(e.to_string()))?,
        target: Target::from_json(&target).map_err(|e| corrupt(e.to_string()))?,
        id,
        title,
        body,
        ack_required,
        deadline,
        created_by,
        created_at,
        version,
    })
}

fn to_state(row: StateRow) -> UnitState {
    let (directive_id, unit_id, seq, delivered_at, read_at, acked_at, acked_by) = row;
    UnitState {
        directive_id,
        unit_id,
        seq,
        delivered_at,
        read_at,
        acked_at,
        acked_by,
    }
}

fn to_unit(row: UnitRow) -> Result<Unit, StoreError> {
    let (id, parent, level, kind, name, tags, path) = row;
    let corrupt = |what: String| StoreError::Corrupt(format!("unit {id:?}: {what}"));
    Ok(Unit {
        level: Level::parse(&level).map_err(|e| corrupt(e.to_string()))?,
        kind: Kind::parse(&kind).map_err(|e| corrupt(e.to_string()))?,
        tags: tags
            .split(';')
            .filter(|tag| !tag.is_empty())
            .map(str::to_owned)
            .collect(),
        id,
        parent,
        name,
        path,
    })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Which step [`Store::transition`] applies.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Deliver,
    Read,
    Acknowledge(&'a str),
}

impl Store {
    /// Sends `directive`: validates it, resolves its target against the org tree and, in
    /// one transaction, stores it and appends it to every targeted unit's inbox. Returns
    /// the targeted unit ids in path order.
    ///
    /// Errors: [`StoreError::DirectiveExists`] when the id is taken (nothing is written),
    /// [`StoreError::Directive`] for an invalid directive or target (unknown unit, no
    /// unit matched).
    ///
    /// The send runs in its own task: a caller that gives up (a dropped future, a client
    /// that disconnects) does not abandon the transaction half-way, which on SQLite can
    /// leave the write lock held by a pooled connection; the send finishes or fails whole.
    pub async fn create_directive(&self, directive: &Directive) -> Result<Vec<String>, StoreError> {
        directive.validate()?;
        let store = self.clone();
        let directive = directive.clone();
        let task = tokio::spawn(async move { store.send_directive(&directive).await });
        match task.await {
            Ok(outcome) => outcome,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime is shutting down: the transaction was rolled back.
            Err(_) => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
        }
    }

    /// [`Store::create_directive`]'s transaction, in the calling task.
    async fn send_directive(&self, directive: &Directive) -> Result<Vec<String>, StoreError> {
        let _guard = self.tree_lock.lock().await;
        let targeted = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let taken: Option<i32> = sqlx::query_scalar("SELECT 1 FROM directive WHERE id = $1")
                .bind(&directive.id)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_some() {
                return Err(StoreError::DirectiveExists(directive.id.clone()));
            }
            let rows: Vec<UnitRow> = sqlx::query_as(
                "SELECT id, parent_id, level, kind, name, tags, path FROM org_unit ORDER BY path",
            )
            .fetch_all(&mut *tx)
            .await?;
            let units = rows
                .into_iter()
                .map(to_unit)
                .collect::<Result<Vec<_>, _>>()?;
            let targeted = directive.target.resolve(&units)?;
            let inserted = sqlx::query(
                "INSERT INTO directive (id, version, title, body, priority, target, \
                 ack_required, deadline, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&directive.id)
            .bind(directive.version)
            .bind(&directive.title)
            .bind(&directive.body)
            .bind(directive.priority.as_str())
            .bind(directive.target.to_json())
            .bind(directive.ack_required)
            .bind(directive.deadline)
            .bind(&directive.created_by)
            .bind(directive.created_at)
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(error) if is_unique_violation(&error) => {
                    return Err(StoreError::DirectiveExists(directive.id.clone()));
                }
                other => other?,
            };
            for unit in &targeted {
                sqlx::query(
                    "INSERT INTO directive_inbox (directive_id, unit_id, seq) VALUES ($1, $2, \
                     COALESCE((SELECT MAX(seq) FROM directive_inbox WHERE unit_id = $2), 0) + 1)",
                )
                .bind(&directive.id)
                .bind(unit)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            targeted
        });
        Ok(targeted)
    }

    /// The directive with this id, if any.
    pub async fn directive(&self, id: &str) -> Result<Option<Directive>, StoreError> {
        let sql = format!("SELECT {DIRECTIVE_COLUMNS} FROM directive d WHERE d.id = $1");
        let row: Option<DirectiveRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(to_directive).transpose()
    }

    /// The directive with this id, or [`StoreError::DirectiveNotFound`].
    pub async fn require_directive(&self, id: &str) -> Result<Directive, StoreError> {
        self.directive(id)
            .await?
            .ok_or_else(|| StoreError::DirectiveNotFound(id.to_owned()))
    }

    /// The directives in `unit`'s inbox with a sequence number above `after_seq`, in
    /// sequence order: what a unit that has seen up to `after_seq` has missed (`0` for
    /// everything). An unknown unit has an empty inbox.
    pub async fn inbox(&self, unit: &str, after_seq: i64) -> Result<Vec<InboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {DIRECTIVE_COLUMNS}, {STATE_COLUMNS} FROM directive_inbox i \
             JOIN directive d ON d.id = i.directive_id \
             WHERE i.unit_id = $1 AND i.seq > $2 ORDER BY i.seq"
        );
        let rows: Vec<(DirectiveRow, StateRow)> = with_pool!(self, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(&sql)
                .bind(unit)
                .bind(after_seq)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let directive: DirectiveRow = (
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                    row.try_get(6)?,
                    row.try_get(7)?,
                    row.try_get(8)?,
                    row.try_get(9)?,
                );
                let state: StateRow = (
                    row.try_get(10)?,
                    row.try_get(11)?,
                    row.try_get(12)?,
                    row.try_get(13)?,
                    row.try_get(14)?,
                    row.try_get(15)?,
                    row.try_get(16)?,
                );
                out.push((directive, state));
            }
            out
        });
        rows.into_iter()
            .map(|(directive, state)| {
                Ok(InboxEntry {
                    directive: to_directive(directive)?,
                    state: to_state(state),
                })
            })
            .collect()
    }

    /// The highest sequence number in `unit`'s inbox (0 when empty).
    pub async fn inbox_head(&self, unit: &str) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COALESCE(MAX(seq), 0) FROM directive_inbox WHERE unit_id = $1",
            )
            .bind(unit)
            .fetch_one(pool)
            .await?
        }))
    }

    /// One unit's state for one directive.
    pub async fn unit_state(
        &self,
        unit: &str,
        directive: &str,
    ) -> Result<Option<UnitState>, StoreError> {
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM directive_inbox i \
             WHERE i.directive_id = $1 AND i.unit_id = $2"
        );
        let row: Option<StateRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(directive)
                .bind(unit)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(to_state))
    }

    /// Every targeted unit's state for `directive`, by unit id: the dashboard's input.
    /// [`StoreError::DirectiveNotFound`] when there is no such directive.
    pub async fn states(&self, directive: &str) -> Result<Vec<UnitState>, StoreError> {
        self.require_directive(directive).await?;
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM directive_inbox i \
             WHERE i.directive_id = $1 ORDER BY i.unit_id"
        );
        let rows: Vec<StateRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(directive).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(to_state).collect())
    }

    /// The dashboard's roll-up of `directive` at `now` (ms since the epoch), over the
    /// current org tree: see [`crate::directive::rollup()`].
    pub async fn directive_rollup(&self, directive: &str, now: i64) -> Result<RollUp, StoreError> {
        let found = self.require_directive(directive).await?;
        let states = self.states(directive).await?;
        let units = self.all_units().await?;
        Ok(crate::directive::rollup(&found, &states, &units, now))
    }

    /// The directive reached `unit` (pushed to one of its devices, or fetched) at `at`.
    /// Idempotent: the first time stays. Returns the stored state and whether this call
    /// changed it.
    pub async fn mark_delivered(
        &self,
        unit: &str,
        directive: &str,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        self.transition(unit, directive, Step::Deliver, at).await
    }

    /// Someone at `unit` opened the directive at `at`. It must have been delivered
    /// ([`StoreError::Directive`] with a bad transition otherwise). Idempotent.
    pub async fn mark_read(
        &self,
        unit: &str,
        directive: &str,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        self.transition(unit, directive, Step::Read, at).await
    }

    /// `by_user` acknowledged `directive` for `unit` at `at` (which also marks it read).
    /// Idempotent: a second acknowledgement, by anyone, keeps the first who and when and
    /// returns [`Change::Unchanged`]. The directive must ask for acknowledgement and have
    /// been delivered to the unit.
    ///
    /// This method does not check that `by_user` may act for `unit`: the store has no
    /// accounts yet. The scope check (an officer of this unit, or an admin) belongs to the
    /// caller and arrives with accounts and roles.
    pub async fn acknowledge(
        &self,
        unit: &str,
        directive: &str,
        by_user: &str,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        self.transition(unit, directive, Step::Acknowledge(by_user), at)
            .await
    }

    async fn transition(
        &self,
        unit: &str,
        directive: &str,
        step: Step<'_>,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        let found = self.require_directive(directive).await?;
        let before =
            self.unit_state(unit, directive)
                .await?
                .ok_or_else(|| StoreError::NotInInbox {
                    directive: directive.to_owned(),
                    unit: unit.to_owned(),
                })?;
        let mut wanted = before.clone();
        let change = match step {
            Step::Deliver => wanted.deliver(at),
            Step::Read => wanted.read(at)?,
            Step::Acknowledge(by) => wanted.acknowledge(found.ack_required, by, at)?,
        };
        if change == Change::Unchanged {
            return Ok((before, Change::Unchanged));
        }
        // Fill only what is still empty: a concurrent writer that got there first wins.
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE directive_inbox SET \
                 delivered_at = COALESCE(delivered_at, $3), \
                 read_at = COALESCE(read_at, $4), \
                 acked_by = CASE WHEN acked_at IS NULL THEN $6 ELSE acked_by END, \
                 acked_at = COALESCE(acked_at, $5) \
                 WHERE directive_id = $1 AND unit_id = $2",
            )
            .bind(directive)
            .bind(unit)
            .bind(wanted.delivered_at)
            .bind(wanted.read_at)
            .bind(wanted.acked_at)
            .bind(&wanted.acked_by)
            .execute(pool)
            .await?;
        });
        let stored =
            self.unit_state(unit, directive)
                .await?
                .ok_or_else(|| StoreError::NotInInbox {
                    directive: directive.to_owned(),
                    unit: unit.to_owned(),
                })?;
        let change = if stored == wanted {
            Change::Changed
        } else {
            Change::Unchanged
        };
        Ok((stored, change))
    }
}
