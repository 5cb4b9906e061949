//! The double-entry ledger: accounts with floors, balanced transactions, idempotency keys and the
//! per-tenant hash chain that `toll ledger verify` checks.
//!
//! Pure: no I/O, no SQL. `toll-store` persists what this module decides, inside one database
//! transaction per posted [`TxRequest`]; [`Ledger`] is the in-memory reference model of the same
//! rules (used by the property tests and by tests of other crates).
//!
//! # Model (TigerBeetle-like)
//!
//! A transaction ([`TxRequest`]) is a list of 1..=[`MAX_LEGS`] [`Leg`]s. Each leg is one
//! *transfer*: it debits one account and credits another by the same positive amount, so every
//! transaction is balanced **by construction** (there is no way to write an unbalanced one) and
//! the store writes exactly one row per leg — the layout that lets SQLite take hundreds of
//! thousands of charges per second. Amounts are [`Micros`]: exact `i64`
//! micro-units; an account holds one currency and a transaction moves one currency.
//!
//! Accounts ([`AccountState`]) keep running `debits` and `credits` totals (both only grow, so
//! the ledger is append-only even in its summaries); the balance follows the account kind's
//! normal side ([`AccountKind::normal_side`]). A [`Floor`] bounds how low a balance may be
//! pushed: prepaid wallets stop at zero, postpaid accounts at minus their credit limit. The floor
//! is checked on the *net* effect of the whole transaction (so a plan change that credits the
//! unused fee and charges the new fee is judged as one movement) and a refusal is
//! [`LedgerError::Insufficient`], never a silently negative balance.
//!
//! # Idempotency
//!
//! Every transaction carries an [`IdempotencyKey`], unique per tenant. Posting a key that was
//! already posted records nothing and returns [`PostOutcome::Duplicate`] with the sequence
//! numbers of the original entries. What counts as "the same request" is what moves money: the
//! [`TxKind`] and the legs (debit, credit, amount, in order). `at_ms` and `memo` are descriptive,
//! so a retry that stamped a new time is still the same operation. The same key with different
//! money movement is refused as [`LedgerError::KeyReused`], because silently returning the old
//! outcome would hide a caller bug that charges the wrong amount. A *refused* transaction
//! records nothing, key included: retrying it later (after a top-up, say) may succeed.
//!
//! # Hash chain
//!
//! Every leg becomes one [`Entry`] with a per-tenant sequence number `seq` (1-based, contiguous,
//! in posting order; the legs of a transaction take consecutive numbers in leg order). Each
//! entry's `hash` covers its fields and the previous entry's hash, so editing, deleting or
//! re-linking any entry breaks the chain at that point; [`verify`] finds the first break. A
//! deleted *tail* leaves no gap, which is why the store also keeps the [`ChainHead`] (last `seq`
//! and `hash`) in a separate place and passes it to [`verify`].
//!
//! The encoding is exact and stable (version 1), so another implementation can reproduce it.
//! All integers are big-endian two's complement, fixed width; strings are UTF-8 prefixed with
//! their byte length as a `u32` big-endian.
//!
//! ```text
//! genesis(tenant) = SHA-256( "toll.ledger.genesis.v1" (22 bytes ASCII)
//!                            || 0x00
//!                            || tenant  i64 BE (8) )
//!
//! hash(entry)     = SHA-256( "toll.ledger.entry.v1" (20 bytes ASCII)
//!                            || 0x00
//!                            || prev_hash       (32 bytes; genesis(tenant) for seq 1)
//!                            || seq             i64 BE (8)
//!                            || leg_index       u16 BE (2)   0-based position in its transaction
//!                            || kind code       u8     (1)   see TxKind::code
//!                            || at_ms           i64 BE (8)   Unix milliseconds
//!                            || debit account   i64 BE (8)
//!                            || credit account  i64 BE (8)
//!                            || amount          i64 BE (8)   micro-units
//!                            || key length u32 BE (4) || key bytes (ASCII, 1..=128)
//!                            || memo length u32 BE (4) || memo bytes (UTF-8, 0..=800) )
//! ```
//!
//! Kind codes: charge 1, top_up 2, refund 3, adjustment 4, proration 5, payment 6, commission 7.
//! The tenant is not repeated per entry: the genesis hash binds the whole chain to it.

mod account;
mod chain;
mod memory;
mod tx;

pub use account::{
    AccountEffect, AccountKind, AccountState, Effects, Floor, NormalSide, UnknownAccountKind, plan,
};
pub use chain::{
    AccountMismatch, BalanceCheck, Break, BreakReason, ChainHead, ChainVerifier, ChainedLeg,
    ChainedLegs, Entry, EntryFields, Totals, VerifyReport, chain_entry, genesis_hash, verify,
};
pub use memory::{Ledger, PostOutcome};
pub use tx::{IdempotencyKey, Leg, TxKind, TxRequest, UnknownTxKind};

use toll_core::{Currency, Micros};

/// Most legs one transaction may have: enough for a charge with tax, commission and provider
/// payable splits, small enough that the floor check and the store's batch stay bounded.
pub const MAX_LEGS: usize = 16;

/// Longest idempotency key, in bytes (keys are printable ASCII, so also in characters).
pub const MAX_KEY_LEN: usize = 128;

/// Longest memo, in characters (at most 4 bytes each in UTF-8).
pub const MAX_MEMO_CHARS: usize = 200;

/// Largest amount one leg may move: 10⁹ currency units. Far above any single telecom charge or
/// top-up, and small enough that a transaction's total (16 legs) can never overflow `i64`, so
/// overflow is only possible in an account's lifetime totals — which are checked.
pub const MAX_LEG_AMOUNT: Micros = Micros(1_000_000_000_000_000);

/// Largest sequence number a chain may reach before it refuses to grow; leaves room for a whole
/// transaction so computing the next numbers never overflows.
pub const MAX_SEQ: i64 = i64::MAX - (MAX_LEGS as i64) - 1;

/// Why a transaction (or an account definition) was refused. On any error nothing was posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("idempotency key {0:?} must be 1..=128 printable ASCII characters without spaces")]
    InvalidKey(String),
    #[error("memo has {chars} characters; at most 200 are allowed")]
    MemoTooLong { chars: usize },
    #[error("memo must not contain control characters")]
    MemoControlChar,
    #[error("a transaction needs at least one leg")]
    NoLegs,
    #[error("a transaction has {count} legs; at most 16 are allowed")]
    TooManyLegs { count: usize },
    #[error("leg {leg}: amount {amount} must be positive")]
    NonPositiveAmount { leg: usize, amount: Micros },
    #[error("leg {leg}: amount {amount} exceeds the per-leg limit of 1000000000")]
    AmountTooLarge { leg: usize, amount: Micros },
    #[error("leg {leg}: debits and credits the same account {account}")]
    SameAccount { leg: usize, account: i64 },
    #[error("account {account} does not exist in this tenant")]
    UnknownAccount { account: i64 },
    #[error("account {account} is in {currency} but the transaction moves {expected}")]
    CurrencyMismatch {
        account: i64,
        currency: Currency,
        expected: Currency,
    },
    #[error(
        "insufficient balance on account {account}: {available} available, {requested} requested"
    )]
    Insufficient {
        account: i64,
        /// How much more the account's balance could be lowered before reaching its floor
        /// (negative when the account is already below it, e.g. after its limit was reduced).
        available: Micros,
        /// How much this transaction would lower the balance, net of what it adds.
        requested: Micros,
    },
    #[error("idempotency key {key:?} was already used for a different transaction")]
    KeyReused { key: String },
    #[error("account {account}'s totals would overflow")]
    Overflow { account: i64 },
    #[error("account {account} already exists")]
    DuplicateAccount { account: i64 },
    #[error("account id {account} must be positive")]
    InvalidAccountId { account: i64 },
    #[error("credit limit {0} must not be negative")]
    NegativeCreditLimit(Micros),
    #[error("the ledger chain of this tenant is full")]
    ChainExhausted,
}
