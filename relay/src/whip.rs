//! WHIP (RFC 9725) ingest and WHEP playback over HTTP: an axum [`Router`] in front of a
//! [`RelayHandle`].
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /whip/{stream}` (SDP offer that sends) | `201`, SDP answer, `Location: /whip/{stream}/{session}`, `ETag` |
//! | `POST /whep/{stream}` (SDP offer that receives) | `201`, same shape, `Location: /whep/{stream}/{session}` |
//! | `DELETE /whip/{stream}/{session}`, `/whep/…` | `204`; `404` for an unknown session |
//! | `PATCH` on a session, `application/trickle-ice-sdpfrag` | trickle ICE `204`; ICE restart `200` with the relay's new fragment and a new `ETag`; `412` when `If-Match` does not match; `400` bad fragment; `404`; `415` |
//! | `OPTIONS` on either | `204` with CORS headers (`Accept-Post: application/sdp` on the endpoint, `Accept-Patch: application/trickle-ice-sdpfrag` on a session) |
//! | `POST /whep/{stream}/{session}/layer`, JSON `{"layer":"auto"\|"low"\|"medium"\|"high"\|"audio"}` (or `q`/`h`/`f`), or the WHEP draft's `{"encodingId":"<rid>"}` / `{}` (automatic) | `200` with the viewer's layer state as JSON; `400` bad JSON, unknown layer name or RID; `404` unknown session |
//! | `GET /whep/{stream}/{session}/layer` | `200` with the viewer's layer state: `{"preference","joined","target","current","estimate_bps","layers":[{"layer","encodingId","bitrate_bps"}]}` |
//! | `GET /recordings`, `GET /recordings/{name}` | the finished recordings and their files (Range requests): see [`crate::record::http`] |
//!
//! The layer route follows the WHEP draft's video layer selection extension
//! (draft-ietf-wish-whep, `urn:ietf:params:whep:ext:core:layer`): every WHEP `201` carries
//! `Link: </whep/{stream}/{session}/layer>; rel="urn:ietf:params:whep:ext:core:layer"`, a
//! `POST` of `{"encodingId": rid}` pins the layer the publisher sends with that RID, `{}`
//! returns to automatic selection, and success is `200`. Beyond the draft: `"layer"` names a
//! layer by rank, and `"audio"` stops video for that viewer (audio-only for weak links).
//! The draft's server-sent `layers` event is not offered; `GET` on the same URL gives the
//! same information on request.
//!
//! Every `201` and the endpoint's `OPTIONS` carry one `Link: <url>; rel="ice-server"` per
//! configured STUN/TURN URL (RFC 9725 §4.6), with `username`, `credential` and
//! `credential-type="password"` for TURN.
//!
//! Errors are `text/plain` with one sentence: `400` malformed or hostile SDP (or a bad
//! stream name), `401` no valid token, `403` a token for another stream or access, `404`
//! WHEP for a stream with no publisher, `409` a second publisher, `413` an offer over
//! `max_sdp_bytes`, `415` not `application/sdp`, `422` no Opus/VP8/H.264, `503` at capacity.
//!
//! Tokens: the relay's [`crate::StreamAuth`] decides on every `POST`, from the bearer token
//! (`Authorization: Bearer <token>`). `DELETE` and `PATCH` need no token: the session URL
//! (128 random bits) is the capability, as RFC 9725 §4.2 allows.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};

use crate::driver::{LayerStatus, PatchOutcome, RelayError, RelayHandle};
use crate::hooks::{Access, AuthRejection};
use crate::layers::{LayerChoice, layer_name};
use crate::record;
use crate::sdp_checks::OfferRole;
use crate::sdpfrag;

/// The media type of trickle ICE and ICE restart fragments (RFC 8840).
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

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
        .route(
            "/whep/{stream}/{session}/layer",
            on(
                MethodFilter::GET
                    .or(MethodFilter::POST)
                    .or(MethodFilter::OPTIONS),
                whep_layer,
            ),
        )
        .route("/relay/metrics", axum::routing::get(relay_metrics))
        .route("/recordings", axum::routing::get(record::http::list))
        .route("/recordings/{name}", axum::routing::get(record::http::file))
        .with_state(relay)
}

/// `GET /relay/metrics`: the relay's counters as Prometheus text ([`crate::metrics`]).
/// Per-stream figures need the driver's answer; without one within a second they are left
/// out and the rest is still served.
async fn relay_metrics(State(relay): State<RelayHandle>) -> Response {
    let stats = tokio::time::timeout(std::time::Duration::from_secs(1), relay.stats())
        .await
        .ok()
        .and_then(Result::ok);
    let text = crate::metrics::render(
        &relay.counters(),
        relay.socket_buffers(),
        relay.receive_drops(),
        stats.as_ref(),
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
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
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = (OfferRole::Publish, stream, session);
    session_request(relay, target, method, headers, body).await
}

async fn whep_session(
    State(relay): State<RelayHandle>,
    method: Method,
    Path((stream, session)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let target = (OfferRole::View, stream, session);
    session_request(relay, target, method, headers, body).await
}

/// The `rel` of the WHEP draft's video layer selection extension.
pub const LAYER_REL: &str = "urn:ietf:params:whep:ext:core:layer";

/// Largest body of a layer request.
const MAX_LAYER_BODY: usize = 4096;

/// `GET`/`POST`/`OPTIONS` on `/whep/{stream}/{session}/layer`.
async fn whep_layer(
    State(relay): State<RelayHandle>,
    method: Method,
    Path((stream, session)): Path<(String, String)>,
    body: Body,
) -> Response {
    if method == Method::OPTIONS {
        return preflight("GET, POST, OPTIONS", "GET, POST, OPTIONS");
    }
    let result = if method == Method::GET {
        relay.layer_status(&stream, &session).await
    } else {
        let parsed = match to_bytes(body, MAX_LAYER_BODY).await {
            Ok(bytes) => parse_layer_request(&bytes),
            Err(_) => Err(format!(
                "the layer request is larger than {MAX_LAYER_BODY} bytes"
            )),
        };
        match parsed {
            Ok(choice) => relay.set_layer(&stream, &session, choice).await,
            Err(why) => {
                // An unknown session is 404 whatever the body.
                return match relay
                    .session_exists(OfferRole::View, &stream, &session)
                    .await
                {
                    Ok(true) => error(StatusCode::BAD_REQUEST, why),
                    Ok(false) => error(StatusCode::NOT_FOUND, "no such session"),
                    Err(e) => relay_error(e),
                };
            }
        }
    };
    match result {
        Ok(status) => {
            let mut response = (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                layer_status_json(&status),
            )
                .into_response();
            cors(response.headers_mut());
            response
        }
        Err(e) => relay_error(e),
    }
}

/// Parses a layer request body: a JSON object with `layer` (a name, see
/// [`LayerChoice::from_name`]) or `encodingId` (a publisher RID), or neither (automatic).
/// `mediaId` and the draft's numeric spatial/temporal fields are accepted and ignored (the
/// relay has one video track and no SVC). An empty body counts as `{}`.
pub fn parse_layer_request(body: &[u8]) -> Result<LayerChoice, String> {
    let text =
        std::str::from_utf8(body).map_err(|_| "the layer request is not UTF-8".to_string())?;
    if text.trim().is_empty() {
        return Ok(LayerChoice::Auto);
    }
    let fields = flat_json_object(text)?;
    let mut layer = None;
    let mut encoding = None;
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("layer", JsonValue::Str(v)) => layer = Some(v),
            ("encodingId", JsonValue::Str(v)) => encoding = Some(v),
            ("mediaId", JsonValue::Str(_)) => {}
            ("layer" | "encodingId" | "mediaId", _) => {
                return Err(format!("\"{key}\" must be a string"));
            }
            _ => {}
        }
    }
    match (layer, encoding) {
        (Some(_), Some(_)) => Err("give either \"layer\" or \"encodingId\", not both".into()),
        (Some(name), None) => LayerChoice::from_name(&name)
            .ok_or_else(|| format!("unknown layer {name:?}: use auto, low, medium, high or audio")),
        (None, Some(rid)) if rid.is_empty() || rid.len() > 32 => {
            Err("\"encodingId\" must be a RID of 1 to 32 characters".into())
        }
        (None, Some(rid)) => Ok(LayerChoice::Encoding(rid)),
        (None, None) => Ok(LayerChoice::Auto),
    }
}

/// A scalar JSON value (the layer request needs no more).
#[derive(Debug, Clone, PartialEq)]
enum JsonValue {
    Str(String),
    Other,
}

/// Parses a JSON object whose values are scalars (strings, numbers, booleans, null).
fn flat_json_object(text: &str) -> Result<Vec<(String, JsonValue)>, String> {
    let bad = |what: &str| format!("the layer request is not a flat JSON object ({what})");
    let mut chars = text.trim().chars().peekable();
    let skip_ws = |c: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while c.peek().is_some_and(|ch| ch.is_ascii_whitespace()) {
            c.next();
        }
    };
    fn string(c: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
        if c.next()? != '"' {
            return None;
        }
        let mut out = String::new();
        loop {
            match c.next()? {
                '"' => return Some(out),
                '\\' => match c.next()? {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| c.next()).collect();
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                    }
                    _ => return None,
                },
                ch if (ch as u32) < 0x20 => return None,
                ch => out.push(ch),
            }
        }
    }
    if chars.next() != Some('{') {
        return Err(bad("no opening brace"));
    }
    let mut fields = Vec::new();
    skip_ws(&mut chars);
    if chars.peek() == Some(&'}') {
        chars.next();
    } else {
        loop {
            skip_ws(&mut chars);
            let key = string(&mut chars).ok_or_else(|| bad("a key"))?;
            skip_ws(&mut chars);
            if chars.next() != Some(':') {
                return Err(bad("a colon"));
            }
            skip_ws(&mut chars);
            let value = match chars.peek() {
                Some('"') => JsonValue::Str(string(&mut chars).ok_or_else(|| bad("a string"))?),
                Some(c) if c.is_ascii_alphanumeric() || *c == '-' => {
                    let mut word = String::new();
                    while let Some(c) = chars.peek().copied() {
                        if c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.') {
                            word.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    let scalar = matches!(word.as_str(), "true" | "false" | "null")
                        || word.parse::<f64>().is_ok();
                    if !scalar {
                        return Err(bad("a value"));
                    }
                    JsonValue::Other
                }
                _ => return Err(bad("a value")),
            };
            if fields.len() >= 16 {
                return Err(bad("too many fields"));
            }
            fields.push((key, value));
            skip_ws(&mut chars);
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                _ => return Err(bad("a comma or closing brace")),
            }
        }
    }
    skip_ws(&mut chars);
    if chars.next().is_some() {
        return Err(bad("text after the object"));
    }
    Ok(fields)
}

/// Escapes a string for JSON output.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The layer route's JSON answer.
fn layer_status_json(status: &LayerStatus) -> String {
    let layer = |l: Option<crate::packet::LayerId>| {
        l.map_or("null".to_string(), |l| json_string(layer_name(l)))
    };
    let layers: Vec<String> = status
        .available
        .iter()
        .map(|(l, rid, rate)| {
            format!(
                "{{\"layer\":{},\"encodingId\":{},\"bitrate_bps\":{rate}}}",
                json_string(layer_name(*l)),
                rid.as_deref().map_or("null".to_string(), json_string)
            )
        })
        .collect();
    format!(
        "{{\"preference\":{},\"joined\":{},\"target\":{},\"current\":{},\"estimate_bps\":{},\"layers\":[{}]}}\n",
        json_string(status.preference.name()),
        status.joined,
        layer(status.target),
        layer(status.current),
        status
            .estimate_bps
            .map_or("null".to_string(), |e| e.to_string()),
        layers.join(",")
    )
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

/// The bearer token of `Authorization: Bearer <token>`, if there is a non-empty one.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        })
        .filter(|token| !token.is_empty())
}

fn auth_error(rejection: AuthRejection) -> Response {
    let status = StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let unauthorized = matches!(rejection, AuthRejection::Unauthorized(_));
    let mut response = error(status, rejection.to_string());
    if unauthorized {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// One `Link: <url>; rel="ice-server"…` per configured STUN/TURN URL.
fn ice_server_links(relay: &RelayHandle, headers: &mut HeaderMap) {
    for server in &relay.config().ice_servers {
        for value in server.link_values() {
            // Validated by the config; a value that is still no header value is skipped.
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.append(header::LINK, v);
            }
        }
    }
}

fn media_type_is(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
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
    media_type_is(headers, "application/sdp")
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
        ice_server_links(&relay, response.headers_mut());
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
    let access = match role {
        OfferRole::Publish => Access::Publish,
        OfferRole::View => Access::View,
    };
    if let Err(rejection) = relay
        .hooks()
        .auth
        .authorize(access, &stream, bearer_token(&headers))
    {
        tracing::debug!(stream, access = access.as_str(), reason = %rejection, "relay: token refused");
        return auth_error(rejection);
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
            ice_server_links(&relay, h);
            if role == OfferRole::View {
                let link = format!("<{location}/layer>; rel=\"{LAYER_REL}\"");
                if let Ok(v) = HeaderValue::from_str(&link) {
                    h.append(header::LINK, v);
                }
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
    (role, stream, session): (OfferRole, String, String),
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method == Method::OPTIONS {
        let mut response = preflight("PATCH, DELETE, OPTIONS", "PATCH, DELETE, OPTIONS");
        response
            .headers_mut()
            .insert("accept-patch", HeaderValue::from_static(SDPFRAG));
        return response;
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
    patch(relay, role, stream, session, headers, body).await
}

/// `PATCH`: trickle ICE (204) or ICE restart (200), RFC 9725 §4.3.
async fn patch(
    relay: RelayHandle,
    role: OfferRole,
    stream: String,
    session: String,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // An unknown session is 404 whatever the request looks like.
    let exists = |relay: RelayHandle| {
        let (stream, session) = (stream.clone(), session.clone());
        async move { relay.session_exists(role, &stream, &session).await }
    };
    let refuse = |status: StatusCode, message: String| error(status, message);
    if !media_type_is(&headers, SDPFRAG) {
        return match exists(relay.clone()).await {
            Ok(true) => refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("a PATCH must be sent as Content-Type: {SDPFRAG}"),
            ),
            Ok(false) => error(StatusCode::NOT_FOUND, "no such session"),
            Err(e) => relay_error(e),
        };
    }
    let limit = relay.config().max_sdp_bytes;
    let Ok(bytes) = to_bytes(body, limit).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the fragment is larger than {limit} bytes"),
        );
    };
    let parsed = std::str::from_utf8(&bytes)
        .map_err(|_| "the fragment is not UTF-8 text".to_owned())
        .and_then(|text| sdpfrag::parse_fragment(text).map_err(|e| e.to_string()));
    let fragment = match parsed {
        Ok(f) => f,
        Err(why) => {
            return match exists(relay.clone()).await {
                Ok(true) => refuse(StatusCode::BAD_REQUEST, why),
                Ok(false) => error(StatusCode::NOT_FOUND, "no such session"),
                Err(e) => relay_error(e),
            };
        }
    };
    let if_match = match headers.get(header::IF_MATCH).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v.to_owned()),
        Some(Err(_)) => return error(StatusCode::PRECONDITION_FAILED, "unreadable If-Match"),
    };
    match relay
        .patch(role, &stream, &session, if_match.as_deref(), fragment)
        .await
    {
        Ok(PatchOutcome::Trickled { .. }) => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            cors(response.headers_mut());
            response
        }
        Ok(PatchOutcome::Restarted { fragment, etag }) => {
            let mut response =
                (StatusCode::OK, [(header::CONTENT_TYPE, SDPFRAG)], fragment).into_response();
            let h = response.headers_mut();
            cors(h);
            if let Ok(v) = HeaderValue::from_str(&etag) {
                h.insert(header::ETAG, v);
            }
            response
        }
        Err(e) => {
            tracing::debug!(stream, session, error = %e, "relay: PATCH refused");
            relay_error(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::LayerId;

    #[test]
    fn layer_requests_parse() {
        let ok = |body: &str| parse_layer_request(body.as_bytes()).unwrap();
        assert_eq!(ok(r#"{"layer":"low"}"#), LayerChoice::Layer(LayerId::LOW));
        assert_eq!(
            ok(r#" { "layer" : "q" } "#),
            LayerChoice::Layer(LayerId::LOW)
        );
        assert_eq!(ok(r#"{"layer":"h"}"#), LayerChoice::Layer(LayerId::MID));
        assert_eq!(ok(r#"{"layer":"f"}"#), LayerChoice::Layer(LayerId::HIGH));
        assert_eq!(ok(r#"{"layer":"audio"}"#), LayerChoice::AudioOnly);
        assert_eq!(ok(r#"{"layer":"auto"}"#), LayerChoice::Auto);
        assert_eq!(ok("{}"), LayerChoice::Auto);
        assert_eq!(ok(""), LayerChoice::Auto);
        assert_eq!(
            ok(r#"{"mediaId":"1","encodingId":"hd","spatialLayerId":1,"x":null}"#),
            LayerChoice::Encoding("hd".into())
        );
        assert_eq!(
            ok(r#"{"layer":"\u0071"}"#),
            LayerChoice::Layer(LayerId::LOW)
        );
        for bad in [
            r#"{"layer":"ultra"}"#,
            r#"{"layer":1}"#,
            r#"{"layer":"low","encodingId":"q"}"#,
            r#"{"encodingId":""}"#,
            r#"{"layer":"low""#,
            r#"{"layer":{"x":1}}"#,
            r#"["low"]"#,
            r#"{"layer":"low"} x"#,
            "low",
            r#"{"layer":"lo\qw"}"#,
        ] {
            assert!(parse_layer_request(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_layer_request(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn layer_status_is_json() {
        let status = LayerStatus {
            preference: crate::ViewerPreference::Pin(LayerId::HIGH),
            joined: true,
            target: Some(LayerId::HIGH),
            current: None,
            estimate_bps: Some(1_000_000),
            available: vec![
                (LayerId::LOW, Some("q".into()), 150_000),
                (LayerId::HIGH, Some("f\"".into()), 1_500_000),
            ],
        };
        assert_eq!(
            layer_status_json(&status),
            concat!(
                r#"{"preference":"high","joined":true,"target":"high","current":null,"#,
                r#""estimate_bps":1000000,"layers":[{"layer":"low","encodingId":"q","bitrate_bps":150000},"#,
                r#"{"layer":"high","encodingId":"f\"","bitrate_bps":1500000}]}"#,
                "\n"
            )
        );
    }
}
