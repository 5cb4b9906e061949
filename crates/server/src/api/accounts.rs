//! Customers, billing accounts, subscriber lines, subscriptions and plan changes.
//!
//! A plan change is priced before it is made: `…/plan-change/preview` answers what the change
//! would credit and charge on a day (computed by the store exactly as the change itself
//! computes it) and writes nothing, so an operator quotes the customer the amount they will
//! see on the ledger.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toll_core::Currency;
use toll_store::accounts::{AccountMode, AccountView, SubscriberView};
use toll_store::listing::{AccountSearch, AccountSummary, ChangePreview};
use toll_store::subscriptions::{ChangeView, ChangeWhen, SubscribeRequest, SubscriptionView};
use utoipa::{IntoParams, ToSchema};

use crate::api::types::{actor, audit, json_body, money, page_size, parse_money, query, rfc3339};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

// ---------------------------------------------------------------------------------------------
// DTOs
// ---------------------------------------------------------------------------------------------

/// An account in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountItem {
    pub code: String,
    pub customer: String,
    pub customer_name: String,
    /// prepaid, postpaid or unlimited.
    pub mode: String,
    /// What the customer holds (negative when owing), in the tenant's currency.
    #[schema(example = "100.00")]
    pub balance: String,
    pub lines: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub items: Vec<AccountItem>,
    /// Pass as `?after=` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One allowance bucket: what a period includes and what is used of it, in the usage's base
/// unit (seconds, messages, bytes).
#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// voice, sms, data …
    pub usage: String,
    /// Services it is limited to (e.g. `wechat`), when it is.
    pub services: Option<String>,
    pub included: i64,
    pub used: i64,
    pub remaining: i64,
    pub starts_at: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Subscription {
    pub id: i64,
    pub account: String,
    pub plan: String,
    pub version: i64,
    pub status: String,
    /// The day periods are counted from.
    pub anchor: String,
    pub period_end: Option<String>,
    pub lines: Vec<String>,
    pub buckets: Vec<Bucket>,
}

impl From<SubscriptionView> for Subscription {
    fn from(s: SubscriptionView) -> Subscription {
        Subscription {
            id: s.id,
            account: s.account,
            plan: s.plan,
            version: s.version,
            status: s.status,
            anchor: s.anchor,
            period_end: s.period_end,
            lines: s.lines,
            buckets: s
                .buckets
                .into_iter()
                .map(|b| Bucket {
                    usage: b.usage,
                    services: b.services,
                    included: b.initial,
                    used: b.initial.saturating_sub(b.remaining),
                    remaining: b.remaining,
                    starts_at: rfc3339(b.starts_ms),
                    expires_at: rfc3339(b.expires_ms),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Line {
    pub number: String,
    pub status: String,
}

/// An account with its money, lines and subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Account {
    pub code: String,
    pub customer: String,
    pub currency: String,
    /// prepaid, postpaid or unlimited.
    pub mode: String,
    #[schema(example = "100.00")]
    pub balance: String,
    /// Postpaid: how far below zero the balance may go.
    pub credit_limit: Option<String>,
    /// How much more may be charged before the floor; absent when unlimited.
    pub available: Option<String>,
    pub lines: Vec<Line>,
    pub subscriptions: Vec<Subscription>,
}

pub(crate) fn mode_name(m: AccountMode) -> &'static str {
    match m {
        AccountMode::Prepaid => "prepaid",
        AccountMode::Postpaid { .. } => "postpaid",
        AccountMode::Unlimited => "unlimited",
    }
}

/// The account as the API shows it (also the customer's own view).
pub(crate) async fn account_of(
    state: &AppState,
    p: &Principal,
    code: &str,
) -> Result<Account, ApiError> {
    let t = p.tenant_id();
    let a: AccountView = state.store().account(t, code).await?;
    let lines: Vec<SubscriberView> = state.store().account_lines(t, code).await?;
    let subs = state.store().account_subscriptions(t, code).await?;
    let cur = a.currency;
    Ok(Account {
        code: a.code,
        customer: a.customer,
        currency: cur.as_str().to_string(),
        mode: mode_name(a.mode).into(),
        balance: money(a.balance, cur),
        credit_limit: match a.mode {
            AccountMode::Postpaid { credit_limit } => Some(money(credit_limit, cur)),
            _ => None,
        },
        available: a.available.map(|m| money(m, cur)),
        lines: lines
            .into_iter()
            .map(|l| Line {
                number: l.number,
                status: l.status,
            })
            .collect(),
        subscriptions: subs.into_iter().map(Subscription::from).collect(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccountQuery {
    /// Part of an account code, a customer's name, or a line's number.
    pub q: Option<String>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
    /// Page size (1..=500, default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    #[schema(example = "c1")]
    pub code: String,
    #[schema(example = "张三")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// The customer's code.
    pub customer: String,
    pub code: String,
    /// prepaid (default), postpaid or unlimited.
    pub mode: Option<String>,
    /// Postpaid only: how far below zero the balance may go, e.g. "200.00".
    pub credit_limit: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    /// The line's number as written (`+86 138 0013 8000`); kept normalised.
    pub number: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// The plan's code; its active version is subscribed.
    pub plan: String,
    /// The lines it serves (one, or a family plan's members).
    pub lines: Vec<String>,
    /// First day, `YYYY-MM-DD` in the tenant's calendar (default: today).
    pub start: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// The plan to change to (its active version).
    pub plan: Option<String>,
    /// The day of the change, `YYYY-MM-DD` (default: today).
    pub date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanChangePreview {
    pub from_plan: String,
    pub from_version: i64,
    pub to_plan: String,
    pub to_version: i64,
    pub date: String,
    pub period_start: String,
    /// Exclusive: the first day of the next period.
    pub period_end: String,
    pub days_in_period: u32,
    pub days_remaining: u32,
    /// The unused part of the old fee, given back.
    #[schema(example = "50.00")]
    pub credit: String,
    /// The new fee for the days left.
    #[schema(example = "100.00")]
    pub charge: String,
    /// charge − credit: what the wallet pays (negative: receives).
    #[schema(example = "50.00")]
    pub net: String,
}

fn preview_dto(p: ChangePreview, cur: Currency) -> PlanChangePreview {
    PlanChangePreview {
        from_plan: p.from_plan,
        from_version: p.from_version,
        to_plan: p.to_plan,
        to_version: p.to_version,
        date: p.date,
        period_start: p.period_start,
        period_end: p.period_end,
        days_in_period: p.days_in_period,
        days_remaining: p.days_remaining,
        credit: money(p.credit, cur),
        charge: money(p.charge, cur),
        net: money(p.net, cur),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChangeRequest {
    pub plan: String,
    /// `now` (default; settled by days) or `period_end`.
    pub when: Option<String>,
    /// With `now`: the day, `YYYY-MM-DD` (default: today).
    pub date: Option<String>,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanChange {
    pub id: i64,
    pub subscription: i64,
    /// The plan left (absent for a subscription's first version).
    pub from_plan: Option<String>,
    pub from_version: Option<i64>,
    pub to_plan: String,
    pub to_version: i64,
    /// now or period_end.
    pub effective: String,
    pub effective_date: String,
    pub actor: String,
    pub at: String,
    pub credit: String,
    pub charge: String,
}

fn change_dto(c: ChangeView, cur: Currency) -> PlanChange {
    PlanChange {
        id: c.id,
        subscription: c.subscription,
        from_plan: c.from_plan,
        from_version: c.from_version,
        to_plan: c.to_plan,
        to_version: c.to_version,
        effective: c.effective,
        effective_date: c.effective_date,
        actor: c.actor,
        at: rfc3339(c.at_ms),
        credit: money(c.credit, cur),
        charge: money(c.charge, cur),
    }
}

fn date(field: &str, s: Option<&str>, p: &Principal) -> Result<jiff::civil::Date, ApiError> {
    match s {
        Some(s) => s
            .parse()
            .map_err(|e| ApiError::bad(field, format!("{s:?} is not a YYYY-MM-DD date: {e}"))),
        None => {
            let zone = p.tenant.zone()?;
            Ok(jiff::Timestamp::now().to_zoned(zone).date())
        }
    }
}

fn summary_item(a: AccountSummary, cur: Currency) -> AccountItem {
    AccountItem {
        code: a.code,
        customer: a.customer,
        customer_name: a.customer_name,
        mode: mode_name(a.mode).into(),
        balance: money(a.balance, cur),
        lines: a.lines,
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// Accounts in code order, a page at a time; `q` finds them by code, customer name or line.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    params(AccountQuery),
    responses((status = 200, body = AccountPage)))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<AccountQuery>, QueryRejection>,
) -> Result<Json<AccountPage>, ApiError> {
    let q = query(q)?;
    let n = page_size(q.limit);
    let rows = state
        .store()
        .accounts_page(
            p.tenant_id(),
            &AccountSearch {
                text: q.q,
                after: q.after,
                limit: n,
            },
        )
        .await?;
    let next = (rows.len() == n)
        .then(|| rows.last().map(|r| r.code.clone()))
        .flatten();
    let cur = p.tenant.currency;
    Ok(Json(AccountPage {
        items: rows.into_iter().map(|a| summary_item(a, cur)).collect(),
        next,
    }))
}

/// One account: balance, credit limit, mode, lines, and each subscription's allowances with
/// what is used of them.
#[utoipa::path(get, path = "/api/v1/accounts/{code}", tag = "accounts",
    params(("code" = String, Path)),
    responses((status = 200, body = Account),
        (status = 404, description = "no such account", content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
) -> Result<Json<Account>, ApiError> {
    Ok(Json(account_of(&state, &p, &code).await?))
}

/// Creates a customer (the person or company accounts belong to).
#[utoipa::path(post, path = "/api/v1/customers", tag = "accounts",
    request_body = NewCustomer,
    responses((status = 201, body = Customer),
        (status = 400, description = "bad code or name", content_type = "application/problem+json"),
        (status = 409, description = "the code exists", content_type = "application/problem+json")))]
pub async fn create_customer(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Customer>), ApiError> {
    let b: NewCustomer = json_body(body)?;
    if b.name.trim().is_empty() {
        return Err(ApiError::bad("name", "must not be empty"));
    }
    state
        .store()
        .create_customer(p.tenant_id(), b.code.trim(), b.name.trim())
        .await?;
    let c = Customer {
        code: b.code.trim().into(),
        name: b.name.trim().into(),
    };
    let after = serde_json::json!({"code": c.code, "name": c.name});
    audit(
        &state,
        &p,
        "customer.create",
        "customer",
        &c.code,
        None,
        &after,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

/// Opens a billing account (with its wallet) for a customer.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts",
    request_body = NewAccount,
    responses((status = 201, body = Account),
        (status = 400, description = "bad input", content_type = "application/problem+json"),
        (status = 404, description = "no such customer", content_type = "application/problem+json"),
        (status = 409, description = "the code exists", content_type = "application/problem+json")))]
pub async fn create_account(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Account>), ApiError> {
    let b: NewAccount = json_body(body)?;
    let mode = match (b.mode.as_deref().unwrap_or("prepaid"), &b.credit_limit) {
        ("prepaid", None) => AccountMode::Prepaid,
        ("unlimited", None) => AccountMode::Unlimited,
        ("postpaid", Some(l)) => AccountMode::Postpaid {
            credit_limit: parse_money("credit_limit", l)?,
        },
        ("postpaid", None) => {
            return Err(ApiError::bad(
                "credit_limit",
                "a postpaid account needs one",
            ));
        }
        ("prepaid" | "unlimited", Some(_)) => {
            return Err(ApiError::bad(
                "credit_limit",
                "only a postpaid account has one",
            ));
        }
        (other, _) => {
            return Err(ApiError::bad(
                "mode",
                format!("{other:?}: expected prepaid, postpaid or unlimited"),
            ));
        }
    };
    state
        .store()
        .create_account(p.tenant_id(), b.customer.trim(), b.code.trim(), mode)
        .await?;
    let a = account_of(&state, &p, b.code.trim()).await?;
    let after = serde_json::json!({"code": a.code, "customer": a.customer, "mode": a.mode,
        "credit_limit": a.credit_limit});
    audit(
        &state,
        &p,
        "account.create",
        "account",
        &a.code,
        None,
        &after,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Adds a line (a phone number) to an account.
#[utoipa::path(post, path = "/api/v1/accounts/{code}/subscribers", tag = "accounts",
    params(("code" = String, Path)),
    request_body = NewLine,
    responses((status = 201, body = Line),
        (status = 400, description = "not a number", content_type = "application/problem+json"),
        (status = 404, description = "no such account", content_type = "application/problem+json"),
        (status = 409, description = "the number is another line already", content_type = "application/problem+json")))]
pub async fn add_subscriber(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Line>), ApiError> {
    let b: NewLine = json_body(body)?;
    let s = state
        .store()
        .add_subscriber(p.tenant_id(), &code, &b.number)
        .await?;
    let after = serde_json::json!({"number": s.number, "account": s.account});
    audit(
        &state,
        &p,
        "subscriber.create",
        "subscriber",
        &s.number,
        None,
        &after,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Line {
            number: s.number,
            status: s.status,
        }),
    ))
}

/// Subscribes lines of an account to the active version of a plan; the first period's fee is
/// charged at once (a prepaid account without the money is refused, 422).
#[utoipa::path(post, path = "/api/v1/accounts/{code}/subscriptions", tag = "accounts",
    params(("code" = String, Path)),
    request_body = NewSubscription,
    responses((status = 201, body = Subscription),
        (status = 400, description = "bad input", content_type = "application/problem+json"),
        (status = 404, description = "no such account or active plan", content_type = "application/problem+json"),
        (status = 422, description = "refused (no money, a base plan already …)", content_type = "application/problem+json")))]
pub async fn subscribe(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Subscription>), ApiError> {
    let b: NewSubscription = json_body(body)?;
    let start = date("start", b.start.as_deref(), &p)?;
    let s = state
        .store()
        .subscribe(
            &p.tenant,
            &SubscribeRequest {
                account: &code,
                plan: &b.plan,
                lines: &b.lines,
                start,
            },
            &actor(&p)?,
        )
        .await?;
    let after = serde_json::json!({"account": s.account, "plan": s.plan, "version": s.version,
        "lines": s.lines, "start": s.anchor});
    audit(
        &state,
        &p,
        "subscription.create",
        "subscription",
        &s.id.to_string(),
        None,
        &after,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

/// One subscription with its buckets.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}", tag = "accounts",
    params(("id" = i64, Path)),
    responses((status = 200, body = Subscription),
        (status = 404, description = "no such subscription", content_type = "application/problem+json")))]
pub async fn subscription(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<Subscription>, ApiError> {
    Ok(Json(
        state.store().subscription(p.tenant_id(), id).await?.into(),
    ))
}

/// What changing the subscription's plan on a day would credit and charge. Changes nothing.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}/plan-change/preview", tag = "accounts",
    params(("id" = i64, Path), PreviewQuery),
    responses((status = 200, body = PlanChangePreview),
        (status = 400, description = "bad plan or date", content_type = "application/problem+json"),
        (status = 404, description = "no such subscription or active plan", content_type = "application/problem+json"),
        (status = 422, description = "already on that plan, or another currency", content_type = "application/problem+json")))]
pub async fn preview_change(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    q: Result<Query<PreviewQuery>, QueryRejection>,
) -> Result<Json<PlanChangePreview>, ApiError> {
    let q = query(q)?;
    let plan = q
        .plan
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::bad("plan", "missing: ?plan=CODE"))?;
    let on = match q.date.as_deref() {
        Some(d) => Some(date("date", Some(d), &p)?),
        None => None,
    };
    let pv = state
        .store()
        .preview_plan_change(&p.tenant, id, plan.trim(), on)
        .await?;
    Ok(Json(preview_dto(pv, p.tenant.currency)))
}

/// Changes the plan: `now` settles the rest of the period by days (the preview's amounts) in
/// one ledger transaction; `period_end` records the change for the renewal.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/plan-change", tag = "accounts",
    params(("id" = i64, Path)),
    request_body = PlanChangeRequest,
    responses((status = 200, body = PlanChange),
        (status = 400, description = "bad input", content_type = "application/problem+json"),
        (status = 404, description = "no such subscription or active plan", content_type = "application/problem+json"),
        (status = 422, description = "refused (same plan, backdated, no money …)", content_type = "application/problem+json")))]
pub async fn change_plan(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlanChange>, ApiError> {
    let b: PlanChangeRequest = json_body(body)?;
    let when = match b.when.as_deref().unwrap_or("now") {
        "now" => ChangeWhen::Now(date("date", b.date.as_deref(), &p)?),
        "period_end" => ChangeWhen::PeriodEnd,
        other => {
            return Err(ApiError::bad(
                "when",
                format!("{other:?}: expected now or period_end"),
            ));
        }
    };
    let c = change_plan_audited(&state, &p, id, b.plan.trim(), when, b.comment.trim()).await?;
    Ok(Json(change_dto(c, p.tenant.currency)))
}

/// Changes a subscription's plan and writes the audit entry (plan and version before; plan,
/// version, effect and amounts after): the API and the admin UI change plans through this one
/// function, so that both are refused and recorded alike.
pub(crate) async fn change_plan_audited(
    state: &AppState,
    p: &Principal,
    id: i64,
    plan: &str,
    when: ChangeWhen,
    comment: &str,
) -> Result<ChangeView, ApiError> {
    let before = state.store().subscription(p.tenant_id(), id).await?;
    let c = state
        .store()
        .change_plan(&p.tenant, id, plan, when, &actor(p)?, comment)
        .await?;
    let cur = p.tenant.currency;
    let before = serde_json::json!({"plan": before.plan, "version": before.version});
    let after = serde_json::json!({"plan": c.to_plan, "version": c.to_version,
        "effective": c.effective, "effective_date": c.effective_date,
        "credit": money(c.credit, cur), "charge": money(c.charge, cur)});
    audit(
        state,
        p,
        "subscription.change_plan",
        "subscription",
        &id.to_string(),
        Some(&before),
        &after,
    )
    .await?;
    Ok(c)
}

/// The plan changes of a subscription, oldest first.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}/changes", tag = "accounts",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<PlanChange>),
        (status = 404, description = "no such subscription", content_type = "application/problem+json")))]
pub async fn changes(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<Vec<PlanChange>>, ApiError> {
    // Another tenant's subscription, or none: 404, not an empty list.
    state.store().subscription(p.tenant_id(), id).await?;
    let cur = p.tenant.currency;
    let c = state
        .store()
        .subscription_changes(p.tenant_id(), id)
        .await?;
    Ok(Json(c.into_iter().map(|c| change_dto(c, cur)).collect()))
}
