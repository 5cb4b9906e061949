//! Read-only figures for the web UI: the dashboard's day, the account list with its search,
//! an account's lines and subscriptions, and the CDR search by number.
//!
//! Why a module of its own: these queries serve screens, not the charging path, so they may
//! join and aggregate freely; nothing here writes. Every statement is plain SQL that SQLite and
//! PostgreSQL both run (integer arithmetic on `BIGINT` columns, `CAST(SUM(..) AS BIGINT)` since
//! PostgreSQL sums integers into `numeric`).

use toll_core::Micros;

use crate::db::{q, q_composed};
use crate::{Store, StoreError, TenantId};

/// Most rows one page of a list returns.
pub const MAX_LIST: i64 = 500;

/// One day's figures, from the CDRs that started in `[from_ms, to_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct DayFigures {
    pub calls: i64,
    /// What was charged for them (money only: allowance use is no revenue).
    pub revenue: Micros,
    /// `(hour, calls)`: the hour counted from `from_ms` (0 = the day's first hour), only hours
    /// with calls.
    pub per_hour: Vec<(i64, i64)>,
}

/// An account as the account list shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountRow {
    pub code: String,
    pub customer: String,
    pub customer_name: String,
    pub mode: String,
    pub currency: String,
    /// Credits minus debits of the wallet.
    pub balance: Micros,
    pub lines: i64,
}

/// A line of an account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineRow {
    pub number: String,
    pub status: String,
}

/// A CDR as the search lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CdrRow {
    pub event_key: String,
    pub account: String,
    pub caller: String,
    pub callee: String,
    pub start_ms: i64,
    pub usage: String,
    pub category: String,
    pub amount: Micros,
    pub priced_by: String,
    pub destination_id: Option<String>,
}

/// What to search CDRs by: a time window `[from_ms, to_ms)`, optionally a number (caller or
/// callee, exact) and an account code; newest first, `offset` rows skipped.
#[derive(Debug, Clone, Default)]
pub struct CdrSearch {
    pub from_ms: i64,
    pub to_ms: i64,
    pub number: Option<String>,
    pub account: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

impl Store {
    /// Calls, revenue and calls per hour of the CDRs that started in `[from_ms, to_ms)`. The
    /// hour is counted from `from_ms` rather than read off a clock, so that the caller decides
    /// the day's start in the tenant's time zone; on a day with a DST change the hours after
    /// it are shifted by the change, which the dashboard accepts.
    pub async fn day_figures(
        &self,
        tenant: TenantId,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<DayFigures, StoreError> {
        let mut tx = self.read().await?;
        let total = tx
            .one(
                q(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM cdrs \
                   WHERE tenant_id = $1 AND start_ms >= $2 AND start_ms < $3",
                )
                .i64(tenant.0)
                .i64(from_ms)
                .i64(to_ms),
            )
            .await?;
        let rows = tx
            .all(
                // By position: PostgreSQL would not match a parameter inside GROUP BY with
                // the same expression in the select list.
                q("SELECT (start_ms - $2) / 3600000, COUNT(*) FROM cdrs \
                   WHERE tenant_id = $1 AND start_ms >= $2 AND start_ms < $3 \
                   GROUP BY 1 ORDER BY 1")
                .i64(tenant.0)
                .i64(from_ms)
                .i64(to_ms),
            )
            .await?;
        Ok(DayFigures {
            calls: total.i64(0)?,
            revenue: Micros(total.i64(1)?),
            per_hour: rows
                .iter()
                .map(|r| Ok((r.i64(0)?, r.i64(1)?)))
                .collect::<Result<_, StoreError>>()?,
        })
    }

    /// Open suspense items of a tenant, all classes together.
    pub async fn suspense_open_count(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let mut tx = self.read().await?;
        tx.one(
            q("SELECT COUNT(*) FROM suspense WHERE tenant_id = $1 AND status = 'open'")
                .i64(tenant.0),
        )
        .await?
        .i64(0)
    }

    /// Accounts by code, those whose account code, customer code, customer name or one of
    /// whose lines contains `search` (all when empty), one page.
    pub async fn account_list(
        &self,
        tenant: TenantId,
        search: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<AccountRow>, StoreError> {
        let search = search.trim();
        let mut sql = String::from(
            "SELECT a.code, c.code, c.name, a.mode, a.currency, l.credits - l.debits, \
             (SELECT COUNT(*) FROM subscribers s WHERE s.tenant_id = a.tenant_id \
              AND s.account_id = a.id) \
             FROM accounts a JOIN customers c ON c.id = a.customer_id \
             JOIN ledger_accounts l ON l.id = a.wallet_id WHERE a.tenant_id = $1",
        );
        if !search.is_empty() {
            sql.push_str(
                " AND (a.code LIKE $2 ESCAPE '\\' OR c.code LIKE $2 ESCAPE '\\' \
                 OR c.name LIKE $2 ESCAPE '\\' OR EXISTS \
                 (SELECT 1 FROM subscribers s WHERE s.tenant_id = a.tenant_id \
                  AND s.account_id = a.id AND s.number LIKE $2 ESCAPE '\\'))",
            );
        }
        sql.push_str(&format!(
            " ORDER BY a.code LIMIT {} OFFSET {}",
            limit.clamp(1, MAX_LIST),
            offset.max(0)
        ));
        let mut stmt = q_composed(sql).i64(tenant.0);
        if !search.is_empty() {
            stmt = stmt.text(format!("%{}%", escape_like(search)));
        }
        let mut tx = self.read().await?;
        tx.all(stmt)
            .await?
            .iter()
            .map(|r| {
                Ok(AccountRow {
                    code: r.text(0)?,
                    customer: r.text(1)?,
                    customer_name: r.text(2)?,
                    mode: r.text(3)?,
                    currency: r.text(4)?,
                    balance: Micros(r.i64(5)?),
                    lines: r.i64(6)?,
                })
            })
            .collect()
    }

    /// The lines of an account, by number.
    pub async fn account_line_rows(
        &self,
        tenant: TenantId,
        account: &str,
    ) -> Result<Vec<LineRow>, StoreError> {
        let mut tx = self.read().await?;
        tx.all(
            q("SELECT s.number, s.status FROM subscribers s JOIN accounts a ON a.id = s.account_id \
               WHERE s.tenant_id = $1 AND a.code = $2 ORDER BY s.number")
            .i64(tenant.0)
            .text(account),
        )
        .await?
        .iter()
        .map(|r| {
            Ok(LineRow {
                number: r.text(0)?,
                status: r.text(1)?,
            })
        })
        .collect()
    }

    /// The ids of an account's subscriptions, oldest first (read each with
    /// [`Store::subscription`] for its buckets).
    pub async fn account_subscription_ids(
        &self,
        tenant: TenantId,
        account: &str,
    ) -> Result<Vec<i64>, StoreError> {
        let mut tx = self.read().await?;
        tx.all(
            q(
                "SELECT s.id FROM subscriptions s JOIN accounts a ON a.id = s.account_id \
               WHERE s.tenant_id = $1 AND a.code = $2 ORDER BY s.id",
            )
            .i64(tenant.0)
            .text(account),
        )
        .await?
        .iter()
        .map(|r| r.i64(0))
        .collect()
    }

    /// CDRs of a window, newest first, by number and/or account.
    pub async fn cdr_page(
        &self,
        tenant: TenantId,
        s: &CdrSearch,
    ) -> Result<Vec<CdrRow>, StoreError> {
        let mut sql = String::from(
            "SELECT c.event_key, a.code, c.caller, c.callee, c.start_ms, c.usage, c.category, \
             c.amount, c.priced_by, c.destination_id FROM cdrs c \
             JOIN accounts a ON a.id = c.account_id \
             WHERE c.tenant_id = $1 AND c.start_ms >= $2 AND c.start_ms < $3",
        );
        let mut n = 3;
        if s.number.is_some() {
            n += 1;
            sql.push_str(&format!(" AND (c.caller = ${n} OR c.callee = ${n})"));
        }
        if s.account.is_some() {
            n += 1;
            sql.push_str(&format!(" AND a.code = ${n}"));
        }
        sql.push_str(&format!(
            " ORDER BY c.start_ms DESC, c.event_key DESC LIMIT {} OFFSET {}",
            s.limit.clamp(1, MAX_LIST),
            s.offset.max(0)
        ));
        let mut stmt = q_composed(sql).i64(tenant.0).i64(s.from_ms).i64(s.to_ms);
        if let Some(num) = &s.number {
            stmt = stmt.text(num.clone());
        }
        if let Some(a) = &s.account {
            stmt = stmt.text(a.clone());
        }
        let mut tx = self.read().await?;
        tx.all(stmt)
            .await?
            .iter()
            .map(|r| {
                Ok(CdrRow {
                    event_key: r.text(0)?,
                    account: r.text(1)?,
                    caller: r.text(2)?,
                    callee: r.text(3)?,
                    start_ms: r.i64(4)?,
                    usage: r.text(5)?,
                    category: r.text(6)?,
                    amount: Micros(r.i64(7)?),
                    priced_by: r.text(8)?,
                    destination_id: r.opt_text(9)?,
                })
            })
            .collect()
    }
}

/// `%` and `_` typed by a user are literal in a search, not wildcards: escaped with `\`, which
/// the statement names as LIKE's escape (both engines take `ESCAPE`).
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
