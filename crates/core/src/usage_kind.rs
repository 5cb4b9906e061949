//! What a plan counts: voice, SMS, data or a custom usage type, each in one integer base unit.
//!
//! Allowances, buckets and overage quantities are integers of the kind's base unit so that both
//! storage engines add them exactly: voice in seconds, SMS in messages, data in bytes, and custom
//! kinds (API calls, GB-hours, …) in whole units of their own.

use std::fmt;
use std::str::FromStr;

use crate::usage::Tor;

/// Longest custom usage-type name.
pub const MAX_KIND_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UsageKind {
    /// Seconds of call time.
    Voice,
    /// Messages.
    Sms,
    /// Bytes.
    Data,
    /// A usage type of the operator's own, counted in whole units; a lower-case slug.
    Custom(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageKindError {
    #[error(
        "usage type {0:?} is not voice, sms, data or a slug of lower-case letters, digits and _ (1..=32)"
    )]
    Invalid(String),
}

impl UsageKind {
    pub fn as_str(&self) -> &str {
        match self {
            UsageKind::Voice => "voice",
            UsageKind::Sms => "sms",
            UsageKind::Data => "data",
            UsageKind::Custom(s) => s,
        }
    }

    /// The base unit quantities of this kind are counted in.
    pub fn unit(&self) -> &'static str {
        match self {
            UsageKind::Voice => "second",
            UsageKind::Sms => "message",
            UsageKind::Data => "byte",
            UsageKind::Custom(_) => "unit",
        }
    }
}

impl From<Tor> for UsageKind {
    fn from(t: Tor) -> Self {
        match t {
            Tor::Voice => UsageKind::Voice,
            Tor::Sms => UsageKind::Sms,
            Tor::Data => UsageKind::Data,
        }
    }
}

impl FromStr for UsageKind {
    type Err = UsageKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "voice" => UsageKind::Voice,
            "sms" => UsageKind::Sms,
            "data" => UsageKind::Data,
            _ if !s.is_empty()
                && s.len() <= MAX_KIND_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                UsageKind::Custom(s.to_string())
            }
            _ => return Err(UsageKindError::Invalid(s.to_string())),
        })
    }
}

impl fmt::Display for UsageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for UsageKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for UsageKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        UsageKind::from_str(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_and_custom_kinds() {
        assert_eq!("voice".parse::<UsageKind>().unwrap(), UsageKind::Voice);
        assert_eq!(
            "api_calls".parse::<UsageKind>().unwrap().as_str(),
            "api_calls"
        );
        assert!("API".parse::<UsageKind>().is_err());
        assert!("".parse::<UsageKind>().is_err());
        assert_eq!(UsageKind::from(Tor::Data).unit(), "byte");
    }
}
