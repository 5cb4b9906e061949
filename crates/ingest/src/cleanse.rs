//! Cleansing: the records a pipeline deliberately does not bill, each with its reason, so that a
//! run can count them instead of dropping them silently (seed 001: calls under 1 s are not
//! billed; neither are unanswered attempts or calls between a PBX's own extensions).

use std::fmt;

use toll_core::UsageKind;

use crate::cdr::{Cdr, Disposition};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The rules, as an operator configures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleansing {
    /// Voice records with less billable time than this (nanoseconds) are not billed.
    pub min_voice_ns: i64,
    /// Skip records whose disposition is not "answered" (on by default: an attempt carries no
    /// usage; operators who bill attempts turn it off and price them by connect fee).
    pub skip_unanswered: bool,
    /// Calls whose caller and callee are both all digits and at most this long are internal
    /// (extension to extension) and not billed. `None`: no such rule.
    pub internal_max_digits: Option<u8>,
}

impl Default for Cleansing {
    fn default() -> Cleansing {
        Cleansing {
            min_voice_ns: NANOS_PER_SECOND,
            skip_unanswered: true,
            internal_max_digits: None,
        }
    }
}

/// Why a record is not billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    Unanswered(Disposition),
    /// Billable voice time under the minimum.
    TooShort {
        usage_ns: i64,
        min_ns: i64,
    },
    /// An SMS, data or custom record with no usage.
    NoUsage,
    Internal,
}

impl Skip {
    /// A stable name for counters and reports.
    pub fn code(self) -> &'static str {
        match self {
            Skip::Unanswered(_) => "unanswered",
            Skip::TooShort { .. } => "too_short",
            Skip::NoUsage => "no_usage",
            Skip::Internal => "internal",
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::Unanswered(d) => write!(f, "not answered ({d})"),
            Skip::TooShort { usage_ns, min_ns } => write!(
                f,
                "{} of billable time, under the minimum of {}",
                seconds(*usage_ns),
                seconds(*min_ns)
            ),
            Skip::NoUsage => f.write_str("no usage"),
            Skip::Internal => f.write_str("internal call between extensions"),
        }
    }
}

/// Nanoseconds as seconds with up to nine decimals, trailing zeros trimmed (`0.5s`, `1s`).
fn seconds(ns: i64) -> String {
    let (whole, frac) = (ns / NANOS_PER_SECOND, (ns % NANOS_PER_SECOND).abs());
    if frac == 0 {
        return format!("{whole}s");
    }
    let sign = if ns < 0 && whole == 0 { "-" } else { "" };
    let frac = format!("{frac:09}");
    format!("{sign}{whole}.{}s", frac.trim_end_matches('0'))
}

impl Cleansing {
    /// `Ok` when the record is to be billed, else why not.
    pub fn check(&self, cdr: &Cdr) -> Result<(), Skip> {
        if self.skip_unanswered && cdr.disposition != Disposition::Answered {
            return Err(Skip::Unanswered(cdr.disposition));
        }
        if let Some(max) = self.internal_max_digits
            && is_extension(&cdr.caller, max)
            && is_extension(&cdr.callee, max)
        {
            return Err(Skip::Internal);
        }
        match cdr.kind {
            UsageKind::Voice if cdr.usage < self.min_voice_ns => Err(Skip::TooShort {
                usage_ns: cdr.usage,
                min_ns: self.min_voice_ns,
            }),
            UsageKind::Voice => Ok(()),
            _ if cdr.usage <= 0 => Err(Skip::NoUsage),
            _ => Ok(()),
        }
    }
}

fn is_extension(number: &str, max: u8) -> bool {
    !number.is_empty()
        && number.len() <= usize::from(max)
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use jiff::Timestamp;
    use jiff::tz::Offset;

    use super::*;

    fn cdr(kind: UsageKind, usage: i64, disposition: Disposition) -> Cdr {
        Cdr {
            source: "pbx".into(),
            record_id: "1".into(),
            caller: "13800138000".into(),
            callee: "01088886666".into(),
            start: Timestamp::from_second(1_794_276_000).unwrap(),
            offset: Offset::constant(8),
            answer: None,
            end: None,
            kind,
            usage,
            disposition,
            tenant: None,
            category: None,
            account: None,
            service: None,
            direction: None,
            call_id: None,
            extra: BTreeMap::new(),
            lossy_fields: Vec::new(),
            line: 1,
            raw: Vec::new(),
            merged_lines: Vec::new(),
        }
    }

    #[test]
    fn calls_under_a_second_are_skipped_and_a_second_is_billed() {
        let rules = Cleansing::default();
        let short = cdr(UsageKind::Voice, 999_999_999, Disposition::Answered);
        let err = rules.check(&short).unwrap_err();
        assert_eq!(
            err,
            Skip::TooShort {
                usage_ns: 999_999_999,
                min_ns: 1_000_000_000
            }
        );
        assert_eq!(
            err.to_string(),
            "0.999999999s of billable time, under the minimum of 1s"
        );
        assert_eq!(err.code(), "too_short");
        let one = cdr(UsageKind::Voice, 1_000_000_000, Disposition::Answered);
        assert_eq!(rules.check(&one), Ok(()));
        let zero = cdr(UsageKind::Voice, 0, Disposition::Answered);
        assert!(matches!(rules.check(&zero), Err(Skip::TooShort { .. })));
    }

    #[test]
    fn unanswered_attempts_are_skipped_unless_configured() {
        let busy = cdr(UsageKind::Voice, 0, Disposition::Busy);
        let rules = Cleansing::default();
        assert_eq!(rules.check(&busy), Err(Skip::Unanswered(Disposition::Busy)));
        assert_eq!(
            rules.check(&busy).unwrap_err().to_string(),
            "not answered (busy)"
        );
        let keep = Cleansing {
            skip_unanswered: false,
            min_voice_ns: 0,
            ..rules
        };
        assert_eq!(keep.check(&busy), Ok(()));
    }

    #[test]
    fn extension_to_extension_calls_are_internal_only_when_configured() {
        let mut c = cdr(UsageKind::Voice, 30_000_000_000, Disposition::Answered);
        c.caller = "1001".into();
        c.callee = "2002".into();
        assert_eq!(Cleansing::default().check(&c), Ok(()));
        let rules = Cleansing {
            internal_max_digits: Some(4),
            ..Cleansing::default()
        };
        assert_eq!(rules.check(&c), Err(Skip::Internal));
        c.callee = "13800138000".into();
        assert_eq!(rules.check(&c), Ok(()), "an outside number is not internal");
        c.callee = "*97".into();
        assert_eq!(rules.check(&c), Ok(()), "feature codes are not extensions");
    }

    #[test]
    fn sms_and_data_need_some_usage_but_no_minimum() {
        let rules = Cleansing::default();
        assert_eq!(
            rules.check(&cdr(UsageKind::Sms, 1, Disposition::Answered)),
            Ok(())
        );
        assert_eq!(
            rules.check(&cdr(UsageKind::Data, 0, Disposition::Answered)),
            Err(Skip::NoUsage)
        );
    }
}
