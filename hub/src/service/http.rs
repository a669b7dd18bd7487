//! The REST door to the services, under `/api/v1/`. Bodies are JSON; the caller is the
//! holder of the `Authorization: Bearer <token>` a login returned (the same token
//! connects to the WebSocket). Every error is `{"error":{"code":…,"message":…}}` with
//! the status of its [`ServiceError`] kind. The routes are listed in `docs/protocol.md`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::credentials::IssueRequest;
use super::directives::{
    AckRequest, CorrectRequest, RetractRequest, SendOutcome, SendRequest, UnitStep,
};
use super::feedback::{ListRequest, OpenRequest};
use super::{ServiceError, Services, views};
use crate::auth::Principal;
use crate::node::Node;

/// The OpenAPI description of the directive, account and feedback routes; the meeting
/// and chat routes are described in their own files and merged in by [`openapi_document`]
/// (a test checks the whole document lists exactly routes that exist).
const OPENAPI: &str = include_str!("openapi.json");

/// Largest request body: a directive's body is at most 64 KiB of Markdown.
const BODY_LIMIT: usize = 256 * 1024;

#[derive(Clone)]
pub(super) struct AppState {
    pub(super) node: Arc<Node>,
    pub(super) services: Arc<Services>,
}

/// The routes under `/api/v1/`.
pub fn router(node: Arc<Node>, services: Arc<Services>) -> Router {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/login/credential", post(login_credential))
        .route("/api/v1/me", get(me))
        .route("/api/v1/org/units", get(units))
        .route(
            "/api/v1/directives",
            get(list_directives).post(send_directive),
        )
        .route("/api/v1/directives/scheduled", get(list_scheduled))
        .route(
            "/api/v1/directives/scheduled/{id}",
            axum::routing::delete(cancel_scheduled),
        )
        .route("/api/v1/directives/{id}/dashboard", get(dashboard))
        .route("/api/v1/directives/{id}/versions", get(versions))
        .route("/api/v1/directives/{id}/correct", post(correct))
        .route("/api/v1/directives/{id}/retract", post(retract))
        .route("/api/v1/directives/{id}/receipt", post(receipt))
        .route("/api/v1/directives/{id}/read", post(read))
        .route("/api/v1/directives/{id}/ack", post(acknowledge))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/units/{id}/credentials", post(issue_credential))
        .route("/api/v1/feedback", get(list_feedback).post(open_feedback))
        .route("/api/v1/feedback/{id}", get(get_feedback))
        .route("/api/v1/feedback/{id}/messages", post(post_feedback))
        .route("/api/v1/feedback/{id}/close", post(close_feedback))
        .route("/api/openapi.json", get(openapi))
        .merge(super::meetings::routes())
        .merge(super::chat::routes())
        .merge(super::recordings::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(AppState { node, services })
}

async fn openapi() -> Response {
    static DOCUMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| openapi_document().to_string());
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// The whole OpenAPI document: `openapi.json` with the `paths` (and `components.schemas`)
/// of the meeting and chat fragments merged in.
pub fn openapi_document() -> Value {
    let mut document: Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
    for fragment in [
        super::meetings::OPENAPI_PATHS,
        super::chat::OPENAPI_PATHS,
        super::recordings::OPENAPI_PATHS,
    ] {
        let fragment: Value = serde_json::from_str(fragment).expect("OpenAPI fragment is JSON");
        for section in ["paths", "schemas"] {
            let Some(Value::Object(entries)) = fragment.get(section) else {
                continue;
            };
            let target = match section {
                "paths" => &mut document["paths"],
                _ => &mut document["components"]["schemas"],
            };
            if let Value::Object(target) = target {
                target.extend(entries.clone());
            }
        }
    }
    document
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

pub(super) type Reply = Result<Response, ServiceError>;

pub(super) fn ok(value: Value) -> Reply {
    Ok(Json(value).into_response())
}

/// Parses a JSON body, with a message that names what is wrong.
pub(super) fn parse<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ServiceError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ServiceError::BadRequest(
            "send the body as Content-Type: application/json".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|error| ServiceError::BadRequest(format!("bad request body: {error}")))
}

pub(super) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, ServiceError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ServiceError::Unauthenticated("log in first: Authorization: Bearer <token>".into())
        })?;
    state.services.authenticate(&state.node, token).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let request: LoginRequest = parse(&headers, &body)?;
    ok(state
        .services
        .login(&request.username, &request.password)
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialRequest {
    credential: String,
}

async fn login_credential(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let request: CredentialRequest = parse(&headers, &body)?;
    ok(state.services.login_credential(&request.credential).await?)
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.me(&who).await?)
}

async fn units(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = caller(&state, &headers).await?;
    let units = state.services.visible_units(&who).await?;
    ok(Value::Array(units.iter().map(views::unit).collect()))
}

async fn list_directives(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.list_directives(&who).await?)
}

async fn send_directive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: SendRequest = parse(&headers, &body)?;
    match state
        .services
        .send_directive(&state.node, &who, request)
        .await?
    {
        SendOutcome::Sent(sent) => Ok((StatusCode::CREATED, Json(sent)).into_response()),
        SendOutcome::Scheduled(kept) => Ok((StatusCode::ACCEPTED, Json(kept)).into_response()),
    }
}

async fn list_scheduled(State(state): State<AppState>, headers: HeaderMap) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.list_scheduled(&who).await?)
}

async fn cancel_scheduled(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.cancel_scheduled(&who, &id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardQuery {
    root: Option<String>,
}

async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<DashboardQuery>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state
        .services
        .dashboard(&who, &id, query.root.as_deref())
        .await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    unit: Option<String>,
    #[serde(default)]
    after: i64,
}

async fn inbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state
        .services
        .inbox(&who, query.unit.as_deref(), query.after)
        .await?)
}

async fn step(
    state: AppState,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    step: UnitStep,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: AckRequest = if body.is_empty() {
        AckRequest::default()
    } else {
        parse(&headers, &body)?
    };
    ok(state
        .services
        .unit_step(&state.node, &who, &id, request, step)
        .await?)
}

async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    step(state, headers, id, body, UnitStep::Receipt).await
}

async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    step(state, headers, id, body, UnitStep::Read).await
}

async fn acknowledge(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    step(state, headers, id, body, UnitStep::Acknowledge).await
}

async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.directive_versions(&who, &id).await?)
}

async fn correct(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: CorrectRequest = parse(&headers, &body)?;
    ok(state
        .services
        .correct_directive(&state.node, &who, &id, request)
        .await?)
}

async fn retract(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: RetractRequest = if body.is_empty() {
        RetractRequest::default()
    } else {
        parse(&headers, &body)?
    };
    ok(state
        .services
        .retract_directive(&state.node, &who, &id, request)
        .await?)
}

async fn open_feedback(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: OpenRequest = parse(&headers, &body)?;
    let opened = state
        .services
        .open_feedback(&state.node, &who, request)
        .await?;
    Ok((StatusCode::CREATED, Json(opened)).into_response())
}

async fn list_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListRequest>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.list_feedback(&who, query).await?)
}

async fn get_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.get_feedback(&who, &id).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageRequest {
    body: String,
}

async fn post_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: MessageRequest = parse(&headers, &body)?;
    ok(state
        .services
        .post_feedback(&state.node, &who, &id, &request.body)
        .await?)
}

async fn close_feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state
        .services
        .close_feedback(&state.node, &who, &id)
        .await?)
}

async fn issue_credential(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(unit): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: IssueRequest = if body.is_empty() {
        IssueRequest::default()
    } else {
        parse(&headers, &body)?
    };
    // The join link points at the address the caller reached us on.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let issued = state
        .services
        .issue_credential(&who, &unit, request, &format!("http://{host}"))
        .await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}
