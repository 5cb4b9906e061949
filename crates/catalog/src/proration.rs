//! Billing periods and proration of a plan change within one.
//!
//! A subscription's periods are counted from its **anchor** date (the day it started), each one
//! computed from the anchor rather than from the previous period so that a short month never
//! shifts the ones after it:
//!
//! - [`Validity::Days`]`(n)`: period *k* is `[anchor + k·n days, anchor + (k+1)·n days)`.
//! - [`Validity::CalendarMonth`]: period *k* starts on the anchor's day of month *k* months
//!   later, clamped to that month's last day. Anchored on 31 January, the periods start on
//!   31 Jan, 28 Feb (29 in a leap year), 31 Mar, 30 Apr, 31 May… — back on the 31st whenever the
//!   month has one.
//!
//! Periods are half-open: `end` is the next period's `start`, the first day *not* included.
//!
//! [`prorate`] splits a period's fees at a plan change exactly by days: the unused part of the
//! old fee is credited and the new fee is charged for the days left, each rounded once with a
//! named [`Rounding`] (the caller passes the currency's minor units with `*middle`).

use jiff::civil::Date;
use jiff::{Span, Unit};
use rust_decimal::Decimal;
use toll_core::Rounding;

use crate::plan::Validity;

/// Why a period or proration could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProrationError {
    #[error("date {date} is before the subscription's anchor {anchor}")]
    BeforeAnchor { date: Date, anchor: Date },
    #[error("a period must end after it starts ({start} to {end})")]
    EmptyPeriod { start: Date, end: Date },
    #[error("a validity of 0 days has no periods")]
    ZeroDays,
    #[error("change date {date} is outside the period {start} to {end} (end exclusive)")]
    OutsidePeriod { date: Date, start: Date, end: Date },
    #[error("fee {0} must not be negative")]
    NegativeFee(Decimal),
    #[error("date out of the supported calendar range")]
    DateRange,
    #[error("amount out of range")]
    Overflow,
}

/// A billing period: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    start: Date,
    end: Date,
}

impl Period {
    /// A period from `start` up to (not including) `end`; `end` must be after `start`.
    pub fn new(start: Date, end: Date) -> Result<Period, ProrationError> {
        if end <= start {
            return Err(ProrationError::EmptyPeriod { start, end });
        }
        Ok(Period { start, end })
    }

    pub fn start(&self) -> Date {
        self.start
    }

    /// The first day after the period (the next period's start).
    pub fn end(&self) -> Date {
        self.end
    }

    /// Number of days in the period.
    pub fn days(&self) -> u32 {
        days_between(self.start, self.end).unwrap_or(0)
    }

    pub fn contains(&self, date: Date) -> bool {
        self.start <= date && date < self.end
    }
}

/// Whole days from `a` to `b` (b ≥ a).
fn days_between(a: Date, b: Date) -> Result<u32, ProrationError> {
    let span = a
        .until((Unit::Day, b))
        .map_err(|_| ProrationError::DateRange)?;
    u32::try_from(span.get_days()).map_err(|_| ProrationError::DateRange)
}

/// The start of period `index` (0 = the one beginning on the anchor).
fn period_start(validity: Validity, anchor: Date, index: u32) -> Result<Date, ProrationError> {
    let span = match validity {
        Validity::Days(0) => return Err(ProrationError::ZeroDays),
        Validity::Days(n) => Span::new().try_days(i64::from(n) * i64::from(index)),
        // Always from the anchor: jiff clamps the day to the target month's last day.
        Validity::CalendarMonth => Span::new().try_months(i64::from(index)),
    }
    .map_err(|_| ProrationError::DateRange)?;
    anchor
        .checked_add(span)
        .map_err(|_| ProrationError::DateRange)
}

/// Period number `index` of a subscription anchored on `anchor`.
pub fn period(validity: Validity, anchor: Date, index: u32) -> Result<Period, ProrationError> {
    let next = index.checked_add(1).ok_or(ProrationError::DateRange)?;
    Period::new(
        period_start(validity, anchor, index)?,
        period_start(validity, anchor, next)?,
    )
}

/// The number of the period that contains `date` (0 for the first).
pub fn period_index(validity: Validity, anchor: Date, date: Date) -> Result<u32, ProrationError> {
    if date < anchor {
        return Err(ProrationError::BeforeAnchor { date, anchor });
    }
    match validity {
        Validity::Days(0) => Err(ProrationError::ZeroDays),
        Validity::Days(n) => Ok(days_between(anchor, date)? / n),
        Validity::CalendarMonth => {
            let months = (i32::from(date.year()) - i32::from(anchor.year())) * 12
                + i32::from(date.month())
                - i32::from(anchor.month());
            let mut k = u32::try_from(months).map_err(|_| ProrationError::DateRange)?;
            // The clamped start of month k can be after `date` (anchor 31st, date the 30th).
            if k > 0 && period_start(validity, anchor, k)? > date {
                k -= 1;
            }
            Ok(k)
        }
    }
}

/// The period of a subscription anchored on `anchor` that contains `date`.
pub fn period_containing(
    validity: Validity,
    anchor: Date,
    date: Date,
) -> Result<Period, ProrationError> {
    period(validity, anchor, period_index(validity, anchor, date)?)
}

/// A plan change in the middle of a period, settled by days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proration {
    pub days_in_period: u32,
    /// From the change day (inclusive) to the period's end (exclusive): the days the new plan
    /// serves.
    pub days_remaining: u32,
    /// The old fee for the remaining days, given back: old × remaining / days, rounded.
    pub credit: Decimal,
    /// The new fee for the remaining days: new × remaining / days, rounded.
    pub charge: Decimal,
    /// `charge − credit` of the rounded amounts (negative: the subscriber is owed money), so the
    /// three always add up on an invoice.
    pub net: Decimal,
}

/// Settles a change from a plan costing `old_fee` per period to one costing `new_fee`, taking
/// effect on `change_date` (which must lie in `period`). Each amount is the exact fraction of
/// the fee rounded once with `rounding`.
pub fn prorate(
    old_fee: Decimal,
    new_fee: Decimal,
    period: Period,
    change_date: Date,
    rounding: Rounding,
) -> Result<Proration, ProrationError> {
    for fee in [old_fee, new_fee] {
        if fee.is_sign_negative() && !fee.is_zero() {
            return Err(ProrationError::NegativeFee(fee));
        }
    }
    if !period.contains(change_date) {
        return Err(ProrationError::OutsidePeriod {
            date: change_date,
            start: period.start,
            end: period.end,
        });
    }
    let days = days_between(period.start, period.end)?;
    let remaining = days_between(change_date, period.end)?;
    let part = |fee: Decimal| -> Result<Decimal, ProrationError> {
        let num = fee
            .checked_mul(Decimal::from(remaining))
            .ok_or(ProrationError::Overflow)?;
        rounding
            .apply_ratio(num, u128::from(days))
            .map_err(|_| ProrationError::Overflow)
    };
    let credit = part(old_fee)?;
    let charge = part(new_fee)?;
    let net = charge.checked_sub(credit).ok_or(ProrationError::Overflow)?;
    Ok(Proration {
        days_in_period: days,
        days_remaining: remaining,
        credit,
        charge,
        net,
    })
}
