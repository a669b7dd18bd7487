//! Directives in the store: [`Store`] methods over the `directive`, `directive_version`,
//! `directive_inbox`, `directive_inbox_entry` and `directive_ack` tables (migrations
//! `0002_directives` and `0004_directive_history_feedback_audit`). The rules (targeting,
//! the state machine, the roll-up, what a correction changes) are the pure
//! [`crate::directive`]; this file reads and writes rows.
//!
//! # The model
//! - `directive` holds each directive's current version; `directive_version` every
//!   version's full content (version 1 is the send).
//! - A unit's inbox is an ordered sequence of entries (`directive_inbox_entry`), numbered
//!   1, 2, 3, … per unit, each `sent`, `corrected` or `retracted` and naming the version
//!   it carries. [`Store::inbox`] returns the entries after a `seq`: a unit that was
//!   offline sees the directive, then its corrections, then its retraction, in order.
//! - `directive_inbox` holds one row per (directive, unit): the unit's state
//!   (delivered/read/acknowledged) for the current version. A correction resets it, so
//!   the unit must acknowledge again; every acknowledgement is also written to
//!   `directive_ack` with its version, which nothing resets: nothing acknowledged is lost.
//!
//! # Guarantees
//! - [`Store::create_directive`] writes the directive, its version 1, one inbox entry and
//!   one state row per targeted unit, and one `directive.send` audit entry in one
//!   transaction: after a crash there is either no directive or every unit's entry, each
//!   exactly once (the primary keys are (directive, unit) and (unit, seq)). The target is
//!   resolved inside that transaction, against the tree as it is then. Corrections and
//!   retractions are one transaction each in the same way.
//! - Sends, corrections and retractions are serialised with each other and with tree
//!   writes (the same in-process mutex, `BEGIN IMMEDIATE` on SQLite and advisory lock on
//!   PostgreSQL as [`super::org`]), so each unit's sequence numbers are 1, 2, 3, … with
//!   no gap and no duplicate.
//! - Marking delivered, read or acknowledged runs in one audited transaction (see
//!   [`super::audit`]): the state is read and written under the audit log's lock, so of
//!   concurrent acknowledgements by two officers exactly one takes effect, the first who
//!   and when are kept, retries are harmless, and each change has its audit entry.

use serde_json::json;

use crate::audit::digest_list;
use crate::directive::{
    Change, Content, Directive, DirectiveError, EntryKind, FieldChange, Priority, RollUp, Target,
    UnitState, changes,
};
use crate::org::{Kind, Level, Unit};

use super::audit::{AuditTx, BeginAudited, record};
use super::{BackendKind, BeginWrite, Store, StoreError, with_pool};

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

/// The same columns with the content of the version `v` of an inbox entry.
const ENTRY_DIRECTIVE_COLUMNS: &str = "d.id, v.version, v.title, v.body, v.priority, d.target, \
     v.ack_required, v.deadline, d.created_by, d.created_at";

/// A state row: directive_id, unit_id, seq, version, delivered_at, read_at, acked_at,
/// acked_by.
type StateRow = (
    String,
    String,
    i64,
    i32,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

const STATE_COLUMNS: &str = "i.directive_id, i.unit_id, i.seq, i.version, i.delivered_at, \
     i.read_at, i.acked_at, i.acked_by";

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

/// A version row: version, title, body, priority, ack_required, deadline, changed_by,
/// changed_at, note.
type VersionRow = (
    i32,
    String,
    String,
    String,
    bool,
    Option<i64>,
    String,
    i64,
    String,
);

/// One entry of a unit's inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// The entry's place in the unit's inbox (1, 2, 3, …).
    pub seq: i64,
    pub kind: EntryKind,
    /// When the directive was sent, corrected or retracted (ms since the epoch).
    pub at: i64,
    /// The directive as of this entry's version (`directive.version`); for a retraction,
    /// the version that was withdrawn.
    pub directive: Directive,
    /// The unit's state for the directive now, for its current version (`state.version`,
    /// which may be later than this entry's; `state.seq` is the directive's latest entry).
    pub state: UnitState,
}

/// One version of a directive, with what changed from the one before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub version: i32,
    pub content: Content,
    /// Who sent (version 1) or corrected it, and when.
    pub changed_by: String,
    pub changed_at: i64,
    /// The corrector's explanation ('' for version 1).
    pub note: String,
    /// Field by field against the previous version (empty for version 1).
    pub changes: Vec<FieldChange>,
}

/// An acknowledgement as recorded, for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    pub unit_id: String,
    pub version: i32,
    pub acked_at: i64,
    pub acked_by: String,
}

/// When and by whom a directive was retracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    pub at: i64,
    pub by: String,
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
    let (directive_id, unit_id, seq, version, delivered_at, read_at, acked_at, acked_by) = row;
    UnitState {
        directive_id,
        unit_id,
        seq,
        version,
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

fn to_content(directive: &str, row: &VersionRow) -> Result<Content, StoreError> {
    let (_, title, body, priority, ack_required, deadline, ..) = row;
    Ok(Content {
        title: title.clone(),
        body: body.clone(),
        priority: Priority::parse(priority)
            .map_err(|e| StoreError::Corrupt(format!("directive {directive:?}: {e}")))?,
        ack_required: *ack_required,
        deadline: *deadline,
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
    /// By whom, and the version the caller acknowledges (`None`: the current one).
    Acknowledge(&'a str, Option<i32>),
}

impl Step<'_> {
    fn action(self) -> &'static str {
        match self {
            Step::Deliver => "directive.deliver",
            Step::Read => "directive.read",
            Step::Acknowledge(..) => "directive.ack",
        }
    }
}

/// Appends an entry of `kind` for version `version` of `directive` to each unit's inbox
/// and points the unit's state row at it; with `reset`, the state starts again for that
/// version. Used inside the transaction of a send, a correction or a retraction.
macro_rules! append_entries {
    ($tx:expr, $units_sql:expr, $directive:expr, $units:expr, $version:expr, $kind:expr, $at:expr, $new_state:expr, $reset:expr) => {{
        // Set-based, three statements whatever the number of units (a send to 1,000
        // units was 3,000 statements and most of its time). `$units_sql` turns the JSON
        // array bound last into rows of one column `id`, in the backend's dialect.
        let ids = serde_json::to_string($units).unwrap_or_else(|_| "[]".to_owned());
        sqlx::query(&format!(
            "INSERT INTO directive_inbox_entry (unit_id, seq, directive_id, version, kind, at) \
             SELECT u.id, COALESCE((SELECT MAX(e.seq) FROM directive_inbox_entry e \
                                    WHERE e.unit_id = u.id), 0) + 1, $1, $2, $3, $4 \
             FROM ({}) u",
            $units_sql
        ))
        .bind($directive)
        .bind($version)
        .bind($kind.as_str())
        .bind($at)
        .bind(&ids)
        .execute(&mut *$tx)
        .await?;
        // The entries just written are the only ones of this directive, version and kind.
        let this_entry = "SELECT e.seq FROM directive_inbox_entry e \
                          WHERE e.directive_id = directive_inbox.directive_id \
                            AND e.unit_id = directive_inbox.unit_id \
                            AND e.version = $2 AND e.kind = $3";
        if $new_state {
            sqlx::query(
                "INSERT INTO directive_inbox (directive_id, unit_id, seq, version) \
                 SELECT e.directive_id, e.unit_id, e.seq, e.version FROM directive_inbox_entry e \
                 WHERE e.directive_id = $1 AND e.version = $2 AND e.kind = $3",
            )
            .bind($directive)
            .bind($version)
            .bind($kind.as_str())
            .execute(&mut *$tx)
            .await?;
        } else {
            let reset = if $reset {
                ", version = $2, delivered_at = NULL, read_at = NULL, acked_at = NULL, \
                 acked_by = NULL"
            } else {
                ""
            };
            sqlx::query(&format!(
                "UPDATE directive_inbox SET seq = ({this_entry}){reset} \
                 WHERE directive_id = $1 AND unit_id IN (SELECT u.id FROM ({}) u)",
                $units_sql.replace("$5", "$4")
            ))
            .bind($directive)
            .bind($version)
            .bind($kind.as_str())
            .bind(&ids)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// Rows of one column `id` from the JSON array of strings bound as `$5`.
fn json_ids(backend: BackendKind) -> &'static str {
    match backend {
        BackendKind::Sqlite => "SELECT value AS id FROM json_each($5)",
        BackendKind::Postgres => "SELECT json_array_elements_text($5::json) AS id",
    }
}

impl Store {
    /// Sends `directive`: validates it, resolves its target against the org tree and, in
    /// one transaction, stores it (as version `directive.version`, normally 1), appends a
    /// `sent` entry to every targeted unit's inbox and records the send in the audit log.
    /// Returns the targeted unit ids in path order.
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
        detach(async move { store.send_directive(&directive).await }).await
    }

    /// [`Store::create_directive`]'s transaction, in the calling task.
    async fn send_directive(&self, directive: &Directive) -> Result<Vec<String>, StoreError> {
        let units_sql = json_ids(self.backend());
        let _guard = self.tree_lock.lock().await;
        let targeted = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.lock_audit().await?;
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
            sqlx::query(
                "INSERT INTO directive_version (directive_id, version, title, body, priority, \
                 ack_required, deadline, changed_by, changed_at, note) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '')",
            )
            .bind(&directive.id)
            .bind(directive.version)
            .bind(&directive.title)
            .bind(&directive.body)
            .bind(directive.priority.as_str())
            .bind(directive.ack_required)
            .bind(directive.deadline)
            .bind(&directive.created_by)
            .bind(directive.created_at)
            .execute(&mut *tx)
            .await?;
            append_entries!(
                tx,
                units_sql,
                &directive.id,
                &targeted,
                directive.version,
                EntryKind::Sent,
                directive.created_at,
                true,
                false
            );
            let target: serde_json::Value =
                serde_json::from_str(&directive.target.to_json()).unwrap_or_default();
            tx.append_audit(record(
                directive.created_at,
                &directive.created_by,
                "directive.send",
                format!("directive:{}", directive.id),
                json!({
                    "version": directive.version,
                    "title": directive.title,
                    "priority": directive.priority.as_str(),
                    "ack_required": directive.ack_required,
                    "deadline": directive.deadline,
                    "target": target,
                    "units": targeted.len(),
                    "units_sha256": sorted_digest(&targeted),
                }),
            ))
            .await?;
            tx.commit().await?;
            targeted
        });
        Ok(targeted)
    }

    /// Corrects `directive` to `content` as its next version, in one transaction: the
    /// version is kept in the history, every unit the directive was sent to gets a
    /// `corrected` entry and starts again at `pending` for the new version (it must
    /// acknowledge again; its earlier acknowledgement stays recorded), and the correction
    /// is audited. `note` says why (shown with the version). Returns the corrected
    /// directive and the units, by id.
    ///
    /// The target cannot change: a correction goes to the units of the first send.
    /// Errors: [`StoreError::DirectiveNotFound`], [`StoreError::Retracted`],
    /// [`StoreError::Directive`] for invalid content or a correction that changes nothing.
    pub async fn correct_directive(
        &self,
        directive: &str,
        content: &Content,
        by: &str,
        note: &str,
        at: i64,
    ) -> Result<(Directive, Vec<String>), StoreError> {
        let store = self.clone();
        let (directive, content, by, note) = (
            directive.to_owned(),
            content.clone(),
            by.to_owned(),
            note.to_owned(),
        );
        detach(async move {
            store
                .amend(&directive, Amendment::Correct(&content, &note), &by, at)
                .await
        })
        .await
    }

    /// Retracts `directive`, in one transaction: it is marked retracted, every unit it was
    /// sent to gets a `retracted` entry, and the retraction is audited. After this,
    /// acknowledgements and corrections are refused ([`StoreError::Retracted`]); what was
    /// acknowledged stays recorded; receipts (delivered, read) are still taken, so a
    /// unit's screen can confirm it saw the withdrawal. `note` says why. Returns the directive (as last
    /// corrected) and the units, by id.
    pub async fn retract_directive(
        &self,
        directive: &str,
        by: &str,
        note: &str,
        at: i64,
    ) -> Result<(Directive, Vec<String>), StoreError> {
        let store = self.clone();
        let (directive, by, note) = (directive.to_owned(), by.to_owned(), note.to_owned());
        detach(async move {
            store
                .amend(&directive, Amendment::Retract(&note), &by, at)
                .await
        })
        .await
    }

    /// The transaction of a correction or a retraction, in the calling task.
    async fn amend(
        &self,
        id: &str,
        amendment: Amendment<'_>,
        by: &str,
        at: i64,
    ) -> Result<(Directive, Vec<String>), StoreError> {
        let units_sql = json_ids(self.backend());
        let _guard = self.tree_lock.lock().await;
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            tx.lock_audit().await?;
            let sql = format!("SELECT {DIRECTIVE_COLUMNS} FROM directive d WHERE d.id = $1");
            let row: Option<DirectiveRow> = sqlx::query_as(&sql)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::DirectiveNotFound(id.to_owned()));
            };
            let current = to_directive(row)?;
            let retracted_at: Option<i64> =
                sqlx::query_scalar("SELECT retracted_at FROM directive WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if retracted_at.is_some() {
                return Err(StoreError::Retracted(id.to_owned()));
            }
            let units: Vec<String> = sqlx::query_scalar(
                "SELECT unit_id FROM directive_inbox WHERE directive_id = $1 ORDER BY unit_id",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
            let subject = format!("directive:{id}");
            let outcome = match amendment {
                Amendment::Correct(content, note) => {
                    let changed = changes(&Content::of(&current), content);
                    if changed.is_empty() {
                        return Err(DirectiveError::NothingChanged.into());
                    }
                    let version = current.version.checked_add(1).ok_or_else(|| {
                        StoreError::Corrupt(format!("directive {id:?}: too many versions"))
                    })?;
                    let corrected = content.apply(&current, version)?;
                    sqlx::query(
                        "UPDATE directive SET version = $2, title = $3, body = $4, \
                         priority = $5, ack_required = $6, deadline = $7 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(version)
                    .bind(&corrected.title)
                    .bind(&corrected.body)
                    .bind(corrected.priority.as_str())
                    .bind(corrected.ack_required)
                    .bind(corrected.deadline)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO directive_version (directive_id, version, title, body, \
                         priority, ack_required, deadline, changed_by, changed_at, note) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    )
                    .bind(id)
                    .bind(version)
                    .bind(&corrected.title)
                    .bind(&corrected.body)
                    .bind(corrected.priority.as_str())
                    .bind(corrected.ack_required)
                    .bind(corrected.deadline)
                    .bind(by)
                    .bind(at)
                    .bind(note)
                    .execute(&mut *tx)
                    .await?;
                    append_entries!(
                        tx,
                        units_sql,
                        id,
                        &units,
                        version,
                        EntryKind::Corrected,
                        at,
                        false,
                        true
                    );
                    let fields: Vec<&str> = changed.iter().map(|c| c.field).collect();
                    tx.append_audit(record(
                        at,
                        by,
                        "directive.correct",
                        subject,
                        json!({
                            "from_version": current.version,
                            "version": version,
                            "changed": fields,
                            "title": corrected.title,
                            "note": note,
                            "units": units.len(),
                            "units_sha256": sorted_digest(&units),
                        }),
                    ))
                    .await?;
                    corrected
                }
                Amendment::Retract(note) => {
                    sqlx::query(
                        "UPDATE directive SET retracted_at = $2, retracted_by = $3 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(at)
                    .bind(by)
                    .execute(&mut *tx)
                    .await?;
                    append_entries!(
                        tx,
                        units_sql,
                        id,
                        &units,
                        current.version,
                        EntryKind::Retracted,
                        at,
                        false,
                        false
                    );
                    tx.append_audit(record(
                        at,
                        by,
                        "directive.retract",
                        subject,
                        json!({
                            "version": current.version,
                            "note": note,
                            "units": units.len(),
                            "units_sha256": sorted_digest(&units),
                        }),
                    ))
                    .await?;
                    current
                }
            };
            tx.commit().await?;
            Ok((outcome, units))
        })
    }

    /// The directive with this id, if any, as its current version.
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

    /// When and by whom `directive` was retracted; `None` while it stands.
    /// [`StoreError::DirectiveNotFound`] when there is no such directive.
    pub async fn retraction(&self, directive: &str) -> Result<Option<Retraction>, StoreError> {
        let row: Option<(Option<i64>, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as("SELECT retracted_at, retracted_by FROM directive WHERE id = $1")
                .bind(directive)
                .fetch_optional(pool)
                .await?
        });
        match row {
            None => Err(StoreError::DirectiveNotFound(directive.to_owned())),
            Some((Some(at), by)) => Ok(Some(Retraction {
                at,
                by: by.unwrap_or_default(),
            })),
            Some((None, _)) => Ok(None),
        }
    }

    /// Every version of `directive`, oldest first, each with what changed from the one
    /// before. [`StoreError::DirectiveNotFound`] when there is no such directive.
    pub async fn directive_versions(
        &self,
        directive: &str,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        self.require_directive(directive).await?;
        let rows: Vec<VersionRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT version, title, body, priority, ack_required, deadline, changed_by, \
                 changed_at, note FROM directive_version WHERE directive_id = $1 ORDER BY version",
            )
            .bind(directive)
            .fetch_all(pool)
            .await?
        });
        let mut out: Vec<VersionRecord> = Vec::with_capacity(rows.len());
        for row in &rows {
            let content = to_content(directive, row)?;
            let changes = out
                .last()
                .map(|previous| changes(&previous.content, &content))
                .unwrap_or_default();
            let (version, .., changed_by, changed_at, note) = row.clone();
            out.push(VersionRecord {
                version,
                content,
                changed_by,
                changed_at,
                note,
                changes,
            });
        }
        Ok(out)
    }

    /// Every acknowledgement of `directive` ever recorded, for every version, by unit then
    /// version.
    pub async fn acknowledgements(
        &self,
        directive: &str,
    ) -> Result<Vec<Acknowledgement>, StoreError> {
        let rows: Vec<(String, i32, i64, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT unit_id, version, acked_at, acked_by FROM directive_ack \
                 WHERE directive_id = $1 ORDER BY unit_id, version",
            )
            .bind(directive)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(unit_id, version, acked_at, acked_by)| Acknowledgement {
                unit_id,
                version,
                acked_at,
                acked_by,
            })
            .collect())
    }

    /// The entries of `unit`'s inbox with a sequence number above `after_seq`, in
    /// sequence order: what a unit that has seen up to `after_seq` has missed (`0` for
    /// everything), sendings, corrections and retractions alike. An unknown unit has an
    /// empty inbox.
    pub async fn inbox(&self, unit: &str, after_seq: i64) -> Result<Vec<InboxEntry>, StoreError> {
        let sql = format!(
            "SELECT e.seq, e.kind, e.at, {ENTRY_DIRECTIVE_COLUMNS}, {STATE_COLUMNS} \
             FROM directive_inbox_entry e \
             JOIN directive d ON d.id = e.directive_id \
             JOIN directive_version v ON v.directive_id = e.directive_id AND v.version = e.version \
             JOIN directive_inbox i ON i.directive_id = e.directive_id AND i.unit_id = e.unit_id \
             WHERE e.unit_id = $1 AND e.seq > $2 ORDER BY e.seq"
        );
        let rows: Vec<((i64, String, i64), DirectiveRow, StateRow)> = with_pool!(self, |pool| {
            use sqlx::Row;
            let rows = sqlx::query(&sql)
                .bind(unit)
                .bind(after_seq)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let entry = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                let directive: DirectiveRow = (
                    row.try_get(3)?,
                    row.try_get(4)?,
                    row.try_get(5)?,
                    row.try_get(6)?,
                    row.try_get(7)?,
                    row.try_get(8)?,
                    row.try_get(9)?,
                    row.try_get(10)?,
                    row.try_get(11)?,
                    row.try_get(12)?,
                );
                let state: StateRow = (
                    row.try_get(13)?,
                    row.try_get(14)?,
                    row.try_get(15)?,
                    row.try_get(16)?,
                    row.try_get(17)?,
                    row.try_get(18)?,
                    row.try_get(19)?,
                    row.try_get(20)?,
                );
                out.push((entry, directive, state));
            }
            out
        });
        rows.into_iter()
            .map(|((seq, kind, at), directive, state)| {
                Ok(InboxEntry {
                    seq,
                    kind: EntryKind::parse(&kind).ok_or_else(|| {
                        StoreError::Corrupt(format!("inbox entry {seq} of {unit:?}: kind {kind:?}"))
                    })?,
                    at,
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
                "SELECT COALESCE(MAX(seq), 0) FROM directive_inbox_entry WHERE unit_id = $1",
            )
            .bind(unit)
            .fetch_one(pool)
            .await?
        }))
    }

    /// One unit's state for one directive (for its current version).
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

    /// Every targeted unit's state for `directive` (its current version), by unit id: the
    /// dashboard's input. [`StoreError::DirectiveNotFound`] when there is no such
    /// directive.
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
    /// current org tree and the current version: see [`crate::directive::rollup()`].
    pub async fn directive_rollup(&self, directive: &str, now: i64) -> Result<RollUp, StoreError> {
        let found = self.require_directive(directive).await?;
        let states = self.states(directive).await?;
        let units = self.all_units().await?;
        Ok(crate::directive::rollup(&found, &states, &units, now))
    }

    /// The directive's current version reached `unit` (pushed to one of its devices, or
    /// fetched) at `at`. Idempotent: the first time stays. Returns the stored state and
    /// whether this call changed it (a change is audited).
    pub async fn mark_delivered(
        &self,
        unit: &str,
        directive: &str,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        self.transition(unit, directive, Step::Deliver, at).await
    }

    /// Someone at `unit` opened the directive's current version at `at`. It must have been
    /// delivered ([`StoreError::Directive`] with a bad transition otherwise). Idempotent.
    pub async fn mark_read(
        &self,
        unit: &str,
        directive: &str,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        self.transition(unit, directive, Step::Read, at).await
    }

    /// `by_user` acknowledged the **current** version of `directive` for `unit` at `at`.
    /// Prefer [`Store::acknowledge_version`] when the caller knows which version the
    /// person saw: it refuses an acknowledgement of a version that has been corrected
    /// since.
    pub async fn acknowledge(
        &self,
        unit: &str,
        directive: &str,
        by_user: &str,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        self.transition(unit, directive, Step::Acknowledge(by_user, None), at)
            .await
    }

    /// `by_user` acknowledged version `version` of `directive` for `unit` at `at` (which
    /// also marks it read). Idempotent: a second acknowledgement of the current version,
    /// by anyone, keeps the first who and when and returns [`Change::Unchanged`]. The
    /// directive must ask for acknowledgement and have been delivered to the unit.
    ///
    /// Errors: [`StoreError::StaleVersion`] when `version` is not the current version (a
    /// correction came meanwhile: the unit must read it and acknowledge that),
    /// [`StoreError::Retracted`] when the directive was withdrawn.
    ///
    /// This method does not check that `by_user` may act for `unit`: that scope check
    /// belongs to the caller (the services).
    pub async fn acknowledge_version(
        &self,
        unit: &str,
        directive: &str,
        version: i32,
        by_user: &str,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        self.transition(
            unit,
            directive,
            Step::Acknowledge(by_user, Some(version)),
            at,
        )
        .await
    }

    async fn transition(
        &self,
        unit: &str,
        directive: &str,
        step: Step<'_>,
        at: i64,
    ) -> Result<(UnitState, Change), StoreError> {
        let state_sql = format!(
            "SELECT {STATE_COLUMNS} FROM directive_inbox i \
             WHERE i.directive_id = $1 AND i.unit_id = $2"
        );
        with_pool!(self, |pool| {
            // The audit lock is taken first, so the state read here is the one written over.
            let mut tx = pool.begin_audited().await?;
            let found: Option<(i32, bool, Option<i64>)> = sqlx::query_as(
                "SELECT version, ack_required, retracted_at FROM directive WHERE id = $1",
            )
            .bind(directive)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((current, ack_required, retracted_at)) = found else {
                return Err(StoreError::DirectiveNotFound(directive.to_owned()));
            };
            let row: Option<StateRow> = sqlx::query_as(&state_sql)
                .bind(directive)
                .bind(unit)
                .fetch_optional(&mut *tx)
                .await?;
            let before = row.map(to_state).ok_or_else(|| StoreError::NotInInbox {
                directive: directive.to_owned(),
                unit: unit.to_owned(),
            })?;
            let mut wanted = before.clone();
            let change = match step {
                Step::Deliver => wanted.deliver(at),
                Step::Read => wanted.read(at)?,
                Step::Acknowledge(by, version) => {
                    if retracted_at.is_some() {
                        return Err(StoreError::Retracted(directive.to_owned()));
                    }
                    if let Some(given) = version.filter(|&given| given != current) {
                        return Err(StoreError::StaleVersion {
                            directive: directive.to_owned(),
                            given,
                            current,
                        });
                    }
                    wanted.acknowledge(ack_required, by, at)?
                }
            };
            if change == Change::Unchanged {
                return Ok((before, Change::Unchanged));
            }
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
            .execute(&mut *tx)
            .await?;
            let mut detail = json!({"unit": unit, "version": wanted.version});
            if let (Step::Acknowledge(by, _), Some(acked_at)) = (step, wanted.acked_at) {
                sqlx::query(
                    "INSERT INTO directive_ack (directive_id, unit_id, version, acked_at, \
                     acked_by) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(directive)
                .bind(unit)
                .bind(wanted.version)
                .bind(acked_at)
                .bind(by)
                .execute(&mut *tx)
                .await?;
                detail["by"] = json!(by);
            }
            let actor = match step {
                Step::Acknowledge(by, _) => by.to_owned(),
                Step::Deliver | Step::Read => format!("unit:{unit}"),
            };
            tx.append_audit(record(
                at,
                &actor,
                step.action(),
                format!("directive:{directive}"),
                detail,
            ))
            .await?;
            tx.commit().await?;
            Ok((wanted, Change::Changed))
        })
    }
}

/// What [`Store::amend`] does.
#[derive(Debug, Clone, Copy)]
enum Amendment<'a> {
    /// New content, and why.
    Correct(&'a Content, &'a str),
    /// Why.
    Retract(&'a str),
}

/// SHA-256 of the ids sorted: how an audit entry names a set of units in one line.
fn sorted_digest(units: &[String]) -> String {
    let mut sorted: Vec<&str> = units.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    digest_list(&sorted)
}

/// Runs a write in its own task and waits for it: a caller that gives up does not abandon
/// the transaction half-way (on SQLite that can leave the write lock held by a pooled
/// connection); the write finishes or fails whole.
async fn detach<T: Send + 'static>(
    write: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::spawn(write).await {
        Ok(outcome) => outcome,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // The runtime is shutting down: the transaction was rolled back.
        Err(_) => Err(StoreError::Database(sqlx::Error::WorkerCrashed)),
    }
}
