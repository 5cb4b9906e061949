//! What a rendered invoice shows besides its lines: who issues it to whom, when, and in which
//! language. Renderers (HTML, PDF) take an [`InvoiceDocument`] and nothing else, so the same
//! document gives the same page in every format.

use jiff::civil::Date;

use crate::invoice::{Invoice, InvoiceKind};

/// The language an invoice is printed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Lang {
    #[serde(rename = "zh-CN")]
    Zh,
    #[serde(rename = "en")]
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zh-CN" | "zh" => Ok(Lang::Zh),
            "en" => Ok(Lang::En),
            other => Err(format!("{other:?} is not a language: zh-CN or en")),
        }
    }
}

/// The issuer (the tenant) or the customer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Party {
    pub name: String,
    /// Postal address lines, as they are to be printed.
    pub address: Vec<String>,
    /// VAT registration or unified social credit code, where there is one.
    pub tax_id: Option<String>,
}

/// Everything an invoice page shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InvoiceDocument {
    /// `INV-2026-000042`, or `None` for a draft (printed as DRAFT / 草稿).
    pub number: Option<String>,
    pub issue_date: Date,
    /// The first and last day of the period billed.
    pub period_start: Date,
    pub period_last_day: Date,
    pub seller: Party,
    pub buyer: Party,
    /// The billing account's code.
    pub account: String,
    /// draft, finalized, paid or void.
    pub status: String,
    pub lang: Lang,
    /// Printed below the lines (a credit note's reason).
    pub note: Option<String>,
    pub invoice: Invoice,
}

impl InvoiceDocument {
    pub fn is_credit_note(&self) -> bool {
        matches!(self.invoice.kind, InvoiceKind::CreditNote { .. })
    }
}
