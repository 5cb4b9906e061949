//! The demo operator for `toll demo`: a fresh database filled with a month of a realistic
//! Chinese operator's business, so that the web UI has something true to show.
//!
//! Everything goes through the same services production uses, never through SQL of its own:
//! plans through the maker–checker lifecycle, lines through the bulk line import, fees through
//! the renewal run, and CDRs through the ingestion pipeline (read by the `cdr-json` reader,
//! cleansed, rated by the bundled `examples/cn-demo` tariff, charged against allowances and
//! wallets). So what the demo shows — ledger entries, allowance buckets, suspense items with
//! their reasons — is what Toll itself made, and the ledger verifies.
//!
//! The data is a pure function of [`DemoOptions`]: a seeded generator and times relative to
//! `opts.now`, so a test seeds twice and gets the same totals. Only the wall-clock columns the
//! store stamps itself (`created_ms`, top-up and fee posting times) differ between runs.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Cursor;
use std::sync::Arc;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rust_decimal::Decimal;
use toll_catalog::lifecycle::{Actor, PlanAction};
use toll_core::usage::GoDuration;
use toll_core::{Currency, Micros, UsageKind};
use toll_ingest::Cleansing;
use toll_ingest::pipeline::feed::PipelineSettings;
use toll_ingest::pipeline::formats::{Format, ReaderSpec};
use toll_ingest::pipeline::rating::{DefaultRate, Payer};
use toll_ingest::pipeline::record::CdrJson;
use toll_ingest::pipeline::{BatchReport, DEFAULT_BATCH, Item, Origin, RetryPolicy};
use toll_rating::source::SourceFile;
use toll_rating::{Diagnostics, Tariff};
use toll_store::accounts::AccountMode;
use toll_store::import::{ImportLine, MAX_IMPORT};
use toll_store::{Store, StoreError, Tenant};

use crate::generate::Rng;

/// The demo tenant's slug.
pub const TENANT: &str = "demo";
/// The demo tenant's display name.
pub const TENANT_NAME: &str = "华通电信 Demo Telecom";
/// The demo tenant's zone: every civil time of the demo (bands, periods, days) is Beijing time.
pub const TIME_ZONE: &str = "Asia/Shanghai";
/// Days of traffic before `now`.
pub const DAYS: i64 = 30;

/// The bundled operator tariff (calls: mobile, fixed, international, peak/off-peak/holiday),
/// embedded so that `toll demo` works from any directory.
const CN_DEMO_TARIFF: &str = include_str!("../../../examples/cn-demo/tariff.toml");
/// The tenant name the bundled tariff's profiles are written for.
const CN_DEMO_TENANT: &str = "acme";

/// Messages and data for the demo operator. The bundled tariff prices calls only; without
/// these rows every SMS and data record would be rated by a default rate and flagged so.
/// Parsed on its own and merged into the bundled definition (which owns the destinations it
/// names), so `examples/cn-demo` stays the file the README documents.
const MESSAGING_TARIFF: &str = r#"
name = "cn-demo-messaging"
currency = "CNY"
timezone = "Asia/Shanghai"
numbering = "cn"

[rates]
# 短信 0.10 元/条 (international 1 元/条); bare numbers are message counts.
SMS_DOMESTIC = { rate = "0.10", unit = "1", increment = "1" }
SMS_INTL     = { rate = "1.00", unit = "1", increment = "1" }
# 国内流量 0.29 元/MB, charged per started KB (units are bytes; 1 MB = 1024 KB).
DATA_PAYG    = { rate = "0.29", unit = "1048576", increment = "1024" }

[destination_rates]
DR_SMS = [
    { destination = "CN_MOBILE", rate = "SMS_DOMESTIC", rounding = "*up", decimals = 2 },
    { destination = "INTL",      rate = "SMS_INTL",     rounding = "*up", decimals = 2 },
]
DR_DATA = { destination = "*any", rate = "DATA_PAYG", rounding = "*up", decimals = 2 }

[plans]
SMS_STANDARD = { destination_rates = "DR_SMS" }
DATA_STANDARD = { destination_rates = "DR_DATA" }

[[profiles]]
tenant = "demo"
category = "sms"
subject = "*any"
plan = "SMS_STANDARD"

[[profiles]]
tenant = "demo"
category = "data"
subject = "*any"
plan = "DATA_STANDARD"
"#;

/// How much demo to make, and from where in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    /// The demo's "now": traffic covers the [`DAYS`] days before it.
    pub now: Timestamp,
    pub subscribers: usize,
    /// Records fed to the pipeline, the deliberately broken ones included.
    pub cdrs: usize,
    pub seed: u64,
}

impl DemoOptions {
    /// The full demo: 1,000 subscribers and 100,000 CDRs up to `now`.
    pub fn full(now: Timestamp) -> DemoOptions {
        DemoOptions {
            now,
            subscribers: 1_000,
            cdrs: 100_000,
            seed: 2026,
        }
    }
}

/// What [`seed`] made, for printing and for tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DemoSummary {
    pub tenant: String,
    /// Plan code → lifecycle status.
    pub plans: BTreeMap<String, String>,
    /// Status → number of plans.
    pub plans_by_status: BTreeMap<String, usize>,
    pub subscribers: usize,
    pub prepaid: usize,
    pub postpaid: usize,
    /// Subscribers per plan code.
    pub subscribers_by_plan: BTreeMap<String, usize>,
    /// Mid-month wallet top-ups (besides the opening balances).
    pub top_ups: usize,
    /// Periods the renewal run started (each charged its monthly fee).
    pub renewed_periods: u64,
    /// Records fed to the pipeline.
    pub cdrs_generated: usize,
    /// Records charged: each is a stored CDR.
    pub cdrs_charged: u64,
    /// Records not billed by a cleansing rule (unanswered calls).
    pub skipped: u64,
    /// Records in the suspense queue.
    pub suspended: u64,
    pub suspended_by_class: BTreeMap<String, u64>,
    /// Charged for usage beyond allowances (the stored CDRs' total).
    pub usage_revenue: Decimal,
    /// Monthly fees charged by the renewal run.
    pub fee_revenue: Decimal,
    /// Everything the wallets paid: fees and usage.
    pub total_revenue: Decimal,
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the database already has a tenant {0:?}: the demo seeds an empty database")]
    NotEmpty(String),
    #[error("the demo tariff does not compile:\n{0}")]
    Tariff(Diagnostics),
    #[error("demo data: {0}")]
    Invalid(String),
    #[error("a batch of demo CDRs failed after {attempts} attempts: {error}")]
    Batch { attempts: u32, error: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The demo tariff's source files: the bundled `examples/cn-demo` call tariff with its profiles
/// moved to the demo tenant (so the pipeline's default — the tenant's own slug — finds them),
/// and the messaging and data rows in a file of their own beside it. `toll demo` stores these
/// files as the tenant's active tariff, so the API rates with exactly what the demo charged.
pub fn tariff_files() -> Vec<SourceFile> {
    let calls = CN_DEMO_TARIFF.replace(
        &format!("tenant = \"{CN_DEMO_TENANT}\""),
        &format!("tenant = \"{TENANT}\""),
    );
    vec![
        SourceFile {
            name: "tariff.toml".into(),
            bytes: calls.into_bytes(),
        },
        SourceFile {
            name: "messaging.toml".into(),
            bytes: MESSAGING_TARIFF.as_bytes().to_vec(),
        },
    ]
}

/// The demo tariff, compiled from [`tariff_files`].
pub fn tariff() -> Result<Arc<Tariff>, DemoError> {
    toll_rating::source::compile::compile_files(&tariff_files())
        .map(|l| l.tariff)
        .map_err(DemoError::Tariff)
}

/// The pipeline rules the demo charges with (and `toll demo` serves with): the demo tariff,
/// payer the caller, unanswered and sub-second calls not billed.
pub fn pipeline_settings() -> Result<PipelineSettings, DemoError> {
    Ok(PipelineSettings {
        tariff: Some(tariff()?),
        tariff_tenant: None,
        category: "call".into(),
        default_rate: DefaultRate::default(),
        payer: Payer::Caller,
        cleansing: Cleansing {
            min_voice_ns: 1_000_000_000,
            skip_unanswered: true,
            internal_max_digits: None,
        },
        retry: RetryPolicy::default(),
    })
}

// ---------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------

/// The product manager who writes plans (the maker).
const MAKER: &str = "li.na";
/// The pricing manager who approves them (the checker: never the author).
const CHECKER: &str = "wang.qiang";

/// The plan on sale, and the retired plan whose subscribers keep it: the two that have lines.
const ACTIVE: &str = "changxiang-58";
const RETIRED: &str = "daliuliang-99";

/// On sale: most subscribers. Voice beyond the allowance is rated by the tariff (peak/off-peak,
/// international), data and SMS by overage.
const PLAN_ACTIVE: &str = r#"code = "changxiang-58"
name = "畅享58元套餐"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "58.00"
validity = "calendar_month"

# 超出套餐的通话按标准资费 (cn-demo tariff) 计费。
[tariff]
category = "call"
subject = "changxiang-58"

[[allowances]]
usage = "voice"
quantity = 200
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 10
unit = "gb"

# 定向流量: WeChat and Douyin only, drawn before the general 10 GB.
[[allowances]]
usage = "data"
quantity = 10
unit = "gb"
services = ["wechat", "douyin"]

[[allowances]]
usage = "sms"
quantity = 100
unit = "messages"

# 超出后 5 元/GB, every started GB of the month.
[[overage]]
usage = "data"
unit = "gb"
per_event = "exact"
[overage.pricing]
model = "package"
package_size = 1
package_price = "5"

[[overage]]
usage = "sms"
unit = "message"
per_event = "up"
[overage.pricing]
model = "per_unit"
unit_price = "0.10"
"#;

/// Sold until it was retired; its subscribers keep it (retiring stops sales, not service).
const PLAN_RETIRED: &str = r#"code = "daliuliang-99"
name = "4G大流量99元套餐"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "99.00"
validity = "calendar_month"

[[allowances]]
usage = "voice"
quantity = 500
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 30
unit = "gb"

[[allowances]]
usage = "sms"
quantity = 200
unit = "messages"

# 超出后国内外通话一律 0.19 元/分钟.
[[overage]]
usage = "voice"
unit = "minute"
per_event = "up"
[overage.pricing]
model = "per_unit"
unit_price = "0.19"

# 超出后首 GB 5 元/GB, 之后 3 元/GB, by the exact megabyte.
[[overage]]
usage = "data"
unit = "mb"
per_event = "exact"
[overage.pricing]
model = "graduated"
tiers = [
  { up_to = 1024, unit_price = "5", per = 1024 },
  { unit_price = "3", per = 1024 },
]

[[overage]]
usage = "sms"
unit = "message"
per_event = "up"
[overage.pricing]
model = "per_unit"
unit_price = "0.10"
"#;

/// Approved, waiting for its launch.
const PLAN_APPROVED: &str = r#"code = "5g-changxiang-128"
name = "5G畅享128元套餐"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "128.00"
validity = "calendar_month"

[tariff]
category = "call"
subject = "5g-changxiang-128"

[[allowances]]
usage = "voice"
quantity = 500
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 30
unit = "gb"

[[allowances]]
usage = "data"
quantity = 10
unit = "gb"
services = ["wechat", "douyin"]

[[allowances]]
usage = "sms"
quantity = 100
unit = "messages"

[[overage]]
usage = "data"
unit = "mb"
per_event = "exact"
[overage.pricing]
model = "graduated"
tiers = [
  { up_to = 1024, unit_price = "5", per = 1024 },
  { unit_price = "3", per = 1024 },
]
"#;

/// Waiting for the checker (after one rejection and a fix).
const PLAN_PENDING: &str = r#"code = "family-199"
name = "冰激凌家庭共享199元套餐"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "199.00"
validity = "calendar_month"

# 主卡加最多 3 张副卡, 共享 1000 分钟与 100 GB.
[shared]
max_members = 4

[[allowances]]
usage = "voice"
quantity = 1000
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 100
unit = "gb"

[[overage]]
usage = "data"
unit = "gb"
per_event = "exact"
[overage.pricing]
model = "package"
package_size = 1
package_price = "5"
"#;

/// Still being written.
const PLAN_DRAFT: &str = r#"code = "xiaoyuan-19"
name = "青春校园卡19元"
class = "base"
kind = "combo"
currency = "CNY"
base_fee = "19.00"
validity = "calendar_month"

[[allowances]]
usage = "voice"
quantity = 50
unit = "minutes"

[[allowances]]
usage = "data"
quantity = 5
unit = "gb"

[[allowances]]
usage = "data"
quantity = 20
unit = "gb"
services = ["bilibili", "douyin", "wechat"]

[[overage]]
usage = "voice"
unit = "minute"
per_event = "up"
[overage.pricing]
model = "per_unit"
unit_price = "0.15"
"#;

fn actor(name: &str) -> Result<Actor, DemoError> {
    Actor::new(name).map_err(|e| DemoError::Invalid(e.to_string()))
}

/// Creates the plan as the maker and walks it through `steps`, each by the actor the
/// four-eyes rule wants (the checker approves; the maker submits).
async fn plan_with_steps(
    store: &Store,
    tenant: &Tenant,
    definition: &str,
    steps: &[(PlanAction, &str, &str)],
) -> Result<String, DemoError> {
    let maker = actor(MAKER)?;
    let v = store.create_plan(tenant.id, definition, &maker).await?;
    for (action, who, comment) in steps {
        store
            .plan_action(tenant.id, &v.code, None, *action, &actor(who)?, comment)
            .await?;
    }
    Ok(v.code)
}

// ---------------------------------------------------------------------------------------------
// People and numbers
// ---------------------------------------------------------------------------------------------

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁",
    "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范", "金", "石", "廖", "贾", "夏",
    "欧阳", "司马", "上官",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英", "华", "建国", "志强", "婷", "雪", "晨", "宇", "浩然",
    "子涵", "欣怡", "梓萱", "一诺", "思远", "文博", "佳怡", "俊杰", "雨桐", "诗涵", "国栋", "海燕",
];
const CITIES: &[&str] = &[
    "北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "南京", "西安", "重庆", "苏州", "长沙",
];
const BUSINESSES: &[&str] = &[
    "科技有限公司",
    "贸易有限公司",
    "物流有限公司",
    "餐饮管理有限公司",
    "网络科技有限公司",
    "建筑工程有限公司",
    "文化传媒有限公司",
    "电子商务有限公司",
];
/// Mobile segments of the four carriers (移动, 联通, 电信, 广电).
const MOBILE_SEGMENTS: &[&str] = &[
    "134", "135", "136", "137", "138", "139", "147", "150", "151", "152", "157", "158", "159",
    "178", "182", "183", "184", "187", "188", "198", "130", "131", "132", "145", "155", "156",
    "166", "175", "176", "185", "186", "133", "149", "153", "173", "177", "180", "181", "189",
    "199", "192",
];
/// Area codes with the length of their local numbers.
const AREA_CODES: &[(&str, u32)] = &[
    ("10", 8),
    ("21", 8),
    ("20", 8),
    ("755", 8),
    ("28", 8),
    ("571", 8),
    ("27", 8),
    ("25", 8),
    ("23", 8),
    ("29", 8),
    ("512", 8),
    ("532", 8),
    ("731", 8),
    ("591", 8),
    ("371", 8),
    ("898", 7),
];
/// International destinations: IDD prefix, digits after it, weight.
const INTERNATIONAL: &[(&str, u32, u32)] = &[
    ("00852", 8, 30),
    ("00853", 8, 6),
    ("00886", 9, 10),
    ("001", 10, 15),
    ("0044", 10, 6),
    ("0081", 10, 10),
    ("0082", 10, 8),
    ("0065", 8, 6),
    ("0061", 9, 4),
    ("0049", 11, 3),
    ("0060", 9, 2),
];
/// Service numbers no tariff row rates (bank and hotline numbers): their calls go to suspense.
const SERVICE_NUMBERS: &[&str] = &["95588", "95533", "4008123123", "4006695566", "95555"];

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    // `items` is never empty: every list above is a non-empty constant.
    &items[rng.below(items.len() as u64) as usize]
}

fn digits(rng: &mut Rng, out: &mut String, n: u32) {
    for _ in 0..n {
        out.push(char::from(b'0' + rng.below(10) as u8));
    }
}

fn mobile(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(11);
    s.push_str(pick::<&str>(rng, MOBILE_SEGMENTS));
    digits(rng, &mut s, 8);
    s
}

fn person(rng: &mut Rng) -> String {
    let mut s = String::from(*pick(rng, SURNAMES));
    s.push_str(pick::<&str>(rng, GIVEN));
    if rng.below(3) == 0 {
        s.push_str(pick::<&str>(rng, GIVEN));
    }
    s
}

fn company(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "华信",
        "腾飞",
        "恒通",
        "瑞丰",
        "鼎盛",
        "宏远",
        "金桥",
        "新天地",
        "博雅",
        "众诚",
    ];
    format!(
        "{}{}{}",
        pick(rng, CITIES),
        pick(rng, WORDS),
        pick(rng, BUSINESSES)
    )
}

/// One demo line as generated.
#[derive(Debug, Clone)]
struct DemoLine {
    import: ImportLine,
    plan: &'static str,
    start: Date,
    /// Relative traffic: light, medium and heavy users.
    weight: u64,
}

fn micros(yuan: u64) -> Micros {
    Micros(i64::try_from(yuan).unwrap_or(i64::MAX / 1_000_000) * 1_000_000)
}

fn make_lines(
    rng: &mut Rng,
    n: usize,
    window_start: Date,
    plans: (&'static str, &'static str),
) -> Vec<DemoLine> {
    let mut seen = HashSet::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let number = mobile(rng);
        if !seen.insert(number.clone()) {
            continue;
        }
        let i = out.len() + 1;
        // Two lines in three on the plan on sale, the rest kept their retired plan.
        let (plan, fee) = if rng.below(3) < 2 {
            (plans.0, 58)
        } else {
            (plans.1, 99)
        };
        let postpaid = rng.below(10) < 4;
        let corporate = postpaid && rng.below(5) == 0;
        let mode = if postpaid {
            let limit = if corporate {
                5_000
            } else {
                *pick(rng, &[200u64, 300, 500, 1_000, 2_000])
            };
            AccountMode::Postpaid {
                credit_limit: micros(limit),
            }
        } else {
            AccountMode::Prepaid
        };
        // Prepaid wallets hold two months of fees and some change: the renewal and the
        // month's usage are paid, with the odd wallet running low.
        let opening = if postpaid {
            Micros::ZERO
        } else {
            micros(2 * fee + *pick(rng, &[10u64, 30, 50, 100, 100, 200, 300, 500]))
        };
        // Each line joined on some day of the month before the window: its first period
        // covers the window's start, and renewal rolls it into the current period.
        let start = window_start
            .checked_sub((rng.below(28) as i64).days())
            .unwrap_or(window_start);
        let weight = match rng.below(20) {
            0..=9 => 1,
            10..=16 => 3,
            _ => 8,
        };
        let name = if corporate { company(rng) } else { person(rng) };
        // Some switches and CRMs write the country code: the store normalises it.
        let written = if rng.below(10) == 0 {
            format!("+86 {number}")
        } else {
            number
        };
        out.push(DemoLine {
            import: ImportLine {
                customer: format!("cust-{i:06}"),
                customer_name: name,
                account: format!("acct-{i:06}"),
                mode,
                number: written,
                opening_balance: opening,
            },
            plan,
            start,
            weight,
        });
    }
    out
}

/// The national form of a line's number (the form the CDRs use as caller).
fn national(number: &str) -> String {
    number.trim_start_matches("+86 ").to_string()
}

// ---------------------------------------------------------------------------------------------
// CDRs
// ---------------------------------------------------------------------------------------------

/// Relative call volume per hour of the day (Beijing time): quiet nights, a morning peak at
/// 10–11, a dip at lunch and an evening peak at 20–21.
const HOURLY: [u32; 24] = [
    5, 3, 2, 1, 1, 2, 6, 14, 26, 34, 40, 38, 28, 30, 35, 37, 36, 34, 32, 36, 40, 34, 20, 10,
];

/// What a generated record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    No,
    UnknownCaller,
    ServiceNumber,
    BadTime,
    BadUsage,
}

struct CdrGen<'a> {
    rng: Rng,
    lines: &'a [String],
    /// Cumulative traffic weights of `lines`.
    cumulative: Vec<u64>,
    zone: TimeZone,
    first_day: Date,
    from: Timestamp,
    to: Timestamp,
    /// The start of the demo's "today" (local midnight before `to`).
    today: Timestamp,
}

/// One generated record before it is numbered: its time (for ordering) and JSON form.
struct Gen {
    at: Timestamp,
    json: CdrJson,
    broken: Broken,
}

impl CdrGen<'_> {
    fn caller(&mut self) -> String {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let x = self.rng.below(total);
        let i = self.cumulative.partition_point(|c| *c <= x);
        self.lines.get(i).cloned().unwrap_or_default()
    }

    /// A time in the window, by day (weekends a little quieter) and the hourly curve; and
    /// one record in fifty in today's part of the window, whatever the hour: `toll demo`
    /// started at 03:00 would otherwise open on a dashboard of a few night calls and no
    /// revenue (the hourly curve gives the first hours of a day under 2 % of its traffic).
    fn time(&mut self) -> Timestamp {
        let elapsed = self.to.as_millisecond() - self.today.as_millisecond();
        if elapsed > 0 && self.rng.below(50) == 0 {
            let ms = self.today.as_millisecond() + self.rng.below(elapsed as u64) as i64;
            if let Ok(t) = Timestamp::from_millisecond(ms)
                && t >= self.from
            {
                return t;
            }
        }
        loop {
            let day = self.rng.below(DAYS as u64 + 1) as i64;
            let Ok(date) = self.first_day.checked_add(day.days()) else {
                continue;
            };
            let weekend = date.weekday().to_monday_one_offset() >= 6;
            if weekend && self.rng.below(5) == 0 {
                continue;
            }
            let hour = self.rng.weighted(&HOURLY) as i8;
            let minute = self.rng.below(60) as i8;
            let second = self.rng.below(60) as i8;
            let Ok(z) = date.at(hour, minute, second, 0).to_zoned(self.zone.clone()) else {
                continue;
            };
            let t = z.timestamp();
            if t >= self.from && t < self.to {
                return t;
            }
        }
    }

    fn stamp(&self, t: Timestamp) -> String {
        t.to_zoned(self.zone.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    fn callee_voice(&mut self) -> (String, bool) {
        match self.rng.weighted(&[56, 14, 24, 6]) {
            0 => {
                let n = mobile(&mut self.rng);
                // Switches write numbers in several forms; rating normalises them.
                let n = match self.rng.below(20) {
                    0 => format!("+86{n}"),
                    1 => format!("0086{n}"),
                    _ => n,
                };
                (n, false)
            }
            // On-net: another subscriber of the operator.
            1 => (self.caller(), false),
            2 => {
                let (area, len) = *pick(&mut self.rng, AREA_CODES);
                let mut s = format!("0{area}");
                s.push(char::from(b'2' + self.rng.below(7) as u8));
                digits(&mut self.rng, &mut s, len - 1);
                (s, false)
            }
            _ => {
                let weights: Vec<u32> = INTERNATIONAL.iter().map(|(_, _, w)| *w).collect();
                let (idd, len, _) = INTERNATIONAL[self.rng.weighted(&weights)];
                let mut s = idd.to_string();
                s.push(char::from(b'2' + self.rng.below(7) as u8));
                digits(&mut self.rng, &mut s, len - 1);
                (s, true)
            }
        }
    }

    /// Talk time in seconds: most calls short, a long tail.
    fn talk_seconds(&mut self, international: bool) -> u64 {
        let bucket = if international {
            self.rng.weighted(&[30, 40, 25, 5, 0])
        } else {
            self.rng.weighted(&[22, 36, 28, 11, 3])
        };
        match bucket {
            0 => self.rng.range(3, 30),
            1 => self.rng.range(31, 90),
            2 => self.rng.range(91, 300),
            3 => self.rng.range(301, 900),
            _ => self.rng.range(901, 3_600),
        }
    }

    fn record(&mut self, broken: Broken) -> Gen {
        let at = self.time();
        let mut caller = self.caller();
        if broken == Broken::UnknownCaller {
            // A roaming-in or ported-out number: not a line of this operator (170 is a
            // segment the demo never allocates).
            caller = format!("170{:08}", self.rng.below(100_000_000));
        }
        let kind = match broken {
            Broken::No => self.rng.weighted(&[62, 13, 25]),
            _ => 0,
        };
        let mut json = CdrJson {
            source: String::new(),
            record_id: String::new(),
            caller,
            callee: String::new(),
            start: self.stamp(at),
            answer: None,
            end: None,
            kind: UsageKind::Voice,
            usage: String::new(),
            disposition: "answered".into(),
            tenant: None,
            category: None,
            account: None,
            service: None,
            direction: Some("outbound".into()),
            call_id: None,
            extra: BTreeMap::new(),
            line: 0,
        };
        match kind {
            0 => {
                let (callee, intl) = if broken == Broken::ServiceNumber {
                    (pick(&mut self.rng, SERVICE_NUMBERS).to_string(), false)
                } else {
                    self.callee_voice()
                };
                json.callee = callee;
                json.source = "msc-gz-01".into();
                json.category = Some("call".into());
                let ring = self.rng.range(2, 15) as i64;
                // About one call in thirty is not answered: counted, not billed.
                if broken == Broken::No && self.rng.below(30) == 0 {
                    json.disposition = if self.rng.below(2) == 0 {
                        "no_answer".into()
                    } else {
                        "busy".into()
                    };
                    json.usage = "0s".into();
                    json.end = Some(self.stamp(at + ring.seconds()));
                } else {
                    let talk = self.talk_seconds(intl) as i64;
                    let answer = at + ring.seconds();
                    json.answer = Some(self.stamp(answer));
                    json.end = Some(self.stamp(answer + talk.seconds()));
                    json.usage = GoDuration(talk * 1_000_000_000).to_string();
                }
            }
            1 => {
                json.kind = UsageKind::Sms;
                json.source = "smsc-01".into();
                json.category = Some("sms".into());
                json.callee = if self.rng.below(50) == 0 {
                    format!("008529{:07}", self.rng.below(10_000_000))
                } else {
                    mobile(&mut self.rng)
                };
                // A long message goes as two or three parts.
                json.usage = match self.rng.below(10) {
                    0 => "2",
                    1 if self.rng.below(3) == 0 => "3",
                    _ => "1",
                }
                .into();
                json.direction = None;
            }
            _ => {
                json.kind = UsageKind::Data;
                json.source = "pgw-gd-01".into();
                json.category = Some("data".into());
                json.callee = "cmnet".into();
                json.direction = None;
                json.service = match self.rng.weighted(&[25, 20, 8, 47]) {
                    0 => Some("wechat".into()),
                    1 => Some("douyin".into()),
                    2 => Some("bilibili".into()),
                    _ => None,
                };
                let mb = match self.rng.weighted(&[60, 30, 10]) {
                    0 => self.rng.range(1, 50),
                    1 => self.rng.range(51, 300),
                    _ => self.rng.range(301, 1_500),
                };
                let bytes = mb * 1_048_576 + self.rng.below(1_048_576);
                json.usage = bytes.to_string();
                let minutes = self.rng.range(1, 90) as i64;
                json.end = Some(self.stamp(at + minutes.minutes()));
            }
        }
        Gen { at, json, broken }
    }
}

/// The records, ordered by time (switches write them so, and allowances are drawn in that
/// order), numbered per source, as JSON lines.
fn make_cdrs(
    opts: &DemoOptions,
    rng: Rng,
    lines: &[String],
    weights: &[u64],
    zone: &TimeZone,
) -> Result<Vec<u8>, DemoError> {
    let from = opts
        .now
        .checked_sub(DAYS.hours() * 24)
        .map_err(|e| DemoError::Invalid(e.to_string()))?;
    let first_day = from.to_zoned(zone.clone()).date();
    let mut cumulative = Vec::with_capacity(weights.len());
    let mut total = 0u64;
    for w in weights {
        total += *w;
        cumulative.push(total);
    }
    let mut g = CdrGen {
        rng,
        lines,
        cumulative,
        zone: zone.clone(),
        first_day,
        from,
        to: opts.now,
        today: opts
            .now
            .to_zoned(zone.clone())
            .start_of_day()
            .map(|z| z.timestamp())
            .unwrap_or(opts.now),
    };
    // About one record in two thousand is broken (at least four, one of each kind): the
    // suspense queue has something to show without drowning the month.
    let broken_n = (opts.cdrs / 2_000).max(4).min(opts.cdrs);
    let kinds = [
        Broken::UnknownCaller,
        Broken::ServiceNumber,
        Broken::BadTime,
        Broken::BadUsage,
    ];
    let mut gens: Vec<Gen> = Vec::with_capacity(opts.cdrs);
    for i in 0..opts.cdrs {
        let broken = if i < broken_n {
            kinds[i % kinds.len()]
        } else {
            Broken::No
        };
        gens.push(g.record(broken));
    }
    gens.sort_by_key(|r| r.at);
    let mut seq: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = Vec::with_capacity(opts.cdrs * 300);
    for mut r in gens {
        let n = seq.entry(r.json.source.clone()).or_default();
        *n += 1;
        let day = r.at.to_zoned(zone.clone()).strftime("%Y%m%d").to_string();
        r.json.record_id = format!("{day}-{:07}", *n);
        let mut text =
            serde_json::to_string(&r.json).map_err(|e| DemoError::Invalid(e.to_string()))?;
        match r.broken {
            // A switch clock bug: hour 25.
            Broken::BadTime => {
                let start = &r.json.start;
                if let (Some(date), Some(rest)) = (start.get(..11), start.get(13..)) {
                    text = text.replacen(start.as_str(), &format!("{date}25{rest}"), 1);
                }
            }
            // A truncated usage field.
            Broken::BadUsage => {
                let usage = format!("\"usage\":{}", serde_json::json!(r.json.usage));
                text = text.replacen(&usage, "\"usage\":\"1m2x\"", 1);
            }
            _ => {}
        }
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

/// Seeds the demo operator into `store`, which must be migrated and hold no tenant `demo`.
pub async fn seed(store: &Store, opts: &DemoOptions) -> Result<DemoSummary, DemoError> {
    if opts.subscribers == 0 {
        return Err(DemoError::Invalid("at least one subscriber".into()));
    }
    match store.tenant(TENANT).await {
        Ok(_) => return Err(DemoError::NotEmpty(TENANT.into())),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let settings = pipeline_settings()?;
    let tenant = store
        .create_tenant(TENANT, TENANT_NAME, Currency::CNY, TIME_ZONE)
        .await?;
    let zone = tenant.zone()?;
    let mut rng = Rng::new(opts.seed);

    // Plans: one in each lifecycle state. The retired plan was on sale when its lines joined.
    let retired_code = plan_with_steps(
        store,
        &tenant,
        PLAN_RETIRED,
        &[
            (PlanAction::Submit, MAKER, "老套餐, 2023 年上线"),
            (PlanAction::Approve, CHECKER, "资费已核对"),
            (PlanAction::Activate, CHECKER, "上线"),
        ],
    )
    .await?;
    let active_code = plan_with_steps(
        store,
        &tenant,
        PLAN_ACTIVE,
        &[
            (PlanAction::Submit, MAKER, "主推套餐"),
            (PlanAction::Approve, CHECKER, "同意, 超出通话按标准资费"),
            (PlanAction::Activate, CHECKER, "上线销售"),
        ],
    )
    .await?;
    let approved = plan_with_steps(
        store,
        &tenant,
        PLAN_APPROVED,
        &[
            (PlanAction::Submit, MAKER, "5G 新品"),
            (PlanAction::Approve, CHECKER, "同意, 下月一日上线"),
        ],
    )
    .await?;
    let pending = plan_with_steps(
        store,
        &tenant,
        PLAN_PENDING,
        &[
            (PlanAction::Submit, MAKER, "家庭融合新品"),
            (PlanAction::Reject, CHECKER, "请写明副卡数量上限"),
        ],
    )
    .await?;
    store
        .edit_plan(tenant.id, &pending, PLAN_PENDING, &actor(MAKER)?)
        .await?;
    store
        .plan_action(
            tenant.id,
            &pending,
            None,
            PlanAction::Submit,
            &actor(MAKER)?,
            "已补充: 主卡加最多 3 张副卡",
        )
        .await?;
    let draft = plan_with_steps(store, &tenant, PLAN_DRAFT, &[]).await?;
    let (active, retired) = (ACTIVE, RETIRED);

    // Lines, imported per plan and joining day: one transaction per group.
    let window_start = opts
        .now
        .checked_sub((DAYS * 24).hours())
        .map_err(|e| DemoError::Invalid(e.to_string()))?
        .to_zoned(zone.clone())
        .date();
    let lines = make_lines(&mut rng, opts.subscribers, window_start, (active, retired));
    let mut groups: BTreeMap<(&str, Date), Vec<ImportLine>> = BTreeMap::new();
    for l in &lines {
        groups
            .entry((l.plan, l.start))
            .or_default()
            .push(l.import.clone());
    }
    // Import the retired plan's lines while it is still on sale, then retire it.
    for plan in [retired, active] {
        for ((p, start), group) in &groups {
            if *p != plan {
                continue;
            }
            for chunk in group.chunks(MAX_IMPORT) {
                store.import_lines(&tenant, plan, *start, chunk).await?;
            }
        }
    }
    store
        .plan_action(
            tenant.id,
            retired,
            None,
            PlanAction::Retire,
            &actor(CHECKER)?,
            "停止新装, 老用户继续使用",
        )
        .await?;

    // Mid-month top-ups on some prepaid wallets (WeChat Pay / Alipay).
    let mut top_ups = 0;
    let mut topped = Micros::ZERO;
    for (i, l) in lines.iter().enumerate() {
        if l.import.mode == AccountMode::Prepaid && rng.below(6) == 0 {
            let amount = *pick(&mut rng, &[30u64, 50, 100, 100, 200]);
            let channel = if rng.below(2) == 0 {
                "微信支付"
            } else {
                "支付宝"
            };
            store
                .top_up(
                    tenant.id,
                    &l.import.account,
                    micros(amount),
                    &format!(
                        "demo-{}-{i}",
                        if channel == "微信支付" {
                            "wx"
                        } else {
                            "ali"
                        }
                    ),
                    &format!("{channel}充值 {amount} 元"),
                )
                .await?;
            top_ups += 1;
            topped = topped
                .checked_add(micros(amount))
                .map_err(|e| DemoError::Invalid(e.to_string()))?;
        }
    }

    // Monthly fees: roll every line into the period containing `now`.
    let today = opts.now.to_zoned(zone.clone()).date();
    let renewal = store.renew(&tenant, today).await?;

    // A month of traffic through the pipeline.
    let numbers: Vec<String> = lines.iter().map(|l| national(&l.import.number)).collect();
    let weights: Vec<u64> = lines.iter().map(|l| l.weight).collect();
    let text = make_cdrs(opts, Rng::new(rng.next_u64()), &numbers, &weights, &zone)?;
    let pipeline = settings.pipeline(store.clone(), tenant.clone())?;
    let mut spec = ReaderSpec::new(Format::CdrJson, TIME_ZONE);
    let origin_source = "demo-feed";
    let reader = spec
        .open(Cursor::new(text), origin_source)
        .map_err(|e| DemoError::Invalid(e.to_string()))?;
    let origin = Origin {
        reader: spec.to_json(),
        source: origin_source.into(),
        import_id: None,
    };
    let mut report = BatchReport::default();
    let mut batch = Vec::with_capacity(DEFAULT_BATCH);
    let mut items = reader.map(Item::new);
    loop {
        batch.extend(items.by_ref().take(DEFAULT_BATCH));
        if batch.is_empty() {
            break;
        }
        let full = std::mem::replace(&mut batch, Vec::with_capacity(DEFAULT_BATCH));
        let r = pipeline
            .process(full, &origin)
            .await
            .map_err(|f| DemoError::Batch {
                attempts: f.attempts,
                error: f.error,
            })?;
        report.add(&r);
    }

    // Revenue: what the wallets paid, from their balances (fees and usage alike).
    let mut funded = Micros::ZERO;
    let mut balances = Micros::ZERO;
    for l in &lines {
        funded = funded
            .checked_add(l.import.opening_balance)
            .map_err(|e| DemoError::Invalid(e.to_string()))?;
        let a = store.account(tenant.id, &l.import.account).await?;
        balances = balances
            .checked_add(a.balance)
            .map_err(|e| DemoError::Invalid(e.to_string()))?;
    }
    let paid = funded.to_decimal() + topped.to_decimal() - balances.to_decimal();
    let usage = report.amount.to_decimal();

    let mut plans = BTreeMap::new();
    let mut plans_by_status: BTreeMap<String, usize> = BTreeMap::new();
    for code in [&retired_code, &active_code, &approved, &pending, &draft] {
        let v = store.plan_version(tenant.id, code, None).await?;
        plans.insert(code.clone(), v.status.as_str().to_string());
        *plans_by_status
            .entry(v.status.as_str().to_string())
            .or_default() += 1;
    }
    let mut subscribers_by_plan: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        *subscribers_by_plan.entry(l.plan.to_string()).or_default() += 1;
    }
    let prepaid = lines
        .iter()
        .filter(|l| l.import.mode == AccountMode::Prepaid)
        .count();
    Ok(DemoSummary {
        tenant: tenant.slug.clone(),
        plans,
        plans_by_status,
        subscribers: lines.len(),
        prepaid,
        postpaid: lines.len() - prepaid,
        subscribers_by_plan,
        top_ups,
        renewed_periods: renewal.periods,
        cdrs_generated: opts.cdrs,
        cdrs_charged: report.charged,
        skipped: report.skipped,
        suspended: report.suspended,
        suspended_by_class: report.suspended_by.clone(),
        usage_revenue: usage.normalize(),
        fee_revenue: (paid - usage).normalize(),
        total_revenue: paid.normalize(),
    })
}

impl DemoSummary {
    /// The summary as the command line prints it.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "tenant        {} ({TENANT_NAME})", self.tenant);
        let plans: Vec<String> = self
            .plans
            .iter()
            .map(|(code, status)| format!("{code} {status}"))
            .collect();
        let _ = writeln!(s, "plans         {}", plans.join(", "));
        let _ = writeln!(
            s,
            "subscribers   {} ({} prepaid, {} postpaid); {} top-ups; {} periods renewed",
            self.subscribers, self.prepaid, self.postpaid, self.top_ups, self.renewed_periods
        );
        let classes: Vec<String> = self
            .suspended_by_class
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(
            s,
            "cdrs          {} generated: {} charged, {} skipped (unanswered), {} suspended ({})",
            self.cdrs_generated,
            self.cdrs_charged,
            self.skipped,
            self.suspended,
            classes.join(", ")
        );
        let _ = writeln!(
            s,
            "revenue       {} CNY ({} fees, {} usage)",
            self.total_revenue, self.fee_revenue, self.usage_revenue
        );
        s
    }
}

// ---------------------------------------------------------------------------------------------
// `toll demo-seed`
// ---------------------------------------------------------------------------------------------

/// `toll demo-seed`: migrates the database, seeds the demo into it and prints the summary —
/// the demo's data without its server, to try by hand.
#[derive(clap::Args, Debug)]
pub struct DemoSeedArgs {
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: usize,
    #[arg(long, default_value_t = 100_000)]
    pub cdrs: usize,
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// The demo's "now" (RFC 3339); default: the current time.
    #[arg(long)]
    pub now: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn demo_seed(db: &crate::admin::DbArgs, args: &DemoSeedArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let now = match &args.now {
        Some(t) => t
            .parse::<Timestamp>()
            .with_context(|| format!("--now {t:?}"))?,
        None => Timestamp::now(),
    };
    let store = crate::admin::open(db).await?;
    store.migrate().await.context("migrating the database")?;
    let started = std::time::Instant::now();
    let summary = seed(
        &store,
        &DemoOptions {
            now,
            subscribers: args.subscribers,
            cdrs: args.cdrs,
            seed: args.seed,
        },
    )
    .await?;
    let elapsed = started.elapsed();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.to_text());
        println!("seeded in {:.2} s", elapsed.as_secs_f64());
    }
    Ok(())
}
