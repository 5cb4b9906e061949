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

/// Upper bounds of the request latency buckets, in nanoseconds (0.1 ms … 10 s).
const REQUEST_BUCKETS_NS: &[u64] = &[
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Upper bounds of the rating latency buckets, in nanoseconds (0.25 µs … 1 ms): one event is
/// priced in about a microsecond.
const RATING_BUCKETS_NS: &[u64] = &[
    250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 1_000_000,
];

/// A latency histogram with fixed buckets, updated without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds_ns: &'static [u64],
    /// Per bucket (not cumulative); the last slot counts what exceeds every bound.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new(REQUEST_BUCKETS_NS)
    }
}

impl Histogram {
    pub fn new(bounds_ns: &'static [u64]) -> Histogram {
        Histogram {
            bounds_ns,
            counts: (0..=bounds_ns.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// For rating: sub-microsecond buckets.
    pub fn for_rating() -> Histogram {
        Histogram::new(RATING_BUCKETS_NS)
    }

    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = self
            .bounds_ns
            .iter()
            .position(|b| ns <= *b)
            .unwrap_or(self.bounds_ns.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Writes the series of `name`, each with `labels` (`key="value",…` or empty) first.
    fn render_labelled(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (b, c) in self.bounds_ns.iter().zip(self.counts.iter()) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cumulative}",
                seconds_ns(*b)
            );
        }
        if let Some(c) = self.counts.last() {
            cumulative += c.load(Ordering::Relaxed);
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            seconds_ns(self.sum_ns.load(Ordering::Relaxed))
        );
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }

    fn render(&self, out: &mut String, name: &str) {
        self.render_labelled(out, name, "");
    }
}

/// Request latency per route (the route's pattern, not the path: bounded cardinality) and
/// answer class.
#[derive(Debug, Default)]
pub struct RouteMetrics {
    routes:
        std::sync::RwLock<std::collections::BTreeMap<(String, String, &'static str), Histogram>>,
}

/// Most distinct (method, route, class) series kept: the router's routes bound them already.
const MAX_ROUTE_SERIES: usize = 2_000;

impl RouteMetrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, d: Duration) {
        let class = match status {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        if let Ok(m) = self.routes.read()
            && let Some(h) = m.get(&(method.to_string(), route.to_string(), class))
        {
            h.observe(d);
            return;
        }
        if let Ok(mut m) = self.routes.write() {
            if m.len() >= MAX_ROUTE_SERIES {
                return;
            }
            m.entry((method.to_string(), route.to_string(), class))
                .or_default()
                .observe(d);
        }
    }

    fn render(&self, out: &mut String) {
        out.push_str("# HELP toll_http_request_duration_seconds Time to answer a request, by method, route and status class.\n");
        out.push_str("# TYPE toll_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.routes.read() {
            for ((method, route, class), h) in m.iter() {
                let labels = format!(
                    "method=\"{}\",route=\"{}\",status=\"{class}\"",
                    label(method),
                    label(route)
                );
                h.render_labelled(out, "toll_http_request_duration_seconds", &labels);
            }
        }
    }
}

/// Times every routed request (a layer over the router: the matched route is known).
pub async fn track(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string());
    let res = next.run(req).await;
    if let Some(route) = route {
        state
            .route_metrics()
            .observe(&method, &route, res.status().as_u16(), started.elapsed());
    }
    res
}

/// Nanoseconds as decimal seconds, without floats.
fn seconds_ns(ns: u64) -> String {
    let s = format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
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
    out.push_str("# HELP toll_rating_seconds Time to price one event with the active tariff (POST /api/v1/rate, /authorize).\n");
    out.push_str("# TYPE toll_rating_seconds histogram\n");
    state
        .rating_latency()
        .render(&mut out, "toll_rating_seconds");
    state.route_metrics().render(&mut out);
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
        assert_eq!(seconds_ns(250), "0.00000025");
        assert_eq!(seconds_ns(1_000_000_000), "1");
        assert_eq!(seconds_ns(500_000), "0.0005");
        assert_eq!(seconds_ns(2_500_000_000), "2.5");
        assert_eq!(seconds_ns(0), "0");
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
