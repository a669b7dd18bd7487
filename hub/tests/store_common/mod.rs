//! Shared by the store's conformance suites: run a test on a fresh SQLite file and in a
//! fresh PostgreSQL schema, and declare each test once per backend.
//!
//! PostgreSQL is `ROOTCAST_TEST_POSTGRES_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/test`. When it does not answer, its tests are
//! skipped with a note, unless `ROOTCAST_REQUIRE_SERVICES` is set (then they fail).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use futures_util::FutureExt;
use rootcast_hub::store::{Store, StoreOptions};
use sqlx::Connection;

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// One test's database: how to open it (again).
pub struct TestDb {
    pub options: StoreOptions,
}

impl TestDb {
    pub async fn open(&self) -> Store {
        Store::open(&self.options).await.expect("open the store")
    }

    /// Runs raw SQL (one or more statements) on the test's database behind the store's
    /// back (to tamper with it, or to build an old schema), returning the number of rows
    /// affected. A SQLite file is created when missing. Not every suite uses it.
    #[allow(dead_code)]
    pub async fn execute_raw(&self, sql: &str) -> u64 {
        use std::str::FromStr;
        let url = &self.options.url;
        if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                .expect("a SQLite URL")
                .create_if_missing(true);
            if let Some(dir) = options.get_filename().parent() {
                std::fs::create_dir_all(dir).expect("create the data directory");
            }
            let mut connection = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("open the SQLite file");
            let done = sqlx::raw_sql(sql)
                .execute(&mut connection)
                .await
                .expect(sql);
            done.rows_affected()
        } else {
            let mut connection = sqlx::PgConnection::connect(url)
                .await
                .expect("connect to PostgreSQL");
            if let Some(schema) = &self.options.postgres_schema {
                sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                    .execute(&mut connection)
                    .await
                    .expect("create the schema");
                sqlx::query(&format!("SET search_path TO {schema}"))
                    .execute(&mut connection)
                    .await
                    .expect("set the schema");
            }
            let done = sqlx::raw_sql(sql)
                .execute(&mut connection)
                .await
                .expect(sql);
            done.rows_affected()
        }
    }
}

/// Runs `test` on a fresh SQLite file, removed afterwards.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir: PathBuf =
        std::env::temp_dir().join(format!("rootcast-store-{}", uuid::Uuid::new_v4().simple()));
    // A directory that does not exist yet: opening must create it.
    let url = format!("sqlite://{}/nested/rootcast.db", dir.display());
    let outcome = AssertUnwindSafe(test(TestDb {
        options: StoreOptions::new(url),
    }))
    .catch_unwind()
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `test` in a fresh PostgreSQL schema, dropped afterwards.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let url =
        std::env::var("ROOTCAST_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    let mut admin = match sqlx::PgConnection::connect(&url).await {
        Ok(connection) => connection,
        Err(error) => {
            let required = std::env::var("ROOTCAST_REQUIRE_SERVICES")
                .is_ok_and(|value| !value.is_empty() && value != "0");
            if required {
                panic!(
                    "PostgreSQL at {url} does not answer ({error}) and ROOTCAST_REQUIRE_SERVICES is set"
                );
            }
            eprintln!("skipped: PostgreSQL at {url} does not answer ({error})");
            return;
        }
    };
    let schema = format!("rc_test_{}", uuid::Uuid::new_v4().simple());
    let options = StoreOptions {
        postgres_schema: Some(schema.clone()),
        ..StoreOptions::new(url)
    };
    let outcome = AssertUnwindSafe(test(TestDb { options }))
        .catch_unwind()
        .await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut admin)
        .await
        .expect("drop the test schema");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares each test once per backend: `sqlite::name` and `postgres::name`.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::store_common::on_sqlite(crate::$name).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                crate::store_common::on_postgres(crate::$name).await
            })*
        }
    };
}
