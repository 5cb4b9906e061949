#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{S, fixture, ts};
use jiff::tz::TimeZone;
use toll_ingest::asterisk::{CallReader, MasterCsvReader, Options};
use toll_ingest::{Disposition, ErrorKind, Stats};

fn utc() -> Options {
    Options::new(TimeZone::UTC)
}

#[test]
fn legs_of_a_21_column_file() {
    let out: Vec<_> =
        MasterCsvReader::new(fixture("asterisk/master21.csv"), utc(), "pbx").collect();
    assert_eq!(out.len(), 7);
    let answered = out[1].as_ref().unwrap();
    assert_eq!(answered.record_id, "mainserverdss-1706428232.30|24");
    assert_eq!(
        answered.call_id.as_deref(),
        Some("mainserverdss-1706428232.30")
    );
    assert_eq!(answered.caller, "89679803257");
    assert_eq!(answered.callee, "211474");
    assert_eq!(answered.start, ts("2024-01-28T07:50:32Z"));
    assert_eq!(answered.answer, Some(ts("2024-01-28T07:50:35Z")));
    assert_eq!(answered.end, Some(ts("2024-01-28T07:50:54Z")));
    assert_eq!(answered.usage, 19 * S);
    assert_eq!(answered.disposition, Disposition::Answered);
    assert_eq!(
        answered.extra["lastdata"],
        "SIP/301&SIP/200@stadionpbx,60,t"
    );
    assert_eq!(answered.extra["clid"], "\"89679803257\" <89679803257>");
    assert_eq!(answered.extra["duration"], "22");
    assert_eq!(answered.line, 2);
    assert!(answered.raw.starts_with(b"\"\",\"89679803257\""));
    assert!(answered.raw.ends_with(b",24"));

    let unanswered = out[2].as_ref().unwrap();
    assert_eq!(
        unanswered.answer, None,
        "empty unquoted answer is no answer"
    );
    assert_eq!(unanswered.disposition, Disposition::NoAnswer);
    assert_eq!(unanswered.usage, 0);
    assert_eq!(out[3].as_ref().unwrap().disposition, Disposition::Busy);

    let garbled = out[4].as_ref().unwrap();
    assert_eq!(garbled.lossy_fields, vec!["clid".to_string()]);
    assert_eq!(
        garbled.extra["clid"],
        "\"8107924651\u{FFFD}\u{FFFD}b\" <8107924651>"
    );
    assert_eq!(garbled.account.as_deref(), Some("acct7"));
    assert_eq!(garbled.usage, 60 * S);

    let bad_start = out[5].as_ref().unwrap_err();
    assert_eq!(bad_start.line, 6);
    assert_eq!(bad_start.field.as_deref(), Some("start"));
    assert!(
        matches!(&bad_start.kind, ErrorKind::Invalid { value, .. } if value == "2024-13-28 07:50:32")
    );
    assert!(bad_start.raw.ends_with(b",95"));

    let short = out[6].as_ref().unwrap_err();
    assert_eq!(short.line, 7);
    assert_eq!(
        short.kind,
        ErrorKind::ColumnCount {
            found: 15,
            expected: "16, 17, 18 or 21".into()
        }
    );
}

#[test]
fn calls_bill_the_answered_leg_and_fold_the_rest() {
    let mut r = CallReader::new(fixture("asterisk/master21.csv"), utc(), "pbx");
    let out: Vec<_> = r.by_ref().collect();
    // Errors pass straight through; calls close at the end of the input, in line order.
    let lines: Vec<(u64, bool)> = out
        .iter()
        .map(|r| match r {
            Ok(c) => (c.line, true),
            Err(e) => (e.line, false),
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (6, false),
            (7, false),
            (1, true),
            (2, true),
            (4, true),
            (5, true)
        ]
    );
    let forked = out[3].as_ref().unwrap();
    assert_eq!(forked.usage, 19 * S);
    assert_eq!(forked.merged_lines, vec![3]);
    let busy = out[4].as_ref().unwrap();
    assert_eq!((busy.disposition, busy.usage), (Disposition::Busy, 0));
    // The trailing-Hangup row of call 1 is answered by the PBX itself and billed by billsec.
    assert_eq!(out[2].as_ref().unwrap().usage, 27 * S);
    assert_eq!(
        r.stats(),
        Stats {
            records: 7,
            emitted: 4,
            filtered: 0,
            errors: 2,
            merged: 1
        }
    );
}

#[test]
fn eighteen_columns_local_zone_forks_and_quotes() {
    let opts = Options::new(TimeZone::get("Asia/Shanghai").unwrap());
    let legs: Vec<_> =
        MasterCsvReader::new(fixture("asterisk/master18.csv"), opts.clone(), "pbx").collect();
    assert_eq!(legs.len(), 5, "the blank line is not a record");
    let first = legs[0].as_ref().unwrap();
    assert_eq!(first.start, ts("2024-03-01T01:00:00Z"));
    assert_eq!(first.offset.seconds(), 8 * 3600);
    assert_eq!(first.usage, 123 * S);
    assert_eq!(first.callee, "017951075512345678");
    assert_eq!(first.extra["clid"], "\"Zhang \"San\"\" <13800138000>");
    assert_eq!(
        first.extra["lastdata"],
        "PJSIP/17951075512345678@trunk,60,tT"
    );
    assert_eq!(first.extra["userfield"], "vip");
    assert_eq!(first.extra["amaflags"], "BILLING");
    assert_eq!(
        first.record_id,
        "1709254800.2|PJSIP/trunk-00000003|2024-03-01 09:00:00"
    );
    assert_eq!(first.call_id.as_deref(), Some("1709254800.2"));
    // Forked legs share uniqueid but not record id.
    let (a, b) = (legs[1].as_ref().unwrap(), legs[2].as_ref().unwrap());
    assert_eq!(a.call_id, b.call_id);
    assert_ne!(a.record_id, b.record_id);
    let anonymous = legs[3].as_ref().unwrap();
    assert_eq!((anonymous.caller.as_str(), anonymous.line), ("", 5));
    let bad = legs[4].as_ref().unwrap_err();
    assert_eq!((bad.line, bad.field.as_deref()), (6, Some("billsec")));

    let calls: Vec<_> = CallReader::new(fixture("asterisk/master18.csv"), opts, "pbx").collect();
    let fork = calls
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .find(|c| c.line == 2)
        .unwrap();
    assert_eq!(
        fork.disposition,
        Disposition::NoAnswer,
        "no answer outranks busy"
    );
    assert_eq!(fork.merged_lines, vec![3]);
}

#[test]
fn sixteen_columns_across_dst() {
    let opts = Options::new(TimeZone::get("Europe/Berlin").unwrap());
    let out: Vec<_> = MasterCsvReader::new(fixture("asterisk/master16.csv"), opts, "pbx").collect();
    let fold = out[0].as_ref().unwrap();
    assert_eq!(
        fold.start,
        ts("2024-10-27T00:30:00Z"),
        "repeated hour: earlier instant"
    );
    assert_eq!(fold.offset.seconds(), 7200);
    assert_eq!(fold.usage, 600 * S);
    assert_eq!(fold.call_id, None);
    assert_eq!(
        fold.record_id,
        "SIP/2000-0a1b2c3d|SIP/provider-0a1b2c3e|2024-10-27 02:30:00"
    );
    let gap = out[1].as_ref().unwrap_err();
    assert_eq!((gap.line, gap.field.as_deref()), (2, Some("start")));
    let broken = out[2].as_ref().unwrap_err();
    assert_eq!(broken.line, 3);
    assert!(matches!(
        broken.kind,
        ErrorKind::ColumnCount { found: 15, .. }
    ));
}

#[test]
fn legs_map_onto_a_rating_event() {
    let cdr = MasterCsvReader::new(fixture("asterisk/master21.csv"), utc(), "pbx")
        .nth(1)
        .unwrap()
        .unwrap();
    let event = toll_rating::engine::Event {
        tenant: "t",
        category: "call",
        subject: &cdr.caller,
        destination: &cdr.callee,
        start: cdr.start,
        offset: cdr.offset,
        usage: cdr.usage,
        tor: cdr.tor().unwrap(),
        route_carrier: None,
    };
    assert_eq!(event.usage, 19 * S);
}
