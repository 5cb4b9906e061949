#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OpenAPI document is a contract: it is compared with the committed snapshot
//! (`tests/snapshots/openapi.json`), so any change to a route, a schema or a permission shows up
//! in review as a diff of that file. After an intended change, rewrite it with
//! `UPDATE_SNAPSHOTS=1 cargo test -p toll-server --test openapi_snapshot` and commit it.

#[path = "../../store/tests/common/mod.rs"]
mod common;
mod common_server;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/openapi.json");

#[tokio::test]
async fn the_openapi_document_matches_its_snapshot() {
    let e = common::engines().await.remove(0);
    let srv = common_server::Server::start(&e.store, |_| {}).await;
    let doc: serde_json::Value = reqwest::get(srv.at("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    srv.stop().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut served = serde_json::to_string_pretty(&doc).unwrap();
    served.push('\n');
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(std::path::Path::new(SNAPSHOT).parent().unwrap()).unwrap();
        std::fs::write(SNAPSHOT, &served).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(SNAPSHOT)
        .expect("no snapshot: run with UPDATE_SNAPSHOTS=1 and commit tests/snapshots/openapi.json");
    if committed != served {
        let first = committed
            .lines()
            .zip(served.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(served.lines().count()));
        panic!(
            "the OpenAPI document changed (first difference at line {}): review it, then \
             UPDATE_SNAPSHOTS=1 cargo test -p toll-server --test openapi_snapshot\n committed: {:?}\n served:    {:?}",
            first + 1,
            committed.lines().nth(first),
            served.lines().nth(first)
        );
    }
}
