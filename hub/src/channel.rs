//! Channel names and the namespace options that apply to them.
//!
//! `chat:room1` belongs to namespace `chat`; a name without `:` uses the
//! `without_namespace` options. `news#alice,bob` is a user-limited channel (only the listed
//! users may subscribe) where the namespace allows it.

use rootcast_config::{ChannelConfig, NamespaceOptions};

use crate::codes::ClientError;

/// The namespace part of a channel name (`""` when there is none).
pub fn namespace_of(channel: &str) -> &str {
    match channel.split_once(':') {
        Some((namespace, _)) => namespace,
        None => "",
    }
}

/// Looks up the options of the namespace a channel belongs to, checking the name.
///
/// Errors: 107 bad request for an empty, too long or control-character name; 102 unknown
/// channel when the namespace is not configured.
pub fn options_for<'a>(
    config: &'a ChannelConfig,
    channel: &str,
) -> Result<&'a NamespaceOptions, ClientError> {
    if channel.is_empty()
        || channel.len() > config.max_length
        || channel.chars().any(char::is_control)
    {
        return Err(ClientError::BAD_REQUEST);
    }
    let namespace = namespace_of(channel);
    if namespace.is_empty() {
        return Ok(&config.without_namespace);
    }
    config
        .namespace_options(namespace)
        .ok_or(ClientError::UNKNOWN_CHANNEL)
}

/// For a user-limited channel (`name#u1,u2`), whether `user` is one of the listed users.
/// `None` when the channel is not user-limited.
pub fn user_limited_allows(channel: &str, user: &str) -> Option<bool> {
    let (_, users) = channel.rsplit_once('#')?;
    Some(!user.is_empty() && users.split(',').any(|u| u == user))
}

#[cfg(test)]
mod tests {
    use rootcast_config::Namespace;

    use super::*;

    fn config() -> ChannelConfig {
        ChannelConfig {
            namespaces: vec![Namespace {
                name: "chat".into(),
                options: NamespaceOptions {
                    presence: true,
                    ..Default::default()
                },
            }],
            ..Default::default()
        }
    }

    #[test]
    fn resolves_namespaces() {
        let config = config();
        assert!(options_for(&config, "chat:room").unwrap().presence);
        assert!(!options_for(&config, "plain").unwrap().presence);
        assert_eq!(
            options_for(&config, "nope:room").unwrap_err(),
            ClientError::UNKNOWN_CHANNEL
        );
    }

    #[test]
    fn rejects_bad_names() {
        let config = config();
        assert_eq!(
            options_for(&config, "").unwrap_err(),
            ClientError::BAD_REQUEST
        );
        let long = "x".repeat(config.max_length + 1);
        assert_eq!(
            options_for(&config, &long).unwrap_err(),
            ClientError::BAD_REQUEST
        );
        assert_eq!(
            options_for(&config, "a\nb").unwrap_err(),
            ClientError::BAD_REQUEST
        );
    }

    #[test]
    fn user_limited_channels() {
        assert_eq!(user_limited_allows("dm#alice,bob", "bob"), Some(true));
        assert_eq!(user_limited_allows("dm#alice,bob", "eve"), Some(false));
        assert_eq!(user_limited_allows("dm#alice,bob", ""), Some(false));
        assert_eq!(user_limited_allows("dm", "bob"), None);
    }
}
