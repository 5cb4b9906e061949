//! Users, their login sessions and API keys: who may use the server, with which role, for
//! which tenant.
//!
//! The store keeps only what cannot be used to sign in: password hashes (PHC strings made by the
//! server with argon2id), and the SHA-256 of session tokens and API-key secrets. Looking a user
//! up by login, a session by its token or a key by its prefix are the only reads without a
//! [`TenantId`]: they are how a request *finds* its tenant.

use crate::db::{DbRow, q, q_composed};
use crate::tenants::check_code;
use crate::{Store, StoreError, TenantId, now_ms};

/// What a user may do; the server maps each role to its permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in the tenant, users and keys included.
    Admin,
    /// Day-to-day work: tariffs, plan drafts, accounts, top-ups, CDRs, suspense.
    Operator,
    /// Approves or rejects submitted plans (never their own).
    Approver,
    /// Reads everything, changes nothing.
    Auditor,
    /// A service provider of the open platform: its own services and revenue.
    Provider,
    /// A subscriber: their own account only.
    Customer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Operator,
        Role::Approver,
        Role::Auditor,
        Role::Provider,
        Role::Customer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Provider => "provider",
            Role::Customer => "customer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Role, StoreError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                StoreError::invalid(
                    "role",
                    "one of admin, operator, approver, auditor, provider, customer",
                )
            })
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored user, with what the login check needs.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub tenant_slug: String,
    pub login: String,
    pub display_name: String,
    pub role: Role,
    /// A customer's own account.
    pub account_code: Option<String>,
    pub password_hash: String,
    pub failed_logins: i64,
    pub locked_until_ms: Option<i64>,
    pub disabled: bool,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("tenant", &self.tenant_slug)
            .field("login", &self.login)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A user to create. The password arrives already hashed: hashing is the server's (it runs
/// argon2 off the async threads).
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub login: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub account_code: Option<&'a str>,
}

/// A user as lists show it (no hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserView {
    pub login: String,
    pub display_name: String,
    pub role: Role,
    pub account_code: Option<String>,
    pub locked: bool,
    pub disabled: bool,
    pub created_ms: i64,
}

/// A stored API key (its secret's hash only).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub tenant: TenantId,
    pub tenant_slug: String,
    pub prefix: String,
    pub secret_hash: Vec<u8>,
    pub name: String,
    pub role: Role,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

impl std::fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// An API key to create.
#[derive(Debug, Clone)]
pub struct NewApiKey<'a> {
    pub prefix: &'a str,
    pub secret_hash: &'a [u8],
    pub name: &'a str,
    pub role: Role,
    pub scopes: &'a [String],
    pub created_by: &'a str,
    pub expires_ms: Option<i64>,
}

/// Longest display name or key name.
const MAX_NAME: usize = 200;

const USER_COLS: &str = "u.id, u.tenant_id, t.slug, u.login, u.display_name, u.role, \
    u.account_code, u.password_hash, u.failed_logins, u.locked_until_ms, u.disabled";

fn user_row(r: &DbRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: r.i64(0)?,
        tenant: TenantId(r.i64(1)?),
        tenant_slug: r.text(2)?,
        login: r.text(3)?,
        display_name: r.text(4)?,
        role: r
            .text(5)?
            .parse()
            .map_err(|_| StoreError::Corrupt("user role".into()))?,
        account_code: r.opt_text(6)?,
        password_hash: r.text(7)?,
        failed_logins: r.i64(8)?,
        locked_until_ms: r.opt_i64(9)?,
        disabled: r.i64(10)? != 0,
    })
}

const KEY_COLS: &str = "k.id, k.tenant_id, t.slug, k.prefix, k.secret_hash, k.name, k.role, \
    k.scopes, k.created_by, k.created_ms, k.expires_ms, k.revoked_ms";

fn key_row(r: &DbRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: r.i64(0)?,
        tenant: TenantId(r.i64(1)?),
        tenant_slug: r.text(2)?,
        prefix: r.text(3)?,
        secret_hash: r.bytes(4)?,
        name: r.text(5)?,
        role: r
            .text(6)?
            .parse()
            .map_err(|_| StoreError::Corrupt("api key role".into()))?,
        scopes: r.text(7)?.split_whitespace().map(str::to_string).collect(),
        created_by: r.text(8)?,
        created_ms: r.i64(9)?,
        expires_ms: r.opt_i64(10)?,
        revoked_ms: r.opt_i64(11)?,
    })
}

fn check_name(field: &str, s: &str) -> Result<(), StoreError> {
    if s.trim().is_empty() || s.chars().count() > MAX_NAME {
        return Err(StoreError::invalid(
            field,
            format!("must be 1..={MAX_NAME} characters"),
        ));
    }
    Ok(())
}

impl Store {
    pub async fn create_user(&self, tenant: TenantId, u: &NewUser<'_>) -> Result<i64, StoreError> {
        check_code("login", u.login)?;
        check_name("display_name", u.display_name)?;
        if u.role == Role::Customer && u.account_code.is_none() {
            return Err(StoreError::invalid(
                "account_code",
                "a customer user needs the account they may see",
            ));
        }
        let mut tx = self.begin().await?;
        let id = tx
            .one(
                q(
                    "INSERT INTO users (tenant_id, login, display_name, password_hash, role, \
                   account_code, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .i64(tenant.0)
                .text(u.login)
                .text(u.display_name)
                .text(u.password_hash)
                .text(u.role.as_str())
                .opt_text(u.account_code)
                .i64(now_ms()),
            )
            .await
            .map_err(|e| e.conflict("user", u.login))?
            .i64(0)?;
        tx.commit().await?;
        Ok(id)
    }

    /// The user with this login, in whichever tenant.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!(
            "SELECT {USER_COLS} FROM users u JOIN tenants t ON t.id = u.tenant_id \
             WHERE u.login = $1"
        );
        tx.opt(q_composed(sql).text(login))
            .await?
            .map(|r| user_row(&r))
            .transpose()
    }

    /// The tenant's users, by login.
    pub async fn users(&self, tenant: TenantId) -> Result<Vec<UserView>, StoreError> {
        let mut tx = self.read().await?;
        let now = now_ms();
        let rows = tx
            .all(
                q(
                    "SELECT login, display_name, role, account_code, locked_until_ms, disabled, \
                   created_ms FROM users WHERE tenant_id = $1 ORDER BY login",
                )
                .i64(tenant.0),
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UserView {
                    login: r.text(0)?,
                    display_name: r.text(1)?,
                    role: r
                        .text(2)?
                        .parse()
                        .map_err(|_| StoreError::Corrupt("user role".into()))?,
                    account_code: r.opt_text(3)?,
                    locked: r.opt_i64(4)?.is_some_and(|t| t > now),
                    disabled: r.i64(5)? != 0,
                    created_ms: r.i64(6)?,
                })
            })
            .collect()
    }

    /// Counts a failed login; after `lock_after` failures in a row the user is locked until
    /// `now + lock_ms`. Returns the lock's end, if locked.
    pub async fn record_login_failure(
        &self,
        user_id: i64,
        lock_after: i64,
        lock_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin().await?;
        let failed = tx
            .one(
                q(
                    "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 \
                   RETURNING failed_logins",
                )
                .i64(user_id),
            )
            .await?
            .i64(0)?;
        let locked = if failed >= lock_after {
            let until = now + lock_ms;
            tx.exec(
                q("UPDATE users SET locked_until_ms = $2, failed_logins = 0 WHERE id = $1")
                    .i64(user_id)
                    .i64(until),
            )
            .await?;
            Some(until)
        } else {
            None
        };
        tx.commit().await?;
        Ok(locked)
    }

    pub async fn record_login_success(&self, user_id: i64) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.exec(
            q("UPDATE users SET failed_logins = 0, locked_until_ms = NULL WHERE id = $1")
                .i64(user_id),
        )
        .await?;
        tx.commit().await
    }

    pub async fn create_session(
        &self,
        token_hash: &[u8],
        user_id: i64,
        expires_ms: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.exec(
            q(
                "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) \
               VALUES ($1, $2, $3, $4)",
            )
            .bytes(token_hash)
            .i64(user_id)
            .i64(now_ms())
            .i64(expires_ms),
        )
        .await?;
        tx.commit().await
    }

    /// The user of a live session (not expired, user not disabled).
    pub async fn session_user(&self, token_hash: &[u8]) -> Result<Option<UserRecord>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!(
            "SELECT {USER_COLS} FROM sessions s JOIN users u ON u.id = s.user_id \
             JOIN tenants t ON t.id = u.tenant_id \
             WHERE s.token_hash = $1 AND s.expires_ms > $2 AND u.disabled = 0"
        );
        tx.opt(q_composed(sql).bytes(token_hash).i64(now_ms()))
            .await?
            .map(|r| user_row(&r))
            .transpose()
    }

    /// Ends a session (logout); ends nothing when there is none.
    pub async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.exec(q("DELETE FROM sessions WHERE token_hash = $1").bytes(token_hash))
            .await?;
        tx.commit().await
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_sessions(&self) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = tx
            .exec(q("DELETE FROM sessions WHERE expires_ms <= $1").i64(now_ms()))
            .await?;
        tx.commit().await?;
        Ok(n)
    }

    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        k: &NewApiKey<'_>,
    ) -> Result<ApiKeyRecord, StoreError> {
        check_name("name", k.name)?;
        let mut tx = self.begin().await?;
        let id = tx
            .one(
                q(
                    "INSERT INTO api_keys (tenant_id, prefix, secret_hash, name, role, scopes, \
                   created_by, created_ms, expires_ms) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .i64(tenant.0)
                .text(k.prefix)
                .bytes(k.secret_hash)
                .text(k.name)
                .text(k.role.as_str())
                .text(k.scopes.join(" "))
                .text(k.created_by)
                .i64(now_ms())
                .opt_i64(k.expires_ms),
            )
            .await
            .map_err(|e| e.conflict("api key", k.prefix))?
            .i64(0)?;
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.id = $1"
        );
        let rec = key_row(&tx.one(q_composed(sql).i64(id)).await?)?;
        tx.commit().await?;
        Ok(rec)
    }

    /// The key with this prefix, in whichever tenant (revoked and expired ones too: the caller
    /// decides and says why).
    pub async fn api_key_by_prefix(
        &self,
        prefix: &str,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.prefix = $1"
        );
        tx.opt(q_composed(sql).text(prefix))
            .await?
            .map(|r| key_row(&r))
            .transpose()
    }

    pub async fn api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.tenant_id = $1 ORDER BY k.id"
        );
        let rows = tx.all(q_composed(sql).i64(tenant.0)).await?;
        rows.iter().map(key_row).collect()
    }

    /// Revokes a key of the tenant; a key of another tenant is not found.
    pub async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<ApiKeyRecord, StoreError> {
        let mut tx = self.begin().await?;
        let n = tx
            .exec(
                q("UPDATE api_keys SET revoked_ms = $3 \
                   WHERE tenant_id = $1 AND id = $2 AND revoked_ms IS NULL")
                .i64(tenant.0)
                .i64(id)
                .i64(now_ms()),
            )
            .await?;
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k JOIN tenants t ON t.id = k.tenant_id \
             WHERE k.tenant_id = $1 AND k.id = $2"
        );
        let rec = tx
            .opt(q_composed(sql).i64(tenant.0).i64(id))
            .await?
            .ok_or_else(|| StoreError::not_found("api key", id.to_string()))?;
        let rec = key_row(&rec)?;
        debug_assert!(n <= 1);
        tx.commit().await?;
        Ok(rec)
    }
}
