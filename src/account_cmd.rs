//! `rootcast account …`: people's accounts and meeting-room credentials, managed from
//! the command line against the configured store (the server may be running), and the
//! first administrator created on a first start.

use anyhow::Context;
use clap::Subcommand;
use rootcast_config::Config;
use rootcast_hub::auth::{NewAccount, Role};
use rootcast_hub::service::credentials::{join_link, qr_terminal};
use rootcast_hub::store::{Store, StoreOptions};

/// The username of the administrator created on a first start.
pub const FIRST_ADMIN: &str = "admin";

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account. Without --password a random one is generated and printed.
    Add {
        #[arg(long)]
        username: String,
        /// admin, moderator, expert, officer or member.
        #[arg(long)]
        role: String,
        /// The unit: a moderator's subtree root, an officer's or member's unit.
        #[arg(long)]
        unit: Option<String>,
        /// Name shown to others (the username when omitted).
        #[arg(long)]
        display_name: Option<String>,
        /// The password (visible to other users of this machine in the process list;
        /// prefer the generated one).
        #[arg(long)]
        password: Option<String>,
    },
    /// Set an account's password. Without --password a random one is generated and
    /// printed.
    Password {
        username: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Disable an account: its logins and tokens stop working.
    Disable { username: String },
    /// List accounts.
    List,
    /// Issue a long-lived credential for a unit's meeting-room screen and print it with
    /// its join link. It is shown once.
    Credential {
        #[arg(long)]
        unit: String,
        #[arg(long, default_value = "meeting room")]
        label: String,
    },
    /// Revoke a unit credential (by the id after `rcu_`, as `credentials` lists it): the
    /// screen's logins and tokens stop working.
    Revoke { id: String },
    /// List a unit's credentials (never their secrets).
    Credentials {
        #[arg(long)]
        unit: String,
    },
}

pub async fn run(config: &Config, command: AccountCommand) -> anyhow::Result<()> {
    let store = Store::open(&StoreOptions::from_config(&config.store)).await?;
    let outcome = execute(config, &store, command).await;
    store.close().await;
    outcome
}

async fn execute(config: &Config, store: &Store, command: AccountCommand) -> anyhow::Result<()> {
    let now = now_ms();
    match command {
        AccountCommand::Add {
            username,
            role,
            unit,
            display_name,
            password,
        } => {
            let role = Role::parse(&role)?;
            let (password, generated) = password_or_generated(password);
            let spec = NewAccount {
                display_name: display_name.unwrap_or_else(|| username.clone()),
                username,
                role,
                unit,
            };
            let account = store.create_account(&spec, Some(&password), now).await?;
            println!(
                "created {} account {:?} ({}){}",
                account.role.as_str(),
                account.username,
                account.id,
                account
                    .unit
                    .as_deref()
                    .map(|u| format!(" for unit {u}"))
                    .unwrap_or_default()
            );
            if generated {
                println!("password: {password}");
            }
        }
        AccountCommand::Password { username, password } => {
            let account = store
                .account_by_username(&username)
                .await?
                .with_context(|| format!("no account {username:?}"))?;
            let (password, generated) = password_or_generated(password);
            store.set_password(&account.id, &password).await?;
            println!("password of {username:?} changed");
            if generated {
                println!("password: {password}");
            }
        }
        AccountCommand::Disable { username } => {
            let account = store
                .account_by_username(&username)
                .await?
                .with_context(|| format!("no account {username:?}"))?;
            store.set_disabled(&account.id, true).await?;
            println!("account {username:?} disabled");
        }
        AccountCommand::List => {
            for account in store.list_accounts(None, None).await? {
                println!(
                    "{}\t{}\t{}\t{}{}",
                    account.id,
                    account.username,
                    account.role.as_str(),
                    account.unit.as_deref().unwrap_or("-"),
                    if account.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        AccountCommand::Credential { unit, label } => {
            let issued = store
                .issue_unit_credential(&unit, &label, "cli", now)
                .await?;
            println!("credential for unit {unit} ({label}), shown once:");
            println!("  {}", issued.secret);
            let link = join_link(&format!("http://{}", config.http.address), &issued.secret);
            println!("  join link: {link}");
            if let Some(qr) = qr_terminal(&link) {
                println!("{qr}");
            }
        }
        AccountCommand::Revoke { id } => {
            store.revoke_unit_credential(&id, now).await?;
            println!("credential {id} revoked");
        }
        AccountCommand::Credentials { unit } => {
            for credential in store.list_unit_credentials(&unit).await? {
                println!(
                    "{}\t{}\t{}",
                    credential.id,
                    credential.label,
                    if credential.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    }
                );
            }
        }
    }
    Ok(())
}

/// On a store without an administrator, creates [`FIRST_ADMIN`] with a random password
/// and returns the password (to be printed once); `None` when there is one already.
pub async fn bootstrap_admin(store: &Store) -> anyhow::Result<Option<String>> {
    let password = random_password();
    let created = store
        .ensure_admin(FIRST_ADMIN, &password)
        .await
        .context("creating the first administrator")?;
    Ok(created.then_some(password))
}

fn password_or_generated(password: Option<String>) -> (String, bool) {
    match password {
        Some(password) => (password, false),
        None => (random_password(), true),
    }
}

/// 20 characters from an alphabet without look-alikes, drawn from a v4 UUID's 122 random
/// bits (20 base-55 digits use 116 of them).
fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bits = uuid::Uuid::new_v4().as_u128();
    // Drop the version and variant bits so only random bits are left.
    bits = (((bits >> 64) & 0xffff_ffff_ffff_0fff) << 62) | (bits & 0x3fff_ffff_ffff_ffff);
    (0..20)
        .map(|_| {
            let digit = (bits % ALPHABET.len() as u128) as usize;
            bits /= ALPHABET.len() as u128;
            char::from(ALPHABET[digit])
        })
        .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
