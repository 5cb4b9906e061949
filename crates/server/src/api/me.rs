//! Customer self-service: a customer's own account, usage and top-up requests.
//!
//! Every handler here takes the account from the principal (`account_code`, set when the
//! customer user was created), never from the request: there is no parameter a customer could
//! change to reach another account. A customer user without an account sees 404.
//!
//! A customer cannot credit their own wallet (money received is an operator's posting); they
//! ask, the request is kept with an audit entry, and operators list the requests
//! (`GET /api/v1/top-up-requests`) and top up.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toll_core::Currency;
use toll_store::StoreError;
use toll_store::listing::TopUpRequest as StoredRequest;
use utoipa::{IntoParams, ToSchema};

use crate::api::accounts::{Account, account_of};
use crate::api::cdrs::{CdrPage, CdrParams, cdr_dto, cursor, search_of};
use crate::api::types::{audit, json_body, money, page_size, parse_money, query, rfc3339};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// Longest note of a top-up request.
const MAX_NOTE_CHARS: usize = 500;

fn own_account(p: &Principal) -> Result<&str, ApiError> {
    p.account_code
        .as_deref()
        .ok_or_else(|| StoreError::not_found("account", "(none bound to this user)").into())
}

/// The caller's account: balance, lines, and each allowance with what is used of it.
#[utoipa::path(get, path = "/api/v1/me/account", tag = "self-service",
    responses((status = 200, body = Account),
        (status = 404, description = "no account is bound to this user", content_type = "application/problem+json")))]
pub async fn account(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Account>, ApiError> {
    let code = own_account(&p)?;
    Ok(Json(account_of(&state, &p, code).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start of the window (RFC 3339, inclusive).
    pub from: Option<String>,
    /// End of the window (RFC 3339, exclusive).
    pub to: Option<String>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

/// The caller's rated calls, SMS and data, in start order.
#[utoipa::path(get, path = "/api/v1/me/usage", tag = "self-service",
    params(UsageQuery),
    responses((status = 200, body = CdrPage),
        (status = 404, description = "no account is bound to this user", content_type = "application/problem+json")))]
pub async fn usage(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<CdrPage>, ApiError> {
    let q = query(q)?;
    let code = own_account(&p)?.to_string();
    let n = page_size(q.limit);
    let params = CdrParams {
        number: None,
        account: Some(code),
        from: q.from,
        to: q.to,
        after: q.after,
        limit: q.limit,
    };
    let s = search_of(&state, &p, &params, n).await?;
    let rows = state.store().cdr_search(p.tenant_id(), &s).await?;
    let next = (rows.len() == n).then(|| rows.last().map(cursor)).flatten();
    let cur = p.tenant.currency;
    Ok(Json(CdrPage {
        items: rows.into_iter().map(|c| cdr_dto(c, cur)).collect(),
        next,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTopUpRequest {
    #[schema(example = "100.00")]
    pub amount: String,
    /// How the customer will pay, or anything the operator should know.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopUpRequest {
    pub id: i64,
    pub account: String,
    pub amount: String,
    pub note: String,
    /// Who asked (`user:LOGIN`).
    pub actor: String,
    /// open.
    pub status: String,
    pub created_at: String,
}

fn request_dto(r: StoredRequest, cur: Currency) -> TopUpRequest {
    TopUpRequest {
        id: r.id,
        account: r.account,
        amount: money(r.amount, cur),
        note: r.note,
        actor: r.actor,
        status: r.status,
        created_at: rfc3339(r.created_ms),
    }
}

/// Asks for a top-up of the caller's account; an operator sees the request and posts it.
#[utoipa::path(post, path = "/api/v1/me/top-up-requests", tag = "self-service",
    request_body = NewTopUpRequest,
    responses((status = 201, body = TopUpRequest),
        (status = 400, description = "bad amount", content_type = "application/problem+json"),
        (status = 404, description = "no account is bound to this user", content_type = "application/problem+json")))]
pub async fn request_top_up(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TopUpRequest>), ApiError> {
    let code = own_account(&p)?.to_string();
    let b: NewTopUpRequest = json_body(body)?;
    let amount = parse_money("amount", &b.amount)?;
    if amount.0 <= 0 {
        return Err(ApiError::bad("amount", "must be greater than 0"));
    }
    if b.note.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::bad(
            "note",
            format!("longer than {MAX_NOTE_CHARS} characters"),
        ));
    }
    let r = state
        .store()
        .request_top_up(p.tenant_id(), &code, amount, b.note.trim(), &p.actor)
        .await?;
    let dto = request_dto(r, p.tenant.currency);
    let after = serde_json::json!({"account": dto.account, "amount": dto.amount,
        "note": dto.note});
    audit(
        &state,
        &p,
        "account.top_up_request",
        "account",
        &code,
        None,
        &after,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(dto)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Only this account's requests.
    pub account: Option<String>,
    /// Cursor: the `next` of the previous page.
    pub before: Option<i64>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopUpRequestPage {
    pub items: Vec<TopUpRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// Customers' top-up requests, newest first: what operators act on.
#[utoipa::path(get, path = "/api/v1/top-up-requests", tag = "accounts",
    params(RequestQuery),
    responses((status = 200, body = TopUpRequestPage)))]
pub async fn list_requests(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<RequestQuery>, QueryRejection>,
) -> Result<Json<TopUpRequestPage>, ApiError> {
    let q = query(q)?;
    let n = page_size(q.limit);
    let rows = state
        .store()
        .top_up_requests(p.tenant_id(), q.account.as_deref(), q.before, n)
        .await?;
    let next = (rows.len() == n)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let cur = p.tenant.currency;
    Ok(Json(TopUpRequestPage {
        items: rows.into_iter().map(|r| request_dto(r, cur)).collect(),
        next,
    }))
}
