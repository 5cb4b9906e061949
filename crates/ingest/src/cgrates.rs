//! CGRateS CDR CSV: the layout of CGRateS's `*default` CDR export (cdre) and of its `*default`
//! CSV reader (cdrc / ERs `*file_csv`), so files moved between CGRateS and Toll read unchanged.
//!
//! Columns (0-based, as CGRateS's `~*req.N` numbers them): 0 CGRID, 1 RunID, 2 ToR, 3 OriginID,
//! 4 RequestType, 5 Direction (older exports; CGRateS's reader skips it), 6 Tenant, 7 Category,
//! 8 Account, 9 Subject, 10 Destination, 11 SetupTime, 12 AnswerTime, 13 Usage, then optionally
//! 14 Cost and extra fields (kept in `extra` as `col14`, `col15`, …; 14 also as `cost`).
//!
//! * Times: RFC 3339, Go's `time.String()` (`2013-11-07 08:42:25 +0000 UTC`), `YYYY-MM-DD
//!   HH:MM:SS` in the reader's zone, or epoch seconds. Go's zero time (`0001-01-01…`), empty and
//!   `0` mean "never": an AnswerTime like that is an unanswered call.
//! * Usage: voice is a Go duration (`10s`, `1m30.5s`, `250ms`) or **a bare number of seconds**;
//!   SMS, data and other kinds are counts (CGRateS stores them as a duration's nanoseconds, so
//!   `1.024µs` is 1024 units, and a bare number is the count).
//! * `subject` → caller, `account` → account, `destination` → callee, `OriginID` → record id
//!   (`OriginID|RunID` for runs other than `*default`, which CGRateS derives from the same
//!   origin), ToR `*voice`/`*sms`/`*data` → kind, other ToRs (`*mms`, `*generic`) → custom kinds.
//! * A first line that is a header (first field `CGRID` or starting with `#`) is skipped.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::sync::Arc;

use jiff::tz::TimeZone;
use toll_core::UsageKind;
use toll_core::usage::parse_duration;

use crate::cdr::{Cdr, Direction, Disposition, Stats};
use crate::error::{ErrorKind, FieldError, RecordError};
use crate::split::{Next, RawRecord, SplitOptions, Splitter};
use crate::value::{Row, TimeFormat};

const NAMES: [&str; 15] = [
    "CGRID",
    "RunID",
    "ToR",
    "OriginID",
    "RequestType",
    "Direction",
    "Tenant",
    "Category",
    "Account",
    "Subject",
    "Destination",
    "SetupTime",
    "AnswerTime",
    "Usage",
    "Cost",
];

/// Reads a CGRateS CDR CSV.
#[derive(Debug)]
pub struct CsvReader<R: Read> {
    split: Splitter<BufReader<R>>,
    rec: RawRecord,
    zone: TimeZone,
    source: Arc<str>,
    first: bool,
    stats: Stats,
}

impl<R: Read> CsvReader<R> {
    /// `zone` applies only to times written without an offset (CGRateS's `timezone` option,
    /// default the server's local zone). `delimiter`: CGRateS's `csvFieldSeparator`, `,` by
    /// default.
    pub fn new(
        input: R,
        zone: TimeZone,
        delimiter: u8,
        source: impl Into<Arc<str>>,
    ) -> CsvReader<R> {
        let opts = SplitOptions {
            delimiter,
            ..SplitOptions::default()
        };
        CsvReader {
            split: Splitter::new(BufReader::new(input), opts),
            rec: RawRecord::default(),
            zone,
            source: source.into(),
            first: true,
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn is_header(&self) -> bool {
        let f = self.rec.get(0).unwrap_or(&[]);
        f == b"CGRID" || f.starts_with(b"#")
    }

    fn build(&self) -> Result<Cdr, FieldError> {
        let row = Row {
            rec: &self.rec,
            names: &NAMES,
        };
        let tor = row.required(2)?;
        let kind = {
            let t = tor.trim().trim_start_matches('*').to_ascii_lowercase();
            t.parse::<UsageKind>()
                .map_err(|e| FieldError::new("ToR", ErrorKind::invalid(tor, e.to_string())))?
        };
        let origin = row.required(3)?;
        let run = row.strict(1)?;
        let record_id = if run.is_empty() || run == "*default" || run == "default" {
            origin.to_string()
        } else {
            format!("{origin}|{run}")
        };
        let detect = TimeFormat::Detect;
        let (start, offset) = row
            .time(11, &detect, &self.zone)?
            .ok_or_else(|| FieldError::new("SetupTime", ErrorKind::Missing))?;
        let answer = row.time(12, &detect, &self.zone)?.map(|(t, _)| t);
        let usage_text = row.required(13)?;
        let bad_usage = |r: String| FieldError::new("Usage", ErrorKind::invalid(usage_text, r));
        let usage = match kind {
            UsageKind::Voice => toll_core::usage::parse_voice_usage(usage_text)
                .map_err(|e| bad_usage(e.to_string()))?
                .raw(),
            _ => {
                parse_duration(usage_text)
                    .map_err(|e| bad_usage(e.to_string()))?
                    .0
            }
        };
        let disposition = if answer.is_some() || usage > 0 {
            Disposition::Answered
        } else {
            Disposition::NoAnswer
        };
        let direction = row.strict(5)?;
        let mut lossy = Vec::new();
        let mut extra = BTreeMap::new();
        extra.insert("cgrid".to_string(), row.lossy(0, &mut lossy));
        extra.insert("run_id".to_string(), run.to_string());
        extra.insert("request_type".to_string(), row.lossy(4, &mut lossy));
        if self.rec.len() > 14 {
            extra.insert("cost".to_string(), row.lossy(14, &mut lossy));
        }
        for i in 14..self.rec.len() {
            let name = format!("col{i}");
            let v = crate::value::lossy(&name, row.bytes(i), &mut lossy);
            extra.insert(name, v);
        }
        Ok(Cdr {
            source: self.source.clone(),
            record_id,
            caller: row.required(9)?.to_string(),
            callee: row.required(10)?.to_string(),
            start,
            offset,
            answer,
            end: None,
            kind,
            usage,
            disposition,
            tenant: row.opt(6)?,
            category: row.opt(7)?,
            account: row.opt(8)?,
            service: None,
            direction: Direction::parse(direction),
            call_id: None,
            extra,
            lossy_fields: lossy,
            line: self.rec.line,
            raw: self.rec.raw.clone(),
            merged_lines: Vec::new(),
        })
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<Cdr, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let out = match self.split.next_into(&mut self.rec) {
                Next::End => return None,
                Next::Bad(kind) => Err(RecordError::record(self.rec.line, kind, &self.rec.raw)),
                Next::Record if std::mem::take(&mut self.first) && self.is_header() => continue,
                Next::Record if self.rec.len() < 14 => Err(RecordError::record(
                    self.rec.line,
                    ErrorKind::ColumnCount {
                        found: self.rec.len(),
                        expected: "at least 14".into(),
                    },
                    &self.rec.raw,
                )),
                Next::Record => self.build().map_err(|e| e.at(self.rec.line, &self.rec.raw)),
            };
            self.first = false;
            self.stats.records += 1;
            match &out {
                Ok(_) => self.stats.emitted += 1,
                Err(_) => self.stats.errors += 1,
            }
            return Some(out);
        }
    }
}
