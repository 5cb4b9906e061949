#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Bill runs on both engines: one invoice per account and period with fees, allowance use,
//! usage by destination, the rounding difference and exclusive VAT, to the cent; a repeated run
//! creates nothing; late usage lands on the next invoice; a credit note gives the money back;
//! the ledger stays intact and each wallet has been charged exactly its invoices' totals.

mod common;

use common::fixtures::{LINE, charge_calls as charge, m, one_line, rated_call as call};
use jiff::civil::{Date, date};
use rust_decimal::Decimal;
use toll_billing::invoice::LineKind;
use toll_billing::{PeriodLabel, TaxMode, TaxRate};
use toll_core::{Micros, RoundingMethod};
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::billing::run::BillRunOptions;
use toll_store::charging::Charger;

/// 2026-11-03 10:00 Beijing time.
const NOV_3: i64 = 1_793_671_200_000;
const DAY_MS: i64 = 86_400_000;
const LINE2: &str = "13900139000";

/// a2: postpaid (credit limit 100), no plan, line `LINE2`: each call at the tariff's price.
async fn postpaid_a2(s: &Store, t: toll_store::TenantId) {
    s.create_account(
        t,
        "c1",
        "a2",
        AccountMode::Postpaid {
            credit_limit: m("100"),
        },
    )
    .await
    .unwrap();
    s.add_subscriber(t, "a2", LINE2).await.unwrap();
}

fn opts(today: Date) -> BillRunOptions {
    BillRunOptions {
        finalize: true,
        batch: 1,
        today,
    }
}

async fn balance(s: &Store, t: toll_store::TenantId, a: &str) -> Micros {
    s.account(t, a).await.unwrap().balance
}

#[tokio::test]
async fn a_month_is_invoiced_once_late_usage_follows_and_a_credit_note_reverses_it() {
    for e in common::engines().await {
        let s = &e.store;
        let n = e.name;
        // a1: prepaid, 100 topped up, plan p (fee 10, 100 voice minutes) from 2026-11-01.
        let (t, _) = one_line(s, "100").await;
        // a2: postpaid, no plan: the tariff's price of each call, whole.
        postpaid_a2(s, t.id).await;
        s.set_invoicing(t.id, TaxMode::Exclusive, RoundingMethod::Middle)
            .await
            .unwrap();
        let vat = |p: i64| TaxRate::percent(&format!("VAT {p}%"), Decimal::from(p)).unwrap();
        s.set_tax_rule(t.id, "*", &vat(6)).await.unwrap();
        s.set_tax_rule(t.id, "fee", &vat(9)).await.unwrap();
        s.set_tax_rule(t.id, "voice", &vat(9)).await.unwrap();
        assert!(s.set_tax_rule(t.id, "Bad Product", &vat(9)).await.is_err());

        let c = Charger::new(s.clone(), t.clone()).unwrap();
        charge(
            &c,
            vec![
                // a1: three minutes, all in the allowance.
                call("1", LINE, NOV_3, 60, "CN-Mobile", "0.2"),
                call("2", LINE, NOV_3 + 60_000, 60, "CN-Mobile", "0.2"),
                call("3", LINE, NOV_3 + DAY_MS, 60, "CN-Mobile", "0.2"),
                // a2: 0.405 and 1.205 print as 0.41 and 1.21; their exact sum 1.61 is owed.
                call("4", LINE2, NOV_3, 30, "CN-Mobile", "0.405"),
                call("5", LINE2, NOV_3 + 2 * DAY_MS, 90, "HK", "1.205"),
                // December: not on November's invoice.
                call("6", LINE2, NOV_3 + 30 * DAY_MS, 60, "HK", "3"),
            ],
        )
        .await;

        let nov: PeriodLabel = "2026-11".parse().unwrap();
        let mut ticks = Vec::new();
        let sum = s
            .bill_run(&t, nov, &opts(date(2026, 12, 5)), |done, all| {
                ticks.push((done, all))
            })
            .await
            .unwrap();
        assert_eq!(
            (sum.accounts, sum.created, sum.existing),
            (2, 2, 0),
            "{n}: {sum:?}"
        );
        assert_eq!(ticks, [(1, 2), (2, 2)], "{n}");
        assert_eq!(
            sum.days_summed, 34,
            "{n}: every day of November and December to the 4th"
        );
        assert_eq!(sum.first_number.as_deref(), Some("INV-2026-000001"));
        assert_eq!(sum.last_number.as_deref(), Some("INV-2026-000002"));
        assert!(sum.failed.is_empty(), "{n}: {:?}", sum.failed);

        let inv1 = s.invoice_by_number(t.id, "INV-2026-000001").await.unwrap();
        assert_eq!(
            (inv1.account.as_str(), inv1.status.as_str()),
            ("a1", "finalized")
        );
        let lines: Vec<(LineKind, String, String)> = inv1
            .invoice
            .lines
            .iter()
            .map(|l| (l.kind, l.label.clone(), l.amount.to_string()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    LineKind::RecurringFee,
                    "p 2026-11-01 – 2026-12-01".into(),
                    "10".into()
                ),
                (LineKind::AllowanceUse, "voice".into(), "0".into()),
                (LineKind::Tax, "VAT 9%".into(), "0.9".into()),
            ],
            "{n}"
        );
        let allowance = &inv1.invoice.lines[1];
        assert_eq!(
            allowance.quantity.map(|q| q.value),
            Some(180),
            "{n}: seconds"
        );
        assert_eq!(allowance.count, Some(3));
        assert_eq!(inv1.invoice.total, m("10.9"), "{n}");
        assert_eq!(inv1.period_start, "2026-11-01");
        assert_eq!(inv1.period_end, "2026-12-01");

        let inv2 = s.invoice_by_number(t.id, "INV-2026-000002").await.unwrap();
        let lines: Vec<(LineKind, String, String)> = inv2
            .invoice
            .lines
            .iter()
            .map(|l| (l.kind, l.label.clone(), l.amount.to_string()))
            .collect();
        assert_eq!(
            lines,
            [
                (LineKind::Usage, "CN-Mobile".into(), "0.41".into()),
                (LineKind::Usage, "HK".into(), "1.21".into()),
                (LineKind::Rounding, "rounding".into(), "-0.01".into()),
                (LineKind::Tax, "VAT 9%".into(), "0.14".into()),
            ],
            "{n}"
        );
        assert_eq!(
            (
                inv2.invoice.subtotal,
                inv2.invoice.tax_total,
                inv2.invoice.total
            ),
            (m("1.61"), m("0.14"), m("1.75")),
            "{n}"
        );
        // Each wallet has been charged exactly its invoice: usage and fees when they happened,
        // the tax (and any sub-cent rounding) when the invoice was finalized.
        assert_eq!(balance(s, t.id, "a1").await, m("89.1"), "{n}");
        assert_eq!(
            balance(s, t.id, "a2").await,
            m("-4.75"),
            "{n}: 1.75 and December's 3"
        );

        // Again (a restart, a second worker): nothing new, no number taken.
        let again = s
            .bill_run(&t, nov, &opts(date(2026, 12, 5)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            (again.created, again.existing, again.days_summed),
            (0, 2, 0),
            "{n}"
        );

        // A call of 20 November arrives after the invoice: it waits for December's.
        charge(
            &c,
            vec![call("7", LINE2, NOV_3 + 17 * DAY_MS, 60, "HK", "2")],
        )
        .await;
        s.sum_days(&t, date(2026, 11, 20), date(2026, 11, 20))
            .await
            .unwrap();
        let dec: PeriodLabel = "2026-12".parse().unwrap();
        let d = s
            .bill_run(&t, dec, &opts(date(2027, 1, 2)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(d.created, 2, "{n}: {d:?}");
        assert_eq!(d.first_number.as_deref(), Some("INV-2027-000001"));
        let dec2 = s.invoice_by_number(t.id, "INV-2027-000002").await.unwrap();
        let lines: Vec<(LineKind, String, Option<String>, String)> = dec2
            .invoice
            .lines
            .iter()
            .map(|l| {
                (
                    l.kind,
                    l.label.clone(),
                    l.detail.clone(),
                    l.amount.to_string(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (LineKind::Usage, "HK".into(), None, "3".into()),
                (
                    LineKind::LateUsage,
                    "HK".into(),
                    Some("2026-11 usage".into()),
                    "2".into()
                ),
                (LineKind::Tax, "VAT 9%".into(), None, "0.45".into()),
            ],
            "{n}"
        );
        // The November invoice did not change.
        let again = s.invoice(t.id, inv2.id).await.unwrap();
        assert_eq!(again.invoice, inv2.invoice);

        // A credit note for a2's November invoice gives its 1.75 back.
        let cn = s
            .credit_invoice(t.id, inv2.id, "disputed", date(2026, 12, 6))
            .await
            .unwrap();
        assert_eq!(cn.number.as_deref(), Some("CN-2026-000001"), "{n}");
        assert_eq!(cn.invoice.total, m("-1.75"));
        assert_eq!(cn.corrects, Some(inv2.id));
        // -4.75, then November's late 2 and December's tax 0.45, then the credit of 1.75.
        assert_eq!(balance(s, t.id, "a2").await, m("-5.45"), "{n}");
        let twice = s
            .credit_invoice(t.id, inv2.id, "again", date(2026, 12, 6))
            .await;
        assert!(twice.is_err(), "{n}: one credit note per invoice");
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact(), "{n}");

        let list = s.invoices(t.id, Some("a2"), None, None, 10).await.unwrap();
        let numbers: Vec<_> = list.iter().map(|i| i.number.clone().unwrap()).collect();
        assert_eq!(
            numbers,
            ["CN-2026-000001", "INV-2027-000002", "INV-2026-000002"],
            "{n}: newest first"
        );

        // A stored line changed behind Toll's back is caught when the invoice is read.
        // (The first line's amount is the 10th field of the first array of `lines`.)
        match s {
            Store::Sqlite(p) => {
                sqlx::query(
                    "UPDATE invoices SET lines = json_set(lines, '$[0][9]', \
                     json_extract(lines, '$[0][9]') + 10000) WHERE id = $1",
                )
                .bind(inv1.id)
                .execute(p)
                .await
                .unwrap();
            }
            Store::Postgres(p) => {
                sqlx::query(
                    "UPDATE invoices SET lines = jsonb_set(lines::jsonb, '{0,9}', \
                     to_jsonb((lines::jsonb -> 0 ->> 9)::bigint + 10000))::text WHERE id = $1",
                )
                .bind(inv1.id)
                .execute(p)
                .await
                .unwrap();
            }
        }
        let err = s.invoice(t.id, inv1.id).await.unwrap_err().to_string();
        assert!(err.contains("does not add up"), "{n}: {err}");
    }
}

/// The invoices of `account` for `period` that are not void: (status, total).
async fn live(
    s: &Store,
    t: toll_store::TenantId,
    account: &str,
    period: &str,
) -> Vec<(String, Micros)> {
    s.invoices(t, Some(account), Some(period), None, 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.status != "void")
        .map(|i| (i.status, i.total))
        .collect()
}

/// What an account's invoices bill is decided by its watermark (`billed_through`) and the
/// late rows: voiding a draft opens its rows again, late ones included, and the next run bills
/// each once; summing billed days again changes nothing; only the latest invoice can be
/// voided; a period before the watermark is not billed again.
#[tokio::test]
async fn a_voided_draft_opens_its_rows_once_and_summing_again_changes_nothing() {
    for e in common::engines().await {
        let s = &e.store;
        let n = e.name;
        let (t, _) = one_line(s, "100").await;
        postpaid_a2(s, t.id).await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        charge(
            &c,
            vec![
                call("1", LINE2, NOV_3, 30, "CN-Mobile", "0.405"),
                call("2", LINE2, NOV_3 + 2 * DAY_MS, 90, "HK", "1.205"),
            ],
        )
        .await;
        let drafts = |today| BillRunOptions {
            finalize: false,
            ..opts(today)
        };
        let nov: PeriodLabel = "2026-11".parse().unwrap();
        let first = s
            .bill_run(&t, nov, &drafts(date(2026, 12, 5)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(first.created, 2, "{n}: {first:?}");
        assert_eq!(
            live(s, t.id, "a2", "2026-11").await,
            [("draft".to_string(), m("1.61"))],
            "{n}"
        );

        // A call of 20 November arrives after the draft was made: a late row.
        charge(
            &c,
            vec![call("3", LINE2, NOV_3 + 17 * DAY_MS, 60, "HK", "2")],
        )
        .await;
        s.sum_days(&t, date(2026, 11, 1), date(2026, 11, 30))
            .await
            .unwrap();
        // The draft is voided: all of November is open again, the late call with the rest,
        // and the new draft bills it as November's usage, not as late usage.
        let draft = s
            .invoices(t.id, Some("a2"), Some("2026-11"), None, 10)
            .await
            .unwrap()[0]
            .id;
        s.void_invoice(t.id, draft).await.unwrap();
        assert!(live(s, t.id, "a2", "2026-11").await.is_empty(), "{n}");
        let rerun = s
            .bill_run(&t, nov, &drafts(date(2026, 12, 5)), |_, _| {})
            .await
            .unwrap();
        assert_eq!((rerun.created, rerun.existing), (1, 1), "{n}: {rerun:?}");
        let redraft = s
            .invoices(t.id, Some("a2"), Some("2026-11"), None, 10)
            .await
            .unwrap();
        let redraft = s.invoice(t.id, redraft[0].id).await.unwrap();
        let lines: Vec<(LineKind, String, String)> = redraft
            .invoice
            .lines
            .iter()
            .map(|l| (l.kind, l.label.clone(), l.amount.to_string()))
            .collect();
        assert_eq!(
            lines,
            [
                (LineKind::Usage, "CN-Mobile".into(), "0.41".into()),
                (LineKind::Usage, "HK".into(), "3.21".into()),
                (LineKind::Rounding, "rounding".into(), "-0.01".into()),
            ],
            "{n}"
        );
        assert_eq!(redraft.invoice.total, m("3.61"), "{n}");

        // Summing November again (the nightly window) writes no open row of what is billed:
        // December's invoice has only the call of 21 November that arrived since.
        charge(
            &c,
            vec![call("4", LINE2, NOV_3 + 18 * DAY_MS, 60, "HK", "1")],
        )
        .await;
        s.sum_days(&t, date(2026, 11, 1), date(2026, 11, 30))
            .await
            .unwrap();
        let dec: PeriodLabel = "2026-12".parse().unwrap();
        let d = s
            .bill_run(&t, dec, &drafts(date(2027, 1, 2)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(d.created, 2, "{n}: {d:?}");
        assert_eq!(
            live(s, t.id, "a2", "2026-12").await,
            [("draft".to_string(), m("1"))],
            "{n}: the late call, nothing of November again"
        );

        // November's draft is no longer the latest: voiding it is refused and changes nothing.
        let err = s
            .void_invoice(t.id, redraft.id)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("latest"), "{n}: {err}");
        assert_eq!(
            live(s, t.id, "a2", "2026-11").await,
            [("draft".to_string(), m("3.61"))],
            "{n}"
        );
        // October, run after November was billed, bills nothing again.
        let oct: PeriodLabel = "2026-10".parse().unwrap();
        let o = s
            .bill_run(&t, oct, &drafts(date(2027, 1, 2)), |_, _| {})
            .await
            .unwrap();
        assert!(
            live(s, t.id, "a2", "2026-10").await.is_empty(),
            "{n}: {o:?}"
        );

        // December's draft voided: its late call is open again (still late: November is
        // billed through), and December's next draft holds it again.
        let dec_draft = s
            .invoices(t.id, Some("a2"), Some("2026-12"), None, 10)
            .await
            .unwrap()[0]
            .id;
        s.void_invoice(t.id, dec_draft).await.unwrap();
        s.bill_run(&t, dec, &drafts(date(2027, 1, 2)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            live(s, t.id, "a2", "2026-12").await,
            [("draft".to_string(), m("1"))],
            "{n}"
        );
        // Voiding December's and then November's draft opens all of November: one new
        // November draft holds each call once.
        let dec_draft = s
            .invoices(t.id, Some("a2"), Some("2026-12"), None, 10)
            .await
            .unwrap()[0]
            .id;
        s.void_invoice(t.id, dec_draft).await.unwrap();
        s.void_invoice(t.id, redraft.id).await.unwrap();
        s.bill_run(&t, nov, &drafts(date(2026, 12, 5)), |_, _| {})
            .await
            .unwrap();
        assert_eq!(
            live(s, t.id, "a2", "2026-11").await,
            [("draft".to_string(), m("4.61"))],
            "{n}"
        );
    }
}

/// A run reads each batch ahead, while the one before is written: usage summed in between
/// is on the invoice (the batch is read again), never billed by the watermark unseen.
#[tokio::test(flavor = "multi_thread")]
async fn usage_summed_while_a_run_reads_ahead_is_on_the_invoice() {
    for e in common::engines().await {
        let s = &e.store;
        let n = e.name;
        let (t, _) = one_line(s, "100").await;
        postpaid_a2(s, t.id).await;
        let c = Charger::new(s.clone(), t.clone()).unwrap();
        charge(&c, vec![call("1", LINE2, NOV_3, 30, "CN-Mobile", "0.5")]).await;
        let nov: PeriodLabel = "2026-11".parse().unwrap();
        let handle = tokio::runtime::Handle::current();
        let mut batches = 0;
        let sum = s
            .bill_run(&t, nov, &opts(date(2026, 12, 5)), |_, _| {
                batches += 1;
                if batches == 1 {
                    // a1's batch is written; a2's has been read ahead by now.
                    tokio::task::block_in_place(|| {
                        handle.block_on(async {
                            charge(&c, vec![call("2", LINE2, NOV_3 + DAY_MS, 60, "HK", "2")]).await;
                            s.sum_days(&t, date(2026, 11, 4), date(2026, 11, 4))
                                .await
                                .unwrap();
                        });
                    });
                }
            })
            .await
            .unwrap();
        assert_eq!(sum.created, 2, "{n}: {sum:?}");
        assert_eq!(
            live(s, t.id, "a2", "2026-11").await,
            [("finalized".to_string(), m("2.5"))],
            "{n}"
        );
    }
}
