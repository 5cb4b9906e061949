//! Asterisk `cdr_csv` `Master.csv` (`docs/cdr-formats.md` §1.1).
//!
//! Dedicated code rather than a mapping, because the file's width varies with options (16, 17,
//! 18 or 21 columns, told apart per row) and because billing needs the rows of one call grouped.
//!
//! * [`MasterCsvReader`] yields one [`Cdr`] per row: a *leg* (party A / party B pairing).
//! * [`CallReader`] groups legs into calls by `linkedid` (21 columns) or `uniqueid` (17/18
//!   columns) and emits each `ANSWERED` leg as a billable record, usage = `billsec`; the call's
//!   other legs are folded into the first billed leg ([`Cdr::merged_lines`]). A call without an
//!   answered leg is emitted once, with zero usage and the disposition of its most telling leg
//!   (`NO ANSWER` over `BUSY` over `CONGESTION` over `FAILED`).
//!
//! Field mapping: `src` → caller (may be empty: Asterisk writes no number for a withheld caller
//! ID, and the record is still real), `dst` → callee (the dialplan extension; the number sent
//! to a trunk may only be in `lastdata`, kept in `extra`), `accountcode` → account,
//! `start`/`answer`/`end` in the PBX's zone (the file has none; `usegmtime=yes` means UTC),
//! `billsec` → usage. Every other column goes to `extra` under its Asterisk name; `clid`,
//! `lastdata` and the other descriptive columns are decoded lossily (garbled caller names are
//! common), the columns that identify, time or measure the call must be UTF-8.
//!
//! Record ids, unique per source: `uniqueid|sequence` (21 columns), `uniqueid|dstchannel|start`
//! (17/18: forked legs share `uniqueid` and differ by `dstchannel`), `channel|dstchannel|start`
//! (16: channel names carry a per-process counter).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufReader, Read};
use std::sync::Arc;

use jiff::tz::TimeZone;
use toll_core::UsageKind;

use crate::cdr::{Cdr, Disposition, Stats};
use crate::error::{ErrorKind, FieldError, RecordError};
use crate::split::{Next, RawRecord, SplitOptions, Splitter};
use crate::value::{Row, TimeFormat};

/// Column names in `cdr_csv` order (0-based index = position).
pub const COLUMNS: [&str; 21] = [
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
    "peeraccount",
    "linkedid",
    "sequence",
];

const ACCOUNTCODE: usize = 0;
const SRC: usize = 1;
const DST: usize = 2;
const CHANNEL: usize = 5;
const DSTCHANNEL: usize = 6;
const START: usize = 9;
const ANSWER: usize = 10;
const END: usize = 11;
const DURATION: usize = 12;
const BILLSEC: usize = 13;
const DISPOSITION: usize = 14;
const UNIQUEID: usize = 16;
const LINKEDID: usize = 19;
const SEQUENCE: usize = 20;

/// Descriptive columns kept in `extra`, decoded lossily.
const EXTRA: [usize; 10] = [3, 4, 5, 6, 7, 8, 15, 16, 17, 18];

/// How a `Master.csv` is read.
#[derive(Debug, Clone)]
pub struct Options {
    /// The PBX's zone: `UTC` if `cdr.conf` has `usegmtime=yes` (the sample config), else the
    /// server's local zone.
    pub zone: TimeZone,
    /// Asterisk drops records over 1024 bytes; anything much longer is not a cdr_csv record.
    pub max_record_bytes: usize,
}

impl Options {
    pub fn new(zone: TimeZone) -> Options {
        Options {
            zone,
            max_record_bytes: 4096,
        }
    }
}

/// One [`Cdr`] per `Master.csv` row (a leg).
#[derive(Debug)]
pub struct MasterCsvReader<R: Read> {
    split: Splitter<BufReader<R>>,
    rec: RawRecord,
    zone: TimeZone,
    source: Arc<str>,
    stats: Stats,
}

impl<R: Read> MasterCsvReader<R> {
    pub fn new(input: R, options: Options, source: impl Into<Arc<str>>) -> MasterCsvReader<R> {
        let opts = SplitOptions {
            delimiter: b',',
            quote: Some(b'"'),
            max_record_bytes: options.max_record_bytes,
            multiline: false,
        };
        MasterCsvReader {
            split: Splitter::new(BufReader::new(input), opts),
            rec: RawRecord::default(),
            zone: options.zone,
            source: source.into(),
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn leg(&self) -> Result<Cdr, FieldError> {
        let row = Row {
            rec: &self.rec,
            names: &COLUMNS,
        };
        let width = self.rec.len();
        let caller = row.strict(SRC)?.to_string();
        let callee = row.required(DST)?.to_string();
        let iso = TimeFormat::Iso;
        let (start, offset) = row
            .time(START, &iso, &self.zone)?
            .ok_or_else(|| FieldError::new("start", ErrorKind::Missing))?;
        let answer = row.time(ANSWER, &iso, &self.zone)?.map(|(t, _)| t);
        let (end, _) = row
            .time(END, &iso, &self.zone)?
            .ok_or_else(|| FieldError::new("end", ErrorKind::Missing))?;
        let duration = row.whole(DURATION)?;
        let billsec = row.whole(BILLSEC)?;
        if billsec > duration {
            return Err(FieldError::new(
                "billsec",
                ErrorKind::invalid(
                    &billsec.to_string(),
                    format!("longer than duration ({duration})"),
                ),
            ));
        }
        let disp_text = row.required(DISPOSITION)?;
        let disposition = Disposition::parse(disp_text).ok_or_else(|| {
            FieldError::new(
                "disposition",
                ErrorKind::invalid(
                    disp_text,
                    "expected ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION or UNKNOWN",
                ),
            )
        })?;
        let usage = billsec
            .checked_mul(1_000_000_000)
            .ok_or_else(|| FieldError::new("billsec", ErrorKind::invalid("", "too large")))?;
        let (record_id, call_id) = match width {
            21 => {
                let uniqueid = row.required(UNIQUEID)?;
                let seq = row.whole(SEQUENCE)?;
                let linkedid = row.required(LINKEDID)?;
                (format!("{uniqueid}|{seq}"), Some(linkedid.to_string()))
            }
            17 | 18 => {
                let uniqueid = row.required(UNIQUEID)?;
                let dstchannel = row.strict(DSTCHANNEL)?;
                let start = row.strict(START)?;
                (
                    format!("{uniqueid}|{dstchannel}|{start}"),
                    Some(uniqueid.to_string()),
                )
            }
            _ => {
                let channel = row.required(CHANNEL)?;
                let dstchannel = row.strict(DSTCHANNEL)?;
                let start = row.strict(START)?;
                (format!("{channel}|{dstchannel}|{start}"), None)
            }
        };
        let mut lossy = Vec::new();
        let mut extra = BTreeMap::new();
        for i in EXTRA.into_iter().filter(|&i| i < width) {
            extra.insert(COLUMNS[i].to_string(), row.lossy(i, &mut lossy));
        }
        extra.insert("disposition".into(), disp_text.to_string());
        extra.insert("duration".into(), duration.to_string());
        if width == 21 {
            extra.insert("linkedid".into(), call_id.clone().unwrap_or_default());
            extra.insert("sequence".into(), row.strict(SEQUENCE)?.to_string());
        }
        Ok(Cdr {
            source: self.source.clone(),
            record_id,
            caller,
            callee,
            start,
            offset,
            answer,
            end: Some(end),
            kind: UsageKind::Voice,
            usage,
            disposition,
            tenant: None,
            category: None,
            account: row.opt(ACCOUNTCODE)?,
            service: None,
            direction: None,
            call_id,
            extra,
            lossy_fields: lossy,
            line: self.rec.line,
            raw: self.rec.raw.clone(),
            merged_lines: Vec::new(),
        })
    }
}

impl<R: Read> Iterator for MasterCsvReader<R> {
    type Item = Result<Cdr, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let out = match self.split.next_into(&mut self.rec) {
            Next::End => return None,
            Next::Bad(kind) => Err(RecordError::record(self.rec.line, kind, &self.rec.raw)),
            Next::Record => match self.rec.len() {
                16 | 17 | 18 | 21 => self.leg().map_err(|e| e.at(self.rec.line, &self.rec.raw)),
                n => Err(RecordError::record(
                    self.rec.line,
                    ErrorKind::ColumnCount {
                        found: n,
                        expected: "16, 17, 18 or 21".into(),
                    },
                    &self.rec.raw,
                )),
            },
        };
        self.stats.records += 1;
        match &out {
            Ok(_) => self.stats.emitted += 1,
            Err(_) => self.stats.errors += 1,
        }
        Some(out)
    }
}

#[derive(Debug)]
struct OpenCall {
    key: String,
    last_line: u64,
    legs: Vec<Cdr>,
}

/// Calls out of a `Master.csv`: legs grouped by `linkedid`/`uniqueid`, answered legs billed.
///
/// Asterisk writes a call's rows when the call ends, usually together, but rows of concurrent
/// calls can interleave. A call is therefore held open until `window` records have passed
/// since its last leg (or more than `max_open` calls are open), which keeps memory bounded. A leg
/// arriving after its call was closed starts a new group: its record ids still differ, so
/// nothing is billed twice, and a wider window fixes it.
#[derive(Debug)]
pub struct CallReader<R: Read> {
    legs: MasterCsvReader<R>,
    window: u64,
    max_open: usize,
    open: VecDeque<OpenCall>,
    /// Where each open call is: its position in `open` plus `first`. Looking a leg's call up
    /// by scanning `open` cost the whole window per leg (6 µs a record at the default 1000).
    index: HashMap<String, u64>,
    /// The sequence number of `open`'s front.
    first: u64,
    ready: VecDeque<Result<Cdr, RecordError>>,
    merged: u64,
    emitted: u64,
    done: bool,
}

impl<R: Read> CallReader<R> {
    pub fn new(input: R, options: Options, source: impl Into<Arc<str>>) -> CallReader<R> {
        CallReader {
            legs: MasterCsvReader::new(input, options, source),
            window: 1000,
            max_open: 10_000,
            open: VecDeque::new(),
            index: HashMap::new(),
            first: 0,
            ready: VecDeque::new(),
            merged: 0,
            emitted: 0,
            done: false,
        }
    }

    /// Records (not lines) after a call's last leg before it is closed; default 1000.
    pub fn with_window(mut self, window: u64, max_open: usize) -> CallReader<R> {
        self.window = window.max(1);
        self.max_open = max_open.max(1);
        self
    }

    /// Counts in records (legs): `emitted` counts billed or representative legs, `merged` the
    /// legs folded into them.
    pub fn stats(&self) -> Stats {
        let legs = self.legs.stats();
        Stats {
            records: legs.records,
            emitted: self.emitted,
            filtered: 0,
            errors: legs.errors,
            merged: self.merged,
        }
    }

    fn close_front(&mut self) {
        if let Some(call) = self.open.pop_front() {
            self.index.remove(&call.key);
            self.first += 1;
            for cdr in resolve(call.legs, &mut self.merged) {
                self.emitted += 1;
                self.ready.push_back(Ok(cdr));
            }
        }
    }

    fn add(&mut self, leg: Cdr) {
        let key = leg.call_id.clone().unwrap_or_else(|| leg.record_id.clone());
        let line = leg.line;
        let found = self
            .index
            .get(&key)
            .and_then(|seq| usize::try_from(seq - self.first).ok())
            .and_then(|pos| self.open.get_mut(pos));
        match found {
            Some(call) => {
                debug_assert_eq!(call.key, key);
                call.last_line = line;
                call.legs.push(leg);
            }
            None => {
                let seq = self.first + self.open.len() as u64;
                self.index.insert(key.clone(), seq);
                self.open.push_back(OpenCall {
                    key,
                    last_line: line,
                    legs: vec![leg],
                });
            }
        }
    }
}

/// Rank for picking the disposition of an unanswered call: what the caller experienced.
fn unanswered_rank(d: Disposition) -> u8 {
    match d {
        Disposition::NoAnswer => 0,
        Disposition::Busy => 1,
        Disposition::Congestion => 2,
        Disposition::Failed => 3,
        Disposition::Unknown | Disposition::Answered => 4,
    }
}

/// The billable records of one call, in line order.
fn resolve(mut legs: Vec<Cdr>, merged: &mut u64) -> Vec<Cdr> {
    legs.sort_by_key(|l| l.line);
    let any_answered = legs.iter().any(|l| l.disposition == Disposition::Answered);
    let pick: Vec<bool> = if any_answered {
        legs.iter()
            .map(|l| l.disposition == Disposition::Answered)
            .collect()
    } else {
        let best = legs
            .iter()
            .enumerate()
            .min_by_key(|(i, l)| (unanswered_rank(l.disposition), *i))
            .map(|(i, _)| i)
            .unwrap_or(0);
        (0..legs.len()).map(|i| i == best).collect()
    };
    let folded: Vec<u64> = legs
        .iter()
        .zip(&pick)
        .filter(|(_, p)| !**p)
        .map(|(l, _)| l.line)
        .collect();
    *merged += folded.len() as u64;
    let mut out: Vec<Cdr> = legs
        .into_iter()
        .zip(pick)
        .filter(|(_, p)| *p)
        .map(|(l, _)| l)
        .collect();
    if let Some(first) = out.first_mut() {
        first.merged_lines = folded;
        if first.disposition != Disposition::Answered {
            first.usage = 0;
        }
    }
    out
}

impl<R: Read> Iterator for CallReader<R> {
    type Item = Result<Cdr, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if self.done {
                if self.open.is_empty() {
                    return None;
                }
                self.close_front();
                continue;
            }
            match self.legs.next() {
                None => self.done = true,
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(leg)) => {
                    let now = leg.line;
                    self.add(leg);
                    while let Some(front) = self.open.front() {
                        if front.last_line + self.window <= now || self.open.len() > self.max_open {
                            self.close_front();
                        } else {
                            break;
                        }
                    }
                }
            }
        }
    }
}
