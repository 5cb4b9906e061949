//! Payments: money received from customers (bank transfer, cash, card or a payment provider),
//! allocated to their invoices.
//!
//! Recording a payment does three things in one transaction:
//! 1. it credits the account's wallet in the ledger (clearing → wallet, [`TxKind::Payment`],
//!    at the instant the money was received), under a key derived from the payment's
//!    idempotency key — the wallet is where the customer's money is, whatever it pays;
//! 2. it writes the payment row (`payments`), unique per tenant and idempotency key;
//! 3. it allocates money to the account's finalized, not fully paid invoices, oldest first
//!    (by id): `payment_allocations` rows, `invoices.paid` raised, and the status set to `paid`
//!    when the invoice is paid in full.
//!
//! What is not allocated stays in the wallet as the customer's credit (the payment's
//! `unallocated`). Credit is applied to invoices finalized later by
//! [`Store::allocate_credit`] (one account) or [`Store::allocate_all_credit`] (every account
//! with credit: what to call after a bill run), and automatically whenever the account's next
//! payment is recorded: before the new money, older credit settles what it can, oldest payment
//! first. Bill runs do not allocate by themselves.
//!
//! Allocation is bookkeeping beside the ledger, not a ledger movement: the wallet was charged
//! when usage and fees happened and credited when the money came in. Invariants kept by the
//! database: a payment's allocations never exceed it (`payments.allocated`, a CHECK), an
//! invoice's `paid` never exceeds its total (a CHECK on PostgreSQL, triggers on SQLite).
//!
//! Every allocation runs under the tenant's ledger lock, which crediting an invoice and
//! finalizing one with tax or rounding to post also take, and locks the invoices and payments
//! it reads (`FOR UPDATE` on PostgreSQL; SQLite's write lock is held anyway): an invoice is
//! never credited half-way through an allocation, two allocations never both spend the same
//! credit, and two payments of one tenant are recorded one after the other (the second sees
//! the first's key). An invoice committed while an allocation runs is left for the next one.
//!
//! Invoices that have a credit note are not allocated to (the credit note settled them), nor
//! are credit notes themselves. Prepaid accounts' invoices are settled by their top-ups in real
//! time; top-ups are not payments here and allocate nothing.

use std::fmt;
use std::str::FromStr;

use toll_charging::ledger::{Leg, MAX_LEG_AMOUNT, MAX_MEMO_CHARS, TxKind, TxRequest};
use toll_core::{Currency, Micros};

use crate::db::{DbRow, Tx, q, q_composed};
use crate::keys::{KeySource, ledger_key};
use crate::{Store, StoreError, TenantId};

/// Longest reference (a bank reference, a receipt number, a provider's payment id).
pub const MAX_REFERENCE_CHARS: usize = 128;
/// Longest provider name.
pub const MAX_PROVIDER_LEN: usize = 32;
/// Longest provider event id (Stripe's are about 30 characters).
pub const MAX_EVENT_ID_LEN: usize = 255;
/// Payments per page of a listing, at most.
pub const MAX_PAGE: i64 = 500;
/// How far after the store's clock a payment may say it was received: the clocks of banks and
/// providers are not ours, but a payment from next week is a typing error.
pub const MAX_FUTURE_MS: i64 = 86_400_000;
/// The earliest instant a payment may say it was received (2000-01-01T00:00:00Z): anything
/// before is a unit error (seconds given for milliseconds).
pub const MIN_RECEIVED_MS: i64 = 946_684_800_000;
/// Open payments, and open invoices, one allocation pass reads at most: bounds the
/// transaction; what is left is allocated by the next pass.
const MAX_OPEN: i64 = 1_000;
/// Accounts [`Store::allocate_all_credit`] visits per call at most.
const MAX_CREDIT_ACCOUNTS: i64 = 10_000;

/// How a payment was made.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PaymentMethod {
    BankTransfer,
    Cash,
    Card,
    /// Through a payment provider, by its name (`stripe`): lower-case ASCII letters, digits,
    /// `_` and `-`, 1..=32 characters.
    Provider(String),
}

impl PaymentMethod {
    /// The stored method: bank_transfer, cash, card or provider.
    pub fn kind(&self) -> &'static str {
        match self {
            PaymentMethod::BankTransfer => "bank_transfer",
            PaymentMethod::Cash => "cash",
            PaymentMethod::Card => "card",
            PaymentMethod::Provider(_) => "provider",
        }
    }

    /// The provider's name, for [`PaymentMethod::Provider`].
    pub fn provider(&self) -> Option<&str> {
        match self {
            PaymentMethod::Provider(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn from_columns(kind: &str, provider: Option<String>) -> Result<Self, StoreError> {
        Ok(match (kind, provider) {
            ("bank_transfer", None) => PaymentMethod::BankTransfer,
            ("cash", None) => PaymentMethod::Cash,
            ("card", None) => PaymentMethod::Card,
            ("provider", Some(p)) => PaymentMethod::Provider(p),
            (k, p) => {
                return Err(StoreError::Corrupt(format!(
                    "payment method {k:?} with provider {p:?}"
                )));
            }
        })
    }

    fn check(&self) -> Result<(), StoreError> {
        match self {
            PaymentMethod::Provider(p) => check_provider(p),
            _ => Ok(()),
        }
    }
}

/// `bank_transfer`, `cash`, `card`, or `provider:NAME`.
impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentMethod::Provider(p) => write!(f, "provider:{p}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Reads what [`PaymentMethod`]'s `Display` writes.
impl FromStr for PaymentMethod {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let m = match s {
            "bank_transfer" => PaymentMethod::BankTransfer,
            "cash" => PaymentMethod::Cash,
            "card" => PaymentMethod::Card,
            other => match other.strip_prefix("provider:") {
                Some(p) => PaymentMethod::Provider(p.to_string()),
                None => {
                    return Err(StoreError::invalid(
                        "method",
                        format!("{other:?}: bank_transfer, cash, card or provider:NAME"),
                    ));
                }
            },
        };
        m.check()?;
        Ok(m)
    }
}

impl serde::Serialize for PaymentMethod {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PaymentMethod {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn check_provider(p: &str) -> Result<(), StoreError> {
    let ok = !p.is_empty()
        && p.len() <= MAX_PROVIDER_LEN
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "provider",
            format!("{p:?}: 1 to {MAX_PROVIDER_LEN} of a-z, 0-9, _ and -"),
        ))
    }
}

/// A payment to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The account's code.
    pub account: String,
    pub method: PaymentMethod,
    /// Must be the account's currency: a payment in another currency is converted by whoever
    /// received it, not by Toll.
    pub currency: Currency,
    /// Positive, at most the ledger's per-leg limit (10⁹ currency units).
    pub amount: Micros,
    /// The bank's reference, a receipt number or the provider's payment id: at most 128
    /// characters, no control characters; may be empty only for cash.
    pub reference: String,
    /// Makes recording idempotent: the same key records once (and returns that payment); the
    /// same key with a different account, method, reference, currency or amount is a
    /// conflict. 1..=124 printable ASCII characters without spaces. `received_ms` is not
    /// compared, as the ledger does not compare instants: a retry that stamps the time again
    /// is still the same payment.
    pub key: String,
    /// When the money was received (milliseconds since the epoch): the instant the wallet is
    /// credited at, and the date statements show.
    pub received_ms: i64,
}

impl PaymentRequest {
    fn check(&self, now_ms: i64) -> Result<(), StoreError> {
        self.method.check()?;
        if self.amount.0 <= 0 || self.amount > MAX_LEG_AMOUNT {
            return Err(StoreError::invalid(
                "amount",
                format!("{}: must be positive and at most 1000000000", self.amount),
            ));
        }
        let chars = self.reference.chars().count();
        if chars > MAX_REFERENCE_CHARS || self.reference.chars().any(char::is_control) {
            return Err(StoreError::invalid(
                "reference",
                format!("at most {MAX_REFERENCE_CHARS} characters, no control characters"),
            ));
        }
        if self.reference.trim().is_empty() && self.method != PaymentMethod::Cash {
            return Err(StoreError::invalid(
                "reference",
                "required: the bank's reference, the card slip or the provider's payment id",
            ));
        }
        if self.received_ms < MIN_RECEIVED_MS || self.received_ms > now_ms + MAX_FUTURE_MS {
            return Err(StoreError::invalid(
                "received_ms",
                "milliseconds since the epoch, after 2000 and not more than a day ahead",
            ));
        }
        // Checks the key's form (and length) the way the ledger will.
        ledger_key(KeySource::Payment, &self.key)?;
        Ok(())
    }

    /// The ledger memo: the method and reference, within the ledger's limit.
    fn memo(&self) -> String {
        let text = format!("payment {} {}", self.method, self.reference.trim());
        text.trim_end().chars().take(MAX_MEMO_CHARS).collect()
    }
}

/// A payment as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Payment {
    pub id: i64,
    pub account: String,
    pub method: PaymentMethod,
    pub reference: String,
    pub key: String,
    pub currency: Currency,
    pub amount: Micros,
    /// How much of it has been allocated to invoices.
    pub allocated: Micros,
    pub received_ms: i64,
    pub created_ms: i64,
    /// The sequence number of the ledger posting that credited the wallet.
    pub ledger_seq: i64,
}

impl Payment {
    /// What is still the customer's credit: the amount less what invoices took.
    pub fn unallocated(&self) -> Micros {
        Micros(self.amount.0 - self.allocated.0)
    }
}

/// Money of one payment applied to one invoice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Allocation {
    pub payment_id: i64,
    pub invoice_id: i64,
    pub invoice_number: Option<String>,
    pub amount: Micros,
    pub allocated_ms: i64,
}

/// What recording a payment did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordedPayment {
    pub payment: Payment,
    /// This payment's allocations (on a duplicate: as they stand now, including any made
    /// later from its credit).
    pub allocations: Vec<Allocation>,
    /// Older credit of the account applied to its invoices in the same transaction, before
    /// this payment's money (empty on a duplicate).
    pub credit_applied: Vec<Allocation>,
    /// What of this payment stays in the wallet as credit.
    pub unallocated: Micros,
    /// The key (or provider event) had been recorded before: nothing was written now.
    pub duplicate: bool,
}

/// A payment with its allocations, as read back.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PaymentDetail {
    pub payment: Payment,
    pub allocations: Vec<Allocation>,
}

const PAYMENT_SELECT: &str = "SELECT p.id, a.code, p.method, p.provider, p.reference, \
     p.idem_key, p.currency, p.amount, p.allocated, p.received_ms, p.created_ms, p.ledger_seq \
     FROM payments p JOIN accounts a ON a.id = p.account_id WHERE p.tenant_id = $1";

fn payment_of(r: &DbRow) -> Result<Payment, StoreError> {
    Ok(Payment {
        id: r.i64(0)?,
        account: r.text(1)?,
        method: PaymentMethod::from_columns(&r.text(2)?, r.opt_text(3)?)?,
        reference: r.text(4)?,
        key: r.text(5)?,
        currency: r
            .text(6)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("payment currency: {e}")))?,
        amount: Micros(r.i64(7)?),
        allocated: Micros(r.i64(8)?),
        received_ms: r.i64(9)?,
        created_ms: r.i64(10)?,
        ledger_seq: r.i64(11)?,
    })
}

async fn allocations_of(
    tx: &mut Tx,
    t: TenantId,
    payment: i64,
) -> Result<Vec<Allocation>, StoreError> {
    tx.all(
        q(
            "SELECT pa.payment_id, pa.invoice_id, i.number, pa.amount, pa.allocated_ms \
           FROM payment_allocations pa JOIN invoices i ON i.id = pa.invoice_id \
           WHERE pa.tenant_id = $1 AND pa.payment_id = $2 ORDER BY pa.invoice_id",
        )
        .i64(t.0)
        .i64(payment),
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Allocation {
            payment_id: r.i64(0)?,
            invoice_id: r.i64(1)?,
            invoice_number: r.opt_text(2)?,
            amount: Micros(r.i64(3)?),
            allocated_ms: r.i64(4)?,
        })
    })
    .collect()
}

async fn payment_by_id(tx: &mut Tx, t: TenantId, id: i64) -> Result<Payment, StoreError> {
    let sql = format!("{PAYMENT_SELECT} AND p.id = $2");
    let r = tx
        .opt(q_composed(sql).i64(t.0).i64(id))
        .await?
        .ok_or_else(|| StoreError::not_found("payment", id.to_string()))?;
    payment_of(&r)
}

/// Money of one payment applied to one invoice, as planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Planned {
    payment: i64,
    invoice: i64,
    amount: i64,
}

/// Something with an id and money left: an open payment (unallocated) or an open invoice
/// (total less paid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    id: i64,
    left: i64,
}

/// Oldest money to oldest invoices: walks both lists in order, each step using up the payment
/// or the invoice (or both), so a payment meets an invoice at most once.
fn plan(payments: &[Open], invoices: &[Open]) -> Vec<Planned> {
    let mut out = Vec::new();
    let (mut pi, mut ii) = (0, 0);
    let mut p_left = payments.first().map_or(0, |p| p.left);
    let mut i_left = invoices.first().map_or(0, |i| i.left);
    while let (Some(p), Some(i)) = (payments.get(pi), invoices.get(ii)) {
        let amount = p_left.min(i_left);
        if amount > 0 {
            out.push(Planned {
                payment: p.id,
                invoice: i.id,
                amount,
            });
        }
        p_left -= amount;
        i_left -= amount;
        if p_left <= 0 {
            pi += 1;
            p_left = payments.get(pi).map_or(0, |p| p.left);
        }
        if i_left <= 0 {
            ii += 1;
            i_left = invoices.get(ii).map_or(0, |i| i.left);
        }
    }
    out
}

/// Applies the account's unallocated payment money to its open invoices, oldest to oldest, in
/// the caller's transaction (which holds the tenant's ledger lock). Returns what it allocated.
async fn apply_credit(
    tx: &mut Tx,
    t: TenantId,
    account: i64,
    now_ms: i64,
) -> Result<Vec<Allocation>, StoreError> {
    let lock = tx.for_update();
    let payments = tx
        .all(
            q_composed(format!(
                "SELECT id, amount - allocated FROM payments WHERE tenant_id = $1 \
             AND account_id = $2 AND allocated < amount ORDER BY id LIMIT $3{lock}"
            ))
            .i64(t.0)
            .i64(account)
            .i64(MAX_OPEN),
        )
        .await?
        .iter()
        .map(|r| {
            Ok(Open {
                id: r.i64(0)?,
                left: r.i64(1)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    if payments.is_empty() {
        return Ok(Vec::new());
    }
    let invoices = tx
        .all(
            q_composed(format!(
                "SELECT i.id, i.total - i.paid, i.number FROM invoices i WHERE i.tenant_id = $1 \
             AND i.account_id = $2 AND i.kind = 'invoice' AND i.status = 'finalized' \
             AND i.paid < i.total AND NOT EXISTS (SELECT 1 FROM invoices c \
             WHERE c.tenant_id = i.tenant_id AND c.corrects_id = i.id) \
             ORDER BY i.id LIMIT $3{lock}"
            ))
            .i64(t.0)
            .i64(account)
            .i64(MAX_OPEN),
        )
        .await?;
    let mut open = Vec::with_capacity(invoices.len());
    let mut numbers = std::collections::HashMap::with_capacity(invoices.len());
    for r in &invoices {
        let id = r.i64(0)?;
        open.push(Open {
            id,
            left: r.i64(1)?,
        });
        numbers.insert(id, r.opt_text(2)?);
    }
    let planned = plan(&payments, &open);
    let mut out = Vec::with_capacity(planned.len());
    for p in planned {
        tx.exec(
            q(
                "INSERT INTO payment_allocations (tenant_id, payment_id, invoice_id, amount, \
               allocated_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .i64(t.0)
            .i64(p.payment)
            .i64(p.invoice)
            .i64(p.amount)
            .i64(now_ms),
        )
        .await?;
        let n = tx
            .exec(
                q(
                    "UPDATE payments SET allocated = allocated + $1 WHERE tenant_id = $2 \
                   AND id = $3 AND allocated + $1 <= amount",
                )
                .i64(p.amount)
                .i64(t.0)
                .i64(p.payment),
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!(
                "payment {} cannot take an allocation of {}",
                p.payment,
                Micros(p.amount)
            )));
        }
        let n = tx
            .exec(
                q("UPDATE invoices SET paid = paid + $1, \
                   status = CASE WHEN paid + $1 = total THEN 'paid' ELSE status END \
                   WHERE tenant_id = $2 AND id = $3 AND status = 'finalized' \
                   AND paid + $1 <= total")
                .i64(p.amount)
                .i64(t.0)
                .i64(p.invoice),
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!(
                "invoice {} cannot take a payment of {}",
                p.invoice,
                Micros(p.amount)
            )));
        }
        out.push(Allocation {
            payment_id: p.payment,
            invoice_id: p.invoice,
            invoice_number: numbers.get(&p.invoice).cloned().flatten(),
            amount: Micros(p.amount),
            allocated_ms: now_ms,
        });
    }
    Ok(out)
}

/// The account's id, wallet and currency.
struct AccountRef {
    id: i64,
    wallet: i64,
    currency: Currency,
}

async fn account_ref(tx: &mut Tx, t: TenantId, code: &str) -> Result<AccountRef, StoreError> {
    let r = tx
        .opt(
            q("SELECT id, wallet_id, currency FROM accounts WHERE tenant_id = $1 AND code = $2")
                .i64(t.0)
                .text(code),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("account", code))?;
    Ok(AccountRef {
        id: r.i64(0)?,
        wallet: r.i64(1)?,
        currency: r
            .text(2)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("account currency: {e}")))?,
    })
}

/// The payment recorded under `key`, as a duplicate of `req` — or a conflict when `req` says
/// something else.
async fn existing(
    tx: &mut Tx,
    t: TenantId,
    req: &PaymentRequest,
) -> Result<Option<RecordedPayment>, StoreError> {
    let sql = format!("{PAYMENT_SELECT} AND p.idem_key = $2");
    let Some(r) = tx
        .opt(q_composed(sql).i64(t.0).text(req.key.as_str()))
        .await?
    else {
        return Ok(None);
    };
    let payment = payment_of(&r)?;
    let same = payment.account == req.account
        && payment.method == req.method
        && payment.reference == req.reference
        && payment.currency == req.currency
        && payment.amount == req.amount;
    if !same {
        return Err(StoreError::Conflict {
            entity: "payment with idempotency key",
            key: req.key.clone(),
        });
    }
    let allocations = allocations_of(tx, t, payment.id).await?;
    Ok(Some(RecordedPayment {
        unallocated: payment.unallocated(),
        payment,
        allocations,
        credit_applied: Vec::new(),
        duplicate: true,
    }))
}

/// Records `req` in the caller's transaction, which must hold the tenant's ledger lock.
async fn record_in(
    tx: &mut Tx,
    t: TenantId,
    req: &PaymentRequest,
    now_ms: i64,
) -> Result<RecordedPayment, StoreError> {
    req.check(now_ms)?;
    if let Some(dup) = existing(tx, t, req).await? {
        return Ok(dup);
    }
    let account = account_ref(tx, t, &req.account).await?;
    if account.currency != req.currency {
        return Err(StoreError::invalid(
            "currency",
            format!(
                "{}: account {} is in {}",
                req.currency, req.account, account.currency
            ),
        ));
    }
    let clearing = crate::books::book_id(tx, t, "clearing").await?;
    let posting = TxRequest::new(
        ledger_key(KeySource::Payment, &req.key)?,
        TxKind::Payment,
        req.received_ms,
        req.memo(),
        [Leg::new(clearing, account.wallet, req.amount)],
    )
    .map_err(|e| StoreError::invalid("payment", e.to_string()))?;
    let posted = match crate::ledger::post(tx, t, &posting).await {
        Ok(p) => p,
        // The ledger has the key but no payment row has it: only a corrupted store can say so.
        Err(StoreError::Ledger(toll_charging::ledger::LedgerError::KeyReused { key })) => {
            return Err(StoreError::Corrupt(format!(
                "ledger key {key} is taken by no payment"
            )));
        }
        Err(e) => return Err(e),
    };
    if posted.duplicate {
        return Err(StoreError::Corrupt(format!(
            "payment {:?} is in the ledger but not in payments",
            req.key
        )));
    }
    let id = tx
        .one(
            q(
                "INSERT INTO payments (tenant_id, account_id, method, provider, reference, \
               idem_key, currency, amount, ledger_seq, received_ms, created_ms) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .i64(t.0)
            .i64(account.id)
            .text(req.method.kind())
            .opt_text(req.method.provider())
            .text(req.reference.as_str())
            .text(req.key.as_str())
            .text(req.currency.as_str())
            .i64(req.amount.0)
            .i64(posted.first_seq)
            .i64(req.received_ms)
            .i64(now_ms),
        )
        .await
        .map_err(|e| e.conflict("payment with idempotency key", &req.key))?
        .i64(0)?;
    // The new payment has the largest id: older credit goes first, then its money.
    let (allocations, credit_applied) = apply_credit(tx, t, account.id, now_ms)
        .await?
        .into_iter()
        .partition(|a| a.payment_id == id);
    let payment = payment_by_id(tx, t, id).await?;
    Ok(RecordedPayment {
        unallocated: payment.unallocated(),
        payment,
        allocations,
        credit_applied,
        duplicate: false,
    })
}

impl Store {
    /// Records a payment: credits the wallet, writes the payment and allocates it (see the
    /// module documentation), in one transaction. The same idempotency key records once and
    /// returns that payment (`duplicate`); with different content it is
    /// [`StoreError::Conflict`].
    pub async fn record_payment(
        &self,
        t: TenantId,
        req: &PaymentRequest,
    ) -> Result<RecordedPayment, StoreError> {
        let mut tx = self.begin().await?;
        crate::ledger::lock_head(&mut tx, t).await?;
        let out = record_in(&mut tx, t, req, crate::now_ms()).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// Records a payment a provider's webhook event reports, once per (provider, event id):
    /// providers deliver events at least once, so the same event again returns the payment it
    /// recorded (`duplicate`) and writes nothing. A different event for a payment already
    /// recorded under the same idempotency key (the provider's payment id is a good key) is
    /// a duplicate too. `req.method` must be [`PaymentMethod::Provider`] of `provider`.
    pub async fn record_provider_event(
        &self,
        t: TenantId,
        provider: &str,
        event_id: &str,
        req: &PaymentRequest,
    ) -> Result<RecordedPayment, StoreError> {
        check_provider(provider)?;
        if event_id.is_empty()
            || event_id.len() > MAX_EVENT_ID_LEN
            || !event_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(StoreError::invalid(
                "event_id",
                format!("1 to {MAX_EVENT_ID_LEN} printable ASCII characters"),
            ));
        }
        if req.method.provider() != Some(provider) {
            return Err(StoreError::invalid(
                "method",
                format!(
                    "{}: a {provider} event records a provider:{provider} payment",
                    req.method
                ),
            ));
        }
        let now = crate::now_ms();
        let mut tx = self.begin().await?;
        crate::ledger::lock_head(&mut tx, t).await?;
        let seen = tx
            .opt(
                q(
                    "SELECT payment_id FROM provider_events WHERE tenant_id = $1 \
                   AND provider = $2 AND event_id = $3",
                )
                .i64(t.0)
                .text(provider)
                .text(event_id),
            )
            .await?;
        if let Some(r) = seen {
            let payment = payment_by_id(&mut tx, t, r.i64(0)?).await?;
            let allocations = allocations_of(&mut tx, t, payment.id).await?;
            return Ok(RecordedPayment {
                unallocated: payment.unallocated(),
                payment,
                allocations,
                credit_applied: Vec::new(),
                duplicate: true,
            });
        }
        let out = record_in(&mut tx, t, req, now).await?;
        tx.exec(
            q(
                "INSERT INTO provider_events (tenant_id, provider, event_id, payment_id, \
               received_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .i64(t.0)
            .text(provider)
            .text(event_id)
            .i64(out.payment.id)
            .i64(now),
        )
        .await
        .map_err(|e| e.conflict("provider event", event_id))?;
        tx.commit().await?;
        Ok(out)
    }

    /// Applies the account's unallocated payment money (its credit) to its finalized, not
    /// fully paid invoices, oldest money to oldest invoice. Call it after invoices are
    /// finalized (a bill run, [`Store::finalize_invoice`]); recording a payment does it too.
    /// Returns what it allocated (nothing when there was no credit or nothing to pay).
    pub async fn allocate_credit(
        &self,
        t: TenantId,
        account: &str,
    ) -> Result<Vec<Allocation>, StoreError> {
        let mut tx = self.begin().await?;
        crate::ledger::lock_head(&mut tx, t).await?;
        let a = account_ref(&mut tx, t, account).await?;
        let out = apply_credit(&mut tx, t, a.id, crate::now_ms()).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// [`Store::allocate_credit`] for every account of the tenant that has credit, one
    /// transaction each: what to run after a bill run.
    pub async fn allocate_all_credit(&self, t: TenantId) -> Result<Vec<Allocation>, StoreError> {
        let accounts: Vec<String> =
            {
                let mut tx = self.read().await?;
                tx.all(
                q("SELECT DISTINCT a.code FROM payments p JOIN accounts a ON a.id = p.account_id \
                   WHERE p.tenant_id = $1 AND p.allocated < p.amount ORDER BY a.code LIMIT $2")
                .i64(t.0)
                .i64(MAX_CREDIT_ACCOUNTS),
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, _>>()?
            };
        let mut out = Vec::new();
        for a in accounts {
            out.extend(self.allocate_credit(t, &a).await?);
        }
        Ok(out)
    }

    /// Payment `id` with its allocations.
    pub async fn payment(&self, t: TenantId, id: i64) -> Result<PaymentDetail, StoreError> {
        let mut tx = self.read().await?;
        let payment = payment_by_id(&mut tx, t, id).await?;
        let allocations = allocations_of(&mut tx, t, id).await?;
        Ok(PaymentDetail {
            payment,
            allocations,
        })
    }

    /// Payments newest first, optionally of one account, after `before` (the last id of the
    /// previous page); at most [`MAX_PAGE`].
    pub async fn payments(
        &self,
        t: TenantId,
        account: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut tx = self.read().await?;
        let sql = format!(
            "{PAYMENT_SELECT} AND ($2 IS NULL OR a.code = $2) AND p.id < $3 \
             ORDER BY p.id DESC LIMIT $4"
        );
        tx.all(
            q_composed(sql)
                .i64(t.0)
                .opt_text(account)
                .i64(before.unwrap_or(i64::MAX))
                .i64(limit.clamp(1, MAX_PAGE)),
        )
        .await?
        .iter()
        .map(payment_of)
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(v: &[(i64, i64)]) -> Vec<Open> {
        v.iter().map(|&(id, left)| Open { id, left }).collect()
    }

    fn triples(p: &[Planned]) -> Vec<(i64, i64, i64)> {
        p.iter().map(|x| (x.payment, x.invoice, x.amount)).collect()
    }

    #[test]
    fn oldest_money_pays_oldest_invoices_and_never_more_than_either() {
        // 10 and 5 of credit over invoices of 4, 8 and 7.
        let got = plan(&open(&[(1, 10), (2, 5)]), &open(&[(7, 4), (8, 8), (9, 7)]));
        assert_eq!(triples(&got), [(1, 7, 4), (1, 8, 6), (2, 8, 2), (2, 9, 3)]);
        // Exactly enough: both used up at once.
        let got = plan(&open(&[(1, 4), (2, 8)]), &open(&[(7, 4), (8, 8)]));
        assert_eq!(triples(&got), [(1, 7, 4), (2, 8, 8)]);
        assert!(plan(&open(&[(1, 4)]), &[]).is_empty());
        assert!(plan(&[], &open(&[(7, 4)])).is_empty());
    }

    #[test]
    fn methods_read_back_what_they_write() {
        for m in [
            PaymentMethod::BankTransfer,
            PaymentMethod::Cash,
            PaymentMethod::Card,
            PaymentMethod::Provider("stripe".into()),
        ] {
            assert_eq!(m.to_string().parse::<PaymentMethod>().unwrap(), m);
        }
        assert!("provider:Bad Name".parse::<PaymentMethod>().is_err());
        assert!("cheque".parse::<PaymentMethod>().is_err());
    }
}
