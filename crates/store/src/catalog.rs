//! Plans and their versions in the store: creation, edits, and the maker–checker lifecycle.
//!
//! The rules themselves live in `toll_catalog::lifecycle` (pure); this module runs them inside
//! a transaction that also writes the audit row, so a status never changes without its record
//! of who, when and why.

use std::str::FromStr;

use toll_catalog::lifecycle::{self, Actor, EditOutcome, PlanAction, PlanStatus};
use toll_catalog::plan::PlanDef;

use crate::db::{Tx, q};
use crate::{Store, StoreError, TenantId, now_ms};

/// One version of a plan as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanVersionView {
    pub id: i64,
    pub code: String,
    pub version: i64,
    #[serde(serialize_with = "status_str")]
    pub status: PlanStatus,
    pub author: String,
    pub created_ms: i64,
    /// The definition as the operator wrote it (TOML).
    pub definition: String,
}

/// One recorded lifecycle step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TransitionView {
    pub version: i64,
    pub action: String,
    pub from: Option<String>,
    pub to: String,
    pub actor: String,
    pub at_ms: i64,
    pub comment: String,
}

fn status_str<S: serde::Serializer>(s: &PlanStatus, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

fn parse_def(text: &str) -> Result<PlanDef, StoreError> {
    PlanDef::from_str(text).map_err(|e| StoreError::invalid("definition", e.to_string()))
}

fn lifecycle_refusal(e: lifecycle::LifecycleError) -> StoreError {
    StoreError::Refused(e.to_string())
}

impl Store {
    /// Creates a plan from its TOML definition as version 1, a draft authored by `author`.
    pub async fn create_plan(
        &self,
        tenant: TenantId,
        definition: &str,
        author: &Actor,
    ) -> Result<PlanVersionView, StoreError> {
        let def = parse_def(definition)?;
        let code = def.code().as_str().to_string();
        let now = now_ms();
        let mut tx = self.begin().await?;
        let plan_id = tx
            .one(
                q("INSERT INTO plans (tenant_id, code, created_ms) VALUES ($1, $2, $3) RETURNING id")
                    .i64(tenant.0)
                    .text(code.clone())
                    .i64(now),
            )
            .await
            .map_err(|e| e.conflict("plan", &code))?
            .i64(0)?;
        let id = insert_version(&mut tx, tenant, plan_id, 1, definition, author, now).await?;
        record(
            &mut tx,
            tenant,
            id,
            "create",
            None,
            PlanStatus::Draft,
            author,
            now,
            "",
        )
        .await?;
        let view = version_view(&mut tx, tenant, &code, Some(1)).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Edits a plan's latest version: a draft in place; an approved, active or retired version
    /// by a new draft version (the running one keeps serving until the new one is activated);
    /// refused while pending approval.
    pub async fn edit_plan(
        &self,
        tenant: TenantId,
        code: &str,
        definition: &str,
        actor: &Actor,
    ) -> Result<PlanVersionView, StoreError> {
        let def = parse_def(definition)?;
        if def.code().as_str() != code {
            return Err(StoreError::invalid(
                "definition.code",
                format!(
                    "is {:?}; an edit cannot rename plan {code:?}",
                    def.code().as_str()
                ),
            ));
        }
        let now = now_ms();
        let mut tx = self.begin().await?;
        let latest = version_view(&mut tx, tenant, code, None).await?;
        let version = match lifecycle::edit(latest.status).map_err(lifecycle_refusal)? {
            EditOutcome::InPlace => {
                tx.exec(
                    q("UPDATE plan_versions SET definition = $1 WHERE tenant_id = $2 AND id = $3")
                        .text(definition)
                        .i64(tenant.0)
                        .i64(latest.id),
                )
                .await?;
                let s = PlanStatus::Draft;
                record(
                    &mut tx,
                    tenant,
                    latest.id,
                    "edit",
                    Some(s),
                    s,
                    actor,
                    now,
                    "",
                )
                .await?;
                latest.version
            }
            EditOutcome::NewDraftVersion => {
                let plan_id = plan_id(&mut tx, tenant, code).await?;
                let v = latest.version + 1;
                let id =
                    insert_version(&mut tx, tenant, plan_id, v, definition, actor, now).await?;
                let comment = format!("new version of version {}", latest.version);
                record(
                    &mut tx,
                    tenant,
                    id,
                    "create",
                    None,
                    PlanStatus::Draft,
                    actor,
                    now,
                    &comment,
                )
                .await?;
                v
            }
        };
        let view = version_view(&mut tx, tenant, code, Some(version)).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Applies a lifecycle action to a version (the latest when `version` is `None`). Activating
    /// a version retires the version that was active before it, in the same transaction.
    pub async fn plan_action(
        &self,
        tenant: TenantId,
        code: &str,
        version: Option<i64>,
        action: PlanAction,
        actor: &Actor,
        comment: &str,
    ) -> Result<PlanVersionView, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let v = version_view(&mut tx, tenant, code, version).await?;
        let author = Actor::new(&v.author).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let to =
            lifecycle::transition(v.status, action, &author, actor).map_err(lifecycle_refusal)?;
        if action == PlanAction::Activate {
            let plan_id = plan_id(&mut tx, tenant, code).await?;
            let active = tx
                .all(
                    q("SELECT id, version FROM plan_versions \
                       WHERE tenant_id = $1 AND plan_id = $2 AND status = 'active'")
                    .i64(tenant.0)
                    .i64(plan_id),
                )
                .await?;
            for row in active {
                let (old, old_version) = (row.i64(0)?, row.i64(1)?);
                set_status(&mut tx, tenant, old, PlanStatus::Retired).await?;
                let why = format!("superseded by version {}", v.version);
                let (from, to) = (Some(PlanStatus::Active), PlanStatus::Retired);
                record(&mut tx, tenant, old, "retire", from, to, actor, now, &why).await?;
                debug_assert!(old_version != v.version);
            }
        }
        set_status(&mut tx, tenant, v.id, to).await?;
        record(
            &mut tx,
            tenant,
            v.id,
            action.as_str(),
            Some(v.status),
            to,
            actor,
            now,
            comment,
        )
        .await?;
        let view = version_view(&mut tx, tenant, code, Some(v.version)).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// A plan's version (the latest when `version` is `None`).
    pub async fn plan_version(
        &self,
        tenant: TenantId,
        code: &str,
        version: Option<i64>,
    ) -> Result<PlanVersionView, StoreError> {
        let mut tx = self.read().await?;
        version_view(&mut tx, tenant, code, version).await
    }

    /// Every version of every plan of the tenant, by code then version.
    pub async fn plan_versions(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<PlanVersionView>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx
            .all(
                q("SELECT v.id, p.code, v.version, v.status, v.author, v.created_ms, v.definition \
                   FROM plan_versions v JOIN plans p ON p.id = v.plan_id \
                   WHERE v.tenant_id = $1 ORDER BY p.code, v.version")
                .i64(tenant.0),
            )
            .await?;
        rows.iter().map(row_view).collect()
    }

    /// The recorded lifecycle steps of a plan, oldest first.
    pub async fn plan_history(
        &self,
        tenant: TenantId,
        code: &str,
    ) -> Result<Vec<TransitionView>, StoreError> {
        let mut tx = self.read().await?;
        let plan = plan_id(&mut tx, tenant, code).await?;
        let rows = tx
            .all(
                q(
                    "SELECT v.version, t.action, t.from_status, t.to_status, t.actor, t.at_ms, \
                   t.comment FROM plan_transitions t \
                   JOIN plan_versions v ON v.id = t.plan_version_id \
                   WHERE t.tenant_id = $1 AND v.plan_id = $2 ORDER BY t.id",
                )
                .i64(tenant.0)
                .i64(plan),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TransitionView {
                    version: r.i64(0)?,
                    action: r.text(1)?,
                    from: r.opt_text(2)?,
                    to: r.text(3)?,
                    actor: r.text(4)?,
                    at_ms: r.i64(5)?,
                    comment: r.text(6)?,
                })
            })
            .collect()
    }
}

async fn plan_id(tx: &mut Tx, tenant: TenantId, code: &str) -> Result<i64, StoreError> {
    tx.opt(
        q("SELECT id FROM plans WHERE tenant_id = $1 AND code = $2")
            .i64(tenant.0)
            .text(code),
    )
    .await?
    .ok_or_else(|| StoreError::not_found("plan", code))?
    .i64(0)
}

#[allow(clippy::too_many_arguments)]
async fn insert_version(
    tx: &mut Tx,
    tenant: TenantId,
    plan_id: i64,
    version: i64,
    definition: &str,
    author: &Actor,
    now: i64,
) -> Result<i64, StoreError> {
    tx.one(
        q(
            "INSERT INTO plan_versions (tenant_id, plan_id, version, status, definition, author, \
           created_ms) VALUES ($1, $2, $3, 'draft', $4, $5, $6) RETURNING id",
        )
        .i64(tenant.0)
        .i64(plan_id)
        .i64(version)
        .text(definition)
        .text(author.as_str())
        .i64(now),
    )
    .await?
    .i64(0)
}

async fn set_status(
    tx: &mut Tx,
    tenant: TenantId,
    version_id: i64,
    status: PlanStatus,
) -> Result<(), StoreError> {
    tx.exec(
        q("UPDATE plan_versions SET status = $1 WHERE tenant_id = $2 AND id = $3")
            .text(status.as_str())
            .i64(tenant.0)
            .i64(version_id),
    )
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn record(
    tx: &mut Tx,
    tenant: TenantId,
    version_id: i64,
    action: &str,
    from: Option<PlanStatus>,
    to: PlanStatus,
    actor: &Actor,
    at_ms: i64,
    comment: &str,
) -> Result<(), StoreError> {
    tx.exec(
        q(
            "INSERT INTO plan_transitions (tenant_id, plan_version_id, action, from_status, \
           to_status, actor, at_ms, comment) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .i64(tenant.0)
        .i64(version_id)
        .text(action)
        .opt_text(from.map(|s| s.as_str()))
        .text(to.as_str())
        .text(actor.as_str())
        .i64(at_ms)
        .text(comment),
    )
    .await?;
    Ok(())
}

pub(crate) async fn version_view(
    tx: &mut Tx,
    tenant: TenantId,
    code: &str,
    version: Option<i64>,
) -> Result<PlanVersionView, StoreError> {
    let sql = "SELECT v.id, p.code, v.version, v.status, v.author, v.created_ms, v.definition \
               FROM plan_versions v JOIN plans p ON p.id = v.plan_id \
               WHERE v.tenant_id = $1 AND p.code = $2 AND ($3 < 0 OR v.version = $3) \
               ORDER BY v.version DESC LIMIT 1";
    let row = tx
        .opt(q(sql).i64(tenant.0).text(code).i64(version.unwrap_or(-1)))
        .await?
        .ok_or_else(|| match version {
            Some(v) => StoreError::not_found("plan version", format!("{code} v{v}")),
            None => StoreError::not_found("plan", code),
        })?;
    row_view(&row)
}

fn row_view(r: &crate::db::DbRow) -> Result<PlanVersionView, StoreError> {
    Ok(PlanVersionView {
        id: r.i64(0)?,
        code: r.text(1)?,
        version: r.i64(2)?,
        status: r
            .text(3)?
            .parse()
            .map_err(|e: lifecycle::UnknownStatus| StoreError::Corrupt(format!("{e:?}")))?,
        author: r.text(4)?,
        created_ms: r.i64(5)?,
        definition: r.text(6)?,
    })
}
