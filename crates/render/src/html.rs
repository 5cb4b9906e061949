//! The invoice as one standalone HTML page.
//!
//! Rendered with askama: the template is compiled into the binary and checked at build time,
//! and every value is HTML-escaped, because names, addresses and labels come from customers
//! and tenants. The page carries its CSS inline and loads nothing, so it can be mailed, saved
//! or printed (A4) as it is.

use askama::Template;
use toll_billing::InvoiceDocument;

use crate::error::RenderError;
use crate::page::Page;

#[derive(Debug, Template)]
#[template(path = "invoice.html")]
struct HtmlPage<'a> {
    p: &'a Page,
}

/// The invoice as a complete HTML page (UTF-8), in the document's language.
pub fn html(doc: &InvoiceDocument) -> Result<String, RenderError> {
    let page = Page::new(doc)?;
    Ok(HtmlPage { p: &page }.render()?)
}
