//! Plans and set-ups shared by the behaviour tests.
#![allow(dead_code)]

use jiff::civil::date;
use toll_catalog::lifecycle::{Actor, PlanAction};
use toll_core::{Currency, Micros, UsageKind};
use toll_store::accounts::AccountMode;
use toll_store::cdrs::CdrRecord;
use toll_store::charging::{ChargeOutcome, Charger, RecordBatch, RefusalCode, UsageEvent};
use toll_store::subscriptions::SubscribeRequest;
use toll_store::suspense::{NewSuspense, Stage};
use toll_store::{Store, Tenant};

pub fn actor(name: &str) -> Actor {
    Actor::new(name).unwrap()
}

/// A monthly combo plan at `fee` with 100 voice minutes, 1 GB data (a 500 MB WeChat pack
/// part of it), and per-minute overage.
pub fn plan_toml(code: &str, fee: &str) -> String {
    format!(
        r#"
code = "{code}"
name = "测试套餐 {code}"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "{fee}"
validity = "calendar_month"

[[allowances]]
usage = "voice"
quantity = 100
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 1
unit = "gb"

[[allowances]]
usage = "data"
quantity = 500
unit = "mb"
services = ["wechat"]

[[overage]]
usage = "voice"
unit = "minute"
per_event = "up"
[overage.pricing]
model = "per_unit"
unit_price = "0.15"

[[overage]]
usage = "data"
unit = "mb"
per_event = "up"
[overage.pricing]
model = "graduated"
tiers = [
  {{ up_to = 100, unit_price = "0.5" }},
  {{ unit_price = "0.2" }},
]
"#
    )
}

/// Creates, submits, approves (by another user) and activates a plan.
pub async fn active_plan(store: &Store, tenant: &Tenant, code: &str, fee: &str) {
    activate(store, tenant, code, &plan_toml(code, fee)).await;
}

/// A 30-day add-on pack `voice-pack` at 5 with 60 voice minutes, active.
pub async fn active_voice_pack(store: &Store, tenant: &Tenant) {
    let pack = r#"
code = "voice-pack"
name = "语音叠加包"
class = "addon"
kind = "voice"
currency = "CNY"
base_fee = "5"
validity = { days = 30 }

[[allowances]]
usage = "voice"
quantity = 60
unit = "minutes"
"#;
    activate(store, tenant, "voice-pack", pack).await;
}

async fn activate(store: &Store, tenant: &Tenant, code: &str, toml: &str) {
    let maker = actor("alice");
    let checker = actor("bob");
    store.create_plan(tenant.id, toml, &maker).await.unwrap();
    for (a, who) in [
        (PlanAction::Submit, &maker),
        (PlanAction::Approve, &checker),
        (PlanAction::Activate, &checker),
    ] {
        store
            .plan_action(tenant.id, code, None, a, who, "")
            .await
            .unwrap();
    }
}

pub async fn tenant(store: &Store, slug: &str) -> Tenant {
    store
        .create_tenant(slug, slug, Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap()
}

/// A money amount written as a decimal.
pub fn m(s: &str) -> Micros {
    s.parse().unwrap()
}

/// The line every charging test uses.
pub const LINE: &str = "13800138000";

/// Tenant `acme` with account `a1` (prepaid, topped up with `balance` under key `pay-1`), line
/// [`LINE`], and that line on plan `p` (fee 10: 100 voice minutes, 1 GB data of which 500 MB for
/// WeChat) from 2026-11-01. Returns the tenant and the subscription's id.
pub async fn one_line(s: &Store, balance: &str) -> (Tenant, i64) {
    let t = tenant(s, "acme").await;
    s.create_customer(t.id, "c1", "张三").await.unwrap();
    s.create_account(t.id, "c1", "a1", AccountMode::Prepaid)
        .await
        .unwrap();
    s.top_up(t.id, "a1", m(balance), "pay-1", "").await.unwrap();
    s.add_subscriber(t.id, "a1", LINE).await.unwrap();
    active_plan(s, &t, "p", "10").await;
    let id = subscribe(s, &t, "p").await;
    (t, id)
}

/// Subscribes account `a1`'s line [`LINE`] to `plan` from 2026-11-01.
pub async fn subscribe(s: &Store, t: &Tenant, plan: &str) -> i64 {
    let lines = [LINE.to_string()];
    let req = SubscribeRequest {
        account: "a1",
        plan,
        lines: &lines,
        start: date(2026, 11, 1),
    };
    s.subscribe(t, &req, &actor("ops")).await.unwrap().id
}

/// The amount and covered quantity of a charged event; panics on any other outcome.
pub fn charged(o: &ChargeOutcome) -> (Micros, i64) {
    match o {
        ChargeOutcome::Charged {
            amount, covered, ..
        } => (*amount, *covered),
        other => panic!("not charged: {other:?}"),
    }
}

/// A call of `seconds` from `number` to a Beijing number, rated at `cost` as destination
/// `dest` (its event and its record).
pub fn rated_call(
    id: &str,
    number: &str,
    at_ms: i64,
    seconds: i64,
    dest: &str,
    cost: &str,
) -> (UsageEvent, CdrRecord) {
    let ev = UsageEvent {
        key: format!("pbx/{id}"),
        number: number.into(),
        usage: UsageKind::Voice,
        service: None,
        at_ms,
        quantity: seconds,
        destination: Some(dest.into()),
        rated_cost: Some(cost.parse().unwrap()),
    };
    let rec = CdrRecord {
        source: "pbx".into(),
        record_id: id.into(),
        import_id: None,
        caller: number.into(),
        callee: "01088886666".into(),
        destination: Some("01088886666".into()),
        start_ms: at_ms,
        utc_offset_s: 8 * 3600,
        answer_ms: Some(at_ms),
        end_ms: Some(at_ms + seconds * 1000),
        quantity: seconds * 1_000_000_000,
        category: "call".into(),
        subject: number.into(),
        rated_usage: Some(seconds * 1_000_000_000),
        cost: Some(m(cost)),
        matched_prefix: Some("010".into()),
        destination_id: Some(dest.into()),
        carrier: None,
        region: None,
        default_rated: false,
        call_id: None,
        swept: false,
        suspense_id: None,
        suspense_key: None,
    };
    (ev, rec)
}

/// The suspense item of a refused event in the tests' record batches.
pub fn refused_item(_: usize, _: RefusalCode, why: &str) -> NewSuspense {
    NewSuspense {
        item_key: "x".into(),
        source: "pbx".into(),
        format: "test".into(),
        import_id: None,
        line: None,
        stage: Stage::Charge,
        class: "refused".into(),
        field: None,
        reason: why.into(),
        raw: Vec::new(),
        record: None,
    }
}

/// Charges `calls` as one record batch; panics unless every one is charged.
pub async fn charge_calls(c: &Charger, calls: Vec<(UsageEvent, CdrRecord)>) {
    let (events, records): (Vec<_>, Vec<_>) = calls.into_iter().unzip();
    let out = c
        .charge_records(RecordBatch {
            events: &events,
            records: &records,
            suspense: &[],
            on_refused: &refused_item,
            resolved: &[],
            import: None,
            closes: &[],
        })
        .await
        .unwrap();
    for o in out {
        assert!(matches!(o, ChargeOutcome::Charged { .. }), "{o:?}");
    }
}
