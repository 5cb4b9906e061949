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
//! | `GET /ui/login` | the sign-in page (the form posts to `POST /ui/login`, not here) |
//! | `GET /ui/preview/dashboard` | TEMPORARY: the dashboard with sample data, no sign-in |

pub mod assets;
pub mod i18n;
pub mod pages;

use axum::Router;
use axum::extract::Query;
use axum::http::Uri;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::state::AppState;
use i18n::Lang;
use pages::{DashboardData, DashboardPage, LoginData, LoginPage, PageContext};

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
    /// `GET` shows the form, `POST` signs in.
    pub const LOGIN: &str = "/ui/login";
    /// `POST` signs out.
    pub const LOGOUT: &str = "/ui/logout";
    /// Followed by a language tag ([`super::i18n::Lang::tag`]).
    pub const LANG_PREFIX: &str = "/ui/lang/";
}

/// The UI's routes so far: the files, the language switcher, the sign-in form and the
/// temporary dashboard preview. The sign-in `POST`, sign-out and the real dashboard belong to
/// the authentication work and are added beside these.
pub fn ui_router() -> Router<AppState> {
    Router::new()
        .merge(assets::routes())
        .route("/ui/lang/{lang}", get(i18n::set_lang))
        .route(paths::LOGIN, get(login_form))
        .route("/ui/preview/dashboard", get(preview_dashboard))
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

/// The query of the preview: the name to show as the signed-in user.
#[derive(Debug, Deserialize)]
struct PreviewQuery {
    user: Option<String>,
}

/// TEMPORARY — `GET /ui/preview/dashboard`: the dashboard with [`DashboardData::sample`] and
/// no sign-in, to show and test the page before the real, authenticated dashboard at
/// [`paths::DASHBOARD`] replaces it (then delete this route). `?user=` sets the name shown
/// in the navigation bar, which the tests use to check that it is escaped.
async fn preview_dashboard(lang: Lang, uri: Uri, Query(query): Query<PreviewQuery>) -> Response {
    DashboardPage::new(
        PageContext {
            lang,
            user_display: Some(query.user.unwrap_or_else(|| "demo".into())),
            path: path_and_query(&uri),
            flashes: vec![],
        },
        DashboardData::sample(),
    )
    .into_response()
}

fn path_and_query(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}
