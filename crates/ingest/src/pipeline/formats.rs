//! Which reader a feed uses, as a small serialisable spec: the pipeline opens files with it and
//! keeps it with every suspense item, so an item's raw bytes can be read again after an edit.

use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use jiff::tz::TimeZone;

use crate::cdr::{Cdr, Stats};
use crate::error::{ConfigError, RecordError};
use crate::{asterisk, cgrates, freeswitch, mapping};

/// The presets and the mapped reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Asterisk `Master.csv`, legs of a call grouped, the answered leg billed.
    Asterisk,
    /// FreeSWITCH `mod_cdr_csv` with a template.
    Freeswitch,
    /// FreeSWITCH `mod_json_cdr` documents.
    FreeswitchJson,
    /// CGRateS CDR CSV.
    Cgrates,
    /// Any delimited file, read by a TOML mapping.
    Mapping,
    /// Toll's own JSON form of a CDR ([`crate::pipeline::record::CdrJson`]), one per line.
    CdrJson,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Asterisk => "asterisk",
            Format::Freeswitch => "freeswitch",
            Format::FreeswitchJson => "freeswitch-json",
            Format::Cgrates => "cgrates",
            Format::Mapping => "mapping",
            Format::CdrJson => "cdr-json",
        }
    }
}

/// How to read a feed. Kept (as JSON) with each suspense item of the feed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReaderSpec {
    pub format: Format,
    /// The switch's zone, for times written without an offset (IANA name).
    #[serde(default = "utc")]
    pub zone: String,
    /// FreeSWITCH CSV template: default, example, snom, linksys or asterisk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// The mapping file (`Format::Mapping`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<PathBuf>,
    /// The lines before the first record (skipped lines and header) of a mapped file: a raw
    /// record is read again after them, so that columns resolve by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preamble: Option<String>,
}

fn utc() -> String {
    "UTC".to_string()
}

impl ReaderSpec {
    pub fn new(format: Format, zone: &str) -> ReaderSpec {
        ReaderSpec {
            format,
            zone: zone.to_string(),
            template: None,
            mapping: None,
            preamble: None,
        }
    }

    /// The spec as the suspense queue stores it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!("{{\"format\":\"{}\"}}", self.format.as_str()))
    }

    pub fn from_json(text: &str) -> Result<ReaderSpec, ConfigError> {
        serde_json::from_str(text).map_err(|e| ConfigError::Format(format!("reader spec: {e}")))
    }

    fn time_zone(&self) -> Result<TimeZone, ConfigError> {
        TimeZone::get(&self.zone)
            .map_err(|e| ConfigError::Format(format!("zone {:?}: {e}", self.zone)))
    }

    fn template(&self) -> Result<freeswitch::Template, ConfigError> {
        Ok(match self.template.as_deref().unwrap_or("default") {
            "default" => freeswitch::Template::Default,
            "example" => freeswitch::Template::Example,
            "snom" => freeswitch::Template::Snom,
            "linksys" => freeswitch::Template::Linksys,
            "asterisk" => freeswitch::Template::Asterisk,
            other => {
                return Err(ConfigError::Format(format!(
                    "FreeSWITCH template {other:?}: expected default, example, snom, linksys or asterisk"
                )));
            }
        })
    }

    fn load_mapping(&self) -> Result<mapping::Mapping, ConfigError> {
        let path = self
            .mapping
            .as_ref()
            .ok_or_else(|| ConfigError::Format("the mapping format needs a mapping file".into()))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Format(format!("mapping {}: {e}", path.display())))?;
        mapping::Mapping::from_toml(&text)
    }

    /// Opens a reader over `input`. For a mapped file with skipped lines or a header, those
    /// lines are kept in `self.preamble`.
    pub fn open<'r>(
        &mut self,
        input: impl Read + Send + 'r,
        source: &str,
    ) -> Result<Box<dyn CdrStream + 'r>, ConfigError> {
        let zone = self.time_zone()?;
        let source: Arc<str> = Arc::from(source);
        Ok(match self.format {
            Format::Asterisk => Box::new(asterisk::CallReader::new(
                input,
                asterisk::Options::new(zone),
                source,
            )),
            Format::Freeswitch => Box::new(freeswitch::CsvReader::new(
                input,
                &self.template()?,
                zone,
                source,
            )),
            Format::FreeswitchJson => Box::new(freeswitch::JsonReader::new(
                input,
                freeswitch::JsonOptions::new(zone),
                source,
            )),
            Format::Cgrates => Box::new(cgrates::CsvReader::new(input, zone, b',', source)),
            // The records name their own source and times with offsets.
            Format::CdrJson => Box::new(super::record::CdrJsonReader::new(input)),
            Format::Mapping => {
                let m = self.load_mapping()?;
                let lines = m.format.skip_lines + u64::from(m.format.header);
                let mut buffered = BufReader::new(input);
                let mut preamble = Vec::new();
                for _ in 0..lines {
                    if buffered
                        .read_until(b'\n', &mut preamble)
                        .map_err(|e| ConfigError::Header(e.to_string()))?
                        == 0
                    {
                        break;
                    }
                }
                self.preamble = Some(String::from_utf8_lossy(&preamble).into_owned());
                Box::new(mapping::DelimitedReader::new(
                    Cursor::new(preamble).chain(buffered),
                    &m,
                    source,
                )?)
            }
        })
    }

    /// Reads one raw record again (after an edit): the first record the reader makes of it.
    pub fn reparse(&self, raw: &[u8], source: &str) -> Result<Cdr, ReparseError> {
        let mut bytes = Vec::with_capacity(raw.len() + 64);
        if self.format == Format::Mapping {
            bytes.extend_from_slice(self.preamble.as_deref().unwrap_or("").as_bytes());
        }
        bytes.extend_from_slice(raw);
        bytes.push(b'\n');
        let mut spec = self.clone();
        let mut reader = spec.open(Cursor::new(bytes), source)?;
        match reader.next() {
            Some(Ok(cdr)) => Ok(cdr),
            Some(Err(e)) => Err(ReparseError::Record(e)),
            None => Err(ReparseError::Empty),
        }
    }
}

/// Why a raw record could not be read again.
#[derive(Debug, thiserror::Error)]
pub enum ReparseError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Record(RecordError),
    #[error("the record holds nothing a reader keeps (filtered, or an unanswered leg)")]
    Empty,
}

/// A reader: records or errors, and its counts so far.
pub trait CdrStream: Iterator<Item = Result<Cdr, RecordError>> + Send {
    fn stats(&self) -> Stats;
}

macro_rules! stream {
    ($($t:ty),*) => {$(
        impl<R: Read + Send> CdrStream for $t {
            fn stats(&self) -> Stats {
                <$t>::stats(self)
            }
        }
    )*};
}

stream!(
    super::record::CdrJsonReader<R>,
    asterisk::CallReader<R>,
    asterisk::MasterCsvReader<R>,
    freeswitch::CsvReader<R>,
    freeswitch::JsonReader<R>,
    cgrates::CsvReader<R>,
    mapping::DelimitedReader<R>
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const GOOD: &str = r#"{"source":"api","record_id":"r1","caller":"13800138000","callee":"01088886666","start":"2026-11-23T10:00:00+08:00","kind":"voice","usage":"61s","disposition":"answered"}"#;

    #[test]
    fn cdr_json_lines_read_and_a_queued_message_reads_again() {
        let text = format!("{GOOD}\n\n{{not json\n{}\n", GOOD.replace("61s", "-1s"));
        let mut spec = ReaderSpec::new(Format::CdrJson, "UTC");
        let mut r = spec.open(Cursor::new(text.into_bytes()), "x").unwrap();
        let first = r.next().unwrap().unwrap();
        assert_eq!(
            (first.record_id.as_str(), first.usage, first.line),
            ("r1", 61_000_000_000, 1)
        );
        assert_eq!(first.offset.seconds(), 8 * 3600);
        let bad = r.next().unwrap().unwrap_err();
        assert_eq!((bad.line, bad.raw.as_slice()), (3, b"{not json".as_slice()));
        let negative = r.next().unwrap().unwrap_err();
        assert_eq!(negative.field.as_deref(), Some("usage"));
        assert!(r.next().is_none());
        assert_eq!(r.stats().records, 3);
        assert_eq!(r.stats().errors, 2);
        // A NATS worker queues an unreadable message with this reader; once edited, it reads.
        let queued = ReaderSpec::from_json(r#"{"format":"cdr-json","via":"nats"}"#).unwrap();
        assert_eq!(
            queued.reparse(GOOD.as_bytes(), "nats").unwrap().record_id,
            "r1"
        );
        assert!(queued.reparse(b"{", "nats").is_err());
    }
}
