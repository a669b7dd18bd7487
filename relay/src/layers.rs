//! Simulcast layer selection for one viewer.
//!
//! The publisher sends up to three layers (RIDs) of the same video; each viewer receives one.
//! A [`LayerSelector`] decides which one the viewer **should** get (the target) from:
//!
//! - what is available: [`LayerAvailability`] says which layers are live and at what bitrate
//!   (measured by the forwarder, or nominal until measured). A layer that str0m reports paused
//!   (`Event::StreamPaused`) or that sent nothing for a while is not live;
//! - the viewer's bandwidth estimate in bits per second (str0m's
//!   `Event::EgressBitrateEstimate`, TWCC or REMB);
//! - the viewer's preference ([`ViewerPreference`]): automatic, pinned to a layer, or
//!   audio only.
//!
//! **Hysteresis.** Going down is immediate once the estimate falls below the current layer's
//! bitrate (losing packets is worse than a lower resolution). Going up needs the estimate to
//! exceed the higher layer's bitrate by a headroom (25 % by default) **continuously** for
//! `upgrade_hold`, and never within `upgrade_cooldown` after a downgrade. An estimate that
//! wobbles around a threshold therefore changes nothing, or changes it once.
//!
//! The selector only names the target. Switching happens at a keyframe of the target layer:
//! the forwarder keeps sending the current layer until one arrives, and asks the publisher for
//! it (see [`crate::keyframes`]). When the current layer stops, the target falls back to the
//! best live layer at once.

use std::time::{Duration, Instant};

use crate::packet::LayerId;

/// What the viewer asked for (the WHEP layer picker, or an audio-only mode for weak links).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewerPreference {
    /// Chosen from the bandwidth estimate.
    #[default]
    Auto,
    /// This layer when it is live; otherwise the nearest live one (lower first).
    Pin(LayerId),
    /// No video at all.
    AudioOnly,
}

/// What a viewer asks for over HTTP (the WHEP layer route), before the driver resolves it to
/// a [`ViewerPreference`]: a layer by rank, a publisher's RID (`encodingId`), automatic, or
/// audio only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerChoice {
    /// [`ViewerPreference::Auto`].
    Auto,
    /// [`ViewerPreference::AudioOnly`].
    AudioOnly,
    /// [`ViewerPreference::Pin`] of a rank.
    Layer(LayerId),
    /// [`ViewerPreference::Pin`] of the layer the publisher sends with this RID.
    Encoding(String),
}

impl LayerChoice {
    /// Parses a layer name: `auto`, `audio` (or `none`), `low`/`q`/`l`/`0`,
    /// `medium`/`mid`/`h`/`m`/`1`, `high`/`f`/`2`. The single letters are the conventional
    /// RIDs (`q/h/f`) the publish page sends; `h` is the **middle** layer, as in `q/h/f`.
    pub fn from_name(name: &str) -> Option<LayerChoice> {
        Some(match name {
            "auto" => LayerChoice::Auto,
            "audio" | "none" => LayerChoice::AudioOnly,
            "low" | "q" | "l" | "0" => LayerChoice::Layer(LayerId::LOW),
            "medium" | "mid" | "h" | "m" | "1" => LayerChoice::Layer(LayerId::MID),
            "high" | "f" | "2" => LayerChoice::Layer(LayerId::HIGH),
            _ => return None,
        })
    }

    /// The preference, given the publisher's RID → layer map (`None`: no such RID).
    pub fn resolve(&self, rid_layers: &[(&str, LayerId)]) -> Option<ViewerPreference> {
        Some(match self {
            LayerChoice::Auto => ViewerPreference::Auto,
            LayerChoice::AudioOnly => ViewerPreference::AudioOnly,
            LayerChoice::Layer(l) => ViewerPreference::Pin(*l),
            LayerChoice::Encoding(rid) => {
                let (_, layer) = rid_layers.iter().find(|(r, _)| r == rid)?;
                ViewerPreference::Pin(*layer)
            }
        })
    }
}

impl ViewerPreference {
    /// The name used by the WHEP layer route: `auto`, `audio`, `low`, `medium`, `high`.
    pub fn name(self) -> &'static str {
        match self {
            ViewerPreference::Auto => "auto",
            ViewerPreference::AudioOnly => "audio",
            ViewerPreference::Pin(l) => layer_name(l),
        }
    }
}

/// `low`, `medium` or `high`.
pub fn layer_name(layer: LayerId) -> &'static str {
    match layer.index() {
        0 => "low",
        1 => "medium",
        _ => "high",
    }
}

/// Which layers are live, and their bitrates in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerAvailability {
    rates: [Option<u64>; LayerId::COUNT],
}

impl LayerAvailability {
    /// Nothing is live.
    pub fn none() -> LayerAvailability {
        LayerAvailability::default()
    }

    /// Marks `layer` live at `bitrate_bps`, or not live with `None`.
    pub fn set(&mut self, layer: LayerId, bitrate_bps: Option<u64>) {
        self.rates[layer.index()] = bitrate_bps;
    }

    /// Builder form of [`LayerAvailability::set`].
    pub fn with(mut self, layer: LayerId, bitrate_bps: u64) -> LayerAvailability {
        self.set(layer, Some(bitrate_bps));
        self
    }

    /// Whether `layer` is live.
    pub fn is_live(&self, layer: LayerId) -> bool {
        self.rates[layer.index()].is_some()
    }

    /// The bitrate of a live layer.
    pub fn rate(&self, layer: LayerId) -> Option<u64> {
        self.rates[layer.index()]
    }

    /// Live layers, lowest first.
    pub fn live(&self) -> impl Iterator<Item = (LayerId, u64)> + '_ {
        LayerId::ALL
            .into_iter()
            .filter_map(|l| self.rates[l.index()].map(|r| (l, r)))
    }

    /// The lowest live layer.
    pub fn lowest(&self) -> Option<LayerId> {
        self.live().next().map(|(l, _)| l)
    }

    /// The highest live layer that is no higher than `limit` and whose bitrate, with
    /// `headroom_percent`, fits in `budget_bps`.
    fn best_fit(&self, budget_bps: u64, headroom_percent: u64, limit: LayerId) -> Option<LayerId> {
        self.live()
            .filter(|&(l, rate)| {
                l <= limit && rate.saturating_mul(headroom_percent) / 100 <= budget_bps
            })
            .map(|(l, _)| l)
            .last()
    }
}

/// Tuning of the selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectorConfig {
    /// Going up needs `estimate >= rate * up_headroom_percent / 100` (125 by default).
    pub up_headroom_percent: u64,
    /// ... continuously for this long (1 s by default).
    pub upgrade_hold: Duration,
    /// ... and not within this long after a downgrade (4 s by default).
    pub upgrade_cooldown: Duration,
    /// Fast start (R2): `Some(d)` starts an automatic viewer on the **lowest** live layer —
    /// its keyframe is the smallest, so it is encoded, paced and decoded soonest — and moves
    /// it to the layer its estimate chose after `d` (no headroom needed for that move).
    /// `None` (the default) starts on the estimate's layer at once.
    pub start_lowest: Option<Duration>,
}

impl Default for SelectorConfig {
    fn default() -> SelectorConfig {
        SelectorConfig {
            up_headroom_percent: 125,
            upgrade_hold: Duration::from_secs(1),
            upgrade_cooldown: Duration::from_secs(4),
            start_lowest: None,
        }
    }
}

/// Chooses the target layer of one viewer. See the module docs.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    config: SelectorConfig,
    preference: ViewerPreference,
    estimate_bps: Option<u64>,
    target: Option<LayerId>,
    /// Since when an upgrade has been possible without interruption.
    upgrade_possible_since: Option<Instant>,
    last_downgrade: Option<Instant>,
    /// Fast start: the layer the estimate chose at join, and when to move there.
    join_target: Option<(LayerId, Instant)>,
    /// Whether the selector has had a target yet (fast start applies only before).
    started: bool,
}

impl LayerSelector {
    /// A selector with no estimate and no target yet.
    pub fn new(config: SelectorConfig, preference: ViewerPreference) -> LayerSelector {
        LayerSelector {
            config,
            preference,
            estimate_bps: None,
            target: None,
            upgrade_possible_since: None,
            last_downgrade: None,
            join_target: None,
            started: false,
        }
    }

    /// The layer the viewer should receive, `None` for no video.
    pub fn target(&self) -> Option<LayerId> {
        self.target
    }

    /// The viewer's preference.
    pub fn preference(&self) -> ViewerPreference {
        self.preference
    }

    /// The last bandwidth estimate.
    pub fn estimate(&self) -> Option<u64> {
        self.estimate_bps
    }

    /// Sets the preference; takes effect at the next [`LayerSelector::evaluate`].
    pub fn set_preference(&mut self, preference: ViewerPreference) {
        if preference != self.preference {
            self.preference = preference;
            self.upgrade_possible_since = None;
        }
    }

    /// Records a new bandwidth estimate; takes effect at the next [`LayerSelector::evaluate`].
    pub fn set_estimate(&mut self, bitrate_bps: u64) {
        self.estimate_bps = Some(bitrate_bps);
    }

    /// When an evaluation could next change the target without new input (an upgrade hold or
    /// cooldown ending).
    pub fn next_timeout(&self) -> Option<Instant> {
        if let Some((_, at)) = self.join_target {
            return Some(at);
        }
        let since = self.upgrade_possible_since?;
        let hold_end = since + self.config.upgrade_hold;
        let cooldown_end = self
            .last_downgrade
            .map(|d| d + self.config.upgrade_cooldown);
        Some(cooldown_end.map_or(hold_end, |c| c.max(hold_end)))
    }

    /// Recomputes the target from the availability at `now`; returns it.
    pub fn evaluate(&mut self, now: Instant, available: &LayerAvailability) -> Option<LayerId> {
        let new = match self.preference {
            ViewerPreference::AudioOnly => None,
            ViewerPreference::Pin(layer) => Self::nearest(available, layer),
            ViewerPreference::Auto => self.auto(now, available),
        };
        if let (Some(old), Some(new)) = (self.target, new) {
            if new < old && available.is_live(old) {
                self.last_downgrade = Some(now);
            }
        }
        if new != self.target {
            self.upgrade_possible_since = None;
        }
        if self.preference != ViewerPreference::Auto {
            self.join_target = None;
        }
        self.started |= new.is_some();
        self.target = new;
        new
    }

    /// The pinned layer if live, else the highest live one below it, else the lowest above.
    fn nearest(available: &LayerAvailability, layer: LayerId) -> Option<LayerId> {
        if available.is_live(layer) {
            return Some(layer);
        }
        let below = available
            .live()
            .map(|(l, _)| l)
            .filter(|&l| l < layer)
            .last();
        below.or_else(|| available.lowest())
    }

    fn auto(&mut self, now: Instant, available: &LayerAvailability) -> Option<LayerId> {
        let current = self.target.filter(|&l| available.is_live(l));
        let Some(current) = current else {
            // Nothing yet, or the current layer stopped: pick at once, without headroom.
            self.upgrade_possible_since = None;
            let best = match self.estimate_bps {
                None => available.lowest(),
                Some(est) => available
                    .best_fit(est, 100, LayerId::HIGH)
                    .or_else(|| available.lowest()),
            };
            let lowest = available.lowest();
            if let (Some(delay), false, Some(best)) = (self.config.start_lowest, self.started, best)
            {
                if lowest.is_some_and(|l| l < best) {
                    self.join_target = Some((best, now + delay));
                    return lowest;
                }
            }
            return best;
        };
        if let Some((join, at)) = self.join_target {
            let fits = self
                .estimate_bps
                .is_none_or(|est| available.rate(join).is_some_and(|r| r <= est));
            if !available.is_live(join) || !fits || join <= current {
                self.join_target = None;
            } else if now >= at {
                self.join_target = None;
                return Some(join);
            } else {
                return Some(current);
            }
        }
        let Some(est) = self.estimate_bps else {
            return Some(current);
        };
        let current_rate = available.rate(current).unwrap_or(0);
        if est < current_rate {
            self.upgrade_possible_since = None;
            let below = available
                .live()
                .filter(|&(l, rate)| l < current && rate <= est)
                .map(|(l, _)| l)
                .last();
            // Nothing fits: the lowest live layer is still better than no video.
            return below.or_else(|| available.lowest()).map(|l| l.min(current));
        }
        let up = available
            .best_fit(est, self.config.up_headroom_percent, LayerId::HIGH)
            .filter(|&l| l > current);
        let Some(up) = up else {
            self.upgrade_possible_since = None;
            return Some(current);
        };
        if let Some(down) = self.last_downgrade {
            if now < down + self.config.upgrade_cooldown {
                // Keep the hold clock running so the upgrade happens when the cooldown ends.
                self.upgrade_possible_since.get_or_insert(now);
                return Some(current);
            }
        }
        match self.upgrade_possible_since {
            Some(since) if now >= since + self.config.upgrade_hold => Some(up),
            Some(_) => Some(current),
            None => {
                self.upgrade_possible_since = Some(now);
                if self.config.upgrade_hold.is_zero() {
                    Some(up)
                } else {
                    Some(current)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const SEC: Duration = Duration::from_secs(1);

    fn all_three() -> LayerAvailability {
        LayerAvailability::none()
            .with(LayerId::LOW, 150_000)
            .with(LayerId::MID, 500_000)
            .with(LayerId::HIGH, 1_500_000)
    }

    #[test]
    fn starts_low_without_an_estimate_and_best_fit_with_one() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(SelectorConfig::default(), ViewerPreference::Auto);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::LOW));
        let mut s = LayerSelector::new(SelectorConfig::default(), ViewerPreference::Auto);
        s.set_estimate(800_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::MID));
        assert_eq!(s.evaluate(t0, &LayerAvailability::none()), None);
    }

    #[test]
    fn upgrade_needs_headroom_held_for_a_while() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(SelectorConfig::default(), ViewerPreference::Auto);
        s.set_estimate(600_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::MID));
        // 1.6 Mb/s is above HIGH but not by 25 %: stay.
        s.set_estimate(1_600_000);
        assert_eq!(s.evaluate(t0 + SEC, &all_three()), Some(LayerId::MID));
        assert_eq!(s.next_timeout(), None);
        s.set_estimate(2_000_000);
        assert_eq!(s.evaluate(t0 + 2 * SEC, &all_three()), Some(LayerId::MID));
        assert_eq!(s.next_timeout(), Some(t0 + 3 * SEC));
        assert_eq!(
            s.evaluate(t0 + 2 * SEC + 999 * MS, &all_three()),
            Some(LayerId::MID)
        );
        assert_eq!(s.evaluate(t0 + 3 * SEC, &all_three()), Some(LayerId::HIGH));
    }

    #[test]
    fn hysteresis_prevents_flapping_around_a_threshold() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(SelectorConfig::default(), ViewerPreference::Auto);
        s.set_estimate(2_000_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::HIGH));
        let mut changes = 0;
        let mut last = s.target();
        // The estimate wobbles around HIGH's rate every 100 ms for 20 s.
        for i in 1..200u32 {
            let est = if i % 2 == 0 { 1_450_000 } else { 1_700_000 };
            s.set_estimate(est);
            let t = s.evaluate(t0 + i * 100 * MS, &all_three());
            if t != last {
                changes += 1;
                last = t;
            }
        }
        // Down once on the first dip, then never back up: the hold never completes.
        assert_eq!(changes, 1);
        assert_eq!(last, Some(LayerId::MID));
    }

    #[test]
    fn no_upgrade_during_the_cooldown_after_a_downgrade() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(SelectorConfig::default(), ViewerPreference::Auto);
        s.set_estimate(2_000_000);
        s.evaluate(t0, &all_three());
        s.set_estimate(300_000);
        assert_eq!(s.evaluate(t0 + SEC, &all_three()), Some(LayerId::LOW));
        s.set_estimate(5_000_000);
        assert_eq!(s.evaluate(t0 + 2 * SEC, &all_three()), Some(LayerId::LOW));
        assert_eq!(s.next_timeout(), Some(t0 + 5 * SEC));
        assert_eq!(s.evaluate(t0 + 4 * SEC, &all_three()), Some(LayerId::LOW));
        assert_eq!(s.evaluate(t0 + 5 * SEC, &all_three()), Some(LayerId::HIGH));
    }

    #[test]
    fn downgrade_when_nothing_fits_goes_to_the_lowest() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(SelectorConfig::default(), ViewerPreference::Auto);
        s.set_estimate(2_000_000);
        s.evaluate(t0, &all_three());
        s.set_estimate(10_000);
        assert_eq!(s.evaluate(t0 + MS, &all_three()), Some(LayerId::LOW));
        // Already at the lowest: stays there.
        assert_eq!(s.evaluate(t0 + 2 * MS, &all_three()), Some(LayerId::LOW));
    }

    #[test]
    fn pin_and_audio_only_override_the_estimate() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(
            SelectorConfig::default(),
            ViewerPreference::Pin(LayerId::HIGH),
        );
        s.set_estimate(100_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::HIGH));
        let no_high = LayerAvailability::none()
            .with(LayerId::LOW, 1)
            .with(LayerId::MID, 1);
        assert_eq!(s.evaluate(t0, &no_high), Some(LayerId::MID));
        let only_high = LayerAvailability::none().with(LayerId::HIGH, 1);
        s.set_preference(ViewerPreference::Pin(LayerId::LOW));
        assert_eq!(s.evaluate(t0, &only_high), Some(LayerId::HIGH));
        s.set_preference(ViewerPreference::AudioOnly);
        assert_eq!(s.evaluate(t0, &all_three()), None);
        assert_eq!(s.preference(), ViewerPreference::AudioOnly);
        s.set_preference(ViewerPreference::Auto);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::LOW));
        assert_eq!(s.estimate(), Some(100_000));
    }

    #[test]
    fn layer_choices_parse_and_resolve() {
        assert_eq!(LayerChoice::from_name("auto"), Some(LayerChoice::Auto));
        assert_eq!(
            LayerChoice::from_name("audio"),
            Some(LayerChoice::AudioOnly)
        );
        assert_eq!(
            LayerChoice::from_name("q"),
            Some(LayerChoice::Layer(LayerId::LOW))
        );
        assert_eq!(
            LayerChoice::from_name("h"),
            Some(LayerChoice::Layer(LayerId::MID))
        );
        assert_eq!(
            LayerChoice::from_name("high"),
            Some(LayerChoice::Layer(LayerId::HIGH))
        );
        assert_eq!(LayerChoice::from_name("ultra"), None);
        assert_eq!(LayerChoice::from_name("AUTO"), None);
        let rids = [("a", LayerId::LOW), ("b", LayerId::HIGH)];
        assert_eq!(
            LayerChoice::Encoding("b".into()).resolve(&rids),
            Some(ViewerPreference::Pin(LayerId::HIGH))
        );
        assert_eq!(LayerChoice::Encoding("c".into()).resolve(&rids), None);
        assert_eq!(
            LayerChoice::AudioOnly.resolve(&[]),
            Some(ViewerPreference::AudioOnly)
        );
        for p in [
            ViewerPreference::Auto,
            ViewerPreference::AudioOnly,
            ViewerPreference::Pin(LayerId::LOW),
            ViewerPreference::Pin(LayerId::MID),
            ViewerPreference::Pin(LayerId::HIGH),
        ] {
            assert_eq!(
                LayerChoice::from_name(p.name()).unwrap().resolve(&[]),
                Some(p)
            );
        }
    }

    #[test]
    fn fast_start_begins_on_the_lowest_layer_then_moves_to_the_estimates() {
        let t0 = Instant::now();
        let config = SelectorConfig {
            start_lowest: Some(SEC),
            ..SelectorConfig::default()
        };
        let mut s = LayerSelector::new(config, ViewerPreference::Auto);
        s.set_estimate(2_000_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::LOW));
        assert_eq!(s.next_timeout(), Some(t0 + SEC));
        assert_eq!(s.evaluate(t0 + 999 * MS, &all_three()), Some(LayerId::LOW));
        // No headroom needed: the estimate chose HIGH at join.
        assert_eq!(s.evaluate(t0 + SEC, &all_three()), Some(LayerId::HIGH));
        assert_eq!(s.next_timeout(), None);
        // Only at the start: a fallback later picks the best fit at once.
        let mut paused = all_three();
        paused.set(LayerId::HIGH, None);
        assert_eq!(s.evaluate(t0 + 2 * SEC, &paused), Some(LayerId::MID));

        // The estimate drops before the move: it goes where the estimate allows instead.
        let mut s = LayerSelector::new(config, ViewerPreference::Auto);
        s.set_estimate(2_000_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::LOW));
        s.set_estimate(600_000);
        assert_eq!(s.evaluate(t0 + 500 * MS, &all_three()), Some(LayerId::LOW));
        assert_eq!(s.evaluate(t0 + SEC, &all_three()), Some(LayerId::LOW));

        // A pin is not delayed; nor is an estimate that picks the lowest anyway.
        let mut s = LayerSelector::new(config, ViewerPreference::Pin(LayerId::HIGH));
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::HIGH));
        let mut s = LayerSelector::new(config, ViewerPreference::Auto);
        s.set_estimate(100_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::LOW));
        assert_eq!(s.next_timeout(), None);
    }

    #[test]
    fn falls_back_at_once_when_the_current_layer_stops() {
        let t0 = Instant::now();
        let mut s = LayerSelector::new(SelectorConfig::default(), ViewerPreference::Auto);
        s.set_estimate(5_000_000);
        assert_eq!(s.evaluate(t0, &all_three()), Some(LayerId::HIGH));
        let mut paused = all_three();
        paused.set(LayerId::HIGH, None);
        assert_eq!(s.evaluate(t0 + MS, &paused), Some(LayerId::MID));
        // The fallback is not a downgrade: when HIGH returns, the hold applies but no cooldown.
        assert_eq!(s.evaluate(t0 + 2 * MS, &all_three()), Some(LayerId::MID));
        assert_eq!(
            s.evaluate(t0 + 2 * MS + SEC, &all_three()),
            Some(LayerId::HIGH)
        );
    }
}
