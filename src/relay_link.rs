//! The hub side of the relay: the token check the relay asks for ([`HubStreamAuth`]) and
//! where its reports go ([`HubEvents`], the channel `sys:relay`). The relay crate knows
//! nothing of the hub; this module is the glue, built once by [`hooks`].
//!
//! **Relay tokens** are hub JWTs (checked by the hub's [`TokenVerifier`]: HS256/384/512
//! with `client.token.hmac_secret_key`, or RS/PS/ES with the configured public keys; `exp`,
//! and `aud`/`iss` when configured) carrying one extra claim:
//!
//! ```json
//! { "sub": "camera-7", "exp": 1767225600,
//!   "rootcast_stream": { "stream": "town-hall", "access": ["publish"] } }
//! ```
//!
//! `stream` is a stream name or `"*"` (any stream); `access` lists `"publish"` (WHIP)
//! and/or `"view"` (WHEP). No token, or a malformed, forged or expired one: 401. A valid
//! token without the claim, for another stream, or without the access asked for: 403.
//! `rootcast token --user U --stream NAME --access publish|view` mints one.
//!
//! **Reports** on `sys:relay` (namespace `sys`: anyone may subscribe, nobody may publish):
//! `{"stream":"town-hall","state":"live","viewers":3}` — `state` is `live` while the
//! publisher is connected, `ended` otherwise; one publication when a stream goes live, when
//! it ends, and when its connected-viewer count changes (the relay coalesces counts to at
//! most one per 500 ms per stream).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rootcast_config::Config;
use rootcast_hub::token::{TokenError, TokenVerifier};
use rootcast_hub::{Node, ServerPublish};
use rootcast_relay::{Access, AllowAll, AuthRejection, RelayHooks, StreamAuth, StreamEvents};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The channel the relay's reports are published on.
pub const RELAY_CHANNEL: &str = "sys:relay";
/// The JWT claim that grants relay access.
pub const STREAM_CLAIM: &str = "rootcast_stream";
/// Reports waiting to be published; past this they are dropped (with a warning).
const QUEUE: usize = 1024;

/// The relay's hooks for this process: the hub's token check when `relay.require_token` is
/// on (allow-all otherwise), and reports on [`RELAY_CHANNEL`]. Spawns the publishing task:
/// call it inside the runtime.
pub fn hooks(config: &Config, node: Arc<Node>) -> anyhow::Result<RelayHooks> {
    let auth: Arc<dyn StreamAuth> = if config.relay.require_token {
        Arc::new(HubStreamAuth::new(
            TokenVerifier::new(&config.client.token).context("relay token verifier")?,
        ))
    } else {
        Arc::new(AllowAll)
    };
    Ok(RelayHooks {
        auth,
        events: Arc::new(HubEvents::spawn(node)),
    })
}

/// The claims of a relay token for `user`, `stream` and `access` (`publish` or `view`).
pub fn stream_claims(user: &str, ttl: u64, stream: &str, access: &str) -> anyhow::Result<Value> {
    let mut claims = json!({
        "sub": user,
        STREAM_CLAIM: { "stream": stream, "access": [access] },
    });
    if ttl > 0 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        claims["exp"] = (now.as_secs() + ttl).into();
    }
    Ok(claims)
}

/// Signs a relay token with the HMAC secret (`rootcast token --stream … --access …`).
pub fn issue_stream_token(
    secret: &str,
    user: &str,
    ttl: u64,
    stream: &str,
    access: &str,
) -> anyhow::Result<String> {
    let claims = stream_claims(user, ttl, stream, access)?;
    Ok(rootcast_hub::token::issue_hs256(secret, &claims)?)
}

/// Checks relay tokens with the hub's verifier and the [`STREAM_CLAIM`].
pub struct HubStreamAuth {
    verifier: TokenVerifier,
}

impl HubStreamAuth {
    /// A check with these keys.
    pub fn new(verifier: TokenVerifier) -> HubStreamAuth {
        HubStreamAuth { verifier }
    }
}

impl StreamAuth for HubStreamAuth {
    fn authorize(
        &self,
        access: Access,
        stream: &str,
        bearer: Option<&str>,
    ) -> Result<(), AuthRejection> {
        let token = bearer.ok_or_else(|| {
            AuthRejection::Unauthorized(
                "a token is required (Authorization: Bearer <token>)".to_owned(),
            )
        })?;
        // Signature, algorithm, exp (and aud/iss when configured); then the claim.
        let claims = self.verifier.claims(token).map_err(|e| match e {
            TokenError::Expired => AuthRejection::Unauthorized("the token expired".to_owned()),
            TokenError::Invalid(why) => {
                AuthRejection::Unauthorized(format!("invalid token: {why}"))
            }
        })?;
        check_stream_claim(&claims, access, stream)
    }
}

/// Whether the claims grant `access` to `stream`.
fn check_stream_claim(claims: &Value, access: Access, stream: &str) -> Result<(), AuthRejection> {
    let forbidden = |why: String| Err(AuthRejection::Forbidden(why));
    let Some(grant) = claims.get(STREAM_CLAIM) else {
        return forbidden(format!(
            "the token grants no relay access (no {STREAM_CLAIM} claim)"
        ));
    };
    let (Some(granted_stream), Some(accesses)) = (
        grant.get("stream").and_then(Value::as_str),
        grant.get("access").and_then(Value::as_array),
    ) else {
        return forbidden(format!(
            "the {STREAM_CLAIM} claim needs \"stream\" (a name or \"*\") and \"access\" (a list)"
        ));
    };
    if granted_stream != "*" && granted_stream != stream {
        return forbidden(format!(
            "the token is for stream {granted_stream:?}, not {stream:?}"
        ));
    }
    if !accesses.iter().any(|a| a.as_str() == Some(access.as_str())) {
        return forbidden(format!(
            "the token does not allow {} on this stream",
            access.as_str()
        ));
    }
    Ok(())
}

/// Publishes the relay's reports on [`RELAY_CHANNEL`], in order, from one task.
pub struct HubEvents {
    tx: mpsc::Sender<Value>,
    /// Per stream: whether it is live, and its viewers (each report carries both).
    state: Mutex<HashMap<String, (bool, usize)>>,
}

impl HubEvents {
    /// Starts the publishing task on the current runtime.
    pub fn spawn(node: Arc<Node>) -> HubEvents {
        let (tx, mut rx) = mpsc::channel::<Value>(QUEUE);
        tokio::spawn(async move {
            while let Some(report) = rx.recv().await {
                let Ok(data) = serde_json::value::to_raw_value(&report) else {
                    continue;
                };
                if let Err(error) = node
                    .publish(RELAY_CHANNEL, data, ServerPublish::default())
                    .await
                {
                    tracing::warn!(?error, "relay report not published on {RELAY_CHANNEL}");
                }
            }
        });
        HubEvents {
            tx,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Updates a stream's state and queues its report (never blocks: the relay's driver
    /// calls this).
    fn report(&self, stream: &str, update: impl FnOnce(&mut (bool, usize))) {
        let (live, viewers) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let entry = state.entry(stream.to_owned()).or_insert((false, 0));
            update(entry);
            let now = *entry;
            // Bounded: a stream that is neither live nor watched is forgotten.
            if !now.0 && now.1 == 0 {
                state.remove(stream);
            }
            now
        };
        let report = json!({
            "stream": stream,
            "state": if live { "live" } else { "ended" },
            "viewers": viewers,
        });
        if self.tx.try_send(report).is_err() {
            tracing::warn!(
                stream,
                "relay report dropped: the {RELAY_CHANNEL} queue is full"
            );
        }
    }
}

impl StreamEvents for HubEvents {
    fn stream_live(&self, stream: &str) {
        self.report(stream, |s| s.0 = true);
    }

    fn stream_ended(&self, stream: &str) {
        self.report(stream, |s| s.0 = false);
    }

    fn viewer_count(&self, stream: &str, viewers: usize) {
        self.report(stream, |s| s.1 = viewers);
    }
}

#[cfg(test)]
mod tests {
    use rootcast_config::TokenConfig;

    use super::*;

    fn auth() -> HubStreamAuth {
        HubStreamAuth::new(
            TokenVerifier::new(&TokenConfig {
                hmac_secret_key: "s3cret".into(),
                ..TokenConfig::default()
            })
            .unwrap(),
        )
    }

    fn status(r: Result<(), AuthRejection>) -> u16 {
        r.map(|()| 201).unwrap_or_else(|e| e.status())
    }

    #[test]
    fn stream_tokens_are_checked_for_stream_and_access() {
        let a = auth();
        let publish = issue_stream_token("s3cret", "cam", 60, "hall", "publish").unwrap();
        let view = issue_stream_token("s3cret", "tv", 60, "hall", "view").unwrap();
        let any = issue_stream_token("s3cret", "ops", 60, "*", "publish").unwrap();
        let forged = issue_stream_token("other", "cam", 60, "hall", "publish").unwrap();
        let plain = rootcast_hub::token::issue_hs256("s3cret", &json!({"sub": "u"})).unwrap();
        let expired = rootcast_hub::token::issue_hs256(
            "s3cret",
            &json!({"sub": "u", "exp": 1, STREAM_CLAIM: {"stream": "hall", "access": ["publish"]}}),
        )
        .unwrap();
        let odd = rootcast_hub::token::issue_hs256(
            "s3cret",
            &json!({"sub": "u", STREAM_CLAIM: {"stream": "hall", "access": "publish"}}),
        )
        .unwrap();
        let p = Access::Publish;
        let v = Access::View;
        assert_eq!(status(a.authorize(p, "hall", Some(&publish))), 201);
        assert_eq!(status(a.authorize(v, "hall", Some(&publish))), 403);
        assert_eq!(status(a.authorize(p, "lobby", Some(&publish))), 403);
        assert_eq!(status(a.authorize(v, "hall", Some(&view))), 201);
        assert_eq!(status(a.authorize(p, "hall", Some(&view))), 403);
        assert_eq!(status(a.authorize(p, "anything", Some(&any))), 201);
        assert_eq!(status(a.authorize(p, "hall", Some(&forged))), 401);
        assert_eq!(status(a.authorize(p, "hall", Some(&plain))), 403);
        assert_eq!(status(a.authorize(p, "hall", Some(&expired))), 401);
        assert_eq!(status(a.authorize(p, "hall", Some(&odd))), 403);
        assert_eq!(status(a.authorize(p, "hall", Some("garbage"))), 401);
        assert_eq!(status(a.authorize(p, "hall", None)), 401);
    }
}
