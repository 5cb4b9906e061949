//! `Idempotency-Key` on POST: a client that retries a request (a timeout, a lost reply) with
//! the same key gets the first reply again, marked `Idempotent-Replayed: true`, instead of a
//! second top-up or a second upload. The same key with a different request is refused (422).
//! Replies are kept per tenant and principal; 5xx replies are not kept (the work may not have
//! happened, so a retry must run).

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use toll_store::idempotency::{KeptReply, MAX_IDEMPOTENCY_KEY};

use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
/// Largest request or reply body kept for replay.
pub const MAX_KEPT_BODY: usize = 8 << 20;

pub async fn idempotent(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if req.method() != Method::POST {
        return Ok(next.run(req).await);
    }
    let Some(key) = req.headers().get(HEADER) else {
        return Ok(next.run(req).await);
    };
    let key = key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::bad(
                "Idempotency-Key",
                format!("1..={MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
            )
        })?
        .to_string();
    let Some(p) = req.extensions().get::<Principal>().cloned() else {
        return Err(ApiError::Unauthenticated);
    };
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_KEPT_BODY).await.map_err(|_| {
        ApiError::TooLarge(format!(
            "a body with Idempotency-Key is at most {MAX_KEPT_BODY} bytes"
        ))
    })?;
    let mut h = Sha256::new();
    h.update(parts.method.as_str().as_bytes());
    h.update(b" ");
    h.update(parts.uri.to_string().as_bytes());
    h.update(b"\n");
    h.update(&bytes);
    let hash: Vec<u8> = h.finalize().to_vec();
    let store = state.store();
    if let Some(kept) = store.kept_reply(p.tenant_id(), &p.actor, &key).await? {
        if kept.request_hash != hash {
            return Err(ApiError::IdempotencyMismatch(key));
        }
        return Ok(replay(kept));
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if res.status().is_server_error() {
        return Ok(res);
    }
    let (rparts, rbody) = res.into_parts();
    let Ok(rbytes) = to_bytes(rbody, MAX_KEPT_BODY).await else {
        return Ok((StatusCode::INTERNAL_SERVER_ERROR, "reply too large to keep").into_response());
    };
    let kept = KeptReply {
        request_hash: hash,
        status: rparts.status.as_u16(),
        body: rbytes.to_vec(),
    };
    store
        .keep_reply(p.tenant_id(), &p.actor, &key, &kept)
        .await?;
    Ok(Response::from_parts(rparts, Body::from(rbytes)))
}

fn replay(kept: KeptReply) -> Response {
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let problem = status.is_client_error();
    let mut res = (status, kept.body).into_response();
    let ctype = if problem {
        crate::error::PROBLEM_JSON
    } else {
        "application/json"
    };
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}
