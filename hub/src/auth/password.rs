//! People's passwords: argon2id with the `argon2` crate's default parameters (19 MiB,
//! 2 passes, 1 lane — OWASP's recommended minimum), a random 16-byte salt, stored as a
//! PHC string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), so the parameters can be
//! raised later without breaking the hashes already stored.
//!
//! # Guarantees
//! - A password is 8 characters to 1024 bytes; [`hash_password`] rejects others with
//!   [`AuthError::Invalid`], and [`verify_password`] answers `false` for them without
//!   hashing (so an attacker cannot make the server hash megabytes).
//! - [`verify_password`] compares in constant time (the crate's comparison) and answers
//!   `false`, never panics, for a malformed stored hash, for an algorithm other than
//!   argon2id, and for parameters so large that verifying would exhaust memory or time.
//! - Both are CPU-heavy (tens of milliseconds): async callers run them on a blocking
//!   thread (the store does, in `login`).

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, PasswordHash, PasswordHasher, PasswordVerifier, Version};

use super::AuthError;

/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Largest memory cost (KiB) a stored hash may ask [`verify_password`] for: 1 GiB.
const MAX_MEMORY_KIB: u32 = 1 << 20;
/// Most passes a stored hash may ask for.
const MAX_PASSES: u32 = 64;
/// Most lanes a stored hash may ask for.
const MAX_LANES: u32 = 64;

/// A valid argon2id hash, with the default parameters, of a password nobody knows: the
/// store verifies against it when a username is unknown, so such a login costs the same
/// time as a wrong password.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$cm9vdGNhc3QtZHVtbXktc2FsdA$q8njcUrs5Eenvp/n2ph25oFAoZrts44hvtK/H6SN2Ag";

/// Checks a new password's length: 8 characters to 1024 bytes.
pub fn check_password_length(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid(format!(
            "the password is too short: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::Invalid(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Hashes a password with argon2id and a fresh random salt; the PHC string to store.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    check_password_length(password)?;
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| AuthError::Hashing(error.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AuthError::Hashing(error.to_string()))
}

/// Whether `password` matches the stored PHC string `phc`. `false` for anything
/// malformed, out of bounds or not argon2id.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != Algorithm::Argon2id.ident()
        || hash.version != Some(Version::V0x13.into())
        || !params_within_bounds(&hash)
    {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &hash)
        .is_ok()
}

/// Whether the hash's parameters are present and small enough to verify safely.
fn params_within_bounds(hash: &PasswordHash<'_>) -> bool {
    let Ok(params) = argon2::Params::try_from(hash) else {
        return false;
    };
    params.m_cost() <= MAX_MEMORY_KIB
        && params.t_cost() <= MAX_PASSES
        && params.p_cost() <= MAX_LANES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct hors", &phc));
        assert!(!verify_password("Correct horse", &phc));
        let again = hash_password("correct horse").unwrap();
        assert_ne!(phc, again, "each hash has its own salt");
        assert!(verify_password("correct horse", &again));
    }

    #[test]
    fn lengths_are_checked() {
        assert!(matches!(
            hash_password("1234567"),
            Err(AuthError::Invalid(message)) if message.contains("too short")
        ));
        assert!(hash_password("十二个汉字的密码八个").is_ok());
        assert!(matches!(
            hash_password(&"a".repeat(1025)),
            Err(AuthError::Invalid(message)) if message.contains("too long")
        ));
        assert!(hash_password(&"a".repeat(1024)).is_ok());
        // Multi-byte characters: 8 characters but 24 bytes is fine; the cap is in bytes.
        assert!(check_password_length(&"密".repeat(341)).is_ok());
        assert!(check_password_length(&("密".repeat(341) + "ab")).is_err());
    }

    #[test]
    fn malformed_or_hostile_hashes_verify_false() {
        let phc = hash_password("password1").unwrap();
        let hostile = [
            String::new(),
            "not a hash".into(),
            "$argon2id$".into(),
            "$argon2id$v=19$m=19456,t=2,p=1$$".into(),
            phc[..phc.len() - 5].to_owned(),
            phc.replace("argon2id", "argon2i"),
            phc.replace("v=19", "v=16"),
            phc.replace("m=19456", "m=4294967295"),
            phc.replace("t=2", "t=100000"),
            phc.replace("p=1", "p=255"),
            phc.replace('$', "\u{0}"),
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4Yq8dlD8pZ8xHQAAAAAAAA"
                .into(),
        ];
        for stored in &hostile {
            assert!(!verify_password("password1", stored), "{stored:?}");
        }
        assert!(!verify_password("", &phc));
        assert!(!verify_password(&"a".repeat(1025), &phc));
        assert!(
            verify_password("password1", &phc),
            "the untouched hash still verifies"
        );
    }

    #[test]
    fn the_dummy_hash_costs_as_much_as_a_real_one() {
        let hash = PasswordHash::new(DUMMY_HASH).expect("a valid PHC string");
        let real = hash_password("password1").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(hash.algorithm, real.algorithm);
        assert_eq!(hash.params, real.params);
        assert_eq!(hash.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert!(!verify_password("password1", DUMMY_HASH));
    }
}
