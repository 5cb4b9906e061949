//! Civil-calendar arithmetic on plain integers, for the rating hot path.
//!
//! Band resolution needs the local date, weekday and time of day of an instant many millions of
//! times per second; doing it on `i64` nanoseconds with a fixed UTC offset avoids any allocation
//! or table look-up. Time zones with transitions are handled by the caller, which splits at each
//! transition (see `toll_rating`).

pub const NANOS_PER_DAY: i64 = 86_400 * 1_000_000_000;

/// A civil date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    pub year: i32,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
    /// 0 = Sunday .. 6 = Saturday (Go's and CGRateS's numbering).
    pub weekday: u8,
}

/// Days since 1970-01-01 → civil date (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> CivilDate {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if m <= 2 { y + 1 } else { y };
    // 1970-01-01 was a Thursday (4).
    let weekday = (days + 4).rem_euclid(7);
    CivilDate {
        year: i32::try_from(year).unwrap_or(i32::MAX),
        month: m as u8,
        day: d as u8,
        weekday: weekday as u8,
    }
}

/// Civil date → days since 1970-01-01.
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Splits local nanoseconds since the epoch into (days since epoch, nanoseconds into the day).
pub fn split_local(local_ns: i64) -> (i64, i64) {
    (
        local_ns.div_euclid(NANOS_PER_DAY),
        local_ns.rem_euclid(NANOS_PER_DAY),
    )
}

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("timestamp {0:?} is not RFC 3339 (expected e.g. 2026-11-22T10:00:00+08:00)")]
    Syntax(String),
    #[error("timestamp {0:?} has no UTC offset (add Z or +08:00)")]
    NoOffset(String),
    #[error("timestamp {0:?} is not a valid date or time")]
    Range(String),
}

/// A parsed RFC 3339 timestamp: nanoseconds since the epoch and the offset it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedTimestamp {
    pub epoch_ns: i64,
    pub offset_seconds: i32,
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (a space may stand for `T`; `±HHMM` and
/// `±HH` are accepted) without allocating: CDR files carry millions of these.
pub fn parse_rfc3339(text: &str) -> Result<ParsedTimestamp, TimestampError> {
    let s = text.trim().as_bytes();
    let syntax = || TimestampError::Syntax(text.trim().to_string());
    let range = || TimestampError::Range(text.trim().to_string());
    if s.len() < 19 {
        return Err(syntax());
    }
    let num = |a: usize, b: usize| -> Result<i64, TimestampError> {
        let mut v = 0i64;
        for &c in &s[a..b] {
            if !c.is_ascii_digit() {
                return Err(syntax());
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Ok(v)
    };
    if s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return Err(syntax());
    }
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month as u8)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(range());
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if i < s.len() && (s[i] == b'.' || s[i] == b',') {
        i += 1;
        let fs = i;
        while i < s.len() && s[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[fs..i];
        if digits.is_empty() || digits.len() > 9 {
            return Err(syntax());
        }
        for (k, &c) in digits.iter().enumerate() {
            frac_ns += i64::from(c - b'0') * 10i64.pow(8 - k as u32);
        }
    }
    let offset_seconds: i64 = match s.get(i) {
        None => return Err(TimestampError::NoOffset(text.trim().to_string())),
        Some(b'Z' | b'z') if i + 1 == s.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &s[i + 1..];
            let (h, m) = match rest.len() {
                2 => (num(i + 1, i + 3)?, 0),
                4 => (num(i + 1, i + 3)?, num(i + 3, i + 5)?),
                5 if rest[2] == b':' => (num(i + 1, i + 3)?, num(i + 4, i + 6)?),
                _ => return Err(syntax()),
            };
            if h > 23 || m > 59 {
                return Err(range());
            }
            let v = h * 3600 + m * 60;
            if sign == b'-' { -v } else { v }
        }
        _ => return Err(syntax()),
    };
    let days = days_from_civil(year as i32, month as u8, day as u8);
    // A leap second (:60) is read as the first instant of the next minute.
    let local_s = days * 86_400 + hour * 3600 + minute * 60 + second;
    let epoch_s = local_s - offset_seconds;
    let epoch_ns = epoch_s
        .checked_mul(1_000_000_000)
        .and_then(|v| v.checked_add(frac_ns))
        .ok_or_else(range)?;
    Ok(ParsedTimestamp {
        epoch_ns,
        offset_seconds: offset_seconds as i32,
    })
}

pub fn days_in_month(year: i64, month: u8) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        let p = parse_rfc3339("2012-02-02T17:30:00Z").unwrap();
        assert_eq!(p.epoch_ns, 1_328_203_800 * 1_000_000_000);
        assert_eq!(p.offset_seconds, 0);
        let q = parse_rfc3339("2012-02-03 01:30:00.5+08:00").unwrap();
        assert_eq!(q.epoch_ns, p.epoch_ns + 500_000_000);
        assert_eq!(q.offset_seconds, 8 * 3600);
        assert_eq!(
            parse_rfc3339("2012-02-02T12:30:00-0500").unwrap().epoch_ns,
            p.epoch_ns
        );
        assert!(matches!(
            parse_rfc3339("2012-02-02T17:30:00"),
            Err(TimestampError::NoOffset(_))
        ));
        assert!(matches!(
            parse_rfc3339("2012-02-30T17:30:00Z"),
            Err(TimestampError::Range(_))
        ));
        assert!(matches!(
            parse_rfc3339("2012/02/02T17:30:00Z"),
            Err(TimestampError::Syntax(_))
        ));
        assert!(parse_rfc3339("2012-02-02T17:30:00Zjunk").is_err());
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_agrees_with_jiff(secs in -2_000_000_000i64..4_000_000_000, off_min in -840i32..840) {
            let ts = jiff::Timestamp::from_second(secs).unwrap();
            let off = jiff::tz::Offset::from_seconds(off_min * 60).unwrap();
            let text = ts.to_zoned(jiff::tz::TimeZone::fixed(off)).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string();
            let p = parse_rfc3339(&text).unwrap();
            proptest::prop_assert_eq!(p.epoch_ns, secs * 1_000_000_000);
            proptest::prop_assert_eq!(p.offset_seconds, off_min * 60);
        }

        #[test]
        fn rfc3339_never_panics(s in "\\PC{0,40}") {
            let _ = parse_rfc3339(&s);
        }
    }

    #[test]
    fn known_dates() {
        let d = civil_from_days(0);
        assert_eq!((d.year, d.month, d.day, d.weekday), (1970, 1, 1, 4));
        let days = days_from_civil(2012, 2, 2);
        let d = civil_from_days(days);
        assert_eq!((d.year, d.month, d.day, d.weekday), (2012, 2, 2, 4)); // Thursday
        let d = civil_from_days(days_from_civil(2024, 2, 29));
        assert_eq!((d.month, d.day), (2, 29));
        let d = civil_from_days(days_from_civil(1969, 12, 31));
        assert_eq!((d.year, d.weekday), (1969, 3));
    }

    proptest::proptest! {
        #[test]
        fn round_trip(days in -1_000_000i64..1_000_000) {
            let d = civil_from_days(days);
            proptest::prop_assert_eq!(days_from_civil(d.year, d.month, d.day), days);
        }
    }
}
