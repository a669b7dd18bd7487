//! [`Config::validate`]: the rules that a loaded configuration must meet, each explained.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::duration::format;
use crate::{Config, ConfigError, NamespaceOptions, Problem};

const MIN_QUEUE_MAX_SIZE: usize = 1024;
/// A longer write delay would hold every message past what a live page tolerates.
const MAX_WRITE_DELAY: Duration = Duration::from_secs(1);
const MAX_BATCH_DELAY: Duration = Duration::from_secs(1);
const MIN_MESSAGE_SIZE_LIMIT: usize = 256;
const MAX_MESSAGE_SIZE_LIMIT: usize = 16 * 1024 * 1024;
const MAX_CHANNEL_MAX_LENGTH: usize = 1024;
/// What `history_meta_ttl = "0"` stands for.
const DEFAULT_HISTORY_META_TTL: Duration = Duration::from_secs(30 * 86_400);

impl Config {
    /// Checks the configuration as a whole and reports every problem found, each naming
    /// its key and explaining the rejection.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Problems::default();
        self.check_http(&mut problems);
        self.check_log(&mut problems);
        self.check_client(&mut problems);
        self.check_channel(&mut problems);
        self.check_store(&mut problems);
        self.check_directives(&mut problems);
        for (key, reason) in self.relay.problems() {
            problems.add(key, reason);
        }
        for (key, reason) in self.chat.problems() {
            problems.add(key, reason);
        }
        if problems.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                problems: problems.0,
            })
        }
    }

    fn check_http(&self, problems: &mut Problems) {
        let address = &self.http.address;
        if address.parse::<SocketAddr>().is_err() {
            problems.add(
                "http.address",
                format!(
                    "{address:?} is not an IP address and port; write e.g. \"127.0.0.1:8000\", \
                     \"0.0.0.0:8000\" or \"[::]:8000\" (host names are not resolved)"
                ),
            );
        }
        if self.http.shutdown_timeout.is_zero() {
            problems.add(
                "http.shutdown_timeout",
                "must be more than 0: it is how long shutdown lets connections drain",
            );
        }
    }

    fn check_store(&self, problems: &mut Problems) {
        let url = self.store.url.trim();
        let known = ["sqlite:", "postgres://", "postgresql://"];
        if !known.iter().any(|scheme| url.starts_with(scheme)) {
            problems.add(
                "store.url",
                format!(
                    "{url:?} names no known database; write \"sqlite://data/rootcast.db\" (a \
                     file), \"sqlite::memory:\" (lost at exit) or \
                     \"postgres://user@host:5432/database\""
                ),
            );
        } else if (url == "sqlite:" || url == "sqlite://") || url.ends_with("://") {
            problems.add(
                "store.url",
                format!("{url:?} names no file or database after the scheme"),
            );
        }
        if self.store.max_connections == 0 {
            problems.add(
                "store.max_connections",
                "must be at least 1: the store needs a connection to do anything",
            );
        }
    }

    fn check_directives(&self, problems: &mut Problems) {
        let directives = &self.directives;
        if directives.check_interval.is_zero() {
            problems.add(
                "directives.check_interval",
                "must be more than 0: it is how often reminders and escalations are looked for",
            );
        }
        let (t1, t2) = (
            directives.escalate_to_parent_after,
            directives.escalate_to_grandparent_after,
        );
        if !t1.is_zero() && !t2.is_zero() && t2 <= t1 {
            problems.add(
                "directives.escalate_to_grandparent_after",
                format!(
                    "{} must be later than directives.escalate_to_parent_after ({}): the \
                     grandparent hears after the parent",
                    format(t2),
                    format(t1)
                ),
            );
        }
    }

    fn check_log(&self, problems: &mut Problems) {
        if self.log.level.trim().is_empty() {
            problems.add(
                "log.level",
                "must not be empty; write a tracing filter such as \"info\" or \
                 \"rootcast_hub=debug,info\"",
            );
        }
    }

    fn check_client(&self, problems: &mut Problems) {
        let client = &self.client;
        for (key, value, why) in [
            (
                "client.ping_interval",
                client.ping_interval,
                "without pings dead connections are never noticed",
            ),
            (
                "client.pong_timeout",
                client.pong_timeout,
                "no pong could ever arrive in time",
            ),
            (
                "client.stale_close_delay",
                client.stale_close_delay,
                "every connection would be closed before it could send connect",
            ),
        ] {
            if value.is_zero() {
                problems.add(key, format!("must be more than 0: {why}"));
            }
        }
        let both_set = !client.pong_timeout.is_zero() && !client.ping_interval.is_zero();
        if both_set && client.pong_timeout >= client.ping_interval {
            problems.add(
                "client.pong_timeout",
                format!(
                    "must be shorter than client.ping_interval ({} is not shorter than {}): \
                     the pong must arrive before the next ping is due",
                    format(client.pong_timeout),
                    format(client.ping_interval)
                ),
            );
        }
        if client.queue_max_size < MIN_QUEUE_MAX_SIZE {
            problems.add(
                "client.queue_max_size",
                format!(
                    "must be at least {MIN_QUEUE_MAX_SIZE} bytes, got {}: a smaller queue \
                     disconnects clients for being slow on a single message",
                    client.queue_max_size
                ),
            );
        }
        if client.write_delay > MAX_WRITE_DELAY {
            problems.add(
                "client.write_delay",
                format!(
                    "must be at most {}, got {}: every message may wait that long",
                    format(MAX_WRITE_DELAY),
                    format(client.write_delay)
                ),
            );
        }
        if !(MIN_MESSAGE_SIZE_LIMIT..=MAX_MESSAGE_SIZE_LIMIT).contains(&client.message_size_limit) {
            problems.add(
                "client.message_size_limit",
                format!(
                    "must be between {MIN_MESSAGE_SIZE_LIMIT} and {MAX_MESSAGE_SIZE_LIMIT} \
                     bytes (16 MiB), got {}",
                    client.message_size_limit
                ),
            );
        }
        if client.command_rate_limit > 0 && client.command_rate_burst == 0 {
            problems.add(
                "client.command_rate_burst",
                format!(
                    "must be at least 1 when client.command_rate_limit is set ({}), or every \
                     command is rejected; set client.command_rate_limit to 0 for no limit",
                    client.command_rate_limit
                ),
            );
        }
        let token = &client.token;
        for (key, value, accepted) in [
            (
                "client.token.rsa_public_key",
                &token.rsa_public_key,
                &["PUBLIC KEY", "RSA PUBLIC KEY"][..],
            ),
            (
                "client.token.ecdsa_public_key",
                &token.ecdsa_public_key,
                &["PUBLIC KEY"][..],
            ),
        ] {
            if !value.is_empty() && !accepted.iter().any(|label| is_pem(value, label)) {
                problems.add(
                    key,
                    "does not look like a PEM public key: expected text from \
                     \"-----BEGIN PUBLIC KEY-----\" to \"-----END PUBLIC KEY-----\" \
                     (a certificate or a private key does not work here)",
                );
            }
        }
    }

    fn check_channel(&self, problems: &mut Problems) {
        let channel = &self.channel;
        if !(1..=MAX_CHANNEL_MAX_LENGTH).contains(&channel.max_length) {
            problems.add(
                "channel.max_length",
                format!(
                    "must be between 1 and {MAX_CHANNEL_MAX_LENGTH}, got {}",
                    channel.max_length
                ),
            );
        }
        check_options(
            &channel.without_namespace,
            "channel.without_namespace",
            problems,
        );
        let mut first_with_name: HashMap<&str, usize> = HashMap::new();
        for (index, namespace) in channel.namespaces.iter().enumerate() {
            let path = format!("channel.namespaces[{index}]");
            let name = namespace.name.as_str();
            if name.is_empty() {
                problems.add(
                    format!("{path}.name"),
                    "must not be empty: it is the part of a channel name before \":\"",
                );
            } else if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                problems.add(
                    format!("{path}.name"),
                    format!("{name:?} may contain only ASCII letters, digits, \"_\" and \"-\""),
                );
            } else if let Some(first) = first_with_name.get(name) {
                problems.add(
                    format!("{path}.name"),
                    format!("{name:?} is already the name of channel.namespaces[{first}]"),
                );
            } else {
                first_with_name.insert(name, index);
            }
            check_options(&namespace.options, &path, problems);
        }
    }
}

/// The rules for one set of namespace options; `path` is where they are, e.g.
/// `channel.without_namespace`.
fn check_options(options: &NamespaceOptions, path: &str, problems: &mut Problems) {
    if options.batch_max_delay > MAX_BATCH_DELAY {
        problems.add(
            format!("{path}.batch_max_delay"),
            format!(
                "must be at most {}, got {}: every publication may wait that long",
                format(MAX_BATCH_DELAY),
                format(options.batch_max_delay)
            ),
        );
    }
    if options.batch_max_size > 0 && options.batch_max_delay.is_zero() {
        problems.add(
            format!("{path}.batch_max_size"),
            "has no effect without batch_max_delay: set batch_max_delay (e.g. \"100ms\") \
             or batch_max_size = 0",
        );
    }
    let size = options.history_size;
    let ttl = options.history_ttl;
    if size > 0 && ttl.is_zero() {
        problems.add(
            format!("{path}.history_ttl"),
            format!(
                "is missing while history_size is {size}: history is kept only when both \
                 history_size and history_ttl are set; set history_ttl (e.g. \"300s\") or \
                 history_size = 0"
            ),
        );
    }
    if size == 0 && !ttl.is_zero() {
        problems.add(
            format!("{path}.history_size"),
            format!(
                "is missing while history_ttl is {}: history is kept only when both \
                 history_size and history_ttl are set; set history_size (e.g. 100) or \
                 history_ttl = \"0\"",
                format(ttl)
            ),
        );
    }
    let meta_ttl = if options.history_meta_ttl.is_zero() {
        DEFAULT_HISTORY_META_TTL
    } else {
        options.history_meta_ttl
    };
    if ttl > meta_ttl {
        problems.add(
            format!("{path}.history_meta_ttl"),
            format!(
                "is {}{}, shorter than history_ttl ({}): a stream's position would be \
                 forgotten while its publications are still kept",
                format(meta_ttl),
                if options.history_meta_ttl.is_zero() {
                    " (the default for 0)"
                } else {
                    ""
                },
                format(ttl)
            ),
        );
    }
    // With history half set, the message above already says what is missing.
    if size == 0 && ttl.is_zero() {
        for (key, on) in [
            ("force_recovery", options.force_recovery),
            ("allow_recovery", options.allow_recovery),
        ] {
            if on {
                problems.add(
                    format!("{path}.{key}"),
                    "needs history: recovery replays missed publications from history, so \
                     set history_size and history_ttl",
                );
            }
        }
    }
    for (what, anonymous, subscriber, client) in [
        (
            "publish",
            options.allow_publish_for_anonymous,
            options.allow_publish_for_subscriber,
            options.allow_publish_for_client,
        ),
        (
            "presence",
            options.allow_presence_for_anonymous,
            options.allow_presence_for_subscriber,
            options.allow_presence_for_client,
        ),
        (
            "history",
            options.allow_history_for_anonymous,
            options.allow_history_for_subscriber,
            options.allow_history_for_client,
        ),
    ] {
        if anonymous && !subscriber && !client {
            problems.add(
                format!("{path}.allow_{what}_for_anonymous"),
                format!(
                    "needs allow_{what}_for_subscriber or allow_{what}_for_client: it only \
                     extends what those allow to anonymous clients"
                ),
            );
        }
    }
}

/// Whether `text` is one PEM block with the given label, e.g. `PUBLIC KEY`.
fn is_pem(text: &str, label: &str) -> bool {
    let text = text.trim();
    text.starts_with(&format!("-----BEGIN {label}-----"))
        && text.ends_with(&format!("-----END {label}-----"))
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(Problem {
            key: key.into(),
            reason: reason.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Namespace;

    fn problems(config: &Config) -> Vec<Problem> {
        match config.validate() {
            Ok(()) => Vec::new(),
            Err(ConfigError::Invalid { problems }) => problems,
            Err(other) => panic!("validate returned {other:?}"),
        }
    }

    /// Applies `change` to the defaults and returns the one problem it causes.
    fn only_problem(change: impl FnOnce(&mut Config)) -> Problem {
        let mut config = Config::default();
        change(&mut config);
        match problems(&config).as_slice() {
            [problem] => problem.clone(),
            other => panic!("expected exactly one problem, got {other:#?}"),
        }
    }

    fn assert_rejects(key: &str, reason_part: &str, change: impl FnOnce(&mut Config)) {
        let problem = only_problem(change);
        assert_eq!(problem.key, key, "{problem}");
        assert!(problem.reason.contains(reason_part), "{problem}");
    }

    fn namespace(name: &str, change: impl FnOnce(&mut NamespaceOptions)) -> Namespace {
        let mut options = NamespaceOptions::default();
        change(&mut options);
        Namespace {
            name: name.to_owned(),
            options,
        }
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(problems(&Config::default()), []);
    }

    #[test]
    fn address_must_be_a_socket_address() {
        assert_rejects(
            "http.address",
            "\"localhost:8000\" is not an IP address",
            |c| c.http.address = "localhost:8000".into(),
        );
        assert_rejects("http.address", "not an IP address", |c| {
            c.http.address = "127.0.0.1".into()
        });
        let mut config = Config::default();
        config.http.address = "[::1]:0".into();
        assert_eq!(problems(&config), []);
    }

    #[test]
    fn durations_that_must_not_be_zero() {
        assert_rejects("http.shutdown_timeout", "more than 0", |c| {
            c.http.shutdown_timeout = Duration::ZERO
        });
        assert_rejects("client.ping_interval", "more than 0", |c| {
            c.client.ping_interval = Duration::ZERO
        });
        assert_rejects("client.pong_timeout", "more than 0", |c| {
            c.client.pong_timeout = Duration::ZERO
        });
        assert_rejects("client.stale_close_delay", "more than 0", |c| {
            c.client.stale_close_delay = Duration::ZERO
        });
    }

    #[test]
    fn pong_timeout_must_be_shorter_than_ping_interval() {
        assert_rejects(
            "client.pong_timeout",
            "must be shorter than client.ping_interval (25s is not shorter than 25s)",
            |c| c.client.pong_timeout = c.client.ping_interval,
        );
    }

    #[test]
    fn client_sizes() {
        assert_rejects("client.queue_max_size", "at least 1024", |c| {
            c.client.queue_max_size = 1023
        });
        assert_rejects("client.message_size_limit", "between 256 and", |c| {
            c.client.message_size_limit = 255
        });
        assert_rejects("client.message_size_limit", "got 16777217", |c| {
            c.client.message_size_limit = 16 * 1024 * 1024 + 1
        });
        assert_rejects("client.write_delay", "at most 1s, got 1001ms", |c| {
            c.client.write_delay = Duration::from_millis(1001)
        });
        let mut config = Config::default();
        config.client.queue_max_size = 1024;
        config.client.message_size_limit = 16 * 1024 * 1024;
        config.client.write_delay = Duration::from_secs(1);
        assert_eq!(problems(&config), [], "the bounds themselves are accepted");
    }

    #[test]
    fn rate_burst_needed_only_with_a_rate_limit() {
        assert_rejects("client.command_rate_burst", "at least 1", |c| {
            c.client.command_rate_burst = 0
        });
        let mut config = Config::default();
        config.client.command_rate_limit = 0;
        config.client.command_rate_burst = 0;
        assert_eq!(problems(&config), []);
    }

    #[test]
    fn public_keys_must_look_like_pem() {
        const PEM: &str = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n";
        assert_rejects("client.token.rsa_public_key", "PEM public key", |c| {
            c.client.token.rsa_public_key = "MIIBIjANBg".into()
        });
        assert_rejects("client.token.ecdsa_public_key", "PEM public key", |c| {
            c.client.token.ecdsa_public_key =
                "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----".into()
        });
        assert_rejects("client.token.ecdsa_public_key", "PEM public key", |c| {
            c.client.token.ecdsa_public_key =
                "-----BEGIN RSA PUBLIC KEY-----\nMII\n-----END RSA PUBLIC KEY-----".into()
        });
        let mut config = Config::default();
        config.client.token.rsa_public_key =
            "-----BEGIN RSA PUBLIC KEY-----\nMII\n-----END RSA PUBLIC KEY-----".into();
        config.client.token.ecdsa_public_key = PEM.into();
        assert_eq!(problems(&config), []);
    }

    #[test]
    fn store_url_and_connections() {
        assert_rejects("store.url", "names no known database", |c| {
            c.store.url = "mysql://db/x".into()
        });
        assert_rejects("store.url", "names no file or database", |c| {
            c.store.url = "sqlite://".into()
        });
        assert_rejects("directives.check_interval", "more than 0", |c| {
            c.directives.check_interval = Duration::ZERO
        });
        assert_rejects(
            "directives.escalate_to_grandparent_after",
            "later than",
            |c| {
                c.directives.escalate_to_grandparent_after = Duration::from_secs(3600);
                c.directives.escalate_to_parent_after = Duration::from_secs(7200)
            },
        );
        assert_rejects("store.max_connections", "at least 1", |c| {
            c.store.max_connections = 0
        });
        for url in [
            "sqlite::memory:",
            "sqlite:///var/lib/rootcast/db.sqlite",
            "postgres://postgres@127.0.0.1:5432/test",
            "postgresql://u:p@db/rootcast",
        ] {
            let mut config = Config::default();
            config.store.url = url.into();
            assert_eq!(problems(&config), [], "{url}");
        }
    }

    #[test]
    fn log_level_must_not_be_empty() {
        assert_rejects("log.level", "must not be empty", |c| {
            c.log.level = " ".into()
        });
    }

    #[test]
    fn channel_max_length_bounds() {
        assert_rejects("channel.max_length", "between 1 and 1024, got 0", |c| {
            c.channel.max_length = 0
        });
        assert_rejects("channel.max_length", "got 1025", |c| {
            c.channel.max_length = 1025
        });
    }

    #[test]
    fn namespace_names() {
        assert_rejects("channel.namespaces[0].name", "must not be empty", |c| {
            c.channel.namespaces = vec![namespace("", |_| {})]
        });
        assert_rejects(
            "channel.namespaces[1].name",
            "\"chat:room\" may contain only ASCII letters, digits",
            |c| {
                c.channel.namespaces =
                    vec![namespace("ok_1-A", |_| {}), namespace("chat:room", |_| {})]
            },
        );
        assert_rejects(
            "channel.namespaces[2].name",
            "\"chat\" is already the name of channel.namespaces[0]",
            |c| {
                c.channel.namespaces = ["chat", "sys", "chat"]
                    .iter()
                    .map(|name| namespace(name, |_| {}))
                    .collect()
            },
        );
    }

    #[test]
    fn history_needs_both_size_and_ttl_and_names_the_missing_one() {
        assert_rejects(
            "channel.without_namespace.history_ttl",
            "is missing while history_size is 10",
            |c| c.channel.without_namespace.history_size = 10,
        );
        assert_rejects(
            "channel.namespaces[0].history_size",
            "is missing while history_ttl is 5m",
            |c| {
                c.channel.namespaces = vec![namespace("chat", |o| {
                    o.history_ttl = Duration::from_secs(300)
                })]
            },
        );
    }

    #[test]
    fn history_must_not_outlive_its_meta() {
        assert_rejects(
            "channel.without_namespace.history_meta_ttl",
            "is 30d (the default for 0), shorter than history_ttl (31d)",
            |c| {
                let o = &mut c.channel.without_namespace;
                o.history_size = 1;
                o.history_ttl = Duration::from_secs(31 * 86_400);
            },
        );
        assert_rejects(
            "channel.without_namespace.history_meta_ttl",
            "is 1m, shorter than history_ttl (2m)",
            |c| {
                let o = &mut c.channel.without_namespace;
                o.history_size = 1;
                o.history_ttl = Duration::from_secs(120);
                o.history_meta_ttl = Duration::from_secs(60);
            },
        );
    }

    #[test]
    fn batching_is_bounded_and_whole() {
        assert_rejects(
            "channel.namespaces[0].batch_max_delay",
            "at most 1s, got 1001ms",
            |c| {
                c.channel.namespaces = vec![namespace("chat", |o| {
                    o.batch_max_delay = Duration::from_millis(1001)
                })]
            },
        );
        assert_rejects(
            "channel.without_namespace.batch_max_size",
            "has no effect without batch_max_delay",
            |c| c.channel.without_namespace.batch_max_size = 10,
        );
        let mut config = Config::default();
        let o = &mut config.channel.without_namespace;
        o.batch_max_delay = Duration::from_secs(1);
        o.batch_max_size = 10;
        assert_eq!(problems(&config), []);
    }

    #[test]
    fn recovery_needs_history() {
        assert_rejects(
            "channel.without_namespace.force_recovery",
            "needs history",
            |c| c.channel.without_namespace.force_recovery = true,
        );
        assert_rejects(
            "channel.namespaces[0].allow_recovery",
            "needs history",
            |c| c.channel.namespaces = vec![namespace("chat", |o| o.allow_recovery = true)],
        );
        let mut config = Config::default();
        let o = &mut config.channel.without_namespace;
        o.force_recovery = true;
        o.allow_recovery = true;
        o.history_size = 10;
        o.history_ttl = Duration::from_secs(60);
        assert_eq!(problems(&config), []);
    }

    #[test]
    fn anonymous_permissions_need_a_base_permission() {
        assert_rejects(
            "channel.without_namespace.allow_publish_for_anonymous",
            "needs allow_publish_for_subscriber or allow_publish_for_client",
            |c| c.channel.without_namespace.allow_publish_for_anonymous = true,
        );
        assert_rejects(
            "channel.namespaces[0].allow_presence_for_anonymous",
            "needs allow_presence_for_subscriber or allow_presence_for_client",
            |c| {
                c.channel.namespaces =
                    vec![namespace("a", |o| o.allow_presence_for_anonymous = true)]
            },
        );
        assert_rejects(
            "channel.without_namespace.allow_history_for_anonymous",
            "needs allow_history_for_subscriber or allow_history_for_client",
            |c| c.channel.without_namespace.allow_history_for_anonymous = true,
        );
        let mut config = Config::default();
        let o = &mut config.channel.without_namespace;
        o.allow_publish_for_anonymous = true;
        o.allow_publish_for_subscriber = true;
        o.allow_presence_for_anonymous = true;
        o.allow_presence_for_client = true;
        assert_eq!(problems(&config), []);
    }

    #[test]
    fn reports_several_problems_at_once_each_on_its_own_line() {
        let mut config = Config::default();
        config.http.address = "nowhere".into();
        config.client.pong_timeout = Duration::from_secs(30);
        config.log.level = String::new();
        config.channel.namespaces = vec![namespace("chat", |o| o.history_size = 100)];
        let error = config.validate().unwrap_err();
        let ConfigError::Invalid { problems } = &error else {
            panic!("expected Invalid, got {error:?}");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "http.address",
                "log.level",
                "client.pong_timeout",
                "channel.namespaces[0].history_ttl"
            ]
        );
        let text = error.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[0], "invalid configuration:");
        assert!(
            lines[1].starts_with("  - http.address: \"nowhere\""),
            "{text}"
        );
        assert!(
            lines[4].starts_with("  - channel.namespaces[0].history_ttl: "),
            "{text}"
        );
    }
}
