#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Billing periods from an anchor and day-exact proration of plan changes.

use jiff::civil::{Date, date};
use rust_decimal::Decimal;
use std::str::FromStr;
use toll_catalog::plan::Validity;
use toll_catalog::proration::{
    Period, ProrationError, period, period_containing, period_index, prorate,
};
use toll_core::{Currency, Rounding, RoundingMethod};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn cents() -> Rounding {
    Rounding::new(RoundingMethod::Middle, Currency::CNY.minor_units()).unwrap()
}

fn month(start: Date, end: Date) -> Period {
    Period::new(start, end).unwrap()
}

#[test]
fn upgrade_on_day_16_of_a_30_day_month() {
    let p = month(date(2026, 11, 1), date(2026, 12, 1));
    let r = prorate(d("100"), d("200"), p, date(2026, 11, 16), cents()).unwrap();
    assert_eq!(r.days_in_period, 30);
    assert_eq!(r.days_remaining, 15);
    assert_eq!(r.credit, d("50.00"));
    assert_eq!(r.charge, d("100.00"));
    assert_eq!(r.net, d("50.00"));
}

#[test]
fn a_31_day_month() {
    let p = month(date(2026, 12, 1), date(2027, 1, 1));
    let r = prorate(d("100"), d("200"), p, date(2026, 12, 16), cents()).unwrap();
    assert_eq!((r.days_in_period, r.days_remaining), (31, 16));
    assert_eq!(r.credit, d("51.61")); // 100 × 16/31 = 51.6129…
    assert_eq!(r.charge, d("103.23")); // 200 × 16/31 = 103.2258…
    assert_eq!(r.net, d("51.62"));
    assert_eq!(r.net, r.charge - r.credit);
}

#[test]
fn february_of_a_leap_year() {
    let p = period(Validity::CalendarMonth, date(2028, 1, 1), 1).unwrap();
    assert_eq!((p.start(), p.end()), (date(2028, 2, 1), date(2028, 3, 1)));
    assert_eq!(p.days(), 29);
    let r = prorate(d("29"), d("58"), p, date(2028, 2, 29), cents()).unwrap();
    assert_eq!(r.days_remaining, 1);
    assert_eq!(
        (r.credit, r.charge, r.net),
        (d("1.00"), d("2.00"), d("1.00"))
    );
    // Not a leap year: 28 days.
    assert_eq!(
        period(Validity::CalendarMonth, date(2027, 1, 1), 1)
            .unwrap()
            .days(),
        28
    );
}

#[test]
fn a_change_on_the_first_day_credits_the_whole_fee() {
    let p = month(date(2026, 11, 1), date(2026, 12, 1));
    let r = prorate(d("128"), d("58"), p, date(2026, 11, 1), cents()).unwrap();
    assert_eq!(r.days_remaining, 30);
    assert_eq!(
        (r.credit, r.charge, r.net),
        (d("128.00"), d("58.00"), d("-70.00"))
    );
}

#[test]
fn a_change_outside_the_period_is_an_error() {
    let p = month(date(2026, 11, 1), date(2026, 12, 1));
    for day in [date(2026, 10, 31), date(2026, 12, 1)] {
        let e = prorate(d("1"), d("2"), p, day, cents()).unwrap_err();
        assert!(matches!(e, ProrationError::OutsidePeriod { .. }), "{e}");
        assert!(e.to_string().contains("outside"), "{e}");
    }
    assert_eq!(
        prorate(d("-1"), d("2"), p, date(2026, 11, 2), cents()),
        Err(ProrationError::NegativeFee(d("-1")))
    );
    assert!(Period::new(date(2026, 11, 1), date(2026, 11, 1)).is_err());
}

#[test]
fn the_rounding_is_the_one_passed() {
    let p = month(date(2026, 12, 1), date(2027, 1, 1));
    let down = Rounding::new(RoundingMethod::Down, 2).unwrap();
    let r = prorate(d("100"), d("200"), p, date(2026, 12, 16), down).unwrap();
    assert_eq!((r.credit, r.charge), (d("51.61"), d("103.22")));
    let yen = Rounding::new(
        RoundingMethod::Middle,
        Currency::from_str("JPY").unwrap().minor_units(),
    )
    .unwrap();
    let r = prorate(d("1000"), d("2000"), p, date(2026, 12, 16), yen).unwrap();
    assert_eq!((r.credit, r.charge), (d("516"), d("1032")));
}

#[test]
fn calendar_months_from_the_31st_clamp_without_drift() {
    let anchor = date(2028, 1, 31);
    let starts: Vec<Date> = (0..6)
        .map(|k| period(Validity::CalendarMonth, anchor, k).unwrap().start())
        .collect();
    assert_eq!(
        starts,
        [
            date(2028, 1, 31),
            date(2028, 2, 29),
            date(2028, 3, 31),
            date(2028, 4, 30),
            date(2028, 5, 31),
            date(2028, 6, 30)
        ]
    );
    let p = period_containing(Validity::CalendarMonth, anchor, date(2028, 3, 30)).unwrap();
    assert_eq!((p.start(), p.end()), (date(2028, 2, 29), date(2028, 3, 31)));
    let p = period_containing(Validity::CalendarMonth, anchor, date(2028, 3, 31)).unwrap();
    assert_eq!((p.start(), p.end()), (date(2028, 3, 31), date(2028, 4, 30)));
}

#[test]
fn day_periods() {
    let anchor = date(2026, 1, 10);
    let v = Validity::Days(30);
    assert_eq!(period_index(v, anchor, date(2026, 1, 10)).unwrap(), 0);
    assert_eq!(period_index(v, anchor, date(2026, 2, 8)).unwrap(), 0);
    assert_eq!(period_index(v, anchor, date(2026, 2, 9)).unwrap(), 1);
    let p = period_containing(v, anchor, date(2026, 2, 9)).unwrap();
    assert_eq!(
        (p.start(), p.end(), p.days()),
        (date(2026, 2, 9), date(2026, 3, 11), 30)
    );
    assert!(matches!(
        period_index(v, anchor, date(2026, 1, 9)),
        Err(ProrationError::BeforeAnchor { .. })
    ));
    assert_eq!(
        period(Validity::Days(0), anchor, 0),
        Err(ProrationError::ZeroDays)
    );
    assert_eq!(
        period(Validity::Days(3660), anchor, u32::MAX),
        Err(ProrationError::DateRange)
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn any_date() -> impl Strategy<Value = Date> {
        (1990i16..2100, 1i8..=12, 1i8..=31)
            .prop_map(|(y, m, d)| Date::new(y, m, d.min(date(y, m, 1).days_in_month())).unwrap())
    }

    fn any_validity() -> impl Strategy<Value = Validity> {
        prop_oneof![
            Just(Validity::CalendarMonth),
            (1u32..=400).prop_map(Validity::Days)
        ]
    }

    proptest! {
        #[test]
        fn the_containing_period_contains_and_periods_tile(v in any_validity(), anchor in any_date(), ahead in 0i64..5000) {
            let Ok(day) = anchor.checked_add(jiff::Span::new().days(ahead)) else { return Ok(()) };
            let k = period_index(v, anchor, day).unwrap();
            let p = period(v, anchor, k).unwrap();
            prop_assert!(p.contains(day));
            prop_assert_eq!(period_containing(v, anchor, day).unwrap(), p);
            let next = period(v, anchor, k + 1).unwrap();
            prop_assert_eq!(p.end(), next.start());
            if let Validity::CalendarMonth = v {
                prop_assert!((28..=31).contains(&p.days()));
            }
        }

        #[test]
        fn credit_and_charge_are_bounded_by_the_fees(old in 0i64..1_000_000, new in 0i64..1_000_000, v in any_validity(), anchor in any_date(), ahead in 0i64..400) {
            let day = anchor.checked_add(jiff::Span::new().days(ahead)).unwrap();
            let p = period_containing(v, anchor, day).unwrap();
            let (old, new) = (Decimal::new(old, 2), Decimal::new(new, 2));
            let r = prorate(old, new, p, day, cents()).unwrap();
            prop_assert!(r.credit >= Decimal::ZERO && r.credit <= old);
            prop_assert!(r.charge >= Decimal::ZERO && r.charge <= new);
            prop_assert_eq!(r.net, r.charge - r.credit);
            prop_assert!(r.days_remaining >= 1 && r.days_remaining <= r.days_in_period);
            if day == p.start() {
                prop_assert_eq!(r.credit, old);
            }
        }
    }
}
