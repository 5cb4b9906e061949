//! Toll's shared domain types.
//!
//! Everything here is pure (no I/O) and exact: money is `rust_decimal`, never a float; usage is an
//! integer count of nanoseconds (time) or units (messages, bytes); rounding is always explicit and
//! named. Later crates (rating, charging, billing, storage) build on these types only.

pub mod amount;
pub mod civil;
pub mod money;
pub mod phone;
pub mod rounding;
pub mod usage;
pub mod usage_kind;

pub use amount::{AmountError, Micros};
pub use money::{Currency, CurrencyError, Money};
pub use rounding::{Rounding, RoundingError, RoundingMethod};
pub use usage::{DurationError, Tor, Usage};
pub use usage_kind::{UsageKind, UsageKindError};
