//! Migrations that move data: a database written by an earlier version keeps every value
//! after `toll db migrate`. Each test stops the migrations before the one under test, writes
//! rows the way that earlier version did, then runs the rest. Foreign keys stay off throughout:
//! the rows under test are the only ones written, so what they point at does not exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::{Connection, Executor};

/// A bucket's definition as `buckets` keeps it after the migration.
type BucketDef = (i64, i64, i64, String, Option<String>, String, i64, i64, i64);

/// A SQLite database migrated up to `version` (foreign keys off), and the directory that
/// keeps it.
async fn old_sqlite(version: i64) -> (tempfile::TempDir, sqlx::SqliteConnection) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::migrate!("./migrations/sqlite")
        .run_to(version, &mut conn)
        .await
        .unwrap();
    conn.execute("PRAGMA foreign_keys = OFF").await.unwrap();
    (dir, conn)
}

/// A fresh PostgreSQL schema migrated up to `version`, with foreign keys skipped (they are
/// triggers: replica mode), when `TOLL_TEST_DATABASE_URL` is set; the schema's name for
/// [`drop_schema`].
async fn old_postgres(tag: &str, version: i64) -> Option<(sqlx::PgConnection, String)> {
    let url = std::env::var("TOLL_TEST_DATABASE_URL").ok()?;
    let schema = format!(
        "toll_test_{}_{}_{tag}",
        std::process::id(),
        jiff::Timestamp::now().as_millisecond()
    );
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema}; SET search_path TO {schema}"
    )))
    .await
    .unwrap();
    sqlx::migrate!("./migrations/postgres")
        .run_to(version, &mut conn)
        .await
        .unwrap();
    conn.execute("SET session_replication_role = replica")
        .await
        .unwrap();
    Some((conn, schema))
}

async fn drop_schema(mut conn: sqlx::PgConnection, schema: &str) {
    conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await
        .unwrap();
}

/// `0010_bucket_remaining`: what is left of each bucket moves to `bucket_remaining`, the
/// bucket's definition stays, and nothing else about it changes.
#[tokio::test]
async fn bucket_remaining_moves_out_of_buckets_sqlite() {
    let (_dir, mut conn) = old_sqlite(9).await;
    let migrator = sqlx::migrate!("./migrations/sqlite");
    conn.execute(
        "INSERT INTO buckets (id, tenant_id, subscription_id, usage, services, source, \
         starts_ms, expires_ms, initial, remaining) VALUES \
         (7, 1, 3, 'voice', NULL, 'base', 100, 200, 12000, 4500), \
         (9, 2, 4, 'data', 'wechat,douyin', 'pack', 100, 200, 5368709120, 0)",
    )
    .await
    .unwrap();
    migrator.run(&mut conn).await.unwrap();

    let moved: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT bucket_id, tenant_id, remaining FROM bucket_remaining ORDER BY bucket_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(moved, vec![(7, 1, 4500), (9, 2, 0)]);
    let kept: Vec<BucketDef> = sqlx::query_as(
        "SELECT id, tenant_id, subscription_id, usage, services, source, starts_ms, \
             expires_ms, initial FROM buckets ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        kept,
        vec![
            (
                7,
                1,
                3,
                "voice".into(),
                None,
                "base".into(),
                100,
                200,
                12000
            ),
            (
                9,
                2,
                4,
                "data".into(),
                Some("wechat,douyin".into()),
                "pack".into(),
                100,
                200,
                5368709120
            ),
        ]
    );
    // The column is gone and the index is back on the rebuilt table.
    let cols: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info('buckets')")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(!cols.iter().any(|(c,)| c == "remaining"), "{cols:?}");
    let index: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'buckets' \
         AND name = 'buckets_subscription'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(index.len(), 1);
    // A remaining quantity below zero is refused by the new table.
    assert!(
        conn.execute("UPDATE bucket_remaining SET remaining = -1 WHERE bucket_id = 7")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn bucket_remaining_moves_out_of_buckets_postgres() {
    let Some((mut conn, schema)) = old_postgres("migration", 9).await else {
        return;
    };
    let migrator = sqlx::migrate!("./migrations/postgres");
    conn.execute(
        "INSERT INTO buckets (id, tenant_id, subscription_id, usage, services, source, \
         starts_ms, expires_ms, initial, remaining) OVERRIDING SYSTEM VALUE VALUES \
         (7, 1, 3, 'voice', NULL, 'base', 100, 200, 12000, 4500), \
         (9, 2, 4, 'data', 'wechat,douyin', 'pack', 100, 200, 5368709120, 0)",
    )
    .await
    .unwrap();
    migrator.run(&mut conn).await.unwrap();
    let moved: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT bucket_id, tenant_id, remaining FROM bucket_remaining ORDER BY bucket_id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(moved, vec![(7, 1, 4500), (9, 2, 0)]);
    let cols: Vec<(String,)> = sqlx::query_as(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'buckets'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!cols.iter().any(|(c,)| c == "remaining"), "{cols:?}");
    assert!(
        conn.execute("UPDATE bucket_remaining SET remaining = -1 WHERE bucket_id = 7")
            .await
            .is_err()
    );
    drop_schema(conn, &schema).await;
}

/// `0011_charges_without_rowid` (SQLite only): every charge survives the rebuild, and the
/// table is keyed by (tenant, event key) alone.
#[tokio::test]
async fn charges_keep_every_row_without_rowid() {
    let (_dir, mut conn) = old_sqlite(10).await;
    let migrator = sqlx::migrate!("./migrations/sqlite");
    conn.execute(
        "INSERT INTO charges (tenant_id, event_key, subscriber_id, subscription_id, usage, \
         service, at_ms, quantity, covered, amount, first_seq) VALUES \
         (1, 'cdr-1', 5, 6, 'voice', NULL, 1000, 61, 60, 150000, 17), \
         (1, 'cdr-2', 5, NULL, 'data', 'wechat', 2000, 1024, 0, 0, NULL), \
         (2, 'cdr-1', 8, 9, 'sms', NULL, 3000, 1, 1, 0, NULL)",
    )
    .await
    .unwrap();
    migrator.run(&mut conn).await.unwrap();
    type Charge = (
        i64,
        String,
        i64,
        Option<i64>,
        String,
        Option<String>,
        i64,
        i64,
        i64,
        i64,
    );
    let rows: Vec<Charge> = sqlx::query_as(
        "SELECT tenant_id, event_key, subscriber_id, subscription_id, usage, service, at_ms, \
         quantity, covered, amount FROM charges ORDER BY tenant_id, event_key",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0],
        (
            1,
            "cdr-1".into(),
            5,
            Some(6),
            "voice".into(),
            None,
            1000,
            61,
            60,
            150000
        )
    );
    assert_eq!(rows[1].5.as_deref(), Some("wechat"));
    assert_eq!((rows[2].0, rows[2].1.as_str()), (2, "cdr-1"));
    let first_seq: Vec<(Option<i64>,)> =
        sqlx::query_as("SELECT first_seq FROM charges ORDER BY tenant_id, event_key")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(first_seq, vec![(Some(17),), (None,), (None,)]);
    let sql: (String,) =
        sqlx::query_as("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'charges'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(sql.0.ends_with("WITHOUT ROWID"), "{}", sql.0);
    // The key still refuses a second charge of the same event.
    assert!(
        conn.execute(
            "INSERT INTO charges (tenant_id, event_key, subscriber_id, usage, at_ms, quantity, \
             covered, amount) VALUES (1, 'cdr-1', 5, 'voice', 1, 1, 1, 0)"
        )
        .await
        .is_err()
    );
}

/// The old rows of one invoice with two lines (written out of order) and one tax, and of one
/// with none; `ov` is what makes an explicit id legal (`OVERRIDING SYSTEM VALUE` on
/// PostgreSQL).
fn old_invoice_rows(ov: &str) -> [String; 3] {
    [
        format!(
            "INSERT INTO invoices (id, tenant_id, account_id, kind, period, period_start, \
             period_end, status, number, currency, tax_mode, rounding, subtotal, tax_total, \
             total, created_ms) {ov} VALUES \
             (5, 1, 2, 'invoice', '2026-10', '2026-10-01', '2026-11-01', 'finalized', \
              'INV-2026-000001', 'CNY', 'exclusive', '*middle', 58420000, 3510000, 61930000, 1), \
             (6, 1, 3, 'invoice', '2026-10', '2026-10-01', '2026-11-01', 'draft', NULL, 'CNY', \
              'exclusive', '*middle', 0, 0, 0, 1)"
        ),
        "INSERT INTO invoice_lines (tenant_id, invoice_id, line_no, kind, label, detail, \
         quantity, unit, events, tax_name, tax_ppm, exact, amount) VALUES \
         (1, 5, 2, 'usage', '香港 Hong Kong', 'late', 720, 'seconds', 4, 'VAT', 60000, \
          415000, 420000), \
         (1, 5, 1, 'recurring_fee', '5G 畅享 58', NULL, NULL, NULL, NULL, 'VAT', 60000, \
          58000000, 58000000)"
            .into(),
        "INSERT INTO invoice_taxes (tenant_id, invoice_id, idx, name, ppm, base, tax) VALUES \
         (1, 5, 0, 'VAT', 60000, 58420000, 3510000)"
            .into(),
    ]
}

/// What `lines` and `taxes` must hold after the migration, per invoice id.
fn moved_invoice_documents() -> Vec<(i64, serde_json::Value, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            5,
            json!([
                [
                    "recurring_fee",
                    "5G 畅享 58",
                    null,
                    null,
                    null,
                    null,
                    "VAT",
                    60000,
                    58000000,
                    58000000
                ],
                [
                    "usage",
                    "香港 Hong Kong",
                    "late",
                    720,
                    "seconds",
                    4,
                    "VAT",
                    60000,
                    415000,
                    420000
                ]
            ]),
            json!([["VAT", 60000, 58420000, 3510000]]),
        ),
        (6, json!([]), json!([])),
    ]
}

/// Asserts that the invoices' `lines` and `taxes` are [`moved_invoice_documents`] (one body
/// for both engines' connections).
macro_rules! assert_moved_invoice_documents {
    ($conn:expr) => {{
        let rows: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, lines, taxes FROM invoices ORDER BY id")
                .fetch_all($conn)
                .await
                .unwrap();
        assert_eq!(parsed(rows), moved_invoice_documents());
    }};
}

fn parsed(rows: Vec<(i64, String, String)>) -> Vec<(i64, serde_json::Value, serde_json::Value)> {
    rows.into_iter()
        .map(|(id, l, x)| {
            (
                id,
                serde_json::from_str(&l).unwrap(),
                serde_json::from_str(&x).unwrap(),
            )
        })
        .collect()
}

/// `0013_invoice_documents`: an invoice's line and tax rows become the two JSON arrays of its
/// row, in line order, every field kept; the old tables are gone.
#[tokio::test]
async fn invoice_lines_move_into_the_invoice_row_sqlite() {
    let (_dir, mut conn) = old_sqlite(12).await;
    let migrator = sqlx::migrate!("./migrations/sqlite");
    for sql in old_invoice_rows("") {
        conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    migrator.run(&mut conn).await.unwrap();
    assert_moved_invoice_documents!(&mut conn);
    let left: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE name IN ('invoice_lines', 'invoice_taxes')",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn invoice_lines_move_into_the_invoice_row_postgres() {
    let Some((mut conn, schema)) = old_postgres("invoice_docs", 14).await else {
        return;
    };
    let migrator = sqlx::migrate!("./migrations/postgres");
    for sql in old_invoice_rows("OVERRIDING SYSTEM VALUE") {
        conn.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
    }
    conn.execute("SET session_replication_role = DEFAULT")
        .await
        .unwrap();
    migrator.run(&mut conn).await.unwrap();
    assert_moved_invoice_documents!(&mut conn);
    let left: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 \
         AND table_name IN ('invoice_lines', 'invoice_taxes')",
    )
    .bind(&schema)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(left.is_empty(), "{left:?}");
    drop_schema(conn, &schema).await;
}
