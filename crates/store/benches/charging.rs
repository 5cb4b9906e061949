//! Charging throughput: 1,000,000 usage events against 100,000 subscribers with allowances, on
//! SQLite (a temp file) and, when `TOLL_BENCH_DATABASE_URL` (or `TOLL_TEST_DATABASE_URL`) names
//! a PostgreSQL server, on PostgreSQL in a fresh schema.
//!
//! A whole-system measurement (database included), so it is a plain timed run rather than a
//! criterion loop: the set-up (import of the lines) is excluded, the charging of every batch
//! included. `cargo bench -p toll-store --bench charging`; `TOLL_BENCH_LINES` and
//! `TOLL_BENCH_EVENTS` shrink it, `TOLL_BENCH_BATCH` sets the events per transaction,
//! `TOLL_BENCH_ENGINES=sqlite` or `=postgres` runs one engine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::float_arithmetic
)]

use std::time::Instant;

use jiff::civil::date;
use toll_catalog::lifecycle::{Actor, PlanAction};
use toll_core::{Currency, Micros, UsageKind};
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::charging::{ChargeOutcome, Charger, UsageEvent};
use toll_store::import::{ImportLine, MAX_IMPORT};

const PLAN: &str = r#"
code = "bench"
name = "5G 畅享 bench"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "58"
validity = "calendar_month"

[[allowances]]
usage = "voice"
quantity = 200
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 10
unit = "gb"

[[allowances]]
usage = "data"
quantity = 5
unit = "gb"
services = ["wechat", "douyin"]

[[allowances]]
usage = "sms"
quantity = 50
unit = "messages"

[[overage]]
usage = "voice"
unit = "minute"
per_event = "up"
[overage.pricing]
model = "per_unit"
unit_price = "0.15"

[[overage]]
usage = "data"
unit = "mb"
per_event = "up"
[overage.pricing]
model = "graduated"
tiers = [{ up_to = 1024, unit_price = "0.005" }, { unit_price = "0.003" }]

[[overage]]
usage = "sms"
unit = "message"
per_event = "up"
[overage.pricing]
model = "per_unit"
unit_price = "0.1"
"#;

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn number(i: usize) -> String {
    format!("138{i:08}")
}

/// The seeded event mix: 70 % calls of 1 s – 10 min, 20 % data sessions of 1 KB – 40 MB (a
/// quarter of them WeChat/Douyin traffic), 10 % SMS; start times spread over Nov 2–29.
fn events(lines: usize, count: usize) -> Vec<UsageEvent> {
    let mut rng = Lcg(28689);
    let base = 1_793_548_800_000; // 2026-11-02T00:00+08:00
    (0..count)
        .map(|k| {
            let line = rng.next() as usize % lines;
            let kind = rng.next() % 10;
            let (usage, quantity, service) = match kind {
                0..=6 => (UsageKind::Voice, 1 + (rng.next() % 600) as i64, None),
                7 | 8 => {
                    let service = rng.next().is_multiple_of(4).then(|| "wechat".to_string());
                    (
                        UsageKind::Data,
                        1024 + (rng.next() % 40_000_000) as i64,
                        service,
                    )
                }
                _ => (UsageKind::Sms, 1, None),
            };
            UsageEvent {
                key: format!("cdr-{k}"),
                number: number(line),
                usage,
                service,
                at_ms: base + (k as i64) * 2_419_200_000 / count as i64,
                quantity,
                destination: None,
                rated_cost: None,
            }
        })
        .collect()
}

async fn run(name: &str, store: Store, lines: usize, evs: &[UsageEvent], batch: usize) {
    store.migrate().await.unwrap();
    let t = store
        .create_tenant("bench", "Bench", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    let (alice, bob) = (Actor::new("alice").unwrap(), Actor::new("bob").unwrap());
    store.create_plan(t.id, PLAN, &alice).await.unwrap();
    for (a, who) in [
        (PlanAction::Submit, &alice),
        (PlanAction::Approve, &bob),
        (PlanAction::Activate, &bob),
    ] {
        store
            .plan_action(t.id, "bench", None, a, who, "")
            .await
            .unwrap();
    }
    let started = Instant::now();
    let all: Vec<ImportLine> = (0..lines)
        .map(|i| ImportLine {
            customer: format!("c{i}"),
            customer_name: format!("客户{i}"),
            account: format!("a{i}"),
            mode: if i % 10 < 7 {
                AccountMode::Prepaid
            } else {
                AccountMode::Postpaid {
                    credit_limit: Micros(500_000_000),
                }
            },
            number: number(i),
            opening_balance: Micros(if i % 10 < 7 { 100_000_000 } else { 0 }),
        })
        .collect();
    for chunk in all.chunks(MAX_IMPORT) {
        store
            .import_lines(&t, "bench", date(2026, 11, 1), chunk)
            .await
            .unwrap();
    }
    let import = started.elapsed();

    let charger = Charger::new(store.clone(), t.clone()).unwrap();
    let started = Instant::now();
    let (mut charged, mut refused, mut duplicate) = (0u64, 0u64, 0u64);
    for chunk in evs.chunks(batch) {
        for o in charger.charge_batch(chunk).await.unwrap() {
            match o {
                ChargeOutcome::Charged { .. } => charged += 1,
                ChargeOutcome::Refused { .. } => refused += 1,
                ChargeOutcome::Duplicate => duplicate += 1,
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let verify = Instant::now();
    let report = store.verify_ledger(t.id).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    println!(
        "charging/{name}: {} events against {lines} subscribers (batch {batch}) in {secs:.2} s = \
         {:.0} events/s; charged {charged}, refused {refused}, duplicate {duplicate}; \
         import {:.2} s; ledger verify of {} entries {:.2} s",
        evs.len(),
        evs.len() as f64 / secs,
        import.as_secs_f64(),
        report.entries_checked,
        verify.elapsed().as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let full = std::env::args().any(|a| a == "--bench");
    let lines = env("TOLL_BENCH_LINES", if full { 100_000 } else { 1_000 });
    let count = env("TOLL_BENCH_EVENTS", if full { 1_000_000 } else { 10_000 });
    let batch = env("TOLL_BENCH_BATCH", toll_store::charging::MAX_BATCH);
    let evs = events(lines, count);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db");
        // `TOLL_BENCH_ENGINES=postgres` (or `sqlite`) runs one engine only.
        let engines = std::env::var("TOLL_BENCH_ENGINES").unwrap_or_default();
        let wants = |e: &str| engines.is_empty() || engines.split(',').any(|x| x.trim() == e);
        if wants("sqlite") {
            let store = Store::connect(path.to_str().unwrap()).await.unwrap();
            run("sqlite", store, lines, &evs, batch).await;
        }
        let pg = std::env::var("TOLL_BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("TOLL_TEST_DATABASE_URL"))
            .ok()
            .filter(|_| wants("postgres"));
        if let Some(url) = pg {
            let schema = format!("toll_bench_{}", std::process::id());
            let store = Store::connect_postgres_schema(&url, &schema).await.unwrap();
            run("postgres", store.clone(), lines, &evs, batch).await;
            if let Store::Postgres(pool) = &store {
                let sql = format!("DROP SCHEMA {schema} CASCADE");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    });
}
