//! `POST /api/v1/ingest/{tenant}/cdrs`: a batch of CDRs in one request, charged like a file
//! import and answered with the batch's report.
//!
//! Bodies: `application/json`, an array of records in the editable CDR form
//! ([`CdrJson`]); `application/x-ndjson`, one such record per line; `text/csv` with
//! `format=asterisk|freeswitch|cgrates`, read by that switch's reader; `application/json` with
//! `format=freeswitch-json`, FreeSWITCH `mod_json_cdr` documents. A JSON record that is not a
//! CDR fails the request (400, naming the record and field); a switch format's unreadable
//! record goes to the suspense queue like a file import's. A record that cannot be charged is
//! in the report, not an HTTP error.

use std::io::Cursor;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use toll_ingest::pipeline::feed::{Fed, feed};
use toll_ingest::pipeline::formats::{Format, ReaderSpec};
use toll_ingest::pipeline::record::CdrJson;
use toll_ingest::pipeline::{BatchReport, Item, Origin};
use toll_store::open_calls::MAX_ID_LEN;

use crate::auth::Ingestor;
use crate::calls::parse_json;
use crate::error::{ApiError, DeadLetters};
use crate::state::{AppState, TenantIngest};

/// The reader name kept with suspense items of JSON and NDJSON bodies (they keep their JSON
/// form, which is what re-processing reads).
pub const JSON_READER: &str = "http-json";

/// The batch request's query.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct BatchParams {
    /// The feed's name: with each record's id it is the record's dedup key.
    pub source: Option<String>,
    /// For CSV: asterisk, freeswitch or cgrates; for JSON: freeswitch-json (else Toll's form).
    pub format: Option<String>,
    /// The switch's time zone for times without an offset (default: the tenant's).
    pub zone: Option<String>,
    /// FreeSWITCH CSV template.
    pub template: Option<String>,
}

/// How a body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    Json,
    Ndjson,
    Reader(Format),
}

/// The body's media type without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

/// Refuses a body declared as anything but JSON (a missing type is taken as JSON).
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match media_type(headers) {
        None => Ok(()),
        Some(t) if t == "application/json" => Ok(()),
        Some(t) => Err(ApiError::UnsupportedMediaType(t)),
    }
}

/// The body, or why it could not be read (too large: 413).
pub(crate) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge("the body is larger than the server accepts".into())
        } else {
            ApiError::bad("body", e.body_text())
        }
    })
}

fn body_kind(headers: &HeaderMap, format: Option<&str>) -> Result<Body, ApiError> {
    let media = media_type(headers).unwrap_or_else(|| "application/json".into());
    let csv_format = |f: Option<&str>| -> Result<Format, ApiError> {
        match f {
            Some("asterisk") => Ok(Format::Asterisk),
            Some("freeswitch") => Ok(Format::Freeswitch),
            Some("cgrates") => Ok(Format::Cgrates),
            Some(other) => Err(ApiError::bad(
                "format",
                format!("{other:?}: a CSV body is asterisk, freeswitch or cgrates"),
            )),
            None => Err(ApiError::bad(
                "format",
                "missing: a CSV body needs ?format=asterisk, freeswitch or cgrates",
            )),
        }
    };
    match media.as_str() {
        "application/json" => match format {
            None | Some("json") => Ok(Body::Json),
            Some("freeswitch-json") => Ok(Body::Reader(Format::FreeswitchJson)),
            Some(other) => Err(ApiError::bad(
                "format",
                format!("{other:?}: a JSON body is json (the CDR form) or freeswitch-json"),
            )),
        },
        "application/x-ndjson" | "application/ndjson" => match format {
            None | Some("json") => Ok(Body::Ndjson),
            Some(other) => Err(ApiError::bad(
                "format",
                format!("{other:?}: an NDJSON body holds CDRs in their JSON form"),
            )),
        },
        "text/csv" => csv_format(format).map(Body::Reader),
        other => Err(ApiError::UnsupportedMediaType(other.to_string())),
    }
}

fn too_many(max: usize) -> ApiError {
    ApiError::TooLarge(format!("more than {max} records in one request: split it"))
}

/// A JSON record as an item, checked against the request's source.
fn json_item(
    rec: CdrJson,
    field: &str,
    line: u64,
    source: &str,
    raw: Vec<u8>,
) -> Result<Item, ApiError> {
    if rec.source != source {
        return Err(ApiError::bad(
            format!("{field}.source"),
            format!(
                "{:?} differs from the request's source {source:?}",
                rec.source
            ),
        ));
    }
    let mut cdr = rec
        .to_cdr(raw)
        .map_err(|e| ApiError::bad(format!("{field}.{}", e.field), e.reason))?;
    if cdr.line == 0 {
        cdr.line = line;
    }
    Ok(Item::new(Ok(cdr)))
}

/// Reads a body into items (off the async threads: parsing 64 MiB takes a while).
fn decode(
    kind: Body,
    body: &[u8],
    source: &str,
    zone: &str,
    template: Option<String>,
    max: usize,
) -> Result<(Vec<Item>, String), ApiError> {
    match kind {
        Body::Json => {
            let recs: Vec<CdrJson> = parse_json(body)?;
            if recs.len() > max {
                return Err(too_many(max));
            }
            let items = recs
                .into_iter()
                .enumerate()
                .map(|(i, r)| json_item(r, &format!("[{i}]"), i as u64 + 1, source, Vec::new()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((items, JSON_READER.to_string()))
        }
        Body::Ndjson => {
            let mut items = Vec::new();
            for (i, line) in body.split(|b| *b == b'\n').enumerate() {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if items.len() == max {
                    return Err(too_many(max));
                }
                let n = i + 1;
                let rec: CdrJson = parse_json(line).map_err(|e| match e {
                    ApiError::BadRequest { field, reason } => {
                        ApiError::bad(format!("line {n}: {field}"), reason)
                    }
                    other => other,
                })?;
                items.push(json_item(
                    rec,
                    &format!("line {n}:"),
                    n as u64,
                    source,
                    line.to_vec(),
                )?);
            }
            Ok((items, JSON_READER.to_string()))
        }
        Body::Reader(format) => {
            let mut spec = ReaderSpec::new(format, zone);
            spec.template = template;
            let stream = spec
                .open(Cursor::new(body), source)
                .map_err(|e| ApiError::bad("format", e.to_string()))?;
            let mut items = Vec::new();
            for r in stream {
                if items.len() == max {
                    return Err(too_many(max));
                }
                items.push(Item::new(r));
            }
            Ok((items, spec.to_json()))
        }
    }
}

/// `POST /api/v1/ingest/{tenant}/cdrs?source=NAME[&format=…]`
pub async fn batch(
    State(state): State<AppState>,
    _: Ingestor,
    Path(tenant): Path<String>,
    query: Result<Query<BatchParams>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchReport>, ApiError> {
    let Query(p) = query.map_err(|e| ApiError::bad("query", e.body_text()))?;
    source_of(&p)?;
    let kind = body_kind(&headers, p.format.as_deref())?;
    let ti = state.tenant(&tenant).await?;
    let body = body_bytes(body)?;
    ingest_body(&state, &ti, p, kind, body).await.map(Json)
}

/// The feed's name from `?source=`: required, with each record's id it is the dedup key.
pub(crate) fn source_of(p: &BatchParams) -> Result<String, ApiError> {
    let source = p
        .source
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::bad("source", "missing: name the feed, e.g. ?source=pbx-bj-1"))?;
    if source.len() > MAX_ID_LEN {
        return Err(ApiError::bad(
            "source",
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    Ok(source)
}

/// The body's kind from its media type and `?format=`, checked before the body is read.
pub(crate) fn batch_kind(headers: &HeaderMap, p: &BatchParams) -> Result<BodyKind, ApiError> {
    body_kind(headers, p.format.as_deref()).map(BodyKind)
}

/// How a batch's body is read (opaque outside this module).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyKind(Body);

/// Reads and charges a batch for a tenant: the one code path of the ingest token's batches and
/// of the REST API's CDR uploads (which take the principal's tenant).
pub(crate) async fn ingest_batch(
    state: &AppState,
    ti: &TenantIngest,
    p: BatchParams,
    kind: BodyKind,
    body: Bytes,
) -> Result<BatchReport, ApiError> {
    ingest_body(state, ti, p, kind.0, body).await
}

async fn ingest_body(
    state: &AppState,
    ti: &TenantIngest,
    p: BatchParams,
    kind: Body,
    body: Bytes,
) -> Result<BatchReport, ApiError> {
    let source = source_of(&p)?;
    let zone = p.zone.unwrap_or_else(|| ti.tenant.time_zone.clone());
    let max = state.config().max_records;
    let template = p.template;
    let src = source.clone();
    let (mut items, reader) =
        tokio::task::spawn_blocking(move || decode(kind, &body, &src, &zone, template, max))
            .await
            .map_err(|e| ApiError::NotStored(format!("reading the body failed: {e}")))??;
    let origin = Origin {
        reader,
        source,
        import_id: None,
    };
    let mut report = BatchReport::default();
    let mut dead = Vec::new();
    let mut dead_records = 0;
    let mut last_error = String::new();
    let batch = state.config().batch;
    while !items.is_empty() {
        let rest = items.split_off(batch.min(items.len()));
        let chunk = std::mem::replace(&mut items, rest);
        match feed(
            &ti.pipeline,
            &state.config().dead_letter_dir,
            chunk,
            &origin,
        )
        .await
        .map_err(Box::new)?
        {
            Fed::Committed(r, _) => report.add(&r),
            Fed::DeadLettered(d) => {
                dead_records += d.records;
                last_error = d.error.to_string();
                dead.push(d.path);
            }
        }
    }
    if !dead.is_empty() {
        return Err(ApiError::DeadLettered(Box::new(DeadLetters {
            records: dead_records,
            paths: dead,
            error: last_error,
            report: Some(report),
        })));
    }
    Ok(report)
}
