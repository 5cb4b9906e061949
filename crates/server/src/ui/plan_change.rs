//! Plan changes on the staff account page: each subscription with its change history, and a
//! form that shows what a change would credit and charge before anyone commits to it.
//!
//! The preview is the API's (`GET /api/v1/subscriptions/{id}/plan-change/preview`, the store's
//! [`preview_plan_change`](toll_store::Store::preview_plan_change)): the exact day-based
//! proration, computed by the code that settles the change, so that what the operator is shown
//! is what the wallet is charged. htmx swaps it in as the form changes; without JavaScript the
//! preview button loads the account page with the same fragment in place. The change itself
//! goes through [`change_plan_audited`], like the API's.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use toll_catalog::lifecycle::PlanStatus;
use toll_store::subscriptions::{ChangeView, ChangeWhen, SubscriptionView};

use super::i18n::{Lang, Messages};
use super::paths;
use super::session::{require, see_other};
use super::views::{account_page, danger, error_page, error_text, money};
use crate::access::Perm;
use crate::api::accounts::change_plan_audited;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// The plan-change form's fields: the preview reads them from the query, the change from the
/// body, and a refused change puts them back in the form.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct ChangeForm {
    #[serde(default)]
    pub plan: String,
    /// `YYYY-MM-DD` in the tenant's zone; empty is today.
    #[serde(default)]
    pub date: String,
    /// `now` (default) or `period_end`.
    #[serde(default)]
    pub when: String,
    #[serde(default)]
    pub comment: String,
}

impl ChangeForm {
    fn at_period_end(&self) -> bool {
        self.when == "period_end"
    }
}

/// One subscription on the account page.
#[derive(Debug)]
pub struct SubscriptionRow {
    pub id: i64,
    pub plan: String,
    pub version: i64,
    pub status: String,
    pub anchor: String,
    pub period_end: String,
    pub lines: String,
    pub changes: Vec<ChangeRow>,
    pub preview_url: String,
    pub change_url: String,
    /// The other active plans it can change to.
    pub targets: Vec<String>,
    /// What the form holds: empty, or what was previewed or refused.
    pub form: ChangeForm,
    /// The rendered preview fragment, when the page answers a preview without JavaScript.
    pub preview: Option<String>,
}

#[derive(Debug)]
pub struct ChangeRow {
    pub effective_date: String,
    pub from: String,
    pub to: String,
    pub effective: &'static str,
    pub credit: String,
    pub charge: String,
    pub actor: String,
}

/// The form state of one subscription on a re-rendered account page.
#[derive(Debug, Default)]
pub struct Focus {
    pub subscription: i64,
    pub form: ChangeForm,
    pub preview: Option<String>,
}

/// The account's subscriptions with their history and the plans each may change to.
pub async fn rows(
    state: &AppState,
    p: &Principal,
    t: &'static Messages,
    code: &str,
    focus: Option<Focus>,
) -> Result<Vec<SubscriptionRow>, ApiError> {
    let store = state.store();
    let tenant = p.tenant_id();
    let mut active: Vec<String> = store
        .plan_versions(tenant)
        .await?
        .into_iter()
        .filter(|v| v.status == PlanStatus::Active)
        .map(|v| v.code)
        .collect();
    active.sort();
    active.dedup();
    let currency = p.tenant.currency.as_str();
    let mut focus = focus;
    let mut out = Vec::new();
    for s in store.account_subscriptions(tenant, code).await? {
        let changes = store
            .subscription_changes(tenant, s.id)
            .await?
            .into_iter()
            .rev()
            .map(|c| change_row(t, currency, c))
            .collect();
        let (form, preview) = match focus.take() {
            Some(f) if f.subscription == s.id => (f.form, f.preview),
            other => {
                focus = other;
                (ChangeForm::default(), None)
            }
        };
        out.push(row(s, changes, &active, form, preview));
    }
    Ok(out)
}

fn row(
    s: SubscriptionView,
    changes: Vec<ChangeRow>,
    active: &[String],
    form: ChangeForm,
    preview: Option<String>,
) -> SubscriptionRow {
    let targets = active.iter().filter(|c| **c != s.plan).cloned().collect();
    SubscriptionRow {
        id: s.id,
        preview_url: format!("/ui/subscriptions/{}/plan-change/preview", s.id),
        change_url: format!("/ui/subscriptions/{}/plan-change", s.id),
        plan: s.plan,
        version: s.version,
        status: s.status,
        anchor: s.anchor,
        period_end: s.period_end.unwrap_or_default(),
        lines: s.lines.join(", "),
        changes,
        targets,
        form,
        preview,
    }
}

fn change_row(t: &'static Messages, currency: &str, c: ChangeView) -> ChangeRow {
    let from = match (c.from_plan, c.from_version) {
        (Some(p), Some(v)) => format!("{p} v{v}"),
        _ => "—".to_string(),
    };
    ChangeRow {
        effective_date: c.effective_date,
        from,
        to: format!("{} v{}", c.to_plan, c.to_version),
        effective: if c.effective == "period_end" {
            t.change_period_end
        } else {
            t.change_now
        },
        credit: money(currency, c.credit),
        charge: money(currency, c.charge),
        actor: c.actor,
    }
}

/// The figures of a preview, formatted.
#[derive(Debug)]
pub struct PreviewFigures {
    pub from: String,
    pub to: String,
    pub date: String,
    pub period: String,
    pub days: String,
    pub credit: String,
    pub charge: String,
    pub net: String,
    pub net_negative: bool,
}

/// The fragment htmx swaps into `#plan-preview-{id}`.
#[derive(Debug, Template)]
#[template(path = "plan_change_preview.html")]
pub struct PreviewFragment {
    pub t: &'static Messages,
    pub id: i64,
    pub figures: Option<PreviewFigures>,
    /// For a change at the period's end: the day it takes effect.
    pub at_period_end: Option<String>,
    pub error: Option<String>,
}

async fn figures(
    state: &AppState,
    p: &Principal,
    id: i64,
    f: &ChangeForm,
) -> Result<(PreviewFigures, Option<String>), ApiError> {
    let plan = f.plan.trim();
    if plan.is_empty() {
        return Err(ApiError::bad("plan", "choose the new plan"));
    }
    let on = parse_date(p, &f.date)?;
    let pv = state
        .store()
        .preview_plan_change(&p.tenant, id, plan, Some(on))
        .await?;
    let cur = p.tenant.currency.as_str();
    let at_end = if f.at_period_end() {
        let s = state.store().subscription(p.tenant_id(), id).await?;
        Some(s.period_end.unwrap_or_else(|| pv.period_end.clone()))
    } else {
        None
    };
    Ok((
        PreviewFigures {
            from: format!("{} v{}", pv.from_plan, pv.from_version),
            to: format!("{} v{}", pv.to_plan, pv.to_version),
            date: pv.date,
            period: format!("{} – {}", pv.period_start, pv.period_end),
            days: format!("{} / {}", pv.days_remaining, pv.days_in_period),
            credit: money(cur, pv.credit),
            charge: money(cur, pv.charge),
            net: money(cur, pv.net),
            net_negative: pv.net.0 < 0,
        },
        at_end,
    ))
}

/// A `YYYY-MM-DD` of the form, or today in the tenant's zone when it is empty.
fn parse_date(p: &Principal, s: &str) -> Result<jiff::civil::Date, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(jiff::Timestamp::now().to_zoned(p.tenant.zone()?).date());
    }
    s.parse()
        .map_err(|_| ApiError::bad("date", "a date, YYYY-MM-DD"))
}

async fn fragment(
    state: &AppState,
    p: &Principal,
    t: &'static Messages,
    id: i64,
    f: &ChangeForm,
) -> String {
    let frag = match figures(state, p, id, f).await {
        Ok((figures, at_period_end)) => PreviewFragment {
            t,
            id,
            figures: Some(figures),
            at_period_end,
            error: None,
        },
        Err(e) => PreviewFragment {
            t,
            id,
            figures: None,
            at_period_end: None,
            error: Some(error_text(&e)),
        },
    };
    // The fragment's values are escaped strings and numbers: rendering cannot fail on them,
    // and if askama ever did, the operator sees that the preview is missing, not a 500.
    frag.render()
        .unwrap_or_else(|e| format!("<div class=\"alert alert-danger\">{e}</div>"))
}

/// `GET /ui/subscriptions/{id}/plan-change/preview?plan=&date=&when=`: the fragment for htmx,
/// or the account page with the fragment in place for a browser without JavaScript.
pub async fn preview(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(f): Query<ChangeForm>,
) -> Response {
    let p = match require(&state, &headers, &uri, Perm::AccountRead).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let lang = Lang::from_headers(&headers);
    // Another tenant's subscription is a 404 before anything is computed.
    let sub = match state.store().subscription(p.tenant_id(), id).await {
        Ok(s) => s,
        Err(e) => return error_page(lang, &p, e.into()),
    };
    let html = fragment(&state, &p, lang.messages(), id, &f).await;
    if headers.contains_key("hx-request") {
        let mut res = html.into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return res;
    }
    let focus = Focus {
        subscription: id,
        form: f,
        preview: Some(html),
    };
    account_page(
        &state,
        &p,
        lang,
        &sub.account,
        vec![],
        StatusCode::OK,
        Some(focus),
    )
    .await
}

/// `POST /ui/subscriptions/{id}/plan-change`: changes the plan now (settled by day) or at the
/// period's end, then back to the account page; a refusal re-renders it with the reason and
/// the form as it was.
pub async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Form(f): Form<ChangeForm>,
) -> Response {
    let p = match require(&state, &headers, &uri, Perm::AccountWrite).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let lang = Lang::from_headers(&headers);
    let sub = match state.store().subscription(p.tenant_id(), id).await {
        Ok(s) => s,
        Err(e) => return error_page(lang, &p, e.into()),
    };
    let done = async {
        let plan = f.plan.trim();
        if plan.is_empty() {
            return Err(ApiError::bad("plan", "choose the new plan"));
        }
        let when = match f.when.as_str() {
            "" | "now" => ChangeWhen::Now(parse_date(&p, &f.date)?),
            "period_end" => ChangeWhen::PeriodEnd,
            other => {
                return Err(ApiError::bad(
                    "when",
                    format!("{other:?}: expected now or period_end"),
                ));
            }
        };
        change_plan_audited(&state, &p, id, plan, when, f.comment.trim()).await
    }
    .await;
    match done {
        Ok(_) => see_other(&format!(
            "{}/{}?ok=plan_change",
            paths::ACCOUNTS,
            sub.account
        )),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            let focus = Focus {
                subscription: id,
                form: f,
                preview: None,
            };
            account_page(
                &state,
                &p,
                lang,
                &sub.account,
                flashes,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(focus),
            )
            .await
        }
    }
}
