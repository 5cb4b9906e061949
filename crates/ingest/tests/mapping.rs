#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use common::{S, fixture, ts};
use toll_ingest::{ConfigError, DelimitedReader, Disposition, ErrorKind, Mapping, Stats};

fn mapping(path: &str) -> Mapping {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    Mapping::from_toml(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn switch_export() {
    let m = mapping("mapping/switch-export.toml");
    let mut r = DelimitedReader::new(fixture("mapping/switch-export.csv"), &m, "sh2").unwrap();
    let out: Vec<_> = r.by_ref().collect();
    assert_eq!(out.len(), 5);
    let a = out[0].as_ref().unwrap();
    assert_eq!(a.record_id, "sh2-r-1");
    assert_eq!(a.line, 3);
    assert_eq!(a.start, ts("2024-05-06T00:00:00.1235Z"));
    assert_eq!(a.end, Some(ts("2024-05-06T00:01:12.25025Z")));
    assert_eq!(a.usage, 67_250_250_000, "end - answer, exact");
    assert_eq!(a.offset.seconds(), 8 * 3600);
    assert_eq!(a.disposition, Disposition::Answered);
    assert_eq!(a.tenant.as_deref(), Some("acme"));
    assert_eq!(a.service.as_deref(), Some("CT-01"));
    assert_eq!(a.extra["note"], "first; with delimiter");

    let e = out[1].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (5, Some("usage")));
    let e = out[2].as_ref().unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref(), e.kind.clone()),
        (6, Some("start"), ErrorKind::Missing)
    );
    let e = out[3].as_ref().unwrap_err();
    assert_eq!(
        (e.line, e.field.as_deref(), e.kind.clone()),
        (7, Some("callee"), ErrorKind::NotUtf8)
    );
    assert_eq!(e.raw, b"r-5;021-5555-0004;\xff\xfe;1714954000000;1714954001000;1714954061000;ANSWERED;CM-03;bad callee bytes");

    let last = out[4].as_ref().unwrap();
    assert_eq!(last.usage, 59_500_000_000);
    assert_eq!(last.lossy_fields, vec!["note".to_string()]);
    assert_eq!(
        r.stats(),
        Stats {
            records: 6,
            emitted: 2,
            filtered: 1,
            errors: 3,
            merged: 0
        }
    );
}

#[test]
fn asterisk_cdr_custom_by_index_without_header() {
    // cdr_custom's legacy Master.csv: clid first, every value quoted, durations too.
    let m = Mapping::from_toml(
        r#"
        [format]
        zone = "UTC"
        [fields]
        record_id = { index = 16 }
        caller = { index = 1 }
        callee = { index = 2 }
        start = { index = 8 }
        answer = { index = 9 }
        end = { index = 10 }
        usage = { index = 12, unit = "s" }
        disposition = { index = 13 }
        account = { index = 15 }
        [extra]
        clid = { index = 0 }
        "#,
    )
    .unwrap();
    let data = b"\"\"\"\"\"\" <client1>\",\"client1\",\"6789\",\"default\",\"PJSIP/client1-00000002\",\"PJSIP/client2-00000003\",\"Dial\",\"PJSIP/client2\",\"2023-07-26 01:51:32\",\"2023-07-26 01:51:50\",\"2023-07-26 01:52:04\",\"31\",\"13\",\"ANSWERED\",\"DOCUMENTATION\",\"\",\"1690325492.2\",\"\",2\n\
\"x\",\"client1\",\"6789\",\"default\",\"PJSIP/client1-00000004\",\"\",\"Dial\",\"PJSIP/client2\",\"2023-07-26 02:00:00\",\"\",\"2023-07-26 02:00:10\",\"10\",\"0\",\"NO ANSWER\",\"DOCUMENTATION\",\"\",\"1690329600.4\",\"\",3\n";
    let out: Vec<_> = DelimitedReader::new(&data[..], &m, "pbx")
        .unwrap()
        .collect();
    let a = out[0].as_ref().unwrap();
    // Six quotes as in the real file: two doubled quotes, then one kept literally.
    assert_eq!(a.extra["clid"], "\"\"\" <client1>");
    assert_eq!((a.usage, a.account.as_deref()), (13 * S, None));
    let b = out[1].as_ref().unwrap();
    assert_eq!(
        (b.answer, b.disposition),
        (None, Disposition::NoAnswer),
        "quoted empty answer"
    );
}

#[test]
fn formats_units_maps_and_config_errors() {
    let m = Mapping::from_toml(
        r#"
        [format]
        delimiter = "\t"
        quote = ""
        header = true
        [fields]
        record_id = { column = "id" }
        caller = { column = "a" }
        callee = { column = "b" }
        start = { column = "t", time = "%d/%m/%Y %H:%M:%S %z" }
        usage = { column = "kb", unit = "kib" }
        kind = { value = "data" }
        disposition = { column = "cause", map = { "16" = "answered", "17" = "busy" } }
        "#,
    )
    .unwrap();
    let data = b"id\ta\tb\tt\tkb\tcause\n1\t13800138000\tcmnet\t06/05/2024 08:00:00 +0800\t1.5\t16\n2\t13800138000\tcmnet\t06/05/2024 08:00:00 +0800\t2\t99\n";
    let out: Vec<_> = DelimitedReader::new(&data[..], &m, "ggsn")
        .unwrap()
        .collect();
    let a = out[0].as_ref().unwrap();
    assert_eq!((a.usage, a.start), (1536, ts("2024-05-06T00:00:00Z")));
    assert_eq!(a.offset.seconds(), 8 * 3600);
    let e = out[1].as_ref().unwrap_err();
    assert_eq!((e.line, e.field.as_deref()), (3, Some("disposition")));

    let bad_col = Mapping::from_toml(
        "[format]\nheader = true\n[fields]\nrecord_id = { column = \"nope\" }\ncaller = { index = 0 }\ncallee = { index = 0 }\nstart = { index = 0 }\nusage = { index = 0 }\n",
    )
    .unwrap();
    let err = DelimitedReader::new(&b"id,a\n"[..], &bad_col, "x").unwrap_err();
    assert_eq!(
        err,
        ConfigError::NoSuchColumn {
            field: "record_id".into(),
            column: "nope".into()
        }
    );
    assert!(matches!(
        Mapping::from_toml("[fields]\nrecord_id = { bogus = 1 }"),
        Err(ConfigError::Toml(_))
    ));
    let sms_in_seconds = Mapping::from_toml(
        "[fields]\nrecord_id = { index = 0 }\ncaller = { index = 0 }\ncallee = { index = 0 }\nstart = { index = 0 }\nusage = { index = 0, unit = \"s\" }\nkind = { value = \"sms\" }\n",
    )
    .unwrap();
    assert!(matches!(
        DelimitedReader::new(&b""[..], &sms_in_seconds, "x"),
        Err(ConfigError::Field { .. })
    ));
}
