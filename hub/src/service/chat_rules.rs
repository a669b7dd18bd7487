//! The rules of meeting chat as a pure engine: given a message, who posts it, the
//! meeting's chat settings, the poster's sanction and the time, decide whether the message
//! is shown, held for review or refused — and why. No clock, no store, no I/O: the time is
//! an argument (ms since the Unix epoch), so every rule is tested exactly
//! (`hub/src/service/chat.rs` feeds it from the store and the configuration).
//!
//! # The rules, checked in this order
//! 1. **Chat closed** (a moderator turned the meeting's chat off): refused, 403, except
//!    for moderators.
//! 2. **Banned** from the meeting's chat: refused, 403, until a moderator lifts the ban.
//! 3. **Timed out** until a time: refused, 403, until then (the refusal says when).
//! 4. **Blank** message: refused, 422. **Too long** (more than `max_message_length`
//!    characters, counted as Unicode scalar values after trimming): refused, 422.
//! 5. **Word filter**, mode `block`: refused, 422, naming the word.
//! 6. **Slow mode** (the meeting's N seconds between two messages of one member;
//!    moderators are exempt): refused, 429, with the time left.
//! 7. **Rate limit** (per member and meeting, a token bucket of `rate_burst` messages
//!    refilled one per `rate_refill`; applies to everyone, moderators too): refused, 429,
//!    with the time until the next message is allowed.
//! 8. Otherwise accepted: **held** when the filter (mode `hold`) found a word — a
//!    moderator's own message is never held — else **visible**.
//!
//! # Invariants
//! - Only an accepted message (visible or held) moves the member's slow-mode clock and
//!   takes a token from their bucket: a refused one costs nothing, so a member who is told
//!   to wait N seconds may post after exactly N seconds.
//! - [`Limiter::admit`] decides and records under one lock, so two messages of one member
//!   arriving at once on one node cannot both slip through.
//! - The limiter's state is in memory, per node: slow mode and the rate limit are per
//!   node (bans, timeouts and settings are in the store and hold on every node).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rootcast_config::{ChatConfig, ChatFilterMode};

/// Why a message is refused. Each kind is a distinct, documented error of the chat
/// service (`docs/protocol.md`, "Meeting chat").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A moderator closed the chat (403).
    Closed,
    /// Banned from the meeting's chat (403).
    Banned,
    /// Timed out until this time, ms (403).
    TimedOut { until: i64 },
    /// Nothing but white space (422).
    Blank,
    /// Longer than allowed (422).
    TooLong { length: usize, max: usize },
    /// Contains a blocked word (422).
    BlockedWord { word: String },
    /// Slow mode: wait this many ms (429).
    SlowMode { wait_ms: i64 },
    /// Rate limit: wait this many ms (429).
    RateLimited { wait_ms: i64 },
}

/// What happens to an accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Shown to everyone at once.
    Visible,
    /// Held for review because of this filter word: only moderators see it.
    Held { word: String },
}

/// A moderator's sanction on one member of one meeting, as the engine needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restriction {
    /// May not post until a moderator lifts the ban.
    Ban,
    /// May not post until this time (ms).
    TimeoutUntil(i64),
}

/// The poster as the rules see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Poster<'a> {
    /// Their account id.
    pub account: &'a str,
    /// Moderates this meeting.
    pub moderator: bool,
    /// Their current sanction in this meeting, if any.
    pub restriction: Option<Restriction>,
}

/// A meeting's chat settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Room<'a> {
    pub meeting: &'a str,
    /// Open for members (moderators may always post).
    pub enabled: bool,
    /// Least time between two messages of one member, ms (0: off).
    pub slow_mode_ms: i64,
}

/// The word filter: lower-cased words and what to do when one is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WordFilter {
    words: Vec<String>,
    mode: ChatFilterMode,
}

impl WordFilter {
    pub(crate) fn new(words: &[String], mode: ChatFilterMode) -> WordFilter {
        WordFilter {
            words: words
                .iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
            mode,
        }
    }

    /// The first listed word `text` contains, case-insensitively. A word that starts
    /// (ends) with a letter or digit ([`word_char`]) matches only where the text has none
    /// just before (after) it; other words (Chinese, punctuation) match anywhere.
    pub(crate) fn find(&self, text: &str) -> Option<&str> {
        let text = text.to_lowercase();
        self.words
            .iter()
            .find(|word| matches_word(&text, word))
            .map(String::as_str)
    }
}

/// A letter or digit of a script that separates words with spaces (not Chinese,
/// Japanese or Korean, whose words are matched anywhere).
fn word_char(c: char) -> bool {
    let cjk = matches!(u32::from(c),
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF
        | 0xF900..=0xFAFF | 0x20000..=0x2FA1F);
    c.is_alphanumeric() && !cjk
}

fn matches_word(text: &str, word: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(word_char);
    let needs_start = alnum(word.chars().next());
    let needs_end = alnum(word.chars().next_back());
    text.match_indices(word).any(|(at, found)| {
        (!needs_start || !alnum(text[..at].chars().next_back()))
            && (!needs_end || !alnum(text[at + found.len()..].chars().next()))
    })
}

/// The node-wide rules from `[chat]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rules {
    pub max_length: usize,
    /// Messages in a burst (bucket size).
    pub burst: u32,
    /// One token back every this many ms; 0 turns the rate limit off.
    pub refill_ms: i64,
    pub filter: WordFilter,
}

impl Rules {
    pub(crate) fn from_config(config: &ChatConfig) -> Rules {
        Rules {
            max_length: config.max_message_length as usize,
            burst: config.rate_burst.max(1),
            refill_ms: duration_ms(config.rate_refill),
            filter: WordFilter::new(&config.filter_words, config.filter_mode),
        }
    }

    /// The checks that need no memory of earlier messages (rules 1–5), and what to do
    /// with the message if it passes the rest.
    pub(crate) fn judge(
        &self,
        poster: &Poster<'_>,
        room: &Room<'_>,
        text: &str,
        now: i64,
    ) -> Result<Verdict, Refusal> {
        if !room.enabled && !poster.moderator {
            return Err(Refusal::Closed);
        }
        match poster.restriction {
            Some(Restriction::Ban) => return Err(Refusal::Banned),
            Some(Restriction::TimeoutUntil(until)) if until > now => {
                return Err(Refusal::TimedOut { until });
            }
            _ => {}
        }
        let text = text.trim();
        if text.is_empty() {
            return Err(Refusal::Blank);
        }
        let length = text.chars().count();
        if length > self.max_length {
            return Err(Refusal::TooLong {
                length,
                max: self.max_length,
            });
        }
        match self.filter.find(text) {
            Some(word) if self.filter.mode == ChatFilterMode::Block => Err(Refusal::BlockedWord {
                word: word.to_owned(),
            }),
            Some(word) if !poster.moderator => Ok(Verdict::Held {
                word: word.to_owned(),
            }),
            _ => Ok(Verdict::Visible),
        }
    }
}

/// Milliseconds in `duration`, saturating.
pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// One member's memory in one meeting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MemberClock {
    /// The rate limit's "theoretical arrival time" (GCRA): the bucket is full again at
    /// this time; each accepted message pushes it one refill later.
    full_at: i64,
    /// The last accepted message (for slow mode).
    last_post: Option<i64>,
    /// After this time the entry says nothing that a fresh one would not (it may go).
    forget_after: i64,
}

/// How many entries the limiter keeps at least before it drops the ones that say
/// nothing; after a pruning the limit becomes twice what is left (so pruning costs
/// amortised O(1) per message however many members are active).
const PRUNE_ABOVE: usize = 4096;

/// Slow mode and rate limit state of every member of every meeting on this node (rules
/// 6 and 7): in memory, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    clocks: Mutex<Clocks>,
}

#[derive(Debug, Default)]
struct Clocks {
    members: HashMap<(String, String), MemberClock>,
    /// Prune when there are more entries than this (at least [`PRUNE_ABOVE`]).
    prune_above: usize,
}

impl Limiter {
    /// Applies [`Rules::judge`], then slow mode and the rate limit; when the message is
    /// accepted, records it against both (in the same critical section).
    pub(crate) fn admit(
        &self,
        rules: &Rules,
        poster: &Poster<'_>,
        room: &Room<'_>,
        text: &str,
        now: i64,
    ) -> Result<Verdict, Refusal> {
        let verdict = rules.judge(poster, room, text, now)?;
        let mut clocks = self.clocks.lock().unwrap_or_else(|e| e.into_inner());
        let key = (room.meeting.to_owned(), poster.account.to_owned());
        let clock = clocks.members.get(&key).copied().unwrap_or_default();
        if !poster.moderator
            && room.slow_mode_ms > 0
            && let Some(last) = clock.last_post
        {
            let wait_ms = last.saturating_add(room.slow_mode_ms) - now;
            if wait_ms > 0 {
                return Err(Refusal::SlowMode { wait_ms });
            }
        }
        let mut full_at = clock.full_at;
        if rules.refill_ms > 0 {
            // GCRA: a message is allowed while the bucket is not empty, i.e. while
            // `full_at` is at most (burst - 1) refills ahead of now.
            let start = full_at.max(now);
            let tolerance = rules.refill_ms * (i64::from(rules.burst) - 1);
            let wait_ms = start - now - tolerance;
            if wait_ms > 0 {
                return Err(Refusal::RateLimited { wait_ms });
            }
            full_at = start + rules.refill_ms;
        }
        let forget_after = full_at.max(now.saturating_add(room.slow_mode_ms));
        clocks.members.insert(
            key,
            MemberClock {
                full_at,
                last_post: Some(now),
                forget_after,
            },
        );
        if clocks.members.len() > clocks.prune_above.max(PRUNE_ABOVE) {
            clocks.members.retain(|_, clock| clock.forget_after > now);
            clocks.prune_above = clocks.members.len() * 2;
        }
        Ok(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_910_400_000;

    fn rules() -> Rules {
        Rules {
            max_length: 10,
            burst: 3,
            refill_ms: 2000,
            filter: WordFilter::new(&["Spam".into(), "广告".into()], ChatFilterMode::Block),
        }
    }

    fn member(restriction: Option<Restriction>) -> Poster<'static> {
        Poster {
            account: "alice",
            moderator: false,
            restriction,
        }
    }

    fn moderator() -> Poster<'static> {
        Poster {
            account: "mod",
            moderator: true,
            restriction: None,
        }
    }

    fn room(slow_mode_ms: i64) -> Room<'static> {
        Room {
            meeting: "m1",
            enabled: true,
            slow_mode_ms,
        }
    }

    #[test]
    fn length_is_counted_in_characters_after_trimming() {
        let rules = rules();
        let ok = rules.judge(&member(None), &room(0), "  一二三四五六七八九十  ", T0);
        assert_eq!(ok, Ok(Verdict::Visible));
        assert_eq!(
            rules.judge(&member(None), &room(0), "abcdefghijk", T0),
            Err(Refusal::TooLong {
                length: 11,
                max: 10
            })
        );
        assert_eq!(
            rules.judge(&member(None), &room(0), " \n\t ", T0),
            Err(Refusal::Blank)
        );
    }

    #[test]
    fn the_filter_blocks_whole_words_case_insensitively_and_cjk_anywhere() {
        let rules = rules();
        let judge = |text: &str| rules.judge(&member(None), &room(0), text, T0);
        assert_eq!(
            judge("buy SPAM!"),
            Err(Refusal::BlockedWord {
                word: "spam".into()
            })
        );
        assert_eq!(judge("spammer"), Ok(Verdict::Visible));
        assert_eq!(
            judge("spam广告"),
            Err(Refusal::BlockedWord {
                word: "spam".into()
            })
        );
        assert_eq!(
            judge("no-spam"),
            Err(Refusal::BlockedWord {
                word: "spam".into()
            })
        );
        assert_eq!(
            judge("看广告了"),
            Err(Refusal::BlockedWord {
                word: "广告".into()
            })
        );
        // Moderators are filtered too when the mode is block.
        assert!(matches!(
            rules.judge(&moderator(), &room(0), "spam", T0),
            Err(Refusal::BlockedWord { .. })
        ));
    }

    #[test]
    fn hold_mode_holds_members_messages_but_not_moderators() {
        let rules = Rules {
            filter: WordFilter::new(&["spam".into()], ChatFilterMode::Hold),
            ..rules()
        };
        assert_eq!(
            rules.judge(&member(None), &room(0), "spam", T0),
            Ok(Verdict::Held {
                word: "spam".into()
            })
        );
        assert_eq!(
            rules.judge(&moderator(), &room(0), "spam", T0),
            Ok(Verdict::Visible)
        );
    }

    #[test]
    fn bans_and_timeouts_come_before_everything_else() {
        let rules = rules();
        assert_eq!(
            rules.judge(&member(Some(Restriction::Ban)), &room(0), "hi", T0),
            Err(Refusal::Banned)
        );
        let timed_out = member(Some(Restriction::TimeoutUntil(T0 + 5000)));
        assert_eq!(
            rules.judge(&timed_out, &room(0), "far too long a message", T0),
            Err(Refusal::TimedOut { until: T0 + 5000 })
        );
        // The timeout ends at its time exactly.
        assert_eq!(
            rules.judge(&timed_out, &room(0), "hi", T0 + 5000),
            Ok(Verdict::Visible)
        );
    }

    #[test]
    fn a_closed_chat_refuses_members_but_not_moderators() {
        let closed = Room {
            enabled: false,
            ..room(0)
        };
        assert_eq!(
            rules().judge(&member(None), &closed, "hi", T0),
            Err(Refusal::Closed)
        );
        assert_eq!(
            rules().judge(&moderator(), &closed, "hi", T0),
            Ok(Verdict::Visible)
        );
    }

    #[test]
    fn slow_mode_spaces_a_members_messages_and_exempts_moderators() {
        let (rules, limiter) = (rules(), Limiter::default());
        let slow = room(10_000);
        assert_eq!(
            limiter.admit(&rules, &member(None), &slow, "one", T0),
            Ok(Verdict::Visible)
        );
        assert_eq!(
            limiter.admit(&rules, &member(None), &slow, "two", T0 + 4000),
            Err(Refusal::SlowMode { wait_ms: 6000 })
        );
        // The refusal did not move the clock: exactly 10 s after the first, it passes.
        assert_eq!(
            limiter.admit(&rules, &member(None), &slow, "two", T0 + 10_000),
            Ok(Verdict::Visible)
        );
        // Another member, and a moderator, are not held back by alice's clock.
        let bob = Poster {
            account: "bob",
            ..member(None)
        };
        assert!(
            limiter
                .admit(&rules, &bob, &slow, "hi", T0 + 10_001)
                .is_ok()
        );
        assert!(limiter.admit(&rules, &moderator(), &slow, "a", T0).is_ok());
        assert!(
            limiter
                .admit(&rules, &moderator(), &slow, "b", T0 + 1)
                .is_ok()
        );
        // Another meeting has its own clock.
        let other = Room {
            meeting: "m2",
            ..slow
        };
        assert!(
            limiter
                .admit(&rules, &member(None), &other, "hi", T0 + 10_001)
                .is_ok()
        );
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_one_per_refill() {
        let (rules, limiter) = (rules(), Limiter::default());
        for i in 0..3 {
            assert_eq!(
                limiter.admit(&rules, &member(None), &room(0), "x", T0 + i),
                Ok(Verdict::Visible),
                "message {i} of the burst"
            );
        }
        // The bucket (3) is empty: the next token comes 2 s after the burst began.
        assert_eq!(
            limiter.admit(&rules, &member(None), &room(0), "x", T0 + 500),
            Err(Refusal::RateLimited { wait_ms: 1500 })
        );
        assert!(
            limiter
                .admit(&rules, &member(None), &room(0), "x", T0 + 2000)
                .is_ok()
        );
        assert!(matches!(
            limiter.admit(&rules, &member(None), &room(0), "x", T0 + 2001),
            Err(Refusal::RateLimited { .. })
        ));
        // After a quiet spell the bucket is full again, never fuller.
        for i in 0..3 {
            assert!(
                limiter
                    .admit(&rules, &member(None), &room(0), "x", T0 + 60_000 + i)
                    .is_ok()
            );
        }
        assert!(
            limiter
                .admit(&rules, &member(None), &room(0), "x", T0 + 60_003)
                .is_err()
        );
        // Moderators are rate-limited too.
        for i in 0..3 {
            assert!(
                limiter
                    .admit(&rules, &moderator(), &room(0), "x", T0 + i)
                    .is_ok()
            );
        }
        assert!(
            limiter
                .admit(&rules, &moderator(), &room(0), "x", T0 + 3)
                .is_err()
        );
    }

    #[test]
    fn refused_messages_cost_nothing_and_a_zero_refill_turns_the_limit_off() {
        let limiter = Limiter::default();
        let rules = rules();
        for _ in 0..10 {
            assert!(
                limiter
                    .admit(&rules, &member(None), &room(0), "spam", T0)
                    .is_err()
            );
        }
        for i in 0..3 {
            assert!(
                limiter
                    .admit(&rules, &member(None), &room(0), "ok", T0 + i)
                    .is_ok()
            );
        }
        let unlimited = Rules {
            refill_ms: 0,
            ..rules
        };
        for i in 0..100 {
            assert!(
                limiter
                    .admit(&unlimited, &member(None), &room(0), "ok", T0 + 10 + i)
                    .is_ok()
            );
        }
    }

    #[test]
    fn forgotten_entries_are_pruned() {
        let limiter = Limiter::default();
        let rules = rules();
        for i in 0..PRUNE_ABOVE {
            let account = format!("member-{i}");
            let poster = Poster {
                account: &account,
                ..member(None)
            };
            limiter.admit(&rules, &poster, &room(0), "hi", T0).unwrap();
        }
        // Much later, one more message: every older entry says nothing any more.
        limiter
            .admit(&rules, &member(None), &room(0), "hi", T0 + 3_600_000)
            .unwrap();
        let clocks = limiter.clocks.lock().unwrap();
        assert_eq!(clocks.members.len(), 1, "only alice's entry says something");
    }

    #[test]
    fn rules_follow_the_configuration() {
        let config = ChatConfig {
            max_message_length: 7,
            rate_burst: 2,
            rate_refill: Duration::from_millis(1500),
            filter_words: vec![" Foo ".into()],
            filter_mode: ChatFilterMode::Hold,
            default_slow_mode: Duration::ZERO,
        };
        let rules = Rules::from_config(&config);
        assert_eq!(
            (rules.max_length, rules.burst, rules.refill_ms),
            (7, 2, 1500)
        );
        assert_eq!(rules.filter.find("a FOO b"), Some("foo"));
    }
}
