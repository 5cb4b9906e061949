//! Plans and set-ups shared by the behaviour tests.
#![allow(dead_code)]

use toll_catalog::lifecycle::{Actor, PlanAction};
use toll_core::Currency;
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
    let maker = actor("alice");
    let checker = actor("bob");
    store
        .create_plan(tenant.id, &plan_toml(code, fee), &maker)
        .await
        .unwrap();
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
