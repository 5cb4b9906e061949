//! Serves the web UI's routes alone (`/ui/login`, `/ui/preview/dashboard`, `/assets/…`) over a
//! throw-away SQLite store, to look at the pages while working on them:
//!
//! ```sh
//! cargo run -p toll-server --example ui_preview -- 127.0.0.1:8080
//! ```
//!
//! Not `toll serve`: no ingestion, no sign-in. It goes away with the preview route.

use toll_ingest::Cleansing;
use toll_ingest::pipeline::RetryPolicy;
use toll_ingest::pipeline::feed::PipelineSettings;
use toll_ingest::pipeline::rating::{DefaultRate, Payer};
use toll_server::{AppState, ServerConfig};
use toll_store::Store;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("toll.db");
    let store = Store::connect(&db.to_string_lossy()).await?;
    store.migrate().await?;
    let settings = PipelineSettings {
        tariff: None,
        tariff_tenant: None,
        category: "call".into(),
        default_rate: DefaultRate::default(),
        payer: Payer::Caller,
        cleansing: Cleansing::default(),
        retry: RetryPolicy::default(),
    };
    let state = AppState::new(store, settings, ServerConfig::default());
    let app = toll_server::ui::ui_router().with_state(state);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("http://{}/ui/preview/dashboard", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
