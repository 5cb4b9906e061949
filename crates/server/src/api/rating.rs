//! Rating over HTTP: the price of one event with its breakdown, and prepaid authorisation (the
//! longest usage an available amount pays for), with the tenant's active tariff. Pure
//! computations: nothing is charged or stored.

use axum::Json;
use axum::extract::State;
use rust_decimal::Decimal;
use serde::Deserialize;
use toll_rating::event_text::EventText;
use toll_rating::view::{MaxUsageView, RatedView, max_usage_view, rated_view};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// One event to price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateRequest {
    /// The rating profile's tenant (default: your tenant's slug).
    pub tenant: Option<String>,
    #[schema(example = "call")]
    pub category: String,
    #[schema(example = "alice")]
    pub subject: String,
    /// The number called, as dialled or in E.164.
    #[schema(example = "+86 186 0000 1111")]
    pub destination: String,
    /// RFC 3339 with the caller's offset.
    #[schema(example = "2026-11-23T07:59:00+08:00")]
    pub start: String,
    /// Voice: a duration (`90s`, `1m30s`) or seconds; SMS and data: a unit count.
    #[schema(example = "150s")]
    pub usage: String,
    /// `voice`, `sms` or `data` (default: from the category).
    pub tor: Option<String>,
    /// The carrier of the route, if the switch knows it (else the callee's number range).
    pub carrier: Option<String>,
}

/// An authorisation: the event (its `usage` is the most asked for) and what is available.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    pub tenant: Option<String>,
    #[schema(example = "call")]
    pub category: String,
    #[schema(example = "alice")]
    pub subject: String,
    #[schema(example = "0085212345678")]
    pub destination: String,
    #[schema(example = "2026-11-23T10:00:00+08:00")]
    pub start: String,
    /// The longest usage asked for (the answer is at most this).
    #[schema(example = "1h")]
    pub usage: String,
    pub tor: Option<String>,
    pub carrier: Option<String>,
    /// What the caller has available, in the tariff's currency.
    #[schema(example = "5.00")]
    pub balance: String,
}

impl RateRequest {
    fn text<'a>(&'a self, slug: &'a str) -> EventText<'a> {
        EventText {
            tenant: self.tenant.as_deref().unwrap_or(slug),
            category: &self.category,
            subject: &self.subject,
            destination: &self.destination,
            start: &self.start,
            usage: &self.usage,
            tor: self.tor.as_deref().unwrap_or(""),
            route_carrier: self.carrier.as_deref(),
        }
    }
}

impl AuthorizeRequest {
    fn text<'a>(&'a self, slug: &'a str) -> EventText<'a> {
        EventText {
            tenant: self.tenant.as_deref().unwrap_or(slug),
            category: &self.category,
            subject: &self.subject,
            destination: &self.destination,
            start: &self.start,
            usage: &self.usage,
            tor: self.tor.as_deref().unwrap_or(""),
            route_carrier: self.carrier.as_deref(),
        }
    }
}

/// Prices one event with the active tariff and explains it piece by piece.
#[utoipa::path(post, path = "/api/v1/rate", tag = "rating",
    request_body = RateRequest,
    responses((status = 200, body = RatedView),
        (status = 400, description = "a field is invalid", content_type = "application/problem+json"),
        (status = 409, description = "no active tariff", content_type = "application/problem+json"),
        (status = 422, description = "the event cannot be rated", content_type = "application/problem+json")))]
pub async fn rate(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<RateRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RatedView>, ApiError> {
    let Json(r) = body.map_err(|e| ApiError::bad("body", e.body_text()))?;
    let active = state.tariffs().active(state.store(), p.tenant_id()).await?;
    let t = r.text(&p.tenant.slug);
    let ev = t.parse().map_err(|e| ApiError::bad(e.field, e.reason))?;
    let started = std::time::Instant::now();
    let rated = toll_rating::rate(&active.tariff, &ev);
    state.rating_latency().observe(started.elapsed());
    let rated = rated.map_err(|e| ApiError::Unratable(e.to_string()))?;
    Ok(Json(rated_view(&active.tariff, &ev, &rated)))
}

/// How long (or how many units) the available balance pays for, at most the usage asked.
#[utoipa::path(post, path = "/api/v1/authorize", tag = "rating",
    request_body = AuthorizeRequest,
    responses((status = 200, body = MaxUsageView),
        (status = 400, description = "a field is invalid", content_type = "application/problem+json"),
        (status = 409, description = "no active tariff", content_type = "application/problem+json"),
        (status = 422, description = "the event cannot be rated", content_type = "application/problem+json")))]
pub async fn authorize(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<AuthorizeRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<MaxUsageView>, ApiError> {
    let Json(r) = body.map_err(|e| ApiError::bad("body", e.body_text()))?;
    let balance: Decimal = r
        .balance
        .trim()
        .parse()
        .map_err(|_| ApiError::bad("balance", "a decimal amount, e.g. 5.00"))?;
    if balance.is_sign_negative() {
        return Err(ApiError::bad("balance", "must not be negative"));
    }
    let active = state.tariffs().active(state.store(), p.tenant_id()).await?;
    let t = r.text(&p.tenant.slug);
    let ev = t.parse().map_err(|e| ApiError::bad(e.field, e.reason))?;
    let started = std::time::Instant::now();
    let m = toll_rating::max_usage(&active.tariff, &ev, balance);
    state.rating_latency().observe(started.elapsed());
    let m = m.map_err(|e| ApiError::Unratable(e.to_string()))?;
    Ok(Json(max_usage_view(&ev, &m)))
}
