//! Accounts, their normal side and floor, and the check that a transaction keeps every account
//! above its floor.

use std::fmt;
use std::str::FromStr;

use smallvec::SmallVec;
use toll_core::{Currency, Micros};

use super::{LedgerError, TxRequest};

/// What an account is for. The set covers the customer side (wallets, receivables), the
/// operator's books (revenue, tax, money received, adjustments) and the open platform (provider
/// payables and platform commission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    /// A customer's money held by the operator (prepaid balance, or postpaid balance that may go
    /// down to a credit limit). A liability: credit-normal.
    Wallet,
    /// What a customer owes the operator (postpaid invoices not yet paid). An asset:
    /// debit-normal.
    Receivable,
    /// Income from usage and fees. Credit-normal.
    Revenue,
    /// Tax collected, owed to the tax authority. A liability: credit-normal.
    Tax,
    /// Money received through a payment channel or in cash, not yet reconciled. An asset:
    /// debit-normal (top-ups debit it).
    Clearing,
    /// What the platform owes a service provider for its sales. A liability: credit-normal.
    ProviderPayable,
    /// The platform's commission on provider sales. Income: credit-normal.
    Commission,
    /// The counterpart of manual corrections, so that they stay visible. Debit-normal.
    Adjustment,
}

/// Which side of an account increases its balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NormalSide {
    /// Balance = debits − credits (assets, expenses).
    Debit,
    /// Balance = credits − debits (liabilities, income).
    Credit,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "account kind {0:?} is not wallet, receivable, revenue, tax, clearing, provider_payable, commission or adjustment"
)]
pub struct UnknownAccountKind(pub String);

impl AccountKind {
    pub const ALL: [AccountKind; 8] = [
        AccountKind::Wallet,
        AccountKind::Receivable,
        AccountKind::Revenue,
        AccountKind::Tax,
        AccountKind::Clearing,
        AccountKind::ProviderPayable,
        AccountKind::Commission,
        AccountKind::Adjustment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Wallet => "wallet",
            AccountKind::Receivable => "receivable",
            AccountKind::Revenue => "revenue",
            AccountKind::Tax => "tax",
            AccountKind::Clearing => "clearing",
            AccountKind::ProviderPayable => "provider_payable",
            AccountKind::Commission => "commission",
            AccountKind::Adjustment => "adjustment",
        }
    }

    pub fn normal_side(self) -> NormalSide {
        match self {
            AccountKind::Wallet
            | AccountKind::Revenue
            | AccountKind::Tax
            | AccountKind::ProviderPayable
            | AccountKind::Commission => NormalSide::Credit,
            AccountKind::Receivable | AccountKind::Clearing | AccountKind::Adjustment => {
                NormalSide::Debit
            }
        }
    }

    /// The floor an account of this kind gets unless configured otherwise: wallets are prepaid
    /// (never below zero); the operator's own books are unbounded, because a refund may exceed
    /// what one revenue account has seen and refusing it would be wrong.
    pub fn default_floor(self) -> Floor {
        match self {
            AccountKind::Wallet => Floor::Zero,
            _ => Floor::Unlimited,
        }
    }
}

impl FromStr for AccountKind {
    type Err = UnknownAccountKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownAccountKind(s.to_string()))
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How low an account's balance (on its normal side) may be pushed by a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Floor {
    /// Prepaid: never below zero.
    Zero,
    /// Postpaid: down to minus this limit (which is ≥ 0).
    CreditLimit(Micros),
    /// No floor (the operator's own books, or an account explicitly allowed to go negative).
    Unlimited,
}

impl Floor {
    /// The lowest balance allowed; `None` when unlimited. This is also how the store can keep a
    /// floor in one nullable integer column (`NULL` = unlimited).
    pub fn min_balance(self) -> Option<Micros> {
        match self {
            Floor::Zero => Some(Micros::ZERO),
            Floor::CreditLimit(limit) => Some(Micros(limit.0.saturating_neg())),
            Floor::Unlimited => None,
        }
    }

    /// The inverse of [`Floor::min_balance`]; refuses a positive minimum (a reserve is not a
    /// floor this ledger knows).
    pub fn from_min_balance(min: Option<Micros>) -> Result<Floor, LedgerError> {
        let floor = match min {
            None => Floor::Unlimited,
            Some(Micros(0)) => Floor::Zero,
            Some(m) => Floor::CreditLimit(Micros(m.0.saturating_neg())),
        };
        floor.validate()?;
        Ok(floor)
    }

    /// A credit limit must not be negative.
    pub fn validate(self) -> Result<(), LedgerError> {
        match self {
            Floor::CreditLimit(limit) if limit.is_negative() => {
                Err(LedgerError::NegativeCreditLimit(limit))
            }
            _ => Ok(()),
        }
    }
}

/// An account as the ledger needs it to decide a transaction: identity, rules and running totals.
///
/// `debits` and `credits` are the sums of every entry on each side; both are ≥ 0 and only grow.
/// The store keeps them on the account row (updated in the same database transaction as the
/// entries) so that a balance is one read, and `toll ledger verify` cross-checks them against the
/// entries with [`super::BalanceCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    /// Positive, unique per tenant.
    pub id: i64,
    pub kind: AccountKind,
    pub floor: Floor,
    pub currency: Currency,
    pub debits: Micros,
    pub credits: Micros,
}

impl AccountState {
    /// A new account with zero totals.
    pub fn new(
        id: i64,
        kind: AccountKind,
        floor: Floor,
        currency: Currency,
    ) -> Result<AccountState, LedgerError> {
        if id <= 0 {
            return Err(LedgerError::InvalidAccountId { account: id });
        }
        floor.validate()?;
        Ok(AccountState {
            id,
            kind,
            floor,
            currency,
            debits: Micros::ZERO,
            credits: Micros::ZERO,
        })
    }

    /// The balance on the account's normal side. Both totals are ≥ 0, so the difference always
    /// fits; corrupted (negative) totals saturate rather than wrap.
    pub fn balance(&self) -> Micros {
        balance_of(self.kind, self.debits, self.credits)
    }
}

fn balance_of(kind: AccountKind, debits: Micros, credits: Micros) -> Micros {
    match kind.normal_side() {
        NormalSide::Credit => Micros(credits.0.saturating_sub(debits.0)),
        NormalSide::Debit => Micros(debits.0.saturating_sub(credits.0)),
    }
}

/// What a transaction does to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountEffect {
    pub account: i64,
    /// Added to the account's `debits` by this transaction (≥ 0).
    pub added_debits: Micros,
    /// Added to the account's `credits` by this transaction (≥ 0).
    pub added_credits: Micros,
    /// The account's `debits` after the transaction.
    pub debits: Micros,
    /// The account's `credits` after the transaction.
    pub credits: Micros,
    /// The account's balance after the transaction.
    pub balance: Micros,
}

/// The accepted effect of a transaction on its accounts, in order of first appearance in the
/// legs. Nothing has been changed yet: the caller applies it (the store with one `UPDATE` per
/// account, the in-memory [`super::Ledger`] in place), which keeps posting atomic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    pub currency: Currency,
    pub accounts: SmallVec<[AccountEffect; 4]>,
}

/// Decides a transaction against the current state of its accounts: every account must exist
/// (`get` returns `None` for unknown ids and for accounts of another tenant), all must hold the
/// transaction's currency, no total may overflow, and no floored account may end below its floor
/// if the transaction lowers its balance. The floor is checked on the net effect per account
/// over all legs: a proration that credits the unused fee and charges the new one is judged as
/// one movement.
///
/// An account already below its floor (its credit limit was lowered) may still receive
/// transactions that raise its balance; only lowering it further is refused.
pub fn plan<'a, F>(tx: &TxRequest, mut get: F) -> Result<Effects, LedgerError>
where
    F: FnMut(i64) -> Option<&'a AccountState>,
{
    struct Acc<'a> {
        state: &'a AccountState,
        added_debits: i64,
        added_credits: i64,
    }
    let mut accs: SmallVec<[Acc<'a>; 4]> = SmallVec::new();
    let mut currency: Option<Currency> = None;
    let mut touch = |id: i64, debit: i64, credit: i64| -> Result<(), LedgerError> {
        let idx = match accs.iter().position(|a| a.state.id == id) {
            Some(i) => i,
            None => {
                let state = get(id).ok_or(LedgerError::UnknownAccount { account: id })?;
                assert_eq!(state.id, id, "account lookup returned another account");
                let expected = *currency.get_or_insert(state.currency);
                if state.currency != expected {
                    return Err(LedgerError::CurrencyMismatch {
                        account: id,
                        currency: state.currency,
                        expected,
                    });
                }
                accs.push(Acc {
                    state,
                    added_debits: 0,
                    added_credits: 0,
                });
                accs.len() - 1
            }
        };
        let a = &mut accs[idx];
        let overflow = LedgerError::Overflow { account: id };
        a.added_debits = a.added_debits.checked_add(debit).ok_or(overflow.clone())?;
        a.added_credits = a.added_credits.checked_add(credit).ok_or(overflow)?;
        Ok(())
    };
    for leg in tx.legs() {
        assert!(
            leg.amount.0 > 0 && leg.debit != leg.credit,
            "TxRequest validated its legs"
        );
        touch(leg.debit, leg.amount.0, 0)?;
        touch(leg.credit, 0, leg.amount.0)?;
    }
    let Some(currency) = currency else {
        unreachable!("a TxRequest has at least one leg");
    };
    let mut out: SmallVec<[AccountEffect; 4]> = SmallVec::with_capacity(accs.len());
    for a in &accs {
        let s = a.state;
        let overflow = || LedgerError::Overflow { account: s.id };
        let debits = s
            .debits
            .0
            .checked_add(a.added_debits)
            .ok_or_else(overflow)?;
        let credits = s
            .credits
            .0
            .checked_add(a.added_credits)
            .ok_or_else(overflow)?;
        let before = s.balance();
        let after = balance_of(s.kind, Micros(debits), Micros(credits));
        if after < before
            && let Some(min) = s.floor.min_balance()
            && after < min
        {
            let available = i128::from(before.0) - i128::from(min.0);
            let requested = i128::from(before.0) - i128::from(after.0);
            return Err(LedgerError::Insufficient {
                account: s.id,
                available: Micros(saturate(available)),
                requested: Micros(saturate(requested)),
            });
        }
        out.push(AccountEffect {
            account: s.id,
            added_debits: Micros(a.added_debits),
            added_credits: Micros(a.added_credits),
            debits: Micros(debits),
            credits: Micros(credits),
            balance: after,
        });
    }
    Ok(Effects {
        currency,
        accounts: out,
    })
}

fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{IdempotencyKey, Leg, TxKind};

    fn acct(id: i64, kind: AccountKind, floor: Floor) -> AccountState {
        AccountState::new(id, kind, floor, Currency::CNY).unwrap()
    }

    fn tx(legs: &[Leg]) -> TxRequest {
        let key = IdempotencyKey::new("k").unwrap();
        TxRequest::new(key, TxKind::Charge, 0, "", legs.iter().copied()).unwrap()
    }

    fn plan_on(t: &TxRequest, accounts: &[AccountState]) -> Result<Effects, LedgerError> {
        plan(t, |id| accounts.iter().find(|a| a.id == id))
    }

    #[test]
    fn kinds_round_trip_and_have_normal_sides() {
        for k in AccountKind::ALL {
            assert_eq!(k.as_str().parse::<AccountKind>().unwrap(), k);
        }
        assert!("Wallet".parse::<AccountKind>().is_err());
        assert_eq!(AccountKind::Wallet.normal_side(), NormalSide::Credit);
        assert_eq!(AccountKind::Clearing.normal_side(), NormalSide::Debit);
        assert_eq!(AccountKind::Receivable.normal_side(), NormalSide::Debit);
        assert_eq!(AccountKind::Commission.normal_side(), NormalSide::Credit);
    }

    #[test]
    fn floors_round_trip_through_min_balance() {
        for f in [Floor::Zero, Floor::CreditLimit(Micros(5)), Floor::Unlimited] {
            assert_eq!(Floor::from_min_balance(f.min_balance()).unwrap(), f);
        }
        assert!(Floor::from_min_balance(Some(Micros(1))).is_err());
        assert!(
            AccountState::new(
                1,
                AccountKind::Wallet,
                Floor::CreditLimit(Micros(-1)),
                Currency::CNY
            )
            .is_err()
        );
        assert!(AccountState::new(0, AccountKind::Wallet, Floor::Zero, Currency::CNY).is_err());
    }

    #[test]
    fn prepaid_wallet_refuses_to_go_negative() {
        let mut wallet = acct(1, AccountKind::Wallet, Floor::Zero);
        wallet.credits = Micros(100);
        let revenue = acct(2, AccountKind::Revenue, Floor::Unlimited);
        let accounts = [wallet, revenue];
        let ok = plan_on(&tx(&[Leg::new(1, 2, Micros(100))]), &accounts).unwrap();
        assert_eq!(ok.accounts[0].balance, Micros(0));
        assert_eq!(ok.accounts[1].balance, Micros(100));
        assert_eq!(
            plan_on(&tx(&[Leg::new(1, 2, Micros(101))]), &accounts),
            Err(LedgerError::Insufficient {
                account: 1,
                available: Micros(100),
                requested: Micros(101)
            })
        );
        // The floor covers the whole transaction: two legs of 60 together exceed 100.
        assert!(matches!(
            plan_on(
                &tx(&[Leg::new(1, 2, Micros(60)), Leg::new(1, 2, Micros(60))]),
                &accounts
            ),
            Err(LedgerError::Insufficient {
                requested: Micros(120),
                ..
            })
        ));
        // ...and nets: a credit of 50 back funds a charge of 150.
        let net = plan_on(
            &tx(&[Leg::new(2, 1, Micros(50)), Leg::new(1, 2, Micros(150))]),
            &accounts,
        )
        .unwrap();
        assert_eq!(net.accounts[1].balance, Micros(0));
        assert_eq!(net.accounts[1].added_credits, Micros(50));
        assert_eq!(net.accounts[1].added_debits, Micros(150));
    }

    #[test]
    fn postpaid_goes_down_to_its_limit_and_can_recover_from_below() {
        let mut wallet = acct(1, AccountKind::Wallet, Floor::CreditLimit(Micros(50)));
        let revenue = acct(2, AccountKind::Revenue, Floor::Unlimited);
        let accounts = [wallet.clone(), revenue.clone()];
        assert_eq!(
            plan_on(&tx(&[Leg::new(1, 2, Micros(50))]), &accounts)
                .unwrap()
                .accounts[0]
                .balance,
            Micros(-50)
        );
        assert!(plan_on(&tx(&[Leg::new(1, 2, Micros(51))]), &accounts).is_err());
        // The limit was lowered to 10 while the balance is -50: a payment in is accepted, a
        // further charge is refused with a negative availability.
        wallet.debits = Micros(50);
        wallet.floor = Floor::CreditLimit(Micros(10));
        let accounts = [wallet, revenue];
        assert!(plan_on(&tx(&[Leg::new(2, 1, Micros(5))]), &accounts).is_ok());
        assert_eq!(
            plan_on(&tx(&[Leg::new(1, 2, Micros(1))]), &accounts),
            Err(LedgerError::Insufficient {
                account: 1,
                available: Micros(-40),
                requested: Micros(1)
            })
        );
    }

    #[test]
    fn unknown_accounts_and_mixed_currencies_are_refused() {
        let a = acct(1, AccountKind::Clearing, Floor::Unlimited);
        let mut b = acct(2, AccountKind::Wallet, Floor::Zero);
        b.currency = Currency::USD;
        let accounts = [a, b];
        assert_eq!(
            plan_on(&tx(&[Leg::new(1, 3, Micros(1))]), &accounts),
            Err(LedgerError::UnknownAccount { account: 3 })
        );
        assert_eq!(
            plan_on(&tx(&[Leg::new(1, 2, Micros(1))]), &accounts),
            Err(LedgerError::CurrencyMismatch {
                account: 2,
                currency: Currency::USD,
                expected: Currency::CNY
            })
        );
    }

    #[test]
    fn lifetime_totals_overflow_is_refused() {
        let mut clearing = acct(1, AccountKind::Clearing, Floor::Unlimited);
        clearing.debits = Micros(i64::MAX - 10);
        let wallet = acct(2, AccountKind::Wallet, Floor::Zero);
        let accounts = [clearing, wallet];
        assert_eq!(
            plan_on(&tx(&[Leg::new(1, 2, Micros(11))]), &accounts),
            Err(LedgerError::Overflow { account: 1 })
        );
    }
}
