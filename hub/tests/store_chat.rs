//! The store's conformance suite for meeting chat (messages, sanctions, settings): every
//! test runs against SQLite and PostgreSQL (see `store_common`).

#[macro_use]
mod store_common;

use rootcast_hub::store::{
    ChatSanction, ChatSettings, ChatState, NewChatMessage, SanctionKind, Store, StoreError,
};
use store_common::TestDb;

conformance!(
    history_lists_visible_messages_in_order_and_pages_back,
    held_messages_wait_for_one_review,
    deletion_hides_a_message_and_happens_once,
    sanctions_replace_each_other_and_are_lifted,
    settings_are_stored_per_meeting,
    moderation_is_audited,
);

/// 2026-11-29T00:00:00Z in ms.
const T0: i64 = 1_795_910_400_000;

fn message(meeting: &str, account: &str, body: &str, held_word: Option<&str>) -> NewChatMessage {
    NewChatMessage {
        meeting: meeting.to_owned(),
        account: account.to_owned(),
        display_name: format!("{account} name"),
        unit: Some("xian-01".to_owned()),
        body: body.to_owned(),
        held_word: held_word.map(str::to_owned),
    }
}

async fn post(store: &Store, meeting: &str, body: &str, at: i64) -> i64 {
    store
        .post_chat_message(&message(meeting, "alice", body, None), at)
        .await
        .unwrap()
        .id
}

async fn bodies(store: &Store, meeting: &str, limit: u32, before: Option<i64>) -> Vec<String> {
    store
        .chat_history(meeting, limit, before)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

async fn history_lists_visible_messages_in_order_and_pages_back(db: TestDb) {
    let store = db.open().await;
    let first = store
        .post_chat_message(&message("m1", "alice", "one", None), T0)
        .await
        .unwrap();
    assert_eq!(first.state, ChatState::Visible);
    assert_eq!(first.meeting_id, "m1");
    assert_eq!(first.display_name, "alice name");
    assert_eq!(first.unit_id.as_deref(), Some("xian-01"));
    assert_eq!(first.created_at, T0);
    let mut ids = vec![first.id];
    for (i, body) in ["two", "three", "four"].iter().enumerate() {
        ids.push(post(&store, "m1", body, T0 + 1 + i as i64).await);
    }
    // Another meeting's messages and a held one are not in the history.
    post(&store, "m2", "elsewhere", T0).await;
    store
        .post_chat_message(&message("m1", "bob", "held", Some("spam")), T0 + 9)
        .await
        .unwrap();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    assert_eq!(
        bodies(&store, "m1", 50, None).await,
        ["one", "two", "three", "four"]
    );
    assert_eq!(bodies(&store, "m1", 2, None).await, ["three", "four"]);
    assert_eq!(bodies(&store, "m1", 2, Some(ids[2])).await, ["one", "two"]);
    assert_eq!(bodies(&store, "m2", 50, None).await, ["elsewhere"]);
    assert!(bodies(&store, "m3", 50, None).await.is_empty());
    // A message is found only in its own meeting.
    assert_eq!(store.chat_message("m1", ids[0]).await.unwrap().body, "one");
    assert!(matches!(
        store.chat_message("m2", ids[0]).await,
        Err(StoreError::ChatMessageNotFound(id)) if id == ids[0]
    ));
}

async fn held_messages_wait_for_one_review(db: TestDb) {
    let store = db.open().await;
    let held = store
        .post_chat_message(&message("m1", "bob", "buy spam", Some("spam")), T0)
        .await
        .unwrap();
    assert_eq!(held.state, ChatState::Held);
    assert_eq!(held.held_word.as_deref(), Some("spam"));
    let other = store
        .post_chat_message(&message("m1", "bob", "more spam", Some("spam")), T0 + 1)
        .await
        .unwrap();
    let waiting: Vec<i64> = store
        .held_chat_messages("m1")
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(waiting, [held.id, other.id]);
    assert!(bodies(&store, "m1", 50, None).await.is_empty());

    let approved = store
        .review_chat_message("m1", held.id, true, "mod", T0 + 5)
        .await
        .unwrap();
    assert_eq!(approved.state, ChatState::Visible);
    assert_eq!(approved.reviewed_by.as_deref(), Some("mod"));
    assert_eq!(approved.reviewed_at, Some(T0 + 5));
    let rejected = store
        .review_chat_message("m1", other.id, false, "mod", T0 + 6)
        .await
        .unwrap();
    assert_eq!(rejected.state, ChatState::Rejected);
    assert_eq!(bodies(&store, "m1", 50, None).await, ["buy spam"]);
    assert!(store.held_chat_messages("m1").await.unwrap().is_empty());
    // Reviewed once: a second review, or one of a message never held, is a conflict.
    for (id, approve) in [(held.id, false), (other.id, true)] {
        let error = store
            .review_chat_message("m1", id, approve, "mod2", T0 + 7)
            .await
            .unwrap_err();
        assert!(matches!(error, StoreError::ChatConflict(_)), "{error}");
    }
    assert_eq!(
        store
            .chat_message("m1", held.id)
            .await
            .unwrap()
            .reviewed_by
            .as_deref(),
        Some("mod")
    );
    assert!(matches!(
        store
            .review_chat_message("m1", 999_999, true, "mod", T0)
            .await,
        Err(StoreError::ChatMessageNotFound(999_999))
    ));
}

async fn deletion_hides_a_message_and_happens_once(db: TestDb) {
    let store = db.open().await;
    let keep = post(&store, "m1", "keep", T0).await;
    let gone = post(&store, "m1", "gone", T0 + 1).await;
    let deleted = store
        .delete_chat_message("m1", gone, "mod", T0 + 2)
        .await
        .unwrap();
    assert_eq!(deleted.state, ChatState::Deleted);
    assert_eq!(deleted.deleted_by.as_deref(), Some("mod"));
    assert_eq!(deleted.deleted_at, Some(T0 + 2));
    assert_eq!(bodies(&store, "m1", 50, None).await, ["keep"]);
    let again = store
        .delete_chat_message("m1", gone, "mod2", T0 + 3)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::ChatConflict(_)), "{again}");
    assert!(again.to_string().contains("deleted"), "{again}");
    // A held message may be deleted too; another meeting's message is not found.
    let held = store
        .post_chat_message(&message("m1", "bob", "spam", Some("spam")), T0 + 4)
        .await
        .unwrap();
    store
        .delete_chat_message("m1", held.id, "mod", T0 + 5)
        .await
        .unwrap();
    assert!(store.held_chat_messages("m1").await.unwrap().is_empty());
    assert!(matches!(
        store.delete_chat_message("m2", keep, "mod", T0).await,
        Err(StoreError::ChatMessageNotFound(_))
    ));
}

fn sanction(kind: SanctionKind, until: Option<i64>, at: i64) -> ChatSanction {
    ChatSanction {
        meeting_id: "m1".into(),
        account_id: "alice".into(),
        kind,
        until,
        reason: "flooding".into(),
        by: "mod".into(),
        at,
    }
}

async fn sanctions_replace_each_other_and_are_lifted(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.chat_sanction("m1", "alice").await.unwrap(), None);
    let timeout = store
        .sanction_chat_member(&sanction(SanctionKind::Timeout, Some(T0 + 60_000), T0))
        .await
        .unwrap();
    assert_eq!(
        timeout,
        sanction(SanctionKind::Timeout, Some(T0 + 60_000), T0)
    );
    // In force while it runs, listed no more after its end, kept as a row.
    assert_eq!(
        store.chat_sanctions("m1", T0 + 1).await.unwrap(),
        std::slice::from_ref(&timeout)
    );
    assert!(
        store
            .chat_sanctions("m1", T0 + 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.chat_sanctions("m2", T0 + 1).await.unwrap().is_empty());
    // A ban replaces the timeout.
    let ban = store
        .sanction_chat_member(&sanction(SanctionKind::Ban, None, T0 + 10))
        .await
        .unwrap();
    assert_eq!(ban.kind, SanctionKind::Ban);
    assert_eq!(ban.until, None);
    assert_eq!(
        store.chat_sanction("m1", "alice").await.unwrap(),
        Some(ban.clone())
    );
    assert_eq!(
        store.chat_sanctions("m1", T0 + 999_999_999).await.unwrap(),
        std::slice::from_ref(&ban)
    );
    // Lifting returns what was lifted, once.
    assert_eq!(
        store
            .lift_chat_sanction("m1", "alice", "mod", T0 + 20)
            .await
            .unwrap(),
        Some(ban)
    );
    assert_eq!(
        store
            .lift_chat_sanction("m1", "alice", "mod", T0 + 21)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.chat_sanction("m1", "alice").await.unwrap(), None);
    // A timeout needs an end and a ban has none.
    for bad in [
        sanction(SanctionKind::Timeout, None, T0),
        sanction(SanctionKind::Ban, Some(T0), T0),
    ] {
        assert!(matches!(
            store.sanction_chat_member(&bad).await,
            Err(StoreError::ChatInput(_))
        ));
    }
    assert_eq!(store.chat_sanction("m1", "alice").await.unwrap(), None);
}

async fn settings_are_stored_per_meeting(db: TestDb) {
    let store = db.open().await;
    assert_eq!(store.chat_settings("m1").await.unwrap(), None);
    let settings = |slow: i64, enabled: bool, at: i64| ChatSettings {
        meeting_id: "m1".into(),
        slow_mode_seconds: slow,
        enabled,
        updated_by: "mod".into(),
        updated_at: at,
    };
    assert_eq!(
        store
            .set_chat_settings(&settings(30, true, T0))
            .await
            .unwrap(),
        settings(30, true, T0)
    );
    assert_eq!(
        store
            .set_chat_settings(&settings(0, false, T0 + 1))
            .await
            .unwrap(),
        settings(0, false, T0 + 1)
    );
    assert_eq!(
        store.chat_settings("m1").await.unwrap(),
        Some(settings(0, false, T0 + 1))
    );
    assert_eq!(store.chat_settings("m2").await.unwrap(), None);
    assert!(matches!(
        store.set_chat_settings(&settings(-1, true, T0)).await,
        Err(StoreError::ChatInput(_))
    ));
}

async fn moderation_is_audited(db: TestDb) {
    let store = db.open().await;
    let id = post(&store, "m1", "hello", T0).await;
    // Posting is not audited (the message row is its record)…
    let before = store.audit_entries(0, 1000).await.unwrap().len();
    store
        .delete_chat_message("m1", id, "mod", T0 + 1)
        .await
        .unwrap();
    let held = store
        .post_chat_message(&message("m1", "bob", "spam", Some("spam")), T0 + 2)
        .await
        .unwrap();
    store
        .review_chat_message("m1", held.id, false, "mod", T0 + 3)
        .await
        .unwrap();
    store
        .sanction_chat_member(&sanction(SanctionKind::Ban, None, T0 + 4))
        .await
        .unwrap();
    store
        .lift_chat_sanction("m1", "alice", "mod", T0 + 5)
        .await
        .unwrap();
    store
        .set_chat_settings(&ChatSettings {
            meeting_id: "m1".into(),
            slow_mode_seconds: 10,
            enabled: true,
            updated_by: "mod".into(),
            updated_at: T0 + 6,
        })
        .await
        .unwrap();
    // A failed step records nothing.
    let _ = store.delete_chat_message("m1", id, "mod", T0 + 7).await;
    let entries = store.audit_entries(0, 1000).await.unwrap();
    let actions: Vec<(&str, &str, &str)> = entries[before..]
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
            ("chat.delete", "mod", "meeting-chat:m1"),
            ("chat.reject", "mod", "meeting-chat:m1"),
            ("chat.ban", "mod", "meeting-chat:m1"),
            ("chat.unban", "mod", "meeting-chat:m1"),
            ("chat.settings", "mod", "meeting-chat:m1"),
        ]
    );
    assert!(
        entries[before].record.detail.contains("hello"),
        "{}",
        entries[before].record.detail
    );
    assert!(store.verify_audit().await.unwrap().broken.is_none());
}
