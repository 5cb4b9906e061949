//! The classic CGRateS CSV folder importer.
// Test code: helpers unwrap, as `#[test]` functions may.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use toll_core::rounding::RoundingMethod;
use toll_core::usage::DurationForm;
use toll_rating::def::{MaxCostStrategy, Numbering, Selector, ZoneDef};
use toll_rating::diag::{Diagnostic, Diagnostics, Severity};
use toll_rating::source::{SourceFile, cgrates};

const NS: i64 = 1_000_000_000;

fn files(list: &[(&str, &[u8])]) -> Vec<SourceFile> {
    list.iter()
        .map(|(n, b)| SourceFile {
            name: n.to_string(),
            bytes: b.to_vec(),
        })
        .collect()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// The single error at `file:line:column`, with a message containing `needle`.
fn expect_error<'d>(
    diags: &'d Diagnostics,
    file: &str,
    line: u32,
    column: u32,
    needle: &str,
) -> &'d Diagnostic {
    let found: Vec<&Diagnostic> = diags
        .errors()
        .filter(|d| &*d.pos.file == file && d.pos.line == line && d.pos.column == column)
        .collect();
    assert!(
        found.iter().any(|d| d.message.contains(needle)),
        "no error at {file}:{line}:{column} containing {needle:?}; all diagnostics:\n{diags}"
    );
    found[0]
}

const DESTINATIONS: &str = "\
#Id,Prefix
DST_MOBILE,13
DST_MOBILE,15;18
DST_FIXED,010
DST_MOBILE,13
";
const RATES: &str = "\
Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart
RT_MOBILE,0.10,0.15,60s,60s,0s
RT_MOBILE,0,0.15,60s,6s,60s
RT_SMS,0,0.1,1,1,0
";
const DESTINATION_RATES: &str = "\
#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy,MinCost
DR_MOBILE,DST_MOBILE,RT_MOBILE,*up,2,50,*free,0.10
DR_ANY,*any,RT_SMS,*middle,4,,
";
const TIMINGS: &str = "\
#Tag,Years,Months,MonthDays,WeekDays,Time
# a comment line in the middle of nowhere
PEAK,*any,*any,*any,1;2;3;4;5,08:00:00
WEEKEND,2026,*any,*any,6;7,00:00:00
";
const RATING_PLANS: &str = "\
#Id,DestinationRatesId,TimingTag,Weight
RP_STD,DR_MOBILE,PEAK,10
RP_STD,DR_ANY,*any,0.5
";
const RATING_PROFILES: &str = "\
#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject
cgrates.org,call,*any,2024-01-01T00:00:00Z,RP_STD,
cgrates.org,call,1001,,RP_STD,rif;danb,china_mobile
";

fn valid_folder() -> Vec<SourceFile> {
    files(&[
        ("Destinations.csv", DESTINATIONS.as_bytes()),
        ("Rates.csv", RATES.as_bytes()),
        ("DestinationRates.csv", DESTINATION_RATES.as_bytes()),
        ("Timings.csv", TIMINGS.as_bytes()),
        ("RatingPlans.csv", RATING_PLANS.as_bytes()),
        ("RatingProfiles.csv", RATING_PROFILES.as_bytes()),
        ("NumberRanges.csv", b"this,is,not,a,tariff\n\xff\xfe"),
        ("README", b"ignored"),
    ])
}

#[test]
fn valid_folder_parses() {
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&valid_folder(), &mut diags);
    assert!(!diags.has_errors(), "{diags}");
    assert_eq!(def.name, "cgrates");
    assert_eq!(def.currency, None);
    assert_eq!(def.zone, ZoneDef::EventOffset);
    assert_eq!(def.numbering, Numbering::AsDialled);
    assert!(def.calendars.is_empty());

    // Destinations: `15;18` is split; the repeated (DST_MOBILE, 13) is a warning and dropped.
    let dests: Vec<(&str, &str)> = def
        .destinations
        .iter()
        .map(|d| (&*d.id.value, &*d.prefix.value))
        .collect();
    assert_eq!(
        dests,
        [
            ("DST_MOBILE", "13"),
            ("DST_MOBILE", "15"),
            ("DST_MOBILE", "18"),
            ("DST_FIXED", "010")
        ]
    );
    let d = &def.destinations[2];
    assert_eq!(
        (&*d.prefix.pos.file, d.prefix.pos.line, d.prefix.pos.column),
        ("Destinations.csv", 3, 2)
    );
    assert_eq!((d.id.pos.line, d.id.pos.column), (3, 1));
    let warnings: Vec<_> = diags.warnings().collect();
    assert_eq!(warnings.len(), 1, "{diags}");
    assert!(warnings[0].message.contains("duplicate prefix"));
    assert_eq!((warnings[0].pos.line, warnings[0].pos.column), (5, 2));

    // Rates: decimals, durations with their form, positions.
    assert_eq!(def.rates.len(), 3);
    let r = &def.rates[1];
    assert_eq!(r.id.value, "RT_MOBILE");
    assert_eq!(r.connect_fee, Decimal::ZERO);
    assert_eq!(r.rate, dec("0.15"));
    assert_eq!(r.unit.value, (60 * NS, DurationForm::WithUnits));
    assert_eq!(r.increment.value, (6 * NS, DurationForm::WithUnits));
    assert_eq!(r.group_start.value, (60 * NS, DurationForm::WithUnits));
    assert_eq!(
        (
            &*r.increment.pos.file,
            r.increment.pos.line,
            r.increment.pos.column
        ),
        ("Rates.csv", 3, 5)
    );
    assert_eq!(def.rates[0].connect_fee, dec("0.10"));
    assert_eq!(def.rates[2].unit.value, (1, DurationForm::BareNumber));

    // Destination rates, with the MinCost extension and an empty MaxCost.
    let dr = &def.destination_rates[0];
    assert_eq!(dr.destination.value, "DST_MOBILE");
    assert_eq!(dr.rate.value, "RT_MOBILE");
    assert_eq!(dr.rounding, RoundingMethod::Up);
    assert_eq!(dr.decimals, 2);
    assert_eq!(dr.max_cost, dec("50"));
    assert_eq!(dr.max_cost_strategy, Some(MaxCostStrategy::Free));
    assert_eq!(dr.min_cost, Some(dec("0.10")));
    let dr = &def.destination_rates[1];
    assert_eq!(dr.destination.value, "*any");
    assert_eq!(dr.rounding, RoundingMethod::Middle);
    assert_eq!(dr.max_cost, Decimal::ZERO);
    assert_eq!(dr.max_cost_strategy, None);
    assert_eq!(dr.min_cost, None);

    // Timings: comment lines do not shift line numbers.
    let t = &def.timings[0];
    assert_eq!(t.id.value, "PEAK");
    assert_eq!((t.id.pos.line, t.id.pos.column), (3, 1));
    assert_eq!(t.years, Selector::Any);
    assert_eq!(t.week_days, Selector::List(vec![1, 2, 3, 4, 5]));
    assert_eq!(t.start, 8 * 3600 * NS);
    assert_eq!(t.calendar, None);
    let t = &def.timings[1];
    assert_eq!(t.years, Selector::List(vec![2026]));
    assert_eq!(t.week_days, Selector::List(vec![0, 6]));

    // Plans.
    assert_eq!(def.plans.len(), 2);
    assert_eq!(def.plans[1].timing.value, "*any");
    assert_eq!(def.plans[1].weight, dec("0.5"));
    assert_eq!(def.plans[0].destination_rates.value, "DR_MOBILE");

    // Profiles, with the Carrier extension.
    let p = &def.profiles[0];
    assert_eq!(p.subject.value, "*any");
    assert_eq!(
        p.activation,
        Some(Timestamp::from_str("2024-01-01T00:00:00Z").unwrap())
    );
    assert!(p.fallback_subjects.is_empty());
    assert_eq!(p.carrier, None);
    let p = &def.profiles[1];
    assert_eq!(p.activation, None);
    let fb: Vec<&str> = p.fallback_subjects.iter().map(|s| &*s.value).collect();
    assert_eq!(fb, ["rif", "danb"]);
    assert_eq!(
        (
            p.fallback_subjects[1].pos.line,
            p.fallback_subjects[1].pos.column
        ),
        (3, 6)
    );
    let carrier = p.carrier.as_ref().unwrap();
    assert_eq!(carrier.value, "china_mobile");
    assert_eq!((carrier.pos.line, carrier.pos.column), (3, 7));
}

#[test]
fn errors_across_files_are_all_reported() {
    let folder = files(&[
        ("Destinations.csv", b"DST_A,13\nDST_A,1 3\nDST_B,\n"),
        (
            "Rates.csv",
            b"Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n\
              RT_A,0,0.1,60s,60s,0s\n\
              RT_A,0,0.1x,60s,6q,60s\n\
              RT_B,-1,0.2,60s,60s,0s\n",
        ),
        (
            "Timings.csv",
            b"T1,*any,*any,*any,1;2;mon,08:00:00\nT2,*any,13,*any,*any,25:00:00\n",
        ),
        (
            "RatingPlans.csv",
            b"RP_A,DR_A,T1,10\nRP_A,DR_B,T2\nRP_A,DR_C,T2,ten\n",
        ),
        (
            "RatingProfiles.csv",
            b"acme,call,*any,2012-01-01,RP_A,\nacme,call,1001,2012-01-01T00:00:00Z,RP_A,\n",
        ),
        (
            "DestinationRates.csv",
            b"DR_A,DST_A,RT_A,*sideways,2,0,\nDR_B,DST_B,RT_B,*up,99,x,*never\n",
        ),
    ]);
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&folder, &mut diags);

    // Destinations: whitespace inside a prefix; an empty prefix.
    expect_error(&diags, "Destinations.csv", 2, 2, "whitespace");
    expect_error(&diags, "Destinations.csv", 3, 2, "empty");
    // Rates.csv line 3: two bad fields in one row, each at its column.
    expect_error(
        &diags,
        "Rates.csv",
        3,
        3,
        "Rate \"0.1x\" is not a decimal number",
    );
    expect_error(&diags, "Rates.csv", 3, 5, "RateIncrement");
    expect_error(&diags, "Rates.csv", 4, 2, "must not be negative");
    // Timings.csv line 2... and line 1.
    expect_error(&diags, "Timings.csv", 1, 5, "week days");
    expect_error(&diags, "Timings.csv", 2, 3, "months");
    expect_error(&diags, "Timings.csv", 2, 6, "25:00:00");
    // RatingPlans.csv: wrong number of fields, then a bad weight.
    let d = expect_error(&diags, "RatingPlans.csv", 2, 1, "expected 4 fields");
    assert_eq!(
        d.message,
        "expected 4 fields (Id, DestinationRatesId, TimingTag, Weight), found 3"
    );
    expect_error(&diags, "RatingPlans.csv", 3, 4, "Weight");
    // RatingProfiles.csv: an activation without time and offset.
    expect_error(&diags, "RatingProfiles.csv", 1, 4, "activation time");
    // DestinationRates.csv: a bad rounding method; then bad decimals, max cost and strategy.
    expect_error(&diags, "DestinationRates.csv", 1, 4, "*sideways");
    expect_error(&diags, "DestinationRates.csv", 2, 5, "rounding decimals");
    expect_error(&diags, "DestinationRates.csv", 2, 6, "MaxCost");
    expect_error(&diags, "DestinationRates.csv", 2, 7, "max cost strategy");
    assert_eq!(diags.errors().count(), 15, "{diags}");

    // Good rows are kept, bad rows skipped.
    assert_eq!(def.destinations.len(), 1);
    assert_eq!(def.rates.len(), 1);
    assert_eq!(def.timings.len(), 0);
    assert_eq!(def.plans.len(), 1);
    assert_eq!(def.profiles.len(), 1);
    assert_eq!(def.destination_rates.len(), 0);
}

#[test]
fn wrong_field_counts_name_the_columns() {
    let folder = files(&[
        ("Destinations.csv", b"DST_A\nDST_A,13,extra\n"),
        (
            "DestinationRates.csv",
            b"DR_A,DST_A,RT_A,*up,2,0,,0.1,extra\n",
        ),
        (
            "RatingProfiles.csv",
            b"acme,call\n*out,acme,call,*any,,RP,\n*out,acme,call\n",
        ),
    ]);
    let mut diags = Diagnostics::default();
    cgrates::parse(&folder, &mut diags);
    let d = expect_error(&diags, "Destinations.csv", 1, 1, "expected 2 fields");
    assert_eq!(d.message, "expected 2 fields (Id, Prefix), found 1");
    expect_error(&diags, "Destinations.csv", 2, 1, "found 3");
    let d = expect_error(
        &diags,
        "DestinationRates.csv",
        1,
        1,
        "expected 7 or 8 fields",
    );
    assert!(
        d.message.contains("[, MinCost]") && d.message.ends_with("found 9"),
        "{d}"
    );
    expect_error(&diags, "RatingProfiles.csv", 1, 1, "expected 6 or 7 fields");
    let d = expect_error(
        &diags,
        "RatingProfiles.csv",
        3,
        1,
        "expected 7 or 8 fields (Direction",
    );
    assert!(d.message.ends_with("found 3"), "{d}");
    assert_eq!(diags.errors().count(), 5, "{diags}");
}

#[test]
fn old_rating_profiles_layout_with_direction() {
    let folder = files(&[(
        "RatingProfiles.csv",
        b"#Direction,Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject,CdrStatQueueIds\n\
          *out,cgrates.org,call,*any,2012-01-01T00:00:00Z,RP_RETAIL,,\n\
          *out,cgrates.org,call,rif,2012-02-28T00:00:00Z,RP_RIF,danb;*any,STATS_1\n\
          *in,cgrates.org,call,dan,,RP_DAN,\n\
          *out,cgrates.org,call,bad,yesterday,RP_X,,\n",
    )]);
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&folder, &mut diags);
    assert_eq!(def.profiles.len(), 3, "{diags}");
    let p = &def.profiles[0];
    assert_eq!(p.tenant.value, "cgrates.org");
    assert_eq!((p.tenant.pos.line, p.tenant.pos.column), (2, 2));
    assert_eq!(p.category.value, "call");
    assert_eq!(p.subject.value, "*any");
    assert_eq!(
        p.activation,
        Some(Timestamp::from_str("2012-01-01T00:00:00Z").unwrap())
    );
    assert_eq!(p.plan.value, "RP_RETAIL");
    assert_eq!((p.plan.pos.line, p.plan.pos.column), (2, 6));
    assert!(p.fallback_subjects.is_empty());
    assert_eq!(p.carrier, None);
    let p = &def.profiles[1];
    assert_eq!(p.subject.value, "rif");
    let fb: Vec<&str> = p.fallback_subjects.iter().map(|s| &*s.value).collect();
    assert_eq!(fb, ["danb", "*any"]);
    assert_eq!(p.fallback_subjects[0].pos.column, 7);
    assert_eq!(p.carrier, None, "the stats column is not a carrier");
    assert_eq!(def.profiles[2].plan.value, "RP_DAN");
    // Positions in the old layout name the real column.
    expect_error(&diags, "RatingProfiles.csv", 5, 5, "activation time");
    assert_eq!(diags.items.len(), 1, "{diags}");
}

#[test]
fn headers_comments_blank_lines_and_case_insensitive_names() {
    let folder = files(&[
        ("destinations.CSV", b"\xEF\xBB\xBFID,PREFIX\n# comment\n\nDST,13\n  \n#x,y\nDST,15\n"),
        ("Timings.csv", b"tag,years,months,monthdays,weekdays,time\nT,*any,*any,*any,*any,*asap\n"),
        ("RatingProfiles.csv", b"Direction,Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n*out,t,c,s,,p,\n"),
        ("RatingPlans.csv", b"\"RP\",\"DR,1\",*any,\"10\"\n"),
    ]);
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&folder, &mut diags);
    assert!(diags.items.is_empty(), "{diags}");
    assert_eq!(def.destinations.len(), 2);
    assert_eq!(def.destinations[0].prefix.value, "13");
    assert_eq!(&*def.destinations[0].prefix.pos.file, "destinations.CSV");
    assert_eq!(def.destinations[0].prefix.pos.line, 4);
    assert_eq!(def.destinations[1].prefix.pos.line, 7);
    assert_eq!(def.timings.len(), 1);
    assert_eq!(def.timings[0].start, 0);
    assert_eq!(def.profiles.len(), 1);
    assert_eq!(def.profiles[0].tenant.value, "t");
    assert_eq!(
        def.plans[0].destination_rates.value, "DR,1",
        "quoted fields"
    );
    assert_eq!(def.plans[0].weight, dec("10"));
}

#[test]
fn line_numbers_with_crlf_comments_and_multiline_fields() {
    let folder = files(&[(
        "Destinations.csv",
        b"Id,Prefix\r\nA,1\r\n#c\r\n\r\nB,2\r\n\"C\nD\",3\n# x\n#y\nE,4 4\n",
    )]);
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&folder, &mut diags);
    let lines: Vec<(&str, u32)> = def
        .destinations
        .iter()
        .map(|d| (&*d.id.value, d.prefix.pos.line))
        .collect();
    assert_eq!(lines, [("A", 2), ("B", 5)]);
    expect_error(&diags, "Destinations.csv", 6, 1, "control characters");
    expect_error(&diags, "Destinations.csv", 10, 2, "whitespace");
}

#[test]
fn an_exact_name_wins_over_a_case_insensitive_one() {
    let folder = files(&[
        ("RATES.csv", b"R,0,1,1s,1s,0s\n"),
        ("Rates.csv", b"EXACT,0,1,1s,1s,0s\n"),
    ]);
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&folder, &mut diags);
    assert_eq!(def.rates.len(), 1);
    assert_eq!(def.rates[0].id.value, "EXACT");
}

#[test]
fn non_utf8_fields_are_errors_not_panics() {
    let folder = files(&[
        ("Destinations.csv", b"DST,13\nD\xffX,15\nDST,1\xc3\n"),
        ("Rates.csv", b"R,0,\xfe\xff,60s,60s,0s\n"),
    ]);
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&folder, &mut diags);
    expect_error(&diags, "Destinations.csv", 2, 1, "Id is not valid UTF-8");
    expect_error(
        &diags,
        "Destinations.csv",
        3,
        2,
        "Prefix is not valid UTF-8",
    );
    expect_error(&diags, "Rates.csv", 1, 3, "Rate is not valid UTF-8");
    assert_eq!(diags.errors().count(), 3, "{diags}");
    assert_eq!(def.destinations.len(), 1);
    assert!(def.rates.is_empty());
}

#[test]
fn bad_prefixes() {
    let long = format!("DST,{}\n", "1".repeat(33));
    let folder = files(&[("Destinations.csv", long.as_bytes())]);
    let mut diags = Diagnostics::default();
    cgrates::parse(&folder, &mut diags);
    expect_error(&diags, "Destinations.csv", 1, 2, "longer than 32 bytes");
}

#[test]
fn no_tariff_files_at_all() {
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(
        &files(&[("README", b"hello"), ("NumberRanges.csv", b"1,2")]),
        &mut diags,
    );
    assert_eq!(diags.items.len(), 1);
    let d = &diags.items[0];
    assert_eq!(d.severity, Severity::Error);
    assert_eq!((&*d.pos.file, d.pos.line, d.pos.column), (".", 0, 0));
    assert!(
        d.message
            .starts_with("no CGRateS tariff files found (expected Destinations.csv, Rates.csv")
    );
    assert!(def.rates.is_empty());
}

#[test]
fn missing_files_are_empty_lists() {
    let mut diags = Diagnostics::default();
    let def = cgrates::parse(&files(&[("Rates.csv", b"")]), &mut diags);
    assert!(diags.items.is_empty(), "{diags}");
    assert!(def.destinations.is_empty() && def.rates.is_empty() && def.profiles.is_empty());
}

const NAMES: [&str; 6] = [
    "Destinations.csv",
    "Rates.csv",
    "DestinationRates.csv",
    "Timings.csv",
    "RatingPlans.csv",
    "RatingProfiles.csv",
];

fn valid_file(i: usize) -> &'static str {
    [
        DESTINATIONS,
        RATES,
        DESTINATION_RATES,
        TIMINGS,
        RATING_PLANS,
        RATING_PROFILES,
    ][i]
}

/// A random edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let special = prop::sample::select(vec![
        b',', b'"', b'\n', b'\r', b'#', b';', b' ', 0xff, 0xc3, 0,
    ]);
    let byte = prop_oneof![any::<u8>(), special];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let n = bytes.len();
        match *e {
            Edit::Flip(i, b) if n > 0 => bytes[i % n] = b,
            Edit::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Edit::Delete(i) if n > 0 => {
                bytes.remove(i % n);
            }
            Edit::Truncate(i) => bytes.truncate(i % (n + 1)),
            _ => {}
        }
    }
}

fn check_positions(diags: &Diagnostics) {
    for d in &diags.items {
        assert!(d.pos.line >= 1 && d.pos.column >= 1, "bad position in {d}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(name in 0usize..6, bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut diags = Diagnostics::default();
        cgrates::parse(&files(&[(NAMES[name], &bytes)]), &mut diags);
        check_positions(&diags);
    }

    #[test]
    fn csv_like_bytes_never_panic(
        name in 0usize..6,
        bytes in prop::collection::vec(
            prop::sample::select(b"0123456789abc*;:,.-+\" \n\r#\xff\xc3sm".to_vec()), 0..300),
    ) {
        let mut diags = Diagnostics::default();
        cgrates::parse(&files(&[(NAMES[name], &bytes)]), &mut diags);
        check_positions(&diags);
    }

    #[test]
    fn mutated_valid_files_never_panic(
        name in 0usize..6,
        edits in prop::collection::vec(edit(), 1..8),
    ) {
        let mut bytes = valid_file(name).as_bytes().to_vec();
        apply(&mut bytes, &edits);
        let mut diags = Diagnostics::default();
        cgrates::parse(&files(&[(NAMES[name], &bytes)]), &mut diags);
        check_positions(&diags);
    }
}
