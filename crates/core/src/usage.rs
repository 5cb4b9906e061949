//! Usage quantities: what a call, message or data session consumed.
//!
//! All usage is an integer count. Voice is counted in nanoseconds (CGRateS's unit, so that tariffs
//! written with Go durations such as `1m30s` or a bare `6` keep their meaning); SMS in messages;
//! data in whatever unit the tariff counts (usually bytes). Integer counts keep every sum exact.

use std::fmt;
use std::str::FromStr;

/// Type of record: which kind of usage an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tor {
    Voice,
    Sms,
    Data,
}

impl Tor {
    pub fn as_str(self) -> &'static str {
        match self {
            Tor::Voice => "voice",
            Tor::Sms => "sms",
            Tor::Data => "data",
        }
    }

    /// Whether the usage is time (split by band) or a count of units (rated at its start).
    pub fn is_time(self) -> bool {
        matches!(self, Tor::Voice)
    }
}

impl fmt::Display for Tor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("invalid duration {0:?} (expected e.g. 90s, 1m30s, 1.5s, 250ms or a whole number)")]
    Invalid(String),
    #[error("duration {0:?} is negative")]
    Negative(String),
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

impl FromStr for Tor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "voice" | "*voice" | "call" => Ok(Tor::Voice),
            "sms" | "*sms" => Ok(Tor::Sms),
            "data" | "*data" => Ok(Tor::Data),
            other => Err(format!(
                "unknown type of record {other:?} (expected voice, sms or data)"
            )),
        }
    }
}

/// A usage amount: nanoseconds for voice, units for SMS and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usage(pub i64);

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

impl Usage {
    pub const ZERO: Usage = Usage(0);

    pub fn from_secs(s: i64) -> Usage {
        Usage(s.saturating_mul(NANOS_PER_SECOND))
    }

    pub fn raw(self) -> i64 {
        self.0
    }
}

/// How a duration-like text was written; a bare number is a raw count (the CGRateS trap: `6`
/// in a voice rate means 6 ns), which checks want to warn about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationForm {
    WithUnits,
    BareNumber,
}

/// Parses a Go-style duration (`90s`, `1m30s`, `1h`, `1.5s`, `250ms`, `10us`, `5ns`, `0`) into
/// nanoseconds, or a bare integer into a raw count. Fractions are exact down to the nanosecond;
/// anything finer is an error, never silently truncated.
pub fn parse_duration(text: &str) -> Result<(i64, DurationForm), DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    let b = s.as_bytes();
    if b[0] == b'-' {
        return Err(DurationError::Negative(s.to_string()));
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.bytes().all(|c| c.is_ascii_digit()) {
        return body
            .parse::<i64>()
            .map(|n| (n, DurationForm::BareNumber))
            .map_err(|_| DurationError::Overflow(s.to_string()));
    }
    let invalid = || DurationError::Invalid(s.to_string());
    let overflow = || DurationError::Overflow(s.to_string());
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut total: i64 = 0;
    while i < bytes.len() {
        // integer part
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_part = &body[start..i];
        let mut frac_part = "";
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let fs = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_part = &body[fs..i];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let us = i;
        while i < bytes.len() && !bytes[i].is_ascii_digit() && bytes[i] != b'.' {
            i += 1;
        }
        let unit: i64 = match &body[us..i] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3600 * NANOS_PER_SECOND,
            _ => return Err(invalid()),
        };
        let int_val: i64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| overflow())?
        };
        let mut part = int_val.checked_mul(unit).ok_or_else(overflow)?;
        if !frac_part.is_empty() {
            // value = frac_digits / 10^len × unit, must be a whole number of ns.
            let digits = frac_part.trim_end_matches('0');
            if digits.len() > 18 {
                return Err(invalid());
            }
            if !digits.is_empty() {
                let f: i128 = digits.parse().map_err(|_| invalid())?;
                let scale = 10i128.pow(digits.len() as u32);
                let num = f * i128::from(unit);
                if num % scale != 0 {
                    return Err(DurationError::Invalid(format!(
                        "{s} (finer than a nanosecond)"
                    )));
                }
                let add = i64::try_from(num / scale).map_err(|_| overflow())?;
                part = part.checked_add(add).ok_or_else(overflow)?;
            }
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
    }
    Ok((total, DurationForm::WithUnits))
}

/// Parses a voice usage: a duration with units, or a bare number of seconds (what CDRs carry).
pub fn parse_voice_usage(text: &str) -> Result<Usage, DurationError> {
    match parse_duration(text)? {
        (ns, DurationForm::WithUnits) => Ok(Usage(ns)),
        (secs, DurationForm::BareNumber) => secs
            .checked_mul(NANOS_PER_SECOND)
            .map(Usage)
            .ok_or_else(|| DurationError::Overflow(text.to_string())),
    }
}

/// A nanosecond count written the way Go prints durations (`1m30s`, `1.5s`, `0s`): the format
/// tariffs and rated CDRs use, so they read back unchanged.
#[derive(Debug, Clone, Copy)]
pub struct GoDuration(pub i64);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ns = self.0;
        if ns == 0 {
            return f.write_str("0s");
        }
        if ns < 0 {
            f.write_str("-")?;
            ns = ns.checked_neg().unwrap_or(i64::MAX);
        }
        if ns < NANOS_PER_SECOND {
            return if ns % 1_000_000 == 0 {
                write!(f, "{}ms", ns / 1_000_000)
            } else if ns % 1_000 == 0 {
                write!(f, "{}us", ns / 1_000)
            } else {
                write!(f, "{ns}ns")
            };
        }
        let h = ns / (3600 * NANOS_PER_SECOND);
        let rem = ns % (3600 * NANOS_PER_SECOND);
        let m = rem / (60 * NANOS_PER_SECOND);
        let rem = rem % (60 * NANOS_PER_SECOND);
        let s = rem / NANOS_PER_SECOND;
        let frac = rem % NANOS_PER_SECOND;
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if h > 0 || m > 0 {
            write!(f, "{m}m")?;
        }
        if frac == 0 {
            write!(f, "{s}s")
        } else {
            let mut digits = format!("{frac:09}");
            while digits.ends_with('0') {
                digits.pop();
            }
            write!(f, "{s}.{digits}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let ok = |s: &str| parse_duration(s).unwrap().0;
        assert_eq!(ok("60s"), 60 * NANOS_PER_SECOND);
        assert_eq!(ok("1m"), 60 * NANOS_PER_SECOND);
        assert_eq!(ok("1h30m"), 5400 * NANOS_PER_SECOND);
        assert_eq!(ok("0s"), 0);
        assert_eq!(ok("1.5s"), 1_500_000_000);
        assert_eq!(ok("250ms"), 250_000_000);
        assert_eq!(ok("10us"), 10_000);
        assert_eq!(ok("10µs"), 10_000);
        assert_eq!(ok("7ns"), 7);
        assert_eq!(ok(".5s"), 500_000_000);
        assert_eq!(parse_duration("6").unwrap(), (6, DurationForm::BareNumber));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_duration("1x"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::Invalid(_))
        ));
        assert!(matches!(parse_duration(""), Err(DurationError::Empty)));
        assert!(parse_duration("1.0000000001s").is_err());
        assert!(matches!(
            parse_duration("99999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn voice_usage_bare_number_is_seconds() {
        assert_eq!(parse_voice_usage("73").unwrap(), Usage::from_secs(73));
        assert_eq!(parse_voice_usage("73s").unwrap(), Usage::from_secs(73));
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(GoDuration(0).to_string(), "0s");
        assert_eq!(GoDuration(73 * NANOS_PER_SECOND).to_string(), "1m13s");
        assert_eq!(GoDuration(3600 * NANOS_PER_SECOND).to_string(), "1h0m0s");
        assert_eq!(GoDuration(1_500_000_000).to_string(), "1.5s");
        assert_eq!(GoDuration(250_000_000).to_string(), "250ms");
    }

    proptest::proptest! {
        #[test]
        fn format_parse_round_trip(ns in 0i64..i64::MAX / 2) {
            let text = GoDuration(ns).to_string();
            proptest::prop_assert_eq!(parse_duration(&text).unwrap().0, ns);
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_duration(&s);
        }
    }
}
