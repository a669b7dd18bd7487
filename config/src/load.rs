//! The layers above the defaults: the TOML file, `ROOTCAST_…` environment variables and
//! [`Config::set`].
//!
//! The set of known keys is not written down here: it is the serialized default
//! configuration, so a field added to the structs is a key everywhere at once.
//!
//! A file is parsed twice: once into a span-keeping document that is walked next to the
//! defaults to find unknown keys (named by full path and line), once by serde into
//! [`Config`], whose errors are mapped back to a key through the document's spans.
//! A namespace's fields are checked one by one during the walk, because serde's `flatten`
//! (used by [`Namespace`]) loses the field name and position of an error.
//!
//! Environment variables and [`Config::set`] share [`Config::assign`]: the configuration is
//! serialized to a TOML table, the one value replaced (typed by the value it replaces), and
//! the table deserialized again, so every value goes through the same serde checks as the
//! file.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::{Spanned, Table, Value};

use crate::{Config, ConfigError, Namespace, NamespaceOptions, Origin};

/// Prefix of every environment variable that sets a key.
pub const ENV_PREFIX: &str = "ROOTCAST_";

/// The environment variable that holds the config file path. It is read by the binary, and
/// is the one `ROOTCAST_…` variable that [`Config::load`] skips instead of rejecting.
pub const CONFIG_FILE_ENV: &str = "ROOTCAST_CONFIG";

/// The key path of the namespace list, whose elements are checked against [`Namespace`].
const NAMESPACES_KEY: &str = "channel.namespaces";

/// Name given to the text passed to [`Config::from_toml_str`] in error messages.
const TOML_TEXT_NAME: &str = "TOML text";

impl Config {
    /// Loads the configuration: the defaults, then `file` (when given), then the
    /// `ROOTCAST_…` variables among `env` (pass `std::env::vars()`). Variables without the
    /// prefix are ignored, and so is [`CONFIG_FILE_ENV`].
    ///
    /// Stops at the first unknown key, unknown `ROOTCAST_…` variable or badly typed value.
    /// Does not call [`Config::validate`]: command-line flags come after this, so the
    /// caller validates once they are applied.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                parse_file(&text, &path.display().to_string())?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    /// Parses TOML text over the defaults, with the same checks as a config file.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        parse_file(text, TOML_TEXT_NAME)
    }

    /// Sets one key from text, as a command-line flag does: `set("http.address",
    /// "127.0.0.1:0")`. The text is typed by the key exactly as an environment variable's
    /// value is (see the crate docs). Errors say the value came from the command line.
    pub fn set(&mut self, key_path: &str, value: &str) -> Result<(), ConfigError> {
        self.assign(key_path, value, Origin::CommandLine)
    }

    /// The configuration as a TOML document, durations written like `"25s"`; reading it
    /// back with [`Config::from_toml_str`] gives an equal configuration.
    ///
    /// The TOML writer accepts every value a `Config` can hold (it writes even an integer
    /// above 2^63 - 1 as digits), so the error is not expected in practice.
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::NotRepresentable(e.to_string()))
    }

    fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let known: Vec<(String, String)> = key_paths()
            .into_iter()
            .map(|path| (env_var_name(&path), path))
            .collect();
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name != CONFIG_FILE_ENV)
            .collect();
        // Sorted so that, of several bad variables, the same one is reported every time.
        vars.sort();
        for (name, value) in vars {
            let Some((_, path)) = known.iter().find(|(var, _)| *var == name) else {
                return Err(ConfigError::UnknownEnvVar { name });
            };
            self.assign(path, &value, Origin::Env { var: name })?;
        }
        Ok(())
    }

    /// Sets the key at `key_path` from text typed by the key; the one implementation behind
    /// environment variables and [`Config::set`].
    fn assign(&mut self, key_path: &str, text: &str, origin: Origin) -> Result<(), ConfigError> {
        let bad_value = |reason: String| ConfigError::BadValue {
            key: key_path.to_owned(),
            origin: origin.clone(),
            reason,
        };
        let mut table =
            Table::try_from(&*self).map_err(|e| ConfigError::NotRepresentable(e.to_string()))?;
        let Some(slot) = leaf_mut(&mut table, key_path) else {
            return Err(ConfigError::UnknownKey {
                key: key_path.to_owned(),
                origin,
            });
        };
        *slot = typed_like(slot, text).map_err(bad_value)?;
        *self = table
            .try_into()
            .map_err(|e: toml::de::Error| bad_value(e.message().to_owned()))?;
        Ok(())
    }
}

/// The environment variable for a key path: `http.address` → `ROOTCAST_HTTP_ADDRESS`.
fn env_var_name(key_path: &str) -> String {
    format!("{ENV_PREFIX}{}", key_path.replace('.', "_").to_uppercase())
}

/// The default configuration as a TOML table: the schema that file keys, environment
/// variables and [`Config::set`] are checked against.
fn default_table() -> Table {
    // Default values are all small (no usize above i64::MAX), so they are representable.
    Table::try_from(Config::default()).expect("the default configuration serializes to TOML")
}

/// The keys a `[[channel.namespaces]]` table may have.
fn namespace_table() -> Table {
    let namespace = Namespace {
        name: String::new(),
        options: NamespaceOptions::default(),
    };
    // Same reason as in default_table: nothing in the default namespace can fail to serialize.
    Table::try_from(namespace).expect("the default namespace serializes to TOML")
}

/// Every settable key path, e.g. `http.address`; a list such as `channel.namespaces` counts
/// as one key.
fn key_paths() -> Vec<String> {
    fn collect(table: &Table, prefix: &str, out: &mut Vec<String>) {
        for (key, value) in table {
            let path = join(prefix, key);
            match value {
                Value::Table(section) => collect(section, &path, out),
                _ => out.push(path),
            }
        }
    }
    let mut out = Vec::new();
    collect(&default_table(), "", &mut out);
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The value at `key_path`, if the path names a key (not a section).
fn leaf_mut<'t>(table: &'t mut Table, key_path: &str) -> Option<&'t mut Value> {
    let mut parts = key_path.split('.');
    let mut value = table.get_mut(parts.next()?)?;
    for part in parts {
        value = value.as_table_mut()?.get_mut(part)?;
    }
    (!value.is_table()).then_some(value)
}

/// Reads `text` as a value of the same TOML type as `current`.
fn typed_like(current: &Value, text: &str) -> Result<Value, String> {
    match current {
        Value::Boolean(_) => match text.trim() {
            "true" => Ok(Value::Boolean(true)),
            "false" => Ok(Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {text:?}")),
        },
        Value::Integer(_) => text
            .trim()
            .parse()
            .map(Value::Integer)
            .map_err(|_| format!("expected a whole number, got {text:?}")),
        Value::Array(_) => parse_list(text),
        _ => Ok(Value::String(text.to_owned())),
    }
}

/// A TOML array when the text starts with `[`, otherwise comma-separated strings (empty
/// items dropped, so the empty text is the empty list).
fn parse_list(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if text.starts_with('[') {
        return text
            .parse()
            .map_err(|e: toml::de::Error| format!("expected a TOML array: {}", e.message()));
    }
    let items = text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| Value::String(item.to_owned()))
        .collect();
    Ok(Value::Array(items))
}

/// Parses a config file's text; `file` names it in errors.
fn parse_file(text: &str, file: &str) -> Result<Config, ConfigError> {
    let document = DeTable::parse(text).map_err(|e| ConfigError::Parse {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    let mut walk = Walk {
        text,
        file,
        spans: Vec::new(),
    };
    walk.table(document.get_ref(), &default_table(), "")?;
    toml::from_str(text).map_err(|e| walk.serde_error(e))
}

/// Walks a parsed file next to the defaults, rejecting unknown keys and remembering where
/// each key's value is, so that a later serde error can be given a key.
struct Walk<'a> {
    text: &'a str,
    file: &'a str,
    /// Key path and byte range of every value seen.
    spans: Vec<(String, Range<usize>)>,
}

impl Walk<'_> {
    fn table(&mut self, table: &DeTable, schema: &Table, prefix: &str) -> Result<(), ConfigError> {
        for (key, value) in table {
            let path = join(prefix, key.get_ref());
            self.spans.push((path.clone(), value.span()));
            let Some(expected) = schema.get(key.get_ref().as_ref()) else {
                return Err(ConfigError::UnknownKey {
                    key: path,
                    origin: self.origin(key.span()),
                });
            };
            match (value.get_ref(), expected) {
                (DeValue::Table(section), Value::Table(section_schema)) => {
                    self.table(section, section_schema, &path)?;
                }
                (DeValue::Array(namespaces), _) if path == NAMESPACES_KEY => {
                    for (index, namespace) in namespaces.iter().enumerate() {
                        self.namespace(namespace, &format!("{path}[{index}]"))?;
                    }
                }
                // Anything else is typed by serde afterwards.
                _ => {}
            }
        }
        Ok(())
    }

    fn namespace(&mut self, value: &Spanned<DeValue>, path: &str) -> Result<(), ConfigError> {
        self.spans.push((path.to_owned(), value.span()));
        let DeValue::Table(table) = value.get_ref() else {
            return Ok(()); // serde reports the wrong type, at this element
        };
        self.table(table, &namespace_table(), path)?;
        for (key, value) in table {
            let key = key.get_ref();
            let source = &self.text[value.span()];
            let checked = if key == "name" {
                match value.get_ref() {
                    DeValue::String(_) => Ok(()),
                    _ => Err(format!("expected a string, got {source}")),
                }
            } else {
                // The one field alone, in the type it is flattened from.
                toml::from_str::<NamespaceOptions>(&format!("{key} = {source}"))
                    .map(drop)
                    .map_err(|e| e.message().to_owned())
            };
            checked.map_err(|reason| ConfigError::BadValue {
                key: format!("{path}.{key}"),
                origin: self.origin(value.span()),
                reason,
            })?;
        }
        Ok(())
    }

    /// Names the key of a serde error: the smallest value span around the error's start.
    fn serde_error(&self, error: toml::de::Error) -> ConfigError {
        let key = error.span().and_then(|span| {
            self.spans
                .iter()
                .rev() // deeper entries come later: on equal spans, they win
                .filter(|(_, value)| value.contains(&span.start))
                .min_by_key(|(_, value)| value.len())
        });
        match (key, error.span()) {
            (Some((key, _)), Some(span)) => ConfigError::BadValue {
                key: key.clone(),
                origin: self.origin(span),
                reason: error.message().to_owned(),
            },
            _ => ConfigError::Parse {
                file: self.file.to_owned(),
                message: error.to_string(),
            },
        }
    }

    fn origin(&self, span: Range<usize>) -> Origin {
        let line = self.text[..span.start].matches('\n').count() + 1;
        Origin::File {
            file: self.file.to_owned(),
            line: Some(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::LogFormat;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn from_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(None, vars(pairs))
    }

    fn env_ok(pairs: &[(&str, &str)]) -> Config {
        from_env(pairs).unwrap_or_else(|e| panic!("{pairs:?} should load: {e}"))
    }

    fn file_err(text: &str) -> ConfigError {
        match parse_file(text, "rootcast.toml") {
            Ok(config) => panic!("should be rejected, got {config:?}"),
            Err(e) => e,
        }
    }

    /// The key and line of a `BadValue` from a file, and its reason.
    fn bad_file_value(text: &str) -> (String, usize, String) {
        match file_err(text) {
            ConfigError::BadValue {
                key,
                origin: Origin::File {
                    line: Some(line), ..
                },
                reason,
            } => (key, line, reason),
            other => panic!("expected a bad value with a line, got {other:?}"),
        }
    }

    #[test]
    fn empty_file_and_no_env_give_the_defaults() {
        assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
        assert_eq!(env_ok(&[]), Config::default());
    }

    #[test]
    fn file_values_override_defaults() {
        let config = Config::from_toml_str(
            "[http]\naddress = \"0.0.0.0:9000\"\n\
             [client]\nping_interval = \"1m30s\"\nallowed_origins = [\"https://a.example\"]\n\
             [client.token]\nissuer = \"me\"\n\
             [[channel.namespaces]]\nname = \"chat\"\npresence = true\n",
        )
        .unwrap();
        assert_eq!(config.http.address, "0.0.0.0:9000");
        assert_eq!(config.client.ping_interval, Duration::from_secs(90));
        assert_eq!(config.client.allowed_origins, ["https://a.example"]);
        assert_eq!(config.client.token.issuer, "me");
        assert_eq!(config.channel.namespaces[0].name, "chat");
        assert!(config.channel.namespaces[0].options.presence);
        assert_eq!(
            config.client.pong_timeout,
            Duration::from_secs(8),
            "untouched"
        );
    }

    #[test]
    fn unknown_key_in_file_names_the_full_path_file_and_line() {
        let error = file_err("[http]\naddress = \"127.0.0.1:1\"\n\n[client]\ntokn = 1\n");
        assert_eq!(
            error.to_string(),
            r#"unknown key "client.tokn" in rootcast.toml line 5"#
        );
    }

    #[test]
    fn unknown_keys_are_found_at_every_depth() {
        let key_of = |text: &str| match file_err(text) {
            ConfigError::UnknownKey { key, .. } => key,
            other => panic!("expected an unknown key, got {other:?}"),
        };
        assert_eq!(key_of("htp = 1"), "htp");
        assert_eq!(key_of("[client.token]\nhmac = \"x\""), "client.token.hmac");
        assert_eq!(key_of("client.token.hmac = \"x\""), "client.token.hmac");
        assert_eq!(
            key_of("[channel.without_namespace]\npresense = true"),
            "channel.without_namespace.presense"
        );
        assert_eq!(
            key_of(
                "[[channel.namespaces]]\nname = \"a\"\n[[channel.namespaces]]\nname = \"b\"\nhistory = 1"
            ),
            "channel.namespaces[1].history"
        );
        assert_eq!(
            key_of("[channel]\nnamespaces = [{ name = \"a\", tokn = 1 }]"),
            "channel.namespaces[0].tokn"
        );
    }

    #[test]
    fn bad_types_in_file_name_the_key_line_and_what_is_expected() {
        let (key, line, reason) = bad_file_value("[client]\n\nping_interval = 25\n");
        assert_eq!((key.as_str(), line), ("client.ping_interval", 3));
        assert!(
            reason.contains(r#"expected a duration string such as "25s""#),
            "{reason}"
        );

        let (key, line, reason) = bad_file_value("[client]\nping_interval = \"25x\"\n");
        assert_eq!((key.as_str(), line), ("client.ping_interval", 2));
        assert!(reason.contains(r#"unknown unit "x""#), "{reason}");

        let (key, _, reason) = bad_file_value("[http_api]\ninsecure = \"yes\"\n");
        assert_eq!(key, "http_api.insecure");
        assert!(reason.contains("expected a boolean"), "{reason}");

        let (key, _, reason) = bad_file_value("[log]\nformat = \"xml\"\n");
        assert_eq!(key, "log.format");
        assert!(reason.contains("`text` or `json`"), "{reason}");

        let (key, _, reason) = bad_file_value("[client]\nqueue_max_size = -1\n");
        assert_eq!(key, "client.queue_max_size");
        assert!(reason.contains("expected usize"), "{reason}");

        let (key, _, reason) = bad_file_value("[client]\ncommand_rate_limit = 5000000000\n");
        assert_eq!(key, "client.command_rate_limit");
        assert!(reason.contains("expected u32"), "{reason}");

        let (key, _, reason) = bad_file_value("client = 5\n");
        assert_eq!(key, "client");
        assert!(reason.contains("expected struct ClientConfig"), "{reason}");

        let (key, _, _) = bad_file_value("[client]\nallowed_origins = \"https://a.example\"\n");
        assert_eq!(key, "client.allowed_origins");
    }

    #[test]
    fn bad_namespace_fields_name_the_field_not_just_the_namespace() {
        let (key, line, reason) =
            bad_file_value("[[channel.namespaces]]\nname = \"chat\"\nhistory_ttl = 300\n");
        assert_eq!(
            (key.as_str(), line),
            ("channel.namespaces[0].history_ttl", 3)
        );
        assert!(reason.contains("expected a duration"), "{reason}");

        let (key, _, reason) = bad_file_value("[[channel.namespaces]]\nname = 7\n");
        assert_eq!(key, "channel.namespaces[0].name");
        assert!(reason.contains("expected a string"), "{reason}");

        let (key, line, reason) =
            bad_file_value("[http]\n[[channel.namespaces]]\npresence = true\n");
        assert_eq!((key.as_str(), line), ("channel.namespaces[0]", 2));
        assert!(reason.contains("missing field `name`"), "{reason}");

        let (key, _, _) = bad_file_value("[channel]\nnamespaces = [5]\n");
        assert_eq!(key, "channel.namespaces[0]");
    }

    #[test]
    fn invalid_toml_is_a_parse_error_with_the_position() {
        let error = file_err("[client\nping_interval = \"25s\"\n");
        let ConfigError::Parse { file, message } = &error else {
            panic!("expected a parse error, got {error:?}");
        };
        assert_eq!(file, "rootcast.toml");
        assert!(message.contains("line 1"), "{message}");
    }

    #[test]
    fn load_reads_the_file_then_applies_env_on_top() {
        let path =
            std::env::temp_dir().join(format!("rootcast-config-test-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[http]\naddress = \"0.0.0.0:9000\"\n[client]\nchannel_limit = 5\n",
        )
        .unwrap();
        let loaded = Config::load(
            Some(&path),
            vars(&[("ROOTCAST_CLIENT_CHANNEL_LIMIT", "7"), ("HOME", "/root")]),
        );
        std::fs::remove_file(&path).unwrap();
        let config = loaded.unwrap();
        assert_eq!(config.http.address, "0.0.0.0:9000", "from the file");
        assert_eq!(config.client.channel_limit, 7, "the env overrides the file");
    }

    #[test]
    fn load_names_a_file_it_cannot_read() {
        let path = Path::new("/nonexistent/rootcast.toml");
        let error = Config::load(Some(path), vars(&[])).unwrap_err();
        assert!(matches!(&error, ConfigError::Read { path: p, .. } if p == path));
        assert!(error.to_string().contains("/nonexistent/rootcast.toml"));
    }

    #[test]
    fn load_names_the_file_in_errors() {
        let path = std::env::temp_dir().join(format!(
            "rootcast-config-test-bad-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, "[client]\ntokn = 1\n").unwrap();
        let loaded = Config::load(Some(&path), vars(&[]));
        std::fs::remove_file(&path).unwrap();
        let message = loaded.unwrap_err().to_string();
        assert_eq!(
            message,
            format!(r#"unknown key "client.tokn" in {} line 2"#, path.display())
        );
    }

    #[test]
    fn env_strings_at_any_depth() {
        let config = env_ok(&[
            ("ROOTCAST_HTTP_ADDRESS", "0.0.0.0:9000"),
            ("ROOTCAST_CLIENT_TOKEN_HMAC_SECRET_KEY", "s3cret"),
            ("ROOTCAST_HTTP_API_KEY", "api-key"),
            ("ROOTCAST_LOG_LEVEL", "rootcast_hub=debug,info"),
        ]);
        assert_eq!(config.http.address, "0.0.0.0:9000");
        assert_eq!(config.client.token.hmac_secret_key, "s3cret");
        assert_eq!(config.http_api.key, "api-key");
        assert_eq!(config.log.level, "rootcast_hub=debug,info");
    }

    #[test]
    fn env_booleans() {
        let config = env_ok(&[
            (
                "ROOTCAST_CLIENT_ALLOW_ANONYMOUS_CONNECT_WITHOUT_TOKEN",
                "true",
            ),
            ("ROOTCAST_CHANNEL_WITHOUT_NAMESPACE_PRESENCE", "true"),
            ("ROOTCAST_HTTP_API_INSECURE", "false"),
        ]);
        assert!(config.client.allow_anonymous_connect_without_token);
        assert!(config.channel.without_namespace.presence);
        assert!(!config.http_api.insecure);

        let error = from_env(&[("ROOTCAST_HTTP_API_INSECURE", "yes")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"bad value for "http_api.insecure" in environment variable ROOTCAST_HTTP_API_INSECURE: expected true or false, got "yes""#
        );
    }

    #[test]
    fn env_integers() {
        let config = env_ok(&[
            ("ROOTCAST_CLIENT_QUEUE_MAX_SIZE", "4096"),
            ("ROOTCAST_CLIENT_COMMAND_RATE_LIMIT", "0"),
            ("ROOTCAST_CHANNEL_WITHOUT_NAMESPACE_HISTORY_SIZE", " 10 "),
        ]);
        assert_eq!(config.client.queue_max_size, 4096);
        assert_eq!(config.client.command_rate_limit, 0);
        assert_eq!(config.channel.without_namespace.history_size, 10);

        for (value, expected) in [
            ("lots", "expected a whole number"),
            ("1.5", "expected a whole number"),
            ("-1", "expected usize"),
        ] {
            let error = from_env(&[("ROOTCAST_CLIENT_QUEUE_MAX_SIZE", value)]).unwrap_err();
            let ConfigError::BadValue { key, reason, .. } = &error else {
                panic!("expected a bad value for {value:?}, got {error:?}");
            };
            assert_eq!(key, "client.queue_max_size");
            assert!(reason.contains(expected), "{value:?}: {reason}");
        }
    }

    #[test]
    fn env_durations() {
        let config = env_ok(&[
            ("ROOTCAST_CLIENT_PING_INTERVAL", "30s"),
            ("ROOTCAST_HTTP_SHUTDOWN_TIMEOUT", "1500ms"),
            ("ROOTCAST_CHANNEL_WITHOUT_NAMESPACE_HISTORY_TTL", "1h"),
        ]);
        assert_eq!(config.client.ping_interval, Duration::from_secs(30));
        assert_eq!(config.http.shutdown_timeout, Duration::from_millis(1500));
        assert_eq!(
            config.channel.without_namespace.history_ttl,
            Duration::from_secs(3600)
        );

        let error = from_env(&[("ROOTCAST_CLIENT_PING_INTERVAL", "30")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"bad value for "client.ping_interval" in environment variable ROOTCAST_CLIENT_PING_INTERVAL: duration "30" has no unit (use ms, s, m, h or d)"#
        );
    }

    #[test]
    fn env_enum() {
        assert_eq!(
            env_ok(&[("ROOTCAST_LOG_FORMAT", "json")]).log.format,
            LogFormat::Json
        );
        let error = from_env(&[("ROOTCAST_LOG_FORMAT", "JSON")]).unwrap_err();
        assert!(
            error.to_string().contains("expected `text` or `json`"),
            "{error}"
        );
    }

    #[test]
    fn env_lists_comma_separated_or_toml_array() {
        let config = env_ok(&[(
            "ROOTCAST_CLIENT_ALLOWED_ORIGINS",
            "https://a.example, https://b.example,",
        )]);
        assert_eq!(
            config.client.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        let config = env_ok(&[(
            "ROOTCAST_CLIENT_ALLOWED_ORIGINS",
            r#"["https://a.example,b", "*"]"#,
        )]);
        assert_eq!(config.client.allowed_origins, ["https://a.example,b", "*"]);
        let config = env_ok(&[("ROOTCAST_CLIENT_ALLOWED_ORIGINS", "")]);
        assert!(config.client.allowed_origins.is_empty());
    }

    #[test]
    fn env_namespaces_as_toml_array_of_inline_tables() {
        let config = env_ok(&[(
            "ROOTCAST_CHANNEL_NAMESPACES",
            r#"[{ name = "chat", history_size = 100, history_ttl = "300s", presence = true }, { name = "sys" }]"#,
        )]);
        let namespaces = &config.channel.namespaces;
        assert_eq!(namespaces.len(), 2);
        assert_eq!(namespaces[0].name, "chat");
        assert_eq!(namespaces[0].options.history_size, 100);
        assert_eq!(namespaces[0].options.history_ttl, Duration::from_secs(300));
        assert!(namespaces[0].options.presence);
        assert_eq!(namespaces[1].name, "sys");
        assert_eq!(namespaces[1].options, NamespaceOptions::default());

        for (value, expected) in [
            (r#"[{ name = "chat", tokn = 1 }]"#, "unknown field `tokn`"),
            (
                r#"[{ name = "chat", history_ttl = 5 }]"#,
                "expected a duration",
            ),
            (r#"[{ presence = true }]"#, "missing field `name`"),
            (r#"[{ name = "chat" "#, "expected a TOML array"),
            ("chat", "expected struct Namespace"),
        ] {
            let error = from_env(&[("ROOTCAST_CHANNEL_NAMESPACES", value)]).unwrap_err();
            let ConfigError::BadValue { key, reason, .. } = &error else {
                panic!("expected a bad value for {value:?}, got {error:?}");
            };
            assert_eq!(key, "channel.namespaces");
            assert!(reason.contains(expected), "{value:?}: {reason}");
        }
    }

    #[test]
    fn unknown_env_var_is_named() {
        let error = from_env(&[("ROOTCAST_HTTP_ADRESS", "0.0.0.0:1")]).unwrap_err();
        assert!(
            matches!(&error, ConfigError::UnknownEnvVar { name } if name == "ROOTCAST_HTTP_ADRESS")
        );
        assert!(
            error
                .to_string()
                .starts_with("unknown environment variable ROOTCAST_HTTP_ADRESS:")
        );
        // A section is not a key, and ROOTCAST_LOG is not reserved.
        for name in [
            "ROOTCAST_LOG",
            "ROOTCAST_CLIENT",
            "ROOTCAST_",
            "ROOTCAST_http_address",
        ] {
            let error = from_env(&[(name, "x")]).unwrap_err();
            assert!(
                matches!(&error, ConfigError::UnknownEnvVar { name: n } if n == name),
                "{name}: {error:?}"
            );
        }
    }

    #[test]
    fn config_file_var_and_other_prefixes_are_ignored() {
        let config = env_ok(&[
            (CONFIG_FILE_ENV, "/etc/rootcast.toml"),
            ("RUST_LOG", "debug"),
            ("rootcast_http_address", "x"),
            ("XROOTCAST_HTTP_ADDRESS", "x"),
        ]);
        assert_eq!(config, Config::default());
    }

    #[test]
    fn every_key_has_a_distinct_env_var() {
        let paths = key_paths();
        assert!(paths.contains(&"client.token.hmac_secret_key".to_owned()));
        assert!(paths.contains(&"channel.without_namespace.presence".to_owned()));
        assert!(paths.contains(&NAMESPACES_KEY.to_owned()));
        assert!(
            !paths.contains(&"client".to_owned()),
            "sections are not keys"
        );
        let mut names: Vec<String> = paths.iter().map(|path| env_var_name(path)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), paths.len(), "two key paths share an env var");
        assert!(!names.contains(&CONFIG_FILE_ENV.to_owned()));
    }

    #[test]
    fn every_key_can_be_set_from_the_environment() {
        // The default value written as text, set back through its variable, must load.
        let defaults = default_table();
        for path in key_paths() {
            let text = match leaf(&defaults, &path) {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let name = env_var_name(&path);
            assert_eq!(
                from_env(&[(name.as_str(), text.as_str())]).unwrap(),
                Config::default(),
                "{name}={text}"
            );
        }
    }

    fn leaf<'t>(table: &'t Table, path: &str) -> &'t Value {
        path.split('.')
            .try_fold(None::<&Value>, |value, part| match value {
                None => table.get(part).map(Some),
                Some(value) => value.get(part).map(Some),
            })
            .flatten()
            .unwrap_or_else(|| panic!("{path} not found"))
    }

    #[test]
    fn set_for_cli_flags() {
        let mut config = Config::default();
        config.set("http.address", "127.0.0.1:0").unwrap();
        config.set("client.ping_interval", "1m").unwrap();
        config.set("http_api.insecure", "true").unwrap();
        config
            .set("client.allowed_origins", "https://a.example")
            .unwrap();
        assert_eq!(config.http.address, "127.0.0.1:0");
        assert_eq!(config.client.ping_interval, Duration::from_secs(60));
        assert!(config.http_api.insecure);
        assert_eq!(config.client.allowed_origins, ["https://a.example"]);
    }

    #[test]
    fn set_keeps_earlier_layers_and_namespaces() {
        let mut config = Config::from_toml_str(
            "[[channel.namespaces]]\nname = \"chat\"\nhistory_size = 10\nhistory_ttl = \"1500ms\"\n",
        )
        .unwrap();
        let before = config.clone();
        config.set("log.level", "debug").unwrap();
        assert_eq!(config.channel, before.channel);
        assert_eq!(config.log.level, "debug");
    }

    #[test]
    fn set_rejects_unknown_keys_sections_and_bad_values() {
        let mut config = Config::default();
        let error = config.set("client.tokn", "x").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"unknown key "client.tokn" on the command line"#
        );
        for section in ["client", "client.token", "", "client."] {
            let error = config.set(section, "x").unwrap_err();
            assert!(
                matches!(&error, ConfigError::UnknownKey { key, .. } if key == section),
                "{section:?}: {error:?}"
            );
        }
        let error = config.set("client.pong_timeout", "soon").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"bad value for "client.pong_timeout" on the command line: duration "soon" must be a whole number followed by a unit, e.g. "25s""#
        );
        assert_eq!(config, Config::default(), "failed sets change nothing");
    }

    #[test]
    fn to_toml_string_round_trips_and_writes_durations_as_written() {
        let mut config = Config::from_toml_str(
            "[client]\nping_interval = \"90s\"\nallowed_origins = [\"*\"]\n\
             [[channel.namespaces]]\nname = \"chat\"\nhistory_size = 100\nhistory_ttl = \"300s\"\n",
        )
        .unwrap();
        config.http.shutdown_timeout = Duration::from_micros(1_500);
        let text = config.to_toml_string().unwrap();
        assert!(text.contains("ping_interval = \"90s\""), "{text}");
        assert!(text.contains("pong_timeout = \"8s\""), "{text}");
        assert!(text.contains("history_ttl = \"5m\""), "{text}");
        assert!(text.contains("shutdown_timeout = \"1500us\""), "{text}");
        assert!(text.contains("[[channel.namespaces]]"), "{text}");
        assert_eq!(Config::from_toml_str(&text).unwrap(), config);
    }

    #[test]
    fn numbers_above_i64_round_trip_through_text_but_cannot_be_set() {
        let mut config = Config::default();
        config.client.queue_max_size = usize::MAX;
        let text = config.to_toml_string().unwrap();
        assert_eq!(Config::from_toml_str(&text).unwrap(), config);
        assert!(matches!(
            config.set("http.address", "127.0.0.1:0"),
            Err(ConfigError::NotRepresentable(_))
        ));
    }
}
