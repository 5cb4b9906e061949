//! Customers, their billing accounts (each with a wallet in the ledger) and subscriber lines.

use toll_core::phone::PhoneNumber;
use toll_core::{Currency, Micros};

use crate::db::{Tx, q};
use crate::tenants::check_code;
use crate::{Store, StoreError, TenantId, now_ms};

/// How an account pays: prepaid wallets never go below zero; postpaid accounts may owe up to
/// their credit limit until the bill is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum AccountMode {
    Prepaid,
    Postpaid {
        credit_limit: Micros,
    },
    /// Charges are never refused for lack of money (e.g. an internal or trusted account).
    Unlimited,
}

impl AccountMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AccountMode::Prepaid => "prepaid",
            AccountMode::Postpaid { .. } => "postpaid",
            AccountMode::Unlimited => "unlimited",
        }
    }

    /// The wallet's floor as stored: (floor_kind, floor_micros).
    pub(crate) fn floor(self) -> (&'static str, i64) {
        match self {
            AccountMode::Prepaid => ("zero", 0),
            AccountMode::Postpaid { credit_limit } => ("credit_limit", credit_limit.0),
            AccountMode::Unlimited => ("unlimited", 0),
        }
    }
}

/// An account as read back, with its wallet's balance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountView {
    pub id: i64,
    pub code: String,
    pub customer: String,
    pub currency: Currency,
    pub mode: AccountMode,
    pub wallet_id: i64,
    /// Credits minus debits of the wallet (what the customer holds; negative when owing).
    pub balance: Micros,
    /// How much more may be charged before the floor; `None` when unlimited.
    pub available: Option<Micros>,
}

/// A subscriber line as read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriberView {
    pub id: i64,
    pub number: String,
    pub account: String,
    pub status: String,
}

/// Normalises a line's number the way rating and ingestion see it (Chinese national forms).
pub fn normalise_number(number: &str) -> Result<String, StoreError> {
    PhoneNumber::parse_cn(number)
        .map(|p| p.as_str().to_string())
        .map_err(|e| StoreError::invalid("number", e.to_string()))
}

impl Store {
    pub async fn create_customer(
        &self,
        tenant: TenantId,
        code: &str,
        name: &str,
    ) -> Result<i64, StoreError> {
        check_code("code", code)?;
        let mut tx = self.begin().await?;
        let id = tx
            .one(
                q("INSERT INTO customers (tenant_id, code, name, created_ms) \
                   VALUES ($1, $2, $3, $4) RETURNING id")
                .i64(tenant.0)
                .text(code)
                .text(name)
                .i64(now_ms()),
            )
            .await
            .map_err(|e| e.conflict("customer", code))?
            .i64(0)?;
        tx.commit().await?;
        Ok(id)
    }

    /// Opens a billing account for a customer, with its wallet in the tenant's currency.
    pub async fn create_account(
        &self,
        tenant: TenantId,
        customer: &str,
        code: &str,
        mode: AccountMode,
    ) -> Result<AccountView, StoreError> {
        check_code("code", code)?;
        if let AccountMode::Postpaid { credit_limit } = mode
            && credit_limit.is_negative()
        {
            return Err(StoreError::invalid("credit_limit", "must not be negative"));
        }
        let mut tx = self.begin().await?;
        let (customer_id, currency) = {
            let row = tx
                .opt(
                    q("SELECT c.id, t.currency FROM customers c JOIN tenants t ON t.id = c.tenant_id \
                       WHERE c.tenant_id = $1 AND c.code = $2")
                    .i64(tenant.0)
                    .text(customer),
                )
                .await?
                .ok_or_else(|| StoreError::not_found("customer", customer))?;
            (row.i64(0)?, row.text(1)?)
        };
        let (floor_kind, floor) = mode.floor();
        let wallet = tx
            .one(
                q(
                    "INSERT INTO ledger_accounts (tenant_id, code, kind, currency, floor_kind, \
                   floor_micros) VALUES ($1, $2, 'wallet', $3, $4, $5) RETURNING id",
                )
                .i64(tenant.0)
                .text(format!("wallet:{code}"))
                .text(currency.as_str())
                .text(floor_kind)
                .i64(floor),
            )
            .await
            .map_err(|e| e.conflict("account", code))?
            .i64(0)?;
        tx.exec(
            q(
                "INSERT INTO accounts (tenant_id, customer_id, code, mode, currency, wallet_id, \
               created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .i64(tenant.0)
            .i64(customer_id)
            .text(code)
            .text(mode.as_str())
            .text(currency.as_str())
            .i64(wallet)
            .i64(now_ms()),
        )
        .await
        .map_err(|e| e.conflict("account", code))?;
        let view = account_view(&mut tx, tenant, code).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn account(&self, tenant: TenantId, code: &str) -> Result<AccountView, StoreError> {
        let mut tx = self.read().await?;
        account_view(&mut tx, tenant, code).await
    }

    /// Adds a line (a phone number) to an account. Numbers are unique within a tenant.
    pub async fn add_subscriber(
        &self,
        tenant: TenantId,
        account: &str,
        number: &str,
    ) -> Result<SubscriberView, StoreError> {
        let number = normalise_number(number)?;
        let mut tx = self.begin().await?;
        // Chargers cache lines, subscriptions and buckets: tell them this changes some.
        crate::ledger::bump_epoch(&mut tx, tenant).await?;
        let account_id = account_id(&mut tx, tenant, account).await?;
        let id = tx
            .one(
                q(
                    "INSERT INTO subscribers (tenant_id, account_id, number, status, created_ms) \
                   VALUES ($1, $2, $3, 'active', $4) RETURNING id",
                )
                .i64(tenant.0)
                .i64(account_id)
                .text(number.clone())
                .i64(now_ms()),
            )
            .await
            .map_err(|e| e.conflict("subscriber", &number))?
            .i64(0)?;
        tx.commit().await?;
        Ok(SubscriberView {
            id,
            number,
            account: account.to_string(),
            status: "active".into(),
        })
    }
}

pub(crate) async fn account_id(
    tx: &mut Tx,
    tenant: TenantId,
    code: &str,
) -> Result<i64, StoreError> {
    tx.opt(
        q("SELECT id FROM accounts WHERE tenant_id = $1 AND code = $2")
            .i64(tenant.0)
            .text(code),
    )
    .await?
    .ok_or_else(|| StoreError::not_found("account", code))?
    .i64(0)
}

pub(crate) async fn wallet_id(
    tx: &mut Tx,
    tenant: TenantId,
    code: &str,
) -> Result<i64, StoreError> {
    tx.opt(
        q("SELECT wallet_id FROM accounts WHERE tenant_id = $1 AND code = $2")
            .i64(tenant.0)
            .text(code),
    )
    .await?
    .ok_or_else(|| StoreError::not_found("account", code))?
    .i64(0)
}

pub(crate) async fn account_view(
    tx: &mut Tx,
    tenant: TenantId,
    code: &str,
) -> Result<AccountView, StoreError> {
    let row = tx
        .opt(
            q("SELECT a.id, a.code, c.code, a.currency, a.wallet_id, l.floor_kind, l.floor_micros, \
               l.debits, l.credits \
               FROM accounts a JOIN customers c ON c.id = a.customer_id \
               JOIN ledger_accounts l ON l.id = a.wallet_id \
               WHERE a.tenant_id = $1 AND a.code = $2")
            .i64(tenant.0)
            .text(code),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("account", code))?;
    let balance = Micros(row.i64(8)?).checked_sub(Micros(row.i64(7)?))?;
    let (mode, available) = wallet_available(&row.text(5)?, Micros(row.i64(6)?), balance)?;
    Ok(AccountView {
        id: row.i64(0)?,
        code: row.text(1)?,
        customer: row.text(2)?,
        currency: row
            .text(3)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("account currency: {e}")))?,
        mode,
        wallet_id: row.i64(4)?,
        balance,
        available,
    })
}

/// A wallet's mode and how much more may be charged to it (`None`: unlimited), from its stored
/// floor (`floor_kind`, `floor_micros`) and its balance.
pub(crate) fn wallet_available(
    floor_kind: &str,
    floor: Micros,
    balance: Micros,
) -> Result<(AccountMode, Option<Micros>), StoreError> {
    Ok(match floor_kind {
        "zero" => (AccountMode::Prepaid, Some(balance)),
        "credit_limit" => (
            AccountMode::Postpaid {
                credit_limit: floor,
            },
            Some(balance.checked_add(floor)?),
        ),
        "unlimited" => (AccountMode::Unlimited, None),
        other => return Err(StoreError::Corrupt(format!("wallet floor kind {other:?}"))),
    })
}
