//! Accounts, roles and who may do what: the pure rules behind every API and RPC check.
//!
//! Nothing here touches a database, a socket or the clock; [`crate::store`] persists
//! accounts and unit credentials (`store/accounts.rs`) and fills in a [`Principal`] for
//! each request, and the services ask the principal whether an action is allowed.
//!
//! - [`password`]: argon2id hashing of people's passwords.
//! - [`credential`]: long-lived unit credentials for a meeting-room screen.
//!
//! # Roles and scope
//! | role | `unit` | may address (send to) | may see | may act for a unit |
//! | --- | --- | --- | --- | --- |
//! | admin | none | every unit | every unit | no |
//! | moderator | required: the root of their subtree | units in that subtree | units in that subtree | no |
//! | expert | optional, grants nothing | nothing | nothing | no |
//! | officer | required: their unit | nothing | their own unit | their own unit |
//! | member | required: their unit | nothing | their own unit | no |
//!
//! "Inside a subtree" is decided on materialised paths ([`Unit::path`]), which end in `/`,
//! so `/hq/c1/` never matches `/hq/c10/`. Acting for a unit (acknowledging a directive on
//! its behalf) belongs to its officers only, not even to an administrator: an
//! acknowledgement says that a person accountable for the unit has seen it.
//!
//! # Guarantees
//! - Every check denies by default: a principal whose scope path is missing (its unit was
//!   deleted, or the store did not fill it) addresses and sees nothing.
//! - Bad input is an [`AuthError`], never a panic.
//! - [`AuthError::BadCredentials`] has one message for every failed login (unknown user,
//!   wrong password, disabled account, unknown or revoked credential), so a login does
//!   not reveal which.

pub mod credential;
pub mod password;

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::org::{self, Unit};

pub use credential::{IssuedCredential, UnitCredential, parse_credential};
pub use password::{hash_password, verify_password};

/// Longest username, in bytes.
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// Why an authentication or authorisation step failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// Any failed login: unknown user, wrong password, disabled account, unknown, revoked
    /// or tampered credential. One message for all, on purpose.
    #[error("wrong username or password, or the credential is not valid")]
    BadCredentials,
    /// The principal may not do this; the message names what was refused.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Bad input: an unknown role, a malformed username, a password of the wrong length.
    #[error("{0}")]
    Invalid(String),
    /// Hashing a password failed inside the argon2 crate (not expected with valid input).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// What an account may do; see the module docs for the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Moderator,
    Expert,
    Officer,
    Member,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Moderator,
        Role::Expert,
        Role::Officer,
        Role::Member,
    ];

    /// The name used in the store, the API and tokens.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Moderator => "moderator",
            Role::Expert => "expert",
            Role::Officer => "officer",
            Role::Member => "member",
        }
    }

    /// Parses [`Role::as_str`]'s names (exactly, lower case).
    pub fn parse(text: &str) -> Result<Role, AuthError> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == text)
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "unknown role {text:?}; expected admin, moderator, expert, officer or member"
                ))
            })
    }

    /// Whether an account of this role must name a unit (its scope or its own unit).
    pub fn needs_unit(self) -> bool {
        matches!(self, Role::Moderator | Role::Officer | Role::Member)
    }

    /// Whether an account of this role may name a unit at all.
    pub fn allows_unit(self) -> bool {
        self != Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account as stored (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    /// Lower case, unique; see [`normalize_username`].
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// A moderator's scope root; an officer's or member's unit; optional for an expert
    /// (grants nothing); none for an admin.
    pub unit: Option<String>,
    /// A disabled account cannot log in and its tokens stop naming a principal.
    pub disabled: bool,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

impl Account {
    /// Checks the account's fields and the role/unit rule (see [`NewAccount::validate`]).
    pub fn validate(&self) -> Result<(), AuthError> {
        self.spec().validate()
    }

    /// The fields a caller supplies to create this account.
    pub fn spec(&self) -> NewAccount {
        NewAccount {
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            unit: self.unit.clone(),
        }
    }
}

/// What a caller supplies to create an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    /// Compared and stored lower case ([`normalize_username`]).
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub unit: Option<String>,
}

impl NewAccount {
    /// Checks the username, the display name, the unit id's form, and the role/unit
    /// rule: moderators, officers and members need a unit, admins may not have one.
    /// Whether the unit exists is the store's check.
    pub fn validate(&self) -> Result<(), AuthError> {
        normalize_username(&self.username)?;
        validate_display_name(&self.display_name)?;
        match (&self.unit, self.role) {
            (None, role) if role.needs_unit() => Err(AuthError::Invalid(format!(
                "a {role} account needs a unit ({})",
                match role {
                    Role::Moderator => "the root of the subtree they moderate",
                    _ => "the unit they belong to",
                }
            ))),
            (Some(_), role) if !role.allows_unit() => Err(AuthError::Invalid(format!(
                "an {role} account has no unit: administrators act on the whole organisation"
            ))),
            (Some(unit), _) => {
                org::validate_id(unit).map_err(|error| AuthError::Invalid(format!("unit: {error}")))
            }
            (None, _) => Ok(()),
        }
    }
}

/// A username as stored and compared: trimmed and lower case; 1–64 bytes of ASCII
/// letters, digits, `.`, `_`, `-` or `@`.
pub fn normalize_username(username: &str) -> Result<String, AuthError> {
    let normalized = username.trim().to_ascii_lowercase();
    if normalized.is_empty() {
        return Err(AuthError::Invalid("username must not be empty".into()));
    }
    if normalized.len() > MAX_USERNAME_LEN {
        return Err(AuthError::Invalid(format!(
            "username is longer than {MAX_USERNAME_LEN} bytes"
        )));
    }
    if !normalized
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
    {
        return Err(AuthError::Invalid(format!(
            "username {username:?} may contain only ASCII letters, digits, '.', '_', '-' and '@'"
        )));
    }
    Ok(normalized)
}

fn validate_display_name(name: &str) -> Result<(), AuthError> {
    if name.trim().is_empty() {
        return Err(AuthError::Invalid("display name must not be empty".into()));
    }
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(AuthError::Invalid(format!(
            "display name is longer than {MAX_DISPLAY_NAME_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "display name must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// Who is making a request: a person's account, or a meeting-room screen logged in with a
/// unit credential (then `account_id` is `cred:<credential id>`, see
/// [`credential`]). Built by the store; the checks below are pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub username: String,
    pub role: Role,
    pub unit: Option<String>,
    /// The materialised path of `unit` (`/root/…/id/`), when the unit exists.
    pub unit_path: Option<String>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The credential id when this principal is a meeting-room screen.
    pub fn credential_id(&self) -> Option<&str> {
        self.account_id.strip_prefix(credential::PRINCIPAL_PREFIX)
    }

    /// Whether this principal may send to `unit`: an admin any unit, a moderator the
    /// units inside their subtree, nobody else.
    pub fn can_address(&self, unit: &Unit) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Moderator => self.scope_contains(unit),
            Role::Expert | Role::Officer | Role::Member => false,
        }
    }

    /// Whether this principal may see `unit` (its inbox, its acknowledgement state): an
    /// admin any unit, a moderator their subtree, an officer or member their own unit,
    /// an expert none.
    pub fn can_see(&self, unit: &Unit) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Moderator => self.scope_contains(unit),
            Role::Officer | Role::Member => self.unit.as_deref() == Some(unit.id.as_str()),
            Role::Expert => false,
        }
    }

    /// Whether this principal may act for the unit (acknowledge on its behalf): an
    /// officer of exactly that unit, nobody else.
    pub fn can_act_for(&self, unit_id: &str) -> bool {
        self.role == Role::Officer && self.unit.as_deref() == Some(unit_id)
    }

    /// [`Principal::is_admin`], or [`AuthError::Forbidden`] naming `action`.
    pub fn check_admin(&self, action: &str) -> Result<(), AuthError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "only an administrator may {action}"
            )))
        }
    }

    /// [`Principal::can_address`], or [`AuthError::Forbidden`] naming the unit.
    pub fn check_address(&self, unit: &Unit) -> Result<(), AuthError> {
        if self.can_address(unit) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "{} {:?} may not address unit {:?}: it is outside their scope",
                self.role, self.username, unit.id
            )))
        }
    }

    /// [`Principal::can_see`], or [`AuthError::Forbidden`] naming the unit.
    pub fn check_see(&self, unit: &Unit) -> Result<(), AuthError> {
        if self.can_see(unit) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "{} {:?} may not see unit {:?}: it is outside their scope",
                self.role, self.username, unit.id
            )))
        }
    }

    /// [`Principal::can_act_for`], or [`AuthError::Forbidden`] naming the unit.
    pub fn check_act_for(&self, unit_id: &str) -> Result<(), AuthError> {
        if self.can_act_for(unit_id) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!(
                "{} {:?} may not act for unit {unit_id:?}: only its officers may",
                self.role, self.username
            )))
        }
    }

    /// Whether `unit` is inside the subtree rooted at this principal's unit.
    fn scope_contains(&self, unit: &Unit) -> bool {
        self.unit_path
            .as_deref()
            .is_some_and(|root| unit.path.starts_with(root))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::org::{Kind, Level};

    /// hq → c1 → k1 → s1, s2; hq → c10 → u1. "c1" is a prefix of "c10" as a string.
    fn unit(id: &str, path: &str) -> Unit {
        Unit {
            id: id.into(),
            parent: None,
            level: Level::Unit,
            kind: Kind::Other,
            name: id.into(),
            tags: vec![],
            path: path.into(),
        }
    }

    fn tree() -> Vec<Unit> {
        vec![
            unit("hq", "/hq/"),
            unit("c1", "/hq/c1/"),
            unit("k1", "/hq/c1/k1/"),
            unit("s1", "/hq/c1/k1/s1/"),
            unit("s2", "/hq/c1/k1/s2/"),
            unit("c10", "/hq/c10/"),
            unit("u1", "/hq/c10/u1/"),
        ]
    }

    fn principal(role: Role, unit: Option<(&str, &str)>) -> Principal {
        Principal {
            account_id: format!("id-{role}"),
            username: format!("{role}-user"),
            role,
            unit: unit.map(|(id, _)| id.into()),
            unit_path: unit.map(|(_, path)| path.into()),
        }
    }

    /// The ids of the units of the small tree for which `allowed` holds.
    fn allowed(check: impl Fn(&Unit) -> bool) -> Vec<String> {
        tree()
            .iter()
            .filter(|u| check(u))
            .map(|u| u.id.clone())
            .collect()
    }

    #[test]
    fn roles_round_trip_their_names_and_serde() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
        assert!(matches!(Role::parse("Admin"), Err(AuthError::Invalid(_))));
        assert!(matches!(Role::parse(""), Err(AuthError::Invalid(_))));
        assert!(serde_json::from_str::<Role>("\"root\"").is_err());
    }

    #[test]
    fn admin_addresses_and_sees_everything_but_acts_for_nobody() {
        let admin = principal(Role::Admin, None);
        assert_eq!(allowed(|u| admin.can_address(u)).len(), 7);
        assert_eq!(allowed(|u| admin.can_see(u)).len(), 7);
        assert!(!admin.can_act_for("s1"));
        assert!(admin.check_admin("manage accounts").is_ok());
        assert!(matches!(
            admin.check_act_for("s1"),
            Err(AuthError::Forbidden(message)) if message.contains("s1")
        ));
    }

    #[test]
    fn moderators_are_confined_to_their_subtree() {
        let city = principal(Role::Moderator, Some(("c1", "/hq/c1/")));
        assert_eq!(allowed(|u| city.can_address(u)), ["c1", "k1", "s1", "s2"]);
        assert_eq!(allowed(|u| city.can_see(u)), ["c1", "k1", "s1", "s2"]);
        let county = principal(Role::Moderator, Some(("k1", "/hq/c1/k1/")));
        assert_eq!(allowed(|u| county.can_address(u)), ["k1", "s1", "s2"]);
        let other_city = principal(Role::Moderator, Some(("c10", "/hq/c10/")));
        assert_eq!(allowed(|u| other_city.can_address(u)), ["c10", "u1"]);
        assert!(!city.can_act_for("s1") && !city.is_admin());
        let hq = tree()[0].clone();
        assert!(matches!(
            city.check_address(&hq),
            Err(AuthError::Forbidden(message)) if message.contains("\"hq\"")
        ));
        assert!(city.check_address(&tree()[3]).is_ok());
        assert!(city.check_admin("manage accounts").is_err());
    }

    #[test]
    fn a_moderator_without_a_scope_path_reaches_nothing() {
        let lost = Principal {
            unit_path: None,
            ..principal(Role::Moderator, Some(("c1", "/hq/c1/")))
        };
        assert!(allowed(|u| lost.can_address(u) || lost.can_see(u)).is_empty());
    }

    #[test]
    fn officers_and_members_see_only_their_unit_and_only_officers_act() {
        let officer = principal(Role::Officer, Some(("s1", "/hq/c1/k1/s1/")));
        let member = principal(Role::Member, Some(("s1", "/hq/c1/k1/s1/")));
        for who in [&officer, &member] {
            assert!(allowed(|u| who.can_address(u)).is_empty());
            assert_eq!(allowed(|u| who.can_see(u)), ["s1"]);
            assert!(who.check_see(&tree()[4]).is_err());
        }
        assert!(officer.can_act_for("s1") && officer.check_act_for("s1").is_ok());
        assert!(!officer.can_act_for("s2") && !officer.can_act_for("k1"));
        assert!(!member.can_act_for("s1"));
        assert!(member.check_act_for("s1").is_err());
    }

    #[test]
    fn experts_reach_nothing_even_with_a_unit() {
        let expert = principal(Role::Expert, Some(("c1", "/hq/c1/")));
        assert!(allowed(|u| expert.can_address(u) || expert.can_see(u)).is_empty());
        assert!(!expert.can_act_for("c1"));
    }

    #[test]
    fn credential_principals_are_recognised() {
        let screen = Principal {
            account_id: "cred:abc".into(),
            ..principal(Role::Member, Some(("s1", "/hq/c1/k1/s1/")))
        };
        assert_eq!(screen.credential_id(), Some("abc"));
        assert_eq!(principal(Role::Member, None).credential_id(), None);
    }

    fn spec(role: Role, unit: Option<&str>) -> NewAccount {
        NewAccount {
            username: "Li.Wei@hq".into(),
            display_name: "李伟".into(),
            role,
            unit: unit.map(Into::into),
        }
    }

    #[test]
    fn role_and_unit_rules() {
        assert_eq!(spec(Role::Admin, None).validate(), Ok(()));
        assert_eq!(spec(Role::Expert, None).validate(), Ok(()));
        assert_eq!(spec(Role::Expert, Some("c1")).validate(), Ok(()));
        for role in [Role::Moderator, Role::Officer, Role::Member] {
            assert_eq!(spec(role, Some("c1")).validate(), Ok(()));
            assert!(matches!(
                spec(role, None).validate(),
                Err(AuthError::Invalid(message)) if message.contains("needs a unit")
            ));
        }
        assert!(spec(Role::Admin, Some("c1")).validate().is_err());
        assert!(spec(Role::Officer, Some("bad/id")).validate().is_err());
        let account = Account {
            id: "a".into(),
            username: "x".into(),
            display_name: "X".into(),
            role: Role::Member,
            unit: None,
            disabled: false,
            created_at: 0,
        };
        assert!(account.validate().is_err());
    }

    #[test]
    fn usernames_and_display_names() {
        assert_eq!(normalize_username("  Li.Wei@HQ "), Ok("li.wei@hq".into()));
        for bad in ["", "   ", "a b", "李伟", "a/b", "a\0b"] {
            assert!(
                matches!(normalize_username(bad), Err(AuthError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(normalize_username(&"a".repeat(64)).is_ok());
        assert!(normalize_username(&"a".repeat(65)).is_err());
        let mut named = spec(Role::Admin, None);
        for bad in ["", " ", "a\nb"] {
            named.display_name = bad.into();
            assert!(named.validate().is_err(), "{bad:?}");
        }
        named.display_name = "名".repeat(201);
        assert!(named.validate().is_err());
    }
}
