#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every reader, fed arbitrary bytes, returns records or errors and terminates; it never panics,
//! and every record read is accounted for.

use jiff::tz::TimeZone;
use proptest::prelude::*;
use toll_ingest::asterisk::{CallReader, MasterCsvReader, Options};
use toll_ingest::freeswitch::{CsvReader, JsonOptions, JsonReader, Template};
use toll_ingest::{DelimitedReader, Mapping, cgrates};

/// Bytes biased towards the structure readers look for, so the search gets past the first byte.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        Just(b"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"\"2024-01-28 07:50:32\"".to_vec()),
        Just(b"ANSWERED".to_vec()),
        Just(b"19".to_vec()),
        Just(b"{\"variables\":{\"uuid\":\"u\",\"start_uepoch\":\"1\"".to_vec()),
        Just(b"%FF".to_vec()),
    ];
    proptest::collection::vec(token, 0..80).prop_map(|v| v.concat())
}

fn csv_line21() -> Vec<u8> {
    b"\"\",\"1\",\"2\",\"c\",\"n\",\"SIP/a\",\"SIP/b\",\"Dial\",\"x,y\",\"2024-01-28 07:50:32\",\"2024-01-28 07:50:35\",\"2024-01-28 07:50:54\",22,19,\"ANSWERED\",\"DOCUMENTATION\",\"u1\",\"\",\"\",\"l1\",24\n".to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn asterisk(input in bytes()) {
        let mut r = MasterCsvReader::new(&input[..], Options::new(TimeZone::UTC), "p");
        let n = r.by_ref().count() as u64;
        let s = r.stats();
        prop_assert_eq!(n, s.records);
        prop_assert_eq!(s.records, s.emitted + s.errors);
        let mut c = CallReader::new(&input[..], Options::new(TimeZone::UTC), "p").with_window(2, 3);
        let _ = c.by_ref().count();
        let s = c.stats();
        prop_assert_eq!(s.records, s.emitted + s.errors + s.merged);
    }

    #[test]
    fn asterisk_mutated_valid_line(pos in 0usize..200, byte in any::<u8>()) {
        let mut line = csv_line21();
        let i = pos % line.len();
        line[i] = byte;
        let _ = MasterCsvReader::new(&line[..], Options::new(TimeZone::UTC), "p").count();
    }

    #[test]
    fn freeswitch_csv(input in bytes()) {
        for t in [Template::Default, Template::Example, Template::Asterisk] {
            let _ = CsvReader::new(&input[..], &t, TimeZone::UTC, "f").count();
        }
    }

    #[test]
    fn freeswitch_json(input in bytes()) {
        let mut r = JsonReader::new(&input[..], JsonOptions::new(TimeZone::UTC), "f");
        let n = r.by_ref().count() as u64;
        prop_assert_eq!(n, r.stats().records);
    }

    #[test]
    fn cgrates_csv(input in bytes()) {
        let _ = cgrates::CsvReader::new(&input[..], TimeZone::UTC, b',', "c").count();
    }

    #[test]
    fn mapped(input in bytes()) {
        let m = Mapping::from_toml(r#"
            [format]
            multiline = true
            max_record_bytes = 64
            [fields]
            record_id = { template = "{0}-{1}" }
            caller = { index = 1 }
            callee = { index = 2 }
            start = { index = 3, time = "detect" }
            answer = { index = 4, time = "epoch_us" }
            end = { index = 5, time = "%Y-%m-%d %H:%M:%S" }
            usage = { derive = "answer_to_end" }
            disposition = { index = 6 }
            [extra]
            x = { index = 7 }
            [[filter]]
            index = 6
            not_equals = "X"
        "#).unwrap();
        let mut r = DelimitedReader::new(&input[..], &m, "m").unwrap();
        let n = r.by_ref().count() as u64;
        let s = r.stats();
        prop_assert_eq!(n + s.filtered, s.records);
    }
}
