//! The UI's pages: askama templates (`crates/server/templates/`) filled from plain data.
//!
//! A handler gathers what a page shows into plain structs ([`PageContext`] for the frame every
//! page shares — language, user, flashes — and one data struct per page, e.g.
//! [`DashboardData`]) and returns the page ([`LoginPage::new`], [`DashboardPage::new`]), which is
//! an axum response. The pages know nothing of the store or of sessions: that keeps them
//! testable with made-up data and lets the routes that fill them change freely.
//!
//! Every text comes from the language's catalog ([`Messages`]); values are escaped by askama
//! (auto-escaping is on for `.html` templates: never turn it off for a value that a user or a
//! CDR can influence).

use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::assets;
use super::i18n::{Lang, Messages, safe_next};
use super::paths;

/// The `Content-Security-Policy` of every page: scripts and styles only from our own
/// `/assets/` (none inline, so an injected `<script>` would not run even if escaping failed),
/// no framing (click-jacking), forms post only to us. Inline `style` attributes stay allowed
/// because ECharts positions its tooltips with them; they cannot run code.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// A page that could not be rendered: a bug (a template's value failed to format), answered
/// with a plain 500 and logged.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    #[error("rendering the template {template}")]
    Render {
        template: &'static str,
        #[source]
        source: askama::Error,
    },
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self, cause = ?std::error::Error::source(&self), "page failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
    }
}

/// A section of the navigation bar, to mark the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Tariffs,
    Plans,
    Accounts,
    Cdrs,
    Suspense,
    Invoices,
    Audit,
    /// A page outside the sections (sign-in, errors).
    None,
}

/// The kind of a flash message, which sets its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    Success,
    Info,
    Warning,
    Danger,
}

impl FlashKind {
    /// Bootstrap's alert class.
    pub fn class(self) -> &'static str {
        match self {
            FlashKind::Success => "alert-success",
            FlashKind::Info => "alert-info",
            FlashKind::Warning => "alert-warning",
            FlashKind::Danger => "alert-danger",
        }
    }
}

/// A message shown once at the top of a page ("Plan saved.").
#[derive(Debug, Clone)]
pub struct Flash {
    pub kind: FlashKind,
    /// Take it from the catalog ([`Lang::messages`]); details such as a plan's name may be
    /// appended. Escaped when shown.
    pub text: String,
}

/// What every page's frame needs to know about the request.
#[derive(Debug, Clone)]
pub struct PageContext {
    pub lang: Lang,
    /// The signed-in user's display name, shown in the navigation bar with the sign-out
    /// button; `None` on pages before sign-in (the bar then has the brand and languages only).
    pub user_display: Option<String>,
    /// The path and query of this page (`/ui/accounts?page=2`): the language switcher comes
    /// back to it. Anything but a path of this site is replaced with the dashboard's.
    pub path: String,
    pub flashes: Vec<Flash>,
}

/// A link of the navigation bar.
#[derive(Debug, Clone)]
pub struct NavLink {
    pub href: &'static str,
    pub text: &'static str,
    pub active: bool,
}

/// A language of the switcher.
#[derive(Debug, Clone)]
pub struct LangLink {
    pub tag: &'static str,
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

/// The frame of a page as `base.html` uses it, built from a [`PageContext`].
#[derive(Debug, Clone)]
pub struct Layout {
    pub lang: Lang,
    pub t: &'static Messages,
    /// The page's own title (before " · Toll").
    pub title: &'static str,
    pub user: Option<String>,
    pub nav: Vec<NavLink>,
    pub languages: Vec<LangLink>,
    pub flashes: Vec<Flash>,
    pub logout_action: &'static str,
    pub home: &'static str,
}

impl Layout {
    pub(crate) fn new(
        ctx: PageContext,
        active: Nav,
        title: impl Fn(&'static Messages) -> &'static str,
    ) -> Layout {
        let t = ctx.lang.messages();
        let nav = [
            (Nav::Dashboard, paths::DASHBOARD, t.nav_dashboard),
            (Nav::Tariffs, paths::TARIFFS, t.nav_tariffs),
            (Nav::Plans, paths::PLANS, t.nav_plans),
            (Nav::Accounts, paths::ACCOUNTS, t.nav_accounts),
            (Nav::Cdrs, paths::CDRS, t.nav_cdrs),
            (Nav::Suspense, paths::SUSPENSE, t.nav_suspense),
            (Nav::Invoices, paths::INVOICES, t.nav_invoices),
            (Nav::Audit, paths::AUDIT, t.nav_audit),
        ]
        .into_iter()
        .map(|(section, href, text)| NavLink {
            href,
            text,
            active: section == active,
        })
        .collect();
        let back = safe_next(&ctx.path).unwrap_or(paths::DASHBOARD);
        let languages = Lang::ALL
            .into_iter()
            .map(|l| LangLink {
                tag: l.tag(),
                name: l.native_name(),
                href: format!(
                    "{}{}?next={}",
                    paths::LANG_PREFIX,
                    l.tag(),
                    percent_encoding::utf8_percent_encode(back, QUERY_VALUE)
                ),
                current: l == ctx.lang,
            })
            .collect();
        Layout {
            lang: ctx.lang,
            t,
            title: title(t),
            user: ctx.user_display,
            nav,
            languages,
            flashes: ctx.flashes,
            logout_action: paths::LOGOUT,
            home: paths::DASHBOARD,
        }
    }

    /// The versioned URL of an embedded file ([`assets::url`]).
    pub fn asset(&self, path: &str) -> String {
        assets::url(path)
    }
}

/// What a query value must escape: everything but unreserved characters and `/`, which keeps
/// `next=/ui/accounts` readable.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Why the last sign-in failed, as the sign-in page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong password: one message for both, so that it does not tell which
    /// user names exist.
    InvalidCredentials,
    /// Too many attempts; try later.
    Throttled,
    /// The session ended; sign in again.
    SessionExpired,
}

/// What the sign-in page shows.
#[derive(Debug, Clone, Default)]
pub struct LoginData {
    /// The user name typed before, kept after a failed attempt (never the password).
    pub username: String,
    pub error: Option<LoginError>,
    /// Where to go after signing in; kept only if it is a path of this site.
    pub next: Option<String>,
}

/// The sign-in page (`login.html`): a POST form with `username`, `password` and `next` to
/// [`paths::LOGIN`].
#[derive(Debug, Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub username: String,
    pub error: Option<&'static str>,
    pub next: Option<String>,
    pub action: &'static str,
}

impl LoginPage {
    pub fn new(ctx: PageContext, data: LoginData) -> LoginPage {
        let layout = Layout::new(ctx, Nav::None, |t| t.login_title);
        let t = layout.t;
        LoginPage {
            error: data.error.map(|e| match e {
                LoginError::InvalidCredentials => t.login_error_invalid,
                LoginError::Throttled => t.login_error_throttled,
                LoginError::SessionExpired => t.login_error_expired,
            }),
            username: data.username,
            next: data.next.filter(|n| safe_next(n).is_some()),
            action: paths::LOGIN,
            layout,
        }
    }
}

/// What the dashboard shows. Plain values: the handler computes them from the store.
#[derive(Debug, Clone, Default)]
pub struct DashboardData {
    /// Call records rated today (in the tenant's time zone).
    pub calls_today: u64,
    /// Amount charged today, formatted with its currency by the caller (`¥12,345.67`), since
    /// the currency's symbol and minor units are the store's knowledge.
    pub revenue_today: String,
    /// Records in the suspense queue waiting for someone.
    pub suspense_open: u64,
    /// Calls per hour of today, hour 0–23; hours missing are 0, hours past 23 are ignored and
    /// a repeated hour is added up.
    pub traffic_per_hour: Vec<(u8, u64)>,
    /// When the figures were taken, formatted by the caller with the time zone
    /// (`2026-11-23 14:05 Asia/Shanghai`).
    pub as_of: String,
    /// Marks made-up figures with a banner ([`DashboardData::sample`]).
    pub sample: bool,
}

impl DashboardData {
    /// Plausible figures of a small operator's day, for tests and design work on the page
    /// (the live dashboard reads the store).
    pub fn sample() -> DashboardData {
        // A working day: quiet at night, a morning peak, a dip at lunch, an afternoon peak.
        const CALLS: [u64; 24] = [
            212, 118, 74, 51, 48, 96, 410, 1_380, 3_920, 5_610, 6_240, 5_870, 3_950, 4_480, 5_990,
            6_120, 5_720, 4_860, 3_240, 2_410, 1_980, 1_460, 870, 430,
        ];
        DashboardData {
            calls_today: CALLS.iter().sum(),
            revenue_today: "¥18,426.30".into(),
            suspense_open: 37,
            traffic_per_hour: (0u8..).zip(CALLS).collect(),
            as_of: "2026-11-23 23:59 Asia/Shanghai".into(),
            sample: true,
        }
    }
}

/// The chart's data as `toll.js` reads it from the page's `application/json` script tag.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficChart {
    /// ECharts' locale name (`ZH`, `EN`).
    pub locale: &'static str,
    pub series: &'static str,
    pub axis: &'static str,
    /// `"00"` … `"23"`.
    pub hours: Vec<String>,
    pub calls: Vec<u64>,
}

/// A row of the table that repeats the chart's figures (for screen readers and no-JS).
#[derive(Debug, Clone)]
pub struct HourRow {
    pub hour: String,
    pub calls: String,
}

/// The dashboard (`dashboard.html`).
#[derive(Debug, Template)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub layout: Layout,
    pub calls_today: String,
    pub revenue_today: String,
    pub suspense_open: String,
    pub suspense_href: &'static str,
    pub as_of: String,
    pub sample: bool,
    pub chart: TrafficChart,
    pub rows: Vec<HourRow>,
    pub total: String,
    /// The busiest hour, `None` when there was no traffic.
    pub peak: Option<String>,
}

impl DashboardPage {
    pub fn new(ctx: PageContext, data: DashboardData) -> DashboardPage {
        let layout = Layout::new(ctx, Nav::Dashboard, |t| t.dashboard_title);
        let mut calls = [0u64; 24];
        for (hour, n) in &data.traffic_per_hour {
            if let Some(slot) = calls.get_mut(usize::from(*hour)) {
                *slot = slot.saturating_add(*n);
            }
        }
        let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
        let total = calls.iter().fold(0u64, |a, n| a.saturating_add(*n));
        let peak = calls
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            // max_by_key keeps the last maximum; rev() makes it the earliest hour on a tie.
            .rev()
            .max_by_key(|(_, n)| **n)
            .map(|(h, _)| format!("{h:02}:00–{h:02}:59"));
        let rows = hours
            .iter()
            .zip(calls)
            .map(|(h, n)| HourRow {
                hour: format!("{h}:00"),
                calls: group_thousands(n),
            })
            .collect();
        DashboardPage {
            chart: TrafficChart {
                locale: layout.lang.echarts_locale(),
                series: layout.t.traffic_series,
                axis: layout.t.traffic_hour_axis,
                hours,
                calls: calls.to_vec(),
            },
            calls_today: group_thousands(data.calls_today),
            revenue_today: data.revenue_today,
            suspense_open: group_thousands(data.suspense_open),
            suspense_href: paths::SUSPENSE,
            as_of: data.as_of,
            sample: data.sample,
            rows,
            total: group_thousands(total),
            peak,
            layout,
        }
    }
}

/// `1234567` → `1,234,567`: how both zh-CN and en operators write counts.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Renders a page with the headers every page has: HTML, the [`CONTENT_SECURITY_POLICY`], and
/// `no-store`, since pages show an operator's figures and customers' data that must not stay
/// in shared caches or on a shared computer's disk.
pub(crate) fn render(page: &impl Template, template: &'static str) -> Response {
    let html = match page.render() {
        Ok(html) => html,
        Err(source) => return UiError::Render { template, source }.into_response(),
    };
    let mut response = html.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    response
}

impl IntoResponse for LoginPage {
    fn into_response(self) -> Response {
        render(&self, "login.html")
    }
}

impl IntoResponse for DashboardPage {
    fn into_response(self) -> Response {
        render(&self, "dashboard.html")
    }
}

#[cfg(test)]
mod tests {
    use super::super::i18n::ZH_CN as ZH;
    use super::*;

    fn ctx(lang: Lang, user: &str) -> PageContext {
        PageContext {
            lang,
            user_display: Some(user.into()),
            path: "/ui/".into(),
            flashes: vec![],
        }
    }

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn hours_are_filled_summed_and_bounded() {
        let data = DashboardData {
            traffic_per_hour: vec![(3, 5), (3, 2), (30, 99), (23, 1)],
            ..DashboardData::default()
        };
        let page = DashboardPage::new(ctx(Lang::En, "x"), data);
        assert_eq!(page.chart.calls.len(), 24);
        assert_eq!(page.chart.calls[3], 7);
        assert_eq!(page.chart.calls[23], 1);
        assert_eq!(page.total, "8");
        assert_eq!(page.peak.as_deref(), Some("03:00–03:59"));
    }

    #[test]
    fn a_failed_sign_in_keeps_the_name_and_says_why() {
        let mut c = ctx(Lang::ZhCn, "");
        c.user_display = None;
        let html = LoginPage::new(
            c,
            LoginData {
                username: "ops\"><b>".into(),
                error: Some(LoginError::InvalidCredentials),
                next: Some("https://evil.example/".into()),
            },
        )
        .render()
        .unwrap();
        assert!(html.contains(ZH.login_error_invalid));
        assert!(html.contains("is-invalid"));
        assert!(html.contains("value=\"ops&#34;&#62;&#60;b&#62;\""));
        assert!(!html.contains("evil.example"));
        assert!(!html.contains(ZH.logout), "no sign-out before sign-in");
    }

    #[test]
    fn the_sample_renders_in_both_languages() {
        for lang in Lang::ALL {
            let html = DashboardPage::new(ctx(lang, "op"), DashboardData::sample())
                .render()
                .unwrap();
            assert!(html.contains(lang.messages().traffic_title));
            assert!(html.contains(&format!("<html lang=\"{}\"", lang.tag())));
        }
    }
}
