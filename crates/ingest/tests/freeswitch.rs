#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::sync::Arc;

use common::{S, fixture, ts};
use jiff::tz::TimeZone;
use toll_ingest::freeswitch::{CsvReader, JsonOptions, JsonReader, Template, read_json_cdr};
use toll_ingest::{Direction, Disposition, ErrorKind};

fn shanghai() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap()
}

#[test]
fn example_template() {
    let out: Vec<_> = CsvReader::new(
        fixture("freeswitch/Master-example.csv"),
        &Template::Example,
        shanghai(),
        "fs",
    )
    .collect();
    assert_eq!(out.len(), 6);
    let a = out[0].as_ref().unwrap();
    assert_eq!(a.record_id, "d80e22e0-4c15-11ea-97a0-9dd79410affb");
    assert_eq!(
        (a.caller.as_str(), a.callee.as_str()),
        ("1001", "13912345678")
    );
    assert_eq!(a.start, ts("2024-05-06T00:00:00Z"));
    assert_eq!(a.answer, Some(ts("2024-05-06T00:00:05Z")));
    assert_eq!(a.end, Some(ts("2024-05-06T00:01:12Z")));
    assert_eq!(a.usage, 67 * S);
    assert_eq!(a.disposition, Disposition::Answered);
    assert_eq!(a.account.as_deref(), Some("1001"));
    assert_eq!(a.extra["bleg_uuid"], "d80e2a10-4c15-11ea-97a1-9dd79410affb");
    assert_eq!(a.extra["read_codec"], "PCMU");
    assert_eq!(a.extra["hangup_cause"], "NORMAL_CLEARING");

    let no_answer = out[1].as_ref().unwrap();
    assert_eq!((no_answer.answer, no_answer.usage), (None, 0));
    assert_eq!(no_answer.disposition, Disposition::NoAnswer);

    let busy = out[2].as_ref().unwrap();
    assert_eq!(busy.disposition, Disposition::Busy);
    assert_eq!(busy.lossy_fields, vec!["caller_id_name".to_string()]);
    assert_eq!(busy.extra["caller_id_name"], "Li \u{FFFD}Si");

    // FreeSWITCH does not escape quotes inside a value; the reader recovers them.
    let quoted = out[3].as_ref().unwrap();
    assert_eq!(quoted.extra["caller_id_name"], "Wang \"Boss\" Wu");
    assert_eq!(quoted.usage, 3 * S);

    let short = out[4].as_ref().unwrap_err();
    assert_eq!(
        (short.line, short.kind.clone()),
        (
            5,
            ErrorKind::ColumnCount {
                found: 14,
                expected: "15".into()
            }
        )
    );
    // The spreadsheet-mangled sample row: quotes stripped, dates rewritten.
    let mangled = out[5].as_ref().unwrap_err();
    assert_eq!(
        (mangled.line, mangled.field.as_deref()),
        (6, Some("start_stamp"))
    );
}

#[test]
fn default_template_with_space_before_accountcode() {
    let out: Vec<_> = CsvReader::new(
        fixture("freeswitch/Master-default.csv"),
        &Template::Default,
        shanghai(),
        "fs",
    )
    .collect();
    let a = out[0].as_ref().unwrap();
    assert_eq!(a.account.as_deref(), Some("1000"));
    assert_eq!(a.callee, "+8613912345678");
    assert_eq!(a.start, ts("2024-05-06T15:59:50Z"));
    assert_eq!(a.end, Some(ts("2024-05-06T16:01:03Z")));
    assert_eq!(a.usage, 65 * S);
    let b = out[1].as_ref().unwrap();
    assert_eq!(
        (b.account.as_deref(), b.disposition),
        (None, Disposition::NoAnswer)
    );
    assert_eq!(Template::Snom.columns().len(), 20);
    assert_eq!(Template::Linksys.columns().len(), 17);
    assert_eq!(Template::Asterisk.columns().len(), 18);
}

#[test]
fn url_encoded_json_with_callflow_array() {
    let src: Arc<str> = "fs".into();
    let doc = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/freeswitch/a_a1b2c3d4-0001-4000-8000-000000000001.cdr.json"),
    )
    .unwrap();
    let c = read_json_cdr(&doc, 1, &JsonOptions::new(shanghai()), &src).unwrap();
    assert_eq!(c.record_id, "a1b2c3d4-0001-4000-8000-000000000001");
    assert_eq!(
        c.call_id.as_deref(),
        Some("a1b2c3d4-0001-4000-8000-000000000001")
    );
    // From the original profile (profile_index 1), not the transferred one listed first.
    assert_eq!(c.callee, "+8613912345678");
    assert_eq!(c.caller, "1001");
    assert_eq!(c.start, ts("2024-05-06T00:00:00.123456Z"));
    assert_eq!(c.answer, Some(ts("2024-05-06T00:00:05.623456Z")));
    assert_eq!(c.end, Some(ts("2024-05-06T00:01:12.873456Z")));
    assert_eq!(c.usage, 67_250_000_000, "billusec, to the microsecond");
    assert_eq!(c.offset.seconds(), 8 * 3600);
    assert_eq!(c.direction, Some(Direction::Inbound));
    assert_eq!(c.account.as_deref(), Some("1001"));
    assert_eq!(c.extra["caller_id_name"], "张三");
    assert_eq!(c.extra["sip_gateway_name"], "cn-trunk");
    assert_eq!(c.extra["channel_name"], "sofia/internal/1001@192.168.1.10");
    assert_eq!(c.extra["context"], "default");
    assert!(c.lossy_fields.is_empty());

    let mut opts = JsonOptions::new(shanghai());
    opts.callee_var = Some("sip_req_user".into());
    opts.extra_vars = vec!["cgr_note".into()];
    let c = read_json_cdr(&doc, 1, &opts, &src).unwrap();
    assert_eq!(c.callee, "+8613912345678", "%2B decoded, + kept");
    assert_eq!(c.extra["cgr_note"], "café \"VIP\"");
}

#[test]
fn old_json_with_callflow_object() {
    let mut opts = JsonOptions::new(TimeZone::get("Europe/Berlin").unwrap());
    opts.url_encoded = false;
    let out: Vec<_> = JsonReader::new(
        fixture("freeswitch/01df56f4-d99a-4ef6-b7fe-b924b2415b7f.cdr.json"),
        opts,
        "fs",
    )
    .collect();
    assert_eq!(out.len(), 1);
    let c = out[0].as_ref().unwrap();
    assert_eq!(c.callee, "+4986517174963");
    assert_eq!(c.caller, "dan");
    assert_eq!(c.start, ts("2013-08-04T09:50:54Z"));
    assert_eq!(c.answer, Some(ts("2013-08-04T09:50:56Z")));
    assert_eq!(c.usage, 3_920_000_000, "billmsec when there is no billusec");
    assert_eq!(c.offset.seconds(), 7200);
    assert_eq!(c.extra["context"], "ipbxas");
    assert_eq!(c.call_id, None);
}

#[test]
fn json_stream_keeps_going_after_bad_documents() {
    let mut r = JsonReader::new(
        fixture("freeswitch/stream.json"),
        JsonOptions::new(TimeZone::UTC),
        "fs",
    );
    let out: Vec<_> = r.by_ref().collect();
    assert_eq!(out.len(), 6);
    let busy = out[0].as_ref().unwrap();
    assert_eq!(
        (busy.disposition, busy.usage, busy.answer),
        (Disposition::Busy, 0, None)
    );
    assert_eq!(busy.end, Some(ts("2024-05-06T00:01:42.5Z")));
    let garbage = out[1].as_ref().unwrap_err();
    assert_eq!(
        (garbage.line, garbage.raw.as_slice()),
        (2, &b"not json at all\n"[..])
    );
    let invalid = out[2].as_ref().unwrap_err();
    assert!(matches!(invalid.kind, ErrorKind::Json(_)));
    assert_eq!(invalid.line, 3);
    let lossy = out[3].as_ref().unwrap();
    assert_eq!(
        lossy.lossy_fields,
        vec!["variables.caller_id_name".to_string()]
    );
    assert_eq!(
        lossy.usage, 1_000_500_000,
        "answer to end when no bill variable"
    );
    let bad = out[4].as_ref().unwrap_err();
    assert_eq!(
        (bad.line, bad.field.as_deref(), bad.kind.clone()),
        (5, Some("variables.caller_id_number"), ErrorKind::NotUtf8)
    );
    let truncated = out[5].as_ref().unwrap_err();
    assert_eq!(truncated.line, 6);
    assert_eq!(r.stats().errors, 4);
}
