//! A rated event explained: the JSON `toll cost --json` prints and the API will return.

use crate::{CarrierOutcome, Event, MaxUsage, Rated, Tariff};
use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;
use toll_core::usage::{GoDuration, NANOS_PER_SECOND, Tor};

/// A usage in the form its type of record is written in: `1m30s` for voice, a count otherwise.
pub fn usage_text(usage: i64, tor: Tor) -> String {
    if tor.is_time() {
        GoDuration(usage).to_string()
    } else {
        usage.to_string()
    }
}

/// Like [`usage_text`], into a reused buffer.
pub fn write_usage(out: &mut String, usage: i64, tor: Tor) {
    use std::fmt::Write as _;
    let _ = if tor.is_time() {
        write!(out, "{}", GoDuration(usage))
    } else {
        write!(out, "{usage}")
    };
}

/// Seconds as an exact decimal (voice) or the unit count (SMS, data).
pub fn usage_number(usage: i64, tor: Tor) -> Decimal {
    if tor.is_time() {
        Decimal::from(usage) / Decimal::from(NANOS_PER_SECOND)
    } else {
        Decimal::from(usage)
    }
}

fn money(d: Decimal) -> String {
    d.normalize().to_string()
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PieceView {
    pub start: String,
    pub real_usage: String,
    pub rated_usage: String,
    pub plan: String,
    pub timing: String,
    pub destination: String,
    pub destination_rate: String,
    pub rate: String,
    pub rate_group: u16,
    pub cost: String,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatedView {
    pub cost: String,
    pub currency: Option<String>,
    pub connect_fee: String,
    pub usage: String,
    pub rated_usage: String,
    /// Voice only: the rated usage in seconds, an exact decimal number.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub rated_usage_seconds: Option<serde_json::Value>,
    pub rounding: String,
    pub capped_by_max_cost: bool,
    pub raised_to_min_cost: bool,
    pub destination_id: String,
    pub matched_prefix: String,
    pub number: String,
    pub plan: String,
    pub carrier: String,
    pub carrier_source: &'static str,
    pub region: Option<String>,
    pub number_kind: Option<&'static str>,
    pub pieces: Vec<PieceView>,
}

pub fn rated_view(t: &Tariff, ev: &Event<'_>, r: &Rated) -> RatedView {
    let number = t.matched_number(ev.destination).into_owned();
    let pieces = r
        .pieces
        .iter()
        .map(|p| {
            let start = Timestamp::from_nanosecond(ev.start.as_nanosecond() + i128::from(p.offset))
                .unwrap_or(ev.start)
                .to_zoned(jiff::tz::TimeZone::fixed(ev.offset));
            PieceView {
                start: start.timestamp().display_with_offset(ev.offset).to_string(),
                real_usage: usage_text(p.real, ev.tor),
                rated_usage: usage_text(p.rated, ev.tor),
                plan: t.plan_id(p.plan).to_string(),
                timing: t.timing_id(p.timing).to_string(),
                destination: t.destination_id(p.destination).to_string(),
                destination_rate: t.destination_rate_id(p.destination_rate).to_string(),
                rate: t.rate_id(p.rate).to_string(),
                rate_group: p.rate_row,
                cost: money(p.cost()),
            }
        })
        .collect();
    let seconds = usage_number(r.rated_usage, ev.tor);
    RatedView {
        cost: money(r.cost),
        currency: t.currency.map(|c| c.to_string()),
        connect_fee: money(r.connect_fee),
        usage: usage_text(r.usage, ev.tor),
        rated_usage: usage_text(r.rated_usage, ev.tor),
        rated_usage_seconds: ev.tor.is_time().then(|| {
            serde_json::Number::from_string_unchecked(seconds.normalize().to_string()).into()
        }),
        rounding: format!("{} {}", r.rounding.method, r.rounding.decimals),
        capped_by_max_cost: r.capped,
        raised_to_min_cost: r.floored,
        destination_id: t.destination_id(r.destination).to_string(),
        matched_prefix: r.matched_prefix(&number).to_string(),
        number,
        plan: t.plan_id(r.plan).to_string(),
        carrier: t.carrier_slug(ev.route_carrier, r).to_string(),
        carrier_source: match r.carrier {
            CarrierOutcome::Route(_) => "route",
            CarrierOutcome::Callee(_) => "number_range",
            CarrierOutcome::Unknown => "unknown",
        },
        region: t.region(r).map(str::to_string),
        number_kind: r.range.map(|i| t.ranges().range(i).kind.as_str()),
        pieces,
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MaxUsageView {
    pub max_usage: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub max_usage_seconds: Option<serde_json::Value>,
    pub max_usage_units: Option<i64>,
    pub cost: String,
    pub limited_by: &'static str,
}

pub fn max_usage_view(ev: &Event<'_>, m: &MaxUsage) -> MaxUsageView {
    MaxUsageView {
        max_usage: usage_text(m.usage, ev.tor),
        max_usage_seconds: ev.tor.is_time().then(|| {
            serde_json::Number::from_string_unchecked(
                usage_number(m.usage, ev.tor).normalize().to_string(),
            )
            .into()
        }),
        max_usage_units: (!ev.tor.is_time()).then_some(m.usage),
        cost: money(m.cost),
        limited_by: match m.limited_by {
            crate::Limit::Requested => "requested",
            crate::Limit::Balance => "balance",
            crate::Limit::MaxCost => "max_cost",
        },
    }
}
