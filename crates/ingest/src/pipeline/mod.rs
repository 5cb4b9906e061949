//! The ingestion pipeline: read → cleanse → rate → charge and persist, in batches.
//!
//! The readers (the rest of this crate) are pure; this module joins them to rating
//! (`toll-rating`) and to the store, where one transaction per batch charges the records,
//! writes their rated CDRs and ledger entries, and queues what failed in the suspense queue
//! ([`toll_store::charging::Charger::charge_records`]). Deduplication is the store's: a
//! record's event key is `source/record_id`, and a key charged before is a duplicate whatever
//! the path it came by (file, HTTP, NATS, re-processing).
//!
//! A batch the database does not take is retried with backoff ([`RetryPolicy`]), then handed
//! back whole ([`BatchFailed`]) for the dead-letter store ([`deadletter`]), from which it is
//! replayed. Nothing is lost in between: the batch either committed whole or not at all.

pub mod deadletter;
pub mod feed;
pub mod formats;
pub mod rating;
pub mod record;
pub mod reprocess;
pub mod rerate;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use toll_core::Micros;
use toll_rating::Tariff;
use toll_store::StoreError;
use toll_store::cdrs::CdrRecord;
use toll_store::charging::{ChargeOutcome, Charger, RecordBatch, RefusalCode, UsageEvent};
use toll_store::file_imports::ImportTally;
use toll_store::open_calls::CallClose;
use toll_store::suspense::{NewSuspense, Stage};

use crate::cdr::Cdr;
use crate::cleanse::Cleansing;
use crate::error::RecordError;
use rating::{RatingContext, rate_cdr};
use record::CdrJson;

/// Records per batch by default: large enough that per-batch costs vanish, small enough that
/// a retried or dead-lettered batch is cheap.
pub const DEFAULT_BATCH: usize = 5_000;

/// How often and how patiently a batch is retried before it is dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (seed 001: three).
    pub retries: u32,
    /// Wait before the first retry; each next wait is four times longer.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 3,
            first_backoff: Duration::from_millis(200),
        }
    }
}

/// The pipeline's rules.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub cleansing: Cleansing,
    pub rating: RatingContext,
    pub retry: RetryPolicy,
}

/// One input record: read, or the reader's error; and the suspense item it is re-processed
/// from, if it is.
#[derive(Debug, Clone)]
pub struct Item {
    pub input: Result<Cdr, RecordError>,
    pub suspense: Option<SuspenseRef>,
    /// The open call this record ends (a call-end event, a swept call): closed in the
    /// transaction that charges the record, so the two never part.
    pub closes: Option<CallClose>,
}

/// The suspense item a record is re-processed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspenseRef {
    pub id: i64,
    pub key: String,
}

impl Item {
    pub fn new(input: Result<Cdr, RecordError>) -> Item {
        Item {
            input,
            suspense: None,
            closes: None,
        }
    }

    /// The record of a call's end, which closes the open call `closes`.
    pub fn closing(cdr: Cdr, closes: CallClose) -> Item {
        Item {
            closes: Some(closes),
            ..Item::new(Ok(cdr))
        }
    }

    /// The item to resolve when the record failed again as `new`: only when the key moved
    /// (an edit changed the bytes, or the record parses now); under the same key the queued
    /// item is updated instead.
    fn superseded_by(&self, new: &NewSuspense) -> Option<i64> {
        self.suspense
            .as_ref()
            .filter(|s| s.key != new.item_key)
            .map(|s| s.id)
    }
}

/// Where a batch came from: the reader (kept with its suspense items), the source name for
/// records that never parsed, and the file import it belongs to.
#[derive(Debug, Clone)]
pub struct Origin {
    /// [`formats::ReaderSpec`] as JSON.
    pub reader: String,
    pub source: String,
    pub import_id: Option<i64>,
}

/// Counts per stage since the pipeline started, shared by every task feeding it (and read by
/// `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    pub read: AtomicU64,
    pub parse_errors: AtomicU64,
    pub skipped: AtomicU64,
    pub rated: AtomicU64,
    pub default_rated: AtomicU64,
    pub rating_failed: AtomicU64,
    pub charged: AtomicU64,
    pub duplicate: AtomicU64,
    pub refused: AtomicU64,
    pub suspended: AtomicU64,
    pub amount_micros: AtomicI64,
    pub batches: AtomicU64,
    pub retries: AtomicU64,
    pub failed_batches: AtomicU64,
    /// Time spent cleansing and rating, and committing (charging and storing), in nanoseconds:
    /// where a batch's time goes.
    pub rate_ns: AtomicU64,
    pub commit_ns: AtomicU64,
}

/// What one batch did: `records == skipped + charged + duplicate + suspended`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchReport {
    pub records: u64,
    pub skipped: u64,
    /// Of the skipped, by cleansing rule (`too_short`, `unanswered`, ...).
    pub skipped_by: std::collections::BTreeMap<&'static str, u64>,
    pub charged: u64,
    pub default_rated: u64,
    pub duplicate: u64,
    pub suspended: u64,
    /// Of the suspended, by class.
    pub suspended_by: std::collections::BTreeMap<String, u64>,
    pub amount: Micros,
    pub retries: u32,
}

impl BatchReport {
    pub fn add(&mut self, o: &BatchReport) {
        self.records += o.records;
        self.skipped += o.skipped;
        for (k, v) in &o.skipped_by {
            *self.skipped_by.entry(k).or_default() += v;
        }
        self.charged += o.charged;
        self.default_rated += o.default_rated;
        self.duplicate += o.duplicate;
        self.suspended += o.suspended;
        for (k, v) in &o.suspended_by {
            *self.suspended_by.entry(k.clone()).or_default() += v;
        }
        self.amount = Micros(self.amount.0.saturating_add(o.amount.0));
        self.retries += o.retries;
    }
}

/// What became of one record of a batch ([`Pipeline::process_items`]): what a caller that
/// answers per record (a real-time call end) tells its client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ItemOutcome {
    /// Not billed, by a cleansing rule (`unanswered`, `too_short`, ...).
    Skipped { rule: &'static str },
    Charged {
        /// Debited from the wallet after allowances.
        amount: Micros,
        /// Base units the allowances covered.
        covered: i64,
        /// The tariff's (or the default rate's) price of the whole record.
        cost: Option<Micros>,
        default_rated: bool,
    },
    /// Its key was charged before: nothing charged now.
    Duplicate,
    /// In the suspense queue, with its class and reason.
    Suspended { class: String, reason: String },
}

/// A batch the database did not take after every retry: the records, unchanged, for the
/// dead-letter store.
#[derive(Debug)]
pub struct BatchFailed {
    pub error: StoreError,
    pub attempts: u32,
    pub items: Vec<Item>,
}

/// Rates and charges batches of records for one tenant.
pub struct Pipeline {
    charger: Charger,
    tariff: Option<Arc<Tariff>>,
    config: PipelineConfig,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("charger", &self.charger)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Longest event key: the ledger's key limit less its `use:` prefix.
const MAX_EVENT_KEY: usize = toll_store::keys::MAX_CALLER_KEY;

/// A record's event key, `source/record_id`: the dedup key charging and the suspense queue
/// use. Record ids are the switch's text (Asterisk's include a channel name and a time with a
/// space); ledger keys are printable ASCII without spaces, so any other byte and `%` are
/// percent-encoded, and a key still too long becomes `source/#` and the SHA-256 of the id.
/// Deterministic: the same record always has the same key.
pub fn event_key(source: &str, record_id: &str) -> String {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(source.len() + record_id.len() + 1);
    for (i, part) in [source, record_id].into_iter().enumerate() {
        if i == 1 {
            key.push('/');
        }
        for b in part.bytes() {
            if b.is_ascii_graphic() && b != b'%' {
                key.push(char::from(b));
            } else {
                let _ = write!(key, "%{b:02X}");
            }
        }
    }
    if key.len() <= MAX_EVENT_KEY {
        return key;
    }
    let digest = hex::encode(Sha256::digest(record_id.as_bytes()));
    let mut short: String = source
        .bytes()
        .filter(|b| b.is_ascii_graphic() && *b != b'%')
        .map(char::from)
        .take(MAX_EVENT_KEY.saturating_sub(digest.len() + 2))
        .collect();
    short.push_str("/#");
    short.push_str(&digest);
    short
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The key of a suspense item for a record that never parsed: its source and bytes.
fn raw_key(source: &str, raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    format!("raw:{source}:{}", hex::encode(&digest[..16]))
}

/// The suspense item of a record a reader could not read.
fn parse_failure(e: &RecordError, origin: &Origin) -> NewSuspense {
    NewSuspense {
        item_key: raw_key(&origin.source, &e.raw),
        source: origin.source.clone(),
        format: origin.reader.clone(),
        import_id: origin.import_id,
        line: Some(e.line),
        stage: Stage::Parse,
        class: "parse_error".into(),
        field: e.field.clone(),
        reason: e.kind.to_string(),
        raw: e.raw.clone(),
        record: None,
    }
}

/// The suspense item of a record that parsed and then failed.
fn record_failure(
    cdr: &Cdr,
    origin: &Origin,
    stage: Stage,
    class: &str,
    reason: &str,
) -> NewSuspense {
    NewSuspense {
        item_key: event_key(&cdr.source, &cdr.record_id),
        source: cdr.source.to_string(),
        format: origin.reader.clone(),
        import_id: origin.import_id,
        line: Some(cdr.line),
        stage,
        class: class.to_string(),
        field: None,
        reason: reason.to_string(),
        raw: cdr.raw.clone(),
        record: serde_json::to_string(&CdrJson::from_cdr(cdr)).ok(),
    }
}

impl Pipeline {
    pub fn new(charger: Charger, tariff: Option<Arc<Tariff>>, config: PipelineConfig) -> Pipeline {
        Pipeline {
            charger,
            tariff,
            config,
            counters: Arc::new(Counters::default()),
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    pub fn charger(&self) -> &Charger {
        &self.charger
    }

    /// The tariff records are rated with, if one is loaded.
    pub fn tariff(&self) -> Option<Arc<Tariff>> {
        self.tariff.clone()
    }

    pub fn rating_context(&self) -> &RatingContext {
        &self.config.rating
    }

    /// Runs one batch (at most [`toll_store::charging::MAX_BATCH`] records) through every
    /// stage and commits it, retrying per the policy. On failure the batch is handed back.
    pub async fn process(
        &self,
        items: Vec<Item>,
        origin: &Origin,
    ) -> Result<BatchReport, BatchFailed> {
        self.process_items(items, origin).await.map(|(r, _)| r)
    }

    /// [`Pipeline::process`], and what became of each record, in input order.
    pub async fn process_items(
        &self,
        items: Vec<Item>,
        origin: &Origin,
    ) -> Result<(BatchReport, Vec<ItemOutcome>), BatchFailed> {
        let c = &self.counters;
        let started = std::time::Instant::now();
        let mut each: Vec<Option<ItemOutcome>> = vec![None; items.len()];
        let suspended = |s: &NewSuspense| ItemOutcome::Suspended {
            class: s.class.clone(),
            reason: s.reason.clone(),
        };
        // Items whose rating failed, with their key: duplicates if the key is charged.
        let mut rate_failed_items: Vec<(usize, String)> = Vec::new();
        let mut report = BatchReport {
            records: items.len() as u64,
            ..BatchReport::default()
        };
        let mut suspense: Vec<NewSuspense> = Vec::new();
        let mut resolved: Vec<i64> = Vec::new();
        let mut events: Vec<UsageEvent> = Vec::with_capacity(items.len());
        let mut records: Vec<CdrRecord> = Vec::with_capacity(items.len());
        // For each event, the item it came from (refused events are queued from it).
        let mut from: Vec<usize> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let cdr = match &item.input {
                Ok(cdr) => cdr,
                Err(e) => {
                    let s = parse_failure(e, origin);
                    resolved.extend(item.superseded_by(&s));
                    each[i] = Some(suspended(&s));
                    suspense.push(s);
                    continue;
                }
            };
            if let Err(skip) = self.config.cleansing.check(cdr) {
                report.skipped += 1;
                *report.skipped_by.entry(skip.code()).or_default() += 1;
                each[i] = Some(ItemOutcome::Skipped { rule: skip.code() });
                resolved.extend(item.suspense.as_ref().map(|s| s.id));
                continue;
            }
            match rate_cdr(
                self.tariff.as_deref(),
                &self.config.rating,
                cdr,
                origin.import_id,
            ) {
                Ok((ev, mut rec)) => {
                    if rec.default_rated {
                        report.default_rated += 1;
                    }
                    rec.suspense_id = item.suspense.as_ref().map(|s| s.id);
                    rec.suspense_key = item.suspense.as_ref().map(|s| s.key.clone());
                    events.push(ev);
                    records.push(rec);
                    from.push(i);
                }
                Err(f) => {
                    let s = record_failure(cdr, origin, Stage::Rate, f.class, &f.reason);
                    resolved.extend(item.superseded_by(&s));
                    each[i] = Some(suspended(&s));
                    rate_failed_items.push((i, s.item_key.clone()));
                    suspense.push(s);
                }
            }
        }
        // Deduplication comes before rating: a record charged before that no longer rates (its
        // rule changed, or it was charged at a default rate) is a duplicate, not a failure.
        let rate_failed: Vec<&str> = suspense
            .iter()
            .filter(|s| s.stage == Stage::Rate)
            .map(|s| s.item_key.as_str())
            .collect();
        if !rate_failed.is_empty() {
            let charged = match self
                .charger
                .store()
                .charged_keys(self.charger.tenant().id, &rate_failed)
                .await
            {
                Ok(c) => c,
                Err(error) => {
                    c.failed_batches.fetch_add(1, Ordering::Relaxed);
                    return Err(BatchFailed {
                        error,
                        attempts: 1,
                        items,
                    });
                }
            };
            if !charged.is_empty() {
                let before = suspense.len();
                suspense.retain(|s| s.stage != Stage::Rate || !charged.contains(&s.item_key));
                report.duplicate += (before - suspense.len()) as u64;
                for (i, key) in &rate_failed_items {
                    if charged.contains(key) {
                        each[*i] = Some(ItemOutcome::Duplicate);
                    }
                }
            }
        }
        let on_refused = |i: usize, code: RefusalCode, reason: &str| -> NewSuspense {
            match items.get(from[i]).map(|it| &it.input) {
                Some(Ok(cdr)) => record_failure(cdr, origin, Stage::Charge, code.as_str(), reason),
                _ => NewSuspense {
                    item_key: events[i].key.clone(),
                    source: origin.source.clone(),
                    format: origin.reader.clone(),
                    import_id: origin.import_id,
                    line: None,
                    stage: Stage::Charge,
                    class: code.as_str().to_string(),
                    field: None,
                    reason: reason.to_string(),
                    raw: Vec::new(),
                    record: None,
                },
            }
        };
        let tally = origin.import_id.map(|id| ImportTally {
            import_id: id,
            records: report.records as i64,
            skipped: report.skipped as i64,
        });
        let closes: Vec<CallClose> = items.iter().filter_map(|i| i.closes.clone()).collect();
        let rated_at = std::time::Instant::now();
        c.rate_ns
            .fetch_add(nanos(rated_at - started), Ordering::Relaxed);
        let mut attempt = 0u32;
        let outcomes = loop {
            let batch = RecordBatch {
                events: &events,
                records: &records,
                suspense: &suspense,
                on_refused: &on_refused,
                resolved: &resolved,
                import: tally,
                closes: &closes,
            };
            match self.charger.charge_records(batch).await {
                Ok(o) => break o,
                Err(e) if attempt < self.config.retry.retries && e.is_transient() => {
                    let wait = self.config.retry.first_backoff * 4u32.saturating_pow(attempt);
                    attempt += 1;
                    c.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(wait).await;
                }
                Err(error) => {
                    c.failed_batches.fetch_add(1, Ordering::Relaxed);
                    return Err(BatchFailed {
                        error,
                        attempts: attempt + 1,
                        items,
                    });
                }
            }
        };
        report.retries = attempt;
        c.commit_ns
            .fetch_add(nanos(rated_at.elapsed()), Ordering::Relaxed);
        for s in &suspense {
            report.suspended += 1;
            *report.suspended_by.entry(s.class.clone()).or_default() += 1;
        }
        for o in &outcomes {
            match o {
                ChargeOutcome::Charged { amount, .. } => {
                    report.charged += 1;
                    report.amount = Micros(report.amount.0.saturating_add(amount.0));
                }
                ChargeOutcome::Duplicate => report.duplicate += 1,
                ChargeOutcome::Refused { code, .. } => {
                    report.suspended += 1;
                    *report
                        .suspended_by
                        .entry(code.as_str().to_string())
                        .or_default() += 1;
                }
            }
        }
        for (j, o) in outcomes.iter().enumerate() {
            let Some(slot) = from.get(j).and_then(|i| each.get_mut(*i)) else {
                continue;
            };
            *slot = Some(match o {
                ChargeOutcome::Charged {
                    amount, covered, ..
                } => ItemOutcome::Charged {
                    amount: *amount,
                    covered: *covered,
                    cost: records.get(j).and_then(|r| r.cost),
                    default_rated: records.get(j).is_some_and(|r| r.default_rated),
                },
                ChargeOutcome::Duplicate => ItemOutcome::Duplicate,
                ChargeOutcome::Refused { code, reason } => ItemOutcome::Suspended {
                    class: code.as_str().to_string(),
                    reason: reason.clone(),
                },
            });
        }
        let parse_errors = items.iter().filter(|i| i.input.is_err()).count() as u64;
        let rating_failed = suspense.len() as u64 - parse_errors;
        c.read.fetch_add(report.records, Ordering::Relaxed);
        c.parse_errors.fetch_add(parse_errors, Ordering::Relaxed);
        c.skipped.fetch_add(report.skipped, Ordering::Relaxed);
        c.rated.fetch_add(events.len() as u64, Ordering::Relaxed);
        c.default_rated
            .fetch_add(report.default_rated, Ordering::Relaxed);
        c.rating_failed.fetch_add(rating_failed, Ordering::Relaxed);
        c.charged.fetch_add(report.charged, Ordering::Relaxed);
        c.duplicate.fetch_add(report.duplicate, Ordering::Relaxed);
        c.refused
            .fetch_add(report.suspended - suspense.len() as u64, Ordering::Relaxed);
        c.suspended.fetch_add(report.suspended, Ordering::Relaxed);
        c.amount_micros
            .fetch_add(report.amount.0, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        debug_assert_eq!(
            report.records,
            report.skipped + report.charged + report.duplicate + report.suspended
        );
        debug_assert!(each.iter().all(Option::is_some));
        let each = each
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| ItemOutcome::Suspended {
                    class: "internal".into(),
                    reason: "the pipeline reported no outcome".into(),
                })
            })
            .collect();
        Ok((report, each))
    }
}
