//! Replies kept for `Idempotency-Key`: a POST retried with the same key gets the first reply
//! again instead of doing the work twice.

use crate::db::q;
use crate::{Store, StoreError, TenantId, now_ms};

/// A kept reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReply {
    /// SHA-256 of the first request (method, path, body): the same key with another request is
    /// an error, not a replay.
    pub request_hash: Vec<u8>,
    pub status: u16,
    pub body: Vec<u8>,
}

/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 200;

impl Store {
    pub async fn kept_reply(
        &self,
        tenant: TenantId,
        principal: &str,
        key: &str,
    ) -> Result<Option<KeptReply>, StoreError> {
        let mut tx = self.read().await?;
        let row = tx
            .opt(
                q("SELECT request_hash, status, body FROM idempotency_keys \
                   WHERE tenant_id = $1 AND principal = $2 AND idem_key = $3")
                .i64(tenant.0)
                .text(principal)
                .text(key),
            )
            .await?;
        row.map(|r| {
            Ok(KeptReply {
                request_hash: r.bytes(0)?,
                status: u16::try_from(r.i64(1)?)
                    .map_err(|_| StoreError::Corrupt("kept reply status".into()))?,
                body: r.bytes(2)?,
            })
        })
        .transpose()
    }

    /// Keeps a reply; the first one kept for a key wins (a concurrent twin is ignored).
    pub async fn keep_reply(
        &self,
        tenant: TenantId,
        principal: &str,
        key: &str,
        reply: &KeptReply,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        tx.exec(
            q(
                "INSERT INTO idempotency_keys (tenant_id, principal, idem_key, request_hash, \
               status, body, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
               ON CONFLICT DO NOTHING",
            )
            .i64(tenant.0)
            .text(principal)
            .text(key)
            .bytes(&reply.request_hash)
            .i64(i64::from(reply.status))
            .bytes(&reply.body)
            .i64(now_ms()),
        )
        .await?;
        tx.commit().await
    }
}
