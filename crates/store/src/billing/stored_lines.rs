//! An invoice's lines and tax summary as they are stored: two JSON arrays in the invoice's own
//! row, not rows of their own.
//!
//! A finalized invoice is an immutable document that is always read whole, and a bill run
//! writes a million of them: as rows, its six to ten lines and its tax summary cost SQLite a
//! b-tree insert each (about 15 µs of 25 per invoice), which one column of a few hundred bytes
//! does not. Each line is an array in the order the old `invoice_lines` columns had:
//!
//! `[kind, label, detail, quantity, unit, events, tax_name, tax_ppm, exact, amount]`
//!
//! and each tax `[name, ppm, base, tax]`, amounts in micro-units; `null` where a field is
//! absent. SQL can still reach every field (`json_each(lines)` on SQLite,
//! `json_array_elements(lines::json)` on PostgreSQL).

use toll_billing::TaxRate;
use toll_billing::invoice::{InvoiceLine, Quantity, TaxSummary};
use toll_core::Micros;

use crate::StoreError;

type LineOut<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<i64>,
    Option<&'a str>,
    Option<i64>,
    Option<&'a str>,
    Option<u32>,
    i64,
    i64,
);

type LineIn = (
    String,
    String,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<u32>,
    i64,
    i64,
);

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("stored invoice {what}: {e}"))
}

/// The `lines` column of an invoice.
pub(crate) fn encode_lines(lines: &[InvoiceLine]) -> Result<String, StoreError> {
    let rows: Vec<LineOut<'_>> = lines
        .iter()
        .map(|l| {
            (
                l.kind.as_str(),
                l.label.as_str(),
                l.detail.as_deref(),
                l.quantity.map(|q| q.value),
                l.quantity.map(|q| q.unit.as_str()),
                l.count,
                l.tax.as_ref().map(TaxRate::name),
                l.tax.as_ref().map(TaxRate::ppm),
                l.exact.0,
                l.amount.0,
            )
        })
        .collect();
    serde_json::to_string(&rows).map_err(|e| corrupt("lines", e))
}

/// The `taxes` column of an invoice.
pub(crate) fn encode_taxes(taxes: &[TaxSummary]) -> Result<String, StoreError> {
    let rows: Vec<(&str, u32, i64, i64)> = taxes
        .iter()
        .map(|x| (x.rate.name(), x.rate.ppm(), x.base.0, x.tax.0))
        .collect();
    serde_json::to_string(&rows).map_err(|e| corrupt("taxes", e))
}

/// The lines stored by [`encode_lines`], checked field by field.
pub(crate) fn decode_lines(text: &str) -> Result<Vec<InvoiceLine>, StoreError> {
    let rows: Vec<LineIn> = serde_json::from_str(text).map_err(|e| corrupt("lines", e))?;
    rows.into_iter()
        .map(
            |(kind, label, detail, quantity, unit, count, tax_name, tax_ppm, exact, amount)| {
                let quantity = match (quantity, unit) {
                    (Some(value), Some(unit)) => Some(Quantity {
                        value,
                        unit: unit.parse().map_err(|e| corrupt("line unit", e))?,
                    }),
                    (None, None) => None,
                    _ => return Err(corrupt("line", "a quantity without its unit")),
                };
                let tax = match (tax_name, tax_ppm) {
                    (Some(name), Some(ppm)) => {
                        Some(TaxRate::from_ppm(&name, ppm).map_err(|e| corrupt("line tax", e))?)
                    }
                    (None, None) => None,
                    _ => return Err(corrupt("line", "a tax name without its rate")),
                };
                Ok(InvoiceLine {
                    kind: kind.parse().map_err(|e| corrupt("line kind", e))?,
                    label,
                    detail,
                    quantity,
                    count,
                    tax,
                    exact: Micros(exact),
                    amount: Micros(amount),
                })
            },
        )
        .collect()
}

/// The tax summary stored by [`encode_taxes`].
pub(crate) fn decode_taxes(text: &str) -> Result<Vec<TaxSummary>, StoreError> {
    let rows: Vec<(String, u32, i64, i64)> =
        serde_json::from_str(text).map_err(|e| corrupt("taxes", e))?;
    rows.into_iter()
        .map(|(name, ppm, base, tax)| {
            Ok(TaxSummary {
                rate: TaxRate::from_ppm(&name, ppm).map_err(|e| corrupt("tax", e))?,
                base: Micros(base),
                tax: Micros(tax),
            })
        })
        .collect()
}
