//! Ingestion's authentication: one shared bearer token given to `toll serve`
//! (`--ingest-token` / `TOLL_INGEST_TOKEN`). Only its SHA-256 is kept, and a presented token
//! is compared by digest in constant time; neither is ever logged. Users, roles and sessions
//! belong to the later REST API; they will be extractors beside this one.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// The ingest token's digest.
#[derive(Clone)]
pub struct IngestToken([u8; 32]);

impl std::fmt::Debug for IngestToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestToken(<redacted>)")
    }
}

/// Why a token cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the ingest token must be at least {MIN_TOKEN_LEN} characters")]
pub struct WeakToken;

/// Shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

impl IngestToken {
    pub fn new(token: &str) -> Result<IngestToken, WeakToken> {
        if token.trim().len() < MIN_TOKEN_LEN {
            return Err(WeakToken);
        }
        Ok(IngestToken(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `presented` is the token: the digests compared without an early exit.
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let diff = self
            .0
            .iter()
            .zip(d.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

/// Proof that the request carries the ingest token: an extractor every ingestion handler takes.
#[derive(Debug, Clone, Copy)]
pub struct Ingestor;

impl FromRequestParts<AppState> for Ingestor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = state.config().ingest_token.as_ref() else {
            return Err(ApiError::IngestDisabled);
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .ok_or(ApiError::Unauthorized)?;
        if token.matches(presented) {
            Ok(Ingestor)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves_and_never_print() {
        let t = IngestToken::new("s3cret-token-0123456789").unwrap_or_else(|_| unreachable!());
        assert!(t.matches("s3cret-token-0123456789"));
        assert!(!t.matches("s3cret-token-0123456788"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "IngestToken(<redacted>)");
        assert!(IngestToken::new("short").is_err());
    }
}
