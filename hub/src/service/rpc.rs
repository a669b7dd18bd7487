//! The RPC door to the services: methods a logged-in client calls over its own
//! WebSocket (`{"rpc":{"method":"directive.ack","data":{…}}}`), the same operations as
//! the REST routes with the same JSON. The caller is the connection's user; errors are
//! replies with code 1000 + the HTTP status of the REST twin (1401, 1403, 1404, …).

use std::future::Future;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::directives::{AckRequest, CorrectRequest, RetractRequest, SendRequest, UnitStep};
use super::feedback::{ListRequest, OpenRequest};
use super::{ServiceError, Services, views};
use crate::auth::Principal;
use crate::codes::ClientError;
use crate::node::Node;
use crate::protocol::RawJson;
use crate::rpc::{RpcCaller, RpcRegistry};

/// Registers every method of the services in `registry`.
pub fn register(services: &Arc<Services>, registry: &mut RpcRegistry) {
    method(
        services,
        registry,
        "me",
        |s, _node, who, _: Empty| async move { s.me(&who).await },
    );
    method(
        services,
        registry,
        "org.units",
        |s, _node, who, _: Empty| async move {
            let units = s.visible_units(&who).await?;
            Ok(Value::Array(units.iter().map(views::unit).collect()))
        },
    );
    method(
        services,
        registry,
        "directive.list",
        |s, _node, who, _: Empty| async move { s.list_directives(&who).await },
    );
    method(
        services,
        registry,
        "directive.send",
        |s, node, who, request: SendRequest| async move {
            Ok(s.send_directive(&node, &who, request).await?.into_value())
        },
    );
    method(
        services,
        registry,
        "directive.scheduled",
        |s, _node, who, _: Empty| async move { s.list_scheduled(&who).await },
    );
    method(
        services,
        registry,
        "directive.cancel_scheduled",
        |s, _node, who, request: IdRequest| async move {
            s.cancel_scheduled(&who, &request.directive).await
        },
    );
    method(
        services,
        registry,
        "directive.dashboard",
        |s, _node, who, request: DashboardRequest| async move {
            s.dashboard(&who, &request.directive, request.root.as_deref())
                .await
        },
    );
    method(
        services,
        registry,
        "inbox.list",
        |s, _node, who, request: InboxRequest| async move {
            s.inbox(&who, request.unit.as_deref(), request.after).await
        },
    );
    method(
        services,
        registry,
        "directive.versions",
        |s, _node, who, request: IdRequest| async move {
            s.directive_versions(&who, &request.directive).await
        },
    );
    method(
        services,
        registry,
        "directive.correct",
        |s, node, who, request: CorrectCall| async move {
            s.correct_directive(&node, &who, &request.directive, request.correction)
                .await
        },
    );
    method(
        services,
        registry,
        "directive.retract",
        |s, node, who, request: RetractCall| async move {
            let retraction = RetractRequest { note: request.note };
            s.retract_directive(&node, &who, &request.directive, retraction)
                .await
        },
    );
    method(
        services,
        registry,
        "feedback.open",
        |s, node, who, request: OpenRequest| async move { s.open_feedback(&node, &who, request).await },
    );
    method(
        services,
        registry,
        "feedback.list",
        |s, _node, who, request: ListRequest| async move { s.list_feedback(&who, request).await },
    );
    method(
        services,
        registry,
        "feedback.get",
        |s, _node, who, request: ThreadRequest| async move {
            s.get_feedback(&who, &request.thread).await
        },
    );
    method(
        services,
        registry,
        "feedback.post",
        |s, node, who, request: ThreadMessage| async move {
            s.post_feedback(&node, &who, &request.thread, &request.body)
                .await
        },
    );
    method(
        services,
        registry,
        "feedback.close",
        |s, node, who, request: ThreadRequest| async move {
            s.close_feedback(&node, &who, &request.thread).await
        },
    );
    for (name, step) in [
        ("directive.receipt", UnitStep::Receipt),
        ("directive.read", UnitStep::Read),
        ("directive.ack", UnitStep::Acknowledge),
    ] {
        method(
            services,
            registry,
            name,
            move |s, node, who, request: StepRequest| async move {
                let unit = AckRequest {
                    unit: request.unit,
                    version: request.version,
                };
                s.unit_step(&node, &who, &request.directive, unit, step)
                    .await
            },
        );
    }
    super::meetings::register_rpc(services, registry);
    super::chat::register_rpc(services, registry);
    super::recordings::register_rpc(services, registry);
}

/// Data of a method that takes none (absent, `null` or `{}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdRequest {
    directive: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardRequest {
    directive: String,
    #[serde(default)]
    root: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxRequest {
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    after: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    directive: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    version: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadRequest {
    thread: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThreadMessage {
    thread: String,
    body: String,
}

#[derive(Deserialize)]
struct CorrectCall {
    directive: String,
    #[serde(flatten)]
    correction: CorrectRequest,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetractCall {
    directive: String,
    #[serde(default)]
    note: String,
}

/// Registers one method: parse the data into `R`, resolve the caller, run `handler`, and
/// turn the outcome into an RPC reply.
pub(super) fn method<R, F, Fut>(
    services: &Arc<Services>,
    registry: &mut RpcRegistry,
    name: &str,
    handler: F,
) where
    R: DeserializeOwned + Send + 'static,
    F: Fn(Arc<Services>, Arc<Node>, Principal, R) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, ServiceError>> + Send + 'static,
{
    let services = services.clone();
    registry.register(name, move |caller: RpcCaller, data: RawJson| {
        let services = services.clone();
        let handler = handler.clone();
        async move {
            let request: R = parse(&data).map_err(|e| e.to_client_error())?;
            let who = services
                .principal(&caller.user)
                .await
                .map_err(|e| e.to_client_error())?;
            let result = handler(services, caller.node, who, request)
                .await
                .map_err(|e| e.to_client_error())?;
            encode(&result)
        }
    });
}

fn parse<R: DeserializeOwned>(data: &RawJson) -> Result<R, ServiceError> {
    // Absent data arrives as `null`; let methods without parameters accept it.
    let text = match data.get() {
        "null" => "{}",
        other => other,
    };
    serde_json::from_str(text)
        .map_err(|error| ServiceError::BadRequest(format!("bad data: {error}")))
}

fn encode(value: &Value) -> Result<Option<RawJson>, ClientError> {
    serde_json::value::RawValue::from_string(value.to_string())
        .map(Some)
        .map_err(|_| ClientError::INTERNAL)
}
