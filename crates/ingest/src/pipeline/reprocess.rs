//! Re-processing the suspense queue: after the record was edited or the tariff, the
//! subscriber or the balance fixed, open items go through the pipeline again. An item charged
//! now is resolved; one that fails again stays open with the new reason (and one more
//! attempt); one that cleansing now skips is resolved.

use toll_store::suspense::{SuspenseFilter, SuspenseItem};
use toll_store::{Store, StoreError, TenantId};

use crate::error::{ErrorKind, RecordError};
use crate::pipeline::formats::ReaderSpec;
use crate::pipeline::record::CdrJson;
use crate::pipeline::{BatchFailed, BatchReport, Item, Origin, Pipeline, SuspenseRef};

/// Which items to re-process.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these ids (still open ones); empty: every open item (of `class`, if given).
    pub ids: Vec<i64>,
    pub class: Option<String>,
}

/// Why a re-processing run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReprocessError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the database did not take a batch after {} attempts: {}", .0.attempts, .0.error)]
    Batch(Box<BatchFailed>),
}

/// The item's record again: its edited JSON when it has one, else its raw bytes read by the
/// reader that first met it. What cannot be read is a reader error, so it is queued again.
pub fn item_input(item: &SuspenseItem) -> Item {
    let fail = |field: Option<String>, reason: String| RecordError {
        line: item.line.and_then(|l| u64::try_from(l).ok()).unwrap_or(0),
        field,
        kind: ErrorKind::Invalid {
            value: String::new(),
            reason,
        },
        raw: item.raw_bytes.clone(),
    };
    let input = match &item.record {
        Some(json) => serde_json::from_str::<CdrJson>(json)
            .map_err(|e| fail(None, format!("the edited record is not valid JSON: {e}")))
            .and_then(|r| {
                r.to_cdr(item.raw_bytes.clone())
                    .map_err(|e| fail(Some(e.field.to_string()), e.reason))
            }),
        None => match ReaderSpec::from_json(&item.format) {
            Ok(spec) => spec
                .reparse(&item.raw_bytes, &item.source)
                .map_err(|e| match e {
                    super::formats::ReparseError::Record(r) => r,
                    other => fail(None, other.to_string()),
                }),
            Err(e) => Err(fail(None, e.to_string())),
        },
    };
    Item {
        input,
        closes: None,
        suspense: Some(SuspenseRef {
            id: item.id,
            key: item.item_key.clone(),
        }),
    }
}

/// Re-processes the selected open items, a page at a time.
pub async fn reprocess(
    pipeline: &Pipeline,
    store: &Store,
    tenant: TenantId,
    selection: &Selection,
) -> Result<BatchReport, ReprocessError> {
    let mut total = BatchReport::default();
    let mut items: Vec<SuspenseItem> = Vec::new();
    if selection.ids.is_empty() {
        let mut after = None;
        loop {
            let page = store
                .suspense_items(
                    tenant,
                    &SuspenseFilter {
                        status: Some("open".into()),
                        class: selection.class.clone(),
                        after_id: after,
                        limit: 1000,
                    },
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            items.extend(page);
        }
    } else {
        for id in &selection.ids {
            let it = store.suspense_item(tenant, *id).await?;
            if it.status == "open" {
                items.push(it);
            }
        }
    }
    // One batch per origin: the items' reader, source and import go with their batch.
    items.sort_by(|a, b| {
        (&a.format, &a.source, a.import_id, a.id).cmp(&(&b.format, &b.source, b.import_id, b.id))
    });
    for group in items
        .chunk_by(|a, b| (&a.format, &a.source, a.import_id) == (&b.format, &b.source, b.import_id))
    {
        let Some(first) = group.first() else { continue };
        let origin = Origin {
            reader: first.format.clone(),
            source: first.source.clone(),
            // Not counted again against the file's import: its run is over.
            import_id: None,
        };
        for chunk in group.chunks(super::DEFAULT_BATCH) {
            let batch: Vec<Item> = chunk.iter().map(item_input).collect();
            let r = pipeline
                .process(batch, &origin)
                .await
                .map_err(|f| ReprocessError::Batch(Box::new(f)))?;
            total.add(&r);
        }
    }
    Ok(total)
}
