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

static SWEPT: std::sync::Once = std::sync::Once::new();

/// Drops test schemas older than an hour (left by earlier runs), once per test process: runs
/// never share schemas, and the shared server does not fill up with them.
async fn sweep_old_schemas(url: &str) {
    let Ok(pool) = sqlx::PgPool::connect(url).await else {
        return;
    };
    let cutoff = jiff::Timestamp::now().as_millisecond() - 3_600_000;
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT schema_name::text FROM information_schema.schemata \
         WHERE schema_name LIKE 'toll\\_test\\_%'",
    )
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    for (name,) in names {
        let made = name.split('_').nth(3).and_then(|ms| ms.parse::<i64>().ok());
        if made.is_some_and(|ms| ms < cutoff) {
            let sql = format!("DROP SCHEMA IF EXISTS {name} CASCADE");
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
        }
    }
    pool.close().await;
}

/// A fresh migrated PostgreSQL schema, when `TOLL_TEST_DATABASE_URL` is set.
pub async fn postgres() -> Option<Store> {
    let url = std::env::var("TOLL_TEST_DATABASE_URL").ok()?;
    let mut first = false;
    SWEPT.call_once(|| first = true);
    if first {
        sweep_old_schemas(&url).await;
    }
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
