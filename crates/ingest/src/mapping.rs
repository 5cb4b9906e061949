//! The generic delimited reader, driven by a TOML mapping (`docs/ingest-mapping.md`).
//!
//! A mapping says how to split the file and where each [`Cdr`] field comes from: a column (by
//! header name or 0-based index), a constant, a template over columns, or (usage) a difference of
//! two times. It is compiled once against the header, so a misspelt column is reported before
//! any record is read, and each record costs only the field conversions.

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::sync::Arc;

use jiff::tz::TimeZone;
use serde::Deserialize;
use toll_core::UsageKind;

use crate::cdr::{Cdr, Direction, Disposition, Stats};
use crate::error::{ConfigError, ErrorKind, FieldError, RecordError};
use crate::split::{Next, RawRecord, SplitOptions, Splitter};
use crate::value::{self, EpochUnit, Instant, TimeFormat};

/// A mapping file as written (see `docs/ingest-mapping.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    #[serde(default)]
    pub format: FormatSpec,
    pub fields: BTreeMap<String, FieldSpec>,
    #[serde(default)]
    pub extra: BTreeMap<String, FieldSpec>,
    #[serde(default, rename = "filter")]
    pub filters: Vec<FilterSpec>,
}

/// `[format]`: how the file is split.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatSpec {
    /// One ASCII character; `"\t"` for tab.
    #[serde(default = "comma")]
    pub delimiter: String,
    /// One ASCII character, or `""` for no quoting.
    #[serde(default = "dquote")]
    pub quote: String,
    /// Whether the first (non-skipped) line names the columns.
    #[serde(default)]
    pub header: bool,
    /// Lines to skip before the header or the first record (banners, report titles).
    #[serde(default)]
    pub skip_lines: u64,
    /// Whether quoted fields may contain line breaks.
    #[serde(default)]
    pub multiline: bool,
    #[serde(default = "max_record")]
    pub max_record_bytes: usize,
    /// IANA zone of timestamps that carry no offset. Default UTC.
    #[serde(default)]
    pub zone: Option<String>,
    /// Trim blanks around every unquoted value before use.
    #[serde(default)]
    pub trim: bool,
}

fn comma() -> String {
    ",".into()
}
fn dquote() -> String {
    "\"".into()
}
fn max_record() -> usize {
    64 * 1024
}

impl Default for FormatSpec {
    fn default() -> Self {
        FormatSpec {
            delimiter: comma(),
            quote: dquote(),
            header: false,
            skip_lines: 0,
            multiline: false,
            max_record_bytes: max_record(),
            zone: None,
            trim: false,
        }
    }
}

/// Where one field comes from and how it is read. Exactly one of `column`, `index`, `value`,
/// `template` or `derive`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// Column by header name.
    pub column: Option<String>,
    /// Column by 0-based position.
    pub index: Option<usize>,
    /// A constant.
    pub value: Option<String>,
    /// Text with `{name}` or `{0}` placeholders for columns; `{{` and `}}` are literal braces.
    pub template: Option<String>,
    /// Usage only: `answer_to_end` or `start_to_end`.
    pub derive: Option<String>,
    /// Used when the value is empty.
    pub default: Option<String>,
    /// Timestamps: a strftime format, or `rfc3339`, `epoch_s`, `epoch_ms`, `epoch_us`,
    /// `epoch_ns`, `detect`. Default `%Y-%m-%d %H:%M:%S`.
    pub time: Option<String>,
    /// Timestamps: zone overriding `[format] zone`.
    pub zone: Option<String>,
    /// Usage: `s`, `ms`, `us`, `ns`, `duration` (Go style, bare = seconds) for voice; `count`
    /// for SMS and custom kinds; `bytes`, `kb`, `kib`, `mb`, `mib`, `gb`, `gib` for data.
    pub unit: Option<String>,
    /// Replaces the value before it is interpreted (`"16" = "answered"`); exact match.
    pub map: Option<BTreeMap<String, String>>,
}

/// `[[filter]]`: a record is kept only if every filter holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    pub column: Option<String>,
    pub index: Option<usize>,
    pub equals: Option<String>,
    pub not_equals: Option<String>,
    pub one_of: Option<Vec<String>>,
    pub prefix: Option<String>,
}

impl Mapping {
    pub fn from_toml(text: &str) -> Result<Mapping, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))
    }
}

#[derive(Debug, Clone)]
enum Part {
    Lit(String),
    Col(usize),
}

#[derive(Debug, Clone)]
enum Src {
    Col(usize),
    Const(String),
    Template(Vec<Part>),
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    src: Src,
    default: Option<String>,
    map: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
struct TimeField {
    field: Field,
    format: TimeFormat,
    zone: TimeZone,
}

#[derive(Debug, Clone, Copy)]
enum Derive {
    AnswerToEnd,
    StartToEnd,
}

#[derive(Debug, Clone)]
enum UsageSpec {
    Scaled(Field, i64),
    GoDuration(Field),
    Derived(Derive),
}

#[derive(Debug, Clone)]
enum Test {
    Equals(String),
    NotEquals(String),
    OneOf(Vec<String>),
    Prefix(String),
}

#[derive(Debug, Clone)]
struct Filter {
    col: usize,
    tests: Vec<Test>,
}

/// A mapping resolved against a header: what the reader runs.
#[derive(Debug, Clone)]
struct Compiled {
    trim: bool,
    min_columns: usize,
    record_id: Field,
    caller: Field,
    callee: Field,
    start: TimeField,
    answer: Option<TimeField>,
    end: Option<TimeField>,
    kind: Option<Field>,
    fixed_kind: Option<UsageKind>,
    usage: UsageSpec,
    disposition: Option<Field>,
    tenant: Option<Field>,
    category: Option<Field>,
    account: Option<Field>,
    service: Option<Field>,
    direction: Option<Field>,
    call_id: Option<Field>,
    extra: Vec<Field>,
    filters: Vec<Filter>,
}

const KNOWN: &[&str] = &[
    "record_id",
    "caller",
    "callee",
    "start",
    "answer",
    "end",
    "usage",
    "kind",
    "disposition",
    "tenant",
    "category",
    "account",
    "service",
    "direction",
    "call_id",
];

fn one_char(what: &str, s: &str, allow_empty: bool) -> Result<Option<u8>, ConfigError> {
    let s = if s == "\\t" { "\t" } else { s };
    match s.as_bytes() {
        [] if allow_empty => Ok(None),
        [b] if b.is_ascii() && *b != b'\n' && *b != b'\r' => Ok(Some(*b)),
        _ => Err(ConfigError::Format(format!(
            "{what} must be one ASCII character other than a line break, not {s:?}"
        ))),
    }
}

fn zone(name: &str) -> Result<TimeZone, ConfigError> {
    TimeZone::get(name).map_err(|_| ConfigError::Zone(name.to_string()))
}

struct Resolver<'a> {
    header: Option<&'a [String]>,
    max_col: usize,
}

impl Resolver<'_> {
    fn col(&mut self, field: &str, column: &str) -> Result<usize, ConfigError> {
        let Some(header) = self.header else {
            return Err(ConfigError::Field {
                field: field.into(),
                reason: format!("column {column:?} by name needs `header = true`"),
            });
        };
        let i = header
            .iter()
            .position(|h| h.trim() == column)
            .ok_or_else(|| ConfigError::NoSuchColumn {
                field: field.into(),
                column: column.into(),
            })?;
        self.note(i);
        Ok(i)
    }

    fn note(&mut self, i: usize) {
        self.max_col = self.max_col.max(i + 1);
    }

    fn template(&mut self, field: &str, t: &str) -> Result<Vec<Part>, ConfigError> {
        let bad = |reason: &str| ConfigError::Field {
            field: field.into(),
            reason: format!("template {t:?}: {reason}"),
        };
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = t.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    lit.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(bad("unclosed {")),
                        }
                    }
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    let col = match name.parse::<usize>() {
                        Ok(i) => {
                            self.note(i);
                            i
                        }
                        Err(_) => self.col(field, &name)?,
                    };
                    parts.push(Part::Col(col));
                }
                '}' => return Err(bad("unmatched }")),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(parts)
    }

    fn field(&mut self, name: &str, spec: &FieldSpec) -> Result<Field, ConfigError> {
        let given = [
            spec.column.is_some(),
            spec.index.is_some(),
            spec.value.is_some(),
            spec.template.is_some(),
            spec.derive.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(ConfigError::Field {
                field: name.into(),
                reason: "give exactly one of column, index, value, template, derive".into(),
            });
        }
        let src = if let Some(c) = &spec.column {
            Src::Col(self.col(name, c)?)
        } else if let Some(i) = spec.index {
            self.note(i);
            Src::Col(i)
        } else if let Some(v) = &spec.value {
            Src::Const(v.clone())
        } else if let Some(t) = &spec.template {
            Src::Template(self.template(name, t)?)
        } else {
            return Err(ConfigError::Field {
                field: name.into(),
                reason: "derive is only for usage".into(),
            });
        };
        Ok(Field {
            name: name.to_string(),
            src,
            default: spec.default.clone(),
            map: spec.map.clone(),
        })
    }

    fn time(
        &mut self,
        name: &str,
        spec: &FieldSpec,
        dflt: &TimeZone,
    ) -> Result<TimeField, ConfigError> {
        let field = self.field(name, spec)?;
        let format = match spec.time.as_deref() {
            None | Some("%Y-%m-%d %H:%M:%S") => TimeFormat::Iso,
            Some("rfc3339") => TimeFormat::Rfc3339,
            Some("epoch_s") => TimeFormat::Epoch(EpochUnit::Seconds),
            Some("epoch_ms") => TimeFormat::Epoch(EpochUnit::Millis),
            Some("epoch_us") => TimeFormat::Epoch(EpochUnit::Micros),
            Some("epoch_ns") => TimeFormat::Epoch(EpochUnit::Nanos),
            Some("detect") => TimeFormat::Detect,
            Some(f) if f.contains('%') => TimeFormat::Strftime(f.to_string()),
            Some(f) => {
                return Err(ConfigError::Field {
                    field: name.into(),
                    reason: format!("time format {f:?} is neither strftime nor a known name"),
                });
            }
        };
        let zone = match &spec.zone {
            Some(z) => zone(z)?,
            None => dflt.clone(),
        };
        Ok(TimeField {
            field,
            format,
            zone,
        })
    }
}

impl Mapping {
    fn compile(&self, header: Option<&[String]>) -> Result<Compiled, ConfigError> {
        for name in self.fields.keys() {
            if !KNOWN.contains(&name.as_str()) {
                return Err(ConfigError::Field {
                    field: name.clone(),
                    reason: format!("unknown field; known: {}", KNOWN.join(", ")),
                });
            }
        }
        let dflt_zone = match &self.format.zone {
            Some(z) => zone(z)?,
            None => TimeZone::UTC,
        };
        let mut r = Resolver { header, max_col: 0 };
        let need = |name: &str| {
            self.fields.get(name).ok_or_else(|| ConfigError::Field {
                field: name.into(),
                reason: "required".into(),
            })
        };
        let opt = |r: &mut Resolver, name: &str| -> Result<Option<Field>, ConfigError> {
            self.fields.get(name).map(|s| r.field(name, s)).transpose()
        };
        let kind_spec = self.fields.get("kind");
        let fixed_kind = match kind_spec.and_then(|k| k.value.as_deref()) {
            Some(v) => Some(parse_kind(v).map_err(|reason| ConfigError::Field {
                field: "kind".into(),
                reason,
            })?),
            None if kind_spec.is_none() => Some(UsageKind::Voice),
            None => None,
        };
        let kind = match kind_spec {
            Some(s) if s.value.is_none() => Some(r.field("kind", s)?),
            _ => None,
        };
        let usage_spec = need("usage")?;
        let usage = if let Some(d) = &usage_spec.derive {
            let d = match d.as_str() {
                "answer_to_end" => Derive::AnswerToEnd,
                "start_to_end" => Derive::StartToEnd,
                other => {
                    return Err(ConfigError::Field {
                        field: "usage".into(),
                        reason: format!("derive {other:?}: expected answer_to_end or start_to_end"),
                    });
                }
            };
            if !self.fields.contains_key("end") {
                return Err(ConfigError::Field {
                    field: "usage".into(),
                    reason: "derived usage needs an `end` field".into(),
                });
            }
            UsageSpec::Derived(d)
        } else {
            let f = r.field("usage", usage_spec)?;
            let unit = usage_spec.unit.as_deref().unwrap_or(match fixed_kind {
                Some(UsageKind::Voice) => "s",
                Some(UsageKind::Data) => "bytes",
                _ => "count",
            });
            let time_unit = |u: &str| match u {
                "s" => Some(1_000_000_000),
                "ms" => Some(1_000_000),
                "us" => Some(1_000),
                "ns" => Some(1),
                _ => None,
            };
            let count_unit = |u: &str| match u {
                "count" | "bytes" => Some(1),
                "kb" => Some(1_000),
                "kib" => Some(1_024),
                "mb" => Some(1_000_000),
                "mib" => Some(1_048_576),
                "gb" => Some(1_000_000_000),
                "gib" => Some(1_073_741_824),
                _ => None,
            };
            let bad = |why: &str| ConfigError::Field {
                field: "usage".into(),
                reason: format!("unit {unit:?} {why}"),
            };
            match (&fixed_kind, unit) {
                (Some(UsageKind::Voice), "duration") => UsageSpec::GoDuration(f),
                (Some(UsageKind::Voice), u) => UsageSpec::Scaled(
                    f,
                    time_unit(u)
                        .ok_or_else(|| bad("is not a time unit (s, ms, us, ns, duration)"))?,
                ),
                (Some(UsageKind::Sms | UsageKind::Custom(_)), "count") => UsageSpec::Scaled(f, 1),
                (Some(UsageKind::Sms | UsageKind::Custom(_)), _) => {
                    return Err(bad("does not count messages or units (use count)"));
                }
                (Some(UsageKind::Data), u) if u != "count" => {
                    UsageSpec::Scaled(f, count_unit(u).ok_or_else(|| bad("is not a byte unit"))?)
                }
                (Some(UsageKind::Data), _) => return Err(bad("is not a byte unit")),
                (None, _) => {
                    return Err(ConfigError::Field {
                        field: "usage".into(),
                        reason: "a kind read per record needs usage in a unit every kind shares; \
                                 give kind a constant value, or split the file by kind"
                            .into(),
                    });
                }
            }
        };
        let start = r.time("start", need("start")?, &dflt_zone)?;
        let answer = self
            .fields
            .get("answer")
            .map(|s| r.time("answer", s, &dflt_zone))
            .transpose()?;
        let end = self
            .fields
            .get("end")
            .map(|s| r.time("end", s, &dflt_zone))
            .transpose()?;
        let mut extra = Vec::new();
        for (name, spec) in &self.extra {
            extra.push(r.field(name, spec)?);
        }
        let mut filters = Vec::new();
        for (n, f) in self.filters.iter().enumerate() {
            let label = format!("filter #{}", n + 1);
            let col = match (&f.column, f.index) {
                (Some(c), None) => r.col(&label, c)?,
                (None, Some(i)) => {
                    r.note(i);
                    i
                }
                _ => {
                    return Err(ConfigError::Field {
                        field: label,
                        reason: "give exactly one of column, index".into(),
                    });
                }
            };
            let mut tests = Vec::new();
            if let Some(v) = &f.equals {
                tests.push(Test::Equals(v.clone()));
            }
            if let Some(v) = &f.not_equals {
                tests.push(Test::NotEquals(v.clone()));
            }
            if let Some(v) = &f.one_of {
                tests.push(Test::OneOf(v.clone()));
            }
            if let Some(v) = &f.prefix {
                tests.push(Test::Prefix(v.clone()));
            }
            if tests.is_empty() {
                return Err(ConfigError::Field {
                    field: label,
                    reason: "needs equals, not_equals, one_of or prefix".into(),
                });
            }
            filters.push(Filter { col, tests });
        }
        let c = Compiled {
            trim: self.format.trim,
            min_columns: 0,
            record_id: r.field("record_id", need("record_id")?)?,
            caller: r.field("caller", need("caller")?)?,
            callee: r.field("callee", need("callee")?)?,
            start,
            answer,
            end,
            kind,
            fixed_kind,
            usage,
            disposition: opt(&mut r, "disposition")?,
            tenant: opt(&mut r, "tenant")?,
            category: opt(&mut r, "category")?,
            account: opt(&mut r, "account")?,
            service: opt(&mut r, "service")?,
            direction: opt(&mut r, "direction")?,
            call_id: opt(&mut r, "call_id")?,
            extra,
            filters,
        };
        Ok(Compiled {
            min_columns: r.max_col,
            ..c
        })
    }
}

fn parse_kind(v: &str) -> Result<UsageKind, String> {
    let t = v.trim().trim_start_matches('*').to_ascii_lowercase();
    let t = if t == "call" { "voice".to_string() } else { t };
    t.parse::<UsageKind>().map_err(|e| e.to_string())
}

/// Bytes of one column, trimmed if asked.
fn col_bytes(rec: &RawRecord, i: usize, trim: bool) -> &[u8] {
    let b = rec.get(i).unwrap_or(&[]);
    if trim { b.trim_ascii() } else { b }
}

impl Compiled {
    /// The text of a field (strict UTF-8), after template, default and map. Empty → `None`.
    fn text(&self, f: &Field, rec: &RawRecord) -> Result<Option<String>, FieldError> {
        let mut s = match &f.src {
            Src::Const(v) => v.clone(),
            Src::Col(i) => value::strict(&f.name, col_bytes(rec, *i, self.trim))?.to_string(),
            Src::Template(parts) => {
                let mut out = String::new();
                for p in parts {
                    match p {
                        Part::Lit(l) => out.push_str(l),
                        Part::Col(i) => {
                            out.push_str(value::strict(&f.name, col_bytes(rec, *i, self.trim))?)
                        }
                    }
                }
                out
            }
        };
        if s.is_empty()
            && let Some(d) = &f.default
        {
            s = d.clone();
        }
        if let Some(m) = &f.map
            && let Some(v) = m.get(&s)
        {
            s = v.clone();
        }
        Ok(if s.is_empty() { None } else { Some(s) })
    }

    fn required(&self, f: &Field, rec: &RawRecord) -> Result<String, FieldError> {
        self.text(f, rec)?
            .ok_or_else(|| FieldError::new(&f.name, ErrorKind::Missing))
    }

    fn time(
        &self,
        t: &TimeField,
        rec: &RawRecord,
    ) -> Result<Option<(jiff::Timestamp, jiff::tz::Offset)>, FieldError> {
        let Some(text) = self.text(&t.field, rec)? else {
            return Ok(None);
        };
        match value::parse_time(&text, &t.format, &t.zone) {
            Ok(Instant::At(ts, off)) => Ok(Some((ts, off))),
            Ok(Instant::Never) => Ok(None),
            Err(reason) => Err(FieldError::new(
                &t.field.name,
                ErrorKind::invalid(&text, reason),
            )),
        }
    }

    fn keep(&self, rec: &RawRecord) -> bool {
        self.filters.iter().all(|f| {
            let v = String::from_utf8_lossy(col_bytes(rec, f.col, self.trim));
            f.tests.iter().all(|t| match t {
                Test::Equals(x) => v == x.as_str(),
                Test::NotEquals(x) => v != x.as_str(),
                Test::OneOf(xs) => xs.iter().any(|x| v == x.as_str()),
                Test::Prefix(p) => v.starts_with(p.as_str()),
            })
        })
    }

    fn build(&self, source: &Arc<str>, rec: &RawRecord) -> Result<Cdr, FieldError> {
        let record_id = self.required(&self.record_id, rec)?;
        let caller = self.required(&self.caller, rec)?;
        let callee = self.required(&self.callee, rec)?;
        let (start, offset) = self
            .time(&self.start, rec)?
            .ok_or_else(|| FieldError::new("start", ErrorKind::Missing))?;
        let answer = match &self.answer {
            Some(t) => self.time(t, rec)?.map(|(ts, _)| ts),
            None => None,
        };
        let end = match &self.end {
            Some(t) => self.time(t, rec)?.map(|(ts, _)| ts),
            None => None,
        };
        let kind = match (&self.fixed_kind, &self.kind) {
            (Some(k), _) => k.clone(),
            (None, Some(f)) => {
                let v = self.required(f, rec)?;
                parse_kind(&v).map_err(|r| FieldError::new("kind", ErrorKind::invalid(&v, r)))?
            }
            (None, None) => UsageKind::Voice,
        };
        let usage = match &self.usage {
            UsageSpec::Scaled(f, scale) => {
                let v = self.required(f, rec)?;
                value::scaled(&v, *scale)
                    .map_err(|r| FieldError::new("usage", ErrorKind::invalid(&v, r)))?
            }
            UsageSpec::GoDuration(f) => {
                let v = self.required(f, rec)?;
                toll_core::usage::parse_voice_usage(&v)
                    .map_err(|e| FieldError::new("usage", ErrorKind::invalid(&v, e.to_string())))?
                    .raw()
            }
            UsageSpec::Derived(d) => {
                let from = match d {
                    Derive::AnswerToEnd => answer,
                    Derive::StartToEnd => Some(start),
                };
                match from {
                    None => 0,
                    Some(from) => {
                        let end = end.ok_or_else(|| FieldError::new("end", ErrorKind::Missing))?;
                        span_ns(from, end).map_err(|r| {
                            FieldError::new("usage", ErrorKind::invalid(&end.to_string(), r))
                        })?
                    }
                }
            }
        };
        let disposition = match &self.disposition {
            Some(f) => {
                let v = self.required(f, rec)?;
                Disposition::parse(&v).ok_or_else(|| {
                    FieldError::new(
                        "disposition",
                        ErrorKind::invalid(&v, "not a known disposition (map it with `map`)"),
                    )
                })?
            }
            None if answer.is_some() || usage > 0 => Disposition::Answered,
            None => Disposition::NoAnswer,
        };
        let direction = match &self.direction {
            Some(f) => match self.text(f, rec)? {
                Some(v) => Some(Direction::parse(&v).ok_or_else(|| {
                    FieldError::new(
                        "direction",
                        ErrorKind::invalid(&v, "expected inbound/outbound"),
                    )
                })?),
                None => None,
            },
            None => None,
        };
        let opt = |f: &Option<Field>| -> Result<Option<String>, FieldError> {
            match f {
                Some(f) => self.text(f, rec),
                None => Ok(None),
            }
        };
        let mut lossy = Vec::new();
        let mut extra = BTreeMap::new();
        for f in &self.extra {
            let v = match &f.src {
                Src::Col(i) => value::lossy(&f.name, col_bytes(rec, *i, self.trim), &mut lossy),
                _ => self.text(f, rec)?.unwrap_or_default(),
            };
            extra.insert(f.name.clone(), v);
        }
        Ok(Cdr {
            source: source.clone(),
            record_id,
            caller,
            callee,
            start,
            offset,
            answer,
            end,
            kind,
            usage,
            disposition,
            tenant: opt(&self.tenant)?,
            category: opt(&self.category)?,
            account: opt(&self.account)?,
            service: opt(&self.service)?,
            direction,
            call_id: opt(&self.call_id)?,
            extra,
            lossy_fields: lossy,
            line: rec.line,
            raw: rec.raw.clone(),
            merged_lines: Vec::new(),
        })
    }
}

/// Nanoseconds from `a` to `b`; an end before the start is an error, not a negative usage.
pub(crate) fn span_ns(a: jiff::Timestamp, b: jiff::Timestamp) -> Result<i64, String> {
    let d = b.as_nanosecond() - a.as_nanosecond();
    if d < 0 {
        return Err("ends before it starts".into());
    }
    i64::try_from(d).map_err(|_| "span too long".into())
}

/// Streams [`Cdr`]s out of a delimited file according to a [`Mapping`]. One `Result` per record;
/// an error never ends the stream except an I/O error, after which the iterator is done.
#[derive(Debug)]
pub struct DelimitedReader<R: Read> {
    split: Splitter<BufReader<R>>,
    rec: RawRecord,
    map: Compiled,
    source: Arc<str>,
    stats: Stats,
}

impl<R: Read> DelimitedReader<R> {
    /// Reads the header (if the mapping has one) and resolves every column; a mapping that does
    /// not fit the file fails here, before any record.
    pub fn new(
        input: R,
        mapping: &Mapping,
        source: impl Into<Arc<str>>,
    ) -> Result<DelimitedReader<R>, ConfigError> {
        let f = &mapping.format;
        let delimiter = one_char("delimiter", &f.delimiter, false)?.unwrap_or(b',');
        let quote = one_char("quote", &f.quote, true)?;
        if Some(delimiter) == quote {
            return Err(ConfigError::Format(
                "delimiter and quote must differ".into(),
            ));
        }
        let opts = SplitOptions {
            delimiter,
            quote,
            max_record_bytes: f.max_record_bytes.max(16),
            multiline: f.multiline,
        };
        let mut split = Splitter::new(BufReader::new(input), opts);
        let mut rec = RawRecord::default();
        for _ in 0..f.skip_lines {
            // Skipped lines are raw lines: no quoting applies to a banner.
            match split.next_into(&mut rec) {
                Next::End => break,
                Next::Bad(ErrorKind::Io(e)) => return Err(ConfigError::Header(e)),
                _ => {}
            }
        }
        let header = if f.header {
            match split.next_into(&mut rec) {
                Next::Record => {
                    let mut names = Vec::with_capacity(rec.len());
                    for i in 0..rec.len() {
                        let b = rec.get(i).unwrap_or(&[]);
                        names.push(String::from_utf8_lossy(b).trim().to_string());
                    }
                    Some(names)
                }
                Next::Bad(k) => return Err(ConfigError::Header(k.to_string())),
                Next::End => return Err(ConfigError::Header("the input is empty".into())),
            }
        } else {
            None
        };
        let map = mapping.compile(header.as_deref())?;
        Ok(DelimitedReader {
            split,
            rec,
            map,
            source: source.into(),
            stats: Stats::default(),
        })
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}

impl<R: Read> Iterator for DelimitedReader<R> {
    type Item = Result<Cdr, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let out = match self.split.next_into(&mut self.rec) {
                Next::End => return None,
                Next::Bad(kind) => Err(RecordError::record(self.rec.line, kind, &self.rec.raw)),
                Next::Record => {
                    if self.rec.len() < self.map.min_columns {
                        Err(RecordError::record(
                            self.rec.line,
                            ErrorKind::ColumnCount {
                                found: self.rec.len(),
                                expected: format!("at least {}", self.map.min_columns),
                            },
                            &self.rec.raw,
                        ))
                    } else if !self.map.keep(&self.rec) {
                        self.stats.records += 1;
                        self.stats.filtered += 1;
                        continue;
                    } else {
                        self.map
                            .build(&self.source, &self.rec)
                            .map_err(|e| e.at(self.rec.line, &self.rec.raw))
                    }
                }
            };
            self.stats.records += 1;
            match &out {
                Ok(_) => self.stats.emitted += 1,
                Err(_) => self.stats.errors += 1,
            }
            return Some(out);
        }
    }
}
