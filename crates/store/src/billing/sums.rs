//! Daily sums: what each account was charged per tenant-local day and invoice line, kept
//! current as charging goes on so that a month-end bill run only adds days up.
//!
//! Two sources, each summed the way it changes:
//! - **Postings** (plan fees, proration, operators' charges and adjustments) are append-only
//!   ledger entries: [`Store::sum_postings`] adds every entry after a per-tenant cursor (the
//!   ledger's sequence number) as open rows of its day, and moves the cursor in the same
//!   transaction, so a crash neither loses nor double-counts an entry.
//! - **Usage** (rated CDRs) can still change after the day: records arrive late, re-rating
//!   changes prices. [`Store::sum_usage_day`] recomputes a whole day from the CDRs and keeps in
//!   the open rows what is not yet on an invoice (the day's total minus what invoices already
//!   billed), so running it again is harmless and late usage surfaces as open rows of an
//!   invoiced day — which the next invoice shows as late usage.
//!
//! Which rows are billed is decided per account, not per row: an invoice moves the account's
//! `billed_through` to its period's end, which bills every row of an earlier day, except rows
//! written `late` (after their day was billed through), which the next invoice marks with its
//! id. See the migration `0012_billed_through`.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::collections::BTreeMap;

use toll_billing::LineKind;

use crate::db::{Col, Tx, q};
use crate::{Store, StoreError, Tenant, TenantId};

/// Days the nightly job recomputes, ending yesterday (`toll bill sum` and the server's daily
/// job): records arriving up to a month late are summed before the next invoice.
pub const NIGHTLY_WINDOW_DAYS: u32 = 35;

/// Ledger entries read per transaction by [`Store::sum_postings`].
const POSTINGS_PER_PASS: i64 = 20_000;

/// What a day's open row holds for one (account, kind, label).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sum {
    product: String,
    unit: Option<&'static str>,
    quantity: i64,
    events: i64,
    amount: i64,
}

type Key = (i64, String, &'static str, String);

/// The tenant-local day an instant falls on.
pub(crate) fn day_of(ms: i64, tz: &TimeZone) -> Result<Date, StoreError> {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).date())
        .map_err(|e| StoreError::Corrupt(format!("instant {ms}: {e}")))
}

/// A day's first instant and the next day's, in epoch milliseconds.
pub(crate) fn day_bounds(day: Date, tz: &TimeZone) -> Result<(i64, i64), StoreError> {
    let at = |d: Date| {
        d.to_zoned(tz.clone())
            .and_then(|z| z.start_of_day())
            .map(|z| z.timestamp().as_millisecond())
            .map_err(|e| StoreError::invalid("day", e.to_string()))
    };
    let next = day
        .tomorrow()
        .map_err(|e| StoreError::invalid("day", e.to_string()))?;
    Ok((at(day)?, at(next)?))
}

/// The unit an amount of `usage` is counted in on invoices.
fn unit_of(usage: &str) -> &'static str {
    match usage {
        "voice" => "seconds",
        "sms" => "messages",
        "data" => "bytes",
        _ => "units",
    }
}

fn kind_str(k: LineKind) -> &'static str {
    k.as_str()
}

/// Holds the tenant's billing lock until the transaction ends: what writes daily rows (the
/// sums), what moves an account's watermark (a bill run's batch, voiding a draft) take it, so
/// that a row is never written against a watermark that is being moved. Without it, on
/// PostgreSQL, a row written for a day just billed through — but not seen by the run — would
/// count as billed without being on any invoice. SQLite's write lock already serializes them.
pub(crate) async fn lock_billing(tx: &mut Tx, t: TenantId) -> Result<(), StoreError> {
    if !tx.for_update().is_empty() {
        lock_cursor(tx, t).await?;
    }
    Ok(())
}

/// Locks the tenant's cursor row (creating it on first use), which is also its billing lock,
/// and returns the ledger sequence postings have been summed through.
async fn lock_cursor(tx: &mut Tx, t: TenantId) -> Result<i64, StoreError> {
    tx.exec(
        q(
            "INSERT INTO bill_cursors (tenant_id, ledger_seq) VALUES ($1, 0) \
           ON CONFLICT (tenant_id) DO NOTHING",
        )
        .i64(t.0),
    )
    .await?;
    let sql = format!(
        "SELECT ledger_seq FROM bill_cursors WHERE tenant_id = $1{}",
        tx.for_update()
    );
    tx.one(crate::db::q_composed(sql).i64(t.0)).await?.i64(0)
}

/// The tenant's daily-row version: moved by every write that adds, removes or releases daily
/// rows ([`bump_days_version`]), so that a bill run can tell whether rows it read ahead of its
/// write transaction are still all there is.
pub(crate) async fn days_version(tx: &mut Tx, t: TenantId) -> Result<i64, StoreError> {
    Ok(tx
        .opt(q("SELECT days_version FROM bill_cursors WHERE tenant_id = $1").i64(t.0))
        .await?
        .map(|r| r.i64(0))
        .transpose()?
        .unwrap_or(0))
}

/// Moves the daily-row version (see [`days_version`]); in the transaction that writes.
pub(crate) async fn bump_days_version(tx: &mut Tx, t: TenantId) -> Result<(), StoreError> {
    tx.exec(
        q(
            "INSERT INTO bill_cursors (tenant_id, ledger_seq, days_version) VALUES ($1, 0, 1) \
           ON CONFLICT (tenant_id) DO UPDATE SET days_version = bill_cursors.days_version + 1",
        )
        .i64(t.0),
    )
    .await?;
    Ok(())
}

/// Adds `rows` as open daily rows. A row of a day its account is already billed through is
/// written `late` (see the migration `0012_billed_through`): it stays open until the next
/// invoice marks it. The caller holds [`lock_billing`].
async fn add_open(tx: &mut Tx, t: TenantId, rows: &BTreeMap<Key, Sum>) -> Result<(), StoreError> {
    let rows: Vec<(&Key, &Sum)> = rows.iter().collect();
    const COLS: &[Col] = &[
        Col::Int,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Text,
        Col::Int,
        Col::Int,
        Col::Int,
    ];
    tx.bulk(
        &rows,
        COLS,
        |src| {
            format!(
                "WITH v (account_id, day, kind, label, product, unit, quantity, events, amount) \
                 AS ({src}) \
                 INSERT INTO bill_days (tenant_id, account_id, day, kind, label, product, unit, \
                 quantity, events, amount, late) \
                 SELECT {t}, v.account_id, v.day, v.kind, v.label, v.product, v.unit, \
                 v.quantity, v.events, v.amount, \
                 CASE WHEN v.day < a.billed_through THEN 1 ELSE 0 END \
                 FROM v LEFT JOIN accounts a ON a.id = v.account_id AND a.tenant_id = {t}",
                t = t.0
            )
        },
        |s, ((account, day, kind, label), sum)| {
            s.push_i64(*account);
            s.push_text(day.clone());
            s.push_text(*kind);
            s.push_text(label.clone());
            s.push_text(sum.product.clone());
            s.push_opt_text(sum.unit.map(str::to_string));
            s.push_i64(sum.quantity);
            s.push_i64(sum.events);
            s.push_i64(sum.amount);
        },
    )
    .await?;
    Ok(())
}

/// What a posting is on an invoice, from its ledger key and kind; `None` for what is not
/// invoiced (usage, summed from CDRs; re-rating, already in the CDRs' prices; top-ups and
/// payments).
fn posting_kind(tx_key: &str, kind: &str) -> Option<(LineKind, &'static str)> {
    if tx_key.starts_with("fee:") {
        Some((LineKind::RecurringFee, "fee"))
    } else if tx_key.starts_with("chg:") {
        Some((LineKind::Proration, "fee"))
    } else if tx_key.starts_with("tx:") {
        match kind {
            "charge" => Some((LineKind::OneOff, "other")),
            "adjustment" | "refund" => Some((LineKind::Adjustment, "other")),
            _ => None,
        }
    } else {
        None
    }
}

/// The day a posting belongs to: a fee to the first day of the period it pays for (its key
/// ends with that date), a plan change's proration to the day the change took effect, anything
/// else to the day it was posted. A backdated subscription's fee is thus billed in its period,
/// not in the month someone typed it in.
async fn posting_day(
    tx: &mut Tx,
    t: TenantId,
    kind: LineKind,
    key: &str,
    at_ms: i64,
    tz: &TimeZone,
) -> Result<Date, StoreError> {
    match kind {
        LineKind::RecurringFee => {
            if let Some(d) = key.rsplit(':').next().and_then(|d| d.parse::<Date>().ok()) {
                return Ok(d);
            }
        }
        LineKind::Proration => {
            if let Some(id) = key.strip_prefix("chg:").and_then(|i| i.parse::<i64>().ok())
                && let Some(r) = tx
                    .opt(
                        q("SELECT effective_date FROM subscription_changes \
                           WHERE tenant_id = $1 AND id = $2")
                        .i64(t.0)
                        .i64(id),
                    )
                    .await?
                && let Ok(d) = r.text(0)?.parse::<Date>()
            {
                return Ok(d);
            }
        }
        _ => {}
    }
    day_of(at_ms, tz)
}

/// Cuts a label to what an invoice line holds.
fn label(s: &str) -> String {
    let s = s.trim();
    if s.is_empty() {
        return "-".to_string();
    }
    s.chars().take(200).collect()
}

impl Store {
    /// Adds every ledger posting made since the last pass to the daily sums; returns how many
    /// entries were read. Safe to run at any time and from several workers (each pass locks
    /// the tenant's cursor row).
    pub async fn sum_postings(&self, tenant: &Tenant) -> Result<u64, StoreError> {
        let t = tenant.id;
        let tz = tenant.zone()?;
        let mut read = 0u64;
        loop {
            let mut tx = self.begin().await?;
            let cursor = lock_cursor(&mut tx, t).await?;
            let entries = tx
                .all(
                    q("SELECT e.seq, e.tx_key, e.kind, e.at_ms, e.amount, e.memo, \
                       d.id, c.id \
                       FROM ledger_entries e \
                       LEFT JOIN accounts d ON d.tenant_id = e.tenant_id AND d.wallet_id = e.debit_id \
                       LEFT JOIN accounts c ON c.tenant_id = e.tenant_id AND c.wallet_id = e.credit_id \
                       WHERE e.tenant_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3")
                    .i64(t.0)
                    .i64(cursor)
                    .i64(POSTINGS_PER_PASS),
                )
                .await?;
            let Some(last) = entries.last() else {
                return Ok(read);
            };
            let last_seq = last.i64(0)?;
            let mut sums: BTreeMap<Key, Sum> = BTreeMap::new();
            for e in &entries {
                let key = e.text(1)?;
                let Some((kind, product)) = posting_kind(&key, &e.text(2)?) else {
                    continue;
                };
                let amount = e.i64(4)?;
                let day = posting_day(&mut tx, t, kind, &key, e.i64(3)?, &tz)
                    .await?
                    .to_string();
                // A wallet debited is a charge to its account; a wallet credited, a credit.
                let legs = [(e.opt_i64(6)?, amount), (e.opt_i64(7)?, -amount)];
                for (account, signed) in legs {
                    let Some(account) = account else { continue };
                    let day = day.clone();
                    let s = sums
                        .entry((account, day, kind_str(kind), label(&e.text(5)?)))
                        .or_insert_with(|| Sum {
                            product: product.to_string(),
                            ..Sum::default()
                        });
                    s.amount += signed;
                    s.events += 1;
                }
            }
            if !sums.is_empty() {
                add_open(&mut tx, t, &sums).await?;
                bump_days_version(&mut tx, t).await?;
            }
            tx.exec(
                q("UPDATE bill_cursors SET ledger_seq = $1 WHERE tenant_id = $2")
                    .i64(last_seq)
                    .i64(t.0),
            )
            .await?;
            tx.commit().await?;
            read += entries.len() as u64;
        }
    }

    /// Recomputes `day`'s usage sums from its rated CDRs (see the module documentation);
    /// returns the number of open rows the day now has.
    pub async fn sum_usage_day(&self, tenant: &Tenant, day: Date) -> Result<u64, StoreError> {
        let t = tenant.id;
        let tz = tenant.zone()?;
        let (from, to) = day_bounds(day, &tz)?;
        let day_text = day.to_string();
        let mut tx = self.begin().await?;
        lock_billing(&mut tx, t).await?;
        // Voice is rated in nanoseconds; invoices count whole seconds of each call.
        let groups = tx
            .all(
                q("SELECT account_id, usage, priced_by, COALESCE(destination_id, ''), \
                   COUNT(*), \
                   CAST(SUM(CASE WHEN usage = 'voice' THEN (quantity + 999999999) / 1000000000 \
                       ELSE quantity END) AS BIGINT), \
                   CAST(SUM(covered) AS BIGINT), CAST(SUM(amount) AS BIGINT), CAST(SUM(CASE WHEN covered > 0 THEN 1 ELSE 0 END) AS BIGINT) \
                   FROM cdrs WHERE tenant_id = $1 AND start_ms >= $2 AND start_ms < $3 \
                   GROUP BY account_id, usage, priced_by, COALESCE(destination_id, '')")
                .i64(t.0)
                .i64(from)
                .i64(to),
            )
            .await?;
        let mut totals: BTreeMap<Key, Sum> = BTreeMap::new();
        for g in &groups {
            let account = g.i64(0)?;
            let usage = g.text(1)?;
            let priced_by = g.text(2)?;
            let destination = g.text(3)?;
            let (events, quantity, covered, amount, covered_events) =
                (g.i64(4)?, g.i64(5)?, g.i64(6)?, g.i64(7)?, g.i64(8)?);
            let unit = unit_of(&usage);
            let mut add = |kind: LineKind, label: String, q: i64, ev: i64, a: i64| {
                let s = totals
                    .entry((account, day_text.clone(), kind_str(kind), label))
                    .or_insert_with(|| Sum {
                        product: usage.clone(),
                        unit: Some(unit),
                        ..Sum::default()
                    });
                s.quantity += q;
                s.events += ev;
                s.amount += a;
            };
            if covered > 0 {
                add(
                    LineKind::AllowanceUse,
                    usage.clone(),
                    covered,
                    covered_events,
                    0,
                );
            }
            let paid = (quantity - covered).max(0);
            if amount != 0 || (covered == 0 && priced_by != "allowance") {
                let (kind, what) = if priced_by == "overage" {
                    (LineKind::Overage, usage.clone())
                } else if destination.is_empty() {
                    (LineKind::Usage, usage.clone())
                } else {
                    (LineKind::Usage, destination)
                };
                add(
                    kind,
                    label(&what),
                    paid,
                    events - covered_events.min(events),
                    amount,
                );
            }
        }
        // What invoices already billed of this day stays billed; the open rows hold the rest.
        let billed = tx
            .all(
                q(
                    "SELECT b.account_id, b.kind, b.label, CAST(SUM(b.quantity) AS BIGINT), \
                   CAST(SUM(b.events) AS BIGINT), CAST(SUM(b.amount) AS BIGINT) \
                   FROM bill_days b JOIN accounts a ON a.id = b.account_id \
                   WHERE b.tenant_id = $1 AND b.day = $2 \
                   AND b.kind IN ('usage', 'allowance_use', 'overage') \
                   AND (b.invoice_id IS NOT NULL OR (b.late = 0 AND b.day < a.billed_through)) \
                   GROUP BY b.account_id, b.kind, b.label",
                )
                .i64(t.0)
                .text(day_text.clone()),
            )
            .await?;
        for b in &billed {
            let kind: LineKind = b
                .text(1)?
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("bill_days kind: {e}")))?;
            let key = (b.i64(0)?, day_text.clone(), kind_str(kind), b.text(2)?);
            let s = totals.entry(key).or_insert_with(|| Sum {
                product: "other".into(),
                ..Sum::default()
            });
            s.quantity -= b.i64(3)?;
            s.events -= b.i64(4)?;
            s.amount -= b.i64(5)?;
        }
        totals.retain(|_, s| s.quantity != 0 || s.events != 0 || s.amount != 0);
        tx.exec(
            q(
                "DELETE FROM bill_days WHERE tenant_id = $1 AND day = $2 AND invoice_id IS NULL \
               AND kind IN ('usage', 'allowance_use', 'overage') \
               AND (late = 1 OR NOT EXISTS (SELECT 1 FROM accounts a \
                 WHERE a.id = bill_days.account_id AND bill_days.day < a.billed_through))",
            )
            .i64(t.0)
            .text(day_text.clone()),
        )
        .await?;
        add_open(&mut tx, t, &totals).await?;
        bump_days_version(&mut tx, t).await?;
        tx.exec(
            q(
                "INSERT INTO bill_usage_days (tenant_id, day, summed_ms) VALUES ($1, $2, $3) \
               ON CONFLICT (tenant_id, day) DO UPDATE SET summed_ms = excluded.summed_ms",
            )
            .i64(t.0)
            .text(day_text)
            .i64(crate::now_ms()),
        )
        .await?;
        tx.commit().await?;
        Ok(totals.len() as u64)
    }

    /// Sums postings, then recomputes the usage of every day from `from` to `to` (inclusive):
    /// the nightly job (`toll bill sum`), whose window reaches back far enough to catch late
    /// records.
    pub async fn sum_days(&self, tenant: &Tenant, from: Date, to: Date) -> Result<u64, StoreError> {
        self.sum_postings(tenant).await?;
        let mut day = from;
        let mut days = 0;
        while day <= to {
            self.sum_usage_day(tenant, day).await?;
            days += 1;
            day = day
                .tomorrow()
                .map_err(|e| StoreError::invalid("day", e.to_string()))?;
        }
        Ok(days)
    }

    /// Days from `from` to `to` (inclusive) whose usage no job has summed yet.
    pub async fn unsummed_days(
        &self,
        t: TenantId,
        from: Date,
        to: Date,
    ) -> Result<Vec<Date>, StoreError> {
        let mut tx = self.read().await?;
        let done: std::collections::HashSet<String> = tx
            .all(
                q(
                    "SELECT day FROM bill_usage_days WHERE tenant_id = $1 AND day >= $2 \
                   AND day <= $3",
                )
                .i64(t.0)
                .text(from.to_string())
                .text(to.to_string()),
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        let mut day = from;
        while day <= to {
            if !done.contains(&day.to_string()) {
                out.push(day);
            }
            day = day
                .tomorrow()
                .map_err(|e| StoreError::invalid("day", e.to_string()))?;
        }
        Ok(out)
    }
}
