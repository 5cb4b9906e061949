//! Uploaded tariffs and their versions. Each upload of a code is a new version, kept whole (its
//! source files) so the tariff that priced a call can be shown, compared and compiled again;
//! one version per tenant is active, and the server rates with it. Compiling is the rating
//! crate's: the store keeps bytes and the counts the server found.

use crate::db::q;
use crate::tenants::check_code;
use crate::{Store, StoreError, TenantId, now_ms};

/// A stored tariff version (without its files).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TariffVersion {
    pub id: i64,
    pub code: String,
    pub version: i64,
    /// `toll` or `cgrates`.
    pub format: String,
    /// Counts of the compiled tariff, as the server reported them (JSON object).
    pub summary: serde_json::Value,
    pub uploaded_by: String,
    pub uploaded_ms: i64,
    pub active: bool,
    pub activated_by: Option<String>,
    pub activated_ms: Option<i64>,
}

/// One source file of a tariff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffFile {
    pub name: String,
    pub content: Vec<u8>,
}

/// Most files in one tariff (a CGRateS folder has about ten).
pub const MAX_TARIFF_FILES: usize = 64;

fn row_version(r: &crate::db::DbRow) -> Result<TariffVersion, StoreError> {
    Ok(TariffVersion {
        id: r.i64(0)?,
        code: r.text(1)?,
        version: r.i64(2)?,
        format: r.text(3)?,
        summary: serde_json::from_str(&r.text(4)?)
            .map_err(|e| StoreError::Corrupt(format!("tariff summary: {e}")))?,
        uploaded_by: r.text(5)?,
        uploaded_ms: r.i64(6)?,
        active: r.i64(7)? != 0,
        activated_by: r.opt_text(8)?,
        activated_ms: r.opt_i64(9)?,
    })
}

impl Store {
    /// Stores a new version of `code` (1 for a new code) and returns it.
    pub async fn add_tariff_version(
        &self,
        tenant: TenantId,
        code: &str,
        format: &str,
        summary: &serde_json::Value,
        files: &[TariffFile],
        by: &str,
    ) -> Result<TariffVersion, StoreError> {
        check_code("code", code)?;
        if !matches!(format, "toll" | "cgrates") {
            return Err(StoreError::invalid("format", "toll or cgrates"));
        }
        if files.is_empty() || files.len() > MAX_TARIFF_FILES {
            return Err(StoreError::invalid(
                "files",
                format!("1..={MAX_TARIFF_FILES} files"),
            ));
        }
        let mut tx = self.begin().await?;
        let next = tx
            .one(
                q("SELECT COALESCE(MAX(version), 0) + 1 FROM tariffs \
                   WHERE tenant_id = $1 AND code = $2")
                .i64(tenant.0)
                .text(code),
            )
            .await?
            .i64(0)?;
        let id = tx
            .one(
                q(
                    "INSERT INTO tariffs (tenant_id, code, version, format, summary, uploaded_by, \
                   uploaded_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .i64(tenant.0)
                .text(code)
                .i64(next)
                .text(format)
                .text(summary.to_string())
                .text(by)
                .i64(now_ms()),
            )
            .await
            .map_err(|e| e.conflict("tariff version", &format!("{code} v{next}")))?
            .i64(0)?;
        for f in files {
            tx.exec(
                q("INSERT INTO tariff_files (tariff_id, name, content) VALUES ($1, $2, $3)")
                    .i64(id)
                    .text(f.name.as_str())
                    .bytes(&f.content),
            )
            .await
            .map_err(|e| e.conflict("tariff file", &f.name))?;
        }
        let v = row_version(
            &tx.one(
                q(
                    "SELECT id, code, version, format, summary, uploaded_by, uploaded_ms, active, \
                   activated_by, activated_ms FROM tariffs WHERE id = $1",
                )
                .i64(id),
            )
            .await?,
        )?;
        tx.commit().await?;
        Ok(v)
    }

    /// Every version of every tariff of the tenant, by code then version.
    pub async fn tariff_versions(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<TariffVersion>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx
            .all(
                q(
                    "SELECT id, code, version, format, summary, uploaded_by, uploaded_ms, active, \
                   activated_by, activated_ms FROM tariffs WHERE tenant_id = $1 \
                   ORDER BY code, version",
                )
                .i64(tenant.0),
            )
            .await?;
        rows.iter().map(row_version).collect()
    }

    /// One version (the latest when `version` is `None`).
    pub async fn tariff_version(
        &self,
        tenant: TenantId,
        code: &str,
        version: Option<i64>,
    ) -> Result<TariffVersion, StoreError> {
        let mut tx = self.read().await?;
        let row = tx
            .opt(
                q(
                    "SELECT id, code, version, format, summary, uploaded_by, uploaded_ms, active, \
                   activated_by, activated_ms FROM tariffs \
                   WHERE tenant_id = $1 AND code = $2 AND ($3 = 0 OR version = $3) \
                   ORDER BY version DESC LIMIT 1",
                )
                .i64(tenant.0)
                .text(code)
                .i64(version.unwrap_or(0)),
            )
            .await?;
        let key = match version {
            Some(v) => format!("{code} v{v}"),
            None => code.to_string(),
        };
        row.map(|r| row_version(&r))
            .transpose()?
            .ok_or_else(|| StoreError::not_found("tariff", key))
    }

    /// The source files of a version of the tenant (by name).
    pub async fn tariff_files(
        &self,
        tenant: TenantId,
        tariff_id: i64,
    ) -> Result<Vec<TariffFile>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx
            .all(
                q("SELECT f.name, f.content FROM tariff_files f \
                   JOIN tariffs t ON t.id = f.tariff_id \
                   WHERE t.tenant_id = $1 AND f.tariff_id = $2 ORDER BY f.name")
                .i64(tenant.0)
                .i64(tariff_id),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TariffFile {
                    name: r.text(0)?,
                    content: r.bytes(1)?,
                })
            })
            .collect()
    }

    /// Makes a version the tenant's active tariff; the one active before stops being so, in the
    /// same transaction.
    pub async fn activate_tariff(
        &self,
        tenant: TenantId,
        code: &str,
        version: i64,
        by: &str,
    ) -> Result<TariffVersion, StoreError> {
        let mut tx = self.begin().await?;
        let id = tx
            .opt(
                q("SELECT id FROM tariffs WHERE tenant_id = $1 AND code = $2 AND version = $3")
                    .i64(tenant.0)
                    .text(code)
                    .i64(version),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("tariff", format!("{code} v{version}")))?
            .i64(0)?;
        tx.exec(
            q("UPDATE tariffs SET active = 0 WHERE tenant_id = $1 AND active = 1 AND id <> $2")
                .i64(tenant.0)
                .i64(id),
        )
        .await?;
        tx.exec(
            q(
                "UPDATE tariffs SET active = 1, activated_by = $2, activated_ms = $3 \
               WHERE id = $1",
            )
            .i64(id)
            .text(by)
            .i64(now_ms()),
        )
        .await?;
        let v = row_version(
            &tx.one(
                q(
                    "SELECT id, code, version, format, summary, uploaded_by, uploaded_ms, active, \
                   activated_by, activated_ms FROM tariffs WHERE id = $1",
                )
                .i64(id),
            )
            .await?,
        )?;
        tx.commit().await?;
        Ok(v)
    }

    /// The tenant's active tariff version, if one is.
    pub async fn active_tariff(
        &self,
        tenant: TenantId,
    ) -> Result<Option<TariffVersion>, StoreError> {
        let mut tx = self.read().await?;
        let row = tx
            .opt(
                q(
                    "SELECT id, code, version, format, summary, uploaded_by, uploaded_ms, active, \
                   activated_by, activated_ms FROM tariffs WHERE tenant_id = $1 AND active = 1",
                )
                .i64(tenant.0),
            )
            .await?;
        row.map(|r| row_version(&r)).transpose()
    }
}
