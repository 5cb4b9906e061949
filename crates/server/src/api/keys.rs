//! API keys: created with a role no higher than their creator's and a set of scopes, shown
//! once, kept hashed, revocable.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toll_store::audit::AuditEntry;
use toll_store::users::{ApiKeyRecord, NewApiKey, Role};
use utoipa::ToSchema;

use crate::access::{Scope, role_covers};
use crate::api::types::rfc3339;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::secrets::{KEY_TAG, random_prefix, random_token, sha256};
use crate::state::AppState;

/// Longest key life: a key that never expires is a key nobody rotates.
pub const MAX_KEY_DAYS: i64 = 730;

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    pub id: i64,
    /// The public part of the key (`toll_<prefix>_…`).
    pub prefix: String,
    pub name: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<ApiKeyRecord> for ApiKeyInfo {
    fn from(k: ApiKeyRecord) -> ApiKeyInfo {
        ApiKeyInfo {
            id: k.id,
            prefix: k.prefix,
            name: k.name,
            role: k.role.as_str().to_string(),
            scopes: k.scopes,
            created_by: k.created_by,
            created_at: rfc3339(k.created_ms),
            expires_at: k.expires_ms.map(rfc3339),
            revoked_at: k.revoked_ms.map(rfc3339),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: String,
    /// The role the key acts with; at most the creator's.
    pub role: String,
    /// Any of `read`, `write`, `rate`.
    pub scopes: Vec<String>,
    /// Days until it expires (1..=730; default 90).
    pub expires_in_days: Option<i64>,
}

/// A new key: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKey {
    /// `toll_<prefix>_<secret>`: send as `Authorization: Bearer <key>`. Not shown again.
    pub key: String,
    pub info: ApiKeyInfo,
}

/// The tenant's API keys (never their secrets).
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "users",
    responses((status = 200, body = Vec<ApiKeyInfo>)))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<ApiKeyInfo>>, ApiError> {
    let keys = state.store().api_keys(p.tenant_id()).await?;
    Ok(Json(keys.into_iter().map(ApiKeyInfo::from).collect()))
}

/// Creates an API key.
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "users",
    request_body = NewKeyRequest,
    responses((status = 201, body = NewKey),
        (status = 400, description = "invalid field", content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<NewKeyRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<NewKey>), ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad("body", e.body_text()))?;
    let role: Role = req.role.parse().map_err(|_| {
        ApiError::bad(
            "role",
            "one of admin, operator, approver, auditor, provider, customer",
        )
    })?;
    if role == Role::Customer || !role_covers(p.role, role) {
        return Err(ApiError::bad(
            "role",
            format!("a {} cannot create a key acting as {}", p.role, role),
        ));
    }
    let mut scopes: Vec<Scope> = Vec::new();
    for (i, s) in req.scopes.iter().enumerate() {
        let scope = Scope::parse(s.trim())
            .ok_or_else(|| ApiError::bad(format!("scopes[{i}]"), "read, write or rate"))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err(ApiError::bad("scopes", "at least one of read, write, rate"));
    }
    let days = req.expires_in_days.unwrap_or(90);
    if !(1..=MAX_KEY_DAYS).contains(&days) {
        return Err(ApiError::bad(
            "expires_in_days",
            format!("1..={MAX_KEY_DAYS}"),
        ));
    }
    let prefix = random_prefix().map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let secret = random_token().map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let scope_names: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
    let rec = state
        .store()
        .create_api_key(
            p.tenant_id(),
            &NewApiKey {
                prefix: &prefix,
                secret_hash: &sha256(&secret),
                name: req.name.trim(),
                role,
                scopes: &scope_names,
                created_by: &p.actor,
                expires_ms: Some(toll_store::now_ms() + days * 86_400_000),
            },
        )
        .await?;
    let info = ApiKeyInfo::from(rec);
    let after = serde_json::json!({"prefix": info.prefix, "name": info.name, "role": info.role, "scopes": info.scopes});
    state
        .store()
        .audit(
            p.tenant_id(),
            &AuditEntry {
                actor: &p.actor,
                action: "api_key.create",
                entity: "api_key",
                entity_key: &info.prefix,
                before: None,
                after: Some(&after),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(NewKey {
            key: format!("{KEY_TAG}{prefix}_{secret}"),
            info,
        }),
    ))
}

/// Revokes an API key; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "users",
    params(("id" = i64, Path, description = "the key's id")),
    responses((status = 200, body = ApiKeyInfo),
        (status = 404, description = "no such key in this tenant", content_type = "application/problem+json")))]
pub async fn revoke(
    State(state): State<AppState>,
    p: Principal,
    Path(id): Path<i64>,
) -> Result<Json<ApiKeyInfo>, ApiError> {
    let rec = state.store().revoke_api_key(p.tenant_id(), id).await?;
    state.auth_cache().forget_key(&rec.prefix);
    let info = ApiKeyInfo::from(rec);
    let after = serde_json::json!({"prefix": info.prefix, "revoked_at": info.revoked_at});
    state
        .store()
        .audit(
            p.tenant_id(),
            &AuditEntry {
                actor: &p.actor,
                action: "api_key.revoke",
                entity: "api_key",
                entity_key: &info.prefix,
                before: None,
                after: Some(&after),
            },
        )
        .await?;
    Ok(Json(info))
}
