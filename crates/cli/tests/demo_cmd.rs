#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `toll demo` as a newcomer runs it: it seeds a SQLite file, serves, prints the URL and the
//! logins; signing in with a printed login works, the dashboard's data is there (the API
//! rates a call with the stored active tariff, the CDRs were charged); a second run reuses the
//! file without seeding again; SIGTERM stops it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

#[tokio::test]
async fn demo_seeds_serves_and_signs_in_with_the_printed_logins() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_toll"))
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--subscribers",
            "40",
            "--cdrs",
            "1500",
        ])
        .arg("--file")
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "toll demo ended early:\n{printed}"
        );
        printed.push_str(&line);
        if let Some(rest) = line.trim().strip_prefix("Toll demo is running: ") {
            break rest.trim_end_matches("/ui/").to_string();
        }
    };
    // The rest of the banner: the logins.
    for _ in 0..8 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        printed.push_str(&line);
    }
    assert!(printed.contains("1500 generated"), "{printed}");
    assert!(printed.contains("operator  / demo-operator"), "{printed}");

    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let r = client
        .post(format!("{url}/api/v1/session"))
        .json(&json!({"login": "operator", "password": "demo-operator"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["tenant"], "demo");
    let r = client
        .post(format!("{url}/api/v1/rate"))
        .json(&json!({
            "category": "call", "subject": "x", "destination": "+86 186 0000 1111",
            "start": "2026-11-23T07:59:00+08:00", "usage": "150s"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rated: Value = r.json().await.unwrap();
    // The bundled tariff: China Unicom mobile at 0.08/min in 60 s steps, 150 s → 3 min.
    assert_eq!(rated["cost"], "0.2", "{rated}");
    let tariffs: Value = client
        .get(format!("{url}/api/v1/tariffs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tariffs[0]["code"], "cn-demo");
    assert_eq!(tariffs[0]["active"], true);

    let pid = i32::try_from(child.id()).unwrap();
    assert!(
        Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
    let done = tokio::task::spawn_blocking(move || child.wait().unwrap());
    let status = tokio::time::timeout(Duration::from_secs(20), done)
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    // The data is in the file; a second run reuses it.
    let store = toll_store::Store::connect(file.to_str().unwrap())
        .await
        .unwrap();
    let t = store.tenant("demo").await.unwrap();
    let (cdrs, _) = store.cdr_totals(t.id).await.unwrap();
    assert!(cdrs > 1_300, "{cdrs} CDRs");
    store.close().await;
    let again = Command::new(env!("CARGO_BIN_EXE_toll"))
        .args(["demo", "--no-serve", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(again.status.success());
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("Reusing the demo"), "{text}");
}

#[tokio::test]
async fn user_add_hashes_the_password_from_the_environment_and_lists_users() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let toll = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_toll"))
            .arg("--database")
            .arg(&db)
            .args(args)
            .env("TOLL_PASSWORD", "s3cret-passphrase")
            .output()
            .unwrap()
    };
    assert!(toll(&["db", "migrate"]).status.success());
    assert!(toll(&["tenant", "create", "acme"]).status.success());
    let out = toll(&[
        "user", "add", "--tenant", "acme", "alice", "--role", "approver", "--name", "Alice",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bad = toll(&[
        "user", "add", "--tenant", "acme", "bob", "--role", "boss", "--name", "Bob",
    ]);
    assert!(!bad.status.success());
    let out = toll(&["user", "list", "--tenant", "acme"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("alice") && text.contains("approver"),
        "{text}"
    );
    let store = toll_store::Store::connect(db.to_str().unwrap())
        .await
        .unwrap();
    let u = store.user_by_login("alice").await.unwrap().unwrap();
    assert!(u.password_hash.starts_with("$argon2id$"));
    assert!(!u.password_hash.contains("s3cret"));
    store.close().await;
}
