//! Toll's own TOML tariff file (`tariff.toml`): one human-writable file with currency, time zone,
//! number normalisation and holiday calendars on top of the CGRateS model.
//!
//! The format is documented in `docs/tariff-format.md`. Every value is read with its byte span
//! and converted with [`fields`], exactly as the CGRateS CSV importer converts its columns, so
//! `"0.15"`, `"60s"` or `"1;2;3"` mean the same in both formats. Value problems are collected
//! (all of them, each at its `line:column`); a TOML syntax or shape error (bad quoting, an unknown
//! key, a table where a list is expected) is reported once and yields an empty definition.
//!
//! Money and weights are exact decimals: written as strings (`rate = "0.15"`) or integers
//! (`max_cost = 50`). A TOML float (`rate = 0.15`) is refused, since a float cannot hold 0.15.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;
use std::sync::Arc;

use jiff::civil::Date;
use rust_decimal::Decimal;
use rustc_hash::FxHashSet;
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use toll_core::Currency;
use toll_core::usage::DurationForm;
use toml::{Spanned, Value};

use super::cgrates::check_prefix;
use super::fields::{self, FieldResult};
use crate::def::{
    CalendarDef, DestinationRateRowDef, DestinationRowDef, Numbering, PlanRowDef, ProfileDef,
    RateRowDef, Spanned as Sp, TariffDef, TimingDef, ZoneDef,
};
use crate::diag::{Diagnostics, Pos};

/// A calendar may hold at most this many days (ranges included).
pub const MAX_CALENDAR_DAYS: usize = 10_000;

/// Parses Toll's TOML tariff file. `name` is the file name, used in positions and as the
/// tariff's name when the file has no `name` key.
pub fn parse(name: &str, bytes: &[u8], diags: &mut Diagnostics) -> TariffDef {
    let file: Arc<str> = Arc::from(name);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            diags.error(
                Pos::new(&file, 1, 1),
                format!(
                    "file is not valid UTF-8 (bad byte at offset {})",
                    e.valid_up_to()
                ),
            );
            return TariffDef::empty(name);
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = Lines::new(text);
    let doc: FileT = match toml::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            let pos = e
                .span()
                .map_or(Pos::new(&file, 1, 1), |s| lines.pos(&file, text, s.start));
            diags.error(pos, format!("TOML: {}", e.message().trim_end()));
            return TariffDef::empty(name);
        }
    };
    let mut cx = Cx {
        file,
        text,
        lines,
        diags,
    };
    cx.convert(name, doc)
}

// ---------------------------------------------------------------------------------------------
// The document, as serde reads it. Every leaf is a spanned `toml::Value`, converted by hand so
// that a wrong value is a collected diagnostic rather than a fatal deserialisation error.

type Sv = Spanned<Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileT {
    name: Option<Sv>,
    currency: Option<Sv>,
    timezone: Option<Sv>,
    numbering: Option<Sv>,
    #[serde(default)]
    calendars: Ordered<Spanned<Items>>,
    #[serde(default)]
    timings: Ordered<Spanned<TimingT>>,
    #[serde(default)]
    destinations: Ordered<Spanned<Items>>,
    #[serde(default)]
    rates: Ordered<Spanned<Rows<RateT>>>,
    #[serde(default)]
    destination_rates: Ordered<Spanned<Rows<DestinationRateT>>>,
    #[serde(default)]
    plans: Ordered<Spanned<Rows<PlanT>>>,
    #[serde(default)]
    profiles: Vec<Spanned<ProfileT>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimingT {
    years: Option<Sv>,
    months: Option<Sv>,
    month_days: Option<Sv>,
    week_days: Option<Sv>,
    time: Option<Sv>,
    calendar: Option<Sv>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateT {
    connect_fee: Option<Sv>,
    rate: Option<Sv>,
    unit: Option<Sv>,
    increment: Option<Sv>,
    group_start: Option<Sv>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationRateT {
    destination: Option<Sv>,
    rate: Option<Sv>,
    rounding: Option<Sv>,
    decimals: Option<Sv>,
    max_cost: Option<Sv>,
    max_cost_strategy: Option<Sv>,
    min_cost: Option<Sv>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanT {
    destination_rates: Option<Sv>,
    timing: Option<Sv>,
    weight: Option<Sv>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileT {
    tenant: Option<Sv>,
    category: Option<Sv>,
    subject: Option<Sv>,
    activation: Option<Sv>,
    plan: Option<Sv>,
    fallback: Option<Spanned<Items>>,
    carrier: Option<Sv>,
}

/// A table read in file order: entries with their spanned keys, sorted by where the key was
/// written (the toml crate's own maps are sorted by name, and file order decides ties).
#[derive(Debug)]
struct Ordered<V>(Vec<(Spanned<String>, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V_<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let v = map.next_value::<V>()?;
                    out.push((k, v));
                }
                out.sort_by_key(|(k, _)| k.span().start);
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V_(PhantomData))
    }
}

/// The rows of a rate, destination rate or plan: an array of tables, or one table for a
/// single row.
#[derive(Debug)]
enum Rows<T> {
    One(T),
    Many(Vec<Spanned<T>>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Rows<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V_<T> {
            type Value = Rows<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of tables (rows) or a single table")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(row) = seq.next_element::<Spanned<T>>()? {
                    out.push(row);
                }
                Ok(Rows::Many(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Rows::One)
            }
        }
        d.deserialize_any(V_(PhantomData))
    }
}

/// A list of values each with its own span, or a single string (for `;` lists).
#[derive(Debug)]
enum Items {
    One(String),
    Many(Vec<Sv>),
    /// Any other TOML type, by name.
    Wrong(&'static str),
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V_;
        impl<'de> Visitor<'de> for V_ {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Items, E> {
                Ok(Items::One(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Items, E> {
                Ok(Items::Wrong("integer"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Items, E> {
                Ok(Items::Wrong("integer"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Items, E> {
                Ok(Items::Wrong("float"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Items, E> {
                Ok(Items::Wrong("boolean"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Sv>()? {
                    out.push(v);
                }
                Ok(Items::Many(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items, A::Error> {
                while map.next_key::<de::IgnoredAny>()?.is_some() {
                    map.next_value::<de::IgnoredAny>()?;
                }
                Ok(Items::Wrong("table or date"))
            }
        }
        d.deserialize_any(V_)
    }
}

// ---------------------------------------------------------------------------------------------
// Positions.

/// Byte offsets of line starts, to turn spans into 1-based line and character column.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        Lines { starts }
    }

    fn line_col(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = offset.min(text.len());
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = match text.get(start..offset) {
            Some(s) => s.chars().count(),
            None => offset - start,
        };
        (to_u32(line), to_u32(col + 1))
    }

    fn pos(&self, file: &Arc<str>, text: &str, offset: usize) -> Pos {
        let (line, col) = self.line_col(text, offset);
        Pos::new(file, line, col)
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Conversion.

struct Cx<'a> {
    file: Arc<str>,
    text: &'a str,
    lines: Lines,
    diags: &'a mut Diagnostics,
}

impl Cx<'_> {
    fn pos(&self, offset: usize) -> Pos {
        self.lines.pos(&self.file, self.text, offset)
    }

    fn at<T>(&self, s: &Spanned<T>) -> Pos {
        self.pos(s.span().start)
    }

    fn error(&mut self, pos: Pos, msg: impl Into<String>) {
        self.diags.error(pos, msg);
    }

    /// Reports a failed conversion at `pos`.
    fn check<T>(&mut self, pos: &Pos, r: FieldResult<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(msg) => {
                self.error(pos.clone(), msg);
                None
            }
        }
    }

    /// The source text of a span, for messages.
    fn literal(&self, v: &Sv) -> &str {
        self.text.get(v.span()).unwrap_or("").trim()
    }

    /// A string value.
    fn string(&mut self, v: &Sv, key: &str) -> Option<String> {
        match v.get_ref() {
            Value::String(s) => Some(s.clone()),
            other => {
                let msg = format!(
                    "`{key}` must be a string, found {} {}; quote it: {key} = \"{}\"",
                    other.type_str(),
                    self.literal(v),
                    self.literal(v).trim_matches('"'),
                );
                self.error(self.at(v), msg);
                None
            }
        }
    }

    /// A required value: reports `missing` at the row when absent.
    fn required<'v>(&mut self, v: &'v Option<Sv>, key: &str, row: &Pos) -> Option<&'v Sv> {
        if v.is_none() {
            self.error(row.clone(), format!("missing key `{key}`"));
        }
        v.as_ref()
    }

    /// An identifier (a string), spanned.
    fn id(&mut self, v: &Sv, key: &str) -> Option<Sp<String>> {
        let pos = self.at(v);
        let s = self.string(v, key)?;
        let id = self.check(&pos, fields::id(&s, key))?;
        Some(Sp::new(id, pos))
    }

    fn req_id(&mut self, v: &Option<Sv>, key: &str, row: &Pos) -> Option<Sp<String>> {
        self.required(v, key, row).and_then(|v| self.id(v, key))
    }

    /// An id key, or `default` at the row's position.
    fn id_or(&mut self, v: &Option<Sv>, key: &str, default: &str, row: &Pos) -> Option<Sp<String>> {
        match v {
            Some(v) => self.id(v, key),
            None => Some(Sp::new(default.to_string(), row.clone())),
        }
    }

    /// The text of a number-like value: a string as written, or an integer's digits. A float
    /// is refused: it cannot hold most decimal fractions exactly.
    fn numeric_text(&mut self, v: &Sv, key: &str) -> Option<String> {
        match v.get_ref() {
            Value::String(s) => Some(s.clone()),
            Value::Integer(i) => Some(i.to_string()),
            Value::Float(_) => {
                let lit = self.literal(v).to_string();
                self.error(
                    self.at(v),
                    format!(
                        "`{key}` = {lit} is a TOML float, which cannot hold decimal amounts \
                         exactly; write it as a string: {key} = \"{lit}\""
                    ),
                );
                None
            }
            other => {
                let msg = format!(
                    "`{key}` must be a string or an integer, found {} {}",
                    other.type_str(),
                    self.literal(v)
                );
                self.error(self.at(v), msg);
                None
            }
        }
    }

    fn decimal(&mut self, v: &Sv, key: &str, non_negative: bool) -> Option<Decimal> {
        let pos = self.at(v);
        let t = self.numeric_text(v, key)?;
        let r = if non_negative {
            fields::non_negative(&t, key)
        } else {
            fields::decimal(&t, key)
        };
        self.check(&pos, r)
    }

    fn duration(
        &mut self,
        v: &Option<Sv>,
        key: &str,
        default: Option<&str>,
        row: &Pos,
    ) -> Option<Sp<(i64, DurationForm)>> {
        let (text, pos) = match (v, default) {
            (Some(v), _) => (self.numeric_text(v, key)?, self.at(v)),
            (None, Some(d)) => (d.to_string(), row.clone()),
            (None, None) => {
                self.error(row.clone(), format!("missing key `{key}`"));
                return None;
            }
        };
        let d = self.check(&pos, fields::duration(&text, key))?;
        Some(Sp::new(d, pos))
    }

    /// A timing column: a string (`"1-5"`, `"1;2;3"`, `"*any"`), an integer, or an array of
    /// integers/strings (joined with `;`).
    fn selector_text(&mut self, v: &Sv, key: &str) -> Option<String> {
        let item = |x: &Value| match x {
            Value::String(s) => Some(s.clone()),
            Value::Integer(i) => Some(i.to_string()),
            _ => None,
        };
        let text = match v.get_ref() {
            Value::Array(a) => a
                .iter()
                .map(item)
                .collect::<Option<Vec<_>>>()
                .map(|v| v.join(";")),
            x => item(x),
        };
        if text.is_none() {
            let msg = format!(
                "`{key}` must be a string, an integer or an array of them, found {}",
                self.literal(v)
            );
            self.error(self.at(v), msg);
        }
        text
    }

    fn convert(&mut self, file_name: &str, doc: FileT) -> TariffDef {
        let mut def = TariffDef::empty(file_name);
        if let Some(v) = &doc.name
            && let Some(n) = self.string(v, "name")
        {
            let pos = self.at(v);
            if let Some(n) = self.check(&pos, fields::id(&n, "name")) {
                def.name = n;
            }
        }
        if let Some(v) = &doc.currency
            && let Some(c) = self.string(v, "currency")
        {
            let pos = self.at(v);
            def.currency = self.check(&pos, Currency::from_str(&c).map_err(|e| e.to_string()));
        }
        if let Some(v) = &doc.timezone
            && let Some(z) = self.string(v, "timezone")
        {
            let pos = self.at(v);
            if let Some(z) = self.check(&pos, zone(&z)) {
                def.zone = z;
            }
        }
        if let Some(v) = &doc.numbering
            && let Some(n) = self.string(v, "numbering")
        {
            let pos = self.at(v);
            if let Some(n) = self.check(&pos, numbering(&n)) {
                def.numbering = n;
            }
        }
        for (key, items) in &doc.calendars.0 {
            if let Some(c) = self.calendar(key, items) {
                def.calendars.push(c);
            }
        }
        for (key, t) in &doc.timings.0 {
            if let Some(t) = self.timing(key, t) {
                def.timings.push(t);
            }
        }
        let mut seen = FxHashSet::default();
        for (key, items) in &doc.destinations.0 {
            self.destination(key, items, &mut seen, &mut def.destinations);
        }
        for (key, rows) in &doc.rates.0 {
            let id = self.key_id(key, "rate id");
            for (row, pos) in self.rows(rows) {
                if let Some(r) = self.rate(id.clone(), row, &pos) {
                    def.rates.push(r);
                }
            }
        }
        for (key, rows) in &doc.destination_rates.0 {
            let id = self.key_id(key, "destination rate id");
            for (row, pos) in self.rows(rows) {
                if let Some(r) = self.destination_rate(id.clone(), row, &pos) {
                    def.destination_rates.push(r);
                }
            }
        }
        for (key, rows) in &doc.plans.0 {
            let id = self.key_id(key, "plan id");
            for (row, pos) in self.rows(rows) {
                if let Some(r) = self.plan(id.clone(), row, &pos) {
                    def.plans.push(r);
                }
            }
        }
        for p in &doc.profiles {
            if let Some(p) = self.profile(p) {
                def.profiles.push(p);
            }
        }
        def
    }

    fn key_id(&mut self, key: &Spanned<String>, what: &str) -> Option<Sp<String>> {
        let pos = self.at(key);
        let id = self.check(&pos, fields::id(key.get_ref(), what))?;
        Some(Sp::new(id, pos))
    }

    /// The rows of a table entry with their positions.
    fn rows<'r, T>(&self, rows: &'r Spanned<Rows<T>>) -> Vec<(&'r T, Pos)> {
        match rows.get_ref() {
            Rows::One(t) => vec![(t, self.at(rows))],
            Rows::Many(v) => v.iter().map(|r| (r.get_ref(), self.at(r))).collect(),
        }
    }

    /// The string items of a list value, each with its position. A single string is split on
    /// `;`.
    fn string_items(&mut self, items: &Spanned<Items>, key: &str) -> Option<Vec<Sp<String>>> {
        let pos = self.at(items);
        match items.get_ref() {
            Items::One(s) => Some(
                fields::list(s)
                    .into_iter()
                    .map(|s| Sp::new(s, pos.clone()))
                    .collect(),
            ),
            Items::Many(v) => {
                let mut out = Vec::new();
                for item in v {
                    if let Some(s) = self.string(item, key) {
                        out.push(Sp::new(s, self.at(item)));
                    }
                }
                Some(out)
            }
            Items::Wrong(t) => {
                self.error(
                    pos,
                    format!("`{key}` must be an array of strings, found a {t}"),
                );
                None
            }
        }
    }

    fn calendar(&mut self, key: &Spanned<String>, items: &Spanned<Items>) -> Option<CalendarDef> {
        let id = self.key_id(key, "calendar id");
        let pos = self.at(items);
        // Each entry's text, or the message saying it is no date; with its position.
        let entries: Vec<(Pos, FieldResult<String>)> = match items.get_ref() {
            Items::One(s) => fields::list(s)
                .into_iter()
                .map(|s| (pos.clone(), Ok(s)))
                .collect(),
            Items::Many(v) => v.iter().map(|item| self.calendar_entry(item)).collect(),
            Items::Wrong(t) => {
                self.error(
                    pos,
                    format!("a calendar must be an array of dates, found a {t}"),
                );
                return None;
            }
        };
        let mut dates = Vec::new();
        for (pos, text) in entries {
            let Some((from, to)) = self.check(&pos, text.and_then(|t| date_range(&t))) else {
                continue;
            };
            if !expand(from, to, &mut dates) {
                self.error(
                    pos,
                    format!("a calendar holds at most {MAX_CALENDAR_DAYS} days"),
                );
                break;
            }
        }
        dates.sort_unstable();
        dates.dedup();
        Some(CalendarDef { id: id?, dates })
    }

    fn calendar_entry(&self, item: &Sv) -> (Pos, FieldResult<String>) {
        let text = match item.get_ref() {
            Value::String(s) => Ok(s.clone()),
            Value::Datetime(d) if d.time.is_none() && d.offset.is_none() => Ok(d.to_string()),
            _ => Err(format!(
                "calendar entry {} must be a date \"2026-10-01\" or a range \
                     \"2026-10-01..2026-10-07\"",
                self.literal(item)
            )),
        };
        (self.at(item), text)
    }

    fn timing(&mut self, key: &Spanned<String>, t: &Spanned<TimingT>) -> Option<TimingDef> {
        let id = self.key_id(key, "timing id");
        let row = t.get_ref();
        let years = self.timing_field(&row.years, "years", fields::years);
        let months = self.timing_field(&row.months, "months", fields::months);
        let month_days = self.timing_field(&row.month_days, "month_days", fields::month_days);
        let week_days = self.timing_field(&row.week_days, "week_days", fields::week_days);
        let start = match &row.time {
            None => Some(0),
            Some(v) => {
                let pos = self.at(v);
                let text = match v.get_ref() {
                    Value::Datetime(d) if d.date.is_none() && d.offset.is_none() => {
                        Some(d.to_string())
                    }
                    _ => self.string(v, "time"),
                };
                text.and_then(|t| self.check(&pos, fields::time_of_day(&t)))
            }
        };
        let calendar = match &row.calendar {
            None => Some(None),
            Some(v) => self.id(v, "calendar").map(Some),
        };
        Some(TimingDef {
            id: id?,
            years: years?,
            months: months?,
            month_days: month_days?,
            week_days: week_days?,
            start: start?,
            calendar: calendar?,
        })
    }

    fn timing_field<T>(
        &mut self,
        v: &Option<Sv>,
        key: &str,
        f: impl FnOnce(&str) -> FieldResult<T>,
    ) -> Option<T> {
        match v {
            None => f("*any").ok(),
            Some(v) => {
                let pos = self.at(v);
                let text = self.selector_text(v, key)?;
                self.check(&pos, f(&text))
            }
        }
    }

    fn destination(
        &mut self,
        key: &Spanned<String>,
        items: &Spanned<Items>,
        seen: &mut FxHashSet<(String, String)>,
        out: &mut Vec<DestinationRowDef>,
    ) {
        let id = self.key_id(key, "destination id");
        let Some(prefixes) = self.string_items(items, "prefix") else {
            return;
        };
        if prefixes.is_empty() {
            self.error(self.at(items), "a destination needs at least one prefix");
        }
        let mut good = Vec::new();
        for p in prefixes {
            // An array item may itself be a `;` list, as in the CSV format.
            let trimmed = p.value.trim();
            if trimmed.is_empty() {
                self.error(p.pos.clone(), "Prefix is empty");
                continue;
            }
            for item in trimmed.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                if let Some(()) = self.check(&p.pos, check_prefix(item)) {
                    good.push(Sp::new(item.to_string(), p.pos.clone()));
                }
            }
        }
        let Some(id) = id else {
            return;
        };
        for p in good {
            if !seen.insert((id.value.clone(), p.value.clone())) {
                self.diags.warning(
                    p.pos.clone(),
                    format!(
                        "duplicate prefix {:?} in destination {:?}",
                        p.value, id.value
                    ),
                );
                continue;
            }
            out.push(DestinationRowDef {
                id: id.clone(),
                prefix: p,
            });
        }
    }

    fn rate(&mut self, id: Option<Sp<String>>, r: &RateT, row: &Pos) -> Option<RateRowDef> {
        let connect_fee = match &r.connect_fee {
            None => Some(Decimal::ZERO),
            Some(v) => self.decimal(v, "connect_fee", true),
        };
        let rate = self
            .required(&r.rate, "rate", row)
            .and_then(|v| self.decimal(v, "rate", true));
        let unit = self.duration(&r.unit, "unit", None, row);
        let increment = self.duration(&r.increment, "increment", None, row);
        let group_start = self.duration(&r.group_start, "group_start", Some("0s"), row);
        Some(RateRowDef {
            id: id?,
            connect_fee: connect_fee?,
            rate: rate?,
            unit: unit?,
            increment: increment?,
            group_start: group_start?,
        })
    }

    fn destination_rate(
        &mut self,
        id: Option<Sp<String>>,
        r: &DestinationRateT,
        row: &Pos,
    ) -> Option<DestinationRateRowDef> {
        let destination = self.req_id(&r.destination, "destination", row);
        let rate = self.req_id(&r.rate, "rate", row);
        let rounding = match &r.rounding {
            None => Some(toll_core::RoundingMethod::Middle),
            Some(v) => {
                let pos = self.at(v);
                self.string(v, "rounding")
                    .and_then(|t| self.check(&pos, fields::rounding_method(&t)))
            }
        };
        let decimals = match &r.decimals {
            None => Some(4),
            Some(v) => {
                let pos = self.at(v);
                self.numeric_text(v, "decimals")
                    .and_then(|t| self.check(&pos, fields::rounding_decimals(&t)))
            }
        };
        let max_cost = match &r.max_cost {
            None => Some(Decimal::ZERO),
            Some(v) => match v.get_ref() {
                Value::String(s) if s.trim().is_empty() => Some(Decimal::ZERO),
                _ => self.decimal(v, "max_cost", true),
            },
        };
        let strategy = match &r.max_cost_strategy {
            None => Some(None),
            Some(v) => {
                let pos = self.at(v);
                self.string(v, "max_cost_strategy")
                    .and_then(|t| self.check(&pos, fields::max_cost_strategy(&t)))
            }
        };
        let min_cost = match &r.min_cost {
            None => Some(None),
            Some(v) => self.decimal(v, "min_cost", true).map(Some),
        };
        Some(DestinationRateRowDef {
            id: id?,
            destination: destination?,
            rate: rate?,
            rounding: rounding?,
            decimals: decimals?,
            max_cost: max_cost?,
            max_cost_strategy: strategy?,
            min_cost: min_cost?,
        })
    }

    fn plan(&mut self, id: Option<Sp<String>>, r: &PlanT, row: &Pos) -> Option<PlanRowDef> {
        let destination_rates = self.req_id(&r.destination_rates, "destination_rates", row);
        let timing = self.id_or(&r.timing, "timing", "*any", row);
        let weight = match &r.weight {
            None => Some(Decimal::ZERO),
            Some(v) => self.decimal(v, "weight", false),
        };
        Some(PlanRowDef {
            id: id?,
            destination_rates: destination_rates?,
            timing: timing?,
            weight: weight?,
        })
    }

    fn profile(&mut self, p: &Spanned<ProfileT>) -> Option<ProfileDef> {
        let row = self.at(p);
        let r = p.get_ref();
        let tenant = self.req_id(&r.tenant, "tenant", &row);
        let category = self.req_id(&r.category, "category", &row);
        let subject = self.id_or(&r.subject, "subject", "*any", &row);
        let activation = match &r.activation {
            None => Some(None),
            Some(v) => {
                let pos = self.at(v);
                let text = match v.get_ref() {
                    Value::Datetime(d) => Some(d.to_string()),
                    _ => self.string(v, "activation"),
                };
                text.and_then(|t| self.check(&pos, fields::activation(&t)))
            }
        };
        let plan = self.req_id(&r.plan, "plan", &row);
        let fallback = match &r.fallback {
            None => Some(Vec::new()),
            Some(items) => self.string_items(items, "fallback").and_then(|v| {
                let mut out = Vec::new();
                let mut ok = true;
                for s in v {
                    match fields::id(&s.value, "fallback subject") {
                        Ok(id) => out.push(Sp::new(id, s.pos)),
                        Err(msg) => {
                            self.error(s.pos, msg);
                            ok = false;
                        }
                    }
                }
                ok.then_some(out)
            }),
        };
        let carrier = match &r.carrier {
            None => Some(None),
            Some(v) => self.id(v, "carrier").map(Some),
        };
        Some(ProfileDef {
            tenant: tenant?,
            category: category?,
            subject: subject?,
            activation: activation?,
            plan: plan?,
            fallback_subjects: fallback?,
            carrier: carrier?,
        })
    }
}

/// `"event"` (the offset of each event) or an IANA time zone name.
fn zone(name: &str) -> FieldResult<ZoneDef> {
    let t = name.trim();
    if t.eq_ignore_ascii_case("event") {
        return Ok(ZoneDef::EventOffset);
    }
    jiff::tz::TimeZone::get(t)
        .map(|_| ZoneDef::Named(t.to_string()))
        .map_err(|_| format!("timezone {t:?} is not an IANA time zone name (or \"event\")"))
}

fn numbering(name: &str) -> FieldResult<Numbering> {
    match name.trim() {
        "cn" | "china" => Ok(Numbering::ChinaNational),
        "as-dialled" | "as-dialed" => Ok(Numbering::AsDialled),
        other => Err(format!(
            "numbering {other:?} is not \"cn\" or \"as-dialled\""
        )),
    }
}

/// Appends the days `from..=to`; false when that would exceed [`MAX_CALENDAR_DAYS`].
fn expand(from: Date, to: Date, dates: &mut Vec<Date>) -> bool {
    let mut d = from;
    loop {
        if dates.len() >= MAX_CALENDAR_DAYS {
            return false;
        }
        dates.push(d);
        if d >= to {
            return true;
        }
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => return true,
        }
    }
}

/// `2026-10-01` or the inclusive range `2026-10-01..2026-10-07`.
fn date_range(text: &str) -> FieldResult<(Date, Date)> {
    let t = text.trim();
    let date = |s: &str| -> FieldResult<Date> {
        let s = s.trim();
        if s.len() != 10 {
            return Err(format!("date {s:?} is not YYYY-MM-DD"));
        }
        Date::from_str(s).map_err(|e| format!("date {s:?} is not a valid YYYY-MM-DD date: {e}"))
    };
    match t.split_once("..") {
        None => date(t).map(|d| (d, d)),
        Some((a, b)) => {
            let (a, b) = (date(a)?, date(b)?);
            if b < a {
                return Err(format!("date range {t:?} ends before it starts"));
            }
            Ok((a, b))
        }
    }
}
