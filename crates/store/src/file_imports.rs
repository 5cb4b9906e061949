//! File imports of CDRs: one row per run, so that a file already imported whole (same bytes,
//! by SHA-256) is skipped unless forced, and every run's counts can be reconciled later.
//!
//! The counters are added by each charging batch in its own transaction
//! ([`crate::charging::Charger::charge_records`]), so after a crash they say exactly what the
//! committed batches did; a run that never finished keeps `finished_ms` NULL and does not make
//! the file count as imported.

use toll_core::Micros;

use crate::db::q;
use crate::{Store, StoreError, TenantId, now_ms};

/// What one batch adds to its import's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportTally {
    pub import_id: i64,
    /// Records read (whatever became of them).
    pub records: i64,
    /// Records not billed on purpose (cleansing: unanswered, too short, internal).
    pub skipped: i64,
}

/// A run's row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportRun {
    pub id: i64,
    pub content_hash: String,
    pub file_name: String,
    pub format: String,
    pub source: String,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub records: i64,
    pub charged: i64,
    pub duplicate: i64,
    pub skipped: i64,
    pub suspended: i64,
    pub amount: Micros,
}

const COLUMNS: &str = "id, content_hash, file_name, format, source, started_ms, finished_ms, \
     records, charged, duplicate, skipped, suspended, amount";

fn run(r: &crate::db::DbRow) -> Result<ImportRun, StoreError> {
    Ok(ImportRun {
        id: r.i64(0)?,
        content_hash: hex::encode(r.bytes(1)?),
        file_name: r.text(2)?,
        format: r.text(3)?,
        source: r.text(4)?,
        started_ms: r.i64(5)?,
        finished_ms: r.opt_i64(6)?,
        records: r.i64(7)?,
        charged: r.i64(8)?,
        duplicate: r.i64(9)?,
        skipped: r.i64(10)?,
        suspended: r.i64(11)?,
        amount: Micros(r.i64(12)?),
    })
}

impl Store {
    /// The latest finished import of these bytes, if any.
    pub async fn finished_import(
        &self,
        tenant: TenantId,
        content_hash: &[u8; 32],
    ) -> Result<Option<ImportRun>, StoreError> {
        let mut tx = self.read().await?;
        tx.opt(
            crate::db::q_composed(format!(
                "SELECT {COLUMNS} FROM imports WHERE tenant_id = $1 AND content_hash = $2 \
                 AND finished_ms IS NOT NULL ORDER BY id DESC LIMIT 1"
            ))
            .i64(tenant.0)
            .bytes(content_hash),
        )
        .await?
        .as_ref()
        .map(run)
        .transpose()
    }

    /// Records the start of a run and returns its id.
    pub async fn start_import(
        &self,
        tenant: TenantId,
        content_hash: &[u8; 32],
        file_name: &str,
        format: &str,
        source: &str,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let id = tx
            .one(
                q(
                    "INSERT INTO imports (tenant_id, content_hash, file_name, format, source, \
                   started_ms) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .i64(tenant.0)
                .bytes(content_hash)
                .text(file_name)
                .text(format)
                .text(source)
                .i64(now_ms()),
            )
            .await?
            .i64(0)?;
        tx.commit().await?;
        Ok(id)
    }

    /// Marks a run finished: from now on the same bytes count as imported.
    pub async fn finish_import(&self, tenant: TenantId, id: i64) -> Result<ImportRun, StoreError> {
        let mut tx = self.begin().await?;
        let row = tx
            .opt(
                crate::db::q_composed(format!(
                    "UPDATE imports SET finished_ms = $3 WHERE tenant_id = $1 AND id = $2 \
                     RETURNING {COLUMNS}"
                ))
                .i64(tenant.0)
                .i64(id)
                .i64(now_ms()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("import", id.to_string()))?;
        let out = run(&row)?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn imports(
        &self,
        tenant: TenantId,
        limit: usize,
    ) -> Result<Vec<ImportRun>, StoreError> {
        let mut tx = self.read().await?;
        tx.all(
            crate::db::q_composed(format!(
                "SELECT {COLUMNS} FROM imports WHERE tenant_id = $1 ORDER BY id DESC LIMIT {}",
                limit.clamp(1, 1000)
            ))
            .i64(tenant.0),
        )
        .await?
        .iter()
        .map(run)
        .collect()
    }
}

/// Adds a batch's counts to its run, in the batch's transaction.
pub(crate) async fn add(
    tx: &mut crate::db::Tx,
    tenant: TenantId,
    tally: &ImportTally,
    charged: i64,
    duplicate: i64,
    suspended: i64,
    amount: Micros,
) -> Result<(), StoreError> {
    tx.exec(
        q(
            "UPDATE imports SET records = records + $3, charged = charged + $4, \
           duplicate = duplicate + $5, skipped = skipped + $6, suspended = suspended + $7, \
           amount = amount + $8 WHERE tenant_id = $1 AND id = $2",
        )
        .i64(tenant.0)
        .i64(tally.import_id)
        .i64(tally.records)
        .i64(charged)
        .i64(duplicate)
        .i64(tally.skipped)
        .i64(suspended)
        .i64(amount.0),
    )
    .await?;
    Ok(())
}
