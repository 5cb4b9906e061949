//! The store's one error type; the HTTP layer maps it to problem+json once.

use toll_core::AmountError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?} is neither a SQLite path/URL nor postgres://")]
    BadUrl(String),
    #[error("{entity} {key:?} not found")]
    NotFound { entity: &'static str, key: String },
    #[error("{entity} {key:?} already exists")]
    Conflict { entity: &'static str, key: String },
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("refused: {0}")]
    Refused(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Amount(#[from] AmountError),
    #[error(transparent)]
    Ledger(toll_charging::ledger::LedgerError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// From the SQLite paths that step rows through rusqlite (`toll-sqlite-handle`).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn not_found(entity: &'static str, key: impl Into<String>) -> Self {
        StoreError::NotFound {
            entity,
            key: key.into(),
        }
    }

    /// Whether retrying later may succeed: the database was unreachable, busy, timed out or
    /// aborted the transaction (serialization, deadlock). A statement the database refused for
    /// its content (a constraint) and errors in Toll's own data fail the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => {
                let code = d.code();
                let code = code.as_deref().unwrap_or("");
                // PostgreSQL SQLSTATE: connection exceptions (08), serialization failure and
                // deadlock (40), insufficient resources (53), operator intervention such as
                // a restart (57P), lock not available (55P03).
                // SQLite result codes: BUSY (5), LOCKED (6), IOERR (10), FULL (13), and
                // their extended forms (low byte).
                let sqlite_transient = code
                    .parse::<u32>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13));
                sqlite_transient
                    || code.starts_with("08")
                    || code.starts_with("40")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "55P03"
            }
            StoreError::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DiskFull
            ),
            _ => false,
        }
    }

    /// Whether the error is a unique-constraint violation (a duplicate key).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// Turns a unique violation into [`StoreError::Conflict`] naming the entity and key.
    pub fn conflict(self, entity: &'static str, key: &str) -> Self {
        if self.is_unique_violation() {
            StoreError::Conflict {
                entity,
                key: key.to_string(),
            }
        } else {
            self
        }
    }
}
