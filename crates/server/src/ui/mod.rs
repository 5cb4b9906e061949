//! The operators' web UI: server-rendered pages (askama) with Bootstrap, htmx and ECharts, in
//! Chinese and English.
//!
//! - [`assets`]: the CSS and JavaScript, embedded in the binary, at `/assets/…`.
//! - [`i18n`]: the languages, their message catalogs, and the switcher's route.
//! - [`pages`]: the templates and the plain data that fills them.
//!
//! Pages are rendered on the server and work without JavaScript; scripts only add to them
//! (the charts, htmx fragments). Every front-end file is vendored and embedded: an operator's
//! back office often has no internet, and the UI must not depend on a CDN.
//!
//! | Route | |
//! |---|---|
//! | `GET /assets/{*path}` | an embedded file ([`assets`]) |
//! | `GET /ui/lang/{lang}?next=…` | remembers the language, back to `next` ([`i18n::set_lang`]) |
//! | `GET /ui/login`, `POST /ui/login`, `POST /ui/logout` | signing in and out ([`session`]) |
//! | `GET /ui/` | the dashboard: today's figures in the tenant's time zone |
//! | `/ui/tariffs…` | versions, upload, inspect, activate, the rating tester |
//! | `/ui/plans…` | plans by status, drafts, the maker–checker buttons |
//! | `/ui/accounts…` | search, detail, top-up |
//! | `/ui/subscriptions/{id}/plan-change…` | a plan change's proration preview, the change ([`plan_change`]) |
//! | `GET /ui/cdrs`, `GET /ui/cdrs.csv` | CDR search and its CSV export |
//! | `/ui/suspense…` | the queue, fix and re-process, discard |
//! | `GET /ui/audit` | the audit log |
//! | `/ui/invoices…` | invoices: list, bill run, one invoice as printed, PDF, finalize, void, credit, payments ([`invoices`]) |
//! | `GET /portal`, `POST /portal/topup-request` | the customer's own account |
//!
//! Every page runs its guard first ([`session::require`]): signed out is a redirect to the
//! sign-in form, a role without the page's permission a 403 page.

pub mod assets;
pub mod i18n;
pub mod invoices;
pub mod pages;
pub mod plan_change;
pub mod session;
pub mod views;

use axum::Router;
use axum::extract::Query;
use axum::http::Uri;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::state::AppState;
use i18n::Lang;
use pages::{LoginData, LoginPage, PageContext};

/// The UI's paths, in one place so that links, redirects and routes agree.
pub mod paths {
    /// The dashboard, also the UI's home.
    pub const DASHBOARD: &str = "/ui/";
    pub const TARIFFS: &str = "/ui/tariffs";
    pub const PLANS: &str = "/ui/plans";
    pub const ACCOUNTS: &str = "/ui/accounts";
    pub const CDRS: &str = "/ui/cdrs";
    pub const SUSPENSE: &str = "/ui/suspense";
    pub const AUDIT: &str = "/ui/audit";
    pub const INVOICES: &str = "/ui/invoices";
    pub const BILL_RUN: &str = "/ui/invoices/bill-run";
    /// `GET` shows the form, `POST` signs in.
    pub const LOGIN: &str = "/ui/login";
    /// `POST` signs out.
    pub const LOGOUT: &str = "/ui/logout";
    pub const TARIFF_RATE: &str = "/ui/tariffs/rate";
    pub const CDRS_CSV: &str = "/ui/cdrs.csv";
    /// The customers' portal.
    pub const PORTAL: &str = "/portal";
    pub const PORTAL_TOPUP: &str = "/portal/topup-request";
    /// Followed by a language tag ([`super::i18n::Lang::tag`]).
    pub const LANG_PREFIX: &str = "/ui/lang/";
}

/// The UI's routes: the files, the language switcher, signing in and out, the pages and the
/// portal. Each page's handler guards itself with its permission ([`session::require`]).
pub fn ui_router() -> Router<AppState> {
    use views::*;
    Router::new()
        .merge(assets::routes())
        .route("/ui/lang/{lang}", get(i18n::set_lang))
        .route(paths::LOGIN, get(login_form).post(session::login_submit))
        .route(paths::LOGOUT, post(session::logout))
        .route(paths::DASHBOARD, get(dashboard))
        .route(
            "/ui",
            get(|| async { session::see_other(paths::DASHBOARD) }),
        )
        .route(paths::TARIFFS, get(tariffs).post(tariff_upload))
        .route(paths::TARIFF_RATE, post(tariff_rate))
        .route("/ui/tariffs/{code}/{version}", get(tariff))
        .route(
            "/ui/tariffs/{code}/{version}/activate",
            post(tariff_activate),
        )
        .route(paths::PLANS, get(plans).post(plan_create))
        .route("/ui/plans/{code}", get(plan))
        .route("/ui/plans/{code}/edit", post(plan_edit))
        .route("/ui/plans/{code}/action", post(plan_act))
        .route(paths::ACCOUNTS, get(accounts))
        .route("/ui/accounts/{code}", get(account))
        .route("/ui/accounts/{code}/topup", post(account_topup))
        .route(
            "/ui/subscriptions/{id}/plan-change/preview",
            get(plan_change::preview),
        )
        .route(
            "/ui/subscriptions/{id}/plan-change",
            post(plan_change::change),
        )
        .route(paths::CDRS, get(cdrs))
        .route(paths::CDRS_CSV, get(cdrs_csv))
        .route(paths::SUSPENSE, get(suspense))
        .route("/ui/suspense/{id}", get(suspense_item))
        .route("/ui/suspense/{id}/edit", post(suspense_edit))
        .route("/ui/suspense/{id}/reprocess", post(suspense_reprocess))
        .route("/ui/suspense/{id}/discard", post(suspense_discard))
        .route(paths::AUDIT, get(audit_log))
        .route(paths::INVOICES, get(invoices::list))
        .route(paths::BILL_RUN, post(invoices::bill_run))
        .route("/ui/invoices/{id}", get(invoices::show))
        .route("/ui/invoices/{id}/document", get(invoices::document))
        .route("/ui/invoices/{id}/pdf", get(invoices::pdf))
        .route("/ui/invoices/{id}/finalize", post(invoices::finalize))
        .route("/ui/invoices/{id}/void", post(invoices::void))
        .route("/ui/invoices/{id}/credit", post(invoices::credit))
        .route("/ui/invoices/{id}/payment", post(invoices::payment))
        .route(
            "/portal/invoices/{id}/document",
            get(invoices::portal_document),
        )
        .route("/portal/invoices/{id}/pdf", get(invoices::portal_pdf))
        .route(paths::PORTAL, get(portal))
        .route(paths::PORTAL_TOPUP, post(portal_topup_request))
        // Tariff uploads are the largest forms: a zip of a CGRateS folder.
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
}

/// The query of the sign-in page: where to go once signed in.
#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the empty sign-in form.
async fn login_form(lang: Lang, uri: Uri, Query(query): Query<LoginQuery>) -> LoginPage {
    LoginPage::new(
        PageContext {
            lang,
            user_display: None,
            path: path_and_query(&uri),
            flashes: vec![],
        },
        LoginData {
            next: query.next,
            ..LoginData::default()
        },
    )
}

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}
