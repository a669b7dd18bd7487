//! Feedback in the store: [`Store`] methods over the `feedback_thread` and
//! `feedback_message` tables (migration 0004). The kinds, statuses and status rules are
//! the pure [`crate::directive::feedback`]; this file reads and writes rows.
//!
//! # Guarantees
//! - Opening a thread, posting to it and closing it are each one audited transaction (see
//!   [`super::audit`]): the thread, its message and the audit entry commit together, and
//!   the thread is read under the audit lock, so two people posting at once get
//!   messages 1, 2, … and a status that follows the rules.
//! - Flat, not relayed: a thread records its unit's materialised path and parent when it
//!   is opened, so headquarters (every thread) and the parent (its subtree, or
//!   [`ThreadFilter::parent`]) see it at once. A unit moved later keeps its earlier
//!   threads where they were opened.

use serde_json::json;

use crate::directive::feedback::{
    self, FeedbackKind, Status, after_message, validate_body, validate_subject,
};
use crate::org::tree::subtree_range;

use super::audit::{AuditTx, BeginAudited, record};
use super::{Store, StoreError, with_pool};

/// What a unit says when it opens a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewThread {
    /// The unit the thread is from.
    pub unit: String,
    /// The directive it is about, if any (it must have been sent to the unit).
    pub directive: Option<String>,
    pub kind: FeedbackKind,
    pub subject: String,
    /// The first message.
    pub body: String,
    /// The account writing it.
    pub author: String,
}

/// A feedback thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackThread {
    pub id: String,
    pub unit_id: String,
    /// The unit's path when the thread was opened.
    pub unit_path: String,
    /// The unit's parent when the thread was opened (`None` for the root).
    pub parent_id: Option<String>,
    pub directive_id: Option<String>,
    pub kind: FeedbackKind,
    pub subject: String,
    pub status: Status,
    pub opened_by: String,
    pub opened_at: i64,
    /// The last message or the closing.
    pub updated_at: i64,
    pub closed_by: Option<String>,
    pub closed_at: Option<i64>,
}

/// One message of a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackMessage {
    pub thread_id: String,
    /// 1, 2, 3, … within the thread.
    pub number: i64,
    /// The account that wrote it.
    pub author: String,
    /// The unit the author speaks for; `None` for headquarters.
    pub author_unit: Option<String>,
    pub body: String,
    pub at: i64,
}

/// Which threads [`Store::feedback_threads`] returns: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ThreadFilter {
    /// Opened by this unit.
    pub unit: Option<String>,
    /// Opened by a unit in this unit's subtree (itself included).
    pub subtree: Option<String>,
    /// Opened by a direct child of this unit.
    pub parent: Option<String>,
    /// About this directive.
    pub directive: Option<String>,
    pub status: Option<Status>,
}

/// A thread row: id, unit_id, unit_path, parent_id, directive_id, kind, subject, status,
/// opened_by, opened_at, updated_at, closed_by, closed_at.
type ThreadRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
);

const THREAD_COLUMNS: &str = "id, unit_id, unit_path, parent_id, directive_id, kind, subject, \
     status, opened_by, opened_at, updated_at, closed_by, closed_at";

/// A message row: thread_id, number, author, author_unit, body, at.
type MessageRow = (String, i64, String, Option<String>, String, i64);

fn to_thread(row: ThreadRow) -> Result<FeedbackThread, StoreError> {
    let (
        id,
        unit_id,
        unit_path,
        parent_id,
        directive_id,
        kind,
        subject,
        status,
        opened_by,
        opened_at,
        updated_at,
        closed_by,
        closed_at,
    ) = row;
    let corrupt = |what: String| StoreError::Corrupt(format!("feedback thread {id:?}: {what}"));
    Ok(FeedbackThread {
        kind: FeedbackKind::parse(&kind).map_err(|e| corrupt(e.to_string()))?,
        status: Status::parse(&status).map_err(|e| corrupt(e.to_string()))?,
        id,
        unit_id,
        unit_path,
        parent_id,
        directive_id,
        subject,
        opened_by,
        opened_at,
        updated_at,
        closed_by,
        closed_at,
    })
}

fn to_message(row: MessageRow) -> FeedbackMessage {
    let (thread_id, number, author, author_unit, body, at) = row;
    FeedbackMessage {
        thread_id,
        number,
        author,
        author_unit,
        body,
        at,
    }
}

fn closed(id: &str, error: feedback::FeedbackError) -> StoreError {
    match error {
        feedback::FeedbackError::Closed => StoreError::ThreadClosed(id.to_owned()),
        other => other.into(),
    }
}

impl Store {
    /// Opens a thread from `new.unit` with its first message, at `at`; returns it. Its id
    /// is generated (`fb-` and 32 hex digits).
    ///
    /// Errors: [`StoreError::Feedback`] for a blank or too long subject or message,
    /// [`StoreError::UnitNotFound`], [`StoreError::DirectiveNotFound`], and
    /// [`StoreError::NotInInbox`] when the directive was not sent to the unit.
    pub async fn open_thread(
        &self,
        new: &NewThread,
        at: i64,
    ) -> Result<FeedbackThread, StoreError> {
        validate_subject(&new.subject)?;
        validate_body(&new.body)?;
        let id = format!("fb-{}", uuid::Uuid::new_v4().simple());
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let unit: Option<(String, Option<String>)> =
                sqlx::query_as("SELECT path, parent_id FROM org_unit WHERE id = $1")
                    .bind(&new.unit)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((path, parent)) = unit else {
                return Err(StoreError::UnitNotFound(new.unit.clone()));
            };
            if let Some(directive) = &new.directive {
                let exists: Option<i32> =
                    sqlx::query_scalar("SELECT 1 FROM directive WHERE id = $1")
                        .bind(directive)
                        .fetch_optional(&mut *tx)
                        .await?;
                if exists.is_none() {
                    return Err(StoreError::DirectiveNotFound(directive.clone()));
                }
                let sent: Option<i32> = sqlx::query_scalar(
                    "SELECT 1 FROM directive_inbox WHERE directive_id = $1 AND unit_id = $2",
                )
                .bind(directive)
                .bind(&new.unit)
                .fetch_optional(&mut *tx)
                .await?;
                if sent.is_none() {
                    return Err(StoreError::NotInInbox {
                        directive: directive.clone(),
                        unit: new.unit.clone(),
                    });
                }
            }
            sqlx::query(
                "INSERT INTO feedback_thread (id, unit_id, unit_path, parent_id, directive_id, \
                 kind, subject, status, opened_by, opened_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $9)",
            )
            .bind(&id)
            .bind(&new.unit)
            .bind(&path)
            .bind(&parent)
            .bind(&new.directive)
            .bind(new.kind.as_str())
            .bind(&new.subject)
            .bind(&new.author)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO feedback_message (thread_id, number, author, author_unit, body, at) \
                 VALUES ($1, 1, $2, $3, $4, $5)",
            )
            .bind(&id)
            .bind(&new.author)
            .bind(&new.unit)
            .bind(&new.body)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(record(
                at,
                &new.author,
                "feedback.open",
                format!("feedback:{id}"),
                json!({
                    "unit": new.unit,
                    "parent": parent,
                    "kind": new.kind.as_str(),
                    "directive": new.directive,
                    "subject": new.subject,
                }),
            ))
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.require_thread(&id).await
    }

    /// `author`, speaking for `author_unit` (`None`: headquarters), adds a message to the
    /// thread at `at`. The status follows the rules of [`crate::directive::feedback`]: a
    /// message from anyone but the thread's unit answers it, one from the unit on an
    /// answered thread reopens it. Returns the thread after and the message.
    ///
    /// Errors: [`StoreError::ThreadNotFound`], [`StoreError::ThreadClosed`],
    /// [`StoreError::Feedback`] for a blank or too large message. Whether `author` may
    /// speak for `author_unit` (the unit itself or its parent, or headquarters) is the
    /// caller's scope check.
    pub async fn post_feedback(
        &self,
        thread: &str,
        author: &str,
        author_unit: Option<&str>,
        body: &str,
        at: i64,
    ) -> Result<(FeedbackThread, FeedbackMessage), StoreError> {
        validate_body(body)?;
        let sql = format!("SELECT {THREAD_COLUMNS} FROM feedback_thread WHERE id = $1");
        let number = with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let row: Option<ThreadRow> = sqlx::query_as(&sql)
                .bind(thread)
                .fetch_optional(&mut *tx)
                .await?;
            let found =
                to_thread(row.ok_or_else(|| StoreError::ThreadNotFound(thread.to_owned()))?)?;
            let from_unit = author_unit == Some(found.unit_id.as_str());
            let status = after_message(found.status, from_unit).map_err(|e| closed(thread, e))?;
            let number: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM feedback_message WHERE thread_id = $1",
            )
            .bind(thread)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO feedback_message (thread_id, number, author, author_unit, body, at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(thread)
            .bind(number)
            .bind(author)
            .bind(author_unit)
            .bind(body)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE feedback_thread SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(thread)
                .bind(status.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.append_audit(record(
                at,
                author,
                "feedback.message",
                format!("feedback:{thread}"),
                json!({
                    "number": number,
                    "from": author_unit.unwrap_or("headquarters"),
                    "status": status.as_str(),
                }),
            ))
            .await?;
            tx.commit().await?;
            number
        });
        let found = self.require_thread(thread).await?;
        let message = self
            .feedback_messages(thread)
            .await?
            .into_iter()
            .find(|message| message.number == number)
            .ok_or_else(|| StoreError::ThreadNotFound(thread.to_owned()))?;
        Ok((found, message))
    }

    /// `by` closes the thread at `at` (the unit, its parent or headquarters: the caller
    /// checks). [`StoreError::ThreadClosed`] when it is closed already.
    pub async fn close_thread(
        &self,
        thread: &str,
        by: &str,
        at: i64,
    ) -> Result<FeedbackThread, StoreError> {
        let sql = format!("SELECT {THREAD_COLUMNS} FROM feedback_thread WHERE id = $1");
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let row: Option<ThreadRow> = sqlx::query_as(&sql)
                .bind(thread)
                .fetch_optional(&mut *tx)
                .await?;
            let found =
                to_thread(row.ok_or_else(|| StoreError::ThreadNotFound(thread.to_owned()))?)?;
            let status = feedback::close(found.status).map_err(|e| closed(thread, e))?;
            sqlx::query(
                "UPDATE feedback_thread SET status = $2, updated_at = $3, closed_at = $3, \
                 closed_by = $4 WHERE id = $1",
            )
            .bind(thread)
            .bind(status.as_str())
            .bind(at)
            .bind(by)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(record(
                at,
                by,
                "feedback.close",
                format!("feedback:{thread}"),
                json!({"was": found.status.as_str()}),
            ))
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.require_thread(thread).await
    }

    /// The thread with this id, or [`StoreError::ThreadNotFound`].
    pub async fn require_thread(&self, id: &str) -> Result<FeedbackThread, StoreError> {
        let sql = format!("SELECT {THREAD_COLUMNS} FROM feedback_thread WHERE id = $1");
        let row: Option<ThreadRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        to_thread(row.ok_or_else(|| StoreError::ThreadNotFound(id.to_owned()))?)
    }

    /// A thread's messages in order. [`StoreError::ThreadNotFound`] when there is no such
    /// thread.
    pub async fn feedback_messages(
        &self,
        thread: &str,
    ) -> Result<Vec<FeedbackMessage>, StoreError> {
        self.require_thread(thread).await?;
        let rows: Vec<MessageRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT thread_id, number, author, author_unit, body, at FROM feedback_message \
                 WHERE thread_id = $1 ORDER BY number",
            )
            .bind(thread)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(to_message).collect())
    }

    /// The threads `filter` selects, most recently updated first. A `subtree` that is not
    /// a unit is [`StoreError::UnitNotFound`].
    pub async fn feedback_threads(
        &self,
        filter: &ThreadFilter,
    ) -> Result<Vec<FeedbackThread>, StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        let mut add = |clause: &str, values: Vec<String>| {
            let mut clause = clause.to_owned();
            for value in values {
                binds.push(value);
                clause = clause.replacen('?', &format!("${}", binds.len()), 1);
            }
            clauses.push(clause);
        };
        if let Some(unit) = &filter.unit {
            add("unit_id = ?", vec![unit.clone()]);
        }
        if let Some(root) = &filter.subtree {
            let (low, high) = subtree_range(&self.require_unit(root).await?.path);
            add("unit_path >= ? AND unit_path < ?", vec![low, high]);
        }
        if let Some(parent) = &filter.parent {
            add("parent_id = ?", vec![parent.clone()]);
        }
        if let Some(directive) = &filter.directive {
            add("directive_id = ?", vec![directive.clone()]);
        }
        if let Some(status) = filter.status {
            add("status = ?", vec![status.as_str().to_owned()]);
        }
        let condition = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let sql = format!(
            "SELECT {THREAD_COLUMNS} FROM feedback_thread {condition} \
             ORDER BY updated_at DESC, id"
        );
        let rows: Vec<ThreadRow> = with_pool!(self, |pool| {
            let mut query = sqlx::query_as(&sql);
            for value in &binds {
                query = query.bind(value);
            }
            query.fetch_all(pool).await?
        });
        rows.into_iter().map(to_thread).collect()
    }
}
