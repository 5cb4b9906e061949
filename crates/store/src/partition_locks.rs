//! Exclusive ownership of stream partitions among workers that share one database.
//!
//! A stream of CDRs is split into partitions (by paying line), and each partition must be
//! consumed by exactly one worker at a time so that one line's records are charged in order.
//! Workers agree through the database they already share, with locks that the engine releases
//! by itself when a worker dies — no lease to expire, no table to clean up:
//!
//! * **PostgreSQL**: a session-level advisory lock per partition, all held on one dedicated
//!   connection of the worker (not a pool connection). A worker that dies, or whose connection
//!   drops, loses its locks at once; [`PartitionLocks::check`] tells the worker so, and it then
//!   stops consuming before anyone else can take over. Workers count each other through a
//!   second family of advisory locks (one "member" lock per worker, read from `pg_locks`), so
//!   each can aim at its fair share.
//! * **SQLite** (one host): an exclusive `flock` on a file per partition, in a folder beside the
//!   database file (`toll.db.locks/`); the kernel releases it when the process dies. Members
//!   hold one of a fixed set of member files.
//!
//! Lock keys are derived from a scope (the stream and tenant), so that workers of different
//! streams never contend.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::path::PathBuf;

use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::{Store, StoreError};

/// Member slots on SQLite: more workers than this on one host do not join.
const FILE_MEMBER_SLOTS: u32 = 256;

/// One worker's partition locks for one scope.
#[derive(Debug)]
pub struct PartitionLocks {
    scope: String,
    held: BTreeSet<u32>,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Pg {
        opts: Box<PgConnectOptions>,
        conn: Option<PgConnection>,
        /// The first key of partition locks and of member locks (advisory locks take two
        /// 32-bit keys; the second is the partition or the member slot).
        partition_key: i32,
        member_key: i32,
        member: Option<i32>,
    },
    Files {
        dir: PathBuf,
        prefix: String,
        files: HashMap<u32, File>,
        member: Option<(u32, File)>,
    },
}

/// FNV-1a, 32 bits: a stable key from a name (the same in every process and release).
fn fnv32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A non-negative 31-bit key, so that `pg_locks` (which shows it as an unsigned `oid`) and the
/// signed `int4` argument agree.
fn key31(text: &str) -> i32 {
    i32::try_from(fnv32(text.as_bytes()) & 0x7fff_ffff).unwrap_or(0)
}

impl Store {
    /// Partition locks for `scope` (e.g. the stream and the tenant). On PostgreSQL this opens a
    /// dedicated connection; on SQLite it creates the lock folder beside the database file.
    pub async fn partition_locks(&self, scope: &str) -> Result<PartitionLocks, StoreError> {
        let inner = match self {
            Store::Postgres(pool) => {
                let opts = Box::new((*pool.connect_options()).clone());
                Inner::Pg {
                    opts,
                    conn: None,
                    partition_key: key31(&format!("toll-partition:{scope}")),
                    member_key: key31(&format!("toll-member:{scope}")),
                    member: None,
                }
            }
            Store::Sqlite(pool) => {
                let db = pool.connect_options().get_filename().to_path_buf();
                let mut dir = db.into_os_string();
                dir.push(".locks");
                let dir = PathBuf::from(dir);
                std::fs::create_dir_all(&dir).map_err(|e| {
                    StoreError::invalid("lock folder", format!("{}: {e}", dir.display()))
                })?;
                let safe: String = scope
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(64)
                    .collect();
                Inner::Files {
                    dir,
                    prefix: format!("{safe}-{:08x}", fnv32(scope.as_bytes())),
                    files: HashMap::new(),
                    member: None,
                }
            }
        };
        Ok(PartitionLocks {
            scope: scope.to_string(),
            held: BTreeSet::new(),
            inner,
        })
    }
}

fn io_err(what: &str, e: std::io::Error) -> StoreError {
    StoreError::invalid("partition lock", format!("{what}: {e}"))
}

/// Takes an exclusive lock on `path` without waiting: `Ok(Some(file))` when taken.
fn try_lock_file(path: &std::path::Path) -> Result<Option<File>, StoreError> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io_err(&path.display().to_string(), e))?;
    match f.try_lock() {
        Ok(()) => Ok(Some(f)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(io_err(&path.display().to_string(), e)),
    }
}

impl PartitionLocks {
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The partitions this worker holds.
    pub fn held(&self) -> &BTreeSet<u32> {
        &self.held
    }

    async fn pg_conn(
        opts: &PgConnectOptions,
        conn: &mut Option<PgConnection>,
    ) -> Result<(), StoreError> {
        if conn.is_none() {
            *conn = Some(opts.connect().await?);
        }
        Ok(())
    }

    /// Joins the scope's members (counted by [`members`](Self::members)). Called again after
    /// [`check`](Self::check) reported the locks lost, it reconnects.
    pub async fn join(&mut self) -> Result<(), StoreError> {
        match &mut self.inner {
            Inner::Pg {
                opts,
                conn,
                member_key,
                member,
                ..
            } => {
                if member.is_some() {
                    return Ok(());
                }
                Self::pg_conn(opts, conn).await?;
                let c = conn
                    .as_mut()
                    .ok_or_else(|| StoreError::Corrupt("no lock connection".into()))?;
                // A slot of our own: start from the process id and the clock, probe onwards.
                let seed = std::process::id()
                    ^ (jiff::Timestamp::now().as_nanosecond() as u32).rotate_left(11);
                for i in 0..64u32 {
                    let slot = i32::try_from(seed.wrapping_add(i) & 0x7fff_ffff).unwrap_or(0);
                    let (ok,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1, $2)")
                        .bind(*member_key)
                        .bind(slot)
                        .fetch_one(&mut *c)
                        .await?;
                    if ok {
                        *member = Some(slot);
                        return Ok(());
                    }
                }
                Err(StoreError::Refused("no free member slot".into()))
            }
            Inner::Files {
                dir,
                prefix,
                member,
                ..
            } => {
                if member.is_some() {
                    return Ok(());
                }
                for k in 0..FILE_MEMBER_SLOTS {
                    if let Some(f) = try_lock_file(&dir.join(format!("{prefix}-m{k}.lock")))? {
                        *member = Some((k, f));
                        return Ok(());
                    }
                }
                Err(StoreError::Refused("no free member slot".into()))
            }
        }
    }

    /// How many workers have joined the scope (at least this one, once joined).
    pub async fn members(&mut self) -> Result<u32, StoreError> {
        match &mut self.inner {
            Inner::Pg {
                conn, member_key, ..
            } => {
                let c = conn
                    .as_mut()
                    .ok_or_else(|| StoreError::Refused("not joined".into()))?;
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                     AND objsubid = 2 AND CAST(classid AS BIGINT) = $1 \
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .bind(i64::from(*member_key))
                .fetch_one(&mut *c)
                .await?;
                Ok(u32::try_from(n).unwrap_or(u32::MAX).max(1))
            }
            Inner::Files {
                dir,
                prefix,
                member,
                ..
            } => {
                let mut n = 0u32;
                for k in 0..FILE_MEMBER_SLOTS {
                    if member.as_ref().is_some_and(|(mine, _)| *mine == k) {
                        n += 1;
                        continue;
                    }
                    let path = dir.join(format!("{prefix}-m{k}.lock"));
                    if !path.exists() {
                        continue;
                    }
                    // Free if we can take it (and give it back at once).
                    if try_lock_file(&path)?.is_none() {
                        n += 1;
                    }
                }
                Ok(n.max(1))
            }
        }
    }

    /// Tries to take partition `p`; `true` when this worker holds it now.
    pub async fn try_acquire(&mut self, p: u32) -> Result<bool, StoreError> {
        if self.held.contains(&p) {
            return Ok(true);
        }
        let ok = match &mut self.inner {
            Inner::Pg {
                opts,
                conn,
                partition_key,
                ..
            } => {
                Self::pg_conn(opts, conn).await?;
                let c = conn
                    .as_mut()
                    .ok_or_else(|| StoreError::Corrupt("no lock connection".into()))?;
                let slot =
                    i32::try_from(p).map_err(|_| StoreError::invalid("partition", "too large"))?;
                let (ok,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(*partition_key)
                    .bind(slot)
                    .fetch_one(&mut *c)
                    .await?;
                ok
            }
            Inner::Files {
                dir, prefix, files, ..
            } => match try_lock_file(&dir.join(format!("{prefix}-p{p}.lock")))? {
                Some(f) => {
                    files.insert(p, f);
                    true
                }
                None => false,
            },
        };
        if ok {
            self.held.insert(p);
        }
        Ok(ok)
    }

    /// Gives partition `p` up (after its last batch was acknowledged).
    pub async fn release(&mut self, p: u32) -> Result<(), StoreError> {
        if !self.held.remove(&p) {
            return Ok(());
        }
        match &mut self.inner {
            Inner::Pg {
                conn,
                partition_key,
                ..
            } => {
                if let Some(c) = conn.as_mut() {
                    let slot = i32::try_from(p).unwrap_or(0);
                    sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                        .bind(*partition_key)
                        .bind(slot)
                        .execute(&mut *c)
                        .await?;
                }
            }
            Inner::Files { files, .. } => {
                // Closing the file releases its lock.
                drop(files.remove(&p));
            }
        }
        Ok(())
    }

    /// Whether the locks are still held. On PostgreSQL a lost connection means every lock is
    /// gone (the server released them): the held set is emptied and an error returned, and the
    /// worker must stop consuming every partition; [`join`](Self::join) starts afresh.
    pub async fn check(&mut self) -> Result<(), StoreError> {
        if let Inner::Pg { conn, member, .. } = &mut self.inner {
            let alive = match conn.as_mut() {
                Some(c) => sqlx::query("SELECT 1").execute(&mut *c).await.is_ok(),
                None => member.is_none() && self.held.is_empty(),
            };
            if !alive {
                *conn = None;
                *member = None;
                self.held.clear();
                return Err(StoreError::Refused(
                    "the partition locks' connection was lost".into(),
                ));
            }
        }
        Ok(())
    }

    /// Releases everything (also done by dropping: the connection closes, the files close).
    pub async fn close(mut self) {
        let held: Vec<u32> = self.held.iter().copied().collect();
        for p in held {
            let _ = self.release(p).await;
        }
        if let Inner::Pg { conn, .. } = &mut self.inner
            && let Some(c) = conn.take()
        {
            let _ = sqlx::Connection::close(c).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_are_stable_and_non_negative() {
        // FNV-1a test vectors.
        assert_eq!(fnv32(b""), 0x811c_9dc5);
        assert_eq!(fnv32(b"a"), 0xe40c_292c);
        assert!(key31("toll-partition:S/acme") >= 0);
        assert_ne!(key31("toll-partition:a"), key31("toll-member:a"));
    }

    #[tokio::test]
    async fn file_locks_are_exclusive_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("toll.db");
        let store = Store::connect(path.to_str().unwrap()).await.unwrap();
        let mut a = store.partition_locks("S/acme").await.unwrap();
        let mut b = store.partition_locks("S/acme").await.unwrap();
        let mut other = store.partition_locks("T/acme").await.unwrap();
        a.join().await.unwrap();
        assert_eq!(a.members().await.unwrap(), 1);
        b.join().await.unwrap();
        assert_eq!(a.members().await.unwrap(), 2);
        assert!(a.try_acquire(3).await.unwrap());
        assert!(!b.try_acquire(3).await.unwrap());
        assert!(other.try_acquire(3).await.unwrap());
        a.release(3).await.unwrap();
        assert!(b.try_acquire(3).await.unwrap());
        drop(b);
        assert!(a.try_acquire(3).await.unwrap());
        assert_eq!(a.members().await.unwrap(), 1);
        a.check().await.unwrap();
    }
}
