//! Pricing usage beyond the allowances with the plan's overage entry, cumulatively over the
//! period.
//!
//! The tiers of an overage pricing apply to the **period's** total, not to each event: the
//! 1,025th MB of a month is priced at the second tier even when every event is small. Each
//! event is therefore charged the difference it makes to the period's price,
//!
//! ```text
//! amount = price(before + q) − price(before)
//! ```
//!
//! so the charges of a period's events add up to the price of the period's total (a telescoping
//! sum): exactly whenever the amounts are terminating decimals, and to `rust_decimal`'s 28
//! significant digits when a fraction does not terminate (61/60 minute, a price `per = 60`).
//! For the ledger use [`OverageCharge::rounded_amount`], which rounds the period's totals rather
//! than each delta, so that the rounded charges always add up exactly.
//!
//! **The accrued counter.** `before` is kept by the store as an integer per subscription,
//! usage kind and period, in the rule's *metered unit*: whole pricing units when
//! `per_event = "up"` (each event's quantity is rounded up before it is added: a 61-second call
//! adds 2 minutes), base units when `per_event = "exact"` (the counter is the exact usage; its
//! pricing quantity is `counter / unit`). An integer that both storage engines add exactly;
//! [`OverageCharge::metered`] is what to add to it.
//!
//! `exact` gives the exact fraction whenever it is a terminating decimal (bytes to MB); a
//! fraction like 61/60 minute is held to 28 significant digits (`rust_decimal`), which is why the
//! counter, not the fraction, is what is kept: conversion differences never accumulate.
//!
//! **Volume pricing** prices the whole total at the tier it ends in, so crossing into a cheaper
//! tier can lower the period's price: that event's delta is then **negative**, a credit. The sum
//! over the period is still the price of the total.

use rust_decimal::Decimal;
use toll_catalog::plan::{OverageRule, PerEventRounding};
use toll_catalog::pricing::{Line, Price, Pricing, PricingError};
use toll_core::Rounding;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverageError {
    #[error("uncovered quantity {0} must not be negative")]
    NegativeQuantity(i64),
    #[error("accrued overage {0} must not be negative")]
    NegativeAccrued(i64),
    #[error("percentage pricing prices money amounts, not usage; it cannot price overage")]
    PercentageModel,
    #[error("overage quantity out of range")]
    Overflow,
    #[error(transparent)]
    Pricing(#[from] PricingError),
}

/// What one tier's part of the period price changed by with this event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TierDelta {
    /// 0-based tier (as in [`Line::tier`]).
    pub tier: usize,
    /// Change of what the tier priced: pricing units, blocks or packages, as its model counts.
    pub quantity: Decimal,
    /// Change of the tier's amount (flat fee included); can be negative for `volume` and
    /// `top_tier` blocks.
    pub amount: Decimal,
}

/// The overage charge of one event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OverageCharge {
    /// Add this to the period's accrued counter (metered units; see the module docs).
    pub metered: i64,
    /// The event's quantity in pricing units (after per-event rounding).
    pub quantity: Decimal,
    /// Exact, unrounded: `period_after − period_before`. Negative only for `volume`-like
    /// models.
    pub amount: Decimal,
    /// Price of the period's accrued quantity before this event.
    pub period_before: Decimal,
    /// Price of the period's accrued quantity with this event.
    pub period_after: Decimal,
    /// Per-tier changes, tiers that did not change left out.
    pub lines: Vec<TierDelta>,
}

impl OverageCharge {
    /// The amount rounded for the ledger without drift: `round(period_after) −
    /// round(period_before)`, so that a period's rounded charges add up to the rounded price of
    /// its total (rounding each delta on its own would not).
    pub fn rounded_amount(&self, rounding: Rounding) -> Decimal {
        rounding.apply(self.period_after) - rounding.apply(self.period_before)
    }
}

/// The metered quantity of `uncovered` base units: whole pricing units, rounded up, for `up`;
/// the base units themselves for `exact`.
pub fn metered(rule: &OverageRule, uncovered: i64) -> Result<i64, OverageError> {
    if uncovered < 0 {
        return Err(OverageError::NegativeQuantity(uncovered));
    }
    Ok(match rule.per_event {
        PerEventRounding::Up => {
            let unit = rule.unit.base_units();
            uncovered / unit + i64::from(uncovered % unit != 0)
        }
        PerEventRounding::Exact => uncovered,
    })
}

/// The pricing quantity of an accrued (metered) counter.
pub fn pricing_quantity(rule: &OverageRule, accrued: i64) -> Result<Decimal, OverageError> {
    if accrued < 0 {
        return Err(OverageError::NegativeAccrued(accrued));
    }
    let q = Decimal::from(accrued);
    match rule.per_event {
        PerEventRounding::Up => Ok(q),
        PerEventRounding::Exact => q
            .checked_div(Decimal::from(rule.unit.base_units()))
            .ok_or(OverageError::Overflow),
    }
}

/// The price of a period's accrued overage (what the period's charges add up to).
pub fn price_period(rule: &OverageRule, accrued: i64) -> Result<Price, OverageError> {
    if let Pricing::Percentage { .. } = rule.pricing {
        return Err(OverageError::PercentageModel);
    }
    Ok(rule.pricing.price(pricing_quantity(rule, accrued)?)?)
}

/// Prices an event's `uncovered` base units given the period's `accrued_before` counter.
pub fn price_overage(
    rule: &OverageRule,
    accrued_before: i64,
    uncovered: i64,
) -> Result<OverageCharge, OverageError> {
    let m = metered(rule, uncovered)?;
    let after_count = accrued_before
        .checked_add(m)
        .ok_or(OverageError::Overflow)?;
    let before = price_period(rule, accrued_before)?;
    let after = price_period(rule, after_count)?;
    let quantity = pricing_quantity(rule, after_count)? - pricing_quantity(rule, accrued_before)?;
    Ok(OverageCharge {
        metered: m,
        quantity,
        amount: after.amount - before.amount,
        period_before: before.amount,
        period_after: after.amount,
        lines: deltas(&before.lines, &after.lines),
    })
}

/// Tier-by-tier difference of two breakdowns.
fn deltas(before: &[Line], after: &[Line]) -> Vec<TierDelta> {
    let mut tiers: Vec<usize> = before.iter().chain(after).map(|l| l.tier).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let sum = |lines: &[Line], tier: usize| {
        lines
            .iter()
            .filter(|l| l.tier == tier)
            .fold((Decimal::ZERO, Decimal::ZERO), |(q, a), l| {
                (q + l.quantity, a + l.amount)
            })
    };
    tiers
        .into_iter()
        .filter_map(|tier| {
            let (qb, ab) = sum(before, tier);
            let (qa, aa) = sum(after, tier);
            let d = TierDelta {
                tier,
                quantity: qa - qb,
                amount: aa - ab,
            };
            (!d.quantity.is_zero() || !d.amount.is_zero()).then_some(d)
        })
        .collect()
}
