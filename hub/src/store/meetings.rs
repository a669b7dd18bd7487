//! Meetings in the store: [`Store`] methods over the `meeting`, `meeting_unit`,
//! `meeting_expert`, `meeting_announcement` and `meeting_attendance` tables (migration
//! 0006). Q&A is in [`super::qa`]; who may do what is the services' check
//! (`hub/src/service/meetings.rs`).
//!
//! # Guarantees
//! - A meeting is written with its whole audience (one row per targeted unit, with the
//!   unit's path at scheduling time) and its experts in one transaction.
//! - Status moves only forward, `scheduled` → `live` → `ended`, each step checked against
//!   the row inside its transaction (going live again while live re-binds the stream);
//!   anything else is [`StoreError::MeetingConflict`]. Scheduling, going live, ending and
//!   announcements append their audit entry in the same transaction (actions
//!   `meeting.schedule`, `meeting.live`, `meeting.end`, `meeting.announce`; subject
//!   `meeting:<id>`).
//! - Announcements are numbered 1, 2, … per meeting without gaps (numbered under the
//!   audit lock).
//! - The attendance log has one row per subscription of a connection to the meeting's
//!   channel; a leave closes the connection's open row. Rows still open (a crash) count
//!   until the meeting ended.

use serde_json::json;

use crate::directive::Target;

use super::audit::{AuditTx, BeginAudited, record};
use super::{Store, StoreError, with_pool};

/// Longest meeting title, in characters.
pub const MAX_MEETING_TITLE_CHARS: usize = 200;
/// Longest agenda, in characters.
pub const MAX_AGENDA_CHARS: usize = 20_000;
/// Longest announcement, in characters.
pub const MAX_ANNOUNCEMENT_CHARS: usize = 1_000;
/// Longest relay stream name, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 100;

/// Where a meeting is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingStatus {
    Scheduled,
    Live,
    Ended,
}

impl MeetingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingStatus::Scheduled => "scheduled",
            MeetingStatus::Live => "live",
            MeetingStatus::Ended => "ended",
        }
    }

    fn parse(text: &str) -> Option<MeetingStatus> {
        [
            MeetingStatus::Scheduled,
            MeetingStatus::Live,
            MeetingStatus::Ended,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A meeting as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meeting {
    pub id: String,
    pub title: String,
    pub agenda: String,
    pub starts_at: i64,
    /// What the audience was resolved from.
    pub target: Target,
    /// Questions wait for a moderator's approval before viewers see them.
    pub qa_preapproval: bool,
    pub status: MeetingStatus,
    /// The relay stream bound when it went live.
    pub stream: Option<String>,
    /// The question shown on screen, if any.
    pub screen_question: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub live_at: Option<i64>,
    pub ended_at: Option<i64>,
}

/// A meeting to schedule, with its resolved audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMeeting {
    pub id: String,
    pub title: String,
    pub agenda: String,
    pub starts_at: i64,
    pub target: Target,
    pub qa_preapproval: bool,
    /// The targeted units: (id, path).
    pub units: Vec<(String, String)>,
    /// Expert account ids.
    pub experts: Vec<String>,
    pub created_by: String,
    pub created_at: i64,
}

/// One targeted unit of a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeetingUnit {
    pub unit_id: String,
    /// The unit's path when the meeting was scheduled.
    pub unit_path: String,
    /// People in the unit's room, as its officer or screen reported.
    pub headcount: Option<i64>,
    pub headcount_by: Option<String>,
    pub headcount_at: Option<i64>,
}

/// A live announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub meeting_id: String,
    /// 1, 2, … within the meeting.
    pub number: i64,
    pub body: String,
    /// `info`, `warning` or `urgent`.
    pub level: String,
    pub made_by: String,
    pub at: i64,
}

/// One row of the join/leave log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRecord {
    pub meeting_id: String,
    /// The hub's id of the connection.
    pub client_id: String,
    pub account_id: String,
    /// The unit the connection watched for.
    pub unit_id: Option<String>,
    pub joined_at: i64,
    /// `None` while the connection is still subscribed.
    pub left_at: Option<i64>,
}

/// Which meetings [`Store::meetings`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeetingScope {
    /// Every meeting (administrators).
    All,
    /// Meetings targeting a unit inside the subtree at `path`, or created by `creator`
    /// (moderators).
    Subtree { path: String, creator: String },
    /// Meetings targeting this unit (its people and screens).
    Unit(String),
    /// Meetings listing this account as an expert.
    Expert(String),
}

/// A meeting row: id, title, agenda, starts_at, target, qa_preapproval, status, stream,
/// screen_question, created_by, created_at, live_at, ended_at.
type MeetingRow = (
    String,
    String,
    String,
    i64,
    String,
    bool,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

/// A meeting_unit row: unit_id, unit_path, headcount, headcount_by, headcount_at.
type UnitRow = (String, String, Option<i64>, Option<String>, Option<i64>);

/// A meeting_attendance row: client_id, account_id, unit_id, joined_at, left_at.
type AttendanceRow = (String, String, Option<String>, i64, Option<i64>);

const MEETING_COLUMNS: &str = "m.id, m.title, m.agenda, m.starts_at, m.target, \
     m.qa_preapproval, m.status, m.stream, m.screen_question, m.created_by, m.created_at, \
     m.live_at, m.ended_at";

fn to_meeting(row: MeetingRow) -> Result<Meeting, StoreError> {
    let (
        id,
        title,
        agenda,
        starts_at,
        target,
        qa_preapproval,
        status,
        stream,
        screen_question,
        created_by,
        created_at,
        live_at,
        ended_at,
    ) = row;
    let corrupt = |what: String| StoreError::Corrupt(format!("meeting {id:?}: {what}"));
    Ok(Meeting {
        target: Target::from_json(&target).map_err(|e| corrupt(e.to_string()))?,
        status: MeetingStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("status {status:?}")))?,
        id,
        title,
        agenda,
        starts_at,
        qa_preapproval,
        stream,
        screen_question,
        created_by,
        created_at,
        live_at,
        ended_at,
    })
}

/// Checks a text field: not blank, at most `max` characters.
pub(super) fn check_text(what: &str, text: &str, max: usize) -> Result<(), StoreError> {
    if text.trim().is_empty() {
        return Err(StoreError::MeetingInput(format!("{what} is empty")));
    }
    let chars = text.chars().count();
    if chars > max {
        return Err(StoreError::MeetingInput(format!(
            "{what} is {chars} characters long; at most {max} are allowed"
        )));
    }
    Ok(())
}

/// Checks a relay stream name: 1–100 bytes of ASCII letters, digits, `-`, `_` or `.`.
pub fn check_stream_name(stream: &str) -> Result<(), StoreError> {
    if stream.is_empty()
        || stream.len() > MAX_STREAM_NAME_LEN
        || !stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(StoreError::MeetingInput(format!(
            "stream name {stream:?} must be 1-{MAX_STREAM_NAME_LEN} ASCII letters, digits, \
             '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// The announcement levels.
pub const ANNOUNCEMENT_LEVELS: [&str; 3] = ["info", "warning", "urgent"];

impl Store {
    /// Schedules a meeting with its audience and experts; returns it.
    ///
    /// Errors: [`StoreError::MeetingInput`] for a blank or too long title, a too long
    /// agenda, or no targeted unit; [`StoreError::MeetingExists`].
    pub async fn create_meeting(&self, new: &NewMeeting) -> Result<Meeting, StoreError> {
        check_text("the title", &new.title, MAX_MEETING_TITLE_CHARS)?;
        if new.agenda.chars().count() > MAX_AGENDA_CHARS {
            return Err(StoreError::MeetingInput(format!(
                "the agenda is longer than {MAX_AGENDA_CHARS} characters"
            )));
        }
        if new.units.is_empty() {
            return Err(StoreError::MeetingInput(
                "the meeting targets no unit".into(),
            ));
        }
        let mut experts = new.experts.clone();
        experts.sort();
        experts.dedup();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM meeting WHERE id = $1")
                .bind(&new.id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                return Err(StoreError::MeetingExists(new.id.clone()));
            }
            sqlx::query(
                "INSERT INTO meeting (id, title, agenda, starts_at, target, qa_preapproval, \
                 status, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $8)",
            )
            .bind(&new.id)
            .bind(&new.title)
            .bind(&new.agenda)
            .bind(new.starts_at)
            .bind(new.target.to_json())
            .bind(new.qa_preapproval)
            .bind(&new.created_by)
            .bind(new.created_at)
            .execute(&mut *tx)
            .await?;
            for (unit, path) in &new.units {
                sqlx::query(
                    "INSERT INTO meeting_unit (meeting_id, unit_id, unit_path) \
                     VALUES ($1, $2, $3)",
                )
                .bind(&new.id)
                .bind(unit)
                .bind(path)
                .execute(&mut *tx)
                .await?;
            }
            for expert in &experts {
                sqlx::query("INSERT INTO meeting_expert (meeting_id, account_id) VALUES ($1, $2)")
                    .bind(&new.id)
                    .bind(expert)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.append_audit(record(
                new.created_at,
                &new.created_by,
                "meeting.schedule",
                format!("meeting:{}", new.id),
                json!({
                    "title": new.title,
                    "starts_at": new.starts_at,
                    "units": new.units.len(),
                    "experts": experts,
                }),
            ))
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.require_meeting(&new.id).await
    }

    /// The meeting with this id, if any.
    pub async fn meeting(&self, id: &str) -> Result<Option<Meeting>, StoreError> {
        let sql = format!("SELECT {MEETING_COLUMNS} FROM meeting m WHERE m.id = $1");
        let row: Option<MeetingRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(to_meeting).transpose()
    }

    /// The meeting with this id, or [`StoreError::MeetingNotFound`].
    pub async fn require_meeting(&self, id: &str) -> Result<Meeting, StoreError> {
        self.meeting(id)
            .await?
            .ok_or_else(|| StoreError::MeetingNotFound(id.to_owned()))
    }

    /// The meetings `scope` selects, latest start first, at most `limit`.
    pub async fn meetings(
        &self,
        scope: &MeetingScope,
        limit: i64,
    ) -> Result<Vec<Meeting>, StoreError> {
        let (condition, binds): (&str, Vec<String>) = match scope {
            MeetingScope::All => ("", Vec::new()),
            MeetingScope::Subtree { path, creator } => {
                let (low, high) = crate::org::tree::subtree_range(path);
                (
                    "WHERE m.created_by = $1 OR EXISTS (SELECT 1 FROM meeting_unit u \
                     WHERE u.meeting_id = m.id AND u.unit_path >= $2 AND u.unit_path < $3)",
                    vec![creator.clone(), low, high],
                )
            }
            MeetingScope::Unit(unit) => (
                "WHERE EXISTS (SELECT 1 FROM meeting_unit u WHERE u.meeting_id = m.id \
                 AND u.unit_id = $1)",
                vec![unit.clone()],
            ),
            MeetingScope::Expert(account) => (
                "WHERE EXISTS (SELECT 1 FROM meeting_expert e WHERE e.meeting_id = m.id \
                 AND e.account_id = $1)",
                vec![account.clone()],
            ),
        };
        let sql = format!(
            "SELECT {MEETING_COLUMNS} FROM meeting m {condition} \
             ORDER BY m.starts_at DESC, m.id LIMIT {limit}"
        );
        let rows: Vec<MeetingRow> = with_pool!(self, |pool| {
            let mut query = sqlx::query_as(&sql);
            for value in &binds {
                query = query.bind(value);
            }
            query.fetch_all(pool).await?
        });
        rows.into_iter().map(to_meeting).collect()
    }

    /// The meeting's targeted units, by path.
    pub async fn meeting_units(&self, meeting: &str) -> Result<Vec<MeetingUnit>, StoreError> {
        let rows: Vec<UnitRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT unit_id, unit_path, headcount, headcount_by, headcount_at \
                     FROM meeting_unit WHERE meeting_id = $1 ORDER BY unit_path",
            )
            .bind(meeting)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(unit_id, unit_path, headcount, headcount_by, headcount_at)| MeetingUnit {
                    unit_id,
                    unit_path,
                    headcount,
                    headcount_by,
                    headcount_at,
                },
            )
            .collect())
    }

    /// How many units the meeting targets.
    pub async fn meeting_unit_count(&self, meeting: &str) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM meeting_unit WHERE meeting_id = $1")
                .bind(meeting)
                .fetch_one(pool)
                .await?
        }))
    }

    /// The meeting's experts with their display names (the account id for an expert
    /// without an account row), ordered by account id.
    pub async fn meeting_expert_names(
        &self,
        meeting: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT e.account_id, COALESCE(a.display_name, e.account_id) \
                     FROM meeting_expert e LEFT JOIN account a ON a.id = e.account_id \
                     WHERE e.meeting_id = $1 ORDER BY e.account_id",
            )
            .bind(meeting)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Whether the meeting targets `unit`.
    pub async fn meeting_targets(&self, meeting: &str, unit: &str) -> Result<bool, StoreError> {
        let found: Option<i32> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT 1 FROM meeting_unit WHERE meeting_id = $1 AND unit_id = $2")
                .bind(meeting)
                .bind(unit)
                .fetch_optional(pool)
                .await?
        });
        Ok(found.is_some())
    }

    /// The meeting's expert account ids, sorted.
    pub async fn meeting_experts(&self, meeting: &str) -> Result<Vec<String>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT account_id FROM meeting_expert WHERE meeting_id = $1 ORDER BY account_id",
            )
            .bind(meeting)
            .fetch_all(pool)
            .await?
        }))
    }

    /// `by` takes the meeting live on relay stream `stream` at `at` (a live meeting
    /// re-binds its stream). [`StoreError::MeetingConflict`] once it has ended.
    pub async fn set_meeting_live(
        &self,
        id: &str,
        stream: &str,
        by: &str,
        at: i64,
    ) -> Result<Meeting, StoreError> {
        check_stream_name(stream)?;
        self.advance_meeting(id, MeetingStatus::Live, Some(stream), by, at)
            .await
    }

    /// `by` ends the meeting at `at` (from scheduled or live; the question on screen is
    /// cleared). [`StoreError::MeetingConflict`] when it has ended already.
    pub async fn end_meeting(&self, id: &str, by: &str, at: i64) -> Result<Meeting, StoreError> {
        self.advance_meeting(id, MeetingStatus::Ended, None, by, at)
            .await
    }

    async fn advance_meeting(
        &self,
        id: &str,
        to: MeetingStatus,
        stream: Option<&str>,
        by: &str,
        at: i64,
    ) -> Result<Meeting, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM meeting WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(status) = status else {
                return Err(StoreError::MeetingNotFound(id.to_owned()));
            };
            if status == MeetingStatus::Ended.as_str() {
                return Err(StoreError::MeetingConflict(format!(
                    "meeting {id:?} has ended"
                )));
            }
            let action = match to {
                MeetingStatus::Live => {
                    sqlx::query(
                        "UPDATE meeting SET status = 'live', stream = $2, \
                         live_at = COALESCE(live_at, $3) WHERE id = $1",
                    )
                    .bind(id)
                    .bind(stream)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    "meeting.live"
                }
                _ => {
                    sqlx::query(
                        "UPDATE meeting SET status = 'ended', screen_question = NULL, \
                         ended_at = $2 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                    "meeting.end"
                }
            };
            tx.append_audit(record(
                at,
                by,
                action,
                format!("meeting:{id}"),
                json!({"was": status, "stream": stream}),
            ))
            .await?;
            tx.commit().await?;
            Ok::<(), StoreError>(())
        })?;
        self.require_meeting(id).await
    }

    /// Shows `question` on the meeting's screen (`None` clears it). The caller checks the
    /// question belongs to the meeting and may be shown.
    pub async fn set_screen_question(
        &self,
        meeting: &str,
        question: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query("UPDATE meeting SET screen_question = $2 WHERE id = $1")
                .bind(meeting)
                .bind(question)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::MeetingNotFound(meeting.to_owned()));
        }
        Ok(())
    }

    /// `by` announces `body` at `level` in the meeting at `at`; returns it, numbered.
    pub async fn add_announcement(
        &self,
        meeting: &str,
        body: &str,
        level: &str,
        by: &str,
        at: i64,
    ) -> Result<Announcement, StoreError> {
        check_text("the announcement", body, MAX_ANNOUNCEMENT_CHARS)?;
        if !ANNOUNCEMENT_LEVELS.contains(&level) {
            return Err(StoreError::MeetingInput(format!(
                "unknown level {level:?}; expected info, warning or urgent"
            )));
        }
        let number = with_pool!(self, |pool| {
            let mut tx = pool.begin_audited().await?;
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM meeting WHERE id = $1")
                .bind(meeting)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(StoreError::MeetingNotFound(meeting.to_owned()));
            }
            let number: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM meeting_announcement \
                 WHERE meeting_id = $1",
            )
            .bind(meeting)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO meeting_announcement (meeting_id, number, body, level, made_by, at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(meeting)
            .bind(number)
            .bind(body)
            .bind(level)
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.append_audit(record(
                at,
                by,
                "meeting.announce",
                format!("meeting:{meeting}"),
                json!({"number": number, "level": level}),
            ))
            .await?;
            tx.commit().await?;
            number
        });
        Ok(Announcement {
            meeting_id: meeting.to_owned(),
            number,
            body: body.to_owned(),
            level: level.to_owned(),
            made_by: by.to_owned(),
            at,
        })
    }

    /// The meeting's announcements in order.
    pub async fn announcements(&self, meeting: &str) -> Result<Vec<Announcement>, StoreError> {
        let rows: Vec<(i64, String, String, String, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT number, body, level, made_by, at FROM meeting_announcement \
                 WHERE meeting_id = $1 ORDER BY number",
            )
            .bind(meeting)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(number, body, level, made_by, at)| Announcement {
                meeting_id: meeting.to_owned(),
                number,
                body,
                level,
                made_by,
                at,
            })
            .collect())
    }

    /// Records the headcount `by` reported for `unit`'s room. `false` when the meeting
    /// does not target the unit.
    pub async fn set_headcount(
        &self,
        meeting: &str,
        unit: &str,
        headcount: i64,
        by: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        if !(0..=1_000_000).contains(&headcount) {
            return Err(StoreError::MeetingInput(format!(
                "headcount {headcount} is out of range (0 to 1000000)"
            )));
        }
        let done = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE meeting_unit SET headcount = $3, headcount_by = $4, headcount_at = $5 \
                 WHERE meeting_id = $1 AND unit_id = $2",
            )
            .bind(meeting)
            .bind(unit)
            .bind(headcount)
            .bind(by)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// Logs that connection `client` of `account`, watching for `unit`, subscribed to
    /// the meeting's channel at `at`.
    pub async fn attendance_join(
        &self,
        meeting: &str,
        client: &str,
        account: &str,
        unit: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO meeting_attendance (meeting_id, client_id, account_id, unit_id, \
                 joined_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(meeting)
            .bind(client)
            .bind(account)
            .bind(unit)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Logs that connection `client` left the meeting's channel at `at` (closes its open
    /// row, if any).
    pub async fn attendance_leave(
        &self,
        meeting: &str,
        client: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE meeting_attendance SET left_at = $3 \
                 WHERE meeting_id = $1 AND client_id = $2 AND left_at IS NULL",
            )
            .bind(meeting)
            .bind(client)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The meeting's join/leave log in the order of joining.
    pub async fn attendance_log(&self, meeting: &str) -> Result<Vec<AttendanceRecord>, StoreError> {
        let rows: Vec<AttendanceRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT client_id, account_id, unit_id, joined_at, left_at \
                     FROM meeting_attendance WHERE meeting_id = $1 ORDER BY joined_at, client_id",
            )
            .bind(meeting)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(client_id, account_id, unit_id, joined_at, left_at)| AttendanceRecord {
                    meeting_id: meeting.to_owned(),
                    client_id,
                    account_id,
                    unit_id,
                    joined_at,
                    left_at,
                },
            )
            .collect())
    }
}
