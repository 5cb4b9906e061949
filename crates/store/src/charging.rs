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
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use jiff::civil::Date;
use rust_decimal::Decimal;
use toll_catalog::plan::{Beyond, PlanClass, PlanDef, ServiceScope, TariffRef};
use toll_catalog::proration;
use toll_charging::allowance::{self, Bucket, BucketSource, split_call};
use toll_charging::ledger::{self, AccountState, ChainHead, LedgerError, Leg, TxKind, TxRequest};
use toll_charging::overage;
use toll_core::{Micros, Rounding, RoundingMethod, UsageKind};

use crate::db::{DbRow, Q, Tx, q_composed};
use crate::keys::{KeySource, ledger_key};
use crate::ledger::{ACCOUNT_COLUMNS, account_state, lock_head, set_head};
use crate::{Store, StoreError, Tenant, TenantId};

/// Most events one call charges; larger inputs are split by the caller (`toll charge` does).
pub const MAX_BATCH: usize = 10_000;
/// Ids per `IN (...)` list: far below both engines' parameter limits.
const IN_CHUNK: usize = 900;
/// Rows per multi-row statement (columns × rows stays under SQLite's 32,766 parameters).
const ROWS_PER_STATEMENT: usize = 1_000;

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
        reason: String,
    },
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

/// Charges batches of events for one tenant, caching plan definitions (an approved version
/// never changes) across batches.
pub struct Charger {
    store: Store,
    tenant: Tenant,
    zone: jiff::tz::TimeZone,
    rounding: Rounding,
    plans: Mutex<HashMap<i64, Arc<PlanDef>>>,
    rater: Option<Arc<dyn TailRater>>,
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
    wallet: i64,
    subscriptions: Vec<Sub>,
}

#[derive(Clone)]
struct Sub {
    id: i64,
    version: i64,
    anchor: Date,
}

/// A charge decided in memory, waiting for the batch's writes.
struct Decided {
    key: String,
    line: i64,
    subscription: Option<i64>,
    usage: String,
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
            plans: Mutex::new(HashMap::new()),
            rater: None,
        })
    }

    /// Rates uncovered call tails with the plan's tariff profile.
    pub fn with_rater(mut self, rater: Arc<dyn TailRater>) -> Charger {
        self.rater = Some(rater);
        self
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
        if events.len() > MAX_BATCH {
            return Err(StoreError::invalid(
                "events",
                format!("at most {MAX_BATCH} per batch"),
            ));
        }
        let t = self.tenant.id;
        let mut tx = self.store.begin().await?;
        let head = lock_head(&mut tx, t).await?;

        let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
        let seen_keys = existing_keys(&mut tx, t, &keys).await?;
        let numbers: Vec<Option<String>> = events
            .iter()
            .map(|e| crate::accounts::normalise_number(&e.number).ok())
            .collect();
        let mut wanted: Vec<&str> = numbers.iter().flatten().map(String::as_str).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let lines = load_lines(&mut tx, t, &wanted).await?;
        let sub_ids: Vec<i64> = lines
            .values()
            .flat_map(|l| l.subscriptions.iter().map(|s| s.id))
            .collect();
        let min_at = events.iter().map(|e| e.at_ms).min().unwrap_or(0);
        let mut late = HashMap::new();
        let mut buckets = load_buckets(&mut tx, t, &sub_ids, min_at, &mut late).await?;
        let mut counters = load_counters(&mut tx, t, &sub_ids).await?;
        let revenue = crate::books::book_id(&mut tx, t, "revenue").await?;
        let mut account_ids: Vec<i64> = lines.values().map(|l| l.wallet).collect();
        account_ids.push(revenue);
        let mut accounts = load_accounts(&mut tx, t, &account_ids, true).await?;
        let loaded = accounts.clone();
        self.load_plans(&mut tx, t, &lines).await?;

        let mut out = Vec::with_capacity(events.len());
        let mut decided: Vec<Decided> = Vec::with_capacity(events.len());
        let mut batch_keys: std::collections::HashSet<&str> = Default::default();
        let mut chain = head;
        let mut touched_buckets: Vec<i64> = Vec::new();
        let mut touched_counters: Vec<(i64, String, String)> = Vec::new();
        for (ev, number) in events.iter().zip(&numbers) {
            if seen_keys.contains(ev.key.as_str()) || batch_keys.contains(ev.key.as_str()) {
                out.push(ChargeOutcome::Duplicate);
                continue;
            }
            let refused = |reason: String| ChargeOutcome::Refused { reason };
            let Some(line) = number.as_ref().and_then(|n| lines.get(n)) else {
                out.push(refused(format!(
                    "line {:?} is not a subscriber of this tenant",
                    ev.number
                )));
                continue;
            };
            match self.decide(
                ev,
                line,
                &late,
                revenue,
                &mut buckets,
                &mut counters,
                &mut accounts,
                &mut chain,
            ) {
                Ok((d, draws, counter)) => {
                    // Only a charged key is taken: a refused one may be retried.
                    batch_keys.insert(ev.key.as_str());
                    touched_buckets.extend(draws);
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

        write_charges(&mut tx, t, &decided).await?;
        write_entries(&mut tx, t, &decided).await?;
        touched_buckets.sort_unstable();
        touched_buckets.dedup();
        write_buckets(&mut tx, t, &touched_buckets, &buckets).await?;
        touched_counters.sort();
        touched_counters.dedup();
        write_counters(&mut tx, t, &touched_counters, &counters).await?;
        write_accounts(&mut tx, t, &accounts, &loaded).await?;
        if chain != head {
            set_head(&mut tx, t, &chain).await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Decides one event against the batch's in-memory state, changing that state only when the
    /// event is charged. Returns the charge, the buckets it drew on and the counter it moved.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn decide(
        &self,
        ev: &UsageEvent,
        line: &Line,
        late: &HashMap<i64, i64>,
        revenue: i64,
        buckets: &mut HashMap<i64, Vec<Bucket>>,
        counters: &mut HashMap<(i64, String, String), i64>,
        accounts: &mut HashMap<i64, AccountState>,
        chain: &mut ChainHead,
    ) -> Result<(Decided, Vec<i64>, Option<(i64, String, String)>), String> {
        let key = ledger_key(KeySource::Usage, &ev.key).map_err(|e| e.to_string())?;
        if ev.quantity < 0 {
            return Err(format!("quantity {} is negative", ev.quantity));
        }
        let at = jiff::Timestamp::from_millisecond(ev.at_ms).map_err(|e| e.to_string())?;
        let day = at.to_zoned(self.zone.clone()).date();
        let base = self.base_plan(line).map_err(|e| e.to_string())?;

        // Draw on a copy of the line's buckets: a refused event must leave them untouched.
        let mut pool = usable_buckets(line, buckets, late, ev.at_ms);
        let consumption = allowance::consume(
            &mut pool,
            &ev.usage,
            ev.service.as_deref(),
            ev.quantity,
            ev.at_ms,
        )
        .map_err(|e| e.to_string())?;
        let uncovered = consumption.uncovered;
        let mut counter = None;
        let amount: Decimal = if uncovered == 0 {
            Decimal::ZERO
        } else {
            match base
                .as_ref()
                .map(|(s, def)| (s, def.beyond_allowance(&ev.usage)))
            {
                Some((sub, Beyond::Overage(rule))) => {
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
                    c.rounded_amount(self.rounding)
                }
                Some((_, Beyond::Tariff(tariff))) => {
                    self.tail_cost(ev, tariff, consumption.covered)?
                }
                Some((_, Beyond::Nothing)) => {
                    return Err(format!(
                        "{} {} beyond the allowances and the plan prices no {} usage beyond them",
                        uncovered,
                        ev.usage.unit(),
                        ev.usage
                    ));
                }
                None => ev.rated_cost.ok_or_else(|| {
                    "the line has no plan and the event carries no rated cost".to_string()
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
                } => {
                    format!("insufficient balance: {available} available, {requested} requested")
                }
                other => other.to_string(),
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
        // Accepted: keep the draws and the counter.
        let mut drawn = Vec::with_capacity(consumption.draws.len());
        for d in &consumption.draws {
            for s in &line.subscriptions {
                if let Some(b) = buckets
                    .get_mut(&s.id)
                    .and_then(|l| l.iter_mut().find(|b| b.id == d.bucket))
                {
                    b.remaining -= d.quantity;
                    assert!(b.remaining >= 0, "a draw never exceeds what a bucket holds");
                    drawn.push(b.id);
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
                subscription,
                usage: ev.usage.as_str().to_string(),
                service: ev.service.clone(),
                at_ms: ev.at_ms,
                quantity: ev.quantity,
                covered: consumption.covered,
                amount,
                seq,
                entry,
            },
            drawn,
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
        let lines = load_lines(&mut tx, t, &[number.as_str()]).await?;
        let line = lines
            .get(&number)
            .ok_or_else(|| StoreError::not_found("line", &number))?;
        let subs: Vec<i64> = line.subscriptions.iter().map(|s| s.id).collect();
        let mut late = HashMap::new();
        let buckets = load_buckets(&mut tx, t, &subs, ev.at_ms, &mut late).await?;
        let counters = load_counters(&mut tx, t, &subs).await?;
        let accounts = load_accounts(&mut tx, t, &[line.wallet], false).await?;
        self.load_plans(&mut tx, t, &lines).await?;
        let wallet = accounts
            .get(&line.wallet)
            .ok_or_else(|| StoreError::Corrupt("line without wallet".into()))?;
        let available: Option<Decimal> = wallet
            .floor
            .min_balance()
            .map(|min| wallet.balance().to_decimal() - min.to_decimal());

        let mut pool = usable_buckets(line, &buckets, &late, ev.at_ms);
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
        let base = self.base_plan(line)?;
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
        lines: &HashMap<String, Line>,
    ) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let plans = self
                .plans
                .lock()
                .map_err(|_| StoreError::Corrupt("plan cache".into()))?;
            let mut v: Vec<i64> = lines
                .values()
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

/// Copies of the line's buckets an event at `at_ms` may draw on (a copy, so that a refused event
/// leaves the batch's state untouched). Buckets granted by a plan change start on the change day:
/// not before.
fn usable_buckets(
    line: &Line,
    buckets: &HashMap<i64, Vec<Bucket>>,
    late: &HashMap<i64, i64>,
    at_ms: i64,
) -> Vec<Bucket> {
    line.subscriptions
        .iter()
        .flat_map(|s| buckets.get(&s.id).into_iter().flatten())
        .filter(|b| late.get(&b.id).is_none_or(|starts| *starts <= at_ms))
        .cloned()
        .collect()
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

async fn existing_keys(
    tx: &mut Tx,
    tenant: TenantId,
    keys: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut out = std::collections::HashSet::new();
    for chunk in keys.chunks(IN_CHUNK) {
        let list = tx.in_list("event_key", chunk.len());
        let mut query = q_composed(format!(
            "SELECT event_key FROM charges WHERE tenant_id = {} AND {list}",
            tenant.0
        ));
        tx.bind_set_text(&mut query, chunk);
        for r in tx.all(query).await? {
            out.insert(r.text(0)?);
        }
    }
    Ok(out)
}

async fn load_lines(
    tx: &mut Tx,
    tenant: TenantId,
    numbers: &[&str],
) -> Result<HashMap<String, Line>, StoreError> {
    let mut out: HashMap<String, Line> = HashMap::with_capacity(numbers.len());
    for chunk in numbers.chunks(IN_CHUNK) {
        let list = tx.in_list("s.number", chunk.len());
        let mut query = q_composed(format!(
            "SELECT s.id, s.number, a.wallet_id FROM subscribers s \
             JOIN accounts a ON a.id = s.account_id \
             WHERE s.tenant_id = {} AND s.status = 'active' AND {list}",
            tenant.0
        ));
        tx.bind_set_text(&mut query, chunk);
        for r in tx.all(query).await? {
            out.insert(
                r.text(1)?,
                Line {
                    id: r.i64(0)?,
                    wallet: r.i64(2)?,
                    subscriptions: Vec::new(),
                },
            );
        }
    }
    let by_id: HashMap<i64, String> = out.iter().map(|(n, l)| (l.id, n.clone())).collect();
    let ids: Vec<i64> = by_id.keys().copied().collect();
    for chunk in ids.chunks(IN_CHUNK) {
        let rows = in_query(
            tx,
            "SELECT l.subscriber_id, s.id, s.plan_version_id, s.anchor_date \
             FROM subscription_lines l JOIN subscriptions s ON s.id = l.subscription_id \
             WHERE l.tenant_id = $1 AND s.status = 'active' AND l.subscriber_id",
            tenant,
            chunk,
            " ORDER BY s.id",
        )
        .await?;
        for r in rows {
            let anchor = Date::from_str(&r.text(3)?)
                .map_err(|e| StoreError::Corrupt(format!("anchor date: {e}")))?;
            if let Some(line) = by_id.get(&r.i64(0)?).and_then(|n| out.get_mut(n)) {
                line.subscriptions.push(Sub {
                    id: r.i64(1)?,
                    version: r.i64(2)?,
                    anchor,
                });
            }
        }
    }
    Ok(out)
}

async fn load_buckets(
    tx: &mut Tx,
    tenant: TenantId,
    subs: &[i64],
    min_at: i64,
    late: &mut HashMap<i64, i64>,
) -> Result<HashMap<i64, Vec<Bucket>>, StoreError> {
    let mut out: HashMap<i64, Vec<Bucket>> = HashMap::new();
    let mut ids = subs.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(IN_CHUNK) {
        let list = tx.in_list("subscription_id", chunk.len());
        let mut query = q_composed(format!(
            "SELECT id, subscription_id, usage, services, source, expires_ms, remaining, starts_ms \
             FROM buckets WHERE tenant_id = {} AND expires_ms > {min_at} AND remaining > 0 \
             AND {list} ORDER BY id",
            tenant.0
        ));
        tx.bind_set_i64(&mut query, chunk);
        for r in tx.all(query).await? {
            let usage = UsageKind::from_str(&r.text(2)?)
                .map_err(|e| StoreError::Corrupt(format!("bucket usage: {e}")))?;
            let services = match r.opt_text(3)? {
                None => None,
                Some(s) => Some(
                    ServiceScope::new(s.split(','))
                        .map_err(|e| StoreError::Corrupt(format!("bucket services: {e:?}")))?,
                ),
            };
            let source = match r.text(4)?.as_str() {
                "pack" => BucketSource::Pack,
                "base" => BucketSource::Base,
                other => return Err(StoreError::Corrupt(format!("bucket source {other:?}"))),
            };
            let starts = r.i64(7)?;
            let bucket = Bucket {
                id: r.i64(0)?,
                usage,
                services,
                source,
                remaining: r.i64(6)?,
                expires_ms: r.i64(5)?,
            };
            if starts > min_at {
                late.insert(bucket.id, starts);
            }
            out.entry(r.i64(1)?).or_default().push(bucket);
        }
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
) -> Result<HashMap<i64, AccountState>, StoreError> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::with_capacity(ids.len());
    let lock = if for_update { tx.for_update() } else { "" };
    for chunk in ids.chunks(IN_CHUNK) {
        let head =
            format!("SELECT {ACCOUNT_COLUMNS} FROM ledger_accounts WHERE tenant_id = $1 AND id");
        let rows = in_query(tx, &head, tenant, chunk, lock).await?;
        for r in rows {
            let a = account_state(&r)?;
            out.insert(a.id, a);
        }
    }
    Ok(out)
}

/// Runs a multi-row statement for `rows`, `cols` values each, in chunks.
pub(crate) async fn bulk<T>(
    tx: &mut Tx,
    rows: &[T],
    cols: usize,
    sql: impl Fn(&str) -> String,
    mut bind: impl FnMut(&mut Q, &T),
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query = q_composed(sql(&tx.placeholders(0, chunk.len(), cols)));
        query.reserve(chunk.len() * cols);
        for r in chunk {
            bind(&mut query, r);
        }
        tx.exec(query).await?;
    }
    Ok(())
}

async fn write_charges(tx: &mut Tx, tenant: TenantId, rows: &[Decided]) -> Result<(), StoreError> {
    bulk(
        tx,
        rows,
        11,
        |values| {
            format!(
                "INSERT INTO charges (tenant_id, event_key, subscriber_id, subscription_id, usage, \
                 service, at_ms, quantity, covered, amount, first_seq) VALUES {values}"
            )
        },
        |query, d| {
            query.push_i64(tenant.0);
            query.push_text(d.key.clone());
            query.push_i64(d.line);
            query.push_opt_i64(d.subscription);
            query.push_text(d.usage.clone());
            query.push_opt_text(d.service.clone());
            query.push_i64(d.at_ms);
            query.push_i64(d.quantity);
            query.push_i64(d.covered);
            query.push_i64(d.amount.0);
            query.push_opt_i64(d.seq);
        },
    )
    .await
}

/// Inserts the batch's ledger entries, chained while deciding.
async fn write_entries(tx: &mut Tx, tenant: TenantId, rows: &[Decided]) -> Result<(), StoreError> {
    let entries: Vec<&EntryRow> = rows.iter().filter_map(|d| d.entry.as_ref()).collect();
    bulk(
        tx,
        &entries,
        12,
        |values| {
            format!(
                "INSERT INTO ledger_entries (tenant_id, seq, tx_key, leg, kind, at_ms, debit_id, \
                 credit_id, amount, memo, prev_hash, hash) VALUES {values}"
            )
        },
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
    .await
}

/// Writes the remaining quantity of every bucket the batch drew on.
async fn write_buckets(
    tx: &mut Tx,
    tenant: TenantId,
    touched: &[i64],
    buckets: &HashMap<i64, Vec<Bucket>>,
) -> Result<(), StoreError> {
    let by_id: HashMap<i64, i64> = buckets
        .values()
        .flatten()
        .map(|b| (b.id, b.remaining))
        .collect();
    let rows: Vec<(i64, i64)> = touched
        .iter()
        .filter_map(|id| by_id.get(id).map(|r| (*id, *r)))
        .collect();
    bulk(
        tx,
        &rows,
        2,
        |values| {
            format!(
                "WITH v (id, remaining) AS (VALUES {values}) \
                 UPDATE buckets SET remaining = v.remaining FROM v \
                 WHERE buckets.id = v.id AND buckets.tenant_id = {}",
                tenant.0
            )
        },
        |query, (id, remaining)| {
            query.push_i64(*id);
            query.push_i64(*remaining);
        },
    )
    .await
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
    bulk(
        tx,
        &rows,
        5,
        |values| {
            format!(
                "INSERT INTO overage_usage (tenant_id, subscription_id, usage, period_start, \
                 accrued) VALUES {values} ON CONFLICT (tenant_id, subscription_id, usage, \
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
    .await
}

/// Writes the running totals of the accounts the batch moved (most events of a batch are
/// covered by allowances and move none).
async fn write_accounts(
    tx: &mut Tx,
    tenant: TenantId,
    accounts: &HashMap<i64, AccountState>,
    loaded: &HashMap<i64, AccountState>,
) -> Result<(), StoreError> {
    let mut rows: Vec<&AccountState> = accounts
        .values()
        .filter(|a| loaded.get(&a.id) != Some(*a))
        .collect();
    rows.sort_by_key(|a| a.id);
    bulk(
        tx,
        &rows,
        3,
        |values| {
            format!(
                "WITH v (id, debits, credits) AS (VALUES {values}) \
                 UPDATE ledger_accounts SET debits = v.debits, credits = v.credits FROM v \
                 WHERE ledger_accounts.id = v.id AND ledger_accounts.tenant_id = {}",
                tenant.0
            )
        },
        |query, a| {
            query.push_i64(a.id);
            query.push_i64(a.debits.0);
            query.push_i64(a.credits.0);
        },
    )
    .await
}
