#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixtures::{active_plan, tenant};
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
