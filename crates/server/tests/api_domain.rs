#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The REST API's domain endpoints over real HTTP, on SQLite and (with
//! `TOLL_TEST_DATABASE_URL`) PostgreSQL: a plan through maker–checker with its history, the
//! account list with search and pages, top-ups to the cent with their audit entry, a plan
//! change priced by its preview, CDR query and CSV after an upload, a suspense item fixed and
//! re-processed into a charge, and customers kept to their own account.

#[path = "../../store/tests/common/mod.rs"]
mod common;
mod common_server;

use common::fixtures::{active_plan, plan_toml};
use common_server::{PASSWORD, Server, Session, m, people, read};
use serde_json::{Value, json};
use toll_store::users::{NewUser, Role};

async fn put(s: &Session, path: &str, body: &Value) -> (u16, Value) {
    read(s.req("PUT", path).json(body).send().await.unwrap()).await
}

/// `path?k=v&…` with the values percent-encoded.
fn with_query(path: &str, q: &[(&str, &str)]) -> String {
    let enc = |v: &str| {
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    format!("{path}?{}", qs.join("&"))
}

async fn get_q(s: &Session, path: &str, q: &[(&str, &str)]) -> (u16, Value) {
    read(s.req("GET", &with_query(path, q)).send().await.unwrap()).await
}

fn codes(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_string())
        .collect()
}

/// A CDR in Toll's JSON form from pbx-bj.
fn rec(id: &str, caller: &str, callee: &str, start: &str, usage: &str) -> Value {
    json!({
        "source": "pbx-bj",
        "record_id": id,
        "caller": caller,
        "callee": callee,
        "start": start,
        "kind": "voice",
        "usage": usage,
        "disposition": "answered",
    })
}

#[tokio::test]
async fn a_plan_goes_through_maker_checker_with_its_history() {
    for e in common::engines().await {
        let n = e.name;
        people(&e.store).await;
        let srv = Server::start(&e.store, |_| {}).await;
        let admin = Session::login(&srv, "admin").await;
        let approver = Session::login(&srv, "approver").await;
        let op = Session::login(&srv, "operator").await;

        let def = json!({"definition": plan_toml("m100", "100")});
        let (st, v) = admin.post("/api/v1/plans", &def).await;
        assert_eq!(st, 201, "{n}: {v}");
        assert_eq!(
            (&v["code"], &v["version"], &v["status"], &v["author"]),
            (
                &json!("m100"),
                &json!(1),
                &json!("draft"),
                &json!("user:admin")
            )
        );
        let (st, v) = admin.post("/api/v1/plans", &def).await;
        assert_eq!((st, v["code"].as_str()), (409, Some("conflict")), "{n}");
        let (st, v) = admin
            .post("/api/v1/plans", &json!({"definition": "code = 1"}))
            .await;
        assert_eq!(st, 400, "{n}: {v}");
        // The TOML itself, as an author's file is uploaded.
        let (st, v) = read(
            admin
                .req("POST", "/api/v1/plans")
                .header("content-type", "application/toml")
                .body(plan_toml("m50", "50"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((st, v["code"].as_str()), (201, Some("m50")), "{n}: {v}");

        let (st, v) = admin.post("/api/v1/plans/m100/submit", &json!({})).await;
        assert_eq!((st, v["status"].as_str()), (200, Some("pending_approval")));
        // The author cannot check their own plan: maker–checker, a 422 that says so.
        let (st, v) = admin.post("/api/v1/plans/m100/approve", &json!({})).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (422, Some("maker_checker")),
            "{n}: {v}"
        );
        assert!(v["detail"].as_str().unwrap().contains("author"), "{v}");
        let (st, v) = admin.post("/api/v1/plans/m100/reject", &json!({})).await;
        assert_eq!((st, v["code"].as_str()), (422, Some("maker_checker")));
        let (st, _) = op.post("/api/v1/plans/m100/approve", &json!({})).await;
        assert_eq!(st, 403, "operators do not approve");

        let (st, v) = approver
            .post(
                "/api/v1/plans/m100/reject",
                &json!({"comment": "fee too high"}),
            )
            .await;
        assert_eq!((st, v["status"].as_str()), (200, Some("draft")), "{v}");
        let (st, v) = put(
            &admin,
            "/api/v1/plans/m100",
            &json!({"definition": plan_toml("m100", "99")}),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!((&v["version"], &v["status"]), (&json!(1), &json!("draft")));
        assert!(v["definition"].as_str().unwrap().contains("\"99\""));
        assert_eq!(
            admin.post("/api/v1/plans/m100/submit", &json!({})).await.0,
            200
        );
        let (st, v) = approver
            .post("/api/v1/plans/m100/approve", &json!({"comment": "ok"}))
            .await;
        assert_eq!((st, v["status"].as_str()), (200, Some("approved")), "{v}");
        let (st, v) = op.post("/api/v1/plans/m100/activate", &json!({})).await;
        assert_eq!((st, v["status"].as_str()), (200, Some("active")), "{v}");

        let (_, list) = op.get("/api/v1/plans").await;
        assert_eq!(
            list.as_array()
                .unwrap()
                .iter()
                .map(|p| (p["code"].as_str().unwrap(), p["status"].as_str().unwrap()))
                .collect::<Vec<_>>(),
            vec![("m100", "active"), ("m50", "draft")]
        );
        let (st, versions) = op.get("/api/v1/plans/m100").await;
        assert_eq!((st, versions.as_array().unwrap().len()), (200, 1));
        let (_, h) = op.get("/api/v1/plans/m100/history").await;
        let steps: Vec<(&str, &str, &str)> = h
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["action"].as_str().unwrap(),
                    t["actor"].as_str().unwrap(),
                    t["comment"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            steps,
            vec![
                ("create", "user:admin", ""),
                ("submit", "user:admin", ""),
                ("reject", "user:approver", "fee too high"),
                ("edit", "user:admin", ""),
                ("submit", "user:admin", ""),
                ("approve", "user:approver", "ok"),
                ("activate", "user:operator", ""),
            ],
            "{n}"
        );
        let (st, v) = op.get("/api/v1/plans/nope/history").await;
        assert_eq!((st, v["code"].as_str()), (404, Some("not_found")));
        let (_, log) = admin.get("/api/v1/audit").await;
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["action"] == "plan.approve"
                    && i["actor"] == "user:approver"
                    && i["after"]["status"] == "approved"),
            "{log}"
        );
        srv.stop().await;
    }
}

#[tokio::test]
async fn accounts_search_pages_top_ups_and_a_plan_change_priced_by_its_preview() {
    for e in common::engines().await {
        let n = e.name;
        people(&e.store).await;
        let t = e.store.tenant("acme").await.unwrap();
        let srv = Server::start(&e.store, |_| {}).await;
        let op = Session::login(&srv, "operator").await;
        let admin = Session::login(&srv, "admin").await;

        let (st, v) = op
            .post("/api/v1/customers", &json!({"code": "c2", "name": "李四"}))
            .await;
        assert_eq!(st, 201, "{n}: {v}");
        let (st, _) = op
            .post("/api/v1/customers", &json!({"code": "c2", "name": "x"}))
            .await;
        assert_eq!(st, 409);
        for (code, mode, limit, line) in [
            ("b1", "prepaid", None, "13700137000"),
            ("b2", "postpaid", Some("200"), "+86 137 0013 7001"),
            ("b3", "unlimited", None, "13700137002"),
        ] {
            let mut body = json!({"customer": "c2", "code": code, "mode": mode});
            if let Some(l) = limit {
                body["credit_limit"] = json!(l);
            }
            let (st, v) = op.post("/api/v1/accounts", &body).await;
            assert_eq!(st, 201, "{n}: {v}");
            let (st, v) = op
                .post(
                    &format!("/api/v1/accounts/{code}/subscribers"),
                    &json!({"number": line}),
                )
                .await;
            assert_eq!(st, 201, "{n}: {v}");
        }
        let (st, v) = op
            .post(
                "/api/v1/accounts",
                &json!({"customer": "c2", "code": "b4", "mode": "postpaid"}),
            )
            .await;
        assert_eq!((st, v["field"].as_str()), (400, Some("credit_limit")));

        // Pages in code order, each ending with the cursor of the next.
        let (_, p1) = get_q(&op, "/api/v1/accounts", &[("limit", "2")]).await;
        assert_eq!(
            (codes(&p1), &p1["next"]),
            (vec!["a1".into(), "a2".into()], &json!("a2"))
        );
        let (_, p2) = get_q(&op, "/api/v1/accounts", &[("limit", "2"), ("after", "a2")]).await;
        assert_eq!(
            (codes(&p2), &p2["next"]),
            (vec!["b1".into(), "b2".into()], &json!("b2"))
        );
        let (_, p3) = get_q(&op, "/api/v1/accounts", &[("limit", "2"), ("after", "b2")]).await;
        assert_eq!(codes(&p3), vec!["b3".to_string()]);
        assert!(p3.get("next").is_none(), "{p3}");
        // Search by customer name, part of a line, and a line as a switch writes it.
        let (_, s) = get_q(&op, "/api/v1/accounts", &[("q", "李四")]).await;
        assert_eq!(codes(&s), vec!["b1", "b2", "b3"]);
        let (_, s) = get_q(&op, "/api/v1/accounts", &[("q", "0137001")]).await;
        assert_eq!(codes(&s), vec!["b2"]);
        assert_eq!(s["items"][0]["lines"], json!(["13700137001"]));
        let (_, s) = get_q(&op, "/api/v1/accounts", &[("q", "+86 137 0013 7002")]).await;
        assert_eq!(codes(&s), vec!["b3"], "{n}");
        let (_, s) = get_q(&op, "/api/v1/accounts", &[("q", "B1")]).await;
        assert_eq!(codes(&s), vec!["b1"]);

        let (st, b2) = op.get("/api/v1/accounts/b2").await;
        assert_eq!(st, 200);
        assert_eq!(
            (
                &b2["mode"],
                &b2["credit_limit"],
                &b2["balance"],
                &b2["available"]
            ),
            (
                &json!("postpaid"),
                &json!("200.00"),
                &json!("0.00"),
                &json!("200.00")
            )
        );

        // A top-up, to the cent, once per reference, with its audit entry.
        let top = json!({"amount": "10.07", "reference": "alipay-1"});
        let (st, v) = op.post("/api/v1/accounts/b1/top-ups", &top).await;
        assert_eq!(st, 201, "{n}: {v}");
        assert_eq!(
            (&v["balance"], &v["duplicate"]),
            (&json!("10.07"), &json!(false))
        );
        let (st, v) = op.post("/api/v1/accounts/b1/top-ups", &top).await;
        assert_eq!(
            (st, &v["duplicate"], &v["balance"]),
            (200, &json!(true), &json!("10.07"))
        );
        assert_eq!(
            e.store.account(t.id, "b1").await.unwrap().balance,
            m("10.07")
        );
        for bad in [
            json!({"amount": "-1", "reference": "r"}),
            json!({"amount": "1e", "reference": "r"}),
            json!({"amount": "1"}),
        ] {
            let (st, v) = op.post("/api/v1/accounts/b1/top-ups", &bad).await;
            assert_eq!(st, 400, "{bad}: {v}");
        }
        let (st, _) = op.post("/api/v1/accounts/zz/top-ups", &top).await;
        assert_eq!(st, 404);
        // The same reference for another amount is another payment's id: refused, not posted.
        let (st, v) = op
            .post(
                "/api/v1/accounts/b1/top-ups",
                &json!({"amount": "10.08", "reference": "alipay-1"}),
            )
            .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (409, Some("key_reused")),
            "{n}: {v}"
        );
        let (_, log) = admin.get("/api/v1/audit").await;
        let tops: Vec<&Value> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["action"] == "account.top_up")
            .collect();
        assert_eq!(tops.len(), 1, "{log}");
        assert_eq!(
            (
                &tops[0]["entity_key"],
                &tops[0]["actor"],
                &tops[0]["before"]["balance"],
                &tops[0]["after"]["balance"]
            ),
            (
                &json!("b1"),
                &json!("user:operator"),
                &json!("0.00"),
                &json!("10.07")
            )
        );
        let (_, ledger) = op.get("/api/v1/accounts/b1/ledger").await;
        assert_eq!(ledger["items"].as_array().unwrap().len(), 1, "{ledger}");
        assert_eq!(ledger["items"][0]["amount"], "10.07");
        let (_, verify) = op.get("/api/v1/ledger/verify").await;
        assert_eq!(verify["intact"], true, "{verify}");

        // 100/month → 200/month on day 16 of a 30-day month: 15 days left.
        active_plan(&e.store, &t, "m100", "100").await;
        active_plan(&e.store, &t, "m200", "200").await;
        let (st, sub) = op
            .post(
                "/api/v1/accounts/a1/subscriptions",
                &json!({"plan": "m100", "lines": ["13800138000"], "start": "2026-11-01"}),
            )
            .await;
        assert_eq!(st, 201, "{n}: {sub}");
        let id = sub["id"].as_i64().unwrap();
        // a2 holds 0.05: a 100.00 plan is refused and nothing is written.
        let (st, v) = op
            .post(
                "/api/v1/accounts/a2/subscriptions",
                &json!({"plan": "m100", "lines": ["13900139000"], "start": "2026-11-01"}),
            )
            .await;
        assert_eq!(
            (st, v["code"].as_str()),
            (422, Some("insufficient_balance")),
            "{n}: {v}"
        );
        let (_, a2) = op.get("/api/v1/accounts/a2").await;
        assert_eq!(
            (&a2["balance"], &a2["subscriptions"]),
            (&json!("0.05"), &json!([]))
        );
        let voice = &sub["buckets"].as_array().unwrap()[0];
        assert_eq!(
            (&voice["usage"], &voice["included"], &voice["used"]),
            (&json!("voice"), &json!(6000), &json!(0))
        );
        let (_, a1) = op.get("/api/v1/accounts/a1").await;
        assert_eq!(a1["balance"], "0.00", "100.00 less the first month");
        assert_eq!(
            op.post(
                "/api/v1/accounts/a1/top-ups",
                &json!({"amount": "100", "reference": "pay-2"})
            )
            .await
            .0,
            201
        );
        let preview = format!("/api/v1/subscriptions/{id}/plan-change/preview");
        let (st, pv) = get_q(&op, &preview, &[("plan", "m200"), ("date", "2026-11-16")]).await;
        assert_eq!(st, 200, "{n}: {pv}");
        assert_eq!(
            (
                &pv["credit"],
                &pv["charge"],
                &pv["net"],
                &pv["days_in_period"],
                &pv["days_remaining"]
            ),
            (
                &json!("50.00"),
                &json!("100.00"),
                &json!("50.00"),
                &json!(30),
                &json!(15)
            ),
            "{pv}"
        );
        assert_eq!(
            (&pv["period_start"], &pv["period_end"]),
            (&json!("2026-11-01"), &json!("2026-12-01"))
        );
        // The preview changed nothing.
        assert_eq!(e.store.account(t.id, "a1").await.unwrap().balance, m("100"));
        let (_, changes) = op.get(&format!("/api/v1/subscriptions/{id}/changes")).await;
        assert_eq!(changes, json!([]));
        let (st, _) = get_q(&op, &preview, &[("plan", "m100"), ("date", "2026-11-16")]).await;
        assert_eq!(st, 422, "already on m100");

        let (st, c) = op
            .post(
                &format!("/api/v1/subscriptions/{id}/plan-change"),
                &json!({"plan": "m200", "date": "2026-11-16", "comment": "upgrade"}),
            )
            .await;
        assert_eq!(st, 200, "{n}: {c}");
        assert_eq!(
            (&c["credit"], &c["charge"], &c["effective"]),
            (&json!("50.00"), &json!("100.00"), &json!("now"))
        );
        assert_eq!(e.store.account(t.id, "a1").await.unwrap().balance, m("50"));
        let (_, changes) = op.get(&format!("/api/v1/subscriptions/{id}/changes")).await;
        assert_eq!(changes.as_array().unwrap().len(), 1);
        assert_eq!(changes[0]["effective_date"], "2026-11-16");
        let (_, s) = op.get(&format!("/api/v1/subscriptions/{id}")).await;
        assert_eq!(s["plan"], "m200");
        srv.stop().await;
    }
}

#[tokio::test]
async fn cdrs_are_queried_and_exported_and_a_fixed_suspense_item_is_charged() {
    for e in common::engines().await {
        let n = e.name;
        people(&e.store).await;
        let t = e.store.tenant("acme").await.unwrap();
        e.store.create_customer(t.id, "c2", "李四").await.unwrap();
        e.store
            .create_account(t.id, "c2", "b1", toll_store::accounts::AccountMode::Prepaid)
            .await
            .unwrap();
        e.store
            .add_subscriber(t.id, "b1", "13700137000")
            .await
            .unwrap();
        e.store
            .top_up(t.id, "b1", m("10"), "pay-b1", "")
            .await
            .unwrap();
        // Two rows per CSV export: the bound and its cursor are seen with three records.
        let srv = Server::start(&e.store, |c| c.csv_export_rows = 2).await;
        let op = Session::login(&srv, "operator").await;

        // 61 s to a Beijing fixed line: two started minutes at 0.12; 30 s to a mobile at
        // 0.10/min in 6 s steps: 0.05; a caller that is no line of ours: suspended.
        let batch = json!([
            rec(
                "r1",
                "13700137000",
                "01088886666",
                "2026-11-23T10:00:00+08:00",
                "61s"
            ),
            rec(
                "r2",
                "13700137000",
                "13912345678",
                "2026-11-23T11:00:00+08:00",
                "30s"
            ),
            rec(
                "r3",
                "13600136000",
                "01088886666",
                "2026-11-23T12:00:00+08:00",
                "60s"
            ),
        ]);
        let (st, r) = op.post("/api/v1/cdrs?source=pbx-bj", &batch).await;
        assert_eq!(st, 200, "{n}: {r}");
        assert_eq!(
            (&r["records"], &r["charged"], &r["suspended"], &r["amount"]),
            (&json!(3), &json!(2), &json!(1), &json!("0.29")),
            "{r}"
        );
        assert_eq!(
            e.store.account(t.id, "b1").await.unwrap().balance,
            m("9.71")
        );
        let (st, v) = op.post("/api/v1/cdrs", &batch).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("source")));

        let (_, by_caller) = get_q(&op, "/api/v1/cdrs", &[("number", "13700137000")]).await;
        let amounts: Vec<&str> = by_caller["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["amount"].as_str().unwrap())
            .collect();
        assert_eq!(amounts, vec!["0.24", "0.05"], "{n}: {by_caller}");
        let (_, by_callee) = get_q(&op, "/api/v1/cdrs", &[("number", "01088886666")]).await;
        assert_eq!(by_callee["items"].as_array().unwrap().len(), 1);
        assert_eq!(by_callee["items"][0]["record_id"], "r1");
        let (_, window) = get_q(
            &op,
            "/api/v1/cdrs",
            &[
                ("account", "b1"),
                ("from", "2026-11-23T10:30:00+08:00"),
                ("to", "2026-11-24T00:00:00+08:00"),
            ],
        )
        .await;
        assert_eq!(window["items"].as_array().unwrap().len(), 1);
        assert_eq!(window["items"][0]["record_id"], "r2");
        let (_, p1) = get_q(&op, "/api/v1/cdrs", &[("account", "b1"), ("limit", "1")]).await;
        assert_eq!(p1["items"][0]["record_id"], "r1");
        let next = p1["next"].as_str().unwrap().to_string();
        let (_, p2) = get_q(
            &op,
            "/api/v1/cdrs",
            &[("account", "b1"), ("limit", "1"), ("after", &next)],
        )
        .await;
        assert_eq!(p2["items"][0]["record_id"], "r2");
        let (_, p3) = get_q(
            &op,
            "/api/v1/cdrs",
            &[
                ("account", "b1"),
                ("limit", "1"),
                ("after", p2["next"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(p3["items"], json!([]));
        let (st, _) = get_q(&op, "/api/v1/cdrs", &[("account", "zz")]).await;
        assert_eq!(st, 404);
        let (st, _) = get_q(&op, "/api/v1/cdrs", &[("from", "yesterday")]).await;
        assert_eq!(st, 400);

        // CSV: the same query, by path or by Accept.
        let r = op
            .req("GET", &with_query("/api/v1/cdrs.csv", &[("account", "b1")]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        assert!(
            r.headers().get("x-toll-next-cursor").is_none(),
            "two rows fit"
        );
        let text = r.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("event_key,source,record_id,caller,callee"),
            "{text}"
        );
        assert!(
            lines[1].contains(",r1,13700137000,01088886666,") && lines[1].contains(",0.24,"),
            "{text}"
        );
        assert!(
            lines[2].contains(",r2,") && lines[2].contains(",0.05,"),
            "{text}"
        );
        let by_accept = op
            .req("GET", &with_query("/api/v1/cdrs", &[("account", "b1")]))
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(by_accept, text);

        // The suspended record: fixed (its caller), re-processed, charged.
        let (_, q) = get_q(&op, "/api/v1/suspense", &[("class", "unknown_subscriber")]).await;
        let items = q["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{n}: {q}");
        let id = items[0]["id"].as_i64().unwrap();
        assert_eq!(items[0]["status"], "open");
        let path = format!("/api/v1/suspense/{id}");
        let (st, v) = put(&op, &path, &json!({"set": {"caller": "13700137000"}})).await;
        assert_eq!(st, 200, "{n}: {v}");
        assert!(v["record"].as_str().unwrap().contains("13700137000"), "{v}");
        let (st, v) = put(&op, &path, &json!({"set": {"start": "not a time"}})).await;
        assert_eq!(st, 400, "a bad fix is refused at once: {v}");
        let (st, v) = op.post(&format!("{path}/reprocess"), &json!({})).await;
        assert_eq!(st, 200, "{n}: {v}");
        assert_eq!(
            (&v["report"]["charged"], &v["report"]["amount"]),
            (&json!(1), &json!("0.12")),
            "{v}"
        );
        assert_eq!(v["item"]["status"], "resolved");
        assert_eq!(
            e.store.account(t.id, "b1").await.unwrap().balance,
            m("9.59")
        );
        let (_, all) = get_q(&op, "/api/v1/cdrs", &[("account", "b1")]).await;
        assert_eq!(all["items"].as_array().unwrap().len(), 3);
        // Three rows now: the export stops at two and says where the rest starts.
        let r = op
            .req("GET", &with_query("/api/v1/cdrs.csv", &[("account", "b1")]))
            .send()
            .await
            .unwrap();
        let cursor = r.headers()["x-toll-next-cursor"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(r.text().await.unwrap().lines().count(), 3);
        let rest = op
            .req(
                "GET",
                &with_query("/api/v1/cdrs.csv", &[("account", "b1"), ("after", &cursor)]),
            )
            .send()
            .await
            .unwrap();
        assert!(rest.headers().get("x-toll-next-cursor").is_none());
        let rest = rest.text().await.unwrap();
        let rest: Vec<&str> = rest.lines().collect();
        assert_eq!(rest.len(), 2, "{rest:?}");
        assert!(
            rest[1].contains(",r3,13700137000,") && rest[1].contains(",0.12,"),
            "{rest:?}"
        );
        let (st, _) = op.post(&format!("{path}/reprocess"), &json!({})).await;
        assert_eq!(st, 422, "a resolved item is not re-processed");
        let (st, _) = op.post(&format!("{path}/discard"), &json!({})).await;
        assert_eq!(st, 404, "only open items are discarded");
        let (_, open) = op.get("/api/v1/suspense").await;
        assert_eq!(open["items"], json!([]));

        // An Asterisk Master.csv as the switch writes it (Beijing time), through the same
        // pipeline; sent twice, charged once.
        let (src, dst, t0) = ("13700137000", "01088886666", "2026-11-23 15:00:00");
        let ast = format!(
            r#""","{src}","{dst}","from-internal","""x"" <{src}>","PJSIP/1001-0001","PJSIP/trunk-0002","Dial","PJSIP/{dst}@trunk","{t0}","{t0}","{t0}",61,61,"ANSWERED","BILLING","ast-1",""
"#
        );
        for (charged, duplicate) in [(1, 0), (0, 1)] {
            let (st, r) = read(
                op.req("POST", "/api/v1/cdrs?source=pbx-ast&format=asterisk")
                    .header("content-type", "text/csv")
                    .body(ast.clone())
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(st, 200, "{n}: {r}");
            assert_eq!(
                (&r["charged"], &r["duplicate"]),
                (&json!(charged), &json!(duplicate)),
                "{r}"
            );
        }
        assert_eq!(
            e.store.account(t.id, "b1").await.unwrap().balance,
            m("9.35")
        );
        let (_, log) = Session::login(&srv, "admin")
            .await
            .get("/api/v1/audit")
            .await;
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["action"] == "cdrs.upload"
                    && i["entity_key"] == "pbx-ast"
                    && i["after"]["report"]["charged"] == 1),
            "{log}"
        );
        srv.stop().await;
    }
}

#[tokio::test]
async fn customers_see_their_own_account_only() {
    for e in common::engines().await {
        let n = e.name;
        people(&e.store).await;
        let t = e.store.tenant("acme").await.unwrap();
        active_plan(&e.store, &t, "m30", "30").await;
        e.store.create_customer(t.id, "c2", "李四").await.unwrap();
        e.store
            .create_account(t.id, "c2", "b1", toll_store::accounts::AccountMode::Prepaid)
            .await
            .unwrap();
        e.store
            .add_subscriber(t.id, "b1", "13700137000")
            .await
            .unwrap();
        e.store
            .top_up(t.id, "b1", m("10"), "pay-b1", "")
            .await
            .unwrap();
        // A customer of tenant beta bound to an account code that is acme's.
        let beta = e.store.tenant("beta").await.unwrap();
        let hash = toll_server::secrets::hash_password(PASSWORD.into())
            .await
            .unwrap();
        e.store
            .create_user(
                beta.id,
                &NewUser {
                    login: "beta-customer",
                    display_name: "Beta customer",
                    password_hash: &hash,
                    role: Role::Customer,
                    account_code: Some("a1"),
                },
            )
            .await
            .unwrap();
        let srv = Server::start(&e.store, |_| {}).await;
        let op = Session::login(&srv, "operator").await;
        let (st, v) = op
            .post(
                "/api/v1/accounts/a1/subscriptions",
                &json!({"plan": "m30", "lines": ["13800138000"], "start": "2026-11-01"}),
            )
            .await;
        assert_eq!(st, 201, "{n}: {v}");
        let batch = json!([
            rec(
                "a",
                "13800138000",
                "01088886666",
                "2026-11-23T10:00:00+08:00",
                "61s"
            ),
            rec(
                "b",
                "13700137000",
                "01088886666",
                "2026-11-23T10:05:00+08:00",
                "61s"
            ),
        ]);
        let (st, r) = op.post("/api/v1/cdrs?source=pbx-bj", &batch).await;
        assert_eq!((st, &r["charged"]), (200, &json!(2)), "{r}");

        let me = Session::login(&srv, "customer").await;
        let (st, acct) = me.get("/api/v1/me/account").await;
        assert_eq!(st, 200, "{n}: {acct}");
        assert_eq!(
            (&acct["code"], &acct["balance"]),
            (&json!("a1"), &json!("70.00")),
            "{acct}"
        );
        let voice = acct["subscriptions"][0]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["usage"] == "voice")
            .unwrap();
        assert_eq!(voice["included"], 6000);
        let used = voice["used"].as_i64().unwrap();
        assert!(used >= 61, "the call came out of the allowance: {voice}");
        assert_eq!(used + voice["remaining"].as_i64().unwrap(), 6000);
        let (_, usage) = me.get("/api/v1/me/usage").await;
        let ids: Vec<&str> = usage["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["record_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["a"], "only their own calls: {usage}");
        assert_eq!(usage["items"][0]["amount"], "0.00");

        // Nothing of another account is reachable.
        for path in [
            "/api/v1/accounts/b1",
            "/api/v1/accounts",
            "/api/v1/cdrs",
            "/api/v1/accounts/b1/ledger",
        ] {
            let (st, v) = me.get(path).await;
            assert_eq!((st, v["code"].as_str()), (403, Some("forbidden")), "{path}");
        }
        let (st, _) = me
            .post(
                "/api/v1/accounts/b1/top-ups",
                &json!({"amount": "1", "reference": "x"}),
            )
            .await;
        assert_eq!(st, 403);
        let other = Session::login(&srv, "beta-customer").await;
        let (st, v) = other.get("/api/v1/me/account").await;
        assert_eq!(
            (st, v["code"].as_str()),
            (404, Some("not_found")),
            "{n}: {v}"
        );
        let (st, _) = other.get("/api/v1/me/usage").await;
        assert_eq!(st, 404);

        // A top-up request is kept for the operators; the wallet is untouched.
        let (st, req) = me
            .post(
                "/api/v1/me/top-up-requests",
                &json!({"amount": "50", "note": "微信支付"}),
            )
            .await;
        assert_eq!(st, 201, "{req}");
        assert_eq!(
            (&req["account"], &req["amount"], &req["actor"]),
            (&json!("a1"), &json!("50.00"), &json!("user:customer"))
        );
        let (st, _) = me
            .post("/api/v1/me/top-up-requests", &json!({"amount": "0"}))
            .await;
        assert_eq!(st, 400);
        let (_, list) = op.get("/api/v1/top-up-requests").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
        assert_eq!(
            (&list["items"][0]["account"], &list["items"][0]["note"]),
            (&json!("a1"), &json!("微信支付"))
        );
        assert_eq!(e.store.account(t.id, "a1").await.unwrap().balance, m("70"));
        let (st, _) = me.get("/api/v1/top-up-requests").await;
        assert_eq!(st, 403);
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_bill_run_makes_invoices_that_are_read_credited_and_kept_to_their_tenant_and_account() {
    for e in common::engines().await {
        let n = e.name;
        people(&e.store).await;
        let t = e.store.tenant("acme").await.unwrap();
        e.store.create_customer(t.id, "c2", "李四").await.unwrap();
        e.store
            .create_account(t.id, "c2", "b1", toll_store::accounts::AccountMode::Prepaid)
            .await
            .unwrap();
        e.store
            .add_subscriber(t.id, "b1", "13700137000")
            .await
            .unwrap();
        e.store
            .top_up(t.id, "b1", m("10"), "pay-b1", "")
            .await
            .unwrap();
        let srv = Server::start(&e.store, |_| {}).await;
        let op = Session::login(&srv, "operator").await;
        // 0.24 to a Beijing fixed line and 0.05 to a mobile, as in the CDR test above.
        let batch = json!([
            rec(
                "r1",
                "13700137000",
                "01088886666",
                "2026-11-23T10:00:00+08:00",
                "61s"
            ),
            rec(
                "r2",
                "13700137000",
                "13912345678",
                "2026-11-23T11:00:00+08:00",
                "30s"
            ),
            // The customer's line (a1) calls too; a2 makes no call in November.
            rec(
                "r3",
                common_server::PAYER,
                "13912345678",
                "2026-11-24T09:00:00+08:00",
                "30s"
            ),
        ]);
        let (st, r) = op.post("/api/v1/cdrs?source=pbx-bj", &batch).await;
        assert_eq!((st, &r["charged"]), (200, &json!(3)), "{n}: {r}");

        let (st, bad) = op
            .post("/api/v1/bill-runs", &json!({"period": "2026-13"}))
            .await;
        assert_eq!((st, bad["field"].as_str()), (400, Some("period")), "{bad}");
        let (st, run) = op
            .post("/api/v1/bill-runs", &json!({"period": "2026-11"}))
            .await;
        assert_eq!(st, 200, "{n}: {run}");
        // a2 was opened after November and had nothing in it: no empty invoice for it.
        assert_eq!(
            (&run["accounts"], &run["created"], &run["not_due"]),
            (&json!(3), &json!(2), &json!(1)),
            "{run}"
        );
        assert_eq!(run["first_number"], "INV-2026-000001");
        assert_eq!(run["last_number"], "INV-2026-000002");
        let (_, again) = op
            .post("/api/v1/bill-runs", &json!({"period": "2026-11"}))
            .await;
        assert_eq!(
            (&again["created"], &again["existing"]),
            (&json!(0), &json!(2))
        );

        let (st, page) = get_q(&op, "/api/v1/invoices", &[("account", "b1")]).await;
        assert_eq!(st, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{n}: {page}");
        assert_eq!(items[0]["total"], "0.29");
        let id = items[0]["id"].as_i64().unwrap();
        let (st, inv) = op.get(&format!("/api/v1/invoices/{id}")).await;
        assert_eq!(st, 200, "{inv}");
        assert_eq!(
            (&inv["status"], &inv["period_start"]),
            (&json!("finalized"), &json!("2026-11-01"))
        );
        let lines = inv["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 2, "{n}: two destinations: {inv}");
        assert!(
            lines
                .iter()
                .all(|l| l["kind"] == "usage" && l["count"] == 1)
        );
        let mut amounts: Vec<&str> = lines
            .iter()
            .map(|l| l["amount"].as_str().unwrap())
            .collect();
        amounts.sort_unstable();
        assert_eq!(amounts, ["0.05", "0.24"]);
        assert_eq!(inv["total_in_words"], "贰角玖分");

        // The invoice as a PDF (Chinese by default, English on request) and as a page.
        let res = op
            .req("GET", &format!("/api/v1/invoices/{id}/pdf?lang=en"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{n}");
        assert_eq!(res.headers()["content-type"], "application/pdf");
        let bytes = res.bytes().await.unwrap();
        assert!(bytes.starts_with(b"%PDF"), "{n}: a PDF");
        let res = op
            .req("GET", &format!("/api/v1/invoices/{id}/html"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let page = res.text().await.unwrap();
        assert!(
            page.contains("INV-2026-") && page.contains("贰角玖分"),
            "{n}: {page}"
        );
        let (st, bad) = op.get(&format!("/api/v1/invoices/{id}/pdf?lang=fr")).await;
        assert_eq!((st, bad["field"].as_str()), (400, Some("lang")));

        // Another tenant's admin cannot tell the invoice exists.
        let beta = Session::login(&srv, "beta-admin").await;
        let (st, _) = beta.get(&format!("/api/v1/invoices/{id}")).await;
        assert_eq!(st, 404, "{n}");
        let (_, list) = beta.get("/api/v1/invoices").await;
        assert_eq!(list["items"], json!([]));
        // The customer (account a1) sees a1's invoice and not b1's.
        let me = Session::login(&srv, "customer").await;
        let (st, mine) = me.get("/api/v1/me/invoices").await;
        assert_eq!(st, 200, "{mine}");
        let accounts: Vec<&str> = mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["account"].as_str().unwrap())
            .collect();
        assert_eq!(accounts, ["a1"], "{n}");
        let (st, _) = me.get(&format!("/api/v1/me/invoices/{id}")).await;
        assert_eq!(st, 404, "{n}: b1's invoice is not the customer's");
        let (st, _) = me.get(&format!("/api/v1/me/invoices/{id}/pdf")).await;
        assert_eq!(st, 404, "{n}");
        let own = mine["items"][0]["id"].as_i64().unwrap();
        let res = me
            .req("GET", &format!("/api/v1/me/invoices/{own}/pdf"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{n}: their own invoice's PDF");
        // The portal lists it, with the printed invoice and the PDF; b1's is not there.
        let res = me.req("GET", "/portal").send().await.unwrap();
        assert_eq!(res.status(), 200, "{n}");
        let page = res.text().await.unwrap();
        assert!(page.contains(r#"id="my-invoices""#), "{n}: {page}");
        assert!(
            page.contains(&format!(r#"href="/portal/invoices/{own}/document""#))
                && page.contains(&format!(r#"href="/portal/invoices/{own}/pdf""#)),
            "{n}: {page}"
        );
        assert!(!page.contains(&format!("/portal/invoices/{id}/")), "{n}");
        let res = me
            .req("GET", &format!("/portal/invoices/{own}/document"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{n}: the printed invoice");
        assert!(res.text().await.unwrap().contains("INV-2026-"));

        // A credit note gives the 0.29 back; a second one is refused.
        let (st, cn) = op
            .post(
                &format!("/api/v1/invoices/{id}/credit-note"),
                &json!({"reason": "disputed"}),
            )
            .await;
        assert_eq!(st, 201, "{n}: {cn}");
        assert_eq!(
            (&cn["number"], &cn["total"]),
            (&json!("CN-2026-000001"), &json!("-0.29"))
        );
        assert_eq!(e.store.account(t.id, "b1").await.unwrap().balance, m("10"));
        let (st, _) = op
            .post(
                &format!("/api/v1/invoices/{id}/credit-note"),
                &json!({"reason": "again"}),
            )
            .await;
        assert_eq!(st, 409, "{n}");
        let (st, _) = op
            .post(&format!("/api/v1/invoices/{id}/void"), &json!({}))
            .await;
        assert_eq!(st, 422, "{n}: a finalized invoice is credited, not voided");
        let admin = Session::login(&srv, "admin").await;
        let (_, log) = admin.get("/api/v1/audit").await;
        let actions: Vec<&str> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["action"].as_str().unwrap())
            .collect();
        assert!(
            actions.contains(&"invoice.credit") && actions.contains(&"bill_run"),
            "{actions:?}"
        );
        srv.stop().await;
    }
}

#[tokio::test]
async fn payments_settle_invoices_statements_add_up_and_a_signed_webhook_records_once() {
    const SECRET: &str = "whsec_test_secret";
    for e in common::engines().await {
        let n = e.name;
        people(&e.store).await;
        let t = e.store.tenant("acme").await.unwrap();
        e.store.create_customer(t.id, "c2", "李四").await.unwrap();
        e.store
            .create_account(
                t.id,
                "c2",
                "p1",
                toll_store::accounts::AccountMode::Postpaid {
                    credit_limit: m("100"),
                },
            )
            .await
            .unwrap();
        e.store
            .add_subscriber(t.id, "p1", "13700137000")
            .await
            .unwrap();
        let srv = Server::start(&e.store, |c| {
            c.stripe_webhook_secret = Some(SECRET.into());
        })
        .await;
        let op = Session::login(&srv, "operator").await;
        let batch = json!([
            rec(
                "r1",
                "13700137000",
                "01088886666",
                "2026-11-23T10:00:00+08:00",
                "61s"
            ),
            rec(
                "r2",
                "13700137000",
                "13912345678",
                "2026-11-23T11:00:00+08:00",
                "30s"
            ),
            // The customer's line (a1) calls too; a2 makes no call in November.
            rec(
                "r3",
                common_server::PAYER,
                "13912345678",
                "2026-11-24T09:00:00+08:00",
                "30s"
            ),
        ]);
        let (st, r) = op.post("/api/v1/cdrs?source=pbx-bj", &batch).await;
        assert_eq!((st, &r["charged"]), (200, &json!(3)), "{n}: {r}");
        let (st, _) = op
            .post("/api/v1/bill-runs", &json!({"period": "2026-11"}))
            .await;
        assert_eq!(st, 200);
        let (_, page) = get_q(&op, "/api/v1/invoices", &[("account", "p1")]).await;
        let id = page["items"][0]["id"].as_i64().unwrap();
        assert_eq!(page["items"][0]["total"], "0.29", "{n}");

        // 0.20 by bank transfer: part of the invoice; the same key again records nothing.
        let pay = json!({"method": "bank_transfer", "amount": "0.20", "reference": "ICBC-1"});
        let (st, p1) = op.post("/api/v1/accounts/p1/payments", &pay).await;
        assert_eq!(st, 201, "{n}: {p1}");
        assert_eq!(p1["allocations"][0]["amount"], "0.20");
        let (st, again) = op.post("/api/v1/accounts/p1/payments", &pay).await;
        assert_eq!((st, &again["duplicate"]), (200, &json!(true)), "{n}");
        let (st, bad) = op
            .post(
                "/api/v1/accounts/p1/payments",
                &json!({"method": "cheque", "amount": "1"}),
            )
            .await;
        assert_eq!((st, bad["field"].as_str()), (400, Some("method")));
        let (_, inv) = op.get(&format!("/api/v1/invoices/{id}")).await;
        assert_eq!(
            (&inv["status"], &inv["paid"]),
            (&json!("finalized"), &json!("0.20"))
        );

        // 0.50 through Stripe: the webhook is signed; the rest of the invoice is paid and 0.41
        // stays as credit. A forged signature is refused; a redelivery records nothing.
        let event = json!({
            "id": "evt_1", "object": "event", "type": "payment_intent.succeeded",
            "created": jiff::Timestamp::now().as_second(), "livemode": false,
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 50,
                "amount_received": 50, "currency": "cny", "status": "succeeded",
                "metadata": {"tenant": "acme", "account": "p1", "key": "portal-1"}}}
        })
        .to_string();
        let now = jiff::Timestamp::now().as_second();
        let hook = |sig: String| {
            srv.post("/api/v1/webhooks/stripe/acme")
                .header("stripe-signature", sig)
                .header("content-type", "application/json")
                .body(event.clone())
        };
        let forged = toll_payments::stripe::signature_header("whsec_other", event.as_bytes(), now);
        let (st, body) = read(hook(forged).send().await.unwrap()).await;
        assert_eq!(
            (st, body["field"].as_str()),
            (400, Some("Stripe-Signature")),
            "{n}"
        );
        let good = toll_payments::stripe::signature_header(SECRET, event.as_bytes(), now);
        let (st, ack) = read(hook(good.clone()).send().await.unwrap()).await;
        assert_eq!(
            (st, &ack["outcome"]),
            (200, &json!("recorded")),
            "{n}: {ack}"
        );
        let (_, ack) = read(hook(good).send().await.unwrap()).await;
        assert_eq!(ack["outcome"], "duplicate");
        let (_, inv) = op.get(&format!("/api/v1/invoices/{id}")).await;
        assert_eq!(
            (&inv["status"], &inv["paid"]),
            (&json!("paid"), &json!("0.29")),
            "{n}"
        );
        let (_, pays) = get_q(&op, "/api/v1/payments", &[("account", "p1")]).await;
        let methods: Vec<&str> = pays["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["method"].as_str().unwrap())
            .collect();
        assert_eq!(
            methods,
            ["provider:stripe", "bank_transfer"],
            "{n}: newest first"
        );

        // November's statement: nothing due before, 0.29 charged, 0.70 paid, 0.41 in credit.
        let (st, s) = get_q(
            &op,
            "/api/v1/accounts/p1/statement",
            &[("from", "2026-11-01"), ("to", "2026-12-01")],
        )
        .await;
        assert_eq!(st, 200, "{n}: {s}");
        assert_eq!(
            (&s["opening"], &s["charges"]),
            (&json!("0.00"), &json!("0.29")),
            "{s}"
        );
        // Payments are dated when received (now), after November: December's statement.
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
            .date();
        let (_, d) = get_q(
            &op,
            "/api/v1/accounts/p1/statement",
            &[
                ("from", "2026-12-01"),
                ("to", &today.tomorrow().unwrap().to_string()),
            ],
        )
        .await;
        assert_eq!(
            (&d["opening"], &d["payments"], &d["closing"]),
            (&json!("0.29"), &json!("0.70"), &json!("-0.41")),
            "{n}: {d}"
        );
        srv.stop().await;
    }
}
