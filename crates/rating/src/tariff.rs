//! The compiled tariff: definitions checked, cross-referenced and arranged for fast rating.
//!
//! Compilation reports every problem it finds (unknown ids, impossible rate rows, ambiguous
//! bands) with the position the definition came from, and only succeeds with no errors.

use std::sync::Arc;

use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;
use toll_core::Currency;
use toll_core::civil::{CivilDate, days_from_civil};
use toll_core::rounding::{Rounding, RoundingMethod};
use toll_core::usage::DurationForm;

use crate::bands::{BandTables, DayBands};
use crate::carriers::NumberRanges;
use crate::def::{MaxCostStrategy, Numbering, Selector, TariffDef, ZoneDef};
use crate::diag::{Diagnostics, Pos};
use crate::engine::scan_rows;
use crate::subjects::SubjectTable;
use crate::trie::{FrozenTrie, MAX_MATCHES, PrefixIndex, PrefixTrie};

pub(crate) const NONE: u32 = u32::MAX;
/// Marks a prefix value that indexes `Tariff::dest_sets`.
pub(crate) const MULTI: u32 = 1 << 31;
/// The id that means "any destination" or "any subject".
pub const ANY: &str = "*any";

/// A destination a call matched: a named one, or the plan's `*any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestRef {
    Named(u32),
    Any,
}

#[derive(Debug, Clone)]
pub(crate) struct Destination {
    pub id: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct RateRow {
    pub connect_fee: Decimal,
    pub rate: Decimal,
    /// `connect_fee` and `rate` as integers at the tariff's money scale.
    pub connect_fx: i128,
    pub rate_fx: i128,
    pub unit: i64,
    pub increment: i64,
    pub group_start: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Rate {
    pub id: Box<str>,
    /// Sorted by `group_start`, the first at 0.
    pub rows: Box<[RateRow]>,
}

#[derive(Debug, Clone)]
pub(crate) struct DestRate {
    pub id: Box<str>,
    pub rate: u32,
    pub terms: u32,
}

/// Rounding, caps and floor of a destination rate. Tariffs have thousands of destination rates
/// but only a handful of distinct terms; interning them keeps the table the hot path reads tiny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DrTerms {
    pub rounding: Rounding,
    pub free_cap: Option<Decimal>,
    pub disconnect_cap: Option<Decimal>,
    pub min_cost: Option<Decimal>,
    /// The caps and floor as integers at the tariff's money scale.
    pub free_cap_fx: Option<i128>,
    pub min_cost_fx: Option<i128>,
}

/// Most decimals a price, cap or floor may have: every amount of a tariff is held as an
/// integer at the largest scale it uses, and 20 decimals keep all products inside `i128`.
pub const MAX_MONEY_SCALE: u32 = 20;

/// `d` as an integer at `scale` decimals (`d.scale() <= scale`); `None` if it does not fit.
pub(crate) fn to_fixed(d: Decimal, scale: u32) -> Option<i128> {
    d.mantissa()
        .checked_mul(10i128.checked_pow(scale.checked_sub(d.scale())?)?)
}

#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub id: Box<str>,
    /// Empty: any year.
    pub years: Box<[i32]>,
    /// Bit m (1..=12) set when month m matches.
    pub months: u16,
    /// Bit d (1..=31) set when day d matches.
    pub month_days: u32,
    /// Bit w (0 = Sunday) set when week day w matches.
    pub week_days: u8,
    pub calendar: Option<u32>,
    /// Nanoseconds after local midnight.
    pub start: i64,
}

impl Timing {
    pub(crate) fn matches_date(&self, date: &CivilDate, days: i64, calendars: &[Calendar]) -> bool {
        (self.months >> date.month) & 1 == 1
            && (self.month_days >> date.day) & 1 == 1
            && (self.week_days >> date.weekday) & 1 == 1
            && (self.years.is_empty() || self.years.contains(&date.year))
            && self
                .calendar
                .is_none_or(|c| calendars[c as usize].days.binary_search(&days).is_ok())
    }
}

/// Which timings match each local day from 2000 to 2099, a bit per timing. The band scan of
/// every call tests a bit here instead of working out the civil date and matching it (months,
/// days of the month, weekdays, years, holiday calendars) against every band row; days outside
/// the window, and tariffs with more than 64 timings, take that longer way.
#[derive(Debug, Clone)]
pub(crate) struct DayTimings {
    first_day: i64,
    /// Each day's class: days on which the same timings match share one.
    classes: Box<[u16]>,
    /// Per class, bit `k` set when timing `k` matches.
    masks: Box<[u64]>,
}

impl DayTimings {
    fn build(timings: &[Timing], calendars: &[Calendar]) -> Option<DayTimings> {
        if timings.len() > 64 {
            return None;
        }
        let first_day = days_from_civil(2000, 1, 1);
        let end = days_from_civil(2100, 1, 1);
        let mut masks: Vec<u64> = Vec::new();
        let mut class_of: FxHashMap<u64, u16> = FxHashMap::default();
        let mut classes = Vec::with_capacity(usize::try_from(end - first_day).unwrap_or(0));
        for days in first_day..end {
            let date = toll_core::civil::civil_from_days(days);
            let mask = timings
                .iter()
                .enumerate()
                .filter(|(_, t)| t.matches_date(&date, days, calendars))
                .fold(0u64, |m, (k, _)| m | 1 << k);
            let class = match class_of.get(&mask) {
                Some(&c) => c,
                None => {
                    // 36,525 days cannot have more than 65,536 distinct sets.
                    let c = u16::try_from(masks.len()).ok()?;
                    masks.push(mask);
                    class_of.insert(mask, c);
                    c
                }
            };
            classes.push(class);
        }
        Some(DayTimings {
            first_day,
            classes: classes.into(),
            masks: masks.into(),
        })
    }

    /// The class of the local day `days` (since the epoch) and its timings (bit `k` set when
    /// timing `k` matches), if the window covers it.
    #[inline]
    pub(crate) fn get(&self, days: i64) -> Option<(u16, u64)> {
        let i = usize::try_from(days.wrapping_sub(self.first_day)).ok()?;
        let class = *self.classes.get(i)?;
        Some((class, self.masks[usize::from(class)]))
    }

    /// The timings of each class.
    pub(crate) fn class_masks(&self) -> &[u64] {
        &self.masks
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Calendar {
    /// Days since the epoch, sorted.
    pub days: Box<[i64]>,
}

/// One plan row as it applies to one destination (compilation only).
#[derive(Debug, Clone)]
struct BindRow {
    timing: u32,
    weight: Decimal,
    dr: u32,
    rate: u32,
    terms: u32,
    start: i64,
}

/// When one row of a binding applies: its timing, its weight as a rank among all the tariff's
/// plan weights (same order, integer compares), and the timing's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SchedRow {
    pub timing: u32,
    pub rank: u32,
    /// Start of the timing, copied here to keep the band scan on one cache line.
    pub start: i64,
}

/// The band rows of a binding without their prices, sorted by start. Thousands of bindings
/// share a handful of schedules (every destination of a plan usually has the same bands), so
/// the band scan reads a few hot cache lines whatever the destination.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub rows: Box<[SchedRow]>,
    /// Rank of the highest row weight.
    pub max_rank: u32,
    /// Day class → index into `Tariff::day_bands` (`NONE`, or empty: scan the rows).
    pub days: Box<[u32]>,
}

/// What row `i` of a binding charges: `Tariff::row_terms[first + i]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowTerms {
    pub dr: u32,
    /// The destination rate's rate and terms, copied so rating never reads `DestRate`.
    pub rate: u32,
    pub terms: u32,
}

/// Everything a plan says about one destination: its schedule, and where its rows' prices
/// start in `Tariff::row_terms`. Small enough to sit in the plan's table itself, so deciding
/// between candidate destinations reads no per-destination memory but this entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BindRef {
    pub schedule: u32,
    pub first: u32,
}

impl BindRef {
    const NONE: BindRef = BindRef {
        schedule: NONE,
        first: NONE,
    };
}

/// Destination → binding of one plan: a dense table when the plan binds a fair share of the
/// tariff's destinations (one load, no hashing), a hash map otherwise (memory stays
/// proportional to what the plan binds).
#[derive(Debug, Clone)]
pub(crate) enum PlanBindings {
    Dense(Box<[BindRef]>),
    Sparse(FxHashMap<u32, BindRef>),
}

impl PlanBindings {
    #[inline]
    pub(crate) fn get(&self, dest: u32) -> Option<BindRef> {
        match self {
            PlanBindings::Dense(v) => v.get(dest as usize).copied().filter(|b| b.schedule != NONE),
            PlanBindings::Sparse(m) => m.get(&dest).copied(),
        }
    }

    fn build(pairs: &[(u32, BindRef)], destinations: usize) -> PlanBindings {
        if pairs.len().saturating_mul(8) >= destinations {
            let mut v = vec![BindRef::NONE; destinations];
            for &(d, b) in pairs {
                v[d as usize] = b;
            }
            PlanBindings::Dense(v.into())
        } else {
            PlanBindings::Sparse(pairs.iter().copied().collect())
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub id: Box<str>,
    pub bindings: PlanBindings,
    pub any: Option<BindRef>,
}

#[derive(Debug, Clone)]
pub(crate) struct Activation {
    /// Nanoseconds since the epoch; `i64::MIN` for "always".
    pub at: i64,
    pub plan: u32,
    pub fallbacks: Box<[u32]>,
}

/// (tenant, category, subject, carrier) as interned ids; carrier `NONE` = any carrier.
pub(crate) type ProfileKey = (u32, u32, u32, u32);

/// The clock bands are read in.
#[derive(Debug, Clone)]
pub(crate) enum Zone {
    EventOffset,
    Named(TimeZone),
}

/// Counts printed by `toll tariff check`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TariffStats {
    pub destinations: usize,
    pub prefixes: usize,
    pub rates: usize,
    pub destination_rates: usize,
    pub timings: usize,
    pub plans: usize,
    pub profiles: usize,
}

/// A compiled tariff, ready for [`crate::rate`]. Immutable and `Sync`: share it with `Arc`.
#[derive(Debug, Clone)]
pub struct Tariff {
    pub name: String,
    pub currency: Option<Currency>,
    pub numbering: Numbering,
    pub(crate) zone: Zone,
    pub(crate) destinations: Vec<Destination>,
    /// Prefix → destinations: a destination id, or `MULTI | i` for `dest_sets[i]` when several
    /// destinations share the prefix (rare, so the common case needs no second look-up).
    pub(crate) prefixes: FrozenTrie,
    /// The same prefixes hashed per length, when they are all digits (see [`PrefixIndex`]).
    pub(crate) prefix_index: Option<PrefixIndex>,
    pub(crate) dest_sets: Vec<Box<[u32]>>,
    pub(crate) rates: Vec<Rate>,
    pub(crate) drs: Vec<DestRate>,
    pub(crate) terms: Vec<DrTerms>,
    pub(crate) timings: Vec<Timing>,
    pub(crate) calendars: Vec<Calendar>,
    pub(crate) day_timings: Option<DayTimings>,
    /// Band tables of (schedule, day class) pairs; see [`crate::bands`].
    pub(crate) day_bands: Box<[DayBands]>,
    pub(crate) plans: Vec<Plan>,
    pub(crate) schedules: Vec<Schedule>,
    pub(crate) row_terms: Vec<RowTerms>,
    pub(crate) strings: FxHashMap<Box<str>, u32>,
    pub(crate) profiles: FxHashMap<ProfileKey, Box<[Activation]>>,
    /// The same profiles by subject text, when none is carrier-specific.
    pub(crate) subjects: Option<SubjectTable>,
    pub(crate) ranges: Arc<NumberRanges>,
    /// Range-table carrier index → interned id of its slug.
    pub(crate) range_carrier_ids: Vec<u32>,
    pub(crate) any_id: u32,
    /// Whether any profile is carrier-specific (else those look-ups are skipped).
    pub(crate) has_carrier_profiles: bool,
    /// Decimals of every fixed-point amount in the compiled tariff.
    pub(crate) money_scale: u32,
    pub stats: TariffStats,
}

impl Tariff {
    /// Every prefix of `number` with destinations, shortest first, as (length, value).
    #[inline]
    pub(crate) fn prefix_matches(
        &self,
        number: &[u8],
        lens: &mut [u8; MAX_MATCHES],
        values: &mut [u32; MAX_MATCHES],
    ) -> usize {
        match &self.prefix_index {
            Some(idx) => idx.matches(number, lens, values),
            None => self.prefixes.matches(number, lens, values),
        }
    }

    pub(crate) fn string_id(&self, s: &str) -> u32 {
        self.strings.get(s).copied().unwrap_or(NONE)
    }

    pub fn destination_id(&self, d: DestRef) -> &str {
        match d {
            DestRef::Named(i) => &self.destinations[i as usize].id,
            DestRef::Any => ANY,
        }
    }

    pub fn timing_id(&self, i: u32) -> &str {
        &self.timings[i as usize].id
    }

    pub fn rate_id(&self, i: u32) -> &str {
        &self.rates[i as usize].id
    }

    pub fn destination_rate_id(&self, i: u32) -> &str {
        &self.drs[i as usize].id
    }

    pub fn plan_id(&self, i: u32) -> &str {
        &self.plans[i as usize].id
    }

    pub fn ranges(&self) -> &NumberRanges {
        &self.ranges
    }

    /// The carrier a rated event is attributed to, as outputs write it (`unknown` when
    /// unknown): the route's when the event named one, else the callee's number range's.
    pub fn carrier_slug<'a>(&'a self, route: Option<&'a str>, r: &crate::Rated) -> &'a str {
        match r.carrier {
            crate::CarrierOutcome::Route(Some(c)) | crate::CarrierOutcome::Callee(c) => {
                &self.ranges.carrier(c).slug
            }
            crate::CarrierOutcome::Route(None) => route.unwrap_or("unknown"),
            crate::CarrierOutcome::Unknown => "unknown",
        }
    }

    /// The region of the callee's number range, when the range table knows it.
    pub fn region(&self, r: &crate::Rated) -> Option<&str> {
        r.range.and_then(|i| self.ranges.range(i).region.as_deref())
    }

    /// The dialled number as the tariff matches it: normalised when the tariff normalises
    /// Chinese numbers (falling back to the text when it does not parse), else trimmed.
    pub fn matched_number<'a>(&self, dialled: &'a str) -> std::borrow::Cow<'a, str> {
        match self.numbering {
            Numbering::ChinaNational => toll_core::phone::PhoneNumber::parse_cn(dialled)
                .map(|n| std::borrow::Cow::Owned(n.as_str().to_string()))
                .unwrap_or(std::borrow::Cow::Borrowed(dialled)),
            Numbering::AsDialled => std::borrow::Cow::Borrowed(dialled.trim()),
        }
    }

    /// Whether the tariff reads bands in a fixed IANA zone (and which), or in each event's offset.
    pub fn time_zone(&self) -> Option<&TimeZone> {
        match &self.zone {
            Zone::Named(tz) => Some(tz),
            Zone::EventOffset => None,
        }
    }

    /// Compiles a definition. On success also returns the warnings; on failure every error.
    pub fn compile(
        def: &TariffDef,
        ranges: Arc<NumberRanges>,
    ) -> Result<(Tariff, Diagnostics), Diagnostics> {
        let mut c = Compiler::new(ranges);
        c.run(def);
        if c.diags.has_errors() {
            return Err(c.diags);
        }
        let diags = std::mem::take(&mut c.diags);
        Ok((c.finish(def), diags))
    }
}

fn file_pos(def: &TariffDef) -> Pos {
    let file = def
        .destinations
        .first()
        .map(|d| Arc::clone(&d.id.pos.file))
        .or_else(|| def.profiles.first().map(|p| Arc::clone(&p.tenant.pos.file)))
        .unwrap_or_else(|| Arc::from(def.name.as_str()));
    Pos {
        file,
        line: 1,
        column: 1,
    }
}

struct Compiler {
    diags: Diagnostics,
    ranges: Arc<NumberRanges>,
    zone: Zone,
    destinations: Vec<Destination>,
    dest_ids: FxHashMap<String, u32>,
    prefixes: PrefixTrie<SmallVec<[u32; 2]>>,
    prefix_count: usize,
    rates: Vec<Rate>,
    rate_ids: FxHashMap<String, u32>,
    drs: Vec<DestRate>,
    terms: Vec<DrTerms>,
    scale: u32,
    term_ids: FxHashMap<DrTerms, u32>,
    /// DR id → (its DR rows, destination of each).
    dr_groups: FxHashMap<String, Vec<(u32, DestRef)>>,
    timings: Vec<Timing>,
    timing_ids: FxHashMap<String, u32>,
    calendars: Vec<Calendar>,
    plans: Vec<Plan>,
    schedules: Vec<Schedule>,
    schedule_ids: FxHashMap<Box<[SchedRow]>, u32>,
    row_terms: Vec<RowTerms>,
    plan_ids: FxHashMap<String, u32>,
    strings: FxHashMap<Box<str>, u32>,
    string_list: Vec<Box<str>>,
    profiles: FxHashMap<ProfileKey, Vec<Activation>>,
    profile_count: usize,
}

impl Compiler {
    fn new(ranges: Arc<NumberRanges>) -> Self {
        Compiler {
            diags: Diagnostics::default(),
            ranges,
            zone: Zone::EventOffset,
            destinations: Vec::new(),
            dest_ids: FxHashMap::default(),
            prefixes: PrefixTrie::new(),
            prefix_count: 0,
            rates: Vec::new(),
            rate_ids: FxHashMap::default(),
            drs: Vec::new(),
            terms: Vec::new(),
            scale: 0,
            term_ids: FxHashMap::default(),
            dr_groups: FxHashMap::default(),
            timings: Vec::new(),
            timing_ids: FxHashMap::default(),
            calendars: Vec::new(),
            plans: Vec::new(),
            schedules: Vec::new(),
            schedule_ids: FxHashMap::default(),
            row_terms: Vec::new(),
            plan_ids: FxHashMap::default(),
            strings: FxHashMap::default(),
            string_list: Vec::new(),
            profiles: FxHashMap::default(),
            profile_count: 0,
        }
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.strings.get(s) {
            return id;
        }
        let id = self.string_list.len() as u32;
        self.string_list.push(s.into());
        self.strings.insert(s.into(), id);
        id
    }

    fn run(&mut self, def: &TariffDef) {
        self.zone(def);
        self.destinations(def);
        self.rates(def);
        self.destination_rates(def);
        let cal_ids = self.calendars(def);
        self.timings(def, &cal_ids);
        self.plans(def);
        self.profiles(def);
        self.bare_number_warnings(def);
        self.money_scale(def);
    }

    /// The largest scale among the tariff's amounts; more than `MAX_MONEY_SCALE` is an error.
    fn money_scale(&mut self, def: &TariffDef) {
        let mut scale = 0u32;
        let mut check = |d: Decimal, pos: &Pos, diags: &mut Diagnostics| {
            if d.scale() > MAX_MONEY_SCALE {
                diags.error(
                    pos.clone(),
                    format!("{d} has more than {MAX_MONEY_SCALE} decimals"),
                );
            } else {
                scale = scale.max(d.scale());
            }
        };
        for r in &def.rates {
            check(r.rate, &r.id.pos.at_column(3), &mut self.diags);
            check(r.connect_fee, &r.id.pos.at_column(2), &mut self.diags);
        }
        for d in &def.destination_rates {
            check(d.max_cost, &d.id.pos.at_column(6), &mut self.diags);
            if let Some(m) = d.min_cost {
                check(m, &d.id.pos.at_column(8), &mut self.diags);
            }
        }
        self.scale = scale;
        // Every amount must also fit at that scale (a huge price next to a 20-decimal one).
        let fits = |d: Decimal, pos: &Pos, diags: &mut Diagnostics| {
            if to_fixed(d, scale).is_none() {
                diags.error(
                    pos.clone(),
                    format!("{d} is too large next to amounts with {scale} decimals"),
                );
            }
        };
        for r in &def.rates {
            fits(r.rate, &r.id.pos.at_column(3), &mut self.diags);
            fits(r.connect_fee, &r.id.pos.at_column(2), &mut self.diags);
        }
        for d in &def.destination_rates {
            fits(d.max_cost, &d.id.pos.at_column(6), &mut self.diags);
            if let Some(m) = d.min_cost {
                fits(m, &d.id.pos.at_column(8), &mut self.diags);
            }
        }
    }

    fn zone(&mut self, def: &TariffDef) {
        if let ZoneDef::Named(name) = &def.zone {
            match TimeZone::get(name) {
                Ok(tz) => self.zone = Zone::Named(tz),
                Err(e) => self
                    .diags
                    .error(file_pos(def), format!("unknown time zone {name:?}: {e}")),
            }
        }
    }

    fn destinations(&mut self, def: &TariffDef) {
        for row in &def.destinations {
            let id = match self.dest_ids.get(row.id.value.as_str()) {
                Some(&id) => id,
                None => {
                    if row.id.value == ANY {
                        self.diags.error(
                            row.id.pos.clone(),
                            "*any is reserved and cannot name a destination",
                        );
                        continue;
                    }
                    let id = self.destinations.len() as u32;
                    self.destinations.push(Destination {
                        id: row.id.value.as_str().into(),
                    });
                    self.dest_ids.insert(row.id.value.clone(), id);
                    id
                }
            };
            let list = self
                .prefixes
                .entry(row.prefix.value.as_bytes(), SmallVec::new);
            if !list.contains(&id) {
                list.push(id);
                self.prefix_count += 1;
            }
        }
    }

    fn rates(&mut self, def: &TariffDef) {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        let mut idx: FxHashMap<&str, usize> = FxHashMap::default();
        for (i, row) in def.rates.iter().enumerate() {
            let g = *idx.entry(row.id.value.as_str()).or_insert_with(|| {
                groups.push((row.id.value.clone(), Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i);
        }
        for (id, rows) in groups {
            let mut compiled: Vec<(RateRow, &crate::def::RateRowDef)> =
                Vec::with_capacity(rows.len());
            for &i in &rows {
                let r = &def.rates[i];
                let (unit, _) = r.unit.value;
                let (increment, _) = r.increment.value;
                let (group_start, _) = r.group_start.value;
                if increment <= 0 {
                    self.diags.error(
                        r.increment.pos.clone(),
                        "rate increment must be greater than zero",
                    );
                }
                if unit <= 0 && !r.rate.is_zero() {
                    self.diags.error(
                        r.unit.pos.clone(),
                        "rate unit must be greater than zero when the rate is not zero",
                    );
                }
                if r.rate.is_sign_negative() && !r.rate.is_zero() {
                    self.diags
                        .error(r.id.pos.at_column(3), "rate must not be negative");
                }
                compiled.push((
                    RateRow {
                        connect_fee: r.connect_fee,
                        rate: r.rate,
                        // Filled in by `finish`, once the tariff's money scale is known.
                        connect_fx: 0,
                        rate_fx: 0,
                        unit,
                        increment,
                        group_start,
                    },
                    r,
                ));
            }
            compiled.sort_by_key(|(row, _)| row.group_start);
            if let Some((first, r)) = compiled.first()
                && first.group_start != 0
            {
                self.diags.error(
                    r.group_start.pos.clone(),
                    format!(
                        "rate {id}: the first group must start at 0s, not at {}",
                        toll_core::usage::GoDuration(first.group_start)
                    ),
                );
            }
            for w in compiled.windows(2) {
                if w[0].0.group_start == w[1].0.group_start {
                    self.diags.error(
                        w[1].1.group_start.pos.clone(),
                        format!("rate {id}: two rows start at the same group interval"),
                    );
                }
            }
            for (row, r) in compiled.iter().skip(1) {
                if !row.connect_fee.is_zero() {
                    self.diags.warning(
                        r.id.pos.at_column(2),
                        format!("rate {id}: a connect fee on a later rate group is never charged"),
                    );
                }
            }
            let rid = self.rates.len() as u32;
            self.rate_ids.insert(id.clone(), rid);
            self.rates.push(Rate {
                id: id.into(),
                rows: compiled.into_iter().map(|(r, _)| r).collect(),
            });
        }
    }

    fn destination_rates(&mut self, def: &TariffDef) {
        for row in &def.destination_rates {
            let dest = if row.destination.value == ANY {
                Some(DestRef::Any)
            } else if let Some(&d) = self.dest_ids.get(row.destination.value.as_str()) {
                Some(DestRef::Named(d))
            } else {
                self.diags.error(
                    row.destination.pos.clone(),
                    format!("unknown destination {:?}", row.destination.value),
                );
                None
            };
            let rate = match self.rate_ids.get(row.rate.value.as_str()) {
                Some(&r) => Some(r),
                None => {
                    self.diags.error(
                        row.rate.pos.clone(),
                        format!("unknown rate {:?}", row.rate.value),
                    );
                    None
                }
            };
            let rounding = match Rounding::new(row.rounding, row.decimals) {
                Ok(r) => r,
                Err(e) => {
                    self.diags.error(row.id.pos.at_column(5), e.to_string());
                    Rounding {
                        method: RoundingMethod::Middle,
                        decimals: 4,
                    }
                }
            };
            let cap = (!row.max_cost.is_zero()).then_some(row.max_cost);
            let (free_cap, disconnect_cap) = match (cap, row.max_cost_strategy) {
                (Some(c), Some(MaxCostStrategy::Free)) => (Some(c), None),
                (Some(c), Some(MaxCostStrategy::Disconnect)) => (None, Some(c)),
                (Some(_), None) => {
                    self.diags.warning(
                        row.id.pos.at_column(7),
                        "max cost without a strategy (*free or *disconnect) is ignored",
                    );
                    (None, None)
                }
                (None, _) => (None, None),
            };
            if let (Some(min), Some(max)) = (row.min_cost, free_cap)
                && min > max
            {
                self.diags.error(
                    row.id.pos.at_column(8),
                    format!("min cost {min} is above the *free max cost {max}"),
                );
            }
            let (Some(dest), Some(rate)) = (dest, rate) else {
                continue;
            };
            let id = self.drs.len() as u32;
            let t = DrTerms {
                rounding,
                free_cap,
                disconnect_cap,
                min_cost: row.min_cost,
                free_cap_fx: None,
                min_cost_fx: None,
            };
            let terms = match self.term_ids.get(&t) {
                Some(&i) => i,
                None => {
                    let i = self.terms.len() as u32;
                    self.terms.push(t);
                    self.term_ids.insert(t, i);
                    i
                }
            };
            self.drs.push(DestRate {
                id: row.id.value.as_str().into(),
                rate,
                terms,
            });
            self.dr_groups
                .entry(row.id.value.clone())
                .or_default()
                .push((id, dest));
        }
    }

    fn calendars(&mut self, def: &TariffDef) -> FxHashMap<String, u32> {
        let mut ids = FxHashMap::default();
        for cal in &def.calendars {
            if ids.contains_key(&cal.id.value) {
                self.diags.error(
                    cal.id.pos.clone(),
                    format!("calendar {:?} defined twice", cal.id.value),
                );
                continue;
            }
            let mut days: Vec<i64> = cal
                .dates
                .iter()
                .map(|d| days_from_civil(i32::from(d.year()), d.month() as u8, d.day() as u8))
                .collect();
            days.sort_unstable();
            days.dedup();
            ids.insert(cal.id.value.clone(), self.calendars.len() as u32);
            self.calendars.push(Calendar { days: days.into() });
        }
        ids
    }

    fn timings(&mut self, def: &TariffDef, cal_ids: &FxHashMap<String, u32>) {
        for t in &def.timings {
            if self.timing_ids.contains_key(&t.id.value) {
                self.diags.error(
                    t.id.pos.clone(),
                    format!("timing {:?} defined twice", t.id.value),
                );
                continue;
            }
            let mask = |s: &Selector<u8>, full: u32| -> u32 {
                match s {
                    Selector::Any => full,
                    Selector::List(v) => v.iter().fold(0u32, |m, &x| m | (1u32 << x)),
                }
            };
            let calendar = match &t.calendar {
                None => None,
                Some(c) => match cal_ids.get(&c.value) {
                    Some(&id) => Some(id),
                    None => {
                        self.diags
                            .error(c.pos.clone(), format!("unknown calendar {:?}", c.value));
                        None
                    }
                },
            };
            let timing = Timing {
                id: t.id.value.as_str().into(),
                years: match &t.years {
                    Selector::Any => Box::new([]),
                    Selector::List(v) => v.clone().into(),
                },
                months: mask(&t.months, 0b1_1111_1111_1110) as u16,
                month_days: mask(&t.month_days, !1u32),
                week_days: mask(&t.week_days, 0x7f) as u8,
                calendar,
                start: t.start,
            };
            self.timing_ids
                .insert(t.id.value.clone(), self.timings.len() as u32);
            self.timings.push(timing);
        }
        if !self.timing_ids.contains_key(ANY) {
            // `*any` is built in: every day from midnight.
            self.timing_ids
                .insert(ANY.to_string(), self.timings.len() as u32);
            self.timings.push(Timing {
                id: ANY.into(),
                years: Box::new([]),
                months: 0b1_1111_1111_1110,
                month_days: !1u32,
                week_days: 0x7f,
                calendar: None,
                start: 0,
            });
        }
    }

    fn plans(&mut self, def: &TariffDef) {
        let dr_ids: FxHashSet<&str> = def
            .destination_rates
            .iter()
            .map(|d| d.id.value.as_str())
            .collect();
        // Weights as ranks: the band scan compares integers, in the same order as the decimals.
        let mut weights: Vec<Decimal> = def.plans.iter().map(|r| r.weight).collect();
        weights.sort_unstable();
        weights.dedup();
        let rank_of = |w: Decimal| weights.partition_point(|&x| x < w) as u32;
        // plan id → dest → binding rows (in plan-row order)
        let mut order: Vec<String> = Vec::new();
        let mut rows: FxHashMap<String, Vec<(DestRef, BindRow)>> = FxHashMap::default();
        for row in &def.plans {
            let entry = rows.entry(row.id.value.clone()).or_insert_with(|| {
                order.push(row.id.value.clone());
                Vec::new()
            });
            let timing = match self.timing_ids.get(row.timing.value.as_str()) {
                Some(&t) => Some(t),
                None => {
                    self.diags.error(
                        row.timing.pos.clone(),
                        format!("unknown timing {:?}", row.timing.value),
                    );
                    None
                }
            };
            let Some(group) = self.dr_groups.get(row.destination_rates.value.as_str()) else {
                // A known id whose rows all had errors was reported already.
                if !dr_ids.contains(row.destination_rates.value.as_str()) {
                    self.diags.error(
                        row.destination_rates.pos.clone(),
                        format!("unknown destination rate {:?}", row.destination_rates.value),
                    );
                }
                continue;
            };
            let Some(timing) = timing else { continue };
            for &(dr, dest) in group {
                entry.push((
                    dest,
                    BindRow {
                        timing,
                        weight: row.weight,
                        dr,
                        rate: self.drs[dr as usize].rate,
                        terms: self.drs[dr as usize].terms,
                        start: self.timings[timing as usize].start,
                    },
                ));
            }
        }
        for id in order {
            let Some(list) = rows.remove(&id) else {
                continue;
            };
            let mut any = None;
            let mut pairs: Vec<(u32, BindRef)> = Vec::new();
            // Group the plan's rows by destination, in first-seen order (a hash index: a
            // linear search here was quadratic in the plan's destinations).
            let mut per_dest: Vec<(DestRef, Vec<BindRow>)> = Vec::new();
            let mut slot: FxHashMap<DestRef, usize> = FxHashMap::default();
            for (dest, br) in list {
                match slot.get(&dest) {
                    Some(&i) => per_dest[i].1.push(br),
                    None => {
                        slot.insert(dest, per_dest.len());
                        per_dest.push((dest, vec![br]));
                    }
                }
            }
            for (dest, mut brs) in per_dest {
                // Stable: equal starts keep plan-row order, which decides exact ties.
                brs.sort_by_key(|b| b.start);
                let sched: Box<[SchedRow]> = brs
                    .iter()
                    .map(|b| SchedRow {
                        timing: b.timing,
                        rank: rank_of(b.weight),
                        start: b.start,
                    })
                    .collect();
                let schedule = match self.schedule_ids.get(&sched) {
                    Some(&id) => id,
                    None => {
                        let id = self.schedules.len() as u32;
                        let max_rank = sched.iter().map(|r| r.rank).max().unwrap_or(0);
                        self.schedule_ids.insert(sched.clone(), id);
                        self.schedules.push(Schedule {
                            rows: sched,
                            max_rank,
                            days: Box::new([]),
                        });
                        id
                    }
                };
                let bind = BindRef {
                    schedule,
                    first: self.row_terms.len() as u32,
                };
                self.row_terms.extend(brs.iter().map(|b| RowTerms {
                    dr: b.dr,
                    rate: b.rate,
                    terms: b.terms,
                }));
                match dest {
                    DestRef::Named(d) => pairs.push((d, bind)),
                    DestRef::Any => any = Some(bind),
                }
            }
            let plan = Plan {
                id: id.as_str().into(),
                bindings: PlanBindings::build(&pairs, self.destinations.len()),
                any,
            };
            self.plan_ids.insert(id, self.plans.len() as u32);
            self.plans.push(plan);
        }
    }

    fn profiles(&mut self, def: &TariffDef) {
        let mut seen: FxHashSet<(ProfileKey, i64)> = FxHashSet::default();
        for p in &def.profiles {
            let Some(&plan) = self.plan_ids.get(p.plan.value.as_str()) else {
                self.diags.error(
                    p.plan.pos.clone(),
                    format!("unknown rating plan {:?}", p.plan.value),
                );
                continue;
            };
            let carrier = match &p.carrier {
                None => NONE,
                Some(c) => {
                    let name = match self.ranges.carrier_by_name(&c.value) {
                        Some(id) => self.ranges.carrier(id).slug.to_string(),
                        None => {
                            self.diags.warning(
                                c.pos.clone(),
                                format!("carrier {:?} is not in the number-range table; only events whose route carrier is {:?} use this profile", c.value, c.value),
                            );
                            c.value.to_lowercase()
                        }
                    };
                    self.intern(&name)
                }
            };
            let key = (
                self.intern(&p.tenant.value),
                self.intern(&p.category.value),
                self.intern(&p.subject.value),
                carrier,
            );
            let at = match p.activation {
                None => i64::MIN,
                Some(ts) => match i64::try_from(ts.as_nanosecond()) {
                    Ok(ns) => ns,
                    Err(_) => {
                        self.diags
                            .error(p.tenant.pos.at_column(4), "activation time out of range");
                        continue;
                    }
                },
            };
            if !seen.insert((key, at)) {
                self.diags.error(p.tenant.pos.clone(), "two rating profiles with the same tenant, category, subject, carrier and activation time");
                continue;
            }
            let fallbacks: Box<[u32]> = p
                .fallback_subjects
                .iter()
                .map(|s| self.intern(&s.value))
                .collect();
            self.profiles.entry(key).or_default().push(Activation {
                at,
                plan,
                fallbacks,
            });
            self.profile_count += 1;
        }
        for list in self.profiles.values_mut() {
            list.sort_by_key(|a| a.at);
        }
    }

    /// CGRateS reads a bare number in a duration column as nanoseconds (or units): `6` meaning
    /// six seconds is a classic mistake that makes calls nearly free. Warn where it is likely.
    fn bare_number_warnings(&mut self, def: &TariffDef) {
        let voice_plans: FxHashSet<&str> = def
            .profiles
            .iter()
            .filter(|p| category_is_voice(&p.category.value))
            .map(|p| p.plan.value.as_str())
            .collect();
        // Destination-rate id → its rate ids, once: plans × destination rates would be
        // quadratic on a 200,000-prefix tariff.
        let mut dr_rates: FxHashMap<&str, Vec<&str>> = FxHashMap::default();
        for dr in &def.destination_rates {
            dr_rates
                .entry(dr.id.value.as_str())
                .or_default()
                .push(dr.rate.value.as_str());
        }
        let mut used_rates: FxHashMap<&str, bool> = FxHashMap::default();
        for pr in &def.plans {
            let voice = voice_plans.contains(pr.id.value.as_str());
            for &rate in dr_rates
                .get(pr.destination_rates.value.as_str())
                .map_or(&[][..], Vec::as_slice)
            {
                let e = used_rates.entry(rate).or_insert(false);
                *e |= voice;
            }
        }
        for r in &def.rates {
            let voice = used_rates.get(r.id.value.as_str()).copied();
            for (col, what) in [
                (&r.unit, "rate unit"),
                (&r.increment, "rate increment"),
                (&r.group_start, "group interval start"),
            ] {
                let (n, form) = col.value;
                if form != DurationForm::BareNumber || n == 0 {
                    continue;
                }
                let suspicious = match voice {
                    Some(true) => true,
                    Some(false) => false,
                    None => n < 1000,
                };
                if suspicious {
                    self.diags.warning(
                        col.pos.clone(),
                        format!("{what} is the bare number {n}: for voice that means {n} ns; write e.g. \"{n}s\" if seconds were meant"),
                    );
                }
            }
        }
    }

    fn finish(mut self, def: &TariffDef) -> Tariff {
        let scale = self.scale;
        for rate in &mut self.rates {
            for row in rate.rows.iter_mut() {
                // Checked in `money_scale`: compilation fails before `finish` otherwise.
                row.rate_fx = to_fixed(row.rate, scale).unwrap_or_default();
                row.connect_fx = to_fixed(row.connect_fee, scale).unwrap_or_default();
            }
        }
        for t in &mut self.terms {
            t.free_cap_fx = t.free_cap.and_then(|d| to_fixed(d, scale));
            t.min_cost_fx = t.min_cost.and_then(|d| to_fixed(d, scale));
        }
        let mut strings = self.strings;
        let mut string_list = self.string_list;
        let any_id = match strings.get(ANY) {
            Some(&id) => id,
            None => {
                let id = string_list.len() as u32;
                string_list.push(ANY.into());
                strings.insert(ANY.into(), id);
                id
            }
        };
        let mut range_carrier_ids = Vec::with_capacity(self.ranges.carriers().len());
        for c in self.ranges.carriers() {
            let id = match strings.get(&*c.slug) {
                Some(&id) => id,
                None => {
                    let id = string_list.len() as u32;
                    string_list.push(c.slug.clone());
                    strings.insert(c.slug.clone(), id);
                    id
                }
            };
            range_carrier_ids.push(id);
        }
        let stats = TariffStats {
            destinations: self.destinations.len(),
            prefixes: self.prefix_count,
            rates: self.rates.len(),
            destination_rates: self.dr_groups.len(),
            timings: def.timings.len(),
            plans: self.plans.len(),
            profiles: self.profile_count,
        };
        let has_carrier_profiles = self.profiles.keys().any(|k| k.3 != NONE);
        let subjects = SubjectTable::build(&self.profiles, &string_list, any_id);
        let mut dest_sets: Vec<Box<[u32]>> = Vec::new();
        let encoded = self.prefixes.map_values(|set| {
            if set.len() == 1 {
                set[0]
            } else {
                dest_sets.push(set.into_vec().into_boxed_slice());
                MULTI | (dest_sets.len() as u32 - 1)
            }
        });
        let prefixes = FrozenTrie::freeze(&encoded);
        let prefix_index = PrefixIndex::build(&encoded);
        let day_timings = DayTimings::build(&self.timings, &self.calendars);
        let mut schedules = self.schedules;
        let day_bands = match &day_timings {
            Some(dt) => {
                let tables = BandTables::build(&schedules, dt.class_masks(), |sched, mask, tod| {
                    scan_rows(sched, tod, |k| (mask >> k) & 1 == 1)
                });
                for (sched, days) in schedules.iter_mut().zip(tables.by_schedule) {
                    sched.days = days;
                }
                tables.days
            }
            None => Box::new([]),
        };
        Tariff {
            name: def.name.clone(),
            currency: def.currency,
            numbering: def.numbering,
            zone: self.zone,
            destinations: self.destinations,
            prefixes,
            prefix_index,
            dest_sets,
            rates: self.rates,
            drs: self.drs,
            terms: self.terms,
            money_scale: scale,
            day_timings,
            day_bands,
            timings: self.timings,
            calendars: self.calendars,
            plans: self.plans,
            schedules,
            row_terms: self.row_terms,
            strings,
            profiles: self
                .profiles
                .into_iter()
                .map(|(k, v)| (k, v.into_boxed_slice()))
                .collect(),
            subjects,
            ranges: self.ranges,
            range_carrier_ids,
            any_id,
            has_carrier_profiles,
            stats,
        }
    }
}

/// Categories named for SMS, MMS or data are not voice; everything else (`call`, `0`, ...) is.
pub fn category_is_voice(category: &str) -> bool {
    let c = category.to_ascii_lowercase();
    !(c.contains("sms") || c.contains("mms") || c.contains("data"))
}
