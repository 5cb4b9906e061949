//! Invoices composed from exact charges.
//!
//! The store sums an account's period into [`Charge`]s (fees, proration, allowance use, usage by
//! destination, overage, add-ons, one-off charges, discounts, late usage from earlier periods)
//! at the ledger's micro-unit precision. [`Invoice::compose`] turns them into printable lines:
//!
//! 1. every line is rounded to the currency's minor unit with the invoice's named rounding;
//! 2. the exact sum of all charges is rounded once; where the rounded lines do not add up to it,
//!    the difference is its own line (`rounding`), so the customer pays the exactly rounded sum
//!    and the lines still add up;
//! 3. tax is computed once per rate over the exact amounts of the lines it applies to: added on
//!    top as `tax` lines when prices exclude it, shown as *of which* when they include it.
//!
//! **Invariant:** `total` equals the sum of the lines, every amount is a whole number of minor
//! units, and the tax lines agree with the tax summary. [`Invoice::check`] asserts it; it runs
//! when an invoice is composed and again whenever one is loaded ([`Invoice::from_parts`]), so a
//! row edited behind Toll's back is an error, not a wrong bill.

use toll_core::rounding::fixed_ratio_round;
use toll_core::{Currency, Micros, RoundingMethod};

use crate::number::InvoiceNumber;
use crate::tax::{PPM, TaxMode, TaxRate};

/// The most lines one invoice holds (calls are grouped by destination, so real invoices have
/// tens): a bound on what one bill-run step allocates and renders.
pub const MAX_LINES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("an invoice holds at most {MAX_LINES} lines, not {0}")]
    TooManyLines(usize),
    #[error("line {line}: {kind} lines are computed by the invoice, not given")]
    Reserved { line: usize, kind: &'static str },
    #[error("line {line}: label must be 1 to 200 characters")]
    BadLabel { line: usize },
    #[error("amount arithmetic overflowed")]
    Overflow,
    #[error("invoice does not add up: total {total} but lines sum to {lines}")]
    TotalMismatch { total: Micros, lines: Micros },
    #[error("line {line}: {amount} is not a whole number of minor units of {currency}")]
    NotRounded {
        line: usize,
        amount: Micros,
        currency: Currency,
    },
    #[error("tax lines and tax summary disagree: {0}")]
    TaxMismatch(String),
    #[error("the rounding line {0} is larger than the lines' rounding can produce")]
    RoundingTooLarge(Micros),
    #[error("{0:?} is not an invoice line kind")]
    BadKind(String),
    #[error("a credit note credits: its total {0} must not be positive")]
    PositiveCredit(Micros),
}

/// What a line is for; renderers name it in the invoice's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A plan's recurring fee for the period (prorated when the subscription started, ended
    /// or changed inside it).
    RecurringFee,
    /// The credit and charge of a plan change inside the period.
    Proration,
    /// Included minutes, messages or data used: a quantity, at no charge.
    AllowanceUse,
    /// Usage beyond the allowance priced by the plan's overage model, per usage type.
    Overage,
    /// Calls (or messages, sessions) priced by the tariff, grouped by destination.
    Usage,
    /// An add-on pack bought in the period.
    AddOn,
    /// A one-off charge posted by an operator.
    OneOff,
    /// A discount (negative).
    Discount,
    /// A correction of an earlier charge, e.g. re-rated calls.
    Adjustment,
    /// Usage of an earlier, already invoiced period that arrived after its invoice was
    /// finalized; `detail` names that period.
    LateUsage,
    /// Tax added on top (exclusive prices only); computed by the invoice.
    Tax,
    /// The difference between the rounded lines and the rounded exact total; computed by the
    /// invoice.
    Rounding,
}

impl LineKind {
    pub const ALL: [LineKind; 12] = [
        LineKind::RecurringFee,
        LineKind::Proration,
        LineKind::AllowanceUse,
        LineKind::Overage,
        LineKind::Usage,
        LineKind::AddOn,
        LineKind::OneOff,
        LineKind::Discount,
        LineKind::Adjustment,
        LineKind::LateUsage,
        LineKind::Tax,
        LineKind::Rounding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::RecurringFee => "recurring_fee",
            LineKind::Proration => "proration",
            LineKind::AllowanceUse => "allowance_use",
            LineKind::Overage => "overage",
            LineKind::Usage => "usage",
            LineKind::AddOn => "add_on",
            LineKind::OneOff => "one_off",
            LineKind::Discount => "discount",
            LineKind::Adjustment => "adjustment",
            LineKind::LateUsage => "late_usage",
            LineKind::Tax => "tax",
            LineKind::Rounding => "rounding",
        }
    }

    /// Lines the invoice computes itself.
    fn is_computed(self) -> bool {
        matches!(self, LineKind::Tax | LineKind::Rounding)
    }
}

impl std::str::FromStr for LineKind {
    type Err = InvoiceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LineKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| InvoiceError::BadKind(s.to_string()))
    }
}

/// What a quantity counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantityUnit {
    Seconds,
    Messages,
    Bytes,
    Units,
    Days,
    Events,
}

impl QuantityUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            QuantityUnit::Seconds => "seconds",
            QuantityUnit::Messages => "messages",
            QuantityUnit::Bytes => "bytes",
            QuantityUnit::Units => "units",
            QuantityUnit::Days => "days",
            QuantityUnit::Events => "events",
        }
    }
}

impl std::str::FromStr for QuantityUnit {
    type Err = InvoiceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "seconds" => QuantityUnit::Seconds,
            "messages" => QuantityUnit::Messages,
            "bytes" => QuantityUnit::Bytes,
            "units" => QuantityUnit::Units,
            "days" => QuantityUnit::Days,
            "events" => QuantityUnit::Events,
            other => return Err(InvoiceError::BadKind(other.to_string())),
        })
    }
}

/// How much of something a line is for (180 seconds, 12 calls, 15 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Quantity {
    pub value: i64,
    pub unit: QuantityUnit,
}

/// One exact amount the invoice is composed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub kind: LineKind,
    /// What it is: the plan's name, the destination, the usage type.
    pub label: String,
    /// A qualifier: the period late usage belongs to, a plan change's from → to.
    pub detail: Option<String>,
    pub quantity: Option<Quantity>,
    /// How many events (calls, messages) it sums, where it sums events.
    pub count: Option<i64>,
    /// Exact, at the ledger's precision; negative for credits and discounts.
    pub amount: Micros,
    /// The tax that applies; `None` for amounts outside the scope of tax.
    pub tax: Option<TaxRate>,
}

/// A printed line: the charge with its amount rounded to minor units.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceLine {
    pub kind: LineKind,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tax: Option<TaxRate>,
    /// The exact amount it was rounded from (what tax is computed on).
    pub exact: Micros,
    /// What the customer pays for this line.
    pub amount: Micros,
}

/// Tax per rate: for exclusive prices the net it was computed on; for inclusive ones the gross
/// it is contained in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TaxSummary {
    pub rate: TaxRate,
    pub base: Micros,
    pub tax: Micros,
}

/// An invoice, or a credit note correcting one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InvoiceKind {
    Invoice,
    CreditNote { corrects: InvoiceNumber },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Invoice {
    pub kind: InvoiceKind,
    pub currency: Currency,
    pub tax_mode: TaxMode,
    pub rounding: RoundingMethod,
    pub lines: Vec<InvoiceLine>,
    pub taxes: Vec<TaxSummary>,
    /// Sum of every line but the tax lines.
    pub subtotal: Micros,
    /// Tax in the total: added (exclusive) or contained (inclusive).
    pub tax_total: Micros,
    pub total: Micros,
}

/// Micro-units in one minor unit of `currency` (10,000 for CNY's fen).
pub fn minor_step(currency: Currency) -> i64 {
    10_i64.pow(6 - currency.minor_units().min(6))
}

/// `num / den` in micro-units, rounded to whole minor units of `currency` with `method`.
fn round_ratio(
    num: i128,
    den: i128,
    currency: Currency,
    method: RoundingMethod,
) -> Result<Micros, InvoiceError> {
    let minor = currency.minor_units().min(6);
    let q = fixed_ratio_round(num, den, 6, minor, method).ok_or(InvoiceError::Overflow)?;
    q.checked_mul(i128::from(minor_step(currency)))
        .and_then(|m| i64::try_from(m).ok())
        .map(Micros)
        .ok_or(InvoiceError::Overflow)
}

fn to_micros(v: i128) -> Result<Micros, InvoiceError> {
    i64::try_from(v)
        .map(Micros)
        .map_err(|_| InvoiceError::Overflow)
}

impl Invoice {
    /// Composes an invoice (or a partial credit note) from exact charges, in their order.
    pub fn compose(
        kind: InvoiceKind,
        currency: Currency,
        tax_mode: TaxMode,
        rounding: RoundingMethod,
        charges: Vec<Charge>,
    ) -> Result<Invoice, InvoiceError> {
        // Room for a rounding line and a few tax lines.
        if charges.len() > MAX_LINES - 8 {
            return Err(InvoiceError::TooManyLines(charges.len()));
        }
        let mut lines = Vec::with_capacity(charges.len() + 4);
        let mut exact_sum: i128 = 0;
        let mut rounded_sum: i128 = 0;
        // Exact base per tax rate, in first-seen order (an invoice has one or two rates).
        let mut bases: Vec<(TaxRate, i128)> = Vec::new();
        for (i, c) in charges.into_iter().enumerate() {
            let line = i + 1;
            if c.kind.is_computed() {
                return Err(InvoiceError::Reserved {
                    line,
                    kind: c.kind.as_str(),
                });
            }
            if c.label.trim().is_empty() || c.label.chars().count() > 200 {
                return Err(InvoiceError::BadLabel { line });
            }
            let amount = round_ratio(i128::from(c.amount.0), 1, currency, rounding)?;
            exact_sum += i128::from(c.amount.0);
            rounded_sum += i128::from(amount.0);
            // A line of no money (allowance use) adds nothing to a tax base and, alone, makes
            // no tax line of 0.
            if let Some(rate) = c.tax.as_ref().filter(|_| c.amount != Micros::ZERO) {
                match bases.iter_mut().find(|(r, _)| r == rate) {
                    Some((_, b)) => *b += i128::from(c.amount.0),
                    None => bases.push((rate.clone(), i128::from(c.amount.0))),
                }
            }
            lines.push(InvoiceLine {
                kind: c.kind,
                label: c.label,
                detail: c.detail,
                quantity: c.quantity,
                count: c.count,
                tax: c.tax,
                exact: c.amount,
                amount,
            });
        }
        let target = round_ratio(exact_sum, 1, currency, rounding)?;
        let difference = to_micros(i128::from(target.0) - rounded_sum)?;
        if difference != Micros::ZERO {
            lines.push(InvoiceLine {
                kind: LineKind::Rounding,
                label: "rounding".to_string(),
                detail: None,
                quantity: None,
                count: None,
                tax: None,
                exact: difference,
                amount: difference,
            });
        }
        let mut taxes = Vec::with_capacity(bases.len());
        for (rate, base) in bases {
            let ppm = i128::from(rate.ppm());
            let num = base.checked_mul(ppm).ok_or(InvoiceError::Overflow)?;
            let (den, summary_base) = match tax_mode {
                TaxMode::Exclusive => (i128::from(PPM), base),
                TaxMode::Inclusive => (i128::from(PPM) + ppm, base),
            };
            let tax = round_ratio(num, den, currency, rounding)?;
            let base = round_ratio(summary_base, 1, currency, rounding)?;
            if tax_mode == TaxMode::Exclusive {
                lines.push(InvoiceLine {
                    kind: LineKind::Tax,
                    label: rate.name().to_string(),
                    detail: None,
                    quantity: None,
                    count: None,
                    tax: Some(rate.clone()),
                    exact: tax,
                    amount: tax,
                });
            }
            taxes.push(TaxSummary { rate, base, tax });
        }
        let mut invoice = Invoice {
            kind,
            currency,
            tax_mode,
            rounding,
            lines,
            taxes,
            subtotal: Micros::ZERO,
            tax_total: Micros::ZERO,
            total: Micros::ZERO,
        };
        invoice.sum_up()?;
        invoice.check()?;
        Ok(invoice)
    }

    /// An invoice read back from storage: the same checks as a composed one.
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        kind: InvoiceKind,
        currency: Currency,
        tax_mode: TaxMode,
        rounding: RoundingMethod,
        lines: Vec<InvoiceLine>,
        taxes: Vec<TaxSummary>,
        total: Micros,
    ) -> Result<Invoice, InvoiceError> {
        let mut invoice = Invoice {
            kind,
            currency,
            tax_mode,
            rounding,
            lines,
            taxes,
            subtotal: Micros::ZERO,
            tax_total: Micros::ZERO,
            total: Micros::ZERO,
        };
        invoice.sum_up()?;
        if invoice.total != total {
            return Err(InvoiceError::TotalMismatch {
                total,
                lines: invoice.total,
            });
        }
        invoice.check()?;
        Ok(invoice)
    }

    /// A credit note that reverses `original` entirely: every line, tax and rounding negated,
    /// so the two sum to exactly zero whatever the rounding method.
    pub fn full_credit(original: &Invoice, number: InvoiceNumber) -> Result<Invoice, InvoiceError> {
        let neg = |m: Micros| m.0.checked_neg().map(Micros).ok_or(InvoiceError::Overflow);
        let lines = original
            .lines
            .iter()
            .map(|l| {
                Ok(InvoiceLine {
                    exact: neg(l.exact)?,
                    amount: neg(l.amount)?,
                    ..l.clone()
                })
            })
            .collect::<Result<Vec<_>, InvoiceError>>()?;
        let taxes = original
            .taxes
            .iter()
            .map(|t| {
                Ok(TaxSummary {
                    rate: t.rate.clone(),
                    base: neg(t.base)?,
                    tax: neg(t.tax)?,
                })
            })
            .collect::<Result<Vec<_>, InvoiceError>>()?;
        let mut credit = Invoice {
            kind: InvoiceKind::CreditNote { corrects: number },
            lines,
            taxes,
            ..original.clone()
        };
        credit.sum_up()?;
        credit.check()?;
        Ok(credit)
    }

    fn sum_up(&mut self) -> Result<(), InvoiceError> {
        let (mut subtotal, mut tax) = (0i128, 0i128);
        for l in &self.lines {
            if l.kind == LineKind::Tax {
                tax += i128::from(l.amount.0);
            } else {
                subtotal += i128::from(l.amount.0);
            }
        }
        self.subtotal = to_micros(subtotal)?;
        self.total = to_micros(subtotal + tax)?;
        self.tax_total = match self.tax_mode {
            TaxMode::Exclusive => to_micros(tax)?,
            TaxMode::Inclusive => to_micros(self.taxes.iter().map(|t| i128::from(t.tax.0)).sum())?,
        };
        Ok(())
    }

    /// The invariants every invoice holds; see the module documentation.
    pub fn check(&self) -> Result<(), InvoiceError> {
        if self.lines.len() > MAX_LINES {
            return Err(InvoiceError::TooManyLines(self.lines.len()));
        }
        let step = minor_step(self.currency);
        let mut sum: i128 = 0;
        let mut priced_lines: i64 = 0;
        let mut rounding: Option<Micros> = None;
        let mut tax_lines: Vec<(&TaxRate, Micros)> = Vec::new();
        for (i, l) in self.lines.iter().enumerate() {
            if l.amount.0 % step != 0 {
                return Err(InvoiceError::NotRounded {
                    line: i + 1,
                    amount: l.amount,
                    currency: self.currency,
                });
            }
            sum += i128::from(l.amount.0);
            match l.kind {
                LineKind::Rounding => {
                    if rounding.replace(l.amount).is_some() {
                        return Err(InvoiceError::TaxMismatch(
                            "more than one rounding line".into(),
                        ));
                    }
                }
                LineKind::Tax => {
                    let rate = l.tax.as_ref().ok_or_else(|| {
                        InvoiceError::TaxMismatch(format!("tax line {} has no rate", i + 1))
                    })?;
                    tax_lines.push((rate, l.amount));
                }
                _ => priced_lines += 1,
            }
        }
        let sum = to_micros(sum)?;
        if sum != self.total {
            return Err(InvoiceError::TotalMismatch {
                total: self.total,
                lines: sum,
            });
        }
        // Each line's rounding moves it by less than one step, so their sum can differ from the
        // rounded exact total by at most one step per line.
        if let Some(r) = rounding
            && i128::from(r.0).abs() > i128::from(priced_lines) * i128::from(step)
        {
            return Err(InvoiceError::RoundingTooLarge(r));
        }
        match self.tax_mode {
            TaxMode::Exclusive => {
                let summary: Vec<(&TaxRate, Micros)> =
                    self.taxes.iter().map(|t| (&t.rate, t.tax)).collect();
                if summary != tax_lines {
                    return Err(InvoiceError::TaxMismatch(
                        "tax lines differ from the tax summary".into(),
                    ));
                }
            }
            TaxMode::Inclusive => {
                if !tax_lines.is_empty() {
                    return Err(InvoiceError::TaxMismatch(
                        "tax lines on an invoice whose prices include tax".into(),
                    ));
                }
            }
        }
        if let InvoiceKind::CreditNote { .. } = self.kind
            && self.total.0 > 0
        {
            return Err(InvoiceError::PositiveCredit(self.total));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    fn m(s: &str) -> Micros {
        s.parse().unwrap()
    }

    fn vat(p: i64) -> TaxRate {
        TaxRate::percent("VAT", Decimal::from(p)).unwrap()
    }

    fn charge(kind: LineKind, label: &str, amount: &str, tax: Option<TaxRate>) -> Charge {
        Charge {
            kind,
            label: label.into(),
            detail: None,
            quantity: None,
            count: None,
            amount: m(amount),
            tax,
        }
    }

    fn compose(mode: TaxMode, charges: Vec<Charge>) -> Invoice {
        Invoice::compose(
            InvoiceKind::Invoice,
            Currency::CNY,
            mode,
            RoundingMethod::Middle,
            charges,
        )
        .unwrap()
    }

    #[test]
    fn the_rounding_difference_is_a_line_and_the_lines_add_up() {
        // Three calls of 0.333333 each: every line prints 0.33, the exact sum 0.999999 rounds to
        // 1.00, so a rounding line of +0.01 makes the lines add up to what is owed.
        let calls = (0..3)
            .map(|i| charge(LineKind::Usage, &format!("dest {i}"), "0.333333", None))
            .collect();
        let inv = compose(TaxMode::Inclusive, calls);
        let amounts: Vec<String> = inv.lines.iter().map(|l| l.amount.to_string()).collect();
        assert_eq!(amounts, ["0.33", "0.33", "0.33", "0.01"]);
        assert_eq!(inv.lines[3].kind, LineKind::Rounding);
        assert_eq!(inv.total, m("1"));
    }

    #[test]
    fn exclusive_tax_is_added_once_per_rate() {
        let inv = compose(
            TaxMode::Exclusive,
            vec![
                charge(LineKind::RecurringFee, "plus", "58", Some(vat(9))),
                charge(LineKind::Usage, "mobile", "12.345", Some(vat(9))),
                charge(LineKind::AddOn, "data 1 GB", "10", Some(vat(6))),
            ],
        );
        // 9 % of 70.345 = 6.33105 → 6.33; 6 % of 10 = 0.60.
        let tax: Vec<(String, String)> = inv
            .taxes
            .iter()
            .map(|t| (t.base.to_string(), t.tax.to_string()))
            .collect();
        assert_eq!(
            tax,
            [("70.35".into(), "6.33".into()), ("10".into(), "0.6".into())]
        );
        assert_eq!(inv.subtotal, m("80.35"));
        assert_eq!(inv.tax_total, m("6.93"));
        assert_eq!(inv.total, m("87.28"));
        assert_eq!(
            inv.lines.iter().filter(|l| l.kind == LineKind::Tax).count(),
            2
        );
    }

    #[test]
    fn inclusive_tax_is_shown_as_contained() {
        let inv = compose(
            TaxMode::Inclusive,
            vec![charge(LineKind::RecurringFee, "plus", "109", Some(vat(9)))],
        );
        // 109 includes 9 % VAT: net 100, tax 9.
        assert_eq!(inv.total, m("109"));
        assert_eq!(inv.tax_total, m("9"));
        assert_eq!(inv.taxes[0].base, m("109"));
        assert!(inv.lines.iter().all(|l| l.kind != LineKind::Tax));
    }

    #[test]
    fn a_full_credit_note_mirrors_the_invoice() {
        let inv = Invoice::compose(
            InvoiceKind::Invoice,
            Currency::CNY,
            TaxMode::Exclusive,
            RoundingMethod::Up,
            vec![
                charge(LineKind::Usage, "a", "0.001", Some(vat(6))),
                charge(LineKind::Usage, "b", "0.001", Some(vat(6))),
            ],
        )
        .unwrap();
        let n: InvoiceNumber = "INV-2026-000001".parse().unwrap();
        let cn = Invoice::full_credit(&inv, n).unwrap();
        assert_eq!(cn.total.0, -inv.total.0);
        assert!(cn.total.0 < 0);
        assert_eq!(cn.lines.len(), inv.lines.len());
    }

    #[test]
    fn loading_rejects_an_invoice_that_does_not_add_up() {
        let inv = compose(
            TaxMode::Exclusive,
            vec![charge(LineKind::OneOff, "setup", "20", Some(vat(6)))],
        );
        let mut lines = inv.lines.clone();
        lines[0].amount = m("19");
        let err = Invoice::from_parts(
            inv.kind.clone(),
            inv.currency,
            inv.tax_mode,
            inv.rounding,
            lines,
            inv.taxes.clone(),
            inv.total,
        )
        .unwrap_err();
        assert!(matches!(err, InvoiceError::TotalMismatch { .. }), "{err}");
        let mut lines = inv.lines.clone();
        lines[1].amount = m("1.3");
        let err = Invoice::from_parts(
            inv.kind.clone(),
            inv.currency,
            inv.tax_mode,
            inv.rounding,
            lines,
            inv.taxes.clone(),
            m("21.3"),
        )
        .unwrap_err();
        assert!(matches!(err, InvoiceError::TaxMismatch(_)), "{err}");
        let back = Invoice::from_parts(
            inv.kind.clone(),
            inv.currency,
            inv.tax_mode,
            inv.rounding,
            inv.lines.clone(),
            inv.taxes.clone(),
            inv.total,
        )
        .unwrap();
        assert_eq!(back, inv);
    }

    #[test]
    fn computed_kinds_and_empty_labels_are_refused() {
        for (c, want) in [
            (
                charge(LineKind::Tax, "VAT", "1", None),
                "line 1: tax lines are computed by the invoice, not given",
            ),
            (
                charge(LineKind::OneOff, " ", "1", None),
                "line 1: label must be 1 to 200 characters",
            ),
        ] {
            let e = Invoice::compose(
                InvoiceKind::Invoice,
                Currency::CNY,
                TaxMode::Exclusive,
                RoundingMethod::Middle,
                vec![c],
            )
            .unwrap_err();
            assert_eq!(e.to_string(), want);
        }
    }

    #[test]
    fn zero_decimal_currencies_round_to_whole_units() {
        let inv = Invoice::compose(
            InvoiceKind::Invoice,
            "JPY".parse::<Currency>().unwrap(),
            TaxMode::Exclusive,
            RoundingMethod::Middle,
            vec![charge(LineKind::Usage, "calls", "100.5", Some(vat(10)))],
        )
        .unwrap();
        // 100.5 → 101 (half away from zero); tax 10.05 → 10; total 111 = 101 + 10, and the
        // exact 100.5 rounds to the same 101, so no rounding line.
        assert_eq!(inv.total, m("111"));
        assert_eq!(inv.lines.len(), 2);
    }

    proptest::proptest! {
        /// Whatever the charges, rounding and tax mode: the lines add up to the total, every
        /// amount is whole fen, and the total is the rounded exact sum plus the rounded tax.
        #[test]
        fn lines_always_add_up(
            amounts in proptest::collection::vec(-5_000_000_000i64..5_000_000_000, 0..40),
            rates in proptest::collection::vec(0u32..3, 0..40),
            exclusive in proptest::bool::ANY,
            method in 0u8..3,
        ) {
            let rounding = [RoundingMethod::Up, RoundingMethod::Middle, RoundingMethod::Down]
                [method as usize];
            let mode = if exclusive { TaxMode::Exclusive } else { TaxMode::Inclusive };
            let rate_of = |k: u32| match k { 0 => None, 1 => Some(vat(6)), _ => Some(vat(9)) };
            let charges: Vec<Charge> = amounts
                .iter()
                .enumerate()
                .map(|(i, a)| Charge {
                    kind: LineKind::Usage,
                    label: format!("l{i}"),
                    detail: None,
                    quantity: None,
                    count: None,
                    amount: Micros(*a),
                    tax: rate_of(rates.get(i).copied().unwrap_or(0)),
                })
                .collect();
            let inv = Invoice::compose(InvoiceKind::Invoice, Currency::CNY, mode, rounding, charges)
                .unwrap();
            let sum: i64 = inv.lines.iter().map(|l| l.amount.0).sum();
            proptest::prop_assert_eq!(sum, inv.total.0);
            proptest::prop_assert!(inv.lines.iter().all(|l| l.amount.0 % 10_000 == 0));
            let exact: i128 = amounts.iter().map(|a| i128::from(*a)).sum();
            let want_sub = round_ratio(exact, 1, Currency::CNY, rounding).unwrap();
            proptest::prop_assert_eq!(inv.subtotal, want_sub);
            if mode == TaxMode::Exclusive {
                proptest::prop_assert_eq!(inv.total.0, inv.subtotal.0 + inv.tax_total.0);
            } else {
                proptest::prop_assert_eq!(inv.total, inv.subtotal);
            }
        }
    }
}
