//! Meeting chat in the store: [`Store`] methods over the `chat_message`, `chat_sanction`
//! and `chat_settings` tables (migration 0007). Which message may be posted is decided
//! before (the pure rules in `hub/src/service/chat_rules.rs`); this file reads and writes
//! rows.
//!
//! # Guarantees
//! - A message is stored before it is pushed: [`Store::post_chat_message`] returns only
//!   once the row is committed, with its id (numbering the meeting's messages in the order
//!   they were accepted; never reused).
//! - Moderation steps change a row only from the state that allows the step (a held
//!   message is approved or rejected once; a deleted message stays deleted): the update's
//!   `WHERE` names the state, so two moderators acting at once cannot both succeed.
//! - Every moderation step (approve, reject, delete, timeout, ban, lifting a sanction,
//!   settings) appends its audit entry in its own transaction (see [`super::audit`]).
//!   Posting a message does not: the message row is its own record.
//! - Meeting ids are plain text with no foreign key to the meeting tables; the service
//!   checks the meeting exists before anything is written.

use serde_json::json;

use super::audit::{AuditTx, BeginAudited, record};
use super::{Store, StoreError, with_pool};

/// Where a chat message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatState {
    /// Shown to everyone.
    Visible,
    /// Held by the word filter: only moderators see it until one approves or rejects it.
    Held,
    /// Removed by a moderator or its author: shown to nobody any more.
    Deleted,
    /// A held message a moderator rejected: never shown.
    Rejected,
}

impl ChatState {
    pub fn as_str(self) -> &'static str {
        match self {
            ChatState::Visible => "visible",
            ChatState::Held => "held",
            ChatState::Deleted => "deleted",
            ChatState::Rejected => "rejected",
        }
    }

    fn parse(text: &str) -> Option<ChatState> {
        Some(match text {
            "visible" => ChatState::Visible,
            "held" => ChatState::Held,
            "deleted" => ChatState::Deleted,
            "rejected" => ChatState::Rejected,
            _ => return None,
        })
    }
}

/// A message as it is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChatMessage {
    pub meeting: String,
    /// The author's account id.
    pub account: String,
    /// The name shown with it.
    pub display_name: String,
    /// The unit the author watches for, if any.
    pub unit: Option<String>,
    pub body: String,
    /// `Some(word)`: held for review because of this filter word; `None`: visible.
    pub held_word: Option<String>,
}

/// A stored chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub id: i64,
    pub meeting_id: String,
    pub account_id: String,
    pub display_name: String,
    pub unit_id: Option<String>,
    pub body: String,
    pub state: ChatState,
    pub held_word: Option<String>,
    pub created_at: i64,
    /// Who approved or rejected it, and when (held messages only).
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<i64>,
    pub deleted_by: Option<String>,
    pub deleted_at: Option<i64>,
}

/// What a sanction forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanctionKind {
    /// No posting until a time.
    Timeout,
    /// No posting in this meeting's chat until a moderator lifts it.
    Ban,
}

impl SanctionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SanctionKind::Timeout => "timeout",
            SanctionKind::Ban => "ban",
        }
    }
}

/// A member's current sanction in one meeting's chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSanction {
    pub meeting_id: String,
    pub account_id: String,
    pub kind: SanctionKind,
    /// The end of a timeout (ms); `None` for a ban.
    pub until: Option<i64>,
    pub reason: String,
    /// The moderator who imposed it.
    pub by: String,
    pub at: i64,
}

/// A meeting's chat settings, once a moderator set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSettings {
    pub meeting_id: String,
    /// Least time between two messages of one member; 0 is off.
    pub slow_mode_seconds: i64,
    /// Members may post.
    pub enabled: bool,
    pub updated_by: String,
    pub updated_at: i64,
}

/// A message row (the columns of [`MESSAGE_COLUMNS`]).
type MessageRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

const MESSAGE_COLUMNS: &str = "id, meeting_id, account_id, display_name, unit_id, body, state, \
     held_word, created_at, reviewed_by, reviewed_at, deleted_by, deleted_at";

/// A sanction row: meeting_id, account_id, kind, until_at, reason, by_account, at.
type SanctionRow = (String, String, String, Option<i64>, String, String, i64);

const SANCTION_COLUMNS: &str = "meeting_id, account_id, kind, until_at, reason, by_account, at";

fn to_message(row: MessageRow) -> Result<ChatMessage, StoreError> {
    let (
        id,
        meeting_id,
        account_id,
        display_name,
        unit_id,
        body,
        state,
        held_word,
        created_at,
        reviewed_by,
        reviewed_at,
        deleted_by,
        deleted_at,
    ) = row;
    Ok(ChatMessage {
        state: ChatState::parse(&state).ok_or_else(|| {
            StoreError::Corrupt(format!("chat message {id}: unknown state {state:?}"))
        })?,
        id,
        meeting_id,
        account_id,
        display_name,
        unit_id,
        body,
        held_word,
        created_at,
        reviewed_by,
        reviewed_at,
        deleted_by,
        deleted_at,
    })
}

fn to_sanction(row: SanctionRow) -> Result<ChatSanction, StoreError> {
    let (meeting_id, account_id, kind, until, reason, by, at) = row;
    let kind = match kind.as_str() {
        "timeout" => SanctionKind::Timeout,
        "ban" => SanctionKind::Ban,
        other => {
            return Err(StoreError::Corrupt(format!(
                "chat sanction of {account_id:?} in {meeting_id:?}: unknown kind {other:?}"
            )));
        }
    };
    Ok(ChatSanction {
        meeting_id,
        account_id,
        kind,
        until,
        reason,
        by,
        at,
    })
}

/// The audit subject of a meeting's chat.
fn subject(meeting: &str) -> String {
    format!("meeting-chat:{meeting}")
}

impl Store {
    /// Stores an accepted message at `at` (visible, or held when `new.held_word` is set)
    /// and returns it with its id.
    pub async fn post_chat_message(
        &self,
        new: &NewChatMessage,
        at: i64,
    ) -> Result<ChatMessage, StoreError> {
        let state = match new.held_word {
            Some(_) => ChatState::Held,
            None => ChatState::Visible,
        };
        let sql = format!(
            "INSERT INTO chat_message (meeting_id, account_id, display_name, unit_id, body, \
             state, held_word, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING {MESSAGE_COLUMNS}"
        );
        let row: MessageRow = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(&new.meeting)
                .bind(&new.account)
                .bind(&new.display_name)
                .bind(&new.unit)
                .bind(&new.body)
                .bind(state.as_str())
                .bind(&new.held_word)
                .bind(at)
                .fetch_one(pool)
                .await?
        });
        to_message(row)
    }

    /// Message `id` of `meeting`, or [`StoreError::ChatMessageNotFound`].
    pub async fn chat_message(&self, meeting: &str, id: i64) -> Result<ChatMessage, StoreError> {
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM chat_message WHERE id = $1 AND meeting_id = $2");
        let row: Option<MessageRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(meeting)
                .fetch_optional(pool)
                .await?
        });
        to_message(row.ok_or(StoreError::ChatMessageNotFound(id))?)
    }

    /// The latest `limit` visible messages of `meeting` (with an id below `before`, when
    /// given), oldest first.
    pub async fn chat_history(
        &self,
        meeting: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Vec<ChatMessage>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_message WHERE meeting_id = $1 \
             AND state = 'visible' AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<MessageRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(meeting)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        let mut messages = rows
            .into_iter()
            .map(to_message)
            .collect::<Result<Vec<_>, _>>()?;
        messages.reverse();
        Ok(messages)
    }

    /// The messages of `meeting` waiting for review, oldest first.
    pub async fn held_chat_messages(&self, meeting: &str) -> Result<Vec<ChatMessage>, StoreError> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM chat_message WHERE meeting_id = $1 \
             AND state = 'held' ORDER BY id"
        );
        let rows: Vec<MessageRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(meeting).fetch_all(pool).await?
        });
        rows.into_iter().map(to_message).collect()
    }

    /// `by` approves (it becomes visible) or rejects a held message at `at`.
    ///
    /// Errors: [`StoreError::ChatMessageNotFound`]; [`StoreError::ChatConflict`] when the
    /// message is not held (any more).
    pub async fn review_chat_message(
        &self,
        meeting: &str,
        id: i64,
        approve: bool,
        by: &str,
        at: i64,
    ) -> Result<ChatMessage, StoreError> {
        let (to, action) = if approve {
            (ChatState::Visible, "chat.approve")
        } else {
            (ChatState::Rejected, "chat.reject")
        };
        let found = self.chat_message(meeting, id).await?;
        let changed = with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let done = sqlx::query(
                "UPDATE chat_message SET state = $3, reviewed_by = $4, reviewed_at = $5 \
                 WHERE id = $1 AND meeting_id = $2 AND state = 'held'",
            )
            .bind(id)
            .bind(meeting)
            .bind(to.as_str())
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                tx.append_audit(record(
                    at,
                    by,
                    action,
                    subject(meeting),
                    json!({"message": id, "author": found.account_id, "word": found.held_word}),
                ))
                .await?;
                tx.commit().await?;
            }
            done.rows_affected() == 1
        });
        let message = self.chat_message(meeting, id).await?;
        if !changed {
            return Err(StoreError::ChatConflict(format!(
                "chat message {id} is {}; only a held message can be approved or rejected",
                message.state.as_str()
            )));
        }
        Ok(message)
    }

    /// `by` deletes a visible or held message at `at`.
    ///
    /// Errors: [`StoreError::ChatMessageNotFound`]; [`StoreError::ChatConflict`] when it is
    /// deleted or rejected already.
    pub async fn delete_chat_message(
        &self,
        meeting: &str,
        id: i64,
        by: &str,
        at: i64,
    ) -> Result<ChatMessage, StoreError> {
        let found = self.chat_message(meeting, id).await?;
        let changed = with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let done = sqlx::query(
                "UPDATE chat_message SET state = 'deleted', deleted_by = $3, deleted_at = $4 \
                 WHERE id = $1 AND meeting_id = $2 AND state IN ('visible', 'held')",
            )
            .bind(id)
            .bind(meeting)
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                tx.append_audit(record(
                    at,
                    by,
                    "chat.delete",
                    subject(meeting),
                    json!({
                        "message": id,
                        "author": found.account_id,
                        "was": found.state.as_str(),
                        "body": found.body,
                    }),
                ))
                .await?;
                tx.commit().await?;
            }
            done.rows_affected() == 1
        });
        let message = self.chat_message(meeting, id).await?;
        if !changed {
            return Err(StoreError::ChatConflict(format!(
                "chat message {id} is {} already",
                message.state.as_str()
            )));
        }
        Ok(message)
    }

    /// Imposes `sanction` (replacing the member's current one, if any).
    ///
    /// Errors: [`StoreError::ChatInput`] for a timeout without an end, or a ban with one.
    pub async fn sanction_chat_member(
        &self,
        sanction: &ChatSanction,
    ) -> Result<ChatSanction, StoreError> {
        if (sanction.kind == SanctionKind::Ban) != sanction.until.is_none() {
            return Err(StoreError::ChatInput(
                "a timeout needs an end and a ban has none".into(),
            ));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            sqlx::query(
                "INSERT INTO chat_sanction (meeting_id, account_id, kind, until_at, reason, \
                 by_account, at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (meeting_id, account_id) DO UPDATE SET kind = excluded.kind, \
                 until_at = excluded.until_at, reason = excluded.reason, \
                 by_account = excluded.by_account, at = excluded.at",
            )
            .bind(&sanction.meeting_id)
            .bind(&sanction.account_id)
            .bind(sanction.kind.as_str())
            .bind(sanction.until)
            .bind(&sanction.reason)
            .bind(&sanction.by)
            .bind(sanction.at)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(record(
                sanction.at,
                &sanction.by,
                &format!("chat.{}", sanction.kind.as_str()),
                subject(&sanction.meeting_id),
                json!({
                    "account": sanction.account_id,
                    "until": sanction.until,
                    "reason": sanction.reason,
                }),
            ))
            .await?;
            tx.commit().await?;
        });
        self.chat_sanction(&sanction.meeting_id, &sanction.account_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a sanction just written is missing".into()))
    }

    /// `by` lifts the member's sanction (ban or timeout) at `at`; returns the sanction
    /// lifted, `None` when there was none (then nothing is recorded).
    pub async fn lift_chat_sanction(
        &self,
        meeting: &str,
        account: &str,
        by: &str,
        at: i64,
    ) -> Result<Option<ChatSanction>, StoreError> {
        let Some(current) = self.chat_sanction(meeting, account).await? else {
            return Ok(None);
        };
        let lifted = with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let done =
                sqlx::query("DELETE FROM chat_sanction WHERE meeting_id = $1 AND account_id = $2")
                    .bind(meeting)
                    .bind(account)
                    .execute(&mut *tx)
                    .await?;
            if done.rows_affected() == 1 {
                tx.append_audit(record(
                    at,
                    by,
                    "chat.unban",
                    subject(meeting),
                    json!({"account": account, "was": current.kind.as_str()}),
                ))
                .await?;
                tx.commit().await?;
            }
            done.rows_affected() == 1
        });
        Ok(lifted.then_some(current))
    }

    /// The member's current sanction row in `meeting`, if any (a timeout is returned
    /// even after its end; the rules compare it with the time).
    pub async fn chat_sanction(
        &self,
        meeting: &str,
        account: &str,
    ) -> Result<Option<ChatSanction>, StoreError> {
        let sql = format!(
            "SELECT {SANCTION_COLUMNS} FROM chat_sanction WHERE meeting_id = $1 AND account_id = $2"
        );
        let row: Option<SanctionRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(meeting)
                .bind(account)
                .fetch_optional(pool)
                .await?
        });
        row.map(to_sanction).transpose()
    }

    /// The sanctions in force in `meeting` at `now` (bans, and timeouts not over yet),
    /// oldest first.
    pub async fn chat_sanctions(
        &self,
        meeting: &str,
        now: i64,
    ) -> Result<Vec<ChatSanction>, StoreError> {
        let sql = format!(
            "SELECT {SANCTION_COLUMNS} FROM chat_sanction WHERE meeting_id = $1 \
             AND (until_at IS NULL OR until_at > $2) ORDER BY at, account_id"
        );
        let rows: Vec<SanctionRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(meeting)
                .bind(now)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(to_sanction).collect()
    }

    /// The meeting's chat settings, `None` until a moderator set them.
    pub async fn chat_settings(&self, meeting: &str) -> Result<Option<ChatSettings>, StoreError> {
        let row: Option<(String, i64, bool, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT meeting_id, slow_mode_seconds, enabled, updated_by, updated_at \
                 FROM chat_settings WHERE meeting_id = $1",
            )
            .bind(meeting)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(
            |(meeting_id, slow_mode_seconds, enabled, updated_by, updated_at)| ChatSettings {
                meeting_id,
                slow_mode_seconds,
                enabled,
                updated_by,
                updated_at,
            },
        ))
    }

    /// Stores a meeting's chat settings (replacing earlier ones).
    ///
    /// Errors: [`StoreError::ChatInput`] for a negative slow mode.
    pub async fn set_chat_settings(
        &self,
        settings: &ChatSettings,
    ) -> Result<ChatSettings, StoreError> {
        if settings.slow_mode_seconds < 0 {
            return Err(StoreError::ChatInput("slow mode cannot be negative".into()));
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            sqlx::query(
                "INSERT INTO chat_settings (meeting_id, slow_mode_seconds, enabled, updated_by, \
                 updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (meeting_id) DO UPDATE \
                 SET slow_mode_seconds = excluded.slow_mode_seconds, \
                 enabled = excluded.enabled, updated_by = excluded.updated_by, \
                 updated_at = excluded.updated_at",
            )
            .bind(&settings.meeting_id)
            .bind(settings.slow_mode_seconds)
            .bind(settings.enabled)
            .bind(&settings.updated_by)
            .bind(settings.updated_at)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(record(
                settings.updated_at,
                &settings.updated_by,
                "chat.settings",
                subject(&settings.meeting_id),
                json!({
                    "slow_mode_seconds": settings.slow_mode_seconds,
                    "enabled": settings.enabled,
                }),
            ))
            .await?;
            tx.commit().await?;
        });
        self.chat_settings(&settings.meeting_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("chat settings just written are missing".into()))
    }
}
