//! Toll's persistence: one seam over two engines.
//!
//! [`Store`] is SQLite (the embedded default: one file, WAL, nothing to set up) or PostgreSQL
//! (chosen by a `postgres://` URL, for several workers sharing one database). Both engines run
//! the same SQL text — the schemas in `migrations/` keep the same tables, columns and integer
//! representations — so every service method is written once and run through the small
//! interface of `db` on either engine. Where the engines must differ (row locks, bulk writes)
//! the method says so.
//!
//! Every query is scoped by a [`TenantId`]: there is no method that reads or writes a row without
//! one, which is what keeps tenants apart.

pub mod accounts;
pub mod audit;
pub mod billing;
mod books;
pub mod catalog;
pub mod cdrs;
pub mod charging;
mod db;
mod engine;
mod error;
pub mod file_imports;
pub mod idempotency;
pub mod import;
pub mod keys;
pub mod ledger;
pub mod listing;
pub mod open_calls;
pub mod partition_locks;
pub mod renewals;
pub mod reports;
pub mod rerate;
pub mod subscriptions;
pub mod suspense;
pub mod tariffs;
pub mod tenants;
pub mod users;

pub use engine::{Engine, Store};
pub use error::StoreError;
pub use tenants::{Tenant, TenantId};

/// Milliseconds since the Unix epoch, now: the store's clock for `created_ms`/`at_ms` columns.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
