//! Signing in and out with the HTML form, and the guard of every page.
//!
//! The form's checks are the JSON API's ([`crate::api::session::sign_in`]): one path, so that
//! the per-address limit, the lockout and the decoy hash cannot differ between the two. Pages
//! call [`require`] first: no session is a redirect to the sign-in form (which comes back to
//! the page), a role without the page's permission is a 403 page, never the page itself.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use toll_store::users::Role;

use super::i18n::{Lang, safe_next};
use super::pages::{LoginData, LoginError, LoginPage, PageContext};
use super::paths;
use super::views::message_page;
use crate::access::Perm;
use crate::api::session::{ClientIp, sign_in, sign_out};
use crate::error::ApiError;
use crate::principal::{Principal, authenticate};
use crate::state::AppState;

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    pub next: Option<String>,
}

/// A `303 See Other` to `to`: after a form's POST, the browser GETs the result, so a reload
/// does not post again.
pub fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Where a principal lands after signing in: customers have the portal only.
pub fn home_of(p: &Principal) -> &'static str {
    if p.role == Role::Customer {
        paths::PORTAL
    } else {
        paths::DASHBOARD
    }
}

/// `POST /ui/login`: signs in and goes to `next` (a path of this site) or the principal's home;
/// a refusal shows the form again with the reason and the user name typed.
pub async fn login_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    lang: Lang,
    Form(form): Form<LoginForm>,
) -> Response {
    let refused = |error| {
        LoginPage::new(
            PageContext {
                lang,
                user_display: None,
                path: paths::LOGIN.into(),
                flashes: vec![],
            },
            LoginData {
                username: form.username.clone(),
                error: Some(error),
                next: form.next.clone(),
            },
        )
    };
    match sign_in(&state, ip, &form.username, form.password.clone()).await {
        Ok(signed) => {
            let home = home_of(&signed.principal);
            // A customer never goes to a staff page, even if `next` says so.
            let to = form
                .next
                .as_deref()
                .and_then(safe_next)
                .filter(|n| signed.principal.role != Role::Customer || n.starts_with(home))
                .unwrap_or(home);
            let mut res = see_other(to);
            res.headers_mut().insert(header::SET_COOKIE, signed.cookie);
            res
        }
        Err(ApiError::BadCredentials) => (
            StatusCode::UNAUTHORIZED,
            refused(LoginError::InvalidCredentials),
        )
            .into_response(),
        Err(ApiError::TooManyAttempts(_)) => (
            StatusCode::TOO_MANY_REQUESTS,
            refused(LoginError::Throttled),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /ui/logout`: ends the session and goes back to the sign-in form.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match sign_out(&state, &headers).await {
        Ok(clear) => {
            let mut res = see_other(paths::LOGIN);
            res.headers_mut().insert(header::SET_COOKIE, clear);
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The guard of a page: the signed-in principal if it may do `perm`; otherwise the answer to
/// send instead — a redirect to the sign-in form that comes back to this page, or a 403 page.
/// API keys are not accepted here: the UI is for people with sessions (a key in a browser
/// would be a key leaked).
pub async fn require(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    perm: Perm,
) -> Result<Principal, Response> {
    let lang = Lang::from_headers(headers);
    let principal = match authenticate(state, headers).await {
        Ok(Some(p)) if p.via == crate::principal::Via::Session => p,
        Ok(_) | Err(ApiError::Unauthenticated) => {
            let here = uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or(paths::DASHBOARD);
            let next = safe_next(here).unwrap_or(paths::DASHBOARD);
            let to = format!(
                "{}?next={}",
                paths::LOGIN,
                percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
            );
            return Err(see_other(&to));
        }
        Err(e) => return Err(e.into_response()),
    };
    if !principal.can(perm) {
        let t = lang.messages();
        return Err(message_page(
            StatusCode::FORBIDDEN,
            lang,
            Some(&principal),
            t.forbidden_title,
            t.forbidden_text,
        ));
    }
    Ok(principal)
}
