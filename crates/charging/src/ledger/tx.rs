//! Transaction requests: what a caller asks the ledger to post.

use std::fmt;
use std::str::FromStr;

use smallvec::SmallVec;
use toll_core::Micros;

use super::{LedgerError, MAX_KEY_LEN, MAX_LEG_AMOUNT, MAX_LEGS, MAX_MEMO_CHARS};

/// A caller-chosen key that makes posting idempotent: the same key twice is recorded once.
///
/// 1..=128 printable ASCII characters without spaces (`!`..=`~`). ASCII keeps the key's byte
/// length equal to its character length (so the limit means the same in both databases and in
/// the hash encoding) and free of collation surprises; keys are built from ids anyway
/// (`cdr:…`, `topup:…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn new(key: impl Into<String>) -> Result<Self, LedgerError> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= MAX_KEY_LEN
            && key.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(IdempotencyKey(key))
        } else {
            Err(LedgerError::InvalidKey(key))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IdempotencyKey {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdempotencyKey::new(s)
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a transaction is, for reports and for the hash chain (see [`TxKind::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxKind {
    /// Usage or a recurring fee charged to a customer.
    Charge,
    /// Money put into a wallet (prepaid) through a payment channel or cash.
    TopUp,
    /// Money given back to a customer.
    Refund,
    /// A manual correction by an operator.
    Adjustment,
    /// A plan change mid-period: the unused part of the old fee back, the new fee charged.
    Proration,
    /// A postpaid customer settling a receivable.
    Payment,
    /// Open platform: the platform's share of a provider's sale.
    Commission,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "transaction kind {0:?} is not charge, top_up, refund, adjustment, proration, payment or commission"
)]
pub struct UnknownTxKind(pub String);

impl TxKind {
    pub const ALL: [TxKind; 7] = [
        TxKind::Charge,
        TxKind::TopUp,
        TxKind::Refund,
        TxKind::Adjustment,
        TxKind::Proration,
        TxKind::Payment,
        TxKind::Commission,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TxKind::Charge => "charge",
            TxKind::TopUp => "top_up",
            TxKind::Refund => "refund",
            TxKind::Adjustment => "adjustment",
            TxKind::Proration => "proration",
            TxKind::Payment => "payment",
            TxKind::Commission => "commission",
        }
    }

    /// The byte the hash chain encodes the kind as. Stable forever: a new kind gets a new code,
    /// an existing code never changes meaning (old chains must still verify).
    pub fn code(self) -> u8 {
        match self {
            TxKind::Charge => 1,
            TxKind::TopUp => 2,
            TxKind::Refund => 3,
            TxKind::Adjustment => 4,
            TxKind::Proration => 5,
            TxKind::Payment => 6,
            TxKind::Commission => 7,
        }
    }

    pub fn from_code(code: u8) -> Option<TxKind> {
        TxKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl FromStr for TxKind {
    type Err = UnknownTxKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TxKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownTxKind(s.to_string()))
    }
}

impl fmt::Display for TxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One transfer: debit `debit`, credit `credit`, both by `amount`. Balanced by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Leg {
    /// Account id debited.
    pub debit: i64,
    /// Account id credited.
    pub credit: i64,
    /// Positive, at most [`MAX_LEG_AMOUNT`].
    pub amount: Micros,
}

impl Leg {
    pub fn new(debit: i64, credit: i64, amount: Micros) -> Leg {
        Leg {
            debit,
            credit,
            amount,
        }
    }
}

/// A transaction to post: validated on construction, so a `TxRequest` is always well formed
/// (1..=16 legs, positive bounded amounts, distinct accounts per leg, bounded memo). Whether its
/// accounts exist, share a currency and stay above their floors is decided by [`super::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxRequest {
    key: IdempotencyKey,
    kind: TxKind,
    at_ms: i64,
    memo: String,
    legs: SmallVec<[Leg; 2]>,
}

impl TxRequest {
    pub fn new(
        key: IdempotencyKey,
        kind: TxKind,
        at_ms: i64,
        memo: impl Into<String>,
        legs: impl IntoIterator<Item = Leg>,
    ) -> Result<TxRequest, LedgerError> {
        let memo = memo.into();
        let chars = memo.chars().count();
        if chars > MAX_MEMO_CHARS {
            return Err(LedgerError::MemoTooLong { chars });
        }
        // Memos end up in reports and terminals; control characters there are a nuisance at
        // best and a log-injection vector at worst.
        if memo.chars().any(char::is_control) {
            return Err(LedgerError::MemoControlChar);
        }
        let mut collected: SmallVec<[Leg; 2]> = SmallVec::new();
        for leg in legs {
            if collected.len() == MAX_LEGS {
                return Err(LedgerError::TooManyLegs {
                    count: MAX_LEGS + 1,
                });
            }
            collected.push(leg);
        }
        if collected.is_empty() {
            return Err(LedgerError::NoLegs);
        }
        for (i, leg) in collected.iter().enumerate() {
            if leg.amount.0 <= 0 {
                return Err(LedgerError::NonPositiveAmount {
                    leg: i,
                    amount: leg.amount,
                });
            }
            if leg.amount > MAX_LEG_AMOUNT {
                return Err(LedgerError::AmountTooLarge {
                    leg: i,
                    amount: leg.amount,
                });
            }
            if leg.debit == leg.credit {
                return Err(LedgerError::SameAccount {
                    leg: i,
                    account: leg.debit,
                });
            }
        }
        Ok(TxRequest {
            key,
            kind,
            at_ms,
            memo,
            legs: collected,
        })
    }

    pub fn key(&self) -> &IdempotencyKey {
        &self.key
    }

    pub fn kind(&self) -> TxKind {
        self.kind
    }

    pub fn at_ms(&self) -> i64 {
        self.at_ms
    }

    pub fn memo(&self) -> &str {
        &self.memo
    }

    /// 1..=16 legs, in the order they are numbered in the chain.
    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    /// Whether stored `entries` (all entries with this key, in `seq` order) record this same
    /// request: same key, kind and legs in the same order. `at_ms` and `memo` are not compared
    /// (see the module docs). The store calls this when the key is already taken, to choose
    /// between `Duplicate` and [`LedgerError::KeyReused`].
    pub fn same_as(&self, entries: &[super::Entry]) -> bool {
        entries.len() == self.legs.len()
            && entries
                .iter()
                .zip(self.legs.iter())
                .enumerate()
                .all(|(i, (e, leg))| {
                    usize::from(e.leg_index) == i
                        && e.key == self.key
                        && e.kind == self.kind
                        && e.debit == leg.debit
                        && e.credit == leg.credit
                        && e.amount == leg.amount
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> IdempotencyKey {
        IdempotencyKey::new(s).unwrap()
    }

    #[test]
    fn keys_are_bounded_printable_ascii() {
        assert!(IdempotencyKey::new("cdr:2026-01-01:42").is_ok());
        assert!(IdempotencyKey::new("x".repeat(128)).is_ok());
        assert!(IdempotencyKey::new("x".repeat(129)).is_err());
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new("a b").is_err());
        assert!(IdempotencyKey::new("a\u{7f}").is_err());
        assert!(IdempotencyKey::new("话费").is_err());
    }

    #[test]
    fn kinds_round_trip_names_and_codes() {
        for k in TxKind::ALL {
            assert_eq!(k.as_str().parse::<TxKind>().unwrap(), k);
            assert_eq!(TxKind::from_code(k.code()), Some(k));
        }
        assert!("topup".parse::<TxKind>().is_err());
        assert_eq!(TxKind::from_code(0), None);
    }

    #[test]
    fn requests_are_validated_on_construction() {
        let ok = |legs: Vec<Leg>| TxRequest::new(key("k"), TxKind::Charge, 0, "", legs);
        assert!(ok(vec![Leg::new(1, 2, Micros(1))]).is_ok());
        assert_eq!(ok(vec![]), Err(LedgerError::NoLegs));
        assert_eq!(
            ok(vec![Leg::new(1, 2, Micros(1)); 17]),
            Err(LedgerError::TooManyLegs { count: 17 })
        );
        assert!(ok(vec![Leg::new(1, 2, Micros(1)); 16]).is_ok());
        assert_eq!(
            ok(vec![Leg::new(1, 2, Micros(1)), Leg::new(1, 2, Micros(0))]),
            Err(LedgerError::NonPositiveAmount {
                leg: 1,
                amount: Micros(0)
            })
        );
        assert!(matches!(
            ok(vec![Leg::new(1, 2, Micros(-5))]),
            Err(LedgerError::NonPositiveAmount { .. })
        ));
        assert!(matches!(
            ok(vec![Leg::new(1, 2, Micros(MAX_LEG_AMOUNT.0 + 1))]),
            Err(LedgerError::AmountTooLarge { .. })
        ));
        assert!(ok(vec![Leg::new(1, 2, MAX_LEG_AMOUNT)]).is_ok());
        assert_eq!(
            ok(vec![Leg::new(3, 3, Micros(1))]),
            Err(LedgerError::SameAccount { leg: 0, account: 3 })
        );
        let legs = [Leg::new(1, 2, Micros(1))];
        assert!(TxRequest::new(key("k"), TxKind::Charge, 0, "月租".repeat(100), legs).is_ok());
        assert_eq!(
            TxRequest::new(key("k"), TxKind::Charge, 0, "x".repeat(201), legs),
            Err(LedgerError::MemoTooLong { chars: 201 })
        );
        assert_eq!(
            TxRequest::new(key("k"), TxKind::Charge, 0, "a\nb", legs),
            Err(LedgerError::MemoControlChar)
        );
    }
}
