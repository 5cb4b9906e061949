#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `toll import` and `toll suspense` end to end on the embedded database: a FreeSWITCH CSV
//! imported once (a second run skips it by content hash, `--force` finds only duplicates), a
//! record of an unknown line queued, fixed by adding the line, and re-processed.

use std::process::{Command, Output};

fn toll(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_toll"))
        .arg("--database")
        .arg(db)
        .args(args)
        .env_remove("TOLL_DATABASE_URL")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// FreeSWITCH `mod_cdr_csv` default template: caller name, caller, callee, context, start,
/// answer, end, duration, billsec, hangup cause, uuid, b-leg uuid, account code.
const CDRS: &str = "\
\"Zhang\",\"13800138000\",\"01088886666\",\"default\",\"2026-11-23 10:00:00\",\"2026-11-23 10:00:05\",\"2026-11-23 10:01:06\",\"66\",\"61\",\"NORMAL_CLEARING\",\"a0000000-0000-4000-8000-000000000001\",\"\",\"\"
\"Zhang\",\"13800138000\",\"13912345678\",\"default\",\"2026-11-23 11:00:00\",\"2026-11-23 11:00:02\",\"2026-11-23 11:00:32\",\"32\",\"30\",\"NORMAL_CLEARING\",\"a0000000-0000-4000-8000-000000000002\",\"\",\"\"
\"Li\",\"13700137000\",\"01088886666\",\"default\",\"2026-11-23 12:00:00\",\"2026-11-23 12:00:01\",\"2026-11-23 12:00:21\",\"21\",\"20\",\"NORMAL_CLEARING\",\"a0000000-0000-4000-8000-000000000003\",\"\",\"\"
\"Zhang\",\"13800138000\",\"01088886666\",\"default\",\"2026-11-23 13:00:00\",\"\",\"2026-11-23 13:00:20\",\"20\",\"0\",\"NO_ANSWER\",\"a0000000-0000-4000-8000-000000000004\",\"\",\"\"
";

const TARIFF: &str = r#"
name = "t"
currency = "CNY"
timezone = "Asia/Shanghai"
numbering = "cn"
[destinations]
BJ = ["010"]
MOBILE = ["13"]
[rates]
FIXED = { rate = "0.12", unit = "60s", increment = "60s" }
MOB = { rate = "0.10", unit = "60s", increment = "6s" }
[destination_rates]
DR = [
  { destination = "BJ", rate = "FIXED", rounding = "*up", decimals = 2 },
  { destination = "MOBILE", rate = "MOB", rounding = "*up", decimals = 2 },
]
[plans]
P = { destination_rates = "DR" }
[[profiles]]
tenant = "acme"
category = "call"
subject = "*any"
plan = "P"
"#;

#[test]
fn a_file_is_imported_once_and_its_suspended_record_is_fixed_and_reprocessed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("toll.db").to_str().unwrap().to_string();
    let file = dir.path().join("Master.csv");
    std::fs::write(&file, CDRS).unwrap();
    let tariff = dir.path().join("tariff.toml");
    std::fs::write(&tariff, TARIFF).unwrap();
    let (f, t) = (file.to_str().unwrap(), tariff.to_str().unwrap());
    ok(&toll(&db, &["db", "migrate"]));
    ok(&toll(&db, &["tenant", "create", "acme", "--name", "Acme"]));
    ok(&toll(
        &db,
        &[
            "customer", "create", "--tenant", "acme", "c1", "--name", "张三",
        ],
    ));
    ok(&toll(
        &db,
        &[
            "account",
            "create",
            "--tenant",
            "acme",
            "--customer",
            "c1",
            "a1",
        ],
    ));
    ok(&toll(
        &db,
        &[
            "topup",
            "--tenant",
            "acme",
            "--account",
            "a1",
            "--amount",
            "10",
            "--key",
            "p1",
        ],
    ));
    ok(&toll(
        &db,
        &[
            "subscriber",
            "add",
            "--tenant",
            "acme",
            "--account",
            "a1",
            "13800138000",
        ],
    ));
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "--tenant",
            "acme",
            "--format",
            "freeswitch",
            "--source",
            "fs1",
            "--tariff",
            t,
            "--quiet",
            "--json",
            f,
        ];
        args.extend_from_slice(extra);
        toll(&db, &args)
    };

    // First run: two charged (0.24 + 0.05), one unanswered skipped, one unknown line queued.
    let first = import(&[]);
    assert_eq!(
        first.status.code(),
        Some(2),
        "records wait in the suspense queue"
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let r = &v[0];
    assert_eq!(r["status"], "imported");
    assert_eq!(
        (r["records"].as_u64(), r["charged"].as_u64()),
        (Some(4), Some(2))
    );
    assert_eq!(
        (r["skipped"].as_u64(), r["suspended"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(r["suspended_by"]["unknown_subscriber"], 1);
    assert_eq!(r["amount"], "0.29");

    // Same bytes again: skipped by content hash, nothing charged.
    let again: serde_json::Value = serde_json::from_slice(&import(&[]).stdout).unwrap();
    assert_eq!(again[0]["status"], "skipped");
    // Forced: every record is a duplicate or the same suspense item again.
    let forced: serde_json::Value = serde_json::from_slice(&import(&["--force"]).stdout).unwrap();
    assert_eq!(
        (
            forced[0]["charged"].as_u64(),
            forced[0]["duplicate"].as_u64()
        ),
        (Some(0), Some(2))
    );

    let list: serde_json::Value = serde_json::from_str(&ok(&toll(
        &db,
        &["suspense", "list", "--tenant", "acme", "--json"],
    )))
    .unwrap();
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["class"], "unknown_subscriber");
    assert_eq!(items[0]["attempts"], 2);
    let id = items[0]["id"].as_i64().unwrap().to_string();

    // The line was mistyped at the switch: correct the caller, then re-process.
    ok(&toll(
        &db,
        &[
            "suspense",
            "edit",
            "--tenant",
            "acme",
            &id,
            "--set",
            "caller=13800138000",
        ],
    ));
    let retry: serde_json::Value = serde_json::from_str(&ok(&toll(
        &db,
        &[
            "suspense", "retry", "--tenant", "acme", "--tariff", t, "--json",
        ],
    )))
    .unwrap();
    assert_eq!(
        (retry["charged"].as_u64(), retry["suspended"].as_u64()),
        (Some(1), Some(0))
    );
    let open: serde_json::Value = serde_json::from_str(&ok(&toll(
        &db,
        &["suspense", "list", "--tenant", "acme", "--json"],
    )))
    .unwrap();
    assert!(open.as_array().unwrap().is_empty());
    let account: serde_json::Value = serde_json::from_str(&ok(&toll(
        &db,
        &["account", "show", "--tenant", "acme", "a1", "--json"],
    )))
    .unwrap();
    // 10 − 0.24 − 0.05 − 0.12.
    assert_eq!(account["balance"], "9.59");
    ok(&toll(&db, &["ledger", "verify", "--tenant", "acme"]));
}
