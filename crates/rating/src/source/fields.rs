//! Field parsers shared by every tariff format: the same text means the same thing whether it
//! sits in a CGRateS CSV column or a TOML value. Each returns a message fit for a diagnostic.

use std::str::FromStr;

use jiff::Timestamp;
use rust_decimal::Decimal;
use toll_core::rounding::{Rounding, RoundingMethod};
use toll_core::usage::{DurationForm, parse_duration};

use crate::def::{MaxCostStrategy, Selector};

pub type FieldResult<T> = Result<T, String>;

/// A non-empty identifier without surrounding space.
pub fn id(text: &str, what: &str) -> FieldResult<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if t.chars().any(|c| c.is_control()) {
        return Err(format!("{what} {t:?} contains control characters"));
    }
    Ok(t.to_string())
}

/// An exact decimal (`0.1`, `12`, `-0.5`); floats' exponent forms are refused.
pub fn decimal(text: &str, what: &str) -> FieldResult<Decimal> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{what} is empty"));
    }
    // Plain notation only: `1e3` or `1_000` in a price is a typo far more often than intent.
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(format!("{what} {t:?} is not a decimal number"));
    }
    Decimal::from_str(t).map_err(|_| format!("{what} {t:?} is not a decimal number"))
}

/// A decimal that must not be negative.
pub fn non_negative(text: &str, what: &str) -> FieldResult<Decimal> {
    let d = decimal(text, what)?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(format!("{what} {} must not be negative", text.trim()));
    }
    Ok(d)
}

/// A Go duration or a bare raw count.
pub fn duration(text: &str, what: &str) -> FieldResult<(i64, DurationForm)> {
    parse_duration(text).map_err(|e| format!("{what}: {e}"))
}

pub fn rounding_method(text: &str) -> FieldResult<RoundingMethod> {
    let t = text.trim();
    if t.is_empty() {
        // CGRateS leaves it empty in some samples; its default is *middle.
        return Ok(RoundingMethod::Middle);
    }
    RoundingMethod::from_str(t).map_err(|e| e.to_string())
}

pub fn rounding_decimals(text: &str) -> FieldResult<u32> {
    let t = text.trim();
    let n: u32 = t
        .parse()
        .map_err(|_| format!("rounding decimals {t:?} is not a whole number"))?;
    if n > Rounding::MAX_DECIMALS {
        return Err(format!(
            "rounding decimals {n} is more than {}",
            Rounding::MAX_DECIMALS
        ));
    }
    Ok(n)
}

pub fn max_cost_strategy(text: &str) -> FieldResult<Option<MaxCostStrategy>> {
    match text.trim() {
        "" => Ok(None),
        "*free" => Ok(Some(MaxCostStrategy::Free)),
        "*disconnect" => Ok(Some(MaxCostStrategy::Disconnect)),
        other => Err(format!(
            "max cost strategy {other:?} is not *free or *disconnect"
        )),
    }
}

/// `*any`, empty (= `*any`), or a `;`/`,` list of numbers and `a-b` ranges within `lo..=hi`.
pub fn selector(text: &str, what: &str, lo: i64, hi: i64) -> FieldResult<Selector<i64>> {
    let t = text.trim();
    if t.is_empty() || t == "*any" {
        return Ok(Selector::Any);
    }
    let mut out = Vec::new();
    for item in t.split([';', ',']) {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("{what} {t:?} has an empty item"));
        }
        let (a, b) = match item.split_once('-') {
            Some((a, b)) if !a.trim().is_empty() => (a.trim(), b.trim()),
            _ => (item, item),
        };
        let pa: i64 = a
            .parse()
            .map_err(|_| format!("{what} item {item:?} is not a number"))?;
        let pb: i64 = b
            .parse()
            .map_err(|_| format!("{what} item {item:?} is not a number"))?;
        if pa < lo || pb > hi || pa > pb {
            return Err(format!("{what} item {item:?} is outside {lo}..{hi}"));
        }
        if pb - pa > 10_000 {
            return Err(format!("{what} range {item:?} is too wide"));
        }
        out.extend(pa..=pb);
    }
    out.sort_unstable();
    out.dedup();
    Ok(Selector::List(out))
}

pub fn years(text: &str) -> FieldResult<Selector<i32>> {
    Ok(match selector(text, "years", 1900, 9999)? {
        Selector::Any => Selector::Any,
        Selector::List(v) => Selector::List(v.into_iter().map(|y| y as i32).collect()),
    })
}

pub fn months(text: &str) -> FieldResult<Selector<u8>> {
    small(selector(text, "months", 1, 12)?)
}

pub fn month_days(text: &str) -> FieldResult<Selector<u8>> {
    small(selector(text, "month days", 1, 31)?)
}

/// Week days 0–7 where both 0 and 7 mean Sunday (CGRateS and cron convention).
pub fn week_days(text: &str) -> FieldResult<Selector<u8>> {
    Ok(match small(selector(text, "week days", 0, 7)?)? {
        Selector::Any => Selector::Any,
        Selector::List(v) => {
            let mut v: Vec<u8> = v.into_iter().map(|d| d % 7).collect();
            v.sort_unstable();
            v.dedup();
            Selector::List(v)
        }
    })
}

fn small(s: Selector<i64>) -> FieldResult<Selector<u8>> {
    Ok(match s {
        Selector::Any => Selector::Any,
        Selector::List(v) => Selector::List(v.into_iter().map(|x| x as u8).collect()),
    })
}

/// Start time of a band: `HH:MM:SS`, `HH:MM`, `*asap` or empty (midnight). A `start;end` pair
/// keeps the start only: CGRateS ignores a timing's end inside rating plans.
pub fn time_of_day(text: &str) -> FieldResult<i64> {
    let t = text.trim();
    let start = t.split(';').next().unwrap_or("").trim();
    if start.is_empty() || start == "*asap" || start == "*any" {
        return Ok(0);
    }
    let parts: Vec<&str> = start.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!("time {start:?} is not HH:MM:SS"));
    }
    let num = |s: &str, max: i64, what: &str| -> FieldResult<i64> {
        let v: i64 = s
            .parse()
            .map_err(|_| format!("time {start:?}: {what} {s:?} is not a number"))?;
        if !(0..=max).contains(&v) {
            return Err(format!("time {start:?}: {what} {v} is out of range"));
        }
        Ok(v)
    };
    let h = num(parts[0], 23, "hour")?;
    let m = num(parts[1], 59, "minute")?;
    let s = if parts.len() == 3 {
        num(parts[2], 59, "second")?
    } else {
        0
    };
    Ok(((h * 60 + m) * 60 + s) * 1_000_000_000)
}

/// A profile's activation: RFC 3339 with an offset (`2024-01-01T00:00:00Z`, `...+08:00`), or
/// empty for "always active".
pub fn activation(text: &str) -> FieldResult<Option<Timestamp>> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    Timestamp::from_str(t)
        .map(Some)
        .map_err(|e| format!("activation time {t:?} is not an RFC 3339 timestamp with offset: {e}"))
}

/// `;`-separated subjects; empty means none.
pub fn list(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!(
            week_days("1;2;3;4;5").unwrap(),
            Selector::List(vec![1, 2, 3, 4, 5])
        );
        assert_eq!(week_days("6;7").unwrap(), Selector::List(vec![0, 6]));
        assert_eq!(
            week_days("1-5").unwrap(),
            Selector::List(vec![1, 2, 3, 4, 5])
        );
        assert_eq!(months("*any").unwrap(), Selector::Any);
        assert_eq!(months("").unwrap(), Selector::Any);
        assert!(months("13").is_err());
        assert!(month_days("0").is_err());
        assert!(week_days("mon").is_err());
        assert!(week_days("1;;2").is_err());
    }

    #[test]
    fn times() {
        assert_eq!(time_of_day("18:00:00").unwrap(), 18 * 3600 * 1_000_000_000);
        assert_eq!(
            time_of_day("08:30").unwrap(),
            (8 * 3600 + 1800) * 1_000_000_000
        );
        assert_eq!(time_of_day("*asap").unwrap(), 0);
        assert_eq!(
            time_of_day("08:00:00;18:00:00").unwrap(),
            8 * 3600 * 1_000_000_000
        );
        assert!(time_of_day("24:00:00").is_err());
        assert!(time_of_day("8").is_err());
    }

    #[test]
    fn values() {
        assert!(decimal("0.1", "rate").is_ok());
        assert!(decimal("1e3", "rate").is_err());
        assert!(non_negative("-1", "rate").is_err());
        assert_eq!(rounding_method("").unwrap(), RoundingMethod::Middle);
        assert!(rounding_decimals("13").is_err());
        assert!(max_cost_strategy("*maybe").is_err());
        assert_eq!(activation("").unwrap(), None);
        assert!(activation("2012-01-01T00:00:00Z").unwrap().is_some());
        assert!(activation("2012-01-01").is_err());
        assert_eq!(
            list("rif;danb; "),
            vec!["rif".to_string(), "danb".to_string()]
        );
    }
}
