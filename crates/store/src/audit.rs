//! The audit log: who did what, when, to which object, with the object before and after.
//! Append-only: nothing updates or deletes a row.

use crate::db::q;
use crate::{Store, StoreError, TenantId, now_ms};

/// One administrative action to record.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    /// `user:LOGIN` or `key:PREFIX`.
    pub actor: &'a str,
    /// What was done, e.g. `plan.approve`, `tariff.upload`, `account.top_up`.
    pub action: &'a str,
    /// The kind of object, e.g. `plan`, `tariff`, `account`.
    pub entity: &'a str,
    /// Which one, e.g. a plan code and version.
    pub entity_key: &'a str,
    /// The object before and after, as JSON (`None` where there was none).
    pub before: Option<&'a serde_json::Value>,
    pub after: Option<&'a serde_json::Value>,
}

/// A recorded action.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_key: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub at_ms: i64,
}

/// Most rows one page of the log returns.
pub const MAX_AUDIT_PAGE: i64 = 500;

fn json_text(v: Option<&serde_json::Value>) -> Option<String> {
    v.map(|v| v.to_string())
}

fn parse_json(s: Option<String>) -> Result<Option<serde_json::Value>, StoreError> {
    s.map(|s| serde_json::from_str(&s))
        .transpose()
        .map_err(|e| StoreError::Corrupt(format!("audit json: {e}")))
}

impl Store {
    pub async fn audit(&self, tenant: TenantId, e: &AuditEntry<'_>) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let id = tx
            .one(
                q(
                    "INSERT INTO audit_log (tenant_id, actor, action, entity, entity_key, \
                   before_json, after_json, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                   RETURNING id",
                )
                .i64(tenant.0)
                .text(e.actor)
                .text(e.action)
                .text(e.entity)
                .text(e.entity_key)
                .opt_text(json_text(e.before))
                .opt_text(json_text(e.after))
                .i64(now_ms()),
            )
            .await?
            .i64(0)?;
        tx.commit().await?;
        Ok(id)
    }

    /// The log, newest first: rows with an id below `before` (all when `None`), at most
    /// `limit` (capped at [`MAX_AUDIT_PAGE`]). The last row's id is the next page's cursor.
    pub async fn audit_log(
        &self,
        tenant: TenantId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx
            .all(
                q(
                    "SELECT id, actor, action, entity, entity_key, before_json, after_json, at_ms \
                   FROM audit_log WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                )
                .i64(tenant.0)
                .i64(before.unwrap_or(i64::MAX))
                .i64(limit.clamp(1, MAX_AUDIT_PAGE)),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.i64(0)?,
                    actor: r.text(1)?,
                    action: r.text(2)?,
                    entity: r.text(3)?,
                    entity_key: r.text(4)?,
                    before: parse_json(r.opt_text(5)?)?,
                    after: parse_json(r.opt_text(6)?)?,
                    at_ms: r.i64(7)?,
                })
            })
            .collect()
    }
}
