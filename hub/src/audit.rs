//! The tamper-evident audit log's rules, pure (no IO): how an entry is encoded and hashed,
//! and how a chain of entries is checked. The store ([`crate::store`]) appends entries in
//! the same transaction as the change they record and walks the chain page by page with
//! a [`ChainCheck`].
//!
//! # The chain
//! Entries are numbered `seq` 1, 2, 3, … Each carries `prev_hash`, the previous entry's
//! `hash` ([`GENESIS_HASH`], 64 zeros, for the first), and
//! `hash = SHA-256(prev_hash ‖ canonical(entry))` as lower-case hex, where `prev_hash`
//! enters as its 64 hex characters and [`canonical`] is a length-prefixed encoding of `seq`,
//! `at`, `actor`, `action`, `subject` and `detail` (the JSON text exactly as stored). So
//! changing any field of any entry, deleting an entry or swapping two breaks the chain
//! from there on: [`ChainCheck`] reports the first entry that does not fit.
//!
//! What the chain alone cannot show is the loss of the newest entries (a truncated tail
//! is a shorter valid chain). Operators who need that keep the head hash that
//! `rootcast audit verify` prints somewhere else and compare.

use std::fmt;

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What an entry says, before it is numbered and chained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When (ms since the Unix epoch).
    pub at: i64,
    /// Who: an account id, `unit:<id>` for a unit's own device, or `system`.
    pub actor: String,
    /// What, e.g. `directive.send` (see the store's audit module for the list).
    pub action: String,
    /// What it was done to, e.g. `directive:d1`.
    pub subject: String,
    /// Details as JSON text, hashed exactly as stored.
    pub detail: String,
}

/// One stored entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub record: Record,
    pub prev_hash: String,
    pub hash: String,
}

/// The canonical bytes of an entry: a version tag, then each field as its decimal byte
/// length, `:`, the bytes and `\n`. Unambiguous whatever the fields contain.
pub fn canonical(seq: i64, record: &Record) -> Vec<u8> {
    let seq = seq.to_string();
    let at = record.at.to_string();
    let fields: [&str; 6] = [
        &seq,
        &at,
        &record.actor,
        &record.action,
        &record.subject,
        &record.detail,
    ];
    let mut out = b"rootcast-audit-v1\n".to_vec();
    for field in fields {
        out.extend_from_slice(field.len().to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(field.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The hash of entry `seq` holding `record`, chained from `prev_hash` (hex text).
pub fn entry_hash(prev_hash: &str, seq: i64, record: &Record) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical(seq, record));
    to_hex(&hasher.finalize())
}

/// Numbers and chains `record` after the entry `(seq, hash)` (or after nothing).
pub fn chain(previous: Option<(i64, &str)>, record: Record) -> Entry {
    let (seq, prev_hash) = match previous {
        Some((seq, hash)) => (seq + 1, hash.to_owned()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = entry_hash(&prev_hash, seq, &record);
    Entry {
        seq,
        record,
        prev_hash,
        hash,
    }
}

/// SHA-256 of `items` joined by `\n`, as hex: how a send records its list of units in
/// one entry.
pub fn digest_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut hasher = Sha256::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(item.as_ref().as_bytes());
    }
    to_hex(&hasher.finalize())
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// What is wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The entry's numbering skips or repeats: `expected` was next.
    Gap { expected: i64 },
    /// Its `prev_hash` is not the previous entry's hash.
    BrokenLink { expected: String, found: String },
    /// Its stored hash is not the hash of its contents.
    HashMismatch { computed: String, stored: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn short(hash: &str) -> &str {
            hash.get(..12).unwrap_or(hash)
        }
        match self {
            Problem::Gap { expected } => {
                write!(f, "gap in seq (expected entry {expected} here)")
            }
            Problem::BrokenLink { expected, found } => write!(
                f,
                "broken link (prev_hash {}… is not the previous entry's hash {}…)",
                short(found),
                short(expected)
            ),
            Problem::HashMismatch { computed, stored } => write!(
                f,
                "hash mismatch (stored {}…, contents hash to {}…)",
                short(stored),
                short(computed)
            ),
        }
    }
}

/// Checks a chain fed in order, entry by entry (so a caller can feed it page by page):
/// remembers the count, the head and the first problem.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    count: u64,
    last_seq: i64,
    head: String,
    broken: Option<(i64, Problem)>,
}

impl Default for ChainCheck {
    fn default() -> ChainCheck {
        ChainCheck {
            count: 0,
            last_seq: 0,
            head: GENESIS_HASH.to_owned(),
            broken: None,
        }
    }
}

impl ChainCheck {
    /// Checks the next entry. After the first problem the rest is only counted.
    pub fn push(&mut self, entry: &Entry) {
        self.count += 1;
        if self.broken.is_none() {
            let expected = self.last_seq + 1;
            let problem = if entry.seq != expected {
                Some(Problem::Gap { expected })
            } else if entry.prev_hash != self.head {
                Some(Problem::BrokenLink {
                    expected: self.head.clone(),
                    found: entry.prev_hash.clone(),
                })
            } else {
                let computed = entry_hash(&entry.prev_hash, entry.seq, &entry.record);
                (computed != entry.hash).then(|| Problem::HashMismatch {
                    computed,
                    stored: entry.hash.clone(),
                })
            };
            if let Some(problem) = problem {
                self.broken = Some((entry.seq, problem));
            }
        }
        self.last_seq = entry.seq;
        self.head = entry.hash.clone();
    }

    /// Entries seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The last entry's hash ([`GENESIS_HASH`] for an empty log).
    pub fn head(&self) -> &str {
        &self.head
    }

    /// The first entry that does not fit, and why.
    pub fn broken(&self) -> Option<&(i64, Problem)> {
        self.broken.as_ref()
    }

    /// The seq of the last entry seen (0 before any).
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64) -> Record {
        Record {
            at: 1_000 + i,
            actor: format!("user-{i}"),
            action: "directive.ack".into(),
            subject: "directive:d1".into(),
            detail: format!(r#"{{"unit":"u{i}"}}"#),
        }
    }

    fn build(n: i64) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let previous = out.last().map(|e| (e.seq, e.hash.as_str()));
            out.push(chain(previous, record(i)));
        }
        out
    }

    fn check(entries: &[Entry]) -> ChainCheck {
        let mut check = ChainCheck::default();
        for entry in entries {
            check.push(entry);
        }
        check
    }

    #[test]
    fn a_chain_verifies() {
        let entries = build(5);
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        let check = check(&entries);
        assert_eq!(check.count(), 5);
        assert_eq!(check.head(), entries[4].hash);
        assert!(check.broken().is_none());
        assert_eq!(ChainCheck::default().head(), GENESIS_HASH);
    }

    #[test]
    fn known_answer() {
        // Pins the encoding: changing it would make every stored log fail to verify.
        let entry = chain(None, record(0));
        assert_eq!(
            canonical(1, &entry.record),
            b"rootcast-audit-v1\n1:1\n4:1000\n6:user-0\n13:directive.ack\n12:directive:d1\n13:{\"unit\":\"u0\"}\n"
        );
        assert_eq!(entry.hash.len(), 64);
        assert_eq!(entry_hash(GENESIS_HASH, 1, &entry.record), entry.hash);
    }

    #[test]
    fn tampering_is_found_at_the_entry() {
        let mut edited = build(5);
        edited[2].record.detail = r#"{"unit":"other"}"#.into();
        assert!(matches!(
            check(&edited).broken(),
            Some((3, Problem::HashMismatch { .. }))
        ));

        let mut deleted = build(5);
        deleted.remove(1);
        assert_eq!(
            check(&deleted).broken(),
            Some(&(3, Problem::Gap { expected: 2 }))
        );

        // Rewriting an entry with a fresh hash breaks the next link.
        let mut rehashed = build(5);
        rehashed[1].record.actor = "mallory".into();
        rehashed[1].hash = entry_hash(&rehashed[1].prev_hash, 2, &rehashed[1].record);
        assert!(matches!(
            check(&rehashed).broken(),
            Some((3, Problem::BrokenLink { .. }))
        ));

        // Swapping two entries' contents (keeping the numbering).
        let mut swapped = build(5);
        let (a, b) = (swapped[1].record.clone(), swapped[2].record.clone());
        swapped[1].record = b;
        swapped[2].record = a;
        assert!(matches!(
            check(&swapped).broken(),
            Some((2, Problem::HashMismatch { .. }))
        ));
    }

    #[test]
    fn list_digest_is_order_sensitive() {
        assert_ne!(digest_list(&["a", "b"]), digest_list(&["b", "a"]));
        assert_ne!(digest_list(&["ab"]), digest_list(&["a", "b"]));
        assert_eq!(digest_list::<&str>(&[]).len(), 64);
    }
}
