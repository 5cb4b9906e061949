//! Toll's charging domain. Pure: no I/O, no SQL; `toll-store` runs it inside database
//! transactions.
//!
//! - [`allowance`]: allowance buckets and the order they are consumed in (pack, then base, then
//!   overage), splitting a usage that crosses the end of an allowance exactly.
//! - [`overage`]: pricing the usage beyond the allowances with the plan's pricing model,
//!   cumulatively over the period.
//! - [`ledger`]: the double-entry ledger: transfers, account floors, idempotency and the per-tenant
//!   hash chain that `toll ledger verify` checks.

pub mod allowance;
pub mod ledger;
pub mod overage;
