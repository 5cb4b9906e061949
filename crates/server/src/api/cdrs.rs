//! Rated CDRs: query by number (caller or callee), account and time, a page at a time; the
//! same query as CSV; and upload of a CDR file, charged through the ingestion pipeline.
//!
//! The upload runs the very code path of `POST /api/v1/ingest/{tenant}/cdrs` (the ingest
//! token's batches, [`crate::ingest::ingest_batch`]) with the principal's tenant: one reader,
//! one dedup key, one suspense queue, whichever door a file comes in by.
//!
//! The CSV export is bounded: at most `csv_export_rows` (default [`EXPORT_MAX`]) rows per
//! response, in start order; when more match, the `X-Toll-Next-Cursor` header carries the
//! cursor to pass as `?after=` for the rest, so an export never holds the server's memory
//! hostage however wide the window.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use toll_core::Currency;
use toll_ingest::pipeline::BatchReport;
use toll_store::cdrs::StoredCdr;
use toll_store::listing::CdrSearch;
use utoipa::{IntoParams, ToSchema};

use crate::api::types::{audit, money, page_size, parse_time, query, rfc3339};
use crate::error::ApiError;
use crate::ingest::{BatchParams, batch_kind, body_bytes, ingest_batch, source_of};
use crate::principal::Principal;
use crate::state::AppState;

/// Most rows of one CSV export by default ([`crate::ServerConfig::csv_export_rows`]).
pub const EXPORT_MAX: usize = 100_000;
/// The header naming where an export that stopped at [`EXPORT_MAX`] goes on.
pub const NEXT_CURSOR: &str = "x-toll-next-cursor";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CdrParams {
    /// A number that is the caller or the callee (as written or normalised).
    pub number: Option<String>,
    /// An account's code.
    pub account: Option<String>,
    /// Start of the window (RFC 3339, inclusive).
    pub from: Option<String>,
    /// End of the window (RFC 3339, exclusive).
    pub to: Option<String>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1..=500, default 50); ignored by the CSV export.
    pub limit: Option<i64>,
}

/// A rated, charged record.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cdr {
    pub event_key: String,
    pub source: String,
    pub record_id: String,
    pub caller: String,
    pub callee: String,
    /// The number as rating matched it.
    pub destination: Option<String>,
    pub start: String,
    pub end: Option<String>,
    /// voice, sms, data …
    pub usage: String,
    /// Rating units: nanoseconds for voice, messages, bytes.
    pub quantity: i64,
    pub category: String,
    /// The tariff's price of the whole record.
    pub cost: Option<String>,
    /// What the wallet was charged (after allowances).
    pub amount: String,
    /// How much of the quantity an allowance covered.
    pub covered: i64,
    /// allowance, overage, tariff or plan_tariff.
    pub priced_by: String,
    pub matched_prefix: Option<String>,
    pub carrier: Option<String>,
    pub region: Option<String>,
}

pub(crate) fn cdr_dto(c: StoredCdr, cur: Currency) -> Cdr {
    Cdr {
        event_key: c.event_key,
        source: c.source,
        record_id: c.record_id,
        caller: c.caller,
        callee: c.callee,
        destination: c.destination,
        start: rfc3339(c.start_ms),
        end: c.end_ms.map(rfc3339),
        usage: c.usage,
        quantity: c.quantity,
        category: c.category,
        cost: c.cost.map(|m| money(m, cur)),
        amount: money(c.amount, cur),
        covered: c.covered,
        priced_by: c.priced_by,
        matched_prefix: c.matched_prefix,
        carrier: c.carrier,
        region: c.region,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CdrPage {
    pub items: Vec<Cdr>,
    /// Pass as `?after=` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The cursor of a row: `START_MS:EVENT_KEY`.
pub(crate) fn cursor(c: &StoredCdr) -> String {
    format!("{}:{}", c.start_ms, c.event_key)
}

pub(crate) fn parse_cursor(s: &str) -> Result<(i64, String), ApiError> {
    s.split_once(':')
        .and_then(|(ms, key)| Some((ms.parse().ok()?, key.to_string())))
        .ok_or_else(|| ApiError::bad("after", "not a cursor this API gave"))
}

/// The search a query string asks for; `account_id` is the principal's tenant's.
pub(crate) async fn search_of(
    state: &AppState,
    p: &Principal,
    q: &CdrParams,
    limit: usize,
) -> Result<CdrSearch, ApiError> {
    let account_id = match q.account.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => Some(state.store().account_id(p.tenant_id(), a).await?),
        _ => None,
    };
    Ok(CdrSearch {
        from_ms: q
            .from
            .as_deref()
            .map(|s| parse_time("from", s))
            .transpose()?
            .unwrap_or(i64::MIN),
        to_ms: q
            .to
            .as_deref()
            .map(|s| parse_time("to", s))
            .transpose()?
            .unwrap_or(i64::MAX),
        account_id,
        number: q
            .number
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        after: q.after.as_deref().map(parse_cursor).transpose()?,
        limit,
    })
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("text/csv")))
}

/// CDRs in start order, a page at a time (`Accept: text/csv` answers the CSV export).
#[utoipa::path(get, path = "/api/v1/cdrs", tag = "cdrs",
    params(CdrParams),
    responses((status = 200, body = CdrPage),
        (status = 400, description = "bad time or cursor", content_type = "application/problem+json"),
        (status = 404, description = "no such account", content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    q: Result<Query<CdrParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    if wants_csv(&headers) {
        return export(&state, &p, &q).await;
    }
    let n = page_size(q.limit);
    let s = search_of(&state, &p, &q, n).await?;
    let rows = state.store().cdr_search(p.tenant_id(), &s).await?;
    let next = (rows.len() == n).then(|| rows.last().map(cursor)).flatten();
    let cur = p.tenant.currency;
    Ok(Json(CdrPage {
        items: rows.into_iter().map(|c| cdr_dto(c, cur)).collect(),
        next,
    })
    .into_response())
}

/// The same query as CSV (at most 100 000 rows by default; `X-Toll-Next-Cursor` names where
/// the rest starts when more match).
#[utoipa::path(get, path = "/api/v1/cdrs.csv", tag = "cdrs",
    params(CdrParams),
    responses((status = 200, content_type = "text/csv", body = String,
        description = "header row `event_key,source,record_id,caller,callee,destination,start,end,usage,quantity,category,cost,amount,covered,priced_by,carrier,region`"),
        (status = 400, description = "bad time or cursor", content_type = "application/problem+json")))]
pub async fn csv(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<CdrParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    export(&state, &p, &q).await
}

const CSV_HEADER: [&str; 17] = [
    "event_key",
    "source",
    "record_id",
    "caller",
    "callee",
    "destination",
    "start",
    "end",
    "usage",
    "quantity",
    "category",
    "cost",
    "amount",
    "covered",
    "priced_by",
    "carrier",
    "region",
];

async fn export(state: &AppState, p: &Principal, q: &CdrParams) -> Result<Response, ApiError> {
    let max = state.config().csv_export_rows.max(1);
    // One row more than written is asked for, to know whether the export stops early; the
    // store's page limit must leave room for it.
    let page = toll_store::cdrs::MAX_PAGE - 1;
    let mut s = search_of(state, p, q, page).await?;
    let cur = p.tenant.currency;
    let csv_err = |e: csv::Error| ApiError::NotStored(format!("writing CSV: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(csv_err)?;
    let mut written = 0usize;
    let mut next = None;
    loop {
        let want = page.min(max - written);
        s.limit = want + 1;
        let mut rows = state.store().cdr_search(p.tenant_id(), &s).await?;
        let more = rows.len() > want;
        rows.truncate(want);
        let last = rows.last().map(|c| (c.start_ms, c.event_key.clone()));
        for c in rows {
            written += 1;
            let d = cdr_dto(c, cur);
            w.write_record([
                d.event_key.as_str(),
                &d.source,
                &d.record_id,
                &d.caller,
                &d.callee,
                d.destination.as_deref().unwrap_or(""),
                &d.start,
                d.end.as_deref().unwrap_or(""),
                &d.usage,
                &d.quantity.to_string(),
                &d.category,
                d.cost.as_deref().unwrap_or(""),
                &d.amount,
                &d.covered.to_string(),
                &d.priced_by,
                d.carrier.as_deref().unwrap_or(""),
                d.region.as_deref().unwrap_or(""),
            ])
            .map_err(csv_err)?;
        }
        if !more {
            break;
        }
        if written >= max {
            next = last.map(|(ms, key)| format!("{ms}:{key}"));
            break;
        }
        s.after = last;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::NotStored(format!("writing CSV: {e}")))?;
    let mut res = (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cdrs.csv\"",
            ),
        ],
        body,
    )
        .into_response();
    if let Some(n) = next.and_then(|n| HeaderValue::from_str(&n).ok()) {
        res.headers_mut().insert(NEXT_CURSOR, n);
    }
    Ok(res)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The feed's name (e.g. `pbx-bj-1`): with each record's id, the record's dedup key.
    pub source: Option<String>,
    /// CSV: asterisk, freeswitch or cgrates; JSON: json (Toll's CDR form, default) or
    /// freeswitch-json.
    pub format: Option<String>,
    /// The switch's time zone for times without an offset (default: the tenant's).
    pub zone: Option<String>,
    /// FreeSWITCH CSV template.
    pub template: Option<String>,
}

/// Uploads a CDR file (`text/csv` with `?format=`, a JSON array, or NDJSON) and charges it:
/// answered with the batch's report. Records that cannot be charged go to the suspense queue
/// and are counted in the report; a file re-sent is not charged twice.
#[utoipa::path(post, path = "/api/v1/cdrs", tag = "cdrs",
    params(UploadParams),
    request_body(content = String, content_type = "text/csv", description = "a CDR file as the switch writes it, or JSON / NDJSON records"),
    responses((status = 200, body = Object, description = "the batch report: records, charged, duplicate, skipped, suspended, amount"),
        (status = 400, description = "bad query or record", content_type = "application/problem+json"),
        (status = 413, description = "too large", content_type = "application/problem+json"),
        (status = 415, description = "not CSV or JSON", content_type = "application/problem+json")))]
pub async fn upload(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<UploadParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BatchReport>), ApiError> {
    let q = query(q)?;
    let params = BatchParams {
        source: q.source,
        format: q.format,
        zone: q.zone,
        template: q.template,
    };
    let source = source_of(&params)?;
    let kind = batch_kind(&headers, &params)?;
    let body = body_bytes(body)?;
    let bytes = body.len();
    let ti = state.tenant(&p.tenant.slug).await?;
    let report = ingest_batch(&state, &ti, params, kind, body).await?;
    let after = serde_json::to_value(&report).unwrap_or_default();
    let after = serde_json::json!({"bytes": bytes, "report": after});
    audit(&state, &p, "cdrs.upload", "cdr_file", &source, None, &after).await?;
    Ok((StatusCode::OK, Json(report)))
}
