#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Arbitrary bytes never panic the CDR reader of `toll rate` or the number-range parser, and
//! every input row ends up either rated or rejected: nothing disappears.

use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;
use toll_rating::carriers::NumberRanges;
use toll_rating::diag::Diagnostics;

fn tariff() -> Arc<toll_rating::Tariff> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cn-demo");
    toll_cli::load::load(&dir).unwrap().tariff
}

const HEADER: &str = "id,tenant,category,subject,destination,start,usage,tor\n";

fn row() -> impl Strategy<Value = String> {
    let dest = prop_oneof![
        Just("13800138000".to_string()),
        Just("+86 186 0000 1111".to_string()),
        Just("0085212345678".to_string()),
        "[0-9+ ]{0,16}",
        "\\PC{0,12}",
    ];
    let start = prop_oneof![
        Just("2026-11-23T09:15:02+08:00".to_string()),
        Just("2026-11-28T23:59:30+08:00".to_string()),
        "\\PC{0,25}",
    ];
    let usage = prop_oneof![Just("95s".to_string()), "[0-9]{0,6}s?", "\\PC{0,8}"];
    let tor = prop_oneof![Just("voice"), Just("sms"), Just(""), Just("fax")];
    let subject = prop_oneof![Just("alice"), Just("hotline_4008"), Just("")];
    (dest, start, usage, tor, subject).prop_map(|(d, s, u, t, sub)| {
        format!(
            "1,acme,call,{sub},{},{},{},{t}\n",
            quote(&d),
            quote(&s),
            quote(&u)
        )
    })
}

/// RFC 4180 quoting, so that each generated row is exactly one CSV record.
fn quote(f: &str) -> String {
    format!("\"{}\"", f.replace('"', "\"\""))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_after_the_header_never_panic(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let t = tariff();
        let mut input = HEADER.as_bytes().to_vec();
        input.extend_from_slice(&body);
        let mut out = Vec::new();
        let mut rej = Vec::new();
        let _ = toll_cli::ratefile::rate_stream_with(&t, &input[..], &mut out, &mut rej, None, 2);
    }

    #[test]
    fn arbitrary_bytes_as_a_whole_file_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600)) {
        let t = tariff();
        let mut out = Vec::new();
        let mut rej = Vec::new();
        let _ = toll_cli::ratefile::rate_stream_with(&t, &input[..], &mut out, &mut rej, None, 1);
    }

    #[test]
    fn every_row_is_rated_or_rejected(rows in proptest::collection::vec(row(), 0..60)) {
        let t = tariff();
        let input = format!("{HEADER}{}", rows.concat());
        let mut out = Vec::new();
        let mut rej = Vec::new();
        let s = toll_cli::ratefile::rate_stream_with(&t, input.as_bytes(), &mut out, &mut rej, None, 2).unwrap();
        prop_assert_eq!(s.rated + s.rejected, rows.len() as u64);
        let out_rows = csv::ReaderBuilder::new().flexible(true).from_reader(&out[..]).records().count() as u64;
        let rej_rows = csv::ReaderBuilder::new().flexible(true).from_reader(&rej[..]).byte_records().count() as u64;
        prop_assert_eq!(out_rows, s.rated);
        prop_assert_eq!(rej_rows, s.rejected);
    }

    #[test]
    fn number_range_tables_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut d = Diagnostics::default();
        let _ = NumberRanges::parse_csv("r.csv", &input, &mut d);
    }
}
