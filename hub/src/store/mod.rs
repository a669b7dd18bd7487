//! The durable store: one data-access layer over SQLite (embedded, the default) and
//! PostgreSQL (for several hub nodes).
//!
//! [`Store`] is an enum over the two sqlx pools, not a trait with two implementations:
//! almost every statement is the same SQL text on both (numbered `$1` parameters, which
//! SQLite accepts too), so each method is written once and expanded for each backend by
//! the `with_pool!` macro; where the dialects differ (starting a tree write, see
//! `BeginWrite`) a small private trait gives each backend its own statement. Queries are
//! built at run time (no compile-time checked macros), so building needs no database.
//!
//! # Opening and migrations
//! [`Store::open`] connects and applies the migrations embedded from
//! `hub/migrations/{sqlite,postgres}/NNNN_name.sql` (versioned, checksummed by sqlx and
//! recorded in `_sqlx_migrations`; applying them again is a no-op; on PostgreSQL an
//! advisory lock keeps two nodes starting together from racing). A SQLite file and its
//! directory are created when missing.
//!
//! # Guarantees
//! - Every write that changes the shape of the tree (create, move, delete, import) runs in
//!   one transaction, serialised against other tree writes: in-process by a mutex, across
//!   processes by `BEGIN IMMEDIATE` (SQLite) or a transaction-scoped advisory lock
//!   (PostgreSQL). A failed write leaves nothing behind.
//! - Every send, correction, retraction, delivery, read, acknowledgement and feedback step
//!   appends its entry to the hash-chained audit log in the same transaction, so the log
//!   and the data agree after any crash; [`Store::verify_audit`] checks the chain.
//! - Bad input is an error ([`StoreError`]), never a panic.
//!
//! # Adding to it
//! Each domain gets its own file with an `impl Store` block and its own migration
//! (`0002_directives.sql`, …) for both backends: [`org`] is the pattern; `directives`
//! (sends, per-unit inboxes as ordered `sent`/`corrected`/`retracted` entries, versions,
//! acknowledgements per version), `feedback` (threads from units), `meetings` (meetings,
//! their audience, announcements, the attendance log), `qa` (questions, votes, answers)
//! and `audit` (the tamper-evident log) follow it. A write that people must be able to account for
//! appends its audit entry **inside its own transaction**: start it with
//! `BeginAudited::begin_audited` (or `BeginWrite::begin_write` then
//! `AuditTx::lock_audit` when it also needs the tree lock), make the change, then
//! `AuditTx::append_audit`, then commit. Lock order on PostgreSQL: tree, then audit, then
//! rows.

mod accounts;
mod audit;
mod chat;
mod directives;
mod feedback;
mod jobs;
mod listing;
mod meetings;
mod org;
mod qa;

use std::borrow::Cow;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Postgres, Sqlite, Transaction};
use thiserror::Error;

use crate::org::OrgError;
use crate::org::tree::ImportErrors;

pub use audit::{AuditBreak, AuditEntry, AuditReport};
pub use chat::{ChatMessage, ChatSanction, ChatSettings, ChatState, NewChatMessage, SanctionKind};
pub use directives::{Acknowledgement, InboxEntry, Retraction, VersionRecord};
pub use feedback::{FeedbackMessage, FeedbackThread, NewThread, ThreadFilter};
pub use jobs::{ScheduledDirective, SentNudge, SilentUnit};
pub use meetings::{
    Announcement, AttendanceRecord, Meeting, MeetingScope, MeetingStatus, MeetingUnit, NewMeeting,
};
pub use org::{DemoLoad, ImportReport};
pub use qa::{Answer, NewQuestion, Question, QuestionStatus};

/// How long a connection waits for SQLite's write lock, or for a pooled connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The PostgreSQL advisory lock that serialises tree writes across nodes.
const TREE_LOCK_KEY: i64 = 0x726f_6f74_6361_7374; // "rootcast"

/// Migrations for SQLite: (version, description, SQL).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "org",
        include_str!("../../migrations/sqlite/0001_org.sql"),
    ),
    (
        2,
        "directives",
        include_str!("../../migrations/sqlite/0002_directives.sql"),
    ),
    (
        3,
        "accounts",
        include_str!("../../migrations/sqlite/0003_accounts.sql"),
    ),
    (
        4,
        "directive_history_feedback_audit",
        include_str!("../../migrations/sqlite/0004_directive_history_feedback_audit.sql"),
    ),
    (
        5,
        "directive_jobs",
        include_str!("../../migrations/sqlite/0005_directive_jobs.sql"),
    ),
    (
        6,
        "meetings",
        include_str!("../../migrations/sqlite/0006_meetings.sql"),
    ),
    (
        7,
        "chat",
        include_str!("../../migrations/sqlite/0007_chat.sql"),
    ),
];
/// Migrations for PostgreSQL, the same versions as for SQLite.
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "org",
        include_str!("../../migrations/postgres/0001_org.sql"),
    ),
    (
        2,
        "directives",
        include_str!("../../migrations/postgres/0002_directives.sql"),
    ),
    (
        3,
        "accounts",
        include_str!("../../migrations/postgres/0003_accounts.sql"),
    ),
    (
        4,
        "directive_history_feedback_audit",
        include_str!("../../migrations/postgres/0004_directive_history_feedback_audit.sql"),
    ),
    (
        5,
        "directive_jobs",
        include_str!("../../migrations/postgres/0005_directive_jobs.sql"),
    ),
    (
        6,
        "meetings",
        include_str!("../../migrations/postgres/0006_meetings.sql"),
    ),
    (
        7,
        "chat",
        include_str!("../../migrations/postgres/0007_chat.sql"),
    ),
];

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(
        "store.url {url:?} is not understood: {reason} (expected \"sqlite://path/to/file.db\", \
         \"sqlite::memory:\" or \"postgres://user@host:port/database\")"
    )]
    BadUrl { url: String, reason: String },
    #[error("cannot create the data directory {}: {cause}", path.display())]
    DataDir {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot open the store at {url}: {cause}")]
    Open { url: String, cause: sqlx::Error },
    #[error("applying the store's migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store query failed: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unit {0:?} does not exist")]
    UnitNotFound(String),
    #[error("unit {0:?} already exists")]
    UnitExists(String),
    #[error(
        "cannot delete unit {id:?}: it has {children} child unit(s); move or delete them first"
    )]
    HasChildren { id: String, children: i64 },
    #[error(transparent)]
    Invalid(#[from] OrgError),
    #[error(transparent)]
    Import(#[from] ImportErrors),
    #[error("directive {0:?} already exists")]
    DirectiveExists(String),
    #[error("directive {0:?} does not exist")]
    DirectiveNotFound(String),
    #[error("directive {directive:?} was not sent to unit {unit:?}")]
    NotInInbox { directive: String, unit: String },
    #[error(transparent)]
    Directive(#[from] crate::directive::DirectiveError),
    #[error("an account named {0:?} already exists")]
    AccountExists(String),
    #[error("account {0:?} does not exist")]
    UnknownAccount(String),
    #[error("unit credential {0:?} does not exist")]
    UnknownCredential(String),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(
        "directive {directive:?} is at version {current}; version {given} is out of date \
         (read the correction, then acknowledge version {current})"
    )]
    StaleVersion {
        directive: String,
        given: i32,
        current: i32,
    },
    #[error("directive {0:?} was retracted; it can no longer be acknowledged or corrected")]
    Retracted(String),
    #[error("feedback thread {0:?} does not exist")]
    ThreadNotFound(String),
    #[error("feedback thread {0:?} is closed")]
    ThreadClosed(String),
    #[error(transparent)]
    Feedback(#[from] crate::directive::feedback::FeedbackError),
    #[error("meeting {0:?} does not exist")]
    MeetingNotFound(String),
    #[error("meeting {0:?} already exists")]
    MeetingExists(String),
    #[error("question {0:?} does not exist")]
    QuestionNotFound(String),
    /// A meeting or question is not in a state that allows the step.
    #[error("{0}")]
    MeetingConflict(String),
    /// A meeting, announcement, question or answer that breaks a rule (blank, too long,
    /// unknown level, bad stream name).
    #[error("{0}")]
    MeetingInput(String),
    #[error("chat message {0} does not exist in this meeting")]
    ChatMessageNotFound(i64),
    /// A chat message or sanction is not in a state that allows the step.
    #[error("{0}")]
    ChatConflict(String),
    /// A chat setting or sanction that breaks a rule.
    #[error("{0}")]
    ChatInput(String),
    #[error("the store holds a value it cannot read ({0}); was it written by a newer rootcast?")]
    Corrupt(String),
}

/// Which database a [`Store`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

/// How to open a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// `sqlite://path/to/file.db` (relative to the working directory; created when
    /// missing), `sqlite::memory:`, or `postgres://user:password@host:port/database`.
    pub url: String,
    /// Most connections in the pool (SQLite in memory always uses one).
    pub max_connections: u32,
    /// PostgreSQL only: keep every table in this schema (created when missing) instead of
    /// the user's default search path. Tests use one schema per run.
    pub postgres_schema: Option<String>,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> StoreOptions {
        StoreOptions {
            url: url.into(),
            max_connections: 10,
            postgres_schema: None,
        }
    }

    /// The options the `[store]` configuration section asks for.
    pub fn from_config(config: &rootcast_config::StoreConfig) -> StoreOptions {
        StoreOptions {
            url: config.url.clone(),
            max_connections: config.max_connections,
            postgres_schema: None,
        }
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The durable store. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// The URL with any password hidden, for messages.
    url: String,
    /// Serialises tree writes within this process. A `tokio` mutex because it is held
    /// across the awaits of the write's transaction.
    tree_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is: the body
/// is written once and compiled for each.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Starting a transaction that changes the tree, in each backend's way of making it
/// exclusive across processes.
trait BeginWrite {
    type Db: sqlx::Database;
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>, sqlx::Error>;
}

impl BeginWrite for SqlitePool {
    type Db = Sqlite;
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        // Takes the write lock now, so the reads that plan the write see what it writes
        // over (a deferred transaction would fail to upgrade if another wrote meanwhile).
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Db = Postgres;
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(TREE_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }
}

/// Migrations compiled into the binary.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        Cow::Borrowed(description),
                        MigrationType::Simple,
                        Cow::Borrowed(sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// `url` with the password, if any, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

fn valid_schema_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

impl Store {
    /// Connects to the store named by `options.url` and applies pending migrations.
    pub async fn open(options: &StoreOptions) -> Result<Store, StoreError> {
        let url = options.url.trim();
        let redacted = redact_url(url);
        let bad_url = |reason: String| StoreError::BadUrl {
            url: redacted.clone(),
            reason,
        };
        let open_error = |cause| StoreError::Open {
            url: redacted.clone(),
            cause,
        };
        let max_connections = options.max_connections.max(1);
        let backend = if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .map_err(|e| bad_url(e.to_string()))?
                .create_if_missing(true)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT);
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            // No ping before each acquire (sqlx's default): a SQLite connection is a file
            // handle in this process that cannot go away, and the ping is one more round
            // trip to the connection's worker thread per query (7 % of the server's CPU in
            // the meeting benchmark, `docs/benchmarks.md`).
            let mut pool = SqlitePoolOptions::new()
                .acquire_timeout(BUSY_TIMEOUT)
                .test_before_acquire(false);
            let connect = if in_memory {
                // Each connection to `:memory:` is its own database: keep exactly one.
                pool = pool
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
                connect
            } else {
                let file = connect.get_filename();
                if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(|cause| StoreError::DataDir {
                            path: dir.to_owned(),
                            cause,
                        })?;
                }
                pool = pool.max_connections(max_connections);
                connect.journal_mode(SqliteJournalMode::Wal)
            };
            Backend::Sqlite(pool.connect_with(connect).await.map_err(open_error)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let mut connect =
                PgConnectOptions::from_str(url).map_err(|e| bad_url(e.to_string()))?;
            if let Some(schema) = &options.postgres_schema {
                if !valid_schema_name(schema) {
                    return Err(bad_url(format!(
                        "schema {schema:?} must be 1-63 lower-case ASCII letters, digits or '_', \
                         not starting with a digit"
                    )));
                }
                let mut connection = sqlx::PgConnection::connect_with(&connect)
                    .await
                    .map_err(open_error)?;
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&mut connection)
                    .await?;
                connection.close().await?;
                connect = connect.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(BUSY_TIMEOUT)
                .connect_with(connect)
                .await
                .map_err(open_error)?;
            Backend::Postgres(pool)
        } else {
            return Err(bad_url("unknown scheme".to_owned()));
        };
        let store = Store {
            backend,
            url: redacted,
            tree_lock: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations not applied yet. Idempotent; [`Store::open`] calls it.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => {
                Migrator::new(Embedded(SQLITE_MIGRATIONS))
                    .await?
                    .run(pool)
                    .await?
            }
            Backend::Postgres(pool) => {
                Migrator::new(Embedded(POSTGRES_MIGRATIONS))
                    .await?
                    .run(pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The latest migration version applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success";
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i64>(SQL).fetch_one(pool).await?
        }))
    }

    pub fn backend(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// The store's URL with any password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes every connection; operations after this fail.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |list: &[(i64, &str, &str)]| -> Vec<(i64, String)> {
            list.iter().map(|&(v, d, _)| (v, d.to_owned())).collect()
        };
        assert_eq!(versions(SQLITE_MIGRATIONS), versions(POSTGRES_MIGRATIONS));
        let registered: Vec<i64> = SQLITE_MIGRATIONS.iter().map(|&(v, ..)| v).collect();
        assert!(
            registered.windows(2).all(|pair| pair[0] < pair[1]),
            "versions increase: {registered:?}"
        );
        // Every file in each folder is registered, and nothing else.
        for backend in ["sqlite", "postgres"] {
            let folder = format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<i64> = std::fs::read_dir(&folder)
                .expect("the migrations folder")
                .filter_map(|entry| {
                    let name = entry.ok()?.file_name().into_string().ok()?;
                    name.strip_suffix(".sql")?.split('_').next()?.parse().ok()
                })
                .collect();
            files.sort_unstable();
            assert_eq!(files, registered, "{folder}");
        }
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://me@db/x"), "postgres://me@db/x");
        assert_eq!(redact_url("sqlite://data/a.db"), "sqlite://data/a.db");
    }

    #[test]
    fn schema_names() {
        assert!(valid_schema_name("rootcast_test_1"));
        assert!(!valid_schema_name("1a") && !valid_schema_name("a;drop") && !valid_schema_name(""));
    }

    #[tokio::test]
    async fn unknown_scheme_is_a_clear_error() {
        let error = Store::open(&StoreOptions::new("mysql://x"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("unknown scheme"), "{error}");
    }
}
