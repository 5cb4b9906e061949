//! FreeSWITCH CDRs (`docs/cdr-formats.md` §2): `mod_cdr_csv` templates and `mod_json_cdr`
//! documents.
//!
//! Both map the same channel variables: `uuid` → record id, `caller_id_number` → caller,
//! `destination_number` → callee, `accountcode` → account, `call_uuid` → call id, `direction`,
//! and `hangup_cause` (Q.850) → disposition. A channel with an answer time (or billed time) is
//! `Answered` whatever its cause; an unanswered one is classified by its cause
//! ([`Disposition::from_q850_unanswered`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;
use toll_core::UsageKind;

use crate::cdr::{Cdr, Direction, Disposition, Stats};
use crate::error::{ErrorKind, FieldError, RecordError};
use crate::mapping::span_ns;
use crate::split::{Next, RawRecord, SplitOptions, Splitter};
use crate::value::{self, EpochUnit, Instant, Row, TimeFormat};

const NS: i64 = 1_000_000_000;

/// A `mod_cdr_csv` template: the column names in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    /// The built-in default (13 columns; note the space before `"${accountcode}"`).
    Default,
    /// Vanilla `example`: default + `read_codec`, `write_codec` (15).
    Example,
    /// Vanilla `snom`: example + `sip_user_agent`, `call_clientcode`, `sip_rtp_rxstat`,
    /// `sip_rtp_txstat`, `sofia_record_file` (20).
    Snom,
    /// Vanilla `linksys`: example + `sip_user_agent`, `sip_p_rtp_stat` (17).
    Linksys,
    /// Vanilla `asterisk`: Asterisk's column order with FreeSWITCH variables (18).
    Asterisk,
    /// An own template: the variable names of its columns, in order.
    Custom(Vec<String>),
}

const DEFAULT_COLS: [&str; 13] = [
    "caller_id_name",
    "caller_id_number",
    "destination_number",
    "context",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "uuid",
    "bleg_uuid",
    "accountcode",
];

const ASTERISK_COLS: [&str; 18] = [
    "accountcode",
    "caller_id_number",
    "destination_number",
    "context",
    "caller_id",
    "channel_name",
    "bridge_channel",
    "last_app",
    "last_arg",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "duration",
    "billsec",
    "hangup_cause",
    "amaflags",
    "uuid",
    "userfield",
];

impl Template {
    pub fn columns(&self) -> Vec<String> {
        let mut cols: Vec<&str> = match self {
            Template::Asterisk => ASTERISK_COLS.to_vec(),
            Template::Custom(c) => return c.clone(),
            _ => DEFAULT_COLS.to_vec(),
        };
        if matches!(self, Template::Example | Template::Snom | Template::Linksys) {
            cols.extend(["read_codec", "write_codec"]);
        }
        match self {
            Template::Snom => cols.extend([
                "sip_user_agent",
                "call_clientcode",
                "sip_rtp_rxstat",
                "sip_rtp_txstat",
                "sofia_record_file",
            ]),
            Template::Linksys => cols.extend(["sip_user_agent", "sip_p_rtp_stat"]),
            _ => {}
        }
        cols.into_iter().map(String::from).collect()
    }
}

/// Variables that must be UTF-8 and are read into typed fields; all others go to `extra`.
const TYPED: [&str; 11] = [
    "uuid",
    "caller_id_number",
    "destination_number",
    "start_stamp",
    "answer_stamp",
    "end_stamp",
    "billsec",
    "accountcode",
    "direction",
    "call_uuid",
    "duration",
];

/// Reads a `mod_cdr_csv` file written with a known template.
#[derive(Debug)]
pub struct CsvReader<R: Read> {
    split: Splitter<BufReader<R>>,
    rec: RawRecord,
    names: Vec<String>,
    zone: TimeZone,
    source: Arc<str>,
    stats: Stats,
}

impl<R: Read> CsvReader<R> {
    /// `zone`: FreeSWITCH writes `*_stamp` in the server's local time.
    pub fn new(
        input: R,
        template: &Template,
        zone: TimeZone,
        source: impl Into<Arc<str>>,
    ) -> CsvReader<R> {
        CsvReader {
            split: Splitter::new(BufReader::new(input), SplitOptions::default()),
            rec: RawRecord::default(),
            names: template.columns(),
            zone,
            source: source.into(),
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn build(&self) -> Result<Cdr, FieldError> {
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let row = Row {
            rec: &self.rec,
            names: &names,
        };
        let col = |name: &str| names.iter().position(|n| *n == name);
        let need = |name: &str| col(name).ok_or_else(|| FieldError::new(name, ErrorKind::Missing));
        let opt_text = |name: &str| -> Result<Option<String>, FieldError> {
            match col(name) {
                Some(i) => row.opt(i),
                None => Ok(None),
            }
        };
        let iso = TimeFormat::Iso;
        let record_id = row.required(need("uuid")?)?.to_string();
        let caller = row.strict(need("caller_id_number")?)?.to_string();
        let callee = row.required(need("destination_number")?)?.to_string();
        let (start, offset) = row
            .time(need("start_stamp")?, &iso, &self.zone)?
            .ok_or_else(|| FieldError::new("start_stamp", ErrorKind::Missing))?;
        let answer = match col("answer_stamp") {
            Some(i) => row.time(i, &iso, &self.zone)?.map(|(t, _)| t),
            None => None,
        };
        let end = match col("end_stamp") {
            Some(i) => row.time(i, &iso, &self.zone)?.map(|(t, _)| t),
            None => None,
        };
        let billsec = row.whole(need("billsec")?)?;
        let usage = billsec
            .checked_mul(NS)
            .ok_or_else(|| FieldError::new("billsec", ErrorKind::invalid("", "too large")))?;
        let cause = opt_text("hangup_cause")?.unwrap_or_default();
        let disposition = if answer.is_some() || billsec > 0 {
            Disposition::Answered
        } else {
            Disposition::from_q850_unanswered(&cause)
        };
        let direction = opt_text("direction")?.as_deref().and_then(Direction::parse);
        let mut lossy = Vec::new();
        let mut extra = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            if !TYPED.contains(name) || *name == "duration" {
                extra.insert(name.to_string(), row.lossy(i, &mut lossy));
            }
        }
        Ok(Cdr {
            source: self.source.clone(),
            record_id,
            caller,
            callee,
            start,
            offset,
            answer,
            end,
            kind: UsageKind::Voice,
            usage,
            disposition,
            tenant: None,
            category: None,
            account: opt_text("accountcode")?,
            service: None,
            direction,
            call_id: opt_text("call_uuid")?,
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
        let out = match self.split.next_into(&mut self.rec) {
            Next::End => return None,
            Next::Bad(kind) => Err(RecordError::record(self.rec.line, kind, &self.rec.raw)),
            Next::Record if self.rec.len() != self.names.len() => Err(RecordError::record(
                self.rec.line,
                ErrorKind::ColumnCount {
                    found: self.rec.len(),
                    expected: self.names.len().to_string(),
                },
                &self.rec.raw,
            )),
            Next::Record => self.build().map_err(|e| e.at(self.rec.line, &self.rec.raw)),
        };
        self.stats.records += 1;
        match &out {
            Ok(_) => self.stats.emitted += 1,
            Err(_) => self.stats.errors += 1,
        }
        Some(out)
    }
}

/// How `mod_json_cdr` documents are read.
#[derive(Debug, Clone)]
pub struct JsonOptions {
    /// For `*_stamp` values (used only when no epoch is present) and for the rating clock's
    /// offset: the FreeSWITCH server's zone.
    pub zone: TimeZone,
    /// `encode-values` (FreeSWITCH default true): every value is URL-encoded.
    pub url_encoded: bool,
    /// Read the caller from this variable instead (e.g. `cgr_account`, `sip_from_user`).
    pub caller_var: Option<String>,
    /// Read the callee from this variable instead (e.g. `sip_req_user`, `cgr_destination`).
    pub callee_var: Option<String>,
    /// Variables copied to `extra` besides the defaults.
    pub extra_vars: Vec<String>,
    /// Largest document accepted.
    pub max_document_bytes: usize,
}

impl JsonOptions {
    pub fn new(zone: TimeZone) -> JsonOptions {
        JsonOptions {
            zone,
            url_encoded: true,
            caller_var: None,
            callee_var: None,
            extra_vars: Vec::new(),
            max_document_bytes: 4 * 1024 * 1024,
        }
    }
}

const JSON_EXTRA: [&str; 14] = [
    "caller_id_name",
    "hangup_cause",
    "hangup_cause_q850",
    "sip_hangup_disposition",
    "proto_specific_hangup_cause",
    "bridge_uuid",
    "signal_bond",
    "sip_gateway_name",
    "sip_call_id",
    "channel_name",
    "read_codec",
    "write_codec",
    "context",
    "duration",
];

/// Reads one `mod_json_cdr` document (an HTTP POST body or one `.cdr.json` file). `index` is
/// what the error and the record report as their line.
pub fn read_json_cdr(
    doc: &[u8],
    index: u64,
    options: &JsonOptions,
    source: &Arc<str>,
) -> Result<Cdr, RecordError> {
    let value: Value = serde_json::from_slice(doc)
        .map_err(|e| RecordError::record(index, ErrorKind::Json(e.to_string()), doc))?;
    JsonDoc {
        root: &value,
        opts: options,
    }
    .build(source, index, doc)
    .map_err(|e| e.at(index, doc))
}

struct JsonDoc<'a> {
    root: &'a Value,
    opts: &'a JsonOptions,
}

impl<'a> JsonDoc<'a> {
    fn vars(&self) -> Option<&'a serde_json::Map<String, Value>> {
        self.root.get("variables")?.as_object()
    }

    /// The original caller profile: the callflow entry with the lowest `profile_index` (the one
    /// before any transfer). `callflow` is an array in current FreeSWITCH and an object (or
    /// several same-named keys, of which JSON parsers keep the last) in older releases.
    fn first_profile(&self) -> Option<&'a Value> {
        let cf = self.root.get("callflow")?;
        let entries: Vec<&Value> = match cf {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![cf],
            _ => return None,
        };
        entries
            .iter()
            .enumerate()
            .min_by_key(|(i, e)| {
                let idx = e
                    .get("profile_index")
                    .and_then(|p| match p {
                        Value::String(s) => s.parse::<i64>().ok(),
                        Value::Number(n) => n.as_i64(),
                        _ => None,
                    })
                    .unwrap_or(i64::MAX);
                (idx, usize::MAX - i)
            })
            .map(|(_, e)| *e)
    }

    /// A value as bytes: strings URL-decoded if `decode`, numbers as written. FreeSWITCH's
    /// `encode-values` encodes the channel variables only, not the callflow's profiles.
    fn raw(&self, v: &Value, decode: bool) -> Option<Vec<u8>> {
        match v {
            Value::String(s) if decode => Some(value::url_decode(s)),
            Value::String(s) => Some(s.as_bytes().to_vec()),
            Value::Number(n) => Some(n.to_string().into_bytes()),
            Value::Bool(b) => Some(b.to_string().into_bytes()),
            _ => None,
        }
    }

    fn var_bytes(&self, name: &str) -> Option<Vec<u8>> {
        self.raw(self.vars()?.get(name)?, self.opts.url_encoded)
    }

    /// Strict text of a variable; empty is `None`.
    fn var(&self, name: &str) -> Result<Option<String>, FieldError> {
        match self.var_bytes(name) {
            None => Ok(None),
            Some(b) => {
                let s = value::strict(&format!("variables.{name}"), &b)?;
                Ok(if s.is_empty() {
                    None
                } else {
                    Some(s.to_string())
                })
            }
        }
    }

    fn profile_field(&self, section: &str, name: &str) -> Result<Option<String>, FieldError> {
        let Some(v) = self.first_profile().and_then(|p| p.get(section)?.get(name)) else {
            return Ok(None);
        };
        let Some(b) = self.raw(v, false) else {
            return Ok(None);
        };
        let s = value::strict(&format!("callflow.{section}.{name}"), &b)?;
        Ok(if s.is_empty() {
            None
        } else {
            Some(s.to_string())
        })
    }

    /// First present of the named sources, with the name that produced it.
    fn first_of(
        &self,
        vars: &[&str],
        profile: Option<&str>,
    ) -> Result<Option<(String, String)>, FieldError> {
        for v in vars {
            if let Some(s) = self.var(v)? {
                return Ok(Some((format!("variables.{v}"), s)));
            }
        }
        if let Some(p) = profile
            && let Some(s) = self.profile_field("caller_profile", p)?
        {
            return Ok(Some((format!("callflow.caller_profile.{p}"), s)));
        }
        Ok(None)
    }

    /// An instant from `<event>_uepoch`, `<event>_epoch`, the callflow `times`, or
    /// `<event>_stamp`, in that order (most precise first). `Ok(None)`: never happened.
    fn instant(&self, event: &str, times_key: &str) -> Result<Option<Timestamp>, FieldError> {
        let micros = TimeFormat::Epoch(EpochUnit::Micros);
        let uepoch = format!("{event}_uepoch");
        if let Some(t) = self.var(&uepoch)? {
            return self.parse(&format!("variables.{uepoch}"), &t, &micros);
        }
        let epoch = format!("{event}_epoch");
        if let Some(t) = self.var(&epoch)? {
            let secs = TimeFormat::Epoch(EpochUnit::Seconds);
            return self.parse(&format!("variables.{epoch}"), &t, &secs);
        }
        if let Some(t) = self.profile_field("times", times_key)? {
            return self.parse(&format!("callflow.times.{times_key}"), &t, &micros);
        }
        let stamp = format!("{event}_stamp");
        if let Some(t) = self.var(&stamp)? {
            return self.parse(&format!("variables.{stamp}"), &t, &TimeFormat::Iso);
        }
        Ok(None)
    }

    fn parse(
        &self,
        field: &str,
        text: &str,
        format: &TimeFormat,
    ) -> Result<Option<Timestamp>, FieldError> {
        match value::parse_time(text, format, &self.opts.zone) {
            Ok(Instant::At(ts, _)) => Ok(Some(ts)),
            Ok(Instant::Never) => Ok(None),
            Err(r) => Err(FieldError::new(field, ErrorKind::invalid(text, r))),
        }
    }

    fn build(&self, source: &Arc<str>, index: u64, doc: &[u8]) -> Result<Cdr, FieldError> {
        if self.vars().is_none() {
            return Err(FieldError::new("variables", ErrorKind::Missing));
        }
        let record_id = self
            .first_of(&["uuid"], Some("uuid"))?
            .ok_or_else(|| FieldError::new("variables.uuid", ErrorKind::Missing))?
            .1;
        let caller = match &self.opts.caller_var {
            Some(v) => self.var(v)?.map(|s| (v.clone(), s)),
            None => self.first_of(&["caller_id_number"], Some("caller_id_number"))?,
        }
        .ok_or_else(|| FieldError::new("variables.caller_id_number", ErrorKind::Missing))?
        .1;
        let callee = match &self.opts.callee_var {
            Some(v) => self.var(v)?.map(|s| (v.clone(), s)),
            None => self.first_of(&["destination_number"], Some("destination_number"))?,
        }
        .ok_or_else(|| FieldError::new("variables.destination_number", ErrorKind::Missing))?
        .1;
        let start = self
            .instant("start", "created_time")?
            .ok_or_else(|| FieldError::new("variables.start_uepoch", ErrorKind::Missing))?;
        let answer = self.instant("answer", "answered_time")?;
        let end = self.instant("end", "hangup_time")?;
        // Billed time, most precise first; else from the answer and end instants.
        let mut usage = None;
        for (name, scale) in [
            ("billusec", 1_000),
            ("billmsec", 1_000_000),
            ("billsec", NS),
        ] {
            if let Some(t) = self.var(name)? {
                let ns = value::scaled(&t, scale).map_err(|r| {
                    FieldError::new(format!("variables.{name}"), ErrorKind::invalid(&t, r))
                })?;
                usage = Some(ns);
                break;
            }
        }
        let usage = match (usage, answer, end) {
            (Some(u), _, _) => u,
            (None, Some(a), Some(e)) => span_ns(a, e).map_err(|r| {
                FieldError::new(
                    "variables.end_uepoch",
                    ErrorKind::invalid(&e.to_string(), r),
                )
            })?,
            (None, _, _) => 0,
        };
        let cause = self.var("hangup_cause")?.unwrap_or_default();
        let disposition = if answer.is_some() || usage > 0 {
            Disposition::Answered
        } else {
            Disposition::from_q850_unanswered(&cause)
        };
        let direction = self.var("direction")?.as_deref().and_then(Direction::parse);
        let mut lossy = Vec::new();
        let mut extra = BTreeMap::new();
        for name in JSON_EXTRA
            .iter()
            .copied()
            .chain(self.opts.extra_vars.iter().map(String::as_str))
        {
            if let Some(b) = self.var_bytes(name) {
                extra.insert(
                    name.to_string(),
                    value::lossy(&format!("variables.{name}"), &b, &mut lossy),
                );
            }
        }
        if !extra.contains_key("context")
            && let Some(c) = self
                .first_profile()
                .and_then(|p| p.get("caller_profile")?.get("context"))
                .and_then(|v| self.raw(v, false))
        {
            extra.insert(
                "context".into(),
                value::lossy("callflow.caller_profile.context", &c, &mut lossy),
            );
        }
        Ok(Cdr {
            source: source.clone(),
            record_id,
            caller,
            callee,
            start,
            offset: self.opts.zone.to_offset(start),
            answer,
            end,
            kind: UsageKind::Voice,
            usage,
            disposition,
            tenant: None,
            category: None,
            account: self.var("accountcode")?,
            service: None,
            direction,
            call_id: self.var("call_uuid")?,
            extra,
            lossy_fields: lossy,
            line: index,
            raw: doc.to_vec(),
            merged_lines: Vec::new(),
        })
    }
}

/// A stream of `mod_json_cdr` documents: concatenated or one per line, as a collector that
/// appends POST bodies to a file writes them. Each top-level `{…}` is one record; its 1-based
/// position in the stream is its `line`. Bytes between documents that are not blanks or commas
/// are reported as one error each, up to the next `{`.
#[derive(Debug)]
pub struct JsonReader<R: Read> {
    input: BufReader<R>,
    opts: JsonOptions,
    source: Arc<str>,
    index: u64,
    done: bool,
    buf: Vec<u8>,
    stats: Stats,
}

enum Doc {
    Object { too_long: bool, complete: bool },
    Garbage,
    End,
}

impl<R: Read> JsonReader<R> {
    pub fn new(input: R, options: JsonOptions, source: impl Into<Arc<str>>) -> JsonReader<R> {
        JsonReader {
            input: BufReader::new(input),
            opts: options,
            source: source.into(),
            index: 0,
            done: false,
            buf: Vec::new(),
            stats: Stats::default(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn peek(&mut self) -> std::io::Result<Option<u8>> {
        loop {
            match self.input.fill_buf() {
                Ok(b) => return Ok(b.first().copied()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Scans the next document (or run of garbage) into `self.buf`.
    fn scan(&mut self) -> std::io::Result<Doc> {
        self.buf.clear();
        // Skip separators.
        loop {
            match self.peek()? {
                None => return Ok(Doc::End),
                Some(b) if b.is_ascii_whitespace() || b == b',' => self.input.consume(1),
                Some(_) => break,
            }
        }
        let limit = self.opts.max_document_bytes;
        if self.peek()? != Some(b'{') {
            while let Some(b) = self.peek()? {
                if b == b'{' {
                    break;
                }
                if self.buf.len() < limit {
                    self.buf.push(b);
                }
                self.input.consume(1);
            }
            return Ok(Doc::Garbage);
        }
        let (mut depth, mut in_str, mut esc, mut too_long) = (0u64, false, false, false);
        while let Some(b) = self.peek()? {
            self.input.consume(1);
            if self.buf.len() < limit {
                self.buf.push(b);
            } else {
                too_long = true;
            }
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Ok(Doc::Object {
                            too_long,
                            complete: true,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(Doc::Object {
            too_long,
            complete: false,
        })
    }
}

impl<R: Read> Iterator for JsonReader<R> {
    type Item = Result<Cdr, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let scanned = self.scan();
        self.index += 1;
        let index = self.index;
        let out = match scanned {
            Err(e) => {
                self.done = true;
                Err(RecordError::record(
                    index,
                    ErrorKind::Io(e.to_string()),
                    &self.buf,
                ))
            }
            Ok(Doc::End) => {
                self.done = true;
                return None;
            }
            Ok(Doc::Garbage) => Err(RecordError::record(
                index,
                ErrorKind::Json("bytes outside any JSON object".into()),
                &self.buf,
            )),
            Ok(Doc::Object { too_long: true, .. }) => Err(RecordError::record(
                index,
                ErrorKind::TooLong {
                    limit: self.opts.max_document_bytes,
                },
                &self.buf,
            )),
            Ok(Doc::Object {
                complete: false, ..
            }) => Err(RecordError::record(
                index,
                ErrorKind::Json("the input ends inside the document".into()),
                &self.buf,
            )),
            Ok(Doc::Object { .. }) => read_json_cdr(&self.buf, index, &self.opts, &self.source),
        };
        self.stats.records += 1;
        match &out {
            Ok(_) => self.stats.emitted += 1,
            Err(_) => self.stats.errors += 1,
        }
        Some(out)
    }
}
