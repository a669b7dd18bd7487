//! The hub's HTTP surface and its run loop: the WebSocket endpoint, the server API,
//! `/metrics`, `/health`, and graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::node::{Node, ServerPublish};
use crate::{api, connection};

/// Largest server API request body.
const API_BODY_LIMIT: usize = 1024 * 1024;
/// Channel where the node publishes its live numbers every second (when the `sys`
/// namespace is configured).
pub const STATS_CHANNEL: &str = "sys:stats";

/// Routes of the hub: `/connection/websocket`, `/api/{method}`, `/metrics`, `/health`.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/connection/websocket", get(websocket))
        .route(
            "/api/{method}",
            post(api::handle).layer(DefaultBodyLimit::max(API_BODY_LIMIT)),
        )
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(node)
}

async fn websocket(
    State(node): State<Arc<Node>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&node.config().client.allowed_origins, &headers) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    if node.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let client = &node.config().client;
    upgrade
        // Small buffers: an idle connection should cost a few KiB, not the 128 KiB of
        // tungstenite's defaults. Output is queued (and capped) in our own queue. The read
        // buffer is small too because tungstenite zero-fills its free part on every read
        // poll (measured: 3 % of fan-out CPU at 4 KiB); client commands are small, and a
        // larger message just takes more reads.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(client.message_size_limit)
        .max_frame_size(client.message_size_limit)
        .on_upgrade(move |socket| connection::serve(node, socket))
}

/// Same-origin requests and requests without an `Origin` header are always allowed;
/// others need their origin listed (or `*`).
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if allowed.iter().any(|a| a == "*" || a == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    host.is_some() && origin_host == host
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    node.metrics.channels.set(node.channels().len() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        node.metrics.encode(),
    )
        .into_response()
}

async fn health(State(node): State<Arc<Node>>) -> Response {
    if node.is_shutting_down() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "shutting down"})),
        )
            .into_response()
    } else {
        axum::Json(serde_json::json!({"status": "ok"})).into_response()
    }
}

/// Binds a listener with a backlog deep enough for reconnect storms (`somaxconn` is
/// 4096 on the machines we measure on; tokio's default backlog is 128).
pub fn bind(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match address {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(4096)
}

/// Serves `app` on `listener` until `shutdown` resolves, then closes every client
/// connection with 3001 "shutdown" and waits up to `http.shutdown_timeout` for them to
/// go. Returns once everything is closed or the timeout passed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stats = tokio::spawn(publish_stats(node.clone()));
    let drain_node = node.clone();
    // `axum::serve(listener, app)` would clone the router's route table for every
    // connection (axum 0.8 makes each connection its own `with_state(())` copy of a shared
    // router): measured at ≈ 20 % of the server's CPU in a reconnect storm. Resolving the
    // state once and serving clones of that (an `Arc` each) does the same work once.
    let app = app.with_state(()).into_make_service();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            drain_node.begin_shutdown();
        })
        .await?;
    stats.abort();
    let deadline = tokio::time::Instant::now() + node.config().http.shutdown_timeout;
    while node.connection_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = node.connection_count();
    if left > 0 {
        tracing::warn!(left, "shutdown timeout passed with connections still open");
    }
    Ok(())
}

/// Publishes the node's numbers on [`STATS_CHANNEL`] every second, if the `sys`
/// namespace exists.
async fn publish_stats(node: Arc<Node>) {
    if node.namespace(STATS_CHANNEL).is_err() {
        return;
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let info = node.info();
        let stats = serde_json::json!({
            "node": info.name,
            "version": info.version,
            "uptime_secs": info.uptime,
            "connections": node.connection_count(),
            "users": info.num_users,
            "channels": info.num_channels,
            "subscriptions": info.num_subs,
            "messages_in": node.metrics.messages_in.get(),
            "messages_out": node.metrics.messages_out.get(),
        });
        let Ok(data) = serde_json::value::to_raw_value(&stats) else {
            continue;
        };
        let options = ServerPublish {
            skip_history: true,
            ..Default::default()
        };
        if let Err(error) = node.publish(STATS_CHANNEL, data, options).await {
            tracing::warn!(%error, "stats publish failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn origin_rules() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed(&none, &headers(None, "h:1")));
        assert!(origin_allowed(&none, &headers(Some("http://h:1"), "h:1")));
        assert!(!origin_allowed(&none, &headers(Some("http://evil"), "h:1")));
        let listed = vec!["http://app".to_string()];
        assert!(origin_allowed(&listed, &headers(Some("http://app"), "h:1")));
        assert!(origin_allowed(
            &["*".to_string()],
            &headers(Some("http://x"), "h:1")
        ));
    }
}
