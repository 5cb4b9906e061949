#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Shared helpers: writing a reference case's tariff as a CGRateS CSV folder.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

pub fn cases() -> Vec<Value> {
    let text = include_str!("data/rating-cases.json");
    serde_json::from_str::<Vec<Value>>(text).expect("rating-cases.json parses")
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A duration column: `_s` keys are seconds (written `60s`), `_units` and bare keys are raw counts.
fn dur(row: &Value, base: &str) -> String {
    if let Some(v) = row.get(format!("{base}_s")) {
        format!("{}s", s(v))
    } else if let Some(v) = row.get(format!("{base}_units")) {
        s(v)
    } else {
        s(&row[base])
    }
}

/// Writes the case's tariff as the six classic CGRateS CSV files.
pub fn write_cgrates(tariff: &Value, dir: &Path) {
    let mut dest = String::from("#Id,Prefix\n");
    for (id, prefixes) in tariff["destinations"].as_object().unwrap() {
        for p in prefixes.as_array().unwrap() {
            writeln!(dest, "{id},{}", s(p)).unwrap();
        }
    }
    let mut rates = String::from("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n");
    for (id, rows) in tariff["rates"].as_object().unwrap() {
        for r in rows.as_array().unwrap() {
            writeln!(
                rates,
                "{id},{},{},{},{},{}",
                s(&r["connect_fee"]),
                s(&r["rate"]),
                dur(r, "rate_unit"),
                dur(r, "rate_increment"),
                dur(r, "group_interval_start")
            )
            .unwrap();
        }
    }
    let mut drs = String::from(
        "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n",
    );
    for (id, rows) in tariff["destination_rates"].as_object().unwrap() {
        for r in rows.as_array().unwrap() {
            writeln!(
                drs,
                "{id},{},{},{},{},{},{}",
                s(&r["destination"]),
                s(&r["rates"]),
                s(&r["rounding_method"]),
                s(&r["rounding_decimals"]),
                s(&r["max_cost"]),
                s(&r["max_cost_strategy"])
            )
            .unwrap();
        }
    }
    let mut timings = String::from("#Tag,Years,Months,MonthDays,WeekDays,Time\n");
    for (id, t) in tariff["timings"].as_object().unwrap() {
        writeln!(
            timings,
            "{id},{},{},{},{},{}",
            s(&t["years"]),
            s(&t["months"]),
            s(&t["month_days"]),
            s(&t["week_days"]),
            s(&t["time"])
        )
        .unwrap();
    }
    let mut plans = String::from("#Id,DestinationRatesId,TimingTag,Weight\n");
    for (id, rows) in tariff["rating_plans"].as_object().unwrap() {
        for r in rows.as_array().unwrap() {
            writeln!(
                plans,
                "{id},{},{},{}",
                s(&r["destination_rates"]),
                s(&r["timing"]),
                s(&r["weight"])
            )
            .unwrap();
        }
    }
    let mut profiles =
        String::from("#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n");
    for p in tariff["rating_profiles"].as_array().unwrap() {
        writeln!(
            profiles,
            "{},{},{},{},{},{}",
            s(&p["tenant"]),
            s(&p["category"]),
            s(&p["subject"]),
            s(&p["activation"]),
            s(&p["rating_plan"]),
            s(&p["fallback_subjects"])
        )
        .unwrap();
    }
    for (name, body) in [
        ("Destinations.csv", dest),
        ("Rates.csv", rates),
        ("DestinationRates.csv", drs),
        ("Timings.csv", timings),
        ("RatingPlans.csv", plans),
        ("RatingProfiles.csv", profiles),
    ] {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

/// The event of a case as CLI flags / text fields: (tor, usage text).
pub fn usage_of(call: &Value) -> (&'static str, String) {
    match call.get("usage_units") {
        Some(u) if !u.is_null() => ("sms", s(u)),
        _ => ("voice", format!("{}s", s(&call["duration_seconds"]))),
    }
}

pub fn text(v: &Value) -> String {
    s(v)
}

/// A max-usage case's available balance: the sum of its account's monetary balances.
pub fn balance(case: &Value) -> rust_decimal::Decimal {
    case["account"]["monetary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| rust_decimal::Decimal::from_str_exact(&s(&b["value"])).unwrap())
        .sum()
}
