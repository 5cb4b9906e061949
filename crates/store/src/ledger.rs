//! The ledger in the store: posting balanced transactions with idempotency keys, and verifying
//! the hash chain and the account totals (`toll ledger verify`).
//!
//! The rules are `toll_charging::ledger`'s (pure); this module reads the state they need, lets
//! them decide, and writes what they decided — all in the caller's transaction. The tenant's
//! chain head row is locked first (`FOR UPDATE` on PostgreSQL; SQLite's write lock is already
//! held), which serialises each tenant's postings across workers: the chain stays linear and a
//! key checked under the lock cannot be taken by someone else before we insert it.

use toll_charging::ledger::{
    self, AccountKind, AccountState, BalanceCheck, ChainHead, ChainVerifier, Entry, Floor,
    IdempotencyKey, LedgerError, TxKind, TxRequest, VerifyReport,
};
use toll_core::{Currency, Micros};

use crate::db::{DbRow, Tx, q, q_composed};
use crate::keys::{KeySource, ledger_key};
use crate::{Store, StoreError, TenantId};

/// What posting did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Posted {
    /// The sequence number of the transaction's first entry.
    pub first_seq: i64,
    /// The key had been posted before with the same movement: nothing was written now.
    pub duplicate: bool,
}

/// Entries read per round trip when verifying: bounded memory on any ledger size.
const VERIFY_PAGE: i64 = 10_000;

pub(crate) fn floor_of(kind: &str, micros: i64) -> Result<Floor, StoreError> {
    Ok(match kind {
        "zero" => Floor::Zero,
        "credit_limit" => Floor::CreditLimit(Micros(micros)),
        "unlimited" => Floor::Unlimited,
        other => return Err(StoreError::Corrupt(format!("floor kind {other:?}"))),
    })
}

pub(crate) fn account_state(r: &DbRow) -> Result<AccountState, StoreError> {
    let kind: AccountKind = r
        .text(1)?
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("account kind: {e:?}")))?;
    let currency: Currency = r
        .text(4)?
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("account currency: {e}")))?;
    Ok(AccountState {
        id: r.i64(0)?,
        kind,
        floor: floor_of(&r.text(2)?, r.i64(3)?)?,
        currency,
        debits: Micros(r.i64(5)?),
        credits: Micros(r.i64(6)?),
    })
}

pub(crate) const ACCOUNT_COLUMNS: &str =
    "id, kind, floor_kind, floor_micros, currency, debits, credits";

/// Locks and reads the tenant's chain head (creating the genesis head on first use).
pub(crate) async fn lock_head(tx: &mut Tx, tenant: TenantId) -> Result<ChainHead, StoreError> {
    Ok(lock_head_epoch(tx, tenant).await?.0)
}

/// Locks and reads the tenant's chain head and its charging epoch (see the migration
/// `0002_charging_epoch`), creating the genesis head on first use.
pub(crate) async fn lock_head_epoch(
    tx: &mut Tx,
    tenant: TenantId,
) -> Result<(ChainHead, i64), StoreError> {
    let sql = format!(
        "SELECT seq, hash, epoch FROM ledger_heads WHERE tenant_id = $1{}",
        tx.for_update()
    );
    if let Some(r) = tx.opt(q_composed(sql.clone()).i64(tenant.0)).await? {
        return Ok((head_of(&r)?, r.i64(2)?));
    }
    let g = ChainHead::genesis(tenant.0);
    tx.exec(
        q(
            "INSERT INTO ledger_heads (tenant_id, seq, hash) VALUES ($1, $2, $3) \
           ON CONFLICT (tenant_id) DO NOTHING",
        )
        .i64(tenant.0)
        .i64(g.seq)
        .bytes(&g.hash),
    )
    .await?;
    let r = tx.one(q_composed(sql).i64(tenant.0)).await?;
    Ok((head_of(&r)?, r.i64(2)?))
}

/// Moves the tenant's charging epoch, so that every charger reads the lines, subscriptions
/// and buckets it cached again. Every write that adds or replaces subscriptions, buckets or
/// lines calls it in its transaction (a charger's cache would otherwise miss the change).
pub(crate) async fn bump_epoch(tx: &mut Tx, tenant: TenantId) -> Result<(), StoreError> {
    lock_head(tx, tenant).await?;
    tx.exec(q("UPDATE ledger_heads SET epoch = epoch + 1 WHERE tenant_id = $1").i64(tenant.0))
        .await?;
    Ok(())
}

fn head_of(r: &DbRow) -> Result<ChainHead, StoreError> {
    let hash: [u8; 32] = r
        .bytes(1)?
        .try_into()
        .map_err(|_| StoreError::Corrupt("chain head hash is not 32 bytes".into()))?;
    Ok(ChainHead {
        seq: r.i64(0)?,
        hash,
    })
}

/// Writes the chain head and the charging epoch a charge batch leaves behind.
pub(crate) async fn set_head_epoch(
    tx: &mut Tx,
    tenant: TenantId,
    h: &ChainHead,
    epoch: i64,
) -> Result<(), StoreError> {
    tx.exec(
        q("UPDATE ledger_heads SET seq = $1, hash = $2, epoch = $3 WHERE tenant_id = $4")
            .i64(h.seq)
            .bytes(&h.hash)
            .i64(epoch)
            .i64(tenant.0),
    )
    .await?;
    Ok(())
}

pub(crate) async fn set_head(
    tx: &mut Tx,
    tenant: TenantId,
    h: &ChainHead,
) -> Result<(), StoreError> {
    tx.exec(
        q("UPDATE ledger_heads SET seq = $1, hash = $2 WHERE tenant_id = $3")
            .i64(h.seq)
            .bytes(&h.hash)
            .i64(tenant.0),
    )
    .await?;
    Ok(())
}

/// The entries already posted under `key`, in leg order.
async fn entries_of_key(
    tx: &mut Tx,
    tenant: TenantId,
    key: &IdempotencyKey,
) -> Result<Vec<Entry>, StoreError> {
    let rows = tx
        .all(
            q(
                "SELECT seq, tx_key, leg, kind, at_ms, debit_id, credit_id, amount, memo, \
               prev_hash, hash FROM ledger_entries WHERE tenant_id = $1 AND tx_key = $2 \
               ORDER BY leg",
            )
            .i64(tenant.0)
            .text(key.as_str()),
        )
        .await?;
    rows.iter().map(entry_of).collect()
}

fn entry_of(r: &DbRow) -> Result<Entry, StoreError> {
    let hash32 = |v: Vec<u8>| -> Result<[u8; 32], StoreError> {
        v.try_into()
            .map_err(|_| StoreError::Corrupt("entry hash is not 32 bytes".into()))
    };
    Ok(Entry {
        seq: r.i64(0)?,
        key: IdempotencyKey::new(r.text(1)?)
            .map_err(|e| StoreError::Corrupt(format!("entry key: {e}")))?,
        leg_index: u16::try_from(r.i64(2)?)
            .map_err(|_| StoreError::Corrupt("entry leg index".into()))?,
        kind: r
            .text(3)?
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("entry kind: {e:?}")))?,
        at_ms: r.i64(4)?,
        debit: r.i64(5)?,
        credit: r.i64(6)?,
        amount: Micros(r.i64(7)?),
        memo: r.text(8)?,
        prev_hash: hash32(r.bytes(9)?)?,
        hash: hash32(r.bytes(10)?)?,
    })
}

/// Posts one transaction in the caller's database transaction: the same key with the same
/// movement is recorded once (`duplicate`), with a different movement refused; a transaction
/// that would push a floored account below its floor is refused and writes nothing.
pub(crate) async fn post(
    tx: &mut Tx,
    tenant: TenantId,
    req: &TxRequest,
) -> Result<Posted, StoreError> {
    let head = lock_head(tx, tenant).await?;
    let existing = entries_of_key(tx, tenant, req.key()).await?;
    if let Some(first) = existing.first() {
        if req.same_as(&existing) {
            return Ok(Posted {
                first_seq: first.seq,
                duplicate: true,
            });
        }
        return Err(StoreError::Ledger(LedgerError::KeyReused {
            key: req.key().as_str().to_string(),
        }));
    }
    let mut ids: Vec<i64> = req
        .legs()
        .iter()
        .flat_map(|l| [l.debit, l.credit])
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE tenant_id = $1 AND id IN ({}) \
         ORDER BY id{}",
        placeholders.join(", "),
        tx.for_update()
    );
    let mut query = q_composed(sql).i64(tenant.0);
    for id in &ids {
        query = query.i64(*id);
    }
    let accounts = tx
        .all(query)
        .await?
        .iter()
        .map(account_state)
        .collect::<Result<Vec<_>, _>>()?;
    let effects =
        ledger::plan(req, |id| accounts.iter().find(|a| a.id == id)).map_err(StoreError::Ledger)?;
    let mut last = head;
    for c in req.chain(&head).map_err(StoreError::Ledger)? {
        tx.exec(
            q(
                "INSERT INTO ledger_entries (tenant_id, seq, tx_key, leg, kind, at_ms, debit_id, \
               credit_id, amount, memo, prev_hash, hash) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .i64(tenant.0)
            .i64(c.seq)
            .text(req.key().as_str())
            .i64(i64::from(c.leg_index))
            .text(req.kind().as_str())
            .i64(req.at_ms())
            .i64(c.leg.debit)
            .i64(c.leg.credit)
            .i64(c.leg.amount.0)
            .text(req.memo())
            .bytes(&c.prev_hash)
            .bytes(&c.hash),
        )
        .await?;
        last = c.head();
    }
    for e in &effects.accounts {
        tx.exec(
            q("UPDATE ledger_accounts SET debits = $1, credits = $2 WHERE tenant_id = $3 AND id = $4")
                .i64(e.debits.0)
                .i64(e.credits.0)
                .i64(tenant.0)
                .i64(e.account),
        )
        .await?;
    }
    set_head(tx, tenant, &last).await?;
    Ok(Posted {
        first_seq: head.seq + 1,
        duplicate: false,
    })
}

/// What `toll ledger verify` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LedgerReport {
    pub entries_checked: u64,
    /// The first broken link: its sequence number and why.
    pub first_break: Option<(i64, String)>,
    /// Accounts whose stored totals differ from the sums of their entries.
    pub account_mismatches: Vec<i64>,
}

impl LedgerReport {
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none() && self.account_mismatches.is_empty()
    }
}

impl Store {
    /// Posts a top-up: money received through a payment channel (clearing) into the account's
    /// wallet. `key` makes a retried top-up count once.
    pub async fn top_up(
        &self,
        tenant: TenantId,
        account: &str,
        amount: Micros,
        key: &str,
        memo: &str,
    ) -> Result<Posted, StoreError> {
        let mut tx = self.begin().await?;
        let wallet = crate::accounts::wallet_id(&mut tx, tenant, account).await?;
        let clearing = crate::books::book_id(&mut tx, tenant, "clearing").await?;
        let posted = crate::subscriptions::post_simple(
            &mut tx,
            tenant,
            ledger_key(KeySource::TopUp, key)?,
            TxKind::TopUp,
            crate::now_ms(),
            memo,
            clearing,
            wallet,
            amount,
        )
        .await?;
        tx.commit().await?;
        Ok(posted)
    }

    /// Posts any balanced transaction (refunds, adjustments, ...): the service the HTTP API and
    /// the billing runs use. Its key is kept apart from the keys of usage, top-ups and the
    /// store's own postings (see [`crate::keys`]).
    pub async fn post(&self, tenant: TenantId, req: &TxRequest) -> Result<Posted, StoreError> {
        let key = ledger_key(KeySource::Posted, req.key().as_str())?;
        let req = TxRequest::new(
            key,
            req.kind(),
            req.at_ms(),
            req.memo(),
            req.legs().iter().copied(),
        )
        .map_err(StoreError::Ledger)?;
        let mut tx = self.begin().await?;
        let posted = post(&mut tx, tenant, &req).await?;
        tx.commit().await?;
        Ok(posted)
    }

    /// Re-derives the tenant's whole chain from its entries, compares it with the stored head,
    /// and re-adds every account's totals from the entries: an edited amount, a deleted or
    /// re-linked entry, or a changed balance is reported with the first broken link.
    pub async fn verify_ledger(&self, tenant: TenantId) -> Result<LedgerReport, StoreError> {
        let mut tx = self.read().await?;
        let head = tx
            .opt(q("SELECT seq, hash FROM ledger_heads WHERE tenant_id = $1").i64(tenant.0))
            .await?
            .map(|r| head_of(&r))
            .transpose()?;
        let mut chain = ChainVerifier::new(tenant.0, head);
        let mut sums = BalanceCheck::new();
        let mut after = i64::MIN;
        loop {
            let rows = tx
                .all(
                    q(
                        "SELECT seq, tx_key, leg, kind, at_ms, debit_id, credit_id, amount, memo, \
                       prev_hash, hash FROM ledger_entries WHERE tenant_id = $1 AND seq > $2 \
                       ORDER BY seq LIMIT $3",
                    )
                    .i64(tenant.0)
                    .i64(after)
                    .i64(VERIFY_PAGE),
                )
                .await?;
            for r in &rows {
                let e = entry_of(r)?;
                chain.push(&e);
                sums.push(&e);
                after = e.seq;
            }
            if (rows.len() as i64) < VERIFY_PAGE {
                break;
            }
        }
        let report: VerifyReport = chain.finish();
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE tenant_id = $1");
        let accounts = tx
            .all(q_composed(sql).i64(tenant.0))
            .await?
            .iter()
            .map(account_state)
            .collect::<Result<Vec<_>, _>>()?;
        let mismatches = sums.finish(&accounts);
        Ok(LedgerReport {
            entries_checked: report.checked,
            first_break: report
                .first_break
                .map(|b| (b.seq, format!("{:?}", b.reason))),
            account_mismatches: mismatches.iter().map(|m| m.account).collect(),
        })
    }
}
