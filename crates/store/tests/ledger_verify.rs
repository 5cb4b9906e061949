#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `toll ledger verify` semantics through `Store::verify_ledger`, on every engine: a ledger built
//! by the real services (top-ups, subscription fees, a prorated plan change, a charged batch) is
//! intact; then one row is tampered with directly in the database, each time on a fresh store,
//! and the report must name the first broken link at its exact `seq` with the right reason and
//! the accounts whose stored totals no longer match their entries.

mod common;

use common::fixtures::{active_plan, actor, tenant};
use jiff::civil::date;
use rust_decimal::Decimal;
use toll_charging::ledger::{EntryFields, TxKind, chain_entry};
use toll_core::{Micros, UsageKind};
use toll_store::accounts::AccountMode;
use toll_store::charging::{ChargeOutcome, Charger, UsageEvent};
use toll_store::ledger::LedgerReport;
use toll_store::subscriptions::{ChangeWhen, SubscribeRequest};
use toll_store::{Store, Tenant, TenantId};

fn m(s: &str) -> Micros {
    s.parse().unwrap()
}

const MB: i64 = 1_048_576;

/// Runs one statement with integer arguments directly on the engine's pool (no service, no
/// chain update: what an attacker or a botched manual fix would do). Returns the rows affected.
async fn raw_exec(store: &Store, sql: &'static str, args: &[i64]) -> u64 {
    match store {
        Store::Sqlite(p) => {
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(*a);
            }
            q.execute(p).await.unwrap().rows_affected()
        }
        Store::Postgres(p) => {
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(*a);
            }
            q.execute(p).await.unwrap().rows_affected()
        }
    }
}

/// One ledger entry as stored, without its hashes.
type Row = (i64, String, i64, String, i64, i64, i64);

async fn entries(store: &Store, tenant: TenantId) -> Vec<Row> {
    let sql = "SELECT seq, tx_key, leg, kind, debit_id, credit_id, amount FROM ledger_entries \
               WHERE tenant_id = $1 ORDER BY seq";
    match store {
        Store::Sqlite(p) => sqlx::query_as::<_, Row>(sql)
            .bind(tenant.0)
            .fetch_all(p)
            .await
            .unwrap(),
        Store::Postgres(p) => sqlx::query_as::<_, Row>(sql)
            .bind(tenant.0)
            .fetch_all(p)
            .await
            .unwrap(),
    }
}

async fn book(store: &Store, tenant: TenantId, code: &'static str) -> i64 {
    let sql = "SELECT id FROM ledger_accounts WHERE tenant_id = $1 AND code = $2";
    let (id,): (i64,) = match store {
        Store::Sqlite(p) => sqlx::query_as(sql)
            .bind(tenant.0)
            .bind(code)
            .fetch_one(p)
            .await
            .unwrap(),
        Store::Postgres(p) => sqlx::query_as(sql)
            .bind(tenant.0)
            .bind(code)
            .fetch_one(p)
            .await
            .unwrap(),
    };
    id
}

/// Recomputes an entry's hash after changing its amount, as a forger who knows the encoding
/// would, and stores both: the entry itself then checks out, only its successor's link breaks.
async fn rehash_with_amount(store: &Store, tenant: TenantId, seq: i64, amount: i64) {
    type Full = (String, i64, String, i64, i64, i64, String, Vec<u8>);
    let sql = "SELECT tx_key, leg, kind, at_ms, debit_id, credit_id, memo, prev_hash \
               FROM ledger_entries WHERE tenant_id = $1 AND seq = $2";
    let (key, leg, kind, at_ms, debit, credit, memo, prev): Full = match store {
        Store::Sqlite(p) => sqlx::query_as(sql)
            .bind(tenant.0)
            .bind(seq)
            .fetch_one(p)
            .await
            .unwrap(),
        Store::Postgres(p) => sqlx::query_as(sql)
            .bind(tenant.0)
            .bind(seq)
            .fetch_one(p)
            .await
            .unwrap(),
    };
    let prev: [u8; 32] = prev.try_into().unwrap();
    let hash = chain_entry(
        &prev,
        &EntryFields {
            seq,
            key: &key,
            leg_index: u16::try_from(leg).unwrap(),
            kind: kind.parse::<TxKind>().unwrap(),
            at_ms,
            debit,
            credit,
            amount: Micros(amount),
            memo: &memo,
        },
    );
    let sql = "UPDATE ledger_entries SET amount = $1, hash = $2 WHERE tenant_id = $3 AND seq = $4";
    let n = match store {
        Store::Sqlite(p) => sqlx::query(sql)
            .bind(amount)
            .bind(hash.to_vec())
            .bind(tenant.0)
            .bind(seq)
            .execute(p)
            .await
            .unwrap()
            .rows_affected(),
        Store::Postgres(p) => sqlx::query(sql)
            .bind(amount)
            .bind(hash.to_vec())
            .bind(tenant.0)
            .bind(seq)
            .execute(p)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(n, 1);
}

/// 2026-11-20 10:00 Beijing time, plus `secs`.
fn nov20(secs: i64) -> i64 {
    date(2026, 11, 20)
        .at(10, 0, 0, 0)
        .in_tz("Asia/Shanghai")
        .unwrap()
        .timestamp()
        .as_millisecond()
        + secs * 1000
}

fn ev(key: &str, number: &str, usage: UsageKind, quantity: i64, secs: i64) -> UsageEvent {
    UsageEvent {
        key: key.into(),
        number: number.into(),
        usage,
        service: None,
        at_ms: nov20(secs),
        quantity,
        destination: None,
        rated_cost: None,
    }
}

/// The ledger every case starts from, with the ids the assertions need.
struct Built {
    t: Tenant,
    /// Another tenant's ledger, which no tampering with acme's may disturb.
    beta: Tenant,
    revenue: i64,
    clearing: i64,
    /// Wallets of a1 (prepaid, p100 → p200), a2 (postpaid, p50), a3 (postpaid, no plan).
    w1: i64,
    w2: i64,
    w3: i64,
}

/// Nine entries, in this order:
///
/// | seq | what                                   | debit    | credit   | amount  |
/// |-----|----------------------------------------|----------|----------|---------|
/// | 1   | top-up a1                              | clearing | w1       | 500     |
/// | 2   | top-up a2                              | clearing | w2       | 50      |
/// | 3   | a1 subscribes to p100 (fee)            | w1       | revenue  | 100     |
/// | 4   | a2 subscribes to p50 (fee)             | w2       | revenue  | 50      |
/// | 5   | a1 → p200 on 16 Nov: unused p100 back  | revenue  | w1       | 50      |
/// | 6   | … and p200 for the remaining 15 days   | w1       | revenue  | 100     |
/// | 7   | charged: a1 call 2 min beyond          | w1       | revenue  | 0.3     |
/// | 8   | charged: a2 data 10 MB beyond          | w2       | revenue  | 5       |
/// | 9   | charged: a3 rated call (no plan)       | w3       | revenue  | 1.2345  |
async fn build(s: &Store, engine: &str) -> Built {
    let t = tenant(s, "acme").await;
    s.create_customer(t.id, "c1", "张三").await.unwrap();
    let w1 = s
        .create_account(t.id, "c1", "a1", AccountMode::Prepaid)
        .await
        .unwrap()
        .wallet_id;
    let limit = |l: &str| AccountMode::Postpaid { credit_limit: m(l) };
    let w2 = s
        .create_account(t.id, "c1", "a2", limit("200"))
        .await
        .unwrap()
        .wallet_id;
    let w3 = s
        .create_account(t.id, "c1", "a3", limit("10"))
        .await
        .unwrap()
        .wallet_id;
    s.add_subscriber(t.id, "a1", "13800138001").await.unwrap();
    s.add_subscriber(t.id, "a2", "13800138002").await.unwrap();
    s.add_subscriber(t.id, "a3", "13800138003").await.unwrap();
    for (code, fee) in [("p50", "50"), ("p100", "100"), ("p200", "200")] {
        active_plan(s, &t, code, fee).await;
    }

    s.top_up(t.id, "a1", m("500"), "pay-a1", "wechat pay")
        .await
        .unwrap();
    s.top_up(t.id, "a2", m("50"), "pay-a2", "alipay")
        .await
        .unwrap();
    let ops = actor("ops");
    let mut subs = Vec::new();
    for (account, plan, number) in [("a1", "p100", "13800138001"), ("a2", "p50", "13800138002")] {
        let lines = [number.to_string()];
        let req = SubscribeRequest {
            account,
            plan,
            lines: &lines,
            start: date(2026, 11, 1),
        };
        subs.push(s.subscribe(&t, &req, &ops).await.unwrap().id);
    }
    let change = s
        .change_plan(
            &t,
            subs[0],
            "p200",
            ChangeWhen::Now(date(2026, 11, 16)),
            &actor("carol"),
            "upgrade",
        )
        .await
        .unwrap();
    assert_eq!(
        (change.credit, change.charge),
        (m("50"), m("100")),
        "{engine}"
    );

    let charger = Charger::new(s.clone(), t.clone()).unwrap();
    let mut rated = ev("rated-1", "13800138003", UsageKind::Voice, 95, 2);
    rated.rated_cost = Some(Decimal::new(12_345, 4));
    let out = charger
        .charge_batch(&[
            // p200 from the 16th: 15/30 of 100 minutes = 3000 s; 120 s beyond = 2 × 0.15.
            ev("call-1", "13800138001", UsageKind::Voice, 3_000 + 120, 0),
            // 1 GB covered, 10 MB beyond in the first tier: 10 × 0.5.
            ev("data-1", "13800138002", UsageKind::Data, 1_034 * MB, 1),
            rated,
            // The plan prices no SMS: refused, nothing written.
            ev("sms-1", "13800138001", UsageKind::Sms, 1, 3),
        ])
        .await
        .unwrap();
    let charged = |amount: &str, covered: i64, seq: i64| ChargeOutcome::Charged {
        amount: m(amount),
        covered,
        seq: Some(seq),
    };
    assert_eq!(out[0], charged("0.3", 3_000, 7), "{engine}");
    assert_eq!(out[1], charged("5", 1_024 * MB, 8), "{engine}");
    assert_eq!(out[2], charged("1.2345", 0, 9), "{engine}");
    assert!(
        matches!(&out[3], ChargeOutcome::Refused { .. }),
        "{engine}: {out:?}"
    );

    let beta = tenant(s, "beta").await;
    s.create_customer(beta.id, "c1", "李四").await.unwrap();
    s.create_account(beta.id, "c1", "b1", AccountMode::Prepaid)
        .await
        .unwrap();
    s.top_up(beta.id, "b1", m("9"), "pay-b1", "").await.unwrap();

    Built {
        revenue: book(s, t.id, "revenue").await,
        clearing: book(s, t.id, "clearing").await,
        t,
        beta,
        w1,
        w2,
        w3,
    }
}

fn sorted(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v.dedup();
    v
}

/// The accounts of the entries at `seqs`, sorted.
fn accounts_of(rows: &[Row], seqs: &[i64]) -> Vec<i64> {
    sorted(
        rows.iter()
            .filter(|r| seqs.contains(&r.0))
            .flat_map(|r| [r.4, r.5])
            .collect(),
    )
}

async fn assert_beta_intact(s: &Store, b: &Built, engine: &str) {
    let report = s.verify_ledger(b.beta.id).await.unwrap();
    assert!(report.is_intact(), "{engine}: beta {report:?}");
    assert_eq!(report.entries_checked, 1, "{engine}");
}

#[tokio::test]
async fn a_ledger_built_by_the_services_verifies_intact() {
    for e in common::engines().await {
        let s = &e.store;
        let b = build(s, e.name).await;
        let (c, r) = (b.clearing, b.revenue);
        let key = |k: &str| k.to_string();
        let kind = |k: &str| k.to_string();
        let want: Vec<Row> = vec![
            (
                1,
                key("pay:pay-a1"),
                0,
                kind("top_up"),
                c,
                b.w1,
                500_000_000,
            ),
            (2, key("pay:pay-a2"), 0, kind("top_up"), c, b.w2, 50_000_000),
            (
                3,
                key("fee:1:2026-11-01"),
                0,
                kind("charge"),
                b.w1,
                r,
                100_000_000,
            ),
            (
                4,
                key("fee:2:2026-11-01"),
                0,
                kind("charge"),
                b.w2,
                r,
                50_000_000,
            ),
            (5, key("chg:1"), 0, kind("proration"), r, b.w1, 50_000_000),
            (6, key("chg:1"), 1, kind("proration"), b.w1, r, 100_000_000),
            (7, key("use:call-1"), 0, kind("charge"), b.w1, r, 300_000),
            (8, key("use:data-1"), 0, kind("charge"), b.w2, r, 5_000_000),
            (9, key("use:rated-1"), 0, kind("charge"), b.w3, r, 1_234_500),
        ];
        assert_eq!(entries(s, b.t.id).await, want, "{}", e.name);

        let report = s.verify_ledger(b.t.id).await.unwrap();
        assert_eq!(
            report,
            LedgerReport {
                entries_checked: 9,
                first_break: None,
                account_mismatches: vec![],
            },
            "{}",
            e.name
        );
        assert!(report.is_intact(), "{}", e.name);
        for (code, balance) in [("a1", "349.7"), ("a2", "-5"), ("a3", "-1.2345")] {
            let a = s.account(b.t.id, code).await.unwrap();
            assert_eq!(a.balance, m(balance), "{}: {code}", e.name);
        }
        assert_beta_intact(s, &b, e.name).await;
    }
}

/// (a) Any entry's amount edited in place: the chain breaks at exactly that entry (its hash no
/// longer matches its fields), and both its accounts' totals disagree with the entries.
#[tokio::test]
async fn an_edited_amount_breaks_the_chain_at_that_entry() {
    // Every entry, each on fresh stores; the cases run concurrently (fresh PostgreSQL schemas
    // take a while to migrate).
    let cases: Vec<_> = (1..=9)
        .map(|seq| tokio::spawn(edited_amount(seq)))
        .collect();
    for c in cases {
        c.await.unwrap();
    }
}

async fn edited_amount(seq: i64) {
    for e in common::engines().await {
        let s = &e.store;
        let b = build(s, e.name).await;
        let rows = entries(s, b.t.id).await;
        let n = raw_exec(
            s,
            "UPDATE ledger_entries SET amount = amount + 1 WHERE tenant_id = $1 AND seq = $2",
            &[b.t.id.0, seq],
        )
        .await;
        assert_eq!(n, 1, "{}", e.name);
        let report = s.verify_ledger(b.t.id).await.unwrap();
        assert_eq!(
            report,
            LedgerReport {
                entries_checked: u64::try_from(seq - 1).unwrap(),
                first_break: Some((seq, "Altered".into())),
                account_mismatches: accounts_of(&rows, &[seq]),
            },
            "{}: amount of seq {seq} edited",
            e.name
        );
        assert!(!report.is_intact(), "{}", e.name);
        assert_beta_intact(s, &b, e.name).await;
    }
}

/// (b) An entry in the middle deleted: the break is found at the entry after the gap, which
/// names the missing `seq`; the deleted entry's two accounts no longer add up.
#[tokio::test]
async fn a_deleted_middle_entry_is_reported_missing() {
    let cases: Vec<_> = (1..=8)
        .map(|seq| tokio::spawn(deleted_entry(seq)))
        .collect();
    for c in cases {
        c.await.unwrap();
    }
}

async fn deleted_entry(seq: i64) {
    for e in common::engines().await {
        let s = &e.store;
        let b = build(s, e.name).await;
        let rows = entries(s, b.t.id).await;
        let n = raw_exec(
            s,
            "DELETE FROM ledger_entries WHERE tenant_id = $1 AND seq = $2",
            &[b.t.id.0, seq],
        )
        .await;
        assert_eq!(n, 1, "{}", e.name);
        let report = s.verify_ledger(b.t.id).await.unwrap();
        assert_eq!(
            report,
            LedgerReport {
                entries_checked: u64::try_from(seq - 1).unwrap(),
                first_break: Some((seq + 1, format!("Missing {{ expected_seq: {seq} }}"))),
                account_mismatches: accounts_of(&rows, &[seq]),
            },
            "{}: seq {seq} deleted",
            e.name
        );
        assert_beta_intact(s, &b, e.name).await;
    }
}

/// (c) The last entry (or the last few) deleted leaves no gap: the separately stored head
/// still finds it, at the first missing `seq`.
#[tokio::test]
async fn a_deleted_tail_is_found_by_the_head() {
    for deleted in [1_i64, 3] {
        for e in common::engines().await {
            let s = &e.store;
            let b = build(s, e.name).await;
            let rows = entries(s, b.t.id).await;
            let first_gone = 10 - deleted;
            let n = raw_exec(
                s,
                "DELETE FROM ledger_entries WHERE tenant_id = $1 AND seq >= $2",
                &[b.t.id.0, first_gone],
            )
            .await;
            assert_eq!(n, u64::try_from(deleted).unwrap(), "{}", e.name);
            let gone: Vec<i64> = (first_gone..=9).collect();
            let report = s.verify_ledger(b.t.id).await.unwrap();
            assert_eq!(
                report,
                LedgerReport {
                    entries_checked: u64::try_from(first_gone - 1).unwrap(),
                    first_break: Some((first_gone, "TailMissing".into())),
                    account_mismatches: accounts_of(&rows, &gone),
                },
                "{}: last {deleted} deleted",
                e.name
            );
            assert_beta_intact(s, &b, e.name).await;
        }
    }
}

/// (d) An account's stored total changed while the entries are untouched: the chain is intact
/// and exactly that account is reported. The edited total is what a balance read would show,
/// which is why verify re-adds the entries.
#[tokio::test]
async fn an_edited_account_total_is_reported_with_an_intact_chain() {
    for e in common::engines().await {
        let s = &e.store;
        let b = build(s, e.name).await;
        let n = raw_exec(
            s,
            "UPDATE ledger_accounts SET credits = credits + 1 WHERE tenant_id = $1 AND id = $2",
            &[b.t.id.0, b.w2],
        )
        .await;
        assert_eq!(n, 1, "{}", e.name);
        assert_eq!(
            s.account(b.t.id, "a2").await.unwrap().balance,
            m("-4.999999"),
            "{}",
            e.name
        );
        let report = s.verify_ledger(b.t.id).await.unwrap();
        assert_eq!(
            report,
            LedgerReport {
                entries_checked: 9,
                first_break: None,
                account_mismatches: vec![b.w2],
            },
            "{}",
            e.name
        );
        assert!(!report.is_intact(), "{}", e.name);

        // The revenue book's debits edited the other way round: both are named, sorted.
        raw_exec(
            s,
            "UPDATE ledger_accounts SET debits = debits - 1 WHERE tenant_id = $1 AND id = $2",
            &[b.t.id.0, b.revenue],
        )
        .await;
        let report = s.verify_ledger(b.t.id).await.unwrap();
        assert_eq!(report.first_break, None, "{}", e.name);
        assert_eq!(
            report.account_mismatches,
            sorted(vec![b.w2, b.revenue]),
            "{}",
            e.name
        );
        assert_beta_intact(s, &b, e.name).await;
    }
}

/// An edited entry whose hash was recomputed (by someone who knows the encoding) passes its own
/// check, but its successor's link to it breaks; the totals still expose the edit.
#[tokio::test]
async fn a_rehashed_edit_breaks_the_next_link() {
    for e in common::engines().await {
        let s = &e.store;
        let b = build(s, e.name).await;
        rehash_with_amount(s, b.t.id, 5, 50_000_001).await;
        let report = s.verify_ledger(b.t.id).await.unwrap();
        assert_eq!(
            report,
            LedgerReport {
                entries_checked: 5,
                first_break: Some((6, "Relinked".into())),
                account_mismatches: sorted(vec![b.revenue, b.w1]),
            },
            "{}",
            e.name
        );
        assert_beta_intact(s, &b, e.name).await;
    }
}
