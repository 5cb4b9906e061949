//! The suspense queue: records that could not be charged, kept with why and the record itself
//! until they are fixed and re-processed or deliberately discarded. Nothing is dropped silently.
//!
//! Items are written by the pipeline in the transaction of the batch that met them
//! ([`crate::charging::Charger::charge_records`]); an item is keyed by the record's event key
//! (or, for a record that never parsed, by its source and bytes), so meeting the same bad
//! record again updates the item (`attempts` grows) instead of queueing it twice.

use crate::db::{Col, Tx, q, q_composed};
use crate::{Store, StoreError, TenantId, now_ms};

/// Most items one listing returns.
pub const MAX_PAGE: usize = 10_000;
/// Most bytes of a raw record kept (a longer "record" is garbage, and still kept in part).
pub const MAX_RAW: usize = 64 * 1024;

/// Where in the pipeline a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Parse,
    Rate,
    Charge,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Parse => "parse",
            Stage::Rate => "rate",
            Stage::Charge => "charge",
        }
    }

    fn parse(text: &str) -> Result<Stage, StoreError> {
        Ok(match text {
            "parse" => Stage::Parse,
            "rate" => Stage::Rate,
            "charge" => Stage::Charge,
            other => return Err(StoreError::Corrupt(format!("suspense stage {other:?}"))),
        })
    }
}

/// An item to queue (or to update, when its key is queued already).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSuspense {
    pub item_key: String,
    pub source: String,
    /// The reader that produced the record: how `raw` is read again after an edit.
    pub format: String,
    pub import_id: Option<i64>,
    pub line: Option<u64>,
    pub stage: Stage,
    /// A stable class (`parse_error`, `unknown_subscriber`, `no_rate`, ...).
    pub class: String,
    pub field: Option<String>,
    pub reason: String,
    pub raw: Vec<u8>,
    /// The normalised record as JSON, when it parsed.
    pub record: Option<String>,
}

/// A queued item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SuspenseItem {
    pub id: i64,
    pub item_key: String,
    pub source: String,
    pub format: String,
    pub import_id: Option<i64>,
    pub line: Option<i64>,
    pub stage: Stage,
    pub class: String,
    pub field: Option<String>,
    pub reason: String,
    /// The raw bytes, lossily decoded for display; `raw_bytes` has them exactly.
    pub raw: String,
    #[serde(skip)]
    pub raw_bytes: Vec<u8>,
    pub record: Option<String>,
    pub status: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub resolved_ms: Option<i64>,
}

/// Which items to list.
#[derive(Debug, Clone, Default)]
pub struct SuspenseFilter {
    /// `open` (the default when `None`), `resolved`, `discarded`, or `any`.
    pub status: Option<String>,
    pub class: Option<String>,
    pub after_id: Option<i64>,
    pub limit: usize,
}

const COLUMNS: &str = "id, item_key, source, format, import_id, line, stage, class, field, \
     reason, raw, record, status, attempts, created_ms, updated_ms, resolved_ms";

/// Queues `items` (the last of several with one key wins). An item already open is updated
/// (reason, record, one more attempt); a resolved or discarded one is left as it is: meeting
/// the record again (a re-sent file) does not undo the fix or the decision.
pub(crate) async fn upsert(
    tx: &mut Tx,
    tenant: TenantId,
    items: &[&NewSuspense],
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    // PostgreSQL refuses to update one row twice in a statement.
    let mut unique: Vec<&NewSuspense> = Vec::with_capacity(items.len());
    let mut seen = std::collections::HashMap::with_capacity(items.len());
    for it in items {
        match seen.get(it.item_key.as_str()) {
            Some(&i) => unique[i] = *it,
            None => {
                seen.insert(it.item_key.as_str(), unique.len());
                unique.push(*it);
            }
        }
    }
    let now = now_ms();
    use Col::{Bytes, Int, Text};
    tx.bulk(
        &unique,
        &[
            Int, Text, Text, Text, Int, Int, Text, Text, Text, Text, Bytes, Text, Int, Int,
        ],
        |values| {
            format!(
                "INSERT INTO suspense (tenant_id, item_key, source, format, import_id, line, \
                 stage, class, field, reason, raw, record, created_ms, updated_ms) {values} \
                 ON CONFLICT (tenant_id, item_key) DO UPDATE SET source = excluded.source, \
                 format = excluded.format, import_id = excluded.import_id, line = excluded.line, \
                 stage = excluded.stage, class = excluded.class, field = excluded.field, \
                 reason = excluded.reason, raw = excluded.raw, record = excluded.record, \
                 attempts = suspense.attempts + 1, updated_ms = excluded.updated_ms \
                 WHERE suspense.status = 'open'"
            )
        },
        |s, it| {
            s.push_i64(tenant.0);
            s.push_text(it.item_key.as_str());
            s.push_text(it.source.as_str());
            s.push_text(it.format.as_str());
            s.push_opt_i64(it.import_id);
            s.push_opt_i64(it.line.and_then(|l| i64::try_from(l).ok()));
            s.push_text(it.stage.as_str());
            s.push_text(it.class.as_str());
            s.push_opt_text(it.field.clone());
            s.push_text(it.reason.as_str());
            s.push_bytes(&it.raw[..it.raw.len().min(MAX_RAW)]);
            s.push_opt_text(it.record.clone());
            s.push_i64(now);
            s.push_i64(now);
        },
    )
    .await?;
    Ok(())
}

/// Marks open items resolved: by id (re-processed items) and by key (records charged now
/// whose earlier attempt was queued). Skips the key look-up when the tenant has nothing open,
/// which is the common case of a clean feed.
pub(crate) async fn resolve(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[i64],
    keys: &[&str],
) -> Result<(), StoreError> {
    let now = now_ms();
    for chunk in ids.chunks(900) {
        let list = tx.in_list("id", chunk.len());
        // `+tenant_id`: probe the ids, not every open item of the tenant (SQLite's choice).
        let mut stmt = q_composed(format!(
            "UPDATE suspense SET status = 'resolved', resolved_ms = {now}, updated_ms = {now} \
             WHERE +tenant_id = {} AND status = 'open' AND {list}",
            tenant.0
        ));
        tx.bind_set_i64(&mut stmt, chunk);
        tx.exec(stmt).await?;
    }
    if keys.is_empty() {
        return Ok(());
    }
    let open = tx
        .opt(
            q("SELECT 1 FROM suspense WHERE tenant_id = $1 AND status = 'open' LIMIT 1")
                .i64(tenant.0),
        )
        .await?;
    if open.is_none() {
        return Ok(());
    }
    for chunk in keys.chunks(900) {
        let list = tx.in_list("item_key", chunk.len());
        let mut stmt = q_composed(format!(
            "UPDATE suspense SET status = 'resolved', resolved_ms = {now}, updated_ms = {now} \
             WHERE +tenant_id = {} AND status = 'open' AND {list}",
            tenant.0
        ));
        tx.bind_set_text(&mut stmt, chunk);
        tx.exec(stmt).await?;
    }
    Ok(())
}

fn item(r: &crate::db::DbRow) -> Result<SuspenseItem, StoreError> {
    let raw_bytes = r.bytes(10)?;
    Ok(SuspenseItem {
        id: r.i64(0)?,
        item_key: r.text(1)?,
        source: r.text(2)?,
        format: r.text(3)?,
        import_id: r.opt_i64(4)?,
        line: r.opt_i64(5)?,
        stage: Stage::parse(&r.text(6)?)?,
        class: r.text(7)?,
        field: r.opt_text(8)?,
        reason: r.text(9)?,
        raw: String::from_utf8_lossy(&raw_bytes).into_owned(),
        raw_bytes,
        record: r.opt_text(11)?,
        status: r.text(12)?,
        attempts: r.i64(13)?,
        created_ms: r.i64(14)?,
        updated_ms: r.i64(15)?,
        resolved_ms: r.opt_i64(16)?,
    })
}

impl Store {
    /// A page of a tenant's suspense items, oldest first.
    pub async fn suspense_items(
        &self,
        tenant: TenantId,
        filter: &SuspenseFilter,
    ) -> Result<Vec<SuspenseItem>, StoreError> {
        let status = filter.status.as_deref().unwrap_or("open");
        if !matches!(status, "open" | "resolved" | "discarded" | "any") {
            return Err(StoreError::invalid(
                "status",
                "expected open, resolved, discarded or any",
            ));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM suspense WHERE tenant_id = $1 AND id > $2");
        let mut n = 2;
        if status != "any" {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        if filter.class.is_some() {
            n += 1;
            sql.push_str(&format!(" AND class = ${n}"));
        }
        let limit = filter.limit.clamp(1, MAX_PAGE);
        sql.push_str(&format!(" ORDER BY id LIMIT {limit}"));
        let mut stmt = q_composed(sql)
            .i64(tenant.0)
            .i64(filter.after_id.unwrap_or(0));
        if status != "any" {
            stmt = stmt.text(status);
        }
        if let Some(c) = &filter.class {
            stmt = stmt.text(c.clone());
        }
        let mut tx = self.read().await?;
        tx.all(stmt).await?.iter().map(item).collect()
    }

    pub async fn suspense_item(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<SuspenseItem, StoreError> {
        let mut tx = self.read().await?;
        let row = tx
            .opt(
                q_composed(format!(
                    "SELECT {COLUMNS} FROM suspense WHERE tenant_id = $1 AND id = $2"
                ))
                .i64(tenant.0)
                .i64(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("suspense item", id.to_string()))?;
        item(&row)
    }

    /// Open items per class: the queue's size as a dashboard or metric shows it.
    pub async fn suspense_counts(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut tx = self.read().await?;
        tx.all(
            q(
                "SELECT class, COUNT(*) FROM suspense WHERE tenant_id = $1 AND status = 'open' \
               GROUP BY class ORDER BY class",
            )
            .i64(tenant.0),
        )
        .await?
        .iter()
        .map(|r| Ok((r.text(0)?, r.i64(1)?)))
        .collect()
    }

    /// Replaces an open item's record (its raw bytes, or its normalised JSON): the fix before
    /// it is re-processed.
    pub async fn suspense_edit(
        &self,
        tenant: TenantId,
        id: i64,
        raw: Option<&[u8]>,
        record: Option<&str>,
    ) -> Result<(), StoreError> {
        if raw.is_none() && record.is_none() {
            return Err(StoreError::invalid("record", "nothing to change"));
        }
        if raw.is_some_and(|r| r.len() > MAX_RAW) {
            return Err(StoreError::invalid(
                "raw",
                format!("longer than {MAX_RAW} bytes"),
            ));
        }
        let mut tx = self.begin().await?;
        let n = tx
            .exec(
                q(
                    "UPDATE suspense SET raw = COALESCE($3, raw), record = COALESCE($4, record), \
                   updated_ms = $5 WHERE tenant_id = $1 AND id = $2 AND status = 'open'",
                )
                .i64(tenant.0)
                .i64(id)
                .opt_bytes(raw)
                .opt_text(record)
                .i64(now_ms()),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("open suspense item", id.to_string()));
        }
        tx.commit().await
    }

    /// Gives up on an open item: it stays listed (status `discarded`) and is never re-processed.
    pub async fn suspense_discard(&self, tenant: TenantId, id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let n = tx
            .exec(
                q(
                    "UPDATE suspense SET status = 'discarded', resolved_ms = $3, updated_ms = $3 \
                   WHERE tenant_id = $1 AND id = $2 AND status = 'open'",
                )
                .i64(tenant.0)
                .i64(id)
                .i64(now),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("open suspense item", id.to_string()));
        }
        tx.commit().await
    }
}
