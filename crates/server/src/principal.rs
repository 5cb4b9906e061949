//! The principal of a request: who it is (a signed-in user or an API key), in which tenant,
//! with which role, and the guard that checks a route's permission before its handler runs.
//!
//! Authentication: `Authorization: Bearer toll_<prefix>_<secret>` (an API key) or the
//! `toll_session` cookie (a login). Anything else on an API route is 401; a known principal
//! without the route's permission is 403. The tenant is the principal's: handlers scope every
//! query by it, so another tenant's objects are never found.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use toll_store::users::Role;
use toll_store::{Tenant, TenantId};

use crate::access::{Perm, Scope, role_allows};
use crate::error::ApiError;
use crate::secrets::{same, sha256, split_key};
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "toll_session";

/// How the principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Session,
    /// An API key, narrowed to its scopes.
    ApiKey {
        prefix: String,
        scopes: Vec<Scope>,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: Tenant,
    /// `user:LOGIN` or `key:PREFIX`: what the audit log and plan history record.
    pub actor: String,
    pub login: Option<String>,
    pub display_name: String,
    pub role: Role,
    /// A customer's own account.
    pub account_code: Option<String>,
    pub via: Via,
}

impl Principal {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant.id
    }

    /// Whether the principal may do `perm`: its role allows it and, for a key, a scope covers it.
    pub fn can(&self, perm: Perm) -> bool {
        role_allows(self.role, perm)
            && match &self.via {
                Via::Session => true,
                Via::ApiKey { scopes, .. } => scopes.iter().any(|s| s.covers(perm)),
            }
    }
}

/// Handlers take the principal the guard put in the request; a route mounted without a guard
/// has none, and answers 401 rather than run unauthenticated.
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or(ApiError::Unauthenticated)
    }
}

/// The value of a cookie of the request.
pub fn cookie<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Who is calling, if anyone: the API key of the `Authorization` header first, else the
/// session cookie. A presented but invalid credential is an error, not anonymity.
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let key = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthenticated)?;
        return key_principal(state, key).await.map(Some);
    }
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let digest = sha256(token);
    if let Some(p) = state.auth_cache().session(&digest, toll_store::now_ms()) {
        return Ok(Some(p));
    }
    let user = state.store().session_user(&digest).await?;
    let Some(user) = user else {
        return Ok(None);
    };
    let tenant = state.tenant_by_id(user.tenant, &user.tenant_slug).await?;
    let p = Principal {
        tenant,
        actor: format!("user:{}", user.login),
        login: Some(user.login),
        display_name: user.display_name,
        role: user.role,
        account_code: user.account_code,
        via: Via::Session,
    };
    state.auth_cache().put_session(digest, &p);
    Ok(Some(p))
}

async fn key_principal(state: &AppState, key: &str) -> Result<Principal, ApiError> {
    let (prefix, secret) = split_key(key).ok_or(ApiError::Unauthenticated)?;
    let digest = sha256(secret);
    let now = toll_store::now_ms();
    if let Some(p) = state.auth_cache().key(prefix, &digest, now) {
        return Ok(p);
    }
    let rec = state
        .store()
        .api_key_by_prefix(prefix)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let valid = same(&rec.secret_hash, &digest)
        && rec.revoked_ms.is_none()
        && rec.expires_ms.is_none_or(|t| t > now);
    if !valid {
        return Err(ApiError::Unauthenticated);
    }
    let tenant = state.tenant_by_id(rec.tenant, &rec.tenant_slug).await?;
    let p = Principal {
        tenant,
        actor: format!("key:{}", rec.prefix),
        login: None,
        display_name: rec.name,
        role: rec.role,
        account_code: None,
        via: Via::ApiKey {
            prefix: rec.prefix.clone(),
            scopes: rec.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
        },
    };
    state
        .auth_cache()
        .put_key(&rec.prefix, digest, rec.expires_ms, &p);
    Ok(p)
}

/// A route's guard: its permission.
#[derive(Clone, Debug)]
pub struct Guard {
    pub state: AppState,
    pub perm: Perm,
}

/// Authenticates, checks the route's permission, and hands the principal to the handler.
pub async fn guard(
    State(g): State<Guard>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = authenticate(&g.state, req.headers())
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if !principal.can(g.perm) {
        return Err(ApiError::Forbidden(g.perm));
    }
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}
