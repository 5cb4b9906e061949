//! Toll's catalog domain. Pure: no I/O, no SQL.
//!
//! For now: [`pricing`], the usage pricing models plans embed for overage and metered services
//! (per unit, graduated, volume, package, block tiers, percentage).

pub mod pricing;
