//! Invoice rendering: an [`InvoiceDocument`] as a standalone HTML page or as a PDF, in Chinese
//! (zh-CN) or English.
//!
//! Both formats print the same page model — the document with its amounts, dates and
//! quantities already formatted and its line kinds named in the invoice's language — so an
//! invoice reads the same on screen and on paper. Amounts are formatted from their integer
//! micro-units, never through floating point.
//!
//! - [`html`]: a printable page with inline CSS and no external assets; every customer string
//!   is HTML-escaped.
//! - [`pdf`] (feature `pdf`, on by default): typeset by typst with fonts compiled into the
//!   binary (Noto Sans CJK SC, subset to GB2312 and Latin; see `fonts/README.md`). The
//!   document's data reaches the typst template as JSON, never as markup, so no customer
//!   string can change the layout.
//! - [`check_glyphs`]: typst draws a character that no font has as nothing at all, so a PDF
//!   would silently lose part of a name; [`pdf`] refuses such a document instead, naming the
//!   field and the character.

mod error;
mod fonts;
mod format;
mod glyphs;
mod html;
mod labels;
mod page;
#[cfg(feature = "pdf")]
mod pdf;

pub use error::RenderError;
pub use glyphs::check_glyphs;
pub use html::html;
#[cfg(feature = "pdf")]
pub use pdf::pdf;

#[doc(no_inline)]
pub use toll_billing::InvoiceDocument;

/// The golden tests' scenario invoices, for unit tests that need real documents.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod scenarios;
