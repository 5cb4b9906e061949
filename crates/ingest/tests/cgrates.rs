#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{S, fixture, ts};
use jiff::tz::TimeZone;
use toll_core::UsageKind;
use toll_ingest::cgrates::CsvReader;
use toll_ingest::{Direction, Disposition, ErrorKind};

#[test]
fn default_layout() {
    let zone = TimeZone::get("Asia/Shanghai").unwrap();
    let mut r = CsvReader::new(fixture("cgrates/cdrs.csv"), zone, b',', "cgr");
    let out: Vec<_> = r.by_ref().collect();
    assert_eq!(out.len(), 9, "the header is not a record");
    let v = out[0].as_ref().unwrap();
    assert_eq!(v.line, 2);
    assert_eq!(v.record_id, "dsafdsaf");
    assert_eq!(
        (v.caller.as_str(), v.callee.as_str()),
        ("1001", "+4986517174963")
    );
    assert_eq!(v.start, ts("2013-11-07T08:42:25Z"));
    assert_eq!(v.offset.seconds(), 0);
    assert_eq!(v.answer, Some(ts("2013-11-07T08:42:26Z")));
    assert_eq!((v.kind.clone(), v.usage), (UsageKind::Voice, 10 * S));
    assert_eq!(v.tenant.as_deref(), Some("cgrates.org"));
    assert_eq!(v.category.as_deref(), Some("call"));
    assert_eq!(v.account.as_deref(), Some("1001"));
    assert_eq!(v.direction, Some(Direction::Outbound));
    assert_eq!(v.extra["cost"], "1.0100");
    assert_eq!(v.extra["request_type"], "*rated");
    assert_eq!(v.extra["col15"], "val_extra3");
    assert_eq!(v.extra["col17"], "val_extra1");

    let frac = out[1].as_ref().unwrap();
    assert_eq!(frac.usage, 90_500_000_000);
    assert_eq!(frac.offset.seconds(), 3600);

    let data = out[2].as_ref().unwrap();
    assert_eq!(
        (data.kind.clone(), data.usage),
        (UsageKind::Data, 1_048_576)
    );
    assert_eq!(
        data.start,
        ts("2024-05-06T00:00:00Z"),
        "no offset: the reader's zone"
    );

    let sms = out[3].as_ref().unwrap();
    assert_eq!((sms.kind.clone(), sms.usage), (UsageKind::Sms, 1));
    assert_eq!(sms.start, ts("2024-05-06T00:00:00Z"));

    let unanswered = out[4].as_ref().unwrap();
    assert_eq!(
        (unanswered.answer, unanswered.disposition),
        (None, Disposition::NoAnswer)
    );

    let derived = out[5].as_ref().unwrap();
    assert_eq!(derived.record_id, "dsafdsaf|derived_run");
    assert_eq!(derived.usage, 10 * S, "bare voice usage is seconds");

    let negative = out[6].as_ref().unwrap_err();
    assert_eq!(
        (negative.line, negative.field.as_deref()),
        (8, Some("Usage"))
    );

    let custom = out[7].as_ref().unwrap();
    assert_eq!((custom.kind.as_str(), custom.usage), ("fax", 5));

    let short = out[8].as_ref().unwrap_err();
    assert_eq!(short.line, 10);
    assert!(matches!(
        short.kind,
        ErrorKind::ColumnCount { found: 5, .. }
    ));
    assert_eq!((r.stats().records, r.stats().errors), (9, 2));
}
