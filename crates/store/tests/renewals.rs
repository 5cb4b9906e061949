#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Period roll-over on both engines: fees, fresh allowances, changes that wait for the period
//! end, suspension for an unpaid fee, add-ons that expire, and charging that waits for it.

mod common;

use common::fixtures::{LINE, active_plan, active_voice_pack, actor, m, one_line, subscribe};
use jiff::civil::date;
use toll_core::{Micros, UsageKind};
use toll_store::charging::{ChargeOutcome, Charger, UsageEvent};
use toll_store::subscriptions::{ChangeWhen, SubscribeRequest};
use toll_store::{Store, Tenant};

/// 2026-11-10 10:00 Beijing time.
const NOV_10: i64 = 1_794_276_000_000;
const DAY_MS: i64 = 86_400_000;

fn call(key: &str, at_ms: i64, seconds: i64) -> UsageEvent {
    UsageEvent {
        key: key.into(),
        number: LINE.into(),
        usage: UsageKind::Voice,
        service: None,
        at_ms,
        quantity: seconds,
        destination: None,
        rated_cost: None,
    }
}

async fn balance(s: &Store, t: &Tenant) -> Micros {
    s.account(t.id, "a1").await.unwrap().balance
}

fn refused(o: &ChargeOutcome, why: &str) -> bool {
    matches!(o, ChargeOutcome::Refused { reason, .. } if reason.contains(why))
}

#[tokio::test]
async fn a_monthly_plan_renews_with_its_fee_and_fresh_allowances_once() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, id) = one_line(s, "100").await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let dec_5 = call("dec-5", NOV_10 + 25 * DAY_MS, 60);
        let out = c.charge(&dec_5).await.unwrap();
        assert!(refused(&out, "not been renewed"), "{}: {out:?}", e.name);

        // Nothing is due before the period ends.
        let r = s.renew(&t, date(2026, 11, 30)).await.unwrap();
        assert_eq!((r.due, r.periods), (0, 0), "{}", e.name);
        let r = s.renew(&t, date(2026, 12, 1)).await.unwrap();
        assert_eq!((r.due, r.periods, r.changes), (1, 1, 0), "{}", e.name);
        assert_eq!(balance(s, &t).await, m("80"), "{}: two fees of 10", e.name);
        let sub = s.subscription(t.id, id).await.unwrap();
        assert_eq!(sub.period_end.as_deref(), Some("2027-01-01"));
        assert_eq!(
            sub.buckets.len(),
            6,
            "November's three and December's three"
        );
        // 2026-12-01 00:00 Beijing time.
        assert_eq!(sub.buckets[3].starts_ms, 1_796_054_400_000, "{}", e.name);
        assert_eq!(sub.buckets[3].remaining, 6_000);

        // December's minutes cover the retried call; the refusal left the key free.
        let out = c.charge(&dec_5).await.unwrap();
        assert!(
            matches!(out, ChargeOutcome::Charged { covered: 60, .. }),
            "{}: {out:?}",
            e.name
        );
        // Running it again the same day (or after a crash) changes nothing.
        let r = s.renew(&t, date(2026, 12, 1)).await.unwrap();
        assert_eq!(r.due, 0, "{}", e.name);
        assert_eq!(balance(s, &t).await, m("80"));
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    }
}

#[tokio::test]
async fn a_renewal_catches_up_every_missed_period() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, id) = one_line(s, "100").await;
        let r = s.renew(&t, date(2027, 2, 15)).await.unwrap();
        assert_eq!(r.periods, 3, "{}: December, January, February", e.name);
        assert_eq!(balance(s, &t).await, m("60"), "{}", e.name);
        let sub = s.subscription(t.id, id).await.unwrap();
        assert_eq!(sub.period_end.as_deref(), Some("2027-03-01"), "{}", e.name);
    }
}

#[tokio::test]
async fn a_change_at_period_end_takes_effect_on_renewal() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, id) = one_line(s, "100").await;
        active_plan(s, &t, "p2", "20").await;
        let change = s
            .change_plan(&t, id, "p2", ChangeWhen::PeriodEnd, &actor("ops"), "")
            .await
            .unwrap();
        assert_eq!(change.effective_date, date(2026, 12, 1).to_string());
        let before = s.subscription(t.id, id).await.unwrap();
        assert_eq!(
            before.plan, "p",
            "{}: nothing changes before the period end",
            e.name
        );

        let r = s.renew(&t, date(2026, 12, 1)).await.unwrap();
        assert_eq!((r.periods, r.changes), (1, 1), "{}", e.name);
        let after = s.subscription(t.id, id).await.unwrap();
        assert_eq!(after.plan, "p2", "{}", e.name);
        assert_eq!(
            balance(s, &t).await,
            m("70"),
            "{}: 10 for Nov, 20 for Dec",
            e.name
        );
        let changes = s.subscription_changes(t.id, id).await.unwrap();
        assert_eq!(changes.len(), 1);
        // Renewing again applies nothing twice.
        let r = s.renew(&t, date(2026, 12, 2)).await.unwrap();
        assert_eq!((r.due, r.changes), (0, 0), "{}", e.name);
    }
}

#[tokio::test]
async fn an_unpaid_fee_suspends_the_line_until_a_top_up_and_renewal() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, id) = one_line(s, "15").await; // 5 left after November's fee
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let r = s.renew(&t, date(2026, 12, 1)).await.unwrap();
        assert_eq!(r.suspended.len(), 1, "{}: {r:?}", e.name);
        assert_eq!(r.suspended[0].period_start, "2026-12-01");
        assert!(r.suspended[0].reason.contains("insufficient"), "{r:?}");
        let sub = s.subscription(t.id, id).await.unwrap();
        assert_eq!(sub.status, "suspended", "{}", e.name);
        assert_eq!(sub.buckets.len(), 3, "{}: no December buckets", e.name);
        assert_eq!(balance(s, &t).await, m("5"));
        let dec_5 = call("dec-5", NOV_10 + 25 * DAY_MS, 60);
        let out = c.charge(&dec_5).await.unwrap();
        assert!(refused(&out, "suspended"), "{}: {out:?}", e.name);
        // A suspended line cannot take a second base plan instead.
        active_plan(s, &t, "p2", "1").await;
        let lines = [LINE.to_string()];
        let req = SubscribeRequest {
            account: "a1",
            plan: "p2",
            lines: &lines,
            start: date(2026, 12, 2),
        };
        assert!(s.subscribe(&t, &req, &actor("ops")).await.is_err());

        s.top_up(t.id, "a1", m("10"), "pay-2", "").await.unwrap();
        let r = s.renew(&t, date(2026, 12, 3)).await.unwrap();
        assert_eq!((r.periods, r.resumed), (1, 1), "{}: {r:?}", e.name);
        assert!(r.suspended.is_empty());
        assert_eq!(balance(s, &t).await, m("5"), "{}", e.name);
        let out = c.charge(&dec_5).await.unwrap();
        assert!(
            matches!(out, ChargeOutcome::Charged { covered: 60, .. }),
            "{}: {out:?}",
            e.name
        );
    }
}

#[tokio::test]
async fn an_add_on_pack_expires_with_its_period() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, base) = one_line(s, "100").await;
        active_voice_pack(s, &t).await;
        let id = subscribe(s, &t, "voice-pack").await;
        assert_eq!(balance(s, &t).await, m("85"));
        // The pack's 30 days end on Dec 1, like the month.
        let r = s.renew(&t, date(2026, 12, 1)).await.unwrap();
        assert_eq!((r.due, r.periods, r.expired), (2, 1, 1), "{}", e.name);
        assert_eq!(s.subscription(t.id, id).await.unwrap().status, "expired");
        assert_eq!(s.subscription(t.id, base).await.unwrap().status, "active");
        assert_eq!(
            balance(s, &t).await,
            m("75"),
            "{}: only the base fee",
            e.name
        );
    }
}
