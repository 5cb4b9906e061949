#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Plan definitions: the documented examples, every validation rule, and the TOML round trip.

use std::str::FromStr;

use rust_decimal::Decimal;
use toll_catalog::plan::{
    Beyond, PerEventRounding, PlanClass, PlanDef, PlanDefError, PlanKind, ServiceScope, Unit,
    Validity, pricing_to_toml,
};
use toll_catalog::pricing::Pricing;
use toll_core::{Currency, UsageKind};

const DOCS: &str = include_str!("../../../docs/plans.md");

/// The ```toml blocks of docs/plans.md.
fn doc_examples() -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in DOCS.lines() {
        match &mut cur {
            None if line.trim() == "```toml" => cur = Some(String::new()),
            Some(s) if line.trim() == "```" => {
                out.push(std::mem::take(s));
                cur = None;
            }
            Some(s) => {
                s.push_str(line);
                s.push('\n');
            }
            None => {}
        }
    }
    out
}

fn parse(text: &str) -> PlanDef {
    text.parse::<PlanDef>()
        .unwrap_or_else(|e| panic!("{e}\n--- in ---\n{text}"))
}

fn errors(text: &str) -> PlanDefError {
    match text.parse::<PlanDef>() {
        Ok(p) => panic!("accepted:\n{text}\n=> {p:?}"),
        Err(e) => e,
    }
}

const MINIMAL: &str = r#"
code = "basic"
name = "Basic"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "10"
validity = { days = 30 }
"#;

fn with(extra: &str) -> String {
    format!("{MINIMAL}\n{extra}")
}

fn assert_error(text: &str, path: &str, fragment: &str) {
    let e = errors(text);
    assert!(
        e.errors
            .iter()
            .any(|f| f.path == path && f.reason.contains(fragment)),
        "no error at {path} containing {fragment:?}; got:\n{e}"
    );
}

#[test]
fn the_documented_examples_parse_and_round_trip() {
    let examples = doc_examples();
    assert_eq!(
        examples.len(),
        3,
        "docs/plans.md should hold three TOML examples"
    );
    for text in &examples {
        let p = parse(text);
        let again = parse(&p.to_toml());
        assert_eq!(p, again, "round trip changed the plan:\n{}", p.to_toml());
        assert_eq!(again.to_toml(), p.to_toml(), "to_toml is not canonical");
    }
}

#[test]
fn the_5g_combo_plan_reads_as_written() {
    let p = parse(&doc_examples()[0]);
    assert_eq!(p.code().as_str(), "5g-changxiang-128");
    assert_eq!(p.name(), "5G畅享套餐 128元");
    assert_eq!(p.class(), PlanClass::Base);
    assert_eq!(p.kind(), PlanKind::Combo);
    assert_eq!(p.currency(), Currency::CNY);
    assert_eq!(p.base_fee(), Decimal::from_str("128.00").unwrap());
    assert_eq!(p.validity(), Validity::CalendarMonth);
    let a = p.allowances();
    assert_eq!(a.len(), 4);
    assert_eq!(
        (a[0].usage.clone(), a[0].quantity),
        (UsageKind::Voice, 30_000)
    );
    assert_eq!(
        (a[1].usage.clone(), a[1].quantity),
        (UsageKind::Data, 30 * 1_073_741_824)
    );
    assert_eq!((a[2].usage.clone(), a[2].quantity), (UsageKind::Sms, 100));
    assert_eq!(a[3].quantity, 10 * 1024 * 1_048_576);
    let scope = a[3].services.as_ref().unwrap();
    assert_eq!(scope.services(), ["douyin", "wechat"]);
    assert!(scope.contains("wechat") && !scope.contains("qq"));
    assert!(a[1].services.is_none());

    let voice = p.overage_for(&UsageKind::Voice).unwrap();
    assert_eq!(voice.unit, Unit::Minute);
    assert_eq!(voice.per_event, PerEventRounding::Up);
    assert_eq!(
        voice.pricing,
        Pricing::PerUnit {
            unit_price: Decimal::from_str("0.15").unwrap()
        }
    );
    let data = p.overage_for(&UsageKind::Data).unwrap();
    assert_eq!(data.unit, Unit::Mb);
    assert!(matches!(data.pricing, Pricing::Graduated { ref tiers } if tiers.len() == 2));
    assert_eq!(p.tariff().unwrap().category, "call");
    assert!(p.shared().is_none());
}

#[test]
fn family_and_addon_examples() {
    let ex = doc_examples();
    let fam = parse(&ex[1]);
    assert_eq!(fam.shared().unwrap().max_members, 4);
    assert_eq!(fam.allowances().len(), 2);
    let pack = parse(&ex[2]);
    assert_eq!(pack.class(), PlanClass::Addon);
    assert_eq!(pack.validity(), Validity::Days(30));
    assert_eq!(
        pack.allowances()[0].services,
        Some(ServiceScope::new(["douyin"]).unwrap())
    );
}

#[test]
fn what_prices_usage_beyond_the_allowances() {
    let p = parse(&doc_examples()[0]);
    assert!(
        matches!(p.beyond_allowance(&UsageKind::Voice), Beyond::Overage(o) if o.usage == UsageKind::Voice)
    );
    let custom = UsageKind::Custom("api_calls".into());
    assert!(
        matches!(p.beyond_allowance(&custom), Beyond::Tariff(t) if t.subject == "5g-changxiang")
    );
    let fam = parse(&doc_examples()[1]);
    assert_eq!(fam.beyond_allowance(&UsageKind::Voice), Beyond::Nothing);
}

#[test]
fn quantities_convert_to_whole_base_units() {
    let p = parse(&with(
        r#"
[[allowances]]
usage = "data"
quantity = "1.5"
unit = "gb"
[[allowances]]
usage = "voice"
quantity = 90
unit = "seconds"
[[allowances]]
usage = "data"
quantity = 1
unit = "kb"
services = ["speedtest"]
[[allowances]]
usage = "api_calls"
quantity = 1000
unit = "units"
"#,
    ));
    let q: Vec<i64> = p.allowances().iter().map(|a| a.quantity).collect();
    assert_eq!(q, [1536 * 1_048_576, 90, 1024, 1000]);
    // Written back in the largest unit that holds each exactly.
    let t = p.to_toml();
    assert!(t.contains("quantity = 1536\nunit = \"mb\""), "{t}");
    assert!(t.contains("quantity = 90\nunit = \"seconds\""), "{t}");

    assert_error(
        &with("[[allowances]]\nusage = \"voice\"\nquantity = \"0.5\"\nunit = \"seconds\""),
        "allowances[0].quantity",
        "whole number",
    );
    assert_error(
        &with("[[allowances]]\nusage = \"data\"\nquantity = 9223372036854775807\nunit = \"gb\""),
        "allowances[0].quantity",
        "too large",
    );
    assert_error(
        &with("[[allowances]]\nusage = \"data\"\nquantity = 1.5\nunit = \"gb\""),
        "allowances[0].quantity",
        "float",
    );
}

#[test]
fn every_error_is_reported_with_its_path() {
    let text = r#"
code = "5G Plan"
name = ""
class = "premium"
kind = "voice"
currency = "RMBX"
base_fee = "-1"
validity = "weekly"
colour = "red"

[[allowances]]
usage = "voice"
quantity = 500
unit = "minutes"

[[allowances]]
usage = "voice"
quantity = 0
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 1
unit = "minutes"

[[allowances]]
usage = "sms"
quantity = 10
unit = "messages"
services = []

[[overage]]
usage = "voice"
unit = "minute"
per_event = "sometimes"
[overage.pricing]
model = "per_unit"
unit_price = "0.1"
colour = "red"

[shared]
max_members = 1

[tariff]
category = " call"
"#;
    let e = errors(text);
    let expect = [
        ("code", "not a plan code"),
        ("name", "must not be empty"),
        ("class", "not base or addon"),
        ("currency", "three letters"),
        ("base_fee", "must not be negative"),
        ("validity", "calendar_month"),
        ("colour", "unknown field"),
        ("allowances[1].quantity", "must be greater than 0"),
        ("allowances[2].unit", "minutes does not measure data"),
        ("allowances[3].services", "at least one service"),
        ("overage[0].per_event", "not up or exact"),
        ("overage[0].pricing", "colour"),
        ("shared.max_members", "must be 2 to 100"),
        ("tariff.category", "leading or trailing spaces"),
        ("tariff.subject", "is required"),
    ];
    for (path, fragment) in expect {
        assert!(
            e.errors
                .iter()
                .any(|f| f.path == path && f.reason.contains(fragment)),
            "missing {path}: {fragment}; got:\n{e}"
        );
    }
    // The Display form is one "path: reason" per line.
    let shown = e.to_string();
    assert!(
        shown.contains("allowances[1].quantity: must be greater than 0"),
        "{shown}"
    );
    assert_eq!(shown.lines().count(), e.errors.len());
}

#[test]
fn required_fields() {
    let e = errors("");
    for f in [
        "code", "name", "class", "kind", "currency", "base_fee", "validity",
    ] {
        assert!(e.has(f), "{f} not reported: {e}");
    }
    assert_error(
        &with("[[allowances]]\nusage = \"voice\""),
        "allowances[0].quantity",
        "is required",
    );
    assert_error(
        &with("[[allowances]]\nusage = \"voice\"\nquantity = 1"),
        "allowances[0].unit",
        "is required",
    );
    assert_error(
        &with("[[overage]]\nusage = \"voice\"\nunit = \"minute\"\nper_event = \"up\""),
        "overage[0].pricing",
        "is required",
    );
}

#[test]
fn scalar_field_rules() {
    let swap = |key: &str, value: &str| {
        MINIMAL
            .lines()
            .map(|l| {
                if l.starts_with(&format!("{key} =")) {
                    format!("{key} = {value}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_error(&swap("code", "\"-lead\""), "code", "not a plan code");
    assert_error(
        &swap("code", &format!("\"{}\"", "a".repeat(65))),
        "code",
        "not a plan code",
    );
    assert_error(&swap("code", "7"), "code", "must be a string");
    assert_error(
        &swap("name", &format!("\"{}\"", "名".repeat(201))),
        "name",
        "at most 200",
    );
    assert_error(
        &swap("kind", "\"sms\""),
        "kind",
        "not voice, data, combo or custom",
    );
    assert_error(&swap("base_fee", "10.5"), "base_fee", "float");
    assert_error(&swap("base_fee", "\"1e3\""), "base_fee", "not a decimal");
    assert_error(
        &swap("base_fee", "\"0.0000001\""),
        "base_fee",
        "more than 6 decimals",
    );
    assert_error(
        &swap("validity", "{ days = 0 }"),
        "validity.days",
        "1 to 3660",
    );
    assert_error(
        &swap("validity", "{ days = 3661 }"),
        "validity.days",
        "1 to 3660",
    );
    assert_error(
        &swap("validity", "{ days = \"30\" }"),
        "validity.days",
        "integer",
    );
    assert_error(
        &swap("validity", "{ days = 30, hours = 1 }"),
        "validity.hours",
        "unknown",
    );
    assert_error(&swap("validity", "30"), "validity", "calendar_month");

    let ok = parse(&swap(
        "name",
        "\"a \\\"quoted\\\" name\\twith\\\\ escapes 🚀\"",
    ));
    assert_eq!(ok.name(), "a \"quoted\" name\twith\\ escapes 🚀");
    assert_eq!(parse(&ok.to_toml()), ok);
    assert_eq!(parse(&swap("base_fee", "0")).base_fee(), Decimal::ZERO);
    assert_eq!(
        parse(&swap("currency", "\"usd\"")).currency(),
        Currency::USD
    );
}

#[test]
fn kind_bounds_the_usage_kinds() {
    let voice_plan = MINIMAL.replace("kind = \"combo\"", "kind = \"voice\"");
    assert_error(
        &format!("{voice_plan}\n[[allowances]]\nusage = \"data\"\nquantity = 1\nunit = \"gb\""),
        "allowances[0].usage",
        "a voice plan cannot include data",
    );
    let data_plan = MINIMAL.replace("kind = \"combo\"", "kind = \"data\"");
    assert_error(
        &format!(
            "{data_plan}\n[[overage]]\nusage = \"sms\"\nunit = \"message\"\nper_event = \"up\"\n[overage.pricing]\nmodel = \"per_unit\"\nunit_price = \"0.1\""
        ),
        "overage[0].usage",
        "a data plan cannot price sms",
    );
    let custom = MINIMAL.replace("kind = \"combo\"", "kind = \"custom\"");
    assert_error(
        &format!("{custom}\n[[allowances]]\nusage = \"voice\"\nquantity = 1\nunit = \"minutes\""),
        "allowances[0].usage",
        "custom plan",
    );
    parse(&format!(
        "{custom}\n[[allowances]]\nusage = \"gpu_hours\"\nquantity = 10\nunit = \"units\""
    ));
}

#[test]
fn services_rules() {
    let a = |services: &str| {
        with(&format!(
            "[[allowances]]\nusage = \"data\"\nquantity = 1\nunit = \"gb\"\nservices = {services}"
        ))
    };
    assert_error(
        &a("[\"WeChat\"]"),
        "allowances[0].services",
        "not a service name",
    );
    assert_error(
        &a("[\"wechat\", \"wechat\"]"),
        "allowances[0].services",
        "listed twice",
    );
    assert_error(
        &a("\"wechat\""),
        "allowances[0].services",
        "must be an array",
    );
    assert_error(&a("[1]"), "allowances[0].services[0]", "must be a string");
    let many: Vec<String> = (0..33).map(|i| format!("\"s{i}\"")).collect();
    assert_error(
        &a(&format!("[{}]", many.join(","))),
        "allowances[0].services",
        "at most 32",
    );
    let ok = parse(&a("[\"com.tencent.mm\", \"douyin\"]"));
    assert_eq!(
        ok.allowances()[0].services.as_ref().unwrap().to_string(),
        "com.tencent.mm,douyin"
    );
}

#[test]
fn duplicates_are_refused() {
    let dup = with(
        r#"
[[allowances]]
usage = "data"
quantity = 1
unit = "gb"
services = ["wechat", "douyin"]
[[allowances]]
usage = "data"
quantity = 2
unit = "gb"
services = ["douyin", "wechat"]
[[allowances]]
usage = "data"
quantity = 2
unit = "gb"
"#,
    );
    assert_error(&dup, "allowances[1]", "same services");
    assert!(!errors(&dup).has("allowances[2]"));

    let over = "[[overage]]\nusage = \"voice\"\nunit = \"minute\"\nper_event = \"up\"\n[overage.pricing]\nmodel = \"per_unit\"\nunit_price = \"0.1\"\n";
    assert_error(
        &with(&format!("{over}{over}")),
        "overage[1].usage",
        "second overage entry",
    );
}

#[test]
fn overage_rules() {
    let o = |unit: &str, pricing: &str| {
        with(&format!(
            "[[overage]]\nusage = \"voice\"\nunit = \"{unit}\"\nper_event = \"exact\"\n[overage.pricing]\n{pricing}"
        ))
    };
    assert_error(
        &o("mb", "model = \"per_unit\"\nunit_price = \"0.1\""),
        "overage[0].unit",
        "mb does not measure voice",
    );
    assert_error(
        &o("minute", "model = \"percentage\"\nrate = \"2\""),
        "overage[0].pricing.model",
        "money amounts",
    );
    // A pricing error from `Pricing::from_str` is reported at the pricing, without the
    // misleading line number of the re-written text.
    let e = errors(&o(
        "minute",
        "model = \"graduated\"\ntiers = [ { up_to = 10, unit_price = \"1\" } ]",
    ));
    let f = e
        .errors
        .iter()
        .find(|f| f.path == "overage[0].pricing")
        .unwrap();
    assert!(f.reason.contains("last tier"), "{f}");
    assert!(!f.reason.starts_with("line "), "{f}");
    assert_error(
        &o("minute", "model = \"per_unit\"\nunit_price = 0.1"),
        "overage[0].pricing",
        "float",
    );
    assert_error(
        &with("[[overage]]\nusage = \"voice\"\nunit = \"minute\"\nper_event = \"up\"\npricing = 5"),
        "overage[0].pricing",
        "must be a table",
    );
    // Singular and plural unit names are both accepted.
    let p = parse(&o(
        "seconds",
        "model = \"per_unit\"\nunit_price = \"0.0025\"",
    ));
    assert_eq!(p.overage()[0].unit, Unit::Second);
}

#[test]
fn addon_and_shared_rules() {
    let addon = MINIMAL.replace("class = \"base\"", "class = \"addon\"");
    assert_error(&addon, "allowances", "at least one allowance");
    let with_extras = format!(
        "{addon}\n[tariff]\ncategory = \"call\"\nsubject = \"x\"\n[[allowances]]\nusage = \"data\"\nquantity = 1\nunit = \"gb\"\n[[overage]]\nusage = \"data\"\nunit = \"mb\"\nper_event = \"up\"\n[overage.pricing]\nmodel = \"per_unit\"\nunit_price = \"0.1\""
    );
    assert_error(&with_extras, "overage", "add-on has no overage");
    assert_error(&with_extras, "tariff", "add-on has no tariff");
    assert_error(
        &with("[shared]\nmax_members = 3"),
        "shared",
        "at least one allowance",
    );
    assert_error(
        &with(
            "[shared]\nmax_members = 101\n[[allowances]]\nusage = \"sms\"\nquantity = 1\nunit = \"messages\"",
        ),
        "shared.max_members",
        "2 to 100",
    );
}

#[test]
fn limits_on_sizes_and_lists() {
    let big = format!("{MINIMAL}\n# {}", "x".repeat(64 * 1024));
    assert_error(&big, "(document)", "at most 65536");
    let one = "[[allowances]]\nusage = \"sms\"\nquantity = 1\nunit = \"messages\"\n";
    let many: String = (0..33)
        .map(|i| {
            one.replace("quantity = 1", &format!("quantity = {}", i + 1))
                .replace("usage = \"sms\"", &format!("usage = \"k{i}\""))
                .replace("messages", "units")
        })
        .collect();
    assert_error(&with(&many), "allowances", "at most 32 entries");
}

#[test]
fn syntax_errors_give_line_and_column() {
    let e = errors("code = \"a\"\nname = \n");
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].path.starts_with("line 2, column"), "{e}");
    let deep = format!("a = {}", "[".repeat(10_000));
    assert!(deep.parse::<PlanDef>().is_err());
}

#[test]
fn pricing_to_toml_round_trips_every_model() {
    for text in [
        "model = \"per_unit\"\nunit_price = \"0.15\"",
        "model = \"graduated\"\ntiers = [ { up_to = 10, unit_price = \"10\", flat_fee = \"2\", increment = \"6\", per = \"60\" }, { unit_price = \"5\" } ]",
        "model = \"volume\"\ntiers = [ { up_to = \"100.5\", unit_price = \"1\" }, { unit_price = \"0.5\" } ]",
        "model = \"package\"\npackage_size = 100\npackage_price = \"5\"\nfree_units = 10",
        "model = \"blocks\"\nmode = \"top_tier\"\ntiers = [ { block_size = 10, max_blocks = 100, block_price = \"1\" }, { block_size = 10, block_price = \"0.5\" } ]",
        "model = \"percentage\"\nrate = \"2.9\"\nfixed_fee = \"0.30\"\nfree_events = 1\nfree_amount = \"50\"\nmin_per_event = \"0.5\"\nmax_per_event = \"5\"",
    ] {
        let p: Pricing = text.parse().unwrap();
        let written = pricing_to_toml(&p);
        assert_eq!(written.parse::<Pricing>().unwrap(), p, "{written}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn unit_for(usage: &str) -> &'static [&'static str] {
        match usage {
            "voice" => &["seconds", "minutes"],
            "sms" => &["messages"],
            "data" => &["bytes", "kb", "mb", "gb"],
            _ => &["units"],
        }
    }

    prop_compose! {
        fn allowance()(usage in prop::sample::select(vec!["voice", "sms", "data", "api_calls"]),
                       q in 1i64..1_000_000,
                       unit_ix in 0usize..4,
                       services in prop::option::of(prop::collection::btree_set("[a-z][a-z0-9_.-]{0,10}", 1..4)))
            -> String {
            let units = unit_for(usage);
            let unit = units[unit_ix % units.len()];
            let mut s = format!("[[allowances]]\nusage = \"{usage}\"\nquantity = {q}\nunit = \"{unit}\"\n");
            if let Some(sv) = services {
                let list: Vec<String> = sv.iter().map(|n| format!("\"{n}\"")).collect();
                s.push_str(&format!("services = [{}]\n", list.join(", ")));
            }
            s
        }
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
            let _ = s.parse::<PlanDef>();
        }

        #[test]
        fn mangled_valid_documents_never_panic(cut in 0usize..2000, insert in "\\PC{0,20}") {
            let base = doc_examples()[0].clone();
            let mut at = cut.min(base.len());
            while !base.is_char_boundary(at) { at -= 1; }
            let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
            let _ = text.parse::<PlanDef>();
            let truncated = &base[..at];
            let _ = truncated.parse::<PlanDef>();
        }

        #[test]
        fn generated_plans_round_trip(name in "\\PC{1,40}",
                                      fee in 0i64..1_000_000_000,
                                      scale in 0u32..=6,
                                      days in prop::option::of(1u32..=3660),
                                      allowances in prop::collection::vec(allowance(), 0..6)) {
            prop_assume!(!name.trim().is_empty());
            let fee = Decimal::new(fee, scale);
            let validity = days.map_or("\"calendar_month\"".to_string(), |d| format!("{{ days = {d} }}"));
            let name_toml = toml::Value::String(name.clone()).to_string();
            let text = format!(
                "code = \"gen\"\nname = {name_toml}\nclass = \"base\"\nkind = \"combo\"\ncurrency = \"EUR\"\nbase_fee = \"{fee}\"\nvalidity = {validity}\n{}",
                allowances.concat()
            );
            match text.parse::<PlanDef>() {
                Ok(p) => {
                    prop_assert_eq!(p.name(), name.as_str());
                    let again: PlanDef = p.to_toml().parse().unwrap();
                    prop_assert_eq!(&again, &p);
                }
                Err(e) => {
                    // Only duplicate allowances may be refused among the generated ones.
                    prop_assert!(e.errors.iter().all(|f| f.reason.contains("same services")), "{}", e);
                }
            }
        }
    }
}
