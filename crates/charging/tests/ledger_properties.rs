#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property tests of the ledger (issue acceptance): random sequences of top-ups, charges,
//! refunds and plan changes on prepaid and postpaid wallets keep every transaction balanced,
//! every account's totals equal to the sums of its entries and every floored balance above its
//! floor; refusals change nothing; replaying with duplicated keys gives an identical ledger; and
//! the hash chain finds every edited or deleted entry at its exact `seq`.
//!
//! Case counts follow proptest's defaults, so `PROPTEST_CASES` raises or lowers them.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use toll_charging::ledger::{
    AccountKind, Break, BreakReason, Entry, Floor, IdempotencyKey, Ledger, LedgerError, Leg,
    PostOutcome, TxKind, TxRequest, chain_entry, verify,
};
use toll_core::{Currency, Micros};

const TENANT: i64 = 7;
const CLEARING: i64 = 1;
const REVENUE: i64 = 2;
const TAX: i64 = 3;
/// Wallets 10 and 11 are prepaid, 12 and 13 postpaid with a generated credit limit.
const WALLETS: [i64; 4] = [10, 11, 12, 13];
const UNIT: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Clearing → wallet.
    TopUp { wallet: usize, amount: i64 },
    /// Wallet → revenue, and wallet → tax when there is tax.
    Charge {
        wallet: usize,
        amount: i64,
        tax: Option<i64>,
    },
    /// Revenue → wallet.
    Refund { wallet: usize, amount: i64 },
    /// Plan change mid-period: revenue → wallet for the unused old fee, wallet → revenue for the
    /// new fee, in one transaction.
    PlanChange {
        wallet: usize,
        unused: i64,
        new_fee: i64,
    },
}

impl Op {
    fn wallet(self) -> i64 {
        let w = match self {
            Op::TopUp { wallet, .. }
            | Op::Charge { wallet, .. }
            | Op::Refund { wallet, .. }
            | Op::PlanChange { wallet, .. } => wallet,
        };
        WALLETS[w]
    }

    fn legs(self) -> Vec<Leg> {
        let w = self.wallet();
        match self {
            Op::TopUp { amount, .. } => vec![Leg::new(CLEARING, w, Micros(amount))],
            Op::Charge { amount, tax, .. } => {
                let mut legs = vec![Leg::new(w, REVENUE, Micros(amount))];
                legs.extend(tax.map(|t| Leg::new(w, TAX, Micros(t))));
                legs
            }
            Op::Refund { amount, .. } => vec![Leg::new(REVENUE, w, Micros(amount))],
            Op::PlanChange {
                unused, new_fee, ..
            } => vec![
                Leg::new(REVENUE, w, Micros(unused)),
                Leg::new(w, REVENUE, Micros(new_fee)),
            ],
        }
    }

    fn kind(self) -> TxKind {
        match self {
            Op::TopUp { .. } => TxKind::TopUp,
            Op::Charge { .. } => TxKind::Charge,
            Op::Refund { .. } => TxKind::Refund,
            Op::PlanChange { .. } => TxKind::Proration,
        }
    }

    /// The wallet's balance change if posted.
    fn wallet_delta(self) -> i64 {
        match self {
            Op::TopUp { amount, .. } | Op::Refund { amount, .. } => amount,
            Op::Charge { amount, tax, .. } => -(amount + tax.unwrap_or(0)),
            Op::PlanChange {
                unused, new_fee, ..
            } => unused - new_fee,
        }
    }

    fn request(self, i: usize) -> TxRequest {
        let key = IdempotencyKey::new(format!("op-{i}")).unwrap();
        let at_ms = 1_767_225_600_000 + i as i64 * 1_000;
        TxRequest::new(
            key,
            self.kind(),
            at_ms,
            format!("{:?} #{i}", self.kind()),
            self.legs(),
        )
        .unwrap()
    }
}

fn amount(max_units: i64) -> impl Strategy<Value = i64> {
    prop_oneof![1..=max_units * UNIT, (1..=max_units).prop_map(|u| u * UNIT)]
}

fn op() -> impl Strategy<Value = Op> {
    let wallet = 0..WALLETS.len();
    prop_oneof![
        3 => (wallet.clone(), amount(50)).prop_map(|(wallet, amount)| Op::TopUp { wallet, amount }),
        4 => (wallet.clone(), amount(20), proptest::option::of(amount(2)))
            .prop_map(|(wallet, amount, tax)| Op::Charge { wallet, amount, tax }),
        1 => (wallet.clone(), amount(10)).prop_map(|(wallet, amount)| Op::Refund { wallet, amount }),
        2 => (wallet, amount(30), amount(30))
            .prop_map(|(wallet, unused, new_fee)| Op::PlanChange { wallet, unused, new_fee }),
    ]
}

fn new_ledger(limits: [i64; 2]) -> Ledger {
    let mut l = Ledger::new(TENANT);
    let cny = Currency::CNY;
    l.open_account(CLEARING, AccountKind::Clearing, Floor::Unlimited, cny)
        .unwrap();
    l.open_account(REVENUE, AccountKind::Revenue, Floor::Unlimited, cny)
        .unwrap();
    l.open_account(TAX, AccountKind::Tax, Floor::Unlimited, cny)
        .unwrap();
    l.open_account(WALLETS[0], AccountKind::Wallet, Floor::Zero, cny)
        .unwrap();
    l.open_account(WALLETS[1], AccountKind::Wallet, Floor::Zero, cny)
        .unwrap();
    for (id, limit) in [WALLETS[2], WALLETS[3]].into_iter().zip(limits) {
        l.open_account(
            id,
            AccountKind::Wallet,
            Floor::CreditLimit(Micros(limit)),
            cny,
        )
        .unwrap();
    }
    l
}

/// Everything that must hold of a ledger at any time, checked without trusting its helpers.
fn assert_invariants(l: &Ledger) {
    let entries = l.entries();
    // Entries are numbered 1..=n, each a proper transfer, and each transaction's legs are
    // contiguous and numbered from 0; every transaction's debits equal its credits.
    let mut per_tx: BTreeMap<&str, (i64, i128, i128)> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as i64 + 1);
        assert!(e.amount.0 > 0 && e.debit != e.credit);
        let t = per_tx.entry(e.key.as_str()).or_insert((e.seq, 0, 0));
        assert_eq!(
            e.seq - t.0,
            i64::from(e.leg_index),
            "legs of {} are contiguous",
            e.key
        );
        t.1 += i128::from(e.amount.0);
        t.2 += i128::from(e.amount.0);
    }
    for (key, (_, debits, credits)) in &per_tx {
        assert_eq!(debits, credits, "transaction {key} is balanced");
    }
    // Each account's totals are the sums of its entries, and the books balance overall.
    let mut sums: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for e in entries {
        sums.entry(e.debit).or_default().0 += e.amount.0;
        sums.entry(e.credit).or_default().1 += e.amount.0;
    }
    let (mut all_debits, mut all_credits) = (0_i128, 0_i128);
    for a in l.accounts() {
        let (d, c) = sums.remove(&a.id).unwrap_or_default();
        assert_eq!((a.debits.0, a.credits.0), (d, c), "account {} totals", a.id);
        all_debits += i128::from(d);
        all_credits += i128::from(c);
        if let Some(min) = a.floor.min_balance() {
            assert!(a.balance() >= min, "account {} below its floor", a.id);
        }
    }
    assert!(sums.is_empty(), "entries name unknown accounts: {sums:?}");
    assert_eq!(all_debits, all_credits);
    assert!(l.balance_check().is_empty());
    // The chain is intact and its head is the last entry.
    assert_eq!(l.head().seq, entries.len() as i64);
    let report = l.verify();
    assert_eq!(report.first_break, None);
    assert_eq!(report.checked, entries.len() as u64);
}

/// Runs `ops` once, checking each outcome against an independent model of the wallets and the
/// invariants after every step. Returns the ledger and each op's outcome.
fn run(limits: [i64; 2], ops: &[Op]) -> (Ledger, Vec<Result<PostOutcome, LedgerError>>) {
    let mut l = new_ledger(limits);
    let mut model: BTreeMap<i64, i64> = WALLETS.iter().map(|w| (*w, 0)).collect();
    let mut outcomes = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let before = l.clone();
        let w = op.wallet();
        let balance = model[&w];
        let delta = op.wallet_delta();
        let min = l.account(w).unwrap().floor.min_balance().unwrap();
        let outcome = l.post(&op.request(i));
        if delta < 0 && balance + delta < min.0 {
            assert_eq!(
                outcome,
                Err(LedgerError::Insufficient {
                    account: w,
                    available: Micros(balance - min.0),
                    requested: Micros(-delta),
                }),
                "op {i} {op:?} must be refused"
            );
            assert_eq!(l, before, "a refused op changes nothing");
        } else {
            let first = before.head().seq + 1;
            let last = first + op.legs().len() as i64 - 1;
            assert_eq!(
                outcome,
                Ok(PostOutcome::Posted {
                    first_seq: first,
                    last_seq: last
                }),
                "op {i} {op:?}"
            );
            *model.get_mut(&w).unwrap() += delta;
        }
        assert_eq!(l.balance(w), Some(Micros(model[&w])));
        assert_invariants(&l);
        outcomes.push(outcome);
    }
    (l, outcomes)
}

fn limits() -> impl Strategy<Value = [i64; 2]> {
    [0..=40 * UNIT, 0..=40 * UNIT]
}

fn scenario() -> impl Strategy<Value = ([i64; 2], Vec<Op>)> {
    (limits(), prop::collection::vec(op(), 1..60))
}

/// Re-posts op `i` and checks that it records nothing: the original outcome, as a duplicate.
fn repost_is_duplicate(
    l: &mut Ledger,
    ops: &[Op],
    i: usize,
    first: &Result<PostOutcome, LedgerError>,
) {
    let before = l.clone();
    let again = l.post(&ops[i].request(i));
    match first {
        Ok(PostOutcome::Posted {
            first_seq,
            last_seq,
        }) => assert_eq!(
            again,
            Ok(PostOutcome::Duplicate {
                first_seq: *first_seq,
                last_seq: *last_seq
            })
        ),
        other => assert_eq!(&again, other, "a refusal repeats while nothing changed"),
    }
    assert_eq!(*l, before);
}

proptest! {
    /// The acceptance property: balanced, summed, floored, and refusals change nothing (checked
    /// after every op by `run`, against a model of the wallets).
    #[test]
    fn random_operations_keep_the_ledger_consistent((limits, ops) in scenario()) {
        let (l, outcomes) = run(limits, &ops);
        prop_assert_eq!(outcomes.len(), ops.len());
        let posted_legs: usize = ops
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.is_ok())
            .map(|(op, _)| op.legs().len())
            .sum();
        prop_assert_eq!(l.entries().len(), posted_legs);
    }

    /// Replaying with every key posted twice in a row, duplicates of earlier keys interleaved,
    /// and the whole sequence once more at the end gives the identical ledger: balances,
    /// entries, hashes and head. Reusing a posted key for another amount is refused.
    #[test]
    fn replay_with_duplicated_keys_is_identical(
        (limits, ops) in scenario(),
        interleaved in prop::collection::vec(proptest::option::of(any::<Index>()), 60),
    ) {
        let (once, outcomes) = run(limits, &ops);
        let mut l = new_ledger(limits);
        for i in 0..ops.len() {
            prop_assert_eq!(&l.post(&ops[i].request(i)), &outcomes[i]);
            repost_is_duplicate(&mut l, &ops, i, &outcomes[i]);
            // A duplicate of an earlier op that was posted. (An earlier *refused* op is not
            // replayed here: refusals record nothing, so it would be a fresh attempt that may
            // now succeed — by design.)
            if let Some(pick) = interleaved[i] {
                let j = pick.index(i + 1);
                if outcomes[j].is_ok() {
                    repost_is_duplicate(&mut l, &ops, j, &outcomes[j]);
                }
            }
        }
        for i in (0..ops.len()).rev() {
            if outcomes[i].is_ok() {
                repost_is_duplicate(&mut l, &ops, i, &outcomes[i]);
            }
        }
        assert_invariants(&l);
        for w in WALLETS {
            prop_assert_eq!(l.balance(w), once.balance(w));
        }
        prop_assert_eq!(l.entries(), once.entries());
        prop_assert_eq!(l.head(), once.head());
        prop_assert_eq!(&l, &once);

        for (i, op) in ops.iter().enumerate().filter(|(i, _)| outcomes[*i].is_ok()) {
            let mut legs = op.legs();
            legs[0].amount = Micros(legs[0].amount.0 + 1);
            let key = IdempotencyKey::new(format!("op-{i}")).unwrap();
            let other = TxRequest::new(key, op.kind(), 0, "", legs).unwrap();
            prop_assert_eq!(
                l.post(&other),
                Err(LedgerError::KeyReused { key: format!("op-{i}") })
            );
        }
        prop_assert_eq!(&l, &once);
    }

    /// Editing any one field of any one entry is found as `Altered` at exactly that entry, and
    /// the balance cross-check names the accounts whose sums it changed.
    #[test]
    fn editing_any_entry_is_found_at_its_seq(
        (limits, ops) in scenario(),
        pick in any::<Index>(),
        field in 0..8_u8,
        delta in 1..=1_000_i64,
    ) {
        let (l, _) = run(limits, &with_top_up(ops));
        let entries = l.entries().to_vec();
        let k = pick.index(entries.len());
        let mut edited = entries.clone();
        let e = &mut edited[k];
        match field {
            0 => e.amount = Micros(e.amount.0 + delta),
            1 => e.debit = if e.debit == TAX { CLEARING } else { TAX },
            2 => e.credit += 100,
            3 => e.at_ms += delta,
            4 => e.memo.push('!'),
            5 => e.key = IdempotencyKey::new(format!("{}x", e.key)).unwrap(),
            6 => e.kind = if e.kind == TxKind::Adjustment { TxKind::Charge } else { TxKind::Adjustment },
            _ => e.leg_index += 1,
        }
        let report = verify(TENANT, &edited, Some(l.head()));
        prop_assert_eq!(report.first_break, Some(Break { seq: k as i64 + 1, reason: BreakReason::Altered }));
        prop_assert_eq!(report.checked, k as u64);
        prop_assert!(verify(TENANT, &entries, Some(l.head())).is_intact());

        if field == 0 {
            let mut check = toll_charging::ledger::BalanceCheck::new();
            edited.iter().for_each(|e| check.push(e));
            let mismatched: Vec<i64> = check.finish(l.accounts()).iter().map(|m| m.account).collect();
            let mut expected = vec![entries[k].debit, entries[k].credit];
            expected.sort_unstable();
            prop_assert_eq!(mismatched, expected);
        }
    }

    /// Deleting any one entry is found at its `seq`: as `Missing` (a gap) in the middle, as
    /// `TailMissing` (against the stored head) at the end.
    #[test]
    fn deleting_any_entry_is_found_at_its_seq((limits, ops) in scenario(), pick in any::<Index>()) {
        let (l, _) = run(limits, &with_top_up(ops));
        let mut entries = l.entries().to_vec();
        let k = pick.index(entries.len());
        let last = k + 1 == entries.len();
        entries.remove(k);
        let report = verify(TENANT, &entries, Some(l.head()));
        let seq = k as i64 + 1;
        let expected = if last {
            Break { seq, reason: BreakReason::TailMissing }
        } else {
            Break { seq: seq + 1, reason: BreakReason::Missing { expected_seq: seq } }
        };
        prop_assert_eq!(report.first_break, Some(expected));
        prop_assert_eq!(report.checked, k as u64);
    }

    /// An entry deleted and the rest renumbered, or an entry edited and the rest of the chain
    /// re-hashed: the first is a broken link, the second only the separately kept head reveals.
    #[test]
    fn rewriting_the_chain_is_found((limits, ops) in scenario(), pick in any::<Index>()) {
        let (l, _) = run(limits, &with_top_up(ops));
        let entries = l.entries().to_vec();
        let k = pick.index(entries.len());

        let mut renumbered = entries.clone();
        renumbered.remove(k);
        for e in &mut renumbered[k..] {
            e.seq -= 1;
        }
        let report = verify(TENANT, &renumbered, Some(l.head()));
        if k + 1 == entries.len() {
            prop_assert_eq!(report.first_break, Some(Break { seq: k as i64 + 1, reason: BreakReason::TailMissing }));
        } else {
            prop_assert_eq!(report.first_break, Some(Break { seq: k as i64 + 1, reason: BreakReason::Relinked }));
        }

        let mut rehashed = entries.clone();
        rehashed[k].amount = Micros(rehashed[k].amount.0 + 1);
        rehash_from(&mut rehashed, k);
        prop_assert!(verify(TENANT, &rehashed, None).is_intact());
        prop_assert_eq!(
            verify(TENANT, &rehashed, Some(l.head())).first_break,
            Some(Break { seq: l.head().seq, reason: BreakReason::HeadMismatch })
        );
    }
}

/// Makes sure a scenario records at least one entry.
fn with_top_up(mut ops: Vec<Op>) -> Vec<Op> {
    ops.insert(
        0,
        Op::TopUp {
            wallet: 0,
            amount: UNIT,
        },
    );
    ops
}

/// What a forger with write access to the entries would do: recompute every hash from `k` on.
fn rehash_from(entries: &mut [Entry], k: usize) {
    for i in k..entries.len() {
        if i > 0 {
            entries[i].prev_hash = entries[i - 1].hash;
        }
        entries[i].hash = chain_entry(&entries[i].prev_hash, &entries[i].fields());
    }
}
