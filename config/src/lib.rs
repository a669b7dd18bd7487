//! rootcast's typed configuration.
//!
//! One [`Config`] struct holds every setting with its default. Settings are layered, each
//! layer overriding the one before:
//!
//! 1. the defaults ([`Config::default`]);
//! 2. a TOML file ([`Config::load`], or [`Config::from_toml_str`] for text);
//! 3. `ROOTCAST_…` environment variables ([`Config::load`]);
//! 4. command-line flags, which the binary applies with [`Config::set`].
//!
//! Loading only checks that every key exists and every value has the key's type; it stops
//! at the first problem and names the key and where it came from (file and line, or the
//! environment variable). Unknown keys are errors, never ignored. [`Config::validate`] then
//! checks the settings against each other and reports every problem at once, each naming
//! its key and explaining the rejection. The binary calls it after the last layer.
//!
//! # Key paths and environment variables
//!
//! A key path is the dotted TOML path of a setting: `http.address`,
//! `client.token.hmac_secret_key`, `channel.without_namespace.presence`. Its environment
//! variable is `ROOTCAST_` followed by the path upper-cased with `.` written as `_`:
//! `ROOTCAST_HTTP_ADDRESS`, `ROOTCAST_CLIENT_TOKEN_HMAC_SECRET_KEY`,
//! `ROOTCAST_CHANNEL_WITHOUT_NAMESPACE_PRESENCE`. Because names contain `_` themselves, a
//! variable is resolved by comparing it with the name of every known key path (taken from
//! the serialized defaults), never by splitting it. A `ROOTCAST_…` variable that names no
//! key is an error, except [`CONFIG_FILE_ENV`] (`ROOTCAST_CONFIG`), which the binary reads
//! for the file path.
//!
//! Values from the environment and from [`Config::set`] are text, typed by the key:
//! `true`/`false` for switches, a whole number for counts and sizes, a duration such as
//! `"25s"` for durations (see below), the text as it is for strings. A list (such as
//! `client.allowed_origins`) is comma-separated (`https://a.example,https://b.example`) or a
//! TOML array when it starts with `[`; so `channel.namespaces` is written as a TOML array
//! of inline tables: `[{ name = "chat", presence = true }]`.
//!
//! Durations are strings such as `"25s"`, `"500ms"`, `"5m"`, `"1h"`, `"30d"`, `"1m30s"` or
//! `"0"`; [`Config::to_toml_string`] writes them back the same way.
//!
//! The commented sample, with every key at its default, is `config/rootcast.example.toml`;
//! a test keeps it equal to the defaults.
//!
//! Where Centrifugo has an option for the same thing, the option here has the same meaning
//! (and usually the same name), so operators can carry their knowledge over.

use std::time::Duration;

use serde::{Deserialize, Serialize};

mod chat;
mod duration;
mod error;
mod load;
mod relay;
mod validate;

pub use chat::{ChatConfig, ChatFilterMode, MAX_CHAT_MESSAGE_LENGTH, MAX_SLOW_MODE};
pub use relay::{IceServer, RelayConfig};

pub use error::{ConfigError, Origin, Problem};
pub use load::{CONFIG_FILE_ENV, ENV_PREFIX};

/// The whole configuration of one `rootcast` process. Its default is each section's default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[http]`: the listener.
    pub http: HttpConfig,
    /// `[log]`: logging.
    pub log: LogConfig,
    /// `[client]`: client connections and their tokens.
    pub client: ClientConfig,
    /// `[http_api]`: the server API.
    pub http_api: HttpApiConfig,
    /// `[channel]`: channel names and namespaces.
    pub channel: ChannelConfig,
    /// `[store]`: the durable store (org tree, later directives and the audit log).
    pub store: StoreConfig,
    pub relay: RelayConfig,
    /// `[directives]`: reminders and escalation for directives awaiting acknowledgement.
    pub directives: DirectivesConfig,
    /// `[chat]`: the rules of meeting chat (message length, rate limit, word filter,
    /// default slow mode).
    pub chat: ChatConfig,
}

/// When a unit that has not acknowledged a directive is reminded, and when its parent and
/// grandparent units are told. Times count from the send; `"0"` turns a step off.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectivesConfig {
    /// Remind a silent unit this long after the send, and again every as long. Default 2h.
    #[serde(with = "duration")]
    pub reminder_interval: Duration,
    /// Most reminders per unit and directive. Default 3.
    pub max_reminders: u32,
    /// Tell the parent unit's people when a unit is still silent this long after the
    /// send (T1). Default 6h.
    #[serde(with = "duration")]
    pub escalate_to_parent_after: Duration,
    /// Tell the grandparent unit's people (T2, later than T1). Default 24h.
    #[serde(with = "duration")]
    pub escalate_to_grandparent_after: Duration,
    /// How often the node looks for reminders and escalations that are due. Default 30s.
    #[serde(with = "duration")]
    pub check_interval: Duration,
}

impl Default for DirectivesConfig {
    fn default() -> Self {
        DirectivesConfig {
            reminder_interval: Duration::from_secs(2 * 3600),
            max_reminders: 3,
            escalate_to_parent_after: Duration::from_secs(6 * 3600),
            escalate_to_grandparent_after: Duration::from_secs(24 * 3600),
            check_interval: Duration::from_secs(30),
        }
    }
}

/// The durable store: SQLite embedded by default, PostgreSQL for several nodes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path/to/file.db` (relative to the working directory; the file and its
    /// directory are created when missing), `sqlite::memory:` (lost at exit), or
    /// `postgres://user:password@host:port/database`. Default `sqlite://data/rootcast.db`.
    pub url: String,
    /// Most database connections the process holds. Default 10.
    pub max_connections: u32,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite://data/rootcast.db".to_owned(),
            max_connections: 10,
        }
    }
}

/// The HTTP listener that serves the WebSocket endpoint, the server API, metrics and the
/// web pages.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, `host:port`. Default `127.0.0.1:8000`.
    pub address: String,
    /// How long shutdown waits for connections to drain before it gives up. Default 5s.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `text`: human-readable lines.
    Text,
    /// `json`: one JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter directive, e.g. `info` or `rootcast_hub=debug,info`.
    /// Default `info`.
    pub level: String,
    /// `text` or `json`. Default `text`.
    pub format: LogFormat,
}

/// Settings for client (SDK) connections.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    /// After writing to a connection, how long its task waits before the next write, so
    /// that what is published meanwhile goes out together in one write (Centrifugo's
    /// `write_delay`). Each message waits at most this long; a connection receiving many
    /// messages a second costs far fewer system calls and wake-ups (see
    /// `docs/benchmarks.md`, the meeting benchmark). At most 1s. Default 0 (write at once).
    #[serde(with = "duration")]
    pub write_delay: Duration,
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpApiConfig {
    /// API key expected in `X-API-Key: <key>` or `Authorization: apikey <key>`.
    /// `rootcast serve` generates a random one for the process when nothing is configured
    /// and `insecure` is false, and prints it.
    pub key: String,
    /// Accept API requests without a key. Only for development behind a firewall.
    pub insecure: bool,
}

/// Channel names and what channels keep and allow.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelConfig {
    /// Longest channel name accepted, in bytes. Default 255.
    pub max_length: usize,
    /// Options for channels without a `namespace:` prefix.
    pub without_namespace: NamespaceOptions,
    /// Named namespaces: channel `chat:room1` uses the namespace named `chat`.
    pub namespaces: Vec<Namespace>,
}

/// A named namespace: its name and the options of its channels, written side by side in
/// one `[[channel.namespaces]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// Namespace name: ASCII letters, digits, `_` and `-`.
    pub name: String,
    /// The namespace's options, flattened next to `name`.
    #[serde(flatten)]
    pub options: NamespaceOptions,
}

/// What a channel in a namespace keeps and who may do what in it. Same meanings as
/// Centrifugo's channel options.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
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
    /// How long a channel's publications are gathered before they go to its subscribers
    /// together, one queue entry and one wake-up per subscriber for the whole batch
    /// instead of one per publication (Centrifugo PRO's channel batching). Each
    /// publication waits at most this long; offsets, history and recovery are as
    /// without batching. For channels with many publications a second and many
    /// subscribers (a meeting's Q&A and chat: see `docs/benchmarks.md`). At most 1s.
    /// Default 0 (deliver each publication at once).
    #[serde(with = "duration")]
    pub batch_max_delay: Duration,
    /// With `batch_max_delay`: a batch goes out as soon as it holds this many
    /// publications (0 = no limit). Default 0.
    pub batch_max_size: usize,
}

impl ChannelConfig {
    /// The options of a namespace by name; the empty name is channels without a namespace
    /// (`without_namespace`). `None` when no namespace has that name.
    ///
    /// The built-in namespaces ([`BUILTIN_NAMESPACES`]) exist whatever the configuration
    /// lists; listing one replaces its options.
    pub fn namespace_options(&self, namespace: &str) -> Option<&NamespaceOptions> {
        if namespace.is_empty() {
            return Some(&self.without_namespace);
        }
        self.namespaces
            .iter()
            .find(|candidate| candidate.name == namespace)
            .map(|found| &found.options)
            .or_else(|| builtin_namespace(namespace))
    }
}

/// The namespaces rootcast's own services publish in, present in every configuration:
/// `unit` (each unit's live inbox, `unit:<unit id>`: new directives, reminders,
/// acknowledgements by colleagues; presence tells who is online), `ack` (a directive's
/// live acknowledgement map over one subtree, `ack:<directive id>@<unit id>`), and a live
/// meeting's channels: `meeting` (`meeting:<id>`: state, announcements, the question on
/// screen; presence and join/leave feed attendance), `qa` (`qa:<id>`: questions and
/// answers as viewers see them) and `meeting-chat` (`meeting-chat:<id>`; `chat` is the
/// open namespace of the default configuration). All are `protected`: only the
/// tokens the services issue after checking role and scope open them. The meeting
/// namespaces keep a short history so a client that reconnects recovers what it missed;
/// `qa` and `meeting-chat` deliver in batches of up to 100 ms (`batch_max_delay`).
pub const BUILTIN_NAMESPACES: [&str; 5] = ["unit", "ack", "meeting", "qa", "meeting-chat"];

/// The options of a built-in namespace (see [`BUILTIN_NAMESPACES`]).
pub fn builtin_namespace(name: &str) -> Option<&'static NamespaceOptions> {
    static UNIT: std::sync::LazyLock<NamespaceOptions> =
        std::sync::LazyLock::new(|| NamespaceOptions {
            presence: true,
            protected: true,
            ..NamespaceOptions::default()
        });
    static ACK: std::sync::LazyLock<NamespaceOptions> =
        std::sync::LazyLock::new(|| NamespaceOptions {
            protected: true,
            ..NamespaceOptions::default()
        });
    static MEETING: std::sync::LazyLock<NamespaceOptions> =
        std::sync::LazyLock::new(|| NamespaceOptions {
            presence: true,
            join_leave: true,
            ..meeting_live()
        });
    static MEETING_BATCHED: std::sync::LazyLock<NamespaceOptions> =
        std::sync::LazyLock::new(meeting_batched);
    match name {
        "unit" => Some(&UNIT),
        "ack" => Some(&ACK),
        "meeting" => Some(&MEETING),
        "qa" | "meeting-chat" => Some(&MEETING_BATCHED),
        _ => None,
    }
}

/// A protected namespace whose channels keep 500 publications for an hour, recoverable.
fn meeting_live() -> NamespaceOptions {
    NamespaceOptions {
        protected: true,
        history_size: 500,
        history_ttl: Duration::from_secs(3600),
        allow_recovery: true,
        allow_positioning: true,
        ..NamespaceOptions::default()
    }
}

/// [`meeting_live`], with publications gathered for up to 100 ms (at most 100 at a
/// time): a busy meeting's Q&A and chat reach thousands of participants as a few
/// batches a second instead of one push per question, vote and message each.
fn meeting_batched() -> NamespaceOptions {
    NamespaceOptions {
        batch_max_delay: Duration::from_millis(100),
        batch_max_size: 100,
        ..meeting_live()
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
            allow_anonymous_connect_without_token: true,
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(8),
            stale_close_delay: Duration::from_secs(10),
            expired_close_delay: Duration::from_secs(25),
            queue_max_size: 1024 * 1024,
            write_delay: Duration::ZERO,
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
            namespaces: default_namespaces(),
        }
    }
}

/// The namespaces a server has when its configuration names none (see
/// `docs/decisions/0002-defaults-for-serve.md`): `sys` for the node's live numbers on
/// `sys:stats`, which anyone may watch, and `chat` for the README's tour. (The built-in
/// namespaces of the services are there whatever a configuration lists:
/// [`BUILTIN_NAMESPACES`].)
fn default_namespaces() -> Vec<Namespace> {
    vec![
        Namespace {
            name: "sys".to_owned(),
            options: NamespaceOptions {
                allow_subscribe_for_client: true,
                allow_subscribe_for_anonymous: true,
                ..NamespaceOptions::default()
            },
        },
        Namespace {
            name: "chat".to_owned(),
            options: NamespaceOptions {
                history_size: 100,
                history_ttl: Duration::from_secs(300),
                force_recovery: true,
                presence: true,
                join_leave: true,
                allow_subscribe_for_client: true,
                allow_publish_for_subscriber: true,
                allow_presence_for_subscriber: true,
                allow_history_for_subscriber: true,
                ..NamespaceOptions::default()
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../rootcast.example.toml");

    #[test]
    fn example_file_parses_and_validates() {
        let config = Config::from_toml_str(EXAMPLE).unwrap();
        config.validate().unwrap();
    }

    #[test]
    fn example_file_shows_the_defaults() {
        let config = Config::from_toml_str(EXAMPLE).unwrap();
        assert!(!config.channel.namespaces.is_empty());
        assert_eq!(config, Config::default());
    }

    #[test]
    fn example_file_writes_every_key() {
        fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (key, value) in table {
                let path = format!("{prefix}{key}");
                out.push(path.clone());
                if let toml::Value::Table(section) = value {
                    keys(section, &format!("{path}."), out);
                }
            }
        }
        let (mut written, mut all) = (Vec::new(), Vec::new());
        let mut example: toml::Table = EXAMPLE.parse().unwrap();
        // Namespace keys left out are at their defaults: compare the rest.
        example["channel"]
            .as_table_mut()
            .unwrap()
            .insert("namespaces".into(), toml::Value::Array(Vec::new()));
        keys(&example, "", &mut written);
        keys(
            &toml::Table::try_from(Config::default()).unwrap(),
            "",
            &mut all,
        );
        assert_eq!(written, all);
    }

    #[test]
    fn example_namespaces_are_as_described() {
        let config = Config::from_toml_str(EXAMPLE).unwrap();
        let sys = config.channel.namespace_options("sys").unwrap();
        assert!(sys.allow_subscribe_for_anonymous && sys.allow_subscribe_for_client);
        assert!(!sys.allow_publish_for_subscriber && !sys.allow_publish_for_client);
        let chat = config.channel.namespace_options("chat").unwrap();
        assert_eq!(chat.history_size, 100);
        assert_eq!(chat.history_ttl, Duration::from_secs(300));
        assert!(chat.force_recovery && chat.presence && chat.join_leave);
        assert!(chat.allow_subscribe_for_client && chat.allow_publish_for_subscriber);
    }

    #[test]
    fn namespace_options_by_name() {
        let mut channel = ChannelConfig::default();
        channel.without_namespace.presence = true;
        channel.namespaces.clear();
        channel.namespaces.push(Namespace {
            name: "chat".into(),
            options: NamespaceOptions {
                history_size: 5,
                ..NamespaceOptions::default()
            },
        });
        assert!(channel.namespace_options("").unwrap().presence);
        assert_eq!(channel.namespace_options("chat").unwrap().history_size, 5);
        assert!(channel.namespace_options("Chat").is_none());
        assert!(channel.namespace_options("sys").is_none());
        // The built-in namespaces are there although the list does not name them…
        let unit = channel.namespace_options("unit").unwrap();
        assert!(unit.protected && unit.presence);
        assert!(channel.namespace_options("ack").unwrap().protected);
        // …and a listed one replaces their options.
        channel.namespaces.push(Namespace {
            name: "unit".into(),
            options: NamespaceOptions {
                history_size: 7,
                ..NamespaceOptions::default()
            },
        });
        let unit = channel.namespace_options("unit").unwrap();
        assert_eq!(unit.history_size, 7);
        assert!(!unit.protected);
    }
}
