#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Streaming ingestion from NATS JetStream end to end, on SQLite and (with
//! `TOLL_TEST_DATABASE_URL`) PostgreSQL: records published to a tenant's partitions are
//! charged once each by the workers — with duplicates and garbage in the stream, with two
//! workers sharing the stream and the database (each line's charges in publish order), with a
//! worker killed mid-stream and restarted, and with the same records also imported by file.
//!
//! Needs a NATS server with JetStream: `TOLL_TEST_NATS_URL` (CI: `nats://127.0.0.1:4222`);
//! without it every test says so and passes. Each test makes its own stream and subjects and
//! deletes the stream at the end, so runs never see each other's messages.

#[path = "../../store/tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use toll_core::{Currency, Micros, UsageKind};
use toll_ingest::Cleansing;
use toll_ingest::pipeline::rating::{DefaultRate, Payer, RatingContext};
use toll_ingest::pipeline::record::CdrJson;
use toll_ingest::pipeline::{Counters, Item, Origin, Pipeline, PipelineConfig, RetryPolicy};
use toll_ingest::stream::nats::async_nats;
use toll_ingest::stream::nats::{
    Publisher, StreamError, Worker, WorkerConfig, WorkerStats, ensure_stream,
};
use toll_store::accounts::AccountMode;
use toll_store::cdrs::CdrQuery;
use toll_store::charging::Charger;
use toll_store::suspense::SuspenseFilter;
use toll_store::{Store, Tenant};

static RUN: AtomicU32 = AtomicU32::new(0);

fn nats_url() -> Option<String> {
    let url = std::env::var("TOLL_TEST_NATS_URL").ok();
    if url.is_none() {
        eprintln!("skipped: TOLL_TEST_NATS_URL is not set (a NATS server with JetStream)");
    }
    url
}

/// A stream and subject prefix of this run only, deleted by [`Nats::finish`].
struct Nats {
    client: async_nats::Client,
    js: async_nats::jetstream::Context,
    stream: String,
    prefix: String,
}

impl Nats {
    async fn new(url: &str) -> Nats {
        let id = format!(
            "{}_{}_{}",
            std::process::id(),
            jiff::Timestamp::now().as_millisecond(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client.clone());
        Nats {
            client,
            js,
            stream: format!("TOLL_TEST_{id}"),
            prefix: format!("toll_test.{id}"),
        }
    }

    async fn publisher(&self, partitions: u32) -> Publisher {
        ensure_stream(&self.js, &self.stream, &self.prefix, TENANT)
            .await
            .unwrap();
        Publisher::new(
            self.js.clone(),
            &self.prefix,
            TENANT,
            partitions,
            Payer::Caller,
        )
        .unwrap()
    }

    /// Messages still in the (work-queue) stream: unacknowledged ones.
    async fn left(&self) -> u64 {
        let s = self.js.get_stream(&self.stream).await.unwrap();
        s.get_info().await.unwrap().state.messages
    }

    async fn finish(self) {
        let _ = self.js.delete_stream(&self.stream).await;
    }
}

const TENANT: &str = "acme";
const PRICE: &str = "0.30";

fn line(k: usize) -> String {
    format!("1380000{k:04}")
}

/// Record `i` of line `i % lines`: 1 to 3 whole minutes, so a record costs 0.30, 0.60 or 0.90.
fn record(i: usize, lines: usize) -> CdrJson {
    CdrJson {
        source: "pbx-bj".into(),
        record_id: format!("r{i:06}"),
        caller: line(i % lines),
        callee: "01088886666".into(),
        start: "2026-11-23T10:00:00+08:00".into(),
        answer: Some("2026-11-23T10:00:00+08:00".into()),
        end: None,
        kind: UsageKind::Voice,
        usage: format!("{}s", 60 * (i % 3 + 1)),
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
}

fn cost(i: usize) -> Micros {
    let price: Micros = PRICE.parse().unwrap();
    Micros(price.0 * (i % 3 + 1) as i64)
}

fn total(ids: impl IntoIterator<Item = usize>) -> Micros {
    Micros(ids.into_iter().map(|i| cost(i).0).sum())
}

async fn setup(s: &Store, lines: usize) -> Tenant {
    let t = s
        .create_tenant(TENANT, "Acme", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    s.create_customer(t.id, "c1", "张三").await.unwrap();
    for k in 0..lines {
        let a = format!("a{k}");
        s.create_account(t.id, "c1", &a, AccountMode::Prepaid)
            .await
            .unwrap();
        s.top_up(t.id, &a, "1000".parse().unwrap(), &format!("pay-{k}"), "")
            .await
            .unwrap();
        s.add_subscriber(t.id, &a, &line(k)).await.unwrap();
    }
    t
}

fn pipeline(s: &Store, t: &Tenant) -> Arc<Pipeline> {
    let charger = Charger::new(s.clone(), t.clone()).unwrap();
    Arc::new(Pipeline::new(
        charger,
        None,
        PipelineConfig {
            cleansing: Cleansing::default(),
            rating: RatingContext {
                tariff_tenant: TENANT.into(),
                category: "call".into(),
                default_rate: format!("voice={PRICE}").parse::<DefaultRate>().unwrap(),
                payer: Payer::Caller,
            },
            retry: RetryPolicy::default(),
        },
    ))
}

struct Running {
    handle: JoinHandle<Result<(), StreamError>>,
    stop: watch::Sender<bool>,
    stats: Arc<WorkerStats>,
    counters: Arc<Counters>,
}

impl Running {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(60), self.handle)
            .await
            .expect("the worker stops")
            .unwrap()
            .unwrap();
    }
}

fn start(
    n: &Nats,
    s: &Store,
    t: &Tenant,
    partitions: u32,
    batch: usize,
    dead: &std::path::Path,
) -> Running {
    let p = pipeline(s, t);
    let counters = p.counters();
    let mut cfg = WorkerConfig::new(&n.stream, dead.to_path_buf());
    cfg.prefix = n.prefix.clone();
    cfg.partitions = partitions;
    cfg.batch = batch;
    cfg.rebalance = Duration::from_millis(100);
    cfg.max_wait = Duration::from_millis(20);
    let w = Worker::new(n.client.clone(), p, s.clone(), cfg);
    let stats = w.stats();
    let (tx, rx) = watch::channel(false);
    Running {
        handle: tokio::spawn(w.run(rx)),
        stop: tx,
        stats,
        counters,
    }
}

async fn wait_for(s: &Store, t: &Tenant, cdrs: i64, suspense: i64, what: &str) {
    let started = Instant::now();
    loop {
        let (n, _) = s.cdr_totals(t.id).await.unwrap();
        let open: i64 = s
            .suspense_counts(t.id)
            .await
            .unwrap()
            .iter()
            .map(|c| c.1)
            .sum();
        if n == cdrs && open == suspense {
            return;
        }
        assert!(
            n <= cdrs,
            "{what}: {n} records charged, more than {cdrs} published"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what}: {n} of {cdrs} records charged, {open} of {suspense} suspended after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn balances_match(s: &Store, t: &Tenant, lines: usize, ids: &[usize], what: &str) {
    for k in 0..lines {
        let spent = total(ids.iter().copied().filter(|i| i % lines == k));
        let expected = Micros(1_000_000_000 - spent.0);
        let got = s.account(t.id, &format!("a{k}")).await.unwrap().balance;
        assert_eq!(got, expected, "{what}: balance of a{k}");
    }
    let report = s.verify_ledger(t.id).await.unwrap();
    assert!(report.is_intact(), "{what}: {report:?}");
}

fn items(records: &[CdrJson]) -> Vec<Item> {
    records
        .iter()
        .map(|r| Item::new(Ok(r.to_cdr(serde_json::to_vec(r).unwrap()).unwrap())))
        .collect()
}

/// (a) Duplicates and garbage in the stream: each record charged once, to the cent; the
/// garbage message waits in the suspense queue with its bytes; the stream is drained (every
/// message acknowledged).
#[tokio::test]
async fn published_records_are_charged_once_and_garbage_is_suspended() {
    let Some(url) = nats_url() else { return };
    for e in common::engines().await {
        let (s, what) = (&e.store, e.name);
        let n = Nats::new(&url).await;
        let lines = 10;
        let t = setup(s, lines).await;
        let count = 300;
        let records: Vec<CdrJson> = (0..count).map(|i| record(i, lines)).collect();
        let mut publisher = n.publisher(4).await;
        for r in &records {
            publisher
                .publish(&r.to_cdr(Vec::new()).unwrap())
                .await
                .unwrap();
        }
        // 30 records again, and one message that is no CDR at all.
        for r in records.iter().step_by(10) {
            publisher
                .publish(&r.to_cdr(Vec::new()).unwrap())
                .await
                .unwrap();
        }
        let garbage = b"\x00{not a cdr".to_vec();
        publisher.publish_raw(2, garbage.clone()).await.unwrap();
        assert_eq!(publisher.flush().await.unwrap(), 331);

        let dead = tempfile::tempdir().unwrap();
        let w = start(&n, s, &t, 4, 50, dead.path());
        wait_for(s, &t, count as i64, 1, what).await;
        let counters = Arc::clone(&w.counters);
        w.stop().await;

        let all: Vec<usize> = (0..count).collect();
        let (cdrs, amount) = s.cdr_totals(t.id).await.unwrap();
        assert_eq!(cdrs, count as i64, "{what}");
        assert_eq!(amount, total(all.clone()), "{what}");
        assert_eq!(amount, "180.00".parse().unwrap(), "{what}");
        assert_eq!(counters.charged.load(Ordering::Relaxed), 300, "{what}");
        assert_eq!(counters.duplicate.load(Ordering::Relaxed), 30, "{what}");
        assert_eq!(counters.parse_errors.load(Ordering::Relaxed), 1, "{what}");
        balances_match(s, &t, lines, &all, what).await;
        let queued = s
            .suspense_items(
                t.id,
                &SuspenseFilter {
                    status: Some("open".into()),
                    limit: 10,
                    ..SuspenseFilter::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(queued.len(), 1, "{what}");
        assert_eq!(queued[0].class, "parse_error", "{what}");
        assert_eq!(queued[0].raw_bytes, garbage, "{what}");
        assert_eq!(queued[0].source, format!("nats:{}", n.stream), "{what}");
        assert_eq!(n.left().await, 0, "{what}: every message acknowledged");
        assert!(
            dead.path()
                .read_dir()
                .map_or(true, |mut d| d.next().is_none())
        );
        n.finish().await;
    }
}

/// (b) Two workers on one stream and one database: each takes a share of the partitions,
/// every record is charged exactly once, and each line's charges (ledger sequence) follow the
/// order its records were published in.
#[tokio::test]
async fn two_workers_share_the_partitions_and_keep_each_lines_order() {
    let Some(url) = nats_url() else { return };
    for e in common::engines().await {
        let (s, what) = (&e.store, e.name);
        let n = Nats::new(&url).await;
        let lines = 20;
        let t = setup(s, lines).await;
        let partitions = 8;
        let dead = tempfile::tempdir().unwrap();
        // The stream first, then both workers, then wait until they split the partitions.
        let mut publisher = n.publisher(partitions).await;
        let w1 = start(&n, s, &t, partitions, 40, dead.path());
        let w2 = start(&n, s, &t, partitions, 40, dead.path());
        let started = Instant::now();
        loop {
            let (a, b) = (w1.stats.owned(), w2.stats.owned());
            if a.len() == 4 && b.len() == 4 && a.is_disjoint(&b) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{what}: partitions not shared: {a:?} / {b:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let count = 2_000;
        for i in 0..count {
            let r = record(i, lines);
            publisher
                .publish(&r.to_cdr(Vec::new()).unwrap())
                .await
                .unwrap();
        }
        publisher.flush().await.unwrap();
        wait_for(s, &t, count as i64, 0, what).await;
        let (m1, m2) = (
            w1.stats.messages.load(Ordering::Relaxed),
            w2.stats.messages.load(Ordering::Relaxed),
        );
        let charged = w1.counters.charged.load(Ordering::Relaxed)
            + w2.counters.charged.load(Ordering::Relaxed);
        w1.stop().await;
        w2.stop().await;
        assert!(
            m1 > 0 && m2 > 0,
            "{what}: both workers consumed ({m1}, {m2})"
        );
        assert_eq!(m1 + m2, count as u64, "{what}: each message consumed once");
        assert_eq!(charged, count as u64, "{what}");

        let all: Vec<usize> = (0..count).collect();
        assert_eq!(
            s.cdr_totals(t.id).await.unwrap(),
            (count as i64, total(all.clone())),
            "{what}"
        );
        balances_match(s, &t, lines, &all, what).await;
        // Per line: ledger sequence order is publish order (record ids ascend).
        let rows = s
            .cdrs(
                t.id,
                &CdrQuery {
                    from_ms: 0,
                    to_ms: i64::MAX,
                    limit: 10_000,
                    ..CdrQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), count);
        let mut by_line: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for r in rows {
            by_line
                .entry(r.caller.clone())
                .or_default()
                .push((r.ledger_seq.expect("money moved"), r.record_id));
        }
        assert_eq!(by_line.len(), lines);
        for (caller, mut charges) in by_line {
            charges.sort();
            let ids: Vec<&String> = charges.iter().map(|c| &c.1).collect();
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(
                ids, sorted,
                "{what}: charges of {caller} out of publish order"
            );
        }
        assert_eq!(n.left().await, 0, "{what}");
        n.finish().await;
    }
}

/// (c) A worker killed mid-stream (its task aborted: no graceful stop, batches in hand neither
/// finished nor acknowledged) and a new one started: nothing lost, nothing charged twice.
#[tokio::test]
async fn a_worker_killed_mid_stream_loses_nothing_and_charges_nothing_twice() {
    let Some(url) = nats_url() else { return };
    for e in common::engines().await {
        let (s, what) = (&e.store, e.name);
        let n = Nats::new(&url).await;
        let lines = 10;
        let t = setup(s, lines).await;
        let count = 3_000;
        let mut publisher = n.publisher(4).await;
        for i in 0..count {
            publisher
                .publish(&record(i, lines).to_cdr(Vec::new()).unwrap())
                .await
                .unwrap();
        }
        publisher.flush().await.unwrap();
        let dead = tempfile::tempdir().unwrap();
        let w = start(&n, s, &t, 4, 50, dead.path());
        let started = Instant::now();
        while w.counters.charged.load(Ordering::Relaxed) < 600 {
            assert!(started.elapsed() < Duration::from_secs(60), "{what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        w.handle.abort();
        assert!(w.handle.await.unwrap_err().is_cancelled());
        let (before, _) = s.cdr_totals(t.id).await.unwrap();
        assert!(
            before > 0 && before < count as i64,
            "{what}: killed mid-stream ({before})"
        );
        assert!(n.left().await > 0, "{what}");

        let w = start(&n, s, &t, 4, 50, dead.path());
        wait_for(s, &t, count as i64, 0, what).await;
        let again = w.counters.charged.load(Ordering::Relaxed) as i64;
        let duplicates = w.counters.duplicate.load(Ordering::Relaxed) as i64;
        w.stop().await;
        // A batch whose COMMIT was already sent when the task was aborted still commits, on
        // PostgreSQL possibly after `before` was read; the new worker then meets those records
        // again as duplicates (not acknowledged, so redelivered). It charges everything else.
        let late = count as i64 - before - again;
        assert!(
            (0..=duplicates).contains(&late),
            "{what}: {again} charged after the kill, {before} before it, {duplicates} duplicates"
        );
        let all: Vec<usize> = (0..count).collect();
        assert_eq!(
            s.cdr_totals(t.id).await.unwrap(),
            (count as i64, total(all.clone())),
            "{what}"
        );
        balances_match(s, &t, lines, &all, what).await;
        assert_eq!(n.left().await, 0, "{what}");
        n.finish().await;
    }
}

/// (d) The same records by file import and by stream: charged once, whichever came first.
#[tokio::test]
async fn records_imported_by_file_and_streamed_are_charged_once() {
    let Some(url) = nats_url() else { return };
    for e in common::engines().await {
        let (s, what) = (&e.store, e.name);
        let n = Nats::new(&url).await;
        let lines = 5;
        let t = setup(s, lines).await;
        let count = 200;
        let records: Vec<CdrJson> = (0..count).map(|i| record(i, lines)).collect();
        // The first 120 by the file path (the pipeline as `toll import` runs it).
        let file_origin = Origin {
            reader: r#"{"format":"cgrates","zone":"Asia/Shanghai"}"#.into(),
            source: "pbx-bj".into(),
            import_id: None,
        };
        let p = pipeline(s, &t);
        let r = p
            .process(items(&records[..120]), &file_origin)
            .await
            .unwrap();
        assert_eq!((r.charged, r.amount), (120, total(0..120)), "{what}");

        // All 200 by stream.
        let mut publisher = n.publisher(4).await;
        for r in &records {
            publisher
                .publish(&r.to_cdr(Vec::new()).unwrap())
                .await
                .unwrap();
        }
        publisher.flush().await.unwrap();
        let dead = tempfile::tempdir().unwrap();
        let w = start(&n, s, &t, 4, 50, dead.path());
        wait_for(s, &t, count as i64, 0, what).await;
        // The last batches may still be acknowledging: stop first, then read the counters.
        let counters = Arc::clone(&w.counters);
        w.stop().await;
        assert_eq!(counters.charged.load(Ordering::Relaxed), 80, "{what}");
        assert_eq!(counters.duplicate.load(Ordering::Relaxed), 120, "{what}");

        // And the file again after the stream: nothing new.
        let r = p.process(items(&records), &file_origin).await.unwrap();
        assert_eq!((r.charged, r.duplicate), (0, 200), "{what}");
        let all: Vec<usize> = (0..count).collect();
        assert_eq!(
            s.cdr_totals(t.id).await.unwrap(),
            (count as i64, total(all.clone())),
            "{what}"
        );
        balances_match(s, &t, lines, &all, what).await;
        n.finish().await;
    }
}
