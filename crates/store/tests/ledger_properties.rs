#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ledger's property test on the real store, every engine: random sequences of top-ups,
//! charged batches (lines on plans with allowances and overage, lines without a plan paying the
//! rated cost, unknown lines), refunds, plan changes settled by days, and operations that must
//! be refused, across prepaid and postpaid accounts.
//!
//! After every operation: the outcome is what an independent model of the balances predicts
//! (exactly, for top-ups, refunds, rated calls and prorations); a refused operation changed
//! nothing (the whole state is compared: totals, chain head, buckets, overage counters, charge
//! and change records); every wallet is at or above its floor. After the sequence: the chain
//! verifies, every account's stored totals equal the sums of its entries, debits equal credits
//! over the tenant's books, every transaction's legs are contiguous. Then:
//! - everything that was recorded is replayed on the same store (every key a duplicate): the
//!   state, chain head included, is identical;
//! - the sequence is run on a fresh store with each operation twice in a row: every second run
//!   changes nothing, and the end state equals the first store's.
//!
//! `PROPTEST_CASES=n` runs more cases (default 16; each case runs every engine).

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::fixtures::{active_plan, actor, tenant};
use jiff::civil::date;
use proptest::prelude::*;
use proptest::sample::Index;
use rust_decimal::Decimal;
use toll_charging::ledger::{IdempotencyKey, LedgerError, Leg, TxKind, TxRequest};
use toll_core::{Micros, UsageKind};
use toll_store::accounts::AccountMode;
use toll_store::charging::{ChargeOutcome, Charger, UsageEvent};
use toll_store::ledger::Posted;
use toll_store::subscriptions::{ChangeView, ChangeWhen, SubscribeRequest};
use toll_store::{Store, StoreError, Tenant};

const CASES: u32 = 16;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const MB: i64 = 1_048_576;
const UNIT: i64 = 1_000_000;

/// The fixture plan (100 voice minutes, 1 GB data with a 500 MB WeChat part, per-minute voice
/// and tiered data overage, calendar month) at three fees: code, fee, fee in micros.
const PLANS: [(&str, &str, i64); 3] = [
    ("p10", "10", 10 * UNIT),
    ("p30", "30", 30 * UNIT),
    ("p5", "5.55", 5_550_000),
];

struct AccountDef {
    code: &'static str,
    /// `None`: prepaid.
    credit_limit: Option<i64>,
    /// The account's one line.
    number: &'static str,
    /// Index into `PLANS` of the plan its line starts on, if any.
    plan: Option<usize>,
}

const ACCOUNTS: [AccountDef; 4] = [
    AccountDef {
        code: "pre1",
        credit_limit: None,
        number: "13800000001",
        plan: Some(0),
    },
    AccountDef {
        code: "pre2",
        credit_limit: None,
        number: "13800000002",
        plan: None,
    },
    AccountDef {
        code: "post1",
        credit_limit: Some(50 * UNIT),
        number: "13800000003",
        plan: Some(1),
    },
    AccountDef {
        code: "post2",
        credit_limit: Some(10 * UNIT),
        number: "13800000004",
        plan: None,
    },
];

/// The accounts whose lines have a subscription, in subscription order.
const SUB_ACCOUNTS: [usize; 2] = [0, 2];
const UNKNOWN_NUMBER: &str = "13999999999";
/// pre1's first top-up (before it subscribes).
const INITIAL: i64 = 40 * UNIT;
const NO_SUCH_ACCOUNT: i64 = 999_999_999;

fn floor(acct: usize) -> i64 {
    -ACCOUNTS[acct].credit_limit.unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Voice,
    Data,
    Wechat,
    Sms,
}

#[derive(Debug, Clone)]
struct EvSpec {
    /// Index into `ACCOUNTS` (its line), or 4 for a number that is no line of the tenant.
    line: usize,
    usage: Use,
    seed: u32,
    /// Rated cost in 10⁻⁴ of the currency, used by lines without a plan.
    cost: i64,
    /// Send an earlier event of the same batch again instead.
    repeat: Option<Index>,
}

/// Operations that must be refused whatever the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    ZeroTopUp,
    UnknownAccount,
    /// pre1's initial top-up key with another amount.
    ReusedKey,
    UnknownLedgerAccount,
    /// A refund to a wallet of another tenant.
    ForeignWallet,
}

#[derive(Debug, Clone)]
enum Op {
    TopUp { acct: usize, amount: i64 },
    Refund { acct: usize, amount: i64 },
    Charge(Vec<EvSpec>),
    Change { sub: usize, plan: usize },
    Bad(Bad),
}

#[derive(Debug, Clone)]
struct Step {
    /// Days the clock moves forward before this operation.
    advance: u8,
    op: Op,
}

fn ev_spec() -> impl Strategy<Value = EvSpec> {
    let usage = prop_oneof![
        Just(Use::Voice),
        Just(Use::Data),
        Just(Use::Wechat),
        Just(Use::Sms)
    ];
    (
        prop_oneof![4 => 0..4usize, 1 => Just(4usize)],
        usage,
        any::<u32>(),
        0i64..=150_000,
        prop::option::weighted(0.15, any::<Index>()),
    )
        .prop_map(|(line, usage, seed, cost, repeat)| EvSpec {
            line,
            usage,
            seed,
            cost,
            repeat,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let bad = prop_oneof![
        Just(Bad::ZeroTopUp),
        Just(Bad::UnknownAccount),
        Just(Bad::ReusedKey),
        Just(Bad::UnknownLedgerAccount),
        Just(Bad::ForeignWallet),
    ];
    prop_oneof![
        3 => (0..4usize, 1i64..=5_000).prop_map(|(acct, cents)| Op::TopUp {
            acct,
            amount: cents * 10_000
        }),
        5 => prop::collection::vec(ev_spec(), 1..=4).prop_map(Op::Charge),
        2 => (0..4usize, 1i64..=2_000).prop_map(|(acct, cents)| Op::Refund {
            acct,
            amount: cents * 10_000
        }),
        2 => (0..2usize, 0..3usize).prop_map(|(sub, plan)| Op::Change { sub, plan }),
        1 => bad.prop_map(Op::Bad),
    ]
}

fn sequences() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0u8..=2, op()).prop_map(|(advance, op)| Step { advance, op }),
        1..=40,
    )
}

/// 10:00 Beijing time on `day` November 2026.
fn day_ms(day: i8) -> i64 {
    date(2026, 11, day)
        .at(10, 0, 0, 0)
        .in_tz("Asia/Shanghai")
        .unwrap()
        .timestamp()
        .as_millisecond()
}

/// The concrete events of batch `i` on `day`.
fn events(i: usize, day: i8, specs: &[EvSpec]) -> Vec<UsageEvent> {
    let mut out: Vec<UsageEvent> = Vec::with_capacity(specs.len());
    for (j, spec) in specs.iter().enumerate() {
        if let Some(ix) = spec.repeat
            && !out.is_empty()
        {
            out.push(out[ix.index(out.len())].clone());
            continue;
        }
        let seed = i64::from(spec.seed);
        let (usage, service, quantity) = match spec.usage {
            Use::Voice => (UsageKind::Voice, None, 1 + seed % 5_000),
            Use::Data => (UsageKind::Data, None, (1 + seed % 700) * MB + seed % 1_000),
            Use::Wechat => (
                UsageKind::Data,
                Some("wechat".to_string()),
                (1 + seed % 700) * MB + seed % 1_000,
            ),
            Use::Sms => (UsageKind::Sms, None, 1 + seed % 3),
        };
        let number = ACCOUNTS.get(spec.line).map_or(UNKNOWN_NUMBER, |a| a.number);
        out.push(UsageEvent {
            key: format!("ev:{i}:{j}"),
            number: number.to_string(),
            usage,
            service,
            at_ms: day_ms(day) + (seed % 36_000) * 1_000 + i64::try_from(j).unwrap(),
            quantity,
            destination: None,
            rated_cost: Some(Decimal::new(spec.cost, 4)),
        });
    }
    out
}

fn line_of(number: &str) -> Option<usize> {
    ACCOUNTS.iter().position(|a| a.number == number)
}

// ---------------------------------------------------------------------------------------------
// The store under test and the model
// ---------------------------------------------------------------------------------------------

struct World {
    store: Store,
    name: &'static str,
    t: Tenant,
    beta: Tenant,
    charger: Charger,
    revenue: i64,
    wallets: [i64; 4],
    foreign_wallet: i64,
    subs: [i64; 2],
}

/// What the balances must be, kept independently of the store.
#[derive(Debug, Clone)]
struct Model {
    /// Wallet balances (credit-normal), by `ACCOUNTS` index.
    balance: [i64; 4],
    /// Revenue (credit-normal) and clearing (debit-normal) balances.
    revenue: i64,
    clearing: i64,
    /// Current plan (index into `PLANS`) of each subscription.
    plan: [usize; 2],
    /// Event keys charged so far.
    charged: HashSet<String>,
}

macro_rules! fetch {
    ($store:expr, $ty:ty, $sql:expr $(, $arg:expr)*) => {
        match $store {
            Store::Sqlite(p) => sqlx::query_as::<_, $ty>($sql)
                $(.bind($arg))*
                .fetch_all(p)
                .await
                .unwrap(),
            Store::Postgres(p) => sqlx::query_as::<_, $ty>($sql)
                $(.bind($arg))*
                .fetch_all(p)
                .await
                .unwrap(),
        }
    };
}

async fn count(store: &Store, sql: &'static str, tenant: i64) -> i64 {
    fetch!(store, (i64,), sql, tenant)[0].0
}

async fn setup(store: Store, name: &'static str) -> (World, Model) {
    let s = &store;
    let t = tenant(s, "acme").await;
    for (code, fee, _) in PLANS {
        active_plan(s, &t, code, fee).await;
    }
    s.create_customer(t.id, "c1", "客户").await.unwrap();
    let mut wallets = [0; 4];
    for (k, a) in ACCOUNTS.iter().enumerate() {
        let mode = match a.credit_limit {
            None => AccountMode::Prepaid,
            Some(l) => AccountMode::Postpaid {
                credit_limit: Micros(l),
            },
        };
        wallets[k] = s
            .create_account(t.id, "c1", a.code, mode)
            .await
            .unwrap()
            .wallet_id;
        s.add_subscriber(t.id, a.code, a.number).await.unwrap();
    }
    s.top_up(t.id, "pre1", Micros(INITIAL), "init:pre1", "")
        .await
        .unwrap();
    let mut subs = [0; 2];
    let mut plan = [0; 2];
    let mut balance = [0, 0, 0, 0];
    balance[0] = INITIAL;
    let mut revenue = 0;
    for (n, &k) in SUB_ACCOUNTS.iter().enumerate() {
        let a = &ACCOUNTS[k];
        let p = a.plan.unwrap();
        let lines = [a.number.to_string()];
        let req = SubscribeRequest {
            account: a.code,
            plan: PLANS[p].0,
            lines: &lines,
            start: date(2026, 11, 1),
        };
        subs[n] = s.subscribe(&t, &req, &actor("ops")).await.unwrap().id;
        plan[n] = p;
        balance[k] -= PLANS[p].2;
        revenue += PLANS[p].2;
    }
    let beta = tenant(s, "beta").await;
    s.create_customer(beta.id, "c1", "外人").await.unwrap();
    let foreign_wallet = s
        .create_account(beta.id, "c1", "x", AccountMode::Prepaid)
        .await
        .unwrap()
        .wallet_id;
    let revenue_id = fetch!(
        s,
        (i64,),
        "SELECT id FROM ledger_accounts WHERE tenant_id = $1 AND code = 'revenue'",
        t.id.0
    )[0]
    .0;
    let world = World {
        charger: Charger::new(store.clone(), t.clone()).unwrap(),
        store,
        name,
        t,
        beta,
        revenue: revenue_id,
        wallets,
        foreign_wallet,
        subs,
    };
    let model = Model {
        balance,
        revenue,
        clearing: INITIAL,
        plan,
        charged: HashSet::new(),
    };
    (world, model)
}

type BucketRow = (i64, String, Option<String>, String, i64, i64, i64, i64);

/// Everything an operation may change, without database ids that differ between stores.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// code, debits, credits of every ledger account of the tenant.
    books: Vec<(String, i64, i64)>,
    head: (i64, Vec<u8>),
    entries: i64,
    charges: i64,
    changes: i64,
    buckets: Vec<BucketRow>,
    overage: Vec<(i64, String, String, i64)>,
    /// subscription id, plan code.
    subs: Vec<(i64, String)>,
}

impl Snapshot {
    /// The state without the chain head's hash, which covers the top-ups' and plan changes'
    /// wall-clock times and so differs between two stores.
    fn without_hash(&self) -> Snapshot {
        Snapshot {
            head: (self.head.0, Vec::new()),
            ..self.clone()
        }
    }

    fn book(&self, code: &str) -> (i64, i64) {
        let b = self.books.iter().find(|b| b.0 == code).unwrap();
        (b.1, b.2)
    }
}

/// Reads the snapshot on one connection, in one transaction (a consistent view, and one pool
/// checkout instead of eight).
macro_rules! read_snapshot {
    ($pool:expr, $t:expr) => {{
        let mut tx = $pool.begin().await.unwrap();
        macro_rules! all {
            ($ty:ty, $sql:expr) => {
                sqlx::query_as::<_, $ty>($sql)
                    .bind($t)
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap()
            };
        }
        let snap = Snapshot {
            books: all!(
                (String, i64, i64),
                "SELECT code, debits, credits FROM ledger_accounts WHERE tenant_id = $1 \
                 ORDER BY code"
            ),
            head: all!(
                (i64, Vec<u8>),
                "SELECT seq, hash FROM ledger_heads WHERE tenant_id = $1"
            )
            .remove(0),
            entries: all!(
                (i64,),
                "SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = $1"
            )[0]
            .0,
            charges: all!((i64,), "SELECT COUNT(*) FROM charges WHERE tenant_id = $1")[0].0,
            changes: all!(
                (i64,),
                "SELECT COUNT(*) FROM subscription_changes WHERE tenant_id = $1"
            )[0]
            .0,
            buckets: all!(
                BucketRow,
                "SELECT b.subscription_id, b.usage, b.services, b.source, b.starts_ms, \
                 b.expires_ms, b.initial, r.remaining FROM buckets b JOIN bucket_remaining r \
                 ON r.bucket_id = b.id WHERE b.tenant_id = $1 ORDER BY b.subscription_id, \
                 b.starts_ms, b.expires_ms, b.usage, COALESCE(b.services, ''), b.initial, \
                 r.remaining"
            ),
            overage: all!(
                (i64, String, String, i64),
                "SELECT subscription_id, usage, period_start, accrued FROM overage_usage \
                 WHERE tenant_id = $1 ORDER BY subscription_id, usage, period_start"
            ),
            subs: all!(
                (i64, String),
                "SELECT s.id, p.code FROM subscriptions s JOIN plan_versions v \
                 ON v.id = s.plan_version_id JOIN plans p ON p.id = v.plan_id \
                 WHERE s.tenant_id = $1 ORDER BY s.id"
            ),
        };
        tx.rollback().await.unwrap();
        snap
    }};
}

async fn snapshot(w: &World) -> Snapshot {
    let t = w.t.id.0;
    match &w.store {
        Store::Sqlite(p) => read_snapshot!(p, t),
        Store::Postgres(p) => read_snapshot!(p, t),
    }
}

/// The store's balances (as stored on the ledger accounts) are the model's, every wallet is at
/// or above its floor, and every subscription is on the model's plan.
fn check_model(name: &str, model: &Model, snap: &Snapshot, what: &str) {
    for (k, a) in ACCOUNTS.iter().enumerate() {
        let (d, c) = snap.book(&format!("wallet:{}", a.code));
        assert_eq!(
            c - d,
            model.balance[k],
            "{name}: {what}: {} balance",
            a.code
        );
        assert!(
            c - d >= floor(k),
            "{name}: {what}: {} at {} below its floor {}",
            a.code,
            c - d,
            floor(k)
        );
    }
    let (d, c) = snap.book("revenue");
    assert_eq!(c - d, model.revenue, "{name}: {what}: revenue");
    let (d, c) = snap.book("clearing");
    assert_eq!(d - c, model.clearing, "{name}: {what}: clearing");
    assert_eq!(snap.subs.len(), model.plan.len(), "{name}: {what}");
    for (n, (_, plan)) in snap.subs.iter().enumerate() {
        assert_eq!(
            plan, PLANS[model.plan[n]].0,
            "{name}: {what}: subscription {n}"
        );
    }
}

/// The same through the accounts service, as an operator reads them: the balance, and what is
/// still available above the floor.
async fn check_accounts(w: &World, model: &Model, what: &str) {
    let name = w.name;
    for (k, a) in ACCOUNTS.iter().enumerate() {
        let v = w.store.account(w.t.id, a.code).await.unwrap();
        assert_eq!(
            v.balance,
            Micros(model.balance[k]),
            "{name}: {what}: {} balance",
            a.code
        );
        assert!(
            v.balance.0 >= floor(k),
            "{name}: {what}: {} at {} below its floor {}",
            a.code,
            v.balance,
            floor(k)
        );
        assert_eq!(
            v.available,
            Some(Micros(v.balance.0 - floor(k))),
            "{name}: {what}: {}",
            a.code
        );
    }
}

/// The ledger checks of the issue, on the store as it is now.
async fn check_ledger(w: &World, snap: &Snapshot) {
    let (s, name, t) = (&w.store, w.name, w.t.id.0);
    let report = s.verify_ledger(w.t.id).await.unwrap();
    assert!(report.is_intact(), "{name}: {report:?}");
    assert_eq!(
        i64::try_from(report.entries_checked).unwrap(),
        snap.entries,
        "{name}"
    );
    // Sequence numbers run 1..=n without gaps, up to the head.
    assert_eq!(snap.head.0, snap.entries, "{name}: head vs entries");
    let seqs = fetch!(
        s,
        (i64, i64),
        "SELECT COALESCE(MIN(seq), 1), COALESCE(MAX(seq), 0) FROM ledger_entries \
         WHERE tenant_id = $1",
        t
    );
    assert_eq!(seqs[0], (1, snap.entries), "{name}: seq range");

    // Every account's stored totals are the sums of its entries (independently of verify), and
    // over the tenant's books debits equal credits.
    let sums = fetch!(
        s,
        (String, i64, i64, i64, i64),
        "SELECT a.code, a.debits, a.credits, \
         CAST(COALESCE((SELECT SUM(e.amount) FROM ledger_entries e \
           WHERE e.tenant_id = a.tenant_id AND e.debit_id = a.id), 0) AS BIGINT), \
         CAST(COALESCE((SELECT SUM(e.amount) FROM ledger_entries e \
           WHERE e.tenant_id = a.tenant_id AND e.credit_id = a.id), 0) AS BIGINT) \
         FROM ledger_accounts a WHERE a.tenant_id = $1 ORDER BY a.code",
        t
    );
    let (mut debits, mut credits) = (0i128, 0i128);
    for (code, d, c, sum_d, sum_c) in &sums {
        assert_eq!((d, c), (sum_d, sum_c), "{name}: totals of {code}");
        debits += i128::from(*d);
        credits += i128::from(*c);
    }
    assert_eq!(debits, credits, "{name}: debits vs credits over the books");
    let foreign = count(
        s,
        "SELECT COUNT(*) FROM ledger_entries e WHERE e.tenant_id = $1 AND (\
         NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.tenant_id = e.tenant_id \
           AND a.id = e.debit_id) OR \
         NOT EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.tenant_id = e.tenant_id \
           AND a.id = e.credit_id))",
        t,
    )
    .await;
    assert_eq!(
        foreign, 0,
        "{name}: entries naming another tenant's accounts"
    );

    // Each transaction's legs are numbered 0..n on consecutive entries of one kind.
    let txs = fetch!(
        s,
        (String, i64, i64, i64, i64, i64, i64),
        "SELECT tx_key, COUNT(*), MIN(seq), MAX(seq), MIN(leg), MAX(leg), COUNT(DISTINCT kind) \
         FROM ledger_entries WHERE tenant_id = $1 GROUP BY tx_key",
        t
    );
    for (key, n, min_seq, max_seq, min_leg, max_leg, kinds) in &txs {
        assert_eq!(
            (max_seq - min_seq + 1, *min_leg, max_leg + 1, *kinds),
            (*n, 0, *n, 1),
            "{name}: transaction {key}"
        );
    }

    // Every charge that moved money has its entry, with the same amount; no other has one.
    let orphans = count(
        s,
        "SELECT COUNT(*) FROM charges c WHERE c.tenant_id = $1 AND (\
         (c.amount <> 0 AND NOT EXISTS (SELECT 1 FROM ledger_entries e \
           WHERE e.tenant_id = c.tenant_id AND e.tx_key = 'use:' || c.event_key AND e.seq = c.first_seq \
           AND e.amount = ABS(c.amount))) \
         OR (c.amount = 0 AND c.first_seq IS NOT NULL))",
        t,
    )
    .await;
    assert_eq!(orphans, 0, "{name}: charges without their entry");

    // The other tenant was never touched (a refund to its wallet was refused).
    let beta = s.verify_ledger(w.beta.id).await.unwrap();
    assert!(beta.is_intact(), "{name}: beta {beta:?}");
    assert_eq!(beta.entries_checked, 0, "{name}: beta");
    assert_eq!(
        s.account(w.beta.id, "x").await.unwrap().balance,
        Micros::ZERO,
        "{name}: beta"
    );
}

// ---------------------------------------------------------------------------------------------
// Running operations
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum Outcome {
    Posted(Result<Posted, StoreError>),
    Charged(Vec<ChargeOutcome>),
    Changed(Result<ChangeView, StoreError>),
}

fn refund(w: &World, key: String, at_ms: i64, credit: i64, amount: i64) -> TxRequest {
    TxRequest::new(
        IdempotencyKey::new(key).unwrap(),
        TxKind::Refund,
        at_ms,
        "goodwill refund",
        [Leg::new(w.revenue, credit, Micros(amount))],
    )
    .unwrap()
}

async fn run(w: &World, i: usize, day: i8, op: &Op) -> Outcome {
    let (s, t) = (&w.store, w.t.id);
    match op {
        Op::TopUp { acct, amount } => Outcome::Posted(
            s.top_up(
                t,
                ACCOUNTS[*acct].code,
                Micros(*amount),
                &format!("top:{i}"),
                "wechat pay",
            )
            .await,
        ),
        Op::Refund { acct, amount } => {
            let req = refund(
                w,
                format!("refund:{i}"),
                day_ms(day),
                w.wallets[*acct],
                *amount,
            );
            Outcome::Posted(s.post(t, &req).await)
        }
        Op::Charge(specs) => Outcome::Charged(
            w.charger
                .charge_batch(&events(i, day, specs))
                .await
                .unwrap(),
        ),
        Op::Change { sub, plan } => Outcome::Changed(
            s.change_plan(
                &w.t,
                w.subs[*sub],
                PLANS[*plan].0,
                ChangeWhen::Now(date(2026, 11, day)),
                &actor("ops"),
                "property test",
            )
            .await,
        ),
        Op::Bad(bad) => {
            let key = format!("bad:{i}");
            Outcome::Posted(match bad {
                Bad::ZeroTopUp => s.top_up(t, "pre1", Micros::ZERO, &key, "").await,
                Bad::UnknownAccount => s.top_up(t, "nobody", Micros(UNIT), &key, "").await,
                Bad::ReusedKey => {
                    s.top_up(t, "pre1", Micros(INITIAL + 1), "init:pre1", "")
                        .await
                }
                Bad::UnknownLedgerAccount => {
                    s.post(t, &refund(w, key, day_ms(day), NO_SUCH_ACCOUNT, UNIT))
                        .await
                }
                Bad::ForeignWallet => {
                    let req = refund(w, key, day_ms(day), w.foreign_wallet, UNIT);
                    s.post(t, &req).await
                }
            })
        }
    }
}

/// What an accepted operation added.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Added {
    entries: i64,
    charges: i64,
    changes: i64,
}

/// `fee × remaining / 30` (November), rounded half up to the fen, in micros.
fn prorated(fee: i64, remaining: i64) -> i64 {
    let unit = 30 * 10_000;
    (2 * fee * remaining + unit) / (2 * unit) * 10_000
}

/// The available and requested amounts of an event refused for want of money.
fn insufficient(o: &ChargeOutcome) -> Option<(Micros, Micros)> {
    let ChargeOutcome::Refused { reason, .. } = o else {
        return None;
    };
    let rest = reason.strip_prefix("insufficient balance: ")?;
    let (available, rest) = rest.split_once(" available, ")?;
    let requested = rest.strip_suffix(" requested")?;
    Some((available.parse().ok()?, requested.parse().ok()?))
}

/// Checks a first run's outcome against the model, updates the model, and says what the store
/// must have gained.
fn check_first(
    w: &World,
    model: &mut Model,
    i: usize,
    day: i8,
    op: &Op,
    out: &Outcome,
    head: i64,
) -> Added {
    let name = w.name;
    let ctx = format!("{name}: op {i} {op:?} on day {day}: {out:?}");
    match (op, out) {
        (Op::TopUp { acct, amount }, Outcome::Posted(Ok(p))) => {
            assert_eq!((p.first_seq, p.duplicate), (head + 1, false), "{ctx}");
            model.balance[*acct] += amount;
            model.clearing += amount;
            Added {
                entries: 1,
                ..Added::default()
            }
        }
        (Op::Refund { acct, amount }, Outcome::Posted(Ok(p))) => {
            assert_eq!((p.first_seq, p.duplicate), (head + 1, false), "{ctx}");
            model.balance[*acct] += amount;
            model.revenue -= amount;
            Added {
                entries: 1,
                ..Added::default()
            }
        }
        (Op::Bad(bad), Outcome::Posted(Err(e))) => {
            let ok = match bad {
                Bad::ZeroTopUp => matches!(e, StoreError::Invalid { .. }),
                Bad::UnknownAccount => matches!(e, StoreError::NotFound { .. }),
                Bad::ReusedKey => matches!(e, StoreError::Ledger(LedgerError::KeyReused { .. })),
                Bad::UnknownLedgerAccount => matches!(
                    e,
                    StoreError::Ledger(LedgerError::UnknownAccount { account })
                        if *account == NO_SUCH_ACCOUNT
                ),
                Bad::ForeignWallet => matches!(
                    e,
                    StoreError::Ledger(LedgerError::UnknownAccount { account })
                        if *account == w.foreign_wallet
                ),
            };
            assert!(ok, "{ctx}");
            Added::default()
        }
        (Op::Change { sub, plan }, Outcome::Changed(res)) => {
            let acct = SUB_ACCOUNTS[*sub];
            let cur = model.plan[*sub];
            let remaining = 31 - i64::from(day);
            let credit = prorated(PLANS[cur].2, remaining);
            let charge = prorated(PLANS[*plan].2, remaining);
            let net = charge - credit;
            let available = model.balance[acct] - floor(acct);
            if cur == *plan {
                assert!(matches!(res, Err(StoreError::Refused(_))), "{ctx}");
                Added::default()
            } else if net > available {
                match res {
                    Err(StoreError::Ledger(LedgerError::Insufficient {
                        account,
                        available: a,
                        requested: r,
                    })) => assert_eq!(
                        (*account, *a, *r),
                        (w.wallets[acct], Micros(available), Micros(net)),
                        "{ctx}"
                    ),
                    _ => panic!("{ctx}: expected insufficient"),
                }
                Added::default()
            } else {
                let v = res.as_ref().unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert_eq!(
                    (v.credit, v.charge, v.effective.as_str()),
                    (Micros(credit), Micros(charge), "now"),
                    "{ctx}"
                );
                assert_eq!(v.effective_date, date(2026, 11, day).to_string(), "{ctx}");
                model.balance[acct] -= net;
                model.revenue += net;
                model.plan[*sub] = *plan;
                Added {
                    entries: i64::from(credit > 0) + i64::from(charge > 0),
                    changes: 1,
                    ..Added::default()
                }
            }
        }
        (Op::Charge(specs), Outcome::Charged(outs)) => {
            let evs = events(i, day, specs);
            assert_eq!(outs.len(), evs.len(), "{ctx}");
            let mut added = Added::default();
            let mut next_seq = head + 1;
            for (ev, o) in evs.iter().zip(outs) {
                let ctx = format!("{ctx}\n  event {ev:?} → {o:?}");
                if model.charged.contains(&ev.key) {
                    assert_eq!(*o, ChargeOutcome::Duplicate, "{ctx}");
                    continue;
                }
                let Some(line) = line_of(&ev.number) else {
                    assert!(
                        matches!(o, ChargeOutcome::Refused { reason, .. } if reason.contains("not a subscriber")),
                        "{ctx}"
                    );
                    continue;
                };
                let amount = match (ACCOUNTS[line].plan, o) {
                    // No plan: the rated cost, if the wallet can pay it.
                    (None, _) => {
                        let cost = ev.rated_cost.unwrap();
                        let cost = Micros::from_decimal(cost).unwrap().0;
                        if model.balance[line] - cost >= floor(line) {
                            assert_eq!(
                                *o,
                                ChargeOutcome::Charged {
                                    amount: Micros(cost),
                                    covered: 0,
                                    seq: (cost != 0).then_some(next_seq),
                                },
                                "{ctx}"
                            );
                            cost
                        } else {
                            let available = model.balance[line] - floor(line);
                            assert_eq!(
                                insufficient(o),
                                Some((Micros(available), Micros(cost))),
                                "{ctx}"
                            );
                            continue;
                        }
                    }
                    // The plan has no SMS allowance and prices none beyond it.
                    (Some(_), _) if ev.usage == UsageKind::Sms => {
                        assert!(
                            matches!(o, ChargeOutcome::Refused { reason, .. } if !reason.contains("insufficient")),
                            "{ctx}"
                        );
                        continue;
                    }
                    (
                        Some(_),
                        ChargeOutcome::Charged {
                            amount,
                            covered,
                            seq,
                        },
                    ) => {
                        assert!(
                            amount.0 >= 0 && (0..=ev.quantity).contains(covered),
                            "{ctx}"
                        );
                        if *covered == ev.quantity {
                            assert_eq!(*amount, Micros::ZERO, "{ctx}");
                        }
                        assert_eq!(*seq, (amount.0 != 0).then_some(next_seq), "{ctx}");
                        amount.0
                    }
                    // Allowances and overage price everything else: only money can be short.
                    (Some(_), ChargeOutcome::Refused { .. }) => {
                        let available = Micros(model.balance[line] - floor(line));
                        let short = insufficient(o).is_some_and(|(a, r)| a == available && r > a);
                        assert!(short, "{ctx}: expected insufficient, {available} available");
                        continue;
                    }
                    (Some(_), ChargeOutcome::Duplicate) => panic!("{ctx}"),
                };
                model.charged.insert(ev.key.clone());
                model.balance[line] -= amount;
                model.revenue += amount;
                added.charges += 1;
                if amount != 0 {
                    added.entries += 1;
                    next_seq += 1;
                }
            }
            added
        }
        _ => panic!("{ctx}: unexpected outcome"),
    }
}

/// Runs the sequence once on a fresh store, checking every step. Returns the model and a
/// summary of every outcome (to compare stores and replays).
async fn first_run(w: &World, mut model: Model, steps: &[Step]) -> (Model, Vec<String>) {
    let mut day: i8 = 2;
    let mut summary = Vec::with_capacity(steps.len());
    let mut before = snapshot(w).await;
    for (i, step) in steps.iter().enumerate() {
        day = (day + i8::try_from(step.advance).unwrap()).min(30);
        let out = run(w, i, day, &step.op).await;
        let added = check_first(w, &mut model, i, day, &step.op, &out, before.head.0);
        let after = snapshot(w).await;
        let what = format!("op {i} {:?}: {out:?}", step.op);
        if added == Added::default() {
            assert_eq!(after, before, "{}: refused, yet changed: {what}", w.name);
        } else {
            assert_eq!(
                (after.entries, after.charges, after.changes),
                (
                    before.entries + added.entries,
                    before.charges + added.charges,
                    before.changes + added.changes
                ),
                "{}: {what}",
                w.name
            );
        }
        check_model(w.name, &model, &after, &what);
        summary.push(summarise(&out));
        before = after;
    }
    (model, summary)
}

/// An outcome without what differs between two stores by design (wall-clock times, the row id
/// of a plan change).
fn summarise(out: &Outcome) -> String {
    match out {
        Outcome::Posted(r) => format!("{:?}", r.as_ref().map_err(ToString::to_string)),
        Outcome::Charged(o) => format!("{o:?}"),
        Outcome::Changed(r) => format!(
            "{:?}",
            r.as_ref()
                .map(|v| (v.credit, v.charge))
                .map_err(ToString::to_string)
        ),
    }
}

/// Replays, on the store of the first run, everything it recorded: every top-up, refund and
/// charged event again under its key. Refused operations are replayed only when they must be
/// refused whatever the state (the `Bad` ones): a refused key is not recorded and may rightly
/// succeed later. A plan change carries no caller key (the store keys its proration by the new
/// change row), so it is replayed only where the subscription is on its target: there it must
/// be refused.
async fn replay_recorded(w: &World, model: &Model, steps: &[Step], summary: &[String]) {
    let mut day: i8 = 2;
    for (i, step) in steps.iter().enumerate() {
        day = (day + i8::try_from(step.advance).unwrap()).min(30);
        let ctx = format!("{}: replay of op {i} {:?}", w.name, step.op);
        match &step.op {
            Op::TopUp { .. } | Op::Refund { .. } => {
                let Outcome::Posted(r) = run(w, i, day, &step.op).await else {
                    unreachable!()
                };
                let p = r.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert!(p.duplicate, "{ctx}");
                assert_eq!(
                    summarise(&Outcome::Posted(Ok(Posted {
                        duplicate: false,
                        ..p
                    }))),
                    summary[i],
                    "{ctx}: the original's sequence number"
                );
            }
            Op::Bad(_) => {
                let out = run(w, i, day, &step.op).await;
                assert_eq!(summarise(&out), summary[i], "{ctx}");
            }
            Op::Charge(specs) => {
                let charged: Vec<UsageEvent> = events(i, day, specs)
                    .into_iter()
                    .filter(|e| model.charged.contains(&e.key))
                    .collect();
                if charged.is_empty() {
                    continue;
                }
                let outs = w.charger.charge_batch(&charged).await.unwrap();
                assert!(
                    outs.iter().all(|o| *o == ChargeOutcome::Duplicate),
                    "{ctx}: {outs:?}"
                );
            }
            Op::Change { sub, plan } => {
                if model.plan[*sub] != *plan {
                    continue;
                }
                let Outcome::Changed(r) = run(w, i, day, &step.op).await else {
                    unreachable!()
                };
                assert!(matches!(r, Err(StoreError::Refused(_))), "{ctx}: {r:?}");
            }
        }
    }
}

/// The second run of an operation just run (same store, same state but for the first run's
/// effect): it must change nothing, and say so.
fn check_duplicate(name: &str, i: usize, op: &Op, first: &Outcome, dup: &Outcome) {
    let ctx = format!("{name}: op {i} {op:?} twice: {first:?} then {dup:?}");
    match (first, dup) {
        (Outcome::Posted(Ok(a)), Outcome::Posted(Ok(b))) => {
            assert_eq!((b.first_seq, b.duplicate), (a.first_seq, true), "{ctx}");
        }
        (Outcome::Posted(Err(a)), Outcome::Posted(Err(b))) => {
            assert_eq!(a.to_string(), b.to_string(), "{ctx}");
        }
        (Outcome::Changed(Ok(_)), Outcome::Changed(Err(StoreError::Refused(_)))) => {}
        (Outcome::Changed(Err(a)), Outcome::Changed(Err(b))) => {
            assert_eq!(a.to_string(), b.to_string(), "{ctx}");
        }
        (Outcome::Charged(a), Outcome::Charged(b)) => {
            assert_eq!(a.len(), b.len(), "{ctx}");
            for (x, y) in a.iter().zip(b) {
                match x {
                    ChargeOutcome::Charged { .. } | ChargeOutcome::Duplicate => {
                        assert_eq!(*y, ChargeOutcome::Duplicate, "{ctx}");
                    }
                    // Still refused (the reason may name another available balance: the
                    // batch's other events were charged in between).
                    ChargeOutcome::Refused { .. } => {
                        assert!(matches!(y, ChargeOutcome::Refused { .. }), "{ctx}");
                    }
                }
            }
        }
        _ => panic!("{ctx}"),
    }
}

/// Store one: the sequence once, checked op by op, then everything recorded replayed. Returns
/// the model, the outcomes' summary and the end state.
async fn once_then_replay(
    store: &Store,
    name: &'static str,
    steps: &[Step],
) -> (Model, Vec<String>, Snapshot) {
    let (w, model) = setup(store.clone(), name).await;
    check_ledger(&w, &snapshot(&w).await).await;

    let (model, summary) = first_run(&w, model, steps).await;
    let done = snapshot(&w).await;
    check_ledger(&w, &done).await;
    check_accounts(&w, &model, "after the sequence").await;

    // Everything recorded, again: nothing changes, not even the chain head.
    replay_recorded(&w, &model, steps, &summary).await;
    let replayed = snapshot(&w).await;
    assert_eq!(replayed, done, "{name}: the replay changed the store");
    check_model(name, &model, &replayed, "after the replay");
    check_accounts(&w, &model, "after the replay").await;
    check_ledger(&w, &replayed).await;
    let (model, renewed) = renew_month(&w, model).await;
    (model, summary, renewed)
}

/// Store two: each operation twice in a row; the second run must change nothing. Returns the
/// model, the summary of the first runs' outcomes and the end state.
async fn twice_in_a_row(
    store: &Store,
    name: &'static str,
    steps: &[Step],
) -> (Model, Vec<String>, Snapshot) {
    let (w, mut model) = setup(store.clone(), name).await;
    let mut summary = Vec::with_capacity(steps.len());
    let mut day: i8 = 2;
    let mut head = snapshot(&w).await.head.0;
    for (i, step) in steps.iter().enumerate() {
        day = (day + i8::try_from(step.advance).unwrap()).min(30);
        let first = run(&w, i, day, &step.op).await;
        check_first(&w, &mut model, i, day, &step.op, &first, head);
        summary.push(summarise(&first));
        let between = snapshot(&w).await;
        let dup = run(&w, i, day, &step.op).await;
        check_duplicate(name, i, &step.op, &first, &dup);
        let after = snapshot(&w).await;
        assert_eq!(
            after, between,
            "{name}: op {i} {:?} run twice changed the store: {dup:?}",
            step.op
        );
        head = after.head.0;
    }
    let twice = snapshot(&w).await;
    check_ledger(&w, &twice).await;
    check_model(name, &model, &twice, "after everything twice");
    check_accounts(&w, &model, "after everything twice").await;
    let (model, renewed) = renew_month(&w, model).await;
    (model, summary, renewed)
}

/// November ends: each subscription renews into December at its current plan's fee, or is
/// suspended when its wallet cannot pay it; a second run changes nothing.
async fn renew_month(w: &World, mut model: Model) -> (Model, Snapshot) {
    let name = w.name;
    let report = w.store.renew(&w.t, date(2026, 12, 1)).await.unwrap();
    let mut suspended = Vec::new();
    for (n, acct) in SUB_ACCOUNTS.iter().enumerate() {
        let fee = PLANS[model.plan[n]].2;
        if model.balance[*acct] - fee >= floor(*acct) {
            model.balance[*acct] -= fee;
            model.revenue += fee;
        } else {
            suspended.push(w.subs[n]);
        }
    }
    let got: Vec<i64> = report.suspended.iter().map(|s| s.subscription).collect();
    assert_eq!(got, suspended, "{name}: {report:?}");
    assert_eq!(
        (report.due, report.periods),
        (2, 2 - suspended.len() as u64),
        "{name}: {report:?}"
    );
    let renewed = snapshot(w).await;
    check_model(name, &model, &renewed, "after the renewal");
    check_accounts(w, &model, "after the renewal").await;
    check_ledger(w, &renewed).await;
    let again = w.store.renew(&w.t, date(2026, 12, 1)).await.unwrap();
    assert_eq!(again.periods, 0, "{name}: {again:?}");
    assert_eq!(again.suspended.len(), suspended.len(), "{name}: {again:?}");
    assert_eq!(
        snapshot(w).await,
        renewed,
        "{name}: a second renewal changed the store"
    );
    (model, renewed)
}

/// Both stores of one engine, side by side (they are independent), then compared.
async fn run_engine(first: Store, second: Store, name: &'static str, steps: Arc<[Step]>) {
    let ((model, summary, once), (model2, summary2, twice)) = tokio::join!(
        once_then_replay(&first, name, &steps),
        twice_in_a_row(&second, name, &steps),
    );
    for (i, (a, b)) in summary.iter().zip(&summary2).enumerate() {
        assert_eq!(
            a, b,
            "{name}: op {i} {:?} differs between the stores",
            steps[i].op
        );
    }
    assert_eq!(
        (model2.balance, model2.revenue, model2.clearing, model2.plan),
        (model.balance, model.revenue, model.clearing, model.plan),
        "{name}: the stores' balances differ"
    );
    assert_eq!(
        twice.without_hash(),
        once.without_hash(),
        "{name}: the stores differ"
    );
    first.close().await;
    second.close().await;
}

async fn run_case(steps: &[Step]) {
    let steps: Arc<[Step]> = steps.into();
    let (firsts, seconds) = tokio::join!(common::engines(), common::engines());
    // The engines run concurrently too; each task's panic message names its engine.
    let mut tasks = Vec::new();
    for (e, e2) in firsts.iter().zip(&seconds) {
        assert_eq!(e.name, e2.name);
        tasks.push(tokio::spawn(run_engine(
            e.store.clone(),
            e2.store.clone(),
            e.name,
            Arc::clone(&steps),
        )));
    }
    for t in tasks {
        if let Err(e) = t.await {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// The property: balanced, consistent, floored, refusals inert, replays idempotent.
    #[test]
    fn random_operations_keep_the_ledger_consistent_and_replays_change_nothing(
        steps in sequences()
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run_case(&steps));
    }
}
