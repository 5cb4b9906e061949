//! The tenant's users (admin only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use toll_store::audit::AuditEntry;
use toll_store::users::{NewUser, Role, UserView};
use utoipa::ToSchema;

use crate::api::types::rfc3339;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::secrets::{SecretError, hash_password};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub login: String,
    pub display_name: String,
    #[schema(example = "operator")]
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_code: Option<String>,
    pub locked: bool,
    pub disabled: bool,
    pub created_at: String,
}

impl From<UserView> for User {
    fn from(u: UserView) -> User {
        User {
            login: u.login,
            display_name: u.display_name,
            role: u.role.as_str().to_string(),
            account_code: u.account_code,
            locked: u.locked,
            disabled: u.disabled,
            created_at: rfc3339(u.created_ms),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub login: String,
    pub display_name: String,
    /// 8 to 256 characters; kept only as an argon2id hash.
    pub password: String,
    /// admin, operator, approver, auditor, provider or customer.
    pub role: String,
    /// Required for a customer: the account they see.
    pub account_code: Option<String>,
}

/// The tenant's users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<User>)))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<User>>, ApiError> {
    let users = state.store().users(p.tenant_id()).await?;
    Ok(Json(users.into_iter().map(User::from).collect()))
}

/// Creates a user of the tenant.
#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = NewUserRequest,
    responses((status = 201, body = User),
        (status = 400, description = "invalid field", content_type = "application/problem+json"),
        (status = 409, description = "login taken", content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    p: Principal,
    body: Result<Json<NewUserRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let Json(req) = body.map_err(|e| ApiError::bad("body", e.body_text()))?;
    let role: Role = req.role.parse().map_err(|_| {
        ApiError::bad(
            "role",
            "one of admin, operator, approver, auditor, provider, customer",
        )
    })?;
    if let Some(code) = &req.account_code {
        state.store().account(p.tenant_id(), code).await?;
    }
    let hash = hash_password(req.password).await.map_err(|e| match e {
        SecretError::PasswordLength => ApiError::bad("password", e.to_string()),
        e => ApiError::Unavailable(e.to_string()),
    })?;
    state
        .store()
        .create_user(
            p.tenant_id(),
            &NewUser {
                login: req.login.trim(),
                display_name: req.display_name.trim(),
                password_hash: &hash,
                role,
                account_code: req.account_code.as_deref(),
            },
        )
        .await?;
    let created = state
        .store()
        .users(p.tenant_id())
        .await?
        .into_iter()
        .find(|u| u.login == req.login.trim())
        .ok_or_else(|| ApiError::Unavailable("the new user was not found".into()))?;
    let after = serde_json::json!({"login": created.login, "role": role, "display_name": created.display_name});
    state
        .store()
        .audit(
            p.tenant_id(),
            &AuditEntry {
                actor: &p.actor,
                action: "user.create",
                entity: "user",
                entity_key: &created.login,
                before: None,
                after: Some(&after),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(User::from(created))))
}
