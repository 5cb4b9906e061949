//! Charging usage events: allowances first, then overage or the tariff, then the wallet and the
//! ledger — for a whole batch in one database transaction.
//!
//! A batch reads everything its events need in a few set-based queries (lines, subscriptions,
//! buckets, wallets, overage counters, already-charged keys), decides every event in memory
//! with the pure rules of `toll_charging` and `toll_catalog`, and writes the result with a few
//! multi-row statements. That is what makes charging fast on both engines, and because the
//! batch is one transaction a crash loses or half-applies nothing: a re-run finds the keys of
//! every committed event and charges only the rest.
//!
//! A [`Charger`] also keeps what it read (lines, buckets, counters, balances) for its next
//! batch, since reading is most of a batch's cost and bulk charging sees the same lines again
//! and again. It trusts that copy only while the tenant's charging epoch and chain sequence are
//! the ones its own last batch left (see [`State`]); otherwise it reads again, so several
//! chargers, top-ups and plan changes can share one database.
//!
//! Per event, in the order given:
//! 1. its key seen before (committed, or earlier in the batch): `Duplicate`, nothing written;
//! 2. its line unknown: `Refused`;
//! 3. allowances of every active subscription of the line drawn, most specific first
//!    ([`toll_charging::allowance::consume`]); what they do not cover is priced by the line's
//!    base plan ([`PlanDef::beyond_allowance`]): its overage rule cumulatively over the period,
//!    or its tariff (the event's own rated cost when nothing was covered, else the uncovered
//!    tail rated by the caller's [`TailRater`]), or — for a line without a plan — the event's
//!    rated cost;
//! 4. the amount debited from the account's wallet to revenue; a wallet that cannot pay is
//!    `Refused` and nothing of the event is kept (its allowance draws are undone), so it can be
//!    retried after a top-up.
//!
//! Charged events get a `charges` row (the idempotency record) and, when money moved, a ledger
//! transaction keyed by the event key.

use std::collections::HashMap;

use rustc_hash::FxHashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use jiff::civil::Date;
use rust_decimal::Decimal;
use toll_catalog::plan::{Beyond, PlanClass, PlanDef, ServiceScope, TariffRef};
use toll_catalog::proration;
use toll_charging::allowance::{self, Bucket, BucketSource, split_call};
use toll_charging::ledger::{self, AccountState, ChainHead, LedgerError, Leg, TxKind, TxRequest};
use toll_charging::overage;
use toll_core::{Micros, Rounding, RoundingMethod, UsageKind};

use crate::cdrs::{CdrRecord, CdrRow};
use crate::db::{Col, DbRow, Q, Tx, Writes, q, q_composed};
use crate::file_imports::ImportTally;
use crate::keys::{KeySource, ledger_key};
use crate::ledger::{
    ACCOUNT_COLUMNS, AccountRow, account_from_row, lock_head_epoch, set_head_epoch, write_accounts,
};
use crate::open_calls::{CallClose, CallStatus};
use crate::suspense::NewSuspense;
use crate::{Store, StoreError, Tenant, TenantId};

/// Most events one call charges; larger inputs are split by the caller (`toll charge` does).
pub const MAX_BATCH: usize = 50_000;
/// Ids per `IN (...)` list: far below both engines' parameter limits.
const IN_CHUNK: usize = 900;
/// Events decided between two charge-row inserts (see [`overlapped`]): one insert statement's
/// worth on SQLite.
const PIPELINE_SLICE: usize = 1_000;
/// Most lines a charger keeps between batches (about half a kilobyte each); past it the
/// cache starts again empty rather than growing without bound.
const MAX_CACHED_LINES: usize = 500_000;
/// A batch that needs at least this many uncached lines, and at least one in
/// `WHOLE_TENANT_SHARE` of the tenant's, reads the whole tenant ([`Charger::reads_whole_tenant`]).
const WHOLE_TENANT_MIN_LINES: usize = 4_096;
const WHOLE_TENANT_SHARE: usize = 4;
/// Most ledger entries by other writers a charger inspects to keep its cache; past it the
/// cached balances are all read again.
const MAX_FOREIGN_ENTRIES: i64 = 10_000;

/// One usage event to charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEvent {
    /// Unique per tenant; the same key twice is charged once.
    pub key: String,
    /// The subscriber line, in any form `accounts::normalise_number` accepts.
    pub number: String,
    pub usage: UsageKind,
    /// The named service for destination-bound allowances (e.g. `wechat`).
    pub service: Option<String>,
    /// Start of the usage, Unix milliseconds.
    pub at_ms: i64,
    /// In the usage kind's base unit (voice seconds, messages, bytes, custom units).
    pub quantity: i64,
    /// The number called, when the tail of a call must be rated by the tariff.
    pub destination: Option<String>,
    /// The tariff's cost of the whole event, when it was rated already (`toll rate`).
    pub rated_cost: Option<Decimal>,
}

/// What happened to one event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ChargeOutcome {
    Charged {
        /// Debited from the wallet (negative: credited, for volume-priced overage).
        amount: Micros,
        /// Base units the allowances covered.
        covered: i64,
        /// The ledger sequence number of the debit, when money moved.
        seq: Option<i64>,
    },
    Duplicate,
    Refused {
        code: RefusalCode,
        reason: String,
    },
}

/// Why an event was refused, as a stable class: the suspense queue files records by it, and a
/// caller can tell "fix the data" from "top up and retry".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The number is no active line of the tenant.
    UnknownSubscriber,
    /// A subscription of the line is suspended for an unpaid fee.
    Suspended,
    /// The event falls after the last period the plan was renewed for.
    NotRenewed,
    /// The wallet cannot pay it.
    InsufficientBalance,
    /// Beyond the allowances, and the plan prices nothing of that usage.
    NotPriced,
    /// The line has no plan and the event carries no rated cost.
    NotRated,
    /// Rating the part beyond the allowances with the plan's tariff failed.
    RatingFailed,
    /// The event itself is malformed (negative quantity, key too long, out-of-range time).
    Invalid,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::UnknownSubscriber => "unknown_subscriber",
            RefusalCode::Suspended => "suspended",
            RefusalCode::NotRenewed => "not_renewed",
            RefusalCode::InsufficientBalance => "insufficient_balance",
            RefusalCode::NotPriced => "not_priced",
            RefusalCode::NotRated => "not_rated",
            RefusalCode::RatingFailed => "rating_failed",
            RefusalCode::Invalid => "invalid",
        }
    }
}

/// A refusal decided in memory.
#[derive(Debug)]
struct Refusal {
    code: RefusalCode,
    reason: String,
}

impl Refusal {
    fn new(code: RefusalCode, reason: impl Into<String>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
        }
    }
}

/// Errors of the pure rules that do not say more are the event's own fault.
impl From<String> for Refusal {
    fn from(reason: String) -> Refusal {
        Refusal::new(RefusalCode::Invalid, reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Refusal {
        Refusal::new(RefusalCode::Invalid, reason)
    }
}

/// Rates the part of a call that the allowances did not cover, with the plan's tariff profile.
/// Implemented over `toll-rating` by the binary, which owns the loaded tariff.
pub trait TailRater: Send + Sync {
    /// The cost of `quantity` base units of `event` starting at `start_ms`.
    fn rate_tail(
        &self,
        event: &UsageEvent,
        tariff: &TariffRef,
        start_ms: i64,
        quantity: i64,
    ) -> Result<Decimal, String>;

    /// The most base units (≤ `quantity`) of `event` from `start_ms` that `available` pays for
    /// with the tariff: prepaid authorisation of a call's part beyond the allowances.
    fn max_tail(
        &self,
        event: &UsageEvent,
        tariff: &TariffRef,
        start_ms: i64,
        quantity: i64,
        available: Decimal,
    ) -> Result<i64, String>;
}

/// The answer to "how much of this usage may go ahead?" (prepaid authorisation).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Authorization {
    /// Base units allowed, ≤ the requested quantity; 0 is a refusal.
    pub allowed: i64,
    /// Of which covered by allowances.
    pub from_allowances: i64,
    /// Of which paid from the balance.
    pub from_balance: i64,
    /// What stopped it: `requested` (all of it may go ahead), `balance` or `plan` (the plan
    /// prices nothing beyond its allowances).
    pub limited_by: &'static str,
}

/// What priced a charged event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PricedBy {
    /// Allowances covered it all.
    Allowance,
    /// The plan's overage rule priced what they did not cover.
    Overage,
    /// The event's own rated cost, whole: nothing was covered and the tariff priced it.
    Tariff,
    /// The plan's tariff profile priced the part the allowances left (or the whole, unrated
    /// event).
    PlanTariff,
}

impl PricedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            PricedBy::Allowance => "allowance",
            PricedBy::Overage => "overage",
            PricedBy::Tariff => "tariff",
            PricedBy::PlanTariff => "plan_tariff",
        }
    }
}

/// A batch of rated CDRs for [`Charger::charge_records`].
pub struct RecordBatch<'a> {
    pub events: &'a [UsageEvent],
    /// One per event, in the same order.
    pub records: &'a [CdrRecord],
    /// Records of this batch that failed before charging (parsing, rating).
    pub suspense: &'a [NewSuspense],
    /// The suspense item for a refused event (its index in `events`, the refusal): called
    /// only for refused events, so the common batch builds no JSON.
    pub on_refused: &'a (dyn Fn(usize, RefusalCode, &str) -> NewSuspense + Send + Sync),
    /// Suspense items settled without charging (a re-processed record that cleansing now
    /// skips).
    pub resolved: &'a [i64],
    pub import: Option<ImportTally>,
    /// Open calls the batch's records end, closed in the same transaction (whatever each
    /// record's outcome: charged, duplicate or refused, its call is over).
    pub closes: &'a [CallClose],
}

impl std::fmt::Debug for RecordBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("events", &self.events.len())
            .field("suspense", &self.suspense.len())
            .field("import", &self.import)
            .field("closes", &self.closes.len())
            .finish_non_exhaustive()
    }
}

/// Charges batches of events for one tenant, caching plan definitions (an approved version
/// never changes) and the state its batches read (see [`State`]) across batches.
pub struct Charger {
    store: Store,
    tenant: Tenant,
    zone: jiff::tz::TimeZone,
    rounding: Rounding,
    /// Plan versions by id, looked up for every event: FxHash, not SipHash (ids are ours).
    plans: Mutex<FxHashMap<i64, Arc<PlanDef>>>,
    rater: Option<Arc<dyn TailRater>>,
    /// `None` until the first batch, and after any batch that failed half-way (its in-memory
    /// changes were never committed).
    state: tokio::sync::Mutex<Option<State>>,
}

/// What a charger read from the database — lines, buckets, overage counters, balances — kept
/// across batches, because reading it is most of a batch's cost and a charger usually sees the
/// same lines again. It is exact only while nothing else changed it: every charge batch and
/// every write to subscriptions, buckets or lines moves the tenant's epoch (migration
/// `0002_charging_epoch`), every other ledger write moves the chain's sequence. A batch that
/// finds the epoch it left starts from this state, dropping only the balances that other
/// ledger entries moved; any other epoch starts from nothing.
#[derive(Default)]
struct State {
    epoch: i64,
    seq: i64,
    lines: FxHashMap<String, Line>,
    /// Per subscription, the buckets with something left that had not expired at its floor.
    buckets: FxHashMap<i64, Vec<Bucket>>,
    /// Per subscription, the earliest event time its buckets were read for: an earlier event
    /// needs them read again (buckets that had expired by then were left out).
    floors: FxHashMap<i64, i64>,
    /// Buckets that start later than the earliest event they were read for.
    late: FxHashMap<i64, i64>,
    counters: HashMap<(i64, String, String), i64>,
    accounts: FxHashMap<i64, AccountState>,
    revenue: Option<i64>,
    /// How many active lines the tenant had when first counted (a hint for
    /// [`Charger::reads_whole_tenant`]; lines added since do not matter).
    tenant_lines: Option<usize>,
}

impl State {
    fn empty(epoch: i64, seq: i64) -> State {
        State {
            epoch,
            seq,
            ..State::default()
        }
    }
}

impl std::fmt::Debug for Charger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Charger")
            .field("tenant", &self.tenant.slug)
            .finish_non_exhaustive()
    }
}

/// A line and what it charges against.
struct Line {
    id: i64,
    account: i64,
    wallet: i64,
    subscriptions: Vec<Sub>,
}

#[derive(Clone)]
struct Sub {
    id: i64,
    version: i64,
    anchor: Date,
    /// Its fee for the current period was not paid (see `renewals`): its lines are refused.
    suspended: bool,
    /// The end of the last period it was granted, as an instant: later usage waits for the
    /// renewal that grants the next period's allowances.
    period_end: Option<(Date, i64)>,
}

/// A charge decided in memory, waiting for the batch's writes.
struct Decided {
    key: String,
    line: i64,
    account: i64,
    priced_by: PricedBy,
    subscription: Option<i64>,
    usage: UsageKind,
    service: Option<String>,
    at_ms: i64,
    quantity: i64,
    covered: i64,
    amount: Micros,
    seq: Option<i64>,
    /// The ledger entry, when money moved (one leg: wallet ↔ revenue).
    entry: Option<EntryRow>,
}

/// A ledger entry decided in memory, chained after the previous one of the batch.
struct EntryRow {
    seq: i64,
    key: String,
    at_ms: i64,
    debit: i64,
    credit: i64,
    amount: i64,
    memo: String,
    prev: [u8; 32],
    hash: [u8; 32],
}

impl Charger {
    pub fn new(store: Store, tenant: Tenant) -> Result<Charger, StoreError> {
        let zone = tenant.zone()?;
        let rounding = Rounding::new(RoundingMethod::Middle, tenant.currency.minor_units())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Charger {
            store,
            tenant,
            zone,
            rounding,
            plans: Mutex::new(FxHashMap::default()),
            rater: None,
            state: tokio::sync::Mutex::new(None),
        })
    }

    /// Rates uncovered call tails with the plan's tariff profile.
    pub fn with_rater(mut self, rater: Arc<dyn TailRater>) -> Charger {
        self.rater = Some(rater);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Charges one event (a batch of one).
    pub async fn charge(&self, event: &UsageEvent) -> Result<ChargeOutcome, StoreError> {
        let mut out = self.charge_batch(std::slice::from_ref(event)).await?;
        out.pop()
            .ok_or_else(|| StoreError::Corrupt("empty batch result".into()))
    }

    /// Charges up to [`MAX_BATCH`] events in one database transaction; one outcome per event,
    /// in order. An `Err` means the database failed and nothing of the batch was written.
    pub async fn charge_batch(
        &self,
        events: &[UsageEvent],
    ) -> Result<Vec<ChargeOutcome>, StoreError> {
        self.charge_inner(events, None).await
    }

    /// Charges a batch of rated CDRs like [`Charger::charge_batch`] and, in the same
    /// transaction: writes a `cdrs` row for every charged record, queues every refused record
    /// (and the batch's earlier failures) in the suspense queue, resolves suspense items that
    /// are charged now, and adds the batch's counts to its file import. A crash therefore
    /// leaves every record of a batch either charged and stored, or suspended, or untouched.
    pub async fn charge_records(
        &self,
        batch: RecordBatch<'_>,
    ) -> Result<Vec<ChargeOutcome>, StoreError> {
        if batch.records.len() != batch.events.len() {
            return Err(StoreError::invalid(
                "records",
                "one record per event is required",
            ));
        }
        if batch.closes.iter().any(|c| c.status == CallStatus::Open) {
            return Err(StoreError::invalid(
                "closes",
                "a call closes as ended or swept",
            ));
        }
        crate::cdrs::ensure_partitions(&self.store, batch.records.iter().map(|r| r.start_ms))
            .await?;
        self.charge_inner(batch.events, Some(&batch)).await
    }

    async fn charge_inner(
        &self,
        events: &[UsageEvent],
        extras: Option<&RecordBatch<'_>>,
    ) -> Result<Vec<ChargeOutcome>, StoreError> {
        if events.len() > MAX_BATCH {
            return Err(StoreError::invalid(
                "events",
                format!("at most {MAX_BATCH} per batch"),
            ));
        }
        let t = self.tenant.id;
        let mut slot = self.state.lock().await;
        // Taken out: if anything below fails, the slot stays empty and the next batch reads
        // everything again instead of trusting half-applied in-memory changes.
        let cached = slot.take();
        let mut tx = self.store.begin().await?;
        let (head, epoch) = lock_head_epoch(&mut tx, t).await?;
        let mut st = revalidate(&mut tx, t, cached, head.seq, epoch).await?;

        let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
        let mut numbers: Vec<Option<String>> = Vec::new();
        // While the engine looks the keys up, this thread normalises the numbers and works
        // out which lines it must read.
        let (seen_keys, needs) = {
            let key_query = keys_query(&tx, t, &keys)?;
            let st = &mut st;
            let numbers = &mut numbers;
            overlapped(tx.all(key_query), move |pump| {
                *numbers = events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| {
                        if i % PUMP_EVERY == 0 {
                            pump();
                        }
                        crate::accounts::normalise_number(&e.number).ok()
                    })
                    .collect();
                let numbers: &Vec<Option<String>> = numbers;
                plan_reads(st, events, numbers)
            })
            .await?
        };
        let seen_keys = keys_from_rows(&seen_keys)?;
        self.load_missing(&mut tx, &mut st, needs).await?;

        let mut out = Vec::with_capacity(events.len());
        let mut decided: Vec<Decided> = Vec::with_capacity(events.len());
        let mut batch_keys: std::collections::HashSet<&str> = Default::default();
        let mut chain = head;
        let mut touched_buckets: Vec<(i64, i64)> = Vec::new();
        let mut touched_counters: Vec<(i64, String, String)> = Vec::new();
        let revenue = st
            .revenue
            .ok_or_else(|| StoreError::Corrupt("revenue book not loaded".into()))?;
        let State {
            lines,
            buckets,
            late,
            counters,
            accounts,
            ..
        } = &mut st;
        // Events are decided a slice at a time, and each slice's charge rows are inserted
        // while the next slice is decided: the engine (sqlx's SQLite worker thread, or the
        // PostgreSQL server) and this thread then work at the same time.
        let mut sent = 0;
        let mut pool: Vec<Bucket> = Vec::new();
        for (slice, slice_numbers) in events
            .chunks(PIPELINE_SLICE)
            .zip(numbers.chunks(PIPELINE_SLICE))
        {
            let inserts = charge_writes(&tx, t, &decided[sent..])?;
            sent = decided.len();
            overlapped(tx.run_writes(inserts), |pump| {
                for (i, (ev, number)) in slice.iter().zip(slice_numbers).enumerate() {
                    if i % PUMP_EVERY == 0 {
                        pump();
                    }
                    if seen_keys.contains(ev.key.as_str()) || batch_keys.contains(ev.key.as_str()) {
                        out.push(ChargeOutcome::Duplicate);
                        continue;
                    }
                    let refused = |r: Refusal| ChargeOutcome::Refused {
                        code: r.code,
                        reason: r.reason,
                    };
                    let Some(line) = number.as_ref().and_then(|n| lines.get(n)) else {
                        out.push(refused(Refusal::new(
                            RefusalCode::UnknownSubscriber,
                            format!("line {:?} is not a subscriber of this tenant", ev.number),
                        )));
                        continue;
                    };
                    match self.decide(
                        ev,
                        line,
                        late,
                        revenue,
                        buckets,
                        counters,
                        accounts,
                        &mut chain,
                        &mut pool,
                        &mut touched_buckets,
                    ) {
                        Ok((d, counter)) => {
                            // Only a charged key is taken: a refused one may be retried.
                            batch_keys.insert(ev.key.as_str());
                            if let Some(c) = counter {
                                touched_counters.push(c);
                            }
                            out.push(ChargeOutcome::Charged {
                                amount: d.amount,
                                covered: d.covered,
                                seq: d.seq,
                            });
                            decided.push(d);
                        }
                        Err(reason) => out.push(refused(reason)),
                    }
                }
            })
            .await?;
        }

        let rest = charge_writes(&tx, t, &decided[sent..])?;
        tx.run_writes(rest).await?;
        write_entries(&mut tx, t, &decided).await?;
        touched_buckets.sort_unstable();
        touched_buckets.dedup();
        write_buckets(&mut tx, t, &touched_buckets, buckets).await?;
        touched_counters.sort();
        touched_counters.dedup();
        write_counters(&mut tx, t, &touched_counters, counters).await?;
        let mut touched_accounts: Vec<i64> = decided
            .iter()
            .filter_map(|d| d.entry.as_ref())
            .flat_map(|e| [e.debit, e.credit])
            .collect();
        touched_accounts.sort_unstable();
        touched_accounts.dedup();
        write_accounts(&mut tx, t, &touched_accounts, accounts).await?;
        if let Some(x) = extras {
            write_record_extras(&mut tx, t, x, &out, &decided).await?;
        }
        let next_epoch = epoch
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt("charging epoch overflow".into()))?;
        set_head_epoch(&mut tx, t, &chain, next_epoch).await?;
        tx.commit().await?;
        st.epoch = next_epoch;
        st.seq = chain.seq;
        *slot = Some(st);
        Ok(out)
    }

    /// Reads into `st` what the batch needs and it lacks (see [`plan_reads`]): lines never
    /// read (or read for later events only), with their subscriptions, buckets and counters;
    /// their wallets; the revenue book; plan definitions.
    async fn load_missing(
        &self,
        tx: &mut Tx,
        st: &mut State,
        needs: Needs<'_>,
    ) -> Result<(), StoreError> {
        let t = self.tenant.id;
        let Needs { earliest, stale } = needs;
        if !stale.is_empty() {
            let whole = self.reads_whole_tenant(tx, st, stale.len()).await?;
            let mut fresh = if whole {
                let mut all = load_lines(tx, t, &self.zone, Scope::Tenant).await?;
                // Cached lines stay as they are (the cache is exact); only the stale ones
                // and those never read are taken.
                all.retain(|n, _| {
                    !st.lines.contains_key(n) || stale.binary_search(&n.as_str()).is_ok()
                });
                all
            } else {
                load_lines(tx, t, &self.zone, Scope::Only(&stale)).await?
            };
            for n in &stale {
                st.lines.remove(*n);
            }
            let mut sub_ids: Vec<i64> = fresh
                .values()
                .flat_map(|l| l.subscriptions.iter().map(|s| s.id))
                .collect();
            sub_ids.sort_unstable();
            sub_ids.dedup();
            // Never raise a subscription's floor: a line sharing it may have been read for
            // earlier events.
            let floor = stale
                .iter()
                .filter_map(|n| earliest.get(n))
                .chain(sub_ids.iter().filter_map(|id| st.floors.get(id)))
                .copied()
                .min()
                .unwrap_or(0);
            let buckets = load_buckets(tx, t, &sub_ids, whole, floor, &mut st.late).await?;
            for id in &sub_ids {
                st.buckets.insert(*id, Vec::new());
                st.floors.insert(*id, floor);
            }
            st.buckets.extend(buckets);
            st.counters.extend(load_counters(tx, t, &sub_ids).await?);
            self.load_plans(tx, t, fresh.values()).await?;
            st.lines.extend(fresh.drain());
        }
        if st.revenue.is_none() {
            st.revenue = Some(crate::books::book_id(tx, t, "revenue").await?);
        }
        let mut wanted: Vec<i64> = earliest
            .keys()
            .filter_map(|n| st.lines.get(*n))
            .map(|l| l.wallet)
            .chain(st.revenue)
            .filter(|id| !st.accounts.contains_key(id))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        st.accounts
            .extend(load_accounts(tx, t, &wanted, true).await?);
        Ok(())
    }

    /// Whether a batch that needs `stale` uncached lines reads all the tenant's lines at once.
    ///
    /// A batch that needs a large share of the tenant (a charger's first batches do) reads
    /// it faster in one pass per table than by probing each line, subscription and bucket
    /// through the indexes: one 100,000-line tenant (400,000 buckets) took ≈ 0.9 s to read whole
    /// against ≈ 2.3 s spread over its first ten batches of 50,000 events on PostgreSQL, and it
    /// leaves later batches nothing to read. Small batches and large tenants (more lines than
    /// the cache holds) keep reading only what they need; the tenant's line count is read once
    /// per cache, and only when a batch needs many lines.
    async fn reads_whole_tenant(
        &self,
        tx: &mut Tx,
        st: &mut State,
        stale: usize,
    ) -> Result<bool, StoreError> {
        if stale < WHOLE_TENANT_MIN_LINES {
            return Ok(false);
        }
        let total = match st.tenant_lines {
            Some(n) => n,
            None => {
                let n = tx
                    .one(
                        q("SELECT count(*) FROM subscribers WHERE tenant_id = $1 \
                           AND status = 'active'")
                        .i64(self.tenant.id.0),
                    )
                    .await?
                    .i64(0)?;
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                st.tenant_lines = Some(n);
                n
            }
        };
        Ok(total <= MAX_CACHED_LINES && stale.saturating_mul(WHOLE_TENANT_SHARE) >= total)
    }

    /// Decides one event against the batch's in-memory state, changing that state only when the
    /// event is charged. Returns the charge and the counter it moved; appends the (subscription,
    /// bucket) pairs it drew on to `drawn`.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn decide(
        &self,
        ev: &UsageEvent,
        line: &Line,
        late: &FxHashMap<i64, i64>,
        revenue: i64,
        buckets: &mut FxHashMap<i64, Vec<Bucket>>,
        counters: &mut HashMap<(i64, String, String), i64>,
        accounts: &mut FxHashMap<i64, AccountState>,
        chain: &mut ChainHead,
        pool: &mut Vec<Bucket>,
        drawn: &mut Vec<(i64, i64)>,
    ) -> Result<(Decided, Option<(i64, String, String)>), Refusal> {
        let key = ledger_key(KeySource::Usage, &ev.key).map_err(|e| e.to_string())?;
        if ev.quantity < 0 {
            return Err(format!("quantity {} is negative", ev.quantity).into());
        }
        let at = jiff::Timestamp::from_millisecond(ev.at_ms).map_err(|e| e.to_string())?;
        let base = self.base_plan(line).map_err(|e| e.to_string())?;
        in_service(line, &base, ev.at_ms)?;

        // Draw on a copy of the line's buckets: a refused event must leave them untouched.
        usable_buckets(line, buckets, late, ev.at_ms, pool);
        let consumption = allowance::consume(
            pool,
            &ev.usage,
            ev.service.as_deref(),
            ev.quantity,
            ev.at_ms,
        )
        .map_err(|e| e.to_string())?;
        let uncovered = consumption.uncovered;
        let mut counter = None;
        // What priced the event, kept with a stored CDR: re-rating re-prices only what the
        // tariff priced whole.
        let mut priced_by = PricedBy::Tariff;
        let amount: Decimal = if uncovered == 0 {
            priced_by = PricedBy::Allowance;
            Decimal::ZERO
        } else {
            match base
                .as_ref()
                .map(|(s, def)| (s, def.beyond_allowance(&ev.usage)))
            {
                Some((sub, Beyond::Overage(rule))) => {
                    // The civil day only matters for the overage period (most events never get
                    // here: their allowances cover them).
                    let day = at.to_zoned(self.zone.clone()).date();
                    let period =
                        proration::period_containing(base_validity(&base), sub.anchor, day)
                            .map_err(|e| e.to_string())?;
                    let ck = (
                        sub.id,
                        ev.usage.as_str().to_string(),
                        period.start().to_string(),
                    );
                    let before = counters.get(&ck).copied().unwrap_or(0);
                    let c = overage::price_overage(rule, before, uncovered)
                        .map_err(|e| e.to_string())?;
                    let accrued = before
                        .checked_add(c.metered)
                        .ok_or("overage counter overflow")?;
                    counter = Some((ck, accrued));
                    priced_by = PricedBy::Overage;
                    c.rounded_amount(self.rounding)
                }
                Some((_, Beyond::Tariff(tariff))) => {
                    if consumption.covered > 0 || ev.rated_cost.is_none() {
                        priced_by = PricedBy::PlanTariff;
                    }
                    self.tail_cost(ev, tariff, consumption.covered)
                        .map_err(|e| Refusal::new(RefusalCode::RatingFailed, e))?
                }
                Some((_, Beyond::Nothing)) => {
                    return Err(Refusal::new(
                        RefusalCode::NotPriced,
                        format!(
                            "{} {} beyond the allowances and the plan prices no {} usage beyond them",
                            uncovered,
                            ev.usage.unit(),
                            ev.usage
                        ),
                    ));
                }
                None => ev.rated_cost.ok_or_else(|| {
                    Refusal::new(
                        RefusalCode::NotRated,
                        "the line has no plan and the event carries no rated cost",
                    )
                })?,
            }
        };
        let amount = Micros::from_decimal(amount).map_err(|e| e.to_string())?;
        let mut seq = None;
        let mut entry = None;
        if amount.0 != 0 {
            let leg = if amount.0 > 0 {
                Leg::new(line.wallet, revenue, amount)
            } else {
                Leg::new(revenue, line.wallet, Micros(-amount.0))
            };
            let memo = format!("{} {} {}", ev.usage, ev.quantity, ev.usage.unit());
            let req = TxRequest::new(key, TxKind::Charge, ev.at_ms, memo, [leg])
                .map_err(|e| e.to_string())?;
            let effects = ledger::plan(&req, |id| accounts.get(&id)).map_err(|e| match e {
                LedgerError::Insufficient {
                    available,
                    requested,
                    ..
                } => Refusal::new(
                    RefusalCode::InsufficientBalance,
                    format!("insufficient balance: {available} available, {requested} requested"),
                ),
                other => Refusal::from(other.to_string()),
            })?;
            let mut last = *chain;
            for c in req.chain(chain).map_err(|e| e.to_string())? {
                last = c.head();
                seq.get_or_insert(c.seq);
                entry = Some(EntryRow {
                    seq: c.seq,
                    key: req.key().as_str().to_string(),
                    at_ms: ev.at_ms,
                    debit: c.leg.debit,
                    credit: c.leg.credit,
                    amount: c.leg.amount.0,
                    memo: req.memo().to_string(),
                    prev: c.prev_hash,
                    hash: c.hash,
                });
            }
            *chain = last;
            for e in &effects.accounts {
                if let Some(a) = accounts.get_mut(&e.account) {
                    a.debits = e.debits;
                    a.credits = e.credits;
                }
            }
        }
        // Accepted: keep the draws (appended to `drawn`, the batch's touched buckets) and the
        // counter.
        for d in &consumption.draws {
            for s in &line.subscriptions {
                if let Some(b) = buckets
                    .get_mut(&s.id)
                    .and_then(|l| l.iter_mut().find(|b| b.id == d.bucket))
                {
                    b.remaining -= d.quantity;
                    assert!(b.remaining >= 0, "a draw never exceeds what a bucket holds");
                    drawn.push((s.id, b.id));
                }
            }
        }
        let counter_key = counter.map(|(k, v)| {
            counters.insert(k.clone(), v);
            k
        });
        let subscription = base.as_ref().map(|(s, _)| s.id);
        Ok((
            Decided {
                key: ev.key.clone(),
                line: line.id,
                account: line.account,
                priced_by,
                subscription,
                usage: ev.usage.clone(),
                service: ev.service.clone(),
                at_ms: ev.at_ms,
                quantity: ev.quantity,
                covered: consumption.covered,
                amount,
                seq,
                entry,
            },
            counter_key,
        ))
    }

    /// The tariff's price of what the allowances left: the event's own rated cost when they
    /// covered nothing, else the tail rated by the [`TailRater`].
    fn tail_cost(
        &self,
        ev: &UsageEvent,
        tariff: &TariffRef,
        covered: i64,
    ) -> Result<Decimal, String> {
        if covered == 0
            && let Some(cost) = ev.rated_cost
        {
            return Ok(cost);
        }
        let rater = self.rater.as_ref().ok_or_else(|| {
            "the uncovered part must be rated by the plan's tariff, and no tariff is loaded"
                .to_string()
        })?;
        let (start, quantity) = if ev.usage == UsageKind::Voice {
            let split = split_call(ev.at_ms, ev.quantity, covered).map_err(|e| e.to_string())?;
            let tail = split.uncovered.ok_or("nothing uncovered")?;
            (tail.start_ms, tail.seconds)
        } else {
            (ev.at_ms, ev.quantity - covered)
        };
        rater.rate_tail(ev, tariff, start, quantity)
    }

    /// How much of `event` (its `quantity` is the most requested, e.g. a call's longest
    /// length) the line's allowances and balance allow now, without charging anything. Reads
    /// one consistent snapshot; the charge that follows may still be refused if the balance
    /// moved in between, which is why charging checks again.
    pub async fn authorize(&self, ev: &UsageEvent) -> Result<Authorization, StoreError> {
        if ev.quantity < 0 {
            return Err(StoreError::invalid("quantity", "must not be negative"));
        }
        let t = self.tenant.id;
        let number = crate::accounts::normalise_number(&ev.number)?;
        let mut tx = self.store.read().await?;
        let lines = load_lines(&mut tx, t, &self.zone, Scope::Only(&[number.as_str()])).await?;
        let line = lines
            .get(&number)
            .ok_or_else(|| StoreError::not_found("line", &number))?;
        let subs: Vec<i64> = line.subscriptions.iter().map(|s| s.id).collect();
        let mut late = FxHashMap::default();
        let buckets = load_buckets(&mut tx, t, &subs, false, ev.at_ms, &mut late).await?;
        let counters = load_counters(&mut tx, t, &subs).await?;
        let accounts = load_accounts(&mut tx, t, &[line.wallet], false).await?;
        self.load_plans(&mut tx, t, lines.values()).await?;
        let wallet = accounts
            .get(&line.wallet)
            .ok_or_else(|| StoreError::Corrupt("line without wallet".into()))?;
        let available: Option<Decimal> = wallet
            .floor
            .min_balance()
            .map(|min| wallet.balance().to_decimal() - min.to_decimal());

        let base = self.base_plan(line)?;
        in_service(line, &base, ev.at_ms).map_err(|r| StoreError::Refused(r.reason))?;
        let mut pool = Vec::new();
        usable_buckets(line, &buckets, &late, ev.at_ms, &mut pool);
        let c = allowance::consume(
            &mut pool,
            &ev.usage,
            ev.service.as_deref(),
            ev.quantity,
            ev.at_ms,
        )
        .map_err(|e| StoreError::invalid("quantity", e.to_string()))?;
        let done = |from_balance: i64, limited_by: &'static str| Authorization {
            allowed: c.covered + from_balance,
            from_allowances: c.covered,
            from_balance,
            limited_by,
        };
        if c.uncovered == 0 {
            return Ok(done(0, "requested"));
        }
        let Some((sub, def)) = base else {
            return Err(StoreError::Refused(
                "the line has no plan: authorise with the tariff (toll max-usage)".into(),
            ));
        };
        let paid = match def.beyond_allowance(&ev.usage) {
            Beyond::Nothing => return Ok(done(0, "plan")),
            Beyond::Overage(rule) => {
                let day = jiff::Timestamp::from_millisecond(ev.at_ms)
                    .map_err(|e| StoreError::invalid("start", e.to_string()))?
                    .to_zoned(self.zone.clone())
                    .date();
                let period = proration::period_containing(def.validity(), sub.anchor, day)
                    .map_err(|e| StoreError::invalid("start", e.to_string()))?;
                let key = (
                    sub.id,
                    ev.usage.as_str().to_string(),
                    period.start().to_string(),
                );
                let before = counters.get(&key).copied().unwrap_or(0);
                let cost = |u: i64| -> Result<Decimal, StoreError> {
                    overage::price_overage(rule, before, u)
                        .map(|o| o.rounded_amount(self.rounding))
                        .map_err(|e| StoreError::invalid("quantity", e.to_string()))
                };
                match available {
                    None => c.uncovered,
                    Some(avail) if cost(c.uncovered)? <= avail => c.uncovered,
                    Some(avail) => {
                        // The largest affordable quantity: cost only grows with usage for
                        // every model overage allows but `volume`, where the search still
                        // returns an affordable (if not always the largest) quantity.
                        let (mut lo, mut hi) = (0_i64, c.uncovered);
                        while lo < hi {
                            let mid = lo + (hi - lo + 1) / 2;
                            if cost(mid)? <= avail {
                                lo = mid;
                            } else {
                                hi = mid - 1;
                            }
                        }
                        lo
                    }
                }
            }
            Beyond::Tariff(tariff) => {
                let rater = self.rater.as_ref().ok_or_else(|| {
                    StoreError::Refused(
                        "the plan prices this usage by tariff; none is loaded".into(),
                    )
                })?;
                let start = if ev.usage == UsageKind::Voice {
                    ev.at_ms + c.covered * 1000
                } else {
                    ev.at_ms
                };
                match available {
                    None => c.uncovered,
                    Some(avail) => rater
                        .max_tail(ev, tariff, start, c.uncovered, avail)
                        .map_err(StoreError::Refused)?,
                }
            }
        };
        Ok(done(
            paid,
            if paid < c.uncovered {
                "balance"
            } else {
                "requested"
            },
        ))
    }

    /// The line's base plan (with its subscription): it prices what the allowances leave;
    /// add-on packs only add allowances.
    fn base_plan(&self, line: &Line) -> Result<Option<(Sub, Arc<PlanDef>)>, StoreError> {
        let plans = self
            .plans
            .lock()
            .map_err(|_| StoreError::Corrupt("plan cache".into()))?;
        Ok(line.subscriptions.iter().find_map(|s| {
            let def = plans.get(&s.version)?;
            (def.class() == PlanClass::Base).then(|| (s.clone(), Arc::clone(def)))
        }))
    }

    async fn load_plans(
        &self,
        tx: &mut Tx,
        tenant: TenantId,
        lines: impl Iterator<Item = &Line>,
    ) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let plans = self
                .plans
                .lock()
                .map_err(|_| StoreError::Corrupt("plan cache".into()))?;
            let mut v: Vec<i64> = lines
                .flat_map(|l| l.subscriptions.iter().map(|s| s.version))
                .filter(|v| !plans.contains_key(v))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        for chunk in missing.chunks(IN_CHUNK) {
            let rows = in_query(
                tx,
                "SELECT id, definition FROM plan_versions WHERE tenant_id = $1 AND id",
                tenant,
                chunk,
                "",
            )
            .await?;
            let mut plans = self
                .plans
                .lock()
                .map_err(|_| StoreError::Corrupt("plan cache".into()))?;
            for r in rows {
                let def = PlanDef::from_str(&r.text(1)?)
                    .map_err(|e| StoreError::Corrupt(format!("stored plan: {e}")))?;
                plans.insert(r.i64(0)?, Arc::new(def));
            }
        }
        Ok(())
    }
}

/// What a batch must read before deciding: the earliest event per number, and the numbers
/// (sorted) whose lines are not cached, or were read for later events only.
struct Needs<'a> {
    earliest: FxHashMap<&'a str, i64>,
    stale: Vec<&'a str>,
}

/// Works out [`Needs`] from the cache alone (no database), starting the cache again empty if
/// reading the stale lines would take it past its limit.
fn plan_reads<'a>(
    st: &mut State,
    events: &[UsageEvent],
    numbers: &'a [Option<String>],
) -> Needs<'a> {
    let mut earliest: FxHashMap<&str, i64> =
        FxHashMap::with_capacity_and_hasher(events.len(), Default::default());
    for (ev, n) in events.iter().zip(numbers) {
        if let Some(n) = n {
            let at = earliest.entry(n.as_str()).or_insert(ev.at_ms);
            *at = (*at).min(ev.at_ms);
        }
    }
    let mut stale: Vec<&str> = earliest
        .iter()
        .filter(|(n, at)| {
            st.lines.get(**n).is_none_or(|l| {
                l.subscriptions
                    .iter()
                    .any(|s| st.floors.get(&s.id).is_none_or(|f| *f > **at))
            })
        })
        .map(|(n, _)| *n)
        .collect();
    if st.lines.len() + stale.len() > MAX_CACHED_LINES {
        *st = State::empty(st.epoch, st.seq);
        stale = earliest.keys().copied().collect();
    }
    stale.sort_unstable();
    Needs { earliest, stale }
}

/// The cached state if it is still exact for the head just locked: the same epoch, and only
/// ledger writes by others since (their accounts' balances are dropped and read again).
/// Anything else starts from nothing.
async fn revalidate(
    tx: &mut Tx,
    tenant: TenantId,
    cached: Option<State>,
    seq: i64,
    epoch: i64,
) -> Result<State, StoreError> {
    let Some(mut st) = cached.filter(|s| s.epoch == epoch && s.seq <= seq) else {
        return Ok(State::empty(epoch, seq));
    };
    if st.seq != seq {
        let rows = tx
            .all(
                q("SELECT debit_id, credit_id FROM ledger_entries \
                   WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3")
                .i64(tenant.0)
                .i64(st.seq)
                .i64(MAX_FOREIGN_ENTRIES + 1),
            )
            .await?;
        if rows.len() as i64 > MAX_FOREIGN_ENTRIES {
            st.accounts.clear();
        } else {
            for r in rows {
                st.accounts.remove(&r.i64(0)?);
                st.accounts.remove(&r.i64(1)?);
            }
        }
        st.seq = seq;
    }
    Ok(st)
}

/// Fills `pool` with copies of the line's buckets an event at `at_ms` may draw on (copies, so
/// that a refused event leaves the batch's state untouched; one pool is reused for every event
/// of a batch). Buckets granted by a plan change start on the change day: not before.
fn usable_buckets(
    line: &Line,
    buckets: &FxHashMap<i64, Vec<Bucket>>,
    late: &FxHashMap<i64, i64>,
    at_ms: i64,
    pool: &mut Vec<Bucket>,
) {
    pool.clear();
    pool.extend(
        line.subscriptions
            .iter()
            .flat_map(|s| buckets.get(&s.id).into_iter().flatten())
            .filter(|b| late.get(&b.id).is_none_or(|starts| *starts <= at_ms))
            .cloned(),
    );
}

/// Whether the line may be used at `at_ms`: none of its subscriptions is suspended for an unpaid
/// fee, and its base plan's period has been renewed that far.
fn in_service(line: &Line, base: &Option<(Sub, Arc<PlanDef>)>, at_ms: i64) -> Result<(), Refusal> {
    if let Some(s) = line.subscriptions.iter().find(|s| s.suspended) {
        return Err(Refusal::new(
            RefusalCode::Suspended,
            format!(
                "subscription {} is suspended for an unpaid fee: top up, then renew",
                s.id
            ),
        ));
    }
    if let Some((sub, _)) = base
        && let Some((end, end_ms)) = sub.period_end
        && at_ms >= end_ms
    {
        return Err(Refusal::new(
            RefusalCode::NotRenewed,
            format!(
                "the plan's period ended on {end} and has not been renewed yet (toll subscription renew)"
            ),
        ));
    }
    Ok(())
}

fn base_validity(base: &Option<(Sub, Arc<PlanDef>)>) -> toll_catalog::plan::Validity {
    base.as_ref()
        .map_or(toll_catalog::plan::Validity::CalendarMonth, |(_, d)| {
            d.validity()
        })
}

/// Runs `SELECT … IN (ids)` for one chunk of ids; `$1` is the tenant.
async fn in_query(
    tx: &mut Tx,
    head: &str,
    tenant: TenantId,
    ids: &[i64],
    tail: &str,
) -> Result<Vec<DbRow>, StoreError> {
    let head = head.replace("$1", &tenant.0.to_string());
    let (head, column) = head
        .rsplit_once(' ')
        .map(|(h, c)| (h.to_string(), c.to_string()))
        .unwrap_or_default();
    let mut query = q_composed(format!("{head} {}{tail}", tx.in_list(&column, ids.len())));
    tx.bind_set_i64(&mut query, ids);
    tx.all(query).await
}

impl Store {
    /// Which of `keys` are charged already: how a pipeline tells a record it cannot rate any
    /// more (its rule was removed) from one it never charged.
    pub async fn charged_keys(
        &self,
        tenant: TenantId,
        keys: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut tx = self.read().await?;
        existing_keys(&mut tx, tenant, keys).await
    }
}

async fn existing_keys(
    tx: &mut Tx,
    tenant: TenantId,
    keys: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    if keys.is_empty() {
        return Ok(Default::default());
    }
    let query = keys_query(tx, tenant, keys)?;
    keys_from_rows(&tx.all(query).await?)
}

/// The statement that finds which of `keys` (at least one) are charged already.
fn keys_query(tx: &Tx, tenant: TenantId, keys: &[&str]) -> Result<Q, StoreError> {
    Ok(match tx {
        // One index probe per key, whatever the statistics say: as `charges` grows within a
        // run its statistics lag, and the semi-join of `in_list` then flipped between
        // probing (0.2 s per 50,000 keys) and hashing the whole table (3–6 s).
        Tx::Pg(_) => {
            let mut query = q_composed(format!(
                "SELECT k.key FROM unnest($1::text[]) AS k (key) CROSS JOIN LATERAL \
                 (SELECT 1 FROM charges c WHERE c.tenant_id = {} AND c.event_key = k.key \
                 LIMIT 1) AS hit",
                tenant.0
            ));
            tx.bind_set_text(&mut query, keys);
            query
        }
        // One statement with the keys as one JSON array, probed one by one on the primary
        // key (`SEARCH charges USING PRIMARY KEY` driven by `json_each`), instead of a bound
        // parameter per key in lists of 900.
        Tx::Sqlite(_) => {
            let list = serde_json::to_string(keys)
                .map_err(|e| StoreError::Corrupt(format!("event keys: {e}")))?;
            q_composed(format!(
                "SELECT event_key FROM charges WHERE tenant_id = {} \
                 AND event_key IN (SELECT value FROM json_each($1))",
                tenant.0
            ))
            .text(list)
        }
    })
}

fn keys_from_rows(rows: &[DbRow]) -> Result<std::collections::HashSet<String>, StoreError> {
    rows.iter().map(|r| r.text(0)).collect()
}

/// Which rows a cache read covers: those of some lines (numbers) or subscriptions (ids), or all
/// of the tenant's (see [`Charger::reads_whole_tenant`]).
#[derive(Clone, Copy)]
enum Scope<'a, T> {
    Only(&'a [T]),
    Tenant,
}

/// The set filters on `column` of a scoped read with their bound values: one per chunk of
/// `IN_CHUNK` values, or a single filter that passes every row of the tenant.
fn scope_filters<T>(
    tx: &Tx,
    column: &str,
    scope: Scope<'_, T>,
    bind: impl Fn(&Tx, &mut Q, &[T]),
) -> Vec<(String, Q)> {
    match scope {
        Scope::Tenant => vec![("1 = 1".to_string(), q_composed(String::new()))],
        Scope::Only(values) => values
            .chunks(IN_CHUNK)
            .map(|chunk| {
                let mut query = q_composed(String::new());
                bind(tx, &mut query, chunk);
                (tx.in_list(column, chunk.len()), query)
            })
            .collect(),
    }
}

async fn load_lines(
    tx: &mut Tx,
    tenant: TenantId,
    zone: &jiff::tz::TimeZone,
    numbers: Scope<'_, &str>,
) -> Result<FxHashMap<String, Line>, StoreError> {
    /// subscriber id, number, wallet, account.
    type LineRow = (i64, String, i64, i64);
    /// subscriber id, subscription id, plan version, anchor, status, period end.
    type SubRow = (i64, i64, i64, String, String, Option<String>);
    let mut out: FxHashMap<String, Line> = FxHashMap::default();
    for (filter, query) in scope_filters(tx, "s.number", numbers, |tx, q, c| tx.bind_set_text(q, c))
    {
        let rest = format!(
            "FROM subscribers s JOIN accounts a ON a.id = s.account_id \
             WHERE s.tenant_id = {} AND s.status = 'active' AND {filter}",
            tenant.0,
        );
        let rows: Vec<LineRow> = tx
            .packed(
                &["s.id", "s.number", "a.wallet_id", "s.account_id"],
                &rest,
                query,
            )
            .await?;
        for (id, number, wallet, account) in rows {
            out.insert(
                number,
                Line {
                    id,
                    account,
                    wallet,
                    subscriptions: Vec::new(),
                },
            );
        }
    }
    let by_id: FxHashMap<i64, String> = out.iter().map(|(n, l)| (l.id, n.clone())).collect();
    let mut ids: Vec<i64> = by_id.keys().copied().collect();
    ids.sort_unstable();
    // Periods end on a few dates: each is converted to an instant once.
    let mut ends: HashMap<String, (Date, i64)> = HashMap::new();
    // The whole tenant's lines read: all their subscriptions in one statement too.
    let subs_scope = match numbers {
        Scope::Tenant => Scope::Tenant,
        Scope::Only(_) => Scope::Only(&ids[..]),
    };
    for (filter, query) in scope_filters(tx, "l.subscriber_id", subs_scope, |tx, q, c| {
        tx.bind_set_i64(q, c)
    }) {
        let rest = format!(
            "FROM subscription_lines l JOIN subscriptions s ON s.id = l.subscription_id \
             WHERE l.tenant_id = {} AND s.status IN ('active', 'suspended') AND {filter}",
            tenant.0,
        );
        let rows: Vec<SubRow> = tx
            .packed(
                &[
                    "l.subscriber_id",
                    "s.id",
                    "s.plan_version_id",
                    "s.anchor_date",
                    "s.status",
                    "s.period_end",
                ],
                &rest,
                query,
            )
            .await?;
        for (line_id, id, version, anchor, status, period_end) in rows {
            let anchor = Date::from_str(&anchor)
                .map_err(|e| StoreError::Corrupt(format!("anchor date: {e}")))?;
            let period_end = match period_end {
                None => None,
                Some(e) => Some(match ends.get(&e) {
                    Some(end) => *end,
                    None => {
                        let d = Date::from_str(&e)
                            .map_err(|e| StoreError::Corrupt(format!("period end: {e}")))?;
                        let end = (d, crate::subscriptions::day_start_ms(d, zone)?);
                        ends.insert(e, end);
                        end
                    }
                }),
            };
            if let Some(line) = by_id.get(&line_id).and_then(|n| out.get_mut(n)) {
                line.subscriptions.push(Sub {
                    id,
                    version,
                    anchor,
                    suspended: status == "suspended",
                    period_end,
                });
            }
        }
    }
    // In subscription order (the packed read has none): the first base plan found is the
    // line's, whichever order the rows came in.
    for line in out.values_mut() {
        line.subscriptions.sort_unstable_by_key(|s| s.id);
    }
    Ok(out)
}

/// The buckets of `subs` that had something left and had not expired at `min_at`. With
/// `whole`, one statement reads the whole tenant's and keeps those of `subs`.
async fn load_buckets(
    tx: &mut Tx,
    tenant: TenantId,
    subs: &[i64],
    whole: bool,
    min_at: i64,
    late: &mut FxHashMap<i64, i64>,
) -> Result<FxHashMap<i64, Vec<Bucket>>, StoreError> {
    /// id, subscription, usage, services, source, expires, remaining, starts.
    type BucketRow = (i64, i64, String, Option<String>, String, i64, i64, i64);
    let mut out: FxHashMap<i64, Vec<Bucket>> = FxHashMap::default();
    let mut ids = subs.to_vec();
    ids.sort_unstable();
    ids.dedup();
    // A plan's scoped allowances repeat the same few service lists on every subscription:
    // each distinct list is parsed once and shared.
    let mut scopes: HashMap<String, ServiceScope> = HashMap::new();
    let scope = if whole {
        Scope::Tenant
    } else {
        Scope::Only(&ids[..])
    };
    for (filter, query) in scope_filters(tx, "b.subscription_id", scope, |tx, q, c| {
        tx.bind_set_i64(q, c)
    }) {
        let rest = format!(
            "FROM buckets b JOIN bucket_remaining r \
             ON r.bucket_id = b.id AND r.tenant_id = b.tenant_id \
             WHERE b.tenant_id = {t} AND b.expires_ms > {min_at} AND r.remaining > 0 \
             AND {filter}",
            t = tenant.0,
        );
        let rows: Vec<BucketRow> = tx
            .packed(
                &[
                    "b.id",
                    "b.subscription_id",
                    "b.usage",
                    "b.services",
                    "b.source",
                    "b.expires_ms",
                    "r.remaining",
                    "b.starts_ms",
                ],
                &rest,
                query,
            )
            .await?;
        for (id, sub, usage, services, source, expires_ms, remaining, starts) in rows {
            if whole && ids.binary_search(&sub).is_err() {
                continue;
            }
            let usage = UsageKind::from_str(&usage)
                .map_err(|e| StoreError::Corrupt(format!("bucket usage: {e}")))?;
            let services = match services {
                None => None,
                Some(s) => Some(match scopes.get(&s) {
                    Some(scope) => scope.clone(),
                    None => {
                        let scope = ServiceScope::new(s.split(','))
                            .map_err(|e| StoreError::Corrupt(format!("bucket services: {e:?}")))?;
                        scopes.insert(s, scope.clone());
                        scope
                    }
                }),
            };
            let source = match source.as_str() {
                "pack" => BucketSource::Pack,
                "base" => BucketSource::Base,
                other => return Err(StoreError::Corrupt(format!("bucket source {other:?}"))),
            };
            if starts > min_at {
                late.insert(id, starts);
            }
            out.entry(sub).or_default().push(Bucket {
                id,
                usage,
                services,
                source,
                remaining,
                expires_ms,
            });
        }
    }
    // In id order, as granted (the packed read has no order of its own).
    for list in out.values_mut() {
        list.sort_unstable_by_key(|b| b.id);
    }
    Ok(out)
}

async fn load_counters(
    tx: &mut Tx,
    tenant: TenantId,
    subs: &[i64],
) -> Result<HashMap<(i64, String, String), i64>, StoreError> {
    let mut out = HashMap::new();
    let mut ids = subs.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows = in_query(
            tx,
            "SELECT subscription_id, usage, period_start, accrued FROM overage_usage \
             WHERE tenant_id = $1 AND subscription_id",
            tenant,
            chunk,
            "",
        )
        .await?;
        for r in rows {
            out.insert((r.i64(0)?, r.text(1)?, r.text(2)?), r.i64(3)?);
        }
    }
    Ok(out)
}

async fn load_accounts(
    tx: &mut Tx,
    tenant: TenantId,
    ids: &[i64],
    for_update: bool,
) -> Result<FxHashMap<i64, AccountState>, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out = FxHashMap::with_capacity_and_hasher(ids.len(), Default::default());
    let lock = if for_update { tx.for_update() } else { "" };
    for chunk in ids.chunks(IN_CHUNK) {
        // `+tenant_id`: SQLite would otherwise scan the tenant index instead of probing ids.
        // The lock (PostgreSQL) sits in a subquery: it is not allowed next to an aggregate.
        let rest = format!(
            "FROM (SELECT {} FROM ledger_accounts WHERE +tenant_id = {} AND {}{lock}) x",
            ACCOUNT_COLUMNS.join(", "),
            tenant.0,
            tx.in_list("id", chunk.len())
        );
        let mut query = q_composed(String::new());
        tx.bind_set_i64(&mut query, chunk);
        let rows: Vec<AccountRow> = tx.packed(ACCOUNT_COLUMNS, &rest, query).await?;
        for r in rows {
            let a = account_from_row(r)?;
            out.insert(a.id, a);
        }
    }
    Ok(out)
}

/// The record side of [`Charger::charge_records`]: CDR rows for charged events (in `decided`
/// order, which is event order), suspense items for refused ones and earlier failures,
/// resolutions, the import's counters.
async fn write_record_extras(
    tx: &mut Tx,
    tenant: TenantId,
    x: &RecordBatch<'_>,
    outcomes: &[ChargeOutcome],
    decided: &[Decided],
) -> Result<(), StoreError> {
    let mut rows = Vec::with_capacity(decided.len());
    let mut suspended: Vec<NewSuspense> = Vec::new();
    let mut settled_keys: Vec<&str> = Vec::with_capacity(outcomes.len());
    let mut resolve_ids: Vec<i64> = x.resolved.to_vec();
    let mut charged_total = Micros(0);
    let (mut charged, mut duplicate) = (0i64, 0i64);
    let mut next = decided.iter();
    for (i, ((o, ev), rec)) in outcomes.iter().zip(x.events).zip(x.records).enumerate() {
        match o {
            ChargeOutcome::Charged { .. } => {
                let d = next
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("charged event without a charge".into()))?;
                debug_assert_eq!(d.key, ev.key);
                charged += 1;
                charged_total = Micros(charged_total.0.saturating_add(d.amount.0));
                rows.push(CdrRow {
                    record: rec,
                    event_key: &ev.key,
                    usage: d.usage.as_str(),
                    priced_by: d.priced_by.as_str(),
                    subscriber_id: d.line,
                    account_id: d.account,
                    amount: d.amount,
                    covered: d.covered,
                    seq: d.seq,
                });
                settled_keys.push(&ev.key);
                resolve_ids.extend(rec.suspense_id);
            }
            ChargeOutcome::Duplicate => {
                duplicate += 1;
                settled_keys.push(&ev.key);
                resolve_ids.extend(rec.suspense_id);
            }
            ChargeOutcome::Refused { code, reason } => {
                let item = (x.on_refused)(i, *code, reason);
                // Re-processed under another key (a record that parses now): the old item
                // is settled, the new one carries on. Under its own key it is updated.
                if let Some(id) = rec.suspense_id
                    && rec.suspense_key.as_deref() != Some(item.item_key.as_str())
                {
                    resolve_ids.push(id);
                }
                suspended.push(item);
            }
        }
    }
    crate::cdrs::write(tx, tenant, &rows, crate::now_ms()).await?;
    let all: Vec<&NewSuspense> = x.suspense.iter().chain(suspended.iter()).collect();
    crate::suspense::resolve(tx, tenant, &resolve_ids, &settled_keys).await?;
    crate::suspense::upsert(tx, tenant, &all).await?;
    if let Some(tally) = &x.import {
        let n = i64::try_from(all.len()).unwrap_or(i64::MAX);
        crate::file_imports::add(tx, tenant, tally, charged, duplicate, n, charged_total).await?;
    }
    for status in [CallStatus::Ended, CallStatus::Swept] {
        let keys: Vec<(&str, &str)> = x
            .closes
            .iter()
            .filter(|c| c.status == status)
            .map(|c| (c.source.as_str(), c.call_id.as_str()))
            .collect();
        crate::open_calls::close_in(tx, tenant, &keys, status).await?;
    }
    Ok(())
}

/// Runs `work` on this thread while the database runs `statements`.
///
/// A statement reaches the engine only as far as its future is polled: sqlx's SQLite driver
/// hands it to its worker thread on the first poll, but the PostgreSQL driver writes a large
/// bind message (a slice's charge rows, a batch's keys: 100 KB and more) to the socket only as
/// fast as the server reads it, and a single poll sends just the first part. `work` therefore
/// gets a `pump` to call every few items: it polls the statements once more (with this task's
/// context, so a wake-up is not lost), which sends what the socket now takes and reads what
/// the server answered. Both sides then work at the same time on either engine; the outcome
/// is awaited at the end.
async fn overlapped<T, R>(
    statements: impl Future<Output = Result<T, StoreError>>,
    work: impl FnOnce(&mut dyn FnMut()) -> R,
) -> Result<(T, R), StoreError> {
    let mut statements = std::pin::pin!(statements);
    let mut done: Option<Result<T, StoreError>> = None;
    let mut work = Some(work);
    let result = std::future::poll_fn(|cx| {
        let mut pump = || {
            if done.is_none()
                && let Poll::Ready(outcome) = statements.as_mut().poll(cx)
            {
                done = Some(outcome);
            }
        };
        pump();
        // poll_fn runs this closure once: it returns Ready on its first call.
        let outcome = work.take().map(|w| w(&mut pump));
        Poll::Ready(outcome)
    })
    .await
    .ok_or_else(|| StoreError::Corrupt("overlapped work polled twice".into()))?;
    let done = match done {
        Some(done) => done?,
        None => statements.await?,
    };
    Ok((done, result))
}

/// How many items `overlapped` work handles between two pumps: often enough that a socket
/// buffer (tens of KB) never sits full for long, rarely enough that polling costs nothing.
const PUMP_EVERY: usize = 64;

/// The writes that insert `rows` into `charges`.
fn charge_writes(tx: &Tx, tenant: TenantId, rows: &[Decided]) -> Result<Writes, StoreError> {
    tx.insert_writes(
        rows,
        &[
            Col::Int,
            Col::Text,
            Col::Int,
            Col::Int,
            Col::Text,
            Col::Text,
            Col::Int,
            Col::Int,
            Col::Int,
            Col::Int,
            Col::Int,
        ],
        "charges (tenant_id, event_key, subscriber_id, subscription_id, usage, service, at_ms, \
         quantity, covered, amount, first_seq)",
        |query, d| {
            query.push_i64(tenant.0);
            query.push_text(d.key.clone());
            query.push_i64(d.line);
            query.push_opt_i64(d.subscription);
            query.push_text(d.usage.as_str());
            query.push_opt_text(d.service.clone());
            query.push_i64(d.at_ms);
            query.push_i64(d.quantity);
            query.push_i64(d.covered);
            query.push_i64(d.amount.0);
            query.push_opt_i64(d.seq);
        },
    )
}

/// Inserts the batch's ledger entries, chained while deciding.
async fn write_entries(tx: &mut Tx, tenant: TenantId, rows: &[Decided]) -> Result<(), StoreError> {
    let entries: Vec<&EntryRow> = rows.iter().filter_map(|d| d.entry.as_ref()).collect();
    tx.bulk(
        &entries,
        crate::ledger::ENTRY_COLS,
        crate::ledger::insert_entries_sql,
        |query, e| {
            query.push_i64(tenant.0);
            query.push_i64(e.seq);
            query.push_text(e.key.clone());
            query.push_i64(0);
            query.push_text(TxKind::Charge.as_str());
            query.push_i64(e.at_ms);
            query.push_i64(e.debit);
            query.push_i64(e.credit);
            query.push_i64(e.amount);
            query.push_text(e.memo.clone());
            query.push_bytes(&e.prev);
            query.push_bytes(&e.hash);
        },
    )
    .await?;
    Ok(())
}

/// Writes the remaining quantity of every bucket the batch drew on.
async fn write_buckets(
    tx: &mut Tx,
    tenant: TenantId,
    touched: &[(i64, i64)],
    buckets: &FxHashMap<i64, Vec<Bucket>>,
) -> Result<(), StoreError> {
    let rows: Vec<(i64, i64)> = touched
        .iter()
        .filter_map(|(sub, id)| {
            let b = buckets.get(sub)?.iter().find(|b| b.id == *id)?;
            Some((*id, b.remaining))
        })
        .collect();
    tx.bulk(
        &rows,
        &[Col::Int, Col::Int],
        |values| {
            format!(
                "WITH v (id, remaining) AS ({values}) \
                 UPDATE bucket_remaining SET remaining = v.remaining FROM v \
                 WHERE bucket_remaining.bucket_id = v.id AND bucket_remaining.tenant_id = {}",
                tenant.0
            )
        },
        |query, (id, remaining)| {
            query.push_i64(*id);
            query.push_i64(*remaining);
        },
    )
    .await?;
    Ok(())
}

/// Upserts the overage counters the batch moved.
async fn write_counters(
    tx: &mut Tx,
    tenant: TenantId,
    touched: &[(i64, String, String)],
    counters: &HashMap<(i64, String, String), i64>,
) -> Result<(), StoreError> {
    let rows: Vec<(&(i64, String, String), i64)> = touched
        .iter()
        .filter_map(|k| counters.get(k).map(|v| (k, *v)))
        .collect();
    tx.bulk(
        &rows,
        &[Col::Int, Col::Int, Col::Text, Col::Text, Col::Int],
        |values| {
            format!(
                "INSERT INTO overage_usage (tenant_id, subscription_id, usage, period_start, \
                 accrued) {values} ON CONFLICT (tenant_id, subscription_id, usage, \
                 period_start) DO UPDATE SET accrued = excluded.accrued"
            )
        },
        |query, ((sub, usage, period), accrued)| {
            query.push_i64(tenant.0);
            query.push_i64(*sub);
            query.push_text(usage.clone());
            query.push_text(period.clone());
            query.push_i64(*accrued);
        },
    )
    .await?;
    Ok(())
}
