//! Money on the ledger: top-ups into a wallet, a wallet's entries, and the verification of the
//! whole chain (`toll ledger verify` over HTTP).
//!
//! A top-up's `reference` (the payment channel's transaction id) is its ledger key: the same
//! payment posted twice — a retried request, a re-sent notification — counts once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::types::{audit, json_body, money, page_size, parse_money, query, rfc3339};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpBody {
    /// The amount received, in the tenant's currency.
    #[schema(example = "50.00")]
    pub amount: String,
    /// The payment's reference (its transaction id at the channel): a top-up with a reference
    /// already posted is not posted again.
    #[schema(example = "alipay-2026112300001")]
    pub reference: String,
    /// A note kept on the ledger entry.
    #[serde(default)]
    pub memo: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopUp {
    pub account: String,
    pub amount: String,
    pub reference: String,
    /// The ledger sequence number of the posting.
    pub seq: i64,
    /// The reference had been posted before: nothing was posted now.
    pub duplicate: bool,
    /// The balance after it.
    pub balance: String,
}

/// Credits a wallet with money received (a payment channel into the account).
#[utoipa::path(post, path = "/api/v1/accounts/{code}/top-ups", tag = "ledger",
    params(("code" = String, Path)),
    request_body = TopUpBody,
    responses((status = 201, body = TopUp, description = "posted"),
        (status = 200, body = TopUp, description = "the reference was posted before; nothing changed"),
        (status = 400, description = "bad amount or reference", content_type = "application/problem+json"),
        (status = 404, description = "no such account", content_type = "application/problem+json")))]
pub async fn top_up(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TopUp>), ApiError> {
    let b: TopUpBody = json_body(body)?;
    let amount = parse_money("amount", &b.amount)?;
    if amount.0 <= 0 {
        return Err(ApiError::bad("amount", "must be greater than 0"));
    }
    let reference = b.reference.trim();
    if reference.is_empty() {
        return Err(ApiError::bad(
            "reference",
            "missing: the payment's reference makes a retried top-up count once",
        ));
    }
    let t = p.tenant_id();
    let cur = p.tenant.currency;
    let before = state.store().account(t, &code).await?;
    let memo = if b.memo.trim().is_empty() {
        format!("top-up {reference} by {}", p.actor)
    } else {
        b.memo.trim().to_string()
    };
    let posted = state
        .store()
        .top_up(t, &code, amount, reference, &memo)
        .await?;
    let after = state.store().account(t, &code).await?;
    let dto = TopUp {
        account: code.clone(),
        amount: money(amount, cur),
        reference: reference.to_string(),
        seq: posted.first_seq,
        duplicate: posted.duplicate,
        balance: money(after.balance, cur),
    };
    if !posted.duplicate {
        let before = serde_json::json!({"balance": money(before.balance, cur)});
        let after = serde_json::json!({"balance": dto.balance, "amount": dto.amount,
            "reference": dto.reference});
        audit(
            &state,
            &p,
            "account.top_up",
            "account",
            &code,
            Some(&before),
            &after,
        )
        .await?;
    }
    let status = if posted.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(dto)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryQuery {
    /// Cursor: the `next` of the previous page (a sequence number).
    pub before: Option<i64>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerEntry {
    pub seq: i64,
    /// top_up, charge, proration, …
    pub kind: String,
    pub at: String,
    /// Into the wallet positive, out of it negative.
    #[schema(example = "-0.30")]
    pub amount: String,
    pub memo: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerPage {
    pub items: Vec<LedgerEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// The entries that moved an account's wallet, newest first.
#[utoipa::path(get, path = "/api/v1/accounts/{code}/ledger", tag = "ledger",
    params(("code" = String, Path), EntryQuery),
    responses((status = 200, body = LedgerPage),
        (status = 404, description = "no such account", content_type = "application/problem+json")))]
pub async fn entries(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    q: Result<Query<EntryQuery>, QueryRejection>,
) -> Result<Json<LedgerPage>, ApiError> {
    let q = query(q)?;
    let n = page_size(q.limit);
    let rows = state
        .store()
        .wallet_entries(p.tenant_id(), &code, q.before, n)
        .await?;
    let next = (rows.len() == n)
        .then(|| rows.last().map(|r| r.seq))
        .flatten();
    let cur = p.tenant.currency;
    Ok(Json(LedgerPage {
        items: rows
            .into_iter()
            .map(|e| LedgerEntry {
                seq: e.seq,
                kind: e.kind,
                at: rfc3339(e.at_ms),
                amount: money(e.amount, cur),
                memo: e.memo,
            })
            .collect(),
        next,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LedgerVerification {
    /// True when the hash chain is unbroken and every account's totals match its entries.
    pub intact: bool,
    pub entries_checked: u64,
    /// The first broken link's sequence number, and why.
    pub first_break_seq: Option<i64>,
    pub first_break_reason: Option<String>,
    /// Ledger accounts whose stored totals differ from their entries.
    pub account_mismatches: Vec<i64>,
}

/// Re-derives the tenant's hash chain and account totals from the entries.
#[utoipa::path(get, path = "/api/v1/ledger/verify", tag = "ledger",
    responses((status = 200, body = LedgerVerification)))]
pub async fn verify(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<LedgerVerification>, ApiError> {
    let r = state.store().verify_ledger(p.tenant_id()).await?;
    let intact = r.is_intact();
    let (seq, reason) = match r.first_break {
        Some((s, why)) => (Some(s), Some(why)),
        None => (None, None),
    };
    Ok(Json(LedgerVerification {
        intact,
        entries_checked: r.entries_checked,
        first_break_seq: seq,
        first_break_reason: reason,
        account_mismatches: r.account_mismatches,
    }))
}
