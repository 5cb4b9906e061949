//! Field values: text decoding, timestamps, exact scaled numbers. Shared by every reader so that
//! "what a timestamp or a duration means" is decided once.

use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{Timestamp, fmt::strtime};

use crate::error::{ErrorKind, FieldError};
use crate::split::RawRecord;

/// Strict UTF-8: for fields whose value is an identity, a number, a time or a quantity. A
/// replacement character there would silently change what is billed.
pub(crate) fn strict<'a>(field: &str, bytes: &'a [u8]) -> Result<&'a str, FieldError> {
    std::str::from_utf8(bytes).map_err(|_| FieldError::new(field, ErrorKind::NotUtf8))
}

/// Lossy UTF-8 for descriptive fields (caller names, dialplan data): invalid bytes become U+FFFD
/// and the field is listed in `lossy`, so the loss stays visible.
pub(crate) fn lossy(field: &str, bytes: &[u8], lossy: &mut Vec<String>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            if !lossy.iter().any(|f| f == field) {
                lossy.push(field.to_string());
            }
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

/// Units of an epoch timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl EpochUnit {
    fn nanos(self) -> i64 {
        match self {
            EpochUnit::Seconds => 1_000_000_000,
            EpochUnit::Millis => 1_000_000,
            EpochUnit::Micros => 1_000,
            EpochUnit::Nanos => 1,
        }
    }
}

/// How a timestamp is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeFormat {
    /// `YYYY-MM-DD HH:MM:SS` local time (Asterisk, FreeSWITCH `*_stamp`), parsed without the
    /// general strftime machinery because it is on every record.
    Iso,
    /// A strftime format (jiff's `strtime`). If it has `%z`/`%Z`/`%:z` the text carries its own
    /// offset; otherwise it is civil time in the reader's zone.
    Strftime(String),
    /// RFC 3339 / ISO 8601 with an offset (`2024-01-27T15:07:24+08:00`, `…Z`).
    Rfc3339,
    /// A number since 1970-01-01T00:00:00Z, optionally with a decimal fraction
    /// (`1706368044.123456`).
    Epoch(EpochUnit),
    /// CGRateS's `ParseTimeDetectLayout` subset: RFC 3339, Go's `time.String()`
    /// (`2013-11-07 08:42:25 +0000 UTC`), `YYYY-MM-DD HH:MM:SS` in the zone, or epoch seconds.
    Detect,
}

/// Outcome of reading a timestamp field.
pub(crate) enum Instant {
    /// The field says the event never happened: empty, epoch `0`, `0000-00-00 00:00:00`, or Go's
    /// zero time `0001-01-01 00:00:00`.
    Never,
    At(Timestamp, Offset),
}

pub(crate) fn parse_time(
    text: &str,
    format: &TimeFormat,
    zone: &TimeZone,
) -> Result<Instant, String> {
    let t = text.trim();
    if t.is_empty() || t.starts_with("0000-00-00") || t.starts_with("0001-01-01") {
        return Ok(Instant::Never);
    }
    match format {
        TimeFormat::Iso => iso_local(t, zone),
        TimeFormat::Strftime(f) => {
            let tm = strtime::parse(f.as_bytes(), t).map_err(|e| e.to_string())?;
            if let Some(offset) = tm.offset() {
                let ts = tm.to_timestamp().map_err(|e| e.to_string())?;
                return Ok(Instant::At(ts, offset));
            }
            let dt = tm.to_datetime().map_err(|e| e.to_string())?;
            in_zone(dt, zone)
        }
        TimeFormat::Rfc3339 => rfc3339(t),
        TimeFormat::Epoch(unit) => epoch(t, *unit, zone),
        TimeFormat::Detect => {
            if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return epoch(t, EpochUnit::Seconds, zone);
            }
            if let Ok(i) = rfc3339(t) {
                return Ok(i);
            }
            // Go's time.String(): "2006-01-02 15:04:05.999999999 -0700 MST".
            if let Some((head, _abbrev)) = t.rsplit_once(' ')
                && let Ok(tm) = strtime::parse("%Y-%m-%d %H:%M:%S%.f %z", head)
                && let Some(offset) = tm.offset()
            {
                let ts = tm.to_timestamp().map_err(|e| e.to_string())?;
                return Ok(Instant::At(ts, offset));
            }
            iso_local(t, zone).map_err(|_| {
                "expected RFC 3339, Go time (2006-01-02 15:04:05 -0700 MST), \
                 YYYY-MM-DD HH:MM:SS or epoch seconds"
                    .to_string()
            })
        }
    }
}

fn rfc3339(t: &str) -> Result<Instant, String> {
    let ts: Timestamp = t.parse().map_err(|e: jiff::Error| e.to_string())?;
    // jiff's Timestamp parser drops the offset; read it back from the text for the rating clock.
    let offset = offset_suffix(t).unwrap_or(Offset::UTC);
    Ok(Instant::At(ts, offset))
}

/// The `Z` / `±HH:MM` / `±HHMM` at the end of an RFC 3339 text.
fn offset_suffix(t: &str) -> Option<Offset> {
    if t.ends_with(['Z', 'z']) {
        return Some(Offset::UTC);
    }
    let b = t.as_bytes();
    let (sign_pos, hh, mm) = if b.len() >= 6 && b[b.len() - 3] == b':' {
        (b.len() - 6, &t[b.len() - 5..b.len() - 3], &t[b.len() - 2..])
    } else if b.len() >= 5 {
        (b.len() - 5, &t[b.len() - 4..b.len() - 2], &t[b.len() - 2..])
    } else {
        return None;
    };
    let sign = match b[sign_pos] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h: i32 = hh.parse().ok()?;
    let m: i32 = mm.parse().ok()?;
    Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()
}

fn digits(s: &[u8]) -> Option<i32> {
    let mut v: i32 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i32::from(b - b'0');
    }
    Some(v)
}

fn iso_local(t: &str, zone: &TimeZone) -> Result<Instant, String> {
    let b = t.as_bytes();
    let shape = b.len() == 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':';
    let err = || "expected YYYY-MM-DD HH:MM:SS".to_string();
    if !shape {
        return Err(err());
    }
    let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) = (
        digits(&b[0..4]),
        digits(&b[5..7]),
        digits(&b[8..10]),
        digits(&b[11..13]),
        digits(&b[14..16]),
        digits(&b[17..19]),
    ) else {
        return Err(err());
    };
    let dt = DateTime::new(y as i16, mo as i8, d as i8, h as i8, mi as i8, s as i8, 0)
        .map_err(|e| e.to_string())?;
    in_zone(dt, zone)
}

/// Civil time in a zone → instant. A time in a DST gap cannot have been written by a correctly
/// set clock and is an error; a time in a fold (the repeated hour) is taken as the earlier
/// instant, which is what `jiff`'s and most systems' "compatible" rule does.
fn in_zone(dt: DateTime, zone: &TimeZone) -> Result<Instant, String> {
    let amb = zone.to_ambiguous_timestamp(dt);
    let offset = match amb.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset,
        AmbiguousOffset::Fold { before, .. } => before,
        AmbiguousOffset::Gap { .. } => {
            return Err(format!("{dt} does not exist in the time zone (DST gap)"));
        }
    };
    let ts = offset.to_timestamp(dt).map_err(|e| e.to_string())?;
    Ok(Instant::At(ts, offset))
}

/// An epoch is an absolute instant; its offset for the rating clock is the zone's at that
/// instant (what the switch's wall clock showed).
fn epoch(t: &str, unit: EpochUnit, zone: &TimeZone) -> Result<Instant, String> {
    let ns = scaled(t, unit.nanos())?;
    if ns == 0 {
        return Ok(Instant::Never);
    }
    let ts = Timestamp::from_nanosecond(i128::from(ns)).map_err(|e| e.to_string())?;
    Ok(Instant::At(ts, zone.to_offset(ts)))
}

/// An unsigned decimal number times `scale`, exactly: `"12.5"` × 1e9 = 12 500 000 000. A value
/// finer than one unit of the result (`"0.0000000001"` seconds in ns) is an error, never rounded.
pub(crate) fn scaled(text: &str, scale: i64) -> Result<i64, String> {
    let t = text.trim();
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err("expected a non-negative decimal number".to_string());
    }
    let too_big = || "number too large".to_string();
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| too_big())?
    };
    let mut v = whole.checked_mul(scale).ok_or_else(too_big)?;
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        if frac.len() > 18 {
            return Err("more decimals than the unit can hold".to_string());
        }
        let f: i128 = frac.parse().map_err(|_| too_big())?;
        let den = 10i128.pow(frac.len() as u32);
        let num = f * i128::from(scale);
        if num % den != 0 {
            return Err("finer than the smallest unit".to_string());
        }
        let add = i64::try_from(num / den).map_err(|_| too_big())?;
        v = v.checked_add(add).ok_or_else(too_big)?;
    }
    Ok(v)
}

/// A whole non-negative integer.
pub(crate) fn whole(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole non-negative number".to_string());
    }
    t.parse().map_err(|_| "number too large".to_string())
}

/// Percent-decoding (FreeSWITCH `encode-values`). `+` is kept: FreeSWITCH encodes a space as
/// `%20`, and a `+` in front of an E.164 number must survive.
pub(crate) fn url_decode(text: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(text).collect()
}

/// Named access to the columns of a split record, for the presets: every error names the
/// column the way the source's documentation does.
pub(crate) struct Row<'a> {
    pub rec: &'a RawRecord,
    pub names: &'a [&'a str],
}

impl<'a> Row<'a> {
    pub fn name(&self, i: usize) -> &'a str {
        self.names.get(i).copied().unwrap_or("?")
    }

    pub fn bytes(&self, i: usize) -> &'a [u8] {
        self.rec.get(i).unwrap_or(&[])
    }

    pub fn strict(&self, i: usize) -> Result<&'a str, FieldError> {
        strict(self.name(i), self.bytes(i))
    }

    /// Strict and non-empty.
    pub fn required(&self, i: usize) -> Result<&'a str, FieldError> {
        let s = self.strict(i)?;
        if s.trim().is_empty() {
            return Err(FieldError::new(self.name(i), ErrorKind::Missing));
        }
        Ok(s)
    }

    /// Strict; empty is `None`.
    pub fn opt(&self, i: usize) -> Result<Option<String>, FieldError> {
        let s = self.strict(i)?;
        Ok(if s.is_empty() {
            None
        } else {
            Some(s.to_string())
        })
    }

    pub fn lossy(&self, i: usize, lossy_fields: &mut Vec<String>) -> String {
        lossy(self.name(i), self.bytes(i), lossy_fields)
    }

    pub fn time(
        &self,
        i: usize,
        format: &TimeFormat,
        zone: &TimeZone,
    ) -> Result<Option<(Timestamp, Offset)>, FieldError> {
        let s = self.strict(i)?;
        match parse_time(s, format, zone) {
            Ok(Instant::At(ts, off)) => Ok(Some((ts, off))),
            Ok(Instant::Never) => Ok(None),
            Err(reason) => Err(FieldError::new(self.name(i), ErrorKind::invalid(s, reason))),
        }
    }

    pub fn whole(&self, i: usize) -> Result<i64, FieldError> {
        let s = self.required(i)?;
        whole(s).map_err(|r| FieldError::new(self.name(i), ErrorKind::invalid(s, r)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn at(text: &str, f: &TimeFormat, zone: &str) -> (String, i32) {
        let tz = TimeZone::get(zone).unwrap();
        match parse_time(text, f, &tz).unwrap() {
            Instant::At(ts, off) => (ts.to_string(), off.seconds()),
            Instant::Never => ("never".into(), 0),
        }
    }

    #[test]
    fn formats() {
        assert_eq!(
            at("2024-01-28 07:50:32", &TimeFormat::Iso, "Asia/Shanghai"),
            ("2024-01-27T23:50:32Z".into(), 8 * 3600)
        );
        assert_eq!(
            at(
                "1706368044.123456",
                &TimeFormat::Epoch(EpochUnit::Seconds),
                "UTC"
            ),
            ("2024-01-27T15:07:24.123456Z".into(), 0)
        );
        assert_eq!(
            at(
                "1375609854385581",
                &TimeFormat::Epoch(EpochUnit::Micros),
                "UTC"
            )
            .0,
            "2013-08-04T09:50:54.385581Z"
        );
        assert_eq!(
            at(
                "2013-11-07 08:42:25 +0000 UTC",
                &TimeFormat::Detect,
                "Asia/Shanghai"
            ),
            ("2013-11-07T08:42:25Z".into(), 0)
        );
        assert_eq!(
            at("2013-11-07T08:42:25+02:00", &TimeFormat::Detect, "UTC"),
            ("2013-11-07T06:42:25Z".into(), 7200)
        );
        assert_eq!(
            at(
                "2020/2/10 22:41",
                &TimeFormat::Strftime("%Y/%-m/%-d %H:%M".into()),
                "UTC"
            )
            .0,
            "2020-02-10T22:41:00Z"
        );
        assert_eq!(
            at("0", &TimeFormat::Epoch(EpochUnit::Seconds), "UTC").0,
            "never"
        );
        assert_eq!(
            at("0001-01-01T00:00:00Z", &TimeFormat::Detect, "UTC").0,
            "never"
        );
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        assert!(parse_time("2024-03-31 02:30:00", &TimeFormat::Iso, &tz).is_err());
        // The repeated hour: the earlier instant (+02:00).
        assert_eq!(
            at("2024-10-27 02:30:00", &TimeFormat::Iso, "Europe/Berlin"),
            ("2024-10-27T00:30:00Z".into(), 7200)
        );
    }

    #[test]
    fn scaled_is_exact() {
        assert_eq!(scaled("12.5", 1_000_000_000).unwrap(), 12_500_000_000);
        assert_eq!(scaled("3920", 1_000_000).unwrap(), 3_920_000_000);
        assert_eq!(scaled(".25", 1000).unwrap(), 250);
        assert!(scaled("0.0001", 1000).is_err());
        assert!(scaled("-1", 1).is_err());
        assert!(scaled("1e3", 1).is_err());
        assert!(scaled("99999999999999999999", 1).is_err());
    }
}
