//! Invoices rendered per second: a typical 8-line Chinese invoice (scenario 4 of the golden
//! tests) as PDF (the same document again, and a different one each time) and as HTML. Throughput is one invoice per iteration, so criterion reports
//! invoices/s as "elem/s".
//!
//! `cargo bench -p toll-render --bench render`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn render(c: &mut Criterion) {
    let doc = common::tax_inclusive();
    assert_eq!(doc.invoice.lines.len(), 8);
    let mut group = c.benchmark_group("invoice_zh_8_lines");
    group.throughput(Throughput::Elements(1));
    group.bench_function("pdf", |b| {
        b.iter(|| toll_render::pdf(black_box(&doc)).unwrap())
    });
    // typst memoizes across renders, so rendering the same document again is cheaper than a
    // bill run's stream of different ones: here every iteration has its own account code.
    let mut n = 0u32;
    group.bench_function("pdf_each_different", |b| {
        b.iter(|| {
            n += 1;
            let mut doc = doc.clone();
            doc.account = format!("ACC-{n:06}");
            toll_render::pdf(black_box(&doc)).unwrap()
        })
    });
    group.bench_function("html", |b| {
        b.iter(|| toll_render::html(black_box(&doc)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
