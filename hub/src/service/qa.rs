//! A meeting's Q&A: ask (optionally anonymous to other viewers), upvote and withdraw,
//! list by votes or time, the pre-approval queue, approve, reject, merge duplicates,
//! assign to an expert, show one question on screen, mark answered, archive, delete,
//! answers in a thread (public, or private to the asker), CSV export. Every rule is
//! checked here, on the server; the store keeps the rows consistent
//! (`hub/src/store/qa.rs`).
//!
//! # Who sees what
//! - Viewers see `open`, `answered`, `archived` and `merged` questions, plus their own
//!   `pending` and `rejected` ones; an anonymous question's asker is left out of every
//!   payload another viewer receives (`"asker": null`).
//! - Moderators see every question but the deleted ones, always with the asker.
//! - Public answers are seen by everyone who sees the question; a private answer only by
//!   the asker, its author and the moderators.
//!
//! # The channels
//! Moderators need the full view and viewers must never receive the asker of an
//! anonymous question, so the same change is published on separate channels, each
//! carrying exactly what its subscribers may see (a decision over fetch-on-event: one
//! round trip fewer per change for thousands of viewers):
//! - `qa:<meeting>`: every viewer. `{"type":"question","question":…}` (public view) when
//!   a public question is asked or changes (votes included),
//!   `{"type":"question_removed","id":…}` when one stops being public (rejected,
//!   deleted), `{"type":"answer","answer":…}` for a public answer.
//! - `qa:<meeting>@moderators`: the moderators (token only for them). The same events
//!   with the full view, pending questions, and private answers too.
//! - `qa:<meeting>#<account id>`: one person (token only for them): every change to their
//!   own questions (full view: pending, approved, rejected, deleted) and private answers
//!   to them. A private reply is delivered here, so no other viewer ever receives it.
//!
//! The question on screen is published on `meeting:<id>` (see [`super::meetings`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::directives::publish;
use super::http::{AppState, Reply, caller, ok, parse};
use super::meetings::{MeetingAccess, MeetingCall, csv_response, meeting_channel, parse_optional};
use super::rpc::method;
use super::{ServiceError, Services, now_ms};
use crate::auth::Principal;
use crate::node::Node;
use crate::rpc::RpcRegistry;
use crate::store::{Answer, Meeting, NewQuestion, Question, QuestionStatus};

/// The viewers' Q&A channel of a meeting.
pub(super) fn public_channel(meeting: &str) -> String {
    format!("qa:{meeting}")
}

/// The moderators' Q&A channel of a meeting (full view).
pub(super) fn moderator_channel(meeting: &str) -> String {
    format!("qa:{meeting}@moderators")
}

/// One person's Q&A channel in a meeting.
pub(super) fn personal_channel(meeting: &str, account: &str) -> String {
    format!("qa:{meeting}#{account}")
}

/// A question as the API shows it; `full` includes the asker of an anonymous question
/// (for moderators and the asker).
pub(super) fn question_view(question: &Question, full: bool) -> Value {
    let asker = (full || !question.anonymous).then(|| {
        json!({
            "id": question.asked_by,
            "name": question.asker_name,
            "unit": question.asker_unit,
        })
    });
    json!({
        "id": question.id,
        "meeting": question.meeting_id,
        "body": question.body,
        "status": question.status.as_str(),
        "anonymous": question.anonymous,
        "asker": asker,
        "votes": question.votes,
        "merged_into": question.merged_into,
        "assigned_to": question.assigned_to,
        "asked_at": question.asked_at,
        "updated_at": question.updated_at,
    })
}

fn answer_view(answer: &Answer) -> Value {
    json!({
        "question": answer.question_id,
        "number": answer.number,
        "author": {"id": answer.author, "name": answer.author_name},
        "body": answer.body,
        "private": answer.private,
        "at": answer.at,
    })
}

/// A moderator's step on one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Moderation {
    Approve,
    Reject,
    MarkAnswered,
    Archive,
    Delete,
}

impl Moderation {
    /// (the statuses it starts from, the status it leads to).
    fn rule(self) -> (&'static [QuestionStatus], QuestionStatus) {
        use QuestionStatus::*;
        match self {
            Moderation::Approve => (&[Pending], Open),
            Moderation::Reject => (&[Pending, Open], Rejected),
            Moderation::MarkAnswered => (&[Open], Answered),
            Moderation::Archive => (&[Open, Answered], Archived),
            Moderation::Delete => (
                &[Pending, Open, Answered, Archived, Merged, Rejected],
                Deleted,
            ),
        }
    }
}

/// How a question list is ordered.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Sort {
    /// Most votes first, then the earliest asked.
    #[default]
    Votes,
    /// Newest first.
    Time,
}

impl Services {
    /// A question with its meeting and the caller's access; 404 when the caller may not
    /// see it (someone else's pending or rejected question, for a viewer).
    async fn question_for(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<(Question, Meeting, MeetingAccess), ServiceError> {
        let question = self.store.require_question(id).await?;
        let meeting = self.store.require_meeting(&question.meeting_id).await?;
        let access = self.access_to(who, &meeting).await?;
        if !may_see(who, &access, &question) {
            return Err(ServiceError::NotFound(format!(
                "question {id:?} does not exist"
            )));
        }
        Ok((question, meeting, access))
    }

    /// Asks a question in the meeting, as the caller and for the unit they watch for.
    /// It waits in the pre-approval queue when the meeting has one (a moderator's own
    /// question does not).
    pub(super) async fn ask_question(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        body: &str,
        anonymous: bool,
    ) -> Result<Value, ServiceError> {
        let found = self.store.require_meeting(meeting).await?;
        let access = self.access_to(who, &found).await?;
        if access.ended {
            return Err(ServiceError::Conflict(format!(
                "meeting {meeting:?} has ended; questions are closed"
            )));
        }
        let now = now_ms();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let question = self
            .store
            .ask_question(&NewQuestion {
                id: format!("q{now:x}-{}", &random[..8]),
                meeting_id: meeting.to_owned(),
                body: body.to_owned(),
                asked_by: who.account_id.clone(),
                asker_name: who.username.clone(),
                asker_unit: access.unit.clone(),
                anonymous,
                pending: found.qa_preapproval && !access.moderator,
                at: now,
            })
            .await?;
        self.announce_question(node, &question, false).await;
        Ok(json!({"question": question_view(&question, true)}))
    }

    /// The questions the caller may see, sorted, each with the answers the caller may
    /// see, and the ids of the questions the caller voted for.
    pub(super) async fn list_questions(
        &self,
        who: &Principal,
        meeting: &str,
        sort: Sort,
    ) -> Result<Value, ServiceError> {
        let access = self.meeting_access(who, meeting).await?;
        let mut questions: Vec<Question> = self
            .store
            .questions(meeting)
            .await?
            .into_iter()
            .filter(|q| may_see(who, &access, q))
            .collect();
        match sort {
            Sort::Votes => questions.sort_by(|a, b| {
                b.votes
                    .cmp(&a.votes)
                    .then(a.asked_at.cmp(&b.asked_at))
                    .then(a.id.cmp(&b.id))
            }),
            Sort::Time => {
                questions.sort_by(|a, b| b.asked_at.cmp(&a.asked_at).then(b.id.cmp(&a.id)))
            }
        }
        let answers = self.store.answers(meeting).await?;
        let list: Vec<Value> = questions
            .iter()
            .map(|question| {
                let full = access.moderator || question.asked_by == who.account_id;
                let mut view = question_view(question, full);
                view["answers"] = answers
                    .iter()
                    .filter(|a| a.question_id == question.id)
                    .filter(|a| may_see_answer(who, &access, question, a))
                    .map(answer_view)
                    .collect();
                view
            })
            .collect();
        Ok(json!({
            "questions": list,
            "my_votes": self.store.votes_of(meeting, &who.account_id).await?,
        }))
    }

    /// The caller votes for a question (`counted` false when they had already), or
    /// withdraws their vote (`counted` false when they had none).
    pub(super) async fn vote_question(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        vote: bool,
    ) -> Result<Value, ServiceError> {
        let (question, _, access) = self.question_for(who, id).await?;
        if access.ended {
            return Err(ServiceError::Conflict(
                "the meeting has ended; votes are closed".into(),
            ));
        }
        if !matches!(
            question.status,
            QuestionStatus::Open | QuestionStatus::Answered
        ) {
            return Err(ServiceError::Conflict(format!(
                "question {id:?} is {}; only open and answered questions take votes",
                question.status.as_str()
            )));
        }
        let counted = if vote {
            self.store.vote(id, &who.account_id, now_ms()).await?
        } else {
            self.store.withdraw_vote(id, &who.account_id).await?
        };
        let after = self.store.require_question(id).await?;
        if counted {
            self.announce_question(node, &after, true).await;
        }
        Ok(json!({"question": question_view(&after, access.moderator), "counted": counted}))
    }

    /// A moderator's step on a question (approve, reject, mark answered, archive,
    /// delete). A question that leaves the public view also leaves the screen.
    pub(super) async fn moderate_question(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        step: Moderation,
    ) -> Result<Value, ServiceError> {
        let (question, meeting, access) = self.question_for(who, id).await?;
        if !access.moderator {
            return Err(ServiceError::Forbidden(
                "only the meeting's moderators moderate questions".into(),
            ));
        }
        let (from, to) = step.rule();
        let after = self
            .store
            .moderate_question(id, from, to, &who.account_id, now_ms())
            .await?;
        self.announce_question(node, &after, question.status.is_public())
            .await;
        if meeting.screen_question.as_deref() == Some(id)
            && !matches!(to, QuestionStatus::Open | QuestionStatus::Answered)
        {
            self.set_screen(node, &meeting.id, None).await?;
        }
        Ok(json!({"question": question_view(&after, true)}))
    }

    /// Merges a duplicate into `into`: its votes move there and it points at it.
    pub(super) async fn merge_question(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        into: &str,
    ) -> Result<Value, ServiceError> {
        let (question, meeting, access) = self.question_for(who, id).await?;
        if !access.moderator {
            return Err(ServiceError::Forbidden(
                "only the meeting's moderators merge questions".into(),
            ));
        }
        let (source, target) = self
            .store
            .merge_questions(id, into, &who.account_id, now_ms())
            .await?;
        self.announce_question(node, &source, question.status.is_public())
            .await;
        self.announce_question(node, &target, true).await;
        if meeting.screen_question.as_deref() == Some(id) {
            self.set_screen(node, &meeting.id, None).await?;
        }
        Ok(json!({
            "question": question_view(&source, true),
            "into": question_view(&target, true),
        }))
    }

    /// Assigns a question to one of the meeting's experts (`None`: unassigns).
    pub(super) async fn assign_question(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        expert: Option<&str>,
    ) -> Result<Value, ServiceError> {
        let (question, meeting, access) = self.question_for(who, id).await?;
        if !access.moderator {
            return Err(ServiceError::Forbidden(
                "only the meeting's moderators assign questions".into(),
            ));
        }
        if let Some(expert) = expert
            && !self
                .store
                .meeting_experts(&meeting.id)
                .await?
                .iter()
                .any(|e| e == expert)
        {
            return Err(ServiceError::Unprocessable(format!(
                "{expert:?} is not an expert of meeting {:?}",
                meeting.id
            )));
        }
        if !matches!(
            question.status,
            QuestionStatus::Open | QuestionStatus::Answered
        ) {
            return Err(ServiceError::Conflict(format!(
                "question {id:?} is {}; only open and answered questions are assigned",
                question.status.as_str()
            )));
        }
        let after = self
            .store
            .assign_question(id, expert, &who.account_id, now_ms())
            .await?;
        self.announce_question(node, &after, true).await;
        Ok(json!({"question": question_view(&after, true)}))
    }

    /// Shows one question on the meeting's screen (`None`: clears it); only an open or
    /// answered question of the meeting may be shown.
    pub(super) async fn show_on_screen(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        question: Option<&str>,
    ) -> Result<Value, ServiceError> {
        self.moderated_meeting(who, meeting).await?;
        if let Some(id) = question {
            let found = self.store.require_question(id).await?;
            if found.meeting_id != meeting {
                return Err(ServiceError::NotFound(format!(
                    "question {id:?} is not in meeting {meeting:?}"
                )));
            }
            if !matches!(
                found.status,
                QuestionStatus::Open | QuestionStatus::Answered
            ) {
                return Err(ServiceError::Conflict(format!(
                    "question {id:?} is {}; only open and answered questions go on screen",
                    found.status.as_str()
                )));
            }
        }
        let screen = self.set_screen(node, meeting, question).await?;
        Ok(json!({"screen": screen}))
    }

    /// Stores and publishes the question on screen; returns its public view.
    async fn set_screen(
        &self,
        node: &Node,
        meeting: &str,
        question: Option<&str>,
    ) -> Result<Value, ServiceError> {
        self.store.set_screen_question(meeting, question).await?;
        let view = match question {
            Some(id) => question_view(&self.store.require_question(id).await?, false),
            None => Value::Null,
        };
        publish(
            node,
            &meeting_channel(meeting),
            &json!({"type": "screen", "question": view}),
        )
        .await;
        Ok(view)
    }

    /// Answers a question in its thread: a moderator any question, an expert of the
    /// meeting those assigned to them. A private answer reaches only the asker (and the
    /// moderators).
    pub(super) async fn answer_question(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        body: &str,
        private: bool,
    ) -> Result<Value, ServiceError> {
        let (question, _, access) = self.question_for(who, id).await?;
        let assigned = question.assigned_to.as_deref() == Some(who.account_id.as_str());
        if !(access.moderator || (access.expert && assigned)) {
            return Err(ServiceError::Forbidden(
                "only the meeting's moderators and the expert the question is assigned to \
                 answer it"
                    .into(),
            ));
        }
        if !matches!(
            question.status,
            QuestionStatus::Open | QuestionStatus::Answered | QuestionStatus::Archived
        ) {
            return Err(ServiceError::Conflict(format!(
                "question {id:?} is {}; only open, answered or archived questions are answered",
                question.status.as_str()
            )));
        }
        let answer = self
            .store
            .add_answer(id, &who.account_id, &who.username, body, private, now_ms())
            .await?;
        let push = json!({"type": "answer", "answer": answer_view(&answer)});
        let meeting = &question.meeting_id;
        publish(node, &moderator_channel(meeting), &push).await;
        if private {
            publish(node, &personal_channel(meeting, &question.asked_by), &push).await;
        } else {
            publish(node, &public_channel(meeting), &push).await;
        }
        Ok(json!({"answer": answer_view(&answer)}))
    }

    /// Every question (deleted ones excepted) and answer of the meeting as CSV, for its
    /// moderators: one row per answer, a question without answers on one row.
    pub(super) async fn export_questions(
        &self,
        who: &Principal,
        meeting: &str,
    ) -> Result<String, ServiceError> {
        self.moderated_meeting(who, meeting).await?;
        let questions = self.store.questions(meeting).await?;
        let answers = self.store.answers(meeting).await?;
        let mut writer = csv::Writer::from_writer(Vec::new());
        let header = [
            "question_id",
            "asked_at",
            "status",
            "votes",
            "anonymous",
            "asker",
            "asker_unit",
            "question",
            "merged_into",
            "assigned_to",
            "answer_number",
            "answered_by",
            "answer_private",
            "answered_at",
            "answer",
        ];
        let csv_error = |error: csv::Error| {
            tracing::error!(%error, "writing the Q&A export");
            ServiceError::Internal
        };
        writer.write_record(header).map_err(csv_error)?;
        for question in &questions {
            let base = [
                question.id.clone(),
                question.asked_at.to_string(),
                question.status.as_str().to_owned(),
                question.votes.to_string(),
                question.anonymous.to_string(),
                safe_cell(&question.asker_name),
                question.asker_unit.clone().unwrap_or_default(),
                safe_cell(&question.body),
                question.merged_into.clone().unwrap_or_default(),
                question.assigned_to.clone().unwrap_or_default(),
            ];
            let mut thread = answers
                .iter()
                .filter(|a| a.question_id == question.id)
                .peekable();
            if thread.peek().is_none() {
                let row: Vec<String> = base
                    .iter()
                    .cloned()
                    .chain(std::iter::repeat_n(String::new(), 5))
                    .collect();
                writer.write_record(&row).map_err(csv_error)?;
            }
            for answer in thread {
                let row: Vec<String> = base
                    .iter()
                    .cloned()
                    .chain([
                        answer.number.to_string(),
                        answer.author_name.clone(),
                        answer.private.to_string(),
                        answer.at.to_string(),
                        safe_cell(&answer.body),
                    ])
                    .collect();
                writer.write_record(&row).map_err(csv_error)?;
            }
        }
        let bytes = writer.into_inner().map_err(|_| ServiceError::Internal)?;
        String::from_utf8(bytes).map_err(|_| ServiceError::Internal)
    }

    /// Publishes a question's change on each channel that may carry it (see the module
    /// docs); `was_public` says whether viewers saw it before the change.
    async fn announce_question(&self, node: &Node, question: &Question, was_public: bool) {
        let meeting = &question.meeting_id;
        let personal = personal_channel(meeting, &question.asked_by);
        if question.status == QuestionStatus::Deleted {
            let removed = json!({"type": "question_removed", "id": question.id});
            publish(node, &moderator_channel(meeting), &removed).await;
            publish(node, &personal, &removed).await;
            if was_public {
                publish(node, &public_channel(meeting), &removed).await;
            }
            return;
        }
        let full = json!({"type": "question", "question": question_view(question, true)});
        publish(node, &moderator_channel(meeting), &full).await;
        publish(node, &personal, &full).await;
        if question.status.is_public() {
            let public = json!({"type": "question", "question": question_view(question, false)});
            publish(node, &public_channel(meeting), &public).await;
        } else if was_public {
            let removed = json!({"type": "question_removed", "id": question.id});
            publish(node, &public_channel(meeting), &removed).await;
        }
    }
}

/// Whether `who` sees `question`: moderators all, everyone the public ones, the asker
/// their own.
fn may_see(who: &Principal, access: &MeetingAccess, question: &Question) -> bool {
    access.moderator || question.status.is_public() || question.asked_by == who.account_id
}

/// Whether `who` sees `answer` to `question`: a public one whoever sees the question, a
/// private one the asker, its author and the moderators.
fn may_see_answer(
    who: &Principal,
    access: &MeetingAccess,
    question: &Question,
    answer: &Answer,
) -> bool {
    !answer.private
        || access.moderator
        || question.asked_by == who.account_id
        || answer.author == who.account_id
}

/// A cell a spreadsheet will not run as a formula: text starting with `=`, `+`, `-` or
/// `@` gets a leading `'`.
fn safe_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// The Q&A routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/meetings/{id}/questions",
            get(list_questions).post(ask_question),
        )
        .route("/api/v1/meetings/{id}/questions.csv", get(export_questions))
        .route("/api/v1/meetings/{id}/screen", post(show_on_screen))
        .route("/api/v1/questions/{id}", delete(delete_question))
        .route(
            "/api/v1/questions/{id}/vote",
            post(vote_question).delete(withdraw_vote),
        )
        .route("/api/v1/questions/{id}/approve", post(approve_question))
        .route("/api/v1/questions/{id}/reject", post(reject_question))
        .route("/api/v1/questions/{id}/answered", post(mark_answered))
        .route("/api/v1/questions/{id}/archive", post(archive_question))
        .route("/api/v1/questions/{id}/merge", post(merge_question))
        .route("/api/v1/questions/{id}/assign", post(assign_question))
        .route("/api/v1/questions/{id}/answers", post(answer_question))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskRequest {
    body: String,
    #[serde(default)]
    anonymous: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    sort: Sort,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenRequest {
    question: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    into: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignRequest {
    expert: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerRequest {
    body: String,
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NoBody {}

async fn ask_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: AskRequest = parse(&headers, &body)?;
    let asked = state
        .services
        .ask_question(&state.node, &who, &id, &request.body, request.anonymous)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(asked)).into_response())
}

async fn list_questions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let Query(query) =
        query.map_err(|error| ServiceError::BadRequest(format!("bad query: {error}")))?;
    ok(state.services.list_questions(&who, &id, query.sort).await?)
}

async fn export_questions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let text = state.services.export_questions(&who, &id).await?;
    csv_response(&format!("questions-{id}.csv"), text)
}

async fn show_on_screen(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: ScreenRequest = parse(&headers, &body)?;
    ok(state
        .services
        .show_on_screen(&state.node, &who, &id, request.question.as_deref())
        .await?)
}

async fn vote_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let NoBody {} = parse_optional(&headers, &body)?;
    ok(state
        .services
        .vote_question(&state.node, &who, &id, true)
        .await?)
}

async fn withdraw_vote(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state
        .services
        .vote_question(&state.node, &who, &id, false)
        .await?)
}

async fn moderate(state: AppState, headers: HeaderMap, id: String, step: Moderation) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state
        .services
        .moderate_question(&state.node, &who, &id, step)
        .await?)
}

async fn approve_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    moderate(state, headers, id, Moderation::Approve).await
}

async fn reject_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    moderate(state, headers, id, Moderation::Reject).await
}

async fn mark_answered(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    moderate(state, headers, id, Moderation::MarkAnswered).await
}

async fn archive_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    moderate(state, headers, id, Moderation::Archive).await
}

async fn delete_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    moderate(state, headers, id, Moderation::Delete).await
}

async fn merge_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: MergeRequest = parse(&headers, &body)?;
    ok(state
        .services
        .merge_question(&state.node, &who, &id, &request.into)
        .await?)
}

async fn assign_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: AssignRequest = parse(&headers, &body)?;
    ok(state
        .services
        .assign_question(&state.node, &who, &id, request.expert.as_deref())
        .await?)
}

async fn answer_question(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: AnswerRequest = parse(&headers, &body)?;
    let answered = state
        .services
        .answer_question(&state.node, &who, &id, &request.body, request.private)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(answered)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskCall {
    meeting: String,
    body: String,
    #[serde(default)]
    anonymous: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListCall {
    meeting: String,
    #[serde(default)]
    sort: Sort,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionCall {
    question: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeCall {
    question: String,
    into: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignCall {
    question: String,
    expert: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScreenCall {
    meeting: String,
    question: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerCall {
    question: String,
    body: String,
    #[serde(default)]
    private: bool,
}

/// Registers the `qa.*` RPC methods.
pub(super) fn register_rpc(services: &Arc<Services>, registry: &mut RpcRegistry) {
    method(
        services,
        registry,
        "qa.ask",
        |s, node, who, call: AskCall| async move {
            s.ask_question(&node, &who, &call.meeting, &call.body, call.anonymous)
                .await
        },
    );
    method(
        services,
        registry,
        "qa.list",
        |s, _node, who, call: ListCall| async move {
            s.list_questions(&who, &call.meeting, call.sort).await
        },
    );
    for (name, vote) in [("qa.vote", true), ("qa.unvote", false)] {
        method(
            services,
            registry,
            name,
            move |s, node, who, call: QuestionCall| async move {
                s.vote_question(&node, &who, &call.question, vote).await
            },
        );
    }
    for (name, step) in [
        ("qa.approve", Moderation::Approve),
        ("qa.reject", Moderation::Reject),
        ("qa.answered", Moderation::MarkAnswered),
        ("qa.archive", Moderation::Archive),
        ("qa.delete", Moderation::Delete),
    ] {
        method(
            services,
            registry,
            name,
            move |s, node, who, call: QuestionCall| async move {
                s.moderate_question(&node, &who, &call.question, step).await
            },
        );
    }
    method(
        services,
        registry,
        "qa.merge",
        |s, node, who, call: MergeCall| async move {
            s.merge_question(&node, &who, &call.question, &call.into)
                .await
        },
    );
    method(
        services,
        registry,
        "qa.assign",
        |s, node, who, call: AssignCall| async move {
            s.assign_question(&node, &who, &call.question, call.expert.as_deref())
                .await
        },
    );
    method(
        services,
        registry,
        "qa.screen",
        |s, node, who, call: ScreenCall| async move {
            s.show_on_screen(&node, &who, &call.meeting, call.question.as_deref())
                .await
        },
    );
    method(
        services,
        registry,
        "qa.answer",
        |s, node, who, call: AnswerCall| async move {
            s.answer_question(&node, &who, &call.question, &call.body, call.private)
                .await
        },
    );
    method(
        services,
        registry,
        "qa.export",
        |s, _node, who, call: MeetingCall| async move {
            Ok(json!({"csv": s.export_questions(&who, &call.meeting).await?}))
        },
    );
}
