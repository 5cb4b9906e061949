//! Bill cycles: which days an invoice covers, in the account's calendar.
//!
//! A period is named by the month it starts in (`2026-10`), so `toll bill run --period 2026-10`
//! means the same thing for every account: the calendar month October 2026 for accounts on the
//! calendar cycle, and for an account billed on its anniversary (say the 15th) the period from
//! 15 October to 15 November. Anniversary periods come from the account's anchor date exactly as
//! subscription periods do (`toll_catalog::proration`): a 31st anchor gives 30 November, then 31
//! December, never drifting.
//!
//! A period is a span of civil dates; [`BillPeriod::bounds`] turns it into instants in a time
//! zone (midnight to midnight there, whatever DST does on either day), which is how the store
//! selects the usage that belongs to it.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use toll_catalog::plan::Validity;
use toll_catalog::proration::{self, Period};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CycleError {
    #[error("{0:?} is not a period: write the month it starts in as YYYY-MM, e.g. 2026-10")]
    BadLabel(String),
    #[error("period {label} starts before the account's first period (anchor {anchor})")]
    BeforeAnchor { label: PeriodLabel, anchor: Date },
    #[error("{0:?} is not a bill cycle: calendar_month or anniversary")]
    BadCycle(String),
    #[error("date out of the supported calendar range")]
    DateRange,
}

/// A month, as bill runs are asked for: `2026-10`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeriodLabel {
    year: i16,
    month: i8,
}

impl PeriodLabel {
    pub fn new(year: i16, month: i8) -> Result<PeriodLabel, CycleError> {
        // Within jiff's civil range and with a month that exists.
        if !(1..=12).contains(&month) || !(1..=9998).contains(&year) {
            return Err(CycleError::BadLabel(format!("{year}-{month}")));
        }
        Ok(PeriodLabel { year, month })
    }

    /// The label of the month `date` is in.
    pub fn of(date: Date) -> PeriodLabel {
        PeriodLabel {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> Date {
        // Valid by construction: year 1..=9998, month 1..=12, day 1.
        Date::constant(self.year, self.month, 1)
    }

    /// The month after this one.
    pub fn next(self) -> Result<PeriodLabel, CycleError> {
        if self.month == 12 {
            PeriodLabel::new(self.year + 1, 1)
        } else {
            PeriodLabel::new(self.year, self.month + 1)
        }
    }

    /// The month before this one.
    pub fn previous(self) -> Result<PeriodLabel, CycleError> {
        if self.month == 1 {
            PeriodLabel::new(self.year - 1, 12)
        } else {
            PeriodLabel::new(self.year, self.month - 1)
        }
    }

    /// Months from `self` to `later` (negative when `later` is earlier).
    fn months_until(self, later: PeriodLabel) -> i32 {
        (i32::from(later.year) - i32::from(self.year)) * 12 + i32::from(later.month)
            - i32::from(self.month)
    }
}

impl FromStr for PeriodLabel {
    type Err = CycleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CycleError::BadLabel(s.to_string());
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let year: i16 = y.parse().map_err(|_| bad())?;
        let month: i8 = m.parse().map_err(|_| bad())?;
        PeriodLabel::new(year, month).map_err(|_| bad())
    }
}

impl fmt::Display for PeriodLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl serde::Serialize for PeriodLabel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// How an account's bill periods are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillCycle {
    /// The 1st of each month to the 1st of the next (the default).
    CalendarMonth,
    /// Monthly from the anchor date (usually the day the account opened), clamped to short
    /// months and coming back to the anchor's day when the month has it.
    Anniversary { anchor: Date },
}

impl BillCycle {
    /// The cycle from its stored name and, for anniversaries, the anchor.
    pub fn parse(name: &str, anchor: Date) -> Result<BillCycle, CycleError> {
        match name {
            "calendar_month" => Ok(BillCycle::CalendarMonth),
            "anniversary" => Ok(BillCycle::Anniversary { anchor }),
            other => Err(CycleError::BadCycle(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BillCycle::CalendarMonth => "calendar_month",
            BillCycle::Anniversary { .. } => "anniversary",
        }
    }

    /// The period that starts in month `label`.
    pub fn period(self, label: PeriodLabel) -> Result<BillPeriod, CycleError> {
        let period = match self {
            BillCycle::CalendarMonth => {
                let start = label.first_day();
                let end = label.next()?.first_day();
                Period::new(start, end).map_err(|_| CycleError::DateRange)?
            }
            BillCycle::Anniversary { anchor } => {
                let k = PeriodLabel::of(anchor).months_until(label);
                let k = u32::try_from(k).map_err(|_| CycleError::BeforeAnchor { label, anchor })?;
                proration::period(Validity::CalendarMonth, anchor, k)
                    .map_err(|_| CycleError::DateRange)?
            }
        };
        Ok(BillPeriod { label, period })
    }

    /// The period that contains `date`.
    pub fn period_containing(self, date: Date) -> Result<BillPeriod, CycleError> {
        let label = PeriodLabel::of(date);
        let here = self.period(label)?;
        if here.period.contains(date) {
            return Ok(here);
        }
        // An anniversary period that started last month (anchor the 15th, date the 3rd).
        self.period(label.previous()?)
    }
}

/// One bill period of one account: `start` inclusive, `end` exclusive, named by `label`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BillPeriod {
    pub label: PeriodLabel,
    pub period: Period,
}

impl BillPeriod {
    pub fn start(&self) -> Date {
        self.period.start()
    }

    /// The first day after the period.
    pub fn end(&self) -> Date {
        self.period.end()
    }

    /// The last day of the period (what an invoice prints as "to").
    pub fn last_day(&self) -> Result<Date, CycleError> {
        self.end()
            .checked_sub(Span::new().days(1))
            .map_err(|_| CycleError::DateRange)
    }

    /// The period as instants: from the first moment of `start` to the first moment of `end`
    /// in `tz` (a day that begins in a DST gap begins at the first instant that exists).
    pub fn bounds(&self, tz: &TimeZone) -> Result<(Timestamp, Timestamp), CycleError> {
        let at = |d: Date| {
            d.to_zoned(tz.clone())
                .and_then(|z| z.start_of_day())
                .map(|z| z.timestamp())
                .map_err(|_| CycleError::DateRange)
        };
        Ok((at(self.start())?, at(self.end())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn label(s: &str) -> PeriodLabel {
        s.parse().unwrap()
    }

    #[test]
    fn labels_parse_strictly() {
        assert_eq!(label("2026-10").to_string(), "2026-10");
        for bad in ["2026-13", "2026-1", "26-10", "2026/10", "", "2026-00"] {
            assert!(bad.parse::<PeriodLabel>().is_err(), "{bad}");
        }
        assert_eq!(label("2026-12").next().unwrap(), label("2027-01"));
        assert_eq!(label("2026-01").previous().unwrap(), label("2025-12"));
    }

    #[test]
    fn calendar_months_run_first_to_first() {
        let p = BillCycle::CalendarMonth.period(label("2028-02")).unwrap();
        assert_eq!((p.start(), p.end()), (date(2028, 2, 1), date(2028, 3, 1)));
        assert_eq!(p.period.days(), 29);
        assert_eq!(p.last_day().unwrap(), date(2028, 2, 29));
        let d = BillCycle::CalendarMonth.period(label("2026-12")).unwrap();
        assert_eq!(d.end(), date(2027, 1, 1));
    }

    #[test]
    fn anniversaries_follow_the_anchor_and_do_not_drift() {
        let c = BillCycle::Anniversary {
            anchor: date(2026, 1, 31),
        };
        let starts: Vec<Date> = ["2026-01", "2026-02", "2026-03", "2026-04"]
            .iter()
            .map(|l| c.period(label(l)).unwrap().start())
            .collect();
        assert_eq!(
            starts,
            [
                date(2026, 1, 31),
                date(2026, 2, 28),
                date(2026, 3, 31),
                date(2026, 4, 30)
            ]
        );
        assert!(matches!(
            c.period(label("2025-12")),
            Err(CycleError::BeforeAnchor { .. })
        ));
        let c15 = BillCycle::Anniversary {
            anchor: date(2026, 3, 15),
        };
        let p = c15.period_containing(date(2026, 11, 3)).unwrap();
        assert_eq!(
            (p.start(), p.end()),
            (date(2026, 10, 15), date(2026, 11, 15))
        );
        assert_eq!(p.label, label("2026-10"));
        let q = c15.period_containing(date(2026, 11, 15)).unwrap();
        assert_eq!(q.label, label("2026-11"));
    }

    #[test]
    fn bounds_are_local_midnights_across_dst() {
        // Europe/Berlin leaves summer time on 25 October 2026: October has 31 days and one
        // extra hour.
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let p = BillCycle::CalendarMonth.period(label("2026-10")).unwrap();
        let (a, b) = p.bounds(&tz).unwrap();
        assert_eq!(a.to_string(), "2026-09-30T22:00:00Z");
        assert_eq!(b.to_string(), "2026-10-31T23:00:00Z");
        assert_eq!(b.as_second() - a.as_second(), (31 * 24 + 1) * 3600);
        // Shanghai: no DST, eight hours ahead of UTC.
        let sh = TimeZone::get("Asia/Shanghai").unwrap();
        let (a, b) = p.bounds(&sh).unwrap();
        assert_eq!(a.to_string(), "2026-09-30T16:00:00Z");
        assert_eq!(b.to_string(), "2026-10-31T16:00:00Z");
        // Havana springs forward at midnight: 8 March 2026 begins at 01:00 local.
        let cu = TimeZone::get("America/Havana").unwrap();
        let m = BillCycle::Anniversary {
            anchor: date(2026, 1, 8),
        }
        .period(label("2026-03"))
        .unwrap();
        let (a, _) = m.bounds(&cu).unwrap();
        assert_eq!(a.to_string(), "2026-03-08T05:00:00Z");
    }
}
