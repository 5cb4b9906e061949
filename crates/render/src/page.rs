//! What an invoice page shows, formatted and translated: the one input of both templates.
//!
//! Every decision about wording and number formatting is taken here, in Rust, so the HTML and
//! the typst templates only lay out strings and cannot disagree about what they print. The
//! page is serialized to JSON for typst; its strings are data there, never markup.

use toll_billing::capital::capitals;
use toll_billing::invoice::TaxSummary;
use toll_billing::{InvoiceDocument, InvoiceKind, Lang, LineKind, Party, TaxMode};
use toll_core::Currency;

use crate::error::RenderError;
use crate::format;
use crate::labels::{self, fill, words};

#[derive(Debug, serde::Serialize)]
pub struct Page {
    /// The page's language as HTML's `lang` and typst's `text(lang)` take it.
    pub lang: &'static str,
    /// HTML's `lang` attribute: `zh-CN` or `en`.
    pub html_lang: &'static str,
    /// typst's `text(region)`: `cn` for Chinese, none for English.
    pub region: Option<&'static str>,
    /// "Invoice" or "Credit note".
    pub title: &'static str,
    /// DRAFT or VOID, printed across the page and beside the title.
    pub mark: Option<&'static str>,
    /// The invoice number, or the draft mark where there is none yet.
    pub number: String,
    pub issue_date: Ymd,
    pub seller: PartyView,
    pub buyer: PartyView,
    /// Invoice number, dates, account, status: label and value.
    pub meta: Vec<Row>,
    /// Column heads: description, quantity, tax, amount.
    pub heads: [String; 4],
    pub lines: Vec<LineView>,
    /// Subtotal, tax, total (exclusive) or total (inclusive); the last row is the total.
    pub totals: Vec<Row>,
    /// Label and amount in Chinese capitals, on Chinese invoices in CNY.
    pub capitals: Option<Row>,
    /// "of which VAT 9%": the tax contained in inclusive prices.
    pub of_which: Vec<Row>,
    pub note: Option<Row>,
    /// Whether prices include tax, and the currency.
    pub footer: String,
}

/// A date for typst's `datetime` (the PDF's creation date is the issue date, so that the same
/// invoice gives the same file).
#[derive(Debug, serde::Serialize)]
pub struct Ymd {
    pub year: i16,
    pub month: i8,
    pub day: i8,
}

#[derive(Debug, serde::Serialize)]
pub struct PartyView {
    /// "From" or "Bill to".
    pub role: &'static str,
    pub name: String,
    pub address: Vec<String>,
    /// "Tax ID: …", where there is one.
    pub tax_id: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub label: String,
    pub value: String,
}

#[derive(Debug, serde::Serialize)]
pub struct LineView {
    pub title: String,
    /// Printed small beneath the title: the label or detail not in the title, calls counted.
    pub sub: Option<String>,
    pub quantity: String,
    pub tax: String,
    pub amount: String,
}

fn party(p: &Party, role: &'static str, lang: Lang) -> PartyView {
    let w = words(lang);
    let sep = if lang == Lang::Zh { "：" } else { ": " };
    PartyView {
        role,
        name: p.name.clone(),
        address: p.address.clone(),
        tax_id: p.tax_id.as_ref().map(|t| format!("{}{sep}{t}", w.tax_id)),
    }
}

fn row(label: impl Into<String>, value: impl Into<String>) -> Row {
    Row {
        label: label.into(),
        value: value.into(),
    }
}

/// The tax summary entry a tax line shows the base of.
fn summary_of<'a>(taxes: &'a [TaxSummary], rate_ppm: u32, name: &str) -> Option<&'a TaxSummary> {
    taxes
        .iter()
        .find(|t| t.rate.ppm() == rate_ppm && t.rate.name() == name)
}

impl Page {
    /// The page of `doc`; refuses an invoice that breaks its invariants.
    pub fn new(doc: &InvoiceDocument) -> Result<Page, RenderError> {
        let inv = &doc.invoice;
        inv.check()?;
        let lang = doc.lang;
        let w = words(lang);
        let cur: Currency = inv.currency;
        let money = |m| format::amount(m, cur);

        let title = if doc.is_credit_note() {
            w.credit_note
        } else {
            w.invoice
        };
        let mark = if doc.number.is_none() || doc.status == "draft" {
            Some(w.draft)
        } else if doc.status == "void" {
            Some(w.void)
        } else {
            None
        };
        let number = doc.number.clone().unwrap_or_else(|| w.draft.to_string());

        let mut meta = vec![
            row(w.number, number.clone()),
            row(w.issue_date, format::date(doc.issue_date, lang)),
            row(
                w.period,
                format::period(doc.period_start, doc.period_last_day, lang),
            ),
            row(w.account, doc.account.clone()),
            row(w.status, labels::status(&doc.status, lang)),
        ];
        if let InvoiceKind::CreditNote { corrects } = &inv.kind {
            meta.push(row(w.corrects, corrects.to_string()));
        }

        let lines = inv
            .lines
            .iter()
            .map(|l| {
                let unit = l.quantity.map(|q| q.unit);
                let (title, mut under) =
                    labels::line_title(l.kind, &l.label, l.detail.as_deref(), unit, lang);
                if let Some(n) = l.count {
                    under.push(format::events(n, unit, lang));
                }
                let rate = l.tax.as_ref();
                if l.kind == LineKind::Tax
                    && let Some(r) = rate
                    && let Some(s) = summary_of(&inv.taxes, r.ppm(), r.name())
                {
                    under.push(format!("{} {}", w.tax_base, money(s.base)));
                }
                LineView {
                    title,
                    sub: (!under.is_empty()).then(|| under.join(" · ")),
                    quantity: l
                        .quantity
                        .map(|q| format::quantity(q, lang))
                        .unwrap_or_default(),
                    tax: rate.map_or_else(|| w.no_tax.to_string(), |r| format::percent(r.ppm())),
                    amount: money(l.amount),
                }
            })
            .collect();

        let totals = match inv.tax_mode {
            TaxMode::Exclusive => vec![
                row(w.subtotal, money(inv.subtotal)),
                row(w.tax_total, money(inv.tax_total)),
                row(w.total, money(inv.total)),
            ],
            TaxMode::Inclusive => vec![row(w.total, money(inv.total))],
        };
        let of_which = match inv.tax_mode {
            TaxMode::Inclusive => inv
                .taxes
                .iter()
                .map(|t| {
                    let name = labels::tax_name(t.rate.name(), lang);
                    let pct = format::percent(t.rate.ppm());
                    row(format!("{} {name} {pct}", w.of_which), money(t.tax))
                })
                .collect(),
            TaxMode::Exclusive => Vec::new(),
        };
        let capitals = if lang == Lang::Zh && cur == Currency::CNY {
            Some(row(w.capitals, capitals(inv.total)?))
        } else {
            None
        };
        let note = doc.note.as_ref().map(|n| row(w.note, n.clone()));
        let tax_note = match inv.tax_mode {
            TaxMode::Inclusive => w.prices_include_tax,
            TaxMode::Exclusive => w.prices_exclude_tax,
        };
        let gap = if lang == Lang::Zh { "" } else { " " };
        let footer = format!("{}{gap}{tax_note}", fill(w.amounts_in, cur.as_str()));

        Ok(Page {
            lang: match lang {
                Lang::Zh => "zh",
                Lang::En => "en",
            },
            html_lang: lang.as_str(),
            region: (lang == Lang::Zh).then_some("cn"),
            title,
            mark,
            number,
            issue_date: Ymd {
                year: doc.issue_date.year(),
                month: doc.issue_date.month(),
                day: doc.issue_date.day(),
            },
            seller: party(&doc.seller, w.seller, lang),
            buyer: party(&doc.buyer, w.buyer, lang),
            meta,
            heads: [
                w.description.to_string(),
                w.quantity.to_string(),
                w.tax_rate.to_string(),
                fill(w.amount_in, cur.as_str()),
            ],
            lines,
            totals,
            capitals,
            of_which,
            note,
            footer,
        })
    }
}
