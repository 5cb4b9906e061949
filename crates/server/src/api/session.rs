//! Signing in and out, and who am I.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::ALL_PERMS;
use crate::error::ApiError;
use crate::principal::{Principal, SESSION_COOKIE, Via, cookie};
use crate::secrets::{decoy_hash, random_token, sha256, verify_password};
use crate::state::AppState;

/// Failed logins in a row before a user is locked, and for how long.
pub const LOCK_AFTER: i64 = 5;
pub const LOCK_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "admin")]
    pub login: String,
    pub password: String,
}

/// The signed-in principal.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub tenant: String,
    pub tenant_name: String,
    pub currency: String,
    pub time_zone: String,
    /// `user:LOGIN` or `key:PREFIX`.
    pub actor: String,
    pub display_name: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    /// What this principal may do.
    pub permissions: Vec<String>,
}

impl Me {
    pub fn of(p: &Principal) -> Me {
        Me {
            tenant: p.tenant.slug.clone(),
            tenant_name: p.tenant.name.clone(),
            currency: p.tenant.currency.as_str().to_string(),
            time_zone: p.tenant.time_zone.clone(),
            actor: p.actor.clone(),
            display_name: p.display_name.clone(),
            role: p.role.as_str().to_string(),
            account_code: p.account_code.clone(),
            permissions: ALL_PERMS
                .iter()
                .filter(|&&x| p.can(x))
                .filter_map(|x| serde_json::to_value(x).ok())
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        }
    }
}

/// The client's address (for the login limit); loopback when the server was not started with
/// connection info (tests that mount the router themselves).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        ))
    }
}

/// Signs in: sets the `toll_session` cookie (HttpOnly, SameSite=Lax, Secure under TLS).
#[utoipa::path(post, path = "/api/v1/session", tag = "session",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "signed in; the session cookie is set", body = Me),
        (status = 401, description = "wrong login or password", content_type = "application/problem+json"),
        (status = 429, description = "too many attempts from this address, or the user is locked", content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Json<LoginRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad("body", e.body_text()))?;
    let signed = sign_in(&state, ip, &req.login, req.password).await?;
    let mut res = Json(Me::of(&signed.principal)).into_response();
    res.headers_mut().insert(header::SET_COOKIE, signed.cookie);
    Ok(res)
}

/// A successful sign-in: who it is and the `Set-Cookie` value of its new session.
#[derive(Debug)]
pub struct SignedIn {
    pub principal: Principal,
    pub cookie: HeaderValue,
}

/// The checks of every sign-in, shared by the JSON API and the UI's form so that neither can
/// drift: the per-address limit, the per-user lockout, a decoy hash for unknown logins (the
/// answer's timing does not tell which logins exist), then a new session. Errors are
/// [`ApiError::BadCredentials`] or [`ApiError::TooManyAttempts`] (or a store failure).
pub async fn sign_in(
    state: &AppState,
    ip: IpAddr,
    login: &str,
    password: String,
) -> Result<SignedIn, ApiError> {
    state
        .logins()
        .check(ip)
        .map_err(ApiError::TooManyAttempts)?;
    let user = state.store().user_by_login(login.trim()).await?;
    let Some(user) = user else {
        // As slow as a wrong password: the answer does not tell whether the login exists.
        let _ = verify_password(password, decoy_hash().await).await;
        state.logins().failed(ip);
        return Err(ApiError::BadCredentials);
    };
    let now = toll_store::now_ms();
    if let Some(until) = user.locked_until_ms.filter(|t| *t > now) {
        let secs = u64::try_from((until - now) / 1000).unwrap_or(1).max(1);
        return Err(ApiError::TooManyAttempts(secs));
    }
    if user.disabled || !verify_password(password, user.password_hash.clone()).await {
        if !user.disabled {
            state
                .store()
                .record_login_failure(user.id, LOCK_AFTER, LOCK_MS)
                .await?;
        }
        state.logins().failed(ip);
        tracing::info!(login = %user.login, %ip, "login refused");
        return Err(ApiError::BadCredentials);
    }
    state.store().record_login_success(user.id).await?;
    let token = random_token().map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let ttl = state.config().session_ttl;
    let expires = now + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
    state
        .store()
        .create_session(&sha256(&token), user.id, expires)
        .await?;
    let tenant = state.tenant_by_id(user.tenant, &user.tenant_slug).await?;
    let principal = Principal {
        tenant,
        actor: format!("user:{}", user.login),
        login: Some(user.login.clone()),
        display_name: user.display_name,
        role: user.role,
        account_code: user.account_code,
        via: Via::Session,
    };
    tracing::info!(login = %user.login, role = %user.role, "signed in");
    let cookie = session_cookie(&token, ttl.as_secs(), state.config().secure_cookies);
    Ok(SignedIn { principal, cookie })
}

/// Ends the session of the request's cookie, if any, and returns the `Set-Cookie` value that
/// clears it: shared by the API's and the UI's sign-out.
pub async fn sign_out(state: &AppState, headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    if let Some(token) = cookie(headers, SESSION_COOKIE) {
        let digest = sha256(token);
        state.auth_cache().forget_session(&digest);
        state.store().delete_session(&digest).await?;
    }
    Ok(session_cookie("", 0, state.config().secure_cookies))
}

/// The `Set-Cookie` value of a session (an empty token with max-age 0 clears it).
pub fn session_cookie(token: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Signs out: ends the session and clears the cookie.
#[utoipa::path(delete, path = "/api/v1/session", tag = "session",
    responses((status = 204, description = "signed out")))]
pub async fn logout(
    State(state): State<AppState>,
    _p: Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let clear = sign_out(&state, &headers).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(res)
}

/// Who the request is signed in as, and what it may do.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = Me)))]
pub async fn me(p: Principal) -> Json<Me> {
    Json(Me::of(&p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_flags() {
        let c = session_cookie("abc", 60, true);
        let s = c.to_str().unwrap();
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Lax") && s.contains("Secure"));
        assert!(
            !session_cookie("abc", 60, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
