//! The commands that manage stored state (database, tenants, customers, accounts, lines, plans,
//! subscriptions, top-ups, charging, the ledger). Each one is a thin call into `toll-store`'s
//! service methods — the same ones the HTTP API calls — and prints the result (as JSON with
//! `--json`).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use toll_core::{Currency, Micros};
use toll_store::accounts::AccountMode;
use toll_store::{Store, Tenant};

/// Where the state lives: a SQLite file (the default, created when missing) or a
/// `postgres://` URL.
#[derive(Args, Debug, Clone)]
pub struct DbArgs {
    #[arg(
        long = "database",
        env = "TOLL_DATABASE_URL",
        default_value = "toll.db",
        global = true
    )]
    pub database: String,
}

#[derive(Args, Debug, Clone)]
pub struct TenantArg {
    /// The tenant (its slug).
    #[arg(long, env = "TOLL_TENANT")]
    pub tenant: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum DbCmd {
    /// Create or upgrade the schema (safe to repeat).
    Migrate,
}

#[derive(Subcommand, Debug)]
pub enum TenantCmd {
    /// Create a tenant with its books (revenue, tax, clearing, adjustment, commission).
    Create {
        slug: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// IANA time zone of the tenant's calendar.
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CustomerCmd {
    /// Create a customer.
    Create {
        #[command(flatten)]
        t: TenantArg,
        code: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCmd {
    /// Open a billing account for a customer.
    Create {
        #[command(flatten)]
        t: TenantArg,
        code: String,
        #[arg(long)]
        customer: String,
        /// prepaid, postpaid or unlimited.
        #[arg(long, default_value = "prepaid")]
        mode: String,
        /// Postpaid credit limit (a decimal amount).
        #[arg(long, default_value = "0")]
        credit_limit: String,
    },
    /// Show an account and its balance.
    Show {
        #[command(flatten)]
        t: TenantArg,
        code: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SubscriberCmd {
    /// Add a line (phone number) to an account.
    Add {
        #[command(flatten)]
        t: TenantArg,
        number: String,
        #[arg(long)]
        account: String,
    },
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub async fn open(db: &DbArgs) -> anyhow::Result<Store> {
    Store::connect(&db.database)
        .await
        .with_context(|| format!("opening database {}", redact(&db.database)))
}

/// The URL without its password, for messages (no secrets in logs).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn tenant(store: &Store, t: &TenantArg) -> anyhow::Result<Tenant> {
    Ok(store.tenant(&t.tenant).await?)
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

pub async fn db(db: &DbArgs, cmd: &DbCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DbCmd::Migrate => {
            let store = open(db).await?;
            store.migrate().await?;
            println!("database {} is up to date", redact(&db.database));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn tenant_cmd(db: &DbArgs, cmd: &TenantCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        TenantCmd::Create {
            slug,
            name,
            currency,
            time_zone,
        } => {
            let currency: Currency = currency.parse()?;
            let t = store
                .create_tenant(slug, name.as_deref().unwrap_or(slug), currency, time_zone)
                .await?;
            println!("tenant {} created (id {}, {})", t.slug, t.id.0, t.currency);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn customer_cmd(db: &DbArgs, cmd: &CustomerCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        CustomerCmd::Create { t, code, name } => {
            let tenant = tenant(&store, t).await?;
            let id = store.create_customer(tenant.id, code, name).await?;
            print(
                t.json,
                &serde_json::json!({ "id": id, "code": code }),
                || format!("customer {code} created (id {id})"),
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn account_cmd(db: &DbArgs, cmd: &AccountCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        AccountCmd::Create {
            t,
            code,
            customer,
            mode,
            credit_limit,
        } => {
            let tenant = tenant(&store, t).await?;
            let mode = match mode.as_str() {
                "prepaid" => AccountMode::Prepaid,
                "postpaid" => AccountMode::Postpaid {
                    credit_limit: credit_limit
                        .parse::<Micros>()
                        .with_context(|| format!("--credit-limit {credit_limit:?}"))?,
                },
                "unlimited" => AccountMode::Unlimited,
                other => anyhow::bail!("--mode {other:?}: expected prepaid, postpaid or unlimited"),
            };
            let a = store
                .create_account(tenant.id, customer, code, mode)
                .await?;
            print(t.json, &a, || {
                format!("account {} created (wallet {})", a.code, a.wallet_id)
            })?;
        }
        AccountCmd::Show { t, code } => {
            let tenant = tenant(&store, t).await?;
            let a = store.account(tenant.id, code).await?;
            print(t.json, &a, || {
                format!(
                    "account {} of {}: balance {} {}, available {}",
                    a.code,
                    a.customer,
                    a.balance,
                    a.currency,
                    a.available
                        .map_or("unlimited".to_string(), |m| m.to_string())
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn subscriber_cmd(db: &DbArgs, cmd: &SubscriberCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        SubscriberCmd::Add { t, number, account } => {
            let tenant = tenant(&store, t).await?;
            let s = store.add_subscriber(tenant.id, account, number).await?;
            print(t.json, &s, || {
                format!("line {} added to account {}", s.number, s.account)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://toll:s3cret@db:5432/toll"),
            "postgres://toll:***@db:5432/toll"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(redact("toll.db"), "toll.db");
    }
}
