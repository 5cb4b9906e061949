//! Toll's HTTP server (`toll serve`): CDR ingestion over HTTP — batches of records, and
//! real-time call events with prepaid authorisation, immediate charging and a sweeper for
//! calls that never end — plus health, readiness and Prometheus metrics.
//!
//! Shape, for the REST API and web UI that come later: handlers are thin (parse, call the
//! pipeline or the store, answer); every failure is an [`ApiError`], turned into an RFC 9457
//! `application/problem+json` body with a stable `code` in one place ([`error`]); the
//! authentication of a route is an extractor ([`auth::Ingestor`] here; users and roles will
//! be others beside it).
//!
//! | Route | |
//! |---|---|
//! | `POST /api/v1/ingest/{tenant}/cdrs?source=NAME[&format=…]` | a batch ([`ingest`]) |
//! | `POST /api/v1/ingest/{tenant}/calls/start` | a call starts: recorded, authorised ([`calls`]) |
//! | `POST /api/v1/ingest/{tenant}/calls/end` | a call ends: charged at once ([`calls`], [`batcher`]) |
//! | `GET /healthz`, `GET /readyz`, `GET /metrics` | [`metrics`] |
//! | `/ui/…`, `/portal`, `/assets/…` | the web UI and the customers' portal ([`ui`]) |

pub mod access;
pub mod api;
pub mod api_docs;
pub mod auth;
pub mod auth_cache;
pub mod batcher;
pub mod billing_jobs;
pub mod calls;
pub mod error;
pub mod ingest;
pub mod invoice_docs;
pub mod login_limit;
pub mod metrics;
pub mod principal;
pub mod secrets;
pub mod state;
pub mod sweeper;
pub mod tariff_cache;
pub mod ui;

use std::future::Future;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use auth::IngestToken;
pub use error::ApiError;
pub use state::{AppState, ServerConfig};

/// The application: every route with its layers.
pub fn router(state: AppState) -> Router {
    let config = state.config().clone();
    let ingest = Router::new()
        .route("/api/v1/ingest/{tenant}/cdrs", post(ingest::batch))
        .route("/api/v1/ingest/{tenant}/calls/start", post(calls::start))
        .route("/api/v1/ingest/{tenant}/calls/end", post(calls::end))
        // One limit, tower-http's, whatever the extractor: bodies past it are 413.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes));
    let (api, doc) = api::api(&state);
    let doc = std::sync::Arc::new(doc);
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = std::sync::Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .route("/api/docs", get(api_docs::page))
        .merge(api)
        .route("/healthz", get(metrics::healthz))
        .route("/readyz", get(metrics::readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(ingest)
        .merge(ui::ui_router())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        // Browsers' cross-site POSTs (a form on another site aimed at a signed-in admin) are
        // refused by their Sec-Fetch-Site / Origin; API clients send neither and pass.
        .layer(tower_http::csrf::CsrfLayer::new())
        .layer(axum::middleware::from_fn(error::problem_for_bare_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves on `listener` until `shutdown` resolves, with the sweeper running every
/// `sweep_interval` and the daily billing jobs checked every `billing_interval`; then stops accepting, lets requests in flight finish, and flushes the
/// call-end batchers.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = sweeper::spawn(state.clone(), state.config().sweep_interval);
    state.keep_task(sweeper);
    let billing = billing_jobs::spawn(
        state.clone(),
        state.config().billing_interval,
        state.config().auto_bill,
    );
    state.keep_task(billing);
    let app = router(state.clone());
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    state.shutdown().await;
    served
}

/// A certificate chain and its private key (PEM files), for serving HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Like [`serve`], over TLS (rustls, TLS 1.2 and 1.3). Session cookies then carry `Secure`
/// (`state`'s config should say so: [`ServerConfig::secure_cookies`]). In-flight requests get
/// `drain` to finish after `shutdown` resolves.
pub async fn serve_tls(
    listener: TcpListener,
    tls: &TlsFiles,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: std::time::Duration,
) -> std::io::Result<()> {
    // One process-wide provider; a second install (tests, several servers) is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await?;
    let sweeper = sweeper::spawn(state.clone(), state.config().sweep_interval);
    state.keep_task(sweeper);
    let billing = billing_jobs::spawn(
        state.clone(),
        state.config().billing_interval,
        state.config().auto_bill,
    );
    state.keep_task(billing);
    let app = router(state.clone());
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(drain));
    });
    let served = axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .await;
    state.shutdown().await;
    served
}
