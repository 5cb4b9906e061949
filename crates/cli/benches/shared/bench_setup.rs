//! The set-up the ingestion benchmarks share (`toll import`, NATS workers, HTTP): a tenant with
//! `lines` lines on one plan of 100 free minutes, calls beyond them priced by the tariff.
//! Included by path from each bench (`#[path = …] mod bench_setup;`).
#![allow(dead_code)]

use toll_catalog::lifecycle::{Actor, PlanAction};
use toll_core::Currency;
use toll_store::Store;
use toll_store::import::{ImportLine, MAX_IMPORT};

/// A size from the environment, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The bench's line `i`.
pub fn number(i: usize) -> String {
    format!("138{i:08}")
}

/// 100 voice minutes a month, calls beyond them priced by the tariff's `retail` profile.
pub const PLAN: &str = r#"
code = "bench"
name = "通话套餐 bench"
class = "base"
kind = "voice"
currency = "CNY"
base_fee = "0"
validity = "calendar_month"

[tariff]
category = "call"
subject = "retail"

[[allowances]]
usage = "voice"
quantity = 100
unit = "minutes"
"#;

pub async fn setup(store: &Store, lines: usize) {
    store.migrate().await.unwrap();
    let t = store
        .create_tenant("acme", "Acme", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    let (maker, checker) = (Actor::new("alice").unwrap(), Actor::new("bob").unwrap());
    store.create_plan(t.id, PLAN, &maker).await.unwrap();
    for (a, who) in [
        (PlanAction::Submit, &maker),
        (PlanAction::Approve, &checker),
        (PlanAction::Activate, &checker),
    ] {
        store
            .plan_action(t.id, "bench", None, a, who, "")
            .await
            .unwrap();
    }
    let all: Vec<ImportLine> = (0..lines)
        .map(|i| ImportLine {
            customer: format!("c{i}"),
            customer_name: format!("客户 {i}"),
            account: format!("a{i}"),
            mode: toll_store::accounts::AccountMode::Unlimited,
            number: number(i),
            opening_balance: toll_core::Micros(0),
        })
        .collect();
    for chunk in all.chunks(MAX_IMPORT) {
        store
            .import_lines(&t, "bench", jiff::civil::date(2026, 11, 1), chunk)
            .await
            .unwrap();
    }
}
