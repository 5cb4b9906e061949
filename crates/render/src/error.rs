//! Why an invoice could not be rendered.

use toll_billing::InvoiceError;
use toll_billing::capital::CapitalError;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The invoice breaks its own invariants (lines not adding up, amounts not rounded): a
    /// renderer prints what it is given, so it refuses rather than print a wrong bill.
    #[error("the invoice does not hold together: {0}")]
    Invoice(#[from] InvoiceError),
    /// A character that the embedded fonts cannot draw; `field` names where it is, e.g.
    /// `buyer.name` or `lines[3].label` (indices count from 1, as invoice lines do).
    #[error("{field}: character {ch:?} (U+{code:04X}) is not in the invoice fonts", code = u32::from(*.ch))]
    MissingGlyph { field: String, ch: char },
    /// The total in Chinese capitals could not be written (beyond 1 万亿).
    #[error("amount in capitals: {0}")]
    Capitals(#[from] CapitalError),
    /// An embedded font could not be parsed (a corrupted build).
    #[error("embedded font {0} cannot be read")]
    Font(&'static str),
    /// The HTML template failed to render (it is checked at build time, so: out of memory or
    /// a formatting error).
    #[error("HTML template: {0}")]
    Html(#[from] askama::Error),
    /// The page could not be serialized for the PDF template.
    #[error("page data: {0}")]
    Json(#[from] serde_json::Error),
    /// typst's diagnostics, one per line.
    #[error("PDF typesetting failed: {0}")]
    Typeset(String),
}
