#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Overage priced cumulatively over a period with the plan's pricing model.

use rust_decimal::Decimal;
use std::str::FromStr;
use toll_catalog::plan::{OverageRule, PerEventRounding, PlanDef, Unit};
use toll_catalog::pricing::Pricing;
use toll_charging::overage::{
    OverageError, TierDelta, metered, price_overage, price_period, pricing_quantity,
};
use toll_core::{Rounding, RoundingMethod, UsageKind};

const MB: i64 = 1 << 20;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn rule(usage: UsageKind, unit: Unit, per_event: PerEventRounding, pricing: &str) -> OverageRule {
    OverageRule {
        usage,
        unit,
        per_event,
        pricing: pricing.parse::<Pricing>().unwrap(),
    }
}

fn voice_per_minute() -> OverageRule {
    rule(
        UsageKind::Voice,
        Unit::Minute,
        PerEventRounding::Up,
        "model = \"per_unit\"\nunit_price = \"0.15\"",
    )
}

/// 5 per GB for the first GB of the period, then 3 per GB, by the MB.
fn data_graduated(per_event: PerEventRounding) -> OverageRule {
    rule(
        UsageKind::Data,
        Unit::Mb,
        per_event,
        "model = \"graduated\"\ntiers = [ { up_to = 1024, unit_price = \"5\", per = 1024 }, { unit_price = \"3\", per = 1024 } ]",
    )
}

#[test]
fn every_started_minute_counts() {
    let r = voice_per_minute();
    let c = price_overage(&r, 0, 61).unwrap();
    assert_eq!((c.metered, c.quantity, c.amount), (2, d("2"), d("0.30")));
    let c = price_overage(&r, 2, 60).unwrap();
    assert_eq!((c.metered, c.amount), (1, d("0.15")));
    assert_eq!(price_overage(&r, 3, 0).unwrap().amount, Decimal::ZERO);
}

#[test]
fn exact_quantities_are_fractions_of_the_unit() {
    let r = data_graduated(PerEventRounding::Exact);
    let c = price_overage(&r, 0, MB + MB / 2).unwrap();
    assert_eq!(c.metered, MB + MB / 2);
    assert_eq!(c.quantity, d("1.5"));
    assert_eq!(c.amount, d("1.5") * d("5") / d("1024"));
    assert_eq!(
        pricing_quantity(&r, 1).unwrap(),
        d("0.00000095367431640625")
    );
}

#[test]
fn the_period_tiers_apply_across_events() {
    let r = data_graduated(PerEventRounding::Up);
    // 1000 MB already used this period; 100 MB more crosses into the second tier at 1024.
    let c = price_overage(&r, 1000, 100 * MB).unwrap();
    assert_eq!(c.quantity, d("100"));
    assert_eq!(
        c.amount,
        d("24") * d("5") / d("1024") + d("76") * d("3") / d("1024")
    );
    assert_eq!(
        c.lines,
        [
            TierDelta {
                tier: 0,
                quantity: d("24"),
                amount: d("24") * d("5") / d("1024")
            },
            TierDelta {
                tier: 1,
                quantity: d("76"),
                amount: d("76") * d("3") / d("1024")
            },
        ]
    );
    assert_eq!(c.period_after, price_period(&r, 1100).unwrap().amount);
}

#[test]
fn volume_deltas_can_be_credits() {
    let r = rule(
        UsageKind::Sms,
        Unit::Message,
        PerEventRounding::Up,
        "model = \"volume\"\ntiers = [ { up_to = 100, unit_price = \"1\" }, { unit_price = \"0.5\" } ]",
    );
    let c = price_overage(&r, 100, 1).unwrap();
    assert_eq!((c.period_before, c.period_after), (d("100"), d("50.5")));
    assert_eq!(c.amount, d("-49.5"));
    assert!(c.lines.iter().any(|l| l.amount.is_sign_negative()));
}

#[test]
fn package_pricing_charges_when_the_period_crosses_a_package() {
    let fam: PlanDef = include_str!("../../../docs/plans.md")
        .split("```toml")
        .nth(2)
        .and_then(|s| s.split("```").next())
        .unwrap()
        .parse()
        .unwrap();
    let r = fam.overage_for(&UsageKind::Data).unwrap();
    let gb = 1i64 << 30;
    let a = price_overage(r, 0, gb / 2).unwrap();
    assert_eq!(a.amount, d("5"));
    let b = price_overage(r, a.metered, gb / 2).unwrap();
    assert_eq!(b.amount, Decimal::ZERO);
    let c = price_overage(r, a.metered + b.metered, 1).unwrap();
    assert_eq!(c.amount, d("5"));
}

#[test]
fn rounded_amounts_do_not_drift() {
    let r = rule(
        UsageKind::Voice,
        Unit::Second,
        PerEventRounding::Up,
        "model = \"per_unit\"\nunit_price = \"0.0025\"",
    );
    let cents = Rounding::new(RoundingMethod::Middle, 2).unwrap();
    let mut accrued = 0;
    let mut sum = Decimal::ZERO;
    for _ in 0..3 {
        let c = price_overage(&r, accrued, 1).unwrap(); // 0.0025 each
        sum += c.rounded_amount(cents);
        accrued += c.metered;
    }
    assert_eq!(sum, cents.apply(price_period(&r, accrued).unwrap().amount));
    assert_eq!(sum, d("0.01"));
}

#[test]
fn refusals() {
    let r = voice_per_minute();
    assert_eq!(
        price_overage(&r, 0, -1),
        Err(OverageError::NegativeQuantity(-1))
    );
    assert_eq!(
        price_overage(&r, -1, 1),
        Err(OverageError::NegativeAccrued(-1))
    );
    assert_eq!(price_overage(&r, i64::MAX, 60), Err(OverageError::Overflow));
    assert_eq!(metered(&r, 0).unwrap(), 0);
    let pct = rule(
        UsageKind::Voice,
        Unit::Minute,
        PerEventRounding::Up,
        "model = \"percentage\"\nrate = \"2\"",
    );
    assert_eq!(
        price_overage(&pct, 0, 60),
        Err(OverageError::PercentageModel)
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn graduated() -> impl Strategy<Value = OverageRule> {
        (
            prop::collection::vec((1i64..500, 0i64..10_000, 0i64..500), 1..5),
            0i64..10_000,
            prop_oneof![Just(PerEventRounding::Up), Just(PerEventRounding::Exact)],
            prop_oneof![Just(Unit::Minute), Just(Unit::Second)],
        )
            .prop_map(|(tiers, last_price, per_event, unit)| {
                let mut bound = 0;
                let mut text = String::from("model = \"graduated\"\ntiers = [");
                for (width, price, flat) in tiers {
                    bound += width;
                    text.push_str(&format!(
                        "{{ up_to = {bound}, unit_price = \"{}\", flat_fee = \"{}\" }},",
                        Decimal::new(price, 3),
                        Decimal::new(flat, 2)
                    ));
                }
                text.push_str(&format!(
                    "{{ unit_price = \"{}\" }} ]",
                    Decimal::new(last_price, 3)
                ));
                rule(UsageKind::Voice, unit, per_event, &text)
            })
    }

    proptest! {
        #[test]
        fn a_periods_charges_add_up_to_the_price_of_its_total(
            r in graduated(),
            events in prop::collection::vec(0i64..2_000, 0..30),
        ) {
            let mut accrued = 0i64;
            let mut total = Decimal::ZERO;
            let mut quantity = Decimal::ZERO;
            let mut tier_sum = Decimal::ZERO;
            let mut rounded = Decimal::ZERO;
            let cents = Rounding::new(RoundingMethod::Middle, 2).unwrap();
            let terminating = r.per_event == PerEventRounding::Up || r.unit == Unit::Second;
            for &e in &events {
                let c = price_overage(&r, accrued, e).unwrap();
                prop_assert!(c.amount >= Decimal::ZERO, "graduated deltas are never credits");
                if terminating {
                    prop_assert_eq!(c.amount, c.lines.iter().map(|l| l.amount).sum::<Decimal>());
                }
                total += c.amount;
                quantity += c.quantity;
                tier_sum += c.lines.iter().map(|l| l.amount).sum::<Decimal>();
                rounded += c.rounded_amount(cents);
                accrued += c.metered;
            }
            let period = price_period(&r, accrued).unwrap();
            // Rounded for the ledger, the charges always add up to the rounded period price.
            prop_assert_eq!(rounded, cents.apply(period.amount));
            if terminating {
                // Every amount is a terminating decimal: the sum is exact.
                prop_assert_eq!(total, period.amount);
                prop_assert_eq!(tier_sum, period.amount);
                prop_assert_eq!(quantity, pricing_quantity(&r, accrued).unwrap());
            } else {
                // 61/60 minute does not terminate: amounts carry 28 significant digits, and
                // adding them may round the last one.
                let eps = Decimal::new(1, 18);
                prop_assert!((total - period.amount).abs() < eps, "{} vs {}", total, period.amount);
                prop_assert!((quantity - pricing_quantity(&r, accrued).unwrap()).abs() < eps);
            }
            if r.per_event == PerEventRounding::Up {
                let unit = r.unit.base_units();
                let want: i64 = events.iter().map(|e| (e + unit - 1) / unit).sum();
                prop_assert_eq!(accrued, want);
            } else {
                prop_assert_eq!(accrued, events.iter().sum::<i64>());
            }
        }

        #[test]
        fn volume_sums_hold_even_with_credits(events in prop::collection::vec(0i64..50, 0..30)) {
            let r = rule(
                UsageKind::Sms,
                Unit::Message,
                PerEventRounding::Up,
                "model = \"volume\"\ntiers = [ { up_to = 100, unit_price = \"1\", flat_fee = \"3\" }, { up_to = 300, unit_price = \"0.5\" }, { unit_price = \"0.2\" } ]",
            );
            let mut accrued = 0;
            let mut total = Decimal::ZERO;
            for &e in &events {
                let c = price_overage(&r, accrued, e).unwrap();
                total += c.amount;
                accrued += c.metered;
            }
            prop_assert_eq!(total, price_period(&r, accrued).unwrap().amount);
        }
    }
}
