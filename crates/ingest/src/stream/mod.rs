//! CDRs as a stream of messages: one record per message, as its JSON form
//! ([`CdrJson`]), on subjects `{prefix}.{tenant}.{partition}` (`toll.cdrs.acme.7`).
//!
//! The partition is a stable hash of the paying line (FNV-1a over its normalised number) modulo
//! the partition count, so every record of a line lands in one partition, and a partition is
//! consumed by one worker at a time, in order: a line's records are charged in the order they
//! were published. This module is the pure part (subjects, partitions, decoding); the NATS
//! JetStream client lives in [`nats`] behind the `nats` cargo feature.

#[cfg(feature = "nats")]
pub mod nats;

use crate::cdr::Cdr;
use crate::error::{ErrorKind, RecordError};
use crate::pipeline::rating::Payer;
use crate::pipeline::record::CdrJson;
use crate::pipeline::{Item, Origin};

/// Partitions per tenant by default.
pub const DEFAULT_PARTITIONS: u32 = 16;
/// The subject prefix by default: subjects are `toll.cdrs.{tenant}.{partition}`.
pub const DEFAULT_PREFIX: &str = "toll.cdrs";
/// Most partitions: the partition is one subject token and one lock each.
pub const MAX_PARTITIONS: u32 = 1024;

/// Why a stream name, tenant or prefix cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?}: {reason}")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A subject token (a tenant slug): not empty, no `.`, `*`, `>` or white space.
pub fn check_token(what: &'static str, value: &str) -> Result<(), NameError> {
    let bad = |reason| {
        Err(NameError {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return bad("empty");
    }
    if value
        .chars()
        .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace() || c.is_control())
    {
        return bad("a subject token holds no '.', '*', '>' or white space");
    }
    Ok(())
}

/// A subject prefix: tokens separated by `.`, each a valid token.
pub fn check_prefix(prefix: &str) -> Result<(), NameError> {
    prefix.split('.').try_for_each(|t| check_token("prefix", t))
}

/// Checks a partition count.
pub fn check_partitions(partitions: u32) -> Result<(), NameError> {
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(NameError {
            what: "partitions",
            value: partitions.to_string(),
            reason: "must be 1..=1024",
        });
    }
    Ok(())
}

/// FNV-1a, 64 bits: stable across processes, releases and platforms (unlike `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The partition of a paying line: its normalised number (so `+86 138…`, `0086138…` and
/// `138…` agree) hashed, modulo `partitions`. A line that does not normalise is hashed as
/// written.
pub fn partition_of(line: &str, partitions: u32) -> u32 {
    let key = toll_store::accounts::normalise_number(line).unwrap_or_else(|_| line.to_string());
    let p = fnv1a64(key.as_bytes()) % u64::from(partitions.max(1));
    u32::try_from(p).unwrap_or(0)
}

/// The line that pays for a record, as the pipeline's rating stage chooses it.
pub fn paying_line(cdr: &Cdr, payer: Payer) -> &str {
    match payer {
        Payer::Caller => &cdr.caller,
        Payer::Account => cdr.account.as_deref().unwrap_or(&cdr.caller),
    }
}

/// `{prefix}.{tenant}.{partition}`.
pub fn subject(prefix: &str, tenant: &str, partition: u32) -> String {
    format!("{prefix}.{tenant}.{partition}")
}

/// The subjects of all of a tenant's partitions: what its stream holds.
pub fn tenant_subjects(prefix: &str, tenant: &str) -> String {
    format!("{prefix}.{tenant}.*")
}

/// The origin of records that came by stream: the source of unreadable messages is
/// `nats:{stream}`, and the reader recorded with their suspense items says the raw bytes are
/// a [`CdrJson`] document (fix one with `toll suspense edit ID --record '{…}'`).
pub fn origin(stream: &str) -> Origin {
    Origin {
        reader: r#"{"format":"cdr-json","via":"nats"}"#.to_string(),
        source: format!("nats:{stream}"),
        import_id: None,
    }
}

/// A message's payload as a pipeline item: a record when it is a [`CdrJson`] document, else
/// a reader error carrying the bytes (it goes to the suspense queue; nothing is dropped).
/// `seq` (the message's stream sequence) stands in for a line number.
pub fn decode(payload: &[u8], seq: u64) -> Item {
    let fail = |field: Option<String>, kind: ErrorKind| RecordError {
        line: seq,
        field,
        kind,
        raw: payload.to_vec(),
    };
    let input = serde_json::from_slice::<CdrJson>(payload)
        .map_err(|e| fail(None, ErrorKind::Json(e.to_string())))
        .and_then(|j| {
            j.to_cdr(payload.to_vec()).map_err(|e| {
                fail(
                    Some(e.field.to_string()),
                    ErrorKind::Invalid {
                        value: String::new(),
                        reason: e.reason,
                    },
                )
            })
        });
    Item::new(input)
}

/// A record's message body.
pub fn encode(cdr: &Cdr) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&CdrJson::from_cdr(cdr))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn partitions_are_stable_and_follow_the_normalised_line() {
        // FNV-1a 64 test vectors: the hash never changes between releases.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let p = partition_of("13800138000", 16);
        assert!(p < 16);
        assert_eq!(partition_of("+86 138 0013 8000", 16), p);
        assert_eq!(partition_of("008613800138000", 16), p);
        assert_eq!(partition_of("anything", 1), 0);
        // Lines spread over the partitions.
        let used: std::collections::BTreeSet<u32> = (0..200)
            .map(|i| partition_of(&format!("138{i:08}"), 16))
            .collect();
        assert_eq!(used.len(), 16);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_token("tenant", "acme").is_ok());
        assert!(check_token("tenant", "a.b").is_err());
        assert!(check_token("tenant", "").is_err());
        assert!(check_prefix("toll.cdrs").is_ok());
        assert!(check_prefix("toll..cdrs").is_err());
        assert!(check_partitions(0).is_err());
        assert_eq!(subject("toll.cdrs", "acme", 7), "toll.cdrs.acme.7");
    }

    #[test]
    fn garbage_is_an_error_with_its_bytes() {
        let it = decode(b"not json at all", 42);
        let e = it.input.unwrap_err();
        assert_eq!(e.line, 42);
        assert_eq!(e.raw, b"not json at all");
        let it = decode(br#"{"source":"x"}"#, 1);
        assert!(it.input.is_err());
    }
}
