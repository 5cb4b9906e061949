//! Invoices as stored: read back (and checked), listed, finalized, voided and credited.

use toll_billing::{Invoice, InvoiceKind, InvoiceNumber, Series};
use toll_core::Micros;

use super::run::{insert_invoice, post_finalization, take_numbers};
use super::stored_lines::{decode_lines, decode_taxes};
use crate::db::{Tx, q, q_composed};
use crate::{Store, StoreError, TenantId};

/// Invoices per page of a listing, at most.
pub const MAX_PAGE: i64 = 500;

/// An invoice with what the store knows about it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredInvoice {
    pub id: i64,
    pub account: String,
    pub customer: String,
    pub number: Option<String>,
    pub period: String,
    pub period_start: String,
    /// The first day after the period.
    pub period_end: String,
    /// draft, finalized, paid or void.
    pub status: String,
    pub paid: Micros,
    pub created_ms: i64,
    pub finalized_ms: Option<i64>,
    /// The invoice a credit note corrects.
    pub corrects: Option<i64>,
    /// Why a credit note was issued (empty on invoices).
    pub note: String,
    pub invoice: Invoice,
}

/// One row of an invoice listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceSummary {
    pub id: i64,
    pub account: String,
    pub kind: String,
    pub number: Option<String>,
    pub period: String,
    pub status: String,
    pub currency: String,
    pub total: Micros,
    pub paid: Micros,
    pub created_ms: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

const HEAD: &str = "SELECT i.id, a.code, c.name, i.number, i.period, i.period_start, i.period_end, \
     i.status, i.paid, i.created_ms, i.finalized_ms, i.corrects_id, i.kind, i.currency, \
     i.tax_mode, i.rounding, i.total, i.account_id, i.note, i.lines, i.taxes \
     FROM invoices i JOIN accounts a ON a.id = i.account_id \
     JOIN customers c ON c.id = a.customer_id WHERE i.tenant_id = $1";

/// Reads invoice `id` of tenant `t` and checks it (total = sum of lines, taxes agree).
pub(crate) async fn load(tx: &mut Tx, t: TenantId, id: i64) -> Result<StoredInvoice, StoreError> {
    let sql = format!("{HEAD} AND i.id = $2");
    let h = tx
        .opt(crate::db::q_composed(sql).i64(t.0).i64(id))
        .await?
        .ok_or_else(|| StoreError::not_found("invoice", id.to_string()))?;
    let lines = decode_lines(&h.text(19)?)?;
    let taxes = decode_taxes(&h.text(20)?)?;
    let corrects = h.opt_i64(11)?;
    let kind = match h.text(12)?.as_str() {
        "invoice" => InvoiceKind::Invoice,
        "credit_note" => {
            let original = corrects.ok_or_else(|| corrupt("credit note", "corrects nothing"))?;
            let number = tx
                .one(
                    q("SELECT number FROM invoices WHERE tenant_id = $1 AND id = $2")
                        .i64(t.0)
                        .i64(original),
                )
                .await?
                .opt_text(0)?
                .ok_or_else(|| corrupt("credit note", "corrects an unnumbered invoice"))?;
            InvoiceKind::CreditNote {
                corrects: number.parse().map_err(|e| corrupt("number", e))?,
            }
        }
        other => return Err(corrupt("invoice kind", other)),
    };
    let rounding = super::rounding_of(&h.text(15)?)?;
    let invoice = Invoice::from_parts(
        kind,
        h.text(13)?.parse().map_err(|e| corrupt("currency", e))?,
        h.text(14)?.parse().map_err(|e| corrupt("tax mode", e))?,
        rounding,
        lines,
        taxes,
        Micros(h.i64(16)?),
    )
    .map_err(|e| corrupt(&format!("invoice {id}"), e))?;
    Ok(StoredInvoice {
        id: h.i64(0)?,
        account: h.text(1)?,
        customer: h.text(2)?,
        number: h.opt_text(3)?,
        period: h.text(4)?,
        period_start: h.text(5)?,
        period_end: h.text(6)?,
        status: h.text(7)?,
        paid: Micros(h.i64(8)?),
        created_ms: h.i64(9)?,
        finalized_ms: h.opt_i64(10)?,
        corrects,
        note: h.text(18)?,
        invoice,
    })
}

async fn wallet_of_invoice(tx: &mut Tx, t: TenantId, id: i64) -> Result<(i64, i64), StoreError> {
    let r = tx
        .one(
            q(
                "SELECT a.id, a.wallet_id FROM invoices i JOIN accounts a ON a.id = i.account_id \
               WHERE i.tenant_id = $1 AND i.id = $2",
            )
            .i64(t.0)
            .i64(id),
        )
        .await?;
    Ok((r.i64(0)?, r.i64(1)?))
}

impl Store {
    /// Invoice `id`, checked as it is read.
    pub async fn invoice(&self, t: TenantId, id: i64) -> Result<StoredInvoice, StoreError> {
        let mut tx = self.read().await?;
        load(&mut tx, t, id).await
    }

    /// The invoice numbered `number`.
    pub async fn invoice_by_number(
        &self,
        t: TenantId,
        number: &str,
    ) -> Result<StoredInvoice, StoreError> {
        let mut tx = self.read().await?;
        let id = tx
            .opt(
                q("SELECT id FROM invoices WHERE tenant_id = $1 AND number = $2")
                    .i64(t.0)
                    .text(number),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("invoice", number))?
            .i64(0)?;
        load(&mut tx, t, id).await
    }

    /// Invoices newest first, optionally of one account and/or period, after `before` (the
    /// last id of the previous page).
    pub async fn invoices(
        &self,
        t: TenantId,
        account: Option<&str>,
        period: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<InvoiceSummary>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx
            .all(
                q(
                    "SELECT i.id, a.code, i.kind, i.number, i.period, i.status, i.currency, \
                   i.total, i.paid, i.created_ms FROM invoices i \
                   JOIN accounts a ON a.id = i.account_id WHERE i.tenant_id = $1 \
                   AND ($2 IS NULL OR a.code = $2) AND ($3 IS NULL OR i.period = $3) \
                   AND i.id < $4 ORDER BY i.id DESC LIMIT $5",
                )
                .i64(t.0)
                .opt_text(account)
                .opt_text(period)
                .i64(before.unwrap_or(i64::MAX))
                .i64(limit.clamp(1, MAX_PAGE)),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(InvoiceSummary {
                    id: r.i64(0)?,
                    account: r.text(1)?,
                    kind: r.text(2)?,
                    number: r.opt_text(3)?,
                    period: r.text(4)?,
                    status: r.text(5)?,
                    currency: r.text(6)?,
                    total: Micros(r.i64(7)?),
                    paid: Micros(r.i64(8)?),
                    created_ms: r.i64(9)?,
                })
            })
            .collect()
    }

    /// Finalizes a draft: takes its number and posts its tax and rounding, in one transaction.
    pub async fn finalize_invoice(
        &self,
        t: TenantId,
        id: i64,
        today: jiff::civil::Date,
    ) -> Result<StoredInvoice, StoreError> {
        let mut tx = self.begin().await?;
        let inv = load(&mut tx, t, id).await?;
        if inv.status != "draft" {
            return Err(StoreError::Refused(format!(
                "invoice {id} is {}, only a draft can be finalized",
                inv.status
            )));
        }
        let (account, wallet) = wallet_of_invoice(&mut tx, t, id).await?;
        let key = format!("{account}:{}", inv.period);
        let memo = format!("invoice {} of {}", inv.period, inv.account);
        if let Err(why) = post_finalization(
            &mut tx,
            t,
            &key,
            &inv.invoice,
            wallet,
            &memo,
            crate::now_ms(),
        )
        .await?
        {
            return Err(StoreError::Refused(why));
        }
        let series = Series::invoices();
        let year = today.year();
        let seq = take_numbers(&mut tx, t, &series, year, 1).await?;
        let number = InvoiceNumber::new(&series, year, seq);
        tx.exec(
            q(
                "UPDATE invoices SET status = 'finalized', number = $1, finalized_ms = $2 \
               WHERE tenant_id = $3 AND id = $4",
            )
            .text(number.to_string())
            .i64(crate::now_ms())
            .i64(t.0)
            .i64(id),
        )
        .await?;
        let out = load(&mut tx, t, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Voids a draft; its daily rows are open again for the next run. A finalized invoice is
    /// never voided: it is corrected with a credit note. Only an account's latest invoice can
    /// be voided: the account's watermark goes back to the invoice before it, which a later
    /// invoice would still cover.
    pub async fn void_invoice(&self, t: TenantId, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        super::sums::lock_billing(&mut tx, t).await?;
        let inv = load(&mut tx, t, id).await?;
        if inv.status != "draft" {
            return Err(StoreError::Refused(format!(
                "invoice {id} is {}: only a draft can be voided; credit a finalized invoice",
                inv.status
            )));
        }
        let account = tx
            .one(
                q("SELECT account_id FROM invoices WHERE tenant_id = $1 AND id = $2")
                    .i64(t.0)
                    .i64(id),
            )
            .await?
            .i64(0)?;
        // The account's other invoices that bill daily rows.
        let others = "FROM invoices WHERE tenant_id = $1 AND account_id = $2 \
            AND kind = 'invoice' AND status <> 'void' AND id <> $3";
        if let Some(r) = tx
            .opt(
                q_composed(format!(
                    "SELECT id {others} AND id > $3 ORDER BY id LIMIT 1"
                ))
                .i64(t.0)
                .i64(account)
                .i64(id),
            )
            .await?
        {
            return Err(StoreError::Refused(format!(
                "invoice {id} is not the account's latest: void invoice {} first (or credit \
                 it, if it is finalized)",
                r.i64(0)?
            )));
        }
        let back = tx
            .one(
                q_composed(format!("SELECT MAX(period_end) {others}"))
                    .i64(t.0)
                    .i64(account)
                    .i64(id),
            )
            .await?
            .opt_text(0)?;
        tx.exec(
            q("UPDATE accounts SET billed_through = $3 WHERE tenant_id = $1 AND id = $2")
                .i64(t.0)
                .i64(account)
                .opt_text(back.clone()),
        )
        .await?;
        // The late rows it billed are open again; those of days still billed through (by the
        // invoice before) stay late rows.
        tx.exec(
            q("UPDATE bill_days SET invoice_id = NULL, \
               late = CASE WHEN day < $3 THEN 1 ELSE 0 END \
               WHERE tenant_id = $1 AND invoice_id = $2")
            .i64(t.0)
            .i64(id)
            .opt_text(back),
        )
        .await?;
        super::sums::bump_days_version(&mut tx, t).await?;
        tx.exec(
            q("UPDATE invoices SET status = 'void' WHERE tenant_id = $1 AND id = $2")
                .i64(t.0)
                .i64(id),
        )
        .await?;
        tx.commit().await
    }

    /// Credits a finalized invoice in full: a credit note (its own `CN` number) that mirrors
    /// every line, and the ledger postings that give the money back to the wallet.
    pub async fn credit_invoice(
        &self,
        t: TenantId,
        id: i64,
        reason: &str,
        today: jiff::civil::Date,
    ) -> Result<StoredInvoice, StoreError> {
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(StoreError::invalid(
                "reason",
                "say why, in 1 to 500 characters",
            ));
        }
        let mut tx = self.begin().await?;
        let inv = load(&mut tx, t, id).await?;
        if inv.invoice.kind != InvoiceKind::Invoice
            || !matches!(inv.status.as_str(), "finalized" | "paid")
        {
            return Err(StoreError::Refused(format!(
                "invoice {id} is a {} {}: only a finalized invoice is credited",
                inv.status,
                if inv.invoice.kind == InvoiceKind::Invoice {
                    "invoice"
                } else {
                    "credit note"
                }
            )));
        }
        let already = tx
            .opt(
                q("SELECT id FROM invoices WHERE tenant_id = $1 AND corrects_id = $2")
                    .i64(t.0)
                    .i64(id),
            )
            .await?;
        if already.is_some() {
            return Err(StoreError::Conflict {
                entity: "credit note for invoice",
                key: id.to_string(),
            });
        }
        let number: InvoiceNumber = inv
            .number
            .as_deref()
            .ok_or_else(|| corrupt("invoice", "finalized without a number"))?
            .parse()
            .map_err(|e| corrupt("number", e))?;
        let credit =
            Invoice::full_credit(&inv.invoice, number).map_err(|e| corrupt("credit note", e))?;
        let (account, wallet) = wallet_of_invoice(&mut tx, t, id).await?;
        // The money back: what the invoice charged (its non-tax lines, from revenue) and its
        // tax (from the tax account), into the wallet.
        let revenue = crate::books::book_id(&mut tx, t, "revenue").await?;
        let tax = crate::books::book_id(&mut tx, t, "tax").await?;
        let tax_part = inv.invoice.tax_total.0;
        let net = inv.invoice.total.0 - tax_part;
        let mut legs = Vec::with_capacity(2);
        for (from, amount) in [(revenue, net), (tax, tax_part)] {
            match amount.signum() {
                1 => legs.push(toll_charging::ledger::Leg::new(
                    from,
                    wallet,
                    Micros(amount),
                )),
                -1 => legs.push(toll_charging::ledger::Leg::new(
                    wallet,
                    from,
                    Micros(-amount),
                )),
                _ => {}
            }
        }
        if !legs.is_empty() {
            let req = toll_charging::ledger::TxRequest::new(
                crate::keys::ledger_key(crate::keys::KeySource::Invoice, &format!("cn:{id}"))?,
                toll_charging::ledger::TxKind::Refund,
                crate::now_ms(),
                format!("credit note for {}", inv.number.as_deref().unwrap_or("-")),
                legs,
            )
            .map_err(|e| StoreError::invalid("credit", e.to_string()))?;
            crate::ledger::post(&mut tx, t, &req).await?;
        }
        let series = Series::credit_notes();
        let year = today.year();
        let seq = take_numbers(&mut tx, t, &series, year, 1).await?;
        let cn_number = InvoiceNumber::new(&series, year, seq);
        let start: jiff::civil::Date =
            inv.period_start.parse().map_err(|e| corrupt("period", e))?;
        let end: jiff::civil::Date = inv.period_end.parse().map_err(|e| corrupt("period", e))?;
        let cn = insert_invoice(
            &mut tx,
            t,
            account,
            &credit,
            Some(id),
            (&inv.period, start, end),
            Some(&cn_number),
            crate::now_ms(),
        )
        .await?;
        tx.exec(
            q("UPDATE invoices SET note = $1 WHERE tenant_id = $2 AND id = $3")
                .text(reason)
                .i64(t.0)
                .i64(cn),
        )
        .await?;
        let out = load(&mut tx, t, cn).await?;
        tx.commit().await?;
        Ok(out)
    }
}
