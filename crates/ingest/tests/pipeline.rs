#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The pipeline end to end on both engines: an Asterisk file read, cleansed, rated, charged and
//! stored; the same records again charge nothing; every suspense class lands in the queue with
//! its reason and is re-processed after its fix; the ledger stays intact.

#[path = "../../store/tests/common/mod.rs"]
mod common;

use std::io::Cursor;
use std::sync::Arc;

use toll_core::{Currency, Micros};
use toll_ingest::Cleansing;
use toll_ingest::pipeline::formats::{Format, ReaderSpec};
use toll_ingest::pipeline::rating::{DefaultRate, Payer, RatingContext, TariffRater};
use toll_ingest::pipeline::reprocess::{Selection, reprocess};
use toll_ingest::pipeline::{BatchReport, Item, Origin, Pipeline, PipelineConfig, RetryPolicy};
use toll_rating::Tariff;
use toll_rating::source::SourceFile;
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::cdrs::CdrQuery;
use toll_store::charging::Charger;
use toll_store::suspense::SuspenseFilter;

const TARIFF: &str = r#"
name = "pipeline-test"
currency = "CNY"
timezone = "Asia/Shanghai"
numbering = "cn"

[destinations]
CN_FIXED_BJ = ["010"]
CN_MOBILE = ["13"]

[rates]
FIXED = { rate = "0.12", unit = "60s", increment = "60s" }
MOBILE = { rate = "0.10", unit = "60s", increment = "6s" }

[destination_rates]
DR = [
    { destination = "CN_FIXED_BJ", rate = "FIXED", rounding = "*up", decimals = 2 },
    { destination = "CN_MOBILE", rate = "MOBILE", rounding = "*up", decimals = 2 },
]

[plans]
P = { destination_rates = "DR" }

[[profiles]]
tenant = "acme"
category = "call"
subject = "*any"
plan = "P"
"#;

fn tariff() -> Arc<Tariff> {
    let files = [SourceFile {
        name: "tariff.toml".into(),
        bytes: TARIFF.as_bytes().to_vec(),
    }];
    let mut diags = toll_rating::Diagnostics::default();
    let def = toll_rating::source::parse(&files, &mut diags);
    assert!(!diags.has_errors(), "{diags:?}");
    let (t, _) = Tariff::compile(&def, Arc::new(toll_rating::NumberRanges::builtin_cn())).unwrap();
    Arc::new(t)
}

/// Asterisk `Master.csv`, 18 columns, times in Beijing time.
fn row(uid: &str, src: &str, dst: &str, start: &str, billsec: u32, disposition: &str) -> String {
    format!(
        r#""","{src}","{dst}","from-internal","""x"" <{src}>","PJSIP/1001-0001","PJSIP/trunk-0002","Dial","PJSIP/{dst}@trunk","{start}","{start}","{start}",{billsec},{billsec},"{disposition}","BILLING","{uid}","""#
    )
}

const PAYER: &str = "13800138000";
const POOR: &str = "13900139000";
const STRANGER: &str = "13700137000";

fn file() -> String {
    let t = "2026-11-23 10:00:00";
    [
        // 61 s to a Beijing fixed line: 2 started minutes at 0.12.
        row("1795000000.1", PAYER, "01088886666", t, 61, "ANSWERED"),
        // 30 s to a mobile: 5 × 6 s at 0.10/min = 0.05.
        row("1795000000.2", PAYER, "13912345678", t, 30, "ANSWERED"),
        // Not answered: skipped.
        row("1795000000.3", PAYER, "01088886666", t, 0, "NO ANSWER"),
        // Answered with no billable second: skipped as too short.
        row("1795000000.4", PAYER, "01088886666", t, 0, "ANSWERED"),
        // Unknown caller: rated, then refused.
        row("1795000000.5", STRANGER, "01088886666", t, 20, "ANSWERED"),
        // 0.24 against a wallet of 0.05.
        row("1795000000.6", POOR, "01088886666", t, 120, "ANSWERED"),
        // London: no rule rates it.
        row("1795000000.7", PAYER, "00442071234567", t, 45, "ANSWERED"),
        // A start time that is no time.
        row(
            "1795000000.8",
            PAYER,
            "01088886666",
            "2026-13-45 25:00:00",
            10,
            "ANSWERED",
        ),
    ]
    .join("\n")
        + "\n"
}

fn config(default_rate: DefaultRate) -> PipelineConfig {
    PipelineConfig {
        cleansing: Cleansing::default(),
        rating: RatingContext {
            tariff_tenant: "acme".into(),
            category: "call".into(),
            default_rate,
            payer: Payer::Caller,
        },
        retry: RetryPolicy::default(),
    }
}

fn pipeline(s: &Store, t: &toll_store::Tenant, default_rate: DefaultRate) -> Pipeline {
    let tariff = tariff();
    let charger = Charger::new(s.clone(), t.clone())
        .unwrap()
        .with_rater(Arc::new(TariffRater {
            tariff: Arc::clone(&tariff),
            tenant: "acme".into(),
        }));
    Pipeline::new(charger, Some(tariff), config(default_rate))
}

async fn read(spec: &mut ReaderSpec) -> (Vec<Item>, Origin) {
    let stream = spec
        .open(Cursor::new(file().into_bytes()), "pbx-bj")
        .unwrap();
    let items: Vec<Item> = stream.map(Item::new).collect();
    (
        items,
        Origin {
            reader: spec.to_json(),
            source: "pbx-bj".into(),
            import_id: None,
        },
    )
}

fn m(s: &str) -> Micros {
    s.parse().unwrap()
}

async fn balance(s: &Store, t: &toll_store::Tenant, account: &str) -> Micros {
    s.account(t.id, account).await.unwrap().balance
}

/// Tenant `acme` with prepaid account `a1` holding `balance` and line [`PAYER`].
async fn payer_tenant(s: &Store, balance: &str) -> toll_store::Tenant {
    let t = s
        .create_tenant("acme", "Acme", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    s.create_customer(t.id, "c1", "张三").await.unwrap();
    s.create_account(t.id, "c1", "a1", AccountMode::Prepaid)
        .await
        .unwrap();
    s.top_up(t.id, "a1", m(balance), "pay-1", "").await.unwrap();
    s.add_subscriber(t.id, "a1", PAYER).await.unwrap();
    t
}

async fn open_classes(s: &Store, t: &toll_store::Tenant) -> Vec<(String, i64)> {
    s.suspense_counts(t.id).await.unwrap()
}

#[tokio::test]
async fn records_are_charged_once_and_every_failure_is_queued_and_reprocessed() {
    for e in common::engines().await {
        let s = &e.store;
        let t = payer_tenant(s, "100").await;
        s.create_account(t.id, "c1", "a2", AccountMode::Prepaid)
            .await
            .unwrap();
        s.top_up(t.id, "a2", m("0.05"), "pay-2", "").await.unwrap();
        s.add_subscriber(t.id, "a2", POOR).await.unwrap();

        let p = pipeline(s, &t, DefaultRate::default());
        let mut spec = ReaderSpec::new(Format::Asterisk, "Asia/Shanghai");
        let (items, origin) = read(&mut spec).await;
        assert_eq!(items.len(), 8, "{}", e.name);
        let r = p.process(items, &origin).await.unwrap();
        assert_eq!(
            (r.records, r.charged, r.skipped, r.duplicate, r.suspended),
            (8, 2, 2, 0, 4),
            "{}: {r:?}",
            e.name
        );
        assert_eq!(r.skipped_by.get("unanswered"), Some(&1));
        assert_eq!(r.skipped_by.get("too_short"), Some(&1));
        assert_eq!(r.amount, m("0.29"), "{}", e.name);
        assert_eq!(balance(s, &t, "a1").await, m("99.71"), "{}", e.name);
        assert_eq!(
            open_classes(s, &t).await,
            vec![
                ("insufficient_balance".to_string(), 1),
                ("parse_error".to_string(), 1),
                ("unauthorized_destination".to_string(), 1),
                ("unknown_subscriber".to_string(), 1),
            ],
            "{}",
            e.name
        );

        // The stored records say what rating decided.
        let cdrs = s
            .cdrs(
                t.id,
                &CdrQuery {
                    from_ms: 0,
                    to_ms: i64::MAX,
                    limit: 100,
                    ..CdrQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(cdrs.len(), 2, "{}", e.name);
        let fixed = cdrs
            .iter()
            .find(|c| c.record_id.starts_with("1795000000.1|"))
            .unwrap();
        assert_eq!(
            fixed.event_key,
            "pbx-bj/1795000000.1|PJSIP/trunk-0002|2026-11-23%2010:00:00"
        );
        assert_eq!(fixed.cost, Some(m("0.24")));
        assert_eq!(fixed.amount, m("0.24"));
        assert_eq!(fixed.matched_prefix.as_deref(), Some("010"));
        assert_eq!(fixed.destination_id.as_deref(), Some("CN_FIXED_BJ"));
        assert_eq!(fixed.rated_usage, Some(120_000_000_000));
        assert_eq!(fixed.quantity, 61_000_000_000);
        assert!(!fixed.default_rated);
        let mobile = cdrs
            .iter()
            .find(|c| c.record_id.starts_with("1795000000.2|"))
            .unwrap();
        assert_eq!(mobile.amount, m("0.05"));
        assert_eq!(mobile.carrier.as_deref(), Some("china_mobile"));

        // The same records again (a re-sent file, the HTTP and the NATS path alike): nothing
        // is charged twice, and the failures are the same four items, met twice.
        let (again, origin) = read(&mut spec).await;
        let r2 = p.process(again, &origin).await.unwrap();
        assert_eq!(
            (r2.charged, r2.duplicate, r2.suspended),
            (0, 2, 4),
            "{}",
            e.name
        );
        assert_eq!(balance(s, &t, "a1").await, m("99.71"));
        let items = s
            .suspense_items(
                t.id,
                &SuspenseFilter {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(items.len(), 4, "{}", e.name);
        assert!(items.iter().all(|i| i.attempts == 2), "{items:?}");
        let parse = items.iter().find(|i| i.class == "parse_error").unwrap();
        assert_eq!(parse.field.as_deref(), Some("start"));
        assert_eq!(parse.line, Some(8));
        assert!(parse.raw.contains("2026-13-45"));
        assert!(parse.record.is_none());
        let unknown = items
            .iter()
            .find(|i| i.class == "unknown_subscriber")
            .unwrap();
        assert!(unknown.reason.contains(STRANGER), "{}", unknown.reason);
        assert!(
            unknown
                .record
                .as_deref()
                .unwrap()
                .contains("\"usage\":\"20s\"")
        );

        // Re-processing without a fix changes nothing but the attempts.
        let r3 = reprocess(&p, s, t.id, &Selection::default()).await.unwrap();
        assert_eq!((r3.charged, r3.suspended), (0, 4), "{}", e.name);

        // Fix each cause, then re-process.
        s.add_subscriber(t.id, "a1", STRANGER).await.unwrap();
        s.top_up(t.id, "a2", m("1"), "pay-3", "").await.unwrap();
        let fixed_raw = row(
            "1795000000.8",
            PAYER,
            "01088886666",
            "2026-11-23 11:00:00",
            10,
            "ANSWERED",
        );
        s.suspense_edit(t.id, parse.id, Some(fixed_raw.as_bytes()), None)
            .await
            .unwrap();
        let r4 = reprocess(&p, s, t.id, &Selection::default()).await.unwrap();
        assert_eq!((r4.charged, r4.suspended), (3, 1), "{}: {r4:?}", e.name);
        assert_eq!(
            open_classes(s, &t).await,
            vec![("unauthorized_destination".to_string(), 1)],
            "{}",
            e.name
        );
        // a1: 0.12 (the stranger's 20 s: one minute) + 0.12 (the fixed record's 10 s);
        // a2: 0.24 (two minutes).
        assert_eq!(balance(s, &t, "a1").await, m("99.47"), "{}", e.name);
        assert_eq!(balance(s, &t, "a2").await, m("0.81"), "{}", e.name);

        // The last one: the operator sets a default rate for missing rules.
        let with_default = pipeline(s, &t, "voice=0.60".parse().unwrap());
        let r5 = reprocess(
            &with_default,
            s,
            t.id,
            &Selection {
                class: Some("unauthorized_destination".into()),
                ..Selection::default()
            },
        )
        .await
        .unwrap();
        assert_eq!((r5.charged, r5.default_rated), (1, 1), "{}", e.name);
        assert!(open_classes(s, &t).await.is_empty());
        let resolved = s
            .suspense_items(
                t.id,
                &SuspenseFilter {
                    status: Some("resolved".into()),
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(resolved.len(), 4, "{}", e.name);
        // 45 s → one started minute at the default 0.60.
        assert_eq!(balance(s, &t, "a1").await, m("98.87"), "{}", e.name);
        let (n, total) = s.cdr_totals(t.id).await.unwrap();
        assert_eq!((n, total), (6, m("1.37")), "{}", e.name);
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());

        // The original file once more: duplicates and skips, and the bad line, which is not
        // charged but does not reopen the item its fix resolved.
        let (last, origin) = read(&mut spec).await;
        let r6: BatchReport = p.process(last, &origin).await.unwrap();
        assert_eq!(
            (r6.charged, r6.duplicate, r6.skipped, r6.suspended),
            (0, 5, 2, 1),
            "{}: {r6:?}",
            e.name
        );
        assert!(open_classes(s, &t).await.is_empty());
        assert_eq!(s.cdr_totals(t.id).await.unwrap(), (6, m("1.37")));
    }
}

/// The tariff's fixed-line rate goes from 0.12 to 0.15 a minute after the records were charged.
fn tariff_with(fixed_rate: &str) -> Arc<Tariff> {
    let text = TARIFF.replace(
        r#"FIXED = { rate = "0.12""#,
        &format!(r#"FIXED = {{ rate = "{fixed_rate}""#),
    );
    let files = [SourceFile {
        name: "tariff.toml".into(),
        bytes: text.into_bytes(),
    }];
    let mut diags = toll_rating::Diagnostics::default();
    let def = toll_rating::source::parse(&files, &mut diags);
    let (t, _) = Tariff::compile(&def, Arc::new(toll_rating::NumberRanges::builtin_cn())).unwrap();
    Arc::new(t)
}

#[tokio::test]
async fn rerating_posts_each_difference_once() {
    use toll_ingest::pipeline::rerate::{Window, rerate};
    for e in common::engines().await {
        let s = &e.store;
        let t = payer_tenant(s, "100").await;
        let p = pipeline(s, &t, DefaultRate::default());
        let mut spec = ReaderSpec::new(Format::Asterisk, "Asia/Shanghai");
        let (items, origin) = read(&mut spec).await;
        let r = p.process(items, &origin).await.unwrap();
        assert_eq!(r.amount, m("0.29"), "{}", e.name);

        let ctx = config(DefaultRate::default()).rating;
        let window = Window {
            from_ms: 0,
            to_ms: i64::MAX,
            account_id: None,
            dry_run: false,
        };
        let dearer = tariff_with("0.15");
        let dry = rerate(
            s,
            &t,
            &dearer,
            &ctx,
            Window {
                dry_run: true,
                ..window
            },
        )
        .await
        .unwrap();
        assert_eq!((dry.adjusted, dry.delta), (1, m("0.06")), "{}", e.name);
        assert_eq!(
            balance(s, &t, "a1").await,
            m("99.71"),
            "a dry run changes nothing"
        );

        let first = rerate(s, &t, &dearer, &ctx, window).await.unwrap();
        // The 61 s fixed call: 2 minutes at 0.15 instead of 0.12; the mobile call unchanged.
        assert_eq!(
            (first.examined, first.adjusted, first.unchanged, first.delta),
            (2, 1, 1, m("0.06")),
            "{}: {first:?}",
            e.name
        );
        assert_eq!(first.changes[0].old, m("0.24"));
        assert_eq!(first.changes[0].new, m("0.30"));
        assert_eq!(balance(s, &t, "a1").await, m("99.65"), "{}", e.name);
        // Again with the same tariff: nothing left to change.
        let again = rerate(s, &t, &dearer, &ctx, window).await.unwrap();
        assert_eq!((again.adjusted, again.unchanged), (0, 2), "{}", e.name);
        assert_eq!(balance(s, &t, "a1").await, m("99.65"));
        // Back to the old price: the difference is credited, under a new key.
        let back = rerate(s, &t, &tariff(), &ctx, window).await.unwrap();
        assert_eq!((back.adjusted, back.delta), (1, m("-0.06")), "{}", e.name);
        assert_eq!(balance(s, &t, "a1").await, m("99.71"));
        let (n, total) = s.cdr_totals(t.id).await.unwrap();
        assert_eq!((n, total), (2, m("0.29")));
        let cdrs = s
            .cdrs(
                t.id,
                &CdrQuery {
                    from_ms: 0,
                    to_ms: i64::MAX,
                    limit: 10,
                    ..CdrQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(cdrs.iter().map(|c| c.rerated).sum::<i64>(), 2);
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact());
    }
}

/// A record as an HTTP or NATS feed sends it: the pipeline's JSON form.
fn json_record(id: &str, category: &str, callee: &str) -> Item {
    let j = toll_ingest::pipeline::record::CdrJson {
        source: "api".into(),
        record_id: id.into(),
        caller: PAYER.into(),
        callee: callee.into(),
        start: "2026-11-23T15:00:00+08:00".into(),
        answer: None,
        end: None,
        kind: toll_core::UsageKind::Voice,
        usage: "30s".into(),
        disposition: "answered".into(),
        tenant: None,
        category: Some(category.into()),
        account: None,
        service: None,
        direction: None,
        call_id: None,
        extra: Default::default(),
        line: 0,
    };
    Item::new(Ok(j.to_cdr(serde_json::to_vec(&j).unwrap()).unwrap()))
}

#[tokio::test]
async fn rating_failures_are_queued_by_class_and_reprocessed_after_an_edit() {
    for e in common::engines().await {
        let s = &e.store;
        let t = payer_tenant(s, "10").await;
        let p = pipeline(s, &t, DefaultRate::default());
        let origin = Origin {
            reader: "{\"format\":\"json\"}".into(),
            source: "api".into(),
            import_id: None,
        };
        let items = vec![
            json_record("r1", "vip", "01088886666"),
            json_record("r2", "call", "010-8888;6666"),
            json_record("r3", "call", "13912345678"),
        ];
        let r = p.process(items, &origin).await.unwrap();
        assert_eq!((r.charged, r.suspended), (1, 2), "{}: {r:?}", e.name);
        let queued = s
            .suspense_items(
                t.id,
                &SuspenseFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let by_class = |c: &str| queued.iter().find(|i| i.class == c).unwrap().clone();
        let no_tariff = by_class("no_tariff");
        assert!(no_tariff.reason.contains("\"vip\""), "{}", no_tariff.reason);
        assert_eq!(no_tariff.item_key, "api/r1");
        let bad_number = by_class("bad_number");
        assert!(bad_number.reason.contains("';'"), "{}", bad_number.reason);

        // Fix both records' JSON form, then re-process.
        for (item, from, to) in [
            (&no_tariff, "\"category\":\"vip\"", "\"category\":\"call\""),
            (&bad_number, "010-8888;6666", "010-88886666"),
        ] {
            let edited = item.record.as_deref().unwrap().replace(from, to);
            assert_ne!(Some(edited.as_str()), item.record.as_deref());
            s.suspense_edit(t.id, item.id, None, Some(&edited))
                .await
                .unwrap();
        }
        let fixed = reprocess(&p, s, t.id, &Selection::default()).await.unwrap();
        assert_eq!(
            (fixed.charged, fixed.suspended),
            (2, 0),
            "{}: {fixed:?}",
            e.name
        );
        // 0.05 (mobile, 30 s) + 2 × 0.12 (fixed, one minute).
        assert_eq!(balance(s, &t, "a1").await, m("9.71"), "{}", e.name);
        assert!(s.suspense_counts(t.id).await.unwrap().is_empty());
    }
}

/// A batch of thousands of CDRs (33 columns each: more rows than one SQLite statement may
/// bind) is stored whole, on both engines.
#[tokio::test]
async fn a_large_batch_of_wide_records_is_stored_whole() {
    for e in common::engines().await {
        let s = &e.store;
        let t = payer_tenant(s, "1000").await;
        let p = pipeline(s, &t, DefaultRate::default());
        let origin = Origin {
            reader: "{\"format\":\"cdr-json\"}".into(),
            source: "api".into(),
            import_id: None,
        };
        let items: Vec<Item> = (0..2_500)
            .map(|i| json_record(&format!("w{i}"), "call", "13912345678"))
            .collect();
        let r = p.process(items, &origin).await.unwrap();
        assert_eq!((r.charged, r.suspended), (2_500, 0), "{}: {r:?}", e.name);
        // 30 s to a mobile at 0.10 a minute, per 6 s: 0.05 each.
        assert_eq!(
            s.cdr_totals(t.id).await.unwrap(),
            (2_500, m("125")),
            "{}",
            e.name
        );
    }
}
