//! Toll's billing domain, free of I/O: what a bill run computes once the store has summed an
//! account's period.
//!
//! - [`cycle`]: bill cycles (calendar month or anniversary) and the period a label such as
//!   `2026-10` names, as dates and as instants in the account's time zone.
//! - [`invoice`]: an invoice composed from exact charges: lines rounded to the currency's minor
//!   unit with the rounding difference shown as its own line, taxes inclusive or exclusive per
//!   rate, credit notes, and the invariant *total = sum of lines* checked when an invoice is
//!   composed and again whenever one is loaded.
//! - [`tax`]: VAT rates and whether prices include them.
//! - [`number`]: gapless invoice numbers per tenant and series (the store keeps the counter).
//! - [`capital`]: an amount in Chinese capital numerals (大写金额) for zh invoices.

pub mod capital;
pub mod cycle;
pub mod document;
pub mod invoice;
pub mod number;
pub mod tax;

pub use cycle::{BillCycle, BillPeriod, PeriodLabel};
pub use document::{InvoiceDocument, Lang, Party};
pub use invoice::{Charge, Invoice, InvoiceError, InvoiceKind, InvoiceLine, LineKind};
pub use number::{InvoiceNumber, Series};
pub use tax::{TaxMode, TaxRate};
