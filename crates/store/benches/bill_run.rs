//! Month-end bill run: 1,000,000 accounts on SQLite (a temp file), finalized invoices with VAT,
//! gapless numbers and one ledger posting each.
//!
//! A whole-system measurement (database included), so it is a plain timed run rather than a
//! criterion loop. The set-up is excluded: accounts are imported through the store
//! (`import_lines`), then the month's daily rows are written straight into `bill_days` in the
//! shape the nightly job (`Store::sum_days`) leaves them — per account a plan fee on the 1st and,
//! on `TOLL_BENCH_DAYS` days (default 8), voice allowance use, calls by destination with
//! sub-cent prices and data overage — and every day of the month is marked summed. Each run
//! works on a fresh copy of that seeded file.
//!
//! The baseline, measured in the same run on the same file, is the least any bill run must do:
//! one grouped `SUM` over the open daily rows of every account.
//!
//! `cargo bench -p toll-store --bench bill_run`; `TOLL_BENCH_ACCOUNTS` (default 1,000,000) and
//! `TOLL_BENCH_DAYS` size it, `TOLL_BENCH_BATCH` sets the accounts per transaction,
//! `TOLL_BENCH_DIR` where the seeded files go (they are large: about 1.3 KB per daily row),
//! `TOLL_BENCH_SEED` a seeded file to reuse instead of seeding (a copy of `seed.db` taken
//! while an earlier run was going, with the same `TOLL_BENCH_ACCOUNTS` and `TOLL_BENCH_DAYS`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::float_arithmetic
)]

use std::path::Path;
use std::time::Instant;

use jiff::civil::date;
use rust_decimal::Decimal;
use toll_billing::{PeriodLabel, TaxMode, TaxRate};
use toll_catalog::lifecycle::{Actor, PlanAction};
use toll_core::{Currency, Micros, RoundingMethod};
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::billing::run::BillRunOptions;
use toll_store::import::{ImportLine, MAX_IMPORT};

const PLAN: &str = r#"
code = "bench"
name = "5G 畅享 58"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "58"
validity = "calendar_month"

[[allowances]]
usage = "voice"
quantity = 200
unit = "minutes"
"#;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn sqlite(path: &Path) -> Store {
    Store::connect(path.to_str().unwrap()).await.unwrap()
}

fn pool(s: &Store) -> &sqlx::SqlitePool {
    match s {
        Store::Sqlite(p) => p,
        Store::Postgres(_) => unreachable!("the bench seeds SQLite"),
    }
}

/// Accounts through the store, daily rows by SQL; returns the number of daily rows.
async fn seed(path: &Path, accounts: usize, days: usize) -> i64 {
    let s = sqlite(path).await;
    s.migrate().await.unwrap();
    let t = s
        .create_tenant("bench", "Bench", Currency::CNY, "Asia/Shanghai")
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
    let (alice, bob) = (Actor::new("alice").unwrap(), Actor::new("bob").unwrap());
    s.create_plan(t.id, PLAN, &alice).await.unwrap();
    for (a, who) in [
        (PlanAction::Submit, &alice),
        (PlanAction::Approve, &bob),
        (PlanAction::Activate, &bob),
    ] {
        s.plan_action(t.id, "bench", None, a, who, "")
            .await
            .unwrap();
    }
    let lines: Vec<ImportLine> = (0..accounts)
        .map(|i| ImportLine {
            customer: format!("c{i}"),
            customer_name: format!("客户{i}"),
            account: format!("a{i}"),
            // Seven in ten prepaid with 100 yuan, the rest postpaid: finalizing charges both.
            mode: if i % 10 < 7 {
                AccountMode::Prepaid
            } else {
                AccountMode::Postpaid {
                    credit_limit: Micros(500_000_000),
                }
            },
            number: format!("138{i:08}"),
            opening_balance: Micros(if i % 10 < 7 { 100_000_000 } else { 0 }),
        })
        .collect();
    for chunk in lines.chunks(MAX_IMPORT) {
        s.import_lines(&t, "bench", date(2026, 10, 1), chunk)
            .await
            .unwrap();
    }
    drop(lines);
    let days = days.clamp(1, 28);
    let stride = 28 / days;
    let sql = format!(
        "WITH RECURSIVE d (n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < {last}), \
         k (k) AS (VALUES (0), (1), (2)) \
         INSERT INTO bill_days (tenant_id, account_id, day, kind, label, product, unit, \
         quantity, events, amount) \
         SELECT a.tenant_id, a.id, printf('2026-11-%02d', 2 + d.n * {stride} + a.id % {stride}), \
         CASE k.k WHEN 0 THEN 'allowance_use' WHEN 1 THEN 'usage' ELSE 'overage' END, \
         CASE k.k WHEN 0 THEN 'voice' WHEN 1 THEN \
           CASE (a.id + d.n) % 3 WHEN 0 THEN '中国移动' WHEN 1 THEN '中国电信' \
           ELSE '香港 Hong Kong' END ELSE 'data' END, \
         CASE k.k WHEN 2 THEN 'data' ELSE 'voice' END, \
         CASE k.k WHEN 2 THEN 'bytes' ELSE 'seconds' END, \
         CASE k.k WHEN 0 THEN 60 * (1 + (a.id + d.n) % 20) WHEN 1 THEN 60 * (1 + d.n % 4) \
           ELSE 1048576 * (1 + (a.id * 7 + d.n) % 50) END, \
         1 + (a.id + d.n) % 4, \
         CASE k.k WHEN 0 THEN 0 WHEN 1 THEN 405000 + 1000 * ((a.id * 13 + d.n) % 700) \
           ELSE 5000 * (1 + (a.id * 7 + d.n) % 50) END \
         FROM accounts a, d, k WHERE a.tenant_id = {t} ORDER BY a.id, d.n, k.k",
        last = days - 1,
        t = t.id.0
    );
    let p = pool(&s);
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(p)
        .await
        .unwrap();
    let fee = format!(
        "INSERT INTO bill_days (tenant_id, account_id, day, kind, label, product, unit, \
         quantity, events, amount) SELECT tenant_id, id, '2026-11-01', 'recurring_fee', \
         '5G 畅享 58', 'plan', NULL, 0, 0, 58000000 FROM accounts WHERE tenant_id = {t} \
         ORDER BY id",
        t = t.id.0
    );
    sqlx::query(sqlx::AssertSqlSafe(fee))
        .execute(p)
        .await
        .unwrap();
    let marks = format!(
        "WITH RECURSIVE d (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM d WHERE n < 30) \
         INSERT INTO bill_usage_days (tenant_id, day, summed_ms) \
         SELECT {t}, printf('2026-11-%02d', n), 0 FROM d",
        t = t.id.0
    );
    sqlx::query(sqlx::AssertSqlSafe(marks))
        .execute(p)
        .await
        .unwrap();
    let rows: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM bill_days")
        .fetch_one(p)
        .await
        .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(p)
        .await
        .unwrap();
    s.close().await;
    rows.0
}

/// The daily rows of a seeded file given by `TOLL_BENCH_SEED`, after checking it is one (a
/// wrong path or a file seeded for another size stops the bench with the reason) and bringing
/// it to this build's schema, so the time printed for a kept seed includes its migrations.
async fn count_rows(path: &Path, accounts: usize) -> i64 {
    assert!(
        path.is_file(),
        "TOLL_BENCH_SEED: {} is not a file",
        path.display()
    );
    let s = sqlite(path).await;
    let (seeded, rows): (i64, i64) =
        sqlx::query_as("SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM bill_days)")
            .fetch_one(pool(&s))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "TOLL_BENCH_SEED: {} is not a seeded file: {e}",
                    path.display()
                )
            });
    // Changed in place, once: the next run finds nothing to migrate.
    s.migrate().await.unwrap();
    s.close().await;
    assert_eq!(
        usize::try_from(seeded).unwrap_or(0),
        accounts,
        "TOLL_BENCH_SEED holds {seeded} accounts; set TOLL_BENCH_ACCOUNTS to match"
    );
    rows
}

/// Copies the seeded database (closed and checkpointed, so the main file is all of it).
fn fresh_copy(seed: &Path, to: &Path) {
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", to.display()));
    }
    std::fs::copy(seed, to).unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run small then.
    let full = std::env::args().any(|a| a == "--bench");
    let accounts = env("TOLL_BENCH_ACCOUNTS", if full { 1_000_000 } else { 2_000 });
    let days = env("TOLL_BENCH_DAYS", 8);
    let batch = env("TOLL_BENCH_BATCH", toll_store::billing::run::DEFAULT_BATCH);
    let runs = env("TOLL_BENCH_RUNS", if full { 2 } else { 1 });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = match std::env::var("TOLL_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    // A seeded file kept from an earlier run (copied while it ran) saves minutes when
    // comparing builds; runs work on copies of it.
    let kept = std::env::var_os("TOLL_BENCH_SEED").map(std::path::PathBuf::from);
    let reuse = kept.is_some();
    let seeded = kept.unwrap_or_else(|| dir.path().join("seed.db"));
    let run_db = dir.path().join("run.db");
    rt.block_on(async {
        let started = Instant::now();
        let rows = if reuse {
            count_rows(&seeded, accounts).await
        } else {
            seed(&seeded, accounts, days).await
        };
        let size = std::fs::metadata(&seeded).unwrap().len();
        println!(
            "bill_run: seeded {accounts} accounts, {rows} daily rows ({days} active days), \
             {:.0} MB, in {:.1} s",
            size as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );

        fresh_copy(&seeded, &run_db);
        let s = sqlite(&run_db).await;
        let started = Instant::now();
        let groups: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT account_id, kind, label, SUM(quantity), SUM(events), \
             SUM(amount) FROM bill_days WHERE tenant_id = 1 AND invoice_id IS NULL \
             GROUP BY account_id, kind, label)",
        )
        .fetch_one(pool(&s))
        .await
        .unwrap();
        let baseline = started.elapsed().as_secs_f64();
        s.close().await;
        println!(
            "bill_run/baseline: one grouped SUM over the open rows ({} groups) in {baseline:.2} s",
            groups.0
        );

        for run in 1..=runs {
            fresh_copy(&seeded, &run_db);
            let s = sqlite(&run_db).await;
            let tenant = s.tenant("bench").await.unwrap();
            let opts = BillRunOptions {
                finalize: true,
                batch,
                today: date(2026, 12, 1),
            };
            let label: PeriodLabel = "2026-11".parse().unwrap();
            let started = Instant::now();
            let summary = s.bill_run(&tenant, label, &opts, |_, _| {}).await.unwrap();
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(summary.created, accounts as u64, "{:?}", summary.failed);
            assert!(summary.failed.is_empty());
            let verify = Instant::now();
            let report = s.verify_ledger(tenant.id).await.unwrap();
            assert!(report.is_intact(), "{report:?}");
            println!(
                "bill_run/sqlite run {run}: {} invoices (batch {batch}) in {secs:.2} s = {:.0} \
                 accounts/s, {:.1}x the baseline; numbers {} – {}, total {} yuan; ledger \
                 verified ({} entries) in {:.1} s",
                summary.created,
                accounts as f64 / secs,
                secs / baseline,
                summary.first_number.unwrap_or_default(),
                summary.last_number.unwrap_or_default(),
                summary.total,
                report.entries_checked,
                verify.elapsed().as_secs_f64()
            );
            s.close().await;
        }
    });
}
