#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The HTTP server end to end, over real HTTP against `toll_server::serve` on port 0, on SQLite
//! and (with `TOLL_TEST_DATABASE_URL`) PostgreSQL: batches in every body format charge exact
//! amounts once, whatever the path a record came by; bad requests are problem documents; a
//! call is authorised at its start and charged at its end; a call that never ends is swept
//! and charged the maximum once; health, readiness and metrics.

#[path = "../../store/tests/common/mod.rs"]
mod common;
mod common_server;

use std::io::Cursor;
use std::time::Duration;

use common_server::{PAYER, POOR, Server, TOKEN, acme, balance, m, read, settings};
use serde_json::{Value, json};
use toll_ingest::pipeline::formats::{Format, ReaderSpec};
use toll_ingest::pipeline::{Item, Origin};
use toll_store::cdrs::CdrQuery;

const CDRS: &str = "/api/v1/ingest/acme/cdrs";
const START: &str = "/api/v1/ingest/acme/calls/start";
const END: &str = "/api/v1/ingest/acme/calls/end";

fn rec(id: &str, caller: &str, callee: &str, usage: &str) -> Value {
    json!({
        "source": "pbx-bj",
        "record_id": id,
        "caller": caller,
        "callee": callee,
        "start": "2026-11-23T10:00:00+08:00",
        "kind": "voice",
        "usage": usage,
        "disposition": "answered",
    })
}

/// Asterisk `Master.csv`, 18 columns, times in Beijing time.
fn row(uid: &str, src: &str, dst: &str, billsec: u32, disposition: &str) -> String {
    let start = "2026-11-23 11:00:00";
    format!(
        r#""","{src}","{dst}","from-internal","""x"" <{src}>","PJSIP/1001-0001","PJSIP/trunk-0002","Dial","PJSIP/{dst}@trunk","{start}","{start}","{start}",{billsec},{billsec},"{disposition}","BILLING","{uid}","""#
    )
}

fn summary(v: &Value) -> (u64, u64, u64, u64, u64, String) {
    let n = |k: &str| v[k].as_u64().unwrap_or(u64::MAX);
    (
        n("records"),
        n("charged"),
        n("duplicate"),
        n("skipped"),
        n("suspended"),
        v["amount"].as_str().unwrap_or("?").to_string(),
    )
}

#[tokio::test]
async fn batches_in_every_format_charge_exact_amounts_once() {
    for e in common::engines().await {
        let s = &e.store;
        let t = acme(s).await;
        let srv = Server::start(s, |_| {}).await;
        let q = format!("{CDRS}?source=pbx-bj");

        // JSON: 61 s to a Beijing fixed line (2 started minutes at 0.12) and 30 s to a mobile
        // (5 × 6 s at 0.10/min).
        let batch = json!([
            rec("j1", PAYER, "01088886666", "61s"),
            rec("j2", PAYER, "13912345678", "30s"),
        ]);
        let (st, v) = srv.post_json(&q, &batch).await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        assert_eq!(
            summary(&v),
            (2, 2, 0, 0, 0, "0.29".into()),
            "{}: {v}",
            e.name
        );
        // The same records again charge nothing.
        let (st, v) = srv.post_json(&q, &batch).await;
        assert_eq!(st, 200, "{}", e.name);
        assert_eq!(summary(&v), (2, 0, 2, 0, 0, "0".into()), "{}: {v}", e.name);

        // NDJSON: 120 s fixed (0.24), 6 s mobile (0.01), and j1 again (a duplicate).
        let lines = [
            rec("n1", PAYER, "01088886666", "120s"),
            rec("n2", PAYER, "13912345678", "6s"),
            rec("j1", PAYER, "01088886666", "61s"),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
        let r = srv
            .post(&q)
            .header("content-type", "application/x-ndjson")
            .body(lines)
            .send()
            .await
            .unwrap();
        let (st, v) = read(r).await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        assert_eq!(
            summary(&v),
            (3, 2, 1, 0, 0, "0.25".into()),
            "{}: {v}",
            e.name
        );

        // Asterisk CSV: 61 s fixed (0.24), an unanswered call (skipped), 45 s to a mobile
        // (0.08), and a call from an unknown line (suspended).
        let csv = [
            row("1795000000.1", PAYER, "01088886666", 61, "ANSWERED"),
            row("1795000000.2", PAYER, "01088886666", 0, "NO ANSWER"),
            row("1795000000.3", PAYER, "13912345678", 45, "ANSWERED"),
            row("1795000000.4", "13700137000", "01088886666", 20, "ANSWERED"),
        ]
        .join("\n")
            + "\n";
        let csv_q = format!("{CDRS}?source=pbx-ast&format=asterisk");
        let send_csv = || {
            srv.post(&csv_q)
                .header("content-type", "text/csv")
                .body(csv.clone())
                .send()
        };
        let (st, v) = read(send_csv().await.unwrap()).await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        assert_eq!(
            summary(&v),
            (4, 2, 0, 1, 1, "0.32".into()),
            "{}: {v}",
            e.name
        );
        assert_eq!(v["suspended_by"]["unknown_subscriber"], 1, "{v}");
        assert_eq!(v["skipped_by"]["unanswered"], 1, "{v}");
        // Twice over HTTP, then as a file through the pipeline (toll import's path): once.
        let (st, v) = read(send_csv().await.unwrap()).await;
        assert_eq!(st, 200, "{}", e.name);
        assert_eq!(v["charged"], 0, "{}: {v}", e.name);
        assert_eq!(v["duplicate"], 2, "{}: {v}", e.name);
        let pipeline = settings().pipeline(s.clone(), t.clone()).unwrap();
        let mut spec = ReaderSpec::new(Format::Asterisk, "Asia/Shanghai");
        let items: Vec<Item> = spec
            .open(Cursor::new(csv.clone().into_bytes()), "pbx-ast")
            .unwrap()
            .map(Item::new)
            .collect();
        let origin = Origin {
            reader: spec.to_json(),
            source: "pbx-ast".into(),
            import_id: None,
        };
        let r = pipeline.process(items, &origin).await.unwrap();
        assert_eq!((r.charged, r.duplicate), (0, 2), "{}: {r:?}", e.name);

        // What the database holds: six CDRs, 0.86 in all, taken from the wallet.
        assert_eq!(
            s.cdr_totals(t.id).await.unwrap(),
            (6, m("0.86")),
            "{}",
            e.name
        );
        assert_eq!(balance(s, &t, "a1").await, m("99.14"), "{}", e.name);
        srv.stop().await;
    }
}

#[tokio::test]
async fn freeswitch_and_cgrates_bodies_are_read_by_their_readers() {
    for e in common::engines().await {
        let s = &e.store;
        let t = acme(s).await;
        let srv = Server::start(s, |_| {}).await;
        // CGRateS CDR CSV (the *default export layout): 90 s to a fixed line (2 minutes:
        // 0.24).
        let cgr = "CGRID,RunID,ToR,OriginID,RequestType,Direction,Tenant,Category,Account,Subject,Destination,SetupTime,AnswerTime,Usage,Cost\n\
                   cg1,*default,*voice,cg-1,*postpaid,*out,acme,call,13800138000,13800138000,01088886666,2026-11-23T10:00:00+08:00,2026-11-23T10:00:05+08:00,90s,0\n";
        let r = srv
            .post(&format!("{CDRS}?source=cgr&format=cgrates"))
            .header("content-type", "text/csv")
            .body(cgr)
            .send()
            .await
            .unwrap();
        let (st, v) = read(r).await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        assert_eq!(
            (v["charged"].as_u64(), v["amount"].as_str()),
            (Some(1), Some("0.24")),
            "{}: {v}",
            e.name
        );
        assert_eq!(balance(s, &t, "a1").await, m("99.76"), "{}", e.name);
        // A FreeSWITCH mod_json_cdr document (to a number the tariff does not price: read,
        // rated, suspended).
        let doc = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../ingest/tests/fixtures/freeswitch/01df56f4-d99a-4ef6-b7fe-b924b2415b7f.cdr.json"
        ))
        .unwrap();
        let r = srv
            .post(&format!("{CDRS}?source=fs&format=freeswitch-json"))
            .header("content-type", "application/json")
            .body(doc)
            .send()
            .await
            .unwrap();
        let (st, v) = read(r).await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        assert_eq!(v["records"], 1, "{}: {v}", e.name);
        assert_eq!(v["suspended"], 1, "{}: {v}", e.name);
        assert!(
            v["suspended_by"]["parse_error"].is_null(),
            "{}: {v}",
            e.name
        );
        srv.stop().await;
    }
}

#[tokio::test]
async fn bad_requests_are_problems_naming_the_field() {
    for e in common::engines().await {
        let s = &e.store;
        acme(s).await;
        let srv = Server::start(s, |c| {
            c.max_body_bytes = 4096;
            c.max_records = 3;
        })
        .await;
        let q = format!("{CDRS}?source=pbx-bj");
        let good = json!([rec("x1", PAYER, "01088886666", "61s")]);

        // No token, a wrong token, another scheme: 401 with a Bearer challenge.
        let r = srv
            .client
            .post(srv.at(&q))
            .json(&good)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
        let (st, v) = read(r).await;
        assert_eq!((st, v["code"].as_str()), (401, Some("unauthorized")), "{v}");
        for auth in ["Bearer wrong-token-0123456789", "Basic dGVzdDp0ZXN0", TOKEN] {
            let r = srv
                .client
                .post(srv.at(&q))
                .header("authorization", auth)
                .json(&good)
                .send()
                .await
                .unwrap();
            assert_eq!(read(r).await.0, 401, "{auth}");
        }

        // A record whose start is no time: 400 naming the record and the field.
        let mut bad = rec("x2", PAYER, "01088886666", "61s");
        bad["start"] = json!("yesterday");
        let (st, v) = srv
            .post_json(&q, &json!([rec("x1", PAYER, "01088886666", "61s"), bad]))
            .await;
        assert_eq!(st, 400, "{v}");
        assert_eq!(v["code"], "invalid_body");
        assert_eq!(v["field"], "[1].start", "{v}");
        assert!(v["reason"].as_str().unwrap().contains("RFC 3339"), "{v}");
        // A missing field, an unknown one, a wrong type: the JSON path.
        let mut missing = rec("x3", PAYER, "01088886666", "61s");
        missing.as_object_mut().unwrap().remove("caller");
        let (st, v) = srv.post_json(&q, &json!([missing])).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("[0]")), "{v}");
        assert!(v["reason"].as_str().unwrap().contains("caller"), "{v}");
        let mut typed = rec("x4", PAYER, "01088886666", "61s");
        typed["usage"] = json!(61);
        let (st, v) = srv.post_json(&q, &json!([typed])).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("[0].usage")), "{v}");
        let (st, v) = srv.post_json(&q, &json!({"not": "an array"})).await;
        assert_eq!(st, 400, "{v}");
        // The record's source must be the request's.
        let (st, v) = srv.post_json(&format!("{CDRS}?source=other"), &good).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("[0].source")), "{v}");
        // NDJSON: the line.
        let r = srv
            .post(&q)
            .header("content-type", "application/x-ndjson")
            .body(format!("{}\n{{\"source\": 1}}\n", good[0]))
            .send()
            .await
            .unwrap();
        let (st, v) = read(r).await;
        assert_eq!(
            (st, v["field"].as_str()),
            (400, Some("line 2: source")),
            "{v}"
        );

        // No source; CSV without a format; a media type not taken; an unknown tenant.
        let (st, v) = srv.post_json(CDRS, &good).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("source")), "{v}");
        let r = srv
            .post(&q)
            .header("content-type", "text/csv")
            .body("a,b\n")
            .send()
            .await
            .unwrap();
        let (st, v) = read(r).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("format")), "{v}");
        let r = srv
            .post(&q)
            .header("content-type", "application/xml")
            .body("<cdr/>")
            .send()
            .await
            .unwrap();
        let (st, v) = read(r).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (415, Some("unsupported_media_type"))
        );
        let (st, v) = srv
            .post_json("/api/v1/ingest/nobody/cdrs?source=x", &good)
            .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (404, Some("unknown_tenant")),
            "{v}"
        );

        // Too large: the body (4 KiB here), the record count (3 here).
        let big = "x".repeat(8192);
        let r = srv
            .post(&q)
            .header("content-type", "application/json")
            .body(big)
            .send()
            .await
            .unwrap();
        let (st, v) = read(r).await;
        assert_eq!((st, v["code"].as_str()), (413, Some("too_large")), "{v}");
        let four: Vec<Value> = (0..4)
            .map(|i| rec(&format!("y{i}"), PAYER, "01088886666", "61s"))
            .collect();
        let (st, v) = srv.post_json(&q, &json!(four)).await;
        assert_eq!((st, v["code"].as_str()), (413, Some("too_large")), "{v}");

        // Nothing of it was charged.
        let t = s.tenant("acme").await.unwrap();
        assert_eq!(s.cdr_totals(t.id).await.unwrap().0, 0, "{}", e.name);
        // Unknown routes are problems too.
        let r = srv.client.get(srv.at("/nowhere")).send().await.unwrap();
        assert_eq!(read(r).await.0, 404);
        srv.stop().await;

        // Without a configured token ingestion is disabled.
        let off = Server::start(s, |c| c.ingest_token = None).await;
        let (st, v) = off.post_json(&q, &good).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (503, Some("ingestion_disabled")),
            "{v}"
        );
        off.stop().await;
    }
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[tokio::test]
async fn a_call_is_authorised_at_its_start_and_charged_at_its_end() {
    for e in common::engines().await {
        let s = &e.store;
        let t = acme(s).await;
        let srv = Server::start(s, |_| {}).await;
        let start = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
        let start_s = rfc3339(start);

        // 100.00 pays for the 4 hours allowed at 0.12/min (28.80).
        let call = json!({"source": "fs1", "call_id": "c-1", "caller": PAYER,
                          "callee": "01088886666", "start": start_s});
        let (st, v) = srv.post_json(START, &call).await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        assert_eq!(v["recorded"], true, "{v}");
        assert_eq!(v["authorized"], true, "{v}");
        assert_eq!(v["max_usage_seconds"], 4 * 3600, "{v}");
        assert_eq!(v["limited_by"], "requested", "{v}");
        // Again: nothing new is recorded.
        let (_, v) = srv.post_json(START, &call).await;
        assert_eq!(v["recorded"], false, "{v}");
        assert_eq!(s.open_call_count(t.id).await.unwrap(), 1, "{}", e.name);

        // 0.05 pays for no started minute at 0.12: refused, with the reason.
        let poor = json!({"source": "fs1", "call_id": "c-2", "caller": POOR,
                          "callee": "01088886666", "start": start_s});
        let (st, v) = srv.post_json(START, &poor).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            (v["authorized"].as_bool(), v["max_usage_seconds"].as_i64()),
            (Some(false), Some(0)),
            "{v}"
        );
        assert_eq!(v["refused"], "balance", "{v}");
        // An unknown line: refused.
        let (_, v) = srv
            .post_json(
                START,
                &json!({"source": "fs1", "call_id": "c-3", "caller": "13700137000",
                        "callee": "010", "start": start_s}),
            )
            .await;
        assert_eq!(v["refused"], "unknown_subscriber", "{v}");

        // The end: 61 s answered → charged in the same request, 0.24.
        let end = rfc3339(start + jiff::SignedDuration::from_secs(66));
        let answer = rfc3339(start + jiff::SignedDuration::from_secs(5));
        let ended = json!({"source": "fs1", "call_id": "c-1", "answer": answer, "end": end});
        let (st, v) = srv.post_json(END, &ended).await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        assert_eq!(v["outcome"], "charged", "{v}");
        assert_eq!(v["amount"], "0.24", "{v}");
        assert_eq!(v["usage_seconds"], 61, "{v}");
        assert_eq!(v["started"], true, "{v}");
        assert_eq!(balance(s, &t, "a1").await, m("99.76"), "{}", e.name);
        // Again: a duplicate, nothing charged.
        let (st, v) = srv.post_json(END, &ended).await;
        assert_eq!((st, v["outcome"].as_str()), (200, Some("duplicate")), "{v}");
        assert_eq!(balance(s, &t, "a1").await, m("99.76"), "{}", e.name);

        // An end whose start never came, carrying its own: charged (billsec 30 to a mobile:
        // 0.05).
        let (st, v) = srv
            .post_json(
                END,
                &json!({"source": "fs1", "call_id": "c-4", "caller": PAYER,
                        "callee": "13912345678", "start": start_s, "end": end, "billsec": 30}),
            )
            .await;
        assert_eq!((st, v["amount"].as_str()), (200, Some("0.05")), "{v}");
        assert_eq!(v["started"], false, "{v}");
        // One carrying nothing to charge it from: 404.
        let (st, v) = srv
            .post_json(END, &json!({"source": "fs1", "call_id": "c-5", "end": end}))
            .await;
        assert_eq!((st, v["code"].as_str()), (404, Some("unknown_call")), "{v}");
        // A bad end: 400 naming the field.
        let (st, v) = srv
            .post_json(
                END,
                &json!({"source": "fs1", "call_id": "c-1", "end": "soon"}),
            )
            .await;
        assert_eq!((st, v["field"].as_str()), (400, Some("end")), "{v}");
        // An end of the refused call: its record waits in the suspense queue (0.05 cannot pay
        // 0.12), which is not an HTTP error.
        let (st, v) = srv
            .post_json(
                END,
                &json!({"source": "fs1", "call_id": "c-2", "end": end, "billsec": 40}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(
            (v["outcome"].as_str(), v["class"].as_str()),
            (Some("suspended"), Some("insufficient_balance")),
            "{v}"
        );

        // Only the unknown line's call stays open.
        assert_eq!(s.open_call_count(t.id).await.unwrap(), 1, "{}", e.name);
        assert_eq!(balance(s, &t, "a1").await, m("99.71"), "{}", e.name);
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_plan_line_is_authorised_by_its_allowances_then_its_balance() {
    for e in common::engines().await {
        let s = &e.store;
        // Plan p: fee 10, 100 voice minutes, then 0.15 per started minute; 20 topped up.
        let (_t, _) = common::fixtures::one_line(s, "20").await;
        let srv = Server::start(s, |_| {}).await;
        let (st, v) = srv
            .post_json(
                START,
                &json!({"source": "fs1", "call_id": "p-1", "caller": common::fixtures::LINE,
                        "callee": "01088886666", "start": "2026-11-20T10:00:00+08:00"}),
            )
            .await;
        assert_eq!(st, 200, "{}: {v}", e.name);
        // 100 minutes from the allowance, then 10.00 pays 66 minutes at 0.15 (9.90).
        assert_eq!(v["max_usage_seconds"], 6000 + 66 * 60, "{}: {v}", e.name);
        assert_eq!(v["limited_by"], "balance", "{v}");
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_call_that_never_ends_is_swept_and_charged_the_maximum_once() {
    for e in common::engines().await {
        let s = &e.store;
        let t = acme(s).await;
        let srv = Server::start(s, |c| c.max_call_duration = Duration::from_secs(3600)).await;
        let now = jiff::Timestamp::now();
        let old = rfc3339(now - jiff::SignedDuration::from_hours(2));
        let recent = rfc3339(now - jiff::SignedDuration::from_mins(10));
        for (id, start) in [("lost", &old), ("live", &recent)] {
            let (st, v) = srv
                .post_json(
                    START,
                    &json!({"source": "fs1", "call_id": id, "caller": PAYER,
                            "callee": "01088886666", "start": start}),
                )
                .await;
            assert_eq!(st, 200, "{v}");
        }
        // The call open for 2 hours is charged for the maximum, 1 hour: 60 × 0.12 = 7.20.
        let r = toll_server::sweeper::sweep(&srv.state, now).await.unwrap();
        assert_eq!((r.calls, r.charged), (1, 1), "{}: {r:?}", e.name);
        assert_eq!(balance(s, &t, "a1").await, m("92.80"), "{}", e.name);
        let cdrs = s
            .cdrs(
                t.id,
                &CdrQuery {
                    from_ms: 0,
                    to_ms: i64::MAX,
                    limit: 10,
                    ..CdrQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(cdrs.len(), 1, "{}", e.name);
        let c = &cdrs[0];
        assert!(c.swept, "{}: {c:?}", e.name);
        assert_eq!((c.record_id.as_str(), c.amount), ("lost", m("7.20")));
        assert_eq!(c.end_ms.unwrap() - c.start_ms, 3_600_000);
        // A second sweep finds nothing; the late real end is a duplicate.
        let r = toll_server::sweeper::sweep(&srv.state, now).await.unwrap();
        assert_eq!(r.calls, 0, "{}: {r:?}", e.name);
        let (st, v) = srv
            .post_json(
                END,
                &json!({"source": "fs1", "call_id": "lost", "end": rfc3339(now), "billsec": 7000}),
            )
            .await;
        assert_eq!((st, v["outcome"].as_str()), (200, Some("duplicate")), "{v}");
        assert_eq!(balance(s, &t, "a1").await, m("92.80"), "{}", e.name);
        // The live call is still open.
        assert_eq!(s.open_call_count(t.id).await.unwrap(), 1, "{}", e.name);
        srv.stop().await;
    }
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    for e in common::engines().await {
        let s = &e.store;
        acme(s).await;
        let srv = Server::start(s, |_| {}).await;
        for path in ["/healthz", "/readyz"] {
            let r = srv.client.get(srv.at(path)).send().await.unwrap();
            assert_eq!(r.status(), 200, "{path}");
        }
        let (st, _) = srv
            .post_json(
                &format!("{CDRS}?source=pbx-bj"),
                &json!([rec("h1", PAYER, "01088886666", "61s")]),
            )
            .await;
        assert_eq!(st, 200);
        let start = rfc3339(jiff::Timestamp::now());
        srv.post_json(
            START,
            &json!({"source": "fs1", "call_id": "m-1", "caller": PAYER, "callee": "010", "start": start}),
        )
        .await;
        srv.post_json(
            END,
            &json!({"source": "fs1", "call_id": "m-2", "caller": "13700137000", "callee": "010",
                    "start": start, "end": start, "billsec": 10}),
        )
        .await;
        let r = srv.client.get(srv.at("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        for line in [
            "toll_ingest_records_total{tenant=\"acme\",stage=\"charged\"} 1",
            "toll_ingest_amount_micros_total{tenant=\"acme\",currency=\"CNY\"} 240000",
            "toll_open_calls{tenant=\"acme\"} 1",
            "toll_suspense_open{tenant=\"acme\",class=\"unknown_subscriber\"} 1",
            "toll_call_end_seconds_count 1",
            "toll_swept_calls_total{tenant=\"acme\"} 0",
        ] {
            assert!(text.contains(line), "{}: no {line:?} in\n{text}", e.name);
        }
        srv.stop().await;
    }
}
