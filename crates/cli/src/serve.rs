//! `toll serve`: the HTTP server (`toll-server`): CDR ingestion over HTTP, real-time call
//! events with the sweeper, health and metrics. Stops gracefully on SIGTERM or Ctrl-C: it stops
//! accepting, lets requests in flight finish and flushes the call-end batchers.

use std::time::Duration;

use anyhow::Context;
use clap::Args;
use toll_core::usage::parse_voice_usage;
use toll_server::{AppState, IngestToken, ServerConfig};

use crate::admin::{DbArgs, open};
use crate::importfile::PipelineRules;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TOLL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The bearer token ingestion requires (at least 16 characters; only its SHA-256 is kept).
    /// Without one the ingestion routes answer 503 "ingestion disabled".
    #[arg(long, env = "TOLL_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,
    /// A call open this long is closed by the sweeper and charged for this long; also the
    /// longest usage a call start is authorised for.
    #[arg(long, default_value = "4h")]
    pub max_call_duration: String,
    /// How often the sweeper looks for such calls.
    #[arg(long, default_value = "60s")]
    pub sweep_interval: String,
    /// How often the server checks for tenants whose local day has moved on; their daily
    /// billing jobs (the nightly sums, then the bill run of periods that ended) run then.
    #[arg(long, default_value = "10m")]
    pub billing_interval: String,
    /// What the scheduled bill run makes: draft invoices for review, finalized ones, or none
    /// (off; the nightly sums still run).
    #[arg(long, default_value = "draft")]
    pub auto_bill: toll_server::billing_jobs::AutoBill,
    /// Longest request body, in MiB.
    #[arg(long, default_value_t = 64)]
    pub max_body_mib: usize,
    /// Call ends charged per transaction, at most.
    #[arg(long, default_value_t = 512)]
    pub call_batch: usize,
    /// Longest a call end waits for others before its transaction starts.
    #[arg(long, default_value = "2ms")]
    pub call_flush: String,
    /// Call ends queued per tenant before new ones are refused (503 with Retry-After).
    #[arg(long, default_value_t = 20_000)]
    pub call_queue: usize,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. Session cookies are
    /// then marked Secure.
    #[arg(long, env = "TOLL_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "TOLL_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// The endpoint secret Stripe signs webhooks with (`whsec_…`): enables
    /// `POST /api/v1/webhooks/stripe/{tenant}`.
    #[arg(long, env = "TOLL_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    #[command(flatten)]
    pub rules: PipelineRules,
}

fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    let ns = parse_voice_usage(text)
        .map_err(|e| anyhow::anyhow!("--{flag} {text:?}: {e}"))?
        .raw();
    Ok(Duration::from_nanos(u64::try_from(ns).unwrap_or(0)))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

pub async fn run(db: &DbArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let settings = args.rules.settings()?;
    let ingest_token = args
        .ingest_token
        .as_deref()
        .map(IngestToken::new)
        .transpose()
        .context("--ingest-token")?;
    if ingest_token.is_none() {
        tracing::warn!("no --ingest-token: the ingestion routes answer 503 (ingestion disabled)");
    }
    let config = ServerConfig {
        ingest_token,
        dead_letter_dir: args.rules.dead_letter_dir.clone(),
        max_body_bytes: args.max_body_mib.saturating_mul(1 << 20),
        batch: args.rules.batch,
        max_call_duration: duration("max-call-duration", &args.max_call_duration)?,
        sweep_interval: duration("sweep-interval", &args.sweep_interval)?,
        billing_interval: duration("billing-interval", &args.billing_interval)?,
        auto_bill: args.auto_bill,
        call_batch: args.call_batch,
        call_flush: duration("call-flush", &args.call_flush)?,
        call_queue: args.call_queue,
        secure_cookies: args.tls_cert.is_some(),
        stripe_webhook_secret: args.stripe_webhook_secret.clone(),
        ..ServerConfig::default()
    };
    if config.max_call_duration.is_zero() {
        anyhow::bail!("--max-call-duration must be longer than zero");
    }
    let store = open(db).await?;
    let state = AppState::new(store.clone(), settings, config);
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(toll_server::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "toll serve listening");
    match tls {
        Some(tls) => toll_server::serve_tls(
            listener,
            &tls,
            state,
            shutdown_signal(),
            Duration::from_secs(30),
        )
        .await
        .with_context(|| format!("serving TLS with {}", tls.cert.display()))?,
        None => toll_server::serve(listener, state, shutdown_signal())
            .await
            .context("serving")?,
    }
    store.close().await;
    Ok(())
}
