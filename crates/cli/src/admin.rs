//! The commands that manage stored state (database, tenants, customers, accounts, lines, plans,
//! subscriptions, top-ups, charging, the ledger). Each one is a thin call into `toll-store`'s
//! service methods — the same ones the HTTP API calls — and prints the result (as JSON with
//! `--json`).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use toll_catalog::lifecycle::PlanAction;
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

#[derive(Args, Debug, Clone)]
pub struct ActorArg {
    /// Who does it (recorded in the history; the approver must not be the author).
    #[arg(long, env = "TOLL_ACTOR")]
    pub actor: String,
}

#[derive(Subcommand, Debug)]
pub enum PlanCmd {
    /// Create a plan from its TOML definition (docs/plans.md): version 1, a draft.
    Create {
        #[command(flatten)]
        t: TenantArg,
        #[command(flatten)]
        a: ActorArg,
        file: std::path::PathBuf,
    },
    /// Edit a plan: a draft in place; an approved, active or retired one as a new draft version.
    Edit {
        #[command(flatten)]
        t: TenantArg,
        #[command(flatten)]
        a: ActorArg,
        code: String,
        file: std::path::PathBuf,
    },
    /// Submit a draft for approval.
    Submit(LifecycleArgs),
    /// Approve a submitted version (not by its author).
    Approve(LifecycleArgs),
    /// Send a submitted version back to draft (not by its author).
    Reject(LifecycleArgs),
    /// Put an approved version on sale (retires the version on sale before it).
    Activate(LifecycleArgs),
    /// Stop selling an active version; existing subscribers keep it.
    Retire(LifecycleArgs),
    /// Show a plan's latest (or given) version and its history.
    Show {
        #[command(flatten)]
        t: TenantArg,
        code: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// List every version of every plan.
    List {
        #[command(flatten)]
        t: TenantArg,
    },
}

#[derive(Args, Debug)]
pub struct LifecycleArgs {
    #[command(flatten)]
    pub t: TenantArg,
    #[command(flatten)]
    pub a: ActorArg,
    pub code: String,
    /// The version (default: the latest).
    #[arg(long)]
    pub version: Option<i64>,
    #[arg(long, default_value = "")]
    pub comment: String,
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionCmd {
    /// Subscribe an account's lines to the active version of a plan (charges the first fee).
    Create {
        #[command(flatten)]
        t: TenantArg,
        #[command(flatten)]
        a: ActorArg,
        #[arg(long)]
        account: String,
        #[arg(long)]
        plan: String,
        /// A line's number; repeat for family plans.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// First day (YYYY-MM-DD, the tenant's calendar).
        #[arg(long)]
        start: String,
    },
    /// Change a subscription's plan now (prorated by day) or at the end of the period.
    Change {
        #[command(flatten)]
        t: TenantArg,
        #[command(flatten)]
        a: ActorArg,
        id: i64,
        #[arg(long)]
        plan: String,
        /// The day it takes effect (YYYY-MM-DD), or `period-end`.
        #[arg(long)]
        on: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Show a subscription, its buckets and its plan changes.
    Show {
        #[command(flatten)]
        t: TenantArg,
        id: i64,
    },
    /// Roll every subscription whose period has ended into the next one: plan changes waiting
    /// for the period end take effect, the fee is charged and the allowances granted; a wallet
    /// that cannot pay suspends the subscription until a top-up and the next renewal. Add-on
    /// packs expire. Safe to run again: run it daily.
    Renew {
        #[command(flatten)]
        t: TenantArg,
        /// Renew periods that ended on or before this day (YYYY-MM-DD; default: today in the
        /// tenant's time zone).
        #[arg(long)]
        as_of: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LedgerCmd {
    /// Re-derive the hash chain and every account's totals; exit 1 naming the first broken link.
    Verify {
        #[command(flatten)]
        t: TenantArg,
    },
}

#[derive(Args, Debug)]
pub struct TopUpArgs {
    #[command(flatten)]
    pub t: TenantArg,
    #[arg(long)]
    pub account: String,
    /// Decimal amount in the tenant's currency.
    #[arg(long)]
    pub amount: String,
    /// Idempotency key (e.g. the payment's id): the same key twice is credited once.
    #[arg(long)]
    pub key: String,
    #[arg(long, default_value = "")]
    pub memo: String,
}

fn actor(a: &ActorArg) -> anyhow::Result<toll_catalog::lifecycle::Actor> {
    toll_catalog::lifecycle::Actor::new(&a.actor).map_err(|e| anyhow::anyhow!("--actor: {e}"))
}

fn read_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn version_line(v: &toll_store::catalog::PlanVersionView) -> String {
    format!(
        "plan {} version {}: {} (author {})",
        v.code,
        v.version,
        v.status.as_str(),
        v.author
    )
}

pub async fn plan_cmd(db: &DbArgs, cmd: &PlanCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        PlanCmd::Create { t, a, file } => {
            let tenant = tenant(&store, t).await?;
            let v = store
                .create_plan(tenant.id, &read_file(file)?, &actor(a)?)
                .await?;
            print(t.json, &v, || version_line(&v))?;
        }
        PlanCmd::Edit { t, a, code, file } => {
            let tenant = tenant(&store, t).await?;
            let v = store
                .edit_plan(tenant.id, code, &read_file(file)?, &actor(a)?)
                .await?;
            print(t.json, &v, || version_line(&v))?;
        }
        PlanCmd::Submit(l) => lifecycle(&store, l, PlanAction::Submit).await?,
        PlanCmd::Approve(l) => lifecycle(&store, l, PlanAction::Approve).await?,
        PlanCmd::Reject(l) => lifecycle(&store, l, PlanAction::Reject).await?,
        PlanCmd::Activate(l) => lifecycle(&store, l, PlanAction::Activate).await?,
        PlanCmd::Retire(l) => lifecycle(&store, l, PlanAction::Retire).await?,
        PlanCmd::Show { t, code, version } => {
            let tenant = tenant(&store, t).await?;
            let v = store.plan_version(tenant.id, code, *version).await?;
            let history = store.plan_history(tenant.id, code).await?;
            let out = serde_json::json!({ "version": v, "history": history });
            print(t.json, &out, || {
                let mut s = version_line(&v);
                for h in &history {
                    s.push_str(&format!(
                        "\n  v{} {:<9} {} -> {:<16} by {} at {} {}",
                        h.version,
                        h.action,
                        h.from.as_deref().unwrap_or("-"),
                        h.to,
                        h.actor,
                        jiff::Timestamp::from_millisecond(h.at_ms)
                            .map(|t| t.to_string())
                            .unwrap_or_default(),
                        h.comment
                    ));
                }
                s.push_str("\n\n");
                s.push_str(&v.definition);
                s
            })?;
        }
        PlanCmd::List { t } => {
            let tenant = tenant(&store, t).await?;
            let all = store.plan_versions(tenant.id).await?;
            print(t.json, &all, || {
                all.iter().map(version_line).collect::<Vec<_>>().join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn lifecycle(store: &Store, l: &LifecycleArgs, action: PlanAction) -> anyhow::Result<()> {
    let tenant = tenant(store, &l.t).await?;
    let v = store
        .plan_action(
            tenant.id,
            &l.code,
            l.version,
            action,
            &actor(&l.a)?,
            &l.comment,
        )
        .await?;
    print(l.t.json, &v, || version_line(&v))
}

fn date(field: &str, s: &str) -> anyhow::Result<jiff::civil::Date> {
    s.parse()
        .with_context(|| format!("{field} {s:?}: expected YYYY-MM-DD"))
}

pub async fn subscription_cmd(db: &DbArgs, cmd: &SubscriptionCmd) -> anyhow::Result<ExitCode> {
    use toll_store::subscriptions::{ChangeWhen, SubscribeRequest};
    let store = open(db).await?;
    match cmd {
        SubscriptionCmd::Create {
            t,
            a,
            account,
            plan,
            lines,
            start,
        } => {
            let tenant = tenant(&store, t).await?;
            let req = SubscribeRequest {
                account,
                plan,
                lines,
                start: date("--start", start)?,
            };
            let s = store.subscribe(&tenant, &req, &actor(a)?).await?;
            print(t.json, &s, || {
                format!(
                    "subscription {} of {} to {} v{}",
                    s.id, s.account, s.plan, s.version
                )
            })?;
        }
        SubscriptionCmd::Change {
            t,
            a,
            id,
            plan,
            on,
            comment,
        } => {
            let tenant = tenant(&store, t).await?;
            let when = if on == "period-end" {
                ChangeWhen::PeriodEnd
            } else {
                ChangeWhen::Now(date("--on", on)?)
            };
            let c = store
                .change_plan(&tenant, *id, plan, when, &actor(a)?, comment)
                .await?;
            print(t.json, &c, || {
                format!(
                    "subscription {} changes to version {} on {} ({}): credit {}, charge {}",
                    c.subscription, c.to_version, c.effective_date, c.effective, c.credit, c.charge
                )
            })?;
        }
        SubscriptionCmd::Renew { t, as_of } => {
            let tenant = tenant(&store, t).await?;
            let day = match as_of {
                Some(d) => date("--as-of", d)?,
                None => jiff::Timestamp::now().to_zoned(tenant.zone()?).date(),
            };
            let r = store.renew(&tenant, day).await?;
            print(t.json, &r, || {
                let mut out = format!(
                    "as of {day}: {} due, {} periods started, {} plan changes applied, \
                     {} add-ons expired, {} resumed, {} suspended",
                    r.due,
                    r.periods,
                    r.changes,
                    r.expired,
                    r.resumed,
                    r.suspended.len()
                );
                for s in &r.suspended {
                    out.push_str(&format!(
                        "\nsuspended subscription {} from {}: {}",
                        s.subscription, s.period_start, s.reason
                    ));
                }
                out
            })?;
        }
        SubscriptionCmd::Show { t, id } => {
            let tenant = tenant(&store, t).await?;
            let s = store.subscription(tenant.id, *id).await?;
            let changes = store.subscription_changes(tenant.id, *id).await?;
            let out = serde_json::json!({ "subscription": s, "changes": changes });
            print(t.json, &out, || {
                serde_json::to_string_pretty(&out).unwrap_or_default()
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn top_up(db: &DbArgs, args: &TopUpArgs) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    let tenant = tenant(&store, &args.t).await?;
    let amount: Micros = args
        .amount
        .parse()
        .with_context(|| format!("--amount {:?}", args.amount))?;
    let posted = store
        .top_up(tenant.id, &args.account, amount, &args.key, &args.memo)
        .await?;
    let a = store.account(tenant.id, &args.account).await?;
    let out = serde_json::json!({ "posted": posted, "account": a });
    print(args.t.json, &out, || {
        format!(
            "{} {} to {}{}: balance {}",
            if posted.duplicate {
                "already credited"
            } else {
                "credited"
            },
            amount,
            a.code,
            if posted.duplicate { " (same key)" } else { "" },
            a.balance
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn ledger_cmd(db: &DbArgs, cmd: &LedgerCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        LedgerCmd::Verify { t } => {
            let tenant = tenant(&store, t).await?;
            let r = store.verify_ledger(tenant.id).await?;
            print(t.json, &r, || {
                match (&r.first_break, r.account_mismatches.is_empty()) {
                    (None, true) => {
                        format!("ledger intact: {} entries verified", r.entries_checked)
                    }
                    (Some((seq, why)), _) => format!(
                        "ledger BROKEN at entry {seq}: {why} ({} entries verified before it); \
                     accounts whose totals disagree with their entries: {:?}",
                        r.entries_checked, r.account_mismatches
                    ),
                    (None, false) => format!(
                        "ledger chain intact ({} entries) but account totals disagree with their \
                     entries: {:?}",
                        r.entries_checked, r.account_mismatches
                    ),
                }
            })?;
            Ok(if r.is_intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

#[expect(clippy::float_arithmetic, reason = "a throughput figure, not money")]
pub async fn charge(db: &DbArgs, args: &crate::chargefile::ChargeArgs) -> anyhow::Result<ExitCode> {
    let s = crate::chargefile::run(db, args).await?;
    print(args.json, &s, || {
        format!(
            "charged {}, duplicate {}, refused {}; amount {}; {:.2} s ({:.0} events/s)",
            s.charged,
            s.duplicate,
            s.refused,
            s.amount.normalize(),
            s.seconds,
            (s.charged + s.duplicate + s.refused) as f64 / s.seconds.max(1e-9)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
