//! Streaming ingestion from NATS JetStream: throughput of 1 worker against 2 workers sharing a
//! stream and a PostgreSQL database.
//!
//! For each worker count: a fresh PostgreSQL schema with the import bench's set-up (10,000
//! lines on a plan with 100 free minutes, calls beyond them rated with the cn-demo tariff), a
//! fresh stream with `TOLL_BENCH_RECORDS` records (default 200,000) published before any
//! worker starts, then the workers — in this process, each with its own pipeline, database
//! pool and partition locks, built as `toll worker` builds them — timed from their start until
//! every record was charged. Needs `TOLL_BENCH_NATS_URL` (or `TOLL_TEST_NATS_URL`) and
//! `TOLL_BENCH_DATABASE_URL` (or `TOLL_TEST_DATABASE_URL`); says so and exits without them.
//! `TOLL_BENCH_BATCH` (default 5,000, as `toll worker`) and `TOLL_BENCH_PARTITIONS` (16)
//! change the shape.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::float_arithmetic
)]

#[path = "shared/bench_setup.rs"]
mod bench_setup;

use bench_setup::{env, number, setup};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use toll_cli::admin::DbArgs;
use toll_cli::importfile::{PipelineArgs, PipelineRules, build};
use toll_core::UsageKind;
use toll_ingest::pipeline::rating::Payer;
use toll_ingest::pipeline::record::CdrJson;
use toll_ingest::stream::nats::{Publisher, Worker, WorkerConfig, async_nats, ensure_stream};
use toll_store::Store;

/// The import bench's records, as the stream carries them.
fn records(n: usize, lines: usize) -> Vec<CdrJson> {
    let callees = [
        "01088886666",
        "13912345678",
        "02161234567",
        "0085212345678",
        "18600001111",
        "075512345678",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|k| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = k % 86_400;
            let day = 1 + k * 28 / n;
            let start = format!(
                "2026-11-{day:02}T{:02}:{:02}:{:02}+08:00",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            CdrJson {
                source: "pbx1".into(),
                record_id: format!("1795000000.{k}"),
                caller: number(x as usize % lines),
                callee: callees[(x >> 20) as usize % callees.len()].into(),
                start: start.clone(),
                answer: Some(start),
                end: None,
                kind: UsageKind::Voice,
                usage: format!("{}s", 1 + (x >> 32) % 600),
                disposition: "answered".into(),
                tenant: None,
                category: None,
                account: None,
                service: None,
                direction: None,
                call_id: None,
                extra: BTreeMap::new(),
                line: 0,
            }
        })
        .collect()
}

fn pipeline_args(batch: usize, tariff: &Path, dead: &Path) -> PipelineArgs {
    PipelineArgs {
        tenant: "acme".into(),
        rules: PipelineRules {
            tariff: Some(tariff.to_path_buf()),
            tariff_tenant: None,
            category: "call".into(),
            default_rate: None,
            payer: "caller".into(),
            min_duration: "1s".into(),
            keep_unanswered: false,
            internal_digits: None,
            batch,
            dead_letter_dir: dead.to_path_buf(),
            retries: 3,
        },
    }
}

#[allow(clippy::too_many_arguments)]
async fn run(
    workers: usize,
    nats_url: &str,
    pg_url: &str,
    data: &[CdrJson],
    lines: usize,
    batch: usize,
    partitions: u32,
    tariff: &Path,
    dead: &Path,
) -> f64 {
    let id = format!(
        "{}_{}_{workers}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    );
    let schema = format!("toll_bench_nats_{id}");
    let store = Store::connect_postgres_schema(pg_url, &schema)
        .await
        .unwrap();
    setup(&store, lines).await;
    let sep = if pg_url.contains('?') { '&' } else { '?' };
    let db = DbArgs {
        database: format!("{pg_url}{sep}options=-c%20search_path%3D{schema}"),
    };

    let client = async_nats::connect(nats_url).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let (stream, prefix) = (format!("TOLL_BENCH_{id}"), format!("toll_bench.{id}"));
    ensure_stream(&js, &stream, &prefix, "acme").await.unwrap();
    let mut publisher =
        Publisher::new(js.clone(), &prefix, "acme", partitions, Payer::Caller).unwrap();
    let started = Instant::now();
    for r in data {
        publisher
            .publish(&r.to_cdr(Vec::new()).unwrap())
            .await
            .unwrap();
    }
    let published = publisher.flush().await.unwrap();
    let publish_s = started.elapsed().as_secs_f64();
    assert_eq!(published as usize, data.len());

    let mut stops = Vec::new();
    let mut handles = Vec::new();
    let mut all_counters = Vec::new();
    let mut all_stats = Vec::new();
    let started = Instant::now();
    for _ in 0..workers {
        let built = build(&db, &pipeline_args(batch, tariff, dead))
            .await
            .unwrap();
        let pipeline = Arc::new(built.pipeline);
        all_counters.push(pipeline.counters());
        let mut cfg = WorkerConfig::new(&stream, dead.to_path_buf());
        cfg.prefix = prefix.clone();
        cfg.partitions = partitions;
        cfg.batch = batch;
        cfg.rebalance = Duration::from_millis(200);
        let w = Worker::new(client.clone(), pipeline, built.store, cfg);
        all_stats.push(w.stats());
        let (tx, rx) = tokio::sync::watch::channel(false);
        stops.push(tx);
        handles.push(tokio::spawn(w.run(rx)));
    }
    let done = |c: &[Arc<toll_ingest::pipeline::Counters>]| -> u64 {
        c.iter()
            .map(|c| c.read.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    while done(&all_counters) < data.len() as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    for s in &stops {
        s.send(true).unwrap();
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let charged: u64 = all_counters
        .iter()
        .map(|c| c.charged.load(Ordering::Relaxed))
        .sum();
    let suspended: u64 = all_counters
        .iter()
        .map(|c| c.suspended.load(Ordering::Relaxed))
        .sum();
    let per_worker: Vec<u64> = all_stats
        .iter()
        .map(|s| s.messages.load(Ordering::Relaxed))
        .collect();
    let (rows, _) = store
        .cdr_totals(store.tenant("acme").await.unwrap().id)
        .await
        .unwrap();
    println!(
        "{workers} worker(s): {:>8.0} events/s ({} records in {secs:.2} s; charged {charged}, suspended {suspended}, stored {rows}; messages per worker {per_worker:?}; publishing {:.0} msgs/s)",
        data.len() as f64 / secs,
        data.len(),
        data.len() as f64 / publish_s,
    );
    let _ = js.delete_stream(&stream).await;
    if let Store::Postgres(pool) = &store {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(pool)
        .await;
    }
    store.close().await;
    data.len() as f64 / secs
}

fn main() {
    let nats =
        std::env::var("TOLL_BENCH_NATS_URL").or_else(|_| std::env::var("TOLL_TEST_NATS_URL"));
    let pg = std::env::var("TOLL_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TOLL_TEST_DATABASE_URL"));
    let (Ok(nats), Ok(pg)) = (nats, pg) else {
        println!(
            "nats bench skipped: needs TOLL_BENCH_NATS_URL and TOLL_BENCH_DATABASE_URL (or the TOLL_TEST_ ones)"
        );
        return;
    };
    let n = env("TOLL_BENCH_RECORDS", 200_000);
    let lines = env("TOLL_BENCH_LINES", 10_000);
    let batch = env("TOLL_BENCH_BATCH", 5_000);
    let partitions = u32::try_from(env("TOLL_BENCH_PARTITIONS", 16)).unwrap();
    let tariff = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cn-demo/tariff.toml");
    let dir = tempfile::tempdir().unwrap();
    let data = records(n, lines);
    println!("{n} records from {lines} lines, batch {batch}, {partitions} partitions");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let one = rt.block_on(run(
        1,
        &nats,
        &pg,
        &data,
        lines,
        batch,
        partitions,
        &tariff,
        dir.path(),
    ));
    let two = rt.block_on(run(
        2,
        &nats,
        &pg,
        &data,
        lines,
        batch,
        partitions,
        &tariff,
        dir.path(),
    ));
    println!("2 workers / 1 worker: {:.2}×", two / one);
}
