//! CDR readers: bytes in, normalised [`Cdr`]s or precise [`RecordError`]s out.
//!
//! The readers are pure and synchronous: no database, no network. Every reader is an iterator over an
//! `impl Read` that yields one `Result` per record, so memory stays flat however large the file,
//! a bad record never stops the run, and every record is accounted for ([`Stats`]): emitted,
//! filtered on purpose, merged into another record, or returned as an error carrying its line,
//! field, reason and raw bytes for the suspense queue. No reader panics on any input.
//!
//! Readers:
//! * [`DelimitedReader`]: any delimited file, driven by a TOML [`Mapping`]
//!   (`docs/ingest-mapping.md`).
//! * [`asterisk::MasterCsvReader`] (legs) and [`asterisk::CallReader`] (calls): Asterisk
//!   `cdr_csv` `Master.csv`, 16/17/18/21 columns.
//! * [`freeswitch::CsvReader`]: FreeSWITCH `mod_cdr_csv` templates.
//! * [`freeswitch::JsonReader`]: FreeSWITCH `mod_json_cdr` documents.
//! * [`cgrates::CsvReader`]: CGRateS CDR CSV (the `*default` export/import layout).
//!
//! [`Cleansing`] then says which records are not to be billed (too short, unanswered,
//! internal), with a reason to count.
//!
//! [`pipeline`] joins them to rating and the store: cleanse, rate, charge and persist in
//! batches, with the suspense queue, retries and the dead-letter store.
//!
//! See `docs/ingest.md`.

pub mod asterisk;
pub mod cdr;
pub mod cgrates;
pub mod cleanse;
pub mod error;
pub mod freeswitch;
pub mod mapping;
pub mod pipeline;
pub mod split;
pub mod stream;
mod value;

pub use cdr::{Cdr, Direction, Disposition, Stats};
pub use cleanse::{Cleansing, Skip};
pub use error::{ConfigError, ErrorKind, RecordError};
pub use mapping::{DelimitedReader, Mapping};
pub use value::{EpochUnit, TimeFormat};
