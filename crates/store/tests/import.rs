#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixtures::{active_plan, charged, tenant};
use jiff::civil::date;
use toll_core::{Micros, UsageKind};
use toll_store::accounts::AccountMode;
use toll_store::charging::{ChargeOutcome, Charger, UsageEvent};
use toll_store::import::ImportLine;

#[tokio::test]
async fn imported_lines_charge_like_subscribed_ones_and_the_ledger_explains_balances() {
    for e in common::engines().await {
        let s = &e.store;
        let t = tenant(s, "acme").await;
        active_plan(s, &t, "p", "10").await;
        let lines: Vec<ImportLine> = (0..2500)
            .map(|i| ImportLine {
                customer: format!("c{i}"),
                customer_name: format!("客户 {i}"),
                account: format!("a{i}"),
                mode: if i % 2 == 0 {
                    AccountMode::Prepaid
                } else {
                    AccountMode::Postpaid {
                        credit_limit: Micros(50_000_000),
                    }
                },
                number: format!("1390000{i:04}"),
                opening_balance: Micros(if i % 2 == 0 { 20_000_000 } else { 0 }),
            })
            .collect();
        assert_eq!(
            s.import_lines(&t, "p", date(2026, 11, 1), &lines)
                .await
                .unwrap(),
            2500
        );
        let a0 = s.account(t.id, "a0").await.unwrap();
        assert_eq!(a0.balance, Micros(20_000_000), "{}", e.name);
        let sub = s.subscription(t.id, 1).await.unwrap();
        assert_eq!((sub.lines.len(), sub.buckets.len()), (1, 3));
        let report = s.verify_ledger(t.id).await.unwrap();
        assert!(report.is_intact(), "{}: {report:?}", e.name);
        assert_eq!(report.entries_checked, 1250);

        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let call = UsageEvent {
            key: "k".into(),
            number: "13900002499".into(),
            usage: UsageKind::Voice,
            service: None,
            at_ms: 1_794_276_000_000,
            quantity: 6_000 + 60,
            destination: None,
            rated_cost: None,
        };
        let out = c.charge(&call).await.unwrap();
        assert!(
            matches!(
                out,
                ChargeOutcome::Charged {
                    amount: Micros(150_000),
                    ..
                }
            ),
            "{out:?}"
        );
        // Codes stay unique: importing the same lines again is refused whole.
        assert!(
            s.import_lines(&t, "p", date(2026, 11, 1), &lines[..1])
                .await
                .is_err()
        );
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    }
}

/// `n` prepaid lines `1390000xxxx` with an opening balance of 20 yuan each.
fn prepaid_lines(n: usize) -> Vec<ImportLine> {
    (0..n)
        .map(|i| ImportLine {
            customer: format!("c{i}"),
            customer_name: format!("客户 {i}"),
            account: format!("a{i}"),
            mode: AccountMode::Prepaid,
            number: format!("1390000{i:04}"),
            opening_balance: Micros(20_000_000),
        })
        .collect()
}

fn call(key: String, i: usize, seconds: i64) -> UsageEvent {
    UsageEvent {
        key,
        number: format!("1390000{i:04}"),
        usage: UsageKind::Voice,
        service: None,
        at_ms: 1_794_276_000_000,
        quantity: seconds,
        destination: None,
        rated_cost: None,
    }
}

/// A batch that needs a large share of the tenant's lines reads the whole tenant at once (one
/// statement per table instead of probes per line): the lines it did not need yet must charge
/// from the same truth later, and another tenant's lines with the same numbers stay apart.
#[tokio::test]
async fn a_batch_that_reads_the_whole_tenant_charges_every_line_from_its_own_buckets() {
    for e in common::engines().await {
        let s = &e.store;
        let t = tenant(s, "acme").await;
        active_plan(s, &t, "p", "10").await;
        s.import_lines(&t, "p", date(2026, 11, 1), &prepaid_lines(6_000))
            .await
            .unwrap();
        let other = tenant(s, "other").await;
        active_plan(s, &other, "p", "10").await;
        s.import_lines(&other, "p", date(2026, 11, 1), &prepaid_lines(10))
            .await
            .unwrap();

        let c = Charger::new(s.clone(), t.clone()).unwrap();
        // 5,000 of the 6,000 lines, each 100 minutes of allowance plus one paid minute.
        let first: Vec<UsageEvent> = (0..5_000)
            .map(|i| call(format!("a-{i}"), i, 6_000 + 60))
            .collect();
        let out = c.charge_batch(&first).await.unwrap();
        for (i, o) in out.iter().enumerate() {
            assert_eq!(charged(o), (Micros(150_000), 6_000), "{}: line {i}", e.name);
        }
        // Every line again: the first 5,000 have no allowance left, the last 1,000 (read in
        // the first batch without being charged) still have all of theirs.
        let second: Vec<UsageEvent> = (0..6_000).map(|i| call(format!("b-{i}"), i, 60)).collect();
        let out = c.charge_batch(&second).await.unwrap();
        for (i, o) in out.iter().enumerate() {
            let want = if i < 5_000 {
                (Micros(150_000), 0)
            } else {
                (Micros(0), 60)
            };
            assert_eq!(charged(o), want, "{}: line {i}", e.name);
        }
        assert_eq!(
            s.account(t.id, "a0").await.unwrap().balance,
            Micros(19_700_000),
            "{}",
            e.name
        );
        assert_eq!(
            s.account(t.id, "a5999").await.unwrap().balance,
            Micros(20_000_000)
        );
        // The other tenant's line with the same number kept its whole allowance.
        let theirs = Charger::new(s.clone(), other.clone()).unwrap();
        let out = theirs.charge(&call("a-0".into(), 0, 6_000)).await.unwrap();
        assert_eq!(charged(&out), (Micros(0), 6_000), "{}", e.name);
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
        assert!(s.verify_ledger(other.id).await.unwrap().is_intact());
    }
}
