//! Toll's own TOML tariff format.
// Test code: helpers unwrap, as `#[test]` functions may.
#![allow(clippy::unwrap_used)]

use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::date;
use proptest::prelude::*;
use rust_decimal::Decimal;
use toll_core::Currency;
use toll_core::rounding::RoundingMethod;
use toll_core::usage::DurationForm;
use toll_rating::def::{MaxCostStrategy, Numbering, Selector, TariffDef, ZoneDef};
use toll_rating::diag::{Diagnostic, Diagnostics};
use toll_rating::source::{self, SourceFile, toll};

const NS: i64 = 1_000_000_000;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn parse(text: &str) -> (TariffDef, Diagnostics) {
    let mut diags = Diagnostics::default();
    let def = toll::parse("tariff.toml", text.as_bytes(), &mut diags);
    (def, diags)
}

/// 1-based line and character column of the `nth` (0-based) occurrence of `needle` in `text`.
fn locate(text: &str, needle: &str, nth: usize) -> (u32, u32) {
    let (offset, _) = text.match_indices(needle).nth(nth).unwrap();
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line as u32, col as u32)
}

fn expect_error<'d>(diags: &'d Diagnostics, at: (u32, u32), needle: &str) -> &'d Diagnostic {
    diags
        .errors()
        .find(|d| {
            &*d.pos.file == "tariff.toml"
                && (d.pos.line, d.pos.column) == at
                && d.message.contains(needle)
        })
        .unwrap_or_else(|| {
            panic!(
                "no error at {}:{} containing {needle:?}; all diagnostics:\n{diags}",
                at.0, at.1
            )
        })
}

/// The worked example of `docs/tariff-format.md`.
fn doc_example() -> String {
    let doc = include_str!("../../../docs/tariff-format.md");
    let start = doc.find("```toml\n# 示例运营商资费").unwrap() + "```toml\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_string()
}

const SMALL: &str = r#"
name = "small"
currency = "cny"
timezone = "Asia/Shanghai"
numbering = "cn"

[calendars]
cn_holidays = ["2026-10-01..2026-10-07", "2026-02-16", 2026-02-17, "2026-10-03"]

[timings]
PEAK    = { week_days = "1-5", time = "08:00" }
WEEKEND = { week_days = [6, 7], time = 00:00:00 }
YEARLY  = { years = 2026, months = "1;2", month_days = "1-3" }
HOLIDAY = { calendar = "cn_holidays" }

[destinations]
CN_MOBILE = ["13", "15;18"]
CN_FIXED = "010;020"

[rates]
MOBILE = [ { connect_fee = "0.10", rate = "0.15", unit = "60s", increment = "60s", group_start = "0s" },
           { rate = 0, unit = "60s", increment = "6s", group_start = "60s" } ]
SMS = { rate = "0.1", unit = 1, increment = 1 }

[[rates.DATA]]
rate = "0.01"
unit = "1024"
increment = "1"

[destination_rates]
DR_MOBILE = [ { destination = "CN_MOBILE", rate = "MOBILE", rounding = "*up", decimals = 2, max_cost = "50", max_cost_strategy = "*free", min_cost = "0.10" } ]
DR_ANY = { destination = "*any", rate = "SMS", decimals = "3" }

[plans]
STANDARD = [ { destination_rates = "DR_MOBILE", timing = "PEAK", weight = 10 },
             { destination_rates = "DR_ANY", weight = "-2.5" } ]

[[profiles]]
tenant = "acme"
category = "call"
subject = "*any"
activation = "2026-01-01T00:00:00+08:00"
plan = "STANDARD"
fallback = ["other_subject", "third"]
carrier = "china_mobile"

[[profiles]]
tenant = "acme"
category = "sms"
plan = "STANDARD"
activation = 2026-01-01T00:00:00Z
fallback = "a;b"
"#;

#[test]
fn small_file_parses() {
    let (def, diags) = parse(SMALL);
    assert!(diags.items.is_empty(), "{diags}");
    assert_eq!(def.name, "small");
    assert_eq!(def.currency, Some(Currency::CNY));
    assert_eq!(def.zone, ZoneDef::Named("Asia/Shanghai".into()));
    assert_eq!(def.numbering, Numbering::ChinaNational);

    let cal = &def.calendars[0];
    assert_eq!(cal.id.value, "cn_holidays");
    assert_eq!(cal.id.pos.line, 8);
    assert_eq!(
        cal.dates.len(),
        9,
        "seven days of October plus two of February, deduplicated"
    );
    assert_eq!(cal.dates[0], date(2026, 2, 16));
    assert_eq!(cal.dates[1], date(2026, 2, 17));
    assert_eq!(cal.dates[8], date(2026, 10, 7));

    // Timings keep file order, not the alphabetical order of the toml crate's maps.
    let ids: Vec<&str> = def.timings.iter().map(|t| &*t.id.value).collect();
    assert_eq!(ids, ["PEAK", "WEEKEND", "YEARLY", "HOLIDAY"]);
    let peak = &def.timings[0];
    assert_eq!(
        (peak.id.pos.line, peak.id.pos.column),
        locate(SMALL, "PEAK ", 0)
    );
    assert_eq!(peak.week_days, Selector::List(vec![1, 2, 3, 4, 5]));
    assert_eq!(peak.years, Selector::Any);
    assert_eq!(peak.start, 8 * 3600 * NS);
    assert_eq!(def.timings[1].week_days, Selector::List(vec![0, 6]));
    assert_eq!(def.timings[1].start, 0);
    assert_eq!(def.timings[2].years, Selector::List(vec![2026]));
    assert_eq!(def.timings[2].months, Selector::List(vec![1, 2]));
    assert_eq!(def.timings[2].month_days, Selector::List(vec![1, 2, 3]));
    let holiday = &def.timings[3];
    assert_eq!(holiday.calendar.as_ref().unwrap().value, "cn_holidays");
    assert_eq!(holiday.week_days, Selector::Any);

    let dests: Vec<(&str, &str)> = def
        .destinations
        .iter()
        .map(|d| (&*d.id.value, &*d.prefix.value))
        .collect();
    assert_eq!(
        dests,
        [
            ("CN_MOBILE", "13"),
            ("CN_MOBILE", "15"),
            ("CN_MOBILE", "18"),
            ("CN_FIXED", "010"),
            ("CN_FIXED", "020")
        ]
    );
    let p = &def.destinations[2].prefix;
    assert_eq!((p.pos.line, p.pos.column), locate(SMALL, "\"15;18\"", 0));

    let ids: Vec<&str> = def.rates.iter().map(|r| &*r.id.value).collect();
    assert_eq!(ids, ["MOBILE", "MOBILE", "SMS", "DATA"]);
    let r = &def.rates[0];
    assert_eq!(r.connect_fee, dec("0.10"));
    assert_eq!(r.rate, dec("0.15"));
    assert_eq!(r.unit.value, (60 * NS, DurationForm::WithUnits));
    let r = &def.rates[1];
    assert_eq!(r.connect_fee, Decimal::ZERO);
    assert_eq!(r.rate, Decimal::ZERO);
    assert_eq!(r.increment.value, (6 * NS, DurationForm::WithUnits));
    assert_eq!(
        (r.increment.pos.line, r.increment.pos.column),
        locate(SMALL, "\"6s\"", 0)
    );
    assert_eq!(r.group_start.value, (60 * NS, DurationForm::WithUnits));
    let sms = &def.rates[2];
    assert_eq!(sms.unit.value, (1, DurationForm::BareNumber));
    assert_eq!(sms.group_start.value, (0, DurationForm::WithUnits));
    assert_eq!(def.rates[3].unit.value, (1024, DurationForm::BareNumber));

    let dr = &def.destination_rates[0];
    assert_eq!(dr.id.value, "DR_MOBILE");
    assert_eq!(dr.destination.value, "CN_MOBILE");
    assert_eq!(dr.rounding, RoundingMethod::Up);
    assert_eq!(dr.decimals, 2);
    assert_eq!(dr.max_cost, dec("50"));
    assert_eq!(dr.max_cost_strategy, Some(MaxCostStrategy::Free));
    assert_eq!(dr.min_cost, Some(dec("0.10")));
    let dr = &def.destination_rates[1];
    assert_eq!(dr.rounding, RoundingMethod::Middle);
    assert_eq!(dr.decimals, 3);
    assert_eq!(dr.max_cost, Decimal::ZERO);
    assert_eq!((dr.max_cost_strategy, dr.min_cost), (None, None));

    assert_eq!(def.plans.len(), 2);
    assert_eq!(def.plans[0].weight, dec("10"));
    assert_eq!(def.plans[1].timing.value, "*any");
    assert_eq!(def.plans[1].weight, dec("-2.5"));

    let p = &def.profiles[0];
    assert_eq!(
        p.activation,
        Some(Timestamp::from_str("2025-12-31T16:00:00Z").unwrap())
    );
    let fb: Vec<&str> = p.fallback_subjects.iter().map(|s| &*s.value).collect();
    assert_eq!(fb, ["other_subject", "third"]);
    assert_eq!(
        (
            p.fallback_subjects[1].pos.line,
            p.fallback_subjects[1].pos.column
        ),
        locate(SMALL, "\"third\"", 0)
    );
    assert_eq!(p.carrier.as_ref().unwrap().value, "china_mobile");
    assert_eq!(
        (p.plan.pos.line, p.plan.pos.column),
        locate(SMALL, "\"STANDARD\"", 0)
    );
    let p = &def.profiles[1];
    assert_eq!(p.subject.value, "*any");
    assert_eq!(
        p.activation,
        Some(Timestamp::from_str("2026-01-01T00:00:00Z").unwrap())
    );
    assert_eq!(p.fallback_subjects.len(), 2);
    assert_eq!(p.carrier, None);
}

#[test]
fn defaults_of_an_almost_empty_file() {
    let mut diags = Diagnostics::default();
    let def = toll::parse("mine.toml", b"# nothing\n", &mut diags);
    assert!(diags.items.is_empty(), "{diags}");
    assert_eq!(def, TariffDef::empty("mine.toml"));
}

#[test]
fn documented_example_parses_cleanly() {
    let text = doc_example();
    let files = vec![SourceFile {
        name: "tariff.toml".into(),
        bytes: text.clone().into_bytes(),
    }];
    let mut diags = Diagnostics::default();
    let def = source::parse(&files, &mut diags);
    assert!(diags.items.is_empty(), "{diags}");
    assert_eq!(def.name, "cn-demo");
    assert_eq!(def.currency, Some(Currency::CNY));
    assert_eq!(def.zone, ZoneDef::Named("Asia/Shanghai".into()));
    assert_eq!(def.numbering, Numbering::ChinaNational);
    let cal = &def.calendars[0];
    assert!(cal.dates.contains(&date(2026, 10, 1)) && cal.dates.contains(&date(2026, 10, 7)));
    assert!(cal.dates.contains(&date(2026, 2, 17)));
    assert!(def.timings.iter().any(|t| t.calendar.is_some()));
    let mobile_peak: Vec<_> = def
        .rates
        .iter()
        .filter(|r| r.id.value == "MOBILE_PEAK")
        .collect();
    assert_eq!(mobile_peak.len(), 2);
    assert_eq!(mobile_peak[0].increment.value.0, 60 * NS);
    assert_eq!(mobile_peak[1].increment.value.0, 6 * NS);
    assert_eq!(mobile_peak[1].group_start.value.0, 60 * NS);
    assert!(def.destination_rates.iter().any(|d| d.min_cost.is_some()));
    assert!(
        def.destination_rates
            .iter()
            .any(|d| d.max_cost > Decimal::ZERO)
    );
    let carriers: Vec<&str> = def
        .profiles
        .iter()
        .filter_map(|p| p.carrier.as_ref())
        .map(|c| &*c.value)
        .collect();
    assert_eq!(carriers, ["china_mobile", "china_unicom"]);
    let dests: Vec<&str> = def.destinations.iter().map(|d| &*d.id.value).collect();
    assert!(dests.contains(&"CN_MOBILE") && dests.contains(&"CN_FIXED") && dests.contains(&"INTL"));
}

const BAD_VALUES: &str = r#"name = "bad"
currency = "CNYY"
timezone = "Mars/Olympus"
numbering = "martian"

[calendars]
hol = ["2026-02-30", "2026-10-07..2026-10-01", 5]

[timings]
PEAK = { week_days = "1-8", time = "25:00" }
ODD  = { months = [1, true] }

[destinations]
# 移动 = mobile
"移动" = ["13", "1 5", 86]

[rates]
R = [ { rate = 0.15, unit = "60s", increment = "6x" },
      { connect_fee = "-1", rate = "1", increment = "1s" } ]

[destination_rates]
DR = { destination = "移动", rate = "R", max_cost = 1.5, rounding = "*sideways", decimals = 13, max_cost_strategy = "*never" }

[plans]
P = [ { destination_rates = "DR", weight = "heavy" }, { timing = "PEAK" } ]

[[profiles]]
tenant = "acme"
category = ""
activation = "2026-01-01"
plan = "P"
fallback = ["ok", 7]
"#;

#[test]
fn all_value_errors_are_reported_with_line_and_column() {
    let (def, diags) = parse(BAD_VALUES);
    let at = |needle: &str| locate(BAD_VALUES, needle, 0);
    expect_error(&diags, at("\"CNYY\""), "currency");
    expect_error(&diags, at("\"Mars/Olympus\""), "IANA");
    expect_error(&diags, at("\"martian\""), "numbering");
    expect_error(&diags, at("\"2026-02-30\""), "2026-02-30");
    expect_error(
        &diags,
        at("\"2026-10-07..2026-10-01\""),
        "ends before it starts",
    );
    expect_error(&diags, at("5]"), "must be a date");
    expect_error(&diags, at("\"1-8\""), "week days");
    expect_error(&diags, at("\"25:00\""), "25:00");
    expect_error(&diags, at("[1, true]"), "`months` must be");
    expect_error(&diags, at("\"1 5\""), "whitespace");
    expect_error(&diags, at("86]"), "`prefix` must be a string");
    // A float for money is refused and the message tells how to write it.
    let d = expect_error(&diags, at("0.15"), "TOML float");
    assert!(d.message.contains(r#"rate = "0.15""#), "{d}");
    expect_error(&diags, at("\"6x\""), "increment");
    expect_error(&diags, at("\"-1\""), "must not be negative");
    // The second rate row has no unit: reported at the row.
    expect_error(&diags, at("{ connect_fee"), "missing key `unit`");
    // Columns count characters: "移动" is two characters but six bytes.
    let (line, col) = at("1.5");
    assert_eq!(line, 22);
    assert_eq!(
        col as usize,
        "DR = { destination = \"移动\", rate = \"R\", max_cost = "
            .chars()
            .count()
            + 1
    );
    expect_error(&diags, (line, col), "TOML float");
    expect_error(&diags, at("\"*sideways\""), "*sideways");
    expect_error(&diags, at("13,"), "rounding decimals");
    expect_error(&diags, at("\"*never\""), "max cost strategy");
    expect_error(&diags, at("\"heavy\""), "weight");
    expect_error(&diags, at("{ timing"), "missing key `destination_rates`");
    expect_error(&diags, at("\"\"\nactivation"), "category is empty");
    expect_error(&diags, at("\"2026-01-01\"\nplan"), "activation time");
    expect_error(&diags, at("7]"), "`fallback` must be a string");
    assert_eq!(diags.errors().count(), 24, "{diags}");

    // What is valid is kept.
    assert_eq!(def.name, "bad");
    assert_eq!(def.destinations.len(), 1);
    assert_eq!(def.destinations[0].id.value, "移动");
    assert!(def.rates.is_empty() && def.destination_rates.is_empty() && def.profiles.is_empty());
    assert_eq!(def.timings.len(), 0);
    assert_eq!(def.calendars.len(), 1);
}

#[test]
fn a_float_for_money_is_refused() {
    let text =
        "[rates]\nR = { rate = \"0.1\", unit = \"60s\", increment = \"60s\", connect_fee = 0.5 }\n";
    let (def, diags) = parse(text);
    let d = expect_error(&diags, locate(text, "0.5", 0), "TOML float");
    assert!(d.message.contains(r#"connect_fee = "0.5""#), "{d}");
    assert_eq!(diags.items.len(), 1);
    assert!(def.rates.is_empty());
    // Integers are exact and accepted.
    let (def, diags) = parse("[rates]\nR = { rate = 2, unit = \"60s\", increment = \"60s\" }\n");
    assert!(diags.items.is_empty(), "{diags}");
    assert_eq!(def.rates[0].rate, dec("2"));
}

#[test]
fn unknown_keys_are_reported_with_their_position() {
    let text = "name = \"x\"\n\n[rates]\nR = { rate = \"1\", unit = \"60s\", increment = \"1s\", colour = \"red\" }\n";
    let (def, diags) = parse(text);
    assert_eq!(diags.items.len(), 1, "{diags}");
    let d = &diags.items[0];
    assert!(d.message.contains("colour"), "{d}");
    assert_eq!(d.pos.line, 4, "{d}");
    assert_eq!(def, TariffDef::empty("tariff.toml"));

    let text = "name = \"x\"\ncurrency = \"CNY\"\ntimzone = \"Asia/Shanghai\"\n";
    let (_, diags) = parse(text);
    assert_eq!(diags.items.len(), 1, "{diags}");
    let d = &diags.items[0];
    assert!(d.message.contains("timzone"), "{d}");
    assert_eq!((d.pos.line, d.pos.column), (3, 1), "{d}");

    let text = "[[profiles]]\ntenant = \"a\"\ncategory = \"call\"\nplan = \"P\"\nsubjekt = \"x\"\n";
    let (_, diags) = parse(text);
    assert_eq!(diags.items.len(), 1, "{diags}");
    assert!(diags.items[0].message.contains("subjekt"), "{diags}");
    assert_eq!(diags.items[0].pos.line, 5, "{diags}");
}

#[test]
fn syntax_errors_and_bad_shapes_are_one_diagnostic() {
    let (def, diags) = parse("name = \"x\"\nrate = = 3\n");
    assert_eq!(diags.items.len(), 1, "{diags}");
    assert_eq!(diags.items[0].pos.line, 2, "{diags}");
    assert_eq!(def, TariffDef::empty("tariff.toml"));

    let (_, diags) = parse("timings = 5\n");
    assert_eq!(diags.items.len(), 1, "{diags}");
    assert_eq!(diags.items[0].pos.line, 1);

    let (_, diags) = parse("[plans]\nP = 7\n");
    assert_eq!(diags.items.len(), 1, "{diags}");
    assert_eq!(diags.items[0].pos.line, 2, "{diags}");
}

#[test]
fn invalid_utf8_is_one_error_at_1_1() {
    let mut diags = Diagnostics::default();
    let def = toll::parse("t.toml", b"name = \"\xff\"\n", &mut diags);
    assert_eq!(diags.items.len(), 1);
    let d = &diags.items[0];
    assert_eq!((&*d.pos.file, d.pos.line, d.pos.column), ("t.toml", 1, 1));
    assert!(d.message.contains("UTF-8"));
    assert_eq!(def.name, "t.toml");
}

#[test]
fn calendars_are_limited_and_event_zone_is_the_default() {
    let (def, diags) =
        parse("timezone = \"event\"\n[calendars]\nbig = [\"2000-01-01..2040-01-01\"]\n");
    assert_eq!(def.zone, ZoneDef::EventOffset);
    expect_error(&diags, (3, 8), "at most 10000 days");
    assert_eq!(diags.items.len(), 1, "{diags}");
}

#[test]
fn duplicate_prefix_is_a_warning() {
    let text = "[destinations]\nM = [\"13\", \"15\", \"13\"]\n";
    let (def, diags) = parse(text);
    assert!(!diags.has_errors());
    let w: Vec<_> = diags.warnings().collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("duplicate prefix"));
    assert_eq!((w[0].pos.line, w[0].pos.column), locate(text, "\"13\"", 1));
    assert_eq!(def.destinations.len(), 2);
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
    let special = prop::sample::select(b"=\"'[]{},.\n#0123456789-:Tz e\xff\xc3\xe7".to_vec());
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

fn parse_bytes(bytes: &[u8]) {
    let mut diags = Diagnostics::default();
    toll::parse("tariff.toml", bytes, &mut diags);
    for d in &diags.items {
        assert!(d.pos.line >= 1 && d.pos.column >= 1, "bad position in {d}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        parse_bytes(&bytes);
    }

    #[test]
    fn mutated_small_file_never_panics(edits in prop::collection::vec(edit(), 1..8)) {
        let mut bytes = SMALL.as_bytes().to_vec();
        apply(&mut bytes, &edits);
        parse_bytes(&bytes);
    }

    #[test]
    fn mutated_bad_file_never_panics(edits in prop::collection::vec(edit(), 1..8)) {
        let mut bytes = BAD_VALUES.as_bytes().to_vec();
        apply(&mut bytes, &edits);
        parse_bytes(&bytes);
    }

    #[test]
    fn mutated_doc_example_never_panics(edits in prop::collection::vec(edit(), 1..8)) {
        let mut bytes = doc_example().into_bytes();
        apply(&mut bytes, &edits);
        parse_bytes(&bytes);
    }
}
