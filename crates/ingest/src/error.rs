//! Errors: per record (the record is kept, reading goes on) and per configuration (nothing is
//! read).

use std::fmt;

/// Why one record could not be read. Carries everything a suspense queue needs to keep the record
/// and a person needs to fix it: where it was, which field, why, and the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// 1-based line of the record's first byte, or 1-based document index for JSON streams.
    pub line: u64,
    /// The field at fault, by the name the source uses (`start`, `billsec`, `variables.uuid`);
    /// `None` when the record as a whole is malformed.
    pub field: Option<String>,
    pub kind: ErrorKind,
    /// The record's bytes exactly as read (without the line terminator).
    pub raw: Vec<u8>,
}

impl RecordError {
    pub(crate) fn record(line: u64, kind: ErrorKind, raw: &[u8]) -> RecordError {
        RecordError {
            line,
            field: None,
            kind,
            raw: raw.to_vec(),
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}, field {field}: {}", self.line, self.kind),
            None => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

impl std::error::Error for RecordError {}

/// What was wrong with a record or a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("missing (empty or absent)")]
    Missing,
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("invalid value {value:?}: {reason}")]
    Invalid { value: String, reason: String },
    #[error("{found} columns, expected {expected}")]
    ColumnCount { found: usize, expected: String },
    #[error("unterminated quoted field {column}")]
    UnterminatedQuote { column: usize },
    #[error("record longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("not JSON: {0}")]
    Json(String),
    #[error("read error, input abandoned: {0}")]
    Io(String),
}

impl ErrorKind {
    pub(crate) fn invalid(value: &str, reason: impl Into<String>) -> ErrorKind {
        // A garbage field can be long; the raw record has it whole.
        let value: String = value.chars().take(80).collect();
        ErrorKind::Invalid {
            value,
            reason: reason.into(),
        }
    }
}

/// A field-level failure before the line and raw bytes are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub field: String,
    pub kind: ErrorKind,
}

impl FieldError {
    pub fn new(field: impl Into<String>, kind: ErrorKind) -> FieldError {
        FieldError {
            field: field.into(),
            kind,
        }
    }

    pub fn at(self, line: u64, raw: &[u8]) -> RecordError {
        RecordError {
            line,
            field: Some(self.field),
            kind: self.kind,
            raw: raw.to_vec(),
        }
    }
}

/// A mapping file or reader option that cannot be used. Reported before any record is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("mapping is not valid TOML: {0}")]
    Toml(String),
    #[error("mapping field {field}: {reason}")]
    Field { field: String, reason: String },
    #[error("mapping: {0}")]
    Format(String),
    #[error("unknown time zone {0:?}")]
    Zone(String),
    #[error("header: column {column:?} (for {field}) is not in the header")]
    NoSuchColumn { field: String, column: String },
    #[error("header could not be read: {0}")]
    Header(String),
}
