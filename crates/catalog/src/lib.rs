//! Toll's catalog domain. Pure: no I/O, no SQL.
//!
//! - [`pricing`]: the usage pricing models plans embed for overage and metered services
//!   (per unit, graduated, volume, package, block tiers, percentage).
//! - [`plan`]: plan definitions (资费套餐) read from and written back to TOML, validated with every
//!   error reported at once (`docs/plans.md`).
//! - [`lifecycle`]: a plan version's statuses and the maker–checker rules between them.
//! - [`proration`]: billing periods from an anchor date and the day-exact settlement of a plan
//!   change within one.

pub mod lifecycle;
pub mod plan;
pub mod pricing;
pub mod proration;
