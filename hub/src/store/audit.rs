//! The audit log in the store: the `audit_log` table (migration 0004), appended to
//! **inside the transaction of the change it records**, and verified page by page. The
//! encoding, the hashing and the chain check are the pure [`crate::audit`].
//!
//! # Guarantees
//! - An entry and the change it records commit together or not at all: after a crash the
//!   log and the data agree.
//! - Appends are serialised, so the chain never forks: on SQLite every audited write runs
//!   in a `BEGIN IMMEDIATE` transaction (one writer at a time, across processes); on
//!   PostgreSQL it takes a transaction-scoped advisory lock ([`AUDIT_LOCK_KEY`]) before
//!   reading the head. The primary key on `seq` is the last line of defence: two appends
//!   that read the same head cannot both commit.
//! - Lock order on PostgreSQL: the tree lock (sends, corrections, retractions) before the
//!   audit lock, and the audit lock before any row a transaction writes, so audited
//!   writes cannot deadlock with each other.
//!
//! # Actions recorded
//! `directive.send` (one entry per send, with the number of units and a SHA-256 of their
//! sorted ids), `directive.correct`, `directive.retract`, `directive.deliver`,
//! `directive.read`, `directive.ack` (one per unit, only when the state changed),
//! `feedback.open`, `feedback.message`, `feedback.close`. Subjects are `directive:<id>`
//! and `feedback:<thread id>`.

use serde_json::Value;
use sqlx::{Postgres, Sqlite, SqlitePool, Transaction};

use crate::audit::{self, ChainCheck, Problem, Record};

use super::{Store, StoreError, with_pool};

/// The PostgreSQL advisory lock that serialises appends to the audit log.
const AUDIT_LOCK_KEY: i64 = 0x726f_6f74_6175_6474; // "rootaudt"
/// How many entries [`Store::verify_audit`] reads at a time.
const VERIFY_PAGE: i64 = 1_000;

/// One entry of the audit log.
pub type AuditEntry = audit::Entry;

/// An audit row: seq, at, actor, action, subject, detail, prev_hash, hash.
type AuditRow = (i64, i64, String, String, String, String, String, String);

const AUDIT_COLUMNS: &str = "seq, at, actor, action, subject, detail, prev_hash, hash";

fn to_entry(row: AuditRow) -> AuditEntry {
    let (seq, at, actor, action, subject, detail, prev_hash, hash) = row;
    AuditEntry {
        seq,
        record: Record {
            at,
            actor,
            action,
            subject,
            detail,
        },
        prev_hash,
        hash,
    }
}

/// The first entry that does not fit the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBreak {
    pub seq: i64,
    pub problem: Problem,
}

/// What [`Store::verify_audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries in the log.
    pub count: u64,
    /// The last entry's hash ([`audit::GENESIS_HASH`] for an empty log).
    pub head: String,
    /// `None` when the chain is intact.
    pub broken: Option<AuditBreak>,
}

/// A record of `action` on `subject` by `actor` at `at`, with `detail` as JSON.
pub(super) fn record(at: i64, actor: &str, action: &str, subject: String, detail: Value) -> Record {
    Record {
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject,
        detail: detail.to_string(),
    }
}

/// Appending to the audit log from inside a transaction, each backend in its own way of
/// serialising appends.
pub(super) trait AuditTx {
    /// Takes the audit lock (PostgreSQL); nothing on SQLite, whose `BEGIN IMMEDIATE`
    /// transactions already run one at a time.
    async fn lock_audit(&mut self) -> Result<(), sqlx::Error>;
    /// Appends `record` after the current head. The transaction must hold the audit lock
    /// (SQLite: be an immediate transaction).
    async fn append_audit(&mut self, record: Record) -> Result<AuditEntry, StoreError>;
}

/// Starting a transaction that appends to the audit log and changes no tree.
pub(super) trait BeginAudited {
    type Db: sqlx::Database;
    async fn begin_audited(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginAudited for SqlitePool {
    type Db = Sqlite;
    async fn begin_audited(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginAudited for sqlx::PgPool {
    type Db = Postgres;
    async fn begin_audited(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        tx.lock_audit().await?;
        Ok(tx)
    }
}

/// The same append for both backends.
macro_rules! append_body {
    ($tx:expr, $record:expr) => {{
        let last: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut **$tx)
                .await?;
        let entry = audit::chain(
            last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())),
            $record,
        );
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(entry.seq)
        .bind(entry.record.at)
        .bind(&entry.record.actor)
        .bind(&entry.record.action)
        .bind(&entry.record.subject)
        .bind(&entry.record.detail)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut **$tx)
        .await?;
        Ok(entry)
    }};
}

impl AuditTx for Transaction<'_, Sqlite> {
    async fn lock_audit(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }
    async fn append_audit(&mut self, record: Record) -> Result<AuditEntry, StoreError> {
        append_body!(self, record)
    }
}

impl AuditTx for Transaction<'_, Postgres> {
    async fn lock_audit(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK_KEY)
            .execute(&mut **self)
            .await?;
        Ok(())
    }
    async fn append_audit(&mut self, record: Record) -> Result<AuditEntry, StoreError> {
        append_body!(self, record)
    }
}

impl Store {
    /// Appends `record` to the audit log in a transaction of its own: for events that
    /// change nothing else in the store (a login, an export). Changes in the store record
    /// themselves in their own transaction.
    pub async fn append_audit(&self, record: Record) -> Result<AuditEntry, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let entry = tx.append_audit(record).await?;
            tx.commit().await?;
            Ok(entry)
        })
    }

    /// Up to `limit` entries after `after_seq`, in order.
    pub async fn audit_entries(
        &self,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows: Vec<AuditRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(after_seq)
                .bind(limit.max(0))
                .fetch_all(pool)
                .await?
        });
        Ok(rows.into_iter().map(to_entry).collect())
    }

    /// Walks the whole chain, 1,000 entries at a time (never the whole log in
    /// memory), and reports how many entries there are, the head hash and the first
    /// entry that does not fit (a gap in the numbering, a `prev_hash` that is not the
    /// previous hash, or contents that do not hash to the stored hash).
    pub async fn verify_audit(&self) -> Result<AuditReport, StoreError> {
        let mut check = ChainCheck::default();
        loop {
            let page = self.audit_entries(check.last_seq(), VERIFY_PAGE).await?;
            if page.is_empty() {
                break;
            }
            for entry in &page {
                check.push(entry);
            }
        }
        Ok(AuditReport {
            count: check.count(),
            head: check.head().to_owned(),
            broken: check.broken().map(|(seq, problem)| AuditBreak {
                seq: *seq,
                problem: problem.clone(),
            }),
        })
    }
}
