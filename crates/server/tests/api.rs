#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The REST API over real HTTP against `toll_server::serve` on port 0, on SQLite and (with
//! `TOLL_TEST_DATABASE_URL`) PostgreSQL: signing in and out, lockout, API keys and their scopes,
//! tariff upload / versions / activation, rating and authorisation with exact amounts, the
//! audit log, `Idempotency-Key`, and — walking every route of the router read from the OpenAPI
//! document — 401 for anonymous requests, each role's exact permissions, and tenant isolation.

#[path = "../../store/tests/common/mod.rs"]
mod common;
mod common_server;

use std::io::Write as _;

use common_server::{PASSWORD, Server, Session, TARIFF, people, read};
use serde_json::{Value, json};
use toll_server::access::{Perm, role_allows};
use toll_server::api::route_table;
use toll_store::users::Role;

fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default();
        for (name, text) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(text.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }
    buf.into_inner()
}

async fn upload_toml(s: &Session, code: &str, text: &str) -> (u16, Value) {
    read(
        s.req("POST", &format!("/api/v1/tariffs?code={code}"))
            .header("content-type", "application/toml")
            .body(text.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn call(usage: &str) -> Value {
    json!({
        "tenant": "acme",
        "category": "call",
        "subject": "13800138000",
        "destination": "+86 139 0013 9000",
        "start": "2026-11-23T10:00:00+08:00",
        "usage": usage,
    })
}

#[tokio::test]
async fn sign_in_out_lockout_and_keys() {
    for e in common::engines().await {
        people(&e.store).await;
        let srv = Server::start(&e.store, |_| {}).await;
        let anon = reqwest::Client::new();

        // Wrong password and unknown login look the same.
        for login in ["operator", "nobody"] {
            let r = anon
                .post(srv.at("/api/v1/session"))
                .json(&json!({"login": login, "password": "wrong password"}))
                .send()
                .await
                .unwrap();
            let (st, body) = read(r).await;
            assert_eq!(
                (st, body["code"].as_str()),
                (401, Some("bad_credentials")),
                "{}",
                e.name
            );
        }
        let op = Session::login(&srv, "operator").await;
        let (st, me) = op.get("/api/v1/me").await;
        assert_eq!(st, 200);
        assert_eq!(me["role"], "operator");
        assert_eq!(me["tenant"], "acme");
        assert_eq!(me["actor"], "user:operator");
        assert!(
            me["permissions"]
                .as_array()
                .unwrap()
                .contains(&json!("tariff_write"))
        );
        assert!(
            !me["permissions"]
                .as_array()
                .unwrap()
                .contains(&json!("plan_approve"))
        );
        let (st, _) = read(op.req("DELETE", "/api/v1/session").send().await.unwrap()).await;
        assert_eq!(st, 204);
        let (st, body) = op.get("/api/v1/me").await;
        assert_eq!((st, body["code"].as_str()), (401, Some("unauthenticated")));

        // Five failures in a row lock the user, even with the right password afterwards.
        for _ in 0..5 {
            let r = anon
                .post(srv.at("/api/v1/session"))
                .json(&json!({"login": "approver", "password": "guess guess"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
        let r = anon
            .post(srv.at("/api/v1/session"))
            .json(&json!({"login": "approver", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("retry-after").is_some());
        let (st, body) = read(r).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (429, Some("too_many_attempts"))
        );

        // An API key: shown once, scoped, revocable; never above its creator.
        let admin = Session::login(&srv, "admin").await;
        let (st, key) = admin
            .post(
                "/api/v1/api-keys",
                &json!({"name": "switch", "role": "operator", "scopes": ["rate"], "expires_in_days": 30}),
            )
            .await;
        assert_eq!(st, 201, "{key}");
        let secret = key["key"].as_str().unwrap().to_string();
        assert!(secret.starts_with("toll_"));
        let (_, keys) = admin.get("/api/v1/api-keys").await;
        assert!(
            !keys.to_string().contains(&secret[14..]),
            "a listed key shows its secret"
        );
        let with_key = |path: &str| anon.get(srv.at(path)).bearer_auth(&secret);
        let (st, me) = read(with_key("/api/v1/me").send().await.unwrap()).await;
        assert_eq!((st, me["role"].as_str()), (200, Some("operator")));
        let (st, body) = read(with_key("/api/v1/tariffs").send().await.unwrap()).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (403, Some("forbidden")),
            "the rate scope reads no tariffs"
        );
        let (st, _) = read(
            anon.post(srv.at("/api/v1/rate"))
                .bearer_auth(&secret)
                .json(&call("60s"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(st, 409, "rating is allowed (no tariff is active yet)");
        let id = key["info"]["id"].as_i64().unwrap();
        let (st, _) = read(
            admin
                .req("DELETE", &format!("/api/v1/api-keys/{id}"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(st, 200);
        let (st, _) = read(with_key("/api/v1/me").send().await.unwrap()).await;
        assert_eq!(st, 401, "a revoked key");
        let (st, _) = read(
            anon.get(srv.at("/api/v1/me"))
                .bearer_auth("toll_aaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(st, 401, "a made-up key");

        let op = Session::login(&srv, "operator").await;
        let (st, body) = op
            .post(
                "/api/v1/api-keys",
                &json!({"name": "x", "role": "admin", "scopes": ["read"]}),
            )
            .await;
        assert_eq!(st, 403, "operators manage no keys: {body}");
        let (st, body) = admin
            .post(
                "/api/v1/api-keys",
                &json!({"name": "x", "role": "admin", "scopes": ["all"]}),
            )
            .await;
        assert_eq!((st, body["field"].as_str()), (400, Some("scopes[0]")));
        srv.stop().await;
    }
}

#[tokio::test]
async fn tariffs_upload_activate_rate_authorize_and_audit() {
    for e in common::engines().await {
        people(&e.store).await;
        let srv = Server::start(&e.store, |_| {}).await;
        let op = Session::login(&srv, "operator").await;

        // A tariff with errors: refused, each error with file, line and column; nothing stored.
        let broken = TARIFF
            .replace("rate = \"0.10\"", "rate = \"ten\"")
            .replace("\"13\"", "\"1x3\"");
        let (st, body) = upload_toml(&op, "cn", &broken).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (422, Some("invalid_tariff")),
            "{body}"
        );
        let errors = body["errors"].as_array().unwrap();
        assert!(errors.len() >= 2, "{body}");
        for err in errors {
            assert_eq!(err["file"], "tariff.toml");
            assert!(
                err["line"].as_u64().unwrap() > 0 && err["reason"].is_string(),
                "{err}"
            );
        }
        let (_, list) = op.get("/api/v1/tariffs").await;
        assert_eq!(list, json!([]));

        let (st, up) = upload_toml(&op, "cn", TARIFF).await;
        assert_eq!(st, 201, "{up}");
        assert_eq!(up["tariff"]["version"], 1);
        assert_eq!(up["tariff"]["format"], "toll");
        assert_eq!(up["tariff"]["summary"]["prefixes"], 2);
        assert_eq!(up["tariff"]["active"], false);
        // Rating before activation: no active tariff.
        let (st, body) = op.post("/api/v1/rate", &call("150s")).await;
        assert_eq!((st, body["code"].as_str()), (409, Some("no_active_tariff")));
        let (st, t) = op
            .post("/api/v1/tariffs/cn/versions/1/activate", &json!({}))
            .await;
        assert_eq!((st, t["active"].as_bool()), (200, Some(true)), "{t}");

        // 150 s to a mobile at 0.10/min in 6 s steps: 0.25 exactly.
        let (st, r) = op.post("/api/v1/rate", &call("150s")).await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["cost"], "0.25");
        assert_eq!(r["destination_id"], "CN_MOBILE");
        assert_eq!(r["matched_prefix"], "13");
        assert_eq!(r["pieces"].as_array().unwrap().len(), 1);
        let (st, body) = op.post("/api/v1/rate", &json!({"category": "call"})).await;
        assert_eq!(st, 400, "{body}");
        let mut bad = call("150s");
        bad["start"] = json!("yesterday");
        let (st, body) = op.post("/api/v1/rate", &bad).await;
        assert_eq!((st, body["field"].as_str()), (400, Some("start")), "{body}");
        let mut unknown = call("60s");
        unknown["destination"] = json!("+44 20 7946 0000");
        let (st, body) = op.post("/api/v1/rate", &unknown).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (422, Some("unratable")),
            "{body}"
        );

        // 0.05 at 0.10/min pays 30 s.
        let mut auth = call("1h");
        auth["balance"] = json!("0.05");
        let (st, a) = op.post("/api/v1/authorize", &auth).await;
        assert_eq!(st, 200, "{a}");
        assert_eq!(a["max_usage"], "30s");
        assert_eq!(a["limited_by"], "balance");

        // A second version as a zipped folder; activating it retires the first.
        let v2 = TARIFF.replace("rate = \"0.10\"", "rate = \"0.20\"");
        let r = op
            .req("POST", "/api/v1/tariffs?code=cn")
            .header("content-type", "application/zip")
            .body(zip_of(&[
                ("cn/tariff.toml", &v2),
                ("__MACOSX/._x.csv", "junk"),
            ]))
            .send()
            .await
            .unwrap();
        let (st, up) = read(r).await;
        assert_eq!(
            (st, up["tariff"]["version"].as_i64()),
            (201, Some(2)),
            "{up}"
        );
        let (st, _) = op
            .post("/api/v1/tariffs/cn/versions/2/activate", &json!({}))
            .await;
        assert_eq!(st, 200);
        let (_, r) = op.post("/api/v1/rate", &call("150s")).await;
        assert_eq!(r["cost"], "0.5");
        let (_, list) = op.get("/api/v1/tariffs").await;
        let actives: Vec<bool> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["active"].as_bool().unwrap())
            .collect();
        assert_eq!(actives, vec![false, true]);
        let (st, files) = op.get("/api/v1/tariffs/cn/versions/2/files").await;
        assert_eq!(st, 200);
        assert_eq!(files[0]["name"], "tariff.toml");
        assert!(files[0]["text"].as_str().unwrap().contains("0.20"));
        let r = op
            .req("POST", "/api/v1/tariffs?code=cn")
            .header("content-type", "application/zip")
            .body("not a zip")
            .send()
            .await
            .unwrap();
        assert_eq!(read(r).await.0, 400);
        let r = op
            .req("POST", "/api/v1/tariffs?code=cn")
            .header("content-type", "image/png")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(read(r).await.0, 415);

        // Metrics: per-route latency (by the route's pattern) and rating latency.
        let metrics = reqwest::get(srv.at("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let count = |series: &str| -> u64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0)
        };
        // Rated: 150 s on v1, the UK (unratable), the 1 h authorisation, 150 s on v2; the bad
        // bodies and the call before activation never reached the tariff.
        assert_eq!(count("toll_rating_seconds_count "), 4, "{metrics}");
        assert_eq!(
            count(
                "toll_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/rate\",status=\"2xx\"} "
            ),
            2
        );
        assert_eq!(
            count(
                "toll_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/rate\",status=\"4xx\"} "
            ),
            4
        );
        assert_eq!(
            count(
                "toll_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/tariffs/{code}/versions/{version}/activate\",status=\"2xx\"} "
            ),
            2
        );

        // The audit log: uploads and activations, by whom, newest first.
        let auditor = Session::login(&srv, "auditor").await;
        let (st, log) = auditor.get("/api/v1/audit?limit=3").await;
        assert_eq!(st, 200);
        let items = log["items"].as_array().unwrap();
        let actions: Vec<&str> = items
            .iter()
            .map(|i| i["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            vec!["tariff.activate", "tariff.upload", "tariff.activate"]
        );
        assert!(items.iter().all(|i| i["actor"] == "user:operator"));
        assert_eq!(items[0]["before"]["active"], "cn v1");
        assert_eq!(items[0]["after"]["active"], "cn v2");
        let next = log["next"].as_i64().unwrap();
        let (_, rest) = auditor.get(&format!("/api/v1/audit?before={next}")).await;
        let rest: Vec<&str> = rest["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["action"].as_str().unwrap())
            .collect();
        assert_eq!(rest, vec!["tariff.upload"]);
        srv.stop().await;
    }
}

#[tokio::test]
async fn idempotency_key_replays_the_first_reply() {
    for e in common::engines().await {
        people(&e.store).await;
        let srv = Server::start(&e.store, |_| {}).await;
        let op = Session::login(&srv, "operator").await;
        let send = |key: &str, text: &str| {
            op.req("POST", "/api/v1/tariffs?code=cn")
                .header("content-type", "application/toml")
                .header("idempotency-key", key)
                .body(text.to_string())
        };
        let first = send("k-1", TARIFF).send().await.unwrap();
        assert!(first.headers().get("idempotent-replayed").is_none());
        let (st, a) = read(first).await;
        assert_eq!(st, 201);
        let again = send("k-1", TARIFF).send().await.unwrap();
        assert_eq!(again.headers()["idempotent-replayed"], "true");
        let (st, b) = read(again).await;
        assert_eq!((st, &b), (201, &a), "the same reply");
        let (_, list) = op.get("/api/v1/tariffs").await;
        assert_eq!(list.as_array().unwrap().len(), 1, "uploaded once");
        let (st, body) = read(send("k-1", "name = \"other\"").send().await.unwrap()).await;
        assert_eq!(
            (st, body["code"].as_str()),
            (422, Some("idempotency_key_reused"))
        );
        let (st, _) = read(send("k-2", TARIFF).send().await.unwrap()).await;
        assert_eq!(st, 201, "another key is another request");
        srv.stop().await;
    }
}

/// A path of the route table with its parameters filled in.
fn concrete(path: &str) -> String {
    path.replace("{code}", "cn")
        .replace("{version}", "1")
        .replace("{id}", "1")
}

#[tokio::test]
async fn every_route_refuses_strangers_and_gives_each_role_exactly_its_permissions() {
    for e in common::engines().await {
        people(&e.store).await;
        let srv = Server::start(&e.store, |_| {}).await;
        let anon = reqwest::Client::new();
        let doc: Value = anon
            .get(srv.at("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut routes = route_table(&doc);
        // Signing out ends the session the walk uses: last.
        routes.sort_by_key(|r| {
            (
                r.path == "/api/v1/session" && r.method == "DELETE",
                r.path.clone(),
            )
        });
        assert!(routes.len() >= 14, "{routes:?}");

        // Something to find: acme's tariff cn v1 and an API key with id 1.
        let op = Session::login(&srv, "operator").await;
        assert_eq!(upload_toml(&op, "cn", TARIFF).await.0, 201);

        for r in &routes {
            let path = concrete(&r.path);
            let m = reqwest::Method::from_bytes(r.method.as_bytes()).unwrap();
            let res = anon
                .request(m, srv.at(&path))
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let (st, body) = read(res).await;
            match &r.perm {
                None => assert_ne!(st, 401, "{} {path} is public: {body}", r.method),
                Some(_) => assert_eq!(st, 401, "anonymous {} {path}: {body}", r.method),
            }
        }
        let perms: std::collections::HashMap<String, Perm> = toll_server::access::ALL_PERMS
            .iter()
            .map(|p| {
                (
                    serde_json::to_value(p)
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_string(),
                    *p,
                )
            })
            .collect();
        for role in Role::ALL {
            let s = Session::login(&srv, role.as_str()).await;
            for r in &routes {
                let Some(perm) = &r.perm else { continue };
                let perm = perms[perm];
                let path = concrete(&r.path);
                let (st, body) = read(
                    s.req(&r.method, &path)
                        .json(&json!({}))
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                if role_allows(role, perm) {
                    assert!(
                        st != 401 && st != 403,
                        "{role} may {perm:?}: {} {path} gave {st} {body}",
                        r.method
                    );
                } else {
                    assert_eq!(
                        (st, body["code"].as_str()),
                        (403, Some("forbidden")),
                        "{role} may not {perm:?}: {} {path}",
                        r.method
                    );
                }
            }
        }

        // Tenant isolation: beta's admin sees none of acme's objects and cannot tell they exist.
        let beta = Session::login(&srv, "beta-admin").await;
        let (_, list) = beta.get("/api/v1/tariffs").await;
        assert_eq!(list, json!([]));
        let (st, body) = beta.get("/api/v1/tariffs/cn/versions/1").await;
        assert_eq!((st, body["code"].as_str()), (404, Some("not_found")));
        let (st, _) = beta.get("/api/v1/tariffs/cn/versions/1/files").await;
        assert_eq!(st, 404);
        let (st, _) = beta
            .post("/api/v1/tariffs/cn/versions/1/activate", &json!({}))
            .await;
        assert_eq!(st, 404);
        let (_, users) = beta.get("/api/v1/users").await;
        assert_eq!(users.as_array().unwrap().len(), 1);
        let (_, log) = beta.get("/api/v1/audit").await;
        assert!(
            log["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|i| !i.to_string().contains("cn v1"))
        );
        let (st, _) = op.get("/api/v1/audit").await;
        assert_eq!(st, 403, "operators read no audit log");
        srv.stop().await;
    }
}

#[tokio::test]
async fn a_tariff_larger_than_json_bodies_may_be_uploaded() {
    let e = common::engines().await.remove(0);
    people(&e.store).await;
    let srv = Server::start(&e.store, |_| {}).await;
    let op = Session::login(&srv, "operator").await;
    // 3 MB: past axum's 2 MB default for bodies, within the server's upload limit.
    let mut big = String::from(TARIFF);
    let filler = "# a comment line of an operator's long tariff file, repeated to pass 2 MB\n";
    while big.len() < 3 << 20 {
        big.push_str(filler);
    }
    let (st, body) = upload_toml(&op, "big", &big).await;
    assert_eq!(st, 201, "{body}");
    srv.stop().await;
}
