//! End-to-end batch rating benchmark (see `docs/BENCHMARKS.md`).
//!
//! - `rate_stream/all_cores`: `rate_stream` CSV → CSV in memory: 200,000 events from
//!   `toll gen cdrs` (same generator and seed) against the 50,000-prefix `toll gen tariff`,
//!   output and rejects into `io::sink()`. Parsing, rating and writing all included.
//! - `rate_stream/one_worker`: the same with a single rating worker (plus the reader and the
//!   writer threads), for a per-core figure.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use toll_cli::generate::{self, CdrOptions};
use toll_cli::load;
use toll_cli::ratefile::{rate_stream, rate_stream_with};

const PREFIXES: usize = 50_000;
const EVENTS: u64 = 200_000;

fn benches(c: &mut Criterion) {
    let seed = generate::DEFAULT_SEED;
    let loaded = match load::compile_files(&generate::tariff_files(PREFIXES, seed)) {
        Ok(l) => l,
        Err(d) => panic!("generated tariff does not compile:\n{d}"),
    };
    let mut input = Vec::new();
    let stats = generate::write_cdrs(&mut input, PREFIXES, EVENTS, seed, &CdrOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let s = rate_stream(&loaded.tariff, &input[..], io::sink(), io::sink(), None)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "rate_stream: {} bytes, {stats:?}: {} rated, {} rejected",
        input.len(),
        s.rated,
        s.rejected
    );

    let mut g = c.benchmark_group("rate_stream");
    g.measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(2))
        .sample_size(20);
    g.throughput(Throughput::Elements(EVENTS));
    let all = std::thread::available_parallelism().map_or(1, usize::from);
    for (name, workers) in [("all_cores", all), ("one_worker", 1)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rate_stream_with(
                    &loaded.tariff,
                    black_box(&input[..]),
                    io::sink(),
                    io::sink(),
                    None,
                    workers,
                )
                .map(|s| s.rated)
                .unwrap_or(0)
            })
        });
    }
    g.finish();
}

criterion_group!(cli, benches);
criterion_main!(cli);
