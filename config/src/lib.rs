//! rootcast's typed configuration.
//!
//! One [`Config`] struct holds every setting with its default; a TOML file overrides the
//! defaults, `ROOTCAST_…` environment variables override the file, and command-line flags
//! override both. Unknown keys are rejected with the key named. [`Config::validate`]
//! explains every rejection. The commented sample lives in `config/rootcast.example.toml`.
//!
//! Where Centrifugo has an option for the same thing, the option here has the same meaning
//! (and usually the same name), so operators can carry their knowledge over.

use std::time::Duration;

use serde::Deserialize;

mod duration;

/// The whole configuration of one `rootcast` process.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub log: LogConfig,
    pub client: ClientConfig,
    pub http_api: HttpApiConfig,
    pub channel: ChannelConfig,
}

/// The HTTP listener that serves the WebSocket endpoint, the server API, metrics and the
/// web pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, `host:port`. Default `127.0.0.1:8000`.
    pub address: String,
    /// How long shutdown waits for connections to drain before it gives up. Default 5s.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter directive, e.g. `info` or `rootcast_hub=debug,info`.
    pub level: String,
    pub format: LogFormat,
}

/// Settings for client (SDK) connections.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    pub token: TokenConfig,
    /// Connections without a token are accepted as anonymous (user ID ""). What they may
    /// do is still decided per namespace (`allow_subscribe_for_anonymous`, …).
    pub allow_anonymous_connect_without_token: bool,
    /// Interval between server pings (`{}` frames). Default 25s.
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    /// How long the server waits for the client's pong after a ping. Default 8s.
    #[serde(with = "duration")]
    pub pong_timeout: Duration,
    /// A connection that has not sent a valid connect command after this long is closed
    /// (disconnect code 3502 "stale"). Default 10s.
    #[serde(with = "duration")]
    pub stale_close_delay: Duration,
    /// Grace after a connection token expires before the connection is closed with
    /// 3005 "connection expired" if it did not refresh. Default 25s.
    #[serde(with = "duration")]
    pub expired_close_delay: Duration,
    /// Bytes a connection's outgoing queue may hold before the client is disconnected
    /// with 3008 "slow". Default 1 MiB.
    pub queue_max_size: usize,
    /// Largest accepted incoming WebSocket message, in bytes. Default 65536.
    pub message_size_limit: usize,
    /// Most channels one connection may be subscribed to (3505 "channel limit" past it
    /// for server-side subscriptions, error 106 for client ones). Default 128.
    pub channel_limit: usize,
    /// Most client connections one node accepts (0 = unlimited). Default 0.
    pub connection_limit: usize,
    /// Most connections one user may hold on a node (0 = unlimited). Default 0.
    pub user_connection_limit: usize,
    /// Commands one connection may issue per second on average (0 = unlimited).
    /// Default 100.
    pub command_rate_limit: u32,
    /// Commands one connection may issue in a burst above the average. Default 200.
    pub command_rate_burst: u32,
    /// Commands past the rate limit get error 111; a connection that keeps exceeding it
    /// for this many commands in a row is disconnected with 3013. Default 100.
    pub command_rate_disconnect_after: u32,
    /// Browser origins allowed to open WebSocket connections (exact match, or `*`).
    /// Empty = only same-origin requests and requests without an Origin header.
    pub allowed_origins: Vec<String>,
}

/// How connection and subscription tokens (JWT) are verified.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Shared secret for HS256/HS384/HS512 tokens. Empty = HMAC tokens are rejected.
    /// `rootcast serve` generates a random one for the process when nothing is configured
    /// and prints it.
    pub hmac_secret_key: String,
    /// PEM public key for RS256/RS384/RS512 tokens.
    pub rsa_public_key: String,
    /// PEM public key for ES256/ES384 tokens.
    pub ecdsa_public_key: String,
    /// When set, the `aud` claim must equal it.
    pub audience: String,
    /// When set, the `iss` claim must equal it.
    pub issuer: String,
}

/// The server HTTP API at `/api/<method>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpApiConfig {
    /// API key expected in `X-API-Key: <key>` or `Authorization: apikey <key>`.
    /// `rootcast serve` generates a random one for the process when nothing is configured
    /// and `insecure` is false, and prints it.
    pub key: String,
    /// Accept API requests without a key. Only for development behind a firewall.
    pub insecure: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    /// Longest channel name accepted, in bytes. Default 255.
    pub max_length: usize,
    /// Options for channels without a `namespace:` prefix.
    pub without_namespace: NamespaceOptions,
    /// Named namespaces: channel `chat:room1` uses the namespace named `chat`.
    pub namespaces: Vec<Namespace>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// Namespace name: ASCII letters, digits, `_` and `-`.
    pub name: String,
    #[serde(flatten)]
    pub options: NamespaceOptions,
}

/// What a channel in a namespace keeps and who may do what in it. Same meanings as
/// Centrifugo's channel options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamespaceOptions {
    /// Publications kept per channel for history and recovery (0 = none).
    pub history_size: usize,
    /// How long a publication stays in history (0 = none). Both size and TTL must be set
    /// for history to be kept.
    #[serde(with = "duration")]
    pub history_ttl: Duration,
    /// How long a channel's stream meta (epoch, top offset) outlives its last publication.
    /// Default 0 = 30 days.
    #[serde(with = "duration")]
    pub history_meta_ttl: Duration,
    /// Recovery is on for every subscription in the namespace.
    pub force_recovery: bool,
    /// Clients may ask for recovery (`recoverable: true` in subscribe).
    pub allow_recovery: bool,
    /// Subscriptions are positioned (the client tracks offset/epoch) for every subscriber.
    pub force_positioning: bool,
    /// Clients may ask for positioning.
    pub allow_positioning: bool,
    /// Presence information is kept for channels of the namespace.
    pub presence: bool,
    /// Join and leave events are published.
    pub join_leave: bool,
    /// Join and leave events are pushed to every subscriber without them asking.
    pub force_push_join_leave: bool,
    /// Any authenticated client may subscribe without a subscription token.
    pub allow_subscribe_for_client: bool,
    /// Anonymous clients may subscribe without a subscription token.
    pub allow_subscribe_for_anonymous: bool,
    /// Subscribers may publish.
    pub allow_publish_for_subscriber: bool,
    /// Any authenticated client may publish, subscribed or not.
    pub allow_publish_for_client: bool,
    /// Anonymous clients may publish (with one of the two above).
    pub allow_publish_for_anonymous: bool,
    /// Subscribers may ask for presence and presence stats.
    pub allow_presence_for_subscriber: bool,
    /// Any authenticated client may ask for presence.
    pub allow_presence_for_client: bool,
    /// Anonymous clients may ask for presence (with one of the two above).
    pub allow_presence_for_anonymous: bool,
    /// Subscribers may ask for history.
    pub allow_history_for_subscriber: bool,
    /// Any authenticated client may ask for history.
    pub allow_history_for_client: bool,
    /// Anonymous clients may ask for history (with one of the two above).
    pub allow_history_for_anonymous: bool,
    /// Channels of this namespace may be subscribed only with a subscription token or as
    /// server-side subscriptions, whatever the allow_* options say.
    pub protected: bool,
    /// Channels may be `name#user1,user2`: only the listed users may subscribe.
    pub allow_user_limited_channels: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::default(),
            log: LogConfig::default(),
            client: ClientConfig::default(),
            http_api: HttpApiConfig::default(),
            channel: ChannelConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            address: "127.0.0.1:8000".to_owned(),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            token: TokenConfig::default(),
            allow_anonymous_connect_without_token: false,
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(8),
            stale_close_delay: Duration::from_secs(10),
            expired_close_delay: Duration::from_secs(25),
            queue_max_size: 1024 * 1024,
            message_size_limit: 65536,
            channel_limit: 128,
            connection_limit: 0,
            user_connection_limit: 0,
            command_rate_limit: 100,
            command_rate_burst: 200,
            command_rate_disconnect_after: 100,
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            max_length: 255,
            without_namespace: NamespaceOptions::default(),
            namespaces: Vec::new(),
        }
    }
}
