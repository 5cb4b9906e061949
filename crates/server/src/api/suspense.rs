//! The suspense queue over HTTP: records that could not be charged, listed by class and
//! status, fixed (the raw record or its JSON form), re-processed, or discarded.
//!
//! Re-processing is `toll_ingest`'s [`reprocess`] — what `toll suspense retry` runs — with the
//! tenant's pipeline, so a record fixed here is charged exactly as a file import would charge
//! it, and resolved in the same transaction.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use toll_ingest::pipeline::BatchReport;
use toll_ingest::pipeline::record::CdrJson;
use toll_ingest::pipeline::reprocess::{ReprocessError, Selection, reprocess as run_reprocess};
use toll_store::suspense::{SuspenseFilter, SuspenseItem};
use utoipa::{IntoParams, ToSchema};

use crate::api::types::{audit, json_body, page_size, query, rfc3339};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuspenseQuery {
    /// open (default), resolved, discarded or any.
    pub status: Option<String>,
    /// parse_error, unknown_subscriber, no_rate, insufficient_funds, …
    pub class: Option<String>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<i64>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

/// A record that could not be charged, with why.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suspended {
    pub id: i64,
    pub source: String,
    /// The reader that met it (how `raw` is read again).
    pub format: String,
    pub line: Option<i64>,
    /// parse, rate or charge.
    pub stage: String,
    pub class: String,
    pub field: Option<String>,
    pub reason: String,
    /// The record as received.
    pub raw: String,
    /// Its editable JSON form, when it parsed.
    pub record: Option<String>,
    /// open, resolved or discarded.
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
}

impl From<SuspenseItem> for Suspended {
    fn from(i: SuspenseItem) -> Suspended {
        Suspended {
            id: i.id,
            source: i.source,
            format: i.format,
            line: i.line,
            stage: i.stage.as_str().to_string(),
            class: i.class,
            field: i.field,
            reason: i.reason,
            raw: i.raw,
            record: i.record,
            status: i.status,
            attempts: i.attempts,
            created_at: rfc3339(i.created_ms),
            updated_at: rfc3339(i.updated_ms),
            resolved_at: i.resolved_ms.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuspensePage {
    pub items: Vec<Suspended>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// A fix: the corrected raw record (one line as the switch writes it), or the corrected JSON
/// form, or fields of the JSON form to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspenseFix {
    pub raw: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub record: Option<serde_json::Value>,
    /// `{"callee": "01088886666"}`: fields of the JSON form replaced.
    #[schema(value_type = Option<Object>)]
    pub set: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Items of the queue, oldest first.
#[utoipa::path(get, path = "/api/v1/suspense", tag = "suspense",
    params(SuspenseQuery),
    responses((status = 200, body = SuspensePage),
        (status = 400, description = "bad status", content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<SuspenseQuery>, QueryRejection>,
) -> Result<Json<SuspensePage>, ApiError> {
    let q = query(q)?;
    let n = page_size(q.limit);
    let rows = state
        .store()
        .suspense_items(
            p.tenant_id(),
            &SuspenseFilter {
                status: q.status,
                class: q.class,
                after_id: q.after,
                limit: n,
            },
        )
        .await?;
    let next = (rows.len() == n)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(SuspensePage {
        items: rows.into_iter().map(Suspended::from).collect(),
        next,
    }))
}

/// One item with its raw record and editable JSON form.
#[utoipa::path(get, path = "/api/v1/suspense/{id}", tag = "suspense",
    params(("id" = i64, Path)),
    responses((status = 200, body = Suspended),
        (status = 404, description = "no such item", content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<Suspended>, ApiError> {
    Ok(Json(
        state.store().suspense_item(p.tenant_id(), id).await?.into(),
    ))
}

/// Checks an edited JSON form now, not at re-processing: a typo is reported while the
/// operator is here.
fn checked_record(v: &serde_json::Value) -> Result<String, ApiError> {
    let rec: CdrJson =
        serde_json::from_value(v.clone()).map_err(|e| ApiError::bad("record", e.to_string()))?;
    rec.to_cdr(Vec::new())
        .map_err(|e| ApiError::bad(format!("record.{}", e.field), e.reason))?;
    serde_json::to_string(v).map_err(|e| ApiError::bad("record", e.to_string()))
}

/// Replaces an open item's record before it is re-processed.
#[utoipa::path(put, path = "/api/v1/suspense/{id}", tag = "suspense",
    params(("id" = i64, Path)),
    request_body = SuspenseFix,
    responses((status = 200, body = Suspended),
        (status = 400, description = "nothing to change, or the record is invalid", content_type = "application/problem+json"),
        (status = 404, description = "no such open item", content_type = "application/problem+json")))]
pub async fn edit(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Suspended>, ApiError> {
    let fix: SuspenseFix = json_body(body)?;
    let t = p.tenant_id();
    let before = state.store().suspense_item(t, id).await?;
    let record = match (&fix.raw, &fix.record, &fix.set) {
        (Some(_), None, None) => None,
        (None, Some(r), None) => Some(checked_record(r)?),
        (None, None, Some(set)) => {
            let base = before.record.as_deref().ok_or_else(|| {
                ApiError::bad(
                    "set",
                    "this item never parsed, so it has no JSON form: fix it with raw",
                )
            })?;
            let mut v: serde_json::Value = serde_json::from_str(base)
                .map_err(|e| ApiError::bad("set", format!("the item's record: {e}")))?;
            let obj = v
                .as_object_mut()
                .ok_or_else(|| ApiError::bad("set", "the item's record is not an object"))?;
            for (k, val) in set {
                obj.insert(k.clone(), val.clone());
            }
            Some(checked_record(&v)?)
        }
        (None, None, None) => {
            return Err(ApiError::bad("body", "give one of raw, record or set"));
        }
        _ => return Err(ApiError::bad("body", "give only one of raw, record or set")),
    };
    state
        .store()
        .suspense_edit(
            t,
            id,
            fix.raw.as_deref().map(str::as_bytes),
            record.as_deref(),
        )
        .await?;
    let after = state.store().suspense_item(t, id).await?;
    let b = serde_json::json!({"raw": before.raw, "record": before.record});
    let a = serde_json::json!({"raw": after.raw, "record": after.record});
    audit_item(&state, &p, "suspense.edit", id, Some(&b), &a).await?;
    Ok(Json(after.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Reprocessed {
    /// The batch report: records, charged, duplicate, skipped, suspended, amount.
    #[schema(value_type = Object)]
    pub report: BatchReport,
    /// The item after it: resolved when charged, still open (with the new reason) if not.
    pub item: Suspended,
}

/// Re-processes one open item through the pipeline (after a fix of the record, the tariff,
/// the line or the balance).
#[utoipa::path(post, path = "/api/v1/suspense/{id}/reprocess", tag = "suspense",
    params(("id" = i64, Path)),
    responses((status = 200, body = Reprocessed),
        (status = 404, description = "no such item", content_type = "application/problem+json"),
        (status = 422, description = "the item is not open", content_type = "application/problem+json")))]
pub async fn reprocess(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<Reprocessed>, ApiError> {
    let t = p.tenant_id();
    let before = state.store().suspense_item(t, id).await?;
    if before.status != "open" {
        return Err(toll_store::StoreError::Refused(format!(
            "item {id} is {}: only open items are re-processed",
            before.status
        ))
        .into());
    }
    let ti = state.tenant(&p.tenant.slug).await?;
    let report = run_reprocess(
        &ti.pipeline,
        state.store(),
        t,
        &Selection {
            ids: vec![id],
            class: None,
        },
    )
    .await
    .map_err(|e| match e {
        ReprocessError::Store(e) => ApiError::Store(e),
        ReprocessError::Batch(b) => ApiError::NotStored(format!(
            "the database did not take the batch after {} attempts: {}",
            b.attempts, b.error
        )),
    })?;
    let after = state.store().suspense_item(t, id).await?;
    let b = serde_json::json!({"status": before.status, "reason": before.reason});
    let a = serde_json::json!({"status": after.status, "reason": after.reason,
        "charged": report.charged});
    audit_item(&state, &p, "suspense.reprocess", id, Some(&b), &a).await?;
    Ok(Json(Reprocessed {
        report,
        item: after.into(),
    }))
}

/// Gives up on an open item: it stays listed as discarded and is never re-processed.
#[utoipa::path(post, path = "/api/v1/suspense/{id}/discard", tag = "suspense",
    params(("id" = i64, Path)),
    responses((status = 200, body = Suspended),
        (status = 404, description = "no such open item", content_type = "application/problem+json")))]
pub async fn discard(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<Suspended>, ApiError> {
    let t = p.tenant_id();
    let before = state.store().suspense_item(t, id).await?;
    state.store().suspense_discard(t, id).await?;
    let after = state.store().suspense_item(t, id).await?;
    let b = serde_json::json!({"status": before.status});
    let a = serde_json::json!({"status": after.status});
    audit_item(&state, &p, "suspense.discard", id, Some(&b), &a).await?;
    Ok(Json(after.into()))
}

async fn audit_item(
    state: &AppState,
    p: &Principal,
    action: &str,
    id: i64,
    before: Option<&serde_json::Value>,
    after: &serde_json::Value,
) -> Result<(), ApiError> {
    audit(state, p, action, "suspense", &id.to_string(), before, after).await
}
