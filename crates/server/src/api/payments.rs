//! Money received against invoices: payments recorded by staff (bank transfer, cash, card),
//! payments reported by a provider's signed webhook, and account statements.
//!
//! A payment credits the wallet and is allocated to the account's unpaid invoices, oldest
//! first; what is left stays in the wallet as credit for the next invoice (the store's
//! `record_payment`). The same `key` twice records one payment.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use toll_payments::EventBody;
use toll_store::billing::payments::{PaymentMethod, PaymentRequest, RecordedPayment};
use toll_store::billing::statements::Statement;
use utoipa::{IntoParams, ToSchema};

use crate::api::types::{audit, json_body, money, page_size, parse_money, query, rfc3339};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentBody {
    /// bank_transfer, cash or card
    #[schema(example = "bank_transfer")]
    pub method: String,
    #[schema(example = "120.00")]
    pub amount: String,
    /// The bank's or card terminal's reference (may be empty for cash).
    #[serde(default)]
    pub reference: String,
    /// Makes a retried request record one payment; defaults to `method:reference`.
    pub key: Option<String>,
    /// When the money was received (RFC 3339); default now.
    pub received: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationDto {
    pub invoice_id: i64,
    pub invoice_number: Option<String>,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentDto {
    pub id: i64,
    pub account: String,
    pub method: String,
    pub reference: String,
    pub amount: String,
    /// What of it went to invoices.
    pub allocated: String,
    pub received: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedPaymentDto {
    pub payment: PaymentDto,
    /// Invoices this payment paid (oldest first).
    pub allocations: Vec<AllocationDto>,
    /// Earlier credit applied to invoices at the same time.
    pub credit_applied: Vec<AllocationDto>,
    /// Left in the wallet as credit for later invoices.
    pub unallocated: String,
    /// The key had been recorded before: nothing was recorded now.
    pub duplicate: bool,
}

fn payment_dto(p: &toll_store::billing::payments::Payment) -> PaymentDto {
    PaymentDto {
        id: p.id,
        account: p.account.clone(),
        method: p.method.to_string(),
        reference: p.reference.clone(),
        amount: money(p.amount, p.currency),
        allocated: money(p.allocated, p.currency),
        received: rfc3339(p.received_ms),
    }
}

fn recorded_dto(r: &RecordedPayment) -> RecordedPaymentDto {
    let cur = r.payment.currency;
    let alloc = |a: &toll_store::billing::payments::Allocation| AllocationDto {
        invoice_id: a.invoice_id,
        invoice_number: a.invoice_number.clone(),
        amount: money(a.amount, cur),
    };
    RecordedPaymentDto {
        payment: payment_dto(&r.payment),
        allocations: r.allocations.iter().map(alloc).collect(),
        credit_applied: r.credit_applied.iter().map(alloc).collect(),
        unallocated: money(r.unallocated, cur),
        duplicate: r.duplicate,
    }
}

/// Records money received for an account and allocates it to its unpaid invoices.
#[utoipa::path(post, path = "/api/v1/accounts/{code}/payments", tag = "payments",
    params(("code" = String, Path)), request_body = PaymentBody,
    responses((status = 201, body = RecordedPaymentDto, description = "recorded"),
        (status = 200, body = RecordedPaymentDto, description = "the key was recorded before; nothing changed"),
        (status = 400, description = "bad method, amount or date", content_type = "application/problem+json"),
        (status = 404, description = "no such account", content_type = "application/problem+json"),
        (status = 409, description = "the key was used for another payment", content_type = "application/problem+json")))]
pub async fn record(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<RecordedPaymentDto>), ApiError> {
    let b: PaymentBody = json_body(body)?;
    let method: PaymentMethod = match b.method.as_str() {
        "bank_transfer" | "cash" | "card" => b
            .method
            .parse()
            .map_err(|e: toll_store::StoreError| ApiError::bad("method", e.to_string()))?,
        other => {
            return Err(ApiError::bad(
                "method",
                format!("{other:?}: bank_transfer, cash or card (providers report their own)"),
            ));
        }
    };
    let amount = parse_money("amount", &b.amount)?;
    let received_ms = match &b.received {
        None => toll_store::now_ms(),
        Some(s) => toll_core::civil::parse_rfc3339(s)
            .map_err(|e| ApiError::bad("received", e.to_string()))?
            .epoch_ns
            .div_euclid(1_000_000),
    };
    let reference = b.reference.trim().to_string();
    let key = b
        .key
        .clone()
        .unwrap_or_else(|| format!("{}:{reference}", b.method));
    let req = PaymentRequest {
        account: code.clone(),
        method,
        currency: p.tenant.currency,
        amount,
        reference,
        key,
        received_ms,
    };
    let r = state.store().record_payment(p.tenant_id(), &req).await?;
    let dto = recorded_dto(&r);
    if !r.duplicate {
        let after = serde_json::json!({"payment": dto.payment.id, "amount": dto.payment.amount,
            "method": dto.payment.method, "reference": dto.payment.reference,
            "unallocated": dto.unallocated});
        audit(&state, &p, "payment.record", "account", &code, None, &after).await?;
    }
    let status = if r.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(dto)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentQuery {
    pub account: Option<String>,
    /// Cursor: the `next` of the previous page (a payment id).
    pub before: Option<i64>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentPage {
    pub items: Vec<PaymentDto>,
    pub next: Option<i64>,
}

/// Payments, newest first.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", params(PaymentQuery),
    responses((status = 200, body = PaymentPage)))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<PaymentQuery>, QueryRejection>,
) -> Result<Json<PaymentPage>, ApiError> {
    let q = query(q)?;
    let limit = page_size(q.limit);
    let rows = state
        .store()
        .payments(p.tenant_id(), q.account.as_deref(), q.before, limit as i64)
        .await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(PaymentPage {
        items: rows.iter().map(payment_dto).collect(),
        next,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// First day (tenant's zone), inclusive.
    #[param(example = "2026-11-01")]
    pub from: String,
    /// The first day after the period.
    #[param(example = "2026-12-01")]
    pub to: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementLine {
    pub date: String,
    /// invoice, credit_note or payment
    pub kind: String,
    pub reference: String,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementDto {
    pub account: String,
    pub customer: String,
    pub currency: String,
    pub from: String,
    /// The first day after the period.
    pub to: String,
    /// Amount due at the start (positive: the customer owes; negative: in credit).
    pub opening: String,
    /// Usage, fees, tax: what the period added to the amount due.
    pub charges: String,
    /// Payments and top-ups received.
    pub payments: String,
    /// Credit notes, refunds, adjustments.
    pub credits: String,
    /// opening + charges − payments − credits.
    pub closing: String,
    /// Invoices and credit notes finalized and payments received in the period, by date.
    pub lines: Vec<StatementLine>,
}

fn parse_day(field: &str, s: &str) -> Result<jiff::civil::Date, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad(field, format!("{s:?} is not a day (2026-11-01): {e}")))
}

pub fn statement_dto(s: &Statement) -> StatementDto {
    let cur = s.currency;
    let mut lines: Vec<StatementLine> = s
        .invoices
        .iter()
        .map(|i| StatementLine {
            date: i.date.to_string(),
            kind: i.kind.clone(),
            reference: i.number.clone().unwrap_or_default(),
            amount: money(i.total, cur),
        })
        .chain(s.received.iter().map(|r| StatementLine {
            date: r.date.to_string(),
            kind: "payment".into(),
            reference: format!("{} {}", r.method, r.reference).trim().to_string(),
            amount: money(r.amount, cur),
        }))
        .collect();
    lines.sort_by(|a, b| a.date.cmp(&b.date));
    StatementDto {
        account: s.account.clone(),
        customer: s.customer.clone(),
        currency: cur.to_string(),
        from: s.from.to_string(),
        to: s.to.to_string(),
        opening: money(s.opening, cur),
        charges: money(s.charges, cur),
        payments: money(s.payments, cur),
        credits: money(s.credits, cur),
        closing: money(s.closing, cur),
        lines,
    }
}

async fn statement_of(
    state: &AppState,
    p: &Principal,
    code: &str,
    q: StatementQuery,
) -> Result<StatementDto, ApiError> {
    let from = parse_day("from", &q.from)?;
    let to = parse_day("to", &q.to)?;
    if to <= from {
        return Err(ApiError::bad("to", "must be after from"));
    }
    let s = state.store().statement(&p.tenant, code, from, to).await?;
    Ok(statement_dto(&s))
}

/// An account's statement: opening amount due, what the period charged, payments and
/// credits received, closing amount due, with the invoices and payments of the period.
#[utoipa::path(get, path = "/api/v1/accounts/{code}/statement", tag = "payments",
    params(("code" = String, Path), StatementQuery),
    responses((status = 200, body = StatementDto),
        (status = 400, description = "bad dates", content_type = "application/problem+json"),
        (status = 404, description = "no such account", content_type = "application/problem+json")))]
pub async fn statement(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    q: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Json<StatementDto>, ApiError> {
    let q = query(q)?;
    Ok(Json(statement_of(&state, &p, &code, q).await?))
}

/// The caller's own statement.
#[utoipa::path(get, path = "/api/v1/me/statement", tag = "self-service", params(StatementQuery),
    responses((status = 200, body = StatementDto),
        (status = 404, description = "no account is bound to this user", content_type = "application/problem+json")))]
pub async fn my_statement(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<StatementQuery>, QueryRejection>,
) -> Result<Json<StatementDto>, ApiError> {
    let q = query(q)?;
    let code = p
        .account_code
        .clone()
        .ok_or_else(|| toll_store::StoreError::not_found("account", "(none bound to this user)"))?;
    Ok(Json(statement_of(&state, &p, &code, q).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAck {
    /// recorded, duplicate or ignored
    pub outcome: String,
}

/// Stripe's webhook for a tenant: verified by its `Stripe-Signature` (HMAC-SHA256 with the
/// endpoint secret `--stripe-webhook-secret`, 5 minutes' tolerance) and recorded once per
/// event and per payment. Public: the signature is the authentication.
#[utoipa::path(post, path = "/api/v1/webhooks/stripe/{tenant}", tag = "payments",
    params(("tenant" = String, Path)),
    responses((status = 200, body = WebhookAck),
        (status = 400, description = "bad signature or payload", content_type = "application/problem+json"),
        (status = 404, description = "no such tenant, or webhooks are not configured", content_type = "application/problem+json")))]
pub async fn stripe_webhook(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WebhookAck>, ApiError> {
    let Some(secret) = state.config().stripe_webhook_secret.clone() else {
        return Err(toll_store::StoreError::not_found("webhook", "stripe").into());
    };
    let body = crate::ingest::body_bytes(body)?;
    let sig = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::bad("Stripe-Signature", "missing"))?;
    let now = jiff::Timestamp::now().as_second();
    toll_payments::stripe::verify_signature(&secret, &body, sig, now, 300)
        .map_err(|e| ApiError::bad("Stripe-Signature", e.to_string()))?;
    let event = toll_payments::stripe::parse_event(&body)
        .map_err(|e| ApiError::bad("body", e.to_string()))?;
    let ack = |o: &str| Json(WebhookAck { outcome: o.into() });
    let EventBody::PaymentSucceeded(paid) = &event.body else {
        return Ok(ack("ignored"));
    };
    let Some(to) = paid.toll.as_ref().filter(|r| r.tenant == tenant) else {
        return Ok(ack("ignored"));
    };
    let t = state.store().tenant(&tenant).await?;
    let req = PaymentRequest {
        account: to.account.clone(),
        method: PaymentMethod::Provider(paid.provider.to_string()),
        currency: paid.currency,
        amount: paid.amount_received,
        reference: paid.payment_id.clone(),
        key: paid.payment_key(),
        received_ms: event.created.saturating_mul(1000),
    };
    let r = state
        .store()
        .record_provider_event(t.id, paid.provider, &event.id, &req)
        .await?;
    Ok(ack(if r.duplicate { "duplicate" } else { "recorded" }))
}
