#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The server's daily billing jobs: on the first tick of a tenant-local day they sum the
//! days before and bill the periods that ended; later ticks that day do nothing, and a
//! restarted server (which forgot the days it did) bills nothing twice.

use std::collections::HashMap;

use jiff::Timestamp;
use jiff::civil::date;
use rust_decimal::Decimal;
use toll_billing::{TaxMode, TaxRate};
use toll_core::{Currency, Micros, RoundingMethod, UsageKind};
use toll_server::billing_jobs::{AutoBill, run_due};
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::cdrs::CdrRecord;
use toll_store::charging::{ChargeOutcome, Charger, RecordBatch, UsageEvent};
use toll_store::suspense::{NewSuspense, Stage};

/// A rated call of 13800000001 at `at_ms` that cost `cost`.
fn call(k: usize, at_ms: i64, cost: &str) -> (UsageEvent, CdrRecord) {
    let number = "13800000001".to_string();
    let ev = UsageEvent {
        key: format!("pbx/{k}"),
        number: number.clone(),
        usage: UsageKind::Voice,
        service: None,
        at_ms,
        quantity: 60,
        destination: Some("CN-Mobile".into()),
        rated_cost: Some(cost.parse().unwrap()),
    };
    let rec = CdrRecord {
        source: "pbx".into(),
        record_id: k.to_string(),
        import_id: None,
        caller: number.clone(),
        callee: "01088886666".into(),
        destination: Some("01088886666".into()),
        start_ms: at_ms,
        utc_offset_s: 8 * 3600,
        answer_ms: Some(at_ms),
        end_ms: Some(at_ms + 60_000),
        quantity: 60_000_000_000,
        category: "call".into(),
        subject: number,
        rated_usage: Some(60_000_000_000),
        cost: Some(cost.parse().unwrap()),
        matched_prefix: Some("010".into()),
        destination_id: Some("CN-Mobile".into()),
        carrier: None,
        region: None,
        default_rated: false,
        call_id: None,
        swept: false,
        suspense_id: None,
        suspense_key: None,
    };
    (ev, rec)
}

fn at(rfc3339: &str) -> Timestamp {
    rfc3339.parse().unwrap()
}

#[tokio::test]
async fn the_first_tick_of_a_local_day_sums_and_bills_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::connect(dir.path().join("toll.db").to_str().unwrap())
        .await
        .unwrap();
    s.migrate().await.unwrap();
    let t = s
        .create_tenant("acme", "Acme", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    s.set_invoicing(t.id, TaxMode::Exclusive, RoundingMethod::Middle)
        .await
        .unwrap();
    s.set_tax_rule(
        t.id,
        "*",
        &TaxRate::percent("VAT", Decimal::from(6)).unwrap(),
    )
    .await
    .unwrap();
    s.create_customer(t.id, "c", "x").await.unwrap();
    s.create_account(t.id, "c", "a1", AccountMode::Unlimited)
        .await
        .unwrap();
    s.add_subscriber(t.id, "a1", "13800000001").await.unwrap();
    // Two calls in November (Beijing time), 0.405 and 1.205 yuan.
    let calls = [
        call(1, at("2026-11-03T10:00:00+08:00").as_millisecond(), "0.405"),
        call(2, at("2026-11-30T23:30:00+08:00").as_millisecond(), "1.205"),
    ];
    let (events, records): (Vec<_>, Vec<_>) = calls.iter().cloned().unzip();
    let refused = |_: usize, _, why: &str| NewSuspense {
        item_key: "x".into(),
        source: "pbx".into(),
        format: "test".into(),
        import_id: None,
        line: None,
        stage: Stage::Charge,
        class: "refused".into(),
        field: None,
        reason: why.into(),
        raw: Vec::new(),
        record: None,
    };
    let out = Charger::new(s.clone(), t.clone())
        .unwrap()
        .charge_records(RecordBatch {
            events: &events,
            records: &records,
            suspense: &[],
            on_refused: &refused,
            resolved: &[],
            import: None,
            closes: &[],
        })
        .await
        .unwrap();
    assert!(
        out.iter()
            .all(|o| matches!(o, ChargeOutcome::Charged { .. }))
    );

    let mut done = HashMap::new();
    // 30 November, late evening in Beijing: November has not ended, nothing to bill.
    let r = run_due(
        &s,
        at("2026-11-30T15:00:00Z"),
        AutoBill::Finalize,
        &mut done,
    )
    .await
    .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].day, date(2026, 11, 30));
    assert_eq!(
        r[0].days_summed,
        u64::from(toll_store::billing::sums::NIGHTLY_WINDOW_DAYS)
    );
    let b = r[0].bill_run.as_ref().unwrap();
    assert_eq!(b.period, "2026-10");
    assert_eq!(b.created, 0);

    // 00:30 on 1 December in Beijing (16:30 UTC the day before): November is billed.
    let r = run_due(
        &s,
        at("2026-11-30T16:30:00Z"),
        AutoBill::Finalize,
        &mut done,
    )
    .await
    .unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].day, date(2026, 12, 1));
    let b = r[0].bill_run.as_ref().unwrap();
    assert_eq!(b.period, "2026-11");
    assert_eq!((b.created, b.existing), (1, 0), "{:?}", b.failed);
    assert_eq!(b.first_number.as_deref(), Some("INV-2026-000001"));
    // 0.405 + 1.205 = 1.61, VAT 6 % on top = 0.0966 → 0.10: 1.71.
    assert_eq!(b.total, Micros(1_710_000));
    let list = s.invoices(t.id, Some("a1"), None, None, 10).await.unwrap();
    assert_eq!(list.len(), 1);
    let inv = s.invoice(t.id, list[0].id).await.unwrap();
    assert_eq!(inv.status, "finalized");
    assert_eq!(inv.period, "2026-11");
    assert_eq!(inv.invoice.total, Micros(1_710_000));

    // Later that day: nothing runs again.
    let r = run_due(
        &s,
        at("2026-12-01T09:00:00Z"),
        AutoBill::Finalize,
        &mut done,
    )
    .await
    .unwrap();
    assert!(r.is_empty());

    // A restarted server forgot what it did: it runs again and bills nothing twice.
    let r = run_due(
        &s,
        at("2026-12-01T09:00:00Z"),
        AutoBill::Finalize,
        &mut HashMap::new(),
    )
    .await
    .unwrap();
    let b = r[0].bill_run.as_ref().unwrap();
    assert_eq!((b.created, b.existing), (0, 1));
    assert_eq!(
        s.invoices(t.id, None, None, None, 10).await.unwrap().len(),
        1
    );
}
