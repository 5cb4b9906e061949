//! Toll's rating engine.
//!
//! A tariff is loaded from a file format ([`source`]) into a definition ([`def`]), compiled into
//! a [`Tariff`] with a prefix trie, per-plan destination bindings and time bands, and then rated
//! with [`rate`] and [`max_usage`]: pure functions, allocation-light, exact decimal arithmetic.

mod bands;
pub mod carriers;
pub mod def;
pub mod diag;
pub mod engine;
pub mod event_text;
pub mod source;
mod subjects;
pub mod tariff;
pub mod trie;
pub mod view;

pub use carriers::NumberRanges;
pub use diag::{Diagnostic, Diagnostics, Pos, Severity};
pub use engine::{
    CarrierOutcome, Event, Limit, MaxUsage, Piece, RateError, Rated, max_usage, rate,
};
pub use tariff::{DestRef, Tariff, TariffStats};
