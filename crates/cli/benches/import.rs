//! File import end to end: `toll import` of an Asterisk `Master.csv` (parse, cleanse, rate with
//! the cn-demo tariff, charge, store rated CDRs and ledger entries), on SQLite (a temp file)
//! and, when `TOLL_BENCH_DATABASE_URL` (or `TOLL_TEST_DATABASE_URL`) names a PostgreSQL server,
//! on PostgreSQL in a fresh schema.
//!
//! A whole-system measurement, so a plain timed run rather than a criterion loop. Besides the
//! end-to-end figure it times the stages without the database in the same run — reading alone,
//! reading and rating — so the share of each is visible. `TOLL_BENCH_RECORDS`,
//! `TOLL_BENCH_LINES` and `TOLL_BENCH_BATCH` change the sizes (defaults 1,000,000 records from
//! 10,000 lines in batches of 50,000).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::float_arithmetic
)]

#[path = "shared/bench_setup.rs"]
mod bench_setup;

use bench_setup::{env, number, setup};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use toll_cli::admin::DbArgs;
use toll_cli::importfile::{ImportArgs, PipelineArgs, PipelineRules};
use toll_ingest::pipeline::formats::{Format, ReaderSpec};
use toll_ingest::pipeline::rating::{DefaultRate, Payer, RatingContext, rate_cdr};
use toll_store::Store;

fn write_file(path: &Path, records: usize, lines: usize) {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let callees = [
        "01088886666",
        "13912345678",
        "02161234567",
        "0085212345678",
        "18600001111",
        "075512345678",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for k in 0..records {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let caller = number(x as usize % lines);
        let callee = callees[(x >> 20) as usize % callees.len()];
        let billsec = 1 + (x >> 32) % 600;
        let secs = k % 86_400;
        let day = 1 + k * 28 / records;
        let start = format!(
            "2026-11-{day:02} {:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        writeln!(
            f,
            r#""","{caller}","{callee}","from-internal","""x"" <{caller}>","PJSIP/a-{k:08x}","PJSIP/trunk-{k:08x}","Dial","PJSIP/{callee}@trunk","{start}","{start}","{start}",{billsec},{billsec},"ANSWERED","BILLING","1795000000.{k}","""#
        )
        .unwrap();
    }
    f.flush().unwrap();
}

fn args(file: &Path, tariff: &Path, batch: usize, dead: &Path) -> ImportArgs {
    ImportArgs {
        files: vec![file.to_path_buf()],
        format: "asterisk".into(),
        source: Some("pbx1".into()),
        zone: None,
        template: None,
        force: false,
        pipeline: PipelineArgs {
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
        },
        quiet: true,
        json: false,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this is not a criterion bench.
    let records = env("TOLL_BENCH_RECORDS", 1_000_000);
    let lines = env("TOLL_BENCH_LINES", 10_000);
    let batch = env("TOLL_BENCH_BATCH", 50_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Master.csv");
    let tariff = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cn-demo/tariff.toml");
    write_file(&file, records, lines);
    let size = std::fs::metadata(&file).unwrap().len();
    println!(
        "{records} records ({:.0} MB) from {lines} lines, batch {batch}",
        size as f64 / 1e6
    );

    // Stages without the database.
    let loaded = toll_cli::load::load(&tariff).unwrap();
    let started = Instant::now();
    let mut spec = ReaderSpec::new(Format::Asterisk, "Asia/Shanghai");
    let n = spec
        .open(std::fs::File::open(&file).unwrap(), "pbx1")
        .unwrap()
        .filter(Result::is_ok)
        .count();
    let read_s = started.elapsed().as_secs_f64();
    println!(
        "read only:        {:>10.0} records/s ({n} records, {read_s:.2} s)",
        n as f64 / read_s
    );
    let ctx = RatingContext {
        tariff_tenant: "acme".into(),
        category: "call".into(),
        default_rate: DefaultRate::default(),
        payer: Payer::Caller,
    };
    let started = Instant::now();
    let mut rated = 0usize;
    for cdr in spec
        .open(std::fs::File::open(&file).unwrap(), "pbx1")
        .unwrap()
        .flatten()
    {
        if rate_cdr(Some(&loaded.tariff), &ctx, &cdr, None).is_ok() {
            rated += 1;
        }
    }
    let rate_s = started.elapsed().as_secs_f64();
    println!(
        "read + rate:      {:>10.0} records/s ({rated} rated, {rate_s:.2} s)",
        rated as f64 / rate_s
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut engines: Vec<(&str, String)> = vec![(
        "sqlite",
        dir.path().join("toll.db").to_str().unwrap().to_string(),
    )];
    if let Ok(url) = std::env::var("TOLL_BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TOLL_TEST_DATABASE_URL"))
    {
        let schema = format!("toll_bench_{}", std::process::id());
        let sep = if url.contains('?') { '&' } else { '?' };
        engines.push((
            "postgres",
            format!("{url}{sep}options=-c%20search_path%3D{schema}"),
        ));
        // Creates the schema; the import below opens the same schema through the URL.
        rt.block_on(async {
            Store::connect_postgres_schema(&url, &schema)
                .await
                .unwrap()
                .close()
                .await;
        });
    }
    for (name, url) in engines {
        rt.block_on(async {
            let store = Store::connect(&url).await.unwrap();
            let started = Instant::now();
            setup(&store, lines).await;
            let setup_s = started.elapsed().as_secs_f64();
            let db = DbArgs { database: url.clone() };
            let a = args(&file, &tariff, batch, &dir.path().join("dead"));
            let built = toll_cli::importfile::build(&db, &a.pipeline).await.unwrap();
            let counters = built.pipeline.counters();
            let started = Instant::now();
            let out = toll_cli::importfile::run_with(&built, &a).await.unwrap();
            let s = started.elapsed().as_secs_f64();
            let stage = |n: &std::sync::atomic::AtomicU64| {
                n.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e9
            };
            println!(
                "{name}: of which cleanse + rate {:.2} s, charge + store {:.2} s (the rest: waiting for the reader)",
                stage(&counters.rate_ns),
                stage(&counters.commit_ns)
            );
            let r = &out[0].report;
            assert_eq!(r.records as usize, records);
            assert_eq!(r.suspended, 0, "{r:?}");
            assert!(out[0].dead_letters.is_empty());
            println!(
                "{name}: import end to end {:>10.0} records/s ({} charged, {:.2} s; set-up of the lines {setup_s:.1} s)",
                r.records as f64 / s,
                r.charged,
                s
            );
        });
    }
}
