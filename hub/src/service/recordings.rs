//! A meeting's recordings: the relay records every live stream to WebM (one file per
//! publisher session, `relay/src/record/`); a meeting lists the recordings of its stream
//! that overlap its time live (from going live to its end, or now while it is live), so a
//! publisher who reconnected leaves several, in order.
//!
//! | door | what |
//! | --- | --- |
//! | `GET /api/v1/meetings/{id}/recordings`, RPC `meeting.recordings` | the list, each with a playback URL |
//! | `GET /api/v1/meetings/{id}/recordings/{name}` | the file (`video/webm`, Range requests for seeking) |
//!
//! # Who may watch
//! Whoever may watch the meeting ([`Services::meeting_access`]): its audience's people and
//! screens, its moderators and experts — also after it ended, so a unit that missed it can
//! catch up. A file is fetched with the caller's login (`Authorization: Bearer`) or, as a
//! `<video src>` cannot send headers, with the **playback token** in the URL the list
//! returns (`?token=…`): an HS256 token for one recording of one meeting, valid
//! [`PLAYBACK_TTL_SECS`] plus the recording's length, signed with a key derived from the
//! hub's HMAC secret. A playback token is therefore never a connection token (it cannot
//! open a WebSocket as its holder), and a connection token is never a playback token.
//!
//! The relay's own `GET /recordings/{name}` follows `relay.require_token` like WHEP does
//! (open in the demo set-up; with tokens on, a view token for the stream); this route
//! checks the meeting whatever that setting is (`docs/decisions/0006-recording.md`).
//!
//! The hub knows nothing of WebM files: the binary installs a [`RecordingLibrary`] (the
//! relay's listing and its Range-serving code) with [`Services::set_recording_library`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::http::{AppState, Reply, caller, ok};
use super::meetings::MeetingCall;
use super::rpc::method;
use super::{ServiceError, Services, now_ms};
use crate::auth::Principal;
use crate::rpc::RpcRegistry;
use crate::store::Meeting;

/// The OpenAPI `paths` of the recording routes, merged into `/api/openapi.json`.
pub(super) const OPENAPI_PATHS: &str = include_str!("recordings_openapi.json");

/// A playback token is valid this long beyond the recording's own length.
pub const PLAYBACK_TTL_SECS: i64 = 2 * 3600;

/// One finished recording, as the [`RecordingLibrary`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingFile {
    /// The file name, `<stream>-<UTC start>.webm`: the recording's id.
    pub name: String,
    /// The stream recorded.
    pub stream: String,
    /// When the publisher's session (and the file's time 0) began, ms since the epoch.
    pub started_at: i64,
    /// Its length, in ms.
    pub duration_ms: i64,
    /// The file's size in bytes.
    pub size: u64,
}

impl RecordingFile {
    /// When it ended, ms since the epoch.
    pub fn ended_at(&self) -> i64 {
        self.started_at + self.duration_ms
    }
}

/// A boxed future, as the [`RecordingLibrary`] methods return.
pub type LibraryFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the recordings are: the relay's folder, as the binary wires it.
pub trait RecordingLibrary: Send + Sync + 'static {
    /// The finished recordings of `stream`, in any order (an empty list when nothing is
    /// recorded).
    fn recordings<'a>(
        &'a self,
        stream: &'a str,
    ) -> LibraryFuture<'a, std::io::Result<Vec<RecordingFile>>>;

    /// The bytes of the finished recording `name` for this request (`Range` honoured),
    /// the caller's access already checked.
    fn serve<'a>(&'a self, name: &'a str, headers: &'a HeaderMap) -> LibraryFuture<'a, Response>;
}

/// The claims of a playback token.
#[derive(Debug, Deserialize)]
struct PlaybackClaims {
    #[allow(dead_code)]
    sub: String,
    meeting: String,
    recording: String,
}

/// The recordings of `meeting` among `files`: those of its stream that overlap its time
/// live (to `now` while it is live), oldest first. None before it went live.
pub(crate) fn meeting_recordings(
    meeting: &Meeting,
    mut files: Vec<RecordingFile>,
    now: i64,
) -> Vec<RecordingFile> {
    let (Some(stream), Some(live_at)) = (&meeting.stream, meeting.live_at) else {
        return Vec::new();
    };
    let until = meeting.ended_at.unwrap_or(now);
    files.retain(|f| &f.stream == stream && f.started_at <= until && f.ended_at() >= live_at);
    files.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.name.cmp(&b.name)));
    files
}

/// The HMAC key of playback tokens: derived from the hub's secret, so no other token the
/// hub signs verifies with it.
fn playback_key(token_secret: &str) -> String {
    let digest = Sha256::digest(format!("rootcast recording playback\0{token_secret}"));
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Services {
    /// Installs where recordings are listed and served from (once; later calls are
    /// ignored). Without one, every meeting has no recordings.
    pub fn set_recording_library(&self, library: Arc<dyn RecordingLibrary>) {
        let _ = self.recordings.set(library);
    }

    /// The meeting's recordings, for anyone who may watch it, each with a playback URL.
    pub(super) async fn list_meeting_recordings(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        let meeting = self.store.require_meeting(id).await?;
        self.access_to(who, &meeting).await?;
        let now = now_ms();
        let files = self.recordings_of(&meeting, now).await?;
        let live_at = meeting.live_at.unwrap_or(0);
        let mut list = Vec::with_capacity(files.len());
        for file in &files {
            let expires = now / 1000 + PLAYBACK_TTL_SECS + file.duration_ms / 1000;
            let token = self.sign_playback(&json!({
                "sub": who.account_id,
                "exp": expires,
                "meeting": meeting.id,
                "recording": file.name,
            }))?;
            list.push(json!({
                "name": file.name,
                "stream": file.stream,
                "started_at": file.started_at,
                "ended_at": file.ended_at(),
                "duration": file.duration_ms as f64 / 1000.0,
                "size": file.size,
                "offset": (file.started_at - live_at) as f64 / 1000.0,
                "url": format!(
                    "/api/v1/meetings/{}/recordings/{}?token={token}",
                    meeting.id, file.name
                ),
                "url_expires_at": expires * 1000,
            }));
        }
        Ok(json!({
            "meeting": {
                "id": meeting.id,
                "title": meeting.title,
                "status": meeting.status.as_str(),
                "stream": meeting.stream,
                "live_at": meeting.live_at,
                "ended_at": meeting.ended_at,
            },
            "recordings": list,
        }))
    }

    /// The recordings of `meeting` from the library (none without one).
    async fn recordings_of(
        &self,
        meeting: &Meeting,
        now: i64,
    ) -> Result<Vec<RecordingFile>, ServiceError> {
        let (Some(library), Some(stream)) = (self.recordings.get(), &meeting.stream) else {
            return Ok(Vec::new());
        };
        let files = library.recordings(stream).await.map_err(|error| {
            tracing::error!(%error, meeting = %meeting.id, "cannot list the recordings");
            ServiceError::Internal
        })?;
        Ok(meeting_recordings(meeting, files, now))
    }

    fn sign_playback(&self, claims: &Value) -> Result<String, ServiceError> {
        crate::token::issue_hs256(&playback_key(&self.token_secret), claims).map_err(|error| {
            tracing::error!(%error, "cannot sign a playback token");
            ServiceError::Internal
        })
    }

    /// Whether `token` is a valid playback token for recording `name` of `meeting`.
    fn check_playback(&self, token: &str, meeting: &str, name: &str) -> Result<(), ServiceError> {
        let invalid = || ServiceError::Unauthenticated("the playback token is invalid".into());
        let key =
            jsonwebtoken::DecodingKey::from_secret(playback_key(&self.token_secret).as_bytes())
                .map_err(|_| invalid())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<PlaybackClaims>(token, &key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => ServiceError::Unauthenticated(
                    "the playback link expired: list the recordings again".into(),
                ),
                _ => invalid(),
            })?
            .claims;
        if claims.meeting != meeting || claims.recording != name {
            return Err(ServiceError::Forbidden(
                "the playback token is for another recording".into(),
            ));
        }
        Ok(())
    }

    /// The file of recording `name` of meeting `id`: the caller is the holder of a
    /// playback token for it (`token`), or else the bearer of a login who may watch the
    /// meeting; the recording must be one of the meeting's.
    async fn meeting_recording_file(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        id: &str,
        name: &str,
        token: Option<&str>,
    ) -> Reply {
        let meeting = match token {
            Some(token) => {
                self.check_playback(token, id, name)?;
                self.store.require_meeting(id).await?
            }
            None => {
                let who = caller(state, headers).await?;
                let meeting = self.store.require_meeting(id).await?;
                self.access_to(&who, &meeting).await?;
                meeting
            }
        };
        let not_found =
            || ServiceError::NotFound(format!("meeting {id:?} has no recording {name:?}"));
        let library = self.recordings.get().ok_or_else(not_found)?;
        if !self
            .recordings_of(&meeting, now_ms())
            .await?
            .iter()
            .any(|f| f.name == name)
        {
            return Err(not_found());
        }
        let mut response = library.serve(name, headers).await;
        // The URL carries a token: keep it out of shared caches and referrers.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("private, no-store"),
        );
        response.headers_mut().insert(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("no-referrer"),
        );
        Ok(response)
    }
}

/// The recording routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/meetings/{id}/recordings", get(list_recordings))
        .route(
            "/api/v1/meetings/{id}/recordings/{name}",
            get(recording_file),
        )
}

/// Registers `meeting.recordings`.
pub(super) fn register_rpc(services: &Arc<Services>, registry: &mut RpcRegistry) {
    method(
        services,
        registry,
        "meeting.recordings",
        |s, _node, who, request: MeetingCall| async move {
            s.list_meeting_recordings(&who, &request.meeting).await
        },
    );
}

async fn list_recordings(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.list_meeting_recordings(&who, &id).await?)
}

#[derive(Deserialize)]
struct FileQuery {
    #[serde(default)]
    token: Option<String>,
}

async fn recording_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, name)): Path<(String, String)>,
    Query(query): Query<FileQuery>,
) -> Reply {
    let token = query.token.as_deref().filter(|t| !t.is_empty());
    state
        .services
        .meeting_recording_file(&state, &headers, &id, &name, token)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directive::Target;
    use crate::store::MeetingStatus;

    fn meeting(stream: Option<&str>, live_at: Option<i64>, ended_at: Option<i64>) -> Meeting {
        Meeting {
            id: "m1".into(),
            title: "t".into(),
            agenda: String::new(),
            starts_at: 0,
            target: Target::from_json(r#"{"units":["u"]}"#).expect("a target"),
            qa_preapproval: false,
            status: if ended_at.is_some() {
                MeetingStatus::Ended
            } else {
                MeetingStatus::Live
            },
            stream: stream.map(str::to_owned),
            screen_question: None,
            created_by: "a".into(),
            created_at: 0,
            live_at,
            ended_at,
        }
    }

    fn file(stream: &str, start: i64, duration: i64) -> RecordingFile {
        RecordingFile {
            name: format!("{stream}-{start}.webm"),
            stream: stream.into(),
            started_at: start,
            duration_ms: duration,
            size: 1,
        }
    }

    #[test]
    fn a_meeting_has_the_recordings_of_its_stream_that_overlap_its_time_live() {
        let m = meeting(Some("s"), Some(1_000), Some(10_000));
        let files = vec![
            file("s", 9_000, 5_000),   // goes on after the end: kept
            file("s", 0, 500),         // before going live: not
            file("s", 500, 1_000),     // started before, ran into the meeting: kept
            file("other", 2_000, 100), // another stream: not
            file("s", 10_001, 100),    // after the end: not
            file("s", 3_000, 1_000),   // a reconnect: kept
        ];
        let names: Vec<i64> = meeting_recordings(&m, files.clone(), 20_000)
            .iter()
            .map(|f| f.started_at)
            .collect();
        assert_eq!(names, [500, 3_000, 9_000]);
        // Live: everything up to now.
        let live = meeting(Some("s"), Some(1_000), None);
        assert_eq!(meeting_recordings(&live, files.clone(), 20_000).len(), 4);
        // Never live: none.
        assert!(meeting_recordings(&meeting(Some("s"), None, None), files, 20_000).is_empty());
    }

    #[test]
    fn playback_keys_differ_from_the_secret_and_per_secret() {
        assert_ne!(playback_key("a"), "a");
        assert_ne!(playback_key("a"), playback_key("b"));
        assert_eq!(playback_key("a").len(), 64);
    }
}
