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
        let mut table = Table::try_from(&*self)
            .map_err(|e| ConfigError::NotRepresentable(e.to_string()))?;
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
