//! The server HTTP API at `POST /api/<method>`, compatible with Centrifugo's, so its
//! server-side clients (`cent` for Python, `cent.js`) work unchanged.
//!
//! Auth: `X-API-Key: <key>` or `Authorization: apikey <key>` (unless `http_api.insecure`).
//! Answers: HTTP 200 with `{"result":{…}}` or `{"error":{"code":N,"message":"…"}}` for
//! errors of the request's content (unknown channel, …); HTTP 401 for a missing or wrong
//! key; HTTP 400 for a body that is not the method's JSON; HTTP 404 for an unknown method.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::client::history_filter;
use crate::codes::{ClientError, Disconnect};
use crate::node::{Node, ServerPublish};
use crate::protocol::{HistoryResult, PresenceResult, RawJson, StreamPosition};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    channel: String,
    data: RawJson,
    #[serde(default)]
    skip_history: bool,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BroadcastRequest {
    channels: Vec<String>,
    data: RawJson,
    #[serde(default)]
    skip_history: bool,
    #[serde(default)]
    tags: Option<BTreeMap<String, String>>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
struct UserChannelRequest {
    user: String,
    channel: String,
    #[serde(default)]
    client: Option<String>,
    /// For `subscribe`: handed to the client in the `subscribe` push.
    #[serde(default)]
    data: Option<RawJson>,
}

#[derive(Deserialize)]
struct DisconnectRequest {
    user: String,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    disconnect: Option<DisconnectSpec>,
}

#[derive(Deserialize)]
struct DisconnectSpec {
    code: u16,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct ChannelOnly {
    channel: String,
}

#[derive(Deserialize)]
struct HistoryRequest {
    channel: String,
    #[serde(default)]
    limit: i32,
    #[serde(default)]
    since: Option<StreamPosition>,
    #[serde(default)]
    reverse: bool,
}

#[derive(Deserialize, Default)]
struct ChannelsRequest {
    #[serde(default)]
    pattern: String,
}

/// The API's answer to one request.
enum ApiReply {
    Result(Value),
    Error(ClientError),
    /// The body did not parse as the method's request.
    BadBody(String),
}

impl IntoResponse for ApiReply {
    fn into_response(self) -> Response {
        match self {
            ApiReply::Result(result) => Json(json!({ "result": result })).into_response(),
            ApiReply::Error(error) => Json(json!({ "error": error })).into_response(),
            ApiReply::BadBody(reason) => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": { "code": 107, "message": format!("bad request: {reason}") } })),
            )
                .into_response(),
        }
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiReply> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiReply::BadBody(e.to_string()))
}

fn authorized(node: &Node, headers: &HeaderMap) -> bool {
    let config = &node.config().http_api;
    if config.insecure {
        return true;
    }
    if config.key.is_empty() {
        return false;
    }
    let presented = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("apikey "))
        });
    presented.is_some_and(|key| constant_time_eq(key.as_bytes(), config.key.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /api/{method}`.
pub async fn handle(
    State(node): State<Arc<Node>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&node, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": { "code": 101, "message": "unauthorized" } })),
        )
            .into_response();
    }
    let Some(method) = METHODS.iter().find(|m| **m == method) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "error": ClientError::METHOD_NOT_FOUND })),
        )
            .into_response();
    };
    node.metrics
        .api_requests
        .get_or_create(&crate::metrics::MethodLabel { method })
        .inc();
    match call(&node, method, &body).await {
        Ok(reply) | Err(reply) => reply.into_response(),
    }
}

const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
];

fn answer<T: serde::Serialize>(result: Result<T, ClientError>) -> ApiReply {
    match result {
        // Our own result types always serialize.
        Ok(value) => ApiReply::Result(serde_json::to_value(value).unwrap_or(Value::Null)),
        Err(error) => ApiReply::Error(error),
    }
}

async fn call(node: &Node, method: &str, body: &[u8]) -> Result<ApiReply, ApiReply> {
    Ok(match method {
        "publish" => {
            let req: PublishRequest = parse(body)?;
            let options = ServerPublish {
                skip_history: req.skip_history,
                tags: req.tags,
                idempotency_key: req.idempotency_key,
            };
            answer(
                node.publish(&req.channel, req.data, options)
                    .await
                    .map(position_json),
            )
        }
        "broadcast" => {
            let req: BroadcastRequest = parse(body)?;
            let mut responses = Vec::with_capacity(req.channels.len());
            for channel in &req.channels {
                let options = ServerPublish {
                    skip_history: req.skip_history,
                    tags: req.tags.clone(),
                    idempotency_key: req.idempotency_key.clone(),
                };
                let response = match node.publish(channel, req.data.clone(), options).await {
                    Ok(position) => json!({ "result": position_json(position) }),
                    Err(error) => json!({ "error": error }),
                };
                responses.push(response);
            }
            ApiReply::Result(json!({ "responses": responses }))
        }
        "subscribe" => {
            let req: UserChannelRequest = parse(body)?;
            answer(
                node.subscribe_user(
                    &req.user,
                    &req.channel,
                    req.client.as_deref(),
                    req.data.as_ref(),
                )
                .map(|_| json!({})),
            )
        }
        "unsubscribe" => {
            let req: UserChannelRequest = parse(body)?;
            answer(
                node.unsubscribe_user(&req.user, &req.channel, req.client.as_deref())
                    .map(|_| json!({})),
            )
        }
        "disconnect" => {
            let req: DisconnectRequest = parse(body)?;
            if req.user.is_empty() {
                return Err(ApiReply::Error(ClientError::BAD_REQUEST));
            }
            let disconnect = match req.disconnect {
                Some(spec) if !(3000..=4999).contains(&spec.code) => {
                    return Err(ApiReply::Error(ClientError::BAD_REQUEST));
                }
                Some(spec) => Disconnect::custom(spec.code, spec.reason),
                None => Disconnect::FORCE_NO_RECONNECT.into(),
            };
            node.disconnect(&req.user, req.client.as_deref(), disconnect);
            ApiReply::Result(json!({}))
        }
        "presence" => {
            let req: ChannelOnly = parse(body)?;
            answer(node.presence(&req.channel).await.map(|presence| {
                PresenceResult {
                    presence: &presence,
                }
                .to_json()
            }))
        }
        "presence_stats" => {
            let req: ChannelOnly = parse(body)?;
            answer(node.presence_stats(&req.channel).await)
        }
        "history" => {
            let req: HistoryRequest = parse(body)?;
            let filter = history_filter(req.limit, req.since, req.reverse);
            answer(
                node.history(&req.channel, filter)
                    .await
                    .map(|(publications, position)| {
                        HistoryResult {
                            publications: &publications,
                            epoch: &position.epoch,
                            offset: position.offset,
                        }
                        .to_json()
                    }),
            )
        }
        "history_remove" => {
            let req: ChannelOnly = parse(body)?;
            answer(node.remove_history(&req.channel).await.map(|()| json!({})))
        }
        "channels" => {
            let req: ChannelsRequest = parse(body)?;
            let channels: serde_json::Map<String, Value> = node
                .channels()
                .into_iter()
                .filter(|(name, _)| glob_match(&req.pattern, name))
                .map(|(name, count)| (name, json!({ "num_clients": count })))
                .collect();
            ApiReply::Result(json!({ "channels": channels }))
        }
        "info" => ApiReply::Result(json!({ "nodes": [node.info()] })),
        _ => ApiReply::Error(ClientError::METHOD_NOT_FOUND),
    })
}

/// A publish result: `{offset, epoch}`, or `{}` for a publication not kept in history.
fn position_json(position: Option<StreamPosition>) -> Value {
    match position {
        Some(position) => json!({ "offset": position.offset, "epoch": position.epoch }),
        None => json!({}),
    }
}

/// `*` matches any run of characters; an empty pattern matches everything.
fn glob_match(pattern: &str, name: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(found) = rest.find(part) {
            rest = &rest[found + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_patterns() {
        assert!(glob_match("", "anything"));
        assert!(glob_match("chat:*", "chat:room"));
        assert!(!glob_match("chat:*", "news:room"));
        assert!(glob_match("*:room", "chat:room"));
        assert!(glob_match("a*c*e", "abcde"));
        assert!(!glob_match("a*c*e", "abcdf"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"key", b"key"));
        assert!(!constant_time_eq(b"key", b"kez"));
        assert!(!constant_time_eq(b"key", b"keys"));
    }
}
