//! `[chat]`: the rules of meeting chat that the server enforces on every message (see
//! `hub/src/service/chat.rs`): the longest message, each member's rate limit, the word
//! filter, and the slow mode a meeting starts with. Moderators change a meeting's slow
//! mode at run time; the rest applies to every meeting of the node.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest `max_message_length` accepted: a message is pushed in one publication.
pub const MAX_CHAT_MESSAGE_LENGTH: u32 = 10_000;
/// The longest slow mode, default or set by a moderator.
pub const MAX_SLOW_MODE: Duration = Duration::from_secs(3600);

/// What the word filter does with a message that contains a listed word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatFilterMode {
    /// `block`: the message is refused (422) and never stored or shown.
    Block,
    /// `hold`: the message is stored as held; only moderators see it until one approves it.
    Hold,
}

/// The chat rules (see the module documentation).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Longest message in characters (Unicode scalar values), 1 to 10000. Default 500.
    pub max_message_length: u32,
    /// Messages a member may send at once before the rate limit applies (the size of the
    /// token bucket), at least 1. Default 5.
    pub rate_burst: u32,
    /// One more message is allowed every this long (the bucket's refill); `"0"` turns the
    /// rate limit off. Default 2s.
    #[serde(with = "crate::duration")]
    pub rate_refill: Duration,
    /// Words and phrases the filter looks for, case-insensitively (a word that starts or
    /// ends with a letter or digit matches only as a whole word there, so `ass` does not
    /// match `class`; other text, such as Chinese, matches anywhere). Default none.
    pub filter_words: Vec<String>,
    /// `block` or `hold` (see [`ChatFilterMode`]). Default `block`.
    pub filter_mode: ChatFilterMode,
    /// The slow mode of a meeting until a moderator sets one: the least time between two
    /// messages of one member (moderators are exempt), whole seconds up to 1h; `"0"` is off.
    /// Default `"0"`.
    #[serde(with = "crate::duration")]
    pub default_slow_mode: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_message_length: 500,
            rate_burst: 5,
            rate_refill: Duration::from_secs(2),
            filter_words: Vec::new(),
            filter_mode: ChatFilterMode::Block,
            default_slow_mode: Duration::ZERO,
        }
    }
}

impl ChatConfig {
    /// Checks what serde cannot: every problem, as (key, reason).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(1..=MAX_CHAT_MESSAGE_LENGTH).contains(&self.max_message_length) {
            problems.push((
                "chat.max_message_length",
                format!(
                    "{} is out of range: a message may have 1 to {MAX_CHAT_MESSAGE_LENGTH} \
                     characters",
                    self.max_message_length
                ),
            ));
        }
        if self.rate_burst == 0 {
            problems.push((
                "chat.rate_burst",
                "must be at least 1: with 0 nobody could post (turn the limit off with \
                 chat.rate_refill = \"0\" instead)"
                    .to_owned(),
            ));
        }
        if !self.rate_refill.is_zero() && self.rate_refill < Duration::from_millis(10) {
            problems.push((
                "chat.rate_refill",
                format!(
                    "{} is too short to limit anything: use at least 10ms, or \"0\" to turn \
                     the rate limit off",
                    crate::duration::format(self.rate_refill)
                ),
            ));
        }
        if let Some(word) = self.filter_words.iter().find(|w| w.trim().is_empty()) {
            problems.push((
                "chat.filter_words",
                format!("{word:?} is blank: it would match every message"),
            ));
        }
        if self.default_slow_mode > MAX_SLOW_MODE || self.default_slow_mode.subsec_nanos() != 0 {
            problems.push((
                "chat.default_slow_mode",
                format!(
                    "{} is not a whole number of seconds between 0 and 1h",
                    crate::duration::format(self.default_slow_mode)
                ),
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_problem(change: impl FnOnce(&mut ChatConfig)) -> (&'static str, String) {
        let mut config = ChatConfig::default();
        change(&mut config);
        let mut problems = config.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        problems.remove(0)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ChatConfig::default().problems(), []);
    }

    #[test]
    fn nonsense_values_are_named() {
        let (key, reason) = only_problem(|c| c.max_message_length = 0);
        assert_eq!(key, "chat.max_message_length");
        assert!(reason.contains("1 to 10000"), "{reason}");
        let (key, _) = only_problem(|c| c.max_message_length = MAX_CHAT_MESSAGE_LENGTH + 1);
        assert_eq!(key, "chat.max_message_length");
        let (key, reason) = only_problem(|c| c.rate_burst = 0);
        assert_eq!(key, "chat.rate_burst");
        assert!(reason.contains("at least 1"), "{reason}");
        let (key, reason) = only_problem(|c| c.rate_refill = Duration::from_millis(1));
        assert_eq!(key, "chat.rate_refill");
        assert!(reason.contains("1ms"), "{reason}");
        let (key, reason) = only_problem(|c| c.filter_words = vec!["spam".into(), " ".into()]);
        assert_eq!(key, "chat.filter_words");
        assert!(reason.contains("blank"), "{reason}");
        let (key, _) = only_problem(|c| c.default_slow_mode = Duration::from_secs(3601));
        assert_eq!(key, "chat.default_slow_mode");
        let (key, _) = only_problem(|c| c.default_slow_mode = Duration::from_millis(1500));
        assert_eq!(key, "chat.default_slow_mode");
    }

    #[test]
    fn the_rate_limit_and_slow_mode_may_be_off() {
        let config = ChatConfig {
            rate_refill: Duration::ZERO,
            default_slow_mode: Duration::ZERO,
            ..ChatConfig::default()
        };
        assert_eq!(config.problems(), []);
    }
}
