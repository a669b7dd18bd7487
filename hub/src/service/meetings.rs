//! Live meetings as people use them: schedule (title, agenda, start, an audience chosen
//! like a directive's target, experts from the list of expert accounts), list, get, go
//! live on a relay stream, end, join (the state now and the subscription tokens of the
//! meeting's channels), the viewer page's link with its QR code (for the meeting-room
//! screen), and live announcements. Q&A is in [`super::qa`], attendance in [`super::attendance`]; both
//! check access through [`Services::meeting_access`], which the meeting chat uses too.
//!
//! # Who may do what
//! - **Moderate** (go live, end, announce, the Q&A queue, attendance): an administrator,
//!   the moderator who scheduled the meeting, or a moderator whose subtree holds every
//!   targeted unit. Scheduling itself is for administrators and moderators, every
//!   targeted unit inside the sender's scope (as for a directive).
//! - **Watch** (join, ask, vote): the people and screens of a targeted unit, and a
//!   moderator whose subtree holds at least one targeted unit.
//! - **Answer**: the meeting's experts (each the questions assigned to them) and its
//!   moderators.
//! - Anyone else gets 403; an unknown meeting is 404.
//!
//! # The channels (all in protected namespaces: only the tokens `meeting.join` returns
//! open them)
//! - `meeting:<id>`: state and screen. Publications `{"type":"state","meeting":…}`
//!   (live, ended), `{"type":"announcement","announcement":…}`,
//!   `{"type":"screen","question":…|null}` (the question on screen, as viewers see it),
//!   `{"type":"headcount","unit":…,"headcount":…}`. Presence and join/leave are on: the
//!   subscription token's `info` is `{"name","role","unit"}`, `unit` being the unit the
//!   connection watches for, which is what attendance counts.
//! - `qa:<id>`, `qa:<id>@moderators`, `qa:<id>#<account id>`: see [`super::qa`].
//! - `meeting-chat:<id>` and, for moderators, `meeting-chat:<id>@moderators`: see
//!   [`super::chat`] (`chat.history` hands out the same tokens).
//!
//! # Invariants
//! - The store is the truth, channels only push: every change is written before it is
//!   published, and `meeting.join` / `qa.list` return the whole current state, so a
//!   client that (re)connects loses nothing.
//! - The asker of an anonymous question never appears in what a viewer receives.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::directives::publish;
use super::http::{AppState, Reply, caller, ok, parse};
use super::rpc::method;
use super::{ServiceError, Services, TargetRequest, now_ms};
use crate::auth::{Principal, Role};
use crate::directive::Target;
use crate::node::Node;
use crate::rpc::RpcRegistry;
use crate::store::{Announcement, Meeting, MeetingScope, MeetingStatus, NewMeeting};

/// Most meetings a list returns.
const LIST_LIMIT: i64 = 200;
/// How long a relay token that `go live` or `join` hands out is valid.
const MEDIA_TOKEN_TTL_SECS: i64 = 12 * 3600;

/// The OpenAPI `paths` (and `schemas`) of the meeting routes, merged into
/// `/api/openapi.json`.
pub(super) const OPENAPI_PATHS: &str = include_str!("meetings_openapi.json");

/// The meeting, Q&A and attendance routes under `/api/v1/`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/meetings",
            get(list_meetings).post(schedule_meeting),
        )
        .route("/api/v1/meetings/experts", get(list_experts))
        .route("/api/v1/meetings/{id}", get(get_meeting))
        .route("/api/v1/meetings/{id}/live", post(go_live))
        .route("/api/v1/meetings/{id}/end", post(end_meeting))
        .route("/api/v1/meetings/{id}/join", post(join_meeting))
        .route("/api/v1/meetings/{id}/join-link", get(join_link))
        .route(
            "/api/v1/meetings/{id}/announcements",
            get(list_announcements).post(announce),
        )
        .merge(super::qa::routes())
        .merge(super::attendance::routes())
}

/// Registers the meeting, Q&A and attendance RPC methods.
pub(super) fn register_rpc(services: &Arc<Services>, registry: &mut RpcRegistry) {
    method(
        services,
        registry,
        "meeting.schedule",
        |s, _node, who, request: ScheduleRequest| async move { s.schedule_meeting(&who, request).await },
    );
    method(
        services,
        registry,
        "meeting.list",
        |s, _node, who, _: super::rpc::Empty| async move { s.list_meetings(&who).await },
    );
    method(
        services,
        registry,
        "meeting.experts",
        |s, _node, who, _: super::rpc::Empty| async move { s.list_experts(&who).await },
    );
    method(
        services,
        registry,
        "meeting.get",
        |s, _node, who, request: MeetingCall| async move { s.get_meeting(&who, &request.meeting).await },
    );
    method(
        services,
        registry,
        "meeting.live",
        |s, node, who, request: LiveCall| async move {
            s.go_live(&node, &who, &request.meeting, request.stream)
                .await
        },
    );
    method(
        services,
        registry,
        "meeting.end",
        |s, node, who, request: MeetingCall| async move {
            s.end_meeting(&node, &who, &request.meeting).await
        },
    );
    method(
        services,
        registry,
        "meeting.join",
        |s, _node, who, request: MeetingCall| async move {
            s.join_meeting(&who, &request.meeting).await
        },
    );
    method(
        services,
        registry,
        "meeting.announce",
        |s, node, who, request: AnnounceCall| async move {
            s.announce(
                &node,
                &who,
                &request.meeting,
                &request.body,
                request.level.as_deref(),
            )
            .await
        },
    );
    method(
        services,
        registry,
        "meeting.announcements",
        |s, _node, who, request: MeetingCall| async move {
            s.list_announcements(&who, &request.meeting).await
        },
    );
    super::qa::register_rpc(services, registry);
    super::attendance::register_rpc(services, registry);
}

/// A meeting to schedule, as the caller writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScheduleRequest {
    title: String,
    #[serde(default)]
    agenda: String,
    /// ms since the epoch.
    starts_at: i64,
    target: TargetRequest,
    /// Account ids of the experts who answer questions.
    #[serde(default)]
    experts: Vec<String>,
    /// Questions wait for a moderator's approval before viewers see them.
    #[serde(default)]
    qa_preapproval: bool,
}

/// RPC data naming a meeting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MeetingCall {
    pub(super) meeting: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveCall {
    meeting: String,
    #[serde(default)]
    stream: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnounceCall {
    meeting: String,
    body: String,
    #[serde(default)]
    level: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LiveRequest {
    #[serde(default)]
    stream: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnounceRequest {
    body: String,
    #[serde(default)]
    level: Option<String>,
}

/// How much of a meeting [`Services::meeting_view`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MeetingDetail {
    /// Everything but the list of targeted units (their number only).
    Summary,
    /// With `units`, the ids of every targeted unit: for moderators.
    WithUnits,
}

/// What one principal may do in one meeting (the answer of [`Services::meeting_access`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MeetingAccess {
    /// May moderate the meeting: Q&A queue, chat moderation, announcements, go live/end.
    pub moderator: bool,
    /// An expert of the meeting: may answer questions.
    pub expert: bool,
    /// The unit the principal watches for (their own unit, when the meeting targets it).
    pub unit: Option<String>,
    /// Whether the meeting is live now. Questions may be asked before and while it is
    /// live, not after it ended; the chat decides for itself.
    pub live: bool,
    /// Whether the meeting has ended (no more questions, votes or announcements).
    pub ended: bool,
}

impl MeetingAccess {
    fn view(&self) -> Value {
        json!({
            "moderator": self.moderator,
            "expert": self.expert,
            "unit": self.unit,
            "live": self.live,
            "ended": self.ended,
        })
    }
}

/// The channel of a meeting's state, announcements and screen.
pub(super) fn meeting_channel(meeting: &str) -> String {
    format!("meeting:{meeting}")
}

impl Services {
    /// Whether `who` may take part in `meeting` and how: 404 when the meeting does not
    /// exist, 403 when `who` is neither in its audience nor moderating it nor one of its
    /// experts.
    pub(crate) async fn meeting_access(
        &self,
        who: &Principal,
        meeting: &str,
    ) -> Result<MeetingAccess, ServiceError> {
        let found = self.store.require_meeting(meeting).await?;
        self.access_to(who, &found).await
    }

    /// [`Services::meeting_access`] for a meeting already read.
    pub(super) async fn access_to(
        &self,
        who: &Principal,
        meeting: &Meeting,
    ) -> Result<MeetingAccess, ServiceError> {
        let experts = self.store.meeting_experts(&meeting.id).await?;
        let expert = experts.contains(&who.account_id);
        // Only a unit's own people and screens watch for it (a moderator's unit is the
        // root of their scope, not a room).
        let own_unit = match (&who.unit, who.role) {
            (Some(unit), Role::Officer | Role::Member)
                if self.store.meeting_targets(&meeting.id, unit).await? =>
            {
                Some(unit.clone())
            }
            _ => None,
        };
        let (moderator, watches) = match who.role {
            Role::Admin => (true, false),
            Role::Moderator => {
                let scope = who.unit_path.as_deref();
                let units = self.store.meeting_units(&meeting.id).await?;
                let inside = |path: &str| scope.is_some_and(|root| path.starts_with(root));
                let all = units.iter().all(|u| inside(&u.unit_path));
                let any = units.iter().any(|u| inside(&u.unit_path));
                (
                    meeting.created_by == who.account_id || (scope.is_some() && all),
                    any,
                )
            }
            Role::Officer | Role::Member => (false, own_unit.is_some()),
            Role::Expert => (false, false),
        };
        if !(moderator || expert || watches) {
            return Err(ServiceError::Forbidden(format!(
                "you are not in the audience of meeting {:?}",
                meeting.id
            )));
        }
        Ok(MeetingAccess {
            moderator,
            expert,
            unit: own_unit,
            live: meeting.status == MeetingStatus::Live,
            ended: meeting.status == MeetingStatus::Ended,
        })
    }

    /// The meeting and `who`'s access, 403 unless `who` moderates it.
    pub(super) async fn moderated_meeting(
        &self,
        who: &Principal,
        meeting: &str,
    ) -> Result<(Meeting, MeetingAccess), ServiceError> {
        let found = self.store.require_meeting(meeting).await?;
        let access = self.access_to(who, &found).await?;
        if !access.moderator {
            return Err(ServiceError::Forbidden(format!(
                "only the moderators of meeting {meeting:?} may do this"
            )));
        }
        Ok((found, access))
    }

    /// Schedules a meeting: checks the role, resolves the audience and checks every
    /// targeted unit is inside the caller's scope and every expert is an expert account.
    pub(super) async fn schedule_meeting(
        &self,
        who: &Principal,
        request: ScheduleRequest,
    ) -> Result<Value, ServiceError> {
        if !matches!(who.role, Role::Admin | Role::Moderator) {
            return Err(ServiceError::Forbidden(
                "only administrators and moderators schedule meetings".into(),
            ));
        }
        let target_json =
            serde_json::to_string(&request.target).map_err(|_| ServiceError::Internal)?;
        let target = Target::from_json(&target_json)
            .map_err(|error| ServiceError::Unprocessable(error.to_string()))?;
        let units = self.store.all_units().await?;
        let targeted: HashSet<String> = target
            .resolve(&units)
            .map_err(|error| ServiceError::Unprocessable(error.to_string()))?
            .into_iter()
            .collect();
        let audience: Vec<_> = units
            .iter()
            .filter(|unit| targeted.contains(&unit.id))
            .collect();
        if let Some(outside) = audience.iter().find(|unit| !who.can_address(unit)) {
            return Err(ServiceError::Forbidden(format!(
                "unit {:?} ({}) is outside your scope",
                outside.id, outside.name
            )));
        }
        for expert in &request.experts {
            let account = self.store.account(expert).await?;
            if !account.is_some_and(|a| a.role == Role::Expert && !a.disabled) {
                return Err(ServiceError::Unprocessable(format!(
                    "{expert:?} is not an active expert account"
                )));
            }
        }
        let now = now_ms();
        let random = uuid::Uuid::new_v4().simple().to_string();
        let meeting = self
            .store
            .create_meeting(&NewMeeting {
                id: format!("m{now:x}-{}", &random[..8]),
                title: request.title,
                agenda: request.agenda,
                starts_at: request.starts_at,
                target,
                qa_preapproval: request.qa_preapproval,
                units: audience
                    .iter()
                    .map(|u| (u.id.clone(), u.path.clone()))
                    .collect(),
                experts: request.experts,
                created_by: who.account_id.clone(),
                created_at: now,
            })
            .await?;
        tracing::info!(meeting = %meeting.id, units = audience.len(), by = %who.account_id, "meeting scheduled");
        Ok(json!({"meeting": self.meeting_view(&meeting, MeetingDetail::WithUnits).await?}))
    }

    /// The meetings the caller may see, latest start first: all for an admin; those
    /// targeting a unit in their subtree (or scheduled by them) for a moderator; those
    /// targeting their unit for its people and screens; those they answer in for an
    /// expert.
    pub(super) async fn list_meetings(&self, who: &Principal) -> Result<Value, ServiceError> {
        let scope = match (who.role, &who.unit, &who.unit_path) {
            (Role::Admin, _, _) => MeetingScope::All,
            (Role::Moderator, _, Some(path)) => MeetingScope::Subtree {
                path: path.clone(),
                creator: who.account_id.clone(),
            },
            (Role::Officer | Role::Member, Some(unit), _) => MeetingScope::Unit(unit.clone()),
            (Role::Expert, _, _) => MeetingScope::Expert(who.account_id.clone()),
            _ => return Ok(json!([])),
        };
        let mut out = Vec::new();
        for meeting in self.store.meetings(&scope, LIST_LIMIT).await? {
            out.push(self.meeting_view(&meeting, MeetingDetail::Summary).await?);
        }
        Ok(Value::Array(out))
    }

    /// The experts a meeting may name, `[{id, name}]` by display name: every active
    /// expert account, for those who schedule meetings (administrators and moderators).
    pub(super) async fn list_experts(&self, who: &Principal) -> Result<Value, ServiceError> {
        if !matches!(who.role, Role::Admin | Role::Moderator) {
            return Err(ServiceError::Forbidden(
                "only administrators and moderators schedule meetings".into(),
            ));
        }
        let experts = self.store.active_experts().await?;
        Ok(experts
            .iter()
            .map(|account| json!({"id": account.id, "name": account.display_name}))
            .collect())
    }

    /// One meeting, with the caller's access.
    pub(super) async fn get_meeting(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        let meeting = self.store.require_meeting(id).await?;
        let access = self.access_to(who, &meeting).await?;
        let detail = if access.moderator {
            MeetingDetail::WithUnits
        } else {
            MeetingDetail::Summary
        };
        Ok(json!({
            "meeting": self.meeting_view(&meeting, detail).await?,
            "access": access.view(),
        }))
    }

    /// Takes the meeting live on relay stream `stream` (by default `meeting-<id>`):
    /// publishes the new state and returns the WHIP/WHEP paths and a publish token.
    pub(super) async fn go_live(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        stream: Option<String>,
    ) -> Result<Value, ServiceError> {
        let (meeting, _) = self.moderated_meeting(who, id).await?;
        let stream = stream
            .or(meeting.stream)
            .unwrap_or_else(|| format!("meeting-{id}"));
        let live = self
            .store
            .set_meeting_live(id, &stream, &who.account_id, now_ms())
            .await?;
        let view = self.meeting_view(&live, MeetingDetail::Summary).await?;
        publish(
            node,
            &meeting_channel(id),
            &json!({"type": "state", "meeting": view}),
        )
        .await;
        tracing::info!(meeting = %id, %stream, by = %who.account_id, "meeting live");
        Ok(json!({
            "meeting": view,
            "media": self.media(who, &stream, "publish")?,
        }))
    }

    /// Ends the meeting and publishes the new state.
    pub(super) async fn end_meeting(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        self.moderated_meeting(who, id).await?;
        let ended = self
            .store
            .end_meeting(id, &who.account_id, now_ms())
            .await?;
        let view = self.meeting_view(&ended, MeetingDetail::Summary).await?;
        publish(
            node,
            &meeting_channel(id),
            &json!({"type": "state", "meeting": view}),
        )
        .await;
        tracing::info!(meeting = %id, by = %who.account_id, "meeting ended");
        Ok(json!({"meeting": view}))
    }

    /// What a screen or person needs to take part: the meeting, the caller's access, the
    /// state now (latest announcement, question on screen), the channels with their
    /// subscription tokens, and the stream to watch when it is live.
    pub(super) async fn join_meeting(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        let meeting = self.store.require_meeting(id).await?;
        let access = self.access_to(who, &meeting).await?;
        let announcement = self
            .store
            .announcements(id)
            .await?
            .last()
            .map(announcement_view);
        let screen = self.screen_view(&meeting).await?;
        let info = json!({
            "name": who.username,
            "role": who.role.as_str(),
            "unit": access.unit,
        });
        let mut channels = serde_json::Map::new();
        let mut add = |key: &str, channel: String, info: Option<&Value>| {
            let token = self.channel_token(who, &channel, info)?;
            channels.insert(key.into(), json!({"channel": channel, "token": token}));
            Ok::<(), ServiceError>(())
        };
        add("meeting", meeting_channel(id), Some(&info))?;
        add("qa", super::qa::public_channel(id), None)?;
        add(
            "qa_personal",
            super::qa::personal_channel(id, &who.account_id),
            None,
        )?;
        add("chat", super::chat::chat_channel(id), None)?;
        if access.moderator {
            add("qa_moderators", super::qa::moderator_channel(id), None)?;
            add(
                "chat_moderators",
                super::chat::chat_moderator_channel(id),
                None,
            )?;
        }
        let media = match (&meeting.stream, meeting.status) {
            (Some(stream), MeetingStatus::Live) => self.media(who, stream, "view")?,
            _ => Value::Null,
        };
        Ok(json!({
            "meeting": self.meeting_view(&meeting, MeetingDetail::Summary).await?,
            "access": access.view(),
            "state": {
                "status": meeting.status.as_str(),
                "announcement": announcement,
                "screen": screen,
            },
            "channels": channels,
            "media": media,
        }))
    }

    /// The viewer page's address for `id` on `base_url` (`http://host:port`, what the
    /// caller reached the hub on) and the same link as a QR code in SVG, for a meeting-room
    /// screen to show so members open the meeting on their phones. For whoever may join.
    pub(super) async fn meeting_join_link(
        &self,
        who: &Principal,
        id: &str,
        base_url: &str,
    ) -> Result<Value, ServiceError> {
        self.meeting_access(who, id).await?;
        let link = viewer_link(base_url, id);
        Ok(json!({
            "meeting": id,
            "link": link,
            "qr_svg": super::credentials::qr_svg(&link)?,
        }))
    }

    /// Pushes a live announcement to every watching screen.
    pub(super) async fn announce(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        body: &str,
        level: Option<&str>,
    ) -> Result<Value, ServiceError> {
        let (_, access) = self.moderated_meeting(who, id).await?;
        if access.ended {
            return Err(ServiceError::Conflict(format!("meeting {id:?} has ended")));
        }
        let announcement = self
            .store
            .add_announcement(id, body, level.unwrap_or("info"), &who.account_id, now_ms())
            .await?;
        let view = announcement_view(&announcement);
        publish(
            node,
            &meeting_channel(id),
            &json!({"type": "announcement", "announcement": view}),
        )
        .await;
        Ok(json!({"announcement": view}))
    }

    /// The meeting's announcements in order, for anyone taking part.
    pub(super) async fn list_announcements(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        self.meeting_access(who, id).await?;
        let list: Vec<Value> = self
            .store
            .announcements(id)
            .await?
            .iter()
            .map(announcement_view)
            .collect();
        Ok(Value::Array(list))
    }

    /// A meeting as the API shows it. Every view counts the targeted units
    /// (`unit_count`); only [`MeetingDetail::WithUnits`] lists them (`units`), because a
    /// meeting for a whole organisation targets thousands of units and the summary goes
    /// to every participant who joins and in every state push.
    pub(super) async fn meeting_view(
        &self,
        meeting: &Meeting,
        detail: MeetingDetail,
    ) -> Result<Value, ServiceError> {
        let target: Value = serde_json::from_str(&meeting.target.to_json()).unwrap_or(Value::Null);
        let experts = self.store.meeting_expert_names(&meeting.id).await?;
        let mut view = json!({
            "id": meeting.id,
            "title": meeting.title,
            "agenda": meeting.agenda,
            "starts_at": meeting.starts_at,
            "target": target,
            "unit_count": self.store.meeting_unit_count(&meeting.id).await?,
            "experts": experts.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            "expert_names": experts.iter().map(|(id, name)| (id.clone(), Value::from(name.as_str()))).collect::<serde_json::Map<String, Value>>(),
            "qa_preapproval": meeting.qa_preapproval,
            "status": meeting.status.as_str(),
            "stream": meeting.stream,
            "screen_question": meeting.screen_question,
            "created_by": meeting.created_by,
            "created_at": meeting.created_at,
            "live_at": meeting.live_at,
            "ended_at": meeting.ended_at,
        });
        if detail == MeetingDetail::WithUnits {
            let units = self.store.meeting_units(&meeting.id).await?;
            view["units"] = units.iter().map(|u| u.unit_id.as_str()).collect();
        }
        Ok(view)
    }

    /// The question on the meeting's screen, as viewers see it.
    async fn screen_view(&self, meeting: &Meeting) -> Result<Value, ServiceError> {
        Ok(match &meeting.screen_question {
            Some(id) => match self.store.question(id).await? {
                Some(question) if question.status.is_public() => {
                    super::qa::question_view(&question, false)
                }
                _ => Value::Null,
            },
            None => Value::Null,
        })
    }

    /// A subscription token for `channel` with `info` attached to presence.
    pub(super) fn channel_token(
        &self,
        who: &Principal,
        channel: &str,
        info: Option<&Value>,
    ) -> Result<String, ServiceError> {
        let mut claims = json!({
            "sub": who.account_id,
            "channel": channel,
            "exp": now_ms() / 1000 + super::SESSION_TTL.as_secs() as i64,
        });
        if let Some(info) = info {
            claims["info"] = info.clone();
        }
        self.sign(&claims)
    }

    /// The relay paths of `stream` and a relay token granting `access` (`publish` or
    /// `view`) to it (the hub's `rootcast_stream` claim, see `src/relay_link.rs`).
    fn media(&self, who: &Principal, stream: &str, access: &str) -> Result<Value, ServiceError> {
        let token = self.sign(&json!({
            "sub": who.account_id,
            "exp": now_ms() / 1000 + MEDIA_TOKEN_TTL_SECS,
            "rootcast_stream": {"stream": stream, "access": [access]},
        }))?;
        Ok(json!({
            "stream": stream,
            "whip": format!("/whip/{stream}"),
            "whep": format!("/whep/{stream}"),
            "access": access,
            "token": token,
        }))
    }
}

fn announcement_view(announcement: &Announcement) -> Value {
    json!({
        "number": announcement.number,
        "body": announcement.body,
        "level": announcement.level,
        "by": announcement.made_by,
        "at": announcement.at,
    })
}

/// A body that may be empty (`{}` is assumed).
pub(super) fn parse_optional<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ServiceError> {
    if body.is_empty() {
        Ok(T::default())
    } else {
        parse(headers, body)
    }
}

/// The viewer page of meeting `id` on `base_url`: `<base_url>/meeting?id=<id>`, the id
/// percent-encoded (every byte but `A-Za-z0-9-._~`).
pub(super) fn viewer_link(base_url: &str, id: &str) -> String {
    let mut link = format!("{}/meeting?id=", base_url.trim_end_matches('/'));
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            link.push(char::from(byte));
        } else {
            link.push_str(&format!("%{byte:02X}"));
        }
    }
    link
}

/// `scheme://host[:port]` as the caller reached the hub: the `Host` header, and `https`
/// when a proxy in front says so with `X-Forwarded-Proto: https`. 400 without a `Host`
/// or with one that is not a host name or address with an optional port.
pub(super) fn request_base_url(headers: &HeaderMap) -> Result<String, ServiceError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let plausible = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !plausible {
        return Err(ServiceError::BadRequest(
            "the request needs a Host header (host or address, optional port) to build the link"
                .into(),
        ));
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    Ok(format!("{}://{host}", if https { "https" } else { "http" }))
}

/// A CSV download.
pub(super) fn csv_response(name: &str, text: String) -> Reply {
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        text,
    )
        .into_response())
}

async fn schedule_meeting(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: ScheduleRequest = parse(&headers, &body)?;
    let scheduled = state.services.schedule_meeting(&who, request).await?;
    Ok((StatusCode::CREATED, axum::Json(scheduled)).into_response())
}

async fn list_meetings(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.list_meetings(&who).await?)
}

async fn list_experts(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.list_experts(&who).await?)
}

async fn get_meeting(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.get_meeting(&who, &id).await?)
}

async fn go_live(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: LiveRequest = parse_optional(&headers, &body)?;
    ok(state
        .services
        .go_live(&state.node, &who, &id, request.stream)
        .await?)
}

async fn end_meeting(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.end_meeting(&state.node, &who, &id).await?)
}

async fn join_meeting(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.join_meeting(&who, &id).await?)
}

async fn join_link(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let base_url = request_base_url(&headers)?;
    ok(state
        .services
        .meeting_join_link(&who, &id, &base_url)
        .await?)
}

async fn announce(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: AnnounceRequest = parse(&headers, &body)?;
    let made = state
        .services
        .announce(
            &state.node,
            &who,
            &id,
            &request.body,
            request.level.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(made)).into_response())
}

async fn list_announcements(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.list_announcements(&who, &id).await?)
}
