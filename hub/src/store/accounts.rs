//! Accounts and unit credentials in the store: [`Store`] methods over the `account` and
//! `unit_credential` tables (migration `0003_accounts`). The rules — roles, scope,
//! password and credential formats — are the pure [`crate::auth`]; this file reads and
//! writes rows and builds the [`Principal`] of a request.
//!
//! # Guarantees
//! - Passwords are stored only as argon2id PHC strings, credential secrets only as their
//!   SHA-256; neither is ever returned. Hashing and verifying passwords run on tokio's
//!   blocking threads, so a login does not stall the runtime.
//! - Every failed login ([`Store::login`], [`Store::unit_credential_login`]) is
//!   [`AuthError::BadCredentials`], whatever the cause, and a password login with an
//!   unknown username still verifies once (against [`DUMMY_HASH`]), so neither the answer
//!   nor its time tells whether the username exists.
//! - [`Store::principal`] reads the account (or credential) and its unit's path on every
//!   call: disabling an account, revoking a credential or moving a unit takes effect on
//!   the next request.
//! - Usernames are unique, case-insensitively (stored lower case); a duplicate is
//!   [`StoreError::AccountExists`], also when two creations race.
//! - Accounts and credentials have no foreign key to `org_unit` (as `directive_inbox`):
//!   the unit must exist when they are created; if it is deleted later, an account's
//!   principal has no scope path and so reaches nothing, and a credential stops logging
//!   in.
//!
//! # Room credentials
//! A credential logs in as a principal of role [`Role::Member`] of its unit with
//! `account_id` `cred:<id>` and `username` `room:<label>`: it receives and reads its
//! unit's directives but never acknowledges (see [`crate::auth::credential`]).

use std::collections::HashSet;

use crate::auth::credential::{self, PRINCIPAL_PREFIX, UnitCredential};
use crate::auth::password::{DUMMY_HASH, check_password_length};
use crate::auth::{
    Account, AuthError, IssuedCredential, NewAccount, Principal, Role, hash_password,
    normalize_username, parse_credential, verify_password,
};

use super::{Store, StoreError, with_pool};

/// The display name of the administrator [`Store::ensure_admin`] creates.
const FIRST_ADMIN_DISPLAY_NAME: &str = "Administrator";

/// An account row: id, username, display_name, role, unit_id, disabled, created_at.
type AccountRow = (String, String, String, String, Option<String>, bool, i64);

const ACCOUNT_COLUMNS: &str =
    "a.id, a.username, a.display_name, a.role, a.unit_id, a.disabled, a.created_at";

/// A principal row: id, username, role, unit_id, disabled, the unit's path.
type PrincipalRow = (String, String, String, Option<String>, bool, Option<String>);

/// A credential row: id, unit_id, label, created_by, created_at, revoked_at, last_used_at.
type CredentialRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

const CREDENTIAL_COLUMNS: &str =
    "c.id, c.unit_id, c.label, c.created_by, c.created_at, c.revoked_at, c.last_used_at";

fn parse_role(id: &str, role: &str) -> Result<Role, StoreError> {
    Role::parse(role).map_err(|error| StoreError::Corrupt(format!("account {id:?}: {error}")))
}

fn to_account(row: AccountRow) -> Result<Account, StoreError> {
    let (id, username, display_name, role, unit, disabled, created_at) = row;
    Ok(Account {
        role: parse_role(&id, &role)?,
        id,
        username,
        display_name,
        unit,
        disabled,
        created_at,
    })
}

fn to_accounts(rows: Vec<AccountRow>) -> Result<Vec<Account>, StoreError> {
    rows.into_iter().map(to_account).collect()
}

fn to_credential(row: CredentialRow) -> UnitCredential {
    let (id, unit, label, created_by, created_at, revoked_at, last_used_at) = row;
    UnitCredential {
        id,
        unit,
        label,
        created_by,
        created_at,
        revoked_at,
        last_used_at,
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Runs a CPU-heavy password step on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Auth(AuthError::Hashing(error.to_string())))
}

async fn hash_blocking(password: &str) -> Result<String, StoreError> {
    // Checked here too, so a bad password costs no thread hop.
    check_password_length(password)?;
    let password = password.to_owned();
    Ok(blocking(move || hash_password(&password)).await??)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

impl Store {
    /// Creates an account, with a password or without one (then it cannot log in with a
    /// password until [`Store::set_password`]). The spec is validated
    /// ([`NewAccount::validate`]); its unit must exist ([`StoreError::UnitNotFound`]); a
    /// taken username is [`StoreError::AccountExists`].
    pub async fn create_account(
        &self,
        spec: &NewAccount,
        password: Option<&str>,
        now: i64,
    ) -> Result<Account, StoreError> {
        spec.validate()?;
        let username = normalize_username(&spec.username)?;
        if let Some(unit) = &spec.unit {
            self.require_unit(unit).await?;
        }
        let password_hash = match password {
            Some(password) => Some(hash_blocking(password).await?),
            None => None,
        };
        let account = Account {
            id: uuid::Uuid::new_v4().simple().to_string(),
            username,
            display_name: spec.display_name.clone(),
            role: spec.role,
            unit: spec.unit.clone(),
            disabled: false,
            created_at: now,
        };
        let inserted = with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO account (id, username, display_name, role, unit_id, password_hash, \
                 disabled, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&account.id)
            .bind(&account.username)
            .bind(&account.display_name)
            .bind(account.role.as_str())
            .bind(&account.unit)
            .bind(&password_hash)
            .bind(false)
            .bind(account.created_at)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match inserted {
            Ok(_) => Ok(account),
            Err(error) if is_unique_violation(&error) => {
                Err(StoreError::AccountExists(account.username))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The account with this id, if any.
    pub async fn account(&self, id: &str) -> Result<Option<Account>, StoreError> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account a WHERE a.id = $1");
        let row: Option<AccountRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        row.map(to_account).transpose()
    }

    /// The account with this username (compared lower case), if any. A malformed
    /// username names no account.
    pub async fn account_by_username(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let Ok(username) = normalize_username(username) else {
            return Ok(None);
        };
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account a WHERE a.username = $1");
        let row: Option<AccountRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(&username)
                .fetch_optional(pool)
                .await?
        });
        row.map(to_account).transpose()
    }

    /// Accounts of this role and/or unit (both `None`: every account), by username.
    pub async fn list_accounts(
        &self,
        role: Option<Role>,
        unit: Option<&str>,
    ) -> Result<Vec<Account>, StoreError> {
        let mut sql = format!("SELECT {ACCOUNT_COLUMNS} FROM account a WHERE 1 = 1");
        let mut binds: Vec<&str> = Vec::new();
        if let Some(role) = role {
            binds.push(role.as_str());
            sql.push_str(&format!(" AND a.role = ${}", binds.len()));
        }
        if let Some(unit) = unit {
            binds.push(unit);
            sql.push_str(&format!(" AND a.unit_id = ${}", binds.len()));
        }
        sql.push_str(" ORDER BY a.username");
        let rows: Vec<AccountRow> = with_pool!(self, |pool| {
            let mut query = sqlx::query_as(&sql);
            for value in &binds {
                query = query.bind(*value);
            }
            query.fetch_all(pool).await?
        });
        to_accounts(rows)
    }

    /// The active (not disabled) officers of exactly this unit, by username.
    pub async fn officers_of(&self, unit_id: &str) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account a \
             WHERE a.unit_id = $1 AND a.role = $2 AND a.disabled = $3 ORDER BY a.username"
        );
        let rows: Vec<AccountRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(unit_id)
                .bind(Role::Officer.as_str())
                .bind(false)
                .fetch_all(pool)
                .await?
        });
        to_accounts(rows)
    }

    /// The active (not disabled) expert accounts, by display name, then id: those a
    /// meeting may name as its experts.
    pub async fn active_experts(&self) -> Result<Vec<Account>, StoreError> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM account a WHERE a.role = $1 AND a.disabled = $2"
        );
        let rows: Vec<AccountRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(Role::Expert.as_str())
                .bind(false)
                .fetch_all(pool)
                .await?
        });
        let mut experts = to_accounts(rows)?;
        // Sorted here rather than in SQL, so both backends agree whatever their collation.
        experts.sort_by(|a, b| {
            (a.display_name.as_str(), a.id.as_str()).cmp(&(b.display_name.as_str(), b.id.as_str()))
        });
        Ok(experts)
    }

    /// Sets (or replaces) an account's password.
    pub async fn set_password(&self, account_id: &str, password: &str) -> Result<(), StoreError> {
        let phc = hash_blocking(password).await?;
        let updated = with_pool!(self, |pool| {
            sqlx::query("UPDATE account SET password_hash = $1 WHERE id = $2")
                .bind(&phc)
                .bind(account_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::UnknownAccount(account_id.to_owned()));
        }
        Ok(())
    }

    /// Every principal that must not stay connected: the ids of disabled accounts and of
    /// revoked room credentials (as [`Store::principal`] names them). Small: it grows by
    /// one per disable or revoke.
    pub async fn revoked_principals(&self) -> Result<HashSet<String>, StoreError> {
        let (accounts, credentials): (Vec<String>, Vec<String>) = with_pool!(self, |pool| {
            let accounts = sqlx::query_scalar("SELECT id FROM account WHERE disabled")
                .fetch_all(pool)
                .await?;
            let credentials =
                sqlx::query_scalar("SELECT id FROM unit_credential WHERE revoked_at IS NOT NULL")
                    .fetch_all(pool)
                    .await?;
            (accounts, credentials)
        });
        Ok(accounts
            .into_iter()
            .chain(
                credentials
                    .into_iter()
                    .map(|id| format!("{PRINCIPAL_PREFIX}{id}")),
            )
            .collect())
    }

    /// Disables or re-enables an account. A disabled account cannot log in, and
    /// [`Store::principal`] refuses it, so its tokens stop working.
    pub async fn set_disabled(&self, account_id: &str, disabled: bool) -> Result<(), StoreError> {
        let updated = with_pool!(self, |pool| {
            sqlx::query("UPDATE account SET disabled = $1 WHERE id = $2")
                .bind(disabled)
                .bind(account_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::UnknownAccount(account_id.to_owned()));
        }
        Ok(())
    }

    /// Logs a person in: their principal, or `StoreError::Auth(AuthError::BadCredentials)`
    /// for an unknown username, a wrong password, an account without a password and a
    /// disabled account alike. Records the login time on success.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<Principal, StoreError> {
        let found: Option<(String, Option<String>, bool)> = match normalize_username(username) {
            Ok(username) => with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT id, password_hash, disabled FROM account WHERE username = $1",
                )
                .bind(&username)
                .fetch_optional(pool)
                .await?
            }),
            Err(_) => None,
        };
        let (account_id, stored, disabled) = match found {
            Some((id, stored, disabled)) => (Some(id), stored, disabled),
            None => (None, None, true),
        };
        // Always exactly one verification, against the dummy hash when there is no real
        // one, so the time taken does not tell whether the username exists.
        let has_hash = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let password = password.to_owned();
        let verified = blocking(move || verify_password(&password, &phc)).await?;
        let Some(account_id) = account_id.filter(|_| verified && has_hash && !disabled) else {
            return Err(AuthError::BadCredentials.into());
        };
        with_pool!(self, |pool| {
            sqlx::query("UPDATE account SET last_login_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&account_id)
                .execute(pool)
                .await?;
        });
        self.principal(&account_id).await
    }

    /// The principal behind an account id, or a room credential's `cred:<id>`, with its
    /// unit's path. An unknown id is [`StoreError::UnknownAccount`]; a disabled account,
    /// a revoked credential, or a credential whose unit is gone is
    /// `StoreError::Auth(AuthError::BadCredentials)`.
    pub async fn principal(&self, account_id: &str) -> Result<Principal, StoreError> {
        if let Some(credential_id) = account_id.strip_prefix(PRINCIPAL_PREFIX) {
            return self.credential_principal(account_id, credential_id).await;
        }
        let row: Option<PrincipalRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT a.id, a.username, a.role, a.unit_id, a.disabled, u.path \
                 FROM account a LEFT JOIN org_unit u ON u.id = a.unit_id WHERE a.id = $1",
            )
            .bind(account_id)
            .fetch_optional(pool)
            .await?
        });
        let Some((id, username, role, unit, disabled, unit_path)) = row else {
            return Err(StoreError::UnknownAccount(account_id.to_owned()));
        };
        if disabled {
            return Err(AuthError::BadCredentials.into());
        }
        Ok(Principal {
            role: parse_role(&id, &role)?,
            account_id: id,
            username,
            unit,
            unit_path,
        })
    }

    /// The principal of a room credential (see the module docs).
    async fn credential_principal(
        &self,
        account_id: &str,
        credential_id: &str,
    ) -> Result<Principal, StoreError> {
        let row: Option<(String, String, Option<i64>, Option<String>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT c.unit_id, c.label, c.revoked_at, u.path \
                     FROM unit_credential c LEFT JOIN org_unit u ON u.id = c.unit_id \
                     WHERE c.id = $1",
            )
            .bind(credential_id)
            .fetch_optional(pool)
            .await?
        });
        let Some((unit, label, revoked_at, unit_path)) = row else {
            return Err(StoreError::UnknownAccount(account_id.to_owned()));
        };
        if revoked_at.is_some() || unit_path.is_none() {
            return Err(AuthError::BadCredentials.into());
        }
        Ok(Principal {
            account_id: account_id.to_owned(),
            username: format!("room:{label}"),
            role: Role::Member,
            unit: Some(unit),
            unit_path,
        })
    }

    /// Issues a credential for a unit's meeting-room screen. Only the hash of its secret
    /// is stored: the returned [`IssuedCredential::secret`] is the one chance to see it.
    pub async fn issue_unit_credential(
        &self,
        unit_id: &str,
        label: &str,
        created_by: &str,
        now: i64,
    ) -> Result<IssuedCredential, StoreError> {
        credential::validate_label(label)?;
        self.require_unit(unit_id).await?;
        let new = credential::generate();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO unit_credential (id, unit_id, label, secret_hash, created_by, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&new.issued.id)
            .bind(unit_id)
            .bind(label)
            .bind(&new.secret_hash)
            .bind(created_by)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(new.issued)
    }

    /// Logs a meeting-room screen in with its credential's text: the room principal, or
    /// `StoreError::Auth(AuthError::BadCredentials)` for malformed text, an unknown id,
    /// a wrong secret, a revoked credential or a deleted unit alike. Records the time.
    pub async fn unit_credential_login(
        &self,
        text: &str,
        now: i64,
    ) -> Result<Principal, StoreError> {
        let (id, secret) = parse_credential(text).map_err(|_| AuthError::BadCredentials)?;
        let stored: Option<String> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT secret_hash FROM unit_credential WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        if !stored.is_some_and(|stored| credential::secret_matches(secret, &stored)) {
            return Err(AuthError::BadCredentials.into());
        }
        let account_id = format!("{PRINCIPAL_PREFIX}{id}");
        let principal = self
            .credential_principal(&account_id, id)
            .await
            .map_err(|error| match error {
                StoreError::UnknownAccount(_) => AuthError::BadCredentials.into(),
                other => other,
            })?;
        with_pool!(self, |pool| {
            sqlx::query("UPDATE unit_credential SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(principal)
    }

    /// Revokes a credential: it stops logging in, and principals built from it stop
    /// working. Revoking again keeps the first time. An unknown id is
    /// [`StoreError::UnknownCredential`].
    pub async fn revoke_unit_credential(&self, id: &str, now: i64) -> Result<(), StoreError> {
        let updated = with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE unit_credential SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if updated == 0 {
            return Err(StoreError::UnknownCredential(id.to_owned()));
        }
        Ok(())
    }

    /// A unit's credentials, revoked ones included, oldest first; never their secrets.
    pub async fn list_unit_credentials(
        &self,
        unit_id: &str,
    ) -> Result<Vec<UnitCredential>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM unit_credential c WHERE c.unit_id = $1 \
             ORDER BY c.created_at, c.id"
        );
        let rows: Vec<CredentialRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(unit_id).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(to_credential).collect())
    }

    /// On first start: creates an administrator `username` with `password` when the
    /// store holds no admin account (disabled ones count). Returns whether it created
    /// one. Safe to call at every start and from several nodes at once: when another
    /// node created the same admin meanwhile, this returns `false`.
    pub async fn ensure_admin(&self, username: &str, password: &str) -> Result<bool, StoreError> {
        let admins: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM account WHERE role = $1")
                .bind(Role::Admin.as_str())
                .fetch_one(pool)
                .await?
        });
        if admins > 0 {
            return Ok(false);
        }
        let spec = NewAccount {
            username: username.to_owned(),
            display_name: FIRST_ADMIN_DISPLAY_NAME.to_owned(),
            role: Role::Admin,
            unit: None,
        };
        match self.create_account(&spec, Some(password), now_ms()).await {
            Ok(_) => Ok(true),
            Err(StoreError::AccountExists(name)) => match self.account_by_username(&name).await? {
                Some(existing) if existing.role == Role::Admin => Ok(false),
                _ => Err(StoreError::AccountExists(name)),
            },
            Err(other) => Err(other),
        }
    }
}
