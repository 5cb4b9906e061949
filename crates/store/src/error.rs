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
                !(d.is_unique_violation() || d.is_foreign_key_violation() || d.is_check_violation())
            }
            StoreError::Db(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::Protocol(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
            ) => true,
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
