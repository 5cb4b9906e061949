//! Plans (资费套餐) and their maker–checker lifecycle: draft → submitted (pending approval) →
//! approved by *another* user → active → retired. The rules are the catalog's
//! (`toll_catalog::lifecycle`) and the store records every step with who, when and why; this
//! module only maps HTTP onto them, with the principal's actor as the user.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use toll_catalog::lifecycle::{self, Actor, LifecycleError, PlanAction};
use toll_store::catalog::{PlanVersionView, TransitionView};
use utoipa::ToSchema;

use crate::api::types::{actor, audit, json_body, rfc3339};
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// One version of a plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanVersion {
    pub code: String,
    pub version: i64,
    /// draft, pending_approval, approved, active or retired.
    pub status: String,
    /// Who wrote this version (the maker).
    pub author: String,
    pub created_at: String,
    /// The definition as written (Toll's plan TOML).
    pub definition: String,
}

impl From<PlanVersionView> for PlanVersion {
    fn from(v: PlanVersionView) -> PlanVersion {
        PlanVersion {
            code: v.code,
            version: v.version,
            status: v.status.as_str().to_string(),
            author: v.author,
            created_at: rfc3339(v.created_ms),
            definition: v.definition,
        }
    }
}

/// One recorded lifecycle step.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanTransition {
    pub version: i64,
    pub action: String,
    pub from: Option<String>,
    pub to: String,
    pub actor: String,
    pub at: String,
    pub comment: String,
}

impl From<TransitionView> for PlanTransition {
    fn from(t: TransitionView) -> PlanTransition {
        PlanTransition {
            version: t.version,
            action: t.action,
            from: t.from,
            to: t.to,
            actor: t.actor,
            at: rfc3339(t.at_ms),
            comment: t.comment,
        }
    }
}

/// A plan definition to create or to edit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanDefinition {
    /// Toll's plan TOML (`docs/plans.md`): code, name, class, kind, currency, base_fee,
    /// validity, allowances, overage.
    #[schema(example = "code = \"basic\"\nname = \"基础套餐\"\n…")]
    pub definition: String,
}

/// A lifecycle action's body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanActionBody {
    /// The version acted on (default: the latest).
    pub version: Option<i64>,
    /// Why (kept in the plan's history; a rejection should say what to fix).
    #[serde(default)]
    pub comment: String,
}

/// The plan's TOML: the body itself (`application/toml`, `text/plain`), as an author's file
/// is uploaded, or the `definition` field of a JSON body, as a form sends it.
fn definition(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let text = match media.as_deref() {
        None | Some("application/json") => json_body::<PlanDefinition>(body)?.definition,
        Some("application/toml" | "text/plain") => {
            let bytes = crate::ingest::body_bytes(body)?;
            String::from_utf8(bytes.to_vec())
                .map_err(|_| ApiError::bad("body", "the plan's TOML must be UTF-8"))?
        }
        Some(other) => return Err(ApiError::UnsupportedMediaType(other.to_string())),
    };
    if text.trim().is_empty() {
        return Err(ApiError::bad("definition", "missing: the plan's TOML"));
    }
    Ok(text)
}

async fn audit_plan(
    state: &AppState,
    p: &Principal,
    action: &str,
    v: &PlanVersion,
    before: Option<&serde_json::Value>,
) -> Result<(), ApiError> {
    let after = serde_json::json!({"status": v.status, "version": v.version});
    let key = format!("{} v{}", v.code, v.version);
    audit(state, p, action, "plan", &key, before, &after).await
}

/// Every plan: its latest version with its status.
#[utoipa::path(get, path = "/api/v1/plans", tag = "plans",
    responses((status = 200, body = Vec<PlanVersion>)))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<PlanVersion>>, ApiError> {
    let all = state.store().plan_versions(p.tenant_id()).await?;
    // Ordered by code then version: the last of each code is its latest.
    let mut latest: Vec<PlanVersionView> = Vec::new();
    for v in all {
        match latest.last_mut() {
            Some(l) if l.code == v.code => *l = v,
            _ => latest.push(v),
        }
    }
    Ok(Json(latest.into_iter().map(PlanVersion::from).collect()))
}

/// Every version of a plan, oldest first.
#[utoipa::path(get, path = "/api/v1/plans/{code}", tag = "plans",
    params(("code" = String, Path)),
    responses((status = 200, body = Vec<PlanVersion>),
        (status = 404, description = "no such plan", content_type = "application/problem+json")))]
pub async fn versions(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
) -> Result<Json<Vec<PlanVersion>>, ApiError> {
    let v: Vec<PlanVersion> = state
        .store()
        .plan_versions(p.tenant_id())
        .await?
        .into_iter()
        .filter(|v| v.code == code)
        .map(PlanVersion::from)
        .collect();
    if v.is_empty() {
        return Err(toll_store::StoreError::not_found("plan", &code).into());
    }
    Ok(Json(v))
}

/// Who did what to the plan, oldest first (create, edit, submit, approve/reject with the
/// checker's comment, activate, retire).
#[utoipa::path(get, path = "/api/v1/plans/{code}/history", tag = "plans",
    params(("code" = String, Path)),
    responses((status = 200, body = Vec<PlanTransition>),
        (status = 404, description = "no such plan", content_type = "application/problem+json")))]
pub async fn history(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
) -> Result<Json<Vec<PlanTransition>>, ApiError> {
    let h = state.store().plan_history(p.tenant_id(), &code).await?;
    Ok(Json(h.into_iter().map(PlanTransition::from).collect()))
}

/// Creates a plan as version 1, a draft authored by the caller. The body is
/// `{"definition": "<TOML>"}`, or the TOML itself as `application/toml`.
#[utoipa::path(post, path = "/api/v1/plans", tag = "plans",
    request_body = PlanDefinition,
    responses((status = 201, body = PlanVersion),
        (status = 400, description = "the definition has errors (every one, with its field)", content_type = "application/problem+json"),
        (status = 409, description = "a plan with that code exists", content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PlanVersion>), ApiError> {
    let text = definition(&headers, body)?;
    let v: PlanVersion = state
        .store()
        .create_plan(p.tenant_id(), &text, &actor(&p)?)
        .await?
        .into();
    audit_plan(&state, &p, "plan.create", &v, None).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// Edits the latest version: a draft in place; an approved, active or retired version by a
/// new draft version (the running one serves until the new one is activated). Refused while
/// pending approval.
#[utoipa::path(put, path = "/api/v1/plans/{code}", tag = "plans",
    params(("code" = String, Path)),
    request_body = PlanDefinition,
    responses((status = 200, body = PlanVersion),
        (status = 400, description = "the definition has errors", content_type = "application/problem+json"),
        (status = 404, description = "no such plan", content_type = "application/problem+json"),
        (status = 422, description = "pending approval: reject it first", content_type = "application/problem+json")))]
pub async fn edit(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlanVersion>, ApiError> {
    let text = definition(&headers, body)?;
    let before = state
        .store()
        .plan_version(p.tenant_id(), &code, None)
        .await?;
    let before = serde_json::json!({"status": before.status.as_str(), "version": before.version});
    let v: PlanVersion = state
        .store()
        .edit_plan(p.tenant_id(), &code, &text, &actor(&p)?)
        .await?
        .into();
    audit_plan(&state, &p, "plan.edit", &v, Some(&before)).await?;
    Ok(Json(v))
}

async fn act(
    state: AppState,
    p: Principal,
    code: String,
    body: Result<Bytes, BytesRejection>,
    action: PlanAction,
) -> Result<Json<PlanVersion>, ApiError> {
    let b: PlanActionBody = json_body(body)?;
    let before = state
        .store()
        .plan_version(p.tenant_id(), &code, b.version)
        .await?;
    let before_json =
        serde_json::json!({"status": before.status.as_str(), "version": before.version});
    let who = actor(&p)?;
    // The catalog's own rule, asked first only to tell a client *why* with a code of its own
    // (`maker_checker`); the store applies it again inside its transaction.
    if let Ok(author) = Actor::new(&before.author)
        && let Err(e @ LifecycleError::OwnVersion { .. }) =
            lifecycle::transition(before.status, action, &author, &who)
    {
        return Err(ApiError::MakerChecker(e.to_string()));
    }
    let v: PlanVersion = state
        .store()
        .plan_action(
            p.tenant_id(),
            &code,
            Some(before.version),
            action,
            &who,
            b.comment.trim(),
        )
        .await?
        .into();
    audit_plan(
        &state,
        &p,
        &format!("plan.{}", action.as_str()),
        &v,
        Some(&before_json),
    )
    .await?;
    Ok(Json(v))
}

/// Submits a draft for approval.
#[utoipa::path(post, path = "/api/v1/plans/{code}/submit", tag = "plans",
    params(("code" = String, Path)),
    request_body = PlanActionBody,
    responses((status = 200, body = PlanVersion),
        (status = 404, description = "no such plan", content_type = "application/problem+json"),
        (status = 422, description = "not a draft", content_type = "application/problem+json")))]
pub async fn submit(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlanVersion>, ApiError> {
    act(state, p, code, body, PlanAction::Submit).await
}

/// Approves a submitted version. Never one's own: the author cannot approve what they wrote
/// (maker–checker), which is answered 422 `maker_checker`.
#[utoipa::path(post, path = "/api/v1/plans/{code}/approve", tag = "plans",
    params(("code" = String, Path)),
    request_body = PlanActionBody,
    responses((status = 200, body = PlanVersion),
        (status = 404, description = "no such plan", content_type = "application/problem+json"),
        (status = 422, description = "not pending approval, or the caller is its author", content_type = "application/problem+json")))]
pub async fn approve(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlanVersion>, ApiError> {
    act(state, p, code, body, PlanAction::Approve).await
}

/// Sends a submitted version back to draft, with the checker's comment.
#[utoipa::path(post, path = "/api/v1/plans/{code}/reject", tag = "plans",
    params(("code" = String, Path)),
    request_body = PlanActionBody,
    responses((status = 200, body = PlanVersion),
        (status = 404, description = "no such plan", content_type = "application/problem+json"),
        (status = 422, description = "not pending approval, or the caller is its author", content_type = "application/problem+json")))]
pub async fn reject(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlanVersion>, ApiError> {
    act(state, p, code, body, PlanAction::Reject).await
}

/// Activates an approved version: new subscriptions take it; the version active before is
/// retired in the same transaction.
#[utoipa::path(post, path = "/api/v1/plans/{code}/activate", tag = "plans",
    params(("code" = String, Path)),
    request_body = PlanActionBody,
    responses((status = 200, body = PlanVersion),
        (status = 404, description = "no such plan", content_type = "application/problem+json"),
        (status = 422, description = "not approved", content_type = "application/problem+json")))]
pub async fn activate(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlanVersion>, ApiError> {
    act(state, p, code, body, PlanAction::Activate).await
}

/// Retires an active version: no new subscriptions; existing ones keep it.
#[utoipa::path(post, path = "/api/v1/plans/{code}/retire", tag = "plans",
    params(("code" = String, Path)),
    request_body = PlanActionBody,
    responses((status = 200, body = PlanVersion),
        (status = 404, description = "no such plan", content_type = "application/problem+json"),
        (status = 422, description = "not active", content_type = "application/problem+json")))]
pub async fn retire(
    State(state): State<AppState>,
    p: Principal,
    Path(code): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PlanVersion>, ApiError> {
    act(state, p, code, body, PlanAction::Retire).await
}
