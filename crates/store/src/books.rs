//! The tenant's own ledger accounts, created with the tenant.

use toll_core::Currency;

use crate::db::{Tx, q};
use crate::{StoreError, TenantId};

/// The tenant's books, one account each per tenant: what charges credit (revenue, tax), what
/// top-ups debit (clearing: money received through a payment channel), and where manual
/// corrections come from (adjustment). Codes are fixed so services find them by name.
pub(crate) const TENANT_BOOKS: [(&str, &str); 5] = [
    ("revenue", "revenue"),
    ("tax", "tax"),
    ("clearing", "clearing"),
    ("adjustment", "adjustment"),
    ("commission", "commission"),
];

pub(crate) async fn create_tenant_books(
    tx: &mut Tx,
    tenant: TenantId,
    currency: Currency,
) -> Result<(), StoreError> {
    for (code, kind) in TENANT_BOOKS {
        tx.exec(
            q(
                "INSERT INTO ledger_accounts (tenant_id, code, kind, currency, floor_kind) \
               VALUES ($1, $2, $3, $4, 'unlimited')",
            )
            .i64(tenant.0)
            .text(code)
            .text(kind)
            .text(currency.as_str()),
        )
        .await?;
    }
    Ok(())
}

/// The id of one of the tenant's book accounts by code.
pub(crate) async fn book_id(tx: &mut Tx, tenant: TenantId, code: &str) -> Result<i64, StoreError> {
    tx.opt(
        q("SELECT id FROM ledger_accounts WHERE tenant_id = $1 AND code = $2")
            .i64(tenant.0)
            .text(code),
    )
    .await?
    .ok_or_else(|| StoreError::Corrupt(format!("tenant {} has no {code} account", tenant.0)))?
    .i64(0)
}
