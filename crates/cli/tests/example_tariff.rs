#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bundled example (`examples/cn-demo`, Toll's TOML format): every CDR's cost to the cent,
//! checked by hand against the tariff (number normalisation, carriers, holidays, bands,
//! increments across band boundaries and midnight, fallback subjects, rejects).

use std::path::PathBuf;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cn-demo")
}

#[test]
fn example_cdrs_rate_to_the_cent() {
    let loaded = toll_cli::load::load(&example()).unwrap();
    assert!(loaded.warnings.items.is_empty(), "{}", loaded.warnings);
    let input = std::fs::read(example().join("cdrs.csv")).unwrap();
    let mut out = Vec::new();
    let mut rej = Vec::new();
    let s = toll_cli::ratefile::rate_stream_with(
        &loaded.tariff,
        &input[..],
        &mut out,
        &mut rej,
        None,
        2,
    )
    .unwrap();
    assert_eq!((s.rated, s.rejected), (16, 4));
    assert_eq!(s.total_cost.to_string(), "51.33");
    let mut rdr = csv::Reader::from_reader(&out[..]);
    let got: Vec<(String, String, String, String)> = rdr
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r[0].to_string(),
                r[9].to_string(),
                r[11].to_string(),
                r[13].to_string(),
            )
        })
        .collect();
    let want = [
        ("1", "0.08", "china_mobile", "CN_MOBILE"), // on-net plan, 95 s → 96 s × 0.05/min
        ("2", "0.2", "china_unicom", "CN_MOBILE"),  // +86 form normalised; partner plan
        ("3", "1.8", "unknown", "INTL_HMT"),        // 0.20 + 96 s × 1.00/min
        ("4", "0.24", "unknown", "CN_FIXED"),       // National Day: holiday band, 2 min
        ("5", "3.7", "unknown", "INTL"),            // hotline plan → fallback "retail"
        ("6", "0.24", "unknown", "CN_FIXED"),       // 17951 stripped; split at midnight
        ("7", "0.2", "china_mobile", "CN_MOBILE"),  // 4 min on-net
        ("8", "0.32", "china_unicom", "CN_MOBILE"), // route carrier overrides the callee's
        ("9", "9", "china_telecom", "CN_MOBILE"),   // 1 h peak, 0.15/min
        ("10", "0", "unknown", "CN_FIXED"),         // zero usage costs nothing
        ("11", "0.15", "china_telecom", "CN_MOBILE"), // first minute charged whole
        ("12", "24.5", "unknown", "INTL"),          // 0.50 + 12 × 2.00 off-peak
        ("13", "1", "unknown", "INTL_HMT"),         // 0.20 + 48 s × 1.00/min
        ("14", "0.1", "china_telecom", "CN_MOBILE"), // off-peak minute overruns 08:00
        ("15", "9", "unknown", "CN_FIXED"),         // 75 min × 0.12 peak
        ("20", "0.8", "china_unicom", "CN_MOBILE"), // holiday, but the carrier plan rules
    ];
    let want: Vec<(String, String, String, String)> = want
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    assert_eq!(got, want);
    let rejects = String::from_utf8(rej).unwrap();
    let lines: Vec<&str> = rejects
        .lines()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(lines, ["line", "17", "18", "19", "20"]);
}
