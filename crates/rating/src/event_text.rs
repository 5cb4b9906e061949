//! Building a rating event from text fields (CLI flags or CSV columns), with clear errors.

use crate::Event;
use jiff::Timestamp;
use jiff::tz::Offset;
use toll_core::civil::parse_rfc3339;
use toll_core::usage::{Tor, parse_duration, parse_voice_usage};

/// Why a text field could not become part of an event; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

fn err(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

/// Start instant and the offset it was written with.
pub fn start(text: &str) -> Result<(Timestamp, Offset), FieldError> {
    let p = parse_rfc3339(text).map_err(|e| err("start", e.to_string()))?;
    let ts = Timestamp::from_nanosecond(i128::from(p.epoch_ns))
        .map_err(|e| err("start", e.to_string()))?;
    let off = Offset::from_seconds(p.offset_seconds).map_err(|e| err("start", e.to_string()))?;
    Ok((ts, off))
}

/// Usage: for voice a duration (`73s`, `1m13s`) or bare seconds; for SMS/data a unit count.
pub fn usage(text: &str, tor: Tor) -> Result<i64, FieldError> {
    if tor.is_time() {
        parse_voice_usage(text)
            .map(|u| u.0)
            .map_err(|e| err("usage", e.to_string()))
    } else {
        match parse_duration(text) {
            Ok((n, toll_core::usage::DurationForm::BareNumber)) => Ok(n),
            Ok(_) => Err(err(
                "usage",
                format!("{:?}: {tor} usage is a whole number of units", text.trim()),
            )),
            Err(e) => Err(err("usage", e.to_string())),
        }
    }
}

/// The type of record; when none is given, the category decides (`sms`/`mms` → SMS,
/// `data` → data, anything else → voice), the convention `toll tariff check` also uses.
pub fn tor(text: &str, category: &str) -> Result<Tor, FieldError> {
    if text.trim().is_empty() {
        let c = category.to_ascii_lowercase();
        return Ok(if c.contains("sms") || c.contains("mms") {
            Tor::Sms
        } else if c.contains("data") {
            Tor::Data
        } else {
            Tor::Voice
        });
    }
    text.parse::<Tor>().map_err(|e| err("tor", e))
}

/// Text fields of one event.
#[derive(Debug, Clone, Copy)]
pub struct EventText<'a> {
    pub tenant: &'a str,
    pub category: &'a str,
    pub subject: &'a str,
    pub destination: &'a str,
    pub start: &'a str,
    pub usage: &'a str,
    pub tor: &'a str,
    pub route_carrier: Option<&'a str>,
}

impl<'a> EventText<'a> {
    pub fn parse(&self) -> Result<Event<'a>, FieldError> {
        let required = |field: &'static str, v: &str| {
            if v.trim().is_empty() {
                Err(err(field, "is empty"))
            } else {
                Ok(())
            }
        };
        required("tenant", self.tenant)?;
        required("category", self.category)?;
        required("subject", self.subject)?;
        required("destination", self.destination)?;
        let tor = tor(self.tor, self.category)?;
        let (start, offset) = start(self.start)?;
        let usage = usage(self.usage, tor)?;
        Ok(Event {
            tenant: self.tenant.trim(),
            category: self.category.trim(),
            subject: self.subject.trim(),
            destination: self.destination.trim(),
            start,
            offset,
            usage,
            tor,
            route_carrier: self.route_carrier.map(str::trim).filter(|s| !s.is_empty()),
        })
    }
}
