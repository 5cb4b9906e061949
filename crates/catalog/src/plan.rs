//! Plan definitions (资费套餐): what a subscriber pays every period and what that buys.
//!
//! A plan is written by a person, as TOML (`docs/plans.md`), and kept by the store as that text:
//! the text is the definition, so an approved version can always be shown exactly as it was
//! approved. [`PlanDef`] is the validated form: parsing reports **every** error at once with the
//! field path (`allowances[1].quantity: must be greater than 0`), so an author fixes a draft in
//! one pass, and it never panics whatever the input. [`PlanDef::to_toml`] writes a definition
//! back in a canonical layout that parses to an equal definition.
//!
//! Quantities are written in friendly units (`500 minutes`, `30 gb`) and held as integers of the
//! usage kind's base unit ([`UsageKind::unit`]: seconds, messages, bytes, units) so that both
//! storage engines add them exactly; 1 MB = 1,048,576 bytes. Overage is priced with the
//! existing [`Pricing`] models, embedded exactly as `toll price` reads them.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use rust_decimal::Decimal;
use toll_core::{Currency, Micros, UsageKind};

use crate::pricing::{BlockMode, Pricing};

/// Largest plan document accepted, in bytes: a plan is a page of text, not a data set.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest plan code (bytes; codes are ASCII).
pub const MAX_CODE_LEN: usize = 64;
/// Longest plan name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Most allowances a plan may include.
pub const MAX_ALLOWANCES: usize = 32;
/// Most overage entries a plan may have (one per usage kind).
pub const MAX_OVERAGE: usize = 16;
/// Most services one allowance may be scoped to.
pub const MAX_SERVICES: usize = 32;
/// Longest service name (bytes; names are ASCII).
pub const MAX_SERVICE_LEN: usize = 64;
/// Longest validity in days (about ten years).
pub const MAX_VALIDITY_DAYS: u32 = 3660;
/// Most member lines a shared (family) plan may have.
pub const MAX_MEMBERS: u32 = 100;
/// Longest tariff category or subject, in characters.
pub const MAX_PROFILE_CHARS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Domain types
// ---------------------------------------------------------------------------------------------

/// A plan field's value was refused; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// A plan's code: the stable slug subscriptions and the command line name it by
/// (`5g-changxiang`). Lower-case ASCII letters, digits, `-` and `_`, starting with a letter or
/// digit, 1..=64 bytes; the human name lives in [`PlanDef::name`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanCode(String);

impl PlanCode {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PlanCode {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let ok_first = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let ok_all = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if s.is_empty() || s.len() > MAX_CODE_LEN || !ok_first || !ok_all {
            return Err(ValueError(format!(
                "{s:?} is not a plan code: 1 to {MAX_CODE_LEN} lower-case letters, digits, - and _, \
                 starting with a letter or digit"
            )));
        }
        Ok(PlanCode(s.to_string()))
    }
}

impl fmt::Display for PlanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a plan is a subscriber's base plan (主套餐) or an add-on pack bought on top of one
/// (叠加包, 定向流量包).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanClass {
    Base,
    Addon,
}

impl PlanClass {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanClass::Base => "base",
            PlanClass::Addon => "addon",
        }
    }
}

impl FromStr for PlanClass {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "base" => Ok(PlanClass::Base),
            "addon" => Ok(PlanClass::Addon),
            _ => Err(ValueError(format!("{s:?} is not base or addon"))),
        }
    }
}

/// What a plan is about, as the catalogue lists it (语音 / 流量 / 组合 / custom). It also bounds
/// the usage kinds the plan may count: see [`PlanKind::admits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanKind {
    Voice,
    Data,
    Combo,
    Custom,
}

impl PlanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Voice => "voice",
            PlanKind::Data => "data",
            PlanKind::Combo => "combo",
            PlanKind::Custom => "custom",
        }
    }

    /// Whether a plan of this kind may include or price `usage`: a voice plan counts only voice,
    /// a data plan only data, a custom plan only custom usage kinds; a combo may mix any.
    /// This keeps a plan listed as "data" from silently carrying call minutes.
    pub fn admits(self, usage: &UsageKind) -> bool {
        match self {
            PlanKind::Voice => *usage == UsageKind::Voice,
            PlanKind::Data => *usage == UsageKind::Data,
            PlanKind::Combo => true,
            PlanKind::Custom => matches!(usage, UsageKind::Custom(_)),
        }
    }
}

impl FromStr for PlanKind {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "voice" => Ok(PlanKind::Voice),
            "data" => Ok(PlanKind::Data),
            "combo" => Ok(PlanKind::Combo),
            "custom" => Ok(PlanKind::Custom),
            _ => Err(ValueError(format!(
                "{s:?} is not voice, data, combo or custom"
            ))),
        }
    }
}

/// How long one period of the plan lasts; see `crate::proration` for the periods it gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Validity {
    /// Periods of this many days (1..=3660) from the subscription's anchor date.
    Days(u32),
    /// From the anchor day to the same day next month, clamped to the month's last day.
    CalendarMonth,
}

/// A unit quantities are written in. Allowances use the plural (`minutes`), overage pricing
/// units the singular (`minute`); both spellings are accepted in either place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Second,
    Minute,
    Message,
    Byte,
    Kb,
    Mb,
    Gb,
    /// One unit of a custom usage kind.
    Unit,
}

impl Unit {
    const ALL: [Unit; 8] = [
        Unit::Second,
        Unit::Minute,
        Unit::Message,
        Unit::Byte,
        Unit::Kb,
        Unit::Mb,
        Unit::Gb,
        Unit::Unit,
    ];

    /// How many base units of its usage kind one of this unit is (1 MB = 1,048,576 bytes).
    pub fn base_units(self) -> i64 {
        match self {
            Unit::Second | Unit::Message | Unit::Byte | Unit::Unit => 1,
            Unit::Minute => 60,
            Unit::Kb => 1 << 10,
            Unit::Mb => 1 << 20,
            Unit::Gb => 1 << 30,
        }
    }

    /// Whether this unit measures `usage` (minutes measure voice, never data).
    pub fn measures(self, usage: &UsageKind) -> bool {
        match usage {
            UsageKind::Voice => matches!(self, Unit::Second | Unit::Minute),
            UsageKind::Sms => self == Unit::Message,
            UsageKind::Data => matches!(self, Unit::Byte | Unit::Kb | Unit::Mb | Unit::Gb),
            UsageKind::Custom(_) => self == Unit::Unit,
        }
    }

    pub fn singular(self) -> &'static str {
        match self {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Message => "message",
            Unit::Byte => "byte",
            Unit::Kb => "kb",
            Unit::Mb => "mb",
            Unit::Gb => "gb",
            Unit::Unit => "unit",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Unit::Second => "seconds",
            Unit::Minute => "minutes",
            Unit::Message => "messages",
            Unit::Byte => "bytes",
            Unit::Kb => "kb",
            Unit::Mb => "mb",
            Unit::Gb => "gb",
            Unit::Unit => "units",
        }
    }

    fn names_for(usage: &UsageKind) -> String {
        Unit::ALL
            .iter()
            .filter(|u| u.measures(usage))
            .map(|u| u.plural())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromStr for Unit {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Unit::ALL
            .into_iter()
            .find(|u| u.singular() == s || u.plural() == s)
            .ok_or_else(|| {
                ValueError(format!(
                    "{s:?} is not a unit (seconds, minutes, messages, bytes, kb, mb, gb, units)"
                ))
            })
    }
}

/// The named services an allowance is restricted to (定向流量: e.g. `wechat`, `douyin`).
///
/// Held sorted and without duplicates so that two scopes naming the same services are equal
/// whatever order they were written in. The text form (`Display` / `FromStr`) is the names
/// joined by commas, `douyin,wechat`, which is how the store can keep it in one column.
/// Shared (`Arc`): charging copies buckets, and their scopes with them, for every event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceScope(std::sync::Arc<[String]>);

/// Checks one service name: lower-case ASCII letters, digits, `_`, `-` and `.`, 1..=64 bytes.
fn check_service(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SERVICE_LEN
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a service name: 1 to {MAX_SERVICE_LEN} lower-case letters, digits, _, - and ."
        ))
    }
}

impl ServiceScope {
    /// Builds a scope from 1..=32 distinct service names; the error lists every problem.
    pub fn new<I, S>(names: I) -> Result<ServiceScope, ValueError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut errs = Vec::new();
        let mut list: Vec<String> = Vec::new();
        for (i, n) in names.into_iter().enumerate() {
            if i >= MAX_SERVICES {
                errs.push(format!("at most {MAX_SERVICES} services"));
                break;
            }
            let n = n.into();
            if let Err(e) = check_service(&n) {
                errs.push(e);
            } else if list.contains(&n) {
                errs.push(format!("{n:?} is listed twice"));
            } else {
                list.push(n);
            }
        }
        if list.is_empty() && errs.is_empty() {
            errs.push(
                "must name at least one service (omit `services` for an unscoped allowance)".into(),
            );
        }
        if !errs.is_empty() {
            return Err(ValueError(errs.join("; ")));
        }
        list.sort();
        Ok(ServiceScope(list.into()))
    }

    /// Whether an event of `service` may draw on this scope.
    pub fn contains(&self, service: &str) -> bool {
        self.0.binary_search_by(|s| s.as_str().cmp(service)).is_ok()
    }

    pub fn services(&self) -> &[String] {
        &self.0
    }
}

impl FromStr for ServiceScope {
    type Err = ValueError;
    /// Reads the comma-joined form written by `Display`.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        ServiceScope::new(s.split(',').map(str::trim))
    }
}

impl fmt::Display for ServiceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

/// A quantity of usage a plan includes each period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Allowance {
    pub usage: UsageKind,
    /// In the usage kind's base unit (seconds, messages, bytes, units); always > 0.
    pub quantity: i64,
    /// `None`: any usage of the kind draws on it; otherwise only events of these services.
    pub services: Option<ServiceScope>,
}

impl Allowance {
    /// The quantity in the largest unit that holds it exactly (`30 gb`, `1536 mb`, `90 seconds`):
    /// how [`PlanDef::to_toml`] writes it and how a person wants to read it.
    pub fn friendly_quantity(&self) -> (i64, Unit) {
        friendly(&self.usage, self.quantity)
    }
}

fn friendly(usage: &UsageKind, quantity: i64) -> (i64, Unit) {
    let candidates: &[Unit] = match usage {
        UsageKind::Voice => &[Unit::Minute, Unit::Second],
        UsageKind::Sms => &[Unit::Message],
        UsageKind::Data => &[Unit::Gb, Unit::Mb, Unit::Kb, Unit::Byte],
        UsageKind::Custom(_) => &[Unit::Unit],
    };
    for &u in candidates {
        if quantity % u.base_units() == 0 {
            return (quantity / u.base_units(), u);
        }
    }
    // Unreachable: the last candidate of every kind has one base unit.
    (quantity, Unit::Byte)
}

/// How one event's uncovered quantity becomes pricing units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PerEventRounding {
    /// Every started pricing unit counts: a 61-second call is 2 minutes (ceil).
    Up,
    /// The exact fraction: 61 seconds is 61/60 minutes.
    Exact,
}

impl PerEventRounding {
    pub fn as_str(self) -> &'static str {
        match self {
            PerEventRounding::Up => "up",
            PerEventRounding::Exact => "exact",
        }
    }
}

impl FromStr for PerEventRounding {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        match s {
            "up" => Ok(PerEventRounding::Up),
            "exact" => Ok(PerEventRounding::Exact),
            _ => Err(ValueError(format!("{s:?} is not up or exact"))),
        }
    }
}

/// How usage of one kind beyond the allowances is priced over a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverageRule {
    pub usage: UsageKind,
    /// The unit the pricing's quantities and tier bounds are in.
    pub unit: Unit,
    pub per_event: PerEventRounding,
    /// Never `Percentage`: that model prices money amounts, not usage.
    pub pricing: Pricing,
}

/// The rating profile (`toll cost --category C --subject S`) that rates usage the allowances
/// and overage entries do not cover.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TariffRef {
    pub category: String,
    pub subject: String,
}

/// A family plan (家庭共享): its allowances are one pool shared by up to `max_members` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shared {
    /// 2..=100, the owner's line included.
    pub max_members: u32,
}

/// What prices usage of a kind once the allowances are used up; see [`PlanDef::beyond_allowance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beyond<'a> {
    /// The plan's overage entry for the kind, cumulatively over the period.
    Overage(&'a OverageRule),
    /// The plan's tariff: the uncovered part is rated like any call (the tail of a call).
    Tariff(&'a TariffRef),
    /// Nothing prices it: the plan does not allow usage of this kind beyond its allowances.
    Nothing,
}

/// A validated plan definition. Only [`FromStr`] makes one, so every `PlanDef` satisfies the
/// rules in `docs/plans.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDef {
    code: PlanCode,
    name: String,
    class: PlanClass,
    kind: PlanKind,
    currency: Currency,
    base_fee: Decimal,
    validity: Validity,
    allowances: Vec<Allowance>,
    overage: Vec<OverageRule>,
    tariff: Option<TariffRef>,
    shared: Option<Shared>,
}

impl PlanDef {
    pub fn code(&self) -> &PlanCode {
        &self.code
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn class(&self) -> PlanClass {
        self.class
    }
    pub fn kind(&self) -> PlanKind {
        self.kind
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// The fee per period, ≥ 0, at most 6 decimals (it fits [`Micros`]).
    pub fn base_fee(&self) -> Decimal {
        self.base_fee
    }
    pub fn validity(&self) -> Validity {
        self.validity
    }
    /// In the order written.
    pub fn allowances(&self) -> &[Allowance] {
        &self.allowances
    }
    /// In the order written; at most one per usage kind.
    pub fn overage(&self) -> &[OverageRule] {
        &self.overage
    }
    pub fn tariff(&self) -> Option<&TariffRef> {
        self.tariff.as_ref()
    }
    pub fn shared(&self) -> Option<Shared> {
        self.shared
    }

    /// The overage entry for a usage kind.
    pub fn overage_for(&self, usage: &UsageKind) -> Option<&OverageRule> {
        self.overage.iter().find(|o| o.usage == *usage)
    }

    /// What prices usage of `usage` beyond the allowances: the overage entry for the kind when
    /// there is one (it is the more specific rule), else the tariff, else nothing.
    pub fn beyond_allowance(&self, usage: &UsageKind) -> Beyond<'_> {
        match (self.overage_for(usage), &self.tariff) {
            (Some(o), _) => Beyond::Overage(o),
            (None, Some(t)) => Beyond::Tariff(t),
            (None, None) => Beyond::Nothing,
        }
    }

    /// The definition as TOML in a canonical layout; parsing it gives back an equal `PlanDef`.
    pub fn to_toml(&self) -> String {
        write::plan(self)
    }
}

impl fmt::Display for PlanDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_toml())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One problem with a plan document: where (`allowances[1].quantity`, 0-based indices, or
/// `line 3, column 7` for a TOML syntax error) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Every problem found in a plan document, in document order; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", list(.errors))]
pub struct PlanDefError {
    pub errors: Vec<FieldError>,
}

fn list(errors: &[FieldError]) -> String {
    let mut s = String::new();
    for (i, e) in errors.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = write!(s, "{e}");
    }
    s
}

impl PlanDefError {
    /// Whether some error is at `path`.
    pub fn has(&self, path: &str) -> bool {
        self.errors.iter().any(|e| e.path == path)
    }
}

impl FromStr for PlanDef {
    type Err = PlanDefError;
    fn from_str(text: &str) -> Result<PlanDef, PlanDefError> {
        read::plan(text)
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

mod read {
    use super::*;
    use toml::{Table, Value};

    /// Collects errors while every field is still read, so that one pass reports them all.
    struct Ctx {
        errors: Vec<FieldError>,
    }

    impl Ctx {
        fn err(&mut self, path: &str, reason: impl Into<String>) {
            self.errors.push(FieldError {
                path: path.to_string(),
                reason: reason.into(),
            });
        }

        /// Reports keys of `table` that are not in `known`.
        fn unknown_keys(&mut self, path: &str, table: &Table, known: &[&str]) {
            for k in table.keys() {
                if !known.contains(&k.as_str()) {
                    let p = join(path, k);
                    self.err(
                        &p,
                        format!("unknown field (expected one of: {})", known.join(", ")),
                    );
                }
            }
        }

        fn required<'a>(&mut self, path: &str, t: &'a Table, key: &str) -> Option<&'a Value> {
            let v = t.get(key);
            if v.is_none() {
                self.err(&join(path, key), "is required");
            }
            v
        }

        fn string<'a>(&mut self, path: &str, v: &'a Value) -> Option<&'a str> {
            match v {
                Value::String(s) => Some(s),
                other => {
                    self.err(path, format!("must be a string, not {}", type_name(other)));
                    None
                }
            }
        }

        /// A string field parsed with `FromStr` whose error is a message.
        fn parsed<T: FromStr<Err = E>, E: fmt::Display>(
            &mut self,
            path: &str,
            t: &Table,
            key: &str,
        ) -> Option<T> {
            let p = join(path, key);
            let v = self.required(path, t, key)?;
            let s = self.string(&p, v)?;
            match s.parse::<T>() {
                Ok(v) => Some(v),
                Err(e) => {
                    self.err(&p, e.to_string());
                    None
                }
            }
        }

        fn table<'a>(&mut self, path: &str, v: &'a Value) -> Option<&'a Table> {
            match v {
                Value::Table(t) => Some(t),
                other => {
                    self.err(path, format!("must be a table, not {}", type_name(other)));
                    None
                }
            }
        }

        /// An array of at most `max` items.
        fn array<'a>(&mut self, path: &str, v: &'a Value, max: usize) -> Option<&'a [Value]> {
            match v {
                Value::Array(a) if a.len() > max => {
                    self.err(path, format!("at most {max} entries, not {}", a.len()));
                    None
                }
                Value::Array(a) => Some(a),
                other => {
                    self.err(path, format!("must be an array, not {}", type_name(other)));
                    None
                }
            }
        }
    }

    fn join(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    }

    fn type_name(v: &Value) -> &'static str {
        match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date-time",
            Value::Array(_) => "an array",
            Value::Table(_) => "a table",
        }
    }

    /// A decimal written as a string (`"0.15"`) or an integer; floats are refused since a binary
    /// float cannot hold most prices exactly (the same rule as `pricing`).
    fn decimal(v: &Value) -> Result<Decimal, String> {
        match v {
            Value::Integer(i) => Ok(Decimal::from(*i)),
            Value::String(s) => {
                let t = s.trim();
                let body = t.strip_prefix(['-', '+']).unwrap_or(t);
                let (int, frac) = body.split_once('.').unwrap_or((body, ""));
                let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
                if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
                    return Err(format!("{t:?} is not a decimal number"));
                }
                Decimal::from_str(t).map_err(|_| format!("{t:?} is not a decimal number"))
            }
            Value::Float(f) => Err(format!(
                "{f} is a float: write the number as a string, e.g. \"{f}\""
            )),
            other => Err(format!(
                "must be a decimal number, not {}",
                type_name(other)
            )),
        }
    }

    /// The position of a byte offset as `line L, column C` (columns in characters).
    fn position(text: &str, offset: usize) -> String {
        let before = text.get(..offset.min(text.len())).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {col}")
    }

    pub(super) fn plan(text: &str) -> Result<PlanDef, PlanDefError> {
        let mut cx = Ctx { errors: Vec::new() };
        if text.len() > MAX_DOCUMENT_BYTES {
            cx.err(
                "(document)",
                format!(
                    "is {} bytes; a plan may have at most {MAX_DOCUMENT_BYTES}",
                    text.len()
                ),
            );
            return Err(PlanDefError { errors: cx.errors });
        }
        let root: Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let e: toml::de::Error = e;
                let path = e
                    .span()
                    .map_or_else(|| "(document)".to_string(), |s| position(text, s.start));
                cx.err(&path, e.message().trim().to_string());
                return Err(PlanDefError { errors: cx.errors });
            }
        };
        let def = plan_table(&mut cx, &root);
        match def {
            Some(d) if cx.errors.is_empty() => Ok(d),
            _ => Err(PlanDefError { errors: cx.errors }),
        }
    }

    const TOP: &[&str] = &[
        "code",
        "name",
        "class",
        "kind",
        "currency",
        "base_fee",
        "validity",
        "allowances",
        "overage",
        "tariff",
        "shared",
    ];

    fn plan_table(cx: &mut Ctx, root: &Table) -> Option<PlanDef> {
        cx.unknown_keys("", root, TOP);
        let code = cx.parsed::<PlanCode, _>("", root, "code");
        let name = cx
            .required("", root, "name")
            .and_then(|v| cx.string("name", v))
            .and_then(|s| {
                if s.trim().is_empty() {
                    cx.err("name", "must not be empty");
                    None
                } else if s.chars().count() > MAX_NAME_CHARS {
                    cx.err("name", format!("at most {MAX_NAME_CHARS} characters"));
                    None
                } else {
                    Some(s.to_string())
                }
            });
        let class = cx.parsed::<PlanClass, _>("", root, "class");
        let kind = cx.parsed::<PlanKind, _>("", root, "kind");
        let currency = cx.parsed::<Currency, _>("", root, "currency");
        let base_fee = cx
            .required("", root, "base_fee")
            .and_then(|v| match decimal(v) {
                Ok(d) if d.is_sign_negative() && !d.is_zero() => {
                    cx.err("base_fee", "must not be negative");
                    None
                }
                Ok(d) => match Micros::from_decimal(d) {
                    Ok(_) => Some(d),
                    Err(e) => {
                        cx.err("base_fee", e.to_string());
                        None
                    }
                },
                Err(e) => {
                    cx.err("base_fee", e);
                    None
                }
            });
        let validity = cx
            .required("", root, "validity")
            .and_then(|v| validity(cx, v));

        let allowances = match root.get("allowances") {
            None => Some(Vec::new()),
            Some(v) => cx.array("allowances", v, MAX_ALLOWANCES).map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| allowance(cx, &format!("allowances[{i}]"), item))
                    .collect::<Vec<_>>()
            }),
        };
        let overage = match root.get("overage") {
            None => Some(Vec::new()),
            Some(v) => cx.array("overage", v, MAX_OVERAGE).map(|items| {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| overage(cx, &format!("overage[{i}]"), item))
                    .collect::<Vec<_>>()
            }),
        };
        let tariff = root.get("tariff").map(|v| tariff(cx, v));
        let shared = root.get("shared").map(|v| shared(cx, v));

        // Rules across fields, checked on whatever parsed so that they are reported too.
        if let (Some(kind), Some(list)) = (kind, &allowances) {
            for (i, a) in list.iter().enumerate() {
                if let Some(a) = a
                    && !kind.admits(&a.usage)
                {
                    cx.err(
                        &format!("allowances[{i}].usage"),
                        format!(
                            "a {} plan cannot include {} (use kind = \"combo\")",
                            kind.as_str(),
                            a.usage
                        ),
                    );
                }
            }
        }
        if let (Some(kind), Some(list)) = (kind, &overage) {
            for (i, o) in list.iter().enumerate() {
                if let Some(o) = o
                    && !kind.admits(&o.usage)
                {
                    cx.err(
                        &format!("overage[{i}].usage"),
                        format!(
                            "a {} plan cannot price {} (use kind = \"combo\")",
                            kind.as_str(),
                            o.usage
                        ),
                    );
                }
            }
        }
        if let Some(list) = &allowances {
            for (i, a) in list.iter().enumerate() {
                let Some(a) = a else { continue };
                let dup = list[..i]
                    .iter()
                    .flatten()
                    .any(|b| b.usage == a.usage && b.services == a.services);
                if dup {
                    cx.err(
                        &format!("allowances[{i}]"),
                        format!(
                            "a second {} allowance with the same services: add the quantities instead",
                            a.usage
                        ),
                    );
                }
            }
        }
        if let Some(list) = &overage {
            for (i, o) in list.iter().enumerate() {
                let Some(o) = o else { continue };
                if list[..i].iter().flatten().any(|p| p.usage == o.usage) {
                    cx.err(
                        &format!("overage[{i}].usage"),
                        format!("a second overage entry for {}", o.usage),
                    );
                }
            }
        }
        if class == Some(PlanClass::Addon) {
            if allowances.as_ref().is_some_and(Vec::is_empty) {
                cx.err(
                    "allowances",
                    "an add-on must include at least one allowance: it is what the add-on sells",
                );
            }
            if overage.as_ref().is_some_and(|o| !o.is_empty()) {
                cx.err(
                    "overage",
                    "an add-on has no overage: usage beyond it falls to the base plan",
                );
            }
            if tariff.is_some() {
                cx.err(
                    "tariff",
                    "an add-on has no tariff: usage beyond it falls to the base plan",
                );
            }
        }
        if shared.is_some() && allowances.as_ref().is_some_and(Vec::is_empty) {
            cx.err(
                "shared",
                "a shared plan must include at least one allowance to share",
            );
        }

        Some(PlanDef {
            code: code?,
            name: name?,
            class: class?,
            kind: kind?,
            currency: currency?,
            base_fee: base_fee?,
            validity: validity?,
            allowances: allowances?.into_iter().collect::<Option<Vec<_>>>()?,
            overage: overage?.into_iter().collect::<Option<Vec<_>>>()?,
            tariff: tariff.map_or(Some(None), |t| t.map(Some))?,
            shared: shared.map_or(Some(None), |s| s.map(Some))?,
        })
    }

    fn validity(cx: &mut Ctx, v: &Value) -> Option<Validity> {
        const HOW: &str = "must be \"calendar_month\" or { days = N }";
        match v {
            Value::String(s) if s == "calendar_month" => Some(Validity::CalendarMonth),
            Value::Table(t) => {
                cx.unknown_keys("validity", t, &["days"]);
                let days = cx.required("validity", t, "days")?;
                match days {
                    Value::Integer(n) if (1..=i64::from(MAX_VALIDITY_DAYS)).contains(n) => {
                        u32::try_from(*n).ok().map(Validity::Days)
                    }
                    Value::Integer(_) => {
                        cx.err("validity.days", format!("must be 1 to {MAX_VALIDITY_DAYS}"));
                        None
                    }
                    other => {
                        cx.err(
                            "validity.days",
                            format!("must be an integer, not {}", type_name(other)),
                        );
                        None
                    }
                }
            }
            Value::String(s) => {
                cx.err("validity", format!("{s:?}: {HOW}"));
                None
            }
            other => {
                cx.err("validity", format!("{HOW}, not {}", type_name(other)));
                None
            }
        }
    }

    fn usage(cx: &mut Ctx, path: &str, t: &Table) -> Option<UsageKind> {
        cx.parsed::<UsageKind, _>(path, t, "usage")
    }

    fn unit_for(cx: &mut Ctx, path: &str, t: &Table, usage: Option<&UsageKind>) -> Option<Unit> {
        let unit = cx.parsed::<Unit, _>(path, t, "unit")?;
        if let Some(u) = usage
            && !unit.measures(u)
        {
            cx.err(
                &join(path, "unit"),
                format!(
                    "{} does not measure {u} (use {})",
                    unit.plural(),
                    Unit::names_for(u)
                ),
            );
            return None;
        }
        Some(unit)
    }

    fn allowance(cx: &mut Ctx, path: &str, v: &Value) -> Option<Allowance> {
        let t = cx.table(path, v)?;
        cx.unknown_keys(path, t, &["usage", "quantity", "unit", "services"]);
        let usage = usage(cx, path, t);
        let unit = unit_for(cx, path, t, usage.as_ref());
        let qpath = join(path, "quantity");
        let amount = cx
            .required(path, t, "quantity")
            .and_then(|v| match decimal(v) {
                Ok(d) if d <= Decimal::ZERO => {
                    cx.err(&qpath, "must be greater than 0");
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    cx.err(&qpath, e);
                    None
                }
            });
        let quantity = match (amount, unit) {
            (Some(a), Some(u)) => {
                let base = a.checked_mul(Decimal::from(u.base_units()));
                match base {
                    Some(b) if b.fract().is_zero() => match i64::try_from(b.trunc()) {
                        Ok(q) => Some(q),
                        Err(_) => {
                            cx.err(&qpath, "is too large");
                            None
                        }
                    },
                    Some(_) => {
                        cx.err(
                            &qpath,
                            format!(
                                "{a} {} is not a whole number of {}s",
                                u.plural(),
                                usage.as_ref().map_or("base unit", |k| k.unit())
                            ),
                        );
                        None
                    }
                    None => {
                        cx.err(&qpath, "is too large");
                        None
                    }
                }
            }
            _ => None,
        };
        let services = match t.get("services") {
            None => Some(None),
            Some(v) => services(cx, &join(path, "services"), v).map(Some),
        };
        Some(Allowance {
            usage: usage?,
            quantity: quantity?,
            services: services?,
        })
    }

    fn services(cx: &mut Ctx, path: &str, v: &Value) -> Option<ServiceScope> {
        let items = cx.array(path, v, MAX_SERVICES)?;
        let mut names = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match cx.string(&format!("{path}[{i}]"), item) {
                Some(s) => names.push(s),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        match ServiceScope::new(names) {
            Ok(s) => Some(s),
            Err(e) => {
                cx.err(path, e.0);
                None
            }
        }
    }

    fn overage(cx: &mut Ctx, path: &str, v: &Value) -> Option<OverageRule> {
        let t = cx.table(path, v)?;
        cx.unknown_keys(path, t, &["usage", "unit", "per_event", "pricing"]);
        let usage = usage(cx, path, t);
        let unit = unit_for(cx, path, t, usage.as_ref());
        let per_event = cx.parsed::<PerEventRounding, _>(path, t, "per_event");
        let ppath = join(path, "pricing");
        let pricing = cx
            .required(path, t, "pricing")
            .and_then(|v| cx.table(&ppath, v))
            .and_then(|pt| pricing(cx, &ppath, pt));
        Some(OverageRule {
            usage: usage?,
            unit: unit?,
            per_event: per_event?,
            pricing: pricing?,
        })
    }

    /// Reads an embedded pricing with `Pricing::from_str`, the very reader `toll price` uses, so
    /// that a pricing file pasted into a plan means the same thing.
    fn pricing(cx: &mut Ctx, path: &str, t: &Table) -> Option<Pricing> {
        let text = match toml::to_string(t) {
            Ok(s) => s,
            Err(e) => {
                cx.err(path, e.to_string());
                return None;
            }
        };
        match text.parse::<Pricing>() {
            Ok(Pricing::Percentage { .. }) => {
                cx.err(
                    &join(path, "model"),
                    "percentage prices money amounts, not usage: use per_unit, graduated, \
                     volume, package or blocks",
                );
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                // The line and column would point into the re-written text, not the plan's:
                // the field path says where instead.
                let msg = e.to_string();
                cx.err(path, strip_position(&msg));
                None
            }
        }
    }

    fn strip_position(msg: &str) -> String {
        if let Some(rest) = msg.strip_prefix("line ")
            && let Some((pos, tail)) = rest.split_once(": ")
            && pos.contains(", column ")
        {
            return tail.trim().to_string();
        }
        msg.trim().to_string()
    }

    fn profile_name(cx: &mut Ctx, path: &str, t: &Table, key: &str) -> Option<String> {
        let p = join(path, key);
        let s = cx.required(path, t, key).and_then(|v| cx.string(&p, v))?;
        if s.is_empty() || s.trim() != s {
            cx.err(&p, "must not be empty or have leading or trailing spaces");
            None
        } else if s.chars().count() > MAX_PROFILE_CHARS {
            cx.err(&p, format!("at most {MAX_PROFILE_CHARS} characters"));
            None
        } else if s.chars().any(char::is_control) {
            cx.err(&p, "must not contain control characters");
            None
        } else {
            Some(s.to_string())
        }
    }

    fn tariff(cx: &mut Ctx, v: &Value) -> Option<TariffRef> {
        let t = cx.table("tariff", v)?;
        cx.unknown_keys("tariff", t, &["category", "subject"]);
        let category = profile_name(cx, "tariff", t, "category");
        let subject = profile_name(cx, "tariff", t, "subject");
        Some(TariffRef {
            category: category?,
            subject: subject?,
        })
    }

    fn shared(cx: &mut Ctx, v: &Value) -> Option<Shared> {
        let t = cx.table("shared", v)?;
        cx.unknown_keys("shared", t, &["max_members"]);
        match cx.required("shared", t, "max_members")? {
            Value::Integer(n) if (2..=i64::from(MAX_MEMBERS)).contains(n) => u32::try_from(*n)
                .ok()
                .map(|max_members| Shared { max_members }),
            Value::Integer(_) => {
                cx.err(
                    "shared.max_members",
                    format!("must be 2 to {MAX_MEMBERS} (the owner's line included)"),
                );
                None
            }
            other => {
                cx.err(
                    "shared.max_members",
                    format!("must be an integer, not {}", type_name(other)),
                );
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

mod write {
    use super::*;
    use crate::pricing::Tier;

    /// A TOML basic string: quotes, backslashes and control characters escaped, the rest (e.g.
    /// Chinese) written as is.
    pub(super) fn quote(s: &str) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{:04X}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn dec(d: Decimal) -> String {
        quote(&d.to_string())
    }

    pub(super) fn plan(p: &PlanDef) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "code = {}", quote(p.code.as_str()));
        let _ = writeln!(s, "name = {}", quote(&p.name));
        let _ = writeln!(s, "class = {}", quote(p.class.as_str()));
        let _ = writeln!(s, "kind = {}", quote(p.kind.as_str()));
        let _ = writeln!(s, "currency = {}", quote(p.currency.as_str()));
        let _ = writeln!(s, "base_fee = {}", dec(p.base_fee));
        match p.validity {
            Validity::Days(n) => {
                let _ = writeln!(s, "validity = {{ days = {n} }}");
            }
            Validity::CalendarMonth => {
                let _ = writeln!(s, "validity = \"calendar_month\"");
            }
        }
        if let Some(t) = &p.tariff {
            let _ = write!(
                s,
                "\n[tariff]\ncategory = {}\nsubject = {}\n",
                quote(&t.category),
                quote(&t.subject)
            );
        }
        if let Some(sh) = p.shared {
            let _ = write!(s, "\n[shared]\nmax_members = {}\n", sh.max_members);
        }
        for a in &p.allowances {
            let (q, unit) = a.friendly_quantity();
            let _ = write!(
                s,
                "\n[[allowances]]\nusage = {}\nquantity = {q}\nunit = {}\n",
                quote(a.usage.as_str()),
                quote(unit.plural())
            );
            if let Some(scope) = &a.services {
                let names: Vec<String> = scope.services().iter().map(|n| quote(n)).collect();
                let _ = writeln!(s, "services = [{}]", names.join(", "));
            }
        }
        for o in &p.overage {
            let _ = write!(
                s,
                "\n[[overage]]\nusage = {}\nunit = {}\nper_event = {}\n[overage.pricing]\n",
                quote(o.usage.as_str()),
                quote(o.unit.singular()),
                quote(o.per_event.as_str())
            );
            pricing(&mut s, &o.pricing);
        }
        s
    }

    fn tier(t: &Tier) -> String {
        let mut parts = Vec::new();
        if let Some(u) = t.up_to {
            parts.push(format!("up_to = {}", dec(u)));
        }
        parts.push(format!("unit_price = {}", dec(t.unit_price)));
        if t.per != Decimal::ONE {
            parts.push(format!("per = {}", dec(t.per)));
        }
        if let Some(i) = t.increment {
            parts.push(format!("increment = {}", dec(i)));
        }
        if !t.flat_fee.is_zero() {
            parts.push(format!("flat_fee = {}", dec(t.flat_fee)));
        }
        format!("{{ {} }}", parts.join(", "))
    }

    /// Writes a pricing in the keys `Pricing::from_str` reads (`docs/pricing.md`), defaults
    /// omitted.
    pub(super) fn pricing(s: &mut String, p: &Pricing) {
        match p {
            Pricing::PerUnit { unit_price } => {
                let _ = write!(
                    s,
                    "model = \"per_unit\"\nunit_price = {}\n",
                    dec(*unit_price)
                );
            }
            Pricing::Graduated { tiers } | Pricing::Volume { tiers } => {
                let model = if matches!(p, Pricing::Graduated { .. }) {
                    "graduated"
                } else {
                    "volume"
                };
                let _ = writeln!(s, "model = \"{model}\"\ntiers = [");
                for t in tiers {
                    let _ = writeln!(s, "  {},", tier(t));
                }
                s.push_str("]\n");
            }
            Pricing::Package {
                package_size,
                package_price,
                free_units,
            } => {
                let _ = write!(
                    s,
                    "model = \"package\"\npackage_size = {}\npackage_price = {}\n",
                    dec(*package_size),
                    dec(*package_price)
                );
                if !free_units.is_zero() {
                    let _ = writeln!(s, "free_units = {}", dec(*free_units));
                }
            }
            Pricing::Blocks { mode, tiers } => {
                let mode = match mode {
                    BlockMode::AllTiers => "all_tiers",
                    BlockMode::TopTier => "top_tier",
                };
                let _ = writeln!(s, "model = \"blocks\"\nmode = \"{mode}\"\ntiers = [");
                for t in tiers {
                    let mut parts = vec![format!("block_size = {}", dec(t.block_size))];
                    if let Some(m) = t.max_blocks {
                        parts.push(format!("max_blocks = {}", dec(m)));
                    }
                    parts.push(format!("block_price = {}", dec(t.block_price)));
                    let _ = writeln!(s, "  {{ {} }},", parts.join(", "));
                }
                s.push_str("]\n");
            }
            Pricing::Percentage {
                rate_percent,
                fixed_fee,
                free_events,
                free_amount,
                min_per_event,
                max_per_event,
            } => {
                // Plans refuse this model; written for completeness (it is a valid pricing).
                let _ = write!(
                    s,
                    "model = \"percentage\"\nrate = {}\nfixed_fee = {}\nfree_events = {free_events}\nfree_amount = {}\n",
                    dec(*rate_percent),
                    dec(*fixed_fee),
                    dec(*free_amount)
                );
                if let Some(m) = min_per_event {
                    let _ = writeln!(s, "min_per_event = {}", dec(*m));
                }
                if let Some(m) = max_per_event {
                    let _ = writeln!(s, "max_per_event = {}", dec(*m));
                }
            }
        }
    }
}

/// Writes a pricing as the TOML `toll price` reads (defaults omitted): the inverse of
/// `Pricing::from_str` for every valid pricing.
pub fn pricing_to_toml(p: &Pricing) -> String {
    let mut s = String::new();
    write::pricing(&mut s, p);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_quantities_pick_the_largest_exact_unit() {
        let a = |usage, quantity| Allowance {
            usage,
            quantity,
            services: None,
        };
        assert_eq!(
            a(UsageKind::Voice, 30_000).friendly_quantity(),
            (500, Unit::Minute)
        );
        assert_eq!(
            a(UsageKind::Voice, 90).friendly_quantity(),
            (90, Unit::Second)
        );
        assert_eq!(
            a(UsageKind::Data, 30 << 30).friendly_quantity(),
            (30, Unit::Gb)
        );
        assert_eq!(
            a(UsageKind::Data, 1536 << 20).friendly_quantity(),
            (1536, Unit::Mb)
        );
        assert_eq!(
            a(UsageKind::Data, 1001).friendly_quantity(),
            (1001, Unit::Byte)
        );
        assert_eq!(
            a(UsageKind::Sms, 100).friendly_quantity(),
            (100, Unit::Message)
        );
    }

    #[test]
    fn quoting_escapes_what_toml_needs() {
        assert_eq!(
            write::quote("a\"b\\c\nd\u{1}"),
            "\"a\\\"b\\\\c\\nd\\u0001\""
        );
        assert_eq!(write::quote("5G畅享套餐"), "\"5G畅享套餐\"");
    }

    #[test]
    fn scope_text_form_round_trips() {
        let s: ServiceScope = "wechat, douyin".parse().unwrap();
        assert_eq!(s.to_string(), "douyin,wechat");
        assert!(s.contains("wechat") && !s.contains("qq"));
        assert_eq!(s.to_string().parse::<ServiceScope>().unwrap(), s);
        assert!("".parse::<ServiceScope>().is_err());
        assert!("a,a".parse::<ServiceScope>().is_err());
    }
}
