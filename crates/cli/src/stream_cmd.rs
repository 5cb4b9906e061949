//! `toll worker` (consume a tenant's CDR stream from NATS JetStream through the pipeline) and
//! `toll stream publish` (send a CDR file's records to it, one message per record).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use toll_ingest::pipeline::rating::Payer;
use toll_ingest::stream::nats::{Publisher, Worker, WorkerConfig, connect, ensure_stream};
use toll_ingest::stream::{DEFAULT_PARTITIONS, DEFAULT_PREFIX};

use crate::admin::{DbArgs, open};
use crate::importfile::{PipelineArgs, build, reader_spec};

/// Where the stream is.
#[derive(Args, Debug, Clone)]
pub struct NatsArgs {
    /// The NATS server.
    #[arg(long, env = "TOLL_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// The JetStream stream (created when missing: work-queue retention, file storage).
    #[arg(long, env = "TOLL_NATS_STREAM")]
    pub stream: String,
    /// Partitions of the tenant's subjects; publishers and workers must agree.
    #[arg(long, default_value_t = DEFAULT_PARTITIONS)]
    pub partitions: u32,
    /// Subjects are `PREFIX.TENANT.PARTITION`.
    #[arg(long, default_value = DEFAULT_PREFIX)]
    pub subject_prefix: String,
}

#[derive(Args, Debug)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub nats: NatsArgs,
    /// How long a pull waits for a batch to fill (milliseconds).
    #[arg(long, default_value_t = 50)]
    pub max_wait_ms: u64,
    /// How often partitions are rebalanced between workers (milliseconds).
    #[arg(long, default_value_t = 2_000)]
    pub rebalance_ms: u64,
    /// Seconds before an unacknowledged message is delivered again.
    #[arg(long, default_value_t = 120)]
    pub ack_wait_secs: u64,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

#[derive(Subcommand, Debug)]
pub enum StreamCmd {
    /// Publish a CDR file's records to the tenant's stream, one message per record, each on
    /// its paying line's partition.
    Publish(PublishArgs),
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    /// A CDR file.
    pub file: PathBuf,
    /// asterisk, freeswitch, freeswitch-json, cgrates, or a mapping file (.toml).
    #[arg(long)]
    pub format: String,
    /// The feed's name (with the record's id, the dedup key). Default: the format's name.
    #[arg(long)]
    pub source: Option<String>,
    /// The switch's time zone (default: the tenant's, read from the database).
    #[arg(long)]
    pub zone: Option<String>,
    /// FreeSWITCH CSV template.
    #[arg(long)]
    pub template: Option<String>,
    /// The tenant (its slug).
    #[arg(long, env = "TOLL_TENANT")]
    pub tenant: String,
    /// Which party pays (decides the partition): caller or account.
    #[arg(long, value_parser = ["caller", "account"], default_value = "caller")]
    pub payer: String,
    #[command(flatten)]
    pub nats: NatsArgs,
}

/// What `toll stream publish` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PublishSummary {
    pub published: u64,
    /// Records the reader could not read (reported on stderr with their line), not published.
    pub unreadable: u64,
}

/// Publishes a file; records the reader cannot read are reported and not published.
pub async fn publish(db: &DbArgs, args: &PublishArgs) -> anyhow::Result<PublishSummary> {
    let zone = match &args.zone {
        Some(z) => z.clone(),
        None => {
            let store = open(db).await?;
            store.tenant(&args.tenant).await?.time_zone
        }
    };
    let mut spec = reader_spec(&args.format, args.template.clone(), &zone)?;
    let source = args
        .source
        .clone()
        .unwrap_or_else(|| spec.format.as_str().to_string());
    let client = connect(&args.nats.nats).await?;
    let js = toll_ingest::stream::nats::async_nats::jetstream::new(client.clone());
    ensure_stream(
        &js,
        &args.nats.stream,
        &args.nats.subject_prefix,
        &args.tenant,
    )
    .await?;
    let payer = if args.payer == "account" {
        Payer::Account
    } else {
        Payer::Caller
    };
    let mut publisher = Publisher::new(
        js,
        &args.nats.subject_prefix,
        &args.tenant,
        args.nats.partitions,
        payer,
    )?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    // Reading and parsing on their own thread, a chunk ahead of publishing.
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let stream = spec.open(file, &source)?;
        let mut chunk = Vec::with_capacity(1_000);
        for r in stream {
            chunk.push(r);
            if chunk.len() == 1_000 && tx.blocking_send(std::mem::take(&mut chunk)).is_err() {
                return Ok(());
            }
        }
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        Ok(())
    });
    let mut summary = PublishSummary::default();
    while let Some(chunk) = rx.recv().await {
        for r in chunk {
            match r {
                Ok(cdr) => {
                    publisher.publish(&cdr).await?;
                }
                Err(e) => {
                    summary.unreadable += 1;
                    eprintln!(
                        "{}:{}: {}{} (not published)",
                        args.file.display(),
                        e.line,
                        e.field
                            .as_deref()
                            .map(|f| format!("{f}: "))
                            .unwrap_or_default(),
                        e.kind
                    );
                }
            }
        }
    }
    reader.await.context("the reader thread failed")??;
    summary.published = publisher.flush().await?;
    client
        .flush()
        .await
        .map_err(|e| anyhow::anyhow!("NATS: {e}"))?;
    Ok(summary)
}

/// Runs a worker until SIGTERM or ctrl-c, then finishes the batches in hand, acknowledges
/// them and stops.
pub async fn worker(db: &DbArgs, args: &WorkerArgs) -> anyhow::Result<()> {
    let built = build(db, &args.pipeline).await?;
    let client = connect(&args.nats.nats).await?;
    let config = WorkerConfig {
        stream: args.nats.stream.clone(),
        prefix: args.nats.subject_prefix.clone(),
        partitions: args.nats.partitions,
        batch: args.pipeline.rules.batch,
        max_wait: Duration::from_millis(args.max_wait_ms.max(1)),
        ack_wait: Duration::from_secs(args.ack_wait_secs.max(1)),
        rebalance: Duration::from_millis(args.rebalance_ms.max(10)),
        dead_letter_dir: args.pipeline.rules.dead_letter_dir.clone(),
    };
    let pipeline = Arc::new(built.pipeline);
    let counters = pipeline.counters();
    let worker = Worker::new(client, Arc::clone(&pipeline), built.store.clone(), config);
    let stats = worker.stats();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        eprintln!("stopping: finishing the batches in hand");
        let _ = stop_tx.send(true);
    });
    eprintln!(
        "worker: tenant {} stream {} ({} partitions)",
        built.tenant.slug, args.nats.stream, args.nats.partitions
    );
    worker.run(stop_rx).await?;
    println!(
        "messages {} in {} batches; charged {}, duplicate {}, skipped {}, suspended {}; dead letters {}",
        stats.messages.load(Ordering::Relaxed),
        stats.batches.load(Ordering::Relaxed),
        counters.charged.load(Ordering::Relaxed),
        counters.duplicate.load(Ordering::Relaxed),
        counters.skipped.load(Ordering::Relaxed),
        counters.suspended.load(Ordering::Relaxed),
        stats.dead_letters.load(Ordering::Relaxed),
    );
    built.store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
