//! The store's conformance suite for meetings, announcements, attendance and Q&A: every
//! test runs against SQLite and PostgreSQL (see `store_common`).

#[macro_use]
mod store_common;

use rootcast_hub::auth::{NewAccount, Role};
use rootcast_hub::directive::Target;
use rootcast_hub::store::{
    MeetingScope, MeetingStatus, NewMeeting, NewQuestion, QuestionStatus, Store, StoreError,
};
use store_common::TestDb;

conformance!(
    a_meeting_is_written_with_its_audience_and_listed_by_scope,
    experts_are_listed_by_name,
    status_moves_only_forward,
    announcements_are_numbered_and_checked,
    one_vote_per_account_and_withdraw,
    concurrent_double_votes_count_once,
    moderation_follows_the_allowed_statuses,
    merge_moves_votes_and_points_at_the_target,
    answers_are_numbered_in_their_thread,
    attendance_log_and_headcount,
    bad_input_is_an_error,
);

/// 2026-11-29T00:00:00Z in ms.
const T0: i64 = 1_795_910_400_000;

async fn demo_store(db: &TestDb) -> Store {
    let store = db.open().await;
    store.load_demo().await.unwrap();
    store
}

/// The units of the county `xian-01` (itself and its children) as (id, path).
async fn county_units(store: &Store) -> Vec<(String, String)> {
    store
        .subtree("xian-01")
        .await
        .unwrap()
        .into_iter()
        .map(|u| (u.id, u.path))
        .collect()
}

async fn schedule(store: &Store, id: &str, preapproval: bool) -> Vec<(String, String)> {
    let units = county_units(store).await;
    store
        .create_meeting(&NewMeeting {
            id: id.into(),
            title: "Flood season briefing".into(),
            agenda: "1. Levels\n2. Duty rosters".into(),
            starts_at: T0 + 3_600_000,
            target: Target::subtree("xian-01"),
            qa_preapproval: preapproval,
            units: units.clone(),
            experts: vec!["expert-1".into(), "expert-1".into()],
            created_by: "mod-1".into(),
            created_at: T0,
        })
        .await
        .unwrap();
    units
}

fn question(id: &str, meeting: &str, asker: &str, pending: bool) -> NewQuestion {
    NewQuestion {
        id: id.into(),
        meeting_id: meeting.into(),
        body: format!("Question {id}?"),
        asked_by: asker.into(),
        asker_name: format!("name of {asker}"),
        asker_unit: Some("xian-01".into()),
        anonymous: true,
        pending,
        at: T0 + 10,
    }
}

async fn experts_are_listed_by_name(db: TestDb) {
    let store = demo_store(&db).await;
    let units = county_units(&store).await;
    // The display name of an account; the id where there is no account row.
    let expert = store
        .create_account(
            &NewAccount {
                username: "wang".into(),
                display_name: "Dr. Wang".into(),
                role: Role::Expert,
                unit: None,
            },
            None,
            T0,
        )
        .await
        .unwrap();
    store
        .create_meeting(&NewMeeting {
            id: "m-experts".into(),
            title: "Experts by name".into(),
            agenda: String::new(),
            starts_at: T0,
            target: Target::subtree("xian-01"),
            qa_preapproval: false,
            units: units.clone(),
            experts: vec![expert.id.clone(), "expert-1".into()],
            created_by: "mod-1".into(),
            created_at: T0,
        })
        .await
        .unwrap();
    let mut expected = vec![
        (expert.id.clone(), "Dr. Wang".to_owned()),
        ("expert-1".to_owned(), "expert-1".to_owned()),
    ];
    expected.sort();
    assert_eq!(
        store.meeting_expert_names("m-experts").await.unwrap(),
        expected
    );
}

async fn a_meeting_is_written_with_its_audience_and_listed_by_scope(db: TestDb) {
    let store = demo_store(&db).await;
    let units = schedule(&store, "m1", false).await;
    let meeting = store.require_meeting("m1").await.unwrap();
    assert_eq!(meeting.status, MeetingStatus::Scheduled);
    assert_eq!(meeting.target, Target::subtree("xian-01"));
    assert_eq!(meeting.created_by, "mod-1");
    let stored = store.meeting_units("m1").await.unwrap();
    assert_eq!(stored.len(), units.len());
    assert!(stored.iter().all(|u| u.headcount.is_none()));
    assert_eq!(
        store.meeting_experts("m1").await.unwrap(),
        vec!["expert-1".to_owned()],
        "experts are deduplicated"
    );
    assert_eq!(
        store.meeting_unit_count("m1").await.unwrap(),
        units.len() as i64
    );
    let leaf = &units[1].0;
    assert!(store.meeting_targets("m1", leaf).await.unwrap());
    assert!(!store.meeting_targets("m1", "baoji").await.unwrap());

    let ids = |list: Vec<rootcast_hub::store::Meeting>| -> Vec<String> {
        list.into_iter().map(|m| m.id).collect()
    };
    assert_eq!(
        ids(store.meetings(&MeetingScope::All, 10).await.unwrap()),
        ["m1"]
    );
    assert_eq!(
        ids(store
            .meetings(&MeetingScope::Unit(leaf.clone()), 10)
            .await
            .unwrap()),
        ["m1"]
    );
    assert!(
        store
            .meetings(&MeetingScope::Unit("baoji".into()), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let xian = store.require_unit("xian").await.unwrap();
    assert_eq!(
        ids(store
            .meetings(
                &MeetingScope::Subtree {
                    path: xian.path,
                    creator: "someone".into()
                },
                10
            )
            .await
            .unwrap()),
        ["m1"],
        "a moderator of an ancestor sees it"
    );
    let baoji = store.require_unit("baoji").await.unwrap();
    assert!(
        store
            .meetings(
                &MeetingScope::Subtree {
                    path: baoji.path.clone(),
                    creator: "someone".into()
                },
                10
            )
            .await
            .unwrap()
            .is_empty(),
        "a moderator of another subtree does not"
    );
    assert_eq!(
        ids(store
            .meetings(
                &MeetingScope::Subtree {
                    path: baoji.path,
                    creator: "mod-1".into()
                },
                10
            )
            .await
            .unwrap()),
        ["m1"],
        "its creator does"
    );
    assert_eq!(
        ids(store
            .meetings(&MeetingScope::Expert("expert-1".into()), 10)
            .await
            .unwrap()),
        ["m1"]
    );
    assert!(matches!(store.meeting("nope").await, Ok(None)));
    assert!(matches!(
        store.require_meeting("nope").await,
        Err(StoreError::MeetingNotFound(_))
    ));
    // The schedule is audited.
    let audit = store.verify_audit().await.unwrap();
    assert!(audit.broken.is_none() && audit.count >= 1);
}

async fn status_moves_only_forward(db: TestDb) {
    let store = demo_store(&db).await;
    schedule(&store, "m1", false).await;
    let live = store
        .set_meeting_live("m1", "town-hall", "mod-1", T0 + 100)
        .await
        .unwrap();
    assert_eq!(live.status, MeetingStatus::Live);
    assert_eq!(live.stream.as_deref(), Some("town-hall"));
    assert_eq!(live.live_at, Some(T0 + 100));
    // Going live again re-binds the stream and keeps the first live time.
    let again = store
        .set_meeting_live("m1", "town-hall-2", "mod-1", T0 + 200)
        .await
        .unwrap();
    assert_eq!(again.stream.as_deref(), Some("town-hall-2"));
    assert_eq!(again.live_at, Some(T0 + 100));
    store.set_screen_question("m1", Some("q1")).await.unwrap();
    let ended = store.end_meeting("m1", "mod-1", T0 + 300).await.unwrap();
    assert_eq!(ended.status, MeetingStatus::Ended);
    assert_eq!(ended.ended_at, Some(T0 + 300));
    assert_eq!(ended.screen_question, None, "ending clears the screen");
    assert!(matches!(
        store.end_meeting("m1", "mod-1", T0 + 400).await,
        Err(StoreError::MeetingConflict(_))
    ));
    assert!(matches!(
        store.set_meeting_live("m1", "x", "mod-1", T0 + 400).await,
        Err(StoreError::MeetingConflict(_))
    ));
    assert!(matches!(
        store.end_meeting("nope", "mod-1", T0).await,
        Err(StoreError::MeetingNotFound(_))
    ));
    assert!(matches!(
        store.set_screen_question("nope", None).await,
        Err(StoreError::MeetingNotFound(_))
    ));
}

async fn announcements_are_numbered_and_checked(db: TestDb) {
    let store = demo_store(&db).await;
    schedule(&store, "m1", false).await;
    let first = store
        .add_announcement("m1", "Starting in 5 minutes", "info", "mod-1", T0 + 1)
        .await
        .unwrap();
    let second = store
        .add_announcement("m1", "Sound check", "urgent", "mod-1", T0 + 2)
        .await
        .unwrap();
    assert_eq!((first.number, second.number), (1, 2));
    let list = store.announcements("m1").await.unwrap();
    assert_eq!(list, vec![first, second]);
    assert!(matches!(
        store.add_announcement("m1", "x", "loud", "mod-1", T0).await,
        Err(StoreError::MeetingInput(_))
    ));
    assert!(matches!(
        store
            .add_announcement("m1", "  ", "info", "mod-1", T0)
            .await,
        Err(StoreError::MeetingInput(_))
    ));
    assert!(matches!(
        store
            .add_announcement("nope", "x", "info", "mod-1", T0)
            .await,
        Err(StoreError::MeetingNotFound(_))
    ));
    assert_eq!(store.announcements("m1").await.unwrap().len(), 2);
}

async fn one_vote_per_account_and_withdraw(db: TestDb) {
    let store = demo_store(&db).await;
    schedule(&store, "m1", false).await;
    let asked = store
        .ask_question(&question("q1", "m1", "member-1", false))
        .await
        .unwrap();
    assert_eq!(asked.status, QuestionStatus::Open);
    assert_eq!(asked.votes, 0);
    assert!(store.vote("q1", "member-2", T0 + 20).await.unwrap());
    assert!(
        !store.vote("q1", "member-2", T0 + 21).await.unwrap(),
        "a second vote does not count"
    );
    assert!(store.vote("q1", "member-3", T0 + 22).await.unwrap());
    assert_eq!(store.require_question("q1").await.unwrap().votes, 2);
    assert_eq!(
        store.votes_of("m1", "member-2").await.unwrap(),
        ["q1".to_owned()]
    );
    assert!(store.withdraw_vote("q1", "member-2").await.unwrap());
    assert!(!store.withdraw_vote("q1", "member-2").await.unwrap());
    assert_eq!(store.require_question("q1").await.unwrap().votes, 1);
    assert!(store.votes_of("m1", "member-2").await.unwrap().is_empty());
}

async fn concurrent_double_votes_count_once(db: TestDb) {
    let store = demo_store(&db).await;
    schedule(&store, "m1", false).await;
    store
        .ask_question(&question("q1", "m1", "member-1", false))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        // Four accounts, each voting twice at once.
        tasks.push(tokio::spawn(async move {
            store
                .vote("q1", &format!("member-{}", i % 4), T0 + i)
                .await
                .unwrap()
        }));
    }
    let mut counted = 0;
    for task in tasks {
        counted += i32::from(task.await.unwrap());
    }
    assert_eq!(counted, 4);
    assert_eq!(store.require_question("q1").await.unwrap().votes, 4);
}

async fn moderation_follows_the_allowed_statuses(db: TestDb) {
    use QuestionStatus::*;
    let store = demo_store(&db).await;
    schedule(&store, "m1", true).await;
    let pending = store
        .ask_question(&question("q1", "m1", "member-1", true))
        .await
        .unwrap();
    assert_eq!(pending.status, Pending);
    assert!(matches!(
        store
            .moderate_question("q1", &[Open], Answered, "mod-1", T0 + 1)
            .await,
        Err(StoreError::MeetingConflict(_))
    ));
    let open = store
        .moderate_question("q1", &[Pending], Open, "mod-1", T0 + 2)
        .await
        .unwrap();
    assert_eq!((open.status, open.updated_at), (Open, T0 + 2));
    let assigned = store
        .assign_question("q1", Some("expert-1"), "mod-1", T0 + 3)
        .await
        .unwrap();
    assert_eq!(assigned.assigned_to.as_deref(), Some("expert-1"));
    let deleted = store
        .moderate_question("q1", &[Open], Deleted, "mod-1", T0 + 4)
        .await
        .unwrap();
    assert_eq!(deleted.status, Deleted);
    assert!(matches!(
        store.require_question("q1").await,
        Err(StoreError::QuestionNotFound(_))
    ));
    assert!(store.questions("m1").await.unwrap().is_empty());
    assert!(matches!(
        store
            .moderate_question("q1", &[Open, Deleted], Archived, "mod-1", T0 + 5)
            .await,
        Err(StoreError::QuestionNotFound(_))
    ));
    assert!(matches!(
        store
            .moderate_question("nope", &[Open], Archived, "mod-1", T0)
            .await,
        Err(StoreError::QuestionNotFound(_))
    ));
    let audit = store.verify_audit().await.unwrap();
    assert!(audit.broken.is_none());
}

async fn merge_moves_votes_and_points_at_the_target(db: TestDb) {
    let store = demo_store(&db).await;
    schedule(&store, "m1", false).await;
    schedule_other(&store).await;
    for id in ["q1", "q2"] {
        store
            .ask_question(&question(id, "m1", "member-1", false))
            .await
            .unwrap();
    }
    store
        .ask_question(&question("other", "m2", "member-1", false))
        .await
        .unwrap();
    // a votes for both, b for the duplicate only, c for the target only.
    for (q, who) in [("q1", "a"), ("q2", "a"), ("q2", "b"), ("q1", "c")] {
        assert!(store.vote(q, who, T0).await.unwrap());
    }
    let (source, target) = store
        .merge_questions("q2", "q1", "mod-1", T0 + 5)
        .await
        .unwrap();
    assert_eq!(source.status, QuestionStatus::Merged);
    assert_eq!(source.merged_into.as_deref(), Some("q1"));
    assert_eq!(source.votes, 0);
    assert_eq!(target.votes, 3, "a once, b moved, c");
    assert_eq!(target.updated_at, T0 + 5);
    assert!(matches!(
        store.merge_questions("q2", "q1", "mod-1", T0).await,
        Err(StoreError::MeetingConflict(_))
    ));
    assert!(matches!(
        store.merge_questions("q1", "q2", "mod-1", T0).await,
        Err(StoreError::MeetingConflict(_))
    ));
    assert!(matches!(
        store.merge_questions("q1", "q1", "mod-1", T0).await,
        Err(StoreError::MeetingInput(_))
    ));
    assert!(matches!(
        store.merge_questions("q1", "other", "mod-1", T0).await,
        Err(StoreError::MeetingInput(_))
    ));
    assert!(matches!(
        store.merge_questions("q1", "nope", "mod-1", T0).await,
        Err(StoreError::QuestionNotFound(_))
    ));
}

async fn schedule_other(store: &Store) {
    store
        .create_meeting(&NewMeeting {
            id: "m2".into(),
            title: "Another".into(),
            agenda: String::new(),
            starts_at: T0,
            target: Target::subtree("baoji"),
            qa_preapproval: false,
            units: vec![(
                "baoji".into(),
                store.require_unit("baoji").await.unwrap().path,
            )],
            experts: Vec::new(),
            created_by: "mod-2".into(),
            created_at: T0,
        })
        .await
        .unwrap();
}

async fn answers_are_numbered_in_their_thread(db: TestDb) {
    let store = demo_store(&db).await;
    schedule(&store, "m1", false).await;
    store
        .ask_question(&question("q1", "m1", "member-1", false))
        .await
        .unwrap();
    let first = store
        .add_answer(
            "q1",
            "expert-1",
            "Dr. Li",
            "Level 3 applies.",
            false,
            T0 + 1,
        )
        .await
        .unwrap();
    let second = store
        .add_answer("q1", "expert-1", "Dr. Li", "Call me.", true, T0 + 2)
        .await
        .unwrap();
    assert_eq!((first.number, second.number), (1, 2));
    assert!(second.private && !first.private);
    assert_eq!(store.answers("m1").await.unwrap(), vec![first, second]);
    assert!(matches!(
        store.add_answer("nope", "e", "E", "x", false, T0).await,
        Err(StoreError::QuestionNotFound(_))
    ));
    assert!(matches!(
        store
            .add_answer("q1", "e", "E", &"x".repeat(4_001), false, T0)
            .await,
        Err(StoreError::MeetingInput(_))
    ));
}

async fn attendance_log_and_headcount(db: TestDb) {
    let store = demo_store(&db).await;
    let units = schedule(&store, "m1", false).await;
    let unit = units[1].0.clone();
    store
        .attendance_join("m1", "c1", "member-1", Some(&unit), T0 + 10)
        .await
        .unwrap();
    store
        .attendance_join("m1", "c2", "mod-1", None, T0 + 20)
        .await
        .unwrap();
    store.attendance_leave("m1", "c1", T0 + 30).await.unwrap();
    // The same connection subscribes again.
    store
        .attendance_join("m1", "c1", "member-1", Some(&unit), T0 + 40)
        .await
        .unwrap();
    let log = store.attendance_log("m1").await.unwrap();
    let rows: Vec<(&str, Option<&str>, i64, Option<i64>)> = log
        .iter()
        .map(|r| {
            (
                r.client_id.as_str(),
                r.unit_id.as_deref(),
                r.joined_at,
                r.left_at,
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            ("c1", Some(unit.as_str()), T0 + 10, Some(T0 + 30)),
            ("c2", None, T0 + 20, None),
            ("c1", Some(unit.as_str()), T0 + 40, None),
        ]
    );
    assert!(
        store
            .set_headcount("m1", &unit, 23, "officer-1", T0 + 50)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_headcount("m1", "baoji", 5, "officer-1", T0)
            .await
            .unwrap(),
        "not in the audience"
    );
    assert!(matches!(
        store.set_headcount("m1", &unit, -1, "officer-1", T0).await,
        Err(StoreError::MeetingInput(_))
    ));
    let stored = store.meeting_units("m1").await.unwrap();
    let row = stored.iter().find(|u| u.unit_id == unit).unwrap();
    assert_eq!(
        (row.headcount, row.headcount_by.as_deref(), row.headcount_at),
        (Some(23), Some("officer-1"), Some(T0 + 50))
    );
}

async fn bad_input_is_an_error(db: TestDb) {
    let store = demo_store(&db).await;
    let units = county_units(&store).await;
    let new = |title: &str, units: Vec<(String, String)>| NewMeeting {
        id: "m1".into(),
        title: title.into(),
        agenda: String::new(),
        starts_at: T0,
        target: Target::subtree("xian-01"),
        qa_preapproval: false,
        units,
        experts: Vec::new(),
        created_by: "mod-1".into(),
        created_at: T0,
    };
    for bad in [
        new(" ", units.clone()),
        new(&"t".repeat(201), units.clone()),
        new("ok", Vec::new()),
    ] {
        assert!(matches!(
            store.create_meeting(&bad).await,
            Err(StoreError::MeetingInput(_))
        ));
    }
    store
        .create_meeting(&new("ok", units.clone()))
        .await
        .unwrap();
    assert!(matches!(
        store.create_meeting(&new("ok", units)).await,
        Err(StoreError::MeetingExists(_))
    ));
    for stream in ["", "a b", "../x", &"s".repeat(101)] {
        assert!(
            matches!(
                store.set_meeting_live("m1", stream, "mod-1", T0).await,
                Err(StoreError::MeetingInput(_))
            ),
            "{stream:?}"
        );
    }
    let mut blank = question("q1", "m1", "member-1", false);
    blank.body = "\n ".into();
    assert!(matches!(
        store.ask_question(&blank).await,
        Err(StoreError::MeetingInput(_))
    ));
    let mut long = question("q1", "m1", "member-1", false);
    long.body = "问".repeat(1_001);
    assert!(matches!(
        store.ask_question(&long).await,
        Err(StoreError::MeetingInput(_))
    ));
    assert!(matches!(
        store
            .ask_question(&question("q1", "nope", "member-1", false))
            .await,
        Err(StoreError::MeetingNotFound(_))
    ));
    // Nothing half-written.
    assert!(store.questions("m1").await.unwrap().is_empty());
    assert_eq!(
        store.meetings(&MeetingScope::All, 10).await.unwrap().len(),
        1
    );
}
