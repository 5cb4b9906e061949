//! Small helpers the API's handlers share.

/// Milliseconds since the epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// A requested page size, clamped.
pub fn limit(l: Option<i64>) -> i64 {
    l.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
}

/// An amount as the API writes it: a decimal string with at least the currency's minor units
/// (`"12.50"` in CNY), and more only when the amount has them (a rated `0.105` stays exact).
pub fn money(m: toll_core::Micros, currency: toll_core::Currency) -> String {
    let mut d = m.to_decimal().normalize();
    let minor = currency.minor_units();
    if d.scale() < minor {
        d.rescale(minor);
    }
    d.to_string()
}

/// An amount the client sent (`"12.50"`), as exact micros: a decimal string, never a float,
/// at most six decimals.
pub fn parse_money(field: &str, s: &str) -> Result<toll_core::Micros, crate::error::ApiError> {
    let d = <rust_decimal::Decimal as std::str::FromStr>::from_str(s.trim()).map_err(|e| {
        crate::error::ApiError::bad(field, format!("{s:?} is not a decimal amount: {e}"))
    })?;
    toll_core::Micros::from_decimal(d)
        .map_err(|e| crate::error::ApiError::bad(field, e.to_string()))
}

/// A JSON body, with the field that is wrong named in the problem (and a missing or empty
/// body reported as such, not as a bare extractor error).
pub fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, crate::error::ApiError> {
    let body = crate::ingest::body_bytes(body)?;
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &body
    };
    crate::calls::parse_json(body)
}

/// A query string, its problem naming the parameter that is wrong.
pub fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, crate::error::ApiError> {
    q.map(|axum::extract::Query(q)| q)
        .map_err(|e| crate::error::ApiError::bad("query", e.body_text()))
}

/// An RFC 3339 time as milliseconds.
pub fn parse_time(field: &str, s: &str) -> Result<i64, crate::error::ApiError> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| crate::error::ApiError::bad(field, format!("{s:?} is not RFC 3339: {e}")))
}

/// A usize page size from [`limit`].
pub fn page_size(l: Option<i64>) -> usize {
    usize::try_from(limit(l)).unwrap_or(DEFAULT_LIMIT as usize)
}

/// The principal as the catalog's actor (`user:LOGIN`, `key:PREFIX`): who plan history and
/// plan changes record.
pub fn actor(
    p: &crate::principal::Principal,
) -> Result<toll_catalog::lifecycle::Actor, crate::error::ApiError> {
    toll_catalog::lifecycle::Actor::new(&p.actor)
        .map_err(|e| crate::error::ApiError::bad("actor", e.to_string()))
}

/// Writes the audit entry of a change the principal made: who, what, on which object, and the
/// object before and after.
pub async fn audit(
    state: &crate::state::AppState,
    p: &crate::principal::Principal,
    action: &str,
    entity: &str,
    entity_key: &str,
    before: Option<&serde_json::Value>,
    after: &serde_json::Value,
) -> Result<(), crate::error::ApiError> {
    state
        .store()
        .audit(
            p.tenant_id(),
            &toll_store::audit::AuditEntry {
                actor: &p.actor,
                action,
                entity,
                entity_key,
                before,
                after: Some(after),
            },
        )
        .await?;
    Ok(())
}
