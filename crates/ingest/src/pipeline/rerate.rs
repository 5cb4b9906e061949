//! Re-rating a period: every stored CDR the tariff priced whole is rated again with the current
//! tariff, and the differences are posted as ledger adjustments
//! ([`toll_store::Store::apply_reprices`]). Idempotent: a second run with the same tariff
//! changes nothing, and a run interrupted half-way is finished by running it again.

use jiff::Timestamp;
use jiff::tz::Offset;
use toll_core::Micros;
use toll_core::usage::Tor;
use toll_rating::{Event, Tariff};
use toll_store::cdrs::{CdrQuery, StoredCdr};
use toll_store::rerate::{MAX_REPRICE, Reprice, RerateOutcome};
use toll_store::{Store, StoreError, Tenant};

use super::rating::{RatingContext, class_of};

/// Most changes a report lists one by one (the totals count all of them).
pub const MAX_LISTED: usize = 10_000;

/// What to re-rate.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
    pub account_id: Option<i64>,
    /// Report what would change, change nothing.
    pub dry_run: bool,
}

/// One re-priced record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub event_key: String,
    pub old: Micros,
    pub new: Micros,
    /// `adjusted`, `refused: …` or `dry_run`.
    pub status: String,
}

/// What a run found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RerateReport {
    pub examined: u64,
    /// Priced by allowances, overage or the plan's profile: not the tariff's to change.
    pub plan_priced: u64,
    pub unchanged: u64,
    pub adjusted: u64,
    /// Increases the wallet could not pay (retry after a top-up).
    pub refused: u64,
    /// The current tariff does not rate them (rule removed, no default rate): left as charged.
    pub unratable: u64,
    /// Sum of the posted differences (positive: customers debited more).
    pub delta: Micros,
    pub changes: Vec<Change>,
}

fn tor_of(usage: &str) -> Option<Tor> {
    match usage {
        "voice" => Some(Tor::Voice),
        "sms" => Some(Tor::Sms),
        "data" => Some(Tor::Data),
        _ => None,
    }
}

/// The record's price under `tariff`, as at charge time: usage from the answer, the source's
/// offset, the stored category and subject.
fn reprice(tariff: &Tariff, ctx: &RatingContext, c: &StoredCdr) -> Option<Reprice> {
    let tor = tor_of(&c.usage)?;
    let start = Timestamp::from_millisecond(c.answer_ms.unwrap_or(c.start_ms)).ok()?;
    let offset = Offset::from_seconds(i32::try_from(c.utc_offset_s).ok()?).ok()?;
    let ev = Event {
        tenant: &ctx.tariff_tenant,
        category: &c.category,
        subject: &c.subject,
        destination: &c.callee,
        start,
        offset,
        usage: c.quantity,
        tor,
        route_carrier: None,
    };
    let base = |cost: Micros, rated_usage: i64| Reprice {
        event_key: c.event_key.clone(),
        start_ms: c.start_ms,
        cost,
        rated_usage,
        destination_id: None,
        matched_prefix: None,
        carrier: None,
        region: None,
        default_rated: false,
    };
    match toll_rating::rate(tariff, &ev) {
        Ok(r) => {
            let number = tariff.matched_number(&c.callee);
            let mut p = base(Micros::from_decimal(r.cost).ok()?, r.rated_usage);
            p.destination_id = Some(tariff.destination_id(r.destination).to_string());
            p.matched_prefix = Some(r.matched_prefix(&number).to_string());
            p.carrier = Some(tariff.carrier_slug(None, &r).to_string());
            p.region = tariff.region(&r).map(str::to_string);
            Some(p)
        }
        Err(e) => {
            // The default rate covers what no rule matches, as at ingestion.
            if !matches!(
                class_of(&e),
                "no_tariff" | "unauthorized_destination" | "no_rate" | "carrier_unknown"
            ) {
                return None;
            }
            let (price, units) = ctx.default_rate.price(tor, c.quantity)?;
            let mut p = base(Micros::from_decimal(price.round_dp(6)).ok()?, units);
            p.default_rated = true;
            Some(p)
        }
    }
}

/// Re-rates the window's CDRs with `tariff`.
pub async fn rerate(
    store: &Store,
    tenant: &Tenant,
    tariff: &Tariff,
    ctx: &RatingContext,
    window: Window,
) -> Result<RerateReport, StoreError> {
    let mut report = RerateReport::default();
    let mut after = None;
    loop {
        let page = store
            .cdrs(
                tenant.id,
                &CdrQuery {
                    from_ms: window.from_ms,
                    to_ms: window.to_ms,
                    account_id: window.account_id,
                    after: after.clone(),
                    limit: MAX_REPRICE,
                },
            )
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.start_ms, last.event_key.clone()));
        let mut wanted: Vec<(Reprice, Micros)> = Vec::new();
        for c in &page {
            report.examined += 1;
            if c.priced_by != "tariff" {
                report.plan_priced += 1;
                continue;
            }
            match reprice(tariff, ctx, c) {
                None => report.unratable += 1,
                Some(p) if p.cost == c.amount => report.unchanged += 1,
                Some(p) => wanted.push((p, c.amount)),
            }
        }
        if window.dry_run {
            for (p, old) in &wanted {
                report.adjusted += 1;
                report.delta = Micros(report.delta.0.saturating_add(p.cost.0 - old.0));
                if report.changes.len() < MAX_LISTED {
                    report.changes.push(Change {
                        event_key: p.event_key.clone(),
                        old: *old,
                        new: p.cost,
                        status: "dry_run".into(),
                    });
                }
            }
            continue;
        }
        let reprices: Vec<Reprice> = wanted.iter().map(|(p, _)| p.clone()).collect();
        let outcomes = store.apply_reprices(tenant, &reprices).await?;
        for ((p, old), o) in wanted.iter().zip(outcomes) {
            let status = match o {
                RerateOutcome::Adjusted { delta, .. } => {
                    report.adjusted += 1;
                    report.delta = Micros(report.delta.0.saturating_add(delta.0));
                    "adjusted".to_string()
                }
                RerateOutcome::Refused { reason } => {
                    report.refused += 1;
                    format!("refused: {reason}")
                }
                // Changed by someone else between the read and the write.
                RerateOutcome::Unchanged => {
                    report.unchanged += 1;
                    continue;
                }
                RerateOutcome::PlanPriced | RerateOutcome::Missing => {
                    report.plan_priced += 1;
                    continue;
                }
            };
            if report.changes.len() < MAX_LISTED {
                report.changes.push(Change {
                    event_key: p.event_key.clone(),
                    old: *old,
                    new: p.cost,
                    status,
                });
            }
        }
    }
    Ok(report)
}
