//! The store's conformance suite for the audit log: every test runs against SQLite and
//! PostgreSQL (see `store_common`). Entries appended by the store's changes are covered
//! with those changes (`store_directives.rs`, `store_feedback.rs`); here: the chain
//! verifies, tampering of every kind is found at the right entry, and concurrent appends
//! from several tasks and two stores (two nodes) never fork the chain.

#[macro_use]
mod store_common;

use rootcast_hub::audit::{GENESIS_HASH, Problem, Record};
use rootcast_hub::store::{AuditEntry, Store};
use store_common::TestDb;

conformance!(
    an_empty_log_verifies,
    entries_chain_and_verify,
    tampering_is_found_at_the_entry,
    concurrent_appends_never_fork_the_chain,
);

/// 2026-11-29T00:00:00Z in ms.
const T0: i64 = 1_795_910_400_000;

fn record(i: i64) -> Record {
    Record {
        at: T0 + i,
        actor: format!("user-{}", i % 3),
        action: "test.event".into(),
        subject: format!("thing:{i}"),
        detail: format!(r#"{{"i":{i},"note":"ünïcode ‖ \"quoted\""}}"#),
    }
}

async fn append(store: &Store, n: i64) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(store.append_audit(record(i)).await.unwrap());
    }
    out
}

async fn an_empty_log_verifies(db: TestDb) {
    let store = db.open().await;
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.count, report.head.as_str()), (0, GENESIS_HASH));
    assert_eq!(report.broken, None);
}

async fn entries_chain_and_verify(db: TestDb) {
    let store = db.open().await;
    let appended = append(&store, 5).await;
    assert_eq!(appended[0].seq, 1);
    assert_eq!(appended[0].prev_hash, GENESIS_HASH);
    for pair in appended.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(store.audit_entries(0, 100).await.unwrap(), appended);
    assert_eq!(store.audit_entries(3, 1).await.unwrap(), appended[3..4]);
    let report = store.verify_audit().await.unwrap();
    assert_eq!(report.count, 5);
    assert_eq!(report.head, appended[4].hash);
    assert_eq!(report.broken, None);
    // Reopening (a restart) continues the same chain.
    store.close().await;
    let store = db.open().await;
    let next = store.append_audit(record(5)).await.unwrap();
    assert_eq!(
        (next.seq, next.prev_hash.as_str()),
        (6, appended[4].hash.as_str())
    );
    assert_eq!(store.verify_audit().await.unwrap().broken, None);
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Puts `entry` back exactly as it was (after a tampering test deleted it).
fn reinsert(entry: &AuditEntry) -> String {
    format!(
        "INSERT INTO audit_log (seq, at, actor, action, subject, detail, prev_hash, hash) \
         VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
        entry.seq,
        entry.record.at,
        quote(&entry.record.actor),
        quote(&entry.record.action),
        quote(&entry.record.subject),
        quote(&entry.record.detail),
        quote(&entry.prev_hash),
        quote(&entry.hash)
    )
}

async fn tampering_is_found_at_the_entry(db: TestDb) {
    let store = db.open().await;
    let entries = append(&store, 10).await;
    let intact = |store: Store| async move {
        let report = store.verify_audit().await.unwrap();
        assert_eq!((report.count, report.broken), (10, None), "restored");
    };

    // An edited detail: that entry's hash no longer matches.
    db.execute_raw(r#"UPDATE audit_log SET detail = '{"i":3}' WHERE seq = 3"#)
        .await;
    let report = store.verify_audit().await.unwrap();
    let broken = report.broken.expect("found");
    assert_eq!(broken.seq, 3);
    assert!(
        matches!(broken.problem, Problem::HashMismatch { .. }),
        "{}",
        broken.problem
    );
    assert!(broken.problem.to_string().contains("hash mismatch"));
    assert_eq!(report.count, 10, "the walk goes on to count every entry");
    db.execute_raw(&format!(
        "UPDATE audit_log SET detail = {} WHERE seq = 3",
        quote(&entries[2].record.detail)
    ))
    .await;
    intact(store.clone()).await;

    // An edited actor with its hash recomputed: the next entry's link breaks.
    let forged = rootcast_hub::audit::entry_hash(
        &entries[3].prev_hash,
        4,
        &Record {
            actor: "mallory".into(),
            ..entries[3].record.clone()
        },
    );
    db.execute_raw(&format!(
        "UPDATE audit_log SET actor = 'mallory', hash = '{forged}' WHERE seq = 4"
    ))
    .await;
    let broken = store.verify_audit().await.unwrap().broken.expect("found");
    assert_eq!(broken.seq, 5);
    assert!(
        matches!(broken.problem, Problem::BrokenLink { .. }),
        "{}",
        broken.problem
    );
    db.execute_raw("DELETE FROM audit_log WHERE seq = 4").await;
    db.execute_raw(&reinsert(&entries[3])).await;
    intact(store.clone()).await;

    // A deleted entry: a gap at the next one.
    assert_eq!(
        db.execute_raw("DELETE FROM audit_log WHERE seq = 6").await,
        1
    );
    let report = store.verify_audit().await.unwrap();
    let broken = report.broken.expect("found");
    assert_eq!(
        (broken.seq, broken.problem),
        (7, Problem::Gap { expected: 6 })
    );
    assert_eq!(report.count, 9);
    db.execute_raw(&reinsert(&entries[5])).await;
    intact(store.clone()).await;

    // Two entries swapped (renumbered): the first of them no longer hashes right.
    db.execute_raw("UPDATE audit_log SET seq = -8 WHERE seq = 8")
        .await;
    db.execute_raw("UPDATE audit_log SET seq = 8 WHERE seq = 9")
        .await;
    db.execute_raw("UPDATE audit_log SET seq = 9 WHERE seq = -8")
        .await;
    let broken = store.verify_audit().await.unwrap().broken.expect("found");
    assert_eq!(broken.seq, 8);
    assert!(
        matches!(
            broken.problem,
            Problem::HashMismatch { .. } | Problem::BrokenLink { .. }
        ),
        "{}",
        broken.problem
    );
}

/// Eight tasks on each of two stores over one database (two hub nodes) append at once,
/// more entries than one verification page: the chain is one line, 1, 2, 3, … and
/// verifies.
async fn concurrent_appends_never_fork_the_chain(db: TestDb) {
    const TASKS: i64 = 8;
    const EACH: i64 = 80;
    let first = db.open().await;
    let second = db.open().await;
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        for store in [&first, &second] {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH {
                    store.append_audit(record(task * 1_000 + i)).await.unwrap();
                }
            }));
        }
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("appends finish");
    let total = (2 * TASKS * EACH) as u64;
    let report = second.verify_audit().await.unwrap();
    assert_eq!((report.count, report.broken), (total, None));
    let entries = first.audit_entries(0, total as i64 + 10).await.unwrap();
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
    assert_eq!(report.head, entries.last().unwrap().hash);
}
