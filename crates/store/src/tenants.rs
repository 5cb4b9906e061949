//! Tenants: the operators (or business units) whose data Toll keeps apart.

use toll_core::Currency;

use crate::db::q;
use crate::{Store, StoreError, now_ms};

/// A tenant's database id. Every other query takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct TenantId(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub currency: Currency,
    /// IANA zone of the tenant's calendar (periods, allowances, proration days).
    pub time_zone: String,
}

impl Tenant {
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, StoreError> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| StoreError::Corrupt(format!("tenant time zone: {e}")))
    }
}

/// Longest code-like identifier.
const MAX_CODE: usize = 64;

/// Checks a code-like identifier (tenant slug, plan code, account code).
pub(crate) fn check_code(field: &str, s: &str) -> Result<(), StoreError> {
    if s.is_empty() || s.len() > MAX_CODE {
        return Err(StoreError::invalid(
            field,
            format!("must be 1..={MAX_CODE} characters"),
        ));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(StoreError::invalid(
            field,
            "only letters, digits, '-', '_' and '.'",
        ));
    }
    Ok(())
}

impl Store {
    /// Creates a tenant and its own books (revenue, tax, clearing, adjustment accounts).
    pub async fn create_tenant(
        &self,
        slug: &str,
        name: &str,
        currency: Currency,
        time_zone: &str,
    ) -> Result<Tenant, StoreError> {
        check_code("slug", slug)?;
        if let Err(e) = jiff::tz::TimeZone::get(time_zone) {
            return Err(StoreError::invalid("time_zone", e.to_string()));
        }
        let mut tx = self.begin().await?;
        let id = tx
            .one(
                q(
                    "INSERT INTO tenants (slug, name, currency, time_zone, created_ms) \
                   VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .text(slug)
                .text(name)
                .text(currency.as_str())
                .text(time_zone)
                .i64(now_ms()),
            )
            .await
            .map_err(|e| e.conflict("tenant", slug))?
            .i64(0)?;
        let tenant = TenantId(id);
        crate::books::create_tenant_books(&mut tx, tenant, currency).await?;
        tx.commit().await?;
        Ok(Tenant {
            id: tenant,
            slug: slug.to_string(),
            name: name.to_string(),
            currency,
            time_zone: time_zone.to_string(),
        })
    }

    pub async fn tenant(&self, slug: &str) -> Result<Tenant, StoreError> {
        let mut tx = self.read().await?;
        let row = tx
            .opt(
                q("SELECT id, slug, name, currency, time_zone FROM tenants WHERE slug = $1")
                    .text(slug),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("tenant", slug))?;
        tenant_of(&row)
    }

    /// Every tenant, in id order (the server's scheduled jobs walk them).
    pub async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut tx = self.read().await?;
        tx.all(q(
            "SELECT id, slug, name, currency, time_zone FROM tenants ORDER BY id",
        ))
        .await?
        .iter()
        .map(tenant_of)
        .collect()
    }
}

fn tenant_of(row: &crate::db::DbRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId(row.i64(0)?),
        slug: row.text(1)?,
        name: row.text(2)?,
        currency: row
            .text(3)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("tenant currency: {e}")))?,
        time_zone: row.text(4)?,
    })
}
