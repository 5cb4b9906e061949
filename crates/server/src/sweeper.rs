//! The sweeper: calls whose end never came are closed and charged for the maximum call
//! duration once they have been open that long (seed 001). Their CDRs are marked `swept`.
//!
//! A swept call is charged under the same key an end would have used (`source/call_id`), so a
//! late real end is a duplicate, a second sweep finds nothing open, and a call that was
//! charged by its end but not marked closed (a crash between the two) is charged nothing more.

use std::time::Duration;

use jiff::Timestamp;
use tokio::task::JoinHandle;
use toll_ingest::pipeline::feed::{Fed, feed};
use toll_ingest::pipeline::{Item, Origin};
use toll_store::StoreError;
use toll_store::open_calls::{CallClose, CallStatus};

use crate::batcher::CALL_EVENTS_READER;
use crate::calls::swept_record;
use crate::error::ApiError;
use crate::state::AppState;

/// Calls per sweeping batch.
const SWEEP_BATCH: usize = 5_000;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Calls closed as swept.
    pub calls: u64,
    pub charged: u64,
    /// Charged before (by their end, before a crash closed them).
    pub duplicate: u64,
    /// In the suspense queue (unknown line, insufficient balance, …).
    pub suspended: u64,
    /// Kept in dead letters (the database did not take them).
    pub dead_lettered: u64,
}

/// Closes and charges every call of every tenant open since before `now` less the maximum
/// call duration.
pub async fn sweep(state: &AppState, now: Timestamp) -> Result<SweepReport, ApiError> {
    let max = state.config().max_call_duration;
    let max_ms = i64::try_from(max.as_millis()).unwrap_or(i64::MAX);
    let cutoff = now.as_millisecond().saturating_sub(max_ms);
    let mut out = SweepReport::default();
    for slug in state.store().tenants_with_open_calls().await? {
        let ti = state.tenant(&slug).await?;
        let t = ti.tenant.id;
        loop {
            let calls = state.store().expired_calls(t, cutoff, SWEEP_BATCH).await?;
            let Some(first) = calls.first() else { break };
            let origin = Origin {
                reader: CALL_EVENTS_READER.to_string(),
                source: first.source.clone(),
                import_id: None,
            };
            let items = calls
                .iter()
                .map(|c| {
                    let closes = CallClose {
                        source: c.source.clone(),
                        call_id: c.call_id.clone(),
                        status: CallStatus::Swept,
                    };
                    swept_record(c, max).map(|r| Item::closing(r, closes))
                })
                .collect::<Result<Vec<Item>, StoreError>>()?;
            match feed(
                &ti.pipeline,
                &state.config().dead_letter_dir,
                items,
                &origin,
            )
            .await
            .map_err(Box::new)?
            {
                Fed::Committed(r, _) => {
                    out.charged += r.charged;
                    out.duplicate += r.duplicate;
                    out.suspended += r.suspended;
                    ti.swept
                        .fetch_add(r.charged, std::sync::atomic::Ordering::Relaxed);
                }
                Fed::DeadLettered(d) => {
                    tracing::warn!(records = d.records, path = %d.path.display(), "swept calls dead-lettered");
                    out.dead_lettered += d.records as u64;
                    // Closed here, the charging transaction that would have closed them having
                    // failed: the letter charges them on replay.
                    let keys: Vec<(String, String)> = calls
                        .iter()
                        .map(|c| (c.source.clone(), c.call_id.clone()))
                        .collect();
                    state
                        .store()
                        .close_calls(t, &keys, CallStatus::Swept)
                        .await?;
                }
            }
            out.calls += calls.len() as u64;
            if calls.len() < SWEEP_BATCH {
                break;
            }
        }
    }
    Ok(out)
}

/// Runs [`sweep`] every `interval` until the server stops.
pub(crate) fn spawn(state: AppState, interval: Duration) -> JoinHandle<()> {
    let mut stopping = state.stopping();
    tokio::spawn(async move {
        let interval = interval.max(Duration::from_millis(10));
        // The first sweep one interval after the start, not at once: a server starting
        // takes its requests first.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => break,
            }
            if *stopping.borrow() {
                break;
            }
            match sweep(&state, Timestamp::now()).await {
                Ok(r) if r.calls > 0 => tracing::info!(?r, "swept calls that never ended"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweep failed; retrying at the next interval"),
            }
        }
    })
}
