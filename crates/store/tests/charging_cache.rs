#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A charger keeps what it read across batches; these tests change that state behind its back
//! (a top-up, an add-on pack, another charger, a late event) and check that the next batch
//! charges from the database's truth, not from the stale copy.

mod common;

use common::fixtures::{LINE, active_voice_pack, charged, m, one_line, subscribe};
use jiff::civil::date;
use toll_core::{Micros, UsageKind};
use toll_store::charging::{ChargeOutcome, Charger, UsageEvent};

/// A call of `seconds` at 2026-11-10 10:00 Beijing time plus `offset` seconds.
fn call(key: &str, offset: i64, seconds: i64) -> UsageEvent {
    UsageEvent {
        key: key.into(),
        number: LINE.into(),
        usage: UsageKind::Voice,
        service: None,
        at_ms: 1_794_276_000_000 + offset * 1000,
        quantity: seconds,
        destination: None,
        rated_cost: None,
    }
}

#[tokio::test]
async fn a_top_up_between_batches_is_spendable_at_once() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "10.3").await; // 0.3 left after the fee
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let out = c
            .charge_batch(&[call("all", 0, 6_000), call("two", 7_000, 120)])
            .await
            .unwrap();
        assert_eq!(charged(&out[1]), (m("0.3"), 0), "{}", e.name);
        let late = call("one", 8_000, 60);
        let out = c.charge(&late).await.unwrap();
        assert!(
            matches!(&out, ChargeOutcome::Refused { reason, .. } if reason.contains("insufficient")),
            "{}: {out:?}",
            e.name
        );
        s.top_up(t.id, "a1", m("1"), "pay-2", "").await.unwrap();
        assert_eq!(charged(&c.charge(&late).await.unwrap()), (m("0.15"), 0));
        let a = s.account(t.id, "a1").await.unwrap();
        assert_eq!(a.balance, m("0.85"), "{}", e.name);
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    }
}

#[tokio::test]
async fn an_add_on_bought_between_batches_is_drawn_at_once() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "100").await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let out = c.charge(&call("all", 0, 6_000)).await.unwrap();
        assert_eq!(charged(&out), (Micros::ZERO, 6_000), "{}", e.name);
        active_voice_pack(s, &t).await;
        subscribe(s, &t, "voice-pack").await;
        let out = c.charge(&call("after", 7_000, 600)).await.unwrap();
        assert_eq!(charged(&out), (Micros::ZERO, 600), "{}", e.name);
        let a = s.account(t.id, "a1").await.unwrap();
        assert_eq!(a.balance, m("85"), "100 - 10 - 5: {}", e.name);
    }
}

#[tokio::test]
async fn two_chargers_of_one_tenant_see_each_others_draws() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "100").await;
        let a = Charger::new(s.clone(), t.clone()).unwrap();
        let b = Charger::new(s.clone(), t.clone()).unwrap();
        assert_eq!(
            charged(&a.charge(&call("a1", 0, 3_000)).await.unwrap()),
            (Micros::ZERO, 3_000)
        );
        assert_eq!(
            charged(&b.charge(&call("b1", 4_000, 3_000)).await.unwrap()),
            (Micros::ZERO, 3_000)
        );
        // `a` last saw 3,000 s left; `b` took them.
        assert_eq!(
            charged(&a.charge(&call("a2", 8_000, 60)).await.unwrap()),
            (m("0.15"), 0),
            "{}",
            e.name
        );
        assert_eq!(
            charged(&b.charge(&call("b2", 9_000, 60)).await.unwrap()),
            (m("0.15"), 0),
            "{}",
            e.name
        );
        assert_eq!(
            a.charge(&call("b2", 9_000, 60)).await.unwrap(),
            ChargeOutcome::Duplicate
        );
        let acct = s.account(t.id, "a1").await.unwrap();
        assert_eq!(acct.balance, m("89.7"), "{}", e.name);
    }
}

#[tokio::test]
async fn an_event_older_than_what_was_read_reads_its_buckets_again() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "100").await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        // December's period, with fresh minutes, starts on renewal.
        s.renew(&t, date(2026, 12, 1)).await.unwrap();
        // 2026-12-10: November's minutes expired on Dec 1; December's are read.
        let december = call("dec", 30 * 86_400, 60);
        assert_eq!(
            charged(&c.charge(&december).await.unwrap()),
            (Micros::ZERO, 60)
        );
        // A late record from November still draws on November's minutes, which the charger
        // left out when it read the line for December.
        let november = call("nov", 0, 60);
        assert_eq!(
            charged(&c.charge(&november).await.unwrap()),
            (Micros::ZERO, 60),
            "{}",
            e.name
        );
        let sub = s.subscription(t.id, 1).await.unwrap();
        let remaining: Vec<i64> = sub
            .buckets
            .iter()
            .filter(|b| b.usage == "voice")
            .map(|b| b.remaining)
            .collect();
        assert_eq!(remaining, vec![5_940, 5_940], "{}", e.name);
    }
}
