//! The dead-letter store: batches the database did not take after every retry, kept as files
//! on local disk (the database is what failed), one JSON document per batch, until
//! `toll ingest replay` feeds them through the pipeline again.
//!
//! A file is written to a temporary name, synced and renamed, so a crash leaves either the
//! whole letter or none; a replayed letter is deleted only after its batch committed, and a
//! letter replayed twice charges nothing twice (the records' keys are charged already).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ErrorKind, RecordError};
use crate::pipeline::formats::ReaderSpec;
use crate::pipeline::record::CdrJson;
use crate::pipeline::{Item, Origin, SuspenseRef};

/// A batch that could not be written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    pub tenant: String,
    pub origin_reader: String,
    pub source: String,
    pub import_id: Option<i64>,
    /// Why the last attempt failed.
    pub error: String,
    pub attempts: u32,
    pub written_ms: i64,
    pub items: Vec<DeadItem>,
}

/// One record of a dead batch: parsed (kept as its JSON form) or not (kept as its bytes, read
/// again on replay).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeadItem {
    Record {
        record: Box<CdrJson>,
        raw_hex: String,
        suspense: Option<(i64, String)>,
    },
    Unread {
        line: u64,
        field: Option<String>,
        reason: String,
        raw_hex: String,
        suspense: Option<(i64, String)>,
    },
}

/// Why a letter could not be written, read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a dead letter: {reason}")]
    Format { path: PathBuf, reason: String },
}

impl DeadLetter {
    pub fn new(
        tenant: &str,
        origin: &Origin,
        error: String,
        attempts: u32,
        items: &[Item],
    ) -> DeadLetter {
        let items = items
            .iter()
            .map(|it| match &it.input {
                Ok(cdr) => DeadItem::Record {
                    record: Box::new(CdrJson::from_cdr(cdr)),
                    raw_hex: hex::encode(&cdr.raw),
                    suspense: it.suspense.as_ref().map(|s| (s.id, s.key.clone())),
                },
                Err(e) => DeadItem::Unread {
                    line: e.line,
                    field: e.field.clone(),
                    reason: e.kind.to_string(),
                    raw_hex: hex::encode(&e.raw),
                    suspense: it.suspense.as_ref().map(|s| (s.id, s.key.clone())),
                },
            })
            .collect();
        DeadLetter {
            tenant: tenant.to_string(),
            origin_reader: origin.reader.clone(),
            source: origin.source.clone(),
            import_id: origin.import_id,
            error,
            attempts,
            written_ms: jiff::Timestamp::now().as_millisecond(),
            items,
        }
    }

    pub fn origin(&self) -> Origin {
        Origin {
            reader: self.origin_reader.clone(),
            source: self.source.clone(),
            import_id: self.import_id,
        }
    }

    /// The records again. A parsed record whose JSON no longer reads, or an unread one, comes
    /// back as a reader error, so it lands in the suspense queue rather than vanishing.
    pub fn items(&self) -> Vec<Item> {
        let spec = ReaderSpec::from_json(&self.origin_reader).ok();
        self.items
            .iter()
            .map(|d| match d {
                DeadItem::Record {
                    record,
                    raw_hex,
                    suspense,
                } => {
                    let raw = hex::decode(raw_hex).unwrap_or_default();
                    let input = record.to_cdr(raw.clone()).map_err(|e| RecordError {
                        line: record.line,
                        field: Some(e.field.to_string()),
                        kind: ErrorKind::Invalid {
                            value: String::new(),
                            reason: e.reason,
                        },
                        raw,
                    });
                    Item {
                        input,
                        suspense: suspense.as_ref().map(|(id, key)| SuspenseRef {
                            id: *id,
                            key: key.clone(),
                        }),
                        // A call whose end was dead-lettered was closed when the letter was
                        // written.
                        closes: None,
                    }
                }
                DeadItem::Unread {
                    line,
                    field,
                    reason,
                    raw_hex,
                    suspense,
                } => {
                    let raw = hex::decode(raw_hex).unwrap_or_default();
                    // Read again: the reader may take it now (a fixed mapping); if not, its own
                    // error is the one to keep.
                    let input = match spec.as_ref().map(|s| s.reparse(&raw, &self.source)) {
                        Some(Ok(cdr)) => Ok(cdr),
                        _ => Err(RecordError {
                            line: *line,
                            field: field.clone(),
                            kind: ErrorKind::Invalid {
                                value: String::new(),
                                reason: reason.clone(),
                            },
                            raw,
                        }),
                    };
                    Item {
                        input,
                        suspense: suspense.as_ref().map(|(id, key)| SuspenseRef {
                            id: *id,
                            key: key.clone(),
                        }),
                        // A call whose end was dead-lettered was closed when the letter was
                        // written.
                        closes: None,
                    }
                }
            })
            .collect()
    }

    /// Writes the letter into `dir` (created if missing), durably; returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, DeadLetterError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DeadLetterError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let name = format!(
            "{}-{}-{}-{}.json",
            self.tenant,
            self.written_ms,
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let body = serde_json::to_vec(self).map_err(|e| DeadLetterError::Format {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&body).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(path)
    }

    pub fn read(path: &Path) -> Result<DeadLetter, DeadLetterError> {
        let body = std::fs::read(path).map_err(|source| DeadLetterError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&body).map_err(|e| DeadLetterError::Format {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

/// The letters in `dir`, oldest first (file names start with the tenant and the time).
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, DeadLetterError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(DeadLetterError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && name.ends_with(".json") {
            out.push(p);
        }
    }
    out.sort_by_key(|p| {
        let meta = std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (meta, p.clone())
    });
    Ok(out)
}
