//! Billing over the store: a tenant's tax settings, the daily sums invoices are made of
//! ([`sums`]), bill runs that turn an account's period into one invoice ([`run`]), and reading,
//! finalizing and crediting invoices ([`invoices`]).
//!
//! Money on invoices comes from what charging already recorded: rated CDRs (usage by
//! destination, allowance use, overage) and ledger postings on the account's wallet (plan fees,
//! proration, operators' charges and adjustments). Top-ups and payments are not invoice lines.

pub mod invoices;
pub mod payments;
pub mod run;
pub mod statements;
mod stored_lines;
pub mod sums;

use toll_billing::{TaxMode, TaxRate};
use toll_core::RoundingMethod;

use crate::db::{Tx, q};
use crate::{Store, StoreError, TenantId};

/// A tenant's invoicing settings and VAT rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxSettings {
    pub mode: TaxMode,
    pub rounding: RoundingMethod,
    /// (product, rate); `*` is the default.
    pub rules: Vec<(String, TaxRate)>,
}

impl TaxSettings {
    /// The rate for `product`, else the tenant's default, else none (outside the scope of tax).
    pub fn rate_for(&self, product: &str) -> Option<&TaxRate> {
        self.rules
            .iter()
            .find(|(p, _)| p == product)
            .or_else(|| self.rules.iter().find(|(p, _)| p == "*"))
            .map(|(_, r)| r)
    }
}

fn rounding_of(s: &str) -> Result<RoundingMethod, StoreError> {
    match s {
        "*up" => Ok(RoundingMethod::Up),
        "*middle" => Ok(RoundingMethod::Middle),
        "*down" => Ok(RoundingMethod::Down),
        other => Err(StoreError::Corrupt(format!("invoice rounding {other:?}"))),
    }
}

/// Products a tax rule may name.
fn check_product(product: &str) -> Result<(), StoreError> {
    let ok = product == "*"
        || (!product.is_empty()
            && product.len() <= 32
            && product
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "product",
            format!("{product:?}: a usage kind (voice, sms, data, ...), fee, other or *"),
        ))
    }
}

pub(crate) async fn tax_settings(tx: &mut Tx, t: TenantId) -> Result<TaxSettings, StoreError> {
    let row = tx
        .one(q("SELECT tax_mode, invoice_rounding FROM tenants WHERE id = $1").i64(t.0))
        .await?;
    let mode = row
        .text(0)?
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("tax mode: {e}")))?;
    let rounding = rounding_of(&row.text(1)?)?;
    let rules = tx
        .all(
            q("SELECT product, name, ppm FROM tax_rules WHERE tenant_id = $1 ORDER BY product")
                .i64(t.0),
        )
        .await?
        .iter()
        .map(|r| {
            let ppm =
                u32::try_from(r.i64(2)?).map_err(|_| StoreError::Corrupt("tax rule ppm".into()))?;
            let rate = TaxRate::from_ppm(&r.text(1)?, ppm)
                .map_err(|e| StoreError::Corrupt(format!("tax rule: {e}")))?;
            Ok((r.text(0)?, rate))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(TaxSettings {
        mode,
        rounding,
        rules,
    })
}

impl Store {
    pub async fn tax_settings(&self, t: TenantId) -> Result<TaxSettings, StoreError> {
        let mut tx = self.read().await?;
        tax_settings(&mut tx, t).await
    }

    /// Whether the tenant's prices include VAT, and how its invoices round.
    pub async fn set_invoicing(
        &self,
        t: TenantId,
        mode: TaxMode,
        rounding: RoundingMethod,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.exec(
            q("UPDATE tenants SET tax_mode = $1, invoice_rounding = $2 WHERE id = $3")
                .text(mode.as_str())
                .text(rounding.as_str())
                .i64(t.0),
        )
        .await?;
        tx.commit().await
    }

    /// Sets (or replaces) the VAT rate of `product` (`*` for the default).
    pub async fn set_tax_rule(
        &self,
        t: TenantId,
        product: &str,
        rate: &TaxRate,
    ) -> Result<(), StoreError> {
        check_product(product)?;
        let mut tx = self.begin().await?;
        tx.exec(
            q(
                "INSERT INTO tax_rules (tenant_id, product, name, ppm) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (tenant_id, product) DO UPDATE SET name = excluded.name, \
               ppm = excluded.ppm",
            )
            .i64(t.0)
            .text(product)
            .text(rate.name())
            .i64(i64::from(rate.ppm())),
        )
        .await?;
        tx.commit().await
    }

    /// Bills the account on the calendar month (`calendar_month`) or monthly from the day it
    /// was opened (`anniversary`).
    pub async fn set_bill_cycle(
        &self,
        t: TenantId,
        account: &str,
        cycle: &str,
    ) -> Result<(), StoreError> {
        if !matches!(cycle, "calendar_month" | "anniversary") {
            return Err(StoreError::invalid(
                "bill_cycle",
                format!("{cycle:?}: calendar_month or anniversary"),
            ));
        }
        let mut tx = self.begin().await?;
        let n = tx
            .exec(
                q("UPDATE accounts SET bill_cycle = $1 WHERE tenant_id = $2 AND code = $3")
                    .text(cycle)
                    .i64(t.0)
                    .text(account),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("account", account));
        }
        tx.commit().await
    }
}
