//! Reads the REST API and the web UI page through: accounts found by code, customer name or
//! line, an account's lines and subscriptions, CDRs by number, a wallet's ledger entries, the
//! price of a plan change before it is made, and customers' top-up requests.
//!
//! Why a module of its own: these are screens' questions (search, pages, previews), not steps
//! of charging; keeping them apart leaves the charging modules about charging. Every listing is
//! keyset-paginated (a cursor of the last row's key, never `OFFSET`), so a page costs the same
//! however deep it is and rows written meanwhile neither repeat nor vanish.

use std::str::FromStr;

use jiff::civil::Date;
use toll_catalog::plan::PlanDef;
use toll_catalog::proration;
use toll_core::Micros;

use crate::accounts::{AccountMode, SubscriberView, wallet_available};
use crate::cdrs::{COLUMNS as CDR_COLUMNS, StoredCdr, stored_cdr};
use crate::db::{q, q_composed};
use crate::subscriptions::{
    SubscriptionView, active_version, check_change, current, settle_by_days,
};
use crate::{Store, StoreError, Tenant, TenantId, now_ms};

/// Most rows one page of these listings returns.
pub const MAX_PAGE: usize = 1000;

/// An account as a list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountSummary {
    pub code: String,
    pub customer: String,
    pub customer_name: String,
    pub mode: AccountMode,
    pub balance: Micros,
    /// How much more may be charged; `None` when unlimited.
    pub available: Option<Micros>,
    pub lines: Vec<String>,
}

/// Which accounts to list: those whose code, customer name or a line's number contains `text`
/// (case-insensitive), in code order after `after`.
#[derive(Debug, Clone, Default)]
pub struct AccountSearch {
    pub text: Option<String>,
    pub after: Option<String>,
    pub limit: usize,
}

/// Which CDRs to list: [`crate::cdrs::CdrQuery`] plus a number that is the caller or the callee
/// (as dialled, or as rating matched it).
#[derive(Debug, Clone, Default)]
pub struct CdrSearch {
    pub from_ms: i64,
    pub to_ms: i64,
    pub account_id: Option<i64>,
    pub number: Option<String>,
    /// The last row's `(start_ms, event_key)`.
    pub after: Option<(i64, String)>,
    pub limit: usize,
}

/// One ledger entry as the wallet sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WalletEntry {
    pub seq: i64,
    pub key: String,
    pub kind: String,
    pub at_ms: i64,
    /// Positive: money into the wallet (a credit); negative: out of it.
    pub amount: Micros,
    pub memo: String,
}

/// What a plan change *now* would settle, computed exactly as [`Store::change_plan`] does but
/// written nowhere.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangePreview {
    pub from_plan: String,
    pub from_version: i64,
    pub to_plan: String,
    pub to_version: i64,
    pub date: String,
    pub period_start: String,
    /// Exclusive.
    pub period_end: String,
    pub days_in_period: u32,
    pub days_remaining: u32,
    /// The unused part of the old fee, given back.
    pub credit: Micros,
    /// The new fee for the days left.
    pub charge: Micros,
    /// `charge - credit`: what the wallet pays (negative: receives).
    pub net: Micros,
}

/// A customer's request for a top-up, for an operator to act on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopUpRequest {
    pub id: i64,
    pub account: String,
    pub amount: Micros,
    pub note: String,
    pub actor: String,
    pub status: String,
    pub created_ms: i64,
}

/// `%text%` for `LIKE … ESCAPE '\'`, lower-cased, with the pattern characters of `text`
/// taken literally (a search for `50%` finds `50%`, not everything starting with 50).
fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn page(limit: usize) -> usize {
    limit.clamp(1, MAX_PAGE)
}

impl Store {
    /// A page of accounts in code order, optionally filtered by a search text.
    pub async fn accounts_page(
        &self,
        tenant: TenantId,
        search: &AccountSearch,
    ) -> Result<Vec<AccountSummary>, StoreError> {
        let limit = page(search.limit);
        let text = search
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let mut sql = String::from(
            "SELECT a.code, c.code, c.name, l.floor_kind, l.floor_micros, l.debits, l.credits \
             FROM accounts a JOIN customers c ON c.id = a.customer_id \
             JOIN ledger_accounts l ON l.id = a.wallet_id \
             WHERE a.tenant_id = $1 AND a.code > $2",
        );
        if text.is_some() {
            // A line is found by part of its number as written, or by the number as a switch
            // writes it (`+86 138…`), normalised the way lines are stored.
            sql.push_str(
                " AND (LOWER(a.code) LIKE $3 ESCAPE '\\' OR LOWER(c.name) LIKE $3 ESCAPE '\\' \
                 OR EXISTS (SELECT 1 FROM subscribers s WHERE s.tenant_id = a.tenant_id \
                 AND s.account_id = a.id AND (s.number LIKE $3 ESCAPE '\\' OR s.number = $4)))",
            );
        }
        sql.push_str(&format!(" ORDER BY a.code LIMIT {limit}"));
        let mut stmt = q_composed(sql)
            .i64(tenant.0)
            .text(search.after.clone().unwrap_or_default());
        if let Some(t) = text {
            let normalised = crate::accounts::normalise_number(t).unwrap_or_else(|_| t.to_string());
            stmt = stmt.text(contains_pattern(t)).text(normalised);
        }
        let mut tx = self.read().await?;
        let rows = tx.all(stmt).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let balance = Micros(r.i64(6)?).checked_sub(Micros(r.i64(5)?))?;
            let (mode, available) = wallet_available(&r.text(3)?, Micros(r.i64(4)?), balance)?;
            out.push(AccountSummary {
                code: r.text(0)?,
                customer: r.text(1)?,
                customer_name: r.text(2)?,
                mode,
                balance,
                available,
                lines: Vec::new(),
            });
        }
        // The page's lines in one query: the page is a range of codes.
        if let (Some(first), Some(last)) = (out.first(), out.last()) {
            let lines = tx
                .all(
                    q("SELECT a.code, s.number FROM subscribers s \
                       JOIN accounts a ON a.id = s.account_id \
                       WHERE s.tenant_id = $1 AND a.code >= $2 AND a.code <= $3 \
                       ORDER BY s.number")
                    .i64(tenant.0)
                    .text(first.code.clone())
                    .text(last.code.clone()),
                )
                .await?;
            for l in &lines {
                let code = l.text(0)?;
                if let Some(a) = out.iter_mut().find(|a| a.code == code) {
                    a.lines.push(l.text(1)?);
                }
            }
        }
        Ok(out)
    }

    /// The account's id (for [`CdrSearch::account_id`]); not found in another tenant.
    pub async fn account_id(&self, tenant: TenantId, code: &str) -> Result<i64, StoreError> {
        let mut tx = self.read().await?;
        crate::accounts::account_id(&mut tx, tenant, code).await
    }

    /// The lines of an account, by number.
    pub async fn account_lines(
        &self,
        tenant: TenantId,
        code: &str,
    ) -> Result<Vec<SubscriberView>, StoreError> {
        let mut tx = self.read().await?;
        let id = crate::accounts::account_id(&mut tx, tenant, code).await?;
        tx.all(
            q(
                "SELECT id, number, status FROM subscribers WHERE tenant_id = $1 \
               AND account_id = $2 ORDER BY number",
            )
            .i64(tenant.0)
            .i64(id),
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SubscriberView {
                id: r.i64(0)?,
                number: r.text(1)?,
                account: code.to_string(),
                status: r.text(2)?,
            })
        })
        .collect()
    }

    /// The subscriptions of an account with their buckets (allowance used = initial −
    /// remaining), oldest first.
    pub async fn account_subscriptions(
        &self,
        tenant: TenantId,
        code: &str,
    ) -> Result<Vec<SubscriptionView>, StoreError> {
        let ids = {
            let mut tx = self.read().await?;
            let id = crate::accounts::account_id(&mut tx, tenant, code).await?;
            tx.all(
                q(
                    "SELECT id FROM subscriptions WHERE tenant_id = $1 AND account_id = $2 \
                   ORDER BY id",
                )
                .i64(tenant.0)
                .i64(id),
            )
            .await?
            .iter()
            .map(|r| r.i64(0))
            .collect::<Result<Vec<_>, _>>()?
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.subscription(tenant, id).await?);
        }
        Ok(out)
    }

    /// Rated CDRs in a time window, in start order, filtered by account and/or by a number that
    /// is the caller or the callee.
    pub async fn cdr_search(
        &self,
        tenant: TenantId,
        s: &CdrSearch,
    ) -> Result<Vec<StoredCdr>, StoreError> {
        let limit = s.limit.clamp(1, crate::cdrs::MAX_PAGE);
        let mut sql = format!(
            "SELECT {CDR_COLUMNS} FROM cdrs WHERE tenant_id = $1 AND start_ms >= $2 \
             AND start_ms < $3"
        );
        let mut n = 3;
        if s.account_id.is_some() {
            n += 1;
            sql.push_str(&format!(" AND account_id = ${n}"));
        }
        if s.number.is_some() {
            sql.push_str(&format!(
                " AND (caller = ${a} OR callee = ${a} OR destination = ${a} \
                 OR caller = ${b} OR callee = ${b} OR destination = ${b})",
                a = n + 1,
                b = n + 2
            ));
            n += 2;
        }
        if s.after.is_some() {
            sql.push_str(&format!(
                " AND (start_ms > ${a} OR (start_ms = ${a} AND event_key > ${b}))",
                a = n + 1,
                b = n + 2
            ));
        }
        sql.push_str(&format!(" ORDER BY start_ms, event_key LIMIT {limit}"));
        let mut stmt = q_composed(sql).i64(tenant.0).i64(s.from_ms).i64(s.to_ms);
        if let Some(a) = s.account_id {
            stmt = stmt.i64(a);
        }
        if let Some(num) = &s.number {
            // As written, and as lines are stored (a switch writes `+86 138…` or `0086…`).
            let normalised = crate::accounts::normalise_number(num).unwrap_or_else(|_| num.clone());
            stmt = stmt.text(num.clone()).text(normalised);
        }
        if let Some((ms, key)) = &s.after {
            stmt = stmt.i64(*ms).text(key.clone());
        }
        let mut tx = self.read().await?;
        tx.all(stmt).await?.iter().map(stored_cdr).collect()
    }

    /// The ledger entries that moved an account's wallet, newest first, before `before_seq`.
    pub async fn wallet_entries(
        &self,
        tenant: TenantId,
        account: &str,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<WalletEntry>, StoreError> {
        let limit = page(limit);
        let mut tx = self.read().await?;
        let wallet = crate::accounts::wallet_id(&mut tx, tenant, account).await?;
        let sql = format!(
            "SELECT seq, tx_key, kind, at_ms, debit_id, credit_id, amount, memo \
             FROM ledger_entries WHERE tenant_id = $1 AND (debit_id = $2 OR credit_id = $2) \
             AND seq < $3 ORDER BY seq DESC LIMIT {limit}"
        );
        tx.all(
            q_composed(sql)
                .i64(tenant.0)
                .i64(wallet)
                .i64(before_seq.unwrap_or(i64::MAX)),
        )
        .await?
        .iter()
        .map(|r| {
            let amount = Micros(r.i64(6)?);
            let credit = r.i64(5)? == wallet;
            Ok(WalletEntry {
                seq: r.i64(0)?,
                key: r.text(1)?,
                kind: r.text(2)?,
                at_ms: r.i64(3)?,
                amount: if credit {
                    amount
                } else {
                    Micros::ZERO.checked_sub(amount)?
                },
                memo: r.text(7)?,
            })
        })
        .collect()
    }

    /// What changing `subscription` to the active version of `to_plan` on `date` (in the
    /// tenant's calendar; today when `None`) would credit and charge. Nothing is written: the
    /// operator sees the amounts before deciding, and [`Store::change_plan`] computes the same.
    pub async fn preview_plan_change(
        &self,
        tenant: &Tenant,
        subscription: i64,
        to_plan: &str,
        date: Option<Date>,
    ) -> Result<ChangePreview, StoreError> {
        let t = tenant.id;
        let zone = tenant.zone()?;
        let mut tx = self.read().await?;
        let cur = current(&mut tx, t, subscription, false).await?;
        let old_def = PlanDef::from_str(&cur.definition)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        let new = active_version(&mut tx, t, to_plan).await?;
        let new_def = PlanDef::from_str(&new.definition)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        check_change(cur.version_id, new.id, &old_def, &new_def)?;
        let on = match date {
            Some(d) => d,
            None => jiff::Timestamp::from_millisecond(now_ms())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .to_zoned(zone)
                .date(),
        };
        let anchor = crate::subscriptions::parse_date("anchor_date", &cur.anchor)?;
        let period = proration::period_containing(old_def.validity(), anchor, on)
            .map_err(|e| StoreError::invalid("date", e.to_string()))?;
        let (p, credit, charge) = settle_by_days(tenant, &old_def, &new_def, period, on)?;
        Ok(ChangePreview {
            from_plan: old_def.code().as_str().to_string(),
            from_version: version_number(&mut tx, t, cur.version_id).await?,
            to_plan: new.code,
            to_version: new.version,
            date: on.to_string(),
            period_start: period.start().to_string(),
            period_end: period.end().to_string(),
            days_in_period: p.days_in_period,
            days_remaining: p.days_remaining,
            credit,
            charge,
            net: charge.checked_sub(credit)?,
        })
    }

    /// Records a customer's request for a top-up of `amount` (nothing is posted).
    pub async fn request_top_up(
        &self,
        tenant: TenantId,
        account: &str,
        amount: Micros,
        note: &str,
        actor: &str,
    ) -> Result<TopUpRequest, StoreError> {
        if amount.0 <= 0 {
            return Err(StoreError::invalid("amount", "must be greater than 0"));
        }
        let now = now_ms();
        let mut tx = self.begin().await?;
        let account_id = crate::accounts::account_id(&mut tx, tenant, account).await?;
        let id = tx
            .one(
                q(
                    "INSERT INTO top_up_requests (tenant_id, account_id, amount_micros, note, \
                   actor, status, created_ms) VALUES ($1, $2, $3, $4, $5, 'open', $6) \
                   RETURNING id",
                )
                .i64(tenant.0)
                .i64(account_id)
                .i64(amount.0)
                .text(note)
                .text(actor)
                .i64(now),
            )
            .await?
            .i64(0)?;
        tx.commit().await?;
        Ok(TopUpRequest {
            id,
            account: account.to_string(),
            amount,
            note: note.to_string(),
            actor: actor.to_string(),
            status: "open".into(),
            created_ms: now,
        })
    }

    /// Top-up requests, newest first (of one account when given), before id `before`.
    pub async fn top_up_requests(
        &self,
        tenant: TenantId,
        account: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<TopUpRequest>, StoreError> {
        let limit = page(limit);
        let sql = format!(
            "SELECT r.id, a.code, r.amount_micros, r.note, r.actor, r.status, r.created_ms \
             FROM top_up_requests r JOIN accounts a ON a.id = r.account_id \
             WHERE r.tenant_id = $1 AND r.id < $2 AND ($3 = '' OR a.code = $3) \
             ORDER BY r.id DESC LIMIT {limit}"
        );
        let mut tx = self.read().await?;
        tx.all(
            q_composed(sql)
                .i64(tenant.0)
                .i64(before.unwrap_or(i64::MAX))
                .text(account.unwrap_or_default()),
        )
        .await?
        .iter()
        .map(|r| {
            Ok(TopUpRequest {
                id: r.i64(0)?,
                account: r.text(1)?,
                amount: Micros(r.i64(2)?),
                note: r.text(3)?,
                actor: r.text(4)?,
                status: r.text(5)?,
                created_ms: r.i64(6)?,
            })
        })
        .collect()
    }
}

async fn version_number(
    tx: &mut crate::db::Tx,
    tenant: TenantId,
    version_id: i64,
) -> Result<i64, StoreError> {
    tx.one(
        q("SELECT version FROM plan_versions WHERE tenant_id = $1 AND id = $2")
            .i64(tenant.0)
            .i64(version_id),
    )
    .await?
    .i64(0)
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn search_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("A1"), "%a1%");
        assert_eq!(contains_pattern("50%_x\\"), "%50\\%\\_x\\\\%");
    }
}
