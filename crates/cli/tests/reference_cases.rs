#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every case of the shared reference (`rating-cases.json`): the tariff is written as CGRateS
//! CSV files, loaded through the importer and rated; costs and max usages must match exactly.

mod common;

use std::process::Command;
use std::str::FromStr;

use rust_decimal::Decimal;
use toll_cli::event_args::EventText;

fn dec(v: &serde_json::Value) -> Decimal {
    Decimal::from_str(&common::text(v)).unwrap()
}

#[test]
fn every_reference_case_rates_exactly_in_process() {
    let cases = common::cases();
    assert!(cases.len() >= 11);
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        common::write_cgrates(&case["tariff"], dir.path());
        let loaded = toll_cli::load::load(dir.path()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let call = &case["call"];
        let (tor, usage) = common::usage_of(call);
        let start = common::text(&call["start"]);
        let fields = [
            common::text(&call["tenant"]),
            common::text(&call["category"]),
            common::text(&call["subject"]),
            common::text(&call["destination"]),
        ];
        let ev = EventText {
            tenant: &fields[0],
            category: &fields[1],
            subject: &fields[2],
            destination: &fields[3],
            start: &start,
            usage: &usage,
            tor,
            route_carrier: None,
        }
        .parse()
        .unwrap();
        match case["kind"].as_str().unwrap() {
            "max_usage" => {
                let balance = common::balance(case);
                let m = toll_rating::max_usage(&loaded.tariff, &ev, balance).unwrap();
                let want = case["expected_max_usage_seconds"].as_i64().unwrap();
                assert_eq!(m.usage, want * 1_000_000_000, "{name}: max usage");
            }
            _ => {
                let rated = toll_rating::rate(&loaded.tariff, &ev)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let want = dec(&case["expected_cost"]);
                assert_eq!(
                    rated.cost, want,
                    "{name}: cost {} want {}",
                    rated.cost, want
                );
                // The pieces cover the call exactly.
                let real: i64 = rated.pieces.iter().map(|p| p.real).sum();
                assert_eq!(real, ev.usage, "{name}: pieces cover the call");
            }
        }
    }
}

#[test]
fn every_reference_case_through_the_toll_binary() {
    for case in &common::cases() {
        let name = case["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        common::write_cgrates(&case["tariff"], dir.path());
        let call = &case["call"];
        let (tor, usage) = common::usage_of(call);
        let kind = case["kind"].as_str().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_toll"));
        cmd.arg(if kind == "max_usage" {
            "max-usage"
        } else {
            "cost"
        })
        .arg("--tariff")
        .arg(dir.path())
        .args(["--tenant", &common::text(&call["tenant"])])
        .args(["--category", &common::text(&call["category"])])
        .args(["--subject", &common::text(&call["subject"])])
        .args(["--destination", &common::text(&call["destination"])])
        .args(["--start", &common::text(&call["start"])])
        .args(["--usage", &usage])
        .args(["--tor", tor])
        .arg("--json");
        if kind == "max_usage" {
            let balance = common::balance(case);
            cmd.args(["--balance", &balance.to_string()]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if kind == "max_usage" {
            assert_eq!(
                json["max_usage_seconds"].to_string(),
                case["expected_max_usage_seconds"].to_string(),
                "{name}"
            );
        } else {
            let cost = Decimal::from_str(json["cost"].as_str().unwrap()).unwrap();
            assert_eq!(cost, dec(&case["expected_cost"]), "{name}");
            assert!(
                json["pieces"].as_array().is_some_and(|p| !p.is_empty()),
                "{name}: pieces"
            );
            assert!(json.get("connect_fee").is_some() && json.get("rated_usage").is_some());
        }
    }
}
