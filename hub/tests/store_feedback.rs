//! The store's conformance suite for feedback (replies and problem reports from units):
//! every test runs against SQLite and PostgreSQL (see `store_common`).

#[macro_use]
mod store_common;

use rootcast_hub::directive::feedback::{FeedbackError, FeedbackKind, Status};
use rootcast_hub::directive::{Directive, Priority, Target};
use rootcast_hub::store::{NewThread, Store, StoreError, ThreadFilter};
use store_common::TestDb;

conformance!(
    headquarters_and_the_parent_see_a_thread_at_once,
    status_follows_the_rules,
    bad_input_is_an_error,
    concurrent_posts_are_numbered_without_gaps,
);

/// 2026-11-29T00:00:00Z in ms.
const T0: i64 = 1_795_910_400_000;

async fn demo_store(db: &TestDb) -> Store {
    let store = db.open().await;
    store.load_demo().await.unwrap();
    store
        .create_directive(&Directive {
            id: "d1".into(),
            title: "Flood drill".into(),
            body: "Meet at 9.".into(),
            priority: Priority::Urgent,
            target: Target::subtree("xian-01"),
            ack_required: true,
            deadline: None,
            created_by: "hq-admin".into(),
            created_at: T0,
            version: 1,
        })
        .await
        .unwrap();
    store
}

/// A grassroots unit under the county `xian-01`.
async fn leaf(store: &Store) -> String {
    store.children("xian-01").await.unwrap()[0].id.clone()
}

fn new_thread(unit: &str, directive: Option<&str>, kind: FeedbackKind) -> NewThread {
    NewThread {
        unit: unit.to_owned(),
        directive: directive.map(str::to_owned),
        kind,
        subject: "The river is rising".into(),
        body: "We cannot reach the meeting point.".into(),
        author: "officer-1".into(),
    }
}

async fn ids(store: &Store, filter: ThreadFilter) -> Vec<String> {
    let mut ids: Vec<String> = store
        .feedback_threads(&filter)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    ids.sort();
    ids
}

async fn headquarters_and_the_parent_see_a_thread_at_once(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = leaf(&store).await;
    let reply = store
        .open_thread(&new_thread(&unit, Some("d1"), FeedbackKind::Reply), T0 + 1)
        .await
        .unwrap();
    assert_eq!(reply.parent_id.as_deref(), Some("xian-01"));
    assert_eq!(reply.status, Status::Open);
    assert_eq!(reply.kind, FeedbackKind::Reply);
    assert_eq!(reply.directive_id.as_deref(), Some("d1"));
    assert_eq!(
        reply.unit_path,
        store.require_unit(&unit).await.unwrap().path
    );
    let problem = store
        .open_thread(&new_thread("baoji", None, FeedbackKind::Problem), T0 + 2)
        .await
        .unwrap();
    assert_eq!(problem.parent_id.as_deref(), Some("sx"));

    let mut both = vec![reply.id.clone(), problem.id.clone()];
    both.sort();
    // Headquarters sees everything, the parent its children's, nobody else's.
    assert_eq!(ids(&store, ThreadFilter::default()).await, both);
    let subtree = |root: &str| ThreadFilter {
        subtree: Some(root.to_owned()),
        ..ThreadFilter::default()
    };
    assert_eq!(ids(&store, subtree("sx")).await, both);
    assert_eq!(ids(&store, subtree("xian")).await, [reply.id.as_str()]);
    assert_eq!(ids(&store, subtree("xian-01")).await, [reply.id.as_str()]);
    assert_eq!(ids(&store, subtree(&unit)).await, [reply.id.as_str()]);
    assert!(ids(&store, subtree("xian-02")).await.is_empty());
    let parent = ThreadFilter {
        parent: Some("xian-01".into()),
        ..ThreadFilter::default()
    };
    assert_eq!(ids(&store, parent).await, [reply.id.as_str()]);
    let by_unit = ThreadFilter {
        unit: Some("baoji".into()),
        ..ThreadFilter::default()
    };
    assert_eq!(ids(&store, by_unit).await, [problem.id.as_str()]);
    let by_directive = ThreadFilter {
        directive: Some("d1".into()),
        ..ThreadFilter::default()
    };
    assert_eq!(ids(&store, by_directive).await, [reply.id.as_str()]);
    let open_in_xian = ThreadFilter {
        status: Some(Status::Open),
        ..subtree("xian")
    };
    assert_eq!(ids(&store, open_in_xian).await, [reply.id.as_str()]);
    let answered = ThreadFilter {
        status: Some(Status::Answered),
        ..ThreadFilter::default()
    };
    assert!(ids(&store, answered).await.is_empty());
    // Most recently updated first.
    let listed = store
        .feedback_threads(&ThreadFilter::default())
        .await
        .unwrap();
    assert_eq!(listed[0].id, problem.id);
    assert!(matches!(
        store.feedback_threads(&subtree("nope")).await,
        Err(StoreError::UnitNotFound(_))
    ));
    // The first message is the unit's.
    let messages = store.feedback_messages(&reply.id).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        (
            messages[0].number,
            messages[0].author.as_str(),
            messages[0].author_unit.as_deref()
        ),
        (1, "officer-1", Some(unit.as_str()))
    );
}

async fn status_follows_the_rules(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = leaf(&store).await;
    let thread = store
        .open_thread(&new_thread(&unit, None, FeedbackKind::Problem), T0 + 1)
        .await
        .unwrap();
    let id = thread.id.as_str();
    // The parent's officer answers.
    let (after, message) = store
        .post_feedback(
            id,
            "county-officer",
            Some("xian-01"),
            "Use the bridge.",
            T0 + 2,
        )
        .await
        .unwrap();
    assert_eq!((after.status, message.number), (Status::Answered, 2));
    assert_eq!(after.updated_at, T0 + 2);
    // The unit is not satisfied: reopened.
    let (after, _) = store
        .post_feedback(
            id,
            "officer-1",
            Some(&unit),
            "The bridge is closed.",
            T0 + 3,
        )
        .await
        .unwrap();
    assert_eq!(after.status, Status::Open);
    // Headquarters answers.
    let (after, message) = store
        .post_feedback(id, "hq-admin", None, "A boat is on its way.", T0 + 4)
        .await
        .unwrap();
    assert_eq!(
        (after.status, message.author_unit),
        (Status::Answered, None)
    );
    let closed = store.close_thread(id, "officer-1", T0 + 5).await.unwrap();
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(
        (closed.closed_by.as_deref(), closed.closed_at),
        (Some("officer-1"), Some(T0 + 5))
    );
    assert!(matches!(
        store
            .post_feedback(id, "officer-1", Some(&unit), "again", T0 + 6)
            .await,
        Err(StoreError::ThreadClosed(_))
    ));
    assert!(matches!(
        store.close_thread(id, "hq-admin", T0 + 6).await,
        Err(StoreError::ThreadClosed(_))
    ));
    let numbers: Vec<(i64, String)> = store
        .feedback_messages(id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.number, m.author))
        .collect();
    assert_eq!(
        numbers,
        [
            (1, "officer-1".to_owned()),
            (2, "county-officer".to_owned()),
            (3, "officer-1".to_owned()),
            (4, "hq-admin".to_owned()),
        ]
    );
    // Every step is in the audit log, after the directive's send.
    let actions: Vec<String> = store
        .audit_entries(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| format!("{} {}", e.record.action, e.record.actor))
        .collect();
    assert_eq!(
        actions,
        [
            "directive.send hq-admin",
            "feedback.open officer-1",
            "feedback.message county-officer",
            "feedback.message officer-1",
            "feedback.message hq-admin",
            "feedback.close officer-1",
        ]
    );
    assert_eq!(store.verify_audit().await.unwrap().broken, None);
}

async fn bad_input_is_an_error(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = leaf(&store).await;
    let cases = [
        (
            new_thread("nope", None, FeedbackKind::Problem),
            "UnitNotFound",
        ),
        (
            new_thread(&unit, Some("nope"), FeedbackKind::Reply),
            "DirectiveNotFound",
        ),
        (
            new_thread("baoji", Some("d1"), FeedbackKind::Reply),
            "NotInInbox",
        ),
        (
            NewThread {
                subject: " ".into(),
                ..new_thread(&unit, None, FeedbackKind::Problem)
            },
            "EmptySubject",
        ),
        (
            NewThread {
                body: String::new(),
                ..new_thread(&unit, None, FeedbackKind::Problem)
            },
            "EmptyBody",
        ),
    ];
    for (new, expected) in cases {
        let error = store.open_thread(&new, T0).await.unwrap_err();
        let matched = match &error {
            StoreError::UnitNotFound(_) => "UnitNotFound",
            StoreError::DirectiveNotFound(_) => "DirectiveNotFound",
            StoreError::NotInInbox { .. } => "NotInInbox",
            StoreError::Feedback(FeedbackError::EmptySubject) => "EmptySubject",
            StoreError::Feedback(FeedbackError::EmptyBody) => "EmptyBody",
            _ => "other",
        };
        assert_eq!(matched, expected, "{error}");
    }
    assert!(
        store
            .feedback_threads(&ThreadFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "nothing written"
    );
    assert!(matches!(
        store.post_feedback("nope", "a", None, "hello", T0).await,
        Err(StoreError::ThreadNotFound(_))
    ));
    assert!(matches!(
        store.close_thread("nope", "a", T0).await,
        Err(StoreError::ThreadNotFound(_))
    ));
    let thread = store
        .open_thread(&new_thread(&unit, None, FeedbackKind::Problem), T0)
        .await
        .unwrap();
    let too_big = "x".repeat(rootcast_hub::directive::feedback::MAX_MESSAGE_BYTES + 1);
    assert!(matches!(
        store
            .post_feedback(&thread.id, "a", None, &too_big, T0)
            .await,
        Err(StoreError::Feedback(FeedbackError::BodyTooLarge { .. }))
    ));
    assert_eq!(store.feedback_messages(&thread.id).await.unwrap().len(), 1);
}

async fn concurrent_posts_are_numbered_without_gaps(db: TestDb) {
    let store = demo_store(&db).await;
    let unit = leaf(&store).await;
    let thread = store
        .open_thread(&new_thread(&unit, None, FeedbackKind::Problem), T0)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let id = thread.id.clone();
            tokio::spawn(async move {
                store
                    .post_feedback(&id, &format!("hq-{i}"), None, "on it", T0 + i)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), all)
        .await
        .expect("posts finish");
    let numbers: Vec<i64> = store
        .feedback_messages(&thread.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.number)
        .collect();
    assert_eq!(numbers, (1..=9).collect::<Vec<_>>());
    assert_eq!(
        store.require_thread(&thread.id).await.unwrap().status,
        Status::Answered
    );
    assert_eq!(store.verify_audit().await.unwrap().broken, None);
}
