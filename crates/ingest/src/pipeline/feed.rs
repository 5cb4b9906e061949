//! What every feeder of the pipeline shares — `toll import`, `toll suspense retry`,
//! `toll ingest replay` and the HTTP server (`toll serve`): building a tenant's [`Pipeline`]
//! from one set of rules ([`PipelineSettings`]), and feeding a batch with the dead-letter
//! fallback ([`feed`]): a batch the database did not take after the retries is written to the
//! dead-letter directory, whole, and the caller is told where.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use toll_rating::Tariff;
use toll_store::charging::Charger;
use toll_store::{Store, StoreError, Tenant};

use crate::Cleansing;
use crate::pipeline::deadletter::{DeadLetter, DeadLetterError};
use crate::pipeline::rating::{DefaultRate, Payer, RatingContext, TariffRater};
use crate::pipeline::{
    BatchReport, Item, ItemOutcome, Origin, Pipeline, PipelineConfig, RetryPolicy,
};

/// The rules a tenant's pipeline runs with, independent of the tenant: one value serves every
/// tenant of a server.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// The tariff that rates records (and call tails beyond allowances); `None`: only the
    /// default rate prices records.
    pub tariff: Option<Arc<Tariff>>,
    /// The tariff's tenant name (CGRateS tenant); `None`: the tenant's slug.
    pub tariff_tenant: Option<String>,
    /// The category of records that name none.
    pub category: String,
    pub default_rate: DefaultRate,
    pub payer: Payer,
    pub cleansing: Cleansing,
    pub retry: RetryPolicy,
}

impl PipelineSettings {
    /// The tariff tenant name for `tenant`.
    pub fn tariff_tenant_for(&self, tenant: &Tenant) -> String {
        self.tariff_tenant
            .clone()
            .unwrap_or_else(|| tenant.slug.clone())
    }

    /// A pipeline charging `tenant`'s records.
    pub fn pipeline(&self, store: Store, tenant: Tenant) -> Result<Pipeline, StoreError> {
        let tariff_tenant = self.tariff_tenant_for(&tenant);
        let mut charger = Charger::new(store, tenant)?;
        if let Some(t) = &self.tariff {
            charger = charger.with_rater(Arc::new(TariffRater {
                tariff: Arc::clone(t),
                tenant: tariff_tenant.clone(),
            }));
        }
        let config = PipelineConfig {
            cleansing: self.cleansing,
            rating: RatingContext {
                tariff_tenant,
                category: self.category.clone(),
                default_rate: self.default_rate,
                payer: self.payer,
            },
            retry: self.retry,
        };
        Ok(Pipeline::new(charger, self.tariff.clone(), config))
    }
}

/// What became of a fed batch.
#[derive(Debug)]
pub enum Fed {
    /// Committed: the batch's report and each record's outcome, in input order.
    Committed(BatchReport, Vec<ItemOutcome>),
    /// The database did not take it after every retry; it waits in a dead letter.
    DeadLettered(DeadLettered),
}

/// A batch written to the dead-letter directory.
#[derive(Debug)]
pub struct DeadLettered {
    pub path: PathBuf,
    pub records: usize,
    pub attempts: u32,
    /// Why the last attempt failed.
    pub error: StoreError,
}

/// The database failed and the batch could not be written to the dead-letter directory
/// either: the caller still holds the only copy (a file it can read again, a client that must
/// re-send).
#[derive(Debug, thiserror::Error)]
#[error("the database failed ({store}) and the batch could not be dead-lettered either: {letter}")]
pub struct FeedError {
    pub store: StoreError,
    pub letter: DeadLetterError,
    /// The batch, handed back whole: a stream consumer keeps it (unacknowledged) and tries
    /// again.
    pub items: Vec<Item>,
}

/// Feeds one batch (at most [`toll_store::charging::MAX_BATCH`] records); a batch the database
/// does not take after the pipeline's retries is written to `dead_letter_dir` as one letter.
pub async fn feed(
    pipeline: &Pipeline,
    dead_letter_dir: &Path,
    items: Vec<Item>,
    origin: &Origin,
) -> Result<Fed, FeedError> {
    match pipeline.process_items(items, origin).await {
        Ok((report, each)) => Ok(Fed::Committed(report, each)),
        Err(failed) => {
            let letter = DeadLetter::new(
                &pipeline.charger().tenant().slug,
                origin,
                failed.error.to_string(),
                failed.attempts,
                &failed.items,
            );
            let dir = dead_letter_dir.to_path_buf();
            // Written and synced off the async threads: a slow disk must not stall them.
            let written = tokio::task::spawn_blocking(move || letter.write(&dir))
                .await
                .unwrap_or_else(|e| {
                    Err(DeadLetterError::Io {
                        path: dead_letter_dir.to_path_buf(),
                        source: std::io::Error::other(e.to_string()),
                    })
                });
            match written {
                Ok(path) => Ok(Fed::DeadLettered(DeadLettered {
                    path,
                    records: failed.items.len(),
                    attempts: failed.attempts,
                    error: failed.error,
                })),
                Err(letter) => Err(FeedError {
                    store: failed.error,
                    letter,
                    items: failed.items,
                }),
            }
        }
    }
}
