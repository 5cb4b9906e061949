//! The behaviour suite's harness: every test runs on SQLite and, when `TOLL_TEST_DATABASE_URL`
//! is set (CI always sets it), on PostgreSQL too, each time in a fresh database (a new SQLite
//! file, a new PostgreSQL schema) so that runs never see each other's data.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use toll_store::Store;

pub mod fixtures;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, migrated store of one engine, plus what keeps it alive (the SQLite temp dir).
pub struct Fresh {
    pub store: Store,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
}

/// Fresh migrated stores for every engine available to this run.
pub async fn engines() -> Vec<Fresh> {
    let mut out = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("toll.db");
    let store = Store::connect(path.to_str().unwrap()).await.unwrap();
    store.migrate().await.unwrap();
    out.push(Fresh {
        store,
        name: "sqlite",
        _dir: Some(dir),
    });
    if let Some(pg) = postgres().await {
        out.push(Fresh {
            store: pg,
            name: "postgres",
            _dir: None,
        });
    }
    out
}

/// A fresh migrated PostgreSQL schema, when `TOLL_TEST_DATABASE_URL` is set.
pub async fn postgres() -> Option<Store> {
    let url = std::env::var("TOLL_TEST_DATABASE_URL").ok()?;
    let schema = format!(
        "toll_test_{}_{}_{}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let store = Store::connect_postgres_schema(&url, &schema).await.unwrap();
    store.migrate().await.unwrap();
    Some(store)
}
