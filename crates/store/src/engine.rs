//! Connecting to an engine, migrating it, and running one body of code against either.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreError;

/// Connections per pool: SQLite allows one writer at a time anyway; PostgreSQL workers share a
/// server whose connection limit is the scarce resource.
const MAX_CONNECTIONS: u32 = 8;
/// How long a writer waits for SQLite's lock before reporting it busy.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Rows an SQLite connection's worker thread may run ahead of the task reading them. sqlx's
/// default of 50 hands a large result over in a thread switch per few rows.
const ROW_BUFFER: usize = 4096;

/// How often a background checkpoint may start (see [`checkpoint_in_background`]).
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies the WAL back into the database file on another connection, at most every
/// [`CHECKPOINT_EVERY`] and one at a time, so that writers rarely pay for it. Left to SQLite's
/// automatic checkpoint, the copy (and its fsync) ran inside the commit of whichever write
/// crossed the threshold: every few hundred call-end batches one took 40 ms instead of 4, the
/// tail of the call-end latency. A PASSIVE checkpoint takes no lock writers wait for; the
/// automatic one stays as the backstop (it finds little left to copy). The throttle is shared by
/// every SQLite store of the process, which is all it needs to be.
pub(crate) fn checkpoint_in_background(pool: &SqlitePool) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Instant;
    static RUNNING: AtomicBool = AtomicBool::new(false);
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let now_ms = u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let last = LAST_MS.load(Ordering::Relaxed);
    let every = u64::try_from(CHECKPOINT_EVERY.as_millis()).unwrap_or(u64::MAX);
    if (last != 0 && now_ms.saturating_sub(last) < every) || RUNNING.swap(true, Ordering::AcqRel) {
        return;
    }
    LAST_MS.store(now_ms, Ordering::Relaxed);
    /// Clears `RUNNING` however the task ends (a runtime shutting down drops it mid-way).
    struct Done;
    impl Drop for Done {
        fn drop(&mut self) {
            RUNNING.store(false, Ordering::Release);
        }
    }
    let done = Done;
    let pool = pool.clone();
    tokio::spawn(async move {
        let _done = done;
        // A checkpoint that fails (the database busy or closing) is simply the next one's
        // work, or the automatic checkpoint's: nothing is lost either way.
        let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await;
    });
}

/// Which engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A connection pool to one of the two engines. Cheap to clone.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens `url`: `postgres://…` (or `postgresql://…`) for PostgreSQL; `sqlite:…` or a plain
    /// file path for SQLite, created when missing, in WAL mode with `synchronous=NORMAL` (a
    /// committed transaction survives a process crash; only an OS crash may lose the last ones).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            Ok(Store::Postgres(Self::pg_pool(opts).await?))
        } else {
            let opts = if url.starts_with("sqlite:") {
                SqliteConnectOptions::from_str(url)?
            } else if url.contains("://") {
                return Err(StoreError::BadUrl(url.to_string()));
            } else {
                SqliteConnectOptions::new().filename(url)
            };
            let opts = opts
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                // Statement journals (every multi-row insert into a table with a unique key in
                // a longer transaction needs one) and sort spills stay in memory instead of
                // temp files: they never need to survive a crash.
                .pragma("temp_store", "memory")
                // Pages are read through a memory map and a 64 MiB page cache per connection
                // rather than a read() system call per page with SQLite's 2 MiB default cache:
                // a bill run or an import over a database of gigabytes spent a third of its
                // time in the kernel copying pages.
                .pragma("mmap_size", "2147418112")
                .pragma("cache_size", "-65536")
                // The WAL is copied back into the database file once it passes 10,000 pages
                // (40 MiB) rather than SQLite's 1,000: a 50,000-event charging batch writes
                // more than 1,000 pages, so every commit checkpointed, copying again pages
                // (bucket balances, balances) the next batch rewrites anyway. Measured on the
                // charging bench: about 5 % more events/s (docs/BENCHMARKS.md).
                .pragma("wal_autocheckpoint", "10000")
                .row_buffer_size(ROW_BUFFER)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .connect_with(opts)
                .await?;
            Ok(Store::Sqlite(pool))
        }
    }

    /// A PostgreSQL pool whose connections use `schema` (created when missing): how tests get a
    /// fresh, private database per run on a shared server.
    pub async fn connect_postgres_schema(url: &str, schema: &str) -> Result<Store, StoreError> {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::invalid(
                "schema",
                "lower-case letters, digits and _ only",
            ));
        }
        let opts = PgConnectOptions::from_str(url)?;
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        // The name was checked above to be a plain identifier.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        let opts = opts.options([("search_path", schema)]);
        Ok(Store::Postgres(Self::pg_pool(opts).await?))
    }

    async fn pg_pool(opts: PgConnectOptions) -> Result<PgPool, StoreError> {
        Ok(PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await?)
    }

    pub fn engine(&self) -> Engine {
        match self {
            Store::Sqlite(_) => Engine::Sqlite,
            Store::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies the engine's pending migrations (`toll db migrate`); safe to run repeatedly and
    /// from several workers at once (sqlx takes an advisory lock on PostgreSQL).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Store::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers (readiness probes).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut tx = self.read().await?;
        tx.one(crate::db::q("SELECT 1")).await?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(pool) => pool.close().await,
            Store::Postgres(pool) => pool.close().await,
        }
    }
}
