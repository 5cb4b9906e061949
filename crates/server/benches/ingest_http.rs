//! HTTP ingestion end to end, on SQLite (a temp file): the server (`toll_server::serve` on
//! 127.0.0.1, port 0) and its load generator in one process, sharing the machine's cores.
//!
//! 1. Batch ingestion: `TOLL_BENCH_REQUESTS` (200) requests of `TOLL_BENCH_RECORDS` (5,000)
//!    records each, as JSON arrays of the CDR form, then the same count as Asterisk CSV, sent
//!    by `TOLL_BENCH_CLIENTS` (4) concurrent clients; records/s from the first request to the
//!    last answer. Bodies are built before the clock starts.
//! 2. Call ends at a fixed rate: `TOLL_BENCH_CALLS` (50,000) calls are started (untimed), then
//!    their ends are sent open-loop at `TOLL_BENCH_RATE` (5,000) per second — each at its
//!    scheduled instant whatever the answers before it, and its latency counted from that
//!    instant, so a slow server cannot hide queueing — and each answer is the committed charge.
//!    Reports p50 / p99 / max and the achieved rate.
//!
//! The lines are the import benchmark's: `TOLL_BENCH_LINES` (10,000) on a plan with 100 voice
//! minutes, calls beyond them priced by the cn-demo tariff.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::float_arithmetic
)]

#[path = "../../cli/benches/shared/bench_setup.rs"]
mod bench_setup;

use bench_setup::{env, number, setup};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use toll_ingest::Cleansing;
use toll_ingest::pipeline::RetryPolicy;
use toll_ingest::pipeline::feed::PipelineSettings;
use toll_ingest::pipeline::rating::{DefaultRate, Payer};
use toll_rating::Tariff;
use toll_rating::source::SourceFile;
use toll_server::{AppState, IngestToken, ServerConfig};
use toll_store::Store;

const TOKEN: &str = "bench-ingest-token-0123456789";

const CALLEES: [&str; 6] = [
    "01088886666",
    "13912345678",
    "02161234567",
    "0085212345678",
    "18600001111",
    "075512345678",
];

/// A xorshift stream: the same data every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn tariff() -> Arc<Tariff> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cn-demo/tariff.toml");
    let files = [SourceFile {
        name: "tariff.toml".into(),
        bytes: std::fs::read(path).unwrap(),
    }];
    let mut diags = toll_rating::Diagnostics::default();
    let def = toll_rating::source::parse(&files, &mut diags);
    assert!(!diags.has_errors(), "{diags:?}");
    let (t, _) = Tariff::compile(&def, Arc::new(toll_rating::NumberRanges::builtin_cn())).unwrap();
    Arc::new(t)
}

/// The `k`-th record of the batch run: a caller, a callee, a start in November 2026, 1–600 s.
fn record(k: usize, rng: &mut Rng, lines: usize) -> (String, &'static str, String, u64) {
    let x = rng.next();
    let caller = number(x as usize % lines);
    let callee = CALLEES[(x >> 20) as usize % CALLEES.len()];
    let billsec = 1 + (x >> 32) % 600;
    let secs = k % 86_400;
    let day = 1 + (k / 40_000) % 28;
    let start = format!(
        "2026-11-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    (caller, callee, start, billsec)
}

fn json_body(first: usize, n: usize, rng: &mut Rng, lines: usize) -> Vec<u8> {
    let recs: Vec<serde_json::Value> = (first..first + n)
        .map(|k| {
            let (caller, callee, start, billsec) = record(k, rng, lines);
            serde_json::json!({
                "source": "http-json",
                "record_id": format!("r{k}"),
                "caller": caller,
                "callee": callee,
                "start": format!("{}+08:00", start.replace(' ', "T")),
                "kind": "voice",
                "usage": format!("{billsec}s"),
                "disposition": "answered",
            })
        })
        .collect();
    serde_json::to_vec(&recs).unwrap()
}

fn csv_body(first: usize, n: usize, rng: &mut Rng, lines: usize) -> Vec<u8> {
    let mut out = String::with_capacity(n * 260);
    for k in first..first + n {
        let (caller, callee, start, billsec) = record(k, rng, lines);
        out.push_str(&format!(
            r#""","{caller}","{callee}","from-internal","""x"" <{caller}>","PJSIP/a-{k:08x}","PJSIP/trunk-{k:08x}","Dial","PJSIP/{callee}@trunk","{start}","{start}","{start}",{billsec},{billsec},"ANSWERED","BILLING","1795000000.{k}",""
"#
        ));
    }
    out.into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn batches(
    client: &reqwest::Client,
    url: &str,
    name: &str,
    content_type: &'static str,
    bodies: Vec<Vec<u8>>,
    clients: usize,
    per_request: usize,
) {
    let total = bodies.len() * per_request;
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, queue) = (client.clone(), url.to_string(), Arc::clone(&queue));
        tasks.push(tokio::spawn(async move {
            let mut charged = 0u64;
            loop {
                let Some(body) = queue.lock().unwrap().pop() else {
                    break;
                };
                let r = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                let v: serde_json::Value = r.json().await.unwrap();
                assert_eq!(status, 200, "{v}");
                charged += v["charged"].as_u64().unwrap();
            }
            charged
        }));
    }
    let mut charged = 0;
    for t in tasks {
        charged += t.await.unwrap();
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "{name}: {total} records in {} requests of {per_request} ({:.0} MB), {clients} clients: {:.2} s, {:>8.0} records/s ({charged} charged)",
        total / per_request,
        bytes as f64 / 1e6,
        s,
        total as f64 / s
    );
}

async fn call_ends(client: &reqwest::Client, base: &str, calls: usize, rate: usize, lines: usize) {
    let start_url = format!("{base}/api/v1/ingest/acme/calls/start");
    let end_url = format!("{base}/api/v1/ingest/acme/calls/end");
    // Calls end in the plan's renewed period (November 2026), whatever today is.
    let now: jiff::Timestamp = "2026-11-29T12:00:00+08:00".parse().unwrap();
    let at = |t: jiff::Timestamp| {
        t.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let calls_data: Vec<(String, &'static str, String, String)> = (0..calls)
        .map(|k| {
            let x = rng.next();
            let billsec = 1 + (x >> 32) % 600;
            let start = now - jiff::SignedDuration::from_secs(i64::try_from(billsec).unwrap() + 1);
            (
                number(x as usize % lines),
                CALLEES[(x >> 20) as usize % CALLEES.len()],
                at(start),
                format!("call-{k}"),
            )
        })
        .collect();
    // The starts, untimed, 16 at a time.
    let started = Instant::now();
    let data = Arc::new(calls_data);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, url, data, next) = (
            client.clone(),
            start_url.clone(),
            Arc::clone(&data),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((caller, callee, start, id)) = data.get(i) else {
                    break;
                };
                let r = client
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&serde_json::json!({"source": "fs1", "call_id": id,
                        "caller": caller, "callee": callee, "start": start}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!(
        "call starts: {calls} in {:.1} s ({:.0}/s, 16 concurrent; untimed set-up)",
        started.elapsed().as_secs_f64(),
        calls as f64 / started.elapsed().as_secs_f64()
    );
    // The ends, open loop.
    let end_at = at(now);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let t0 = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::with_capacity(calls);
    for i in 0..calls {
        let due = t0 + interval.mul_f64(i as f64);
        let (client, url) = (client.clone(), end_url.clone());
        let body =
            serde_json::json!({"source": "fs1", "call_id": format!("call-{i}"), "end": end_at});
        tokio::time::sleep_until(due).await;
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(&url)
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await;
            let ok = match r {
                Ok(r) => {
                    let status = r.status();
                    let v: serde_json::Value = r.json().await.unwrap_or_default();
                    if status != 200 || v["outcome"] != "charged" {
                        eprintln!("not charged: {status} {v}");
                    }
                    status == 200 && v["outcome"] == "charged"
                }
                Err(_) => false,
            };
            (due.elapsed(), ok)
        }));
    }
    let mut lat = Vec::with_capacity(calls);
    let mut failed = 0;
    for t in tasks {
        let (d, ok) = t.await.unwrap();
        if !ok {
            failed += 1;
        }
        lat.push(d);
    }
    let span = t0.elapsed().as_secs_f64();
    if std::env::var_os("TOLL_BENCH_TIMELINE").is_some() {
        // Latency by the second the end was due in: whether the tail is spread evenly or comes
        // in bursts (a WAL checkpoint, a slow batch).
        for (sec, chunk) in lat.chunks(rate.max(1)).enumerate() {
            let mut c = chunk.to_vec();
            c.sort();
            println!(
                "  second {sec}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                ms(percentile(&c, 0.50)),
                ms(percentile(&c, 0.99)),
                ms(*c.last().unwrap_or(&Duration::ZERO)),
            );
        }
    }
    lat.sort();
    println!(
        "call ends: {calls} at {rate}/s offered, achieved {:.0}/s (last answer at {span:.1} s); latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; not charged {failed}",
        calls as f64 / span,
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
        ms(*lat.last().unwrap_or(&Duration::ZERO)),
    );
}

fn main() {
    let requests = env("TOLL_BENCH_REQUESTS", 200);
    let per_request = env("TOLL_BENCH_RECORDS", 5_000);
    let clients = env("TOLL_BENCH_CLIENTS", 4);
    let lines = env("TOLL_BENCH_LINES", 10_000);
    let calls = env("TOLL_BENCH_CALLS", 50_000);
    let rate = env("TOLL_BENCH_RATE", 5_000);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::connect(dir.path().join("toll.db").to_str().unwrap())
            .await
            .unwrap();
        let t = Instant::now();
        setup(&store, lines).await;
        println!(
            "sqlite: {lines} lines set up in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let settings = PipelineSettings {
            tariff: Some(tariff()),
            tariff_tenant: None,
            category: "call".into(),
            default_rate: DefaultRate::default(),
            payer: Payer::Caller,
            cleansing: Cleansing::default(),
            retry: RetryPolicy::default(),
        };
        let config = ServerConfig {
            ingest_token: Some(IngestToken::new(TOKEN).unwrap()),
            dead_letter_dir: dir.path().join("dead"),
            // The calls' times are in November 2026: no sweep during the run.
            sweep_interval: Duration::from_secs(86_400),
            ..ServerConfig::default()
        };
        let state = AppState::new(store.clone(), settings, config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(toll_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();

        if requests > 0 {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            let bodies: Vec<Vec<u8>> = (0..requests)
                .map(|r| json_body(r * per_request, per_request, &mut rng, lines))
                .collect();
            batches(
                &client,
                &format!("{base}/api/v1/ingest/acme/cdrs?source=http-json"),
                "batch JSON",
                "application/json",
                bodies,
                clients,
                per_request,
            )
            .await;
            let mut rng = Rng(0x1234_5678_9abc_def1);
            let bodies: Vec<Vec<u8>> = (0..requests)
                .map(|r| csv_body(r * per_request, per_request, &mut rng, lines))
                .collect();
            batches(
                &client,
                &format!("{base}/api/v1/ingest/acme/cdrs?source=http-csv&format=asterisk"),
                "batch Asterisk CSV",
                "text/csv",
                bodies,
                clients,
                per_request,
            )
            .await;
        }
        if calls > 0 {
            call_ends(&client, &base, calls, rate, lines).await;
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}
