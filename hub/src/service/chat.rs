//! Meeting chat with moderation, enforced on the server: every message goes through
//! [`Services::post_chat`] (clients cannot publish into the protected `meeting-chat`
//! namespace), which checks the caller's access to the meeting, applies the rules of
//! [`super::chat_rules`] (chat closed, ban, timeout, length, word filter, slow mode, rate
//! limit), stores the message, and only then pushes it.
//!
//! # Who may do what
//! - **Read and post**: whoever [`Services::meeting_access`] admits to the meeting (its
//!   audience, experts and moderators); an unknown meeting is 404, anyone else 403. After
//!   the meeting ended the chat is read-only (409).
//! - **Moderate** (delete any message, review held messages, time out, ban and unban
//!   members, change the settings): the meeting's moderators. A member may delete their
//!   own messages. Moderators cannot be timed out or banned (409).
//!
//! # The channels (namespace `meeting-chat`, protected: only tokens from `chat.history`
//! open them)
//! - `meeting-chat:<id>`, everyone admitted: `{"type":"message","message":…}` (a visible
//!   or newly approved message), `{"type":"deleted","id":N}` (remove it from the screen),
//!   `{"type":"settings","settings":{"slow_mode_seconds","enabled"}}`.
//! - `meeting-chat:<id>@moderators`, whose token only moderators get:
//!   `{"type":"held","message":…}` (waiting for review, with the `held_word`),
//!   `{"type":"approved","message":…}`, `{"type":"rejected","id":N}`,
//!   `{"type":"deleted","id":N,"by":…}`, `{"type":"sanction","sanction":…}` (a timeout or
//!   ban), `{"type":"lifted","account":…}`, and the same `settings` push.
//!
//! Meeting ids used with chat are letters, digits, `-`, `_` and `.` (the meetings
//! service makes them so), which keeps the `@moderators` channel out of reach of any
//! meeting id: no viewer is ever handed a token for it.
//!
//! # Invariants
//! - **Stored before pushed**: a message (and every moderation step) is committed before
//!   its push; `chat.history` returns the visible messages from the store, so a client
//!   that reconnects (or misses a push) loses nothing, and a deleted or held message is
//!   never in it.
//! - **A refused message reaches nobody**: it is neither stored nor pushed.
//! - Bans, timeouts and settings are in the store (they hold on every node and across
//!   restarts). Slow mode and the rate limit are counted in memory on each node (see
//!   [`super::chat_rules`]): with several nodes behind a balancer a member gets each
//!   node's allowance.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::chat_rules::{Poster, Refusal, Restriction, Room, Rules, Verdict};
use super::directives::publish;
use super::http::{AppState, Reply, caller, ok, parse};
use super::rpc::method;
use super::{ServiceError, Services, now_ms};
use crate::auth::Principal;
use crate::node::Node;
use crate::rpc::RpcRegistry;
use crate::store::{
    ChatMessage, ChatSanction, ChatSettings, NewChatMessage, SanctionKind, StoreError,
};

/// Messages `chat.history` returns when the caller names no limit, and at most.
const HISTORY_DEFAULT: u32 = 50;
const HISTORY_MAX: u32 = 200;
/// The longest timeout a moderator may give: a day (a ban lasts the whole meeting).
const MAX_TIMEOUT_SECS: u64 = 24 * 3600;
/// The longest reason given with a timeout or ban.
const MAX_REASON_CHARS: usize = 500;
/// The longest meeting id chat accepts.
const MAX_MEETING_ID: usize = 128;

/// The OpenAPI `paths` (and `schemas`) of the chat routes, merged into
/// `/api/openapi.json`.
pub(super) const OPENAPI_PATHS: &str = include_str!("chat_openapi.json");

/// The channel every admitted member of `meeting` subscribes to.
pub(super) fn chat_channel(meeting: &str) -> String {
    format!("meeting-chat:{meeting}")
}

/// The channel only the moderators of `meeting` get a token for.
pub(super) fn chat_moderator_channel(meeting: &str) -> String {
    format!("meeting-chat:{meeting}@moderators")
}

/// The chat routes under `/api/v1/meetings/{id}/chat`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/meetings/{id}/chat", get(history))
        .route("/api/v1/meetings/{id}/chat/messages", post(post_message))
        .route("/api/v1/meetings/{id}/chat/delete", post(delete_message))
        .route("/api/v1/meetings/{id}/chat/held", get(held))
        .route("/api/v1/meetings/{id}/chat/approve", post(approve))
        .route("/api/v1/meetings/{id}/chat/reject", post(reject))
        .route("/api/v1/meetings/{id}/chat/timeout", post(timeout))
        .route("/api/v1/meetings/{id}/chat/ban", post(ban))
        .route("/api/v1/meetings/{id}/chat/unban", post(unban))
        .route("/api/v1/meetings/{id}/chat/settings", post(settings))
}

/// Registers the chat RPC methods (`chat.history`, `chat.post`, `chat.delete`,
/// `chat.held`, `chat.approve`, `chat.reject`, `chat.timeout`, `chat.ban`, `chat.unban`,
/// `chat.settings`).
pub(super) fn register_rpc(services: &Arc<Services>, registry: &mut RpcRegistry) {
    method(
        services,
        registry,
        "chat.history",
        |s, node, who, call: HistoryCall| async move {
            let query = HistoryQuery {
                limit: call.limit,
                before: call.before,
            };
            s.chat_history(&node, &who, &call.meeting, query).await
        },
    );
    method(
        services,
        registry,
        "chat.post",
        |s, node, who, call: PostCall| async move {
            s.post_chat(&node, &who, &call.meeting, &call.text).await
        },
    );
    method(
        services,
        registry,
        "chat.delete",
        |s, node, who, call: MessageCall| async move {
            s.delete_chat(&node, &who, &call.meeting, call.message)
                .await
        },
    );
    method(
        services,
        registry,
        "chat.held",
        |s, _node, who, call: MeetingCall| async move { s.held_chat(&who, &call.meeting).await },
    );
    method(
        services,
        registry,
        "chat.approve",
        |s, node, who, call: MessageCall| async move {
            s.review_chat(&node, &who, &call.meeting, call.message, true)
                .await
        },
    );
    method(
        services,
        registry,
        "chat.reject",
        |s, node, who, call: MessageCall| async move {
            s.review_chat(&node, &who, &call.meeting, call.message, false)
                .await
        },
    );
    method(
        services,
        registry,
        "chat.timeout",
        |s, node, who, call: SanctionCall| async move {
            let (meeting, request) = call.split();
            s.sanction_chat(&node, &who, &meeting, request, true).await
        },
    );
    method(
        services,
        registry,
        "chat.ban",
        |s, node, who, call: SanctionCall| async move {
            let (meeting, request) = call.split();
            s.sanction_chat(&node, &who, &meeting, request, false).await
        },
    );
    method(
        services,
        registry,
        "chat.unban",
        |s, node, who, call: AccountCall| async move {
            s.unban_chat(&node, &who, &call.meeting, &call.account)
                .await
        },
    );
    method(
        services,
        registry,
        "chat.settings",
        |s, node, who, call: SettingsCall| async move {
            let settings = SettingsRequest {
                slow_mode_seconds: call.slow_mode_seconds,
                enabled: call.enabled,
            };
            s.chat_settings_change(&node, &who, &call.meeting, settings)
                .await
        },
    );
}

/// Which messages `chat.history` returns.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    /// How many of the latest (default 50, at most 200).
    #[serde(default)]
    limit: Option<u32>,
    /// Only messages with an id below this (paging back).
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryCall {
    meeting: String,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    before: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostRequest {
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostCall {
    meeting: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MeetingCall {
    meeting: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    message: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MessageCall {
    meeting: String,
    message: i64,
}

/// A timeout or ban as the moderator asks for it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SanctionRequest {
    /// The member's account id.
    account: String,
    /// How long a timeout lasts (1 s to a day); not given for a ban.
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SanctionCall {
    meeting: String,
    account: String,
    #[serde(default)]
    seconds: Option<u64>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountRequest {
    account: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AccountCall {
    meeting: String,
    account: String,
}

/// A change of a meeting's chat settings; what is not given stays.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsRequest {
    #[serde(default)]
    slow_mode_seconds: Option<u64>,
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SettingsCall {
    meeting: String,
    #[serde(default)]
    slow_mode_seconds: Option<u64>,
    #[serde(default)]
    enabled: Option<bool>,
}

impl SanctionCall {
    /// The meeting and the sanction asked for.
    fn split(self) -> (String, SanctionRequest) {
        let request = SanctionRequest {
            account: self.account,
            seconds: self.seconds,
            reason: self.reason,
        };
        (self.meeting, request)
    }
}

/// The settings in force: the stored ones, or the configuration's defaults.
struct Effective {
    slow_mode_seconds: i64,
    enabled: bool,
}

impl Effective {
    fn view(&self) -> Value {
        json!({"slow_mode_seconds": self.slow_mode_seconds, "enabled": self.enabled})
    }
}

/// 404 for a meeting id chat would never see (see the module documentation).
fn check_meeting_id(meeting: &str) -> Result<(), ServiceError> {
    let fine = !meeting.is_empty()
        && meeting.len() <= MAX_MEETING_ID
        && meeting
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if fine {
        Ok(())
    } else {
        Err(ServiceError::NotFound(format!(
            "meeting {meeting:?} does not exist"
        )))
    }
}

/// Whole seconds in `ms`, rounded up (at least 1).
fn ceil_secs(ms: i64) -> u64 {
    u64::try_from((ms + 999) / 1000).unwrap_or(0).max(1)
}

/// The error the caller hears for a refusal.
fn refusal_error(refusal: Refusal, meeting: &str, now: i64) -> ServiceError {
    match refusal {
        Refusal::Closed => {
            ServiceError::Forbidden(format!("the chat of meeting {meeting:?} is closed"))
        }
        Refusal::Banned => ServiceError::Forbidden(format!(
            "you are banned from the chat of meeting {meeting:?}"
        )),
        Refusal::TimedOut { until } => ServiceError::Forbidden(format!(
            "you are timed out of the chat of meeting {meeting:?} for {} s more (until {until} \
             ms since the epoch)",
            ceil_secs(until - now)
        )),
        Refusal::Blank => ServiceError::Unprocessable("the message is empty".into()),
        Refusal::TooLong { length, max } => ServiceError::Unprocessable(format!(
            "the message has {length} characters; at most {max} are allowed"
        )),
        Refusal::BlockedWord { word } => ServiceError::Unprocessable(format!(
            "the message contains a blocked word ({word:?}); it was not sent"
        )),
        Refusal::SlowMode { wait_ms } => {
            let retry_after = ceil_secs(wait_ms);
            ServiceError::TooManyRequests {
                message: format!("slow mode: wait {retry_after} s before your next message"),
                retry_after,
            }
        }
        Refusal::RateLimited { wait_ms } => {
            let retry_after = ceil_secs(wait_ms);
            ServiceError::TooManyRequests {
                message: format!("too many messages: wait {retry_after} s"),
                retry_after,
            }
        }
    }
}

/// A message as every member sees it.
fn message_view(message: &ChatMessage) -> Value {
    json!({
        "id": message.id,
        "account": message.account_id,
        "name": message.display_name,
        "unit": message.unit_id,
        "text": message.body,
        "at": message.created_at,
    })
}

/// A message as moderators see it: with its state and the word that held it.
fn moderator_view(message: &ChatMessage) -> Value {
    let mut view = message_view(message);
    view["state"] = json!(message.state.as_str());
    view["held_word"] = json!(message.held_word);
    view
}

fn sanction_view(sanction: &ChatSanction) -> Value {
    json!({
        "account": sanction.account_id,
        "kind": sanction.kind.as_str(),
        "until": sanction.until,
        "reason": sanction.reason,
        "by": sanction.by,
        "at": sanction.at,
    })
}

impl Services {
    /// The settings in force for `meeting`.
    async fn effective_chat_settings(
        &self,
        node: &Node,
        meeting: &str,
    ) -> Result<Effective, ServiceError> {
        Ok(match self.store.chat_settings(meeting).await? {
            Some(stored) => Effective {
                slow_mode_seconds: stored.slow_mode_seconds,
                enabled: stored.enabled,
            },
            None => Effective {
                slow_mode_seconds: node.config().chat.default_slow_mode.as_secs() as i64,
                enabled: true,
            },
        })
    }

    /// Checks the id and `who`'s access; 403 unless `who` moderates the meeting.
    async fn chat_moderator(&self, who: &Principal, meeting: &str) -> Result<(), ServiceError> {
        check_meeting_id(meeting)?;
        if self.meeting_access(who, meeting).await?.moderator {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "only the moderators of meeting {meeting:?} moderate its chat"
            )))
        }
    }

    /// The latest visible messages, the settings, the caller's sanction, the limits a
    /// message must keep (`max_message_length`, so a page can say why a message was
    /// refused without reading the error's words) and the subscription token for the
    /// chat channel; for moderators also the moderators'
    /// channel, the held messages and the sanctions in force.
    pub(super) async fn chat_history(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        query: HistoryQuery,
    ) -> Result<Value, ServiceError> {
        check_meeting_id(meeting)?;
        let access = self.meeting_access(who, meeting).await?;
        let limit = query.limit.unwrap_or(HISTORY_DEFAULT);
        if !(1..=HISTORY_MAX).contains(&limit) {
            return Err(ServiceError::BadRequest(format!(
                "limit must be 1 to {HISTORY_MAX}"
            )));
        }
        let messages = self
            .store
            .chat_history(meeting, limit, query.before)
            .await?;
        let settings = self.effective_chat_settings(node, meeting).await?;
        let now = now_ms();
        let sanction = self
            .store
            .chat_sanction(meeting, &who.account_id)
            .await?
            .filter(|s| s.until.is_none_or(|until| until > now));
        let channel = chat_channel(meeting);
        let mut reply = json!({
            "meeting": meeting,
            "messages": messages.iter().map(message_view).collect::<Vec<_>>(),
            "settings": settings.view(),
            "channel": channel,
            "token": self.subscription_token(who, &channel)?,
            "you": {
                "moderator": access.moderator,
                "sanction": sanction.as_ref().map(sanction_view),
            },
            "open": !access.ended,
            "limits": {"max_message_length": node.config().chat.max_message_length},
        });
        if access.moderator {
            let channel = chat_moderator_channel(meeting);
            let held = self.store.held_chat_messages(meeting).await?;
            let sanctions = self.store.chat_sanctions(meeting, now).await?;
            reply["moderation"] = json!({
                "channel": channel,
                "token": self.subscription_token(who, &channel)?,
                "held": held.iter().map(moderator_view).collect::<Vec<_>>(),
                "sanctions": sanctions.iter().map(sanction_view).collect::<Vec<_>>(),
            });
        }
        Ok(reply)
    }

    /// Posts `text` as `who`: the rules decide; an accepted message is stored, then
    /// pushed to everyone (visible) or to the moderators only (held).
    pub(super) async fn post_chat(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        text: &str,
    ) -> Result<Value, ServiceError> {
        check_meeting_id(meeting)?;
        let access = self.meeting_access(who, meeting).await?;
        if access.ended {
            return Err(ServiceError::Conflict(format!(
                "meeting {meeting:?} has ended; its chat is read-only"
            )));
        }
        let settings = self.effective_chat_settings(node, meeting).await?;
        let restriction = self
            .store
            .chat_sanction(meeting, &who.account_id)
            .await?
            .map(|sanction| match sanction.until {
                None => Restriction::Ban,
                Some(until) => Restriction::TimeoutUntil(until),
            });
        let rules = Rules::from_config(&node.config().chat);
        let poster = Poster {
            account: &who.account_id,
            moderator: access.moderator,
            restriction,
        };
        let room = Room {
            meeting,
            enabled: settings.enabled,
            slow_mode_ms: settings.slow_mode_seconds.saturating_mul(1000),
        };
        let now = now_ms();
        let verdict = self
            .chat_limiter
            .admit(&rules, &poster, &room, text, now)
            .map_err(|refusal| refusal_error(refusal, meeting, now))?;
        let held_word = match verdict {
            Verdict::Visible => None,
            Verdict::Held { word } => Some(word),
        };
        let message = self
            .store
            .post_chat_message(
                &NewChatMessage {
                    meeting: meeting.to_owned(),
                    account: who.account_id.clone(),
                    display_name: who.username.clone(),
                    unit: access.unit.clone(),
                    body: text.trim().to_owned(),
                    held_word,
                },
                now,
            )
            .await?;
        if message.held_word.is_some() {
            publish(
                node,
                &chat_moderator_channel(meeting),
                &json!({"type": "held", "message": moderator_view(&message)}),
            )
            .await;
        } else {
            publish(
                node,
                &chat_channel(meeting),
                &json!({"type": "message", "message": message_view(&message)}),
            )
            .await;
        }
        Ok(json!({"message": moderator_view(&message)}))
    }

    /// Deletes a message (a moderator any, a member their own): it disappears for
    /// everyone at once.
    pub(super) async fn delete_chat(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        id: i64,
    ) -> Result<Value, ServiceError> {
        check_meeting_id(meeting)?;
        let access = self.meeting_access(who, meeting).await?;
        let found = self.store.chat_message(meeting, id).await?;
        if !access.moderator && found.account_id != who.account_id {
            return Err(ServiceError::Forbidden(
                "only the meeting's moderators delete other people's messages".into(),
            ));
        }
        let deleted = self
            .store
            .delete_chat_message(meeting, id, &who.account_id, now_ms())
            .await?;
        publish(
            node,
            &chat_channel(meeting),
            &json!({"type": "deleted", "id": id}),
        )
        .await;
        publish(
            node,
            &chat_moderator_channel(meeting),
            &json!({"type": "deleted", "id": id, "by": who.account_id}),
        )
        .await;
        Ok(json!({"message": moderator_view(&deleted)}))
    }

    /// The messages waiting for review (moderators).
    pub(super) async fn held_chat(
        &self,
        who: &Principal,
        meeting: &str,
    ) -> Result<Value, ServiceError> {
        self.chat_moderator(who, meeting).await?;
        let held = self.store.held_chat_messages(meeting).await?;
        Ok(Value::Array(held.iter().map(moderator_view).collect()))
    }

    /// Approves (shows to everyone) or rejects a held message (moderators).
    pub(super) async fn review_chat(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        id: i64,
        approve: bool,
    ) -> Result<Value, ServiceError> {
        self.chat_moderator(who, meeting).await?;
        let message = self
            .store
            .review_chat_message(meeting, id, approve, &who.account_id, now_ms())
            .await?;
        if approve {
            publish(
                node,
                &chat_channel(meeting),
                &json!({"type": "message", "message": message_view(&message)}),
            )
            .await;
            publish(
                node,
                &chat_moderator_channel(meeting),
                &json!({"type": "approved", "message": moderator_view(&message)}),
            )
            .await;
        } else {
            publish(
                node,
                &chat_moderator_channel(meeting),
                &json!({"type": "rejected", "id": id}),
            )
            .await;
        }
        Ok(json!({"message": moderator_view(&message)}))
    }

    /// Times out (`timeout`) or bans a member (moderators; not another moderator).
    pub(super) async fn sanction_chat(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        request: SanctionRequest,
        timeout: bool,
    ) -> Result<Value, ServiceError> {
        self.chat_moderator(who, meeting).await?;
        let until = match (timeout, request.seconds) {
            (true, Some(seconds)) if (1..=MAX_TIMEOUT_SECS).contains(&seconds) => {
                Some(now_ms() + seconds as i64 * 1000)
            }
            (true, _) => {
                return Err(ServiceError::Unprocessable(format!(
                    "a timeout needs seconds, 1 to {MAX_TIMEOUT_SECS}"
                )));
            }
            (false, Some(_)) => {
                return Err(ServiceError::Unprocessable(
                    "a ban lasts the whole meeting: give no seconds (use a timeout instead)".into(),
                ));
            }
            (false, None) => None,
        };
        if request.reason.chars().count() > MAX_REASON_CHARS {
            return Err(ServiceError::Unprocessable(format!(
                "the reason may have at most {MAX_REASON_CHARS} characters"
            )));
        }
        let target = match self.store.principal(&request.account).await {
            Ok(target) => target,
            Err(StoreError::UnknownAccount(_) | StoreError::Auth(_)) => {
                return Err(ServiceError::NotFound(format!(
                    "account {:?} does not exist",
                    request.account
                )));
            }
            Err(other) => return Err(other.into()),
        };
        match self.meeting_access(&target, meeting).await {
            Ok(access) if access.moderator => {
                return Err(ServiceError::Conflict(format!(
                    "{:?} moderates meeting {meeting:?}; moderators cannot be timed out or \
                     banned",
                    request.account
                )));
            }
            Ok(_) | Err(ServiceError::Forbidden(_)) => {}
            Err(other) => return Err(other),
        }
        let sanction = self
            .store
            .sanction_chat_member(&ChatSanction {
                meeting_id: meeting.to_owned(),
                account_id: target.account_id,
                kind: if timeout {
                    SanctionKind::Timeout
                } else {
                    SanctionKind::Ban
                },
                until,
                reason: request.reason,
                by: who.account_id.clone(),
                at: now_ms(),
            })
            .await?;
        let view = sanction_view(&sanction);
        publish(
            node,
            &chat_moderator_channel(meeting),
            &json!({"type": "sanction", "sanction": view}),
        )
        .await;
        Ok(json!({"sanction": view}))
    }

    /// Lifts a member's ban or timeout (moderators). `lifted` is false when there was
    /// none.
    pub(super) async fn unban_chat(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        account: &str,
    ) -> Result<Value, ServiceError> {
        self.chat_moderator(who, meeting).await?;
        let lifted = self
            .store
            .lift_chat_sanction(meeting, account, &who.account_id, now_ms())
            .await?;
        if lifted.is_some() {
            publish(
                node,
                &chat_moderator_channel(meeting),
                &json!({"type": "lifted", "account": account}),
            )
            .await;
        }
        Ok(json!({
            "lifted": lifted.is_some(),
            "sanction": lifted.as_ref().map(sanction_view),
        }))
    }

    /// Changes the meeting's slow mode and whether members may post (moderators).
    pub(super) async fn chat_settings_change(
        &self,
        node: &Node,
        who: &Principal,
        meeting: &str,
        request: SettingsRequest,
    ) -> Result<Value, ServiceError> {
        self.chat_moderator(who, meeting).await?;
        let max = rootcast_config::MAX_SLOW_MODE.as_secs();
        if request.slow_mode_seconds.is_some_and(|s| s > max) {
            return Err(ServiceError::Unprocessable(format!(
                "slow_mode_seconds must be 0 (off) to {max}"
            )));
        }
        let current = self.effective_chat_settings(node, meeting).await?;
        let stored = self
            .store
            .set_chat_settings(&ChatSettings {
                meeting_id: meeting.to_owned(),
                slow_mode_seconds: request
                    .slow_mode_seconds
                    .map_or(current.slow_mode_seconds, |s| s as i64),
                enabled: request.enabled.unwrap_or(current.enabled),
                updated_by: who.account_id.clone(),
                updated_at: now_ms(),
            })
            .await?;
        let view = Effective {
            slow_mode_seconds: stored.slow_mode_seconds,
            enabled: stored.enabled,
        }
        .view();
        let push = json!({"type": "settings", "settings": view});
        publish(node, &chat_channel(meeting), &push).await;
        publish(node, &chat_moderator_channel(meeting), &push).await;
        Ok(json!({"settings": view}))
    }
}

async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let Query(query) = query.map_err(|error| ServiceError::BadRequest(error.body_text()))?;
    ok(state
        .services
        .chat_history(&state.node, &who, &id, query)
        .await?)
}

async fn post_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: PostRequest = parse(&headers, &body)?;
    let posted = state
        .services
        .post_chat(&state.node, &who, &id, &request.text)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(posted)).into_response())
}

async fn delete_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: MessageRequest = parse(&headers, &body)?;
    ok(state
        .services
        .delete_chat(&state.node, &who, &id, request.message)
        .await?)
}

async fn held(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.held_chat(&who, &id).await?)
}

async fn review(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    approve: bool,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: MessageRequest = parse(&headers, &body)?;
    ok(state
        .services
        .review_chat(&state.node, &who, &id, request.message, approve)
        .await?)
}

async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    review(state, headers, id, body, true).await
}

async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    review(state, headers, id, body, false).await
}

async fn sanction(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    timeout: bool,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: SanctionRequest = parse(&headers, &body)?;
    ok(state
        .services
        .sanction_chat(&state.node, &who, &id, request, timeout)
        .await?)
}

async fn timeout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    sanction(state, headers, id, body, true).await
}

async fn ban(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    sanction(state, headers, id, body, false).await
}

async fn unban(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: AccountRequest = parse(&headers, &body)?;
    ok(state
        .services
        .unban_chat(&state.node, &who, &id, &request.account)
        .await?)
}

async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: SettingsRequest = parse(&headers, &body)?;
    ok(state
        .services
        .chat_settings_change(&state.node, &who, &id, request)
        .await?)
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn each_refusal_has_its_documented_status() {
        let now = 1_000_000;
        let status = |refusal| refusal_error(refusal, "m1", now).status();
        assert_eq!(status(Refusal::Closed), StatusCode::FORBIDDEN);
        assert_eq!(status(Refusal::Banned), StatusCode::FORBIDDEN);
        assert_eq!(
            status(Refusal::TimedOut { until: now + 1 }),
            StatusCode::FORBIDDEN
        );
        assert_eq!(status(Refusal::Blank), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            status(Refusal::TooLong { length: 9, max: 8 }),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(Refusal::BlockedWord { word: "x".into() }),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let slow = refusal_error(Refusal::SlowMode { wait_ms: 1001 }, "m1", now);
        assert_eq!(slow.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(slow.to_client_error().code, 1429);
        assert_eq!(slow.body()["error"]["retry_after"], 2, "rounded up");
        assert!(slow.to_string().starts_with("slow mode"), "{slow}");
        let limited = refusal_error(Refusal::RateLimited { wait_ms: 1 }, "m1", now);
        assert_eq!(limited.body()["error"]["retry_after"], 1);
        assert!(
            limited.to_string().starts_with("too many messages"),
            "{limited}"
        );
        let timed_out = refusal_error(Refusal::TimedOut { until: now + 2500 }, "m1", now);
        assert!(timed_out.to_string().contains("3 s more"), "{timed_out}");
    }

    #[test]
    fn meeting_ids_that_could_name_another_channel_are_unknown() {
        for fine in ["m19ac2-3f2a9b1c", "meeting_1.a"] {
            assert_eq!(check_meeting_id(fine), Ok(()));
        }
        for bad in ["", "a@moderators", "a:b", "a#b", "a b", &"x".repeat(129)] {
            assert!(
                matches!(check_meeting_id(bad), Err(ServiceError::NotFound(_))),
                "{bad:?}"
            );
        }
        assert_eq!(chat_moderator_channel("m1"), "meeting-chat:m1@moderators");
    }
}
