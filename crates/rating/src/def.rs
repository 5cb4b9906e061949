//! The tariff *definition*: what a tariff file says, format-independent, with source positions.
//!
//! Both importers (classic CGRateS CSV folders and Toll's own TOML file) produce a `TariffDef`;
//! `Tariff::compile` checks the cross-references and builds the fast lookup structures. Rows are
//! kept flat (one per CSV line, the id repeated) because that is how CGRateS files are written
//! and it keeps file order — which decides ties — explicit.

use jiff::Timestamp;
use jiff::civil::Date;
use rust_decimal::Decimal;
use toll_core::Currency;
use toll_core::rounding::RoundingMethod;
use toll_core::usage::DurationForm;

use crate::diag::Pos;

/// A value with the place it was written, for cross-reference errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> Spanned<T> {
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

/// In which clock time bands are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneDef {
    /// The UTC offset of each event's own start timestamp (how CGRateS reads its timings).
    EventOffset,
    /// An IANA time zone such as `Asia/Shanghai`; DST transitions are honoured.
    Named(String),
}

/// How dialled numbers are prepared before the prefix match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbering {
    /// Match the number exactly as the event carries it (CGRateS behaviour).
    AsDialled,
    /// Normalise Chinese forms first (+86, 0086, IP-dial prefixes...) to the national dialled
    /// form, e.g. `+86 138 0013 8000` → `13800138000`.
    ChinaNational,
}

/// A `*any` or an explicit list, as in CGRateS timing columns (`*any`, `1;2;3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector<T> {
    Any,
    List(Vec<T>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxCostStrategy {
    /// `*free`: usage beyond the cap costs nothing.
    Free,
    /// `*disconnect`: the call is cut when the cap is reached (limits authorisation only).
    Disconnect,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRowDef {
    pub id: Spanned<String>,
    pub prefix: Spanned<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateRowDef {
    pub id: Spanned<String>,
    pub connect_fee: Decimal,
    pub rate: Decimal,
    /// Raw counts: nanoseconds when written with units or for voice, units for SMS/data.
    pub unit: Spanned<(i64, DurationForm)>,
    pub increment: Spanned<(i64, DurationForm)>,
    pub group_start: Spanned<(i64, DurationForm)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRateRowDef {
    pub id: Spanned<String>,
    /// A destination id or `*any`.
    pub destination: Spanned<String>,
    pub rate: Spanned<String>,
    pub rounding: RoundingMethod,
    pub decimals: u32,
    /// Zero means no cap.
    pub max_cost: Decimal,
    pub max_cost_strategy: Option<MaxCostStrategy>,
    /// Toll extension: a floor on the cost of any call with usage.
    pub min_cost: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimingDef {
    pub id: Spanned<String>,
    pub years: Selector<i32>,
    pub months: Selector<u8>,
    pub month_days: Selector<u8>,
    /// 0..=6, Sunday = 0 (7 is folded to 0 by the parser).
    pub week_days: Selector<u8>,
    /// Nanoseconds after local midnight at which the band starts.
    pub start: i64,
    /// Toll extension: the timing only matches dates of this holiday calendar.
    pub calendar: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CalendarDef {
    pub id: Spanned<String>,
    pub dates: Vec<Date>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlanRowDef {
    pub id: Spanned<String>,
    pub destination_rates: Spanned<String>,
    pub timing: Spanned<String>,
    pub weight: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProfileDef {
    pub tenant: Spanned<String>,
    pub category: Spanned<String>,
    /// A subject or `*any`.
    pub subject: Spanned<String>,
    /// `None`: always active.
    pub activation: Option<Timestamp>,
    pub plan: Spanned<String>,
    pub fallback_subjects: Vec<Spanned<String>>,
    /// Toll extension: the profile applies only to events of this carrier (route or callee).
    pub carrier: Option<Spanned<String>>,
}

/// Everything a tariff file says.
#[derive(Debug, Clone, PartialEq)]
pub struct TariffDef {
    pub name: String,
    pub currency: Option<Currency>,
    pub zone: ZoneDef,
    pub numbering: Numbering,
    pub destinations: Vec<DestinationRowDef>,
    pub rates: Vec<RateRowDef>,
    pub destination_rates: Vec<DestinationRateRowDef>,
    pub timings: Vec<TimingDef>,
    pub calendars: Vec<CalendarDef>,
    pub plans: Vec<PlanRowDef>,
    pub profiles: Vec<ProfileDef>,
}

impl TariffDef {
    pub fn empty(name: impl Into<String>) -> Self {
        TariffDef {
            name: name.into(),
            currency: None,
            zone: ZoneDef::EventOffset,
            numbering: Numbering::AsDialled,
            destinations: Vec::new(),
            rates: Vec::new(),
            destination_rates: Vec::new(),
            timings: Vec::new(),
            calendars: Vec::new(),
            plans: Vec::new(),
            profiles: Vec::new(),
        }
    }
}
