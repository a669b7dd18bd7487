//! What can go wrong while loading or validating a configuration, worded for the operator
//! who has to fix it.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration was rejected.
///
/// Loading ([`Config::load`](crate::Config::load), [`Config::from_toml_str`](crate::Config::from_toml_str),
/// [`Config::set`](crate::Config::set)) stops at the first problem; [`Config::validate`](crate::Config::validate)
/// reports every problem it finds at once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is not valid TOML, or its shape matches no configuration.
    #[error("{file} is not a valid rootcast config: {message}")]
    Parse { file: String, message: String },
    /// A key that rootcast does not know, e.g. a misspelling.
    #[error("unknown key \"{key}\" {origin}")]
    UnknownKey { key: String, origin: Origin },
    /// A `ROOTCAST_…` environment variable that names no config key.
    #[error(
        "unknown environment variable {name}: it names no config key (the name is ROOTCAST_ \
         followed by the key path upper-cased with \".\" written as \"_\", e.g. \
         ROOTCAST_HTTP_ADDRESS for http.address)"
    )]
    UnknownEnvVar { name: String },
    /// A known key with a value of the wrong type or form.
    #[error("bad value for \"{key}\" {origin}: {reason}")]
    BadValue {
        key: String,
        origin: Origin,
        reason: String,
    },
    /// The configuration could not be converted to TOML. [`Config::set`](crate::Config::set)
    /// and environment variables report it when code stored a number above 2^63 - 1, which
    /// the TOML value tree they go through cannot hold; nothing loaded from text can cause it.
    #[error("the configuration cannot be written as TOML: {0}")]
    NotRepresentable(String),
    /// [`Config::validate`](crate::Config::validate) found one or more problems.
    #[error("invalid configuration:{}", list(problems))]
    Invalid { problems: Vec<Problem> },
}

/// Where a key or value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A config file (or TOML text); `line` is 1-based.
    File { file: String, line: Option<usize> },
    /// A `ROOTCAST_…` environment variable.
    Env { var: String },
    /// [`Config::set`](crate::Config::set), which the binary uses for command-line flags.
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                file,
                line: Some(line),
            } => write!(f, "in {file} line {line}"),
            Origin::File { file, line: None } => write!(f, "in {file}"),
            Origin::Env { var } => write!(f, "in environment variable {var}"),
            Origin::CommandLine => write!(f, "on the command line"),
        }
    }
}

/// One rule of [`Config::validate`](crate::Config::validate) that the configuration breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Full key path, e.g. `client.pong_timeout` or `channel.namespaces[1].history_ttl`
    /// (namespaces are counted from 0 in file order).
    pub key: String,
    /// Why the value is rejected and what would be accepted.
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}
