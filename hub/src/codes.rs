//! The numbered catalogue of what a client can be told went wrong.
//!
//! Three kinds, with the numbers of Centrifugo's client protocol so the official SDKs
//! react correctly (`docs/protocol.md` lists them all):
//! - [`ClientError`]: an error reply to one command; the connection stays open.
//! - [`Disconnect`]: the connection is closed with a WebSocket close code and reason.
//!   3000–3499 tell the SDK to reconnect, 3500–3999 tell it not to.
//! - [`Unsubscribe`]: one subscription ends (pushed as `unsubscribe`); the SDK resubscribes
//!   for codes 2500–2999.

use std::borrow::Cow;

use serde::Serialize;

/// An error reply: `{"id":N,"error":{"code":103,"message":"permission denied"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientError {
    pub code: u32,
    pub message: Cow<'static, str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
}

impl ClientError {
    const fn new(code: u32, message: &'static str, temporary: bool) -> Self {
        ClientError {
            code,
            message: Cow::Borrowed(message),
            temporary,
        }
    }

    /// An application error of an RPC method: codes from 1000 up are the application's
    /// own (`docs/protocol.md` lists rootcast's), the message says what went wrong.
    pub fn application(code: u32, message: impl Into<Cow<'static, str>>) -> Self {
        debug_assert!(code >= 1000, "codes below 1000 are the protocol's");
        ClientError {
            code,
            message: message.into(),
            temporary: false,
        }
    }

    pub const INTERNAL: Self = Self::new(100, "internal server error", true);
    pub const UNAUTHORIZED: Self = Self::new(101, "unauthorized", false);
    pub const UNKNOWN_CHANNEL: Self = Self::new(102, "unknown channel", false);
    pub const PERMISSION_DENIED: Self = Self::new(103, "permission denied", false);
    pub const METHOD_NOT_FOUND: Self = Self::new(104, "method not found", false);
    pub const ALREADY_SUBSCRIBED: Self = Self::new(105, "already subscribed", false);
    pub const LIMIT_EXCEEDED: Self = Self::new(106, "limit exceeded", false);
    pub const BAD_REQUEST: Self = Self::new(107, "bad request", false);
    pub const NOT_AVAILABLE: Self = Self::new(108, "not available", false);
    pub const TOKEN_EXPIRED: Self = Self::new(109, "token expired", false);
    pub const EXPIRED: Self = Self::new(110, "expired", false);
    pub const TOO_MANY_REQUESTS: Self = Self::new(111, "too many requests", true);
    pub const UNRECOVERABLE_POSITION: Self = Self::new(112, "unrecoverable position", false);
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ClientError {}

/// Why the server closes a connection: sent as the WebSocket close code and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disconnect {
    pub code: u16,
    pub reason: &'static str,
}

impl Disconnect {
    const fn new(code: u16, reason: &'static str) -> Self {
        Disconnect { code, reason }
    }

    /// Whether the SDK will reconnect after this disconnect.
    pub fn reconnect(&self) -> bool {
        matches!(self.code, 3000..=3499 | 4000..=4499)
    }

    pub const SHUTDOWN: Self = Self::new(3001, "shutdown");
    pub const SERVER_ERROR: Self = Self::new(3004, "internal server error");
    pub const EXPIRED: Self = Self::new(3005, "connection expired");
    pub const SUBSCRIPTION_EXPIRED: Self = Self::new(3006, "subscription expired");
    pub const SLOW: Self = Self::new(3008, "slow");
    pub const WRITE_ERROR: Self = Self::new(3009, "write error");
    pub const INSUFFICIENT_STATE: Self = Self::new(3010, "insufficient state");
    pub const FORCE_RECONNECT: Self = Self::new(3011, "force reconnect");
    pub const NO_PONG: Self = Self::new(3012, "no pong");
    pub const TOO_MANY_REQUESTS: Self = Self::new(3013, "too many requests");
    pub const INVALID_TOKEN: Self = Self::new(3500, "invalid token");
    pub const BAD_REQUEST: Self = Self::new(3501, "bad request");
    pub const STALE: Self = Self::new(3502, "stale");
    pub const FORCE_NO_RECONNECT: Self = Self::new(3503, "force disconnect");
    pub const CONNECTION_LIMIT: Self = Self::new(3504, "connection limit");
    pub const CHANNEL_LIMIT: Self = Self::new(3505, "channel limit");
    pub const PERMISSION_DENIED: Self = Self::new(3507, "permission denied");
    /// The account was disabled or the room credential revoked while connected (or the
    /// token outlived them).
    pub const ACCESS_REVOKED: Self = Self::new(3508, "access revoked");

    /// A disconnect with a code and reason chosen through the server API.
    pub fn custom(code: u16, reason: String) -> CustomDisconnect {
        CustomDisconnect { code, reason }
    }
}

/// A disconnect requested through the server API, with any code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDisconnect {
    pub code: u16,
    pub reason: String,
}

impl From<Disconnect> for CustomDisconnect {
    fn from(d: Disconnect) -> Self {
        CustomDisconnect {
            code: d.code,
            reason: d.reason.to_owned(),
        }
    }
}

/// Why one subscription ended: `{"push":{"channel":"c","unsubscribe":{"code":2000,…}}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Unsubscribe {
    pub code: u32,
    pub reason: &'static str,
}

impl Unsubscribe {
    pub const SERVER: Self = Unsubscribe {
        code: 2000,
        reason: "server unsubscribe",
    };
    pub const INSUFFICIENT_STATE: Self = Unsubscribe {
        code: 2500,
        reason: "insufficient state",
    };
    pub const EXPIRED: Self = Unsubscribe {
        code: 2501,
        reason: "subscription expired",
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_follows_code_ranges() {
        assert!(Disconnect::SLOW.reconnect());
        assert!(Disconnect::SHUTDOWN.reconnect());
        assert!(!Disconnect::INVALID_TOKEN.reconnect());
        assert!(!Disconnect::BAD_REQUEST.reconnect());
    }

    #[test]
    fn error_serializes_like_centrifugo() {
        let json = serde_json::to_string(&ClientError::TOO_MANY_REQUESTS).unwrap();
        assert_eq!(
            json,
            r#"{"code":111,"message":"too many requests","temporary":true}"#
        );
        let json = serde_json::to_string(&ClientError::PERMISSION_DENIED).unwrap();
        assert_eq!(json, r#"{"code":103,"message":"permission denied"}"#);
    }
}
