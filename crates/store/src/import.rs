//! Bulk import of lines: what an operator migrating from another billing system needs — many
//! customers, accounts, lines and their current subscriptions at once, with opening balances.
//!
//! One transaction per call, multi-row statements throughout. Unlike [`Store::subscribe`], an
//! import does not charge the first period's fee (the old system already did) and does not
//! re-check a line's other plans (the lines are new). Opening balances are ordinary ledger
//! top-ups (key `pay:import:<account>`), so the ledger still explains every balance.

use std::collections::HashMap;
use std::str::FromStr;

use jiff::civil::Date;
use toll_catalog::plan::{PlanClass, PlanDef};
use toll_catalog::proration;
use toll_charging::ledger::{Leg, TxKind, TxRequest};
use toll_core::Micros;

use crate::accounts::{AccountMode, normalise_number};
use crate::db::{Col, DbRow, Tx};
use crate::keys::{KeySource, ledger_key};
use crate::ledger::{lock_head, set_head};
use crate::subscriptions::day_start_ms;
use crate::tenants::check_code;
use crate::{Store, StoreError, Tenant, TenantId, now_ms};

/// Most lines one import call takes.
pub const MAX_IMPORT: usize = 20_000;

/// One line to import: its customer and account are created with it (codes unique).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    pub customer: String,
    pub customer_name: String,
    pub account: String,
    pub mode: AccountMode,
    pub number: String,
    pub opening_balance: Micros,
}

/// Maps `code → id` from rows of `(id, code)`.
fn ids(rows: &[DbRow]) -> Result<HashMap<String, i64>, StoreError> {
    rows.iter().map(|r| Ok((r.text(1)?, r.i64(0)?))).collect()
}

fn need(map: &HashMap<String, i64>, key: &str) -> Result<i64, StoreError> {
    map.get(key)
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("import lost {key}")))
}

impl Store {
    /// Imports lines on the active version of `plan`, subscribed from `start`, in one
    /// transaction: all of them or none.
    pub async fn import_lines(
        &self,
        tenant: &Tenant,
        plan: &str,
        start: Date,
        lines: &[ImportLine],
    ) -> Result<usize, StoreError> {
        if lines.len() > MAX_IMPORT {
            return Err(StoreError::invalid(
                "lines",
                format!("at most {MAX_IMPORT} per import"),
            ));
        }
        let t: TenantId = tenant.id;
        let mut numbers = Vec::with_capacity(lines.len());
        for (i, l) in lines.iter().enumerate() {
            check_code(&format!("lines[{i}].customer"), &l.customer)?;
            check_code(&format!("lines[{i}].account"), &l.account)?;
            numbers.push(normalise_number(&l.number)?);
            if l.opening_balance.is_negative() {
                return Err(StoreError::invalid(
                    format!("lines[{i}].opening_balance"),
                    "must not be negative",
                ));
            }
        }
        let zone = tenant.zone()?;
        let now = now_ms();
        let cur = tenant.currency.as_str().to_string();
        let mut tx = self.begin().await?;
        // Chargers cache lines, subscriptions and buckets: tell them this changes some.
        crate::ledger::bump_epoch(&mut tx, t).await?;
        let version = crate::subscriptions::active_version(&mut tx, t, plan).await?;
        let def = PlanDef::from_str(&version.definition)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        if def.shared().is_some() {
            return Err(StoreError::invalid(
                "plan",
                "import one line per subscription",
            ));
        }
        let period = proration::period(def.validity(), start, 0)
            .map_err(|e| StoreError::invalid("start", e.to_string()))?;
        let (starts, expires) = (
            day_start_ms(start, &zone)?,
            day_start_ms(period.end(), &zone)?,
        );

        let customers = tx.bulk(
            lines,
            &[Col::Int, Col::Text, Col::Text, Col::Int],
            |v| format!("INSERT INTO customers (tenant_id, code, name, created_ms) {v} RETURNING id, code"),
            |q, l| {
                q.push_i64(t.0);
                q.push_text(l.customer.clone());
                q.push_text(l.customer_name.clone());
                q.push_i64(now);
            },
        )
        .await
        .map_err(|e| e.conflict("customer", "(import)"))?;
        let customers = ids(&customers)?;
        let wallets = tx
            .bulk(
                lines,
                &[
                    Col::Int,
                    Col::Text,
                    Col::Text,
                    Col::Text,
                    Col::Text,
                    Col::Int,
                ],
                |v| {
                    format!(
                        "INSERT INTO ledger_accounts (tenant_id, code, kind, currency, floor_kind, \
                     floor_micros) {v} RETURNING id, code"
                    )
                },
                |q, l| {
                    let (kind, floor) = l.mode.floor();
                    q.push_i64(t.0);
                    q.push_text(format!("wallet:{}", l.account));
                    q.push_text("wallet");
                    q.push_text(cur.clone());
                    q.push_text(kind);
                    q.push_i64(floor);
                },
            )
            .await
            .map_err(|e| e.conflict("account", "(import)"))?;
        let wallets = ids(&wallets)?;
        let mut acc_rows = Vec::with_capacity(lines.len());
        for l in lines {
            let customer = need(&customers, &l.customer)?;
            let wallet = need(&wallets, &format!("wallet:{}", l.account))?;
            acc_rows.push((l, customer, wallet));
        }
        let accounts = tx.bulk(
            &acc_rows,
            &[Col::Int, Col::Int, Col::Text, Col::Text, Col::Text, Col::Int, Col::Int],
            |v| {
                format!(
                    "INSERT INTO accounts (tenant_id, customer_id, code, mode, currency, wallet_id, \
                     created_ms) {v} RETURNING id, code"
                )
            },
            |q, (l, customer, wallet)| {
                q.push_i64(t.0);
                q.push_i64(*customer);
                q.push_text(l.account.clone());
                q.push_text(l.mode.as_str());
                q.push_text(cur.clone());
                q.push_i64(*wallet);
                q.push_i64(now);
            },
        )
        .await?;
        let accounts = ids(&accounts)?;
        let line_rows: Vec<(i64, &String)> = lines
            .iter()
            .zip(&numbers)
            .map(|(l, n)| Ok((need(&accounts, &l.account)?, n)))
            .collect::<Result<_, StoreError>>()?;
        let subscribers = tx.bulk(
            &line_rows,
            &[Col::Int, Col::Int, Col::Text, Col::Text, Col::Int],
            |v| {
                format!(
                    "INSERT INTO subscribers (tenant_id, account_id, number, status, created_ms) \
                     {v} RETURNING id, number"
                )
            },
            |q, (account, number)| {
                q.push_i64(t.0);
                q.push_i64(*account);
                q.push_text((*number).clone());
                q.push_text("active");
                q.push_i64(now);
            },
        )
        .await
        .map_err(|e| e.conflict("subscriber", "(import)"))?;
        let subscribers = ids(&subscribers)?;
        let account_ids: Vec<i64> = line_rows.iter().map(|(a, _)| *a).collect();
        let subs = tx.bulk(
            &account_ids,
            &[
                Col::Int,
                Col::Int,
                Col::Int,
                Col::Text,
                Col::Text,
                Col::Text,
                Col::Int,
                Col::Text,
            ],
            |v| {
                format!(
                    "INSERT INTO subscriptions (tenant_id, account_id, plan_version_id, status, \
                     anchor_date, start_date, created_ms, period_end) {v} \
                     RETURNING id, account_id"
                )
            },
            |q, account| {
                q.push_i64(t.0);
                q.push_i64(*account);
                q.push_i64(version.id);
                q.push_text("active");
                q.push_text(start.to_string());
                q.push_text(start.to_string());
                q.push_i64(now);
                q.push_text(period.end().to_string());
            },
        )
        .await?;
        let sub_of_account: HashMap<i64, i64> = subs
            .iter()
            .map(|r| Ok((r.i64(1)?, r.i64(0)?)))
            .collect::<Result<_, StoreError>>()?;
        let mut links = Vec::with_capacity(lines.len());
        for (account, number) in &line_rows {
            let sub = *sub_of_account
                .get(account)
                .ok_or_else(|| StoreError::Corrupt("import lost a subscription".into()))?;
            links.push((sub, need(&subscribers, number)?));
        }
        tx.bulk(
            &links,
            &[Col::Int, Col::Int, Col::Int],
            |v| {
                format!(
                    "INSERT INTO subscription_lines (tenant_id, subscription_id, subscriber_id) \
                     {v}"
                )
            },
            |q, (sub, line)| {
                q.push_i64(t.0);
                q.push_i64(*sub);
                q.push_i64(*line);
            },
        )
        .await?;
        let source = match def.class() {
            PlanClass::Base => "base",
            PlanClass::Addon => "pack",
        };
        let buckets: Vec<(i64, &toll_catalog::plan::Allowance)> = links
            .iter()
            .flat_map(|(sub, _)| def.allowances().iter().map(move |a| (*sub, a)))
            .collect();
        let granted = tx
            .bulk(
                &buckets,
                &[
                    Col::Int,
                    Col::Int,
                    Col::Text,
                    Col::Text,
                    Col::Text,
                    Col::Int,
                    Col::Int,
                    Col::Int,
                ],
                |v| {
                    format!(
                        "INSERT INTO buckets (tenant_id, subscription_id, usage, services, source, \
                         starts_ms, expires_ms, initial) {v} RETURNING id, initial"
                    )
                },
                |q, (sub, a)| {
                    q.push_i64(t.0);
                    q.push_i64(*sub);
                    q.push_text(a.usage.as_str());
                    q.push_opt_text(a.services.as_ref().map(|s| s.services().join(",")));
                    q.push_text(source);
                    q.push_i64(starts);
                    q.push_i64(expires);
                    q.push_i64(a.quantity);
                },
            )
            .await?;
        let granted = granted
            .iter()
            .map(|r| Ok((r.i64(0)?, r.i64(1)?)))
            .collect::<Result<Vec<(i64, i64)>, StoreError>>()?;
        crate::subscriptions::insert_remaining(&mut tx, t, &granted).await?;
        // Opening balances: one top-up per account, chained like any other.
        let funded: Vec<&ImportLine> = lines.iter().filter(|l| l.opening_balance.0 > 0).collect();
        if !funded.is_empty() {
            let clearing = crate::books::book_id(&mut tx, t, "clearing").await?;
            let head = lock_head(&mut tx, t).await?;
            let mut chain = head;
            let mut entries = Vec::with_capacity(funded.len());
            let mut total = Micros::ZERO;
            let mut credits = Vec::with_capacity(funded.len());
            for l in funded {
                let wallet = need(&wallets, &format!("wallet:{}", l.account))?;
                let key = ledger_key(KeySource::TopUp, &format!("import:{}", l.account))?;
                let req = TxRequest::new(
                    key,
                    TxKind::TopUp,
                    now,
                    "opening balance",
                    [Leg::new(clearing, wallet, l.opening_balance)],
                )
                .map_err(StoreError::Ledger)?;
                for c in req.chain(&chain).map_err(StoreError::Ledger)? {
                    entries.push((c, req.key().as_str().to_string()));
                    chain = c.head();
                }
                total = total.checked_add(l.opening_balance)?;
                credits.push((wallet, l.opening_balance.0));
            }
            tx.bulk(
                &entries,
                crate::ledger::ENTRY_COLS,
                crate::ledger::insert_entries_sql,
                |q, (c, key)| {
                    q.push_i64(t.0);
                    q.push_i64(c.seq);
                    q.push_text(key.clone());
                    q.push_i64(i64::from(c.leg_index));
                    q.push_text(TxKind::TopUp.as_str());
                    q.push_i64(now);
                    q.push_i64(c.leg.debit);
                    q.push_i64(c.leg.credit);
                    q.push_i64(c.leg.amount.0);
                    q.push_text("opening balance");
                    q.push_bytes(&c.prev_hash);
                    q.push_bytes(&c.hash);
                },
            )
            .await?;
            tx.bulk(
                &credits,
                &[Col::Int, Col::Int],
                |v| {
                    format!(
                        "WITH v (id, amount) AS ({v}) UPDATE ledger_accounts \
                         SET credits = credits + v.amount FROM v \
                         WHERE ledger_accounts.id = v.id AND ledger_accounts.tenant_id = {}",
                        t.0
                    )
                },
                |q, (id, amount)| {
                    q.push_i64(*id);
                    q.push_i64(*amount);
                },
            )
            .await?;
            tx.exec(
                crate::db::q(
                    "UPDATE ledger_accounts SET debits = debits + $1 WHERE tenant_id = $2 AND id = $3",
                )
                .i64(total.0)
                .i64(t.0)
                .i64(clearing),
            )
            .await?;
            set_head(&mut tx, t, &chain).await?;
        }
        tx.commit().await?;
        // A bulk load changes the tables' sizes at once; planners that still believe the old
        // sizes pick plans for tiny tables (PostgreSQL's autovacuum would catch up only a
        // minute later). Refresh the statistics now.
        let mut tx = self.begin().await?;
        let analyze = match tx {
            Tx::Pg(_) => {
                "ANALYZE customers, accounts, subscribers, subscriptions, \
                          subscription_lines, buckets, bucket_remaining, ledger_accounts"
            }
            Tx::Sqlite(_) => "PRAGMA optimize",
        };
        tx.exec(crate::db::q(analyze)).await?;
        tx.commit().await?;
        Ok(lines.len())
    }
}
