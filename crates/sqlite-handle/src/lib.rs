//! Running rusqlite on a connection sqlx owns.
//!
//! sqlx runs every SQLite statement on a worker thread per connection and copies each result
//! row into an owned value handed over a channel: about 2 µs a row, which is most of a bill
//! run reading the 25 million daily rows of a million accounts. rusqlite steps the same
//! statements in place and lets the caller read each column as a borrowed `&str`. sqlx lends
//! its handle for that ([`sqlx::sqlite::SqliteConnection::lock_handle`]): while the lock is
//! held its worker does nothing with the connection, and whatever the closure runs is part of
//! the connection's open transaction, if any.

use sqlx::sqlite::SqliteConnection;

/// Runs `f` with a rusqlite view of `conn`, inside whatever transaction `conn` has open. On a
/// multi-threaded runtime the closure runs under `block_in_place`, so the runtime moves its
/// other tasks off this thread while SQLite works; keep each call short (one batch).
///
/// `f` must leave the connection as it found it: no `BEGIN`/`COMMIT` of its own and no
/// statement left mid-step (rusqlite finalizes every statement it prepared when the view is
/// dropped, before the lock is released).
pub async fn with_rusqlite<R, E>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&rusqlite::Connection) -> Result<R, E>,
) -> Result<R, E>
where
    E: From<sqlx::Error> + From<rusqlite::Error>,
{
    let mut locked = conn.lock_handle().await?;
    let db = view(&mut locked)?;
    let out = blocking(|| f(&db));
    // The view (and every statement it prepared) goes before the lock does.
    drop(db);
    drop(locked);
    out
}

/// A rusqlite connection over the locked handle; it does not close the handle when dropped.
#[allow(unsafe_code)]
fn view(
    locked: &mut sqlx::sqlite::LockedSqliteHandle<'_>,
) -> rusqlite::Result<rusqlite::Connection> {
    let raw = locked.as_raw_handle();
    // SAFETY: `raw` is the open handle of the connection `locked` holds exclusively: sqlx's
    // worker does not touch it until `locked` is dropped, and `with_rusqlite` drops the view
    // first. `from_handle` (unlike `from_handle_owned`) never closes the handle. sqlx and
    // rusqlite link the same `libsqlite3-sys`, so the pointer types are the same.
    unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }
}

/// Runs `f` where blocking is allowed: under `block_in_place` on a multi-threaded runtime,
/// directly elsewhere (a current-thread runtime has no other thread to hand its tasks to).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sqlx::{Connection, Executor};

    use super::with_rusqlite;

    #[derive(Debug)]
    enum E {
        #[allow(dead_code)]
        Sqlx(sqlx::Error),
        #[allow(dead_code)]
        Rusqlite(rusqlite::Error),
    }
    impl From<sqlx::Error> for E {
        fn from(e: sqlx::Error) -> Self {
            E::Sqlx(e)
        }
    }
    impl From<rusqlite::Error> for E {
        fn from(e: rusqlite::Error) -> Self {
            E::Rusqlite(e)
        }
    }

    /// What rusqlite reads and writes belongs to sqlx's open transaction: a rollback undoes
    /// it, and sqlx keeps working on the connection afterwards.
    async fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .await
            .unwrap();
        let mut tx = conn.begin().await.unwrap();
        tx.execute("INSERT INTO t VALUES (1, 'one')").await.unwrap();
        let seen: Vec<(i64, String)> = with_rusqlite(&mut tx, |db| {
            db.execute("INSERT INTO t VALUES (2, 'two')", [])?;
            let mut st = db.prepare("SELECT k, v FROM t ORDER BY k")?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, E>(rows)
        })
        .await
        .unwrap();
        assert_eq!(seen, vec![(1, "one".to_string()), (2, "two".to_string())]);
        tx.rollback().await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(left, 0, "the rollback undid both inserts");
        // An error inside the closure comes back as it is, and the connection stays usable.
        let err = with_rusqlite(&mut conn, |db| {
            db.execute("INSERT INTO missing VALUES (1)", [])?;
            Ok::<_, E>(())
        })
        .await;
        assert!(matches!(err, Err(E::Rusqlite(_))), "{err:?}");
        conn.execute("INSERT INTO t VALUES (3, 'three')")
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn current_thread_runtime() {
        round_trip().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_thread_runtime() {
        round_trip().await;
    }
}
