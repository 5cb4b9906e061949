//! Ledger idempotency keys, namespaced by what posts them.
//!
//! Every ledger transaction's key is unique per tenant. Keys come from different places — a
//! usage event's id, a payment id from a payment channel, the store's own fees and plan
//! changes, transactions posted through the API — and any two of those could spell the same
//! text. A short prefix per source keeps them apart, so a CDR whose id happens to equal a
//! payment id is still charged (and a retried payment still counts once).

use toll_charging::ledger::{IdempotencyKey, MAX_KEY_LEN};

use crate::StoreError;

/// Longest key a caller may give: room is left for the prefix.
pub const MAX_CALLER_KEY: usize = MAX_KEY_LEN - 4;

/// Where a ledger transaction comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// A charged usage event (`use:` + the event key).
    Usage,
    /// A top-up (`pay:` + the payment's key).
    TopUp,
    /// A transaction posted through [`crate::Store::post`] (`tx:` + the caller's key).
    Posted,
    /// A subscription fee (`fee:`), keyed by the store.
    Fee,
    /// A plan change's proration (`chg:`), keyed by the store.
    Change,
    /// A re-rated CDR's adjustment (`rr:` + its event key and re-rating count).
    Rerate,
    /// What finalizing an invoice or credit note posts (tax, rounding), keyed by the store.
    Invoice,
    /// A recorded payment (`pmt:` + its idempotency key): apart from top-ups, whose keys
    /// callers chose before payments existed.
    Payment,
}

impl KeySource {
    fn prefix(self) -> &'static str {
        match self {
            KeySource::Usage => "use:",
            KeySource::TopUp => "pay:",
            KeySource::Posted => "tx:",
            KeySource::Fee => "fee:",
            KeySource::Change => "chg:",
            KeySource::Rerate => "rr:",
            KeySource::Invoice => "inv:",
            KeySource::Payment => "pmt:",
        }
    }
}

/// The ledger key for `key` from `source`.
pub(crate) fn ledger_key(source: KeySource, key: &str) -> Result<IdempotencyKey, StoreError> {
    if key.is_empty() || key.len() > MAX_CALLER_KEY {
        return Err(StoreError::invalid(
            "key",
            format!("must be 1..={MAX_CALLER_KEY} characters"),
        ));
    }
    IdempotencyKey::new(format!("{}{key}", source.prefix()))
        .map_err(|e| StoreError::invalid("key", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_never_collide_and_keys_are_bounded() {
        let a = ledger_key(KeySource::Usage, "k-1").unwrap();
        let b = ledger_key(KeySource::TopUp, "k-1").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str(), "use:k-1");
        assert!(ledger_key(KeySource::Posted, &"x".repeat(MAX_CALLER_KEY)).is_ok());
        assert!(ledger_key(KeySource::Posted, &"x".repeat(MAX_CALLER_KEY + 1)).is_err());
        assert!(ledger_key(KeySource::Posted, "with space").is_err());
    }
}
