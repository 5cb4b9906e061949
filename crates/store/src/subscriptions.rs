//! Subscriptions: an account's lines on a plan version, their allowance buckets per period, and
//! plan changes with day-based proration and history.
//!
//! Decisions (docs/storage.md repeats them):
//! - Subscribing charges the first period's base fee at once (prepaid style) and creates that
//!   period's buckets; a prepaid account without the money is refused and nothing is written.
//! - A change *now* settles the rest of the current period by days (`toll_catalog::proration`):
//!   the unused old fee is credited and the new fee for the remaining days charged, as one
//!   ledger transaction judged on its net effect. The old plan's buckets end at the change; the
//!   new plan's buckets get its allowances for the remaining days, pro rata (rounded down to
//!   whole base units, so a change never gives more than the plan's allowance).
//! - A change *at period end* is recorded now (`applied = 0`) with the day it takes effect;
//!   rolling subscriptions into their next period (new buckets, the next fee, pending changes)
//!   is the bill cycle's job and is not built yet, so until then charging keeps the current
//!   plan and the current period's buckets.

use std::str::FromStr;

use jiff::civil::Date;
use rust_decimal::Decimal;
use toll_catalog::lifecycle::{self, Actor, PlanStatus};
use toll_catalog::plan::{PlanClass, PlanDef};
use toll_catalog::proration::{self, Period};
use toll_charging::ledger::{IdempotencyKey, Leg, TxKind, TxRequest};

use crate::keys::{KeySource, ledger_key};
use toll_core::{Micros, Rounding, RoundingMethod};

use crate::catalog::version_view;
use crate::db::{Col, Tx, q};
use crate::{Store, StoreError, Tenant, TenantId, now_ms};

/// Whom to subscribe to what, from when.
#[derive(Debug, Clone)]
pub struct SubscribeRequest<'a> {
    pub account: &'a str,
    pub plan: &'a str,
    /// The lines (numbers) the subscription serves: one, or up to the family plan's members.
    pub lines: &'a [String],
    pub start: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscriptionView {
    pub id: i64,
    pub account: String,
    pub plan: String,
    pub version: i64,
    pub status: String,
    pub anchor: String,
    /// The exclusive end of the last period granted (renewals move it on).
    pub period_end: Option<String>,
    pub lines: Vec<String>,
    pub buckets: Vec<BucketView>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BucketView {
    pub id: i64,
    pub usage: String,
    pub services: Option<String>,
    pub source: String,
    pub starts_ms: i64,
    pub expires_ms: i64,
    pub initial: i64,
    pub remaining: i64,
}

/// When a plan change takes effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeWhen {
    /// On this day (in the tenant's calendar), settled by days.
    Now(Date),
    /// When the current period ends.
    PeriodEnd,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeView {
    pub id: i64,
    pub subscription: i64,
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub effective: String,
    pub effective_date: String,
    pub actor: String,
    pub at_ms: i64,
    pub credit: Micros,
    pub charge: Micros,
    /// The plan left (absent for a subscription's first version).
    pub from_plan: Option<String>,
    pub to_plan: String,
}

/// Milliseconds of the start of `date` in `zone`.
pub(crate) fn day_start_ms(date: Date, zone: &jiff::tz::TimeZone) -> Result<i64, StoreError> {
    date.to_zoned(zone.clone())
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| StoreError::invalid("date", e.to_string()))
}

pub(crate) fn parse_date(field: &str, s: &str) -> Result<Date, StoreError> {
    Date::from_str(s).map_err(|e| StoreError::Corrupt(format!("{field} {s:?}: {e}")))
}

pub(crate) fn to_micros(field: &str, d: Decimal) -> Result<Micros, StoreError> {
    Micros::from_decimal(d).map_err(|e| StoreError::invalid(field, e.to_string()))
}

/// The currency's minor-unit rounding, half away from zero: how fees are settled by days.
fn fee_rounding(t: &Tenant) -> Result<Rounding, StoreError> {
    Rounding::new(RoundingMethod::Middle, t.currency.minor_units())
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Subscribes an account's lines to the active version of a plan.
    pub async fn subscribe(
        &self,
        tenant: &Tenant,
        req: &SubscribeRequest<'_>,
        actor: &Actor,
    ) -> Result<SubscriptionView, StoreError> {
        let t = tenant.id;
        let zone = tenant.zone()?;
        let mut tx = self.begin().await?;
        // Chargers cache lines, subscriptions and buckets: tell them this changes some.
        crate::ledger::bump_epoch(&mut tx, t).await?;
        let version = active_version(&mut tx, t, req.plan).await?;
        let def = PlanDef::from_str(&version.definition)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        let max_lines = def.shared().map_or(1, |s| s.max_members as usize);
        if req.lines.is_empty() || req.lines.len() > max_lines {
            return Err(StoreError::invalid(
                "lines",
                format!(
                    "plan {} takes 1..={max_lines} lines, got {}",
                    req.plan,
                    req.lines.len()
                ),
            ));
        }
        let (account_id, wallet) = account_wallet(&mut tx, t, req.account).await?;
        let mut line_ids = Vec::with_capacity(req.lines.len());
        for number in req.lines {
            let number = crate::accounts::normalise_number(number)?;
            let row = tx
                .opt(
                    q(
                        "SELECT id FROM subscribers WHERE tenant_id = $1 AND account_id = $2 \
                       AND number = $3",
                    )
                    .i64(t.0)
                    .i64(account_id)
                    .text(number.clone()),
                )
                .await?
                .ok_or_else(|| {
                    StoreError::invalid(
                        "lines",
                        format!("{number} is not a line of {}", req.account),
                    )
                })?;
            let id = row.i64(0)?;
            if def.class() == PlanClass::Base && has_active_base(&mut tx, t, id).await? {
                return Err(StoreError::Refused(format!(
                    "line {number} already has an active base plan: change that plan instead"
                )));
            }
            line_ids.push(id);
        }
        let now = now_ms();
        let start = req.start.to_string();
        let period = proration::period(def.validity(), req.start, 0)
            .map_err(|e| StoreError::invalid("start", e.to_string()))?;
        let sub = tx
            .one(
                q(
                    "INSERT INTO subscriptions (tenant_id, account_id, plan_version_id, status, \
                   anchor_date, start_date, created_ms, period_end) \
                   VALUES ($1, $2, $3, 'active', $4, $4, $5, $6) RETURNING id",
                )
                .i64(t.0)
                .i64(account_id)
                .i64(version.id)
                .text(start.clone())
                .i64(now)
                .text(period.end().to_string()),
            )
            .await?
            .i64(0)?;
        for line in &line_ids {
            tx.exec(
                q(
                    "INSERT INTO subscription_lines (tenant_id, subscription_id, subscriber_id) \
                   VALUES ($1, $2, $3)",
                )
                .i64(t.0)
                .i64(sub)
                .i64(*line),
            )
            .await?;
        }
        grant_buckets(&mut tx, t, sub, &def, period, period.start(), &zone).await?;
        let fee = to_micros("base_fee", def.base_fee())?;
        if fee.0 > 0 {
            let key = ledger_key(KeySource::Fee, &format!("{sub}:{}", period.start()))?;
            let memo = format!(
                "{} {} – {}",
                def.code().as_str(),
                period.start(),
                period.end()
            );
            let revenue = crate::books::book_id(&mut tx, t, "revenue").await?;
            post_simple(
                &mut tx,
                t,
                key,
                TxKind::Charge,
                now,
                &memo,
                wallet,
                revenue,
                fee,
            )
            .await?;
        }
        let _ = actor;
        let view = subscription_view(&mut tx, t, sub).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Changes a subscription to the active version of another plan, now (settled by days) or
    /// at the end of the current period; the change and its history row are one transaction.
    pub async fn change_plan(
        &self,
        tenant: &Tenant,
        subscription: i64,
        to_plan: &str,
        when: ChangeWhen,
        actor: &Actor,
        comment: &str,
    ) -> Result<ChangeView, StoreError> {
        let t = tenant.id;
        let zone = tenant.zone()?;
        let now = now_ms();
        let mut tx = self.begin().await?;
        // Chargers cache lines, subscriptions and buckets: tell them this changes some.
        crate::ledger::bump_epoch(&mut tx, t).await?;
        let cur = current(&mut tx, t, subscription, true).await?;
        let old_def = PlanDef::from_str(&cur.definition)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        let new = active_version(&mut tx, t, to_plan).await?;
        let new_def = PlanDef::from_str(&new.definition)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        let anchor = parse_date("anchor_date", &cur.anchor)?;
        let today = jiff::Timestamp::from_millisecond(now)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .to_zoned(zone.clone())
            .date();
        let on = match when {
            ChangeWhen::Now(d) => d,
            ChangeWhen::PeriodEnd => today,
        };
        let period = proration::period_containing(old_def.validity(), anchor, on)
            .map_err(|e| StoreError::invalid("date", e.to_string()))?;
        let (effective, date, credit, charge) = match when {
            ChangeWhen::PeriodEnd => {
                let end = match &cur.period_end {
                    Some(e) => parse_date("period_end", e)?,
                    None => period.end(),
                };
                ("period_end", end, Micros::ZERO, Micros::ZERO)
            }
            ChangeWhen::Now(d) => {
                let (_, credit, charge) = settle_by_days(tenant, &old_def, &new_def, period, d)?;
                ("now", d, credit, charge)
            }
        };
        // A retried change finds the subscription already on the target (refused here), and a
        // late retry after another change would take effect before it (refused further down):
        // a change is never settled twice.
        check_change(cur.version_id, new.id, &old_def, &new_def)?;
        // History only moves forward: a change cannot take effect before the last one did.
        if let Some(r) = tx
            .opt(
                q(
                    "SELECT MAX(effective_date) FROM subscription_changes WHERE tenant_id = $1 \
                   AND subscription_id = $2 AND applied = 1",
                )
                .i64(t.0)
                .i64(subscription),
            )
            .await?
            && let Some(last) = r.opt_text(0)?
            && date.to_string() < last
        {
            return Err(StoreError::Refused(format!(
                "a change on {date} would take effect before the last change ({last})"
            )));
        }
        let change = tx
            .one(
                q("INSERT INTO subscription_changes (tenant_id, subscription_id, from_version_id, \
                   to_version_id, effective, effective_date, actor, at_ms, credit_micros, \
                   charge_micros, comment, applied) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id")
                .i64(t.0)
                .i64(subscription)
                .i64(cur.version_id)
                .i64(new.id)
                .text(effective)
                .text(date.to_string())
                .text(actor.as_str())
                .i64(now)
                .i64(credit.0)
                .i64(charge.0)
                .text(comment)
                .i64(i64::from(effective == "now")),
            )
            .await?
            .i64(0)?;
        if let ChangeWhen::Now(d) = when {
            let at = day_start_ms(d, &zone)?;
            // The old plan's allowances end where the new plan's begin.
            tx.exec(
                q("UPDATE buckets SET expires_ms = $1 WHERE tenant_id = $2 \
                   AND subscription_id = $3 AND expires_ms > $1")
                .i64(at)
                .i64(t.0)
                .i64(subscription),
            )
            .await?;
            tx.exec(
                q("UPDATE subscriptions SET plan_version_id = $1 WHERE tenant_id = $2 AND id = $3")
                    .i64(new.id)
                    .i64(t.0)
                    .i64(subscription),
            )
            .await?;
            grant_buckets(&mut tx, t, subscription, &new_def, period, d, &zone).await?;
            let revenue = crate::books::book_id(&mut tx, t, "revenue").await?;
            let mut legs = Vec::with_capacity(2);
            if credit.0 > 0 {
                legs.push(Leg::new(revenue, cur.wallet, credit));
            }
            if charge.0 > 0 {
                legs.push(Leg::new(cur.wallet, revenue, charge));
            }
            if !legs.is_empty() {
                let memo = format!(
                    "{} → {} from {d}: credit {credit}, charge {charge}",
                    old_def.code().as_str(),
                    new_def.code().as_str()
                );
                let req = TxRequest::new(
                    // One key per recorded change: the business rules (already on the target, no
                    // backdating) are what keep a change from being settled twice.
                    ledger_key(KeySource::Change, &change.to_string())?,
                    TxKind::Proration,
                    now,
                    memo,
                    legs,
                )
                .map_err(|e| StoreError::invalid("change", e.to_string()))?;
                crate::ledger::post(&mut tx, t, &req).await?;
            }
        }
        let view = change_view(&mut tx, t, change).await?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn subscription(
        &self,
        tenant: TenantId,
        id: i64,
    ) -> Result<SubscriptionView, StoreError> {
        let mut tx = self.read().await?;
        subscription_view(&mut tx, tenant, id).await
    }

    /// The plan changes of a subscription, oldest first.
    pub async fn subscription_changes(
        &self,
        tenant: TenantId,
        subscription: i64,
    ) -> Result<Vec<ChangeView>, StoreError> {
        let mut tx = self.read().await?;
        let ids = tx
            .all(
                q("SELECT id FROM subscription_changes WHERE tenant_id = $1 \
                   AND subscription_id = $2 ORDER BY id")
                .i64(tenant.0)
                .i64(subscription),
            )
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for r in ids {
            out.push(change_view(&mut tx, tenant, r.i64(0)?).await?);
        }
        Ok(out)
    }
}

/// Why changing from version `from` to version `to` is refused whatever the day: the change
/// and its preview ([`Store::preview_plan_change`]) ask the same.
pub(crate) fn check_change(
    from: i64,
    to: i64,
    old_def: &PlanDef,
    new_def: &PlanDef,
) -> Result<(), StoreError> {
    if from == to {
        return Err(StoreError::Refused(
            "the subscription is already on that version".into(),
        ));
    }
    if new_def.currency() != old_def.currency() {
        return Err(StoreError::Refused(
            "a plan change cannot change the currency".into(),
        ));
    }
    Ok(())
}

/// What a change on `day` within `period` credits (the old fee's unused days) and charges (the
/// new fee's remaining days), in the currency's minor units: one computation for the change
/// and its preview, so a quoted amount is the posted amount.
pub(crate) fn settle_by_days(
    tenant: &Tenant,
    old_def: &PlanDef,
    new_def: &PlanDef,
    period: Period,
    day: Date,
) -> Result<(proration::Proration, Micros, Micros), StoreError> {
    let p = proration::prorate(
        old_def.base_fee(),
        new_def.base_fee(),
        period,
        day,
        fee_rounding(tenant)?,
    )
    .map_err(|e| StoreError::invalid("date", e.to_string()))?;
    let credit = to_micros("credit", p.credit)?;
    let charge = to_micros("charge", p.charge)?;
    Ok((p, credit, charge))
}

/// Posts a one-leg transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn post_simple(
    tx: &mut Tx,
    tenant: TenantId,
    key: IdempotencyKey,
    kind: TxKind,
    at_ms: i64,
    memo: &str,
    debit: i64,
    credit: i64,
    amount: Micros,
) -> Result<crate::ledger::Posted, StoreError> {
    let req = TxRequest::new(key, kind, at_ms, memo, [Leg::new(debit, credit, amount)])
        .map_err(|e| StoreError::invalid("amount", e.to_string()))?;
    crate::ledger::post(tx, tenant, &req).await
}

pub(crate) async fn active_version(
    tx: &mut Tx,
    tenant: TenantId,
    plan: &str,
) -> Result<crate::catalog::PlanVersionView, StoreError> {
    let row = tx
        .opt(
            q(
                "SELECT v.version FROM plan_versions v JOIN plans p ON p.id = v.plan_id \
               WHERE v.tenant_id = $1 AND p.code = $2 AND v.status = 'active'",
            )
            .i64(tenant.0)
            .text(plan),
        )
        .await?;
    match row {
        Some(r) => {
            let v = version_view(tx, tenant, plan, Some(r.i64(0)?)).await?;
            debug_assert!(lifecycle::accepts_new_subscriptions(v.status));
            Ok(v)
        }
        None => {
            let latest = version_view(tx, tenant, plan, None).await?;
            Err(StoreError::Refused(format!(
                "plan {plan} has no active version (latest is {}): only an active plan takes \
                 new subscriptions",
                latest.status.as_str()
            )))
        }
    }
}

async fn account_wallet(
    tx: &mut Tx,
    tenant: TenantId,
    account: &str,
) -> Result<(i64, i64), StoreError> {
    let r = tx
        .opt(
            q("SELECT id, wallet_id FROM accounts WHERE tenant_id = $1 AND code = $2")
                .i64(tenant.0)
                .text(account),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("account", account))?;
    Ok((r.i64(0)?, r.i64(1)?))
}

async fn has_active_base(tx: &mut Tx, tenant: TenantId, line: i64) -> Result<bool, StoreError> {
    let rows = tx
        .all(
            q("SELECT v.definition FROM subscription_lines l \
               JOIN subscriptions s ON s.id = l.subscription_id \
               JOIN plan_versions v ON v.id = s.plan_version_id \
               WHERE l.tenant_id = $1 AND l.subscriber_id = $2 \
               AND s.status IN ('active', 'suspended')")
            .i64(tenant.0)
            .i64(line),
        )
        .await?;
    for r in rows {
        let def = PlanDef::from_str(&r.text(0)?)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        if def.class() == PlanClass::Base {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates the plan's buckets for `period`, from `from` (the period start, or a change day, in
/// which case each allowance is scaled by the remaining days, rounded down).
pub(crate) async fn grant_buckets(
    tx: &mut Tx,
    tenant: TenantId,
    subscription: i64,
    def: &PlanDef,
    period: Period,
    from: Date,
    zone: &jiff::tz::TimeZone,
) -> Result<(), StoreError> {
    let starts = day_start_ms(from, zone)?;
    let expires = day_start_ms(period.end(), zone)?;
    let days = i128::from(period.days());
    let remaining_days = i128::from(
        u32::try_from((period.end() - from).get_days())
            .map_err(|_| StoreError::invalid("date", "before the period"))?,
    );
    let source = match def.class() {
        PlanClass::Base => "base",
        PlanClass::Addon => "pack",
    };
    for a in def.allowances() {
        let quantity = i64::try_from(i128::from(a.quantity) * remaining_days / days)
            .map_err(|_| StoreError::Corrupt("allowance overflow".into()))?;
        if quantity == 0 {
            continue;
        }
        let services = a.services.as_ref().map(|s| s.services().join(","));
        let id = tx
            .one(
                q(
                    "INSERT INTO buckets (tenant_id, subscription_id, usage, services, source, \
                   starts_ms, expires_ms, initial) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                )
                .i64(tenant.0)
                .i64(subscription)
                .text(a.usage.as_str())
                .opt_text(services)
                .text(source)
                .i64(starts)
                .i64(expires)
                .i64(quantity),
            )
            .await?
            .i64(0)?;
        insert_remaining(tx, tenant, &[(id, quantity)]).await?;
    }
    Ok(())
}

/// Records what is left of newly granted buckets (`(bucket id, quantity)`: all of it). Kept
/// apart from `buckets` (migration `0010_bucket_remaining`): charging rewrites it for every
/// bucket a batch draws on.
pub(crate) async fn insert_remaining(
    tx: &mut Tx,
    tenant: TenantId,
    granted: &[(i64, i64)],
) -> Result<(), StoreError> {
    tx.bulk(
        granted,
        &[Col::Int, Col::Int, Col::Int],
        |v| format!("INSERT INTO bucket_remaining (bucket_id, tenant_id, remaining) {v}"),
        |q, (id, remaining)| {
            q.push_i64(*id);
            q.push_i64(tenant.0);
            q.push_i64(*remaining);
        },
    )
    .await?;
    Ok(())
}

pub(crate) struct Current {
    pub(crate) version_id: i64,
    pub(crate) definition: String,
    pub(crate) anchor: String,
    pub(crate) wallet: i64,
    /// The end of the last period granted: where a change at period end takes effect (the
    /// next renewal), even when that renewal is overdue.
    pub(crate) period_end: Option<String>,
}

/// The subscription's current plan and wallet; `lock` takes the row (a change is about to be
/// written) — a preview reads it in a read-only transaction, where a lock is refused.
pub(crate) async fn current(
    tx: &mut Tx,
    tenant: TenantId,
    sub: i64,
    lock: bool,
) -> Result<Current, StoreError> {
    let sql = format!(
        "SELECT s.plan_version_id, v.definition, s.anchor_date, a.wallet_id, v.status, \
         s.period_end FROM subscriptions s JOIN plan_versions v ON v.id = s.plan_version_id \
         JOIN accounts a ON a.id = s.account_id \
         WHERE s.tenant_id = $1 AND s.id = $2 AND s.status = 'active'{}",
        if !lock || tx.for_update().is_empty() {
            ""
        } else {
            " FOR UPDATE OF s"
        }
    );
    let r = tx
        .opt(crate::db::q_composed(sql).i64(tenant.0).i64(sub))
        .await?
        .ok_or_else(|| StoreError::not_found("active subscription", sub.to_string()))?;
    let status: PlanStatus = r
        .text(4)?
        .parse()
        .map_err(|e: lifecycle::UnknownStatus| StoreError::Corrupt(format!("{e:?}")))?;
    debug_assert!(lifecycle::serves_existing(status));
    Ok(Current {
        version_id: r.i64(0)?,
        definition: r.text(1)?,
        anchor: r.text(2)?,
        wallet: r.i64(3)?,
        period_end: r.opt_text(5)?,
    })
}

async fn subscription_view(
    tx: &mut Tx,
    tenant: TenantId,
    id: i64,
) -> Result<SubscriptionView, StoreError> {
    let r = tx
        .opt(
            q(
                "SELECT s.id, a.code, p.code, v.version, s.status, s.anchor_date, s.period_end \
               FROM subscriptions s JOIN accounts a ON a.id = s.account_id \
               JOIN plan_versions v ON v.id = s.plan_version_id JOIN plans p ON p.id = v.plan_id \
               WHERE s.tenant_id = $1 AND s.id = $2",
            )
            .i64(tenant.0)
            .i64(id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("subscription", id.to_string()))?;
    let lines = tx
        .all(
            q(
                "SELECT n.number FROM subscription_lines l JOIN subscribers n \
               ON n.id = l.subscriber_id WHERE l.tenant_id = $1 AND l.subscription_id = $2 \
               ORDER BY n.number",
            )
            .i64(tenant.0)
            .i64(id),
        )
        .await?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()?;
    let buckets = tx
        .all(
            q(
                "SELECT b.id, b.usage, b.services, b.source, b.starts_ms, b.expires_ms, \
               b.initial, r.remaining FROM buckets b JOIN bucket_remaining r \
               ON r.bucket_id = b.id AND r.tenant_id = b.tenant_id \
               WHERE b.tenant_id = $1 AND b.subscription_id = $2 ORDER BY b.id",
            )
            .i64(tenant.0)
            .i64(id),
        )
        .await?
        .iter()
        .map(|b| {
            Ok(BucketView {
                id: b.i64(0)?,
                usage: b.text(1)?,
                services: b.opt_text(2)?,
                source: b.text(3)?,
                starts_ms: b.i64(4)?,
                expires_ms: b.i64(5)?,
                initial: b.i64(6)?,
                remaining: b.i64(7)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(SubscriptionView {
        id: r.i64(0)?,
        account: r.text(1)?,
        plan: r.text(2)?,
        version: r.i64(3)?,
        status: r.text(4)?,
        anchor: r.text(5)?,
        period_end: r.opt_text(6)?,
        lines,
        buckets,
    })
}

async fn change_view(tx: &mut Tx, tenant: TenantId, id: i64) -> Result<ChangeView, StoreError> {
    let r = tx
        .one(
            q(
                "SELECT c.id, c.subscription_id, fv.version, tv.version, c.effective, \
               c.effective_date, c.actor, c.at_ms, c.credit_micros, c.charge_micros, \
               fp.code, tp.code \
               FROM subscription_changes c JOIN plan_versions tv ON tv.id = c.to_version_id \
               JOIN plans tp ON tp.id = tv.plan_id \
               LEFT JOIN plan_versions fv ON fv.id = c.from_version_id \
               LEFT JOIN plans fp ON fp.id = fv.plan_id \
               WHERE c.tenant_id = $1 AND c.id = $2",
            )
            .i64(tenant.0)
            .i64(id),
        )
        .await?;
    Ok(ChangeView {
        id: r.i64(0)?,
        subscription: r.i64(1)?,
        from_version: r.opt_i64(2)?,
        to_version: r.i64(3)?,
        effective: r.text(4)?,
        effective_date: r.text(5)?,
        actor: r.text(6)?,
        at_ms: r.i64(7)?,
        credit: Micros(r.i64(8)?),
        charge: Micros(r.i64(9)?),
        from_plan: r.opt_text(10)?,
        to_plan: r.text(11)?,
    })
}
