//! `GET /healthz`, `GET /readyz` and `GET /metrics` (Prometheus text format 0.0.4): each
//! served tenant's pipeline counters, open calls, swept calls and open suspense items, and the
//! latency from a call end's arrival to its committed charge.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
    2_000_000, 5_000_000, 10_000_000,
];

/// A latency histogram with fixed buckets, updated without locks.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last slot counts what exceeds every bound.
    counts: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(BUCKETS_US.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str) {
        let mut cumulative = 0u64;
        for (b, c) in BUCKETS_US.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", seconds(*b));
        }
        if let Some(c) = self.counts.last() {
            cumulative += c.load(Ordering::Relaxed);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            seconds(self.sum_us.load(Ordering::Relaxed))
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Microseconds as decimal seconds, without floats.
fn seconds(us: u64) -> String {
    let s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A label value as the text format escapes it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Reads one pipeline counter.
type Stage = fn(&toll_ingest::pipeline::Counters) -> u64;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: the database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state
        .store()
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok("ready\n")
}

/// `GET /metrics`
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::with_capacity(4096);
    let tenants = state.tenants();
    let stages: [(&str, Stage); 11] = [
        ("read", |c| c.read.load(Ordering::Relaxed)),
        ("parse_error", |c| c.parse_errors.load(Ordering::Relaxed)),
        ("skipped", |c| c.skipped.load(Ordering::Relaxed)),
        ("rated", |c| c.rated.load(Ordering::Relaxed)),
        ("default_rated", |c| c.default_rated.load(Ordering::Relaxed)),
        ("rating_failed", |c| c.rating_failed.load(Ordering::Relaxed)),
        ("charged", |c| c.charged.load(Ordering::Relaxed)),
        ("duplicate", |c| c.duplicate.load(Ordering::Relaxed)),
        ("refused", |c| c.refused.load(Ordering::Relaxed)),
        ("suspended", |c| c.suspended.load(Ordering::Relaxed)),
        ("batch", |c| c.batches.load(Ordering::Relaxed)),
    ];
    out.push_str("# HELP toll_ingest_records_total Records through the pipeline since the server started, by stage (batch: transactions).\n");
    out.push_str("# TYPE toll_ingest_records_total counter\n");
    for t in &tenants {
        let c = t.pipeline.counters();
        for (stage, get) in &stages {
            let _ = writeln!(
                out,
                "toll_ingest_records_total{{tenant=\"{}\",stage=\"{stage}\"}} {}",
                label(&t.tenant.slug),
                get(&c)
            );
        }
    }
    out.push_str("# HELP toll_ingest_amount_micros_total Amount charged by the pipeline, in micro-units of the tenant's currency.\n");
    out.push_str("# TYPE toll_ingest_amount_micros_total counter\n");
    for t in &tenants {
        let _ = writeln!(
            out,
            "toll_ingest_amount_micros_total{{tenant=\"{}\",currency=\"{}\"}} {}",
            label(&t.tenant.slug),
            t.tenant.currency,
            t.pipeline.counters().amount_micros.load(Ordering::Relaxed)
        );
    }
    out.push_str("# HELP toll_ingest_batch_retries_total Batch transactions retried; failed: given up and dead-lettered.\n");
    out.push_str("# TYPE toll_ingest_batch_retries_total counter\n");
    for t in &tenants {
        let c = t.pipeline.counters();
        let slug = label(&t.tenant.slug);
        let _ = writeln!(
            out,
            "toll_ingest_batch_retries_total{{tenant=\"{slug}\",result=\"retried\"}} {}",
            c.retries.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "toll_ingest_batch_retries_total{{tenant=\"{slug}\",result=\"failed\"}} {}",
            c.failed_batches.load(Ordering::Relaxed)
        );
    }
    out.push_str("# HELP toll_swept_calls_total Calls charged at the maximum duration because their end never came.\n");
    out.push_str("# TYPE toll_swept_calls_total counter\n");
    for t in &tenants {
        let _ = writeln!(
            out,
            "toll_swept_calls_total{{tenant=\"{}\"}} {}",
            label(&t.tenant.slug),
            t.swept.load(Ordering::Relaxed)
        );
    }
    out.push_str("# HELP toll_open_calls Calls started and not ended.\n");
    out.push_str("# TYPE toll_open_calls gauge\n");
    let mut suspense = String::new();
    for t in &tenants {
        let slug = label(&t.tenant.slug);
        let n = state.store().open_call_count(t.tenant.id).await?;
        let _ = writeln!(out, "toll_open_calls{{tenant=\"{slug}\"}} {n}");
        for (class, n) in state.store().suspense_counts(t.tenant.id).await? {
            let _ = writeln!(
                suspense,
                "toll_suspense_open{{tenant=\"{slug}\",class=\"{}\"}} {n}",
                label(&class)
            );
        }
    }
    out.push_str("# HELP toll_suspense_open Records waiting in the suspense queue, by class.\n");
    out.push_str("# TYPE toll_suspense_open gauge\n");
    out.push_str(&suspense);
    out.push_str("# HELP toll_call_end_seconds From a call end's arrival to its answer (its charge committed).\n");
    out.push_str("# TYPE toll_call_end_seconds histogram\n");
    state
        .call_end_latency()
        .render(&mut out, "toll_call_end_seconds");
    let mut res = (StatusCode::OK, out).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_print_exactly() {
        assert_eq!(seconds(500), "0.0005");
        assert_eq!(seconds(1_000_000), "1");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(0), "0");
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(60));
        let mut s = String::new();
        h.render(&mut s, "x");
        assert!(s.contains("x_bucket{le=\"0.0005\"} 1\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"0.005\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"10\"} 2\n"), "{s}");
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"), "{s}");
        assert!(s.contains("x_count 3\n"), "{s}");
    }
}
