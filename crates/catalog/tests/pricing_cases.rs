#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every example of the shared `pricing-cases.json`, written in Toll's tier convention
//! (inclusive `up_to` bounds over continuous quantities, the last tier unbounded), priced and
//! compared with the expected amount read from the file.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;
use toll_catalog::pricing::Pricing;

fn cases() -> Vec<Value> {
    serde_json::from_str(include_str!("data/pricing-cases.json")).unwrap()
}

fn case(name: &str) -> Value {
    cases()
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn price(toml: &str, q: &str) -> Decimal {
    toml.parse::<Pricing>()
        .unwrap_or_else(|e| panic!("{e}\n{toml}"))
        .price(d(q))
        .unwrap()
        .amount
}

fn expected(c: &Value) -> Decimal {
    let text = c["expected_amount"].as_str().unwrap();
    d(text.split_whitespace().next().unwrap())
}

fn usage(c: &Value) -> String {
    c["usage"].to_string()
}

/// Lago's inclusive integer ranges 0–10, 11–20, 21+ are up_to 10, 20 and unbounded.
const LAGO_GRADUATED: &str = r#"model = "graduated"
tiers = [
  { up_to = 10, unit_price = "10", flat_fee = "2" },
  { up_to = 20, unit_price = "5", flat_fee = "3" },
  { unit_price = "5", flat_fee = "3" },
]"#;

#[test]
fn lago_graduated_21_units() {
    let c = case("lago_graduated_21_units");
    assert_eq!(price(LAGO_GRADUATED, &usage(&c)), expected(&c));
    // The spec's other figures: 1 → 12, 10 → 102, 11 → 110, 12 → 115.
    for (q, want) in [("1", "12"), ("10", "102"), ("11", "110"), ("12", "115")] {
        assert_eq!(price(LAGO_GRADUATED, q), d(want), "usage {q}");
    }
}

#[test]
fn lago_volume_doc_65000_calls() {
    let c = case("lago_volume_doc_65000_calls");
    let toml = r#"model = "volume"
tiers = [
  { up_to = 10000, unit_price = "0.0010", flat_fee = "10" },
  { up_to = 50000, unit_price = "0.0008", flat_fee = "10" },
  { up_to = 100000, unit_price = "0.0006", flat_fee = "10" },
  { unit_price = "0.0004", flat_fee = "10" },
]"#;
    assert_eq!(price(toml, &usage(&c)), expected(&c));
}

#[test]
fn lago_package_doc_201_units() {
    let c = case("lago_package_doc_201_units");
    let toml = "model = \"package\"\npackage_size = 100\npackage_price = \"5\"\nfree_units = 100";
    assert_eq!(price(toml, &usage(&c)), expected(&c));
}

#[test]
fn lago_package_spec_free_units() {
    let c = case("lago_package_spec_free_units");
    let toml = "model = \"package\"\npackage_size = 10\npackage_price = \"100\"\nfree_units = 10";
    assert_eq!(price(toml, &usage(&c)), expected(&c));
    let no_free = "model = \"package\"\npackage_size = 10\npackage_price = \"100\"";
    assert_eq!(price(no_free, "121"), d("1300"));
    assert_eq!(
        price(toml, "10"),
        Decimal::ZERO,
        "free units ≥ usage costs nothing"
    );
}

#[test]
fn killbill_doc_all_tiers_minutes_mbytes() {
    let c = case("killbill_doc_all_tiers_minutes_mbytes");
    // Each unit type is priced independently; Kill Bill's max counts blocks.
    let minutes = r#"model = "blocks"
mode = "all_tiers"
tiers = [ { block_size = 10, max_blocks = 100, block_price = "1.00" }, { block_size = 10, block_price = "0.50" } ]"#;
    let mbytes = r#"model = "blocks"
tiers = [ { block_size = 1, max_blocks = 1024, block_price = "0.5" }, { block_size = 1, block_price = "0.1" } ]"#;
    let total = price(minutes, &c["usage"]["cell-phone-minutes"].to_string())
        + price(mbytes, &c["usage"]["Mbytes"].to_string());
    assert_eq!(total, expected(&c));
}

#[test]
fn killbill_test_all_tiers_block_sizes() {
    let c = case("killbill_test_all_tiers_block_sizes");
    let toml = r#"model = "blocks"
tiers = [ { block_size = 100, max_blocks = 10, block_price = "1" }, { block_size = 1000, block_price = "1" } ]"#;
    assert_eq!(price(toml, &usage(&c)), expected(&c));
    let size_one = r#"model = "blocks"
tiers = [ { block_size = 1, max_blocks = 10, block_price = "1.5" },
          { block_size = 1, max_blocks = 100, block_price = "1.0" },
          { block_size = 1, block_price = "0.5" } ]"#;
    assert_eq!(price(size_one, "111"), d("115.5"));
}

#[test]
fn openmeter_graduated_totals_22() {
    let c = case("openmeter_graduated_totals_22");
    let toml = r#"model = "graduated"
tiers = [ { up_to = 5, flat_fee = "100" }, { up_to = 10, flat_fee = "50" },
          { up_to = 15, unit_price = "10" }, { unit_price = "5" } ]"#;
    assert_eq!(price(toml, &usage(&c)), expected(&c));
    for (q, want) in [
        ("3", "100"),
        ("5", "100"),
        ("5.001", "150"),
        ("7", "150"),
        ("12", "170"),
    ] {
        assert_eq!(price(toml, q), d(want), "usage {q}");
    }
    // Where Toll differs on purpose: zero usage costs nothing (OpenMeter bills 100).
    assert_eq!(price(toml, "0"), Decimal::ZERO);
}

#[test]
fn meteroid_tiered_vs_volume_150() {
    let c = case("meteroid_tiered_vs_volume_150");
    assert_eq!(c["expected_amount"], "tiered 125; volume 75");
    // Meteroid's half-open [first_unit, next.first_unit): for graduated pricing exactly
    // up_to = next.first_unit; for volume pricing over whole units, up_to = next.first_unit - 1
    // (the two only differ when the quantity is exactly a boundary).
    let graduated = r#"model = "graduated"
tiers = [ { up_to = 100, unit_price = "1.0" }, { up_to = 200, unit_price = "0.5" }, { unit_price = "0.25" } ]"#;
    let volume = r#"model = "volume"
tiers = [ { up_to = 99, unit_price = "1.0" }, { up_to = 199, unit_price = "0.5" }, { unit_price = "0.25" } ]"#;
    assert_eq!(price(graduated, &usage(&c)), d("125"));
    assert_eq!(price(volume, &usage(&c)), d("75"));
    // A fractional 99.5 still has a tier (Meteroid's code prices it at 0).
    assert_eq!(price(volume, "99.5"), d("49.75"));
}

#[test]
fn meteroid_package_45() {
    let c = case("meteroid_package_45");
    let toml = "model = \"package\"\npackage_size = 20\npackage_price = \"5\"";
    assert_eq!(price(toml, &usage(&c)), expected(&c));
    assert_eq!(
        price("model = \"per_unit\"\nunit_price = \"0.001\"", "100"),
        d("0.1")
    );
}

#[test]
fn billrun_interval_rounding() {
    let c = case("billrun_interval_rounding");
    // Steps with their own charging interval are tiers with an increment and a price per
    // interval; usage beyond BillRun's last step is unpriced: an unbounded tier at 0.
    let toml = r#"model = "graduated"
tiers = [
  { up_to = 2, unit_price = "1", per = "0.5", increment = "0.5" },
  { up_to = 6, unit_price = "1", per = "3.5", increment = "3.5" },
  { unit_price = "0" },
]"#;
    assert_eq!(price(toml, &usage(&c)), expected(&c));
}

#[test]
fn every_case_of_the_file_is_covered_above() {
    let names: Vec<String> = cases()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    let covered = [
        "lago_graduated_21_units",
        "lago_volume_doc_65000_calls",
        "lago_package_doc_201_units",
        "lago_package_spec_free_units",
        "killbill_doc_all_tiers_minutes_mbytes",
        "killbill_test_all_tiers_block_sizes",
        "openmeter_graduated_totals_22",
        "meteroid_tiered_vs_volume_150",
        "meteroid_package_45",
        "billrun_interval_rounding",
    ];
    for n in &names {
        assert!(covered.contains(&n.as_str()), "case {n} has no test");
    }
}
