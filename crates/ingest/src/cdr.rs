//! The normalised CDR every reader produces.
//!
//! One shape for every switch so that the pipeline (dedup, suspense, rating) is written once.
//! Usage follows the rating engine's convention (`toll_rating::Event::usage`): nanoseconds for
//! voice, whole messages for SMS, bytes for data, whole units for custom kinds, so a `Cdr` maps
//! onto an `Event` without conversion or rounding.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::Offset;
use toll_core::{Tor, UsageKind};

/// How a call (or message, or session) ended, as far as billing cares.
///
/// Switch-specific codes (Asterisk's `disposition`, FreeSWITCH's Q.850 `hangup_cause`) are mapped
/// onto these; the original text is kept in [`Cdr::extra`] so nothing is lost by the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Disposition {
    /// The callee answered; the usage is billable.
    Answered,
    /// It rang but nobody answered, or the caller gave up.
    NoAnswer,
    /// The callee was busy.
    Busy,
    /// The network had no capacity (Asterisk `CONGESTION`, Q.850 34/42).
    Congestion,
    /// Any other failure (rejected, unallocated number, timeouts).
    Failed,
    /// The source said something this reader cannot classify (Asterisk `UNKNOWN`).
    Unknown,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::NoAnswer => "no_answer",
            Disposition::Busy => "busy",
            Disposition::Congestion => "congestion",
            Disposition::Failed => "failed",
            Disposition::Unknown => "unknown",
        }
    }

    /// Reads the common spellings: Asterisk's (`ANSWERED`, `NO ANSWER`, `BUSY`, `FAILED`,
    /// `CONGESTION`, `UNKNOWN`), Toll's own (`answered`, `no_answer`, …) and a few synonyms.
    /// Case and the separator between words (space, `_`, `-`) do not matter.
    pub fn parse(text: &str) -> Option<Disposition> {
        let norm: String = text
            .trim()
            .chars()
            .map(|c| match c {
                ' ' | '-' => '_',
                c => c.to_ascii_lowercase(),
            })
            .collect();
        Some(match norm.as_str() {
            "answered" | "answer" | "success" | "ok" => Disposition::Answered,
            "no_answer" | "noanswer" | "cancel" | "cancelled" | "canceled" => Disposition::NoAnswer,
            "busy" => Disposition::Busy,
            "congestion" | "chanunavail" => Disposition::Congestion,
            "failed" | "failure" | "fail" => Disposition::Failed,
            "unknown" => Disposition::Unknown,
            _ => return None,
        })
    }

    /// Maps a Q.850 cause name (FreeSWITCH `hangup_cause`) for a call that was **not** answered.
    /// An answered call is `Answered` whatever its cause: NORMAL_CLEARING, or a drop mid-call, both
    /// end a call that was connected and is billed.
    pub fn from_q850_unanswered(cause: &str) -> Disposition {
        match cause.trim() {
            "USER_BUSY" => Disposition::Busy,
            "NO_USER_RESPONSE" | "NO_ANSWER" | "ORIGINATOR_CANCEL" | "NORMAL_CLEARING"
            | "ALLOTTED_TIMEOUT" | "LOSE_RACE" | "PICKED_OFF" => Disposition::NoAnswer,
            "NORMAL_CIRCUIT_CONGESTION" | "SWITCH_CONGESTION" => Disposition::Congestion,
            "" => Disposition::Unknown,
            _ => Disposition::Failed,
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way the call went, seen from the switch that wrote the CDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }

    /// `inbound`/`in`/`*in`/`incoming` or `outbound`/`out`/`*out`/`outgoing`, any case.
    pub fn parse(text: &str) -> Option<Direction> {
        match text
            .trim()
            .trim_start_matches('*')
            .to_ascii_lowercase()
            .as_str()
        {
            "inbound" | "in" | "incoming" => Some(Direction::Inbound),
            "outbound" | "out" | "outgoing" => Some(Direction::Outbound),
            _ => None,
        }
    }
}

/// A normalised CDR: one billable (or explicitly non-billable) usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cdr {
    /// The feed the record came from (e.g. `pbx-bj-1`), given to the reader by its caller.
    /// Together with [`Cdr::record_id`] it is the dedup key.
    pub source: Arc<str>,
    /// The source's own id of the record, unique within the source (see each preset for how it
    /// is formed). A re-sent file yields the same ids, so duplicates can be dropped.
    pub record_id: String,
    /// Party A: the caller number or the rating subject.
    pub caller: String,
    /// Party B as dialled, not normalised: number normalisation belongs to rating, and the raw
    /// form is what a dispute is argued about.
    pub callee: String,
    /// When the call was set up (or the message sent / session opened), as an absolute instant.
    pub start: Timestamp,
    /// The UTC offset the source's clock had at `start`: the clock CGRateS-style time bands use
    /// (`toll_rating::Event::offset`). UTC for sources that write epochs or `Z`.
    pub offset: Offset,
    /// When the callee answered, if it did.
    pub answer: Option<Timestamp>,
    /// When the call ended, if the source says.
    pub end: Option<Timestamp>,
    pub kind: UsageKind,
    /// Billable usage: nanoseconds for voice (exact to what the source wrote: seconds for
    /// Asterisk, microseconds for FreeSWITCH JSON), messages for SMS, bytes for data, units for
    /// custom kinds.
    pub usage: i64,
    pub disposition: Disposition,
    pub tenant: Option<String>,
    pub category: Option<String>,
    pub account: Option<String>,
    pub service: Option<String>,
    pub direction: Option<Direction>,
    /// Ties the records of one call together (Asterisk `linkedid`/`uniqueid`, FreeSWITCH
    /// `call_uuid`).
    pub call_id: Option<String>,
    /// Every other field the source carried that a later stage may want, by name.
    pub extra: BTreeMap<String, String>,
    /// Fields whose bytes were not UTF-8 and were decoded lossily (invalid bytes became U+FFFD).
    /// Only descriptive fields are decoded this way; identity, time and usage fields that are not
    /// UTF-8 make the record an error instead.
    pub lossy_fields: Vec<String>,
    /// 1-based line of the record's first byte (delimited files) or 1-based index of the document
    /// (JSON streams).
    pub line: u64,
    /// The record's bytes exactly as read, without the line terminator.
    pub raw: Vec<u8>,
    /// Lines of other records folded into this one (Asterisk: the unanswered legs of a call that
    /// has an answered leg). They are accounted for, not billed separately.
    pub merged_lines: Vec<u64>,
}

impl Cdr {
    /// The type of record rating uses, or `None` for custom kinds (priced by usage pricing, not
    /// by the tariff engine).
    pub fn tor(&self) -> Option<Tor> {
        match self.kind {
            UsageKind::Voice => Some(Tor::Voice),
            UsageKind::Sms => Some(Tor::Sms),
            UsageKind::Data => Some(Tor::Data),
            UsageKind::Custom(_) => None,
        }
    }

    /// The dedup key: the same record re-sent by the same source has the same key.
    pub fn dedup_key(&self) -> (&str, &str) {
        (&self.source, &self.record_id)
    }

    /// Whether the record carries billable usage.
    pub fn is_billable(&self) -> bool {
        self.disposition == Disposition::Answered && self.usage > 0
    }
}

/// Counts of what a reader has done so far, so that a run can be reconciled line by line:
/// `records == emitted + filtered + errors + merged`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records read from the input (blank lines and headers excluded).
    pub records: u64,
    /// Records returned as `Ok(Cdr)`.
    pub emitted: u64,
    /// Records a mapping's filter excluded on purpose.
    pub filtered: u64,
    /// Records returned as errors.
    pub errors: u64,
    /// Records folded into another record (listed in its [`Cdr::merged_lines`]).
    pub merged: u64,
}
