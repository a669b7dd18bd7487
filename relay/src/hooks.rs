//! What the relay asks of its host and tells it, without depending on it: the
//! [`StreamAuth`] check run on every WHIP/WHEP `POST`, and the [`StreamEvents`] reports
//! (stream live/ended, viewer counts) the driver makes.
//!
//! The relay crate knows nothing of the hub. The `rootcast` binary implements both traits
//! (`src/relay_link.rs`: hub-issued JWTs, publications on `sys:relay`) and passes them to
//! [`crate::start_with`]. [`crate::start`] uses [`RelayHooks::for_config`]: allow-all when
//! `require_token` is off, reject-all when it is on (nothing here can verify a token), and
//! no events.

use std::fmt;
use std::sync::Arc;

use crate::config::RelayConfig;

/// What a token is asked to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// WHIP: send media into the stream.
    Publish,
    /// WHEP: receive the stream.
    View,
}

impl Access {
    /// `"publish"` or `"view"`, as in the hub's token claim.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Publish => "publish",
            Access::View => "view",
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRejection {
    /// 401: no token, or one that is malformed, forged or expired.
    Unauthorized(String),
    /// 403: a valid token that does not grant this access to this stream.
    Forbidden(String),
}

impl AuthRejection {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            AuthRejection::Unauthorized(_) => 401,
            AuthRejection::Forbidden(_) => 403,
        }
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthRejection::Unauthorized(why) | AuthRejection::Forbidden(why) => f.write_str(why),
        }
    }
}

/// Decides whether a WHIP/WHEP `POST` may go ahead. Called on the HTTP task for every
/// offer, before the SDP is read: keep it cheap and never block (a JWT check is fine).
pub trait StreamAuth: Send + Sync {
    /// `bearer` is the token of `Authorization: Bearer <token>` (trimmed, non-empty), or
    /// `None` when the header is missing, empty or not a bearer token.
    fn authorize(
        &self,
        access: Access,
        stream: &str,
        bearer: Option<&str>,
    ) -> Result<(), AuthRejection>;
}

/// What the relay reports about its streams. Called **on the driver task**, which forwards
/// every packet: an implementation must return at once (queue the work, never block or
/// await) and must not panic.
///
/// Order per stream: `stream_live` when the publisher's ICE and DTLS are up;
/// `viewer_count` (connected WHEP sessions) at most every 500 ms per stream, the last
/// value always reported, and any pending count flushed before `stream_ended`;
/// `stream_ended` when that publisher leaves (viewers may stay and wait for the next one).
pub trait StreamEvents: Send + Sync {
    /// The stream's publisher is connected: media is flowing.
    fn stream_live(&self, stream: &str);
    /// The stream's publisher left.
    fn stream_ended(&self, stream: &str);
    /// The number of connected viewers changed (coalesced).
    fn viewer_count(&self, stream: &str, viewers: usize);
}

/// Allows everything, token or not (`require_token = false`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl StreamAuth for AllowAll {
    fn authorize(&self, _: Access, _: &str, _: Option<&str>) -> Result<(), AuthRejection> {
        Ok(())
    }
}

/// Refuses everything with 401: `require_token = true` with no verifier installed.
#[derive(Debug, Clone, Copy, Default)]
pub struct RejectAll;

impl StreamAuth for RejectAll {
    fn authorize(&self, _: Access, _: &str, _: Option<&str>) -> Result<(), AuthRejection> {
        Err(AuthRejection::Unauthorized(
            "this relay requires a token but has no way to check one".to_owned(),
        ))
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl StreamEvents for NoEvents {
    fn stream_live(&self, _: &str) {}
    fn stream_ended(&self, _: &str) {}
    fn viewer_count(&self, _: &str, _: usize) {}
}

/// The host's hooks, handed to [`crate::start_with`].
#[derive(Clone)]
pub struct RelayHooks {
    /// The token check for every `POST`.
    pub auth: Arc<dyn StreamAuth>,
    /// Where live/ended/viewer-count reports go.
    pub events: Arc<dyn StreamEvents>,
}

impl RelayHooks {
    /// The defaults for a relay on its own: [`AllowAll`] when `require_token` is off,
    /// [`RejectAll`] when it is on; [`NoEvents`].
    pub fn for_config(config: &RelayConfig) -> RelayHooks {
        let auth: Arc<dyn StreamAuth> = if config.require_token {
            Arc::new(RejectAll)
        } else {
            Arc::new(AllowAll)
        };
        RelayHooks {
            auth,
            events: Arc::new(NoEvents),
        }
    }
}

impl fmt::Debug for RelayHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RelayHooks { .. }")
    }
}
