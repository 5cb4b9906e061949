//! Re-rating: stored CDRs re-priced with the current tariff, the differences posted as ledger
//! adjustments.
//!
//! Only records the tariff priced whole (`priced_by = 'tariff'`: nothing covered by an
//! allowance, the wallet paid the record's own rated cost) are re-charged: the price of the
//! others came from the plan (allowances, overage rules, the plan's profile for a call's tail),
//! which a tariff change does not move. Each changed record gets one adjustment transaction,
//! keyed `rr:{event key}#{n}` (n = how many times it was re-priced), written in the same
//! transaction as the record's new price: a re-run after a crash, or a second run with the same
//! tariff, finds nothing left to change.

use toll_charging::ledger::{LedgerError, Leg, TxKind, TxRequest};
use toll_core::Micros;

use crate::keys::{KeySource, ledger_key};
use crate::{Store, StoreError, Tenant};

/// Most records one call re-prices.
pub const MAX_REPRICE: usize = 5_000;

/// A record's new rating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reprice {
    pub event_key: String,
    pub start_ms: i64,
    pub cost: Micros,
    pub rated_usage: i64,
    pub destination_id: Option<String>,
    pub matched_prefix: Option<String>,
    pub carrier: Option<String>,
    pub region: Option<String>,
    pub default_rated: bool,
}

/// What re-pricing did to one record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RerateOutcome {
    /// Same price: nothing posted.
    Unchanged,
    /// The wallet was debited (`delta` > 0) or credited the difference.
    Adjusted { delta: Micros, seq: i64 },
    /// Priced by the plan, not the tariff: left as it was.
    PlanPriced,
    /// The wallet cannot pay the increase; nothing changed (retry after a top-up).
    Refused { reason: String },
    /// No such record (anymore).
    Missing,
}

impl Store {
    /// Applies new prices to stored CDRs, in one transaction.
    pub async fn apply_reprices(
        &self,
        tenant: &Tenant,
        reprices: &[Reprice],
    ) -> Result<Vec<RerateOutcome>, StoreError> {
        if reprices.len() > MAX_REPRICE {
            return Err(StoreError::invalid(
                "reprices",
                format!("at most {MAX_REPRICE} per call"),
            ));
        }
        let t = tenant.id;
        let mut tx = self.begin().await?;
        let revenue = crate::books::book_id(&mut tx, t, "revenue").await?;
        let mut out = Vec::with_capacity(reprices.len());
        for r in reprices {
            let lock = tx.for_update();
            let row = tx
                .opt(
                    crate::db::q_composed(format!(
                        "SELECT c.amount, c.priced_by, c.rerated, a.wallet_id FROM cdrs c \
                         JOIN accounts a ON a.id = c.account_id \
                         WHERE c.tenant_id = $1 AND c.event_key = $2 AND c.start_ms = $3{lock}"
                    ))
                    .i64(t.0)
                    .text(r.event_key.clone())
                    .i64(r.start_ms),
                )
                .await?;
            let Some(row) = row else {
                out.push(RerateOutcome::Missing);
                continue;
            };
            let (amount, priced_by, rerated, wallet) =
                (Micros(row.i64(0)?), row.text(1)?, row.i64(2)?, row.i64(3)?);
            if priced_by != "tariff" {
                out.push(RerateOutcome::PlanPriced);
                continue;
            }
            let delta = r
                .cost
                .0
                .checked_sub(amount.0)
                .ok_or_else(|| StoreError::invalid("cost", "out of range"))?;
            if delta == 0 {
                out.push(RerateOutcome::Unchanged);
                continue;
            }
            let n = rerated + 1;
            let key = ledger_key(KeySource::Rerate, &format!("{}#{n}", r.event_key))?;
            let leg = if delta > 0 {
                Leg::new(wallet, revenue, Micros(delta))
            } else {
                Leg::new(revenue, wallet, Micros(-delta))
            };
            let memo = format!(
                "re-rated {}: {} → {}",
                r.event_key,
                amount.to_decimal().normalize(),
                r.cost.to_decimal().normalize()
            );
            let req = TxRequest::new(key, TxKind::Adjustment, r.start_ms, memo, [leg])
                .map_err(StoreError::Ledger)?;
            let posted = match crate::ledger::post(&mut tx, t, &req).await {
                Ok(p) => p,
                Err(StoreError::Ledger(LedgerError::Insufficient {
                    available,
                    requested,
                    ..
                })) => {
                    out.push(RerateOutcome::Refused {
                        reason: format!(
                            "insufficient balance: {available} available, {requested} requested"
                        ),
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            tx.exec(
                crate::db::q(
                    "UPDATE cdrs SET cost = $4, amount = $4, rated_usage = $5, \
                     destination_id = $6, matched_prefix = $7, carrier = $8, region = $9, \
                     default_rated = $10, rerated = $11 \
                     WHERE tenant_id = $1 AND event_key = $2 AND start_ms = $3",
                )
                .i64(t.0)
                .text(r.event_key.clone())
                .i64(r.start_ms)
                .i64(r.cost.0)
                .i64(r.rated_usage)
                .opt_text(r.destination_id.clone())
                .opt_text(r.matched_prefix.clone())
                .opt_text(r.carrier.clone())
                .opt_text(r.region.clone())
                .i64(i64::from(r.default_rated))
                .i64(n),
            )
            .await?;
            out.push(RerateOutcome::Adjusted {
                delta: Micros(delta),
                seq: posted.first_seq,
            });
        }
        tx.commit().await?;
        Ok(out)
    }
}
