//! `rootcast audit verify` as an operator runs it: an intact log is reported with its
//! entry count and head hash (exit 0); after one row is changed behind the binary's back
//! the broken entry is named (exit 1); a store that cannot be opened is an `error: …`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{rootcast_command, wait_with_timeout};
use rootcast_hub::directive::{Directive, Priority, Target};
use rootcast_hub::store::{Store, StoreOptions};
use sqlx::Connection;

/// A temporary directory with a store file and a config naming it, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "rootcast-audit-cli-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("creating the scratch directory");
        Scratch { dir }
    }

    fn store_url(&self) -> String {
        format!("sqlite://{}", self.dir.join("rootcast.db").display())
    }

    fn config(&self, store_url: &str) -> PathBuf {
        let path = self
            .dir
            .join(format!("{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, format!("[store]\nurl = {store_url:?}\n")).expect("config");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `rootcast audit verify --config FILE`: (exit code, stdout, stderr).
fn verify(config: &Path) -> (i32, String, String) {
    let mut child = rootcast_command()
        .args(["audit", "verify", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running rootcast");
    let status = wait_with_timeout(&mut child, Duration::from_secs(60)).expect("verify finishes");
    let read = |pipe: Option<&mut dyn std::io::Read>| {
        let mut text = String::new();
        if let Some(pipe) = pipe {
            pipe.read_to_string(&mut text).expect("reading output");
        }
        text
    };
    let stdout = read(child.stdout.as_mut().map(|p| p as &mut dyn std::io::Read));
    let stderr = read(child.stderr.as_mut().map(|p| p as &mut dyn std::io::Read));
    (status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_intact_then_the_tampered_entry() {
    let scratch = Scratch::new();
    let url = scratch.store_url();
    let store = Store::open(&StoreOptions::new(url.clone())).await.unwrap();
    store.load_demo().await.unwrap();
    let directive = Directive {
        id: "d1".into(),
        title: "Flood drill".into(),
        body: "Meet at 9.".into(),
        priority: Priority::Urgent,
        target: Target::subtree("xian-01"),
        ack_required: true,
        deadline: None,
        created_by: "hq-admin".into(),
        created_at: 1_795_910_400_000,
        version: 1,
    };
    store.create_directive(&directive).await.unwrap();
    store
        .mark_delivered("xian-01", "d1", 1_795_910_401_000)
        .await
        .unwrap();
    store
        .acknowledge("xian-01", "d1", "alice", 1_795_910_402_000)
        .await
        .unwrap();
    let expected = store.verify_audit().await.unwrap();
    assert_eq!(expected.count, 3);
    store.close().await;

    let config = scratch.config(&url);
    let (code, stdout, stderr) = verify(&config);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(
        stdout.trim(),
        format!("audit log intact: 3 entries, head {}", expected.head)
    );

    // Change the recorded acknowledger of entry 3 behind the binary's back.
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let changed = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    raw.close().await.unwrap();

    let (code, stdout, stderr) = verify(&config);
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.starts_with("audit log BROKEN at entry 3: hash mismatch"),
        "{stdout}"
    );
}

#[test]
fn an_unreadable_store_is_an_error() {
    let scratch = Scratch::new();
    let config = scratch.config("mysql://nowhere/x");
    let (code, stdout, stderr) = verify(&config);
    assert_eq!(code, 1, "stdout: {stdout}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}
