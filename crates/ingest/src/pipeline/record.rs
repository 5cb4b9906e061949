//! A CDR as JSON: how a parsed record is kept in the suspense queue and in dead-letter files,
//! and how an operator edits it before it is re-processed.
//!
//! Human-writable on purpose: times are RFC 3339 with the source's offset, voice usage is a
//! duration (`73s`, `1m13.5s`), so a fix is an edit of one readable field.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::Offset;
use toll_core::UsageKind;
use toll_core::civil::parse_rfc3339;
use toll_core::usage::{GoDuration, Tor, parse_voice_usage};

use crate::cdr::{Cdr, Direction, Disposition};

/// The editable form of a [`Cdr`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrJson {
    pub source: String,
    pub record_id: String,
    pub caller: String,
    pub callee: String,
    /// RFC 3339 with the source clock's offset.
    pub start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    pub kind: UsageKind,
    /// Voice: a duration (`73s`); other kinds: a whole number of units.
    pub usage: String,
    pub disposition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    #[serde(default)]
    pub line: u64,
}

/// Why an edited record is not a CDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RecordJsonError {
    pub field: &'static str,
    pub reason: String,
}

fn bad(field: &'static str, reason: impl Into<String>) -> RecordJsonError {
    RecordJsonError {
        field,
        reason: reason.into(),
    }
}

impl CdrJson {
    pub fn from_cdr(c: &Cdr) -> CdrJson {
        let stamp = |t: Timestamp| t.to_zoned(jiff::tz::TimeZone::fixed(c.offset)).to_string();
        let stamp = |t: Timestamp| {
            // `Zoned` prints `…+08:00[+08:00]`; the bracket is noise for a fixed offset.
            let s = stamp(t);
            match s.find('[') {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        };
        let usage = match c.tor() {
            Some(Tor::Voice) => GoDuration(c.usage).to_string(),
            _ => c.usage.to_string(),
        };
        CdrJson {
            source: c.source.to_string(),
            record_id: c.record_id.clone(),
            caller: c.caller.clone(),
            callee: c.callee.clone(),
            start: stamp(c.start),
            answer: c.answer.map(stamp),
            end: c.end.map(stamp),
            kind: c.kind.clone(),
            usage,
            disposition: c.disposition.as_str().to_string(),
            tenant: c.tenant.clone(),
            category: c.category.clone(),
            account: c.account.clone(),
            service: c.service.clone(),
            direction: c.direction.map(|d| d.as_str().to_string()),
            call_id: c.call_id.clone(),
            extra: c.extra.clone(),
            line: c.line,
        }
    }

    /// Back to a CDR; `raw` is kept as the record's bytes.
    pub fn to_cdr(&self, raw: Vec<u8>) -> Result<Cdr, RecordJsonError> {
        let time =
            |field: &'static str, text: &str| -> Result<(Timestamp, Offset), RecordJsonError> {
                let p = parse_rfc3339(text).map_err(|e| {
                    bad(
                        field,
                        format!("{text:?} is not RFC 3339 with an offset: {e}"),
                    )
                })?;
                let ts = Timestamp::from_nanosecond(i128::from(p.epoch_ns))
                    .map_err(|e| bad(field, e.to_string()))?;
                let off = Offset::from_seconds(p.offset_seconds)
                    .map_err(|e| bad(field, e.to_string()))?;
                Ok((ts, off))
            };
        let (start, offset) = time("start", &self.start)?;
        let answer = self
            .answer
            .as_deref()
            .map(|t| time("answer", t).map(|x| x.0))
            .transpose()?;
        let end = self
            .end
            .as_deref()
            .map(|t| time("end", t).map(|x| x.0))
            .transpose()?;
        let usage = match self.kind {
            UsageKind::Voice => parse_voice_usage(&self.usage)
                .map(|u| u.raw())
                .map_err(|e| bad("usage", format!("{:?}: {e}", self.usage)))?,
            _ => self
                .usage
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("usage", format!("{:?} is not a whole number", self.usage)))?,
        };
        if usage < 0 {
            return Err(bad("usage", "negative"));
        }
        let disposition = Disposition::parse(&self.disposition).ok_or_else(|| {
            bad(
                "disposition",
                format!("{:?} is not known", self.disposition),
            )
        })?;
        let direction = self
            .direction
            .as_deref()
            .map(|d| Direction::parse(d).ok_or_else(|| bad("direction", format!("{d:?}"))))
            .transpose()?;
        for (field, v) in [
            ("source", &self.source),
            ("record_id", &self.record_id),
            ("caller", &self.caller),
        ] {
            if v.trim().is_empty() {
                return Err(bad(field, "missing"));
            }
        }
        Ok(Cdr {
            source: Arc::from(self.source.as_str()),
            record_id: self.record_id.clone(),
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            start,
            offset,
            answer,
            end,
            kind: self.kind.clone(),
            usage,
            disposition,
            tenant: self.tenant.clone(),
            category: self.category.clone(),
            account: self.account.clone(),
            service: self.service.clone(),
            direction,
            call_id: self.call_id.clone(),
            extra: self.extra.clone(),
            lossy_fields: Vec::new(),
            line: self.line,
            raw,
            merged_lines: Vec::new(),
        })
    }
}

/// Reads `CdrJson` records, one JSON object per line (NDJSON): Toll's own interchange form (HTTP
/// batches, NATS messages, `toll import --format cdr-json`). A line that is not a record is a
/// [`crate::RecordError`] with its line and bytes; blank lines are skipped.
#[derive(Debug)]
pub struct CdrJsonReader<R: std::io::Read> {
    input: std::io::BufReader<R>,
    line: u64,
    buf: Vec<u8>,
    stats: crate::Stats,
    done: bool,
}

/// Longest line accepted: a record is a few hundred bytes.
const MAX_LINE: usize = 1 << 20;

impl<R: std::io::Read> CdrJsonReader<R> {
    pub fn new(input: R) -> CdrJsonReader<R> {
        CdrJsonReader {
            input: std::io::BufReader::new(input),
            line: 0,
            buf: Vec::new(),
            stats: crate::Stats::default(),
            done: false,
        }
    }

    pub fn stats(&self) -> crate::Stats {
        self.stats
    }
}

/// One record from its JSON bytes; `line` is where it was.
pub fn parse_cdr_json(raw: &[u8], line: u64) -> Result<Cdr, crate::RecordError> {
    use crate::error::ErrorKind;
    let fail = |field: Option<String>, kind: ErrorKind| crate::RecordError {
        line,
        field,
        kind,
        raw: raw.to_vec(),
    };
    let rec: CdrJson =
        serde_json::from_slice(raw).map_err(|e| fail(None, ErrorKind::Json(e.to_string())))?;
    let mut cdr = rec.to_cdr(raw.to_vec()).map_err(|e| {
        fail(
            Some(e.field.to_string()),
            ErrorKind::Invalid {
                value: String::new(),
                reason: e.reason,
            },
        )
    })?;
    if cdr.line == 0 {
        cdr.line = line;
    }
    Ok(cdr)
}

impl<R: std::io::Read> Iterator for CdrJsonReader<R> {
    type Item = Result<Cdr, crate::RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::BufRead;
        while !self.done {
            self.buf.clear();
            let n = match std::io::Read::take(&mut self.input, MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(n) => n,
                Err(e) => {
                    self.done = true;
                    self.stats.errors += 1;
                    return Some(Err(crate::RecordError {
                        line: self.line + 1,
                        field: None,
                        kind: crate::ErrorKind::Io(e.to_string()),
                        raw: Vec::new(),
                    }));
                }
            };
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            while self.buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.stats.records += 1;
            if self.buf.len() > MAX_LINE {
                // Skip the rest of the over-long line.
                let mut rest = Vec::new();
                let _ = self.input.read_until(b'\n', &mut rest);
                self.stats.errors += 1;
                let mut raw = std::mem::take(&mut self.buf);
                raw.truncate(1024);
                return Some(Err(crate::RecordError {
                    line: self.line,
                    field: None,
                    kind: crate::ErrorKind::TooLong { limit: MAX_LINE },
                    raw,
                }));
            }
            let r = parse_cdr_json(&self.buf, self.line);
            match &r {
                Ok(_) => self.stats.emitted += 1,
                Err(_) => self.stats.errors += 1,
            }
            return Some(r);
        }
        None
    }
}
