//! The store's conformance suite for accounts and unit credentials: every test runs
//! against SQLite (a temporary file) and PostgreSQL (a fresh schema per test, dropped
//! afterwards, so tests run in parallel and leave nothing behind).
//!
//! The backends and the skip rule are in `store_common`.

#[macro_use]
mod store_common;

use std::str::FromStr;
use std::time::Instant;

use rootcast_hub::auth::{Account, AuthError, NewAccount, Principal, Role};
use rootcast_hub::org::{Kind, Level, UnitSpec};
use rootcast_hub::store::{Store, StoreError};
use sqlx::Connection;
use store_common::TestDb;

conformance!(
    create_lookup_and_list,
    creation_is_checked_and_writes_nothing_on_error,
    login_succeeds_and_every_failure_looks_the_same,
    an_unknown_username_costs_a_verification,
    passwords_and_disabling,
    principals_carry_their_scope_path,
    officers_of_lists_active_officers_of_exactly_the_unit,
    active_experts_are_listed_by_display_name,
    credentials_issue_login_and_revoke,
    secrets_and_passwords_are_stored_only_as_hashes,
    ensure_admin_is_idempotent_and_race_free,
);

/// 2026-11-29T00:00:00Z in ms.
const T0: i64 = 1_795_910_400_000;
const PASSWORD: &str = "correct horse battery";

/// hq → c1 → k1 → s1, s2; hq → c10 → u1. "c1" is a prefix of "c10" as a string, so a
/// scope check on ids instead of paths would wrongly let c1's moderator reach u1.
async fn small_tree(store: &Store) {
    for (id, parent, level, kind) in [
        ("hq", None, Level::Headquarters, Kind::Headquarters),
        ("c1", Some("hq"), Level::City, Kind::CityOffice),
        ("c10", Some("hq"), Level::City, Kind::CityOffice),
        ("k1", Some("c1"), Level::County, Kind::CountyOffice),
        ("s1", Some("k1"), Level::Unit, Kind::Station),
        ("s2", Some("k1"), Level::Unit, Kind::Enterprise),
        ("u1", Some("c10"), Level::Unit, Kind::University),
    ] {
        store
            .create_unit(&UnitSpec {
                id: id.into(),
                parent: parent.map(Into::into),
                level,
                kind,
                name: format!("名称 {id}"),
                tags: vec![],
            })
            .await
            .expect("create unit");
    }
}

fn spec(username: &str, role: Role, unit: Option<&str>) -> NewAccount {
    NewAccount {
        username: username.into(),
        display_name: format!("显示 {username}"),
        role,
        unit: unit.map(Into::into),
    }
}

async fn create(store: &Store, username: &str, role: Role, unit: Option<&str>) -> Account {
    store
        .create_account(&spec(username, role, unit), Some(PASSWORD), T0)
        .await
        .expect("create account")
}

fn usernames(accounts: &[Account]) -> Vec<&str> {
    accounts.iter().map(|a| a.username.as_str()).collect()
}

fn is_bad_credentials(result: &Result<Principal, StoreError>) -> bool {
    matches!(result, Err(StoreError::Auth(AuthError::BadCredentials)))
}

async fn store_with_tree(db: &TestDb) -> Store {
    let store = db.open().await;
    small_tree(&store).await;
    store
}

async fn create_lookup_and_list(db: TestDb) {
    let store = store_with_tree(&db).await;
    let admin = create(&store, "Admin", Role::Admin, None).await;
    assert_eq!(admin.username, "admin", "usernames are stored lower case");
    assert_eq!(
        (
            admin.role,
            admin.unit.as_deref(),
            admin.disabled,
            admin.created_at
        ),
        (Role::Admin, None, false, T0)
    );
    create(&store, "mod-c1", Role::Moderator, Some("c1")).await;
    create(&store, "officer-a", Role::Officer, Some("s1")).await;
    create(&store, "officer-b", Role::Officer, Some("s1")).await;
    create(&store, "member-s1", Role::Member, Some("s1")).await;
    create(&store, "expert", Role::Expert, None).await;
    let expert_with_unit = create(&store, "expert-2", Role::Expert, Some("u1")).await;
    assert_eq!(expert_with_unit.unit.as_deref(), Some("u1"));

    let read = store.account(&admin.id).await.unwrap().unwrap();
    assert_eq!(read, admin);
    assert!(read.validate().is_ok());
    assert_eq!(
        store.account_by_username("ADMIN").await.unwrap(),
        Some(admin.clone())
    );
    assert_eq!(store.account("nobody").await.unwrap(), None);
    assert_eq!(store.account_by_username("nobody").await.unwrap(), None);
    assert_eq!(store.account_by_username("bad name!").await.unwrap(), None);

    let all = store.list_accounts(None, None).await.unwrap();
    assert_eq!(
        usernames(&all),
        [
            "admin",
            "expert",
            "expert-2",
            "member-s1",
            "mod-c1",
            "officer-a",
            "officer-b"
        ]
    );
    let officers = store
        .list_accounts(Some(Role::Officer), None)
        .await
        .unwrap();
    assert_eq!(usernames(&officers), ["officer-a", "officer-b"]);
    let of_s1 = store.list_accounts(None, Some("s1")).await.unwrap();
    assert_eq!(usernames(&of_s1), ["member-s1", "officer-a", "officer-b"]);
    let members_of_s1 = store
        .list_accounts(Some(Role::Member), Some("s1"))
        .await
        .unwrap();
    assert_eq!(usernames(&members_of_s1), ["member-s1"]);
    assert!(
        store
            .list_accounts(Some(Role::Moderator), Some("s1"))
            .await
            .unwrap()
            .is_empty()
    );
    for account in &all {
        assert_eq!(
            store.account(&account.id).await.unwrap().as_ref(),
            Some(account)
        );
    }
}

async fn creation_is_checked_and_writes_nothing_on_error(db: TestDb) {
    let store = store_with_tree(&db).await;
    create(&store, "li", Role::Officer, Some("s1")).await;
    let count = async || store.list_accounts(None, None).await.unwrap().len();
    assert_eq!(count().await, 1);

    let duplicate = store
        .create_account(&spec("LI", Role::Member, Some("s2")), Some(PASSWORD), T0)
        .await;
    assert!(
        matches!(&duplicate, Err(StoreError::AccountExists(name)) if name == "li"),
        "{duplicate:?}"
    );
    let unknown_unit = store
        .create_account(&spec("wang", Role::Officer, Some("nowhere")), None, T0)
        .await;
    assert!(
        matches!(&unknown_unit, Err(StoreError::UnitNotFound(id)) if id == "nowhere"),
        "{unknown_unit:?}"
    );
    for role in [Role::Moderator, Role::Officer, Role::Member] {
        let missing = store
            .create_account(&spec("wang", role, None), None, T0)
            .await;
        assert!(
            matches!(&missing, Err(StoreError::Auth(AuthError::Invalid(m))) if m.contains("needs a unit")),
            "{role}: {missing:?}"
        );
    }
    let admin_with_unit = store
        .create_account(&spec("wang", Role::Admin, Some("hq")), None, T0)
        .await;
    assert!(matches!(
        admin_with_unit,
        Err(StoreError::Auth(AuthError::Invalid(_)))
    ));
    let short = store
        .create_account(&spec("wang", Role::Admin, None), Some("short"), T0)
        .await;
    assert!(
        matches!(&short, Err(StoreError::Auth(AuthError::Invalid(m))) if m.contains("too short")),
        "{short:?}"
    );
    let bad_name = store
        .create_account(&spec("wang wei", Role::Admin, None), None, T0)
        .await;
    assert!(matches!(
        bad_name,
        Err(StoreError::Auth(AuthError::Invalid(_)))
    ));
    assert_eq!(count().await, 1, "no failed creation wrote anything");

    let without_password = store
        .create_account(&spec("wang", Role::Expert, None), None, T0)
        .await
        .unwrap();
    assert_eq!(without_password.role, Role::Expert);
    assert_eq!(count().await, 2);
}

async fn login_succeeds_and_every_failure_looks_the_same(db: TestDb) {
    let store = store_with_tree(&db).await;
    let officer = create(&store, "officer", Role::Officer, Some("s1")).await;
    let disabled = create(&store, "gone", Role::Member, Some("s1")).await;
    store.set_disabled(&disabled.id, true).await.unwrap();
    store
        .create_account(&spec("nopass", Role::Expert, None), None, T0)
        .await
        .unwrap();

    let principal = store.login(" OFFICER ", PASSWORD, T0).await.unwrap();
    assert_eq!(
        principal,
        Principal {
            account_id: officer.id.clone(),
            username: "officer".into(),
            role: Role::Officer,
            unit: Some("s1".into()),
            unit_path: Some("/hq/c1/k1/s1/".into()),
        }
    );

    let failures = [
        ("officer", "correct horse batter"),
        ("officer", ""),
        ("officer", "CORRECT HORSE BATTERY"),
        ("nobody", PASSWORD),
        ("gone", PASSWORD),
        ("nopass", PASSWORD),
        ("nopass", ""),
        ("", PASSWORD),
        ("'; DROP TABLE account; --", PASSWORD),
    ];
    let mut messages = Vec::new();
    for (username, password) in failures {
        let result = store.login(username, password, T0).await;
        assert!(is_bad_credentials(&result), "{username:?}: {result:?}");
        messages.push(result.unwrap_err().to_string());
    }
    messages.dedup();
    assert_eq!(
        messages.len(),
        1,
        "one message for every failure: {messages:?}"
    );
    assert!(
        store.login("officer", PASSWORD, T0).await.is_ok(),
        "the account still works after failed attempts"
    );
}

async fn an_unknown_username_costs_a_verification(db: TestDb) {
    let store = store_with_tree(&db).await;
    create(&store, "officer", Role::Officer, Some("s1")).await;
    // Warm up (the first connection, the first blocking thread).
    let _ = store.login("officer", "wrong password", T0).await;
    let time = async |username: &str| {
        let start = Instant::now();
        let result = store.login(username, "wrong password", T0).await;
        assert!(is_bad_credentials(&result));
        start.elapsed()
    };
    let mut wrong_password = std::time::Duration::ZERO;
    let mut unknown_user = std::time::Duration::ZERO;
    for _ in 0..3 {
        wrong_password += time("officer").await;
        unknown_user += time("nobody").await;
    }
    // Argon2 dominates both; without the dummy verification an unknown username answers
    // from one indexed lookup, about 100 times faster (measured). The margin is wide so
    // that load on the machine, which slows both alike, cannot fail the test.
    assert!(
        unknown_user * 20 > wrong_password,
        "unknown user {unknown_user:?} vs wrong password {wrong_password:?}"
    );
}

async fn passwords_and_disabling(db: TestDb) {
    let store = store_with_tree(&db).await;
    let account = create(&store, "li", Role::Member, Some("s2")).await;

    store
        .set_password(&account.id, "a new passphrase")
        .await
        .unwrap();
    assert!(is_bad_credentials(&store.login("li", PASSWORD, T0).await));
    assert!(store.login("li", "a new passphrase", T0).await.is_ok());
    let short = store.set_password(&account.id, "1234567").await;
    assert!(matches!(
        short,
        Err(StoreError::Auth(AuthError::Invalid(_)))
    ));
    assert!(
        store.login("li", "a new passphrase", T0).await.is_ok(),
        "a rejected new password leaves the old one"
    );

    store.set_disabled(&account.id, true).await.unwrap();
    assert!(store.account(&account.id).await.unwrap().unwrap().disabled);
    assert!(is_bad_credentials(
        &store.login("li", "a new passphrase", T0).await
    ));
    assert!(
        is_bad_credentials(&store.principal(&account.id).await),
        "a disabled account's tokens stop naming a principal"
    );
    assert!(
        store
            .revoked_principals()
            .await
            .unwrap()
            .contains(&account.id),
        "the disabled account is among the principals to cut off"
    );
    store.set_disabled(&account.id, false).await.unwrap();
    assert!(store.login("li", "a new passphrase", T0).await.is_ok());
    assert!(
        !store
            .revoked_principals()
            .await
            .unwrap()
            .contains(&account.id)
    );

    assert!(matches!(
        store.set_password("nobody", "long enough").await,
        Err(StoreError::UnknownAccount(id)) if id == "nobody"
    ));
    assert!(matches!(
        store.set_disabled("nobody", true).await,
        Err(StoreError::UnknownAccount(_))
    ));
}

async fn principals_carry_their_scope_path(db: TestDb) {
    let store = store_with_tree(&db).await;
    let admin = create(&store, "admin", Role::Admin, None).await;
    let city = create(&store, "mod-c1", Role::Moderator, Some("c1")).await;
    let county = create(&store, "mod-k1", Role::Moderator, Some("k1")).await;
    let officer = create(&store, "officer", Role::Officer, Some("s1")).await;
    let expert = create(&store, "expert", Role::Expert, Some("c1")).await;
    // What the account's principal may address and see, both read from the store now.
    let reach = async |account: &Account| -> (Vec<String>, Vec<String>) {
        let units = store.all_units().await.unwrap();
        let who = store.principal(&account.id).await.unwrap();
        let address = units.iter().filter(|u| who.can_address(u));
        let see = units.iter().filter(|u| who.can_see(u));
        (
            address.map(|u| u.id.clone()).collect(),
            see.map(|u| u.id.clone()).collect(),
        )
    };

    let admin_principal = store.principal(&admin.id).await.unwrap();
    assert!(admin_principal.is_admin() && admin_principal.unit_path.is_none());
    assert_eq!(reach(&admin).await.0.len(), 7);
    let city_principal = store.principal(&city.id).await.unwrap();
    assert_eq!(city_principal.unit_path.as_deref(), Some("/hq/c1/"));
    assert_eq!(reach(&city).await.0, ["c1", "k1", "s1", "s2"]);
    assert_eq!(reach(&county).await.0, ["k1", "s1", "s2"]);
    assert_eq!(reach(&officer).await, (vec![], vec!["s1".to_owned()]));
    assert_eq!(reach(&expert).await, (vec![], vec![]));
    let officer_principal = store.principal(&officer.id).await.unwrap();
    assert!(officer_principal.can_act_for("s1") && !officer_principal.can_act_for("s2"));

    // The path is read at every call: after k1 moves under c10, c1's moderator no
    // longer reaches k1's units, and k1's moderator follows its unit.
    store.move_unit("k1", "c10").await.unwrap();
    assert_eq!(reach(&city).await.0, ["c1"]);
    let moved = store.principal(&county.id).await.unwrap();
    assert_eq!(moved.unit_path.as_deref(), Some("/hq/c10/k1/"));
    assert_eq!(reach(&county).await.0, ["k1", "s1", "s2"]);

    assert!(matches!(
        store.principal("nobody").await,
        Err(StoreError::UnknownAccount(id)) if id == "nobody"
    ));
    assert!(matches!(
        store.principal("cred:nothing").await,
        Err(StoreError::UnknownAccount(_))
    ));
}

async fn officers_of_lists_active_officers_of_exactly_the_unit(db: TestDb) {
    let store = store_with_tree(&db).await;
    let b = create(&store, "officer-b", Role::Officer, Some("s1")).await;
    create(&store, "officer-a", Role::Officer, Some("s1")).await;
    create(&store, "officer-s2", Role::Officer, Some("s2")).await;
    create(&store, "member-s1", Role::Member, Some("s1")).await;
    create(&store, "mod-k1", Role::Moderator, Some("k1")).await;
    let officers = store.officers_of("s1").await.unwrap();
    assert_eq!(usernames(&officers), ["officer-a", "officer-b"]);
    assert!(officers.iter().all(|o| o.role == Role::Officer));
    store.set_disabled(&b.id, true).await.unwrap();
    assert_eq!(
        usernames(&store.officers_of("s1").await.unwrap()),
        ["officer-a"]
    );
    assert_eq!(
        usernames(&store.officers_of("s2").await.unwrap()),
        ["officer-s2"]
    );
    assert!(store.officers_of("k1").await.unwrap().is_empty());
    assert!(store.officers_of("nowhere").await.unwrap().is_empty());
}

async fn active_experts_are_listed_by_display_name(db: TestDb) {
    let store = store_with_tree(&db).await;
    assert!(store.active_experts().await.unwrap().is_empty());
    let named = |username: &str, display_name: &str, unit: Option<&str>| NewAccount {
        display_name: display_name.into(),
        ..spec(username, Role::Expert, unit)
    };
    // Display names in the opposite order of the usernames: the list follows the names.
    for (username, display_name, unit) in [
        ("a-expert", "Zhou (hydrology)", None),
        ("b-expert", "Li (dams)", Some("k1")),
        ("c-expert", "Chen (levees)", None),
    ] {
        store
            .create_account(&named(username, display_name, unit), None, T0)
            .await
            .unwrap();
    }
    let gone = create(&store, "d-expert", Role::Expert, None).await;
    store.set_disabled(&gone.id, true).await.unwrap();
    create(&store, "mod-k1", Role::Moderator, Some("k1")).await;
    create(&store, "officer-s1", Role::Officer, Some("s1")).await;

    let experts = store.active_experts().await.unwrap();
    assert_eq!(
        experts
            .iter()
            .map(|a| (a.display_name.as_str(), a.username.as_str()))
            .collect::<Vec<_>>(),
        [
            ("Chen (levees)", "c-expert"),
            ("Li (dams)", "b-expert"),
            ("Zhou (hydrology)", "a-expert"),
        ]
    );
    assert!(
        experts
            .iter()
            .all(|a| a.role == Role::Expert && !a.disabled)
    );
}

/// `text` with its last character replaced by another of the alphabet.
fn tampered(text: &str) -> String {
    let (head, last) = text.split_at(text.len() - 1);
    format!("{head}{}", if last == "a" { "b" } else { "a" })
}

async fn credentials_issue_login_and_revoke(db: TestDb) {
    let store = store_with_tree(&db).await;
    let issued = store
        .issue_unit_credential("s1", "会议室大屏", "admin-id", T0)
        .await
        .unwrap();
    assert!(issued.secret.starts_with(&format!("rcu_{}_", issued.id)));
    let other = store
        .issue_unit_credential("s1", "second screen", "admin-id", T0 + 1)
        .await
        .unwrap();
    assert_ne!(issued.id, other.id);

    let listed = store.list_unit_credentials("s1").await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [issued.id.as_str(), other.id.as_str()]
    );
    assert_eq!(
        (
            listed[0].unit.as_str(),
            listed[0].label.as_str(),
            listed[0].created_by.as_str(),
            listed[0].created_at,
            listed[0].revoked_at,
            listed[0].last_used_at,
        ),
        ("s1", "会议室大屏", "admin-id", T0, None, None)
    );
    let secret_part = &issued.secret[issued.secret.len() - 32..];
    assert!(!format!("{listed:?}").contains(secret_part));
    assert!(store.list_unit_credentials("s2").await.unwrap().is_empty());

    let screen = store
        .unit_credential_login(&issued.secret, T0 + 10)
        .await
        .unwrap();
    assert_eq!(
        screen,
        Principal {
            account_id: format!("cred:{}", issued.id),
            username: "room:会议室大屏".into(),
            role: Role::Member,
            unit: Some("s1".into()),
            unit_path: Some("/hq/c1/k1/s1/".into()),
        }
    );
    assert_eq!(screen.credential_id(), Some(issued.id.as_str()));
    assert!(
        !screen.can_act_for("s1"),
        "a room screen never acknowledges"
    );
    assert_eq!(store.principal(&screen.account_id).await.unwrap(), screen);
    let used = store.list_unit_credentials("s1").await.unwrap();
    assert_eq!(used[0].last_used_at, Some(T0 + 10));
    assert_eq!(used[1].last_used_at, None);

    // Tampered, swapped, malformed: all the same refusal.
    let other_secret = &other.secret[other.secret.len() - 32..];
    let swapped = format!("rcu_{}_{}", issued.id, other_secret);
    for text in [
        tampered(&issued.secret),
        swapped,
        format!("rcu_{}_{}", "a".repeat(16), secret_part),
        issued.secret.to_uppercase(),
        issued.secret[..issued.secret.len() - 1].to_owned(),
        String::new(),
        "\u{0}".repeat(4096),
    ] {
        let result = store.unit_credential_login(&text, T0).await;
        assert!(is_bad_credentials(&result), "{text:?}: {result:?}");
    }
    assert!(
        store
            .unit_credential_login(&format!("  {}\n", issued.secret), T0)
            .await
            .is_ok(),
        "a pasted line with whitespace still works"
    );

    store
        .revoke_unit_credential(&issued.id, T0 + 20)
        .await
        .unwrap();
    assert!(is_bad_credentials(
        &store.unit_credential_login(&issued.secret, T0 + 30).await
    ));
    assert!(
        is_bad_credentials(&store.principal(&screen.account_id).await),
        "tokens of a revoked credential stop naming a principal"
    );
    let revoked = store.revoked_principals().await.unwrap();
    assert!(revoked.contains(&screen.account_id), "{revoked:?}");
    store
        .revoke_unit_credential(&issued.id, T0 + 40)
        .await
        .unwrap();
    let after = store.list_unit_credentials("s1").await.unwrap();
    assert_eq!(
        after[0].revoked_at,
        Some(T0 + 20),
        "the first revocation is kept"
    );
    assert_eq!(after[1].revoked_at, None);
    let other_screen = store.unit_credential_login(&other.secret, T0).await;
    assert!(
        other_screen.is_ok(),
        "revoking one credential leaves the unit's others"
    );
    assert!(!revoked.contains(&other_screen.unwrap().account_id));
    assert!(matches!(
        store.revoke_unit_credential("nothing", T0).await,
        Err(StoreError::UnknownCredential(id)) if id == "nothing"
    ));

    assert!(matches!(
        store
            .issue_unit_credential("nowhere", "x", "admin-id", T0)
            .await,
        Err(StoreError::UnitNotFound(_))
    ));
    assert!(matches!(
        store.issue_unit_credential("s1", " ", "admin-id", T0).await,
        Err(StoreError::Auth(AuthError::Invalid(_)))
    ));

    // A credential whose unit is deleted stops logging in.
    let s2 = store
        .issue_unit_credential("s2", "screen", "admin-id", T0)
        .await
        .unwrap();
    store.delete_leaf("s2").await.unwrap();
    assert!(is_bad_credentials(
        &store.unit_credential_login(&s2.secret, T0).await
    ));
}

/// The first column of every row `sql` returns, read (or written) past the store's API.
async fn raw_column(db: &TestDb, sql: &str) -> Vec<Option<String>> {
    if let Some(schema) = &db.options.postgres_schema {
        let options = sqlx::postgres::PgConnectOptions::from_str(&db.options.url)
            .unwrap()
            .options([("search_path", schema.as_str())]);
        let mut connection = sqlx::PgConnection::connect_with(&options).await.unwrap();
        sqlx::query_scalar(sql)
            .fetch_all(&mut connection)
            .await
            .unwrap()
    } else {
        let mut connection = sqlx::SqliteConnection::connect(&db.options.url)
            .await
            .unwrap();
        sqlx::query_scalar(sql)
            .fetch_all(&mut connection)
            .await
            .unwrap()
    }
}

async fn secrets_and_passwords_are_stored_only_as_hashes(db: TestDb) {
    let store = store_with_tree(&db).await;
    create(&store, "li", Role::Officer, Some("s1")).await;
    let issued = store
        .issue_unit_credential("s1", "screen", "cli", T0)
        .await
        .unwrap();
    let secret_part = &issued.secret[issued.secret.len() - 32..];

    let password_hashes = raw_column(&db, "SELECT password_hash FROM account").await;
    assert_eq!(password_hashes.len(), 1);
    let stored = password_hashes[0].as_deref().unwrap();
    assert!(stored.starts_with("$argon2id$v=19$"), "{stored}");
    assert!(!stored.contains(PASSWORD));

    let secret_hashes = raw_column(&db, "SELECT secret_hash FROM unit_credential").await;
    let stored = secret_hashes[0].as_deref().unwrap();
    assert_eq!(stored.len(), 64);
    assert!(!stored.contains(secret_part) && !issued.secret.contains(stored));
    assert_eq!(
        stored,
        rootcast_hub::auth::credential::secret_hash(secret_part)
    );
}

async fn ensure_admin_is_idempotent_and_race_free(db: TestDb) {
    let store = db.open().await;
    assert!(store.ensure_admin("Admin", "first password").await.unwrap());
    assert!(
        !store
            .ensure_admin("admin", "second password")
            .await
            .unwrap()
    );
    assert!(!store.ensure_admin("root", "third password").await.unwrap());
    let admins = store.list_accounts(Some(Role::Admin), None).await.unwrap();
    assert_eq!(usernames(&admins), ["admin"]);
    assert!(admins[0].validate().is_ok());
    let principal = store.login("admin", "first password", T0).await.unwrap();
    assert!(principal.is_admin());
    assert!(is_bad_credentials(
        &store.login("admin", "second password", T0).await
    ));
    // Still an admin when it is disabled: nothing is created behind the operator's back.
    store.set_disabled(&admins[0].id, true).await.unwrap();
    assert!(
        !store
            .ensure_admin("admin2", "fourth password")
            .await
            .unwrap()
    );

    // Two nodes starting at once on an empty store: exactly one creates the admin.
    demote_admins(&db).await;
    let fresh = db.open().await;
    let other = db.open().await;
    let (a, b) = tokio::join!(
        fresh.ensure_admin("boss", "race password"),
        other.ensure_admin("boss", "race password")
    );
    let created = [a.unwrap(), b.unwrap()];
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
    assert_eq!(
        usernames(&fresh.list_accounts(Some(Role::Admin), None).await.unwrap()),
        ["boss"]
    );

    // A name held by someone who is not an admin is an error, not a silent success.
    demote_admins(&db).await;
    create(&store, "member", Role::Expert, None).await;
    assert!(matches!(
        store.ensure_admin("member", "fifth password").await,
        Err(StoreError::AccountExists(_))
    ));
}

/// Demotes every admin account of `db` to expert, past the store's API (which never
/// changes a role), so [`Store::ensure_admin`] sees none again.
async fn demote_admins(db: &TestDb) {
    raw_column(
        db,
        "UPDATE account SET role = 'expert' WHERE role = 'admin' RETURNING id",
    )
    .await;
}
