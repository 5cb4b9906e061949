//! NATS JetStream: the publisher and the worker that consumes a tenant's partitions.
//!
//! **Publishing.** [`Publisher`] sends one [`CdrJson`](crate::pipeline::record::CdrJson) per
//! message to `{prefix}.{tenant}.{partition}`, the partition chosen by the paying line
//! ([`super::partition_of`]). Publish acknowledgements are awaited in windows, so a file is
//! published at the stream's speed and nothing counts as published before the stream stored it.
//!
//! **Consuming.** A [`Worker`] runs the pipeline over a tenant's stream. Each partition has its
//! own durable pull consumer `toll-p{n}` (filtered to its subject), and a partition is consumed
//! by one worker at a time: the worker holds the partition's lock in the database
//! ([`toll_store::partition_locks`]) for as long as it consumes it. Workers count each other
//! and each takes at most its fair share (`ceil(P / workers)`), handing back extra partitions
//! after their batch in hand; free partitions (a worker died, or left) are picked up at the
//! next rebalance tick.
//!
//! A partition is consumed in batches: up to `batch` messages or whatever arrived within
//! `max_wait`, run through [`feed`] (the pipeline; a batch the database did not
//! take after its retries is written as a dead letter), and only then every message of the
//! batch is acknowledged. A message that is not a CDR is not dropped: it becomes a suspense
//! item (a parse error with its raw bytes) and is acknowledged with its batch. A batch that
//! could be neither committed nor dead-lettered is kept in hand and tried again, never
//! acknowledged, so it is delivered again if the worker stops.
//!
//! **Order.** Within a partition messages come in stream order and batches run one after the
//! other, so a line's records are charged in publish order. When a worker takes a partition
//! over, it first recreates the partition's consumer to start at the first unacknowledged
//! message (work-queue streams keep only those; on a limits stream from the consumer's ack
//! floor): the records a dead owner had in hand come again *before* anything newer, as
//! duplicates if it had committed them (the event key makes them so) or charged now if not.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use async_nats;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use toll_store::{Store, StoreError};

use super::{
    NameError, check_partitions, check_prefix, check_token, decode, encode, origin, partition_of,
    paying_line, subject, tenant_subjects,
};
use crate::cdr::Cdr;
use crate::pipeline::feed::{Fed, feed};
use crate::pipeline::rating::Payer;
use crate::pipeline::{Origin, Pipeline};

/// Why publishing or consuming stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("NATS: {0}")]
    Nats(String),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("record as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    #[error(
        "stream {0:?} has interest retention: deleting a consumer would delete its messages; use a work-queue or limits stream"
    )]
    Retention(String),
}

fn nats(e: impl std::fmt::Display) -> StreamError {
    StreamError::Nats(e.to_string())
}

/// Connects to NATS (`nats://host:4222`).
pub async fn connect(url: &str) -> Result<async_nats::Client, StreamError> {
    async_nats::connect(url).await.map_err(nats)
}

/// The tenant's stream: created when missing (file storage, work-queue retention: a message
/// is removed once acknowledged), capturing `{prefix}.{tenant}.*`. An existing stream is used
/// as it is.
pub async fn ensure_stream(
    js: &async_nats::jetstream::Context,
    name: &str,
    prefix: &str,
    tenant: &str,
) -> Result<stream::Stream, StreamError> {
    check_token("stream", name)?;
    check_prefix(prefix)?;
    check_token("tenant", tenant)?;
    js.get_or_create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![tenant_subjects(prefix, tenant)],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(nats)
}

/// Publish acknowledgements awaited at once, at most.
const PUBLISH_WINDOW: usize = 2_000;

/// Publishes records of one tenant to its partitions.
pub struct Publisher {
    js: async_nats::jetstream::Context,
    prefix: String,
    tenant: String,
    partitions: u32,
    payer: Payer,
    pending: VecDeque<PublishAckFuture>,
    published: u64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("prefix", &self.prefix)
            .field("tenant", &self.tenant)
            .field("partitions", &self.partitions)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

impl Publisher {
    pub fn new(
        js: async_nats::jetstream::Context,
        prefix: &str,
        tenant: &str,
        partitions: u32,
        payer: Payer,
    ) -> Result<Publisher, StreamError> {
        check_prefix(prefix)?;
        check_token("tenant", tenant)?;
        check_partitions(partitions)?;
        Ok(Publisher {
            js,
            prefix: prefix.to_string(),
            tenant: tenant.to_string(),
            partitions,
            payer,
            pending: VecDeque::new(),
            published: 0,
        })
    }

    /// Publishes one record to its line's partition; returns the partition.
    pub async fn publish(&mut self, cdr: &Cdr) -> Result<u32, StreamError> {
        let p = partition_of(paying_line(cdr, self.payer), self.partitions);
        self.publish_raw(p, encode(cdr)?).await?;
        Ok(p)
    }

    /// Publishes any bytes to a partition (what a misbehaving producer might send).
    pub async fn publish_raw(
        &mut self,
        partition: u32,
        payload: Vec<u8>,
    ) -> Result<(), StreamError> {
        let ack = self
            .js
            .publish(
                subject(&self.prefix, &self.tenant, partition),
                payload.into(),
            )
            .await
            .map_err(nats)?;
        self.pending.push_back(ack);
        if self.pending.len() >= PUBLISH_WINDOW {
            self.settle(PUBLISH_WINDOW / 2).await?;
        }
        Ok(())
    }

    async fn settle(&mut self, keep: usize) -> Result<(), StreamError> {
        while self.pending.len() > keep {
            if let Some(ack) = self.pending.pop_front() {
                ack.await.map_err(nats)?;
                self.published += 1;
            }
        }
        Ok(())
    }

    /// Waits until the stream stored everything sent; returns the count published so far.
    pub async fn flush(&mut self) -> Result<u64, StreamError> {
        self.settle(0).await?;
        Ok(self.published)
    }
}

/// How a worker consumes.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub stream: String,
    pub prefix: String,
    pub partitions: u32,
    /// Most messages per batch (one pipeline batch, one transaction).
    pub batch: usize,
    /// How long a pull waits for a batch to fill.
    pub max_wait: Duration,
    /// How long the server waits for an acknowledgement before delivering again; longer than
    /// a batch with all its retries.
    pub ack_wait: Duration,
    /// How often partitions are rebalanced and the locks checked.
    pub rebalance: Duration,
    pub dead_letter_dir: PathBuf,
}

impl WorkerConfig {
    pub fn new(stream: &str, dead_letter_dir: PathBuf) -> WorkerConfig {
        WorkerConfig {
            stream: stream.to_string(),
            prefix: super::DEFAULT_PREFIX.to_string(),
            partitions: super::DEFAULT_PARTITIONS,
            batch: 1_000,
            max_wait: Duration::from_millis(50),
            ack_wait: Duration::from_secs(120),
            rebalance: Duration::from_secs(2),
            dead_letter_dir,
        }
    }
}

/// What a worker did so far.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub batches: AtomicU64,
    pub messages: AtomicU64,
    pub dead_letters: AtomicU64,
    /// Partitions taken over and handed back.
    pub acquired: AtomicU64,
    pub released: AtomicU64,
    /// The partitions consumed now.
    pub owned: std::sync::Mutex<BTreeSet<u32>>,
}

impl WorkerStats {
    fn own(&self, p: u32, yes: bool) {
        if let Ok(mut o) = self.owned.lock() {
            if yes {
                o.insert(p);
            } else {
                o.remove(&p);
            }
        }
    }

    pub fn owned(&self) -> BTreeSet<u32> {
        self.owned.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

/// A worker: consumes its share of a tenant's partitions through the pipeline until told to
/// stop.
pub struct Worker {
    client: async_nats::Client,
    pipeline: Arc<Pipeline>,
    store: Store,
    config: WorkerConfig,
    stats: Arc<WorkerStats>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What every partition task of a worker shares.
struct Ctx {
    client: async_nats::Client,
    stream: stream::Stream,
    pipeline: Arc<Pipeline>,
    config: WorkerConfig,
    tenant: String,
    origin: Origin,
    stats: Arc<WorkerStats>,
}

impl Worker {
    pub fn new(
        client: async_nats::Client,
        pipeline: Arc<Pipeline>,
        store: Store,
        config: WorkerConfig,
    ) -> Worker {
        Worker {
            client,
            pipeline,
            store,
            config,
            stats: Arc::new(WorkerStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<WorkerStats> {
        Arc::clone(&self.stats)
    }

    /// Consumes until `shutdown` turns true: then every partition finishes and acknowledges
    /// its batch in hand, the locks are released, and this returns. Dropping the future instead
    /// (a crash) leaves the batches in hand unacknowledged: they are delivered again.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), StreamError> {
        let cfg = &self.config;
        check_partitions(cfg.partitions)?;
        if cfg.batch == 0 || cfg.batch > toll_store::charging::MAX_BATCH {
            return Err(StoreError::invalid("batch", "1..=50000").into());
        }
        let tenant = self.pipeline.charger().tenant().slug.clone();
        let js = async_nats::jetstream::new(self.client.clone());
        let stream = ensure_stream(&js, &cfg.stream, &cfg.prefix, &tenant).await?;
        let ctx = Arc::new(Ctx {
            client: self.client.clone(),
            stream,
            pipeline: Arc::clone(&self.pipeline),
            config: cfg.clone(),
            origin: origin(&cfg.stream),
            tenant: tenant.clone(),
            stats: Arc::clone(&self.stats),
        });
        let scope = format!("{}/{}/{}", cfg.stream, cfg.prefix, tenant);
        let mut locks = self.store.partition_locks(&scope).await?;
        locks.join().await?;
        let mut tasks: JoinSet<(u32, Result<(), StreamError>)> = JoinSet::new();
        // Running partitions and their stop signals; those told to stop are finishing.
        let mut running: HashMap<u32, watch::Sender<bool>> = HashMap::new();
        let mut stopping: BTreeSet<u32> = BTreeSet::new();
        let mut tick = tokio::time::interval(cfg.rebalance);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut joined = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    let (p, result) = match done {
                        Ok(x) => x,
                        // A panicked or cancelled task: find which one is gone.
                        Err(_) => match running.keys().copied().find(|p| {
                            running.get(p).is_some_and(watch::Sender::is_closed)
                        }) {
                            Some(p) => (p, Ok(())),
                            None => continue,
                        },
                    };
                    running.remove(&p);
                    stopping.remove(&p);
                    self.stats.own(p, false);
                    if let Err(e) = result {
                        eprintln!("warning: partition {p} of {}: {e}; handed back", cfg.stream);
                    }
                    locks.release(p).await.ok();
                    self.stats.released.fetch_add(1, Ordering::Relaxed);
                }
                _ = tick.tick() => {
                    if locks.check().await.is_err() {
                        eprintln!("warning: the partition locks were lost; stopping every partition");
                        for (p, stop) in &running {
                            let _ = stop.send(true);
                            stopping.insert(*p);
                        }
                        joined = false;
                    }
                    if !joined {
                        // Not before the old partitions stopped: they may still be mid-batch.
                        if !running.is_empty() {
                            continue;
                        }
                        match locks.join().await {
                            Ok(()) => joined = true,
                            Err(e) => {
                                eprintln!("warning: cannot rejoin: {e}");
                                continue;
                            }
                        }
                    }
                    let members = match locks.members().await {
                        Ok(n) => n,
                        Err(e) => {
                            eprintln!("warning: counting workers: {e}");
                            continue;
                        }
                    };
                    let target = cfg.partitions.div_ceil(members) as usize;
                    let active: Vec<u32> = running
                        .keys()
                        .copied()
                        .filter(|p| !stopping.contains(p))
                        .collect();
                    if active.len() > target {
                        let mut extra = active.clone();
                        extra.sort_unstable();
                        for p in extra.into_iter().rev().take(active.len() - target) {
                            if let Some(stop) = running.get(&p) {
                                let _ = stop.send(true);
                                stopping.insert(p);
                            }
                        }
                    } else {
                        let mut have = active.len();
                        for p in 0..cfg.partitions {
                            if have >= target {
                                break;
                            }
                            if running.contains_key(&p) {
                                continue;
                            }
                            match locks.try_acquire(p).await {
                                Ok(true) => {
                                    let (tx, rx) = watch::channel(false);
                                    running.insert(p, tx);
                                    self.stats.own(p, true);
                                    self.stats.acquired.fetch_add(1, Ordering::Relaxed);
                                    let ctx = Arc::clone(&ctx);
                                    tasks.spawn(async move { (p, consume(ctx, p, rx).await) });
                                    have += 1;
                                }
                                Ok(false) => {}
                                Err(e) => {
                                    eprintln!("warning: partition {p} lock: {e}");
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        // Graceful stop: each partition finishes and acknowledges its batch in hand.
        for stop in running.values() {
            let _ = stop.send(true);
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok((p, Err(e))) = done {
                eprintln!("warning: partition {p} of {}: {e}", cfg.stream);
            }
        }
        for p in running.keys() {
            self.stats.own(*p, false);
        }
        locks.close().await;
        self.client.flush().await.map_err(nats)?;
        Ok(())
    }
}

/// The partition's consumer, recreated to start at its first unacknowledged message.
async fn take_over(ctx: &Ctx, p: u32) -> Result<PullConsumer, StreamError> {
    let name = format!("toll-p{p}");
    let info = ctx.stream.get_info().await.map_err(nats)?;
    let deliver_policy = match info.config.retention {
        // Acknowledged messages are gone: "all" is every unacknowledged one, in order.
        RetentionPolicy::WorkQueue => DeliverPolicy::All,
        RetentionPolicy::Limits => match ctx.stream.consumer_info(&name).await {
            Ok(ci) if ci.ack_floor.stream_sequence > 0 => DeliverPolicy::ByStartSequence {
                start_sequence: ci.ack_floor.stream_sequence + 1,
            },
            _ => DeliverPolicy::All,
        },
        RetentionPolicy::Interest => return Err(StreamError::Retention(info.config.name)),
    };
    // Not there is fine; any other failure shows up when creating.
    let _ = ctx.stream.delete_consumer(&name).await;
    let max_ack_pending = i64::try_from(ctx.config.batch.saturating_mul(2)).unwrap_or(i64::MAX);
    ctx.stream
        .create_consumer(pull::Config {
            durable_name: Some(name),
            filter_subject: subject(&ctx.config.prefix, &ctx.tenant, p),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ctx.config.ack_wait,
            deliver_policy,
            max_ack_pending,
            ..Default::default()
        })
        .await
        .map_err(nats)
}

/// Consumes one partition until told to stop.
async fn consume(ctx: Arc<Ctx>, p: u32, stop: watch::Receiver<bool>) -> Result<(), StreamError> {
    let consumer = take_over(&ctx, p).await?;
    let cfg = &ctx.config;
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        let mut batch = match consumer
            .batch()
            .max_messages(cfg.batch)
            .expires(cfg.max_wait)
            .messages()
            .await
        {
            Ok(b) => b,
            Err(e) => {
                eprintln!("warning: partition {p}: pull: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut messages = Vec::with_capacity(cfg.batch);
        while let Some(m) = batch.next().await {
            match m {
                Ok(m) => messages.push(m),
                Err(e) => {
                    eprintln!("warning: partition {p}: {e}");
                    break;
                }
            }
        }
        if messages.is_empty() {
            continue;
        }
        let mut items = messages
            .iter()
            .map(|m| {
                let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
                decode(&m.payload, seq)
            })
            .collect::<Vec<_>>();
        let mut wait = Duration::from_secs(1);
        loop {
            match feed(&ctx.pipeline, &cfg.dead_letter_dir, items, &ctx.origin).await {
                Ok(Fed::Committed(..)) => break,
                Ok(Fed::DeadLettered(d)) => {
                    ctx.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "warning: partition {p}: a batch of {} records failed after {} attempts ({}); kept in {}",
                        d.records,
                        d.attempts,
                        d.error,
                        d.path.display()
                    );
                    break;
                }
                Err(failed) => {
                    eprintln!(
                        "warning: partition {p}: {failed}; the batch is kept and tried again"
                    );
                    if *stop.borrow() {
                        // Not acknowledged: delivered again to whoever takes the partition.
                        return Ok(());
                    }
                    items = failed.items;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
        // Committed or durably dead-lettered: now, and only now, acknowledged.
        for m in &messages {
            m.ack().await.map_err(nats)?;
        }
        ctx.client.flush().await.map_err(nats)?;
        ctx.stats.batches.fetch_add(1, Ordering::Relaxed);
        ctx.stats
            .messages
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
    }
}
