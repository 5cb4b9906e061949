#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The demo data set (`toll demo`): seeded into a fresh database of each engine (SQLite, and
//! PostgreSQL in a fresh schema when `TOLL_TEST_DATABASE_URL` is set), it has one plan in each
//! lifecycle state, its lines, a month of charged CDRs with stored rows and ledger entries, a
//! suspense queue with reasons, an intact ledger, revenue — and the same seed gives the same
//! totals.

#[path = "../../store/tests/common/mod.rs"]
mod common;

use rust_decimal::Decimal;
use toll_cli::demo_data::{self, DemoError, DemoOptions, DemoSummary};
use toll_store::Store;
use toll_store::cdrs::CdrQuery;
use toll_store::suspense::SuspenseFilter;

const SUBSCRIBERS: usize = 50;
const CDRS: usize = 2_000;

fn opts() -> DemoOptions {
    DemoOptions {
        now: "2026-11-20T15:30:00+08:00".parse().unwrap(),
        subscribers: SUBSCRIBERS,
        cdrs: CDRS,
        seed: 7,
    }
}

/// Seeds `store` and checks everything the database says against the summary.
async fn seed_and_check(store: &Store, engine: &str) -> DemoSummary {
    let s = demo_data::seed(store, &opts()).await.unwrap();
    let t = store.tenant("demo").await.unwrap();
    assert_eq!(
        (t.currency.as_str(), t.time_zone.as_str()),
        ("CNY", "Asia/Shanghai")
    );

    // Five plans, one in each lifecycle state, as the store has them.
    let versions = store.plan_versions(t.id).await.unwrap();
    let mut states: Vec<&str> = versions.iter().map(|v| v.status.as_str()).collect();
    states.sort_unstable();
    assert_eq!(
        states,
        ["active", "approved", "draft", "pending_approval", "retired"],
        "{engine}"
    );
    assert_eq!(s.plans_by_status.values().sum::<usize>(), 5);
    // Four eyes: whoever approved a plan did not write it.
    for v in &versions {
        for step in store.plan_history(t.id, &v.code).await.unwrap() {
            if step.action == "approve" {
                assert_ne!(
                    step.actor, v.author,
                    "{engine}: {} approved by its author",
                    v.code
                );
            }
        }
    }

    // Every subscriber's account exists, with its wallet; no more than asked for.
    assert_eq!(s.subscribers, SUBSCRIBERS);
    assert_eq!(s.prepaid + s.postpaid, SUBSCRIBERS);
    assert!(s.prepaid > 0 && s.postpaid > 0, "{engine}: {s:?}");
    for i in 1..=SUBSCRIBERS {
        store.account(t.id, &format!("acct-{i:06}")).await.unwrap();
    }
    assert!(
        store
            .account(t.id, &format!("acct-{:06}", SUBSCRIBERS + 1))
            .await
            .is_err()
    );
    assert_eq!(s.subscribers_by_plan.values().sum::<usize>(), SUBSCRIBERS);
    assert_eq!(
        s.subscribers_by_plan.len(),
        2,
        "the active and the retired plan"
    );

    // Every generated record is accounted for: charged (a stored CDR), skipped or suspended.
    assert_eq!(s.cdrs_generated, CDRS);
    assert_eq!(
        s.cdrs_charged + s.skipped + s.suspended,
        CDRS as u64,
        "{engine}: {s:?}"
    );
    let (rows, charged) = store.cdr_totals(t.id).await.unwrap();
    assert_eq!(rows as u64, s.cdrs_charged, "{engine}");
    assert_eq!(
        rows as usize,
        CDRS - s.suspended as usize - s.skipped as usize
    );
    assert_eq!(charged.to_decimal(), s.usage_revenue, "{engine}");
    assert!(s.cdrs_charged as usize > CDRS * 9 / 10, "{engine}: {s:?}");

    // Calls, messages and data were all rated by the tariff (no default rate is configured).
    let page = store
        .cdrs(
            t.id,
            &CdrQuery {
                from_ms: 0,
                to_ms: i64::MAX,
                limit: 1_000,
                ..CdrQuery::default()
            },
        )
        .await
        .unwrap();
    for cat in ["call", "sms", "data"] {
        let of: Vec<_> = page.iter().filter(|c| c.category == cat).collect();
        assert!(!of.is_empty(), "{engine}: no {cat} CDRs");
        assert!(
            of.iter().all(|c| c.cost.is_some() && !c.default_rated),
            "{engine}: {cat} not tariff-rated"
        );
    }
    // Early in the month the allowances cover the records (what goes beyond them later is
    // the usage revenue checked below).
    assert!(page.iter().any(|c| c.priced_by == "allowance"), "{engine}");
    // Both peak and off-peak calls (the daily curve spans the band changes at 08:00 and 21:00).
    let hours: std::collections::BTreeSet<i64> = page
        .iter()
        .filter(|c| c.category == "call")
        .map(|c| (c.start_ms / 3_600_000 + 8) % 24)
        .collect();
    assert!(hours.iter().any(|h| (8..21).contains(h)), "{engine}");
    assert!(hours.iter().any(|h| !(8..21).contains(h)), "{engine}");

    // The suspense queue holds the broken records with their reasons.
    assert!(s.suspended > 0);
    let items = store
        .suspense_items(
            t.id,
            &SuspenseFilter {
                limit: 1_000,
                ..SuspenseFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(items.len() as u64, s.suspended, "{engine}");
    assert!(
        items
            .iter()
            .all(|i| !i.reason.is_empty() && !i.raw.is_empty())
    );
    for class in [
        "parse_error",
        "unknown_subscriber",
        "unauthorized_destination",
    ] {
        assert!(
            items.iter().any(|i| i.class == class),
            "{engine}: no {class} in {:?}",
            s.suspended_by_class
        );
    }
    let counted: u64 = s.suspended_by_class.values().sum();
    assert_eq!(counted, s.suspended);

    // The ledger verifies, and the wallets paid fees and usage.
    let report = store.verify_ledger(t.id).await.unwrap();
    assert!(report.is_intact(), "{engine}: {report:?}");
    assert!(report.entries_checked > 0);
    assert!(s.renewed_periods > 0, "{engine}: {s:?}");
    assert!(s.fee_revenue > Decimal::ZERO, "{engine}: {s:?}");
    assert!(s.usage_revenue > Decimal::ZERO, "{engine}: {s:?}");
    assert_eq!(s.total_revenue, s.fee_revenue + s.usage_revenue);
    s
}

#[tokio::test]
async fn the_demo_operator_is_seeded_on_every_engine_and_the_same_seed_gives_the_same_totals() {
    for fresh in common::engines().await {
        let first = seed_and_check(&fresh.store, fresh.name).await;
        // Seeding a database that has the demo already is refused, not doubled.
        assert!(matches!(
            demo_data::seed(&fresh.store, &opts()).await,
            Err(DemoError::NotEmpty(_))
        ));
        // Another fresh database, the same seed: the same month.
        let again = common::engines()
            .await
            .into_iter()
            .find(|f| f.name == fresh.name)
            .unwrap();
        let second = seed_and_check(&again.store, again.name).await;
        assert_eq!(first, second, "{}", fresh.name);
        // A different seed is a different month.
        let other = common::engines()
            .await
            .into_iter()
            .find(|f| f.name == fresh.name)
            .unwrap();
        let third = demo_data::seed(&other.store, &DemoOptions { seed: 8, ..opts() })
            .await
            .unwrap();
        assert_ne!(first.total_revenue, third.total_revenue);
        println!("{}:\n{}", fresh.name, first.to_text());
    }
}

#[test]
fn the_demo_tariff_compiles_from_the_embedded_files() {
    let t = demo_data::tariff().unwrap();
    assert!(t.stats.profiles >= 7, "{:?}", t.stats);
}
