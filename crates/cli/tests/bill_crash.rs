#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Crash test of bill runs: `toll bill run` over 20,000 accounts is killed with SIGKILL at
//! random points and restarted until it finishes. Then every account has exactly one invoice for
//! the period, the numbers run from INV-2026-000001 without a gap or a repeat, every daily row
//! is billed once, and the ledger is intact with each wallet charged exactly its invoice.
//!
//! `TOLL_BILL_CRASH_ACCOUNTS` makes it smaller for a quick local run.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use toll_billing::{TaxMode, TaxRate};
use toll_core::{Currency, RoundingMethod, UsageKind};
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::cdrs::CdrRecord;
use toll_store::charging::{ChargeOutcome, Charger, RecordBatch, RefusalCode, UsageEvent};
use toll_store::suspense::{NewSuspense, Stage};

const KILLS: u32 = 5;
/// 2026-11-03 10:00 Beijing time.
const NOV_3: i64 = 1_793_671_200_000;

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

fn number(i: usize) -> String {
    format!("138{i:08}")
}

/// A rated call of `number` on day `day` of November, priced by the tariff at `cost`.
fn call(i: usize, k: usize, day: i64, cost: &str) -> (UsageEvent, CdrRecord) {
    let at_ms = NOV_3 + (day - 3) * 86_400_000 + k as i64 * 1000;
    let dest = if k.is_multiple_of(2) {
        "CN-Mobile"
    } else {
        "HK"
    };
    let ev = UsageEvent {
        key: format!("pbx/{i}-{k}"),
        number: number(i),
        usage: UsageKind::Voice,
        service: None,
        at_ms,
        quantity: 60,
        destination: Some(dest.into()),
        rated_cost: Some(cost.parse().unwrap()),
    };
    let rec = CdrRecord {
        source: "pbx".into(),
        record_id: format!("{i}-{k}"),
        import_id: None,
        caller: number(i),
        callee: "01088886666".into(),
        destination: Some("01088886666".into()),
        start_ms: at_ms,
        utc_offset_s: 8 * 3600,
        answer_ms: Some(at_ms),
        end_ms: Some(at_ms + 60_000),
        quantity: 60_000_000_000,
        category: "call".into(),
        subject: number(i),
        rated_usage: Some(60_000_000_000),
        cost: Some(cost.parse().unwrap()),
        matched_prefix: Some("010".into()),
        destination_id: Some(dest.into()),
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

/// Accounts a0..aN, each with one line and two calls (0.405 and 1.205: a rounding line on
/// every invoice), VAT 6 % on top.
async fn setup(db: &str, accounts: usize) {
    let s = Store::connect(db).await.unwrap();
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
    for i in 0..accounts {
        let code = format!("a{i}");
        s.create_account(t.id, "c", &code, AccountMode::Unlimited)
            .await
            .unwrap();
        s.add_subscriber(t.id, &code, &number(i)).await.unwrap();
    }
    let c = Charger::new(s.clone(), t.clone()).unwrap();
    let refused = |_: usize, _: RefusalCode, why: &str| NewSuspense {
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
    let calls: Vec<(UsageEvent, CdrRecord)> = (0..accounts)
        .flat_map(|i| {
            let day = 3 + (i % 20) as i64;
            [call(i, 0, day, "0.405"), call(i, 1, day + 1, "1.205")]
        })
        .collect();
    for chunk in calls.chunks(2_000) {
        let (events, records): (Vec<_>, Vec<_>) = chunk.iter().cloned().unzip();
        let out = c
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
    }
    s.close().await;
}

/// Slow in a debug build, so `cargo test` skips it and `.ci/run` runs it in release:
/// `cargo test --release -p toll-cli --test bill_crash -- --ignored`.
#[test]
#[ignore = "slow suite: .ci/run runs it in release"]
fn bill_run_killed_at_random_points_makes_one_invoice_per_account_with_gapless_numbers() {
    let accounts: usize = std::env::var("TOLL_BILL_CRASH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("toll.db").to_str().unwrap().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let t0 = Instant::now();
    rt.block_on(setup(&db, accounts));
    eprintln!(
        "set up {accounts} accounts in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let log = dir.path().join("bill.log");
    let bin = env!("CARGO_BIN_EXE_toll");
    let run = || {
        Command::new(bin)
            .args(["--database", &db, "bill", "run", "--tenant", "acme"])
            .args(["--period", "2026-11", "--today", "2026-12-05"])
            .args(["--batch", "100", "--quiet"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap()
    };
    let mut rng = Lcg(std::env::var("TOLL_BILL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11));
    let (mut kills, mut finished) = (0, false);
    let started = Instant::now();
    while !finished {
        let mut child = run();
        let deadline =
            (kills < KILLS).then(|| Instant::now() + Duration::from_millis(20 + rng.next() % 600));
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "toll bill run failed after {kills} kills: {status}; stderr:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
                finished = true;
                break;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(
        kills >= 1,
        "the run finished before any kill: crashes were not exercised"
    );

    rt.block_on(async {
        let s = Store::connect(&db).await.unwrap();
        let t = s.tenant("acme").await.unwrap();
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
        let Store::Sqlite(pool) = &s else {
            unreachable!()
        };
        let n = accounts as i64;
        let (invoices, distinct_accounts, distinct_numbers): (i64, i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), COUNT(DISTINCT account_id), COUNT(DISTINCT number) FROM invoices",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            (invoices, distinct_accounts, distinct_numbers),
            (n, n, n),
            "after {kills} kills"
        );
        // Gapless: the numbers are exactly INV-2026-000001 .. INV-2026-{n}.
        let (first, last): (String, String) =
            sqlx::query_as("SELECT MIN(number), MAX(number) FROM invoices")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!(first, "INV-2026-000001");
        assert_eq!(last, format!("INV-2026-{n:06}"));
        let (counter,): (i64,) = sqlx::query_as("SELECT last FROM invoice_counters")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(counter, n, "no number was taken and lost");
        // Every invoice: 0.41 + 1.21 - 0.01 rounding + 6 % of 1.61 (0.10) = 1.71.
        let (total, odd): (i64, i64) =
            sqlx::query_as("SELECT SUM(total), SUM(total != 1710000) FROM invoices")
                .fetch_one(pool)
                .await
                .unwrap();
        assert_eq!((total, odd), (n * 1_710_000, 0));
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM bill_days b JOIN accounts a ON a.id = b.account_id \
                 WHERE b.invoice_id IS NULL \
                 AND (b.late = 1 OR a.billed_through IS NULL OR b.day >= a.billed_through)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(open, 0, "every daily row is on an invoice");
        // Each wallet has been charged exactly its invoice: the calls (1.61) and the tax.
        let (off,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM accounts a JOIN ledger_accounts w ON w.id = a.wallet_id \
             WHERE w.debits - w.credits != 1710000",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(off, 0);
        let sample = s.invoice_by_number(t.id, "INV-2026-000001").await.unwrap();
        assert_eq!(sample.invoice.lines.len(), 4);
        eprintln!(
            "{kills} kills in {:.1} s; {n} invoices, numbers {first} to {last}",
            started.elapsed().as_secs_f64()
        );
    });

    // Once more: nothing to do.
    let out = Command::new(bin)
        .args(["--database", &db, "bill", "run", "--tenant", "acme"])
        .args(["--period", "2026-11", "--today", "2026-12-05", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["created"], 0);
    assert_eq!(v["existing"], accounts);
}
