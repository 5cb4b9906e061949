//! The rating stage: a cleansed [`Cdr`] becomes a charging event and the record to store, or a
//! classified failure for the suspense queue.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use jiff::Timestamp;
use rust_decimal::Decimal;
use toll_catalog::plan::TariffRef;
use toll_core::usage::{NANOS_PER_SECOND, Tor};
use toll_core::{Micros, UsageKind};
use toll_rating::{Event, RateError, Tariff};
use toll_store::cdrs::CdrRecord;
use toll_store::charging::{TailRater, UsageEvent};

use crate::cdr::Cdr;

/// Bytes in the megabyte a default data rate is quoted per (decimal, as operators bill).
const BYTES_PER_MB: i64 = 1_000_000;

/// Prices for records no tariff rule rates (seed 001: "rate missing rules at a default rate and
/// tell the operator"): voice per started minute, SMS per message, data per started MB. A kind
/// without a price is not default-rated and goes to the suspense queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultRate {
    pub voice_per_minute: Option<Decimal>,
    pub sms_each: Option<Decimal>,
    pub data_per_mb: Option<Decimal>,
}

impl DefaultRate {
    /// The default price of `usage` (rating units) of `tor`, with the units it bills (rated
    /// usage: whole minutes in nanoseconds, messages, whole MB in bytes).
    pub fn price(&self, tor: Tor, usage: i64) -> Option<(Decimal, i64)> {
        let started = |unit: i64| usage.div_euclid(unit) + i64::from(usage.rem_euclid(unit) != 0);
        match tor {
            Tor::Voice => self.voice_per_minute.map(|p| {
                let minutes = started(60 * NANOS_PER_SECOND);
                (p * Decimal::from(minutes), minutes * 60 * NANOS_PER_SECOND)
            }),
            Tor::Sms => self.sms_each.map(|p| (p * Decimal::from(usage), usage)),
            Tor::Data => self.data_per_mb.map(|p| {
                let mb = started(BYTES_PER_MB);
                (p * Decimal::from(mb), mb * BYTES_PER_MB)
            }),
        }
    }
}

/// `voice=0.30,sms=0.10,data=0.50`: per minute, per message, per MB.
impl FromStr for DefaultRate {
    type Err = String;

    fn from_str(s: &str) -> Result<DefaultRate, String> {
        let mut out = DefaultRate::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (kind, price) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected kind=price, e.g. voice=0.30"))?;
            let price: Decimal = price
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: {price:?} is not a decimal"))?;
            if price.is_sign_negative() {
                return Err(format!("{part:?}: a price is not negative"));
            }
            let slot = match kind.trim() {
                "voice" => &mut out.voice_per_minute,
                "sms" => &mut out.sms_each,
                "data" => &mut out.data_per_mb,
                other => return Err(format!("{other:?}: expected voice, sms or data")),
            };
            *slot = Some(price);
        }
        Ok(out)
    }
}

/// Which party of a record is the subscriber line that pays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Payer {
    /// The caller (party A): the usual case for outgoing calls.
    #[default]
    Caller,
    /// The record's account field (CGRateS `Account`, Asterisk `accountcode`).
    Account,
}

/// Why a record could not be rated: a stable class and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateFailure {
    pub class: &'static str,
    pub reason: String,
}

impl fmt::Display for RateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.reason)
    }
}

/// A rating failure that a missing rule explains (and a default rate may cover).
fn missing_rule(e: &RateError) -> bool {
    matches!(
        e,
        RateError::NoProfile { .. }
            | RateError::UnauthorizedDestination { .. }
            | RateError::NoRateInterval { .. }
            | RateError::CarrierUnknown { .. }
    )
}

/// The suspense class of a rating error.
pub fn class_of(e: &RateError) -> &'static str {
    match e {
        RateError::NoProfile { .. } => "no_tariff",
        RateError::UnauthorizedDestination { .. } => "unauthorized_destination",
        RateError::NoRateInterval { .. } => "no_rate",
        RateError::CarrierUnknown { .. } => "carrier_unknown",
        RateError::InvalidNumber(_) => "bad_number",
        RateError::NegativeUsage | RateError::UsageTooLong => "bad_usage",
        RateError::TooManyPieces | RateError::Overflow => "rating_error",
    }
}

/// The [`Cdr::extra`] key that marks a record the server's sweeper made for a call that never
/// ended (charged at the maximum duration): its stored CDR says `swept`.
pub const SWEPT_EXTRA: &str = "toll_swept";

/// What the rating stage needs besides the tariff.
#[derive(Debug, Clone)]
pub struct RatingContext {
    /// The tenant name rating profiles use (CGRateS tenant), unless the record names one.
    pub tariff_tenant: String,
    /// The category of records that name none (CGRateS's default is `call`).
    pub category: String,
    pub default_rate: DefaultRate,
    pub payer: Payer,
}

/// Rates `cdr` (when a tariff is loaded and its kind is voice, SMS or data) and builds its
/// charging event and stored record. The event's key is [`super::event_key`]: the dedup key.
pub fn rate_cdr(
    tariff: Option<&Tariff>,
    ctx: &RatingContext,
    cdr: &Cdr,
    import_id: Option<i64>,
) -> Result<(UsageEvent, CdrRecord), RateFailure> {
    let fail = |class: &'static str, reason: String| RateFailure { class, reason };
    let number = match ctx.payer {
        Payer::Caller => cdr.caller.as_str(),
        Payer::Account => cdr
            .account
            .as_deref()
            .ok_or_else(|| fail("bad_record", "the record names no account".into()))?,
    };
    if number.trim().is_empty() {
        return Err(fail("bad_record", "the paying party is empty".into()));
    }
    // Usage is billed from the answer: CGRateS rates from AnswerTime, and the setup time of an
    // answered call includes ringing.
    let usage_start = cdr.answer.unwrap_or(cdr.start);
    let category = cdr.category.as_deref().unwrap_or(&ctx.category);
    let subject = cdr.account.as_deref().unwrap_or(&cdr.caller);
    let mut record = CdrRecord {
        source: cdr.source.to_string(),
        record_id: cdr.record_id.clone(),
        import_id,
        caller: cdr.caller.clone(),
        callee: cdr.callee.clone(),
        destination: None,
        start_ms: cdr.start.as_millisecond(),
        utc_offset_s: cdr.offset.seconds(),
        answer_ms: cdr.answer.map(Timestamp::as_millisecond),
        end_ms: cdr.end.map(Timestamp::as_millisecond),
        quantity: cdr.usage,
        category: category.to_string(),
        subject: subject.to_string(),
        call_id: cdr.call_id.clone(),
        swept: cdr.extra.contains_key(SWEPT_EXTRA),
        ..CdrRecord::default()
    };
    let mut rated_cost = None;
    let default_price =
        |tor: Tor, record: &mut CdrRecord| -> Result<Option<Decimal>, RateFailure> {
            let Some((price, units)) = ctx.default_rate.price(tor, cdr.usage) else {
                return Ok(None);
            };
            let price = price.round_dp(6);
            record.cost =
                Some(Micros::from_decimal(price).map_err(|e| fail("rating_error", e.to_string()))?);
            record.rated_usage = Some(units);
            record.default_rated = true;
            Ok(Some(price))
        };
    // Without a tariff every rule is missing: the default rate, if there is one, prices it.
    if let (None, Some(tor)) = (tariff, cdr.tor()) {
        rated_cost = default_price(tor, &mut record)?;
    }
    if let (Some(tariff), Some(tor)) = (tariff, cdr.tor()) {
        let ev = Event {
            tenant: cdr.tenant.as_deref().unwrap_or(&ctx.tariff_tenant),
            category,
            subject,
            destination: &cdr.callee,
            start: usage_start,
            offset: cdr.offset,
            usage: cdr.usage,
            tor,
            route_carrier: None,
        };
        record.destination = Some(tariff.matched_number(&cdr.callee).into_owned());
        match toll_rating::rate(tariff, &ev) {
            Ok(r) => {
                let cost = Micros::from_decimal(r.cost)
                    .map_err(|e| fail("rating_error", e.to_string()))?;
                record.cost = Some(cost);
                record.rated_usage = Some(r.rated_usage);
                record.matched_prefix = record
                    .destination
                    .as_deref()
                    .map(|d| r.matched_prefix(d).to_string());
                record.destination_id = Some(tariff.destination_id(r.destination).to_string());
                record.carrier = Some(tariff.carrier_slug(None, &r).to_string());
                record.region = tariff.region(&r).map(str::to_string);
                rated_cost = Some(r.cost);
            }
            Err(e) if missing_rule(&e) => match default_price(tor, &mut record)? {
                Some(price) => rated_cost = Some(price),
                None => return Err(fail(class_of(&e), e.to_string())),
            },
            Err(e) => return Err(fail(class_of(&e), e.to_string())),
        }
    }
    let quantity = match cdr.kind {
        // Whole seconds, a started second counting: the unit allowances are kept in.
        UsageKind::Voice => {
            cdr.usage / NANOS_PER_SECOND + i64::from(cdr.usage % NANOS_PER_SECOND != 0)
        }
        _ => cdr.usage,
    };
    let event = UsageEvent {
        key: super::event_key(&cdr.source, &cdr.record_id),
        number: number.to_string(),
        usage: cdr.kind.clone(),
        service: cdr.service.clone(),
        at_ms: usage_start.as_millisecond(),
        quantity,
        destination: Some(cdr.callee.clone()),
        rated_cost,
    };
    Ok((event, record))
}

/// Rates call tails with a loaded tariff and the plan's rating profile (the part of a call the
/// allowances did not cover).
#[derive(Debug)]
pub struct TariffRater {
    pub tariff: Arc<Tariff>,
    /// The tenant name the tariff's rating profiles use.
    pub tenant: String,
}

impl TailRater for TariffRater {
    fn rate_tail(
        &self,
        event: &UsageEvent,
        tariff: &TariffRef,
        start_ms: i64,
        quantity: i64,
    ) -> Result<Decimal, String> {
        let ev = self.tail_event(event, tariff, start_ms, quantity)?;
        toll_rating::rate(&self.tariff, &ev)
            .map(|r| r.cost)
            .map_err(|e| e.to_string())
    }

    fn max_tail(
        &self,
        event: &UsageEvent,
        tariff: &TariffRef,
        start_ms: i64,
        quantity: i64,
        available: Decimal,
    ) -> Result<i64, String> {
        let ev = self.tail_event(event, tariff, start_ms, quantity)?;
        let m = toll_rating::max_usage(&self.tariff, &ev, available).map_err(|e| e.to_string())?;
        // Whole base units: a started second is not allowed unless it is paid for.
        Ok(if ev.tor.is_time() {
            m.usage / NANOS_PER_SECOND
        } else {
            m.usage
        })
    }
}

impl TariffRater {
    /// The rating event for `quantity` base units of `event` from `start_ms`, priced with the
    /// plan's rating profile.
    fn tail_event<'e>(
        &'e self,
        event: &'e UsageEvent,
        tariff: &'e TariffRef,
        start_ms: i64,
        quantity: i64,
    ) -> Result<Event<'e>, String> {
        let tor = match event.usage {
            UsageKind::Voice => Tor::Voice,
            UsageKind::Sms => Tor::Sms,
            UsageKind::Data => Tor::Data,
            UsageKind::Custom(_) => return Err("a tariff rates voice, SMS and data only".into()),
        };
        let destination = event
            .destination
            .as_deref()
            .ok_or("the event has no destination to rate its tail with")?;
        let start = Timestamp::from_millisecond(start_ms).map_err(|e| e.to_string())?;
        let usage = if tor.is_time() {
            quantity
                .checked_mul(NANOS_PER_SECOND)
                .ok_or("usage too long")?
        } else {
            quantity
        };
        Ok(Event {
            tenant: &self.tenant,
            category: &tariff.category,
            subject: &tariff.subject,
            destination,
            start,
            offset: jiff::tz::Offset::UTC,
            usage,
            tor,
            route_carrier: None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn default_rate_bills_started_units() {
        let d: DefaultRate = "voice=0.30, sms=0.1,data=0.5".parse().unwrap();
        // 61 s: two started minutes.
        assert_eq!(
            d.price(Tor::Voice, 61 * NANOS_PER_SECOND),
            Some((Decimal::new(60, 2), 120 * NANOS_PER_SECOND))
        );
        assert_eq!(
            d.price(Tor::Voice, 60 * NANOS_PER_SECOND),
            Some((Decimal::new(30, 2), 60 * NANOS_PER_SECOND))
        );
        assert_eq!(d.price(Tor::Sms, 3), Some((Decimal::new(3, 1), 3)));
        assert_eq!(
            d.price(Tor::Data, 1_000_001),
            Some((Decimal::new(10, 1), 2_000_000))
        );
        let voice_only: DefaultRate = "voice=0.30".parse().unwrap();
        assert_eq!(voice_only.price(Tor::Sms, 1), None);
        assert!("voice=-1".parse::<DefaultRate>().is_err());
        assert!("fax=1".parse::<DefaultRate>().is_err());
        assert!("voice".parse::<DefaultRate>().is_err());
    }
}
