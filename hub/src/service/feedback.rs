//! Feedback as people use it: a unit replies to a directive or raises a problem; the
//! thread reaches headquarters and the unit's parent at the same moment (flat, not relayed
//! level by level); either side answers in the thread; it is open, answered or closed.
//!
//! Who sees a thread: an admin; a moderator whose subtree holds the unit; the people of
//! the unit and of its parent. Who writes in it: the same people (a moderator or admin
//! writes for headquarters, an officer of the parent for the parent). Each event is pushed
//! as `{"type":"feedback","event":"opened"|"message"|"closed","thread":…,"message":…}` on
//! the `unit:` channels of the unit, its parent and the root (headquarters).

use serde::Deserialize;
use serde_json::{Value, json};

use super::directives::publish;
use super::{ServiceError, Services, now_ms, unit_channel};
use crate::auth::{Principal, Role};
use crate::directive::feedback::{FeedbackKind, Status};
use crate::node::Node;
use crate::org::tree::path_ids;
use crate::store::{FeedbackMessage, FeedbackThread, NewThread, ThreadFilter};

/// A new thread, as the unit writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// The caller's own unit when omitted.
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub directive: Option<String>,
    /// `reply` or `problem`.
    pub kind: String,
    #[serde(default)]
    pub subject: String,
    pub body: String,
}

/// Which threads to list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub directive: Option<String>,
}

impl Services {
    /// Opens a thread for the caller's unit (only its own people open threads for it).
    pub async fn open_feedback(
        &self,
        node: &Node,
        who: &Principal,
        request: OpenRequest,
    ) -> Result<Value, ServiceError> {
        let unit = request
            .unit
            .or_else(|| who.unit.clone())
            .ok_or_else(|| ServiceError::BadRequest("name the unit the feedback is from".into()))?;
        if !matches!(who.role, Role::Officer | Role::Member) || who.unit.as_deref() != Some(&unit) {
            return Err(ServiceError::Forbidden(format!(
                "only the people of unit {unit:?} write feedback for it"
            )));
        }
        let kind = FeedbackKind::parse(&request.kind)
            .map_err(|error| ServiceError::Unprocessable(error.to_string()))?;
        let new = NewThread {
            unit,
            directive: request.directive,
            kind,
            subject: request.subject,
            body: request.body,
            author: who.account_id.clone(),
        };
        let thread = self.store.open_thread(&new, now_ms()).await?;
        let messages = self.store.feedback_messages(&thread.id).await?;
        let message = messages.first().map(message_view);
        self.announce_feedback(node, &thread, "opened", message.as_ref())
            .await;
        Ok(json!({
            "thread": thread_view(&thread),
            "messages": messages.iter().map(message_view).collect::<Vec<_>>(),
        }))
    }

    /// The threads the caller may see, filtered by status and directive.
    pub async fn list_feedback(
        &self,
        who: &Principal,
        request: ListRequest,
    ) -> Result<Value, ServiceError> {
        let status = match request.status.as_deref() {
            Some(text) => Some(
                Status::parse(text).map_err(|error| ServiceError::BadRequest(error.to_string()))?,
            ),
            None => None,
        };
        let base = ThreadFilter {
            directive: request.directive,
            status,
            ..ThreadFilter::default()
        };
        let threads = match (who.role, &who.unit) {
            (Role::Admin, _) => self.store.feedback_threads(&base).await?,
            (Role::Moderator, Some(root)) => {
                self.store
                    .feedback_threads(&ThreadFilter {
                        subtree: Some(root.clone()),
                        ..base
                    })
                    .await?
            }
            (Role::Officer | Role::Member, Some(unit)) => {
                let mut own = self
                    .store
                    .feedback_threads(&ThreadFilter {
                        unit: Some(unit.clone()),
                        ..base.clone()
                    })
                    .await?;
                own.extend(
                    self.store
                        .feedback_threads(&ThreadFilter {
                            parent: Some(unit.clone()),
                            ..base
                        })
                        .await?,
                );
                own.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(a.id.cmp(&b.id)));
                own
            }
            _ => Vec::new(),
        };
        Ok(Value::Array(threads.iter().map(thread_view).collect()))
    }

    /// One thread with its messages.
    pub async fn get_feedback(&self, who: &Principal, id: &str) -> Result<Value, ServiceError> {
        let thread = self.visible_thread(who, id).await?;
        let messages = self.store.feedback_messages(id).await?;
        Ok(json!({
            "thread": thread_view(&thread),
            "messages": messages.iter().map(message_view).collect::<Vec<_>>(),
        }))
    }

    /// Writes in a thread: the unit, its parent's people, or headquarters.
    pub async fn post_feedback(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        body: &str,
    ) -> Result<Value, ServiceError> {
        let thread = self.visible_thread(who, id).await?;
        // The unit the author speaks for: their own (the unit or its parent), none for
        // headquarters (an admin or a moderator).
        let author_unit = match who.role {
            Role::Admin | Role::Moderator => None,
            _ => who.unit.as_deref(),
        };
        let (thread, message) = self
            .store
            .post_feedback(&thread.id, &who.account_id, author_unit, body, now_ms())
            .await?;
        let view = message_view(&message);
        self.announce_feedback(node, &thread, "message", Some(&view))
            .await;
        Ok(json!({"thread": thread_view(&thread), "message": view}))
    }

    /// Closes a thread.
    pub async fn close_feedback(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        self.visible_thread(who, id).await?;
        let thread = self
            .store
            .close_thread(id, &who.account_id, now_ms())
            .await?;
        self.announce_feedback(node, &thread, "closed", None).await;
        Ok(json!({"thread": thread_view(&thread)}))
    }

    /// The thread, when `who` may see it; 404 otherwise (its existence is not told).
    async fn visible_thread(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<FeedbackThread, ServiceError> {
        let thread = self.store.require_thread(id).await?;
        let visible = match (who.role, &who.unit, &who.unit_path) {
            (Role::Admin, _, _) => true,
            (Role::Moderator, _, Some(path)) => thread.unit_path.starts_with(path.as_str()),
            (Role::Officer | Role::Member, Some(unit), _) => {
                &thread.unit_id == unit || thread.parent_id.as_ref() == Some(unit)
            }
            _ => false,
        };
        if visible {
            Ok(thread)
        } else {
            Err(ServiceError::NotFound(format!(
                "feedback thread {id:?} does not exist"
            )))
        }
    }

    /// Pushes a thread's event to the unit, its parent and headquarters at once.
    async fn announce_feedback(
        &self,
        node: &Node,
        thread: &FeedbackThread,
        event: &str,
        message: Option<&Value>,
    ) {
        let push = json!({
            "type": "feedback",
            "event": event,
            "thread": thread_view(thread),
            "message": message,
        });
        let mut channels = vec![thread.unit_id.as_str()];
        channels.extend(thread.parent_id.as_deref());
        channels.extend(path_ids(&thread.unit_path).first().copied());
        channels.sort_unstable();
        channels.dedup();
        for unit in channels {
            publish(node, &unit_channel(unit), &push).await;
        }
    }
}

fn thread_view(thread: &FeedbackThread) -> Value {
    json!({
        "id": thread.id,
        "unit_id": thread.unit_id,
        "parent_id": thread.parent_id,
        "directive_id": thread.directive_id,
        "kind": thread.kind.as_str(),
        "subject": thread.subject,
        "status": thread.status.as_str(),
        "opened_by": thread.opened_by,
        "opened_at": thread.opened_at,
        "updated_at": thread.updated_at,
        "closed_by": thread.closed_by,
        "closed_at": thread.closed_at,
    })
}

fn message_view(message: &FeedbackMessage) -> Value {
    json!({
        "number": message.number,
        "author": message.author,
        "author_unit": message.author_unit,
        "body": message.body,
        "at": message.at,
    })
}
