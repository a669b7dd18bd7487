//! Durations written as Centrifugo writes them: `"25s"`, `"500ms"`, `"5m"`, `"1h"`, `"30d"`.
//!
//! A duration is one or more `<whole number><unit>` parts that add up (`"1m30s"`), with unit
//! one of `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`, `d`; `"0"` alone is zero. Units are
//! case-sensitive and fractions are refused, so `"1.5s"` must be written `"1500ms"`.
//! [`format`] writes a duration back in the largest unit that holds it exactly
//! (`300s` → `"5m"`, `1500ms` → `"1500ms"`), so writing and reading it again is lossless.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Units from largest to smallest, with their length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("d", 86_400 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("s", NANOS_PER_SEC),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(r#"a duration string such as "25s", "500ms", "5m" or "0""#)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            parse(text).map_err(E::custom)
        }
    }

    deserializer.deserialize_str(DurationVisitor)
}

pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*value))
}

/// Parses a duration such as `"25s"` or `"1m30s"`; see the module docs for the syntax.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(r#"empty duration (write e.g. "25s", or "0" for none)"#.to_owned());
    }
    if text.contains('.') {
        return Err(format!(
            r#"duration {text:?} has a fraction; use whole numbers of a smaller unit, e.g. "1500ms" for 1.5s"#
        ));
    }
    let too_large = || format!("duration {text:?} is too large");
    let mut total_nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                r#"duration {text:?} must be a whole number followed by a unit, e.g. "25s""#
            ));
        }
        let number: u128 = rest[..digits].parse().map_err(|_| too_large())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let unit_nanos = match unit {
            "" => {
                return Err(format!(
                    "duration {text:?} has no unit (use ms, s, m, h or d)"
                ));
            }
            "µs" => 1_000,
            _ => UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, nanos)| *nanos)
                .ok_or_else(|| {
                    format!("duration {text:?} has unknown unit {unit:?} (use ms, s, m, h or d)")
                })?,
        };
        total_nanos = number
            .checked_mul(unit_nanos)
            .and_then(|nanos| total_nanos.checked_add(nanos))
            .ok_or_else(too_large)?;
    }
    let secs = u64::try_from(total_nanos / NANOS_PER_SEC).map_err(|_| too_large())?;
    // The remainder of a division by 10^9 always fits in u32.
    let nanos = (total_nanos % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Writes `duration` in the largest unit that holds it exactly; zero is `"0"`.
pub fn format(duration: Duration) -> String {
    if duration.is_zero() {
        return "0".to_owned();
    }
    let nanos = duration.as_nanos();
    let (unit, unit_nanos) = UNITS
        .iter()
        .find(|(_, unit_nanos)| nanos % unit_nanos == 0)
        .unwrap_or(&("ns", 1));
    format!("{}{unit}", nanos / unit_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Duration {
        parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(d) => panic!("{text:?} should be rejected, parsed as {d:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn every_unit() {
        assert_eq!(ok("7ns"), Duration::from_nanos(7));
        assert_eq!(ok("7us"), Duration::from_micros(7));
        assert_eq!(ok("7µs"), Duration::from_micros(7));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("25s"), Duration::from_secs(25));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3_600));
        assert_eq!(ok("30d"), Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn zero_in_any_form() {
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok("0ms"), Duration::ZERO);
    }

    #[test]
    fn parts_add_up_and_whitespace_around_is_ignored() {
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h1ms"), Duration::from_millis(3_600_001));
        assert_eq!(ok("  25s\n"), Duration::from_secs(25));
    }

    #[test]
    fn malformed_durations_say_what_is_wrong() {
        assert!(err("").contains("empty"));
        assert!(err("   ").contains("empty"));
        assert!(err("25").contains("no unit"));
        assert!(err("1m30").contains("no unit"));
        assert!(err("5x").contains(r#"unknown unit "x""#));
        assert!(
            err("5S").contains(r#"unknown unit "S""#),
            "units are case-sensitive"
        );
        assert!(err("5 s").contains(r#"unknown unit " s""#));
        assert!(err("1.5s").contains("fraction"));
        assert!(err("-5s").contains("whole number"));
        assert!(err("s").contains("whole number"));
        assert!(err("+5s").contains("whole number"));
    }

    #[test]
    fn too_large_is_an_error_not_a_wrap() {
        assert!(
            err("213503982334602d").contains("too large"),
            "just past u64 seconds"
        );
        assert!(err(&format!("{}0s", u128::MAX)).contains("too large"));
        assert!(err(&format!("{}d", u128::MAX / 1_000)).contains("too large"));
        assert_eq!(
            ok("18446744073709551615s"),
            Duration::from_secs(u64::MAX),
            "u64::MAX seconds is the largest Duration and still fits"
        );
    }

    #[test]
    fn format_uses_the_largest_exact_unit() {
        assert_eq!(format(Duration::ZERO), "0");
        assert_eq!(format(Duration::from_secs(25)), "25s");
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(7_200)), "2h");
        assert_eq!(format(Duration::from_secs(30 * 86_400)), "30d");
        assert_eq!(format(Duration::from_millis(1_500)), "1500ms");
        assert_eq!(format(Duration::from_nanos(1_500)), "1500ns");
    }

    #[test]
    fn format_then_parse_is_lossless() {
        for duration in [
            Duration::from_nanos(1),
            Duration::from_micros(1_001),
            Duration::from_millis(8_000),
            Duration::from_secs(86_401),
            Duration::new(12, 345_678_901),
            Duration::MAX,
        ] {
            assert_eq!(ok(&format(duration)), duration, "{}", format(duration));
        }
    }
}
