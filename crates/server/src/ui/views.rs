//! The pages of the admin UI and the customers' portal: one handler per route, each guarded by
//! the permission it needs ([`require`]), reading the store and filling a template.
//!
//! State changes are `POST` forms answered by a `303` back to the page with `?ok=…` (a
//! catalog message shown as a flash), so that a reload never repeats them; a refusal
//! re-renders the page with the reason. Each change writes an audit entry, like the API's
//! handlers, and goes through the same service functions as the API where one exists (tariff
//! upload and activation), so that the UI cannot do what the API would refuse.

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use toll_catalog::lifecycle::{Actor, PlanAction, PlanStatus};
use toll_core::Micros;
use toll_ingest::pipeline::reprocess::{Selection, reprocess};
use toll_rating::event_text::EventText;
use toll_rating::source::SourceFile;
use toll_rating::view::{PieceView, rated_view};
use toll_store::StoreError;
use toll_store::accounts::AccountMode;
use toll_store::audit::AuditEntry;
use toll_store::reports::{CdrRow, CdrSearch};

use super::i18n::{Lang, Messages};
use super::pages::{Flash, FlashKind, Layout, Nav, group_thousands, render};
use super::paths;
use super::session::{require, see_other};
use crate::access::Perm;
use crate::api::tariffs::{activate_version, store_upload, unzip_upload};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// Rows per page of the lists.
const PAGE: i64 = 50;

/// Runs the guard of a page and returns its principal, or answers for it.
macro_rules! guarded {
    ($state:expr, $headers:expr, $uri:expr, $perm:expr) => {
        match require(&$state, &$headers, &$uri, $perm).await {
            Ok(p) => p,
            Err(res) => return res,
        }
    };
}
pub(super) use guarded;

/// Implements `IntoResponse` for page structs through [`render`] (headers, CSP, no-store).
macro_rules! pages {
    ($($ty:ident => $file:literal),* $(,)?) => {
        $(impl IntoResponse for $ty {
            fn into_response(self) -> Response {
                render(&self, $file)
            }
        })*
    };
}

/// The frame of a page for a signed-in principal: the navigation shows only the sections its
/// role may open, so that nobody is offered a link that answers 403.
pub fn frame(
    p: Option<&Principal>,
    lang: Lang,
    path: &str,
    nav: Nav,
    title: impl Fn(&'static Messages) -> &'static str,
    flashes: Vec<Flash>,
) -> Layout {
    let mut layout = Layout::new(
        super::pages::PageContext {
            lang,
            user_display: p.map(|p| p.display_name.clone()),
            path: path.to_string(),
            flashes,
        },
        nav,
        title,
    );
    layout.nav.retain(|l| {
        let Some(p) = p else { return false };
        match l.href {
            // Customers have the portal instead of the staff dashboard.
            paths::DASHBOARD => !p.can(Perm::SelfService),
            paths::TARIFFS => p.can(Perm::TariffRead),
            paths::PLANS => p.can(Perm::PlanRead),
            paths::ACCOUNTS => p.can(Perm::AccountRead),
            paths::CDRS => p.can(Perm::CdrRead),
            paths::SUSPENSE => p.can(Perm::SuspenseRead),
            paths::INVOICES => p.can(Perm::InvoiceRead),
            paths::AUDIT => p.can(Perm::AuditRead),
            _ => false,
        }
    });
    if p.is_some_and(|p| p.can(Perm::SelfService)) {
        layout.home = paths::PORTAL;
    }
    layout
}

pub(super) fn path_of(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// A page with a heading and one sentence: 403, 404, and failures.
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub layout: Layout,
    pub heading: String,
    pub text: String,
}

pub fn message_page(
    status: StatusCode,
    lang: Lang,
    p: Option<&Principal>,
    heading: &str,
    text: &str,
) -> Response {
    let page = MessagePage {
        layout: frame(
            p,
            lang,
            paths::DASHBOARD,
            Nav::None,
            |t| t.forbidden_title,
            vec![],
        ),
        heading: heading.to_string(),
        text: text.to_string(),
    };
    (status, render(&page, "message.html")).into_response()
}

/// What a failure says to the operator: the API error's text, with every diagnostic of a
/// refused tariff (file, line, column) since that is what they need to fix it.
pub(super) fn error_text(e: &ApiError) -> String {
    match e {
        ApiError::InvalidTariff(d) => d
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The page for an error that ends a GET: 404 for what does not exist, else its status.
pub(super) fn error_page(lang: Lang, p: &Principal, e: ApiError) -> Response {
    let t = lang.messages();
    if matches!(e, ApiError::Store(StoreError::NotFound { .. })) {
        return message_page(
            StatusCode::NOT_FOUND,
            lang,
            Some(p),
            t.not_found_title,
            t.not_found_text,
        );
    }
    let text = format!("{}{}", t.action_failed, error_text(&e));
    let status = e.into_response().status();
    message_page(status, lang, Some(p), t.action_failed, &text)
}

pub(super) fn danger(t: &Messages, e: &ApiError) -> Flash {
    Flash {
        kind: FlashKind::Danger,
        text: format!("{}{}", t.action_failed, error_text(e)),
    }
}

/// `?ok=…` after a successful POST: which catalog message to show.
#[derive(Debug, Deserialize, Default)]
pub struct OkQuery {
    pub ok: Option<String>,
}

fn ok_flash(t: &'static Messages, ok: Option<&str>) -> Vec<Flash> {
    let text = match ok {
        Some("uploaded") => t.tariff_uploaded_ok,
        Some("activated") => t.tariff_activated_ok,
        Some("created") => t.plan_created_ok,
        Some("saved") => t.plan_saved_ok,
        Some("plan") => t.plan_action_ok,
        Some("topup") => t.account_topup_ok,
        Some("plan_change") => t.change_ok,
        Some("edited") => t.suspense_edited_ok,
        Some("discarded") => t.suspense_discarded_ok,
        Some("reprocessed") => t.suspense_reprocessed_ok,
        Some("requested") => t.portal_request_ok,
        _ => return vec![],
    };
    vec![Flash {
        kind: FlashKind::Success,
        text: text.to_string(),
    }]
}

/// An amount with its currency, two decimals at least (`CNY 12.30`).
pub fn money(currency: &str, m: Micros) -> String {
    let mut d = m.to_decimal().normalize();
    if d.scale() < 2 {
        d.rescale(2);
    }
    format!("{currency} {d}")
}

/// A time in the tenant's zone, to the second.
pub(super) fn when(p: &Principal, ms: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
        return ms.to_string();
    };
    match p.tenant.zone() {
        Ok(z) => ts.to_zoned(z).strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => ts.to_string(),
    }
}

pub(super) fn audit(
    p: &Principal,
    action: &'static str,
    entity: &'static str,
    key: &str,
) -> AuditOwned {
    AuditOwned {
        actor: p.actor.clone(),
        action,
        entity,
        key: key.to_string(),
        before: None,
        after: None,
    }
}

/// An audit entry being built (the store's [`AuditEntry`] borrows).
pub(super) struct AuditOwned {
    actor: String,
    action: &'static str,
    entity: &'static str,
    key: String,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
}

impl AuditOwned {
    pub(super) fn before(mut self, v: serde_json::Value) -> Self {
        self.before = Some(v);
        self
    }
    pub(super) fn after(mut self, v: serde_json::Value) -> Self {
        self.after = Some(v);
        self
    }
    pub(super) async fn write(self, state: &AppState, p: &Principal) -> Result<(), ApiError> {
        state
            .store()
            .audit(
                p.tenant_id(),
                &AuditEntry {
                    actor: &self.actor,
                    action: self.action,
                    entity: self.entity,
                    entity_key: &self.key,
                    before: self.before.as_ref(),
                    after: self.after.as_ref(),
                },
            )
            .await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Dashboard

/// `GET /ui/`: today's figures in the tenant's time zone. Customers go to their portal.
pub async fn dashboard(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let p = guarded!(state, headers, uri, Perm::Authenticated);
    let lang = Lang::from_headers(&headers);
    if p.can(Perm::SelfService) {
        return see_other(paths::PORTAL);
    }
    match dashboard_data(&state, &p).await {
        Ok(data) => {
            let path = path_of(&uri);
            let mut page = super::pages::DashboardPage::new(
                super::pages::PageContext {
                    lang,
                    user_display: Some(p.display_name.clone()),
                    path: path.clone(),
                    flashes: vec![],
                },
                data,
            );
            page.layout = frame(
                Some(&p),
                lang,
                &path,
                Nav::Dashboard,
                |t| t.dashboard_title,
                vec![],
            );
            page.into_response()
        }
        Err(e) => error_page(lang, &p, e),
    }
}

async fn dashboard_data(
    state: &AppState,
    p: &Principal,
) -> Result<super::pages::DashboardData, ApiError> {
    let zone = p.tenant.zone()?;
    let now = jiff::Timestamp::now().to_zoned(zone.clone());
    let start = now
        .start_of_day()
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let end = start
        .tomorrow()
        .and_then(|d| d.start_of_day())
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let from = start.timestamp().as_millisecond();
    let to = end.timestamp().as_millisecond();
    let day = state.store().day_figures(p.tenant_id(), from, to).await?;
    let open = state.store().suspense_open_count(p.tenant_id()).await?;
    Ok(super::pages::DashboardData {
        calls_today: u64::try_from(day.calls).unwrap_or(0),
        revenue_today: money(p.tenant.currency.as_str(), day.revenue),
        suspense_open: u64::try_from(open).unwrap_or(0),
        traffic_per_hour: day
            .per_hour
            .iter()
            .filter_map(|(h, n)| Some((u8::try_from(*h).ok()?, u64::try_from(*n).ok()?)))
            .collect(),
        as_of: format!("{} {}", now.strftime("%Y-%m-%d %H:%M"), p.tenant.time_zone),
        sample: false,
    })
}

// ---------------------------------------------------------------------------------------------
// Tariffs

#[derive(Debug)]
pub struct TariffRow {
    pub code: String,
    pub version: i64,
    pub format: String,
    pub uploaded_by: String,
    pub uploaded_at: String,
    pub active: bool,
    pub href: String,
    pub activate: String,
}

/// The tester's form values (kept after rating, to try a variant).
#[derive(Debug, Deserialize, Clone)]
pub struct TesterForm {
    pub destination: String,
    pub start: String,
    pub usage: String,
    pub category: String,
    pub subject: String,
}

impl Default for TesterForm {
    fn default() -> Self {
        TesterForm {
            destination: "13800138000".into(),
            start: jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            usage: "90s".into(),
            category: "call".into(),
            subject: "*any".into(),
        }
    }
}

/// The tester's answer: the fragment htmx swaps in (also part of the full page).
#[derive(Debug, Template)]
#[template(path = "tester_result.html")]
pub struct TesterResult {
    pub t: &'static Messages,
    pub cost: Option<String>,
    pub pieces: Vec<PieceView>,
    pub error: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "tariffs.html")]
pub struct TariffsPage {
    pub layout: Layout,
    pub rows: Vec<TariffRow>,
    pub can_write: bool,
    pub can_rate: bool,
    pub upload_action: &'static str,
    pub rate_action: &'static str,
    pub tester: TesterForm,
    pub tester_html: String,
}

#[derive(Debug, Template)]
#[template(path = "tariff.html")]
pub struct TariffPage {
    pub layout: Layout,
    pub row: TariffRow,
    pub counts: Vec<(String, String)>,
    pub files: Vec<(String, String)>,
    pub can_write: bool,
}

pages!(TariffsPage => "tariffs.html", TariffPage => "tariff.html", MessagePage => "message.html",
    PlansPage => "plans.html", PlanPage => "plan.html", AccountsPage => "accounts.html",
    AccountPage => "account.html", CdrsPage => "cdrs.html", SuspensePage => "suspense.html",
    SuspenseItemPage => "suspense_item.html", AuditPage => "audit.html", PortalPage => "portal.html");

fn tariff_row(p: &Principal, v: toll_store::tariffs::TariffVersion) -> TariffRow {
    let href = format!("{}/{}/{}", paths::TARIFFS, v.code, v.version);
    TariffRow {
        activate: format!("{href}/activate"),
        href,
        uploaded_at: when(p, v.uploaded_ms),
        code: v.code,
        version: v.version,
        format: v.format,
        uploaded_by: v.uploaded_by,
        active: v.active,
    }
}

async fn tariffs_page(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    path: &str,
    flashes: Vec<Flash>,
    tester: TesterForm,
    tester_html: String,
) -> Response {
    let rows = match state.store().tariff_versions(p.tenant_id()).await {
        Ok(v) => v.into_iter().rev().map(|v| tariff_row(p, v)).collect(),
        Err(e) => return error_page(lang, p, e.into()),
    };
    TariffsPage {
        layout: frame(
            Some(p),
            lang,
            path,
            Nav::Tariffs,
            |t| t.tariffs_title,
            flashes,
        ),
        rows,
        can_write: p.can(Perm::TariffWrite),
        can_rate: p.can(Perm::Rate),
        upload_action: paths::TARIFFS,
        rate_action: paths::TARIFF_RATE,
        tester,
        tester_html,
    }
    .into_response()
}

/// `GET /ui/tariffs`: the versions, the upload form and the tester.
pub async fn tariffs(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<OkQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::TariffRead);
    let lang = Lang::from_headers(&headers);
    let flashes = ok_flash(lang.messages(), q.ok.as_deref());
    tariffs_page(
        &state,
        &p,
        lang,
        &path_of(&uri),
        flashes,
        TesterForm::default(),
        String::new(),
    )
    .await
}

/// `POST /ui/tariffs` (multipart: `code`, `file`): the API's upload path with a form's body.
pub async fn tariff_upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Multipart,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::TariffWrite);
    let lang = Lang::from_headers(&headers);
    match upload_form(&state, &p, multipart).await {
        Ok(()) => see_other(&format!("{}?ok=uploaded", paths::TARIFFS)),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            let mut res = tariffs_page(
                &state,
                &p,
                lang,
                paths::TARIFFS,
                flashes,
                TesterForm::default(),
                String::new(),
            )
            .await;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            res
        }
    }
}

async fn upload_form(
    state: &AppState,
    p: &Principal,
    mut multipart: Multipart,
) -> Result<(), ApiError> {
    let mut code = None;
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad("body", e.body_text()))?
    {
        match field.name() {
            Some("code") => {
                code = Some(
                    field
                        .text()
                        .await
                        .map_err(|e| ApiError::bad("code", e.body_text()))?,
                )
            }
            Some("file") => {
                let name = field.file_name().unwrap_or("tariff.toml").to_string();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| ApiError::bad("file", e.body_text()))?;
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    let code = code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad("code", "required"))?;
    let (name, bytes) = file
        .filter(|(_, b)| !b.is_empty())
        .ok_or_else(|| ApiError::bad("file", "required"))?;
    // The base name only: a browser may send a path, and a tariff's files are flat.
    let base = name.rsplit(['/', '\\']).next().unwrap_or("").to_string();
    let files = if base.to_ascii_lowercase().ends_with(".zip") {
        unzip_upload(bytes).await?
    } else if base.ends_with(".toml") {
        vec![SourceFile { name: base, bytes }]
    } else {
        return Err(ApiError::bad("file", "a .zip or a .toml file"));
    };
    store_upload(state, p, &code, files).await?;
    Ok(())
}

/// `GET /ui/tariffs/{code}/{version}`: counts and source files of a version.
pub async fn tariff(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((code, version)): Path<(String, i64)>,
    Query(q): Query<OkQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::TariffRead);
    let lang = Lang::from_headers(&headers);
    let store = state.store();
    let v = match store
        .tariff_version(p.tenant_id(), &code, Some(version))
        .await
    {
        Ok(v) => v,
        Err(e) => return error_page(lang, &p, e.into()),
    };
    let files = match store.tariff_files(p.tenant_id(), v.id).await {
        Ok(f) => f,
        Err(e) => return error_page(lang, &p, e.into()),
    };
    let counts = v
        .summary
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    TariffPage {
        layout: frame(
            Some(&p),
            lang,
            &path_of(&uri),
            Nav::Tariffs,
            |t| t.tariffs_title,
            ok_flash(lang.messages(), q.ok.as_deref()),
        ),
        row: tariff_row(&p, v),
        counts,
        files: files
            .into_iter()
            .map(|f| (f.name, group_thousands(f.content.len() as u64)))
            .collect(),
        can_write: p.can(Perm::TariffWrite),
    }
    .into_response()
}

/// `POST /ui/tariffs/{code}/{version}/activate`.
pub async fn tariff_activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((code, version)): Path<(String, i64)>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::TariffWrite);
    let lang = Lang::from_headers(&headers);
    match activate_version(&state, &p, &code, version).await {
        Ok(_) => see_other(&format!("{}?ok=activated", paths::TARIFFS)),
        Err(e) => error_page(lang, &p, e),
    }
}

/// `POST /ui/tariffs/rate`: prices one call with the active tariff. From htmx, the result
/// fragment only; without JavaScript, the whole page with the result in it.
pub async fn tariff_rate(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(form): Form<TesterForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::Rate);
    let lang = Lang::from_headers(&headers);
    let t = lang.messages();
    let result = match rate_call(&state, &p, &form).await {
        Ok((cost, pieces)) => TesterResult {
            t,
            cost: Some(cost),
            pieces,
            error: None,
        },
        Err(ApiError::NoActiveTariff) => TesterResult {
            t,
            cost: None,
            pieces: vec![],
            error: Some(t.tester_no_tariff.to_string()),
        },
        Err(e) => TesterResult {
            t,
            cost: None,
            pieces: vec![],
            error: Some(error_text(&e)),
        },
    };
    let html = match result.render() {
        Ok(h) => h,
        Err(source) => {
            return super::pages::UiError::Render {
                template: "tester_result.html",
                source,
            }
            .into_response();
        }
    };
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
    tariffs_page(&state, &p, lang, paths::TARIFFS, vec![], form, html).await
}

async fn rate_call(
    state: &AppState,
    p: &Principal,
    f: &TesterForm,
) -> Result<(String, Vec<PieceView>), ApiError> {
    let active = state.tariffs().active(state.store(), p.tenant_id()).await?;
    let text = EventText {
        tenant: &p.tenant.slug,
        category: f.category.trim(),
        subject: f.subject.trim(),
        destination: f.destination.trim(),
        start: f.start.trim(),
        usage: f.usage.trim(),
        tor: "",
        route_carrier: None,
    };
    let ev = text.parse().map_err(|e| ApiError::bad(e.field, e.reason))?;
    let rated =
        toll_rating::rate(&active.tariff, &ev).map_err(|e| ApiError::Unratable(e.to_string()))?;
    let view = rated_view(&active.tariff, &ev, &rated);
    let cost = match &view.currency {
        Some(c) => format!("{c} {}", view.cost),
        None => view.cost.clone(),
    };
    Ok((cost, view.pieces))
}

// ---------------------------------------------------------------------------------------------
// Plans

#[derive(Debug)]
pub struct PlanRow {
    pub code: String,
    pub version: i64,
    pub status: &'static str,
    pub status_key: &'static str,
    pub author: String,
    pub created: String,
    pub href: String,
}

#[derive(Debug, Template)]
#[template(path = "plans.html")]
pub struct PlansPage {
    pub layout: Layout,
    pub groups: Vec<(&'static str, Vec<PlanRow>)>,
    pub can_edit: bool,
    pub create_action: &'static str,
    pub draft: String,
}

#[derive(Debug)]
pub struct TransitionRow {
    pub version: i64,
    pub action: String,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub at: String,
    pub comment: String,
}

#[derive(Debug, Template)]
#[template(path = "plan.html")]
pub struct PlanPage {
    pub layout: Layout,
    pub code: String,
    pub latest: PlanRow,
    pub definition: String,
    pub versions: Vec<PlanRow>,
    pub history: Vec<TransitionRow>,
    pub edit_action: String,
    pub action_url: String,
    /// The buttons this principal may press on the latest version, by action name.
    pub can_edit: bool,
    pub actions: Vec<(&'static str, &'static str, &'static str)>,
}

fn status_text(t: &'static Messages, s: PlanStatus) -> &'static str {
    match s {
        PlanStatus::Draft => t.status_draft,
        PlanStatus::PendingApproval => t.status_pending,
        PlanStatus::Approved => t.status_approved,
        PlanStatus::Active => t.status_active,
        PlanStatus::Retired => t.status_retired,
    }
}

fn plan_row(
    p: &Principal,
    t: &'static Messages,
    v: &toll_store::catalog::PlanVersionView,
) -> PlanRow {
    PlanRow {
        code: v.code.clone(),
        version: v.version,
        status: status_text(t, v.status),
        status_key: v.status.as_str(),
        author: v.author.clone(),
        created: when(p, v.created_ms),
        href: format!("{}/{}", paths::PLANS, v.code),
    }
}

/// `GET /ui/plans`: every version by status, and the new-draft form.
pub async fn plans(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<OkQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::PlanRead);
    let lang = Lang::from_headers(&headers);
    let flashes = ok_flash(lang.messages(), q.ok.as_deref());
    plans_page(&state, &p, lang, &path_of(&uri), flashes, String::new()).await
}

async fn plans_page(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    path: &str,
    flashes: Vec<Flash>,
    draft: String,
) -> Response {
    let t = lang.messages();
    let all = match state.store().plan_versions(p.tenant_id()).await {
        Ok(v) => v,
        Err(e) => return error_page(lang, p, e.into()),
    };
    let groups = [
        PlanStatus::PendingApproval,
        PlanStatus::Draft,
        PlanStatus::Approved,
        PlanStatus::Active,
        PlanStatus::Retired,
    ]
    .into_iter()
    .map(|s| {
        (
            status_text(t, s),
            all.iter()
                .filter(|v| v.status == s)
                .map(|v| plan_row(p, t, v))
                .collect::<Vec<_>>(),
        )
    })
    .filter(|(_, rows)| !rows.is_empty())
    .collect();
    PlansPage {
        layout: frame(Some(p), lang, path, Nav::Plans, |t| t.plans_title, flashes),
        groups,
        can_edit: p.can(Perm::PlanEdit),
        create_action: paths::PLANS,
        draft,
    }
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct DefinitionForm {
    pub definition: String,
}

fn actor_of(p: &Principal) -> Result<Actor, ApiError> {
    Actor::new(&p.actor).map_err(|e| ApiError::bad("actor", e.to_string()))
}

/// `POST /ui/plans`: a new plan as a draft (its code is in the definition).
pub async fn plan_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<DefinitionForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::PlanEdit);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let actor = actor_of(&p)?;
        let v = state
            .store()
            .create_plan(p.tenant_id(), &f.definition, &actor)
            .await?;
        audit(
            &p,
            "plan.create",
            "plan",
            &format!("{} v{}", v.code, v.version),
        )
        .after(serde_json::json!({"status": v.status.as_str()}))
        .write(&state, &p)
        .await?;
        Ok::<_, ApiError>(v.code)
    }
    .await;
    match done {
        Ok(code) => see_other(&format!("{}/{code}?ok=created", paths::PLANS)),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            let mut res = plans_page(&state, &p, lang, paths::PLANS, flashes, f.definition).await;
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            res
        }
    }
}

/// `GET /ui/plans/{code}`: versions, history, and the buttons of the latest version.
pub async fn plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(code): Path<String>,
    Query(q): Query<OkQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::PlanRead);
    let lang = Lang::from_headers(&headers);
    let flashes = ok_flash(lang.messages(), q.ok.as_deref());
    plan_page(&state, &p, lang, &code, flashes, StatusCode::OK).await
}

async fn plan_page(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    code: &str,
    flashes: Vec<Flash>,
    status: StatusCode,
) -> Response {
    let t = lang.messages();
    let store = state.store();
    let latest = match store.plan_version(p.tenant_id(), code, None).await {
        Ok(v) => v,
        Err(e) => return error_page(lang, p, e.into()),
    };
    let versions = match store.plan_versions(p.tenant_id()).await {
        Ok(v) => v,
        Err(e) => return error_page(lang, p, e.into()),
    };
    let history = match store.plan_history(p.tenant_id(), code).await {
        Ok(h) => h,
        Err(e) => return error_page(lang, p, e.into()),
    };
    // Buttons by role and status: the four-eyes rule is the store's to enforce, and its
    // refusal is shown if an author tries; the button is not hidden for it, so that the
    // rule is explained rather than silently absent.
    let mut actions = vec![];
    let s = latest.status;
    if p.can(Perm::PlanEdit) && s == PlanStatus::Draft {
        actions.push(("submit", t.plan_submit, "btn-primary"));
    }
    if p.can(Perm::PlanApprove) && s == PlanStatus::PendingApproval {
        actions.push(("approve", t.plan_approve, "btn-success"));
        actions.push(("reject", t.plan_reject, "btn-outline-danger"));
    }
    if p.can(Perm::PlanPublish) && s == PlanStatus::Approved {
        actions.push(("activate", t.plan_activate, "btn-success"));
    }
    if p.can(Perm::PlanPublish) && s == PlanStatus::Active {
        actions.push(("retire", t.plan_retire, "btn-outline-danger"));
    }
    let page = PlanPage {
        layout: frame(
            Some(p),
            lang,
            &format!("{}/{code}", paths::PLANS),
            Nav::Plans,
            |t| t.plans_title,
            flashes,
        ),
        code: code.to_string(),
        latest: plan_row(p, t, &latest),
        definition: latest.definition.clone(),
        versions: versions
            .iter()
            .filter(|v| v.code == code)
            .rev()
            .map(|v| plan_row(p, t, v))
            .collect(),
        history: history
            .into_iter()
            .rev()
            .map(|h| TransitionRow {
                version: h.version,
                action: h.action,
                from: h.from.unwrap_or_default(),
                to: h.to,
                actor: h.actor,
                at: when(p, h.at_ms),
                comment: h.comment,
            })
            .collect(),
        edit_action: format!("{}/{code}/edit", paths::PLANS),
        action_url: format!("{}/{code}/action", paths::PLANS),
        can_edit: p.can(Perm::PlanEdit) && s != PlanStatus::PendingApproval,
        actions,
    };
    (status, page.into_response()).into_response()
}

/// `POST /ui/plans/{code}/edit`: a draft in place, or a new draft version.
pub async fn plan_edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(code): Path<String>,
    Form(f): Form<DefinitionForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::PlanEdit);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let actor = actor_of(&p)?;
        let v = state
            .store()
            .edit_plan(p.tenant_id(), &code, &f.definition, &actor)
            .await?;
        audit(
            &p,
            "plan.edit",
            "plan",
            &format!("{} v{}", v.code, v.version),
        )
        .after(serde_json::json!({"status": v.status.as_str()}))
        .write(&state, &p)
        .await
    }
    .await;
    match done {
        Ok(()) => see_other(&format!("{}/{code}?ok=saved", paths::PLANS)),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            plan_page(
                &state,
                &p,
                lang,
                &code,
                flashes,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PlanActionForm {
    pub action: String,
    pub version: i64,
    #[serde(default)]
    pub comment: String,
}

/// `POST /ui/plans/{code}/action`: submit, approve, reject, activate or retire a version,
/// each checked against its own permission (the route's guard only asks for `PlanRead`).
pub async fn plan_act(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(code): Path<String>,
    Form(f): Form<PlanActionForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::PlanRead);
    let lang = Lang::from_headers(&headers);
    let t = lang.messages();
    let Ok(action) = f.action.parse::<PlanAction>() else {
        return error_page(lang, &p, ApiError::bad("action", "unknown action"));
    };
    let perm = match action {
        PlanAction::Submit => Perm::PlanEdit,
        PlanAction::Approve | PlanAction::Reject => Perm::PlanApprove,
        PlanAction::Activate | PlanAction::Retire => Perm::PlanPublish,
    };
    if !p.can(perm) {
        return message_page(
            StatusCode::FORBIDDEN,
            lang,
            Some(&p),
            t.forbidden_title,
            t.forbidden_text,
        );
    }
    let done = async {
        let actor = actor_of(&p)?;
        let before = state
            .store()
            .plan_version(p.tenant_id(), &code, Some(f.version))
            .await?;
        let v = state
            .store()
            .plan_action(
                p.tenant_id(),
                &code,
                Some(f.version),
                action,
                &actor,
                f.comment.trim(),
            )
            .await?;
        audit(
            &p,
            match action {
                PlanAction::Submit => "plan.submit",
                PlanAction::Approve => "plan.approve",
                PlanAction::Reject => "plan.reject",
                PlanAction::Activate => "plan.activate",
                PlanAction::Retire => "plan.retire",
            },
            "plan",
            &format!("{} v{}", v.code, v.version),
        )
        .before(serde_json::json!({"status": before.status.as_str()}))
        .after(serde_json::json!({"status": v.status.as_str(), "comment": f.comment.trim()}))
        .write(&state, &p)
        .await?;
        Ok::<_, ApiError>(before.author)
    }
    .await;
    match done {
        Ok(_) => see_other(&format!("{}/{code}?ok=plan", paths::PLANS)),
        Err(e) => {
            let own = matches!(action, PlanAction::Approve | PlanAction::Reject)
                && matches!(&e, ApiError::Store(StoreError::Refused(m)) if m.contains("author"));
            let flash = if own {
                Flash {
                    kind: FlashKind::Danger,
                    text: t.plan_four_eyes.to_string(),
                }
            } else {
                danger(t, &e)
            };
            plan_page(&state, &p, lang, &code, vec![flash], StatusCode::CONFLICT).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Accounts

#[derive(Debug)]
pub struct AccountListRow {
    pub code: String,
    pub customer: String,
    pub mode: &'static str,
    pub balance: String,
    pub lines: i64,
    pub href: String,
}

#[derive(Debug, Template)]
#[template(path = "accounts.html")]
pub struct AccountsPage {
    pub layout: Layout,
    pub q: String,
    pub rows: Vec<AccountListRow>,
    pub prev: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: i64,
}

fn mode_text(t: &'static Messages, mode: &str) -> &'static str {
    match mode {
        "prepaid" => t.mode_prepaid,
        "postpaid" => t.mode_postpaid,
        _ => t.mode_unlimited,
    }
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `GET /ui/accounts?q=…&page=…`.
pub async fn accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::AccountRead);
    let lang = Lang::from_headers(&headers);
    let t = lang.messages();
    let page = q.page.max(0);
    let rows = match state
        .store()
        .account_list(p.tenant_id(), &q.q, page * PAGE, PAGE + 1)
        .await
    {
        Ok(r) => r,
        Err(e) => return error_page(lang, &p, e.into()),
    };
    let more = rows.len() as i64 > PAGE;
    let link = |n: i64| format!("{}?q={}&page={n}", paths::ACCOUNTS, enc(&q.q));
    AccountsPage {
        layout: frame(
            Some(&p),
            lang,
            &path_of(&uri),
            Nav::Accounts,
            |t| t.accounts_title,
            vec![],
        ),
        rows: rows
            .into_iter()
            .take(PAGE as usize)
            .map(|r| AccountListRow {
                href: format!("{}/{}", paths::ACCOUNTS, r.code),
                mode: mode_text(t, &r.mode),
                balance: money(&r.currency, r.balance),
                customer: format!("{} ({})", r.customer_name, r.customer),
                code: r.code,
                lines: r.lines,
            })
            .collect(),
        prev: (page > 0).then(|| link(page - 1)),
        next: more.then(|| link(page + 1)),
        q: q.q,
    }
    .into_response()
}

#[derive(Debug)]
/// An allowance as a progress bar.
pub struct Allowance {
    pub label: String,
    pub used: String,
    pub initial: String,
    pub pct: u8,
}

#[derive(Debug)]
/// What an account shows (the staff page and the portal share it).
pub struct AccountSummary {
    pub code: String,
    pub customer: String,
    pub mode: &'static str,
    pub balance: String,
    pub available: Option<String>,
    pub credit_limit: Option<String>,
    pub lines: Vec<(String, String)>,
    pub allowances: Vec<Allowance>,
    pub recent: Vec<CdrLine>,
}

#[derive(Debug)]
pub struct CdrLine {
    pub start: String,
    pub account: String,
    pub caller: String,
    pub callee: String,
    pub usage: String,
    pub amount: String,
    pub priced_by: String,
}

fn cdr_line(p: &Principal, r: &CdrRow) -> CdrLine {
    CdrLine {
        start: when(p, r.start_ms),
        account: r.account.clone(),
        caller: r.caller.clone(),
        callee: r.callee.clone(),
        usage: r.usage.clone(),
        amount: money(p.tenant.currency.as_str(), r.amount),
        priced_by: r.priced_by.clone(),
    }
}

/// A bucket's quantity as a person reads it: seconds of voice as minutes, bytes as MB.
/// An allowance quantity in its usage's base unit (buckets hold seconds, messages, bytes) as
/// an operator reads it: minutes and seconds, MB (of 1,048,576 bytes, as plans write them).
fn quantity(usage: &str, n: i64) -> String {
    const MB: i64 = 1_048_576;
    match usage {
        "voice" if n % 60 == 0 => format!("{} min", n / 60),
        "voice" => format!("{} min {} s", n / 60, n % 60),
        "data" if n % MB == 0 => format!("{} MB", n / MB),
        "data" => {
            // One decimal, rounded half up, exact in integers.
            let tenths = (n.saturating_mul(10) + MB / 2) / MB;
            format!("{}.{} MB", tenths / 10, tenths % 10)
        }
        _ => n.to_string(),
    }
}

async fn account_summary(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    code: &str,
) -> Result<AccountSummary, ApiError> {
    let t = lang.messages();
    let store = state.store();
    let a = store.account(p.tenant_id(), code).await?;
    let cur = a.currency.as_str();
    let lines = store.account_line_rows(p.tenant_id(), code).await?;
    let mut allowances = vec![];
    let now = toll_store::now_ms();
    for id in store.account_subscription_ids(p.tenant_id(), code).await? {
        let s = store.subscription(p.tenant_id(), id).await?;
        for b in s
            .buckets
            .iter()
            .filter(|b| b.starts_ms <= now && now < b.expires_ms && b.initial > 0)
        {
            let used = b.initial.saturating_sub(b.remaining).max(0);
            let pct =
                u8::try_from((used.saturating_mul(100) / b.initial).clamp(0, 100)).unwrap_or(100);
            allowances.push(Allowance {
                label: format!("{} · {} v{}", b.usage, s.plan, s.version),
                used: quantity(&b.usage, used),
                initial: quantity(&b.usage, b.initial),
                pct,
            });
        }
    }
    let recent = store
        .cdr_page(
            p.tenant_id(),
            &CdrSearch {
                from_ms: 0,
                to_ms: i64::MAX,
                number: None,
                account: Some(code.to_string()),
                offset: 0,
                limit: 20,
            },
        )
        .await?;
    let credit_limit = match a.mode {
        AccountMode::Postpaid { credit_limit } => Some(money(cur, credit_limit)),
        _ => None,
    };
    let mode = match a.mode {
        AccountMode::Prepaid => t.mode_prepaid,
        AccountMode::Postpaid { .. } => t.mode_postpaid,
        AccountMode::Unlimited => t.mode_unlimited,
    };
    Ok(AccountSummary {
        code: a.code.clone(),
        customer: a.customer.clone(),
        mode,
        balance: money(cur, a.balance),
        available: a.available.map(|m| money(cur, m)),
        credit_limit,
        lines: lines.into_iter().map(|l| (l.number, l.status)).collect(),
        allowances,
        recent: recent.iter().map(|r| cdr_line(p, r)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::quantity;

    #[test]
    fn allowance_quantities_read_in_minutes_and_megabytes() {
        assert_eq!(quantity("voice", 6000), "100 min");
        assert_eq!(quantity("voice", 61), "1 min 1 s");
        assert_eq!(quantity("data", 1_073_741_824), "1024 MB");
        assert_eq!(quantity("data", 1_572_864 / 3), "0.5 MB");
        assert_eq!(quantity("sms", 42), "42");
    }
}

#[derive(Debug, Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    pub layout: Layout,
    pub a: AccountSummary,
    pub can_topup: bool,
    pub topup_action: String,
    /// A fresh key per form: a double submit posts once (the ledger's key).
    pub topup_key: String,
    pub subs: Vec<super::plan_change::SubscriptionRow>,
    /// May change plans (the form is shown).
    pub can_change: bool,
}

/// `GET /ui/accounts/{code}`.
pub async fn account(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(code): Path<String>,
    Query(q): Query<OkQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::AccountRead);
    let lang = Lang::from_headers(&headers);
    let flashes = ok_flash(lang.messages(), q.ok.as_deref());
    account_page(&state, &p, lang, &code, flashes, StatusCode::OK, None).await
}

/// The staff account page; `focus` keeps one subscription's plan-change form as it was
/// submitted (a preview without JavaScript, a refused change).
pub(super) async fn account_page(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    code: &str,
    flashes: Vec<Flash>,
    status: StatusCode,
    focus: Option<super::plan_change::Focus>,
) -> Response {
    let a = match account_summary(state, p, lang, code).await {
        Ok(a) => a,
        Err(e) => return error_page(lang, p, e),
    };
    let subs = match super::plan_change::rows(state, p, lang.messages(), code, focus).await {
        Ok(s) => s,
        Err(e) => return error_page(lang, p, e),
    };
    let page = AccountPage {
        layout: frame(
            Some(p),
            lang,
            &format!("{}/{code}", paths::ACCOUNTS),
            Nav::Accounts,
            |t| t.accounts_title,
            flashes,
        ),
        topup_action: format!("{}/{code}/topup", paths::ACCOUNTS),
        topup_key: crate::secrets::random_token().unwrap_or_default(),
        can_topup: p.can(Perm::TopUp),
        can_change: p.can(Perm::AccountWrite),
        subs,
        a,
    };
    (status, page.into_response()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct TopUpForm {
    pub amount: String,
    pub key: String,
}

/// `POST /ui/accounts/{code}/topup`: credits the wallet (the form's key makes a resubmission
/// count once).
pub async fn account_topup(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(code): Path<String>,
    Form(f): Form<TopUpForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::TopUp);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let amount: Micros = f
            .amount
            .trim()
            .parse()
            .map_err(|_| ApiError::bad("amount", "a decimal amount, e.g. 50.00"))?;
        if amount.0 <= 0 {
            return Err(ApiError::bad("amount", "must be positive"));
        }
        if f.key.trim().is_empty() {
            return Err(ApiError::bad("key", "required"));
        }
        let before = state.store().account(p.tenant_id(), &code).await?;
        let key = format!("ui-{}", f.key.trim());
        state
            .store()
            .top_up(p.tenant_id(), &code, amount, &key, &format!("top-up by {}", p.actor))
            .await?;
        let after = state.store().account(p.tenant_id(), &code).await?;
        audit(&p, "account.top_up", "account", &code)
            .before(serde_json::json!({"balance": before.balance.to_string()}))
            .after(serde_json::json!({"balance": after.balance.to_string(), "amount": amount.to_string()}))
            .write(&state, &p)
            .await
    }
    .await;
    match done {
        Ok(()) => see_other(&format!("{}/{code}?ok=topup", paths::ACCOUNTS)),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            account_page(
                &state,
                &p,
                lang,
                &code,
                flashes,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
            )
            .await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CDRs

#[derive(Debug, Deserialize, Default, Clone)]
pub struct CdrFilter {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub account: String,
    /// `YYYY-MM-DD` in the tenant's zone.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub page: i64,
}

impl CdrFilter {
    fn query(&self) -> String {
        format!(
            "number={}&account={}&from={}&to={}",
            enc(&self.number),
            enc(&self.account),
            enc(&self.from),
            enc(&self.to)
        )
    }

    /// The search in the store's terms: dates are whole days of the tenant's zone, `to`
    /// included; an empty date leaves that side open.
    fn search(&self, p: &Principal, offset: i64, limit: i64) -> Result<CdrSearch, ApiError> {
        let zone = p.tenant.zone()?;
        let day = |s: &str, field: &'static str, next: bool| -> Result<Option<i64>, ApiError> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let d: jiff::civil::Date = s
                .parse()
                .map_err(|_| ApiError::bad(field, "a date, YYYY-MM-DD"))?;
            let d = if next {
                d.tomorrow()
                    .map_err(|e| ApiError::bad(field, e.to_string()))?
            } else {
                d
            };
            let z = d
                .to_zoned(zone.clone())
                .map_err(|e| ApiError::bad(field, e.to_string()))?;
            Ok(Some(z.timestamp().as_millisecond()))
        };
        let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        Ok(CdrSearch {
            from_ms: day(&self.from, "from", false)?.unwrap_or(0),
            to_ms: day(&self.to, "to", true)?.unwrap_or(i64::MAX),
            number: opt(&self.number),
            account: opt(&self.account),
            offset,
            limit,
        })
    }
}

#[derive(Debug, Template)]
#[template(path = "cdrs.html")]
pub struct CdrsPage {
    pub layout: Layout,
    pub f: CdrFilter,
    pub rows: Vec<CdrLine>,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub csv: String,
}

/// `GET /ui/cdrs`: the search form and a page of results, newest first.
pub async fn cdrs(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(f): Query<CdrFilter>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::CdrRead);
    let lang = Lang::from_headers(&headers);
    let page = f.page.max(0);
    let found = match f.search(&p, page * PAGE, PAGE + 1) {
        Ok(s) => state
            .store()
            .cdr_page(p.tenant_id(), &s)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let (rows, flashes) = match found {
        Ok(r) => (r, vec![]),
        Err(e) => (vec![], vec![danger(lang.messages(), &e)]),
    };
    let more = rows.len() as i64 > PAGE;
    let link = |n: i64| format!("{}?{}&page={n}", paths::CDRS, f.query());
    CdrsPage {
        layout: frame(
            Some(&p),
            lang,
            &path_of(&uri),
            Nav::Cdrs,
            |t| t.cdrs_title,
            flashes,
        ),
        rows: rows
            .iter()
            .take(PAGE as usize)
            .map(|r| cdr_line(&p, r))
            .collect(),
        prev: (page > 0).then(|| link(page - 1)),
        next: more.then(|| link(page + 1)),
        csv: format!("{}?{}", paths::CDRS_CSV, f.query()),
        f,
    }
    .into_response()
}

/// A CSV field, quoted when it must be; a leading `=`, `+`, `-` or `@` is prefixed with `'` so
/// that a spreadsheet does not run a number a caller chose as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /ui/cdrs.csv`: the same search as CSV, up to the store's page limit.
pub async fn cdrs_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(f): Query<CdrFilter>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::CdrRead);
    let lang = Lang::from_headers(&headers);
    let rows = match f.search(&p, 0, toll_store::reports::MAX_LIST) {
        Ok(s) => state
            .store()
            .cdr_page(p.tenant_id(), &s)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return error_page(lang, &p, e),
    };
    let mut out = String::from(
        "event_key,account,caller,callee,start,usage,category,destination,amount,priced_by\n",
    );
    for r in &rows {
        let fields = [
            r.event_key.clone(),
            r.account.clone(),
            r.caller.clone(),
            r.callee.clone(),
            when(&p, r.start_ms),
            r.usage.clone(),
            r.category.clone(),
            r.destination_id.clone().unwrap_or_default(),
            r.amount.to_decimal().normalize().to_string(),
            r.priced_by.clone(),
        ];
        let line: Vec<String> = fields.iter().map(|s| csv_field(s)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    let mut res = out.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"cdrs.csv\""),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

// ---------------------------------------------------------------------------------------------
// Suspense

#[derive(Debug)]
pub struct SuspenseRow {
    pub id: i64,
    pub class: String,
    pub reason: String,
    pub source: String,
    pub status: &'static str,
    pub attempts: i64,
    pub created: String,
    pub href: String,
}

#[derive(Debug, Template)]
#[template(path = "suspense.html")]
pub struct SuspensePage {
    pub layout: Layout,
    pub status: String,
    pub counts: Vec<(String, i64)>,
    pub rows: Vec<SuspenseRow>,
}

#[derive(Debug, Deserialize, Default)]
pub struct SuspenseQuery {
    pub status: Option<String>,
    pub class: Option<String>,
}

fn suspense_status(t: &'static Messages, s: &str) -> &'static str {
    match s {
        "open" => t.suspense_status_open,
        "resolved" => t.suspense_status_resolved,
        _ => t.suspense_status_discarded,
    }
}

fn suspense_row(
    p: &Principal,
    t: &'static Messages,
    i: &toll_store::suspense::SuspenseItem,
) -> SuspenseRow {
    SuspenseRow {
        id: i.id,
        class: i.class.clone(),
        reason: i.reason.clone(),
        source: i.source.clone(),
        status: suspense_status(t, &i.status),
        attempts: i.attempts,
        created: when(p, i.created_ms),
        href: format!("{}/{}", paths::SUSPENSE, i.id),
    }
}

/// `GET /ui/suspense?status=…&class=…`.
pub async fn suspense(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<SuspenseQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SuspenseRead);
    let lang = Lang::from_headers(&headers);
    let t = lang.messages();
    let status = q.status.unwrap_or_else(|| "open".into());
    let filter = toll_store::suspense::SuspenseFilter {
        status: Some(status.clone()),
        class: q.class.filter(|c| !c.is_empty()),
        after_id: None,
        limit: 500,
    };
    let items = match state.store().suspense_items(p.tenant_id(), &filter).await {
        Ok(i) => i,
        Err(e) => return error_page(lang, &p, e.into()),
    };
    let counts = state
        .store()
        .suspense_counts(p.tenant_id())
        .await
        .unwrap_or_default();
    SuspensePage {
        layout: frame(
            Some(&p),
            lang,
            &path_of(&uri),
            Nav::Suspense,
            |t| t.suspense_title,
            vec![],
        ),
        status,
        counts,
        rows: items.iter().map(|i| suspense_row(&p, t, i)).collect(),
    }
    .into_response()
}

#[derive(Debug, Template)]
#[template(path = "suspense_item.html")]
pub struct SuspenseItemPage {
    pub layout: Layout,
    pub row: SuspenseRow,
    pub open: bool,
    pub stage: String,
    pub field: String,
    pub line: String,
    pub raw: String,
    pub record: String,
    pub can_write: bool,
    pub edit_action: String,
    pub reprocess_action: String,
    pub discard_action: String,
}

/// `GET /ui/suspense/{id}`.
pub async fn suspense_item(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<OkQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SuspenseRead);
    let lang = Lang::from_headers(&headers);
    let flashes = ok_flash(lang.messages(), q.ok.as_deref());
    suspense_item_page(&state, &p, lang, id, flashes, StatusCode::OK).await
}

async fn suspense_item_page(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    id: i64,
    mut flashes: Vec<Flash>,
    status: StatusCode,
) -> Response {
    let t = lang.messages();
    let i = match state.store().suspense_item(p.tenant_id(), id).await {
        Ok(i) => i,
        Err(e) => return error_page(lang, p, e.into()),
    };
    if i.status == "open" && flashes.iter().any(|f| f.text == t.suspense_reprocessed_ok) {
        // Re-processed, yet still open: it failed again (the new reason is on the page).
        flashes = vec![Flash {
            kind: FlashKind::Warning,
            text: t.suspense_still_failing.to_string(),
        }];
    }
    let base = format!("{}/{id}", paths::SUSPENSE);
    let page = SuspenseItemPage {
        layout: frame(
            Some(p),
            lang,
            &base,
            Nav::Suspense,
            |t| t.suspense_title,
            flashes,
        ),
        row: suspense_row(p, t, &i),
        open: i.status == "open",
        stage: i.stage.as_str().to_string(),
        field: i.field.clone().unwrap_or_default(),
        line: i.line.map(|l| l.to_string()).unwrap_or_default(),
        raw: i.raw.clone(),
        record: i.record.clone().unwrap_or_default(),
        can_write: p.can(Perm::SuspenseWrite),
        edit_action: format!("{base}/edit"),
        reprocess_action: format!("{base}/reprocess"),
        discard_action: format!("{base}/discard"),
    };
    (status, page.into_response()).into_response()
}

#[derive(Debug, Deserialize)]
pub struct SuspenseEditForm {
    #[serde(default)]
    pub raw: String,
    #[serde(default)]
    pub record: String,
}

/// `POST /ui/suspense/{id}/edit`: saves the corrected record (the raw line, or the JSON form
/// when the item has one) and re-processes it at once, as the operator asked by saving.
pub async fn suspense_edit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Form(f): Form<SuspenseEditForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SuspenseWrite);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let before = state.store().suspense_item(p.tenant_id(), id).await?;
        // Only what changed is written: an untouched JSON form must not override a fixed raw
        // line, nor the other way round.
        let raw = Some(f.raw.trim_end_matches(['\r', '\n']))
            .filter(|r| *r != before.raw.trim_end_matches(['\r', '\n']) && !r.is_empty());
        let record =
            Some(f.record.trim()).filter(|r| !r.is_empty() && Some(*r) != before.record.as_deref());
        if let Some(r) = record {
            serde_json::from_str::<serde_json::Value>(r)
                .map_err(|e| ApiError::bad("record", e.to_string()))?;
        }
        if raw.is_some() || record.is_some() {
            state
                .store()
                .suspense_edit(p.tenant_id(), id, raw.map(str::as_bytes), record)
                .await?;
            audit(&p, "suspense.edit", "suspense", &id.to_string())
                .before(serde_json::json!({"raw": before.raw, "record": before.record}))
                .after(serde_json::json!({"raw": raw, "record": record}))
                .write(&state, &p)
                .await?;
        }
        reprocess_one(&state, &p, id).await
    }
    .await;
    match done {
        Ok(()) => see_other(&format!("{}/{id}?ok=reprocessed", paths::SUSPENSE)),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            suspense_item_page(
                &state,
                &p,
                lang,
                id,
                flashes,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

async fn reprocess_one(state: &AppState, p: &Principal, id: i64) -> Result<(), ApiError> {
    let ti = state.tenant(&p.tenant.slug).await?;
    let report = reprocess(
        &ti.pipeline,
        state.store(),
        p.tenant_id(),
        &Selection {
            ids: vec![id],
            class: None,
        },
    )
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    audit(p, "suspense.reprocess", "suspense", &id.to_string())
        .after(serde_json::json!({
            "charged": report.charged,
            "suspended": report.suspended,
            "duplicate": report.duplicate,
            "amount": report.amount.to_string(),
        }))
        .write(state, p)
        .await
}

/// `POST /ui/suspense/{id}/reprocess`: tries the item again as it is (after a tariff or a
/// subscriber was fixed elsewhere).
pub async fn suspense_reprocess(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SuspenseWrite);
    let lang = Lang::from_headers(&headers);
    match reprocess_one(&state, &p, id).await {
        Ok(()) => see_other(&format!("{}/{id}?ok=reprocessed", paths::SUSPENSE)),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            suspense_item_page(
                &state,
                &p,
                lang,
                id,
                flashes,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// `POST /ui/suspense/{id}/discard`.
pub async fn suspense_discard(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SuspenseWrite);
    let lang = Lang::from_headers(&headers);
    let done = async {
        state.store().suspense_discard(p.tenant_id(), id).await?;
        audit(&p, "suspense.discard", "suspense", &id.to_string())
            .after(serde_json::json!({"status": "discarded"}))
            .write(&state, &p)
            .await
    }
    .await;
    match done {
        Ok(()) => see_other(&format!("{}/{id}?ok=discarded", paths::SUSPENSE)),
        Err(e) => error_page(lang, &p, e),
    }
}

// ---------------------------------------------------------------------------------------------
// Audit log

#[derive(Debug)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub layout: Layout,
    pub rows: Vec<AuditRow>,
    pub first: Option<String>,
    pub next: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct AuditQuery {
    pub before: Option<i64>,
}

/// `GET /ui/audit?before=ID`: newest first, by cursor.
pub async fn audit_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<AuditQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::AuditRead);
    let lang = Lang::from_headers(&headers);
    let rows = match state
        .store()
        .audit_log(p.tenant_id(), q.before, PAGE + 1)
        .await
    {
        Ok(r) => r,
        Err(e) => return error_page(lang, &p, e.into()),
    };
    let more = rows.len() as i64 > PAGE;
    let shown: Vec<_> = rows.into_iter().take(PAGE as usize).collect();
    let next = more
        .then(|| {
            shown
                .last()
                .map(|r| format!("{}?before={}", paths::AUDIT, r.id))
        })
        .flatten();
    let json =
        |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
    AuditPage {
        layout: frame(
            Some(&p),
            lang,
            &path_of(&uri),
            Nav::Audit,
            |t| t.audit_title,
            vec![],
        ),
        rows: shown
            .iter()
            .map(|r| AuditRow {
                at: when(&p, r.at_ms),
                actor: r.actor.clone(),
                action: r.action.clone(),
                entity: format!("{} {}", r.entity, r.entity_key),
                before: json(&r.before),
                after: json(&r.after),
            })
            .collect(),
        first: q.before.is_some().then(|| paths::AUDIT.to_string()),
        next,
    }
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Customer portal

#[derive(Debug, Template)]
#[template(path = "portal.html")]
pub struct PortalPage {
    pub layout: Layout,
    pub a: AccountSummary,
    pub request_action: &'static str,
    /// The customer's latest invoices and credit notes (drafts are not theirs to see yet).
    pub invoices: Vec<super::invoices::InvoiceRow>,
}

/// Invoices the portal lists, newest first.
const PORTAL_INVOICES: i64 = 24;

/// `GET /portal`: the customer's own account (the one their sign-in is bound to).
pub async fn portal(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<OkQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SelfService);
    let lang = Lang::from_headers(&headers);
    let t = lang.messages();
    let Some(code) = p.account_code.clone() else {
        return message_page(
            StatusCode::FORBIDDEN,
            lang,
            Some(&p),
            t.forbidden_title,
            t.portal_no_account,
        );
    };
    let a = match account_summary(&state, &p, lang, &code).await {
        Ok(a) => a,
        Err(e) => return error_page(lang, &p, e),
    };
    let invoices = match state
        .store()
        .invoices(p.tenant_id(), Some(&code), None, None, PORTAL_INVOICES)
        .await
    {
        Ok(list) => list
            .iter()
            .filter(|i| i.status != "draft")
            .map(|i| super::invoices::portal_invoice_row(t, i))
            .collect(),
        Err(e) => return error_page(lang, &p, e.into()),
    };
    PortalPage {
        layout: frame(
            Some(&p),
            lang,
            &path_of(&uri),
            Nav::None,
            |t| t.portal_title,
            ok_flash(t, q.ok.as_deref()),
        ),
        a,
        request_action: paths::PORTAL_TOPUP,
        invoices,
    }
    .into_response()
}

#[derive(Debug, Deserialize)]
pub struct TopUpRequestForm {
    pub amount: String,
    #[serde(default)]
    pub comment: String,
}

/// `POST /portal/topup-request`: records the customer's request in the audit log, where the
/// operators see it; nothing is credited until an operator tops up.
pub async fn portal_topup_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<TopUpRequestForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SelfService);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let code = p
            .account_code
            .clone()
            .ok_or_else(|| ApiError::bad("account", "not bound to an account"))?;
        let amount: Micros = f
            .amount
            .trim()
            .parse()
            .map_err(|_| ApiError::bad("amount", "a decimal amount, e.g. 50.00"))?;
        if amount.0 <= 0 {
            return Err(ApiError::bad("amount", "must be positive"));
        }
        let comment: String = f.comment.trim().chars().take(500).collect();
        audit(&p, "account.top_up_request", "account", &code)
            .after(serde_json::json!({"amount": amount.to_string(), "comment": comment}))
            .write(&state, &p)
            .await
    }
    .await;
    match done {
        Ok(()) => see_other(&format!("{}?ok=requested", paths::PORTAL)),
        Err(e) => error_page(lang, &p, e),
    }
}
