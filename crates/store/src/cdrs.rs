//! Rated call detail records: what rating decided about a record and what charging took for it,
//! written by [`crate::charging::Charger::charge_records`] in the transaction that charges it.
//!
//! On PostgreSQL the table is partitioned by UTC month of the start; [`ensure_partitions`]
//! creates a month's partition before the first record of that month is written.

use std::collections::BTreeSet;

use toll_core::Micros;

use crate::db::{Col, Tx, q, q_composed};
use crate::{Store, StoreError, TenantId};

/// Most rows one [`Store::cdrs`] call returns.
pub const MAX_PAGE: usize = 10_000;

/// What the pipeline knows about a record before it is charged: the record as read and its
/// rating. Charging adds the line, account and amounts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CdrRecord {
    pub source: String,
    pub record_id: String,
    pub import_id: Option<i64>,
    pub caller: String,
    /// As dialled.
    pub callee: String,
    /// The number as rating matched it (normalised when the tariff normalises).
    pub destination: Option<String>,
    pub start_ms: i64,
    pub utc_offset_s: i32,
    pub answer_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Rating units: nanoseconds for voice, messages, bytes, custom units.
    pub quantity: i64,
    pub category: String,
    pub subject: String,
    pub rated_usage: Option<i64>,
    /// The tariff's (or the default rate's) price of the whole record.
    pub cost: Option<Micros>,
    pub matched_prefix: Option<String>,
    pub destination_id: Option<String>,
    pub carrier: Option<String>,
    pub region: Option<String>,
    pub default_rated: bool,
    pub call_id: Option<String>,
    /// Made by the server's sweeper for a call that never ended: charged at the maximum
    /// duration.
    pub swept: bool,
    /// The suspense item this record was re-processed from, if any, and its key: it is
    /// resolved when the record is charged (or found charged already), or when it fails again
    /// under another key (the new item carries on).
    pub suspense_id: Option<i64>,
    pub suspense_key: Option<String>,
}

/// A stored rated CDR.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredCdr {
    pub event_key: String,
    pub source: String,
    pub record_id: String,
    pub import_id: Option<i64>,
    pub subscriber_id: i64,
    pub account_id: i64,
    pub caller: String,
    pub callee: String,
    pub destination: Option<String>,
    pub start_ms: i64,
    pub utc_offset_s: i64,
    pub answer_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub usage: String,
    pub quantity: i64,
    pub category: String,
    pub subject: String,
    pub rated_usage: Option<i64>,
    pub cost: Option<Micros>,
    pub matched_prefix: Option<String>,
    pub destination_id: Option<String>,
    pub carrier: Option<String>,
    pub region: Option<String>,
    pub default_rated: bool,
    pub amount: Micros,
    pub covered: i64,
    pub ledger_seq: Option<i64>,
    pub call_id: Option<String>,
    pub rated_ms: i64,
    /// `allowance`, `overage`, `tariff` (the record's rated cost, whole) or `plan_tariff`.
    pub priced_by: String,
    /// How many times re-rating changed its price.
    pub rerated: i64,
    /// Closed by the sweeper (no end event arrived) and charged for the maximum duration.
    pub swept: bool,
}

/// Which CDRs to list: a time window `[from_ms, to_ms)`, optionally one account, in start
/// order, after a cursor (the last row's `(start_ms, event_key)`).
#[derive(Debug, Clone, Default)]
pub struct CdrQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    pub account_id: Option<i64>,
    pub after: Option<(i64, String)>,
    pub limit: usize,
}

/// One charged record ready to write.
pub(crate) struct CdrRow<'a> {
    pub record: &'a CdrRecord,
    pub event_key: &'a str,
    pub usage: &'a str,
    pub priced_by: &'a str,
    pub subscriber_id: i64,
    pub account_id: i64,
    pub amount: Micros,
    pub covered: i64,
    pub seq: Option<i64>,
}

pub(crate) const COLUMNS: &str = "event_key, source, record_id, import_id, subscriber_id, account_id, \
     caller, callee, destination, start_ms, utc_offset_s, answer_ms, end_ms, usage, quantity, \
     category, subject, rated_usage, cost, matched_prefix, destination_id, carrier, region, \
     default_rated, amount, covered, ledger_seq, call_id, rated_ms, priced_by, rerated, swept";

pub(crate) async fn write(
    tx: &mut Tx,
    tenant: TenantId,
    rows: &[CdrRow<'_>],
    now_ms: i64,
) -> Result<(), StoreError> {
    use Col::{Int, Text};
    tx.bulk(
        rows,
        &[
            Int, Text, Text, Text, Int, Int, Int, Text, Text, Text, Int, Int, Int, Int, Text, Int,
            Text, Text, Int, Int, Text, Text, Text, Text, Int, Int, Int, Int, Text, Int, Text, Int,
            Int,
        ],
        |values| format!("INSERT INTO cdrs (tenant_id, {COLUMNS}) {values}"),
        |s, r| {
            let c = r.record;
            s.push_i64(tenant.0);
            s.push_text(r.event_key);
            s.push_text(c.source.as_str());
            s.push_text(c.record_id.as_str());
            s.push_opt_i64(c.import_id);
            s.push_i64(r.subscriber_id);
            s.push_i64(r.account_id);
            s.push_text(c.caller.as_str());
            s.push_text(c.callee.as_str());
            s.push_opt_text(c.destination.clone());
            s.push_i64(c.start_ms);
            s.push_i64(i64::from(c.utc_offset_s));
            s.push_opt_i64(c.answer_ms);
            s.push_opt_i64(c.end_ms);
            s.push_text(r.usage);
            s.push_i64(c.quantity);
            s.push_text(c.category.as_str());
            s.push_text(c.subject.as_str());
            s.push_opt_i64(c.rated_usage);
            s.push_opt_i64(c.cost.map(|m| m.0));
            s.push_opt_text(c.matched_prefix.clone());
            s.push_opt_text(c.destination_id.clone());
            s.push_opt_text(c.carrier.clone());
            s.push_opt_text(c.region.clone());
            s.push_i64(i64::from(c.default_rated));
            s.push_i64(r.amount.0);
            s.push_i64(r.covered);
            s.push_opt_i64(r.seq);
            s.push_opt_text(c.call_id.clone());
            s.push_i64(now_ms);
            s.push_text(r.priced_by);
            s.push_i64(0);
            s.push_i64(i64::from(c.swept));
        },
    )
    .await?;
    Ok(())
}

/// The first instant (Unix ms) of the UTC month containing `ms`, and of the next month.
fn month_bounds(ms: i64) -> Result<(jiff::civil::Date, i64, i64), StoreError> {
    let bad = |e: jiff::Error| StoreError::invalid("start", e.to_string());
    let at = jiff::Timestamp::from_millisecond(ms).map_err(bad)?;
    let first = at.to_zoned(jiff::tz::TimeZone::UTC).date().first_of_month();
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .map_err(bad)?;
    let ms_of = |d: jiff::civil::Date| -> Result<i64, StoreError> {
        Ok(d.to_zoned(jiff::tz::TimeZone::UTC)
            .map_err(bad)?
            .timestamp()
            .as_millisecond())
    };
    Ok((first, ms_of(first)?, ms_of(next)?))
}

/// Creates the monthly partitions (PostgreSQL) that records starting at `starts_ms` need, in
/// its own short transaction under an advisory lock, so that several workers creating the same
/// month neither fail nor hold the parent table's lock for the length of a charging batch.
/// SQLite has one table: nothing to do.
pub async fn ensure_partitions(
    store: &Store,
    starts_ms: impl IntoIterator<Item = i64>,
) -> Result<(), StoreError> {
    if matches!(store, Store::Sqlite(_)) {
        return Ok(());
    }
    let mut months = BTreeSet::new();
    for ms in starts_ms {
        months.insert(month_bounds(ms)?);
    }
    if months.is_empty() {
        return Ok(());
    }
    let name = |d: &jiff::civil::Date| format!("cdrs_y{:04}m{:02}", d.year(), d.month());
    let mut tx = store.begin().await?;
    let mut missing = Vec::new();
    for (d, from, to) in &months {
        let row = tx
            .one(
                q("SELECT CASE WHEN to_regclass($1) IS NULL THEN 0 ELSE 1 END::bigint")
                    .text(name(d)),
            )
            .await?;
        if row.i64(0)? == 0 {
            missing.push((name(d), *from, *to));
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    // One lock for every month: creations are rare (once a month per database).
    tx.exec(q("SELECT pg_advisory_xact_lock(7401)")).await?;
    for (table, from, to) in missing {
        // Names and bounds are computed here, never taken from input.
        tx.exec(q_composed(format!(
            "CREATE TABLE IF NOT EXISTS {table} PARTITION OF cdrs FOR VALUES FROM ({from}) TO ({to})"
        )))
        .await?;
    }
    tx.commit().await
}

impl Store {
    /// Rated CDRs of a tenant in a time window, in start order, one page at a time.
    pub async fn cdrs(
        &self,
        tenant: TenantId,
        query: &CdrQuery,
    ) -> Result<Vec<StoredCdr>, StoreError> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut sql = format!(
            "SELECT {COLUMNS} FROM cdrs WHERE tenant_id = $1 AND start_ms >= $2 AND start_ms < $3"
        );
        let mut n = 3;
        if query.account_id.is_some() {
            n += 1;
            sql.push_str(&format!(" AND account_id = ${n}"));
        }
        if query.after.is_some() {
            sql.push_str(&format!(
                " AND (start_ms > ${} OR (start_ms = ${} AND event_key > ${}))",
                n + 1,
                n + 1,
                n + 2
            ));
        }
        sql.push_str(&format!(" ORDER BY start_ms, event_key LIMIT {limit}"));
        let mut stmt = q_composed(sql)
            .i64(tenant.0)
            .i64(query.from_ms)
            .i64(query.to_ms);
        if let Some(a) = query.account_id {
            stmt = stmt.i64(a);
        }
        if let Some((ms, key)) = &query.after {
            stmt = stmt.i64(*ms).text(key.clone());
        }
        let mut tx = self.read().await?;
        let rows = tx.all(stmt).await?;
        rows.iter().map(stored_cdr).collect()
    }

    /// How many rated CDRs a tenant has, and their charged total.
    pub async fn cdr_totals(&self, tenant: TenantId) -> Result<(i64, Micros), StoreError> {
        let mut tx = self.read().await?;
        let r = tx
            .one(
                q("SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM cdrs WHERE tenant_id = $1")
                    .i64(tenant.0),
            )
            .await?;
        Ok((r.i64(0)?, Micros(r.i64(1)?)))
    }
}

/// A row of [`COLUMNS`] as a stored CDR.
pub(crate) fn stored_cdr(r: &crate::db::DbRow) -> Result<StoredCdr, StoreError> {
    Ok(StoredCdr {
        event_key: r.text(0)?,
        source: r.text(1)?,
        record_id: r.text(2)?,
        import_id: r.opt_i64(3)?,
        subscriber_id: r.i64(4)?,
        account_id: r.i64(5)?,
        caller: r.text(6)?,
        callee: r.text(7)?,
        destination: r.opt_text(8)?,
        start_ms: r.i64(9)?,
        utc_offset_s: r.i64(10)?,
        answer_ms: r.opt_i64(11)?,
        end_ms: r.opt_i64(12)?,
        usage: r.text(13)?,
        quantity: r.i64(14)?,
        category: r.text(15)?,
        subject: r.text(16)?,
        rated_usage: r.opt_i64(17)?,
        cost: r.opt_i64(18)?.map(Micros),
        matched_prefix: r.opt_text(19)?,
        destination_id: r.opt_text(20)?,
        carrier: r.opt_text(21)?,
        region: r.opt_text(22)?,
        default_rated: r.i64(23)? != 0,
        amount: Micros(r.i64(24)?),
        covered: r.i64(25)?,
        ledger_seq: r.opt_i64(26)?,
        call_id: r.opt_text(27)?,
        rated_ms: r.i64(28)?,
        priced_by: r.text(29)?,
        rerated: r.i64(30)?,
        swept: r.i64(31)? != 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn month_bounds_are_utc_months() {
        // 2026-11-30T23:59:59.999Z and 2026-12-01T00:00:00Z fall in different months.
        let (d, from, to) = month_bounds(1_796_083_199_999).unwrap();
        assert_eq!(d.to_string(), "2026-11-01");
        assert_eq!(from, 1_793_491_200_000);
        assert_eq!(to, 1_796_083_200_000);
        let (d2, from2, _) = month_bounds(to).unwrap();
        assert_eq!(d2.to_string(), "2026-12-01");
        assert_eq!(from2, to);
    }
}
