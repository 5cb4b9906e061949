//! Bill runs: one invoice per account and period.
//!
//! A run walks the tenant's accounts in id order, a batch per transaction. Each batch skips the
//! accounts that already have an invoice for the period (so a run restarted after a crash, or
//! run twice, creates none twice: a unique index enforces it too), sums each remaining
//! account's open daily rows up to its period end into an [`Invoice`], takes its number from
//! the tenant's counter (when finalizing) and moves the account's `billed_through` watermark to
//! the period's end (marking only the few rows that arrived late), all in that one
//! transaction: a crash loses at most the batch in flight and burns no number. Each batch is
//! read and composed ahead, on a read connection, while the one before it is written; its
//! transaction reads it again if daily rows were written meanwhile.
//!
//! Open rows from days before the period are usage that arrived after an earlier invoice was
//! made; they go on this invoice as late usage, labelled with the month they belong to.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use toll_billing::invoice::{Quantity, QuantityUnit};
use toll_billing::{
    BillCycle, Charge, Invoice, InvoiceKind, InvoiceNumber, LineKind, PeriodLabel, Series, TaxMode,
};
use toll_charging::ledger::{Leg, TxKind, TxRequest};
use toll_core::{Currency, Micros};

use super::TaxSettings;
use super::stored_lines::{encode_lines, encode_taxes};
use super::sums::day_of;
use crate::db::{Col, Tx, q, q_composed};
use crate::keys::{KeySource, ledger_key};
use crate::{Store, StoreError, Tenant, TenantId};

/// Accounts per transaction.
pub const DEFAULT_BATCH: usize = 500;
/// The most accounts per transaction: a bound on what one batch holds in memory.
const MAX_BATCH: usize = 10_000;

#[derive(Debug, Clone)]
pub struct BillRunOptions {
    /// Finalize (number) the invoices; otherwise they stay drafts for review.
    pub finalize: bool,
    /// Accounts per transaction.
    pub batch: usize,
    /// The tenant-local date the run is made on: periods that have not ended by then are not
    /// billed, and finalized invoices are numbered in its year.
    pub today: Date,
}

/// What a bill run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BillRunSummary {
    pub period: String,
    pub accounts: u64,
    pub created: u64,
    /// Accounts that already had an invoice for the period (a restarted or repeated run).
    pub existing: u64,
    /// Accounts whose period has not ended yet (anniversary cycles), began before the
    /// account's anniversary anchor, ended before the account was opened with nothing
    /// of it to bill, or that are already billed through a later period.
    pub not_due: u64,
    /// Days whose usage the run had to sum itself (no nightly job had).
    pub days_summed: u64,
    pub total: Micros,
    pub first_number: Option<String>,
    pub last_number: Option<String>,
    /// Accounts that could not be invoiced, with why (nothing was written for them).
    pub failed: Vec<(String, String)>,
}

struct AccountRow {
    id: i64,
    code: String,
    wallet: i64,
    currency: Currency,
    /// The tenant-local day the account was opened.
    opened: Date,
    start: Date,
    end: Date,
    /// The end of the last period the account was invoiced for: its rows of days before it
    /// are billed, except late ones.
    billed_through: Option<Date>,
}

/// Which line a daily row adds to: the month it is late from ("" when it is of the period),
/// its kind and label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct LineKey {
    late: String,
    kind: String,
    label: String,
}

/// The sum of an account's open daily rows for one line.
#[derive(Debug, Clone, Default)]
struct LineSum {
    product: String,
    unit: Option<String>,
    quantity: i64,
    events: i64,
    amount: i64,
}

/// The open daily rows of one account, summed per line.
#[derive(Default)]
struct Lines {
    by_key: BTreeMap<LineKey, LineSum>,
}

fn unit_of(s: Option<&str>) -> Option<QuantityUnit> {
    s.and_then(|u| u.parse().ok())
}

/// The order lines are printed in.
fn rank(kind: LineKind) -> u8 {
    match kind {
        LineKind::RecurringFee => 0,
        LineKind::Proration => 1,
        LineKind::AllowanceUse => 2,
        LineKind::Usage => 3,
        LineKind::Overage => 4,
        LineKind::AddOn => 5,
        LineKind::OneOff => 6,
        LineKind::Discount => 7,
        LineKind::Adjustment => 8,
        LineKind::LateUsage => 9,
        LineKind::Tax => 10,
        LineKind::Rounding => 11,
    }
}

fn charges_of(lines: Lines, tax: &TaxSettings) -> Result<Vec<Charge>, StoreError> {
    let mut out = Vec::with_capacity(lines.by_key.len());
    for (
        LineKey { late, kind, label },
        LineSum {
            product,
            unit,
            quantity,
            events,
            amount,
        },
    ) in lines.by_key
    {
        let kind: LineKind = kind
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("bill_days kind: {e}")))?;
        let quantity = unit_of(unit.as_deref())
            .filter(|_| quantity != 0)
            .map(|unit| Quantity {
                value: quantity,
                unit,
            });
        let (kind, detail) = if late.is_empty() {
            (kind, None)
        } else {
            // Late usage keeps what it was in its detail: "2026-09 usage".
            (
                LineKind::LateUsage,
                Some(format!("{late} {}", kind.as_str())),
            )
        };
        if amount == 0 && kind != LineKind::AllowanceUse && quantity.is_none() {
            continue;
        }
        out.push(Charge {
            kind,
            label,
            detail,
            quantity,
            count: (events != 0).then_some(events),
            amount: Micros(amount),
            tax: tax.rate_for(&product).cloned(),
        });
    }
    out.sort_by(|a, b| {
        (rank(a.kind), &a.detail, &a.label).cmp(&(rank(b.kind), &b.detail, &b.label))
    });
    Ok(out)
}

/// The open daily rows of `due` accounts up to each one's period end, summed per line: the
/// rows of days from its watermark on, then its late rows, each read by a seek on
/// `bill_days_account`: never the billed history. SQLite steps them itself
/// ([`open_rows_sqlite`]); PostgreSQL groups them in two statements per chunk of accounts (one
/// `UNION ALL` of both, grouped, took half as long again), each driven by the accounts.
async fn read_open_rows(
    tx: &mut Tx,
    t: TenantId,
    due: &[AccountRow],
) -> Result<HashMap<i64, Lines>, StoreError> {
    if let Some(conn) = tx.sqlite_connection() {
        return toll_sqlite_handle::with_rusqlite(conn, |db| open_rows_sqlite(db, t, due)).await;
    }
    const COLS: &[Col] = &[Col::Int, Col::Text, Col::Text, Col::Text];
    let mut found = Vec::new();
    for rows in ["b.late = 0 AND b.day >= a.since", "b.late = 1"] {
        found.extend(
            tx.bulk(
                due,
                COLS,
                |src| {
                    format!(
                        "WITH a (aid, since, pstart, pend) AS ({src}) \
                         SELECT b.account_id, b.kind, b.label, b.product, b.unit, \
                         CASE WHEN b.day < a.pstart THEN substr(b.day, 1, 7) ELSE '' END, \
                         CAST(SUM(b.quantity) AS BIGINT), CAST(SUM(b.events) AS BIGINT), \
                         CAST(SUM(b.amount) AS BIGINT) FROM a CROSS JOIN bill_days b \
                         WHERE b.tenant_id = {t} AND b.account_id = a.aid AND {rows} \
                         AND b.day < a.pend AND b.invoice_id IS NULL \
                         GROUP BY b.account_id, b.kind, b.label, b.product, b.unit, \
                         CASE WHEN b.day < a.pstart THEN substr(b.day, 1, 7) ELSE '' END",
                        t = t.0
                    )
                },
                |r, a| {
                    r.push_i64(a.id);
                    // '' sorts before every date: an account never invoiced has all its rows
                    // open.
                    r.push_text(a.billed_through.map(|d| d.to_string()).unwrap_or_default());
                    r.push_text(a.start.to_string());
                    r.push_text(a.end.to_string());
                },
            )
            .await?,
        );
    }
    let mut lines: HashMap<i64, Lines> = HashMap::with_capacity(due.len());
    for f in &found {
        let key = LineKey {
            late: f.text(5)?,
            kind: f.text(1)?,
            label: f.text(2)?,
        };
        let e = lines
            .entry(f.i64(0)?)
            .or_default()
            .by_key
            .entry(key)
            .or_default();
        e.product = f.text(3)?;
        e.unit = f.opt_text(4)?;
        e.quantity += f.i64(6)?;
        e.events += f.i64(7)?;
        e.amount += f.i64(8)?;
    }
    Ok(lines)
}

/// [`read_open_rows`] on SQLite: the same rows by the same index seeks, one account at a time,
/// summed here instead of by `GROUP BY`. The grouped statement spent most of its time sorting
/// 25 rows per account and handing each group over as an owned row; stepped in place from the
/// covering index, a row costs a hash and a comparison of borrowed strings, and the only
/// allocations are one per line.
fn open_rows_sqlite(
    db: &rusqlite::Connection,
    t: TenantId,
    due: &[AccountRow],
) -> Result<HashMap<i64, Lines>, StoreError> {
    const SELECT: &str = "SELECT kind, label, product, unit, day, quantity, events, amount \
                          FROM bill_days WHERE tenant_id = ?1 AND account_id = ?2";
    let mut current = db.prepare(&format!(
        "{SELECT} AND late = 0 AND day >= ?3 AND day < ?4 AND invoice_id IS NULL"
    ))?;
    let mut late = db.prepare(&format!(
        "{SELECT} AND late = 1 AND day < ?3 AND invoice_id IS NULL"
    ))?;
    let mut out: HashMap<i64, Lines> = HashMap::with_capacity(due.len());
    let mut sums: Vec<(u64, LineKey, LineSum)> = Vec::new();
    for a in due {
        // '' sorts before every date: an account never invoiced has all its rows open.
        let since = a.billed_through.map(|d| d.to_string()).unwrap_or_default();
        let (start, end) = (a.start.to_string(), a.end.to_string());
        sums.clear();
        let rows = current.query(rusqlite::params![t.0, a.id, since, end])?;
        let mut found = add_open_rows(rows, &start, &mut sums)?;
        let rows = late.query(rusqlite::params![t.0, a.id, end])?;
        found |= add_open_rows(rows, &start, &mut sums)?;
        if found {
            out.insert(
                a.id,
                Lines {
                    by_key: sums.drain(..).map(|(_, k, v)| (k, v)).collect(),
                },
            );
        }
    }
    Ok(out)
}

/// Adds daily rows (`kind, label, product, unit, day, quantity, events, amount`) to `sums`,
/// one entry per line key with the key's hash; a row of a day before `start` is late usage of
/// its month. Returns whether there was any row.
fn add_open_rows(
    mut rows: rusqlite::Rows<'_>,
    start: &str,
    sums: &mut Vec<(u64, LineKey, LineSum)>,
) -> Result<bool, StoreError> {
    use std::hash::{Hash, Hasher};
    fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<Option<&'r str>, StoreError> {
        r.get_ref(i)?
            .as_str_or_null()
            .map_err(|e| StoreError::Corrupt(format!("bill_days column {i}: {e}")))
    }
    fn req<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, StoreError> {
        text(r, i)?.ok_or_else(|| StoreError::Corrupt(format!("bill_days column {i}: null")))
    }
    let overflow = || StoreError::Corrupt("bill_days sums overflow".into());
    let mut any = false;
    while let Some(r) = rows.next()? {
        any = true;
        let (kind, label, day) = (req(r, 0)?, req(r, 1)?, req(r, 4)?);
        let late = if day < start {
            day.get(..7).unwrap_or(day)
        } else {
            ""
        };
        // Strings are compared only when the hashes agree: a row is one hash and, nearly
        // always, one comparison, instead of a comparison per line of the account.
        let mut h = rustc_hash::FxHasher::default();
        (late, kind, label).hash(&mut h);
        let h = h.finish();
        let at = match sums
            .iter()
            .position(|(kh, k, _)| *kh == h && k.late == late && k.kind == kind && k.label == label)
        {
            Some(i) => i,
            None => {
                // A line has one product and unit in practice; should its rows differ, the
                // first one's stand (the grouped statement on PostgreSQL lets one of them win).
                sums.push((
                    h,
                    LineKey {
                        late: late.to_string(),
                        kind: kind.to_string(),
                        label: label.to_string(),
                    },
                    LineSum {
                        product: req(r, 2)?.to_string(),
                        unit: text(r, 3)?.map(str::to_string),
                        ..LineSum::default()
                    },
                ));
                sums.len() - 1
            }
        };
        let (quantity, events, amount): (i64, i64, i64) = (r.get(5)?, r.get(6)?, r.get(7)?);
        let Some((_, _, sum)) = sums.get_mut(at) else {
            return Err(StoreError::Corrupt("bill_days line lost".into()));
        };
        sum.quantity = sum.quantity.checked_add(quantity).ok_or_else(overflow)?;
        sum.events = sum.events.checked_add(events).ok_or_else(overflow)?;
        sum.amount = sum.amount.checked_add(amount).ok_or_else(overflow)?;
    }
    Ok(any)
}

/// Records what the new invoices billed: each account's watermark moves to its period's end
/// (which bills its rows of earlier days at once), and its late rows before that end are
/// marked with the invoice (they are few: usage that arrived after an earlier invoice).
async fn mark_billed(
    tx: &mut Tx,
    t: TenantId,
    period: &str,
    items: &[NewInvoice<'_>],
    ids: &[i64],
) -> Result<(), StoreError> {
    let Some(first_id) = ids.iter().min() else {
        return Ok(());
    };
    tx.bulk(
        items,
        &[Col::Int, Col::Text],
        |src| {
            format!(
                "WITH v (id, billed_through) AS ({src}) \
                 UPDATE accounts SET billed_through = v.billed_through FROM v \
                 WHERE accounts.id = v.id AND accounts.tenant_id = {}",
                t.0
            )
        },
        |r, it| {
            r.push_i64(it.account);
            r.push_text(it.end.to_string());
        },
    )
    .await?;
    let (lo, hi) = items.iter().fold((i64::MAX, i64::MIN), |(lo, hi), it| {
        (lo.min(it.account), hi.max(it.account))
    });
    // Probing the invoice per late row, driven by the late rows of the batch's accounts.
    let invoice_of = "SELECT i.{} FROM invoices i WHERE i.tenant_id = $1 \
        AND i.account_id = bill_days.account_id AND i.period = $2 \
        AND i.kind = 'invoice' AND i.id >= $3";
    tx.exec(
        q_composed(format!(
            "UPDATE bill_days SET invoice_id = ({}) WHERE tenant_id = $1 \
             AND account_id >= $4 AND account_id <= $5 AND late = 1 AND invoice_id IS NULL \
             AND day < ({})",
            invoice_of.replace("{}", "id"),
            invoice_of.replace("{}", "period_end")
        ))
        .i64(t.0)
        .text(period.to_string())
        .i64(*first_id)
        .i64(lo)
        .i64(hi),
    )
    .await?;
    Ok(())
}

/// What finalizing posts to the ledger: tax added on top is owed by the wallet; tax contained
/// in prices moves from revenue to the tax account; the sub-cent difference between the exact
/// amounts the wallet was charged and their rounded sum is settled between the wallet and
/// revenue. After it the wallet has been charged exactly the invoice's total.
pub(crate) fn finalization_legs(
    invoice: &Invoice,
    wallet: i64,
    revenue: i64,
    tax: i64,
) -> Vec<Leg> {
    let mut legs = Vec::with_capacity(2);
    let mut leg = |from: i64, to: i64, amount: i64| match amount.signum() {
        1 => legs.push(Leg::new(from, to, Micros(amount))),
        -1 => legs.push(Leg::new(to, from, Micros(-amount))),
        _ => {}
    };
    match invoice.tax_mode {
        TaxMode::Exclusive => leg(wallet, tax, invoice.tax_total.0),
        TaxMode::Inclusive => leg(revenue, tax, invoice.tax_total.0),
    }
    // The wallet was charged the exact amounts; the invoice asks for their rounded sum.
    let exact: i64 = invoice
        .lines
        .iter()
        .filter(|l| !matches!(l.kind, LineKind::Rounding | LineKind::Tax))
        .map(|l| l.exact.0)
        .sum();
    leg(wallet, revenue, invoice.subtotal.0 - exact);
    legs
}

/// Takes the next `n` numbers of (tenant, series, year); returns the first.
pub(crate) async fn take_numbers(
    tx: &mut Tx,
    t: TenantId,
    series: &Series,
    year: i16,
    n: u32,
) -> Result<u32, StoreError> {
    tx.exec(
        q(
            "INSERT INTO invoice_counters (tenant_id, series, year, last) VALUES ($1, $2, $3, 0) \
           ON CONFLICT (tenant_id, series, year) DO NOTHING",
        )
        .i64(t.0)
        .text(series.as_str())
        .i64(i64::from(year)),
    )
    .await?;
    let row = tx
        .one(
            q("UPDATE invoice_counters SET last = last + $4 \
               WHERE tenant_id = $1 AND series = $2 AND year = $3 RETURNING last")
            .i64(t.0)
            .text(series.as_str())
            .i64(i64::from(year))
            .i64(i64::from(n)),
        )
        .await?;
    let last = u32::try_from(row.i64(0)?)
        .map_err(|_| StoreError::Corrupt("invoice counter out of range".into()))?;
    Ok(last + 1 - n)
}

/// One invoice to write with [`insert_invoices`].
pub(crate) struct NewInvoice<'a> {
    pub account: i64,
    pub invoice: &'a Invoice,
    /// The invoice a credit note corrects.
    pub corrects: Option<i64>,
    pub start: Date,
    pub end: Date,
    pub number: Option<InvoiceNumber>,
}

/// Writes an invoice (header, lines, taxes); returns its id.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_invoice(
    tx: &mut Tx,
    t: TenantId,
    account: i64,
    invoice: &Invoice,
    corrects: Option<i64>,
    period: (&str, Date, Date),
    number: Option<&InvoiceNumber>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let item = NewInvoice {
        account,
        invoice,
        corrects,
        start: period.1,
        end: period.2,
        number: number.cloned(),
    };
    insert_invoices(tx, t, std::slice::from_ref(&item), period.0, now_ms)
        .await?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("an invoice insert returned no id".into()))
}

/// Writes invoices of one period (headers, lines, taxes) with a few statements however many
/// there are: a bill run writes a million. Returns their ids in `items` order. No two items may
/// share an account and corrected invoice (the key the ids are matched back by).
pub(crate) async fn insert_invoices(
    tx: &mut Tx,
    t: TenantId,
    items: &[NewInvoice<'_>],
    period: &str,
    now_ms: i64,
) -> Result<Vec<i64>, StoreError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    const HEADER_COLS: &[Col] = &[
        Col::Int,
        Col::Int,
        Col::Text,
        Col::Int,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Int,
        Col::Int,
        Col::Int,
        Col::Int,
        Col::Int,
        Col::Text,
        Col::Text,
    ];
    let docs: Vec<(String, String)> = items
        .iter()
        .map(|it| {
            Ok((
                encode_lines(&it.invoice.lines)?,
                encode_taxes(&it.invoice.taxes)?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    let rows: Vec<(&NewInvoice<'_>, &(String, String))> = items.iter().zip(&docs).collect();
    let returned = tx
        .bulk(
            &rows,
            HEADER_COLS,
            |src| {
                format!(
                    "INSERT INTO invoices (tenant_id, account_id, kind, corrects_id, period, \
                     period_start, period_end, status, number, currency, tax_mode, rounding, \
                     subtotal, tax_total, total, created_ms, finalized_ms, lines, taxes) {src} \
                     RETURNING id, account_id, corrects_id"
                )
            },
            |r, (it, (lines, taxes))| {
                let (kind, status) = match it.invoice.kind {
                    InvoiceKind::Invoice if it.number.is_some() => ("invoice", "finalized"),
                    InvoiceKind::Invoice => ("invoice", "draft"),
                    InvoiceKind::CreditNote { .. } => ("credit_note", "finalized"),
                };
                r.push_i64(t.0);
                r.push_i64(it.account);
                r.push_text(kind);
                r.push_opt_i64(it.corrects);
                r.push_text(period);
                r.push_text(it.start.to_string());
                r.push_text(it.end.to_string());
                r.push_text(status);
                r.push_opt_text(it.number.as_ref().map(ToString::to_string));
                r.push_text(it.invoice.currency.as_str());
                r.push_text(it.invoice.tax_mode.as_str());
                r.push_text(it.invoice.rounding.as_str());
                r.push_i64(it.invoice.subtotal.0);
                r.push_i64(it.invoice.tax_total.0);
                r.push_i64(it.invoice.total.0);
                r.push_i64(now_ms);
                r.push_opt_i64(it.number.as_ref().map(|_| now_ms));
                r.push_text(lines.clone());
                r.push_text(taxes.clone());
            },
        )
        .await?;
    // RETURNING gives rows in no promised order: match them back by their key.
    let mut by_key: std::collections::HashMap<(i64, Option<i64>), i64> =
        std::collections::HashMap::with_capacity(returned.len());
    for r in &returned {
        if by_key
            .insert((r.i64(1)?, r.opt_i64(2)?), r.i64(0)?)
            .is_some()
        {
            return Err(StoreError::Corrupt(
                "two invoices of one batch share an account and correction".into(),
            ));
        }
    }
    items
        .iter()
        .map(|it| {
            by_key
                .get(&(it.account, it.corrects))
                .copied()
                .ok_or_else(|| StoreError::Corrupt("an inserted invoice returned no id".into()))
        })
        .collect()
}

/// The ledger transaction finalizing `invoice` posts under `key`; `None` when it moves no money.
fn finalization_request(
    invoice: &Invoice,
    wallet: i64,
    books: Books,
    key: &str,
    memo: &str,
    at_ms: i64,
) -> Result<Option<TxRequest>, StoreError> {
    let legs = finalization_legs(invoice, wallet, books.revenue, books.tax);
    if legs.is_empty() {
        return Ok(None);
    }
    TxRequest::new(
        ledger_key(KeySource::Invoice, key)?,
        TxKind::Charge,
        at_ms,
        memo,
        legs,
    )
    .map(Some)
    .map_err(|e| StoreError::invalid("invoice", e.to_string()))
}

/// Posts what finalizing `invoice` owes the ledger, under `key`; a refusal (a prepaid wallet
/// that cannot take the tax) leaves the transaction intact and is returned as the reason.
pub(crate) async fn post_finalization(
    tx: &mut Tx,
    t: TenantId,
    key: &str,
    invoice: &Invoice,
    wallet: i64,
    memo: &str,
    at_ms: i64,
) -> Result<Result<(), String>, StoreError> {
    let books = Books::read(tx, t).await?;
    let Some(req) = finalization_request(invoice, wallet, books, key, memo, at_ms)? else {
        return Ok(Ok(()));
    };
    match crate::ledger::post(tx, t, &req).await {
        Ok(_) => Ok(Ok(())),
        // Decided before anything was written: the transaction can go on.
        Err(StoreError::Ledger(e)) => Ok(Err(e.to_string())),
        Err(e) => Err(e),
    }
}

/// The ledger accounts finalizing posts to, besides the wallet: read once per run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Books {
    pub revenue: i64,
    pub tax: i64,
}

impl Books {
    pub(crate) async fn read(tx: &mut Tx, t: TenantId) -> Result<Self, StoreError> {
        Ok(Self {
            revenue: crate::books::book_id(tx, t, "revenue").await?,
            tax: crate::books::book_id(tx, t, "tax").await?,
        })
    }
}

/// Posts what finalizing each invoice owes the ledger, all in one ledger batch; returns each
/// item with the reason its posting was refused (a prepaid wallet that cannot take the tax),
/// in which case nothing was posted for it.
async fn post_finalizations(
    tx: &mut Tx,
    t: TenantId,
    books: Books,
    period: &str,
    items: Vec<(AccountRow, Invoice)>,
    at_ms: i64,
) -> Result<Vec<((AccountRow, Invoice), Option<String>)>, StoreError> {
    let mut reqs: Vec<TxRequest> = Vec::with_capacity(items.len());
    // For each item, the index of its request (none when finalizing moves no money).
    let mut req_of: Vec<Option<usize>> = Vec::with_capacity(items.len());
    for (a, invoice) in &items {
        let key = format!("{}:{period}", a.id);
        let memo = format!("invoice {period} of {}", a.code);
        match finalization_request(invoice, a.wallet, books, &key, &memo, at_ms)? {
            Some(req) => {
                req_of.push(Some(reqs.len()));
                reqs.push(req);
            }
            None => req_of.push(None),
        }
    }
    let outcomes = crate::ledger::post_batch(tx, t, &reqs).await?;
    Ok(items
        .into_iter()
        .zip(req_of)
        .map(|(item, r)| {
            let refused = r
                .and_then(|i| outcomes.get(i))
                .and_then(|o| o.as_ref().err())
                .map(ToString::to_string);
            (item, refused)
        })
        .collect())
}

/// What every batch of a run is read with.
struct BatchPlan {
    t: TenantId,
    tz: TimeZone,
    label: PeriodLabel,
    today: Date,
    period: String,
    tax: TaxSettings,
    batch: usize,
}

/// A batch of accounts read and composed, ahead of the transaction that writes it.
struct Prepared {
    /// The batch is the accounts after this id, up to `hi`.
    after: i64,
    hi: i64,
    accounts: u64,
    existing: u64,
    not_due: u64,
    failed: Vec<(String, String)>,
    composed: Vec<(AccountRow, Invoice)>,
    /// The tenant's daily-row version it was read at (see `sums::days_version`).
    version: i64,
}

/// The accounts in `lo..=hi` that have an invoice for the period.
async fn existing_invoices(
    tx: &mut Tx,
    plan: &BatchPlan,
    lo: i64,
    hi: i64,
) -> Result<HashSet<i64>, StoreError> {
    tx.all(
        q(
            "SELECT account_id FROM invoices WHERE tenant_id = $1 AND period = $2 \
           AND kind = 'invoice' AND status <> 'void' \
           AND account_id >= $3 AND account_id <= $4",
        )
        .i64(plan.t.0)
        .text(plan.period.clone())
        .i64(lo)
        .i64(hi),
    )
    .await?
    .iter()
    .map(|r| r.i64(0))
    .collect()
}

/// Reads the batch of accounts after `after` (up to `upto`, when given) and composes the
/// invoice of each that is due; `None` when no account is left. Reads only: the caller writes.
async fn prepare(
    tx: &mut Tx,
    plan: &BatchPlan,
    after: i64,
    upto: Option<i64>,
) -> Result<Option<Prepared>, StoreError> {
    let t = plan.t;
    // First: a row written after this read moves the version past it.
    let version = super::sums::days_version(tx, t).await?;
    let rows = tx
        .all(
            q(
                "SELECT id, code, wallet_id, currency, bill_cycle, created_ms, billed_through \
               FROM accounts WHERE tenant_id = $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT $4",
            )
            .i64(t.0)
            .i64(after)
            .i64(upto.unwrap_or(i64::MAX))
            .i64(plan.batch as i64),
        )
        .await?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(None);
    };
    let (lo, hi) = (first.i64(0)?, last.i64(0)?);
    let existing = existing_invoices(tx, plan, lo, hi).await?;
    let mut p = Prepared {
        after,
        hi,
        accounts: rows.len() as u64,
        existing: 0,
        not_due: 0,
        failed: Vec::new(),
        composed: Vec::with_capacity(rows.len()),
        version,
    };
    let mut due: Vec<AccountRow> = Vec::with_capacity(rows.len());
    for r in &rows {
        let id = r.i64(0)?;
        if existing.contains(&id) {
            p.existing += 1;
            continue;
        }
        let anchor = day_of(r.i64(5)?, &plan.tz)?;
        let cycle = BillCycle::parse(&r.text(4)?, anchor)
            .map_err(|e| StoreError::Corrupt(format!("account {id}: {e}")))?;
        let Ok(period) = cycle.period(plan.label) else {
            p.not_due += 1;
            continue;
        };
        let billed_through = r
            .opt_text(6)?
            .map(|d| d.parse::<Date>())
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("account {id} billed_through: {e}")))?;
        // A period ending before the account's watermark: its rows went on a later invoice
        // (run out of order), and the watermark cannot move back.
        if period.end() > plan.today || billed_through.is_some_and(|b| b >= period.end()) {
            p.not_due += 1;
            continue;
        }
        due.push(AccountRow {
            id,
            opened: anchor,
            code: r.text(1)?,
            wallet: r.i64(2)?,
            currency: r
                .text(3)?
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("account currency: {e}")))?,
            start: period.start(),
            end: period.end(),
            billed_through,
        });
    }
    let mut lines = read_open_rows(tx, t, &due).await?;
    for a in due {
        let found = lines.remove(&a.id);
        // Opened after the period and nothing of it to bill: no empty invoice for a period
        // the account did not exist in.
        if found.is_none() && a.opened >= a.end {
            p.not_due += 1;
            continue;
        }
        let charges = charges_of(found.unwrap_or_default(), &plan.tax)?;
        match Invoice::compose(
            InvoiceKind::Invoice,
            a.currency,
            plan.tax.mode,
            plan.tax.rounding,
            charges,
        ) {
            Ok(i) => p.composed.push((a, i)),
            Err(e) => p.failed.push((a.code.clone(), e.to_string())),
        }
    }
    Ok(Some(p))
}

/// A batch being prepared on a read connection of its own (a task, so that on SQLite its
/// statements run beside the writer's). Dropped unfinished, it is stopped.
struct ReadAhead(tokio::task::JoinHandle<Result<Option<Prepared>, StoreError>>);

impl ReadAhead {
    fn start(store: &Store, plan: &Arc<BatchPlan>, after: i64) -> Self {
        let (store, plan) = (store.clone(), Arc::clone(plan));
        Self(tokio::spawn(async move {
            let mut tx = store.read().await?;
            let p = prepare(&mut tx, &plan, after, None).await?;
            tx.commit().await?;
            Ok(p)
        }))
    }

    async fn finish(&mut self) -> Result<Option<Prepared>, StoreError> {
        (&mut self.0)
            .await
            .map_err(|e| StoreError::Corrupt(format!("a bill run's read-ahead stopped: {e}")))?
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Store {
    /// Bills `label` for every account of the tenant; see the module documentation.
    /// `progress` is told (accounts done, accounts in all) after every batch.
    pub async fn bill_run(
        &self,
        tenant: &Tenant,
        label: PeriodLabel,
        opts: &BillRunOptions,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<BillRunSummary, StoreError> {
        let t = tenant.id;
        let tz = tenant.zone()?;
        let batch = opts.batch.clamp(1, MAX_BATCH);
        let mut summary = BillRunSummary {
            period: label.to_string(),
            ..BillRunSummary::default()
        };
        // Postings since the last pass, and any day of the period (or of anniversary periods
        // that end next month) that no nightly job summed.
        self.sum_postings(tenant).await?;
        let to = label
            .next()
            .and_then(|n| n.next())
            .map_err(|e| StoreError::invalid("period", e.to_string()))?
            .first_day()
            .min(opts.today)
            .yesterday()
            .map_err(|e| StoreError::invalid("period", e.to_string()))?;
        for day in self.unsummed_days(t, label.first_day(), to).await? {
            self.sum_usage_day(tenant, day).await?;
            summary.days_summed += 1;
        }
        let tax = self.tax_settings(t).await?;
        let (accounts_total, books) = {
            let mut tx = self.read().await?;
            let n = tx
                .one(q("SELECT COUNT(*) FROM accounts WHERE tenant_id = $1").i64(t.0))
                .await?
                .i64(0)?;
            (n, Books::read(&mut tx, t).await?)
        };
        let accounts_total = u64::try_from(accounts_total).unwrap_or(0);
        let series = Series::invoices();
        let year = opts.today.year();
        let period_text = label.to_string();
        let plan = Arc::new(BatchPlan {
            t,
            tz,
            label,
            today: opts.today,
            period: period_text.clone(),
            tax,
            batch,
        });
        // The next batch is read and composed on a read connection while this one is written:
        // reading is half of a batch, and the writer is one core of several.
        let mut next = ReadAhead::start(self, &plan, 0);
        loop {
            let Some(ahead) = next.finish().await? else {
                break;
            };
            next = ReadAhead::start(self, &plan, ahead.hi);
            let mut tx = self.begin().await?;
            super::sums::lock_billing(&mut tx, t).await?;
            let mut p = if super::sums::days_version(&mut tx, t).await? == ahead.version {
                ahead
            } else {
                // Daily rows were written or released since it was read: read it again, under
                // the lock that keeps them still.
                prepare(&mut tx, &plan, ahead.after, Some(ahead.hi))
                    .await?
                    .unwrap_or(Prepared {
                        composed: Vec::new(),
                        failed: Vec::new(),
                        accounts: 0,
                        existing: 0,
                        not_due: 0,
                        ..ahead
                    })
            };
            // Another run may have invoiced some of them since (the unique index is the last
            // guard; this keeps it from failing the batch).
            let invoiced = existing_invoices(&mut tx, &plan, p.after + 1, p.hi).await?;
            let before = p.composed.len();
            p.composed.retain(|(a, _)| !invoiced.contains(&a.id));
            p.existing += (before - p.composed.len()) as u64;
            summary.accounts += p.accounts;
            summary.existing += p.existing;
            summary.not_due += p.not_due;
            summary.failed.append(&mut p.failed);
            let now = crate::now_ms();
            let mut composed = p.composed;
            if opts.finalize {
                composed = post_finalizations(&mut tx, t, books, &period_text, composed, now)
                    .await?
                    .into_iter()
                    .filter_map(|(item, refused)| match refused {
                        None => Some(item),
                        Some(why) => {
                            summary.failed.push((item.0.code.clone(), why));
                            None
                        }
                    })
                    .collect();
            }
            let first_no = if opts.finalize && !composed.is_empty() {
                let n = u32::try_from(composed.len())
                    .map_err(|_| StoreError::Corrupt("batch too large".into()))?;
                Some(take_numbers(&mut tx, t, &series, year, n).await?)
            } else {
                None
            };
            let items: Vec<NewInvoice<'_>> = composed
                .iter()
                .zip(0u32..)
                .map(|((a, invoice), i)| NewInvoice {
                    account: a.id,
                    invoice,
                    corrects: None,
                    start: a.start,
                    end: a.end,
                    number: first_no.map(|f| InvoiceNumber::new(&series, year, f + i)),
                })
                .collect();
            let ids = insert_invoices(&mut tx, t, &items, &period_text, now).await?;
            mark_billed(&mut tx, t, &period_text, &items, &ids).await?;
            for it in &items {
                summary.created += 1;
                summary.total = summary.total.checked_add(it.invoice.total)?;
                if let Some(n) = &it.number {
                    if summary.first_number.is_none() {
                        summary.first_number = Some(n.to_string());
                    }
                    summary.last_number = Some(n.to_string());
                }
            }
            drop(items);
            tx.commit().await?;
            progress(summary.accounts, accounts_total);
        }
        Ok(summary)
    }
}
