//! The per-tenant hash chain over ledger entries, its verification and the cross-check of
//! account totals against entries. The encoding is specified in the module docs of
//! [`crate::ledger`].

use std::borrow::Borrow;
use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use toll_core::Micros;

use super::{AccountState, IdempotencyKey, LedgerError, Leg, MAX_SEQ, TxKind, TxRequest};

const GENESIS_TAG: &[u8] = b"toll.ledger.genesis.v1\0";
const ENTRY_TAG: &[u8] = b"toll.ledger.entry.v1\0";

/// The `prev_hash` of a tenant's first entry: binds the chain to the tenant, so entries cannot
/// be moved between tenants' chains unnoticed.
pub fn genesis_hash(tenant: i64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(GENESIS_TAG);
    h.update(tenant.to_be_bytes());
    h.finalize().into()
}

/// The hashed fields of one entry, borrowed, so the store can hash rows it is about to insert
/// without building an [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryFields<'a> {
    pub seq: i64,
    pub key: &'a str,
    pub leg_index: u16,
    pub kind: TxKind,
    pub at_ms: i64,
    pub debit: i64,
    pub credit: i64,
    pub amount: Micros,
    pub memo: &'a str,
}

/// The hash of an entry given its predecessor's hash (see the encoding in the module docs).
/// Allocation-free: the store calls it once per leg on its hot path.
pub fn chain_entry(prev: &[u8; 32], f: &EntryFields<'_>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ENTRY_TAG);
    h.update(prev);
    h.update(f.seq.to_be_bytes());
    h.update(f.leg_index.to_be_bytes());
    h.update([f.kind.code()]);
    h.update(f.at_ms.to_be_bytes());
    h.update(f.debit.to_be_bytes());
    h.update(f.credit.to_be_bytes());
    h.update(f.amount.0.to_be_bytes());
    update_str(&mut h, f.key);
    update_str(&mut h, f.memo);
    h.finalize().into()
}

fn update_str(h: &mut Sha256, s: &str) {
    // Keys and memos are at most a few hundred bytes; a string too long for the prefix cannot
    // come from this ledger, and encoding it ambiguously would break the chain's guarantee.
    let len = u32::try_from(s.len()).unwrap_or_else(|_| panic!("string of {} bytes", s.len()));
    h.update(len.to_be_bytes());
    h.update(s.as_bytes());
}

/// The last entry of a tenant's chain: `seq` 0 and the genesis hash when it is empty. The store
/// keeps it apart from the entries (a tenant row, or exported elsewhere) so that a deleted tail
/// of entries, which leaves no gap, is still found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

impl ChainHead {
    pub fn genesis(tenant: i64) -> ChainHead {
        ChainHead {
            seq: 0,
            hash: genesis_hash(tenant),
        }
    }
}

/// One leg as recorded: the unit of the hash chain and one row of the store's entries table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Per tenant, 1-based, contiguous.
    pub seq: i64,
    pub key: IdempotencyKey,
    /// Position of the leg in its transaction, 0-based.
    pub leg_index: u16,
    pub kind: TxKind,
    pub at_ms: i64,
    pub debit: i64,
    pub credit: i64,
    pub amount: Micros,
    pub memo: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl Entry {
    pub fn fields(&self) -> EntryFields<'_> {
        EntryFields {
            seq: self.seq,
            key: self.key.as_str(),
            leg_index: self.leg_index,
            kind: self.kind,
            at_ms: self.at_ms,
            debit: self.debit,
            credit: self.credit,
            amount: self.amount,
            memo: &self.memo,
        }
    }

    pub fn leg(&self) -> Leg {
        Leg::new(self.debit, self.credit, self.amount)
    }

    /// This entry's hash recomputed from its fields and its stored `prev_hash`.
    pub fn recompute_hash(&self) -> [u8; 32] {
        chain_entry(&self.prev_hash, &self.fields())
    }
}

/// One leg of a transaction placed in the chain: its `seq`, its links and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainedLeg {
    pub seq: i64,
    pub leg_index: u16,
    pub leg: Leg,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

impl ChainedLeg {
    /// The head of the chain once this leg is stored.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash,
        }
    }

    pub fn to_entry(&self, tx: &TxRequest) -> Entry {
        Entry {
            seq: self.seq,
            key: tx.key().clone(),
            leg_index: self.leg_index,
            kind: tx.kind(),
            at_ms: tx.at_ms(),
            debit: self.leg.debit,
            credit: self.leg.credit,
            amount: self.leg.amount,
            memo: tx.memo().to_string(),
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

/// The legs of a transaction chained after a head, in leg order; see [`TxRequest::chain`].
#[derive(Debug, Clone)]
pub struct ChainedLegs<'a> {
    tx: &'a TxRequest,
    next: usize,
    prev: [u8; 32],
    seq: i64,
}

impl Iterator for ChainedLegs<'_> {
    type Item = ChainedLeg;

    fn next(&mut self) -> Option<ChainedLeg> {
        let leg = *self.tx.legs().get(self.next)?;
        let leg_index = u16::try_from(self.next).unwrap_or(u16::MAX);
        self.next += 1;
        self.seq += 1;
        let fields = EntryFields {
            seq: self.seq,
            key: self.tx.key().as_str(),
            leg_index,
            kind: self.tx.kind(),
            at_ms: self.tx.at_ms(),
            debit: leg.debit,
            credit: leg.credit,
            amount: leg.amount,
            memo: self.tx.memo(),
        };
        let hash = chain_entry(&self.prev, &fields);
        let chained = ChainedLeg {
            seq: self.seq,
            leg_index,
            leg,
            prev_hash: self.prev,
            hash,
        };
        self.prev = hash;
        Some(chained)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.tx.legs().len() - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ChainedLegs<'_> {}

impl TxRequest {
    /// Numbers and hashes this transaction's legs as the entries following `head`. Pure and
    /// allocation-free: the caller stores each [`ChainedLeg`] and then the last one's head.
    pub fn chain(&self, head: &ChainHead) -> Result<ChainedLegs<'_>, LedgerError> {
        if head.seq < 0 || head.seq > MAX_SEQ {
            return Err(LedgerError::ChainExhausted);
        }
        Ok(ChainedLegs {
            tx: self,
            next: 0,
            prev: head.hash,
            seq: head.seq,
        })
    }
}

/// Why the chain is broken at [`Break::seq`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakReason {
    /// The entry's hash does not match its fields: a field (amount, account, key…) was edited.
    Altered,
    /// Entries from `expected_seq` up to the entry before this one are gone: deleted.
    Missing { expected_seq: i64 },
    /// The entry's `seq` is lower than expected: entries are out of order or one was copied.
    OutOfOrder { expected_seq: i64 },
    /// The entry's `prev_hash` is not its predecessor's hash: an entry before it was replaced
    /// (rewritten and re-hashed) or this one was moved.
    Relinked,
    /// The head says the chain goes on to a later `seq` than the last stored entry: the tail
    /// was deleted. `Break::seq` is the first missing `seq`.
    TailMissing,
    /// The entry at the head's `seq` does not have the head's hash (the chain was rewritten and
    /// re-hashed from some point on), or entries exist beyond the head.
    HeadMismatch,
}

/// The first broken link of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Break {
    /// The `seq` at which the break was found: the entry whose check failed, or for
    /// [`BreakReason::TailMissing`] the first missing `seq`.
    pub seq: i64,
    pub reason: BreakReason,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries found intact before the first break (all of them when there is none).
    pub checked: u64,
    pub first_break: Option<Break>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Checks a chain incrementally, so the store can feed it entries in batches from a cursor
/// without holding them all. [`verify`] is the one-call form.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: Option<ChainHead>,
    prev: [u8; 32],
    next_seq: i64,
    checked: u64,
    broken: Option<Break>,
}

impl ChainVerifier {
    /// `head` is the separately stored head, if any; without it a deleted tail goes unnoticed.
    pub fn new(tenant: i64, head: Option<ChainHead>) -> ChainVerifier {
        ChainVerifier {
            head,
            prev: genesis_hash(tenant),
            next_seq: 1,
            checked: 0,
            broken: None,
        }
    }

    /// Checks the next entry (entries must come in `seq` order). Returns `false` once the chain
    /// is broken; further entries are then ignored (only the first break is meaningful).
    pub fn push(&mut self, e: &Entry) -> bool {
        if self.broken.is_some() {
            return false;
        }
        let reason = if e.seq > self.next_seq {
            Some(BreakReason::Missing {
                expected_seq: self.next_seq,
            })
        } else if e.seq < self.next_seq {
            Some(BreakReason::OutOfOrder {
                expected_seq: self.next_seq,
            })
        } else if e.prev_hash != self.prev {
            Some(BreakReason::Relinked)
        } else if e.recompute_hash() != e.hash {
            Some(BreakReason::Altered)
        } else {
            match self.head {
                Some(h) if h.seq == e.seq && h.hash != e.hash => Some(BreakReason::HeadMismatch),
                Some(h) if h.seq < e.seq => Some(BreakReason::HeadMismatch),
                _ => None,
            }
        };
        if let Some(reason) = reason {
            self.broken = Some(Break { seq: e.seq, reason });
            return false;
        }
        self.prev = e.hash;
        self.next_seq = self.next_seq.saturating_add(1);
        self.checked += 1;
        true
    }

    pub fn finish(self) -> VerifyReport {
        let mut first_break = self.broken;
        if first_break.is_none()
            && let Some(h) = self.head
        {
            let last_seq = self.next_seq - 1;
            if h.seq > last_seq {
                first_break = Some(Break {
                    seq: self.next_seq,
                    reason: BreakReason::TailMissing,
                });
            } else if h.seq == last_seq && h.hash != self.prev {
                // Only reachable for an empty chain whose head is not the genesis head; a stored
                // entry at the head's seq was compared in `push`.
                first_break = Some(Break {
                    seq: h.seq,
                    reason: BreakReason::HeadMismatch,
                });
            }
        }
        VerifyReport {
            checked: self.checked,
            first_break,
        }
    }
}

/// Verifies a tenant's chain: `entries` in `seq` order, `head` as stored apart from them.
/// Stops reading at the first break.
pub fn verify<I>(tenant: i64, entries: I, head: Option<ChainHead>) -> VerifyReport
where
    I: IntoIterator,
    I::Item: Borrow<Entry>,
{
    let mut v = ChainVerifier::new(tenant, head);
    for e in entries {
        if !v.push(e.borrow()) {
            break;
        }
    }
    v.finish()
}

/// An account's two running totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Totals {
    pub debits: Micros,
    pub credits: Micros,
}

/// An account whose stored totals disagree with the sums of its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountMismatch {
    pub account: i64,
    /// As stored on the account; `None` when entries name an account that does not exist.
    pub stored: Option<Totals>,
    /// Summed from the entries (saturated at `i64::MAX` if the true sum is larger — which is
    /// then always a mismatch, as the comparison itself is exact).
    pub from_entries: Totals,
}

/// Recomputes every account's totals from the entries and compares them with the stored ones.
/// Incremental like [`ChainVerifier`]; memory is one pair of sums per account.
#[derive(Debug, Clone, Default)]
pub struct BalanceCheck {
    sums: BTreeMap<i64, [i128; 2]>,
}

impl BalanceCheck {
    pub fn new() -> BalanceCheck {
        BalanceCheck::default()
    }

    pub fn push(&mut self, e: &Entry) {
        self.push_leg(&e.leg());
    }

    pub fn push_leg(&mut self, leg: &Leg) {
        let amount = i128::from(leg.amount.0);
        self.sums.entry(leg.debit).or_default()[0] += amount;
        self.sums.entry(leg.credit).or_default()[1] += amount;
    }

    /// The accounts (sorted by id) whose stored totals differ from their entries', including
    /// accounts with totals but no entries and entries naming unknown accounts.
    pub fn finish<'a>(
        mut self,
        accounts: impl IntoIterator<Item = &'a AccountState>,
    ) -> Vec<AccountMismatch> {
        let mut out = Vec::new();
        for a in accounts {
            let [d, c] = self.sums.remove(&a.id).unwrap_or_default();
            if i128::from(a.debits.0) != d || i128::from(a.credits.0) != c {
                out.push(AccountMismatch {
                    account: a.id,
                    stored: Some(Totals {
                        debits: a.debits,
                        credits: a.credits,
                    }),
                    from_entries: totals(d, c),
                });
            }
        }
        for (account, [d, c]) in self.sums {
            out.push(AccountMismatch {
                account,
                stored: None,
                from_entries: totals(d, c),
            });
        }
        out.sort_by_key(|m| m.account);
        out
    }
}

fn totals(d: i128, c: i128) -> Totals {
    let clamp = |v: i128| Micros(i64::try_from(v).unwrap_or(i64::MAX));
    Totals {
        debits: clamp(d),
        credits: clamp(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(key: &str, legs: &[Leg]) -> TxRequest {
        let key = IdempotencyKey::new(key).unwrap();
        TxRequest::new(
            key,
            TxKind::Charge,
            1_700_000_000_000,
            "call",
            legs.iter().copied(),
        )
        .unwrap()
    }

    fn build(tenant: i64, n: usize) -> (Vec<Entry>, ChainHead) {
        let mut head = ChainHead::genesis(tenant);
        let mut out = Vec::new();
        for i in 0..n {
            let t = tx(
                &format!("k{i}"),
                &[
                    Leg::new(1, 2, Micros(10 + i as i64)),
                    Leg::new(1, 3, Micros(1)),
                ],
            );
            for c in t.chain(&head).unwrap() {
                out.push(c.to_entry(&t));
                head = c.head();
            }
        }
        (out, head)
    }

    /// Pins the version-1 encoding: a change here breaks every stored chain.
    #[test]
    fn encoding_is_pinned() {
        let mut manual = Vec::new();
        manual.extend_from_slice(b"toll.ledger.genesis.v1\0");
        manual.extend_from_slice(&7_i64.to_be_bytes());
        let genesis: [u8; 32] = Sha256::digest(&manual).into();
        assert_eq!(genesis_hash(7), genesis);

        let f = EntryFields {
            seq: 1,
            key: "k",
            leg_index: 2,
            kind: TxKind::Refund,
            at_ms: -1,
            debit: 5,
            credit: 6,
            amount: Micros(1_500_000),
            memo: "退款",
        };
        let mut m = Vec::new();
        m.extend_from_slice(b"toll.ledger.entry.v1\0");
        m.extend_from_slice(&genesis);
        m.extend_from_slice(&1_i64.to_be_bytes());
        m.extend_from_slice(&[0, 2]);
        m.push(3);
        m.extend_from_slice(&[0xff; 8]);
        m.extend_from_slice(&5_i64.to_be_bytes());
        m.extend_from_slice(&6_i64.to_be_bytes());
        m.extend_from_slice(&1_500_000_i64.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 1, b'k']);
        m.extend_from_slice(&[0, 0, 0, 6]);
        m.extend_from_slice("退款".as_bytes());
        let expected: [u8; 32] = Sha256::digest(&m).into();
        assert_eq!(chain_entry(&genesis, &f), expected);
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        let g = genesis_hash(1);
        let f = |key, memo| EntryFields {
            seq: 1,
            key,
            leg_index: 0,
            kind: TxKind::Charge,
            at_ms: 0,
            debit: 1,
            credit: 2,
            amount: Micros(1),
            memo,
        };
        assert_ne!(
            chain_entry(&g, &f("ab", "c")),
            chain_entry(&g, &f("a", "bc"))
        );
        assert_ne!(genesis_hash(1), genesis_hash(2));
    }

    #[test]
    fn intact_chain_verifies_and_tampering_is_named() {
        let (entries, head) = build(9, 5);
        assert_eq!(entries.len(), 10);
        let ok = verify(9, &entries, Some(head));
        assert_eq!(
            ok,
            VerifyReport {
                checked: 10,
                first_break: None
            }
        );
        // Another tenant's genesis does not verify it.
        assert_eq!(
            verify(8, &entries, None).first_break,
            Some(Break {
                seq: 1,
                reason: BreakReason::Relinked
            })
        );

        let mut edited = entries.clone();
        edited[3].amount = Micros(999);
        let r = verify(9, &edited, Some(head));
        assert_eq!(
            r.first_break,
            Some(Break {
                seq: 4,
                reason: BreakReason::Altered
            })
        );
        assert_eq!(r.checked, 3);

        // Edited and re-hashed: the next entry no longer links to it.
        edited[3].hash = edited[3].recompute_hash();
        assert_eq!(
            verify(9, &edited, Some(head)).first_break,
            Some(Break {
                seq: 5,
                reason: BreakReason::Relinked
            })
        );

        let mut deleted = entries.clone();
        deleted.remove(4);
        assert_eq!(
            verify(9, &deleted, Some(head)).first_break,
            Some(Break {
                seq: 6,
                reason: BreakReason::Missing { expected_seq: 5 }
            })
        );

        let mut swapped = entries.clone();
        swapped.swap(2, 3);
        assert_eq!(
            verify(9, &swapped, None).first_break,
            Some(Break {
                seq: 4,
                reason: BreakReason::Missing { expected_seq: 3 }
            })
        );

        let mut copied = entries.clone();
        copied.insert(3, entries[2].clone());
        assert_eq!(
            verify(9, &copied, None).first_break,
            Some(Break {
                seq: 3,
                reason: BreakReason::OutOfOrder { expected_seq: 4 }
            })
        );

        let tail = &entries[..8];
        assert!(
            verify(9, tail, None).is_intact(),
            "without a head a tail deletion is invisible"
        );
        assert_eq!(
            verify(9, tail, Some(head)).first_break,
            Some(Break {
                seq: 9,
                reason: BreakReason::TailMissing
            })
        );
        assert_eq!(
            verify(
                9,
                &entries,
                Some(ChainHead {
                    seq: 10,
                    hash: [0; 32]
                })
            )
            .first_break,
            Some(Break {
                seq: 10,
                reason: BreakReason::HeadMismatch
            })
        );
        assert_eq!(
            verify(
                9,
                &entries,
                Some(ChainHead {
                    seq: 4,
                    hash: entries[3].hash
                })
            )
            .first_break,
            Some(Break {
                seq: 5,
                reason: BreakReason::HeadMismatch
            })
        );
        assert!(verify(9, Vec::<Entry>::new(), Some(ChainHead::genesis(9))).is_intact());
        assert_eq!(
            verify(9, Vec::<Entry>::new(), Some(head)).first_break,
            Some(Break {
                seq: 1,
                reason: BreakReason::TailMissing
            })
        );
        assert_eq!(
            verify(
                9,
                Vec::<Entry>::new(),
                Some(ChainHead {
                    seq: 0,
                    hash: [1; 32]
                })
            )
            .first_break,
            Some(Break {
                seq: 0,
                reason: BreakReason::HeadMismatch
            })
        );
    }

    #[test]
    fn chain_refuses_an_exhausted_head() {
        let t = tx("k", &[Leg::new(1, 2, Micros(1))]);
        let head = ChainHead {
            seq: MAX_SEQ + 1,
            hash: [0; 32],
        };
        assert_eq!(t.chain(&head).err(), Some(LedgerError::ChainExhausted));
        let c: Vec<_> = t
            .chain(&ChainHead {
                seq: MAX_SEQ,
                hash: [0; 32],
            })
            .unwrap()
            .collect();
        assert_eq!(c[0].seq, MAX_SEQ + 1);
    }

    #[test]
    fn balance_check_names_mismatching_accounts() {
        use crate::ledger::{AccountKind, Floor};
        use toll_core::Currency;
        let (entries, _) = build(1, 3);
        let mut a1 =
            AccountState::new(1, AccountKind::Wallet, Floor::Unlimited, Currency::CNY).unwrap();
        let mut a2 =
            AccountState::new(2, AccountKind::Revenue, Floor::Unlimited, Currency::CNY).unwrap();
        let a4 = AccountState::new(4, AccountKind::Tax, Floor::Unlimited, Currency::CNY).unwrap();
        a1.debits = Micros(10 + 11 + 12 + 3);
        a2.credits = Micros(10 + 11 + 12);
        let mut check = BalanceCheck::new();
        entries.iter().for_each(|e| check.push(e));
        // Account 3 has entries but no row; 1, 2 and 4 agree.
        assert_eq!(
            check.clone().finish([&a1, &a2, &a4]),
            vec![AccountMismatch {
                account: 3,
                stored: None,
                from_entries: Totals {
                    debits: Micros(0),
                    credits: Micros(3)
                }
            }]
        );
        a2.credits = Micros(1);
        let m = check.finish([&a1, &a2, &a4]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].account, 2);
        assert_eq!(m[0].from_entries.credits, Micros(33));
    }
}
