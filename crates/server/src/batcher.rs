//! The per-tenant micro-batcher of call ends: thousands of end events a second become a few
//! transactions a second. One task per tenant takes end events from a bounded queue and
//! flushes them as one pipeline batch when it holds `max_batch` of them or when the oldest has
//! waited `flush`, whichever comes first; while a batch commits, the next one gathers. A full
//! queue refuses new events (503, retry) rather than letting latency grow without bound.
//!
//! Per batch: one read of the recorded calls, then one charging transaction (the pipeline's,
//! which dead-letters a batch the database does not take) that also closes the calls; then
//! each event's request is answered with its own record's outcome.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use toll_ingest::pipeline::feed::{Fed, feed};
use toll_ingest::pipeline::{Item, ItemOutcome, Origin, Pipeline};
use toll_store::Store;
use toll_store::open_calls::{CallClose, CallStatus};

use crate::calls::{CallEnd, EndReply, usage_seconds};
use crate::error::{ApiError, DeadLetters};
use crate::metrics::Histogram;

/// The reader name kept with the suspense items of call events (they keep their JSON form).
pub const CALL_EVENTS_READER: &str = "http-call-events";

/// One end event and where its answer goes.
#[derive(Debug)]
pub(crate) struct EndJob {
    pub end: CallEnd,
    pub reply: oneshot::Sender<Result<EndReply, ApiError>>,
    /// When its request arrived: the latency histogram measures from here.
    pub received: Instant,
}

pub(crate) struct Context {
    pub store: Store,
    pub pipeline: Arc<Pipeline>,
    pub dead_letter_dir: PathBuf,
    pub max_batch: usize,
    pub flush: Duration,
    pub queue: usize,
    pub latency: Arc<Histogram>,
}

/// Starts a tenant's batcher: its queue and its task (which ends once every sender is gone
/// and the queue is empty).
pub(crate) fn start(ctx: Context) -> (mpsc::Sender<EndJob>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(ctx.queue);
    (tx, tokio::spawn(run(ctx, rx)))
}

async fn run(ctx: Context, mut rx: mpsc::Receiver<EndJob>) {
    while let Some(first) = rx.recv().await {
        // The oldest event waits at most `flush` for company; under load the queue already
        // holds a batch and nothing waits.
        let deadline = tokio::time::Instant::from_std(first.received + ctx.flush);
        let mut jobs = Vec::with_capacity(ctx.max_batch.min(1024));
        jobs.push(first);
        while jobs.len() < ctx.max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    jobs.push(j);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(j)) => jobs.push(j),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&ctx, jobs).await;
    }
}

async fn flush(ctx: &Context, jobs: Vec<EndJob>) {
    let tenant = ctx.pipeline.charger().tenant().id;
    let keys: Vec<(String, String)> = jobs
        .iter()
        .map(|j| (j.end.source.clone(), j.end.call_id.clone()))
        .collect();
    let calls = match ctx.store.calls(tenant, &keys).await {
        Ok(c) => c,
        Err(e) => {
            let msg = e.to_string();
            for j in jobs {
                answer(ctx, j, Err(ApiError::Unavailable(msg.clone())));
            }
            return;
        }
    };
    let mut answers: Vec<Option<Result<EndReply, ApiError>>> = Vec::with_capacity(jobs.len());
    let mut items = Vec::with_capacity(jobs.len());
    // For each item, the job it came from and its billable seconds.
    let mut owners: Vec<(usize, i64)> = Vec::with_capacity(jobs.len());
    let mut to_close: Vec<(String, String)> = Vec::new();
    for (i, (j, key)) in jobs.iter().zip(&keys).enumerate() {
        let call = calls.get(key);
        match j.end.record(call) {
            Ok(cdr) => {
                owners.push((i, usage_seconds(cdr.usage)));
                if call.is_some_and(|c| c.status == CallStatus::Open) {
                    to_close.push(key.clone());
                    items.push(Item::closing(
                        cdr,
                        CallClose {
                            source: key.0.clone(),
                            call_id: key.1.clone(),
                            status: CallStatus::Ended,
                        },
                    ));
                } else {
                    items.push(Item::new(Ok(cdr)));
                }
                answers.push(None);
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    if !items.is_empty() {
        let origin = Origin {
            reader: CALL_EVENTS_READER.to_string(),
            source: keys.first().map(|k| k.0.clone()).unwrap_or_default(),
            import_id: None,
        };
        let n = items.len();
        // A charged call is closed by its charging transaction. One kept in a dead letter
        // (charged on replay) is closed here, else the sweeper would charge the maximum; if
        // that fails the sweeper later finds the call charged already (a duplicate). One
        // neither charged nor kept stays open for the client's retry.
        let outcomes: Vec<Result<ItemOutcome, ApiError>> = match feed(
            &ctx.pipeline,
            &ctx.dead_letter_dir,
            items,
            &origin,
        )
        .await
        {
            Ok(Fed::Committed(_, each)) => each.into_iter().map(Ok).collect(),
            Ok(Fed::DeadLettered(d)) => {
                if let Err(e) = ctx
                    .store
                    .close_calls(tenant, &to_close, CallStatus::Ended)
                    .await
                {
                    tracing::warn!(error = %e, calls = to_close.len(), "dead-lettered calls not marked ended");
                }
                (0..n)
                    .map(|_| {
                        Err(ApiError::DeadLettered(Box::new(DeadLetters {
                            records: d.records,
                            paths: vec![d.path.clone()],
                            error: d.error.to_string(),
                            report: None,
                        })))
                    })
                    .collect()
            }
            Err(e) => {
                let msg = e.to_string();
                (0..n)
                    .map(|_| Err(ApiError::NotStored(msg.clone())))
                    .collect()
            }
        };
        for ((i, secs), o) in owners.into_iter().zip(outcomes) {
            let key = keys.get(i).cloned().unwrap_or_default();
            let started = calls.contains_key(&key);
            if let Some(slot) = answers.get_mut(i) {
                *slot = Some(o.map(|outcome| EndReply {
                    source: key.0,
                    call_id: key.1,
                    outcome,
                    usage_seconds: secs,
                    started,
                }));
            }
        }
    }
    for (j, a) in jobs.into_iter().zip(answers) {
        answer(
            ctx,
            j,
            a.unwrap_or_else(|| Err(ApiError::NotStored("no outcome for the call".into()))),
        );
    }
}

fn answer(ctx: &Context, job: EndJob, result: Result<EndReply, ApiError>) {
    ctx.latency.observe(job.received.elapsed());
    // The client may have gone; its call is charged all the same.
    let _ = job.reply.send(result);
}
