//! The billing jobs the server runs by itself, once per tenant-local day (seed 001: charges
//! are summed overnight and bills made asynchronously at month end):
//!
//! 1. the nightly sums: postings since the last pass, and the usage of the last
//!    [`NIGHTLY_WINDOW_DAYS`] days recomputed, which catches records that arrived late;
//! 2. the bill run of the previous month's label, which bills calendar months on the 1st and
//!    anniversary periods on the day after they end (drafts for review, or finalized invoices,
//!    as the operator chose).
//!
//! Both are idempotent — a run adds only what is missing and an account gets one invoice per
//! period — so a restart that forgets which days were done, or several servers sharing one
//! database, repeat work but never bill twice.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use tokio::task::JoinHandle;
use toll_billing::PeriodLabel;
use toll_store::billing::run::{BillRunOptions, BillRunSummary, DEFAULT_BATCH};
use toll_store::billing::sums::NIGHTLY_WINDOW_DAYS;
use toll_store::{Store, StoreError, Tenant, TenantId};

use crate::state::AppState;

/// What the scheduled bill run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoBill {
    /// No scheduled bill run (the nightly sums still run).
    Off,
    /// Draft invoices, finalized by an operator after review.
    Draft,
    /// Finalized (numbered, posted) invoices.
    Finalize,
}

impl std::str::FromStr for AutoBill {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(AutoBill::Off),
            "draft" => Ok(AutoBill::Draft),
            "finalize" => Ok(AutoBill::Finalize),
            other => Err(format!("{other:?}: expected off, draft or finalize")),
        }
    }
}

/// What one tenant's daily jobs did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DailyReport {
    pub tenant: String,
    pub day: Date,
    pub days_summed: u64,
    pub bill_run: Option<BillRunSummary>,
}

/// The tenant-local date at `now`.
fn local_today(t: &Tenant, now: Timestamp) -> Result<Date, StoreError> {
    Ok(now.to_zoned(t.zone()?).date())
}

/// Runs the daily jobs of every tenant whose local day has moved on since `done` says they
/// last ran, and records the day in `done`. A tenant whose jobs fail is retried at the next
/// call; the others go on.
pub async fn run_due(
    store: &Store,
    now: Timestamp,
    auto: AutoBill,
    done: &mut HashMap<TenantId, Date>,
) -> Result<Vec<DailyReport>, StoreError> {
    let mut out = Vec::new();
    for t in store.tenants().await? {
        let today = local_today(&t, now)?;
        if done.get(&t.id).is_some_and(|d| *d >= today) {
            continue;
        }
        match daily(store, &t, today, auto).await {
            Ok(r) => {
                done.insert(t.id, today);
                out.push(r);
            }
            Err(e) => {
                tracing::warn!(tenant = %t.slug, error = %e, "daily billing jobs failed; retrying at the next tick");
            }
        }
    }
    Ok(out)
}

/// One tenant's jobs for `today` (tenant-local).
pub async fn daily(
    store: &Store,
    t: &Tenant,
    today: Date,
    auto: AutoBill,
) -> Result<DailyReport, StoreError> {
    let bad = |e: jiff::Error| StoreError::invalid("day", e.to_string());
    let yesterday = today.yesterday().map_err(bad)?;
    let from = yesterday
        .checked_sub(jiff::Span::new().days(i64::from(NIGHTLY_WINDOW_DAYS - 1)))
        .map_err(bad)?;
    let days_summed = store.sum_days(t, from, yesterday).await?;
    let bill_run = match auto {
        AutoBill::Off => None,
        AutoBill::Draft | AutoBill::Finalize => {
            let label = PeriodLabel::of(today)
                .previous()
                .map_err(|e| StoreError::invalid("period", e.to_string()))?;
            let opts = BillRunOptions {
                finalize: auto == AutoBill::Finalize,
                batch: DEFAULT_BATCH,
                today,
            };
            Some(store.bill_run(t, label, &opts, |_, _| {}).await?)
        }
    };
    Ok(DailyReport {
        tenant: t.slug.clone(),
        day: today,
        days_summed,
        bill_run,
    })
}

/// Runs [`run_due`] every `interval` until the server stops.
pub(crate) fn spawn(state: AppState, interval: Duration, auto: AutoBill) -> JoinHandle<()> {
    let mut stopping = state.stopping();
    tokio::spawn(async move {
        let interval = interval.max(Duration::from_millis(10));
        // The first pass one interval after the start: a server starting takes its requests
        // first.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut done = HashMap::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => break,
            }
            if *stopping.borrow() {
                break;
            }
            match run_due(state.store(), Timestamp::now(), auto, &mut done).await {
                Ok(reports) => {
                    for r in reports {
                        match &r.bill_run {
                            Some(b) => tracing::info!(
                                tenant = %r.tenant, day = %r.day, days_summed = r.days_summed,
                                period = %b.period, created = b.created, existing = b.existing,
                                failed = b.failed.len(), "daily billing jobs ran"
                            ),
                            None => tracing::info!(
                                tenant = %r.tenant, day = %r.day, days_summed = r.days_summed,
                                "daily billing jobs ran"
                            ),
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "daily billing jobs failed; retrying at the next tick");
                }
            }
        }
    })
}
