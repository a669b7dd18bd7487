//! The store's conformance suite for directives: every test runs against SQLite (a
//! temporary file) and PostgreSQL (a fresh schema per test, dropped afterwards, so tests
//! run in parallel and leave nothing behind).
//!
//! The backends and the skip rule are in `store_common`.

#[macro_use]
mod store_common;

use rootcast_hub::directive::{Change, Directive, DirectiveError, Priority, Stage, Target};
use rootcast_hub::org::{Kind, Level, Unit, demo};
use rootcast_hub::store::{Store, StoreError};
use store_common::TestDb;

conformance!(
    migration_is_applied,
    a_subtree_reaches_exactly_its_units_once,
    kinds_tags_and_explicit_units,
    inbox_order_and_after_seq,
    delivered_read_acknowledged,
    concurrent_acknowledgements_keep_one,
    rollup_counts_match,
    duplicate_id_is_an_error_and_writes_nothing,
    invalid_targets_write_nothing,
    a_cancelled_send_leaves_all_or_nothing,
    two_nodes_sending_at_once_number_inboxes_without_gaps,
);

/// 2026-11-29T00:00:00Z in ms.
const T0: i64 = 1_795_910_400_000;

fn ids(units: &[Unit]) -> Vec<String> {
    units.iter().map(|unit| unit.id.clone()).collect()
}

fn directive(id: &str, target: Target) -> Directive {
    Directive {
        id: id.to_owned(),
        title: format!("Directive {id}"),
        body: "**Read** this.\n\n<script>alert(1)</script>".to_owned(),
        priority: Priority::Important,
        target,
        ack_required: true,
        deadline: Some(T0 + 3_600_000),
        created_by: "hq-admin".to_owned(),
        created_at: T0,
        version: 1,
    }
}

async fn demo_store(db: &TestDb) -> Store {
    let store = db.open().await;
    store.load_demo().await.unwrap();
    store
}

/// Every inbox row in the store, as (directive, unit) pairs, sorted.
async fn all_rows(store: &Store) -> Vec<(String, String)> {
    let units = store.all_units().await.unwrap();
    let mut rows = Vec::new();
    for unit in &units {
        for entry in store.inbox(&unit.id, 0).await.unwrap() {
            rows.push((entry.directive.id, unit.id.clone()));
        }
    }
    rows.sort();
    rows
}

async fn migration_is_applied(db: TestDb) {
    // Version 2 is the directives' migration; later ones build on it.
    let store = db.open().await;
    let version = store.schema_version().await.unwrap();
    assert!(version >= 2, "schema version {version}");
    store.migrate().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), version);
}

async fn a_subtree_reaches_exactly_its_units_once(db: TestDb) {
    let store = demo_store(&db).await;
    let xian = store.subtree("xian").await.unwrap();
    assert!(xian.len() > 100, "西安's subtree: {}", xian.len());
    let sent = store
        .create_directive(&directive("d1", Target::subtree("xian")))
        .await
        .unwrap();
    assert_eq!(sent, ids(&xian), "every unit of the subtree, in path order");

    let states = store.states("d1").await.unwrap();
    assert_eq!(states.len(), xian.len());
    assert!(
        states
            .iter()
            .all(|s| s.stage() == Stage::Pending && s.seq == 1)
    );
    for unit in &xian {
        let inbox = store.inbox(&unit.id, 0).await.unwrap();
        assert_eq!(inbox.len(), 1, "{} gets it exactly once", unit.id);
        assert_eq!(inbox[0].directive, directive("d1", Target::subtree("xian")));
    }
    for outside in ["sx", "baoji", "baoji-01"] {
        assert!(
            store.inbox(outside, 0).await.unwrap().is_empty(),
            "{outside}"
        );
    }
    assert_eq!(all_rows(&store).await.len(), xian.len());

    // The whole organisation.
    let all = store
        .create_directive(&directive("d2", Target::subtree(demo::ROOT_ID)))
        .await
        .unwrap();
    assert_eq!(all.len(), demo::TOTAL);
    assert_eq!(all_rows(&store).await.len(), xian.len() + demo::TOTAL);
}

async fn kinds_tags_and_explicit_units(db: TestDb) {
    let store = demo_store(&db).await;
    let target = Target {
        subtrees: vec!["baoji".into()],
        kinds: vec![Kind::University],
        units: vec!["xian".into()],
        ..Target::default()
    };
    let sent = store
        .create_directive(&directive("d1", target))
        .await
        .unwrap();
    let baoji = store.subtree("baoji").await.unwrap();
    let mut expected: Vec<String> = baoji
        .iter()
        .filter(|unit| unit.kind == Kind::University)
        .map(|unit| unit.id.clone())
        .collect();
    assert!(!expected.is_empty());
    expected.push("xian".into());
    let mut got = sent.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

async fn inbox_order_and_after_seq(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = store
        .subtree("xian")
        .await
        .unwrap()
        .into_iter()
        .find(|unit| unit.level == Level::Unit)
        .expect("a grassroots unit in 西安");
    let to_unit = Target {
        units: vec![unit.id.clone()],
        ..Target::default()
    };
    store
        .create_directive(&directive("d-b", Target::subtree("xian")))
        .await
        .unwrap();
    store
        .create_directive(&directive("d-a", to_unit))
        .await
        .unwrap();
    store
        .create_directive(&directive("d-c", Target::subtree("baoji")))
        .await
        .unwrap();
    store
        .create_directive(&directive("d-d", Target::subtree(demo::ROOT_ID)))
        .await
        .unwrap();

    let inbox = store.inbox(&unit.id, 0).await.unwrap();
    let seen: Vec<(i64, &str)> = inbox
        .iter()
        .map(|entry| (entry.state.seq, entry.directive.id.as_str()))
        .collect();
    assert_eq!(
        seen,
        [(1, "d-b"), (2, "d-a"), (3, "d-d")],
        "send order, not id order"
    );
    assert!(inbox.iter().all(|entry| entry.state.unit_id == unit.id));
    let missed: Vec<String> = store
        .inbox(&unit.id, 1)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.directive.id)
        .collect();
    assert_eq!(missed, ["d-a", "d-d"]);
    assert!(store.inbox(&unit.id, 3).await.unwrap().is_empty());
    assert_eq!(store.inbox_head(&unit.id).await.unwrap(), 3);
    // Each unit numbers its own inbox from 1.
    let baoji = store.inbox("baoji", 0).await.unwrap();
    let seen: Vec<(i64, &str)> = baoji
        .iter()
        .map(|entry| (entry.state.seq, entry.directive.id.as_str()))
        .collect();
    assert_eq!(seen, [(1, "d-c"), (2, "d-d")]);
    assert_eq!(store.inbox_head("nope").await.unwrap(), 0);
    assert!(store.inbox("nope", 0).await.unwrap().is_empty());
}

async fn delivered_read_acknowledged(db: TestDb) {
    let store = demo_store(&db).await;
    store
        .create_directive(&directive("d1", Target::subtree("xian-01")))
        .await
        .unwrap();
    let unit = "xian-01";

    let error = store.mark_read(unit, "d1", T0 + 1).await.unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::Directive(DirectiveError::BadTransition { .. })
        ),
        "{error}"
    );
    assert!(
        store
            .acknowledge(unit, "d1", "alice", T0 + 1)
            .await
            .is_err()
    );

    let (state, change) = store.mark_delivered(unit, "d1", T0 + 10).await.unwrap();
    assert_eq!((state.stage(), change), (Stage::Delivered, Change::Changed));
    let (state, change) = store.mark_delivered(unit, "d1", T0 + 11).await.unwrap();
    assert_eq!(
        (state.delivered_at, change),
        (Some(T0 + 10), Change::Unchanged)
    );

    let (state, change) = store.mark_read(unit, "d1", T0 + 20).await.unwrap();
    assert_eq!((state.stage(), change), (Stage::Read, Change::Changed));

    let (state, change) = store
        .acknowledge(unit, "d1", "alice", T0 + 30)
        .await
        .unwrap();
    assert_eq!(
        (state.stage(), change),
        (Stage::Acknowledged, Change::Changed)
    );
    let (state, change) = store.acknowledge(unit, "d1", "bob", T0 + 40).await.unwrap();
    assert_eq!(change, Change::Unchanged);
    assert_eq!(
        (
            state.acked_by.as_deref(),
            state.acked_at,
            state.read_at,
            state.delivered_at
        ),
        (Some("alice"), Some(T0 + 30), Some(T0 + 20), Some(T0 + 10)),
        "the first who and when are kept"
    );
    let stored = store.unit_state(unit, "d1").await.unwrap().unwrap();
    assert_eq!(stored, state);
    assert_eq!(store.inbox(unit, 0).await.unwrap()[0].state, state);

    // Acknowledging straight after delivery implies reading.
    let other = store.children("xian-01").await.unwrap()[0].id.clone();
    store.mark_delivered(&other, "d1", T0 + 50).await.unwrap();
    let (state, _) = store
        .acknowledge(&other, "d1", "carol", T0 + 60)
        .await
        .unwrap();
    assert_eq!(state.read_at, Some(T0 + 60));

    // Wrong unit, wrong directive, no acknowledgement asked.
    assert!(matches!(
        store.mark_delivered("baoji", "d1", T0).await,
        Err(StoreError::NotInInbox { .. })
    ));
    assert!(matches!(
        store.mark_delivered(unit, "nope", T0).await,
        Err(StoreError::DirectiveNotFound(_))
    ));
    let info = Directive {
        ack_required: false,
        deadline: None,
        ..directive("d2", Target::subtree("xian-01"))
    };
    store.create_directive(&info).await.unwrap();
    store.mark_delivered(unit, "d2", T0).await.unwrap();
    assert!(matches!(
        store.acknowledge(unit, "d2", "alice", T0).await,
        Err(StoreError::Directive(DirectiveError::AckNotRequired))
    ));
    let (state, _) = store.mark_read(unit, "d2", T0 + 1).await.unwrap();
    assert_eq!(state.stage(), Stage::Read);
}

async fn concurrent_acknowledgements_keep_one(db: TestDb) {
    let store = demo_store(&db).await;
    store
        .create_directive(&directive("d1", Target::subtree("xian-01")))
        .await
        .unwrap();
    store.mark_delivered("xian-01", "d1", T0).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .acknowledge("xian-01", "d1", &format!("officer-{i}"), T0 + 100 + i)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let stored = store.unit_state("xian-01", "d1").await.unwrap().unwrap();
    assert!(
        results.iter().all(|(state, _)| *state == stored),
        "all see the winner"
    );
    let changed = results
        .iter()
        .filter(|(_, c)| *c == Change::Changed)
        .count();
    assert_eq!(changed, 1, "exactly one acknowledgement took effect");
    let winner = stored.acked_by.clone().unwrap();
    let at = stored.acked_at.unwrap();
    assert_eq!(winner, format!("officer-{}", at - T0 - 100));
}

async fn rollup_counts_match(db: TestDb) {
    let store = demo_store(&db).await;
    let xian = store.subtree("xian").await.unwrap();
    store
        .create_directive(&directive("d1", Target::subtree("xian")))
        .await
        .unwrap();
    let county = store
        .children("xian")
        .await
        .unwrap()
        .into_iter()
        .find(|unit| unit.level == Level::County)
        .unwrap();
    let county_units = store.subtree(&county.id).await.unwrap();
    assert!(county_units.len() >= 3);
    // Every unit of the county: delivered; the first three acknowledge after 1, 2 and 6
    // minutes; one more reads. Everything else in 西安 stays pending.
    for (i, unit) in county_units.iter().enumerate() {
        store
            .mark_delivered(&unit.id, "d1", T0 + 1_000)
            .await
            .unwrap();
        if i < 3 {
            let minutes = [1, 2, 6][i];
            store
                .acknowledge(&unit.id, "d1", "officer", T0 + minutes * 60_000)
                .await
                .unwrap();
        } else if i == 3 {
            store.mark_read(&unit.id, "d1", T0 + 2_000).await.unwrap();
        }
    }
    let read = county_units.len().min(4) as u64;
    let roll = store.directive_rollup("d1", T0 + 1_000).await.unwrap();
    let total = &roll.total;
    assert_eq!(total.targeted, xian.len() as u64);
    assert_eq!(total.delivered, county_units.len() as u64);
    assert_eq!(total.read, read);
    assert_eq!(total.acknowledged, 3);
    assert_eq!(total.overdue, 0, "before the deadline");
    assert_eq!(total.median_ack_ms, Some(120_000));
    assert_eq!(roll.by_subtree["xian"], *total);
    assert_eq!(
        roll.by_subtree["sx"], *total,
        "the root rolls up everything targeted"
    );
    let in_county = &roll.by_subtree[&county.id];
    assert_eq!(in_county.targeted, county_units.len() as u64);
    assert_eq!(in_county.percent_delivered(), 100.0);
    assert_eq!(
        in_county.percent_acknowledged(),
        300.0 / county_units.len() as f64
    );
    assert_eq!(roll.by_level[&Level::City].targeted, 1);
    let counties = xian.iter().filter(|u| u.level == Level::County).count() as u64;
    assert_eq!(roll.by_level[&Level::County].targeted, counties);
    assert_eq!(roll.not_acknowledged.len(), xian.len() - 3);

    let late = store.directive_rollup("d1", T0 + 3_600_001).await.unwrap();
    assert_eq!(late.total.overdue, xian.len() as u64 - 3);
    assert!(matches!(
        store.directive_rollup("nope", T0).await,
        Err(StoreError::DirectiveNotFound(_))
    ));
}

async fn duplicate_id_is_an_error_and_writes_nothing(db: TestDb) {
    let store = demo_store(&db).await;
    let first = directive("d1", Target::subtree("xian"));
    let sent = store.create_directive(&first).await.unwrap();
    let before = all_rows(&store).await;
    let again = Directive {
        title: "Something else".into(),
        ..directive("d1", Target::subtree(demo::ROOT_ID))
    };
    let error = store.create_directive(&again).await.unwrap_err();
    assert!(
        matches!(&error, StoreError::DirectiveExists(id) if id == "d1"),
        "{error}"
    );
    assert_eq!(store.require_directive("d1").await.unwrap(), first);
    assert_eq!(store.states("d1").await.unwrap().len(), sent.len());
    assert_eq!(all_rows(&store).await, before);
    // Sequence numbers did not move either.
    assert_eq!(store.inbox_head("baoji").await.unwrap(), 0);
    assert_eq!(store.inbox_head("xian").await.unwrap(), 1);
}

async fn invalid_targets_write_nothing(db: TestDb) {
    let store = demo_store(&db).await;
    let cases = [
        (
            Target {
                subtrees: vec!["xian".into()],
                units: vec!["no-such-unit".into()],
                ..Target::default()
            },
            DirectiveError::UnknownUnit("no-such-unit".into()),
        ),
        (Target::default(), DirectiveError::EmptyTarget),
        (
            Target {
                subtrees: vec!["xian-01".into()],
                kinds: vec![Kind::Headquarters],
                ..Target::default()
            },
            DirectiveError::NoUnitsMatched,
        ),
    ];
    for (target, expected) in cases {
        let error = store
            .create_directive(&directive("d1", target))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::Directive(e) if *e == expected),
            "{error}"
        );
    }
    let too_big = Directive {
        body: "x".repeat(rootcast_hub::directive::MAX_BODY_BYTES + 1),
        ..directive("d1", Target::subtree("xian"))
    };
    assert!(matches!(
        store.create_directive(&too_big).await,
        Err(StoreError::Directive(DirectiveError::BodyTooLarge { .. }))
    ));
    assert!(store.directive("d1").await.unwrap().is_none());
    assert!(all_rows(&store).await.is_empty());
    // The id is still free.
    store
        .create_directive(&directive("d1", Target::subtree("xian-01")))
        .await
        .unwrap();
}

/// A caller that gives up on a send part-way (its future dropped, as when an HTTP client
/// disconnects) never sees half a directive: at any moment the store holds the directive
/// with every row or nothing, and the send completes on its own. Not the SIGKILL test of
/// issue 4, which needs the server binary, but the same all-or-nothing property.
async fn a_cancelled_send_leaves_all_or_nothing(db: TestDb) {
    let store = demo_store(&db).await;
    let timeouts = [
        50u64, 2_000, 10_000, 50_000, 100_000, 200_000, 400_000, 800_000,
    ];
    for (i, micros) in timeouts.into_iter().enumerate() {
        let id = format!("d{i}");
        let sent = directive(&id, Target::subtree(demo::ROOT_ID));
        let send = store.create_directive(&sent);
        let finished = tokio::time::timeout(std::time::Duration::from_micros(micros), send).await;
        let rows = match store.directive(&id).await.unwrap() {
            Some(_) => store.states(&id).await.unwrap().len(),
            None => {
                assert!(
                    !matches!(finished, Ok(Ok(_))),
                    "{id} reported sent but is missing"
                );
                0
            }
        };
        assert!(rows == 0 || rows == demo::TOTAL, "{id}: {rows} rows");
    }
    // Every abandoned send completes, whole, and in order.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seqs: Vec<(i64, String)> = store
            .inbox("sx", 0)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.state.seq, entry.directive.id))
            .collect();
        if seqs.len() == timeouts.len() {
            let expected: Vec<(i64, String)> = (0..timeouts.len())
                .map(|i| (i as i64 + 1, format!("d{i}")))
                .collect();
            assert_eq!(seqs, expected);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sends never finished: {seqs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for i in 0..timeouts.len() {
        assert_eq!(
            store.states(&format!("d{i}")).await.unwrap().len(),
            demo::TOTAL
        );
    }
    // And the store is not wedged: a new send goes through at once.
    let last = directive("last", Target::subtree("xian-01"));
    tokio::time::timeout(
        std::time::Duration::from_secs(15),
        store.create_directive(&last),
    )
    .await
    .expect("the store accepts writes")
    .unwrap();
}

/// Two stores over one database (two hub nodes) send at once: the cross-process lock
/// keeps each unit's inbox numbered 1, 2, 3, … with no gap or duplicate.
async fn two_nodes_sending_at_once_number_inboxes_without_gaps(db: TestDb) {
    let first = demo_store(&db).await;
    let second = db.open().await;
    let send = |store: Store, node: usize| async move {
        for i in 0..5 {
            store
                .create_directive(&directive(
                    &format!("n{node}-{i}"),
                    Target::subtree("xian-01"),
                ))
                .await
                .unwrap();
        }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(send(first.clone(), 1)),
        tokio::spawn(send(second.clone(), 2))
    );
    a.unwrap();
    b.unwrap();
    for unit in first.subtree("xian-01").await.unwrap() {
        let inbox = second.inbox(&unit.id, 0).await.unwrap();
        let seqs: Vec<i64> = inbox.iter().map(|entry| entry.state.seq).collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>(), "{}", unit.id);
        // Every unit sees each node's directives in that node's order.
        for node in ["n1-", "n2-"] {
            let mine: Vec<&str> = inbox
                .iter()
                .map(|entry| entry.directive.id.as_str())
                .filter(|id| id.starts_with(node))
                .collect();
            let expected: Vec<String> = (0..5).map(|i| format!("{node}{i}")).collect();
            assert_eq!(mine, expected);
        }
    }
}
