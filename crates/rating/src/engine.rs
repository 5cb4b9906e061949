//! `rate()` and `max_usage()`: the algorithm of `docs/rating-semantics.md`.
//!
//! The walk is position based: `p` is the offset from the call's start in nanoseconds (units for
//! SMS and data). At each step the active profile segment, band and rate group at `p` give one
//! piece, whose duration is rounded up to the increment; an overrun moves `p` past the band
//! boundary, so the next piece is shortened and the overrun is billed at the earlier price.
//! Costs are summed as exact numerators over the rate units and divided once at the end, so the
//! total is rounded once, from the exact value.

use jiff::Timestamp;
use jiff::tz::Offset;
use rust_decimal::Decimal;
use smallvec::SmallVec;
use toll_core::civil::{NANOS_PER_DAY, civil_from_days, split_local};
use toll_core::phone::{NumberKind, PhoneError, PhoneNumber};
use toll_core::rounding::{Rounding, fixed_ratio_round, fixed_ratio_round_64};
use toll_core::usage::Tor;

use crate::carriers::Range;
use crate::def::Numbering;
use crate::tariff::{Activation, BindRef, DestRef, DrTerms, MULTI, NONE, Schedule, Tariff, Zone};
use crate::trie::MAX_MATCHES;

/// Longest voice usage rated in one event; longer is almost certainly a broken CDR.
pub const MAX_VOICE_USAGE_NS: i64 = 31 * NANOS_PER_DAY;
/// A call is never split into more pieces than this (bands × days × groups).
pub const MAX_PIECES: usize = 10_000;
/// At most this many profile changes inside one call.
pub const MAX_SEGMENTS: usize = 64;
/// How deep fallback subjects may chain.
pub const MAX_FALLBACK_DEPTH: usize = 8;

/// One event to rate. Borrowed strings: rating allocates nothing for the event itself.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub tenant: &'a str,
    pub category: &'a str,
    pub subject: &'a str,
    /// The dialled number (callee).
    pub destination: &'a str,
    pub start: Timestamp,
    /// The UTC offset the start was written with: the clock of tariffs imported from CGRateS.
    pub offset: Offset,
    /// Nanoseconds for voice, units for SMS and data.
    pub usage: i64,
    pub tor: Tor,
    /// The carrier of the route actually used, if known; else the callee's range decides.
    pub route_carrier: Option<&'a str>,
}

/// Why an event could not be rated. Kept to 16 bytes (details boxed): every internal `Result`
/// of the hot path carries it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("usage must not be negative")]
    NegativeUsage,
    #[error("usage longer than {} days", MAX_VOICE_USAGE_NS / NANOS_PER_DAY)]
    UsageTooLong,
    #[error("destination number: {0}")]
    InvalidNumber(#[from] PhoneError),
    #[error(
        "no rating profile for tenant {:?}, category {:?}, subject {:?} (nor *any) at {}",
        .who.tenant, .who.category, .who.subject, .who.at
    )]
    NoProfile { who: Box<Who> },
    #[error(
        "carrier unknown for {destination:?}: the tariff only has carrier-specific rating profiles for this subject"
    )]
    CarrierUnknown { destination: Box<str> },
    #[error(
        "unauthorized destination {:?}: no prefix, *any or fallback subject of plan {:?} rates it at {}",
        .miss.destination, .miss.plan, .miss.at
    )]
    UnauthorizedDestination { miss: Box<Miss> },
    #[error(
        "no time band of plan {:?} covers destination {:?} at {}",
        .miss.plan, .miss.destination, .miss.at
    )]
    NoRateInterval { miss: Box<Miss> },
    #[error("the call would be split into more than {MAX_PIECES} pieces")]
    TooManyPieces,
    #[error("amount out of range")]
    Overflow,
}

/// Whose profile was looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub tenant: String,
    pub category: String,
    pub subject: String,
    pub at: Timestamp,
}

/// What could not be priced, under which plan, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    pub destination: String,
    pub plan: String,
    pub at: Timestamp,
}

/// Which carrier a rated event was attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CarrierOutcome {
    /// Given by the event (the route's carrier); the range table's carrier when it knows it.
    Route(Option<u32>),
    /// Estimated from the callee's number range (index into the range table's carriers).
    Callee(u32),
    /// Neither the event nor the range table says.
    Unknown,
}

/// One priced stretch of a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    /// Offset from the call's start (ns or units).
    pub offset: i64,
    /// Real usage covered by this piece.
    pub real: i64,
    /// Usage billed: `real` rounded up to whole increments.
    pub rated: i64,
    pub plan: u32,
    pub timing: u32,
    pub destination_rate: u32,
    pub rate: u32,
    pub(crate) terms: u32,
    pub rate_row: u16,
    pub destination: DestRef,
    pub prefix_len: u8,
    /// rate × rated usage, fixed point at `scale` decimals.
    pub(crate) numerator: i128,
    pub(crate) scale: u8,
    pub(crate) unit: i64,
}

impl Piece {
    /// The piece's cost before the call's rounding: rate × rated / unit (28 significant digits
    /// when not a terminating decimal; the call total is computed exactly).
    pub fn cost(&self) -> Decimal {
        if self.unit == 0 {
            return Decimal::ZERO;
        }
        Decimal::try_from_i128_with_scale(self.numerator, u32::from(self.scale))
            .ok()
            .and_then(|n| n.checked_div(Decimal::from(self.unit)))
            .unwrap_or(Decimal::MAX)
            .normalize()
    }
}

/// A rated event: the cost and how it came about.
#[derive(Debug, Clone, PartialEq)]
pub struct Rated {
    /// Total, rounded once with `rounding`.
    pub cost: Decimal,
    /// Connect fee charged (from the first piece's rate; zero for zero usage).
    pub connect_fee: Decimal,
    pub usage: i64,
    pub rated_usage: i64,
    pub rounding: Rounding,
    /// The `*free` max cost reduced the total.
    pub capped: bool,
    /// The `min_cost` floor raised the total.
    pub floored: bool,
    pub destination: DestRef,
    pub prefix_len: u8,
    pub plan: u32,
    pub carrier: CarrierOutcome,
    /// Index of the callee's number range, if the range table knows it.
    pub range: Option<u32>,
    pub pieces: SmallVec<[Piece; 2]>,
    pub(crate) disconnect_cap: Option<Decimal>,
}

impl Rated {
    /// The prefix of the dialled (normalised) number that matched; empty for `*any`.
    pub fn matched_prefix<'a>(&self, number: &'a str) -> &'a str {
        number.get(..usize::from(self.prefix_len)).unwrap_or("")
    }
}

/// The answer to "how long may this call last?"
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxUsage {
    /// Largest usage ≤ the requested one whose cost fits.
    pub usage: i64,
    /// Cost of a call of exactly that usage.
    pub cost: Decimal,
    pub limited_by: Limit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The whole requested usage fits.
    Requested,
    /// The available balance ran out.
    Balance,
    /// A `*disconnect` max cost was reached.
    MaxCost,
}

/// The number as the tariff matches it, and the callee's range.
struct Callee<'t, 'e> {
    number: Number<'e>,
    range: Option<(u32, &'t Range)>,
}

/// A normalised callee: usually a slice of the dialled string itself (no copy), else a copy.
enum Number<'e> {
    Dialled(&'e [u8]),
    Normalised(PhoneNumber),
}

impl Number<'_> {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Number::Dialled(b) => b,
            Number::Normalised(n) => n.as_bytes(),
        }
    }
}

impl Tariff {
    fn callee<'e>(&self, dialled: &'e str) -> Result<Callee<'_, 'e>, RateError> {
        // The common case: digits whose national form is a slice of them.
        if let Some((national, kind)) = PhoneNumber::parse_cn_borrowed(dialled) {
            let number = match self.numbering {
                Numbering::ChinaNational => Number::Dialled(national),
                Numbering::AsDialled => Number::Dialled(PhoneNumber::raw_borrowed(dialled)?),
            };
            let range = match kind {
                NumberKind::Other => None,
                _ => self.ranges.lookup_indexed_bytes(national),
            };
            return Ok(Callee { number, range });
        }
        let national = PhoneNumber::parse_cn(dialled);
        let number = match self.numbering {
            Numbering::ChinaNational => Number::Normalised(national.clone()?),
            Numbering::AsDialled => Number::Dialled(PhoneNumber::raw_borrowed(dialled)?),
        };
        let range = match &national {
            Ok(n) if n.kind() != NumberKind::Other => {
                self.ranges.lookup_indexed_bytes(n.as_bytes())
            }
            _ => None,
        };
        Ok(Callee { number, range })
    }

    /// Interned carrier id for profile look-up, and the outcome to report.
    fn carrier_of(&self, ev: &Event<'_>, callee: &Callee<'_, '_>) -> (u32, CarrierOutcome) {
        if let Some(route) = ev.route_carrier.filter(|r| !r.trim().is_empty()) {
            return match self.ranges.carrier_by_name(route) {
                Some(c) => (
                    self.range_carrier_ids[c as usize],
                    CarrierOutcome::Route(Some(c)),
                ),
                None => (
                    self.string_id(&route.trim().to_lowercase()),
                    CarrierOutcome::Route(None),
                ),
            };
        }
        match callee.range.and_then(|(_, r)| r.carrier) {
            Some(c) => (
                self.range_carrier_ids[c as usize],
                CarrierOutcome::Callee(c),
            ),
            None => (NONE, CarrierOutcome::Unknown),
        }
    }

    /// Profile keys in priority order for one subject.
    fn subject_keys(&self, t: u32, c: u32, s: u32, carrier: u32) -> [Option<&[Activation]>; 2] {
        if t == NONE || c == NONE || s == NONE {
            // A name the tariff never mentions has no profile.
            return [None, None];
        }
        let get = |car: u32| self.profiles.get(&(t, c, s, car)).map(|b| &**b);
        // The tariff-wide test first: it is the same for every event, so it predicts well.
        let specific = if !self.has_carrier_profiles || carrier == NONE {
            None
        } else {
            get(carrier)
        };
        [specific, get(NONE)]
    }

    fn has_carrier_specific(&self, t: u32, c: u32, s: u32) -> bool {
        self.profiles
            .keys()
            .any(|&(pt, pc, ps, car)| pt == t && pc == c && ps == s && car != NONE)
    }
}

/// The activation in force at `at` among keys in priority order.
fn effective<'a>(keys: &[Option<&'a [Activation]>], at: i64) -> Option<&'a Activation> {
    for list in keys.iter().flatten() {
        let n = list.partition_point(|a| a.at <= at);
        if n > 0 {
            return Some(&list[n - 1]);
        }
    }
    None
}

/// A destination found for an event: (plan, destination, its binding, matched prefix length).
type Resolved = (u32, DestRef, BindRef, u8);

/// A stretch of the call under one profile activation, with its destination resolved.
#[derive(Clone, Copy)]
struct Segment<'a> {
    end: i64,
    plan: u32,
    dest: DestRef,
    sched: &'a Schedule,
    /// Row `i` of the schedule charges `Tariff::row_terms[first + i]`.
    first: u32,
    prefix_len: u8,
}

/// A band found by [`Ctx::band_at`]: from `from` until `end` the schedule's active row is `row`.
type BandMemo<'t> = Option<(&'t Schedule, i64, i64, usize)>;

struct Ctx<'t, 'e> {
    /// The last band found: a call's pieces mostly follow one another inside one band.
    band_memo: std::cell::Cell<BandMemo<'t>>,
    tariff: &'t Tariff,
    ev: &'e Event<'e>,
    start_ns: i64,
    tenant: u32,
    category: u32,
    carrier: u32,
}

impl<'t> Ctx<'t, '_> {
    fn ts(&self, ns: i64) -> Timestamp {
        Timestamp::from_nanosecond(i128::from(ns)).unwrap_or(self.ev.start)
    }

    /// Destination binding for a plan at instant `at`, trying fallback subjects.
    #[inline]
    fn resolve(&self, act: &Activation, number: &[u8], at: i64) -> Option<Resolved> {
        self.resolve_in_plan(act, number, at)
            .or_else(|| self.resolve_fallbacks(act, number, at, 0, &mut SmallVec::new()))
    }

    /// [`Ctx::resolve`] in the activation's own plan: its prefixes, then its `*any`.
    #[inline]
    fn resolve_in_plan(&self, act: &Activation, number: &[u8], at: i64) -> Option<Resolved> {
        let t = self.tariff;
        let plan = &t.plans[act.plan as usize];
        let (local, _, next_tr) = self.local(at);
        let (days, tod) = split_local(local);
        let day = self.day(days);
        // The band active now, if any (a binding with none cannot rate the call). The chosen
        // binding's band is remembered for `band_at`: the call's first piece starts here.
        let active = |b: BindRef| active_row(t, &t.schedules[b.schedule as usize], &day, tod);
        let chosen = |b: BindRef, (row, next_tod): (usize, i64)| {
            let sched = &t.schedules[b.schedule as usize];
            self.band_end(sched, at, days, tod, row, next_tod, next_tr);
        };
        let mut lens = [0u8; MAX_MATCHES];
        let mut values = [0u32; MAX_MATCHES];
        let n = t.prefix_matches(number, &mut lens, &mut values);
        for k in (0..n).rev() {
            let len = lens[k];
            let one = [values[k]];
            let dests: &[u32] = if values[k] & MULTI == 0 {
                &one
            } else {
                &t.dest_sets[(values[k] & !MULTI) as usize]
            };
            let mut best: Option<(u32, BindRef, u32, (usize, i64))> = None;
            for &d in dests.iter() {
                if let Some(b) = plan.bindings.get(d) {
                    // Start loading the candidate's prices now: the band scan and the profile
                    // checks that follow overlap with that cache miss.
                    std::hint::black_box(t.row_terms.get(b.first as usize).map(|r| r.rate));
                    let rank = t.schedules[b.schedule as usize].max_rank;
                    if best.is_none_or(|(_, _, r, _)| rank > r)
                        && let Some(band) = active(b)
                    {
                        best = Some((d, b, rank, band));
                    }
                }
            }
            if let Some((d, b, _, band)) = best {
                chosen(b, band);
                return Some((act.plan, DestRef::Named(d), b, len));
            }
        }
        if let Some(any) = plan.any
            && let Some(band) = active(any)
        {
            chosen(any, band);
            return Some((act.plan, DestRef::Any, any, 0));
        }
        None
    }

    /// [`Ctx::resolve`] through the activation's fallback subjects, `depth` levels down, each
    /// subject tried once. Out of line: most events never need it.
    #[inline(never)]
    fn resolve_fallbacks(
        &self,
        act: &Activation,
        number: &[u8],
        at: i64,
        depth: usize,
        visited: &mut SmallVec<[u32; 8]>,
    ) -> Option<Resolved> {
        if depth >= MAX_FALLBACK_DEPTH {
            return None;
        }
        for &fs in act.fallbacks.iter() {
            if visited.contains(&fs) {
                continue;
            }
            visited.push(fs);
            let keys = self
                .tariff
                .subject_keys(self.tenant, self.category, fs, self.carrier);
            if let Some(fa) = effective(&keys, at)
                && let Some(found) = self
                    .resolve_in_plan(fa, number, at)
                    .or_else(|| self.resolve_fallbacks(fa, number, at, depth + 1, visited))
            {
                return Some(found);
            }
        }
        None
    }

    /// (local ns, offset ns, next transition instant or `i64::MAX`). Inline for the event's
    /// own offset (CGRateS tariffs); a named zone's rules are looked up out of line.
    #[inline]
    fn local(&self, at: i64) -> (i64, i64, i64) {
        match &self.tariff.zone {
            Zone::EventOffset => {
                let off = i64::from(self.ev.offset.seconds()) * 1_000_000_000;
                (at.saturating_add(off), off, i64::MAX)
            }
            Zone::Named(tz) => self.local_in(tz, at),
        }
    }

    /// [`Ctx::local`] in the tariff's named time zone.
    #[inline(never)]
    fn local_in(&self, tz: &jiff::tz::TimeZone, at: i64) -> (i64, i64, i64) {
        let ts = self.ts(at);
        let off = i64::from(tz.to_offset(ts).seconds()) * 1_000_000_000;
        let next = tz
            .following(ts)
            .next()
            .and_then(|tr| i64::try_from(tr.timestamp().as_nanosecond()).ok())
            .unwrap_or(i64::MAX);
        (at.saturating_add(off), off, next)
    }

    /// Which timings match the local day `days`.
    #[inline]
    fn day(&self, days: i64) -> Day {
        match self.tariff.day_timings.as_ref().and_then(|t| t.get(days)) {
            Some((class, mask)) => Day::Timings { class, mask },
            None => Day::Date(civil_from_days(days), days),
        }
    }

    /// The band row active at `at` and the instant the active band next changes (a band of
    /// equal or higher weight starts, or local midnight).
    #[inline]
    fn band_at(&self, b: &'t Schedule, at: i64) -> Option<(usize, i64)> {
        // Nothing changes between an instant and the end of its band (that is what `end`
        // means), so any later instant before that end has the same row and the same end.
        if let Some((memo_b, from, end, row)) = self.band_memo.get()
            && std::ptr::eq(memo_b, b)
            && from <= at
            && at < end
        {
            return Some((row, end));
        }
        self.band_at_uncached(b, at)
    }

    /// [`Ctx::band_at`] when the remembered band does not answer: out of line, so the
    /// remembered case (most pieces) costs no call.
    #[inline(never)]
    fn band_at_uncached(&self, b: &'t Schedule, at: i64) -> Option<(usize, i64)> {
        let (local, _, next_tr) = self.local(at);
        let (days, tod) = split_local(local);
        let day = self.day(days);
        let (row, next_tod) = active_row(self.tariff, b, &day, tod)?;
        Some(self.band_end(b, at, days, tod, row, next_tod, next_tr))
    }

    /// [`Ctx::band_at`] once the row active at `at` is known: `row` until the time of day
    /// `next_tod` unless a clock change comes first. Remembers the answer when no clock
    /// change lies before its end.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn band_end(
        &self,
        b: &'t Schedule,
        at: i64,
        days: i64,
        tod: i64,
        row: usize,
        next_tod: i64,
        next_tr: i64,
    ) -> (usize, i64) {
        let end = at.saturating_add(next_tod - tod);
        // A transition exactly at `end` counts (a fall-back at 03:00, or at midnight, may mean
        // the wall clock never reaches it).
        if next_tr > end {
            // No clock change before `end`: the answer holds for every instant up to it.
            self.band_memo.set(Some((b, at, end, row)));
            return (row, end);
        }
        self.band_end_across_transition(b, days, row, end, next_tr)
    }

    /// [`Ctx::band_end`] when a clock change (at `next_tr`) comes before the band's `end`.
    #[inline(never)]
    fn band_end_across_transition(
        &self,
        b: &'t Schedule,
        days: i64,
        row: usize,
        mut end: i64,
        next_tr: i64,
    ) -> (usize, i64) {
        // A DST transition before that boundary moves the wall clock: re-read the bands there
        // and split only if the band or the day really changes.
        let mut t = next_tr;
        let mut guard = 0;
        // `<=`: a transition exactly at the boundary (a fall-back at 03:00, or at midnight) may
        // mean the wall clock never reaches it.
        while t <= end && guard < 8 {
            guard += 1;
            let (l2, _, next2) = self.local(t);
            let (d2, tod2) = split_local(l2);
            match active_row(self.tariff, b, &self.day(d2), tod2) {
                Some((r2, next_tod2)) if r2 == row && d2 == days => {
                    end = t.saturating_add(next_tod2 - tod2);
                    t = next2;
                }
                _ => {
                    end = t;
                    break;
                }
            }
        }
        (row, end)
    }
}

/// A local day as the band scan sees it.
#[derive(Clone, Copy)]
enum Day {
    /// The day's class, and bit `k` set when timing `k` matches (from
    /// [`crate::tariff::DayTimings`]).
    Timings { class: u16, mask: u64 },
    /// The civil date and day number, matched timing by timing.
    Date(toll_core::civil::CivilDate, i64),
}

impl Day {
    #[inline]
    fn matches(&self, t: &Tariff, timing: u32) -> bool {
        match self {
            // `DayTimings` exists only for tariffs with at most 64 timings.
            Day::Timings { mask, .. } => (mask >> timing) & 1 == 1,
            Day::Date(date, days) => {
                t.timings[timing as usize].matches_date(date, *days, &t.calendars)
            }
        }
    }
}

/// The active row of a binding on a date at a time of day, and the time of day at which the
/// active row changes next (`NANOS_PER_DAY` = midnight).
#[inline(always)]
fn active_row(t: &Tariff, b: &Schedule, day: &Day, tod: i64) -> Option<(usize, i64)> {
    if let Day::Timings { class, .. } = *day
        && let Some(&i) = b.days.get(usize::from(class))
        && let Some(bands) = t.day_bands.get(i as usize)
    {
        return bands.at(tod);
    }
    scan_rows(b, tod, |timing| day.matches(t, timing))
}

/// [`active_row`] by scanning the schedule's rows; `matches(timing)` tells which apply today.
pub(crate) fn scan_rows(
    b: &Schedule,
    tod: i64,
    matches: impl Fn(u32) -> bool,
) -> Option<(usize, i64)> {
    let mut best: Option<usize> = None;
    for (i, r) in b.rows.iter().enumerate() {
        if !matches(r.timing) {
            continue;
        }
        if r.start <= tod {
            let better = match best {
                None => true,
                Some(bi) => {
                    let cur = &b.rows[bi];
                    r.rank > cur.rank || (r.rank == cur.rank && r.start > cur.start)
                }
            };
            if better {
                best = Some(i);
            }
        } else {
            // Rows are sorted by start: this is the next band to start today. It takes over
            // only if it outranks the current one; otherwise look further.
            match best {
                None => return None,
                Some(bi) => {
                    let cur = &b.rows[bi];
                    if r.rank >= cur.rank {
                        return Some((bi, r.start));
                    }
                }
            }
        }
    }
    best.map(|bi| (bi, NANOS_PER_DAY))
}

/// Exact accumulation of piece costs: fixed-point numerators (rate × usage, at the tariff's
/// money scale) per rate unit, divided once. Integers only: no rounding can creep in.
#[derive(Debug, Clone, Default)]
struct Accum {
    /// The first rate unit added (0: none yet) and its sum. Nearly every call has one unit,
    /// which then never touches `rest`.
    unit: i64,
    num: i128,
    /// Further units, in the order they were first added.
    rest: SmallVec<[(i64, i128); 1]>,
}

impl Accum {
    #[inline]
    fn add(&mut self, unit: i64, numerator: i128) -> Result<(), RateError> {
        if unit == 0 || numerator == 0 {
            return Ok(());
        }
        self.add_nonzero(unit, numerator)
    }

    #[inline]
    fn add_nonzero(&mut self, unit: i64, numerator: i128) -> Result<(), RateError> {
        if self.unit == unit {
            self.num = self.num.checked_add(numerator).ok_or_else(overflow)?;
            return Ok(());
        }
        if self.unit == 0 {
            (self.unit, self.num) = (unit, numerator);
            return Ok(());
        }
        self.add_other(unit, numerator)
    }

    fn add_other(&mut self, unit: i64, numerator: i128) -> Result<(), RateError> {
        for (u, n) in self.rest.iter_mut() {
            if *u == unit {
                *n = n.checked_add(numerator).ok_or_else(overflow)?;
                return Ok(());
            }
        }
        self.rest.push((unit, numerator));
        Ok(())
    }

    /// (numerator, common denominator) of the sum.
    fn ratio(&self) -> Result<(i128, i128), RateError> {
        if self.unit == 0 {
            return Ok((0, 1));
        }
        if self.rest.is_empty() {
            return Ok((self.num, i128::from(self.unit)));
        }
        let parts = || std::iter::once((self.unit, self.num)).chain(self.rest.iter().copied());
        let mut l: i128 = 1;
        for (u, _) in parts() {
            let u = i128::from(u);
            l = l.checked_mul(u / gcd(l, u)).ok_or_else(overflow)?;
        }
        let mut num: i128 = 0;
        for (u, n) in parts() {
            let part = mul(n, l / i128::from(u)).ok_or_else(overflow)?;
            num = num.checked_add(part).ok_or_else(overflow)?;
        }
        Ok((num, l))
    }
}

/// `a × b`, exact: from 64-bit operands (the usual case) the product always fits in `i128`,
/// which avoids the slow general 128-bit overflow check.
#[inline]
fn mul(a: i128, b: i128) -> Option<i128> {
    match (i64::try_from(a), i64::try_from(b)) {
        (Ok(x), Ok(y)) => Some(i128::from(x) * i128::from(y)),
        _ => a.checked_mul(b),
    }
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Caps, floor and rounding that apply to a call, from the destination rates of its pieces.
#[derive(Debug, Clone, Copy)]
struct Terms {
    rounding: Rounding,
    /// Fixed point at the tariff's money scale.
    free_cap: Option<i128>,
    min_cost: Option<i128>,
    disconnect_cap: Option<Decimal>,
}

impl Terms {
    /// The terms of one destination rate.
    #[inline]
    fn single(t: &Tariff, terms: u32) -> Terms {
        let dr = &t.terms[terms as usize];
        Terms {
            rounding: dr.rounding,
            free_cap: dr.free_cap_fx,
            min_cost: dr.min_cost_fx,
            disconnect_cap: dr.disconnect_cap,
        }
    }

    /// The terms of a call whose pieces have different destination rates (rare).
    #[inline(never)]
    fn of(t: &Tariff, pieces: &[Piece]) -> Terms {
        // Usually every piece has the same terms (one destination rate, several rate groups).
        if let Some(p) = pieces.first()
            && pieces.iter().all(|q| q.terms == p.terms)
        {
            return Terms::single(t, p.terms);
        }
        let mut terms = Terms {
            rounding: Rounding {
                method: toll_core::RoundingMethod::Middle,
                decimals: 4,
            },
            free_cap: None,
            min_cost: None,
            disconnect_cap: None,
        };
        for (i, p) in pieces.iter().enumerate() {
            let dr = &t.terms[p.terms as usize];
            if i == 0 || dr.rounding.decimals > terms.rounding.decimals {
                terms.rounding = dr.rounding;
            }
            terms.free_cap = min_opt(terms.free_cap, dr.free_cap_fx);
            terms.disconnect_cap = min_opt(terms.disconnect_cap, dr.disconnect_cap);
            terms.min_cost = match (terms.min_cost, dr.min_cost_fx) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        terms
    }

    /// Total of a call: connect fee + pieces, floored, capped, rounded once.
    #[inline]
    fn total(
        &self,
        acc: &Accum,
        connect_fee: i128,
        scale: u32,
    ) -> Result<(Decimal, bool, bool), RateError> {
        match total_64(self, acc, connect_fee, scale) {
            Some(r) => Ok(r),
            None => self.total_general(acc, connect_fee, scale),
        }
    }

    /// [`Terms::total`] in 128 bits with every rule: out of line, the common call never
    /// needs it.
    #[inline(never)]
    fn total_general(
        &self,
        acc: &Accum,
        connect_fee: i128,
        scale: u32,
    ) -> Result<(Decimal, bool, bool), RateError> {
        let (mut num, den) = acc.ratio()?;
        let over = || RateError::Overflow;
        num = num
            .checked_add(mul(connect_fee, den).ok_or_else(over)?)
            .ok_or_else(over)?;
        let mut floored = false;
        let mut capped = false;
        if let Some(min) = self.min_cost {
            let m = mul(min, den).ok_or_else(over)?;
            if num < m {
                num = m;
                floored = true;
            }
        }
        if let Some(cap) = self.free_cap {
            let c = mul(cap, den).ok_or_else(over)?;
            if num > c {
                num = c;
                capped = true;
            }
        }
        let d = self.rounding.decimals;
        let mut q = fixed_ratio_round(num, den, scale, d, self.rounding.method).ok_or_else(over)?;
        // A cap written with more decimals than the rounding keeps: never round past the cap.
        if capped
            && let Some(cap) = self.free_cap
            && let Some(cap_down) =
                fixed_ratio_round(cap, 1, scale, d, toll_core::RoundingMethod::Down)
            && q > cap_down
        {
            q = cap_down;
        }
        let cost = Decimal::try_from_i128_with_scale(q, d).map_err(|_| over())?;
        Ok((cost, capped, floored))
    }
}

/// The rounding, floor and cap a call's total obeys: one destination rate's ([`DrTerms`],
/// read in place) or the combination of several ([`Terms`]).
trait TotalRules {
    fn rounding(&self) -> Rounding;
    fn min_cost(&self) -> Option<i128>;
    fn free_cap(&self) -> Option<i128>;
}

impl TotalRules for Terms {
    #[inline]
    fn rounding(&self) -> Rounding {
        self.rounding
    }
    #[inline]
    fn min_cost(&self) -> Option<i128> {
        self.min_cost
    }
    #[inline]
    fn free_cap(&self) -> Option<i128> {
        self.free_cap
    }
}

impl TotalRules for DrTerms {
    #[inline]
    fn rounding(&self) -> Rounding {
        self.rounding
    }
    #[inline]
    fn min_cost(&self) -> Option<i128> {
        self.min_cost_fx
    }
    #[inline]
    fn free_cap(&self) -> Option<i128> {
        self.free_cap_fx
    }
}

/// [`Terms::total`] in 64-bit arithmetic for the common call: one rate unit, no cap
/// reached, every intermediate within 64 bits. The same exact integer steps, so the same
/// answer; `None` sends every other call (and every error) through the general path.
#[inline]
fn total_64(
    rules: &impl TotalRules,
    acc: &Accum,
    connect_fee: i128,
    scale: u32,
) -> Option<(Decimal, bool, bool)> {
    if !acc.rest.is_empty() {
        return None;
    }
    let (n, den) = match acc.unit {
        0 => (0i64, 1i64),
        u => (i64::try_from(acc.num).ok()?, u),
    };
    let mut num = n.checked_add(i64::try_from(connect_fee).ok()?.checked_mul(den)?)?;
    let mut floored = false;
    if let Some(min) = rules.min_cost() {
        let m = i64::try_from(min).ok()?.checked_mul(den)?;
        if num < m {
            num = m;
            floored = true;
        }
    }
    if let Some(cap) = rules.free_cap() {
        let c = i64::try_from(cap).ok()?.checked_mul(den)?;
        if num > c {
            // Capped: rare, and its rounding has one more rule.
            return None;
        }
    }
    let rounding = rules.rounding();
    let d = rounding.decimals;
    let q = fixed_ratio_round_64(num, den, scale, d, rounding.method)?;
    let cost = Decimal::try_new(q, d).ok()?;
    Some((cost, false, floored))
}

/// The overflow error, made only on the error path: a `RateError` built eagerly for
/// `ok_or` is dropped on every success (it has boxed variants, so the drop is a call).
#[cold]
fn overflow() -> RateError {
    RateError::Overflow
}

fn min_opt<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

/// Rates one event.
pub fn rate(tariff: &Tariff, ev: &Event<'_>) -> Result<Rated, RateError> {
    rate_inner(tariff, ev)
}

#[inline(always)]
fn rate_inner(tariff: &Tariff, ev: &Event<'_>) -> Result<Rated, RateError> {
    if ev.usage < 0 {
        return Err(RateError::NegativeUsage);
    }
    if ev.tor.is_time() && ev.usage > MAX_VOICE_USAGE_NS {
        return Err(RateError::UsageTooLong);
    }
    let start_ns = i64::try_from(ev.start.as_nanosecond()).map_err(|_| RateError::Overflow)?;
    let callee = tariff.callee(ev.destination)?;
    let (carrier, carrier_outcome) = tariff.carrier_of(ev, &callee);
    // Profiles by subject text in one probe when the tariff allows it, else by interned ids.
    let found = (tariff.subjects.as_ref()).and_then(|t| t.find(ev.tenant, ev.category, ev.subject));
    let (tenant, category, keys) = match found {
        Some((scope, line)) => (
            scope.tenant_id,
            scope.category_id,
            [Some(line), None, None, None],
        ),
        None => {
            let tenant = tariff.string_id(ev.tenant);
            let category = tariff.string_id(ev.category);
            let subject = tariff.string_id(ev.subject);
            let own = tariff.subject_keys(tenant, category, subject, carrier);
            let any = tariff.subject_keys(tenant, category, tariff.any_id, carrier);
            (tenant, category, [own[0], own[1], any[0], any[1]])
        }
    };
    let ctx = Ctx {
        band_memo: std::cell::Cell::new(None),
        tariff,
        ev,
        start_ns,
        tenant,
        category,
        carrier,
    };

    let no_profile = |at: i64| no_profile(tariff, ev, [tenant, category, carrier], ctx.ts(at));

    // Profile segments: split where the activation in force changes (voice only).
    let total = ev.usage;
    let number = callee.number.as_bytes();
    let mut segments: SmallVec<[Segment<'_>; 2]> = SmallVec::new();
    let mut seg_start = 0i64;
    loop {
        let at = start_ns.saturating_add(seg_start);
        let act = effective(&keys, at).ok_or_else(|| no_profile(at))?;
        let (plan, dest, bind, prefix_len) =
            ctx.resolve(act, number, at)
                .ok_or_else(|| RateError::UnauthorizedDestination {
                    miss: miss(tariff, ev, act.plan, ctx.ts(at)),
                })?;
        // Next instant where a higher-priority key's activation starts within the call.
        let mut next = i64::MAX;
        if ev.tor.is_time() {
            for list in keys.iter().flatten() {
                let i = list.partition_point(|a| a.at <= at);
                for a in &list[i..] {
                    let off = a.at.saturating_sub(start_ns);
                    if off >= total || off >= next {
                        break;
                    }
                    // Only an activation that changes what is in force splits the call.
                    if !std::ptr::eq(effective(&keys, a.at).unwrap_or(act), act) {
                        next = off;
                        break;
                    }
                }
            }
        }
        segments.push(Segment {
            end: next,
            plan,
            dest,
            sched: &tariff.schedules[bind.schedule as usize],
            first: bind.first,
            prefix_len,
        });
        if next >= total {
            break;
        }
        if segments.len() >= MAX_SEGMENTS {
            // Never rate the rest of the call under a profile that is no longer in force.
            return Err(RateError::TooManyPieces);
        }
        seg_start = next;
    }

    // A slice: indexing the `SmallVec` itself re-checks where its items live every time.
    let segments = segments.as_slice();
    let first = segments[0];
    let mut rated = Rated {
        cost: Decimal::ZERO,
        connect_fee: Decimal::ZERO,
        usage: total,
        rated_usage: 0,
        rounding: Rounding {
            method: toll_core::RoundingMethod::Middle,
            decimals: 4,
        },
        capped: false,
        floored: false,
        destination: first.dest,
        prefix_len: first.prefix_len,
        plan: first.plan,
        carrier: carrier_outcome,
        range: callee.range.map(|(i, _)| i),
        pieces: SmallVec::new(),
        disconnect_cap: None,
    };
    let mut acc = Accum::default();
    if total == 0 {
        // Zero usage costs nothing, not even the connect fee.
        return Ok(zero_usage(&ctx, &first, rated));
    }

    let mut p = 0i64;
    let mut seg_i = 0usize;
    // SMS and data are priced by the band active at their start, for their whole usage.
    let mut fixed_band: Option<usize> = None;
    // Whether the pieces have different destination-rate terms (caps, rounding).
    let mut mixed_terms = false;
    // The first piece's rate and terms, and how many pieces: kept here rather than read back
    // from the `SmallVec` (each read checks where its items live).
    let mut first_piece: Option<(u32, u32)> = None;
    let mut n_pieces = 0usize;
    while p < total {
        while segments[seg_i].end <= p && seg_i + 1 < segments.len() {
            seg_i += 1;
        }
        let seg = segments[seg_i];
        let at = start_ns.saturating_add(p);
        let (row_i, band_end) = match (ev.tor.is_time(), fixed_band) {
            (false, Some(r)) => (r, i64::MAX),
            _ => {
                let (r, end) =
                    ctx.band_at(seg.sched, at)
                        .ok_or_else(|| RateError::NoRateInterval {
                            miss: miss(tariff, ev, seg.plan, ctx.ts(at)),
                        })?;
                if ev.tor.is_time() {
                    (r, end.saturating_sub(start_ns))
                } else {
                    fixed_band = Some(r);
                    (r, i64::MAX)
                }
            }
        };
        let timing = seg.sched.rows[row_i].timing;
        let row = &tariff.row_terms[seg.first as usize + row_i];
        let rate = &tariff.rates[row.rate as usize];
        let gi = rate
            .rows
            .partition_point(|r| r.group_start <= p)
            .saturating_sub(1);
        let group = &rate.rows[gi];
        let next_group = rate.rows.get(gi + 1).map_or(i64::MAX, |r| r.group_start);
        let piece_end = band_end.min(seg.end).min(next_group).min(total);
        let dur = (piece_end - p).max(1);
        let inc = group.increment.max(1);
        let rated_len = dur
            .checked_add(inc - 1)
            .map(|x| x / inc * inc)
            .ok_or_else(overflow)?;
        let real = (p.saturating_add(rated_len)).min(total) - p;
        let numerator = if group.unit == 0 {
            0
        } else {
            mul(group.rate_fx, i128::from(rated_len)).ok_or_else(overflow)?
        };
        acc.add(group.unit, numerator)?;
        if n_pieces >= MAX_PIECES {
            return Err(RateError::TooManyPieces);
        }
        n_pieces += 1;
        match first_piece {
            None => first_piece = Some((row.rate, row.terms)),
            Some((_, terms)) => mixed_terms |= terms != row.terms,
        }
        rated.pieces.push(Piece {
            offset: p,
            real,
            rated: rated_len,
            plan: seg.plan,
            timing,
            destination_rate: row.dr,
            rate: row.rate,
            terms: row.terms,
            rate_row: gi as u16,
            destination: seg.dest,
            prefix_len: seg.prefix_len,
            numerator,
            scale: tariff.money_scale as u8,
            unit: group.unit,
        });
        rated.rated_usage = rated.rated_usage.saturating_add(rated_len);
        p = p.saturating_add(rated_len);
    }

    // The loop ran at least once (`total > 0`).
    let (first_rate, first_terms) = match first_piece {
        Some((rate, terms)) => (&tariff.rates[rate as usize], terms),
        None => return Err(RateError::Overflow),
    };
    rated.connect_fee = first_rate.rows[0].connect_fee;
    let connect_fx = first_rate.rows[0].connect_fx;
    let scale = tariff.money_scale;
    // One destination rate (nearly every call): its terms read in place.
    let dr = &tariff.terms[first_terms as usize];
    let fast = if mixed_terms {
        None
    } else {
        total_64(dr, &acc, connect_fx, scale)
    };
    let (cost, capped, floored) = match fast {
        Some(total) => {
            (rated.rounding, rated.disconnect_cap) = (dr.rounding, dr.disconnect_cap);
            total
        }
        None => {
            let terms = if mixed_terms {
                Terms::of(tariff, &rated.pieces)
            } else {
                Terms::single(tariff, first_terms)
            };
            (rated.rounding, rated.disconnect_cap) = (terms.rounding, terms.disconnect_cap);
            terms.total(&acc, connect_fx, scale)?
        }
    };
    rated.cost = cost;
    rated.capped = capped;
    rated.floored = floored;
    Ok(rated)
}

/// What could not be priced: the dialled number under `plan` at `at`.
#[cold]
fn miss(tariff: &Tariff, ev: &Event<'_>, plan: u32, at: Timestamp) -> Box<Miss> {
    Box::new(Miss {
        destination: ev.destination.to_string(),
        plan: tariff.plan_id(plan).to_string(),
        at,
    })
}

/// Why no profile rates the event: a carrier-specific tariff that does not know the callee's
/// carrier, or none at all.
#[cold]
fn no_profile(tariff: &Tariff, ev: &Event<'_>, ids: [u32; 3], at: Timestamp) -> RateError {
    let [tenant, category, carrier] = ids;
    let subject = tariff.string_id(ev.subject);
    if carrier == NONE
        && (tariff.has_carrier_specific(tenant, category, subject)
            || tariff.has_carrier_specific(tenant, category, tariff.any_id))
    {
        RateError::CarrierUnknown {
            destination: ev.destination.into(),
        }
    } else {
        RateError::NoProfile {
            who: Box::new(Who {
                tenant: ev.tenant.to_string(),
                category: ev.category.to_string(),
                subject: ev.subject.to_string(),
                at,
            }),
        }
    }
}

/// A call of zero usage: free, with the rounding of the terms its first piece would have had.
#[cold]
fn zero_usage<'t>(ctx: &Ctx<'t, '_>, seg: &Segment<'t>, mut rated: Rated) -> Rated {
    if let Some((r, _)) = ctx.band_at(seg.sched, ctx.start_ns) {
        let terms = ctx.tariff.row_terms[seg.first as usize + r].terms;
        rated.rounding = ctx.tariff.terms[terms as usize].rounding;
    }
    rated
}

/// The longest usage, up to `ev.usage`, that `available` can pay for (prepaid authorisation).
pub fn max_usage(
    tariff: &Tariff,
    ev: &Event<'_>,
    available: Decimal,
) -> Result<MaxUsage, RateError> {
    let full = rate_inner(tariff, ev)?;
    let fits =
        |cost: Decimal, disc: Option<Decimal>| cost <= available && disc.is_none_or(|c| cost <= c);
    if fits(full.cost, full.disconnect_cap) {
        return Ok(MaxUsage {
            usage: full.usage,
            cost: full.cost,
            limited_by: Limit::Requested,
        });
    }
    // Grow the call piece by piece; inside the first piece that does not fit, binary-search the
    // number of whole increments. Cost never decreases with usage, so the search is exact.
    let mut acc = Accum::default();
    let mut best = MaxUsage {
        usage: 0,
        cost: Decimal::ZERO,
        limited_by: Limit::Balance,
    };
    for (k, piece) in full.pieces.iter().enumerate() {
        let terms = Terms::of(tariff, &full.pieces[..=k]);
        let rate = &tariff.rates[piece.rate as usize];
        let group = &rate.rows[usize::from(piece.rate_row)];
        let inc = group.increment.max(1);
        let steps = piece.rated / inc;
        let connect_fx = tariff.rates[full.pieces[0].rate as usize].rows[0].connect_fx;
        let cost_at = |j: i64| -> Result<Decimal, RateError> {
            let mut a = acc.clone();
            if group.unit != 0 {
                let n = mul(group.rate_fx, i128::from(j * inc)).ok_or_else(overflow)?;
                a.add(group.unit, n)?;
            }
            Ok(terms.total(&a, connect_fx, tariff.money_scale)?.0)
        };
        let usage_at = |j: i64| (piece.offset + j * inc).min(full.usage);
        let full_cost = cost_at(steps)?;
        if fits(full_cost, terms.disconnect_cap) {
            best = MaxUsage {
                usage: usage_at(steps),
                cost: full_cost,
                limited_by: Limit::Balance,
            };
            acc.add(piece.unit, piece.numerator)?;
            continue;
        }
        // Largest j in [0, steps) that fits; j = 0 is the end of the previous piece.
        let (mut lo, mut hi) = (0i64, steps);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(cost_at(mid)?, terms.disconnect_cap) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        if lo > 0 {
            best = MaxUsage {
                usage: usage_at(lo),
                cost: cost_at(lo)?,
                limited_by: Limit::Balance,
            };
        }
        // The first usage that does not fit: refused by the cap although the balance would do?
        if cost_at(hi)? <= available {
            best.limited_by = Limit::MaxCost;
        }
        return Ok(best);
    }
    Ok(best)
}
