//! WHIP (RFC 9725) ingest and WHEP playback over HTTP: an axum [`Router`] in front of a
//! [`RelayHandle`].
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /whip/{stream}` (SDP offer that sends) | `201`, SDP answer, `Location: /whip/{stream}/{session}`, `ETag` |
//! | `POST /whep/{stream}` (SDP offer that receives) | `201`, same shape, `Location: /whep/{stream}/{session}` |
//! | `DELETE /whip/{stream}/{session}`, `/whep/…` | `204`; `404` for an unknown session |
//! | `PATCH` on a session | `405` (trickle ICE and ICE restart are not supported yet; the answer carries every candidate); `404` for an unknown session |
//! | `OPTIONS` on either | `204` with CORS headers and `Accept-Post: application/sdp` |
//!
//! Errors are `text/plain` with one sentence: `400` malformed or hostile SDP (or a bad
//! stream name), `401` no bearer token, `404` WHEP for a stream with no publisher, `409` a
//! second publisher, `413` an offer over `max_sdp_bytes`, `415` not `application/sdp`,
//! `422` no Opus/VP8/H.264, `503` at capacity.
//!
//! Tokens: any `Authorization: Bearer <token>` is accepted for now; a missing or empty one is
//! `401`. The hub's publish/view token check plugs in here later.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};

use crate::driver::{RelayError, RelayHandle};
use crate::sdp_checks::OfferRole;

/// Longest stream name.
pub const MAX_STREAM_NAME: usize = 64;

/// The WHIP/WHEP routes, ready to `merge` into the server's router.
pub fn router(relay: RelayHandle) -> Router {
    let endpoint = MethodFilter::POST.or(MethodFilter::OPTIONS);
    let session = MethodFilter::DELETE
        .or(MethodFilter::PATCH)
        .or(MethodFilter::OPTIONS);
    Router::new()
        .route("/whip/{stream}", on(endpoint, whip_endpoint))
        .route("/whep/{stream}", on(endpoint, whep_endpoint))
        .route("/whip/{stream}/{session}", on(session, whip_session))
        .route("/whep/{stream}/{session}", on(session, whep_session))
        .with_state(relay)
}

async fn whip_endpoint(
    State(relay): State<RelayHandle>,
    method: Method,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    endpoint(relay, OfferRole::Publish, method, stream, headers, body).await
}

async fn whep_endpoint(
    State(relay): State<RelayHandle>,
    method: Method,
    Path(stream): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    endpoint(relay, OfferRole::View, method, stream, headers, body).await
}

async fn whip_session(
    State(relay): State<RelayHandle>,
    method: Method,
    Path((stream, session)): Path<(String, String)>,
) -> Response {
    session_request(relay, OfferRole::Publish, method, stream, session).await
}

async fn whep_session(
    State(relay): State<RelayHandle>,
    method: Method,
    Path((stream, session)): Path<(String, String)>,
) -> Response {
    session_request(relay, OfferRole::View, method, stream, session).await
}

fn prefix(role: OfferRole) -> &'static str {
    match role {
        OfferRole::Publish => "whip",
        OfferRole::View => "whep",
    }
}

/// A text error with CORS headers.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let mut body = message.into();
    body.push('\n');
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response();
    cors(response.headers_mut());
    response
}

fn relay_error(e: RelayError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error(status, e.to_string())
}

fn cors(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag, Link, Accept-Post, Allow"),
    );
}

fn valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STREAM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn has_bearer_token(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
        .is_some_and(|token| !token.is_empty())
}

/// The answer to a CORS preflight (`OPTIONS`): `allow` for `Allow`, `cors_methods` for
/// `Access-Control-Allow-Methods`.
fn preflight(allow: &'static str, cors_methods: &'static str) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    cors(h);
    h.insert(header::ALLOW, HeaderValue::from_static(allow));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(cors_methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type, If-Match"),
    );
    response
}

fn is_sdp(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/sdp"))
}

async fn endpoint(
    relay: RelayHandle,
    role: OfferRole,
    method: Method,
    stream: String,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method == Method::OPTIONS {
        let mut response = preflight("POST, OPTIONS", "POST, OPTIONS");
        response
            .headers_mut()
            .insert("accept-post", HeaderValue::from_static("application/sdp"));
        return response;
    }
    if !valid_stream_name(&stream) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid stream name: use 1 to {MAX_STREAM_NAME} characters from A-Z a-z 0-9 - _ ."
            ),
        );
    }
    if !has_bearer_token(&headers) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "missing bearer token (Authorization: Bearer <token>)",
        );
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    if !is_sdp(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be sent as Content-Type: application/sdp",
        );
    }
    let limit = relay.config().max_sdp_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the SDP offer is larger than {limit} bytes"),
        );
    }
    let Ok(bytes) = to_bytes(body, limit).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the SDP offer is larger than {limit} bytes (or the body was cut off)"),
        );
    };
    let Ok(offer) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "the SDP offer is not UTF-8 text");
    };
    match relay.negotiate(role, &stream, offer).await {
        Ok(n) => {
            let location = format!("/{}/{}/{}", prefix(role), stream, n.session);
            let mut response = (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/sdp")],
                n.answer,
            )
                .into_response();
            let h = response.headers_mut();
            cors(h);
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            if let Ok(v) = HeaderValue::from_str(&n.etag) {
                h.insert(header::ETAG, v);
            }
            response
        }
        Err(e) => {
            tracing::debug!(stream, error = %e, "relay: offer refused");
            relay_error(e)
        }
    }
}

async fn session_request(
    relay: RelayHandle,
    role: OfferRole,
    method: Method,
    stream: String,
    session: String,
) -> Response {
    if method == Method::OPTIONS {
        return preflight("DELETE, OPTIONS", "DELETE, PATCH, OPTIONS");
    }
    if method == Method::DELETE {
        return match relay.end(role, &stream, &session).await {
            Ok(true) => {
                let mut response = StatusCode::NO_CONTENT.into_response();
                cors(response.headers_mut());
                response
            }
            Ok(false) => error(StatusCode::NOT_FOUND, "no such session"),
            Err(e) => relay_error(e),
        };
    }
    // PATCH: trickle ICE and ICE restart are not supported yet (RFC 9725 §4.3.1: 405).
    match relay.session_exists(role, &stream, &session).await {
        Ok(true) => {
            let mut response = error(
                StatusCode::METHOD_NOT_ALLOWED,
                "trickle ICE and ICE restart are not supported yet; the answer lists every candidate",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("DELETE, OPTIONS"));
            response
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "no such session"),
        Err(e) => relay_error(e),
    }
}
