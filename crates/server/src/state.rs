//! The server's shared state: the store, the pipeline rules, its limits, and one ingestion
//! context per tenant (its pipeline and its call-end batcher), created on first use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use toll_ingest::pipeline::Pipeline;
use toll_ingest::pipeline::feed::PipelineSettings;
use toll_store::{Store, StoreError, Tenant, TenantId};

use crate::auth::IngestToken;
use crate::batcher::{self, EndJob};
use crate::error::ApiError;
use crate::metrics::Histogram;

/// Default longest request body: a day of CDRs of a small switch, or 50,000 JSON records.
pub const DEFAULT_MAX_BODY: usize = 64 << 20;

/// The server's limits and settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `None`: ingestion answers 503 "ingestion disabled".
    pub ingest_token: Option<IngestToken>,
    pub dead_letter_dir: PathBuf,
    /// Longest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most records in one request (413 beyond); at most
    /// [`toll_store::charging::MAX_BATCH`].
    pub max_records: usize,
    /// Records per database transaction of a batch request.
    pub batch: usize,
    /// A call open longer than this is closed by the sweeper and charged for this long; it is
    /// also the usage a call start is authorised for at most.
    pub max_call_duration: Duration,
    /// How often the sweeper looks for such calls.
    pub sweep_interval: Duration,
    /// How often the server checks whether a tenant's local day has moved on, which starts
    /// its daily billing jobs (see [`crate::billing_jobs`]).
    pub billing_interval: Duration,
    /// What the scheduled bill run makes.
    pub auto_bill: crate::billing_jobs::AutoBill,
    /// Call ends per transaction, at most.
    pub call_batch: usize,
    /// Longest wait for more call ends before a transaction starts.
    pub call_flush: Duration,
    /// Call ends queued per tenant before new ones are refused (503).
    pub call_queue: usize,
    /// Longest time a request may take (408 beyond).
    pub request_timeout: Duration,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    /// Session cookies carry `Secure` (set when serving TLS).
    pub secure_cookies: bool,
    /// Most rows of one CSV export of CDRs; the rest is one `X-Toll-Next-Cursor` away. Bounds
    /// the memory an export takes whatever the window asked for.
    pub csv_export_rows: usize,
    /// The endpoint secret Stripe signs webhooks with (`whsec_…`); without one the webhook
    /// route answers 404.
    pub stripe_webhook_secret: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            ingest_token: None,
            dead_letter_dir: PathBuf::from("toll-dead-letters"),
            max_body_bytes: DEFAULT_MAX_BODY,
            max_records: toll_store::charging::MAX_BATCH,
            batch: toll_ingest::pipeline::DEFAULT_BATCH,
            max_call_duration: Duration::from_secs(4 * 3600),
            sweep_interval: Duration::from_secs(60),
            billing_interval: Duration::from_secs(600),
            auto_bill: crate::billing_jobs::AutoBill::Draft,
            call_batch: 512,
            call_flush: Duration::from_millis(2),
            call_queue: 20_000,
            request_timeout: Duration::from_secs(300),
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            csv_export_rows: crate::api::cdrs::EXPORT_MAX,
            stripe_webhook_secret: None,
        }
    }
}

/// One tenant's ingestion: its pipeline and the queue of its call-end batcher.
#[derive(Debug)]
pub struct TenantIngest {
    pub tenant: Tenant,
    pub pipeline: Arc<Pipeline>,
    pub(crate) ends: mpsc::Sender<EndJob>,
    /// Calls the sweeper charged at the maximum duration since the server started.
    pub swept: AtomicU64,
}

/// What handlers share. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    store: Store,
    settings: PipelineSettings,
    config: ServerConfig,
    tenants: Mutex<HashMap<String, Arc<TenantIngest>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    call_end_latency: Arc<Histogram>,
    rating_latency: Histogram,
    route_metrics: crate::metrics::RouteMetrics,
    /// Tenants of principals, by id (a tenant's slug, currency and zone never change).
    tenants_by_id: Mutex<HashMap<TenantId, Tenant>>,
    tariffs: crate::tariff_cache::TariffCache,
    logins: crate::login_limit::LoginLimiter,
    auth_cache: crate::auth_cache::AuthCache,
    /// Turns true when the server stops: background loops (the sweeper) end.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    pub fn new(store: Store, settings: PipelineSettings, mut config: ServerConfig) -> AppState {
        config.max_records = config.max_records.clamp(1, toll_store::charging::MAX_BATCH);
        config.batch = config.batch.clamp(1, toll_store::charging::MAX_BATCH);
        config.call_batch = config.call_batch.clamp(1, toll_store::charging::MAX_BATCH);
        config.call_queue = config.call_queue.max(1);
        AppState(Arc::new(Inner {
            store,
            settings,
            config,
            tenants: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            call_end_latency: Arc::new(Histogram::default()),
            rating_latency: Histogram::for_rating(),
            route_metrics: crate::metrics::RouteMetrics::default(),
            tenants_by_id: Mutex::new(HashMap::new()),
            tariffs: crate::tariff_cache::TariffCache::default(),
            logins: crate::login_limit::LoginLimiter::default(),
            auth_cache: crate::auth_cache::AuthCache::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub fn config(&self) -> &ServerConfig {
        &self.0.config
    }

    pub fn tariffs(&self) -> &crate::tariff_cache::TariffCache {
        &self.0.tariffs
    }

    pub fn auth_cache(&self) -> &crate::auth_cache::AuthCache {
        &self.0.auth_cache
    }

    pub fn logins(&self) -> &crate::login_limit::LoginLimiter {
        &self.0.logins
    }

    /// A principal's tenant, cached after the first look-up.
    pub async fn tenant_by_id(&self, id: TenantId, slug: &str) -> Result<Tenant, ApiError> {
        if let Some(t) = self
            .0
            .tenants_by_id
            .lock()
            .ok()
            .and_then(|m| m.get(&id).cloned())
        {
            return Ok(t);
        }
        let t = self.0.store.tenant(slug).await?;
        if t.id != id {
            return Err(ApiError::Store(StoreError::Corrupt(format!(
                "tenant {slug:?} changed its id"
            ))));
        }
        if let Ok(mut m) = self.0.tenants_by_id.lock() {
            m.insert(id, t.clone());
        }
        Ok(t)
    }

    pub fn settings(&self) -> &PipelineSettings {
        &self.0.settings
    }

    pub(crate) fn rating_latency(&self) -> &Histogram {
        &self.0.rating_latency
    }

    pub(crate) fn route_metrics(&self) -> &crate::metrics::RouteMetrics {
        &self.0.route_metrics
    }

    pub(crate) fn call_end_latency(&self) -> &Histogram {
        &self.0.call_end_latency
    }

    /// The tenants served so far, by slug.
    pub fn tenants(&self) -> Vec<Arc<TenantIngest>> {
        let mut v: Vec<Arc<TenantIngest>> = self
            .0
            .tenants
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.tenant.slug.cmp(&b.tenant.slug));
        v
    }

    /// The tenant's ingestion context, created (pipeline built, batcher started) on first use.
    pub async fn tenant(&self, slug: &str) -> Result<Arc<TenantIngest>, ApiError> {
        if let Some(t) = self.cached(slug) {
            return Ok(t);
        }
        let tenant = match self.0.store.tenant(slug).await {
            Ok(t) => t,
            Err(StoreError::NotFound { .. }) => return Err(ApiError::UnknownTenant(slug.into())),
            Err(e) => return Err(e.into()),
        };
        let mut map = self.0.tenants.lock().map_err(|_| ApiError::ShuttingDown)?;
        if let Some(t) = map.get(slug) {
            return Ok(Arc::clone(t));
        }
        let pipeline = Arc::new(
            self.0
                .settings
                .pipeline(self.0.store.clone(), tenant.clone())?,
        );
        let (ends, task) = batcher::start(batcher::Context {
            store: self.0.store.clone(),
            pipeline: Arc::clone(&pipeline),
            dead_letter_dir: self.0.config.dead_letter_dir.clone(),
            max_batch: self.0.config.call_batch,
            flush: self.0.config.call_flush,
            queue: self.0.config.call_queue,
            latency: Arc::clone(&self.0.call_end_latency),
        });
        if let Ok(mut tasks) = self.0.tasks.lock() {
            tasks.push(task);
        }
        let t = Arc::new(TenantIngest {
            tenant,
            pipeline,
            ends,
            swept: AtomicU64::new(0),
        });
        map.insert(slug.to_string(), Arc::clone(&t));
        Ok(t)
    }

    fn cached(&self, slug: &str) -> Option<Arc<TenantIngest>> {
        self.0
            .tenants
            .lock()
            .ok()
            .and_then(|m| m.get(slug).cloned())
    }

    /// Turns true when the server stops.
    pub(crate) fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.stopping.subscribe()
    }

    /// Keeps a background task to be awaited at shutdown.
    pub(crate) fn keep_task(&self, task: JoinHandle<()>) {
        if let Ok(mut tasks) = self.0.tasks.lock() {
            tasks.push(task);
        }
    }

    /// Stops the batchers after they flushed what they hold, and the other background tasks.
    /// Call when no request is in flight any more (after the server stopped accepting).
    pub async fn shutdown(&self) {
        self.0.stopping.send_replace(true);
        // Dropping the senders ends each batcher once its queue is empty.
        if let Ok(mut m) = self.0.tenants.lock() {
            m.clear();
        }
        let tasks: Vec<JoinHandle<()>> = self
            .0
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in tasks {
            let _ = t.await;
        }
    }
}
