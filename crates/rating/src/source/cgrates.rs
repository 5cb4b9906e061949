//! Classic CGRateS tariff-plan CSV folder.
//!
//! Six files are read by name (`Destinations.csv`, `Rates.csv`, `DestinationRates.csv`,
//! `Timings.csv`, `RatingPlans.csv`, `RatingProfiles.csv`; a case-insensitive match is accepted);
//! any other file of the folder is ignored. Lines starting with `#` are comments, and a first row
//! whose first field is the column's name (`Id`, `Tag`, `Tenant`, `Direction`) is a header.
//!
//! Every field goes through [`fields`], so a value means the same here as in Toll's TOML format.
//! Positions are `file:line:field-number`. Parsing never stops at the first problem: each bad
//! field gets its own diagnostic and its row is skipped. Cross-references (unknown rate ids...)
//! are left to the compiler.
//!
//! Two Toll extensions are optional trailing columns: `MinCost` (8th column of
//! `DestinationRates.csv`) and `Carrier` (7th column of `RatingProfiles.csv`). The old
//! `RatingProfiles.csv` layout that starts with a Direction (`*out`/`*in`) and ends with
//! `CdrStatQueueIds` is accepted; both of those columns are ignored.

use std::sync::Arc;

use csv::{ByteRecord, ReaderBuilder, Trim};
use rust_decimal::Decimal;
use rustc_hash::FxHashSet;

use super::SourceFile;
use super::fields::{self, FieldResult};
use crate::def::{
    DestinationRateRowDef, DestinationRowDef, Numbering, PlanRowDef, ProfileDef, RateRowDef,
    Spanned, TariffDef, TimingDef, ZoneDef,
};
use crate::diag::{Diagnostics, Pos};

/// The longest prefix accepted, in bytes.
pub const MAX_PREFIX_LEN: usize = 32;

/// The six files of a classic CGRateS tariff plan, in the order they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Destinations,
    Rates,
    DestinationRates,
    Timings,
    RatingPlans,
    RatingProfiles,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Destinations,
        Kind::Rates,
        Kind::DestinationRates,
        Kind::Timings,
        Kind::RatingPlans,
        Kind::RatingProfiles,
    ];

    fn file_name(self) -> &'static str {
        match self {
            Kind::Destinations => "Destinations.csv",
            Kind::Rates => "Rates.csv",
            Kind::DestinationRates => "DestinationRates.csv",
            Kind::Timings => "Timings.csv",
            Kind::RatingPlans => "RatingPlans.csv",
            Kind::RatingProfiles => "RatingProfiles.csv",
        }
    }

    /// First-column names that mark a header row.
    fn header_names(self) -> &'static [&'static str] {
        match self {
            Kind::Timings => &["Tag", "Id"],
            Kind::RatingProfiles => &["Tenant", "Direction"],
            _ => &["Id", "Tag"],
        }
    }
}

/// The columns of one row layout: required ones, then optional trailing ones.
#[derive(Debug, Clone, Copy)]
struct Layout {
    columns: &'static [&'static str],
    required: usize,
}

impl Layout {
    fn accepts(&self, n: usize) -> bool {
        (self.required..=self.columns.len()).contains(&n)
    }

    fn describe(&self, found: usize) -> String {
        let required = self.columns[..self.required].join(", ");
        let optional: String = self.columns[self.required..]
            .iter()
            .map(|c| format!("[, {c}]"))
            .collect();
        let count = if self.required == self.columns.len() {
            self.required.to_string()
        } else if self.columns.len() == self.required + 1 {
            format!("{} or {}", self.required, self.columns.len())
        } else {
            format!("{} to {}", self.required, self.columns.len())
        };
        format!("expected {count} fields ({required}{optional}), found {found}")
    }
}

const DESTINATIONS: Layout = Layout {
    columns: &["Id", "Prefix"],
    required: 2,
};
const RATES: Layout = Layout {
    columns: &[
        "Id",
        "ConnectFee",
        "Rate",
        "RateUnit",
        "RateIncrement",
        "GroupIntervalStart",
    ],
    required: 6,
};
const DESTINATION_RATES: Layout = Layout {
    columns: &[
        "Id",
        "DestinationId",
        "RatesTag",
        "RoundingMethod",
        "RoundingDecimals",
        "MaxCost",
        "MaxCostStrategy",
        "MinCost",
    ],
    required: 7,
};
const TIMINGS: Layout = Layout {
    columns: &["Tag", "Years", "Months", "MonthDays", "WeekDays", "Time"],
    required: 6,
};
const RATING_PLANS: Layout = Layout {
    columns: &["Id", "DestinationRatesId", "TimingTag", "Weight"],
    required: 4,
};
const RATING_PROFILES: Layout = Layout {
    columns: &[
        "Tenant",
        "Category",
        "Subject",
        "ActivationTime",
        "RatingPlanId",
        "RatesFallbackSubject",
        "Carrier",
    ],
    required: 6,
};
const RATING_PROFILES_OLD: Layout = Layout {
    columns: &[
        "Direction",
        "Tenant",
        "Category",
        "Subject",
        "ActivationTime",
        "RatingPlanId",
        "RatesFallbackSubject",
        "CdrStatQueueIds",
    ],
    required: 7,
};

/// Parses a classic CGRateS tariff-plan folder. Missing files are empty lists; the definition
/// is returned even when there are errors.
pub fn parse(files: &[SourceFile], diags: &mut Diagnostics) -> TariffDef {
    let mut def = TariffDef::empty("cgrates");
    def.zone = ZoneDef::EventOffset;
    def.numbering = Numbering::AsDialled;

    let mut found_any = false;
    let mut seen_prefixes: FxHashSet<(String, String)> = FxHashSet::default();
    for kind in Kind::ALL {
        let Some(file) = find_file(files, kind.file_name()) else {
            continue;
        };
        found_any = true;
        let mut reader = FileReader {
            kind,
            file: Arc::from(file.name.as_str()),
            def: &mut def,
            diags,
            seen_prefixes: &mut seen_prefixes,
        };
        reader.read(&file.bytes);
    }
    if !found_any {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.file_name()).collect();
        diags.error(
            Pos {
                file: Arc::from("."),
                line: 0,
                column: 0,
            },
            format!(
                "no CGRateS tariff files found (expected {})",
                names.join(", ")
            ),
        );
    }
    def
}

/// The file with exactly this name, else one whose name matches ignoring ASCII case.
fn find_file<'f>(files: &'f [SourceFile], name: &str) -> Option<&'f SourceFile> {
    files
        .iter()
        .find(|f| f.name == name)
        .or_else(|| files.iter().find(|f| f.name.eq_ignore_ascii_case(name)))
}

struct FileReader<'a> {
    kind: Kind,
    file: Arc<str>,
    def: &'a mut TariffDef,
    diags: &'a mut Diagnostics,
    seen_prefixes: &'a mut FxHashSet<(String, String)>,
}

impl FileReader<'_> {
    fn read(&mut self, bytes: &[u8]) {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let mut record = ByteRecord::new();
        let mut first = true;
        let lines = LineIndex::new(bytes);
        loop {
            let before = reader.position().byte();
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    let at = e.position().map_or(reader.position().byte(), |p| p.byte());
                    let line = lines.line_of_record(bytes, usize::try_from(at).unwrap_or(0));
                    self.diags
                        .error(Pos::new(&self.file, line, 1), format!("CSV: {e}"));
                    if reader.position().byte() > before {
                        continue;
                    }
                    break;
                }
            }
            let start = record.position().map_or(0, |p| p.byte());
            let line = lines.line_of_record(bytes, usize::try_from(start).unwrap_or(usize::MAX));
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue; // a blank row
            }
            if std::mem::take(&mut first) && self.is_header(&record) {
                continue;
            }
            let row = Row::new(&record, Pos::new(&self.file, line, 1));
            self.row(row);
        }
    }

    fn is_header(&self, record: &ByteRecord) -> bool {
        let first = record.get(0).unwrap_or_default();
        self.kind
            .header_names()
            .iter()
            .any(|h| h.as_bytes().eq_ignore_ascii_case(first))
    }

    fn row(&mut self, mut row: Row<'_>) {
        let layout = match self.kind {
            Kind::Destinations => DESTINATIONS,
            Kind::Rates => RATES,
            Kind::DestinationRates => DESTINATION_RATES,
            Kind::Timings => TIMINGS,
            Kind::RatingPlans => RATING_PLANS,
            Kind::RatingProfiles => {
                let first = row.fields.first().copied().unwrap_or_default();
                if first == b"*out" || first == b"*in" {
                    RATING_PROFILES_OLD
                } else {
                    RATING_PROFILES
                }
            }
        };
        if !layout.accepts(row.fields.len()) {
            self.diags
                .error(row.pos.clone(), layout.describe(row.fields.len()));
            return;
        }
        row.columns = layout.columns;
        let diags = &mut *self.diags;
        match self.kind {
            Kind::Destinations => self.destination(row),
            Kind::Rates => {
                if let Some(r) = rate(&row, diags) {
                    self.def.rates.push(r);
                }
            }
            Kind::DestinationRates => {
                if let Some(r) = destination_rate(&row, diags) {
                    self.def.destination_rates.push(r);
                }
            }
            Kind::Timings => {
                if let Some(t) = timing(&row, diags) {
                    self.def.timings.push(t);
                }
            }
            Kind::RatingPlans => {
                if let Some(p) = plan(&row, diags) {
                    self.def.plans.push(p);
                }
            }
            Kind::RatingProfiles => {
                let offset = usize::from(layout.columns[0] == "Direction");
                if let Some(p) = profile(&row, diags, offset) {
                    self.def.profiles.push(p);
                }
            }
        }
    }

    fn destination(&mut self, row: Row<'_>) {
        let diags = &mut *self.diags;
        let id = row.spanned(0, diags, |t| fields::id(t, "Id"));
        let Some(text) = row.text(1, diags) else {
            return;
        };
        let pos = row.pos(1);
        let mut prefixes = Vec::new();
        if text.trim().is_empty() {
            diags.error(pos.clone(), "Prefix is empty");
        }
        for item in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match check_prefix(item) {
                Ok(()) => prefixes.push(item),
                Err(msg) => diags.error(pos.clone(), msg),
            }
        }
        let Some(id) = id else {
            return;
        };
        for p in prefixes {
            if !self.seen_prefixes.insert((id.value.clone(), p.to_string())) {
                diags.warning(
                    pos.clone(),
                    format!("duplicate prefix {p:?} in destination {:?}", id.value),
                );
                continue;
            }
            self.def.destinations.push(DestinationRowDef {
                id: id.clone(),
                prefix: Spanned::new(p.to_string(), pos.clone()),
            });
        }
    }
}

/// A prefix: non-empty, no whitespace or control characters inside, at most 32 bytes.
pub fn check_prefix(p: &str) -> FieldResult<()> {
    if p.is_empty() {
        return Err("Prefix is empty".to_string());
    }
    if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("Prefix {p:?} contains whitespace"));
    }
    if p.len() > MAX_PREFIX_LEN {
        return Err(format!(
            "Prefix {p:?} is longer than {MAX_PREFIX_LEN} bytes"
        ));
    }
    Ok(())
}

fn rate(row: &Row<'_>, d: &mut Diagnostics) -> Option<RateRowDef> {
    let id = row.spanned(0, d, |t| fields::id(t, "Id"));
    let connect_fee = row.get(1, d, |t| fields::non_negative(t, "ConnectFee"));
    let rate = row.get(2, d, |t| fields::non_negative(t, "Rate"));
    let unit = row.spanned(3, d, |t| fields::duration(t, "RateUnit"));
    let increment = row.spanned(4, d, |t| fields::duration(t, "RateIncrement"));
    let group_start = row.spanned(5, d, |t| fields::duration(t, "GroupIntervalStart"));
    Some(RateRowDef {
        id: id?,
        connect_fee: connect_fee?,
        rate: rate?,
        unit: unit?,
        increment: increment?,
        group_start: group_start?,
    })
}

fn destination_rate(row: &Row<'_>, d: &mut Diagnostics) -> Option<DestinationRateRowDef> {
    let id = row.spanned(0, d, |t| fields::id(t, "Id"));
    let destination = row.spanned(1, d, |t| fields::id(t, "DestinationId"));
    let rate = row.spanned(2, d, |t| fields::id(t, "RatesTag"));
    let rounding = row.get(3, d, fields::rounding_method);
    let decimals = row.get(4, d, fields::rounding_decimals);
    let max_cost = row.get(5, d, |t| {
        if t.trim().is_empty() {
            Ok(Decimal::ZERO)
        } else {
            fields::non_negative(t, "MaxCost")
        }
    });
    let strategy = row.get(6, d, fields::max_cost_strategy);
    let min_cost = row.get(7, d, |t| {
        if t.trim().is_empty() {
            Ok(None)
        } else {
            fields::non_negative(t, "MinCost").map(Some)
        }
    });
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

fn timing(row: &Row<'_>, d: &mut Diagnostics) -> Option<TimingDef> {
    let id = row.spanned(0, d, |t| fields::id(t, "Tag"));
    let years = row.get(1, d, fields::years);
    let months = row.get(2, d, fields::months);
    let month_days = row.get(3, d, fields::month_days);
    let week_days = row.get(4, d, fields::week_days);
    let start = row.get(5, d, fields::time_of_day);
    Some(TimingDef {
        id: id?,
        years: years?,
        months: months?,
        month_days: month_days?,
        week_days: week_days?,
        start: start?,
        calendar: None,
    })
}

fn plan(row: &Row<'_>, d: &mut Diagnostics) -> Option<PlanRowDef> {
    let id = row.spanned(0, d, |t| fields::id(t, "Id"));
    let destination_rates = row.spanned(1, d, |t| fields::id(t, "DestinationRatesId"));
    let timing = row.spanned(2, d, |t| fields::id(t, "TimingTag"));
    let weight = row.get(3, d, |t| fields::decimal(t, "Weight"));
    Some(PlanRowDef {
        id: id?,
        destination_rates: destination_rates?,
        timing: timing?,
        weight: weight?,
    })
}

/// `o` is 1 in the old layout, whose first column is the Direction.
fn profile(row: &Row<'_>, d: &mut Diagnostics, o: usize) -> Option<ProfileDef> {
    let tenant = row.spanned(o, d, |t| fields::id(t, "Tenant"));
    let category = row.spanned(o + 1, d, |t| fields::id(t, "Category"));
    let subject = row.spanned(o + 2, d, |t| fields::id(t, "Subject"));
    let activation = row.get(o + 3, d, fields::activation);
    let plan = row.spanned(o + 4, d, |t| fields::id(t, "RatingPlanId"));
    let fallback = row.get(o + 5, d, |t| Ok(fields::list(t)));
    let fallback_pos = row.pos(o + 5);
    let carrier = if o == 0 {
        let carrier = row.get(6, d, |t| {
            if t.trim().is_empty() {
                Ok(None)
            } else {
                fields::id(t, "Carrier").map(Some)
            }
        });
        carrier.map(|c| c.map(|v| Spanned::new(v, row.pos(6))))
    } else {
        Some(None)
    };
    Some(ProfileDef {
        tenant: tenant?,
        category: category?,
        subject: subject?,
        activation: activation?,
        plan: plan?,
        fallback_subjects: fallback?
            .into_iter()
            .map(|s| Spanned::new(s, fallback_pos.clone()))
            .collect(),
        carrier: carrier?,
    })
}

/// One CSV record being converted.
struct Row<'r> {
    /// Position of the record (column 1).
    pos: Pos,
    fields: Vec<&'r [u8]>,
    /// Column names of the layout, for messages.
    columns: &'static [&'static str],
}

impl<'r> Row<'r> {
    fn new(record: &'r ByteRecord, pos: Pos) -> Self {
        Row {
            pos,
            fields: record.iter().collect(),
            columns: &[],
        }
    }

    /// Position of the 0-based field `i`.
    fn pos(&self, i: usize) -> Pos {
        self.pos.at_column(to_u32(i as u64 + 1))
    }

    fn name(&self, i: usize) -> &'static str {
        self.columns.get(i).copied().unwrap_or("field")
    }

    /// The text of field `i` (empty when absent); `None`, with a diagnostic, when it is not UTF-8.
    fn text(&self, i: usize, diags: &mut Diagnostics) -> Option<&'r str> {
        let bytes = self.fields.get(i).copied().unwrap_or_default();
        match std::str::from_utf8(bytes) {
            Ok(t) => Some(t),
            Err(e) => {
                diags.error(
                    self.pos(i),
                    format!(
                        "{} is not valid UTF-8 (bad byte at offset {})",
                        self.name(i),
                        e.valid_up_to()
                    ),
                );
                None
            }
        }
    }

    /// Converts field `i`; a failure is reported at the field's position.
    fn get<T>(
        &self,
        i: usize,
        diags: &mut Diagnostics,
        f: impl FnOnce(&str) -> FieldResult<T>,
    ) -> Option<T> {
        let text = self.text(i, diags)?;
        match f(text) {
            Ok(v) => Some(v),
            Err(msg) => {
                diags.error(self.pos(i), msg);
                None
            }
        }
    }

    fn spanned<T>(
        &self,
        i: usize,
        diags: &mut Diagnostics,
        f: impl FnOnce(&str) -> FieldResult<T>,
    ) -> Option<Spanned<T>> {
        self.get(i, diags, f).map(|v| Spanned::new(v, self.pos(i)))
    }
}

/// Line numbers from byte offsets. The csv crate's own line count does not include the comment
/// lines skipped before a record, so lines are counted here.
struct LineIndex {
    /// Byte offsets at which lines 2, 3, ... start.
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(bytes: &[u8]) -> Self {
        let starts = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        LineIndex { starts }
    }

    /// The 1-based line of the record whose reading started at `offset`: the reader's offset is
    /// the end of the previous record, so blank and comment lines in between are skipped here
    /// as the reader skips them.
    fn line_of_record(&self, bytes: &[u8], mut offset: usize) -> u32 {
        while let Some(&b) = bytes.get(offset) {
            match b {
                b'\r' | b'\n' => offset += 1,
                b'#' => match bytes[offset..].iter().position(|&c| c == b'\n') {
                    Some(n) => offset += n + 1,
                    None => break,
                },
                _ => break,
            }
        }
        to_u32(self.starts.partition_point(|&s| s <= offset) as u64 + 1)
    }
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
