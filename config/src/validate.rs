//! [`Config::validate`]: the rules that a loaded configuration must meet, each explained.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::duration::format;
use crate::{Config, ConfigError, NamespaceOptions, Problem};

const MIN_QUEUE_MAX_SIZE: usize = 1024;
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
        if !client.pong_timeout.is_zero() && client.pong_timeout >= client.ping_interval {
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
        if !(MIN_MESSAGE_SIZE_LIMIT..=MAX_MESSAGE_SIZE_LIMIT).contains(&client.message_size_limit)
        {
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
                if options.history_meta_ttl.is_zero() { " (the default for 0)" } else { "" },
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
