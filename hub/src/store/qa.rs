//! A meeting's Q&A in the store: [`Store`] methods over `meeting_question`,
//! `meeting_vote` and `meeting_answer` (migration 0006). Who may see and do what is the
//! services' check (`hub/src/service/qa.rs`); this file keeps the rows consistent.
//!
//! # Guarantees
//! - **One vote per account per question**: the primary key of `meeting_vote` enforces
//!   it, so a double vote (even two at once) counts once; [`Store::vote`] says whether
//!   it counted.
//! - A status change is checked against the row inside its transaction
//!   ([`Store::moderate_question`] names the statuses it may start from), so two
//!   moderators acting at once cannot, say, approve a question another just deleted.
//! - A merge moves the source's votes to the target (a voter of both keeps one vote),
//!   marks the source `merged` with `merged_into`, in one transaction.
//! - Answers are numbered 1, 2, … per question without gaps.
//! - Moderation steps, merges, assignments and answers append their audit entry in the
//!   same transaction (actions `qa.<status>`, `qa.merge`, `qa.assign`, `qa.answer`;
//!   subject `question:<id>`). Asking and voting are not audited (they are many, and
//!   the rows themselves record who did what).

use serde_json::json;

use super::audit::{AuditTx, BeginAudited, record};
use super::meetings::check_text;
use super::{Store, StoreError, with_pool};

/// The status of a question inside transaction `$tx` (either backend);
/// [`StoreError::QuestionNotFound`] when there is none or it was deleted.
macro_rules! current_status {
    ($tx:expr, $id:expr) => {{
        let id: &str = $id;
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM meeting_question WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *$tx)
                .await?;
        status
            .and_then(|s| QuestionStatus::parse(&s))
            .filter(|s| *s != QuestionStatus::Deleted)
            .ok_or_else(|| StoreError::QuestionNotFound(id.to_owned()))
    }};
}

/// Longest question, in characters.
pub const MAX_QUESTION_CHARS: usize = 1_000;
/// Longest answer, in characters.
pub const MAX_ANSWER_CHARS: usize = 4_000;

/// Where a question is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionStatus {
    /// Waiting for a moderator's approval: only moderators and the asker see it.
    Pending,
    Open,
    Answered,
    Archived,
    /// A duplicate, merged into another question.
    Merged,
    /// Refused by a moderator: only moderators and the asker see it.
    Rejected,
    /// Deleted: nobody sees it.
    Deleted,
}

impl QuestionStatus {
    pub const ALL: [QuestionStatus; 7] = [
        QuestionStatus::Pending,
        QuestionStatus::Open,
        QuestionStatus::Answered,
        QuestionStatus::Archived,
        QuestionStatus::Merged,
        QuestionStatus::Rejected,
        QuestionStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuestionStatus::Pending => "pending",
            QuestionStatus::Open => "open",
            QuestionStatus::Answered => "answered",
            QuestionStatus::Archived => "archived",
            QuestionStatus::Merged => "merged",
            QuestionStatus::Rejected => "rejected",
            QuestionStatus::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<QuestionStatus> {
        QuestionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether every viewer of the meeting sees a question in this status.
    pub fn is_public(self) -> bool {
        matches!(
            self,
            QuestionStatus::Open
                | QuestionStatus::Answered
                | QuestionStatus::Archived
                | QuestionStatus::Merged
        )
    }
}

/// A question as stored, with its vote count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub id: String,
    pub meeting_id: String,
    pub body: String,
    /// The asker's account id (never shown to other viewers when `anonymous`).
    pub asked_by: String,
    pub asker_name: String,
    /// The unit the asker watched for.
    pub asker_unit: Option<String>,
    pub anonymous: bool,
    pub status: QuestionStatus,
    pub merged_into: Option<String>,
    /// The expert the question is assigned to.
    pub assigned_to: Option<String>,
    pub votes: i64,
    pub asked_at: i64,
    pub updated_at: i64,
}

/// A question to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQuestion {
    pub id: String,
    pub meeting_id: String,
    pub body: String,
    pub asked_by: String,
    pub asker_name: String,
    pub asker_unit: Option<String>,
    pub anonymous: bool,
    /// Starts `pending` (the meeting pre-approves questions) instead of `open`.
    pub pending: bool,
    pub at: i64,
}

/// One answer in a question's thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub question_id: String,
    /// 1, 2, … within the question.
    pub number: i64,
    pub author: String,
    pub author_name: String,
    pub body: String,
    /// Seen only by the asker, the author and moderators.
    pub private: bool,
    pub at: i64,
}

/// A question row: id, meeting_id, body, asked_by, asker_name, asker_unit, anonymous,
/// status, merged_into, assigned_to, votes, asked_at, updated_at.
type QuestionRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
);

const QUESTION_COLUMNS: &str = "q.id, q.meeting_id, q.body, q.asked_by, q.asker_name, \
     q.asker_unit, q.anonymous, q.status, q.merged_into, q.assigned_to, \
     (SELECT COUNT(*) FROM meeting_vote v WHERE v.question_id = q.id), q.asked_at, \
     q.updated_at";

fn to_question(row: QuestionRow) -> Result<Question, StoreError> {
    let (
        id,
        meeting_id,
        body,
        asked_by,
        asker_name,
        asker_unit,
        anonymous,
        status,
        merged_into,
        assigned_to,
        votes,
        asked_at,
        updated_at,
    ) = row;
    let status = QuestionStatus::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("question {id:?}: status {status:?}")))?;
    Ok(Question {
        id,
        meeting_id,
        body,
        asked_by,
        asker_name,
        asker_unit,
        anonymous,
        status,
        merged_into,
        assigned_to,
        votes,
        asked_at,
        updated_at,
    })
}

/// The status names of `statuses`, for messages.
fn names(statuses: &[QuestionStatus]) -> String {
    statuses
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Asks a question; returns it.
    ///
    /// Errors: [`StoreError::MeetingInput`] for a blank or too long question,
    /// [`StoreError::MeetingNotFound`].
    pub async fn ask_question(&self, new: &NewQuestion) -> Result<Question, StoreError> {
        check_text("the question", &new.body, MAX_QUESTION_CHARS)?;
        let status = if new.pending {
            QuestionStatus::Pending
        } else {
            QuestionStatus::Open
        };
        with_pool!(self, |pool| {
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM meeting WHERE id = $1")
                .bind(&new.meeting_id)
                .fetch_optional(pool)
                .await?;
            if exists.is_none() {
                return Err(StoreError::MeetingNotFound(new.meeting_id.clone()));
            }
            sqlx::query(
                "INSERT INTO meeting_question (id, meeting_id, body, asked_by, asker_name, \
                 asker_unit, anonymous, status, asked_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(&new.id)
            .bind(&new.meeting_id)
            .bind(&new.body)
            .bind(&new.asked_by)
            .bind(&new.asker_name)
            .bind(&new.asker_unit)
            .bind(new.anonymous)
            .bind(status.as_str())
            .bind(new.at)
            .execute(pool)
            .await?;
        });
        self.require_question(&new.id).await
    }

    /// The question with this id (deleted ones included), if any.
    pub async fn question(&self, id: &str) -> Result<Option<Question>, StoreError> {
        let sql = format!("SELECT {QUESTION_COLUMNS} FROM meeting_question q WHERE q.id = $1");
        let row: Option<QuestionRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(to_question).transpose()
    }

    /// The question with this id, or [`StoreError::QuestionNotFound`] (also for a
    /// deleted one).
    pub async fn require_question(&self, id: &str) -> Result<Question, StoreError> {
        self.question(id)
            .await?
            .filter(|q| q.status != QuestionStatus::Deleted)
            .ok_or_else(|| StoreError::QuestionNotFound(id.to_owned()))
    }

    /// Every question of the meeting but the deleted ones, in the order they were asked.
    pub async fn questions(&self, meeting: &str) -> Result<Vec<Question>, StoreError> {
        let sql = format!(
            "SELECT {QUESTION_COLUMNS} FROM meeting_question q \
             WHERE q.meeting_id = $1 AND q.status <> 'deleted' ORDER BY q.asked_at, q.id"
        );
        let rows: Vec<QuestionRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(meeting).fetch_all(pool).await?
        });
        rows.into_iter().map(to_question).collect()
    }

    /// How many questions each unit asked in the meeting (every status counts: a
    /// question asked is asked), by unit id.
    pub async fn questions_per_unit(
        &self,
        meeting: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT asker_unit, COUNT(*) FROM meeting_question \
                 WHERE meeting_id = $1 AND asker_unit IS NOT NULL GROUP BY asker_unit",
            )
            .bind(meeting)
            .fetch_all(pool)
            .await?
        }))
    }

    /// `by` moves the question to `to` at `at`, if it is in one of `from`; returns it
    /// after. [`StoreError::MeetingConflict`] when it is in another status,
    /// [`StoreError::QuestionNotFound`] when there is none (or it was deleted).
    pub async fn moderate_question(
        &self,
        id: &str,
        from: &[QuestionStatus],
        to: QuestionStatus,
        by: &str,
        at: i64,
    ) -> Result<Question, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let status = current_status!(tx, id)?;
            if !from.contains(&status) {
                return Err(StoreError::MeetingConflict(format!(
                    "question {id:?} is {}; it must be {} to become {}",
                    status.as_str(),
                    names(from),
                    to.as_str()
                )));
            }
            sqlx::query("UPDATE meeting_question SET status = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(to.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.append_audit(record(
                at,
                by,
                &format!("qa.{}", to.as_str()),
                format!("question:{id}"),
                json!({"was": status.as_str()}),
            ))
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        match to {
            QuestionStatus::Deleted => self
                .question(id)
                .await?
                .ok_or_else(|| StoreError::QuestionNotFound(id.to_owned())),
            _ => self.require_question(id).await,
        }
    }

    /// `by` assigns the question to `expert` (`None`: unassigns) at `at`.
    pub async fn assign_question(
        &self,
        id: &str,
        expert: Option<&str>,
        by: &str,
        at: i64,
    ) -> Result<Question, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            current_status!(tx, id)?;
            sqlx::query(
                "UPDATE meeting_question SET assigned_to = $2, updated_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(expert)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(record(
                at,
                by,
                "qa.assign",
                format!("question:{id}"),
                json!({"expert": expert}),
            ))
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.require_question(id).await
    }

    /// `account` votes for the question at `at`: `true` when the vote counted, `false`
    /// when the account had voted already.
    pub async fn vote(&self, question: &str, account: &str, at: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO meeting_vote (question_id, account_id, at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(question)
            .bind(account)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// `account` withdraws its vote: `true` when there was one.
    pub async fn withdraw_vote(&self, question: &str, account: &str) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM meeting_vote WHERE question_id = $1 AND account_id = $2")
                .bind(question)
                .bind(account)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// The questions of the meeting `account` has voted for.
    pub async fn votes_of(&self, meeting: &str, account: &str) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT v.question_id FROM meeting_vote v \
                 JOIN meeting_question q ON q.id = v.question_id \
                 WHERE q.meeting_id = $1 AND v.account_id = $2 ORDER BY v.question_id",
            )
            .bind(meeting)
            .bind(account)
            .fetch_all(pool)
            .await?
        }))
    }

    /// `by` merges `source` into `target` at `at`: the source's votes move to the target
    /// (one per account), the source becomes `merged` pointing at the target. Returns
    /// (source, target) after.
    ///
    /// Errors: [`StoreError::MeetingInput`] when they are the same question or of
    /// different meetings; [`StoreError::MeetingConflict`] when the source is merged or
    /// rejected already, or the target is not public or is itself merged.
    pub async fn merge_questions(
        &self,
        source: &str,
        target: &str,
        by: &str,
        at: i64,
    ) -> Result<(Question, Question), StoreError> {
        if source == target {
            return Err(StoreError::MeetingInput(
                "a question cannot be merged into itself".into(),
            ));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let meetings: Vec<(String, String, String)> = sqlx::query_as(
                "SELECT id, meeting_id, status FROM meeting_question \
                 WHERE id IN ($1, $2) AND status <> 'deleted'",
            )
            .bind(source)
            .bind(target)
            .fetch_all(&mut *tx)
            .await?;
            let find = |id: &str| meetings.iter().find(|(q, ..)| q == id);
            let source_row =
                find(source).ok_or_else(|| StoreError::QuestionNotFound(source.into()))?;
            let target_row =
                find(target).ok_or_else(|| StoreError::QuestionNotFound(target.into()))?;
            if source_row.1 != target_row.1 {
                return Err(StoreError::MeetingInput(
                    "questions of different meetings cannot be merged".into(),
                ));
            }
            let source_status = QuestionStatus::parse(&source_row.2);
            let target_status = QuestionStatus::parse(&target_row.2);
            if matches!(
                source_status,
                Some(QuestionStatus::Merged | QuestionStatus::Rejected) | None
            ) {
                return Err(StoreError::MeetingConflict(format!(
                    "question {source:?} is {}; it cannot be merged",
                    source_row.2
                )));
            }
            if !target_status.is_some_and(|s| s.is_public() && s != QuestionStatus::Merged) {
                return Err(StoreError::MeetingConflict(format!(
                    "question {target:?} is {}; only an open, answered or archived question \
                     takes duplicates",
                    target_row.2
                )));
            }
            sqlx::query(
                "INSERT INTO meeting_vote (question_id, account_id, at) \
                 SELECT $2, account_id, at FROM meeting_vote WHERE question_id = $1 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(source)
            .bind(target)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM meeting_vote WHERE question_id = $1")
                .bind(source)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE meeting_question SET status = 'merged', merged_into = $2, \
                 updated_at = $3 WHERE id = $1",
            )
            .bind(source)
            .bind(target)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE meeting_question SET updated_at = $2 WHERE id = $1")
                .bind(target)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.append_audit(record(
                at,
                by,
                "qa.merge",
                format!("question:{source}"),
                json!({"into": target}),
            ))
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        Ok((
            self.require_question(source).await?,
            self.require_question(target).await?,
        ))
    }

    /// `author` answers the question at `at` (publicly, or privately to the asker);
    /// returns the answer, numbered.
    pub async fn add_answer(
        &self,
        question: &str,
        author: &str,
        author_name: &str,
        body: &str,
        private: bool,
        at: i64,
    ) -> Result<Answer, StoreError> {
        check_text("the answer", body, MAX_ANSWER_CHARS)?;
        let number = with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            current_status!(tx, question)?;
            let number: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM meeting_answer WHERE question_id = $1",
            )
            .bind(question)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO meeting_answer (question_id, number, author, author_name, body, \
                 private, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(question)
            .bind(number)
            .bind(author)
            .bind(author_name)
            .bind(body)
            .bind(private)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(record(
                at,
                author,
                "qa.answer",
                format!("question:{question}"),
                json!({"number": number, "private": private}),
            ))
            .await?;
            tx.commit().await?;
            number
        });
        Ok(Answer {
            question_id: question.to_owned(),
            number,
            author: author.to_owned(),
            author_name: author_name.to_owned(),
            body: body.to_owned(),
            private,
            at,
        })
    }

    /// Every answer to the meeting's questions (deleted questions' excluded), by
    /// question then number.
    pub async fn answers(&self, meeting: &str) -> Result<Vec<Answer>, StoreError> {
        let rows: Vec<(String, i64, String, String, String, bool, i64)> =
            with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT a.question_id, a.number, a.author, a.author_name, a.body, a.private, \
                     a.at FROM meeting_answer a JOIN meeting_question q ON q.id = a.question_id \
                     WHERE q.meeting_id = $1 AND q.status <> 'deleted' \
                     ORDER BY q.asked_at, a.question_id, a.number",
                )
                .bind(meeting)
                .fetch_all(pool)
                .await?
            });
        Ok(rows
            .into_iter()
            .map(
                |(question_id, number, author, author_name, body, private, at)| Answer {
                    question_id,
                    number,
                    author,
                    author_name,
                    body,
                    private,
                    at,
                },
            )
            .collect())
    }
}
