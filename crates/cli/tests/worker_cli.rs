#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `toll stream publish` and `toll worker` as processes: a file is published (its torn lines
//! reported, not published), a worker is killed with SIGKILL mid-stream, a second one finishes
//! and stops cleanly on SIGTERM; every record is charged once, to the cent, and every message
//! acknowledged. On SQLite and (with `TOLL_TEST_DATABASE_URL`) PostgreSQL; needs
//! `TOLL_TEST_NATS_URL`, else it says so and passes.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use toll_core::{Currency, Micros};
use toll_ingest::stream::nats::async_nats;
use toll_store::Store;
use toll_store::accounts::AccountMode;

const LINES: usize = 50;
const RECORDS: usize = 4_000;

fn number(i: usize) -> String {
    format!("1380000{i:04}")
}

/// Minutes of record `k`: 1, 2 or 3, at 0.30 each.
fn minutes(k: usize) -> i64 {
    (k % 3 + 1) as i64
}

fn write_file(path: &std::path::Path) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for k in 0..RECORDS {
        let caller = number(k % LINES);
        let billsec = 60 * minutes(k);
        let start = format!(
            "2026-11-23 {:02}:{:02}:{:02}",
            k / 3600 % 24,
            k / 60 % 60,
            k % 60
        );
        writeln!(
            f,
            r#""","{caller}","01088886666","from-internal","""x"" <{caller}>","PJSIP/a-{k:08x}","PJSIP/trunk-{k:08x}","Dial","PJSIP/x@trunk","{start}","{start}","{start}",{billsec},{billsec},"ANSWERED","BILLING","1795000000.{k}","""#
        )
        .unwrap();
        if k % 1_500 == 7 {
            // A torn line.
            writeln!(f, r#""","{caller}","01088886666","from-internal","{k}""#).unwrap();
        }
    }
    f.flush().unwrap();
}

async fn setup(s: &Store) -> toll_store::Tenant {
    s.migrate().await.unwrap();
    let t = s
        .create_tenant("acme", "Acme", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    s.create_customer(t.id, "c", "x").await.unwrap();
    for i in 0..LINES {
        let code = format!("a{i}");
        s.create_account(t.id, "c", &code, AccountMode::Unlimited)
            .await
            .unwrap();
        s.add_subscriber(t.id, &code, &number(i)).await.unwrap();
    }
    t
}

/// (name, URL for `--database`, store): SQLite in `dir`, and PostgreSQL in a fresh schema.
async fn databases(dir: &std::path::Path) -> Vec<(&'static str, String, Store)> {
    let path = dir.join("toll.db").to_str().unwrap().to_string();
    let mut out = vec![("sqlite", path.clone(), Store::connect(&path).await.unwrap())];
    if let Ok(url) = std::env::var("TOLL_TEST_DATABASE_URL") {
        let schema = format!(
            "toll_test_{}_{}_worker",
            std::process::id(),
            jiff::Timestamp::now().as_millisecond()
        );
        let store = Store::connect_postgres_schema(&url, &schema).await.unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        out.push((
            "postgres",
            format!("{url}{sep}options=-c%20search_path%3D{schema}"),
            store,
        ));
    }
    out
}

fn toll(db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_toll"));
    c.args(["--database", db]);
    c
}

async fn wait_charged(s: &Store, t: &toll_store::Tenant, at_least: i64, what: &str) -> i64 {
    let started = Instant::now();
    loop {
        let (n, _) = s.cdr_totals(t.id).await.unwrap();
        if n >= at_least {
            return n;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{what}: {n} of {at_least} charged after 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_killed_worker_process_is_replaced_and_a_terminated_one_stops_cleanly() {
    let Ok(nats) = std::env::var("TOLL_TEST_NATS_URL") else {
        eprintln!("skipped: TOLL_TEST_NATS_URL is not set (a NATS server with JetStream)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Master.csv");
    write_file(&file);
    for (what, db, s) in databases(dir.path()).await {
        let t = setup(&s).await;
        let id = format!(
            "{}_{}_{what}",
            std::process::id(),
            jiff::Timestamp::now().as_millisecond()
        );
        let (stream, prefix) = (format!("TOLL_TEST_{id}"), format!("toll_test.{id}"));
        let common = [
            "--nats",
            &nats,
            "--stream",
            &stream,
            "--subject-prefix",
            &prefix,
            "--partitions",
            "4",
            "--tenant",
            "acme",
        ];
        let out = toll(&db)
            .args(["stream", "publish"])
            .arg(&file)
            .args(["--format", "asterisk", "--source", "pbx1"])
            .args(common)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stdout} {stderr}");
        assert!(
            stdout.contains(&format!("published {RECORDS}, unreadable 3")),
            "{what}: {stdout}"
        );
        assert_eq!(
            stderr.matches("(not published)").count(),
            3,
            "{what}: {stderr}"
        );

        let dead = dir.path().join(format!("dead-{what}"));
        let worker = || -> Child {
            toll(&db)
                .arg("worker")
                .args(common)
                .args(["--default-rate", "voice=0.30", "--batch", "100"])
                .args(["--rebalance-ms", "100", "--max-wait-ms", "20"])
                .arg("--dead-letter-dir")
                .arg(&dead)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut first = worker();
        let charged = wait_charged(&s, &t, 1_000, what).await;
        first.kill().unwrap(); // SIGKILL
        first.wait().unwrap();
        let (before, _) = s.cdr_totals(t.id).await.unwrap();
        assert!(
            before >= charged && before < RECORDS as i64,
            "{what}: killed mid-stream ({before})"
        );

        let second = worker();
        wait_charged(&s, &t, RECORDS as i64, what).await;
        let term = Command::new("kill")
            .args(["-TERM", &second.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let out = second.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{what}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("messages"), "{what}: {stdout}");

        let expected = Micros(300_000 * (0..RECORDS).map(minutes).sum::<i64>());
        assert_eq!(
            s.cdr_totals(t.id).await.unwrap(),
            (RECORDS as i64, expected),
            "{what}"
        );
        assert!(s.verify_ledger(t.id).await.unwrap().is_intact(), "{what}");
        let client = async_nats::connect(&nats).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let info = js
            .get_stream(&stream)
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap();
        assert_eq!(info.state.messages, 0, "{what}: every message acknowledged");
        js.delete_stream(&stream).await.unwrap();
        s.close().await;
    }
}
