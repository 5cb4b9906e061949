//! The compiled active tariff of each tenant, kept in memory: compiling 50,000 prefixes takes
//! tens of milliseconds, rating one event a microsecond. Whether the cached version is still
//! the active one is asked of the store at most once per [`RECHECK`], so an activation on
//! another server is picked up within that time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use toll_rating::Tariff;
use toll_rating::source::SourceFile;
use toll_rating::source::compile::compile_files;
use toll_store::tariffs::TariffVersion;
use toll_store::{Store, TenantId};

use crate::error::ApiError;

/// Longest time a server rates with a version after another was activated elsewhere.
pub const RECHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ActiveTariff {
    pub version: TariffVersion,
    pub tariff: Arc<Tariff>,
}

#[derive(Debug)]
struct Entry {
    active: Option<ActiveTariff>,
    checked: Instant,
}

/// Per-tenant cache of the compiled active tariff.
#[derive(Debug, Default)]
pub struct TariffCache {
    entries: Mutex<HashMap<TenantId, Entry>>,
    /// Compiled versions by tariff id: re-activating an older version compiles nothing.
    compiled: Mutex<HashMap<i64, Arc<Tariff>>>,
}

/// Most compiled versions kept (each is the size of its tariff).
const MAX_COMPILED: usize = 32;

impl TariffCache {
    /// The tenant's active tariff, compiled.
    pub async fn active(&self, store: &Store, tenant: TenantId) -> Result<ActiveTariff, ApiError> {
        if let Ok(map) = self.entries.lock()
            && let Some(e) = map.get(&tenant)
            && e.checked.elapsed() < RECHECK
        {
            return e.active.clone().ok_or(ApiError::NoActiveTariff);
        }
        let version = store.active_tariff(tenant).await?;
        let active = match version {
            None => None,
            Some(v) => Some(ActiveTariff {
                tariff: self.compiled(store, tenant, &v).await?,
                version: v,
            }),
        };
        if let Ok(mut map) = self.entries.lock() {
            map.insert(
                tenant,
                Entry {
                    active: active.clone(),
                    checked: Instant::now(),
                },
            );
        }
        active.ok_or(ApiError::NoActiveTariff)
    }

    /// Forgets the tenant's entry (after an activation on this server).
    pub fn invalidate(&self, tenant: TenantId) {
        if let Ok(mut map) = self.entries.lock() {
            map.remove(&tenant);
        }
    }

    /// A version, compiled (from the cache or from its stored files).
    pub async fn compiled(
        &self,
        store: &Store,
        tenant: TenantId,
        v: &TariffVersion,
    ) -> Result<Arc<Tariff>, ApiError> {
        if let Some(t) = self
            .compiled
            .lock()
            .ok()
            .and_then(|m| m.get(&v.id).cloned())
        {
            return Ok(t);
        }
        let files: Vec<SourceFile> = store
            .tariff_files(tenant, v.id)
            .await?
            .into_iter()
            .map(|f| SourceFile {
                name: f.name,
                bytes: f.content,
            })
            .collect();
        let loaded = tokio::task::spawn_blocking(move || compile_files(&files))
            .await
            .map_err(|e| ApiError::Unratable(format!("compiling the tariff failed: {e}")))?
            .map_err(|d| ApiError::InvalidTariff(d.errors().cloned().collect()))?;
        if let Ok(mut m) = self.compiled.lock() {
            if m.len() >= MAX_COMPILED {
                m.clear();
            }
            m.insert(v.id, Arc::clone(&loaded.tariff));
        }
        Ok(loaded.tariff)
    }
}
