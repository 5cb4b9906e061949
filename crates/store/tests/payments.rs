#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Payments and statements on both engines: a payment that pays an invoice exactly, a partial
//! one, an overpayment whose credit settles the next invoice; idempotency keys and provider
//! events that record once; an invoice is never paid beyond its total; statements whose
//! opening balance plus movements is the closing balance to the micro-unit; the ledger intact.

mod common;

use common::fixtures::{charge_calls as charge, m, rated_call, tenant};
use jiff::civil::{Date, date};
use rust_decimal::Decimal;
use toll_billing::{PeriodLabel, TaxMode, TaxRate};
use toll_core::{Currency, Micros, RoundingMethod};
use toll_store::accounts::AccountMode;
use toll_store::billing::invoices::StoredInvoice;
use toll_store::billing::payments::{PaymentMethod, PaymentRequest, RecordedPayment};
use toll_store::billing::run::BillRunOptions;
use toll_store::billing::statements::{MovementGroup, Statement};
use toll_store::cdrs::CdrRecord;
use toll_store::charging::{Charger, UsageEvent};
use toll_store::{Store, StoreError, Tenant, TenantId};

/// 2026-11-03 10:00 Beijing time.
const NOV_3: i64 = 1_793_671_200_000;
const DAY_MS: i64 = 86_400_000;

/// A 60 s call to a mobile destination, rated at `cost`.
fn call(id: &str, number: &str, at_ms: i64, cost: &str) -> (UsageEvent, CdrRecord) {
    rated_call(id, number, at_ms, 60, "CN-Mobile", cost)
}

fn opts(today: Date) -> BillRunOptions {
    BillRunOptions {
        finalize: true,
        batch: 10,
        today,
    }
}

async fn balance(s: &Store, t: TenantId, a: &str) -> Micros {
    s.account(t, a).await.unwrap().balance
}

fn bank(account: &str, amount: Micros, key: &str, received_ms: i64) -> PaymentRequest {
    PaymentRequest {
        account: account.into(),
        method: PaymentMethod::BankTransfer,
        currency: Currency::CNY,
        amount,
        reference: format!("ICBC {key}"),
        key: key.into(),
        received_ms,
    }
}

async fn invoice_of(s: &Store, t: TenantId, account: &str, period: &str) -> StoredInvoice {
    let list = s
        .invoices(t, Some(account), Some(period), None, 10)
        .await
        .unwrap();
    let inv = list.iter().find(|i| i.kind == "invoice").unwrap();
    s.invoice(t, inv.id).await.unwrap()
}

fn sub(a: Micros, b: Micros) -> Micros {
    a.checked_sub(b).unwrap()
}

fn add(a: Micros, b: Micros) -> Micros {
    a.checked_add(b).unwrap()
}

/// The identity every statement keeps, and its movements adding up to its totals.
fn assert_reconciles(st: &Statement, n: &str) {
    let closing = add(st.opening, st.charges);
    let closing = sub(sub(closing, st.payments), st.credits);
    assert_eq!(closing, st.closing, "{n}: {st:#?}");
    let (mut debits, mut credits) = (Micros(0), Micros(0));
    for mv in &st.movements {
        debits = add(debits, mv.debit);
        credits = add(credits, mv.credit);
    }
    assert_eq!(
        sub(add(st.opening, debits), credits),
        st.closing,
        "{n}: debits and credits"
    );
}

/// Tenant `acme` (exclusive VAT 6%), three postpaid accounts with one line each, charged in
/// November and December, and November invoiced (finalized) by a bill run on 5 December.
async fn november_billed(s: &Store) -> Tenant {
    let t = tenant(s, "acme").await;
    s.set_invoicing(t.id, TaxMode::Exclusive, RoundingMethod::Middle)
        .await
        .unwrap();
    let vat = TaxRate::percent("VAT 6%", Decimal::from(6)).unwrap();
    s.set_tax_rule(t.id, "*", &vat).await.unwrap();
    s.create_customer(t.id, "c1", "张三").await.unwrap();
    for (account, line) in [
        ("exact", "13800138001"),
        ("partial", "13800138002"),
        ("over", "13800138003"),
    ] {
        s.create_account(
            t.id,
            "c1",
            account,
            AccountMode::Postpaid {
                credit_limit: m("1000"),
            },
        )
        .await
        .unwrap();
        s.add_subscriber(t.id, account, line).await.unwrap();
    }
    let c = Charger::new(s.clone(), t.clone()).unwrap();
    charge(
        &c,
        vec![
            // November: exact 12.50, partial 20, over 10.
            call("1", "13800138001", NOV_3, "10"),
            call("2", "13800138001", NOV_3 + DAY_MS, "2.5"),
            call("3", "13800138002", NOV_3, "20"),
            call("4", "13800138003", NOV_3 + 2 * DAY_MS, "10"),
            // December: over 8 and partial 4.
            call("5", "13800138003", NOV_3 + 30 * DAY_MS, "8"),
            call("6", "13800138002", NOV_3 + 31 * DAY_MS, "4"),
        ],
    )
    .await;
    let nov: PeriodLabel = "2026-11".parse().unwrap();
    let sum = s
        .bill_run(&t, nov, &opts(date(2026, 12, 5)), |_, _| {})
        .await
        .unwrap();
    assert_eq!(sum.created, 3, "{sum:?}");
    t
}

/// 2026-11-20 12:00 Beijing time.
const NOV_20: i64 = NOV_3 + 17 * DAY_MS + 2 * 3_600_000;

#[tokio::test]
async fn payments_settle_invoices_oldest_first_and_credit_settles_the_next_one() {
    for e in common::engines().await {
        let s = &e.store;
        let n = e.name;
        let t = november_billed(s).await;
        let exact = invoice_of(s, t.id, "exact", "2026-11").await;
        let partial = invoice_of(s, t.id, "partial", "2026-11").await;
        let over = invoice_of(s, t.id, "over", "2026-11").await;
        assert_eq!(exact.invoice.total, m("13.25"), "{n}: 12.50 + 6%");
        assert_eq!(partial.invoice.total, m("21.2"), "{n}");
        assert_eq!(over.invoice.total, m("10.6"), "{n}");

        // Exactly the invoice: paid.
        let p = s
            .record_payment(t.id, &bank("exact", m("13.25"), "b-1", NOV_20))
            .await
            .unwrap();
        assert!(!p.duplicate);
        assert_eq!(p.unallocated, Micros(0), "{n}");
        assert_eq!(p.allocations.len(), 1, "{n}");
        assert_eq!(p.allocations[0].invoice_id, exact.id);
        assert_eq!(p.allocations[0].amount, m("13.25"));
        assert_eq!(p.allocations[0].invoice_number, exact.number);
        let after = s.invoice(t.id, exact.id).await.unwrap();
        assert_eq!(
            (after.status.as_str(), after.paid),
            ("paid", m("13.25")),
            "{n}"
        );
        assert_eq!(balance(s, t.id, "exact").await, Micros(0), "{n}");

        // Part of it: still finalized, paid what came in.
        let p = s
            .record_payment(t.id, &bank("partial", m("20"), "b-2", NOV_20))
            .await
            .unwrap();
        assert_eq!(p.unallocated, Micros(0), "{n}");
        let after = s.invoice(t.id, partial.id).await.unwrap();
        assert_eq!(
            (after.status.as_str(), after.paid),
            ("finalized", m("20")),
            "{n}"
        );

        // More than owed: the invoice is paid and 5 stays in the wallet as credit.
        let p_over = s
            .record_payment(t.id, &bank("over", m("15.6"), "b-3", NOV_20))
            .await
            .unwrap();
        assert_eq!(p_over.unallocated, m("5"), "{n}");
        assert_eq!(p_over.allocations.len(), 1);
        let after = s.invoice(t.id, over.id).await.unwrap();
        assert_eq!(
            (after.status.as_str(), after.paid),
            ("paid", m("10.6")),
            "{n}"
        );
        // -10.6 invoiced, -8 of December's usage, +15.6 paid.
        assert_eq!(balance(s, t.id, "over").await, m("-3"), "{n}");
        // Nothing open to pay: allocating the credit does nothing yet.
        assert!(s.allocate_credit(t.id, "over").await.unwrap().is_empty());

        // December's bill run: the over account's 8.48 is paid 5 from its credit.
        let dec: PeriodLabel = "2026-12".parse().unwrap();
        let d = s
            .bill_run(&t, dec, &opts(date(2027, 1, 2)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(d.created, 3, "{n}: {d:?}");
        let over_dec = invoice_of(s, t.id, "over", "2026-12").await;
        assert_eq!(over_dec.invoice.total, m("8.48"), "{n}");
        assert_eq!(over_dec.status, "finalized");
        let applied = s.allocate_all_credit(t.id).await.unwrap();
        assert_eq!(applied.len(), 1, "{n}: only the over account has credit");
        assert_eq!(
            (
                applied[0].payment_id,
                applied[0].invoice_id,
                applied[0].amount
            ),
            (p_over.payment.id, over_dec.id, m("5")),
            "{n}"
        );
        let after = s.invoice(t.id, over_dec.id).await.unwrap();
        assert_eq!(
            (after.status.as_str(), after.paid),
            ("finalized", m("5")),
            "{n}"
        );
        assert!(s.allocate_all_credit(t.id).await.unwrap().is_empty(), "{n}");
        let detail = s.payment(t.id, p_over.payment.id).await.unwrap();
        assert_eq!(detail.payment.allocated, m("15.6"), "{n}: used up");
        assert_eq!(detail.allocations.len(), 2);

        // The partial account owes 1.2 of November and 4.24 of December; it pays 10: the oldest
        // invoice first, then the next, 4.56 left as credit.
        let partial_dec = invoice_of(s, t.id, "partial", "2026-12").await;
        assert_eq!(partial_dec.invoice.total, m("4.24"), "{n}");
        let now = jiff::Timestamp::now().as_millisecond();
        let p = s
            .record_payment(t.id, &bank("partial", m("10"), "b-4", now))
            .await
            .unwrap();
        let got: Vec<(i64, Micros)> = p
            .allocations
            .iter()
            .map(|a| (a.invoice_id, a.amount))
            .collect();
        assert_eq!(
            got,
            [(partial.id, m("1.2")), (partial_dec.id, m("4.24"))],
            "{n}"
        );
        assert_eq!(p.unallocated, m("4.56"), "{n}");
        for id in [partial.id, partial_dec.id] {
            assert_eq!(s.invoice(t.id, id).await.unwrap().status, "paid", "{n}");
        }

        // A credited invoice is settled by its credit note: payments are not allocated to it.
        let exact_dec = invoice_of(s, t.id, "exact", "2026-12").await;
        assert_eq!(exact_dec.invoice.total, Micros(0), "{n}: no December usage");
        let over_cn = s
            .credit_invoice(t.id, over_dec.id, "disputed", date(2026, 12, 6))
            .await
            .unwrap();
        assert_eq!(over_cn.invoice.total, m("-8.48"), "{n}");
        let p = s
            .record_payment(t.id, &bank("over", m("3.48"), "b-5", now))
            .await
            .unwrap();
        assert!(p.allocations.is_empty(), "{n}: {p:?}");
        assert_eq!(p.unallocated, m("3.48"));
        // -3 before December's tax (0.48), +8.48 credited, +3.48 paid.
        assert_eq!(balance(s, t.id, "over").await, m("8.48"), "{n}");

        // Every invoice's paid is the sum of its allocations; no payment is over-allocated.
        let payments = s.payments(t.id, None, None, 100).await.unwrap();
        assert_eq!(payments.len(), 5, "{n}");
        let mut per_invoice = std::collections::BTreeMap::<i64, i64>::new();
        for pay in &payments {
            let d = s.payment(t.id, pay.id).await.unwrap();
            let sum: i64 = d.allocations.iter().map(|a| a.amount.0).sum();
            assert_eq!(sum, pay.allocated.0, "{n}");
            assert!(pay.allocated <= pay.amount, "{n}");
            for a in &d.allocations {
                *per_invoice.entry(a.invoice_id).or_default() += a.amount.0;
            }
        }
        for inv in s.invoices(t.id, None, None, None, 100).await.unwrap() {
            let allocated = per_invoice.get(&inv.id).copied().unwrap_or(0);
            assert_eq!(inv.paid.0, allocated, "{n}: invoice {}", inv.id);
            assert!(inv.kind == "credit_note" || inv.paid <= inv.total, "{n}");
        }
        let listed = s.payments(t.id, Some("partial"), None, 1).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "b-4", "{n}: newest first");
        let page2 = s
            .payments(t.id, Some("partial"), Some(listed[0].id), 10)
            .await
            .unwrap();
        assert_eq!(page2.len(), 1);
        assert_eq!(page2[0].key, "b-2");

        // The database refuses an invoice paid beyond its total, whoever writes it.
        let overpay = "UPDATE invoices SET paid = total + 1 WHERE id = $1";
        let refused = match s {
            Store::Sqlite(p) => sqlx::query(overpay)
                .bind(exact.id)
                .execute(p)
                .await
                .is_err(),
            Store::Postgres(p) => sqlx::query(overpay)
                .bind(exact.id)
                .execute(p)
                .await
                .is_err(),
        };
        assert!(refused, "{n}");

        // Statements of the over account: before December, from December on, and both.
        let tz = t.zone().unwrap();
        let end = jiff::Zoned::now()
            .with_time_zone(tz)
            .date()
            .checked_add(jiff::Span::new().days(2))
            .unwrap();
        let (oct, dec1) = (date(2026, 10, 1), date(2026, 12, 1));
        let before = s.statement(&t, "over", oct, dec1).await.unwrap();
        let after = s.statement(&t, "over", dec1, end).await.unwrap();
        let whole = s.statement(&t, "over", oct, end).await.unwrap();
        for (st, what) in [(&before, "before"), (&after, "after"), (&whole, "whole")] {
            assert_reconciles(st, &format!("{n} {what}"));
        }
        assert_eq!(whole.opening, Micros(0), "{n}");
        assert_eq!(before.closing, after.opening, "{n}");
        assert_eq!(whole.closing, after.closing, "{n}");
        assert_eq!(
            whole.closing,
            Micros(-balance(s, t.id, "over").await.0),
            "{n}: the amount due is what the wallet lacks"
        );
        // November: 10 of usage charged, 15.6 received on the 20th: 5.6 in credit.
        assert_eq!(
            (before.charges, before.payments, before.credits),
            (m("10"), m("15.6"), Micros(0)),
            "{n}"
        );
        assert_eq!(before.closing, m("-5.6"), "{n}");
        assert_eq!(before.received.len(), 1);
        assert_eq!(
            before.received[0].date,
            date(2026, 11, 20),
            "{n}: local day"
        );
        assert_eq!(before.received[0].reference, "ICBC b-3");
        // Over both periods, the charges are the two invoices' totals (all usage invoiced), the
        // credit is the credit note, and the payments are what was received.
        let invoiced: Micros = whole
            .invoices
            .iter()
            .filter(|i| i.kind == "invoice")
            .fold(Micros(0), |acc, i| add(acc, i.total));
        assert_eq!(invoiced, add(over.invoice.total, over_dec.invoice.total));
        assert_eq!(whole.charges, invoiced, "{n}");
        assert_eq!(whole.credits, m("8.48"), "{n}: the credit note");
        assert_eq!(whole.payments, m("19.08"), "{n}: 15.6 + 3.48");
        let received: Micros = whole
            .received
            .iter()
            .fold(Micros(0), |acc, p| add(acc, p.amount));
        assert_eq!(received, whole.payments, "{n}: no top-ups here");
        assert_eq!(
            whole.invoices.len(),
            3,
            "{n}: two invoices and a credit note"
        );
        assert_eq!(whole.closing, m("-8.48"), "{n}: in credit");
        let payment_entries: i64 = whole
            .movements
            .iter()
            .filter(|mv| mv.group == MovementGroup::Payments)
            .map(|mv| mv.entries)
            .sum();
        assert_eq!(payment_entries, 2, "{n}: one posting per payment");
        assert!(s.statement(&t, "over", dec1, oct).await.is_err(), "{n}");
        assert!(matches!(
            s.statement(&t, "nobody", oct, end).await,
            Err(StoreError::NotFound { .. })
        ));

        assert!(s.verify_ledger(t.id).await.unwrap().is_intact(), "{n}");
    }
}

async fn one_account(s: &Store) -> Tenant {
    let t = tenant(s, "acme").await;
    s.create_customer(t.id, "c1", "张三").await.unwrap();
    s.create_account(
        t.id,
        "c1",
        "a1",
        AccountMode::Postpaid {
            credit_limit: m("100"),
        },
    )
    .await
    .unwrap();
    t
}

#[tokio::test]
async fn a_key_records_once_and_a_changed_payment_under_it_is_a_conflict() {
    for e in common::engines().await {
        let s = &e.store;
        let n = e.name;
        let t = one_account(s).await;
        let now = jiff::Timestamp::now().as_millisecond();
        let req = bank("a1", m("50"), "bank-2026-001", now);
        let first = s.record_payment(t.id, &req).await.unwrap();
        assert!(!first.duplicate);
        assert_eq!(first.unallocated, m("50"), "{n}: no invoice: all credit");
        // The same request again, even stamped later: the first payment, nothing written.
        let again = PaymentRequest {
            received_ms: now + 1000,
            ..req.clone()
        };
        let second: RecordedPayment = s.record_payment(t.id, &again).await.unwrap();
        assert!(second.duplicate, "{n}");
        assert_eq!(second.payment, first.payment, "{n}");
        assert_eq!(balance(s, t.id, "a1").await, m("50"), "{n}: credited once");
        assert_eq!(s.payments(t.id, None, None, 10).await.unwrap().len(), 1);
        // The same key for something else: refused, nothing written.
        for changed in [
            PaymentRequest {
                amount: m("60"),
                ..req.clone()
            },
            PaymentRequest {
                reference: "ICBC other".into(),
                ..req.clone()
            },
            PaymentRequest {
                method: PaymentMethod::Card,
                ..req.clone()
            },
        ] {
            let err = s.record_payment(t.id, &changed).await.unwrap_err();
            assert!(matches!(err, StoreError::Conflict { .. }), "{n}: {err}");
        }
        assert_eq!(balance(s, t.id, "a1").await, m("50"), "{n}");

        // What is refused before anything is written.
        let bad = [
            PaymentRequest {
                amount: Micros(0),
                key: "k-0".into(),
                ..req.clone()
            },
            PaymentRequest {
                amount: m("1000000001"),
                key: "k-1".into(),
                ..req.clone()
            },
            PaymentRequest {
                currency: Currency::USD,
                key: "k-2".into(),
                ..req.clone()
            },
            PaymentRequest {
                reference: String::new(),
                key: "k-3".into(),
                ..req.clone()
            },
            PaymentRequest {
                reference: "x".repeat(129),
                key: "k-4".into(),
                ..req.clone()
            },
            PaymentRequest {
                received_ms: now + 2 * DAY_MS,
                key: "k-5".into(),
                ..req.clone()
            },
            PaymentRequest {
                key: "with space".into(),
                ..req.clone()
            },
            PaymentRequest {
                method: PaymentMethod::Provider("Not A Name".into()),
                key: "k-6".into(),
                ..req.clone()
            },
        ];
        for b in &bad {
            let err = s.record_payment(t.id, b).await.unwrap_err();
            assert!(
                matches!(err, StoreError::Invalid { .. }),
                "{n}: {b:?}: {err}"
            );
        }
        let err = s
            .record_payment(
                t.id,
                &PaymentRequest {
                    account: "nobody".into(),
                    key: "k-7".into(),
                    ..req.clone()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{n}: {err}");
        // Cash may come without a reference.
        let cash = PaymentRequest {
            method: PaymentMethod::Cash,
            reference: String::new(),
            key: "cash-1".into(),
            amount: m("0.01"),
            ..req.clone()
        };
        s.record_payment(t.id, &cash).await.unwrap();
        assert_eq!(balance(s, t.id, "a1").await, m("50.01"), "{n}");
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact(), "{n}");
    }
}

#[tokio::test]
async fn a_provider_event_delivered_twice_records_one_payment() {
    for e in common::engines().await {
        let s = &e.store;
        let n = e.name;
        let t = one_account(s).await;
        let now = jiff::Timestamp::now().as_millisecond();
        let stripe = PaymentMethod::Provider("stripe".into());
        let req = PaymentRequest {
            account: "a1".into(),
            method: stripe.clone(),
            currency: Currency::CNY,
            amount: m("20"),
            reference: "pi_3MtwBwLkdIwHu7ix28a3tqPa".into(),
            key: "stripe:pi_3MtwBwLkdIwHu7ix28a3tqPa".into(),
            received_ms: now,
        };
        let first = s
            .record_provider_event(t.id, "stripe", "evt_1", &req)
            .await
            .unwrap();
        assert!(!first.duplicate, "{n}");
        assert_eq!(first.payment.method, stripe);
        // Redelivered: the same payment, nothing written.
        let again = s
            .record_provider_event(t.id, "stripe", "evt_1", &req)
            .await
            .unwrap();
        assert!(again.duplicate, "{n}");
        assert_eq!(again.payment.id, first.payment.id);
        // Another event about the same payment intent: its key records it once too.
        let other = s
            .record_provider_event(t.id, "stripe", "evt_2", &req)
            .await
            .unwrap();
        assert!(other.duplicate, "{n}");
        assert_eq!(other.payment.id, first.payment.id);
        assert_eq!(balance(s, t.id, "a1").await, m("20"), "{n}");
        assert_eq!(
            s.payments(t.id, Some("a1"), None, 10).await.unwrap().len(),
            1
        );
        // A provider event records a payment through that provider only.
        let err = s
            .record_provider_event(t.id, "stripe", "evt_3", &bank("a1", m("1"), "k", now))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{n}: {err}");
        let err = s
            .record_provider_event(t.id, "stripe", "", &req)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{n}: {err}");
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact(), "{n}");
    }
}

#[tokio::test]
async fn concurrent_payments_never_pay_an_invoice_twice_nor_record_a_key_twice() {
    for e in common::engines().await {
        let s = &e.store;
        let n = e.name;
        let t = november_billed(s).await;
        let partial = invoice_of(s, t.id, "partial", "2026-11").await;
        assert_eq!(partial.invoice.total, m("21.2"), "{n}");
        // Six payments of 5 and the same one sent three more times, all at once.
        let keys = [
            "k-1", "k-2", "k-3", "k-4", "k-5", "k-6", "k-1", "k-1", "k-1",
        ];
        let tasks: Vec<_> = keys
            .iter()
            .map(|k| {
                let s = s.clone();
                let req = bank("partial", m("5"), k, NOV_20);
                tokio::spawn(async move { s.record_payment(t.id, &req).await.unwrap() })
            })
            .collect();
        let mut fresh = 0;
        for task in tasks {
            if !task.await.unwrap().duplicate {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 6, "{n}: each key once");
        let after = s.invoice(t.id, partial.id).await.unwrap();
        assert_eq!(
            (after.status.as_str(), after.paid),
            ("paid", m("21.2")),
            "{n}"
        );
        let payments = s.payments(t.id, Some("partial"), None, 100).await.unwrap();
        assert_eq!(payments.len(), 6, "{n}");
        let unallocated = payments
            .iter()
            .fold(Micros(0), |acc, p| add(acc, p.unallocated()));
        assert_eq!(unallocated, m("8.8"), "{n}: 30 paid, 21.2 of it allocated");
        // November's 20 and 1.2 of tax, December's 4 of usage, 30 paid.
        assert_eq!(balance(s, t.id, "partial").await, m("4.8"), "{n}");
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact(), "{n}");
    }
}
