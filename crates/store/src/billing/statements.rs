//! Statements of account: what an account owed at the start of a period, what moved in it,
//! and what it owed at the end, in the tenant's calendar.
//!
//! A statement is read from the ledger, because that is where the account's money is: usage
//! and fees are charged to the wallet when they happen, finalizing an invoice adds only its tax
//! and rounding difference, payments and top-ups credit the wallet when the money is received.
//! Balances are **amounts due**: the wallet's debits minus its credits — positive when the
//! customer owes, negative when the customer is in credit (the opposite sign of
//! `AccountView::balance`, which is what the customer holds).
//!
//! The movements of the period are the wallet's ledger entries with `at_ms` in
//! `[from 00:00, to 00:00)` tenant-local time, grouped by transaction kind into three totals,
//! so that to the micro-unit
//!
//! ```text
//! closing = opening + charges − payments − credits
//! ```
//!
//! - **charges**: charge and proration entries, net (usage, plan fees, proration, operators'
//!   charges, and the tax and rounding invoices add): what was billed;
//! - **payments**: payment and top-up entries, net: money received;
//! - **credits**: every other kind, net (credit notes and refunds, adjustments): what was
//!   given back (negative when an adjustment charged the customer).
//!
//! The invoices and credit notes finalized in the period, and the payments received in it, are
//! listed for reference: an invoice's usage was charged when it happened, usually in an earlier
//! period than its finalization, so invoice totals are not a column of the identity — over the
//! whole life of an account, charges equal the totals of its invoices and credit notes plus
//! what is not invoiced yet.
//!
//! The statement is of the ledger as it stands: usage that arrives late (an entry dated in a
//! closed period) changes the statements of that period when they are made again.

use jiff::civil::Date;
use toll_charging::ledger::TxKind;
use toll_core::{Currency, Micros};

use super::payments::PaymentMethod;
use super::sums::{day_bounds, day_of};
use crate::db::{Tx, q};
use crate::{Store, StoreError, Tenant, TenantId};

/// Rows a statement lists at most (invoices, payments): a longer list is a period too long to
/// print, and is refused rather than cut short.
pub const MAX_STATEMENT_ROWS: usize = 10_000;

/// Which total of a statement a transaction kind adds to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementGroup {
    Charges,
    Payments,
    Credits,
}

impl MovementGroup {
    /// The group of a ledger transaction kind; every kind has exactly one.
    pub fn of(kind: TxKind) -> MovementGroup {
        match kind {
            TxKind::Charge | TxKind::Proration => MovementGroup::Charges,
            TxKind::Payment | TxKind::TopUp => MovementGroup::Payments,
            TxKind::Refund | TxKind::Adjustment | TxKind::Commission => MovementGroup::Credits,
        }
    }
}

/// The wallet's entries of one transaction kind in the period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementMovement {
    /// charge, top_up, refund, adjustment, proration, payment or commission.
    pub kind: String,
    pub group: MovementGroup,
    pub entries: i64,
    /// What these entries added to the amount due (debits of the wallet).
    pub debit: Micros,
    /// What they took off it (credits of the wallet).
    pub credit: Micros,
}

/// An invoice or credit note finalized in the period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementInvoice {
    pub id: i64,
    /// invoice or credit_note.
    pub kind: String,
    pub number: Option<String>,
    /// The tenant-local day it was finalized.
    pub date: Date,
    pub period: String,
    pub total: Micros,
    pub paid: Micros,
    /// finalized or paid.
    pub status: String,
}

/// A payment received in the period.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StatementPayment {
    pub id: i64,
    /// The tenant-local day it was received.
    pub date: Date,
    pub received_ms: i64,
    pub method: PaymentMethod,
    pub reference: String,
    pub amount: Micros,
    /// What of it has been allocated to invoices (as of now).
    pub allocated: Micros,
}

/// An account's statement for `[from, to)`; see the module documentation for the sign
/// convention and the identity it keeps.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Statement {
    pub account: String,
    pub customer: String,
    pub currency: Currency,
    pub time_zone: String,
    pub from: Date,
    /// The first day after the period.
    pub to: Date,
    /// Amount due at the start (positive: the customer owes).
    pub opening: Micros,
    pub charges: Micros,
    pub payments: Micros,
    pub credits: Micros,
    /// Amount due at the end: `opening + charges − payments − credits`.
    pub closing: Micros,
    /// The period's wallet entries per transaction kind.
    pub movements: Vec<StatementMovement>,
    pub invoices: Vec<StatementInvoice>,
    /// Payments received (top-ups are in `movements` only: they are not payments of
    /// invoices).
    pub received: Vec<StatementPayment>,
}

/// The wallet's debits minus credits over entries with `at_ms < before`: the amount due then.
async fn due_before(
    tx: &mut Tx,
    t: TenantId,
    wallet: i64,
    before: i64,
) -> Result<Micros, StoreError> {
    let r = tx
        .one(
            q("SELECT \
               CAST(COALESCE(SUM(CASE WHEN debit_id = $2 THEN amount ELSE 0 END), 0) AS BIGINT), \
               CAST(COALESCE(SUM(CASE WHEN credit_id = $2 THEN amount ELSE 0 END), 0) AS BIGINT) \
               FROM ledger_entries WHERE tenant_id = $1 \
               AND (debit_id = $2 OR credit_id = $2) AND at_ms < $3")
            .i64(t.0)
            .i64(wallet)
            .i64(before),
        )
        .await?;
    Ok(Micros(r.i64(0)?).checked_sub(Micros(r.i64(1)?))?)
}

fn too_many(what: &str) -> StoreError {
    StoreError::Refused(format!(
        "the period has more than {MAX_STATEMENT_ROWS} {what}: ask for a shorter one"
    ))
}

impl Store {
    /// The statement of `account` for the tenant-local days `[from, to)`, read in one snapshot.
    pub async fn statement(
        &self,
        tenant: &Tenant,
        account: &str,
        from: Date,
        to: Date,
    ) -> Result<Statement, StoreError> {
        if from >= to {
            return Err(StoreError::invalid(
                "period",
                format!("{from} to {to}: the end (exclusive) must be after the start"),
            ));
        }
        let t = tenant.id;
        let tz = tenant.zone()?;
        let start = day_bounds(from, &tz)?.0;
        let end = day_bounds(to, &tz)?.0;
        let mut tx = self.read().await?;
        let a = tx
            .opt(
                q(
                    "SELECT a.id, a.wallet_id, a.currency, c.name FROM accounts a \
                   JOIN customers c ON c.id = a.customer_id \
                   WHERE a.tenant_id = $1 AND a.code = $2",
                )
                .i64(t.0)
                .text(account),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("account", account))?;
        let (account_id, wallet) = (a.i64(0)?, a.i64(1)?);
        let currency: Currency = a
            .text(2)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("account currency: {e}")))?;

        let opening = due_before(&mut tx, t, wallet, start).await?;
        let rows = tx
            .all(
                q("SELECT kind, COUNT(*), \
                   CAST(COALESCE(SUM(CASE WHEN debit_id = $2 THEN amount ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN credit_id = $2 THEN amount ELSE 0 END), 0) AS BIGINT) \
                   FROM ledger_entries WHERE tenant_id = $1 \
                   AND (debit_id = $2 OR credit_id = $2) AND at_ms >= $3 AND at_ms < $4 \
                   GROUP BY kind ORDER BY kind")
                .i64(t.0)
                .i64(wallet)
                .i64(start)
                .i64(end),
            )
            .await?;
        let mut movements = Vec::with_capacity(rows.len());
        let (mut charges, mut payments, mut credits) = (Micros(0), Micros(0), Micros(0));
        for r in &rows {
            let kind: TxKind = r
                .text(0)?
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("entry kind: {e}")))?;
            let (debit, credit) = (Micros(r.i64(2)?), Micros(r.i64(3)?));
            let group = MovementGroup::of(kind);
            match group {
                MovementGroup::Charges => {
                    charges = charges.checked_add(debit)?.checked_sub(credit)?;
                }
                MovementGroup::Payments => {
                    payments = payments.checked_add(credit)?.checked_sub(debit)?;
                }
                MovementGroup::Credits => {
                    credits = credits.checked_add(credit)?.checked_sub(debit)?;
                }
            }
            movements.push(StatementMovement {
                kind: kind.as_str().to_string(),
                group,
                entries: r.i64(1)?,
                debit,
                credit,
            });
        }
        let closing = opening
            .checked_add(charges)?
            .checked_sub(payments)?
            .checked_sub(credits)?;
        // The same amount read directly: the identity holds by construction, and this is where
        // a grouping that missed a kind, or an arithmetic slip, would show.
        let direct = due_before(&mut tx, t, wallet, end).await?;
        if direct != closing {
            return Err(StoreError::Corrupt(format!(
                "statement of {account}: opening {opening} + movements = {closing}, \
                 but the ledger says {direct}"
            )));
        }

        let limit = MAX_STATEMENT_ROWS as i64 + 1;
        let inv_rows = tx
            .all(
                q(
                    "SELECT id, kind, number, finalized_ms, period, total, paid, status \
                   FROM invoices WHERE tenant_id = $1 AND account_id = $2 \
                   AND status IN ('finalized', 'paid') \
                   AND finalized_ms >= $3 AND finalized_ms < $4 \
                   ORDER BY finalized_ms, id LIMIT $5",
                )
                .i64(t.0)
                .i64(account_id)
                .i64(start)
                .i64(end)
                .i64(limit),
            )
            .await?;
        if inv_rows.len() > MAX_STATEMENT_ROWS {
            return Err(too_many("invoices"));
        }
        let invoices = inv_rows
            .iter()
            .map(|r| {
                Ok(StatementInvoice {
                    id: r.i64(0)?,
                    kind: r.text(1)?,
                    number: r.opt_text(2)?,
                    date: day_of(r.i64(3)?, &tz)?,
                    period: r.text(4)?,
                    total: Micros(r.i64(5)?),
                    paid: Micros(r.i64(6)?),
                    status: r.text(7)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let pay_rows = tx
            .all(
                q(
                    "SELECT id, received_ms, method, provider, reference, amount, allocated \
                   FROM payments WHERE tenant_id = $1 AND account_id = $2 \
                   AND received_ms >= $3 AND received_ms < $4 \
                   ORDER BY received_ms, id LIMIT $5",
                )
                .i64(t.0)
                .i64(account_id)
                .i64(start)
                .i64(end)
                .i64(limit),
            )
            .await?;
        if pay_rows.len() > MAX_STATEMENT_ROWS {
            return Err(too_many("payments"));
        }
        let received = pay_rows
            .iter()
            .map(|r| {
                let method = PaymentMethod::from_columns(&r.text(2)?, r.opt_text(3)?)?;
                Ok(StatementPayment {
                    id: r.i64(0)?,
                    date: day_of(r.i64(1)?, &tz)?,
                    received_ms: r.i64(1)?,
                    method,
                    reference: r.text(4)?,
                    amount: Micros(r.i64(5)?),
                    allocated: Micros(r.i64(6)?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Statement {
            account: account.to_string(),
            customer: a.text(3)?,
            currency,
            time_zone: tenant.time_zone.clone(),
            from,
            to,
            opening,
            charges,
            payments,
            credits,
            closing,
            movements,
            invoices,
            received,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_group() {
        for k in TxKind::ALL {
            let _ = MovementGroup::of(k);
        }
        assert_eq!(MovementGroup::of(TxKind::Payment), MovementGroup::Payments);
        assert_eq!(MovementGroup::of(TxKind::Refund), MovementGroup::Credits);
    }
}
