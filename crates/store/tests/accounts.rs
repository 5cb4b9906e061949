#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixtures::{active_plan, actor, tenant};
use jiff::civil::date;
use toll_charging::ledger::LedgerError;
use toll_core::Micros;
use toll_store::StoreError;
use toll_store::accounts::AccountMode;
use toll_store::subscriptions::{ChangeWhen, SubscribeRequest, SubscriptionView};
use toll_store::{Store, Tenant};

fn m(s: &str) -> Micros {
    s.parse().unwrap()
}

#[tokio::test]
async fn top_ups_count_once_and_prepaid_never_goes_negative() {
    for e in common::engines().await {
        let s = &e.store;
        let t = tenant(s, "acme").await;
        s.create_customer(t.id, "c1", "张三").await.unwrap();
        s.create_account(t.id, "c1", "a1", AccountMode::Prepaid)
            .await
            .unwrap();
        let p = s
            .top_up(t.id, "a1", m("50"), "pay-1", "wechat pay")
            .await
            .unwrap();
        assert!(!p.duplicate);
        let again = s
            .top_up(t.id, "a1", m("50"), "pay-1", "retry")
            .await
            .unwrap();
        assert!(again.duplicate, "{}", e.name);
        assert_eq!(again.first_seq, p.first_seq);
        // Same key, different amount: refused, not silently merged.
        let reused = s.top_up(t.id, "a1", m("60"), "pay-1", "").await;
        assert!(matches!(
            reused,
            Err(StoreError::Ledger(LedgerError::KeyReused { .. }))
        ));
        let a = s.account(t.id, "a1").await.unwrap();
        assert_eq!(
            (a.balance, a.available),
            (m("50"), Some(m("50"))),
            "{}",
            e.name
        );

        // A 60 元 plan on a 50 元 prepaid wallet is refused and leaves nothing behind.
        active_plan(s, &t, "p60", "60").await;
        s.add_subscriber(t.id, "a1", "+86 138 0013 8000")
            .await
            .unwrap();
        let req = SubscribeRequest {
            account: "a1",
            plan: "p60",
            lines: &["13800138000".to_string()],
            start: date(2026, 11, 1),
        };
        let err = s.subscribe(&t, &req, &actor("ops")).await;
        match err {
            Err(StoreError::Ledger(LedgerError::Insufficient {
                available,
                requested,
                ..
            })) => {
                assert_eq!((available, requested), (m("50"), m("60")));
            }
            other => panic!("{}: {other:?}", e.name),
        }
        assert_eq!(s.account(t.id, "a1").await.unwrap().balance, m("50"));
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    }
}

#[tokio::test]
async fn postpaid_goes_down_to_its_credit_limit_only() {
    for e in common::engines().await {
        let s = &e.store;
        let t = tenant(s, "acme").await;
        s.create_customer(t.id, "c1", "李四").await.unwrap();
        let mode = AccountMode::Postpaid {
            credit_limit: m("150"),
        };
        s.create_account(t.id, "c1", "a1", mode).await.unwrap();
        s.add_subscriber(t.id, "a1", "13900139000").await.unwrap();
        active_plan(s, &t, "p100", "100").await;
        let lines = ["13900139000".to_string()];
        let req = SubscribeRequest {
            account: "a1",
            plan: "p100",
            lines: &lines,
            start: date(2026, 11, 1),
        };
        let sub = s.subscribe(&t, &req, &actor("ops")).await.unwrap();
        let a = s.account(t.id, "a1").await.unwrap();
        assert_eq!(
            (a.balance, a.available),
            (m("-100"), Some(m("50"))),
            "{}",
            e.name
        );
        // The line already has a base plan.
        assert!(matches!(
            s.subscribe(&t, &req, &actor("ops")).await,
            Err(StoreError::Refused(_))
        ));
        assert_eq!(sub.buckets.len(), 3);
        assert_eq!(sub.buckets[0].initial, 6000, "100 minutes in seconds");
    }
}

/// Prepaid account `a1` topped up with 500, its line 13700137000 on p100 (100/month) from
/// Nov 1, with p200 (200/month) also on sale.
async fn on_p100_from_november(s: &Store) -> (Tenant, SubscriptionView) {
    let t = tenant(s, "acme").await;
    s.create_customer(t.id, "c1", "王五").await.unwrap();
    s.create_account(t.id, "c1", "a1", AccountMode::Prepaid)
        .await
        .unwrap();
    s.top_up(t.id, "a1", m("500"), "pay-1", "").await.unwrap();
    s.add_subscriber(t.id, "a1", "13700137000").await.unwrap();
    active_plan(s, &t, "p100", "100").await;
    active_plan(s, &t, "p200", "200").await;
    let lines = ["13700137000".to_string()];
    let req = SubscribeRequest {
        account: "a1",
        plan: "p100",
        lines: &lines,
        start: date(2026, 11, 1),
    };
    let sub = s.subscribe(&t, &req, &actor("ops")).await.unwrap();
    (t, sub)
}

/// The example: 100/month → 200/month on day 16 of a 30-day month.
#[tokio::test]
async fn plan_change_mid_month_is_prorated_by_day_with_history() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, sub) = on_p100_from_november(s).await;
        assert_eq!(s.account(t.id, "a1").await.unwrap().balance, m("400"));

        let when = ChangeWhen::Now(date(2026, 11, 16));
        let ch = s
            .change_plan(&t, sub.id, "p200", when, &actor("carol"), "upgrade")
            .await
            .unwrap();
        assert_eq!((ch.credit, ch.charge), (m("50"), m("100")), "{}", e.name);
        assert_eq!(s.account(t.id, "a1").await.unwrap().balance, m("350"));

        let after = s.subscription(t.id, sub.id).await.unwrap();
        assert_eq!(after.plan, "p200");
        // Old buckets end on the 16th; new ones hold 15/30 of the new allowances.
        let voice: Vec<_> = after
            .buckets
            .iter()
            .filter(|b| b.usage == "voice")
            .collect();
        assert_eq!(voice.len(), 2);
        assert_eq!(voice[1].initial, 3000);
        assert_eq!(voice[0].expires_ms, voice[1].starts_ms);

        let history = s.subscription_changes(t.id, sub.id).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(
            (
                history[0].actor.as_str(),
                history[0].effective_date.as_str()
            ),
            ("carol", "2026-11-16")
        );
        assert_eq!(
            (history[0].from_version, history[0].to_version),
            (Some(1), 1)
        );
        let report = s.verify_ledger(t.id).await.unwrap();
        assert!(report.is_intact(), "{}: {report:?}", e.name);
        assert_eq!(report.entries_checked, 4, "top-up, fee, credit, charge");
    }
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_other() {
    for e in common::engines().await {
        let s = &e.store;
        let a = tenant(s, "alpha").await;
        let b = tenant(s, "beta").await;
        s.create_customer(a.id, "c1", "A").await.unwrap();
        s.create_account(a.id, "c1", "acct", AccountMode::Prepaid)
            .await
            .unwrap();
        active_plan(s, &a, "plan", "10").await;
        // Beta sees none of alpha's rows and cannot act on them.
        assert!(matches!(
            s.account(b.id, "acct").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.top_up(b.id, "acct", m("1"), "k", "").await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.plan_version(b.id, "plan", None).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(s.plan_versions(b.id).await.unwrap().is_empty());
        assert!(matches!(
            s.create_account(b.id, "c1", "x", AccountMode::Prepaid)
                .await,
            Err(StoreError::NotFound { .. })
        ));
        // The same codes are free in beta.
        s.create_customer(b.id, "c1", "B").await.unwrap();
        s.create_account(b.id, "c1", "acct", AccountMode::Prepaid)
            .await
            .unwrap();
        s.top_up(b.id, "acct", m("7"), "k", "").await.unwrap();
        assert_eq!(s.account(a.id, "acct").await.unwrap().balance, Micros::ZERO);
        assert_eq!(s.account(b.id, "acct").await.unwrap().balance, m("7"));
        let alpha_sub = s.subscription(b.id, 1).await;
        assert!(
            matches!(alpha_sub, Err(StoreError::NotFound { .. })),
            "{}",
            e.name
        );
    }
}

/// A retried change is refused rather than settled twice, and history never moves backwards.
#[tokio::test]
async fn plan_changes_are_idempotent_and_never_backdated() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, sub) = on_p100_from_november(s).await;
        let ops = actor("ops");
        let up = s.change_plan(
            &t,
            sub.id,
            "p200",
            ChangeWhen::Now(date(2026, 11, 16)),
            &ops,
            "",
        );
        let first = up.await.unwrap();
        // The client retries the upgrade at once: refused, nothing settled twice.
        let bal = s.account(t.id, "a1").await.unwrap().balance;
        let when = ChangeWhen::Now(date(2026, 11, 16));
        let retry = s.change_plan(&t, sub.id, "p200", when, &ops, "").await;
        assert!(
            matches!(retry, Err(StoreError::Refused(_))),
            "{}: {retry:?}",
            e.name
        );
        assert_eq!(s.account(t.id, "a1").await.unwrap().balance, bal);
        assert_eq!(first.charge, m("100"));
        let down = ChangeWhen::Now(date(2026, 11, 20));
        s.change_plan(&t, sub.id, "p100", down, &ops, "")
            .await
            .unwrap();
        let before = s.account(t.id, "a1").await.unwrap().balance;
        // A late retry of the upgrade, after the downgrade, would backdate: refused, nothing
        // settled.
        let when = ChangeWhen::Now(date(2026, 11, 16));
        let late = s.change_plan(&t, sub.id, "p200", when, &ops, "").await;
        assert!(
            matches!(late, Err(StoreError::Refused(_))),
            "{}: {late:?}",
            e.name
        );
        assert_eq!(s.account(t.id, "a1").await.unwrap().balance, before);
        // A new change dated before the last one is refused.
        let back = ChangeWhen::Now(date(2026, 11, 18));
        let err = s.change_plan(&t, sub.id, "p200", back, &ops, "").await;
        assert!(
            matches!(err, Err(StoreError::Refused(_))),
            "{}: {err:?}",
            e.name
        );
        assert_eq!(s.subscription_changes(t.id, sub.id).await.unwrap().len(), 2);
    }
}
