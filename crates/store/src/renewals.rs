//! Period roll-over: each subscription whose period has ended moves into the next one.
//!
//! A base plan renews every period until it is ended: the changes that waited for the period
//! end take effect, the period's fee is charged to the wallet (keyed `fee:{subscription}:{period
//! start}`, the key the first period's fee had, so a fee is never charged twice) and the new
//! period's buckets are granted. A wallet that cannot pay the fee suspends the subscription
//! (欠费停机): it gets no buckets, its lines' events are refused, and the next renewal after a
//! top-up charges the same fee and resumes it. An add-on pack does not renew: it expires with
//! its period.
//!
//! Each subscription rolls in its own transaction, so a renewal run that dies half-way is simply
//! run again: what was committed is not due any more.

use std::str::FromStr;

use jiff::civil::Date;
use toll_catalog::plan::{PlanClass, PlanDef};
use toll_catalog::proration::{self, Period};
use toll_charging::ledger::{LedgerError, TxKind};

use crate::db::{Tx, q, q_composed};
use crate::keys::{KeySource, ledger_key};
use crate::subscriptions::{day_start_ms, grant_buckets, parse_date, post_simple, to_micros};
use crate::{Store, StoreError, Tenant, TenantId};

/// Most periods one subscription rolls through in one call (a subscription left alone for ten
/// years of monthly periods needs a second call).
const MAX_PERIODS: usize = 120;

/// What a renewal run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RenewReport {
    /// Subscriptions looked at (their period had ended by the given day).
    pub due: u64,
    /// Periods started: fee charged and buckets granted.
    pub periods: u64,
    /// Plan changes that waited for a period end and took effect.
    pub changes: u64,
    /// Add-on packs that ended with their period.
    pub expired: u64,
    /// Suspended subscriptions that paid and are active again.
    pub resumed: u64,
    /// Subscriptions suspended because the fee could not be paid.
    pub suspended: Vec<Suspension>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Suspension {
    pub subscription: i64,
    pub period_start: String,
    pub reason: String,
}

/// One subscription as a renewal sees it, locked.
struct Due {
    version: i64,
    def: PlanDef,
    anchor: Date,
    end: Date,
    suspended: bool,
    wallet: i64,
}

impl Store {
    /// Rolls every subscription of `tenant` whose period ended on or before `as_of` into the
    /// period that contains `as_of` (see the module documentation).
    pub async fn renew(&self, tenant: &Tenant, as_of: Date) -> Result<RenewReport, StoreError> {
        let t = tenant.id;
        let mut report = RenewReport::default();
        let due: Vec<i64> = {
            let mut tx = self.read().await?;
            tx.all(
                q("SELECT id FROM subscriptions WHERE tenant_id = $1 \
                   AND status IN ('active', 'suspended') \
                   AND (period_end IS NULL OR period_end <= $2) ORDER BY id")
                .i64(t.0)
                .text(as_of.to_string()),
            )
            .await?
            .iter()
            .map(|r| r.i64(0))
            .collect::<Result<_, _>>()?
        };
        for id in due {
            self.renew_one(tenant, id, as_of, &mut report).await?;
        }
        Ok(report)
    }

    async fn renew_one(
        &self,
        tenant: &Tenant,
        sub: i64,
        as_of: Date,
        report: &mut RenewReport,
    ) -> Result<(), StoreError> {
        let t = tenant.id;
        let zone = tenant.zone()?;
        let mut tx = self.begin().await?;
        // Chargers cache subscriptions and buckets: this changes both.
        crate::ledger::bump_epoch(&mut tx, t).await?;
        let Some(mut d) = load_due(&mut tx, t, sub).await? else {
            return Ok(()); // ended meanwhile
        };
        if d.end > as_of {
            return Ok(()); // renewed meanwhile
        }
        report.due += 1;
        if d.def.class() == PlanClass::Addon {
            tx.exec(
                q(
                    "UPDATE subscriptions SET status = 'expired', end_date = $1 \
                   WHERE tenant_id = $2 AND id = $3",
                )
                .text(d.end.to_string())
                .i64(t.0)
                .i64(sub),
            )
            .await?;
            tx.commit().await?;
            report.expired += 1;
            return Ok(());
        }
        let revenue = crate::books::book_id(&mut tx, t, "revenue").await?;
        let mut status = "active";
        for _ in 0..MAX_PERIODS {
            if d.end > as_of {
                break;
            }
            report.changes += apply_waiting_changes(&mut tx, t, sub, &mut d).await?;
            let period = next_period(&mut d)?;
            let fee = to_micros("base_fee", d.def.base_fee())?;
            if fee.0 > 0 {
                let key = ledger_key(KeySource::Fee, &format!("{sub}:{}", period.start()))?;
                let memo = format!(
                    "{} {} – {}",
                    d.def.code().as_str(),
                    period.start(),
                    period.end()
                );
                let at = day_start_ms(period.start(), &zone)?;
                match post_simple(
                    &mut tx,
                    t,
                    key,
                    TxKind::Charge,
                    at,
                    &memo,
                    d.wallet,
                    revenue,
                    fee,
                )
                .await
                {
                    Ok(_) => {}
                    // Decided in memory before anything was written: the transaction is intact.
                    Err(StoreError::Ledger(e @ LedgerError::Insufficient { .. })) => {
                        report.suspended.push(Suspension {
                            subscription: sub,
                            period_start: period.start().to_string(),
                            reason: e.to_string(),
                        });
                        status = "suspended";
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            grant_buckets(&mut tx, t, sub, &d.def, period, period.start(), &zone).await?;
            d.end = period.end();
            report.periods += 1;
        }
        if d.suspended && status == "active" {
            report.resumed += 1;
        }
        tx.exec(
            q(
                "UPDATE subscriptions SET status = $1, plan_version_id = $2, anchor_date = $3, \
               period_end = $4 WHERE tenant_id = $5 AND id = $6",
            )
            .text(status)
            .i64(d.version)
            .text(d.anchor.to_string())
            .text(d.end.to_string())
            .i64(t.0)
            .i64(sub),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn load_due(tx: &mut Tx, tenant: TenantId, sub: i64) -> Result<Option<Due>, StoreError> {
    let sql = format!(
        "SELECT s.plan_version_id, v.definition, s.anchor_date, s.start_date, s.period_end, \
         s.status, a.wallet_id FROM subscriptions s \
         JOIN plan_versions v ON v.id = s.plan_version_id \
         JOIN accounts a ON a.id = s.account_id \
         WHERE s.tenant_id = $1 AND s.id = $2 AND s.status IN ('active', 'suspended'){}",
        if tx.for_update().is_empty() {
            ""
        } else {
            " FOR UPDATE OF s"
        }
    );
    let Some(r) = tx.opt(q_composed(sql).i64(tenant.0).i64(sub)).await? else {
        return Ok(None);
    };
    let def = PlanDef::from_str(&r.text(1)?)
        .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
    let anchor = parse_date("anchor_date", &r.text(2)?)?;
    let end = match r.opt_text(4)? {
        Some(e) => parse_date("period_end", &e)?,
        None => {
            let start = parse_date("start_date", &r.text(3)?)?;
            proration::period_containing(def.validity(), anchor, start)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .end()
        }
    };
    Ok(Some(Due {
        version: r.i64(0)?,
        def,
        anchor,
        end,
        suspended: r.text(5)? == "suspended",
        wallet: r.i64(6)?,
    }))
}

/// Applies the plan changes that waited for a period end on or before `d.end`, in the order
/// they were made (the last one wins); returns how many.
async fn apply_waiting_changes(
    tx: &mut Tx,
    tenant: TenantId,
    sub: i64,
    d: &mut Due,
) -> Result<u64, StoreError> {
    let rows = tx
        .all(
            q(
                "SELECT c.id, c.to_version_id, v.definition FROM subscription_changes c \
               JOIN plan_versions v ON v.id = c.to_version_id \
               WHERE c.tenant_id = $1 AND c.subscription_id = $2 AND c.applied = 0 \
               AND c.effective_date <= $3 ORDER BY c.id",
            )
            .i64(tenant.0)
            .i64(sub)
            .text(d.end.to_string()),
        )
        .await?;
    let mut n = 0;
    for r in rows {
        d.version = r.i64(1)?;
        d.def = PlanDef::from_str(&r.text(2)?)
            .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
        tx.exec(
            q("UPDATE subscription_changes SET applied = 1 WHERE tenant_id = $1 AND id = $2")
                .i64(tenant.0)
                .i64(r.i64(0)?),
        )
        .await?;
        n += 1;
    }
    Ok(n)
}

/// The period that starts at `d.end`. A plan change to another kind of validity (a month to
/// 30 days) re-anchors the subscription there, so that periods stay back to back.
fn next_period(d: &mut Due) -> Result<Period, StoreError> {
    let corrupt = |e: proration::ProrationError| StoreError::Corrupt(e.to_string());
    let p = proration::period_containing(d.def.validity(), d.anchor, d.end).map_err(corrupt)?;
    if p.start() == d.end {
        return Ok(p);
    }
    d.anchor = d.end;
    proration::period(d.def.validity(), d.anchor, 0).map_err(corrupt)
}
