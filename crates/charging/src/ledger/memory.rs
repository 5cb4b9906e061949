//! The in-memory reference ledger of one tenant: the same rules the store applies, without a
//! database. Property tests drive it; other crates' tests can use it as a ledger double.

use std::collections::{BTreeMap, HashMap};

use smallvec::SmallVec;
use toll_core::{Currency, Micros};

use super::{
    AccountKind, AccountMismatch, AccountState, BalanceCheck, ChainHead, Entry, Floor,
    IdempotencyKey, LedgerError, TxRequest, VerifyReport, plan, verify,
};

/// What posting a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PostOutcome {
    /// Recorded as entries `first_seq..=last_seq`.
    Posted { first_seq: i64, last_seq: i64 },
    /// The key was already posted with the same content: nothing recorded; these are the
    /// original entries.
    Duplicate { first_seq: i64, last_seq: i64 },
}

impl PostOutcome {
    /// The entries that record the transaction, whether posted now or before.
    pub fn seqs(self) -> (i64, i64) {
        match self {
            PostOutcome::Posted {
                first_seq,
                last_seq,
            }
            | PostOutcome::Duplicate {
                first_seq,
                last_seq,
            } => (first_seq, last_seq),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeySpan {
    first_seq: i64,
    last_seq: i64,
}

/// One tenant's ledger held in memory.
///
/// Invariants (asserted after every post): entries are numbered `1..=len` and chained from the
/// tenant's genesis; the head is the last entry; every account's totals are the sums of its
/// entries; every key maps to the contiguous entries of its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    tenant: i64,
    accounts: BTreeMap<i64, AccountState>,
    entries: Vec<Entry>,
    keys: HashMap<IdempotencyKey, KeySpan>,
    head: ChainHead,
}

impl Ledger {
    pub fn new(tenant: i64) -> Ledger {
        Ledger {
            tenant,
            accounts: BTreeMap::new(),
            entries: Vec::new(),
            keys: HashMap::new(),
            head: ChainHead::genesis(tenant),
        }
    }

    pub fn tenant(&self) -> i64 {
        self.tenant
    }

    /// Opens an account with zero totals.
    pub fn open_account(
        &mut self,
        id: i64,
        kind: AccountKind,
        floor: Floor,
        currency: Currency,
    ) -> Result<&AccountState, LedgerError> {
        let account = AccountState::new(id, kind, floor, currency)?;
        if self.accounts.contains_key(&id) {
            return Err(LedgerError::DuplicateAccount { account: id });
        }
        Ok(self.accounts.entry(id).or_insert(account))
    }

    /// Changes an account's floor (a new credit limit). Takes effect for later transactions; a
    /// balance already below the new floor stays, and may only rise.
    pub fn set_floor(&mut self, id: i64, floor: Floor) -> Result<(), LedgerError> {
        floor.validate()?;
        let account = self
            .accounts
            .get_mut(&id)
            .ok_or(LedgerError::UnknownAccount { account: id })?;
        account.floor = floor;
        Ok(())
    }

    pub fn account(&self, id: i64) -> Option<&AccountState> {
        self.accounts.get(&id)
    }

    /// All accounts, by id.
    pub fn accounts(&self) -> impl Iterator<Item = &AccountState> {
        self.accounts.values()
    }

    pub fn balance(&self, id: i64) -> Option<Micros> {
        self.accounts.get(&id).map(AccountState::balance)
    }

    /// All entries, in `seq` order (`entries()[i].seq == i + 1`).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries recording the transaction posted with `key`, if any.
    pub fn entries_for(&self, key: &IdempotencyKey) -> Option<&[Entry]> {
        self.keys.get(key).map(|s| self.span(*s))
    }

    pub fn head(&self) -> ChainHead {
        self.head
    }

    /// Posts a transaction atomically: on any error nothing changes. A key already posted
    /// returns [`PostOutcome::Duplicate`] (same content) or [`LedgerError::KeyReused`].
    pub fn post(&mut self, tx: &TxRequest) -> Result<PostOutcome, LedgerError> {
        if let Some(span) = self.keys.get(tx.key()) {
            return if tx.same_as(self.span(*span)) {
                Ok(PostOutcome::Duplicate {
                    first_seq: span.first_seq,
                    last_seq: span.last_seq,
                })
            } else {
                Err(LedgerError::KeyReused {
                    key: tx.key().to_string(),
                })
            };
        }
        let effects = plan(tx, |id| self.accounts.get(&id))?;
        let new_entries: SmallVec<[Entry; 2]> =
            tx.chain(&self.head)?.map(|c| c.to_entry(tx)).collect();

        // Decided; from here on nothing can fail.
        for effect in &effects.accounts {
            let Some(account) = self.accounts.get_mut(&effect.account) else {
                unreachable!("plan only returns accounts it found");
            };
            account.debits = effect.debits;
            account.credits = effect.credits;
        }
        let (Some(first), Some(last)) = (new_entries.first(), new_entries.last()) else {
            unreachable!("a TxRequest has at least one leg");
        };
        let span = KeySpan {
            first_seq: first.seq,
            last_seq: last.seq,
        };
        self.head = ChainHead {
            seq: last.seq,
            hash: last.hash,
        };
        self.entries.extend(new_entries);
        self.keys.insert(tx.key().clone(), span);
        assert_eq!(
            usize::try_from(self.head.seq).ok(),
            Some(self.entries.len())
        );
        Ok(PostOutcome::Posted {
            first_seq: span.first_seq,
            last_seq: span.last_seq,
        })
    }

    /// Verifies this ledger's chain against its head.
    pub fn verify(&self) -> VerifyReport {
        verify(self.tenant, &self.entries, Some(self.head))
    }

    /// Accounts whose totals differ from their entries' sums (always empty unless a test
    /// tampered with the ledger through a clone of its parts).
    pub fn balance_check(&self) -> Vec<AccountMismatch> {
        let mut check = BalanceCheck::new();
        self.entries.iter().for_each(|e| check.push(e));
        check.finish(self.accounts.values())
    }

    fn span(&self, span: KeySpan) -> &[Entry] {
        let lo = usize::try_from(span.first_seq - 1).unwrap_or(usize::MAX);
        let hi = usize::try_from(span.last_seq).unwrap_or(usize::MAX);
        self.entries.get(lo..hi).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Leg, TxKind};

    const CLEARING: i64 = 1;
    const WALLET: i64 = 2;
    const REVENUE: i64 = 3;
    const TAX: i64 = 4;

    fn ledger() -> Ledger {
        let mut l = Ledger::new(42);
        l.open_account(
            CLEARING,
            AccountKind::Clearing,
            Floor::Unlimited,
            Currency::CNY,
        )
        .unwrap();
        l.open_account(WALLET, AccountKind::Wallet, Floor::Zero, Currency::CNY)
            .unwrap();
        l.open_account(
            REVENUE,
            AccountKind::Revenue,
            Floor::Unlimited,
            Currency::CNY,
        )
        .unwrap();
        l.open_account(TAX, AccountKind::Tax, Floor::Unlimited, Currency::CNY)
            .unwrap();
        l
    }

    fn tx(key: &str, kind: TxKind, legs: &[Leg]) -> TxRequest {
        let key = IdempotencyKey::new(key).unwrap();
        TxRequest::new(key, kind, 1_000, "", legs.iter().copied()).unwrap()
    }

    #[test]
    fn top_up_charge_and_duplicate() {
        let mut l = ledger();
        let top_up = tx(
            "t1",
            TxKind::TopUp,
            &[Leg::new(CLEARING, WALLET, Micros(10_000_000))],
        );
        assert_eq!(
            l.post(&top_up),
            Ok(PostOutcome::Posted {
                first_seq: 1,
                last_seq: 1
            })
        );
        let charge = tx(
            "c1",
            TxKind::Charge,
            &[
                Leg::new(WALLET, REVENUE, Micros(1_000_000)),
                Leg::new(WALLET, TAX, Micros(60_000)),
            ],
        );
        assert_eq!(
            l.post(&charge),
            Ok(PostOutcome::Posted {
                first_seq: 2,
                last_seq: 3
            })
        );
        let before = l.clone();
        assert_eq!(
            l.post(&charge),
            Ok(PostOutcome::Duplicate {
                first_seq: 2,
                last_seq: 3
            })
        );
        assert_eq!(l, before);
        assert_eq!(l.balance(WALLET), Some(Micros(8_940_000)));
        assert_eq!(l.balance(CLEARING), Some(Micros(10_000_000)));
        assert_eq!(l.balance(TAX), Some(Micros(60_000)));
        assert!(l.verify().is_intact());
        assert!(l.balance_check().is_empty());
        // A retry stamped with another time and memo is the same operation.
        let retry = TxRequest::new(
            IdempotencyKey::new("c1").unwrap(),
            TxKind::Charge,
            99,
            "retry",
            charge.legs().iter().copied(),
        )
        .unwrap();
        assert!(matches!(l.post(&retry), Ok(PostOutcome::Duplicate { .. })));
    }

    #[test]
    fn reused_key_and_refusals_change_nothing() {
        let mut l = ledger();
        l.post(&tx(
            "t1",
            TxKind::TopUp,
            &[Leg::new(CLEARING, WALLET, Micros(5))],
        ))
        .unwrap();
        let before = l.clone();
        assert_eq!(
            l.post(&tx(
                "t1",
                TxKind::TopUp,
                &[Leg::new(CLEARING, WALLET, Micros(6))]
            )),
            Err(LedgerError::KeyReused { key: "t1".into() })
        );
        assert!(matches!(
            l.post(&tx(
                "t1",
                TxKind::Adjustment,
                &[Leg::new(CLEARING, WALLET, Micros(5))]
            )),
            Err(LedgerError::KeyReused { .. })
        ));
        assert_eq!(
            l.post(&tx(
                "c1",
                TxKind::Charge,
                &[Leg::new(WALLET, REVENUE, Micros(6))]
            )),
            Err(LedgerError::Insufficient {
                account: WALLET,
                available: Micros(5),
                requested: Micros(6)
            })
        );
        assert_eq!(
            l.post(&tx(
                "c2",
                TxKind::Charge,
                &[Leg::new(WALLET, 99, Micros(1))]
            )),
            Err(LedgerError::UnknownAccount { account: 99 })
        );
        assert_eq!(l, before);
        // A refused key was not recorded: once funded, the same request posts.
        l.post(&tx(
            "t2",
            TxKind::TopUp,
            &[Leg::new(CLEARING, WALLET, Micros(1))],
        ))
        .unwrap();
        assert!(matches!(
            l.post(&tx(
                "c1",
                TxKind::Charge,
                &[Leg::new(WALLET, REVENUE, Micros(6))]
            )),
            Ok(PostOutcome::Posted { .. })
        ));
        assert_eq!(l.balance(WALLET), Some(Micros(0)));
    }

    #[test]
    fn accounts_are_validated_and_floors_change() {
        let mut l = ledger();
        assert_eq!(
            l.open_account(WALLET, AccountKind::Wallet, Floor::Zero, Currency::CNY)
                .err(),
            Some(LedgerError::DuplicateAccount { account: WALLET })
        );
        l.open_account(9, AccountKind::Wallet, Floor::Zero, Currency::USD)
            .unwrap();
        assert!(matches!(
            l.post(&tx("x", TxKind::TopUp, &[Leg::new(CLEARING, 9, Micros(1))])),
            Err(LedgerError::CurrencyMismatch { account: 9, .. })
        ));
        l.set_floor(WALLET, Floor::CreditLimit(Micros(3))).unwrap();
        l.post(&tx(
            "c",
            TxKind::Charge,
            &[Leg::new(WALLET, REVENUE, Micros(3))],
        ))
        .unwrap();
        assert_eq!(l.balance(WALLET), Some(Micros(-3)));
        assert!(l.set_floor(77, Floor::Zero).is_err());
        assert!(l.set_floor(WALLET, Floor::CreditLimit(Micros(-1))).is_err());
    }
}
