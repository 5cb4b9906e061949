//! Invoices over HTTP: bill runs, the invoice list and one invoice with its lines, finalizing,
//! voiding drafts and credit notes; customers read their own through `/api/v1/me/invoices`.
//!
//! Bill runs here are synchronous and meant for a tenant's day-to-day size; a run over
//! hundreds of thousands of accounts belongs to `toll bill run` (same code, with a progress
//! bar), which is also safe to run beside the server.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toll_billing::{InvoiceKind, PeriodLabel};
use toll_core::Currency;
use toll_store::StoreError;
use toll_store::billing::invoices::{InvoiceSummary, StoredInvoice};
use toll_store::billing::run::{BillRunOptions, DEFAULT_BATCH};
use utoipa::{IntoParams, ToSchema};

use crate::api::types::{audit, json_body, money, page_size, query, rfc3339};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// Only this account's invoices.
    pub account: Option<String>,
    /// Only this period (the month it starts in, `2026-10`).
    pub period: Option<String>,
    /// Cursor: the `next` of the previous page (an invoice id).
    pub before: Option<i64>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceListItem {
    pub id: i64,
    pub account: String,
    /// invoice or credit_note
    pub kind: String,
    /// None while a draft.
    #[schema(example = "INV-2026-000042")]
    pub number: Option<String>,
    #[schema(example = "2026-10")]
    pub period: String,
    /// draft, finalized, paid or void
    pub status: String,
    pub currency: String,
    pub total: String,
    pub paid: String,
    pub created: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoicePage {
    pub items: Vec<InvoiceListItem>,
    /// Cursor for the next page (`before`), absent on the last.
    pub next: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceLineDto {
    /// recurring_fee, proration, allowance_use, usage, overage, add_on, one_off, discount,
    /// adjustment, late_usage, tax or rounding
    pub kind: String,
    pub label: String,
    pub detail: Option<String>,
    pub quantity: Option<i64>,
    /// seconds, messages, bytes, units, days or events
    pub unit: Option<String>,
    /// Events (calls, messages) the line sums.
    pub count: Option<i64>,
    /// The VAT rate that applies, in percent.
    pub tax_rate: Option<String>,
    pub amount: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceTaxDto {
    pub name: String,
    /// In percent.
    pub rate: String,
    /// Net (prices exclusive of tax) or gross (inclusive) amount the tax is computed on.
    pub base: String,
    pub tax: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceDto {
    pub id: i64,
    pub number: Option<String>,
    /// invoice or credit_note
    pub kind: String,
    /// The invoice a credit note corrects (its number).
    pub corrects: Option<String>,
    pub account: String,
    pub customer: String,
    pub period: String,
    pub period_start: String,
    /// The first day after the period.
    pub period_end: String,
    pub status: String,
    pub currency: String,
    /// inclusive or exclusive
    pub tax_mode: String,
    pub lines: Vec<InvoiceLineDto>,
    pub taxes: Vec<InvoiceTaxDto>,
    pub subtotal: String,
    pub tax_total: String,
    pub total: String,
    pub paid: String,
    /// The total in Chinese capital numerals (CNY only), as zh invoices print it.
    pub total_in_words: Option<String>,
    pub created: String,
    pub finalized: Option<String>,
}

fn list_item(i: &InvoiceSummary) -> InvoiceListItem {
    let cur: Currency = i.currency.parse().unwrap_or(Currency::CNY);
    InvoiceListItem {
        id: i.id,
        account: i.account.clone(),
        kind: i.kind.clone(),
        number: i.number.clone(),
        period: i.period.clone(),
        status: i.status.clone(),
        currency: i.currency.clone(),
        total: money(i.total, cur),
        paid: money(i.paid, cur),
        created: rfc3339(i.created_ms),
    }
}

pub fn invoice_dto(i: &StoredInvoice) -> InvoiceDto {
    let inv = &i.invoice;
    let cur = inv.currency;
    InvoiceDto {
        id: i.id,
        number: i.number.clone(),
        kind: match inv.kind {
            InvoiceKind::Invoice => "invoice".into(),
            InvoiceKind::CreditNote { .. } => "credit_note".into(),
        },
        corrects: match &inv.kind {
            InvoiceKind::CreditNote { corrects } => Some(corrects.to_string()),
            InvoiceKind::Invoice => None,
        },
        account: i.account.clone(),
        customer: i.customer.clone(),
        period: i.period.clone(),
        period_start: i.period_start.clone(),
        period_end: i.period_end.clone(),
        status: i.status.clone(),
        currency: cur.to_string(),
        tax_mode: inv.tax_mode.as_str().into(),
        lines: inv
            .lines
            .iter()
            .map(|l| InvoiceLineDto {
                kind: l.kind.as_str().into(),
                label: l.label.clone(),
                detail: l.detail.clone(),
                quantity: l.quantity.map(|q| q.value),
                unit: l.quantity.map(|q| q.unit.as_str().to_string()),
                count: l.count,
                tax_rate: l.tax.as_ref().map(|r| r.percent_value().to_string()),
                amount: money(l.amount, cur),
            })
            .collect(),
        taxes: inv
            .taxes
            .iter()
            .map(|t| InvoiceTaxDto {
                name: t.rate.name().into(),
                rate: t.rate.percent_value().to_string(),
                base: money(t.base, cur),
                tax: money(t.tax, cur),
            })
            .collect(),
        subtotal: money(inv.subtotal, cur),
        tax_total: money(inv.tax_total, cur),
        total: money(inv.total, cur),
        paid: money(i.paid, cur),
        total_in_words: (cur == Currency::CNY)
            .then(|| toll_billing::capital::capitals(inv.total).ok())
            .flatten(),
        created: rfc3339(i.created_ms),
        finalized: i.finalized_ms.map(rfc3339),
    }
}

/// The tenant's today, for numbering and for which periods have ended.
pub fn today(p: &Principal) -> Result<jiff::civil::Date, ApiError> {
    Ok(jiff::Timestamp::now().to_zoned(p.tenant.zone()?).date())
}

fn check_period(field: &str, s: &str) -> Result<PeriodLabel, ApiError> {
    s.parse()
        .map_err(|e: toll_billing::cycle::CycleError| ApiError::bad(field, e.to_string()))
}

/// Invoices and credit notes, newest first.
#[utoipa::path(get, path = "/api/v1/invoices", tag = "invoices", params(InvoiceQuery),
    responses((status = 200, body = InvoicePage),
        (status = 400, description = "bad filter", content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<InvoiceQuery>, QueryRejection>,
) -> Result<Json<InvoicePage>, ApiError> {
    let q = query(q)?;
    if let Some(period) = &q.period {
        check_period("period", period)?;
    }
    let limit = page_size(q.limit);
    let rows = state
        .store()
        .invoices(
            p.tenant_id(),
            q.account.as_deref(),
            q.period.as_deref(),
            q.before,
            limit as i64,
        )
        .await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(InvoicePage {
        items: rows.iter().map(list_item).collect(),
        next,
    }))
}

/// One invoice with its lines and taxes (checked as it is read: total = sum of lines).
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "invoices",
    params(("id" = i64, Path)),
    responses((status = 200, body = InvoiceDto),
        (status = 404, description = "no such invoice", content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<InvoiceDto>, ApiError> {
    Ok(Json(invoice_dto(
        &state.store().invoice(p.tenant_id(), id).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillRunBody {
    /// The month the period starts in.
    #[schema(example = "2026-10")]
    pub period: String,
    /// Leave the invoices as drafts (no numbers yet).
    #[serde(default)]
    pub draft: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillRunDto {
    pub period: String,
    pub accounts: u64,
    pub created: u64,
    /// Accounts that already had an invoice for the period.
    pub existing: u64,
    /// Accounts whose period has not ended (anniversary cycles).
    pub not_due: u64,
    pub days_summed: u64,
    pub total: String,
    pub first_number: Option<String>,
    pub last_number: Option<String>,
    /// Accounts not invoiced, with why.
    pub failed: Vec<BillRunFailure>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillRunFailure {
    pub account: String,
    pub reason: String,
}

/// Invoices every account for a period: one invoice each, safe to repeat (accounts already
/// invoiced are skipped).
#[utoipa::path(post, path = "/api/v1/bill-runs", tag = "invoices", request_body = BillRunBody,
    responses((status = 200, body = BillRunDto),
        (status = 400, description = "bad period", content_type = "application/problem+json")))]
pub async fn run(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BillRunDto>, ApiError> {
    let b: BillRunBody = json_body(body)?;
    let label = check_period("period", &b.period)?;
    let opts = BillRunOptions {
        finalize: !b.draft,
        batch: DEFAULT_BATCH,
        today: today(&p)?,
    };
    let s = state
        .store()
        .bill_run(&p.tenant, label, &opts, |_, _| {})
        .await?;
    // Credit left by earlier overpayments settles the new invoices.
    state.store().allocate_all_credit(p.tenant_id()).await?;
    let dto = BillRunDto {
        period: s.period.clone(),
        accounts: s.accounts,
        created: s.created,
        existing: s.existing,
        not_due: s.not_due,
        days_summed: s.days_summed,
        total: money(s.total, p.tenant.currency),
        first_number: s.first_number.clone(),
        last_number: s.last_number.clone(),
        failed: s
            .failed
            .iter()
            .map(|(account, reason)| BillRunFailure {
                account: account.clone(),
                reason: reason.clone(),
            })
            .collect(),
    };
    if s.created > 0 {
        let after = serde_json::json!({"created": s.created, "total": dto.total,
            "first_number": dto.first_number, "last_number": dto.last_number,
            "draft": b.draft});
        audit(&state, &p, "bill_run", "period", &s.period, None, &after).await?;
    }
    Ok(Json(dto))
}

/// Finalizes a draft: takes its number and posts its tax.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/finalize", tag = "invoices",
    params(("id" = i64, Path)),
    responses((status = 200, body = InvoiceDto),
        (status = 404, description = "no such invoice", content_type = "application/problem+json"),
        (status = 422, description = "not a draft", content_type = "application/problem+json")))]
pub async fn finalize(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<InvoiceDto>, ApiError> {
    let inv = state
        .store()
        .finalize_invoice(p.tenant_id(), id, today(&p)?)
        .await?;
    state
        .store()
        .allocate_credit(p.tenant_id(), &inv.account)
        .await?;
    let inv = state.store().invoice(p.tenant_id(), id).await?;
    let dto = invoice_dto(&inv);
    let after = serde_json::json!({"number": dto.number, "total": dto.total});
    audit(
        &state,
        &p,
        "invoice.finalize",
        "invoice",
        &id.to_string(),
        None,
        &after,
    )
    .await?;
    Ok(Json(dto))
}

/// Voids a draft; its usage goes on the next run. Finalized invoices are credited instead.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/void", tag = "invoices",
    params(("id" = i64, Path)),
    responses((status = 204, description = "voided"),
        (status = 404, description = "no such invoice", content_type = "application/problem+json"),
        (status = 422, description = "not a draft", content_type = "application/problem+json")))]
pub async fn void(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state.store().void_invoice(p.tenant_id(), id).await?;
    let after = serde_json::json!({"status": "void"});
    audit(
        &state,
        &p,
        "invoice.void",
        "invoice",
        &id.to_string(),
        None,
        &after,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditBody {
    /// Why the invoice is credited (printed on the credit note).
    pub reason: String,
}

/// Credits a finalized invoice in full: a credit note with its own number, and the money back
/// into the account's wallet.
#[utoipa::path(post, path = "/api/v1/invoices/{id}/credit-note", tag = "invoices",
    params(("id" = i64, Path)), request_body = CreditBody,
    responses((status = 201, body = InvoiceDto),
        (status = 404, description = "no such invoice", content_type = "application/problem+json"),
        (status = 409, description = "already credited", content_type = "application/problem+json"),
        (status = 422, description = "not a finalized invoice", content_type = "application/problem+json")))]
pub async fn credit(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<InvoiceDto>), ApiError> {
    let b: CreditBody = json_body(body)?;
    let cn = state
        .store()
        .credit_invoice(p.tenant_id(), id, &b.reason, today(&p)?)
        .await?;
    let dto = invoice_dto(&cn);
    let after = serde_json::json!({"credit_note": dto.number, "total": dto.total,
        "reason": b.reason.trim()});
    audit(
        &state,
        &p,
        "invoice.credit",
        "invoice",
        &id.to_string(),
        None,
        &after,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(dto)))
}

fn own_account(p: &Principal) -> Result<&str, ApiError> {
    p.account_code
        .as_deref()
        .ok_or_else(|| StoreError::not_found("account", "(none bound to this user)").into())
}

/// The caller's own invoice `id`; another account's is "not found", like a missing one.
pub async fn own_invoice(
    state: &AppState,
    p: &Principal,
    id: i64,
) -> Result<StoredInvoice, ApiError> {
    let code = own_account(p)?;
    let inv = state.store().invoice(p.tenant_id(), id).await?;
    if inv.account != code || inv.status == "draft" {
        return Err(StoreError::not_found("invoice", id.to_string()).into());
    }
    Ok(inv)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MyInvoiceQuery {
    /// Cursor: the `next` of the previous page.
    pub before: Option<i64>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

/// The caller's invoices and credit notes (drafts are not shown), newest first.
#[utoipa::path(get, path = "/api/v1/me/invoices", tag = "self-service", params(MyInvoiceQuery),
    responses((status = 200, body = InvoicePage),
        (status = 404, description = "no account is bound to this user", content_type = "application/problem+json")))]
pub async fn my_list(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<MyInvoiceQuery>, QueryRejection>,
) -> Result<Json<InvoicePage>, ApiError> {
    let q = query(q)?;
    let code = own_account(&p)?;
    let limit = page_size(q.limit);
    let rows = state
        .store()
        .invoices(p.tenant_id(), Some(code), None, q.before, limit as i64)
        .await?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(InvoicePage {
        items: rows
            .iter()
            .filter(|r| r.status != "draft")
            .map(list_item)
            .collect(),
        next,
    }))
}

/// One of the caller's invoices.
#[utoipa::path(get, path = "/api/v1/me/invoices/{id}", tag = "self-service",
    params(("id" = i64, Path)),
    responses((status = 200, body = InvoiceDto),
        (status = 404, description = "no such invoice of this account", content_type = "application/problem+json")))]
pub async fn my_get(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<InvoiceDto>, ApiError> {
    Ok(Json(invoice_dto(&own_invoice(&state, &p, id).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocQuery {
    /// zh-CN (default) or en.
    pub lang: Option<String>,
}

fn doc_lang(q: &DocQuery) -> Result<toll_billing::Lang, ApiError> {
    match &q.lang {
        None => Ok(toll_billing::Lang::Zh),
        Some(l) => l.parse().map_err(|e: String| ApiError::bad("lang", e)),
    }
}

/// The invoice as a PDF (fonts embedded), in Chinese or English.
#[utoipa::path(get, path = "/api/v1/invoices/{id}/pdf", tag = "invoices",
    params(("id" = i64, Path), DocQuery),
    responses((status = 200, content_type = "application/pdf", description = "the PDF"),
        (status = 404, description = "no such invoice", content_type = "application/problem+json"),
        (status = 422, description = "a customer string has a character the invoice fonts lack", content_type = "application/problem+json")))]
pub async fn pdf(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    q: Result<Query<DocQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let lang = doc_lang(&query(q)?)?;
    let inv = state.store().invoice(p.tenant_id(), id).await?;
    crate::invoice_docs::pdf_response(crate::invoice_docs::document(&p.tenant, &inv, lang)?).await
}

/// The invoice as a printable HTML page, in Chinese or English.
#[utoipa::path(get, path = "/api/v1/invoices/{id}/html", tag = "invoices",
    params(("id" = i64, Path), DocQuery),
    responses((status = 200, content_type = "text/html", description = "the page"),
        (status = 404, description = "no such invoice", content_type = "application/problem+json")))]
pub async fn html(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    q: Result<Query<DocQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let lang = doc_lang(&query(q)?)?;
    let inv = state.store().invoice(p.tenant_id(), id).await?;
    crate::invoice_docs::html_response(&crate::invoice_docs::document(&p.tenant, &inv, lang)?)
}

/// One of the caller's invoices as a PDF.
#[utoipa::path(get, path = "/api/v1/me/invoices/{id}/pdf", tag = "self-service",
    params(("id" = i64, Path), DocQuery),
    responses((status = 200, content_type = "application/pdf", description = "the PDF"),
        (status = 404, description = "no such invoice of this account", content_type = "application/problem+json")))]
pub async fn my_pdf(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    q: Result<Query<DocQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let lang = doc_lang(&query(q)?)?;
    let inv = own_invoice(&state, &p, id).await?;
    crate::invoice_docs::pdf_response(crate::invoice_docs::document(&p.tenant, &inv, lang)?).await
}
