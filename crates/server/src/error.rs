//! The HTTP layer's one error type and its one mapping to RFC 9457 problem details
//! (`application/problem+json`): a stable `code`, a `title`, the `detail`, and — for bad input —
//! the `field` and the reason. Handlers return [`ApiError`]; nothing else builds an error body.
//! Errors of the layers underneath (body limit, timeout, unknown routes) are rewritten into the
//! same form by [`problem_for_bare_errors`].

use std::path::PathBuf;

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use toll_charging::ledger::LedgerError;
use toll_ingest::pipeline::BatchReport;
use toll_ingest::pipeline::feed::FeedError;
use toll_store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("ingestion is disabled: the server was started without an ingest token")]
    IngestDisabled,
    #[error("a valid `Authorization: Bearer <token>` header is required")]
    Unauthorized,
    #[error("tenant {0:?} not found")]
    UnknownTenant(String),
    /// Bad input: which field (a query parameter, a JSON path, a CSV line) and why.
    #[error("{field}: {reason}")]
    BadRequest { field: String, reason: String },
    #[error("content type {0:?} is not accepted here")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(
        "call {call_id:?} of source {feed:?} was never started, and its end does not name the caller, callee and start to charge it from"
    )]
    UnknownCall { feed: String, call_id: String },
    /// The database did not take a batch after the retries: it waits in dead letters.
    #[error(
        "the database did not take {} record(s) after the retries ({}); they are kept in dead letters and `toll ingest replay` charges them",
        .0.records, .0.error
    )]
    DeadLettered(Box<DeadLetters>),
    #[error("the tenant's call queue is full; retry shortly")]
    Overloaded,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The database did not answer (the message says how); nothing was changed.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Neither charged nor kept: the client must send it again.
    #[error("{0}; nothing of it was kept: send it again")]
    NotStored(String),
    /// No valid session or API key (the REST API; ingestion has its own token).
    #[error("sign in, or send a valid `Authorization: Bearer toll_…` API key")]
    Unauthenticated,
    #[error("your role or key scopes do not allow {0:?}")]
    Forbidden(crate::access::Perm),
    #[error("wrong login or password")]
    BadCredentials,
    #[error("too many attempts; retry in {0} s")]
    TooManyAttempts(u64),
    #[error("Idempotency-Key {0:?} was used with a different request")]
    IdempotencyMismatch(String),
    /// A tariff that does not compile: every problem with its file, line and column.
    #[error("the tariff has {} error(s)", .0.len())]
    InvalidTariff(Vec<toll_rating::Diagnostic>),
    /// The tenant has no active tariff to rate with.
    #[error("no tariff is active: upload one and activate it")]
    NoActiveTariff,
    /// The event cannot be rated (no matching destination, no rate at that time …).
    #[error("cannot rate: {0}")]
    Unratable(String),
    /// The maker–checker rule: the author of a plan version cannot approve or reject it.
    #[error("{0}")]
    MakerChecker(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Feed(#[from] Box<FeedError>),
}

/// Batches of a request kept in dead letters.
#[derive(Debug)]
pub struct DeadLetters {
    pub records: usize,
    pub paths: Vec<PathBuf>,
    /// Why the database did not take them.
    pub error: String,
    /// What the request's other batches did (they committed).
    pub report: Option<BatchReport>,
}

impl ApiError {
    pub fn bad(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A problem document being built.
struct Problem {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    extra: Map<String, Value>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, title: &'static str, detail: String) -> Self {
        Problem {
            status,
            code,
            title,
            detail,
            extra: Map::new(),
        }
    }

    fn with(mut self, key: &str, v: Value) -> Self {
        self.extra.insert(key.to_string(), v);
        self
    }

    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert(
            "type".into(),
            json!(format!("urn:toll:problem:{}", self.code)),
        );
        body.insert("title".into(), json!(self.title));
        body.insert("status".into(), json!(self.status.as_u16()));
        body.insert("detail".into(), json!(self.detail));
        body.insert("code".into(), json!(self.code));
        body.extend(self.extra);
        let mut res = (self.status, Json(Value::Object(body))).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        res
    }
}

/// The store's errors as problems: the one place a domain error becomes a status.
fn store_problem(e: &StoreError) -> Problem {
    let detail = e.to_string();
    match e {
        StoreError::NotFound { entity, key } => {
            Problem::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
                .with("entity", json!(entity))
                .with("key", json!(key))
        }
        StoreError::Conflict { entity, key } => {
            Problem::new(StatusCode::CONFLICT, "conflict", "Already exists", detail)
                .with("entity", json!(entity))
                .with("key", json!(key))
        }
        StoreError::Invalid { field, reason } => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid input",
            detail.clone(),
        )
        .with("field", json!(field))
        .with("reason", json!(reason)),
        StoreError::Refused(reason) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "refused",
            "Refused",
            detail.clone(),
        )
        .with("reason", json!(reason)),
        // The ledger's refusals are the client's to fix (or to know), not internal errors: a
        // prepaid wallet without the money, a payment reference reused for another amount,
        // an amount or memo out of bounds.
        StoreError::Ledger(l) => match l {
            LedgerError::Insufficient { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "insufficient_balance",
                "Insufficient balance",
                detail,
            ),
            LedgerError::KeyReused { .. } => Problem::new(
                StatusCode::CONFLICT,
                "key_reused",
                "Reference already used",
                detail,
            ),
            LedgerError::InvalidKey(_)
            | LedgerError::MemoTooLong { .. }
            | LedgerError::MemoControlChar
            | LedgerError::NonPositiveAmount { .. }
            | LedgerError::AmountTooLarge { .. } => {
                Problem::new(StatusCode::BAD_REQUEST, "invalid", "Invalid input", detail)
            }
            other => {
                tracing::error!(error = ?other, "ledger refused a posting");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "an internal error occurred; it was logged".into(),
                )
            }
        },
        e if e.is_transient() => {
            tracing::warn!(error = %e, "database unavailable");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "Database unavailable",
                "the database did not answer; retry shortly".into(),
            )
        }
        e => {
            tracing::error!(error = ?e, "internal error");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                "an internal error occurred; it was logged".into(),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = self.to_string();
        let p = match self {
            ApiError::IngestDisabled => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ingestion_disabled",
                "Ingestion disabled",
                detail,
            ),
            ApiError::Unauthorized => {
                let mut res = Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Unauthorized",
                    detail,
                )
                .into_response();
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return res;
            }
            ApiError::UnknownTenant(t) => Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_tenant",
                "Unknown tenant",
                detail,
            )
            .with("tenant", json!(t)),
            ApiError::BadRequest { field, reason } => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "Invalid request",
                detail,
            )
            .with("field", json!(field))
            .with("reason", json!(reason)),
            ApiError::UnsupportedMediaType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                detail,
            ),
            ApiError::TooLarge(_) => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "Request too large",
                detail,
            ),
            ApiError::UnknownCall { feed, call_id } => Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_call",
                "Unknown call",
                detail,
            )
            .with("source", json!(feed))
            .with("call_id", json!(call_id)),
            ApiError::DeadLettered(d) => {
                let DeadLetters {
                    records,
                    paths,
                    error,
                    report,
                } = *d;
                tracing::warn!(records, %error, ?paths, "batch dead-lettered");
                let mut res = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "dead_lettered",
                    "Kept in dead letters",
                    detail,
                )
                .with("records", json!(records))
                .with(
                    "dead_letters",
                    json!(
                        paths
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                    ),
                )
                .with(
                    "report",
                    serde_json::to_value(report).unwrap_or(Value::Null),
                )
                .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return res;
            }
            ApiError::Overloaded => {
                let mut res = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "Overloaded",
                    detail,
                )
                .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return res;
            }
            ApiError::ShuttingDown => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "Shutting down",
                detail,
            ),
            ApiError::Unavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "Database unavailable",
                detail,
            ),
            ApiError::NotStored(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_stored",
                "Not stored",
                detail,
            ),
            ApiError::Unauthenticated => {
                let mut res = Problem::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "Unauthenticated",
                    detail,
                )
                .into_response();
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return res;
            }
            ApiError::Forbidden(perm) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
                    .with("permission", json!(perm))
            }
            ApiError::BadCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "bad_credentials",
                "Wrong login or password",
                detail,
            ),
            ApiError::TooManyAttempts(secs) => {
                let mut res = Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    "Too many attempts",
                    detail,
                )
                .with("retry_after_seconds", json!(secs))
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
            ApiError::IdempotencyMismatch(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
                detail,
            ),
            ApiError::InvalidTariff(diags) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_tariff",
                "Invalid tariff",
                detail,
            )
            .with(
                "errors",
                Value::Array(
                    diags
                        .iter()
                        .map(|d| {
                            json!({
                                "file": &*d.pos.file,
                                "line": d.pos.line,
                                "column": d.pos.column,
                                "reason": d.message,
                            })
                        })
                        .collect(),
                ),
            ),
            ApiError::NoActiveTariff => Problem::new(
                StatusCode::CONFLICT,
                "no_active_tariff",
                "No active tariff",
                detail,
            ),
            ApiError::Unratable(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unratable",
                "Cannot rate",
                detail,
            ),
            ApiError::MakerChecker(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "maker_checker",
                "Another user must check this",
                detail,
            ),
            ApiError::Store(e) => store_problem(&e),
            ApiError::Feed(e) => {
                tracing::error!(error = %e, "a batch could be neither charged nor dead-lettered");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_stored",
                    "Not stored",
                    format!("{e}; nothing of the batch was kept: send it again"),
                )
            }
        };
        p.into_response()
    }
}

/// Rewrites the plain error responses of the layers under the handlers (body limit, timeout,
/// method and route not found, extractor rejections) into problem documents. The UI's HTML
/// error pages (a 403 page, a form re-rendered with its errors) are left as they are: they
/// are meant for people, and say the same in their language.
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error())
        || res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
            v.as_bytes().starts_with(PROBLEM_JSON.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
        })
    {
        return res;
    }
    let (code, title, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "too_large",
            "Request too large",
            "the body is larger than the server accepts".to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            "Timed out",
            "the request took longer than the server allows".to_string(),
        ),
        StatusCode::NOT_FOUND => ("not_found", "Not found", "no such route".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "Method not allowed",
            "the route does not take this method".to_string(),
        ),
        s if s.is_client_error() => (
            "bad_request",
            "Bad request",
            s.canonical_reason().unwrap_or("bad request").to_string(),
        ),
        s => (
            "internal",
            "Internal error",
            s.canonical_reason().unwrap_or("error").to_string(),
        ),
    };
    let mut out = Problem::new(status, code, title, detail).into_response();
    for name in [header::WWW_AUTHENTICATE, header::RETRY_AFTER, header::ALLOW] {
        if let Some(v) = res.headers().get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
