//! Unit credentials: long-lived secrets for a unit's meeting-room screen (a TV in kiosk
//! mode), handed over as a join link or a QR code, exchanged at login for a hub
//! connection token.
//!
//! # Format
//! `rcu_<id>_<secret>`: `id` is 16 and `secret` 32 characters of the lower-case RFC 4648
//! base32 alphabet (`a`–`z`, `2`–`7`), so the text is URL- and QR-safe. The id (80
//! random bits) names the stored row; the secret carries 160 random bits from the
//! thread-local CSPRNG.
//!
//! # Storage
//! The store keeps only the SHA-256 of the secret ([`secret_hash`], lower-case hex) and
//! compares it in constant time ([`secret_matches`]). A fast hash is enough here, unlike
//! for people's passwords: with 160 random bits there is nothing to guess, so the hash
//! only has to be one-way, and it keeps a screen's login cheap.
//!
//! # What a room credential may do
//! It logs in as a principal of role [`Role::Member`](super::Role::Member) of its unit,
//! with `account_id` `cred:<id>` ([`PRINCIPAL_PREFIX`]): it sees its unit's inbox and may
//! send delivery and read receipts, but it never acknowledges. An acknowledgement says
//! that an accountable person of the unit has seen a directive; a screen in a shared
//! room has no person behind it, so only an officer's own login acknowledges.

use sha2::{Digest, Sha256};

use super::AuthError;

/// The prefix of every credential's text.
pub const PREFIX: &str = "rcu_";
/// The prefix of a credential principal's `account_id`.
pub const PRINCIPAL_PREFIX: &str = "cred:";
/// Characters of a credential id.
pub const ID_LEN: usize = 16;
/// Characters of a credential secret (5 bits each: 160 bits).
pub const SECRET_LEN: usize = 32;
/// Longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 100;

/// The lower-case RFC 4648 base32 alphabet: 32 symbols, so one random byte's low 5 bits
/// pick one uniformly.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A freshly issued credential: `secret` is the whole text to hand to the screen, shown
/// once and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCredential {
    pub id: String,
    /// The full credential text, `rcu_<id>_<secret>`.
    pub secret: String,
}

/// A stored unit credential as listed (never with its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitCredential {
    pub id: String,
    pub unit: String,
    pub label: String,
    /// The account id (or `cli`) that issued it.
    pub created_by: String,
    /// Milliseconds since the Unix epoch, as every time below.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl UnitCredential {
    /// The `account_id` of the principal this credential logs in as.
    pub fn principal_id(&self) -> String {
        format!("{PRINCIPAL_PREFIX}{}", self.id)
    }
}

/// A new credential and the hash of its secret, to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    pub issued: IssuedCredential,
    /// [`secret_hash`] of the secret part.
    pub secret_hash: String,
}

/// Draws a new credential.
pub fn generate() -> NewCredential {
    let id = random_symbols::<ID_LEN>();
    let secret = random_symbols::<SECRET_LEN>();
    NewCredential {
        secret_hash: secret_hash(&secret),
        issued: IssuedCredential {
            secret: format!("{PREFIX}{id}_{secret}"),
            id,
        },
    }
}

fn random_symbols<const N: usize>() -> String {
    let bytes: [u8; N] = rand::random();
    bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte & 31)]))
        .collect()
}

/// Splits a credential's text into its id and secret part. Surrounding whitespace (a
/// pasted line) is ignored; anything else not of the exact format is
/// [`AuthError::Invalid`], without echoing the text back.
pub fn parse_credential(text: &str) -> Result<(&str, &str), AuthError> {
    let invalid = || {
        AuthError::Invalid(format!(
            "not a unit credential: expected \"{PREFIX}\" followed by {ID_LEN} and {SECRET_LEN} \
             characters a-z, 2-7, joined by '_'"
        ))
    };
    let text = text.trim();
    if text.len() != PREFIX.len() + ID_LEN + 1 + SECRET_LEN {
        return Err(invalid());
    }
    let rest = text.strip_prefix(PREFIX).ok_or_else(invalid)?;
    let (id, secret) = rest.split_once('_').ok_or_else(invalid)?;
    if id.len() != ID_LEN || secret.len() != SECRET_LEN || !in_alphabet(id) || !in_alphabet(secret)
    {
        return Err(invalid());
    }
    Ok((id, secret))
}

fn in_alphabet(text: &str) -> bool {
    text.bytes().all(|b| ALPHABET.contains(&b))
}

/// The stored form of a secret part: SHA-256, lower-case hex.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `secret` hashes to `stored`, compared in constant time (for equal lengths;
/// the length of a stored hash is public anyway).
pub fn secret_matches(secret: &str, stored: &str) -> bool {
    let computed = secret_hash(secret);
    computed.len() == stored.len()
        && computed
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// Checks a credential's label: 1–100 characters, no control characters.
pub fn validate_label(label: &str) -> Result<(), AuthError> {
    if label.trim().is_empty() {
        return Err(AuthError::Invalid("a credential needs a label".into()));
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(AuthError::Invalid(format!(
            "the label is longer than {MAX_LABEL_CHARS} characters"
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "the label must not contain control characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_parse_back_and_match_their_hash() {
        let new = generate();
        let text = &new.issued.secret;
        assert_eq!(text.len(), PREFIX.len() + ID_LEN + 1 + SECRET_LEN);
        let (id, secret) = parse_credential(text).unwrap();
        assert_eq!(id, new.issued.id);
        assert!(secret_matches(secret, &new.secret_hash));
        assert_eq!(new.secret_hash.len(), 64);
        assert!(!text.contains(&new.secret_hash));
        let other = generate();
        assert_ne!(other.issued.id, new.issued.id);
        assert!(!secret_matches(
            parse_credential(&other.issued.secret).unwrap().1,
            &new.secret_hash
        ));
        let padded = format!("  {text}\n");
        assert_eq!(parse_credential(&padded).unwrap(), (id, secret));
    }

    #[test]
    fn sha256_of_a_known_value() {
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_secret_differing_in_one_place_does_not_match() {
        let new = generate();
        let (_, secret) = parse_credential(&new.issued.secret).unwrap();
        let mut tampered = secret.to_owned().into_bytes();
        tampered[SECRET_LEN - 1] = if tampered[SECRET_LEN - 1] == b'a' {
            b'b'
        } else {
            b'a'
        };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(!secret_matches(&tampered, &new.secret_hash));
        assert!(!secret_matches(secret, ""));
        assert!(!secret_matches(secret, &new.secret_hash[..63]));
    }

    #[test]
    fn hostile_text_is_rejected_without_panicking() {
        let good = generate().issued.secret;
        let id = &good[PREFIX.len()..PREFIX.len() + ID_LEN];
        let secret = &good[PREFIX.len() + ID_LEN + 1..];
        let hostile = [
            String::new(),
            "rcu_".into(),
            "rcu__".into(),
            format!("rcu_{id}"),
            format!("rcu_{id}_"),
            format!("RCU_{id}_{secret}"),
            format!("rcu_{}_{secret}", id.to_uppercase()),
            format!("rcu_{id}_{}", secret.to_uppercase()),
            format!("rcu_{id}-{secret}"),
            format!("rcx_{id}_{secret}"),
            format!("rcu_{id}_{secret}a"),
            format!("rcu_{id}a_{}", &secret[1..]),
            format!("rcu_{id}_{}1", &secret[1..]),
            format!("rcu_{id}_{}é", &secret[2..]),
            format!("rcu_{id}_{}\0", &secret[1..]),
            format!("rcu_{id}_{}'; DROP TABLE unit_credential; --", &secret[..1]),
            "rcu_".to_owned() + &"_".repeat(ID_LEN + 1 + SECRET_LEN),
            "é".repeat(PREFIX.len() + ID_LEN + 1 + SECRET_LEN),
            "a".repeat(1 << 20),
        ];
        for text in &hostile {
            match parse_credential(text) {
                Err(AuthError::Invalid(message)) => {
                    assert!(!message.contains(secret), "the secret is not echoed back")
                }
                other => panic!("{text:?} parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn labels() {
        assert!(validate_label("会议室大屏").is_ok());
        assert!(validate_label("").is_err());
        assert!(validate_label(" ").is_err());
        assert!(validate_label("a\tb").is_err());
        assert!(validate_label(&"a".repeat(101)).is_err());
    }
}
