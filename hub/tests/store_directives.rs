//! The store's conformance suite for directives: every test runs against SQLite (a
//! temporary file) and PostgreSQL (a fresh schema per test, dropped afterwards, so tests
//! run in parallel and leave nothing behind).
//!
//! The backends and the skip rule are in `store_common`.

#[macro_use]
mod store_common;

use rootcast_hub::directive::{
    Change, Content, Directive, DirectiveError, EntryKind, Priority, Stage, Target,
};
use rootcast_hub::org::{Kind, Level, Unit, demo};
use rootcast_hub::store::{Store, StoreError, StoreOptions};
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
    an_offline_unit_catches_up_with_corrections_in_order,
    a_correction_must_be_acknowledged_again,
    a_retraction_blocks_acknowledgements,
    versions_keep_history_and_what_changed,
    every_change_is_audited,
    a_send_killed_with_sigkill_is_all_or_nothing,
    rows_from_before_0004_migrate,
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
        .map(|entry| (entry.seq, entry.directive.id.as_str()))
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
        .map(|entry| (entry.seq, entry.directive.id.as_str()))
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
            .map(|entry| (entry.seq, entry.directive.id))
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
        let seqs: Vec<i64> = inbox.iter().map(|entry| entry.seq).collect();
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

fn corrected(title: &str) -> Content {
    Content {
        title: title.to_owned(),
        body: "Meet at **10**, not 9.".to_owned(),
        priority: Priority::Urgent,
        ack_required: true,
        deadline: Some(T0 + 7_200_000),
    }
}

/// (seq, kind, directive, version) of each entry of a unit's inbox after `after`.
async fn entries(store: &Store, unit: &str, after: i64) -> Vec<(i64, EntryKind, String, i32)> {
    store
        .inbox(unit, after)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.kind, e.directive.id, e.directive.version))
        .collect()
}

/// A unit that saw nothing since seq 1 catches up with the send of another directive,
/// two corrections and a retraction, in the order they happened, each with the content
/// of its own version.
async fn an_offline_unit_catches_up_with_corrections_in_order(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = "xian-01";
    store
        .create_directive(&directive("d1", Target::subtree(unit)))
        .await
        .unwrap();
    assert_eq!(store.inbox_head(unit).await.unwrap(), 1);
    // The unit goes offline having seen seq 1.
    store
        .correct_directive(
            "d1",
            &corrected("Drill v2"),
            "hq-admin",
            "wrong time",
            T0 + 10,
        )
        .await
        .unwrap();
    store
        .create_directive(&directive("d2", Target::subtree(unit)))
        .await
        .unwrap();
    let (v3, units) = store
        .correct_directive("d1", &corrected("Drill v3"), "hq-admin", "", T0 + 20)
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    assert_eq!(units.len(), store.subtree(unit).await.unwrap().len());
    store
        .retract_directive("d2", "hq-admin", "sent by mistake", T0 + 30)
        .await
        .unwrap();
    let missed = entries(&store, unit, 1).await;
    assert_eq!(
        missed,
        [
            (2, EntryKind::Corrected, "d1".to_owned(), 2),
            (3, EntryKind::Sent, "d2".to_owned(), 1),
            (4, EntryKind::Corrected, "d1".to_owned(), 3),
            (5, EntryKind::Retracted, "d2".to_owned(), 1),
        ]
    );
    let inbox = store.inbox(unit, 0).await.unwrap();
    assert_eq!(
        inbox[0].directive.title, "Directive d1",
        "seq 1 carries version 1"
    );
    assert_eq!(inbox[1].directive.title, "Drill v2");
    assert_eq!(inbox[3].directive.title, "Drill v3");
    assert_eq!((inbox[4].at, inbox[1].at), (T0 + 30, T0 + 10));
    // Each entry carries the unit's current state, for the current version.
    assert!(
        inbox
            .iter()
            .filter(|e| e.directive.id == "d1")
            .all(|e| e.state.version == 3 && e.state.seq == 4)
    );
    assert_eq!(store.inbox_head(unit).await.unwrap(), 5);
    // Every unit of the subtree got the same sequence of kinds.
    for other in store.subtree(unit).await.unwrap() {
        let kinds: Vec<EntryKind> = entries(&store, &other.id, 0)
            .await
            .into_iter()
            .map(|e| e.1)
            .collect();
        assert_eq!(
            kinds,
            [
                EntryKind::Sent,
                EntryKind::Corrected,
                EntryKind::Sent,
                EntryKind::Corrected,
                EntryKind::Retracted
            ],
            "{}",
            other.id
        );
    }
    // The current directive is the last version.
    assert_eq!(
        store.require_directive("d1").await.unwrap().title,
        "Drill v3"
    );
}

async fn a_correction_must_be_acknowledged_again(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = "xian-01";
    store
        .create_directive(&directive("d1", Target::subtree(unit)))
        .await
        .unwrap();
    store.mark_delivered(unit, "d1", T0 + 1).await.unwrap();
    let (state, _) = store
        .acknowledge_version(unit, "d1", 1, "alice", T0 + 2)
        .await
        .unwrap();
    assert_eq!((state.stage(), state.version), (Stage::Acknowledged, 1));

    store
        .correct_directive("d1", &corrected("Drill v2"), "hq-admin", "", T0 + 10)
        .await
        .unwrap();
    let state = store.unit_state(unit, "d1").await.unwrap().unwrap();
    assert_eq!(
        (state.stage(), state.version, state.seq),
        (Stage::Pending, 2, 2),
        "starts again"
    );
    let roll = store.directive_rollup("d1", T0 + 11).await.unwrap();
    assert_eq!(roll.total.acknowledged, 0);

    // A late acknowledgement of version 1 is refused with the current version named.
    store.mark_delivered(unit, "d1", T0 + 11).await.unwrap();
    let error = store
        .acknowledge_version(unit, "d1", 1, "bob", T0 + 12)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::StaleVersion {
                given: 1,
                current: 2,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("version 2"), "{error}");
    assert!(matches!(
        store
            .acknowledge_version(unit, "d1", 7, "bob", T0 + 12)
            .await,
        Err(StoreError::StaleVersion { given: 7, .. })
    ));
    assert_eq!(
        store.unit_state(unit, "d1").await.unwrap().unwrap().stage(),
        Stage::Delivered
    );

    let (state, change) = store
        .acknowledge_version(unit, "d1", 2, "carol", T0 + 13)
        .await
        .unwrap();
    assert_eq!(
        (state.stage(), change),
        (Stage::Acknowledged, Change::Changed)
    );
    let (state, change) = store
        .acknowledge_version(unit, "d1", 2, "dave", T0 + 14)
        .await
        .unwrap();
    assert_eq!(
        (state.acked_by.as_deref(), change),
        (Some("carol"), Change::Unchanged)
    );

    // Both acknowledgements stay recorded, each with its version.
    let acks: Vec<(String, i32, String)> = store
        .acknowledgements("d1")
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.unit_id, a.version, a.acked_by))
        .collect();
    assert_eq!(
        acks,
        [
            (unit.to_owned(), 1, "alice".to_owned()),
            (unit.to_owned(), 2, "carol".to_owned())
        ]
    );
    // A correction that changes nothing is refused.
    let same = Content::of(&store.require_directive("d1").await.unwrap());
    assert!(matches!(
        store
            .correct_directive("d1", &same, "hq-admin", "", T0 + 20)
            .await,
        Err(StoreError::Directive(DirectiveError::NothingChanged))
    ));
    assert!(matches!(
        store
            .correct_directive("nope", &same, "hq-admin", "", T0 + 20)
            .await,
        Err(StoreError::DirectiveNotFound(_))
    ));
    let invalid = Content {
        title: String::new(),
        ..same
    };
    assert!(matches!(
        store
            .correct_directive("d1", &invalid, "hq-admin", "", T0 + 20)
            .await,
        Err(StoreError::Directive(DirectiveError::EmptyTitle))
    ));
    assert_eq!(store.require_directive("d1").await.unwrap().version, 2);
}

async fn a_retraction_blocks_acknowledgements(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = "xian-01";
    store
        .create_directive(&directive("d1", Target::subtree(unit)))
        .await
        .unwrap();
    let child = store.children(unit).await.unwrap()[0].id.clone();
    store.mark_delivered(unit, "d1", T0 + 1).await.unwrap();
    store
        .acknowledge(unit, "d1", "alice", T0 + 2)
        .await
        .unwrap();
    store.mark_delivered(&child, "d1", T0 + 1).await.unwrap();
    assert_eq!(store.retraction("d1").await.unwrap(), None);

    let (retracted, units) = store
        .retract_directive("d1", "hq-admin", "withdrawn", T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        (retracted.version, units.len()),
        (1, store.subtree(unit).await.unwrap().len())
    );
    let retraction = store.retraction("d1").await.unwrap().unwrap();
    assert_eq!(
        (retraction.at, retraction.by.as_str()),
        (T0 + 10, "hq-admin")
    );
    let error = store
        .acknowledge(&child, "d1", "bob", T0 + 11)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::Retracted(id) if id == "d1"),
        "{error}"
    );
    assert!(error.to_string().contains("retracted"), "{error}");
    assert!(matches!(
        store
            .acknowledge_version(&child, "d1", 1, "bob", T0 + 11)
            .await,
        Err(StoreError::Retracted(_))
    ));
    assert!(matches!(
        store.retract_directive("d1", "hq-admin", "", T0 + 12).await,
        Err(StoreError::Retracted(_))
    ));
    assert!(matches!(
        store
            .correct_directive("d1", &corrected("x"), "hq-admin", "", T0 + 12)
            .await,
        Err(StoreError::Retracted(_))
    ));
    // What was acknowledged before stays.
    assert_eq!(store.acknowledgements("d1").await.unwrap().len(), 1);
    let state = store.unit_state(unit, "d1").await.unwrap().unwrap();
    assert_eq!((state.stage(), state.seq), (Stage::Acknowledged, 2));
    let last = store.inbox(unit, 1).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].kind, EntryKind::Retracted);
    assert!(matches!(
        store.retraction("nope").await,
        Err(StoreError::DirectiveNotFound(_))
    ));
}

async fn versions_keep_history_and_what_changed(db: TestDb) {
    let store = demo_store(&db).await;
    store
        .create_directive(&directive("d1", Target::subtree("xian-01")))
        .await
        .unwrap();
    store
        .correct_directive(
            "d1",
            &corrected("Drill v2"),
            "moderator-1",
            "wrong time",
            T0 + 10,
        )
        .await
        .unwrap();
    let third = Content {
        ack_required: false,
        deadline: None,
        ..corrected("Drill v2")
    };
    store
        .correct_directive("d1", &third, "moderator-2", "no ack needed", T0 + 20)
        .await
        .unwrap();
    let versions = store.directive_versions("d1").await.unwrap();
    let summary: Vec<(i32, &str, &str, Vec<&str>)> = versions
        .iter()
        .map(|v| {
            (
                v.version,
                v.changed_by.as_str(),
                v.note.as_str(),
                v.changes.iter().map(|c| c.field).collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "hq-admin", "", vec![]),
            (
                2,
                "moderator-1",
                "wrong time",
                vec!["title", "body", "priority", "deadline"]
            ),
            (
                3,
                "moderator-2",
                "no ack needed",
                vec!["ack_required", "deadline"]
            ),
        ]
    );
    assert_eq!(
        versions[0].content,
        Content::of(&directive("d1", Target::subtree("xian-01")))
    );
    assert_eq!(versions[1].changes[0].before, "Directive d1");
    assert_eq!(versions[1].changes[0].after, "Drill v2");
    assert_eq!(
        (versions[0].changed_at, versions[2].changed_at),
        (T0, T0 + 20)
    );
    // Acknowledging version 3 is refused: it does not ask for acknowledgement.
    store
        .mark_delivered("xian-01", "d1", T0 + 21)
        .await
        .unwrap();
    assert!(matches!(
        store
            .acknowledge_version("xian-01", "d1", 3, "a", T0 + 22)
            .await,
        Err(StoreError::Directive(DirectiveError::AckNotRequired))
    ));
    assert!(matches!(
        store.directive_versions("nope").await,
        Err(StoreError::DirectiveNotFound(_))
    ));
}

/// Each kind of change leaves one audit entry, in the order of the changes, and the
/// chain verifies; unchanged repeats leave none.
async fn every_change_is_audited(db: TestDb) {
    let store = demo_store(&db).await;
    let sent = store
        .create_directive(&directive("d1", Target::subtree("xian-01")))
        .await
        .unwrap();
    store.mark_delivered("xian-01", "d1", T0 + 1).await.unwrap();
    store.mark_delivered("xian-01", "d1", T0 + 2).await.unwrap();
    store.mark_read("xian-01", "d1", T0 + 3).await.unwrap();
    store
        .acknowledge("xian-01", "d1", "alice", T0 + 4)
        .await
        .unwrap();
    store
        .acknowledge("xian-01", "d1", "bob", T0 + 5)
        .await
        .unwrap();
    store
        .correct_directive("d1", &corrected("v2"), "hq-admin", "", T0 + 6)
        .await
        .unwrap();
    store
        .retract_directive("d1", "hq-admin", "", T0 + 7)
        .await
        .unwrap();
    let log = store.audit_entries(0, 100).await.unwrap();
    let actions: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e.record.action.as_str(),
                e.record.actor.as_str(),
                e.record.subject.as_str(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("directive.send", "hq-admin", "directive:d1"),
            ("directive.deliver", "unit:xian-01", "directive:d1"),
            ("directive.read", "unit:xian-01", "directive:d1"),
            ("directive.ack", "alice", "directive:d1"),
            ("directive.correct", "hq-admin", "directive:d1"),
            ("directive.retract", "hq-admin", "directive:d1"),
        ]
    );
    let send: serde_json::Value = serde_json::from_str(&log[0].record.detail).unwrap();
    assert_eq!(send["units"], sent.len());
    assert_eq!(send["units_sha256"].as_str().unwrap().len(), 64);
    let correct: serde_json::Value = serde_json::from_str(&log[4].record.detail).unwrap();
    assert_eq!(correct["version"], 2);
    let report = store.verify_audit().await.unwrap();
    assert_eq!((report.count, report.broken), (6, None));
    assert_eq!(report.head, log[5].hash);
}

/// The child of [`a_send_killed_with_sigkill_is_all_or_nothing`]: with
/// `ROOTCAST_CRASH_CHILD` set to a store URL it sends directive after directive to the
/// whole organisation, acknowledging one unit's copy after each, and prints each step
/// once the store has confirmed it, until it is killed. Without the variable it does
/// nothing (it is then just a test of this binary that passes).
#[test]
fn crash_child() {
    let Ok(url) = std::env::var("ROOTCAST_CRASH_CHILD") else {
        return;
    };
    let options = StoreOptions {
        postgres_schema: std::env::var("ROOTCAST_CRASH_SCHEMA").ok(),
        ..StoreOptions::new(url)
    };
    let round = std::env::var("ROOTCAST_CRASH_ROUND").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&options).await.unwrap();
        let units = store.all_units().await.unwrap();
        println!("ready");
        // Killed long before this ends; the bound keeps a forgotten child from running on.
        for i in 0..100usize {
            let id = format!("c{round}-{i}");
            println!("sending {id}");
            store
                .create_directive(&directive(&id, Target::subtree(demo::ROOT_ID)))
                .await
                .unwrap();
            println!("sent {id}");
            let unit = &units[(i * 37 + 11) % units.len()].id;
            store.mark_delivered(unit, &id, T0 + 1).await.unwrap();
            store
                .acknowledge(unit, &id, "officer", T0 + 2)
                .await
                .unwrap();
            println!("acked {id} {unit}");
        }
    });
}

/// A child process, killed (SIGKILL) when dropped: a failing test leaves none behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 4's durability test: a process sending a directive to every unit (1,098 in the
/// demo organisation) is killed with SIGKILL at a random moment, six times. After each
/// kill the store is reopened: every directive the child began is either there for every
/// unit, exactly once in each inbox, or absent (and then sending it again succeeds);
/// every acknowledgement the child saw confirmed is still there; the inboxes are numbered
/// without gaps; and the audit log verifies and agrees with the data.
async fn a_send_killed_with_sigkill_is_all_or_nothing(db: TestDb) {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::BufRead;
    use std::time::Duration;

    use rand::Rng;

    let store = demo_store(&db).await;
    let units: Vec<String> = ids(&store.all_units().await.unwrap());
    assert_eq!(units.len(), demo::TOTAL);
    store.close().await;
    let mut confirmed_acks: BTreeSet<(String, String)> = BTreeSet::new();
    let mut present: BTreeSet<String> = BTreeSet::new();
    let mut cut_mid_send = 0;
    for round in 0..6 {
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("ROOTCAST_CRASH_CHILD", &db.options.url)
            .env("ROOTCAST_CRASH_ROUND", round.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit());
        if let Some(schema) = &db.options.postgres_schema {
            command.env("ROOTCAST_CRASH_SCHEMA", schema);
        }
        let mut child = KillOnDrop(command.spawn().expect("start the child"));
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let next_line = |lines: &mut Vec<String>| {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the child is too slow"
            );
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the child makes progress");
            lines.push(line.clone());
            line
        };
        // The test harness may print "test crash_child ... " before it on the same line.
        while !next_line(&mut lines).ends_with("ready") {}
        // Kill during the n-th send, a random time after it began.
        let (nth, delay_ms) = {
            let mut rng = rand::rng();
            (rng.random_range(1..=3), rng.random_range(0..400))
        };
        let mut sends = 0;
        while sends < nth {
            if next_line(&mut lines).starts_with("sending ") {
                sends += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.0.kill().expect("SIGKILL the child");
        let status = tokio::task::spawn_blocking(move || child.0.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(!status.success(), "round {round}: the child was killed");
        // Everything it printed before it died.
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
            lines.push(line);
        }
        reader.join().unwrap();
        let began: Vec<String> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("sending ").map(str::to_owned))
            .collect();
        let sent: BTreeSet<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("sent "))
            .collect();
        for line in &lines {
            if let Some(rest) = line.strip_prefix("acked ") {
                let (id, unit) = rest.split_once(' ').unwrap();
                confirmed_acks.insert((id.to_owned(), unit.to_owned()));
            }
        }

        // Restart.
        let store = db.open().await;
        for id in &began {
            match store.directive(id).await.unwrap() {
                Some(_) => {
                    assert_eq!(store.states(id).await.unwrap().len(), units.len(), "{id}");
                    present.insert(id.clone());
                }
                None => {
                    assert!(
                        !sent.contains(id.as_str()),
                        "{id} was confirmed but is gone"
                    );
                    cut_mid_send += 1;
                    // The send can be made again, whole.
                    let again = store
                        .create_directive(&directive(id, Target::subtree(demo::ROOT_ID)))
                        .await
                        .unwrap();
                    assert_eq!(again.len(), units.len());
                    present.insert(id.clone());
                }
            }
        }
        for unit in &units {
            let inbox = store.inbox(unit, 0).await.unwrap();
            let seqs: Vec<i64> = inbox.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (1..=inbox.len() as i64).collect::<Vec<_>>(), "{unit}");
            let mut copies: BTreeMap<&str, usize> = BTreeMap::new();
            for entry in &inbox {
                *copies.entry(entry.directive.id.as_str()).or_default() += 1;
            }
            let expected: BTreeMap<&str, usize> =
                present.iter().map(|id| (id.as_str(), 1)).collect();
            assert_eq!(
                copies, expected,
                "round {round}: {unit} has each directive once"
            );
        }
        for (id, unit) in &confirmed_acks {
            let state = store.unit_state(unit, id).await.unwrap().unwrap();
            assert_eq!(state.acked_by.as_deref(), Some("officer"), "{id} at {unit}");
        }
        let report = store.verify_audit().await.unwrap();
        assert_eq!(report.broken, None, "round {round}");
        let log = store.audit_entries(0, i64::MAX).await.unwrap();
        let count = |action: &str| log.iter().filter(|e| e.record.action == action).count();
        assert_eq!(
            count("directive.send"),
            present.len(),
            "one send entry per directive"
        );
        let mut acked = 0;
        for id in &present {
            acked += store.acknowledgements(id).await.unwrap().len();
        }
        assert_eq!(count("directive.ack"), acked, "the log and the data agree");
        assert!(acked >= confirmed_acks.len());
        store.close().await;
    }
    eprintln!(
        "{} directives survived six kills; {cut_mid_send} sends were cut and rolled back",
        present.len()
    );
}

/// A store written by 0002 (before corrections existed) migrates: each inbox row becomes
/// a `sent` entry of version 1 with its seq, each directive its version 1, each
/// acknowledgement one of version 1; and the store goes on numbering from there.
async fn rows_from_before_0004_migrate(db: TestDb) {
    use sha2::{Digest, Sha384};
    let sqlite = db.options.url.starts_with("sqlite:");
    let backend = if sqlite { "sqlite" } else { "postgres" };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut script = String::new();
    // What sqlx records for an applied migration, so that opening applies only the rest.
    script.push_str(if sqlite {
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
         checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);\n"
    } else {
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
         checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL);\n"
    });
    for (version, name) in [(1, "org"), (2, "directives")] {
        let sql = std::fs::read_to_string(format!("{dir}/{backend}/000{version}_{name}.sql"))
            .expect("an old migration");
        let checksum: String = Sha384::digest(sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let checksum = if sqlite {
            format!("X'{checksum}'")
        } else {
            format!("'\\x{checksum}'::bytea")
        };
        script.push_str(&sql);
        script.push_str(&format!(
            "\nINSERT INTO _sqlx_migrations (version, description, success, checksum, \
             execution_time) VALUES ({version}, '{name}', TRUE, {checksum}, 0);\n"
        ));
    }
    script.push_str(&format!(
        "INSERT INTO directive (id, version, title, body, priority, target, ack_required, \
         deadline, created_by, created_at) VALUES \
         ('old-1', 1, 'Old one', 'b', 'routine', '{{\"units\":[\"u1\",\"u2\"]}}', TRUE, NULL, \
          'hq', {T0}), \
         ('old-2', 1, 'Old two', 'b', 'urgent', '{{\"units\":[\"u1\"]}}', TRUE, NULL, 'hq', {});
         INSERT INTO directive_inbox (directive_id, unit_id, seq, delivered_at, read_at, \
         acked_at, acked_by) VALUES \
         ('old-1', 'u1', 1, {T0}, {T0}, {T0}, 'alice'), \
         ('old-1', 'u2', 1, NULL, NULL, NULL, NULL), \
         ('old-2', 'u1', 2, NULL, NULL, NULL, NULL);",
        T0 + 5
    ));
    db.execute_raw(&script).await;

    let store = db.open().await;
    assert!(store.schema_version().await.unwrap() >= 4);
    let inbox = entries(&store, "u1", 0).await;
    assert_eq!(
        inbox,
        [
            (1, EntryKind::Sent, "old-1".to_owned(), 1),
            (2, EntryKind::Sent, "old-2".to_owned(), 1),
        ]
    );
    assert_eq!(inbox_of(&store, "u2").await, [(1, EntryKind::Sent)]);
    let state = store.unit_state("u1", "old-1").await.unwrap().unwrap();
    assert_eq!(
        (state.version, state.stage(), state.acked_by.as_deref()),
        (1, Stage::Acknowledged, Some("alice"))
    );
    let acks = store.acknowledgements("old-1").await.unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].version, acks[0].acked_at), (1, T0));
    let versions = store.directive_versions("old-2").await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (versions[0].content.title.as_str(), versions[0].changed_at),
        ("Old two", T0 + 5)
    );
    // A correction after the migration numbers on from the old rows.
    store
        .correct_directive("old-1", &corrected("New"), "hq", "", T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        inbox_of(&store, "u1").await.last(),
        Some(&(3, EntryKind::Corrected))
    );
    assert_eq!(
        inbox_of(&store, "u2").await.last(),
        Some(&(2, EntryKind::Corrected))
    );
    assert_eq!(store.verify_audit().await.unwrap().count, 1);
}

async fn inbox_of(store: &Store, unit: &str) -> Vec<(i64, EntryKind)> {
    entries(store, unit, 0)
        .await
        .into_iter()
        .map(|(seq, kind, ..)| (seq, kind))
        .collect()
}
