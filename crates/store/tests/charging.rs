#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fixtures::{LINE, charged, m, one_line, rated_call, refused_item, tenant};
use rust_decimal::Decimal;
use toll_core::{Micros, UsageKind};
use toll_store::accounts::AccountMode;
use toll_store::charging::{ChargeOutcome, Charger, UsageEvent};

/// 2026-11-10 10:00 Beijing time, plus `secs`.
fn at(secs: i64) -> i64 {
    1_794_276_000_000 + secs * 1000
}

fn ev(key: &str, number: &str, usage: UsageKind, quantity: i64) -> UsageEvent {
    UsageEvent {
        key: key.into(),
        number: number.into(),
        usage,
        service: None,
        at_ms: at(0),
        quantity,
        destination: None,
        rated_cost: None,
    }
}

#[tokio::test]
async fn a_call_across_the_end_of_the_allowance_is_split_exactly() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "100").await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let out = c
            .charge_batch(&[
                ev("call-1", "13800138000", UsageKind::Voice, 5_900),
                // 100 s left in the allowance: 100 s covered, 200 s beyond = 4 started minutes
                // at 0.15.
                ev("call-2", "+8613800138000", UsageKind::Voice, 300),
                ev("call-3", "013800138000", UsageKind::Voice, 61),
            ])
            .await
            .unwrap();
        assert_eq!(charged(&out[0]), (Micros::ZERO, 5_900), "{}", e.name);
        assert_eq!(charged(&out[1]), (m("0.6"), 100), "{}", e.name);
        assert_eq!(charged(&out[2]), (m("0.3"), 0), "{}", e.name);
        let a = s.account(t.id, "a1").await.unwrap();
        assert_eq!(a.balance, m("89.1"), "100 - 10 fee - 0.6 - 0.3");
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    }
}

#[tokio::test]
async fn destination_bound_pack_first_then_base_then_tiered_overage() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "100").await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let mb = 1_048_576;
        let mut wechat = ev("d1", "13800138000", UsageKind::Data, 600 * mb);
        wechat.service = Some("wechat".into());
        let out = c
            .charge_batch(&[
                // 500 MB from the WeChat pack, 100 MB from the base 1 GB.
                wechat,
                // 924 MB left in the base: all covered.
                ev("d2", "13800138000", UsageKind::Data, 924 * mb),
                // Beyond: 150 MB = 100 × 0.5 + 50 × 0.2 = 60, by the period's tiers.
                ev("d3", "13800138000", UsageKind::Data, 150 * mb),
                // The next 10 MB are in the second tier: 2.
                ev("d4", "13800138000", UsageKind::Data, 10 * mb),
            ])
            .await
            .unwrap();
        assert_eq!(charged(&out[0]), (Micros::ZERO, 600 * mb), "{}", e.name);
        assert_eq!(charged(&out[1]), (Micros::ZERO, 924 * mb));
        assert_eq!(charged(&out[2]), (m("60"), 0));
        assert_eq!(charged(&out[3]), (m("2"), 0), "{}", e.name);
        let sub = s.subscription(t.id, 1).await.unwrap();
        let remaining: Vec<i64> = sub.buckets.iter().map(|b| b.remaining).collect();
        assert_eq!(remaining, vec![6000, 0, 0], "{}", e.name);
    }
}

#[tokio::test]
async fn the_same_event_twice_is_charged_once_and_refusals_leave_nothing() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "10.5").await; // 0.5 left after the fee
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let long = ev("big", "13800138000", UsageKind::Voice, 6_000 + 600); // 10 min beyond: 1.5
        let small = ev("small", "13800138000", UsageKind::Sms, 1);
        let out = c
            .charge_batch(&[long.clone(), small.clone(), small.clone()])
            .await
            .unwrap();
        assert!(
            matches!(&out[0], ChargeOutcome::Refused { reason, .. } if reason.contains("insufficient")),
            "{}: {out:?}",
            e.name
        );
        // The plan prices no SMS beyond its (absent) SMS allowance.
        assert!(matches!(&out[1], ChargeOutcome::Refused { .. }), "{out:?}");
        assert!(
            matches!(&out[2], ChargeOutcome::Refused { .. }),
            "refused keys stay free"
        );
        // The refused call drew nothing: the whole allowance is still there.
        let fits = ev("fits", "13800138000", UsageKind::Voice, 6_000 + 120); // 2 min: 0.3
        let out = c.charge_batch(&[fits.clone(), fits.clone()]).await.unwrap();
        assert_eq!(charged(&out[0]), (m("0.3"), 6_000), "{}", e.name);
        assert_eq!(out[1], ChargeOutcome::Duplicate);
        let again = c.charge(&fits).await.unwrap();
        assert_eq!(again, ChargeOutcome::Duplicate);
        let a = s.account(t.id, "a1").await.unwrap();
        assert_eq!(a.balance, m("0.2"), "{}", e.name);
        let unknown = c
            .charge(&ev("x", "13999999999", UsageKind::Voice, 1))
            .await
            .unwrap();
        assert!(matches!(unknown, ChargeOutcome::Refused { .. }));
    }
}

/// Event keys come from switches and files: printable ASCII (the key rule) includes the
/// backslash, the escape character of PostgreSQL's `COPY` text format, in which `\N` is NULL
/// and `\t` a tab. Such keys must be stored as given, or a repeat would not be recognised.
#[tokio::test]
async fn keys_with_backslashes_and_punctuation_are_stored_as_given() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "50").await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let keys = [
            "\\N",
            "a\\tb\\nc\\rd",
            "back\\\\slash\\",
            "q'u\"o`te,;|&%",
            "1698765432.17@pbx-1",
        ];
        let events: Vec<UsageEvent> = keys
            .iter()
            .map(|k| ev(k, "13800138000", UsageKind::Voice, 10))
            .collect();
        let out = c.charge_batch(&events).await.unwrap();
        assert!(
            out.iter()
                .all(|o| matches!(o, ChargeOutcome::Charged { .. })),
            "{}: {out:?}",
            e.name
        );
        // A fresh charger reads the keys back from the database, not from a cache.
        let again = Charger::new(s.clone(), t.clone()).unwrap();
        let out = again.charge_batch(&events).await.unwrap();
        assert!(
            out.iter().all(|o| *o == ChargeOutcome::Duplicate),
            "{}: {out:?}",
            e.name
        );
        let found = s.charged_keys(t.id, &keys).await.unwrap();
        assert_eq!(found.len(), keys.len(), "{}: {found:?}", e.name);
        for k in keys {
            assert!(found.contains(k), "{}: {k:?} not stored as given", e.name);
        }
    }
}

#[tokio::test]
async fn a_line_without_a_plan_pays_the_rated_cost() {
    for e in common::engines().await {
        let s = &e.store;
        let t = tenant(s, "acme").await;
        s.create_customer(t.id, "c1", "x").await.unwrap();
        let mode = AccountMode::Postpaid {
            credit_limit: m("5"),
        };
        s.create_account(t.id, "c1", "a1", mode).await.unwrap();
        s.add_subscriber(t.id, "a1", "13800138000").await.unwrap();
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let mut call = ev("r1", "13800138000", UsageKind::Voice, 90);
        call.rated_cost = Some(Decimal::new(1234, 4));
        assert_eq!(charged(&c.charge(&call).await.unwrap()), (m("0.1234"), 0));
        let mut over = ev("r2", "13800138000", UsageKind::Voice, 90);
        over.rated_cost = Some(Decimal::new(5, 0));
        assert!(matches!(
            c.charge(&over).await.unwrap(),
            ChargeOutcome::Refused { .. }
        ));
        let a = s.account(t.id, "a1").await.unwrap();
        assert_eq!(
            (a.balance, a.available),
            (m("-0.1234"), Some(m("4.8766"))),
            "{}",
            e.name
        );
    }
}

/// An event id that equals a payment id is still charged: ledger keys are namespaced by source.
#[tokio::test]
async fn event_keys_never_collide_with_other_ledger_keys() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "100").await; // top-up key "pay-1"
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        let mut call = ev("pay-1", "13800138000", UsageKind::Sms, 1);
        call.usage = UsageKind::Voice;
        call.quantity = 6_060; // 61 s beyond the 5,999 left: 2 started minutes, 0.30
        let out = c
            .charge_batch(&[ev("ok-1", "13800138000", UsageKind::Voice, 1), call])
            .await;
        let out = out.unwrap();
        assert_eq!(charged(&out[1]), (m("0.3"), 5_999), "{}", e.name);
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    }
}

/// Prepaid authorisation: allowances first, then what the balance pays for at the overage price.
#[tokio::test]
async fn authorization_counts_allowances_then_what_the_balance_pays_for() {
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "10.5").await; // 0.5 left after the fee
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        // 100 minutes free, then 0.15 per started minute: 0.5 pays for 3 minutes.
        let a = c
            .authorize(&ev("q", "13800138000", UsageKind::Voice, 7_200))
            .await
            .unwrap();
        assert_eq!(
            (a.allowed, a.from_allowances, a.from_balance, a.limited_by),
            (6_180, 6_000, 180, "balance"),
            "{}",
            e.name
        );
        let a = c
            .authorize(&ev("q", "13800138000", UsageKind::Voice, 600))
            .await
            .unwrap();
        assert_eq!((a.allowed, a.limited_by), (600, "requested"));
        // No SMS allowance and no SMS overage: refused by the plan.
        let a = c
            .authorize(&ev("q", "13800138000", UsageKind::Sms, 1))
            .await
            .unwrap();
        assert_eq!((a.allowed, a.limited_by), (0, "plan"));
        // Authorising charges nothing; charging what was authorised succeeds.
        assert_eq!(s.account(t.id, "a1").await.unwrap().balance, m("0.5"));
        let out = c
            .charge(&ev("k1", "13800138000", UsageKind::Voice, 6_180))
            .await
            .unwrap();
        assert_eq!(charged(&out), (m("0.45"), 6_000), "{}", e.name);
        let a = c
            .authorize(&ev("q", "13800138000", UsageKind::Voice, 60))
            .await
            .unwrap();
        assert_eq!((a.allowed, a.limited_by), (0, "balance"), "{}", e.name);
    }
}

#[tokio::test]
async fn a_record_batch_closes_the_calls_it_ends_in_its_own_transaction() {
    use toll_store::charging::RecordBatch;
    use toll_store::open_calls::{CallClose, CallStatus, NewCall};
    for e in common::engines().await {
        let s = &e.store;
        let (t, _) = one_line(s, "100").await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        for id in ["c-1", "c-2"] {
            let call = NewCall {
                source: "pbx".into(),
                call_id: id.into(),
                caller: LINE.into(),
                callee: "01088886666".into(),
                start_ms: at(0),
                utc_offset_s: 8 * 3600,
                category: None,
            };
            assert!(s.start_call(t.id, &call).await.unwrap());
        }
        let (ev, rec) = rated_call("c-1", LINE, at(0), 60, "CN-Mobile", "0.2");
        let close = |status| CallClose {
            source: "pbx".into(),
            call_id: "c-1".into(),
            status,
        };
        let batch = |closes| RecordBatch {
            events: std::slice::from_ref(&ev),
            records: std::slice::from_ref(&rec),
            suspense: &[],
            on_refused: &refused_item,
            resolved: &[],
            import: None,
            closes,
        };
        // A close that would leave the call open is refused before anything is written.
        let wrong = [close(CallStatus::Open)];
        let err = c.charge_records(batch(&wrong)).await.unwrap_err();
        assert!(err.to_string().contains("closes"), "{}: {err}", e.name);
        assert_eq!(s.open_call_count(t.id).await.unwrap(), 2, "{}", e.name);

        let ended = [close(CallStatus::Ended)];
        let out = c.charge_records(batch(&ended)).await.unwrap();
        assert!(
            matches!(out[0], ChargeOutcome::Charged { .. }),
            "{}: {out:?}",
            e.name
        );
        let key = ("pbx".to_string(), "c-1".to_string());
        let calls = s.calls(t.id, std::slice::from_ref(&key)).await.unwrap();
        assert_eq!(calls[&key].status, CallStatus::Ended, "{}", e.name);
        assert_eq!(s.open_call_count(t.id).await.unwrap(), 1, "{}", e.name);
        // The same record again: a duplicate, and the call stays ended.
        let out = c.charge_records(batch(&ended)).await.unwrap();
        assert_eq!(out[0], ChargeOutcome::Duplicate, "{}", e.name);
        assert_eq!(s.open_call_count(t.id).await.unwrap(), 1, "{}", e.name);
    }
}
