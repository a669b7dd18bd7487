//! The domain services: what people do with rootcast — log in, send a directive, catch
//! up on a unit's inbox, acknowledge, watch the acknowledgement map — each checked
//! against the caller's role and scope, recorded in the store and announced on the hub's
//! channels.
//!
//! Two doors lead to the same operations: the REST API under `/api/v1/` ([`http`]) for
//! pages and back ends, and RPC methods over a client's own WebSocket ([`rpc`]). Both first
//! turn the caller into a [`Principal`] (from the bearer token, or from the connection's
//! user id) and then call a method of [`Services`]; the methods never trust a unit or an
//! id the caller names without checking the principal's scope.
//!
//! # The channels
//! - `unit:<unit id>`: a unit's live inbox. A login of someone who belongs to a unit
//!   returns a connection token that subscribes the connection to it server-side. Each
//!   publication is `{"type":"entry","entry":…}` (a new inbox entry, with its per-unit
//!   `seq`) or `{"type":"state","state":…}` (someone at the unit acknowledged).
//! - `ack:<directive id>@<unit id>`: the acknowledgement map of one directive over one
//!   subtree; the dashboard call returns a subscription token for it after the scope
//!   check. Each publication is `{"type":"state","state":…}`.
//! - `meeting:<id>` and `qa:<id>` (with `qa:<id>@moderators` and `qa:<id>#<account>`): a
//!   live meeting's state, announcements, screen and Q&A; `meeting.join` returns their
//!   tokens after the access check (see `meetings.rs` and `qa.rs`).
//! - `meeting-chat:<id>` and `meeting-chat:<id>@moderators`: a meeting's chat and its
//!   moderation queue; `chat.history` returns their tokens after the access check (see
//!   `chat.rs`).
//!
//! # Invariants
//! - **The store is the truth; channels only push.** A directive is written (with every
//!   unit's inbox row) before anything is published. A push carries the entry's `seq`; a
//!   client that (re)connects, or sees a gap in `seq`, asks for everything after the last
//!   `seq` it has. So every targeted unit gets every directive exactly once and in order,
//!   whether it was online during the send or not, and a lost push loses nothing.
//! - **Scope is checked before anything is read or written**: a moderator addresses,
//!   reads and watches only units inside their subtree; only an officer of a unit
//!   acknowledges for it; delivery and read receipts come only from the unit's own people
//!   and screens.

mod attendance;
mod chat;
mod chat_rules;
pub mod credentials;
mod directives;
mod feedback;
pub mod http;
mod meetings;
mod qa;
pub mod recordings;
pub mod reminders;
mod revocation;
pub mod rpc;
mod views;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use serde_json::json;
use thiserror::Error;

use crate::auth::{AuthError, Principal};
use crate::codes::ClientError;
use crate::node::Node;
use crate::store::{Store, StoreError};
use crate::token::{TokenError, issue_hs256};

pub use directives::{AckRequest, SendRequest, TargetRequest};
pub use revocation::REVOCATION_SWEEP;

/// How long the tokens a login returns are valid. Pages log in again after that.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The domain services of one node: the store and the key that signs the tokens they
/// hand out.
pub struct Services {
    store: Store,
    /// HS256 key for connection and subscription tokens (the hub's own
    /// `client.token.hmac_secret_key`, so the hub accepts them).
    token_secret: String,
    /// Meeting chat's slow mode and rate limit counts on this node.
    chat_limiter: chat_rules::Limiter,
    /// Where meeting recordings are listed and served from (set by the binary).
    recordings: std::sync::OnceLock<std::sync::Arc<dyn recordings::RecordingLibrary>>,
}

/// What went wrong, as the caller should hear it. Each kind has an HTTP status and an RPC
/// error code (1000 + the status).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ServiceError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Too many requests (chat slow mode, rate limit): try again after `retry_after`
    /// seconds (rounded up), which the REST body carries as `retry_after`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Details are logged, not shown.
    #[error("internal error")]
    Internal,
}

impl ServiceError {
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ServiceError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable, machine-readable name for the kind.
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::BadRequest(_) => "bad_request",
            ServiceError::Unauthenticated(_) => "unauthenticated",
            ServiceError::Forbidden(_) => "forbidden",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::Unprocessable(_) => "unprocessable",
            ServiceError::TooManyRequests { .. } => "too_many_requests",
            ServiceError::Internal => "internal",
        }
    }

    /// The RPC error reply: code 1000 + the HTTP status (1400, 1401, 1403, 1404, 1409,
    /// 1422, 1429, 1500).
    pub fn to_client_error(&self) -> ClientError {
        ClientError::application(1000 + u32::from(self.status().as_u16()), self.to_string())
    }

    /// The JSON body of an error response.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({"error": {"code": self.code(), "message": self.to_string()}});
        if let ServiceError::TooManyRequests { retry_after, .. } = self {
            body["error"]["retry_after"] = json!(retry_after);
        }
        body
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::UnitNotFound(_)
            | StoreError::DirectiveNotFound(_)
            | StoreError::NotInInbox { .. }
            | StoreError::UnknownAccount(_)
            | StoreError::UnknownCredential(_)
            | StoreError::MeetingNotFound(_)
            | StoreError::QuestionNotFound(_) => ServiceError::NotFound(error.to_string()),
            StoreError::UnitExists(_)
            | StoreError::DirectiveExists(_)
            | StoreError::AccountExists(_)
            | StoreError::HasChildren { .. }
            | StoreError::StaleVersion { .. }
            | StoreError::Retracted(_)
            | StoreError::ThreadClosed(_)
            | StoreError::MeetingExists(_)
            | StoreError::MeetingConflict(_) => ServiceError::Conflict(error.to_string()),
            StoreError::ThreadNotFound(_) => ServiceError::NotFound(error.to_string()),
            StoreError::Invalid(_) | StoreError::Import(_) => {
                ServiceError::BadRequest(error.to_string())
            }
            StoreError::Directive(_) | StoreError::Feedback(_) | StoreError::MeetingInput(_) => {
                ServiceError::Unprocessable(error.to_string())
            }
            StoreError::ChatMessageNotFound(_) => ServiceError::NotFound(error.to_string()),
            StoreError::ChatConflict(_) => ServiceError::Conflict(error.to_string()),
            StoreError::ChatInput(_) => ServiceError::Unprocessable(error.to_string()),
            StoreError::Auth(auth) => auth.into(),
            other => {
                tracing::error!(error = %other, "store failure");
                ServiceError::Internal
            }
        }
    }
}

impl From<AuthError> for ServiceError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::BadCredentials => ServiceError::Unauthenticated(error.to_string()),
            AuthError::Forbidden(_) => ServiceError::Forbidden(error.to_string()),
            AuthError::Invalid(_) => ServiceError::BadRequest(error.to_string()),
            AuthError::Hashing(_) => {
                tracing::error!(%error, "password hashing failed");
                ServiceError::Internal
            }
        }
    }
}

/// Milliseconds since the Unix epoch, the store's clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Services {
    /// The services over `store`, signing tokens with `token_secret` (the hub's HMAC
    /// key, which must not be empty).
    pub fn new(store: Store, token_secret: &str) -> Result<Services, String> {
        if token_secret.is_empty() {
            return Err(
                "the directive services need client.token.hmac_secret_key to sign the tokens a \
                 login returns"
                    .to_owned(),
            );
        }
        Ok(Services {
            store,
            token_secret: token_secret.to_owned(),
            chat_limiter: chat_rules::Limiter::default(),
            recordings: std::sync::OnceLock::new(),
        })
    }

    /// Who holds `token` (a connection token this node accepts): 401 when it is missing,
    /// invalid or expired, or names no active account.
    pub async fn authenticate(&self, node: &Node, token: &str) -> Result<Principal, ServiceError> {
        let claims = node.tokens.connection(token).map_err(|error| match error {
            TokenError::Expired => ServiceError::Unauthenticated("the token has expired".into()),
            TokenError::Invalid(_) => ServiceError::Unauthenticated("the token is invalid".into()),
        })?;
        self.principal(&claims.sub).await
    }

    /// The principal behind a hub user id (a connection's `sub`).
    pub async fn principal(&self, user: &str) -> Result<Principal, ServiceError> {
        if user.is_empty() {
            return Err(ServiceError::Unauthenticated(
                "log in first: anonymous connections have no account".into(),
            ));
        }
        match self.store.principal(user).await {
            Ok(principal) => Ok(principal),
            Err(StoreError::Auth(_)) | Err(StoreError::UnknownAccount(_)) => Err(
                ServiceError::Unauthenticated("the token names no active account".into()),
            ),
            Err(other) => Err(other.into()),
        }
    }

    /// Logs in with a username and password: the token, its expiry and the account.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<serde_json::Value, ServiceError> {
        let principal = self.store.login(username, password, now_ms()).await?;
        self.session(&principal).await
    }

    /// Logs in a meeting-room screen with its unit credential.
    pub async fn login_credential(
        &self,
        credential: &str,
    ) -> Result<serde_json::Value, ServiceError> {
        let principal = self
            .store
            .unit_credential_login(credential, now_ms())
            .await?;
        self.session(&principal).await
    }

    /// What a login returns: a connection token (subscribed server-side to the unit's
    /// inbox channel when the principal belongs to a unit), when it expires, the account.
    async fn session(&self, principal: &Principal) -> Result<serde_json::Value, ServiceError> {
        let expires_at = now_ms() / 1000 + SESSION_TTL.as_secs() as i64;
        let channels: Vec<String> = principal.unit.iter().map(|u| unit_channel(u)).collect();
        let token = self.sign(&json!({
            "sub": principal.account_id,
            "exp": expires_at,
            "channels": channels,
            "info": {"name": principal.username, "role": principal.role.as_str()},
        }))?;
        Ok(json!({
            "token": token,
            "expires_at": expires_at * 1000,
            "account": views::principal(principal),
        }))
    }

    /// A subscription token for `channel`, for the connection of `principal`.
    fn subscription_token(
        &self,
        principal: &Principal,
        channel: &str,
    ) -> Result<String, ServiceError> {
        self.sign(&json!({
            "sub": principal.account_id,
            "channel": channel,
            "exp": now_ms() / 1000 + SESSION_TTL.as_secs() as i64,
        }))
    }

    fn sign(&self, claims: &serde_json::Value) -> Result<String, ServiceError> {
        issue_hs256(&self.token_secret, claims).map_err(|error| {
            tracing::error!(%error, "cannot sign a token");
            ServiceError::Internal
        })
    }
}

/// The live inbox channel of a unit.
pub fn unit_channel(unit: &str) -> String {
    format!("unit:{unit}")
}

/// The live acknowledgement channel of `directive` over the subtree of `root`.
pub fn ack_channel(directive: &str, root: &str) -> String {
    format!("ack:{directive}@{root}")
}
