#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `toll` binary end to end: rate files with bad rows, check broken tariffs, carriers.

use std::path::Path;
use std::process::{Command, Output};

fn toll(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_toll"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A small Chinese-operator tariff in CGRateS layout: mobile per carrier, Beijing fixed, HK.
fn write_tariff(dir: &Path) {
    let files = [
        (
            "Destinations.csv",
            "#Id,Prefix\nCN_MOBILE,13\nCN_MOBILE,15\nCN_MOBILE,18\nBEIJING,010\nHK,00852\n",
        ),
        (
            "Rates.csv",
            "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n\
             MOB_PEAK,0.10,0.15,60s,60s,0s\n\
             MOB_PEAK,0,0.15,60s,6s,60s\n\
             MOB_OFF,0,0.06,60s,6s,0s\n\
             CM_RATE,0,0.12,60s,6s,0s\n\
             FIXED,0,0.10,60s,60s,0s\n\
             INTL,0.5,1.20,60s,6s,0s\n",
        ),
        (
            "DestinationRates.csv",
            "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n\
             DR_PEAK,CN_MOBILE,MOB_PEAK,*up,2,0,\n\
             DR_PEAK,BEIJING,FIXED,*up,2,0,\n\
             DR_PEAK,HK,INTL,*up,2,50,*free\n\
             DR_OFF,CN_MOBILE,MOB_OFF,*up,2,0,\n\
             DR_OFF,BEIJING,FIXED,*up,2,0,\n\
             DR_OFF,HK,INTL,*up,2,50,*free\n\
             DR_CM,CN_MOBILE,CM_RATE,*up,2,0,\n",
        ),
        (
            "Timings.csv",
            "#Tag,Years,Months,MonthDays,WeekDays,Time\n\
             PEAK,*any,*any,*any,1;2;3;4;5,08:00:00\n\
             NIGHT,*any,*any,*any,1;2;3;4;5,00:00:00\n\
             EVENING,*any,*any,*any,1;2;3;4;5,19:00:00\n\
             WEEKEND,*any,*any,*any,6;7,00:00:00\n",
        ),
        (
            "RatingPlans.csv",
            "#Id,DestinationRatesId,TimingTag,Weight\n\
             STD,DR_PEAK,PEAK,10\nSTD,DR_OFF,NIGHT,10\nSTD,DR_OFF,EVENING,10\nSTD,DR_OFF,WEEKEND,10\n\
             CM_PLAN,DR_CM,*any,10\n",
        ),
        (
            "RatingProfiles.csv",
            "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject,Carrier\n\
             acme,call,*any,2026-01-01T00:00:00+08:00,STD,,\n\
             acme,call,*any,2026-01-01T00:00:00+08:00,CM_PLAN,,china_mobile\n",
        ),
    ];
    for (name, body) in files {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

#[test]
fn tariff_check_prints_counts() {
    let dir = tempfile::tempdir().unwrap();
    write_tariff(dir.path());
    let o = toll(&["tariff", "check", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("destinations       3"), "{out}");
    assert!(out.contains("prefixes           5"), "{out}");
    assert!(out.contains("rating profiles    2"), "{out}");
}

#[test]
fn tariff_check_lists_every_error_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write_tariff(dir.path());
    let p = dir.path();
    // Four different mistakes in four files.
    std::fs::write(p.join("Rates.csv"), "MOB_PEAK,0.10,zero,60s,60s,0s\nMOB_OFF,0,0.06,60s,0s,0s\nCM_RATE,0,0.12,60s,6s,0s\nFIXED,0,0.10,60s,60s,0s\nINTL,0.5,1.20,60s,6s,0s\n").unwrap();
    std::fs::write(p.join("Timings.csv"), "PEAK,*any,*any,*any,1;2;3;4;9,08:00:00\nNIGHT,*any,*any,*any,1;2;3;4;5,00:00:00\nEVENING,*any,*any,*any,1;2;3;4;5,19:00:00\nWEEKEND,*any,*any,*any,6;7,00:00:00\n").unwrap();
    std::fs::write(p.join("RatingPlans.csv"), "STD,DR_PEAK,PEAK,10\nSTD,DR_OFF,NIGHT,10\nSTD,DR_OFF,EVENING,10\nSTD,DR_NOPE,WEEKEND,10\nCM_PLAN,DR_CM,*any,10\n").unwrap();
    std::fs::write(
        p.join("RatingProfiles.csv"),
        "acme,call,*any,yesterday,STD,\n",
    )
    .unwrap();
    let o = toll(&["tariff", "check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for want in [
        "Rates.csv:1:3: error",
        "Rates.csv:2:5: error",
        "Timings.csv:1:5: error",
        "RatingPlans.csv:4:2: error",
        "RatingProfiles.csv:1:4: error",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[test]
fn cost_reports_unratable_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    write_tariff(dir.path());
    let d = dir.path().to_str().unwrap();
    let o = toll(&[
        "cost",
        "--tariff",
        d,
        "--tenant",
        "acme",
        "--category",
        "call",
        "--subject",
        "u1",
        "--destination",
        "0912345678",
        "--start",
        "2026-11-23T10:00:00+08:00",
        "--usage",
        "90s",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unauthorized destination"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn carrier_of_the_callee_selects_its_rate_table() {
    let dir = tempfile::tempdir().unwrap();
    write_tariff(dir.path());
    let d = dir.path().to_str().unwrap();
    let cost = |dest: &str, carrier: Option<&str>| {
        let mut args = vec![
            "cost",
            "--tariff",
            d,
            "--tenant",
            "acme",
            "--category",
            "call",
            "--subject",
            "u1",
            "--destination",
            dest,
            "--start",
            "2026-11-23T10:00:00+08:00",
            "--usage",
            "90s",
            "--json",
        ];
        if let Some(c) = carrier {
            args.extend(["--carrier", c]);
        }
        let o = toll(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    // 138… is China Mobile: its own plan, 0.12/min per 6 s → 90 s = 0.18.
    let cm = cost("13800138000", None);
    assert_eq!(cm["cost"], "0.18");
    assert_eq!(cm["carrier"], "china_mobile");
    assert_eq!(cm["plan"], "CM_PLAN");
    // 186… is China Unicom: the general plan at peak: 0.10 + 60 s block 0.15 + 30 s 0.075 → 0.33 (*up 2).
    let cu = cost("18600001111", None);
    assert_eq!(cu["cost"], "0.33");
    assert_eq!(cu["carrier"], "china_unicom");
    assert_eq!(cu["plan"], "STD");
    // The route's carrier overrides the callee's number range.
    let routed = cost("18600001111", Some("中国移动"));
    assert_eq!(routed["plan"], "CM_PLAN");
    assert_eq!(routed["carrier_source"], "route");
    // Fixed lines: carrier unknown (explicitly), region known.
    let bj = cost("01012345678", None);
    assert_eq!(bj["carrier"], "unknown");
    assert_eq!(bj["region"], "Beijing (北京市)");
    assert_eq!(bj["cost"], "0.2");
}

#[test]
fn rate_file_rates_good_rows_and_rejects_every_bad_row_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    write_tariff(dir.path());
    let cdrs = dir.path().join("cdrs.csv");
    let mut body = b"id,tenant,category,subject,destination,start,usage,tor\n".to_vec();
    body.extend_from_slice(b"1,acme,call,u1,13800138000,2026-11-23T10:00:00+08:00,90s,voice\n"); // 0.18
    body.extend_from_slice(b"2,acme,call,u1,18600001111,2026-11-23T10:00:00+08:00,90s,voice\n"); // 0.33
    body.extend_from_slice(b"3,acme,call,u1,18600001111,not-a-time,90s,voice\n"); // line 4
    body.extend_from_slice(b"4,acme,call,u1,18600001111,2026-11-23T10:00:00+08:00,ninety,voice\n"); // line 5
    body.extend_from_slice(b"5,acme,call,u1,0912345678,2026-11-23T10:00:00+08:00,90s,voice\n"); // line 6
    body.extend_from_slice(b"6,acme,call,u1,18600001111\n"); // line 7
    body.extend_from_slice(b"7,acme,call,u1,186\xff\xfe,2026-11-23T10:00:00+08:00,90s,voice\n"); // line 8
    body.extend_from_slice(b"8,,call,u1,18600001111,2026-11-23T10:00:00+08:00,90s,voice\n"); // line 9
    body.extend_from_slice(b"9,acme,call,u1,01012345678,2026-11-28T10:00:00+08:00,61,voice\n"); // Saturday, 0.2
    body.extend_from_slice(b"10,acme,call,u1,13800138000,2026-11-23T10:00:00+08:00,-5s,voice\n"); // line 11
    std::fs::write(&cdrs, &body).unwrap();
    let out = dir.path().join("rated.csv");
    let o = toll(&[
        "rate",
        "--tariff",
        dir.path().to_str().unwrap(),
        "--cdrs",
        cdrs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = stderr(&o);
    assert!(
        summary.contains("rated 3") && summary.contains("rejected 7"),
        "{summary}"
    );
    assert!(summary.contains("total cost 0.71"), "{summary}");
    let rated = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = rated.lines().collect();
    assert_eq!(
        lines[0],
        "id,tenant,category,subject,destination,start,usage,tor,cost,rated_usage,carrier,region,destination_id,matched_prefix"
    );
    assert_eq!(
        lines[1],
        "1,acme,call,u1,13800138000,2026-11-23T10:00:00+08:00,90s,voice,0.18,1m30s,china_mobile,,CN_MOBILE,13"
    );
    assert_eq!(lines.len(), 4);
    let rejects =
        String::from_utf8_lossy(&std::fs::read(dir.path().join("rated.csv.rejects.csv")).unwrap())
            .into_owned();
    let rej: Vec<&str> = rejects.lines().collect();
    assert_eq!(rej.len(), 8, "{rejects}");
    assert!(rej[1].starts_with("4,\"start: timestamp"), "{}", rej[1]);
    assert!(
        rej[2].starts_with("5,\"usage: invalid duration"),
        "{}",
        rej[2]
    );
    assert!(
        rej[3].starts_with("6,\"unauthorized destination"),
        "{}",
        rej[3]
    );
    assert!(
        rej[4].starts_with("7,\"expected 8 fields, found 5\""),
        "{}",
        rej[4]
    );
    assert!(
        rej[5].starts_with("8,destination: not valid UTF-8,"),
        "{}",
        rej[5]
    );
    assert!(rej[6].starts_with("9,tenant: is empty,"), "{}", rej[6]);
    assert!(rej[7].starts_with("11,\"usage: duration"), "{}", rej[7]);
}

#[test]
fn the_type_of_record_defaults_from_the_category() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let files = [
        ("Destinations.csv", "DST_1002,1002\n"),
        ("Rates.csv", "RT_SMS,0,0.1,1,1,0\n"),
        ("DestinationRates.csv", "DR,DST_1002,RT_SMS,*up,4,0,\n"),
        ("Timings.csv", "ALWAYS,*any,*any,*any,*any,00:00:00\n"),
        ("RatingPlans.csv", "RP,DR,ALWAYS,10\n"),
        (
            "RatingProfiles.csv",
            "cgrates.org,sms,*any,2019-03-01T00:00:00Z,RP,\n",
        ),
    ];
    for (name, body) in files {
        std::fs::write(p.join(name), body).unwrap();
    }
    let d = p.to_str().unwrap();
    let base = [
        "cost",
        "--tariff",
        d,
        "--tenant",
        "cgrates.org",
        "--category",
        "sms",
        "--subject",
        "1003",
        "--destination",
        "1002",
        "--start",
        "2019-03-11T09:00:00Z",
        "--usage",
        "1",
        "--json",
    ];
    // No --tor: category "sms" means one message, not one second.
    let o = toll(&base);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["cost"], "0.1");
    let mut explicit = base.to_vec();
    explicit.extend(["--tor", "sms"]);
    let v: serde_json::Value = serde_json::from_slice(&toll(&explicit).stdout).unwrap();
    assert_eq!(v["cost"], "0.1");
}

#[test]
fn toll_price_gives_the_amount_and_the_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("volume.toml");
    std::fs::write(
        &file,
        "model = \"volume\"\ntiers = [\n  { up_to = 10000, unit_price = \"0.0010\", flat_fee = \"10\" },\n  { up_to = 50000, unit_price = \"0.0008\", flat_fee = \"10\" },\n  { up_to = 100000, unit_price = \"0.0006\", flat_fee = \"10\" },\n  { unit_price = \"0.0004\", flat_fee = \"10\" },\n]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = toll(&["price", "--pricing", f, "--quantity", "65000", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["amount"], "49");
    assert_eq!(v["tiers"][0]["tier"], 3);
    // Bad input: a negative quantity and a float price are clear errors, exit 1.
    let o = toll(&["price", "--pricing", f, "--quantity", "-3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("must not be negative"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&file, "model = \"per_unit\"\nunit_price = 0.15\n").unwrap();
    let o = toll(&["price", "--pricing", f, "--quantity", "3"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("float"), "{}", stderr(&o));
}
