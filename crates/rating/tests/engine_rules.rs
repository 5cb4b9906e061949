#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Rules of `rating-semantics.md` beyond the reference cases, each on a small CGRateS folder.

use std::str::FromStr;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::Offset;
use rust_decimal::Decimal;
use toll_core::usage::Tor;
use toll_rating::carriers::NumberRanges;
use toll_rating::diag::Diagnostics;
use toll_rating::source::{self, SourceFile};
use toll_rating::{Event, Limit, RateError, Tariff, max_usage, rate};

const S: i64 = 1_000_000_000;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn tariff(files: &[(&str, &str)]) -> (Tariff, Diagnostics) {
    let files: Vec<SourceFile> = files
        .iter()
        .map(|(n, b)| SourceFile {
            name: n.to_string(),
            bytes: b.as_bytes().to_vec(),
        })
        .collect();
    let mut diags = Diagnostics::default();
    let def = source::parse(&files, &mut diags);
    assert!(!diags.has_errors(), "{diags}");
    match Tariff::compile(&def, Arc::new(NumberRanges::builtin_cn())) {
        Ok((t, w)) => (t, w),
        Err(e) => panic!("{e}"),
    }
}

fn ev<'a>(subject: &'a str, dest: &'a str, start: &str, usage: i64) -> Event<'a> {
    Event {
        tenant: "t",
        category: "call",
        subject,
        destination: dest,
        start: Timestamp::from_str(start).unwrap(),
        offset: Offset::UTC,
        usage,
        tor: Tor::Voice,
        route_carrier: None,
    }
}

const TIMINGS: &str = "ALWAYS,*any,*any,*any,*any,00:00:00\nWEEKEND,*any,*any,*any,6;7,00:00:00\n";

#[test]
fn a_later_activation_inside_the_call_splits_it() {
    let (t, _) = tariff(&[
        ("Destinations.csv", "D,49\n"),
        ("Rates.csv", "CHEAP,0,1,1s,1s,0s\nDEAR,0,2,1s,1s,0s\n"),
        (
            "DestinationRates.csv",
            "DRC,D,CHEAP,*middle,4,0,\nDRD,D,DEAR,*middle,4,0,\n",
        ),
        ("Timings.csv", TIMINGS),
        ("RatingPlans.csv", "PC,DRC,ALWAYS,10\nPD,DRD,ALWAYS,10\n"),
        (
            "RatingProfiles.csv",
            "t,call,*any,2020-01-01T00:00:00Z,PC,\nt,call,alice,2026-01-05T10:00:30Z,PD,\n",
        ),
    ]);
    // Starts under *any (alice has no profile yet); alice's own activation splits at 30 s.
    let r = rate(&t, &ev("alice", "4930", "2026-01-05T10:00:00Z", 60 * S)).unwrap();
    assert_eq!(r.cost, dec("90"));
    assert_eq!(r.pieces.len(), 2);
    assert_eq!(t.plan_id(r.pieces[0].plan), "PC");
    assert_eq!(t.plan_id(r.pieces[1].plan), "PD");
    assert_eq!(r.pieces[1].offset, 30 * S);
    // Bob never gets his own profile: one plan throughout.
    assert_eq!(
        rate(&t, &ev("bob", "4930", "2026-01-05T10:00:00Z", 60 * S))
            .unwrap()
            .cost,
        dec("60")
    );
    // Before any activation: rejected with a reason.
    let e = rate(&t, &ev("bob", "4930", "2019-01-05T10:00:00Z", 60 * S)).unwrap_err();
    assert!(matches!(e, RateError::NoProfile { .. }), "{e}");
}

#[test]
fn fallback_subjects_are_tried_in_order_without_loops() {
    let (t, _) = tariff(&[
        ("Destinations.csv", "DE,49\nFR,33\n"),
        ("Rates.csv", "R1,0,1,1s,1s,0s\nR3,0,3,1s,1s,0s\n"),
        (
            "DestinationRates.csv",
            "DDE,DE,R1,*middle,4,0,\nDFR,FR,R3,*middle,4,0,\n",
        ),
        ("Timings.csv", TIMINGS),
        ("RatingPlans.csv", "PDE,DDE,ALWAYS,10\nPFR,DFR,ALWAYS,10\n"),
        (
            "RatingProfiles.csv",
            "t,call,x,,PDE,ghost;y\nt,call,y,,PDE,x;z\nt,call,z,,PFR,x\n",
        ),
    ]);
    // x's plan has no FR; ghost has no profile (skipped); y has no FR and loops back to x; z has.
    let r = rate(&t, &ev("x", "331234", "2026-01-05T10:00:00Z", 10 * S)).unwrap();
    assert_eq!(r.cost, dec("30"));
    assert_eq!(t.plan_id(r.plan), "PFR");
    // Nobody rates 44: unauthorized, never silently zero.
    let e = rate(&t, &ev("x", "441234", "2026-01-05T10:00:00Z", 10 * S)).unwrap_err();
    assert!(
        matches!(e, RateError::UnauthorizedDestination { .. }),
        "{e}"
    );
}

#[test]
fn caps_floors_and_disconnect() {
    let (t, _) = tariff(&[
        ("Destinations.csv", "A,1\nB,2\nC,3\n"),
        ("Rates.csv", "R,0.5,1,60s,1s,0s\n"),
        (
            "DestinationRates.csv",
            "DA,A,R,*middle,2,2,*free,1.5\nDB,B,R,*middle,2,2,*disconnect,\nDC,C,R,*middle,2,0,,\n",
        ),
        ("Timings.csv", TIMINGS),
        (
            "RatingPlans.csv",
            "P,DA,ALWAYS,10\nP,DB,ALWAYS,10\nP,DC,ALWAYS,10\n",
        ),
        ("RatingProfiles.csv", "t,call,*any,,P,\n"),
    ]);
    let at = "2026-01-05T10:00:00Z";
    // min cost 1.5 raises a 6 s call (0.5 + 0.1 = 0.6).
    let r = rate(&t, &ev("u", "1", at, 6 * S)).unwrap();
    assert_eq!((r.cost, r.floored), (dec("1.5"), true));
    // *free caps at 2: a 10 min call (0.5 + 10) costs 2.
    let r = rate(&t, &ev("u", "1", at, 600 * S)).unwrap();
    assert_eq!((r.cost, r.capped), (dec("2"), true));
    // *disconnect never caps a call that happened...
    assert_eq!(
        rate(&t, &ev("u", "2", at, 600 * S)).unwrap().cost,
        dec("10.5")
    );
    // ...but limits authorisation: 0.5 + s/60 ≤ 2 → 90 s, although the balance allows more.
    let m = max_usage(&t, &ev("u", "2", at, 600 * S), dec("100")).unwrap();
    assert_eq!((m.usage, m.limited_by), (90 * S, Limit::MaxCost));
    // Without a cap, the balance decides: 0.5 + s/60 ≤ 1 → 30 s.
    let m = max_usage(&t, &ev("u", "3", at, 600 * S), dec("1")).unwrap();
    assert_eq!(
        (m.usage, m.cost, m.limited_by),
        (30 * S, dec("1"), Limit::Balance)
    );
    // Not even the connect fee: nothing.
    let m = max_usage(&t, &ev("u", "3", at, 600 * S), dec("0.4")).unwrap();
    assert_eq!(m.usage, 0);
    // Zero usage costs nothing, not even the connect fee or the floor.
    let r = rate(&t, &ev("u", "1", at, 0)).unwrap();
    assert_eq!((r.cost, r.connect_fee), (Decimal::ZERO, Decimal::ZERO));
}

#[test]
fn sms_rate_groups_apply_on_cumulative_units() {
    let (t, _) = tariff(&[
        ("Destinations.csv", "M,13\n"),
        ("Rates.csv", "SMS,0,0.1,1,1,0\nSMS,0,0.05,1,1,10\n"),
        ("DestinationRates.csv", "DS,M,SMS,*middle,4,0,\n"),
        ("Timings.csv", TIMINGS),
        ("RatingPlans.csv", "P,DS,ALWAYS,10\n"),
        ("RatingProfiles.csv", "t,sms,*any,,P,\n"),
    ]);
    let mut e = ev("u", "13800138000", "2026-01-05T23:59:59Z", 15);
    e.category = "sms";
    e.tor = Tor::Sms;
    let r = rate(&t, &e).unwrap();
    assert_eq!(r.cost, dec("1.25"));
    assert_eq!(
        r.pieces.len(),
        2,
        "split only at the group start, not at midnight"
    );
}

#[test]
fn equal_prefixes_weight_decides_then_file_order_and_binding_needs_an_active_timing() {
    let (t, _) = tariff(&[
        ("Destinations.csv", "FIRST,49\nSECOND,49\nWKND,4930\n"),
        (
            "Rates.csv",
            "R1,0,1,1s,1s,0s\nR2,0,2,1s,1s,0s\nR5,0,5,1s,1s,0s\n",
        ),
        (
            "DestinationRates.csv",
            "D1,FIRST,R1,*middle,4,0,\nD2,SECOND,R2,*middle,4,0,\nD5,WKND,R5,*middle,4,0,\n",
        ),
        ("Timings.csv", TIMINGS),
        (
            "RatingPlans.csv",
            "TIE,D1,ALWAYS,10\nTIE,D2,ALWAYS,10\nTIE,D5,WEEKEND,10\nHEAVY,D1,ALWAYS,10\nHEAVY,D2,ALWAYS,20\n",
        ),
        (
            "RatingProfiles.csv",
            "t,call,tie,,TIE,\nt,call,heavy,,HEAVY,\n",
        ),
    ]);
    let monday = "2026-01-05T10:00:00Z";
    let saturday = "2026-01-10T10:00:00Z";
    // Exact tie: the first destination in the file.
    let r = rate(&t, &ev("tie", "4940", monday, 10 * S)).unwrap();
    assert_eq!(
        (t.destination_id(r.destination), r.cost),
        ("FIRST", dec("10"))
    );
    // Higher weight wins.
    let r = rate(&t, &ev("heavy", "4940", monday, 10 * S)).unwrap();
    assert_eq!(t.destination_id(r.destination), "SECOND");
    // The longer prefix is only bound at weekends: on Monday the shorter one rates it.
    let r = rate(&t, &ev("tie", "493012", monday, 10 * S)).unwrap();
    assert_eq!(
        (t.destination_id(r.destination), r.prefix_len),
        ("FIRST", 2)
    );
    let r = rate(&t, &ev("tie", "493012", saturday, 10 * S)).unwrap();
    assert_eq!(
        (t.destination_id(r.destination), r.prefix_len, r.cost),
        ("WKND", 4, dec("50"))
    );
}

#[test]
fn rounding_with_most_decimals_decides_and_is_applied_once() {
    let (t, _) = tariff(&[
        ("Destinations.csv", "D,49\n"),
        ("Rates.csv", "A,0,0.1,60s,1s,0s\nB,0,0.1,60s,1s,0s\n"),
        (
            "DestinationRates.csv",
            "DA,D,A,*up,1,0,\nDB,D,B,*down,3,0,\n",
        ),
        (
            "Timings.csv",
            "DAY,*any,*any,*any,*any,00:00:00\nEVE,*any,*any,*any,*any,18:00:00\n",
        ),
        ("RatingPlans.csv", "P,DA,DAY,10\nP,DB,EVE,10\n"),
        ("RatingProfiles.csv", "t,call,*any,,P,\n"),
    ]);
    // 17:59:50 + 20 s: 10 s under DA and 10 s under DB; 20 × 0.1/60 = 0.0333…, *down 3 → 0.033.
    let r = rate(&t, &ev("u", "49", "2026-01-05T17:59:50Z", 20 * S)).unwrap();
    assert_eq!(r.cost, dec("0.033"));
    assert_eq!(r.rounding.decimals, 3);
    // 180 s at 0.1/min in 1 s increments: exactly 0.3 (CGRateS reports 0.3001).
    let r = rate(&t, &ev("u", "49", "2026-01-05T10:00:00Z", 180 * S)).unwrap();
    assert_eq!(r.cost, dec("0.3"));
}

#[test]
fn bare_numbers_in_voice_rates_are_warned_about() {
    let (_, warnings) = tariff(&[
        ("Destinations.csv", "D,49\n"),
        ("Rates.csv", "R,0,1,60,6,0\n"),
        ("DestinationRates.csv", "DR,D,R,*middle,4,0,\n"),
        ("Timings.csv", TIMINGS),
        ("RatingPlans.csv", "P,DR,ALWAYS,10\n"),
        ("RatingProfiles.csv", "t,call,*any,,P,\n"),
    ]);
    let w: Vec<String> = warnings.warnings().map(ToString::to_string).collect();
    assert!(
        w.iter()
            .any(|m| m.starts_with("Rates.csv:1:4: warning") && m.contains("60 ns")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("Rates.csv:1:5: warning") && m.contains("6 ns")),
        "{w:?}"
    );
}

#[test]
fn unknown_references_are_all_reported() {
    let files: Vec<SourceFile> = [
        ("Destinations.csv", "D,49\n"),
        ("Rates.csv", "R,0,1,60s,0s,0s\n"),
        (
            "DestinationRates.csv",
            "DR,NOPE,R,*middle,4,0,\nDR2,D,MISSING,*middle,4,0,\n",
        ),
        ("Timings.csv", TIMINGS),
        ("RatingPlans.csv", "P,DR2,NEVER,10\nP,GHOST,ALWAYS,10\n"),
        ("RatingProfiles.csv", "t,call,*any,,NOPLAN,\n"),
    ]
    .iter()
    .map(|(n, b)| SourceFile {
        name: n.to_string(),
        bytes: b.as_bytes().to_vec(),
    })
    .collect();
    let mut diags = Diagnostics::default();
    let def = source::parse(&files, &mut diags);
    let errs = Tariff::compile(&def, Arc::new(NumberRanges::default())).unwrap_err();
    let text = errs.to_string();
    for want in [
        "Rates.csv:1:5: error: rate increment must be greater than zero",
        "DestinationRates.csv:1:2: error: unknown destination \"NOPE\"",
        "DestinationRates.csv:2:3: error: unknown rate \"MISSING\"",
        "RatingPlans.csv:1:3: error: unknown timing \"NEVER\"",
        "RatingPlans.csv:2:2: error: unknown destination rate \"GHOST\"",
        "RatingProfiles.csv:1:5: error: unknown rating plan \"NOPLAN\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn a_cap_with_more_decimals_than_the_rounding_is_never_exceeded() {
    let (t, _) = tariff(&[
        ("Destinations.csv", "A,1\n"),
        ("Rates.csv", "R,0,1,60s,1s,0s\n"),
        ("DestinationRates.csv", "DA,A,R,*up,2,1.2345,*free\n"),
        ("Timings.csv", TIMINGS),
        ("RatingPlans.csv", "P,DA,ALWAYS,10\n"),
        ("RatingProfiles.csv", "t,call,*any,,P,\n"),
    ]);
    let r = rate(&t, &ev("u", "1", "2026-01-05T10:00:00Z", 600 * S)).unwrap();
    assert_eq!((r.cost, r.capped), (dec("1.23"), true));
}

#[test]
fn amounts_that_cannot_be_held_exactly_are_load_errors() {
    let files: Vec<SourceFile> = [
        ("Destinations.csv", "D,49\n"),
        (
            "Rates.csv",
            "HUGE,0,79228162514264337593543950335,60s,1s,0s\nTINY,0,0.000000000000000000001,60s,1s,0s\nFINE,0,0.00000000000000000001,60s,1s,0s\n",
        ),
        ("DestinationRates.csv", "DR,D,HUGE,*middle,4,0,\n"),
        ("Timings.csv", TIMINGS),
        ("RatingPlans.csv", "P,DR,ALWAYS,10\n"),
        ("RatingProfiles.csv", "t,call,*any,,P,\n"),
    ]
    .iter()
    .map(|(n, b)| SourceFile { name: n.to_string(), bytes: b.as_bytes().to_vec() })
    .collect();
    let mut diags = Diagnostics::default();
    let def = source::parse(&files, &mut diags);
    let text = Tariff::compile(&def, Arc::new(NumberRanges::default()))
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("Rates.csv:2:3: error") && text.contains("more than 20 decimals"),
        "{text}"
    );
    assert!(
        text.contains("Rates.csv:1:3: error") && text.contains("too large"),
        "{text}"
    );
}

#[test]
fn an_unrelated_toml_beside_cgrates_files_does_not_change_the_format() {
    use toll_rating::source::{Format, detect};
    let f = |n: &str| SourceFile {
        name: n.to_string(),
        bytes: Vec::new(),
    };
    assert_eq!(detect(&[f("Rates.csv"), f("deploy.toml")]), Format::Cgrates);
    assert_eq!(detect(&[f("Rates.csv"), f("tariff.toml")]), Format::Toll);
    assert_eq!(detect(&[f("my-tariff.toml")]), Format::Toll);
    assert_eq!(detect(&[f("README.md")]), Format::Cgrates);
}

/// Bands are matched from a precomputed day table for 2000–2099 and from the civil date
/// outside it: calls that cross either edge of that window are priced the same way on both
/// sides (weekday, month day and year timings, weights deciding).
#[test]
fn bands_match_the_same_inside_and_outside_the_precomputed_years() {
    let (t, d) = tariff(&[
        ("Destinations.csv", "D,1\n"),
        (
            "Rates.csv",
            "R1,0,1,60s,60s,0s\nR2,0,2,60s,60s,0s\nR3,0,3,60s,60s,0s\nR4,0,4,60s,60s,0s\n",
        ),
        (
            "DestinationRates.csv",
            "D1,D,R1,*middle,2,0,,\nD2,D,R2,*middle,2,0,,\nD3,D,R3,*middle,2,0,,\nD4,D,R4,*middle,2,0,,\n",
        ),
        (
            "Timings.csv",
            "ALWAYS,*any,*any,*any,*any,00:00:00\nWEEKEND,*any,*any,*any,6;7,00:00:00\n\
             NEWYEAR,*any,1,1,*any,00:00:00\nY2100,2100,1,1,*any,00:00:00\n",
        ),
        (
            "RatingPlans.csv",
            "P,D1,ALWAYS,10\nP,D2,WEEKEND,20\nP,D3,NEWYEAR,30\nP,D4,Y2100,40\n",
        ),
        ("RatingProfiles.csv", "t,call,*any,,P,\n"),
    ]);
    assert!(!d.has_errors(), "{d}");
    let cost = |start: &str, minutes: i64| rate(&t, &ev("u", "100", start, minutes * 60 * S));
    // Friday 1999-12-31 (before the table) into Saturday, New Year 2000 (in it): 1 + 3.
    assert_eq!(cost("1999-12-31T23:59:00Z", 2).unwrap().cost, dec("4"));
    // Thursday 2099-12-31 (in the table) into Friday 2100-01-01 (after it): 1 + 4.
    let r = cost("2099-12-31T23:59:00Z", 2).unwrap();
    assert_eq!((r.cost, r.pieces.len()), (dec("5"), 2));
    // Saturday 2100-01-02, after the table: weekend.
    assert_eq!(cost("2100-01-02T12:00:00Z", 1).unwrap().cost, dec("2"));
    // Saturday 2050-01-01, in the table: New Year outranks the weekend; not Y2100.
    assert_eq!(cost("2050-01-01T12:00:00Z", 1).unwrap().cost, dec("3"));
    // Wednesday 1969-12-31, before the epoch: any day.
    assert_eq!(cost("1969-12-31T12:00:00Z", 1).unwrap().cost, dec("1"));
}
