//! Real-time call events: a call's start is recorded and answered with its prepaid
//! authorisation; its end is rated and charged at once (through the tenant's call-end
//! batcher) and answered with the charge.
//!
//! The record of a call is keyed by its source and call id, and its charge by the event key
//! `source/call_id`: an end repeated, an end after the sweeper, or the same call in a CDR file
//! later are all duplicates of the first charge.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use jiff::Timestamp;
use jiff::tz::Offset;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use tokio::sync::oneshot;
use toll_core::UsageKind;
use toll_core::civil::parse_rfc3339;
use toll_core::usage::{NANOS_PER_SECOND, Tor};
use toll_ingest::cdr::{Cdr, Disposition};
use toll_ingest::pipeline::ItemOutcome;
use toll_ingest::pipeline::rating::{SWEPT_EXTRA, class_of};
use toll_store::StoreError;
use toll_store::charging::UsageEvent;
use toll_store::open_calls::{MAX_ID_LEN, NewCall, OpenCall};

use crate::auth::Ingestor;
use crate::batcher::EndJob;
use crate::error::ApiError;
use crate::ingest::{body_bytes, require_json};
use crate::state::{AppState, TenantIngest};

/// `POST …/calls/start`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallStart {
    pub source: String,
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    /// RFC 3339 with the switch clock's offset.
    pub start: String,
    #[serde(default)]
    pub category: Option<String>,
}

/// `POST …/calls/end`. Caller, callee and start are needed only when the start never came.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallEndBody {
    pub source: String,
    pub call_id: String,
    #[serde(default)]
    pub answer: Option<String>,
    pub end: String,
    /// Billable seconds as the switch counted them (else end − answer, or end − start).
    #[serde(default)]
    pub billsec: Option<i64>,
    #[serde(default)]
    pub caller: Option<String>,
    #[serde(default)]
    pub callee: Option<String>,
    #[serde(default)]
    pub start: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
}

/// The start an end event carries itself (all of caller, callee, start).
#[derive(Debug, Clone)]
pub(crate) struct OwnStart {
    caller: String,
    callee: String,
    start: Timestamp,
    offset: Offset,
}

/// A checked end event, waiting for its batch.
#[derive(Debug)]
pub(crate) struct CallEnd {
    pub source: String,
    pub call_id: String,
    answer: Option<Timestamp>,
    end: Timestamp,
    billsec: Option<i64>,
    own: Option<OwnStart>,
    category: Option<String>,
    raw: Vec<u8>,
}

/// The answer to a call start.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StartReply {
    pub source: String,
    pub call_id: String,
    /// False for a start seen before (nothing changed).
    pub recorded: bool,
    pub authorized: bool,
    /// The longest the call may last (0: refused).
    pub max_usage_seconds: i64,
    /// What limits it: `requested` (the maximum call duration), `balance`, `plan`, `max_cost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limited_by: Option<&'static str>,
    /// Why it is refused (a stable class, and the reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a call end: what became of its record.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EndReply {
    pub source: String,
    pub call_id: String,
    #[serde(flatten)]
    pub outcome: ItemOutcome,
    /// Billable seconds of the record (a started second counting).
    pub usage_seconds: i64,
    /// Whether the call's start had been recorded.
    pub started: bool,
}

fn time(field: &'static str, text: &str) -> Result<(Timestamp, Offset), ApiError> {
    let p = parse_rfc3339(text).map_err(|e| {
        ApiError::bad(
            field,
            format!("{text:?} is not RFC 3339 with an offset: {e}"),
        )
    })?;
    let ts = Timestamp::from_nanosecond(i128::from(p.epoch_ns))
        .map_err(|e| ApiError::bad(field, e.to_string()))?;
    let off =
        Offset::from_seconds(p.offset_seconds).map_err(|e| ApiError::bad(field, e.to_string()))?;
    Ok((ts, off))
}

fn id(field: &'static str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::bad(field, "missing"));
    }
    if v.len() > MAX_ID_LEN {
        return Err(ApiError::bad(
            field,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Parses a JSON body, naming the field (its path) that is wrong.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad(
            if path == "." { "body".into() } else { path },
            e.inner().to_string(),
        )
    })
}

impl CallEnd {
    pub(crate) fn parse(body: &[u8]) -> Result<CallEnd, ApiError> {
        let b: CallEndBody = parse_json(body)?;
        id("source", &b.source)?;
        id("call_id", &b.call_id)?;
        let (end, _) = time("end", &b.end)?;
        let answer = b
            .answer
            .as_deref()
            .map(|a| time("answer", a).map(|t| t.0))
            .transpose()?;
        if let Some(s) = b.billsec
            && !(0..=i64::from(u32::MAX)).contains(&s)
        {
            return Err(ApiError::bad(
                "billsec",
                "must be a whole number of seconds ≥ 0",
            ));
        }
        let own = match (&b.caller, &b.callee, &b.start) {
            (Some(caller), Some(callee), Some(start)) => {
                id("caller", caller)?;
                let (start, offset) = time("start", start)?;
                Some(OwnStart {
                    caller: caller.clone(),
                    callee: callee.clone(),
                    start,
                    offset,
                })
            }
            (None, None, None) => None,
            _ => {
                let missing = [
                    ("caller", b.caller.is_none()),
                    ("callee", b.callee.is_none()),
                    ("start", b.start.is_none()),
                ]
                .into_iter()
                .find(|(_, m)| *m)
                .map_or("start", |(f, _)| f);
                return Err(ApiError::bad(
                    missing,
                    "an end that names its caller, callee or start must name all three",
                ));
            }
        };
        Ok(CallEnd {
            source: b.source,
            call_id: b.call_id,
            answer,
            end,
            billsec: b.billsec,
            own,
            category: b.category,
            raw: body.to_vec(),
        })
    }

    /// The call's record: its start from the recorded call, else from the end itself.
    pub(crate) fn record(&self, call: Option<&OpenCall>) -> Result<Cdr, ApiError> {
        let (caller, callee, start, offset, category) = match (call, &self.own) {
            (Some(c), _) => (
                c.caller.clone(),
                c.callee.clone(),
                Timestamp::from_millisecond(c.start_ms)
                    .map_err(|e| ApiError::Unavailable(format!("stored call start: {e}")))?,
                Offset::from_seconds(c.utc_offset_s)
                    .map_err(|e| ApiError::Unavailable(format!("stored call offset: {e}")))?,
                c.category.clone().or_else(|| self.category.clone()),
            ),
            (None, Some(o)) => (
                o.caller.clone(),
                o.callee.clone(),
                o.start,
                o.offset,
                self.category.clone(),
            ),
            (None, None) => {
                return Err(ApiError::UnknownCall {
                    feed: self.source.clone(),
                    call_id: self.call_id.clone(),
                });
            }
        };
        let billsec_ns = self.billsec.map(|s| s * NANOS_PER_SECOND);
        // Usage runs from the answer: given, or billsec before the end, or the start.
        let answer = match (self.answer, billsec_ns) {
            (Some(a), _) => a,
            (None, Some(ns)) => self
                .end
                .checked_sub(jiff::SignedDuration::from_nanos(ns))
                .map_err(|e| ApiError::bad("billsec", e.to_string()))?,
            (None, None) => start,
        };
        let usage = match billsec_ns {
            Some(ns) => ns,
            None => {
                let ns = self.end.as_nanosecond() - answer.as_nanosecond();
                i64::try_from(ns).map_err(|_| ApiError::bad("end", "too far from the answer"))?
            }
        };
        if usage < 0 || self.end < start {
            return Err(ApiError::bad("end", "before the call's answer or start"));
        }
        Ok(Cdr {
            source: Arc::from(self.source.as_str()),
            record_id: self.call_id.clone(),
            caller,
            callee,
            start,
            offset,
            answer: Some(answer),
            end: Some(self.end),
            kind: UsageKind::Voice,
            usage,
            disposition: Disposition::Answered,
            tenant: None,
            category,
            account: None,
            service: None,
            direction: None,
            call_id: Some(self.call_id.clone()),
            extra: BTreeMap::new(),
            lossy_fields: Vec::new(),
            line: 0,
            raw: self.raw.clone(),
            merged_lines: Vec::new(),
        })
    }
}

/// The record of a call that never ended: charged for `max` from its start, marked swept.
pub(crate) fn swept_record(call: &OpenCall, max: std::time::Duration) -> Result<Cdr, StoreError> {
    let bad = |e: jiff::Error| StoreError::Corrupt(format!("stored call: {e}"));
    let start = Timestamp::from_millisecond(call.start_ms).map_err(bad)?;
    let offset = Offset::from_seconds(call.utc_offset_s).map_err(bad)?;
    let max = jiff::SignedDuration::try_from(max)
        .map_err(|e| StoreError::invalid("max_call_duration", e.to_string()))?;
    let end = start.checked_add(max).map_err(bad)?;
    let usage = i64::try_from(max.as_nanos())
        .map_err(|_| StoreError::invalid("max_call_duration", "too long"))?;
    let mut extra = BTreeMap::new();
    extra.insert(SWEPT_EXTRA.to_string(), "max_call_duration".to_string());
    Ok(Cdr {
        source: Arc::from(call.source.as_str()),
        record_id: call.call_id.clone(),
        caller: call.caller.clone(),
        callee: call.callee.clone(),
        start,
        offset,
        answer: Some(start),
        end: Some(end),
        kind: UsageKind::Voice,
        usage,
        disposition: Disposition::Answered,
        tenant: None,
        category: call.category.clone(),
        account: None,
        service: None,
        direction: None,
        call_id: Some(call.call_id.clone()),
        extra,
        lossy_fields: Vec::new(),
        line: 0,
        raw: serde_json::to_vec(call).unwrap_or_default(),
        merged_lines: Vec::new(),
    })
}

/// Whole billable seconds of a voice record, a started second counting.
pub(crate) fn usage_seconds(usage_ns: i64) -> i64 {
    usage_ns / NANOS_PER_SECOND + i64::from(usage_ns % NANOS_PER_SECOND != 0)
}

/// `POST /api/v1/ingest/{tenant}/calls/start`
pub async fn start(
    State(state): State<AppState>,
    _: Ingestor,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<StartReply>, ApiError> {
    require_json(&headers)?;
    let body = body_bytes(body)?;
    let b: CallStart = parse_json(&body)?;
    id("source", &b.source)?;
    id("call_id", &b.call_id)?;
    id("caller", &b.caller)?;
    let (start, offset) = time("start", &b.start)?;
    let ti = state.tenant(&tenant).await?;
    let recorded = state
        .store()
        .start_call(
            ti.tenant.id,
            &NewCall {
                source: b.source.clone(),
                call_id: b.call_id.clone(),
                caller: b.caller.clone(),
                callee: b.callee.clone(),
                start_ms: start.as_millisecond(),
                utc_offset_s: offset.seconds(),
                category: b.category.clone(),
            },
        )
        .await?;
    let mut reply = StartReply {
        source: b.source.clone(),
        call_id: b.call_id.clone(),
        recorded,
        authorized: false,
        max_usage_seconds: 0,
        limited_by: None,
        refused: None,
        reason: None,
    };
    match authorize(&state, &ti, &b, start, offset).await? {
        Ok((seconds, limited_by)) => {
            reply.max_usage_seconds = seconds;
            reply.limited_by = Some(limited_by);
            reply.authorized = seconds > 0;
            if seconds == 0 {
                reply.refused = Some(limited_by.to_string());
                reply.reason = Some(format!("the {limited_by} allows no second of the call"));
            }
        }
        Err((class, reason)) => {
            reply.refused = Some(class.to_string());
            reply.reason = Some(reason);
        }
    }
    Ok(Json(reply))
}

type Verdict = Result<(i64, &'static str), (&'static str, String)>;

/// How long the call may last: the line's plan decides (allowances, then the balance), or for
/// a line without a plan the tariff prices the call against the wallet; at most the maximum
/// call duration. `Err` inside: refused, with a class and the reason.
async fn authorize(
    state: &AppState,
    ti: &TenantIngest,
    b: &CallStart,
    start: Timestamp,
    offset: Offset,
) -> Result<Verdict, ApiError> {
    let max_s = i64::try_from(state.config().max_call_duration.as_secs()).unwrap_or(i64::MAX);
    let funds = match state.store().line_funds(ti.tenant.id, &b.caller).await {
        Ok(Some(f)) => f,
        Ok(None) => {
            return Ok(Err((
                "unknown_subscriber",
                format!("no active line has the number {:?}", b.caller),
            )));
        }
        Err(StoreError::Invalid { reason, .. }) => {
            return Ok(Err(("unknown_subscriber", reason)));
        }
        Err(e) => return Err(e.into()),
    };
    if funds.has_plan {
        let ev = UsageEvent {
            key: format!("authorize/{}/{}", b.source, b.call_id),
            number: b.caller.clone(),
            usage: UsageKind::Voice,
            service: None,
            at_ms: start.as_millisecond(),
            quantity: max_s,
            destination: Some(b.callee.clone()),
            rated_cost: None,
        };
        return match ti.pipeline.charger().authorize(&ev).await {
            Ok(a) => Ok(Ok((a.allowed, a.limited_by))),
            Err(StoreError::Refused(r)) => Ok(Err(("refused", r))),
            Err(StoreError::NotFound { key, .. }) => Ok(Err((
                "unknown_subscriber",
                format!("no active line has the number {key:?}"),
            ))),
            Err(StoreError::Invalid { field, reason }) => {
                Ok(Err(("invalid", format!("{field}: {reason}"))))
            }
            Err(e) => Err(e.into()),
        };
    }
    let Some(available) = funds.available else {
        return Ok(Ok((max_s, "requested")));
    };
    let available = available.to_decimal();
    let settings = state.settings();
    let default_voice = settings.default_rate.voice_per_minute;
    let by_default = |why: (&'static str, String)| -> Verdict {
        match default_voice {
            // Started minutes at the default price: whole minutes the balance pays for.
            Some(p) if p > Decimal::ZERO => {
                let minutes = (available / p).floor();
                let secs = minutes.to_i64().unwrap_or(i64::MAX).saturating_mul(60);
                if secs >= max_s {
                    Ok((max_s, "requested"))
                } else {
                    Ok((secs.max(0), "balance"))
                }
            }
            Some(_) => Ok((max_s, "requested")),
            None => Err(why),
        }
    };
    let Some(tariff) = &settings.tariff else {
        return Ok(by_default((
            "no_tariff",
            "no tariff is loaded to price the call".into(),
        )));
    };
    let tariff_tenant = settings.tariff_tenant_for(&ti.tenant);
    let category = b.category.as_deref().unwrap_or(&settings.category);
    let ev = toll_rating::Event {
        tenant: &tariff_tenant,
        category,
        subject: &b.caller,
        destination: &b.callee,
        start,
        offset,
        usage: max_s.saturating_mul(NANOS_PER_SECOND),
        tor: Tor::Voice,
        route_carrier: None,
    };
    Ok(match toll_rating::max_usage(tariff, &ev, available) {
        Ok(m) => {
            let limited_by = match m.limited_by {
                toll_rating::engine::Limit::Requested => "requested",
                toll_rating::engine::Limit::Balance => "balance",
                toll_rating::engine::Limit::MaxCost => "max_cost",
            };
            Ok((m.usage / NANOS_PER_SECOND, limited_by))
        }
        Err(e) => by_default((class_of(&e), e.to_string())),
    })
}

/// `POST /api/v1/ingest/{tenant}/calls/end`
pub async fn end(
    State(state): State<AppState>,
    _: Ingestor,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EndReply>, ApiError> {
    let received = Instant::now();
    require_json(&headers)?;
    let body = body_bytes(body)?;
    let end = CallEnd::parse(&body)?;
    let ti = state.tenant(&tenant).await?;
    let (tx, rx) = oneshot::channel();
    ti.ends
        .try_send(EndJob {
            end,
            reply: tx,
            received,
        })
        .map_err(|e| match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => ApiError::Overloaded,
            tokio::sync::mpsc::error::TrySendError::Closed(_) => ApiError::ShuttingDown,
        })?;
    let reply = rx.await.map_err(|_| ApiError::ShuttingDown)??;
    Ok(Json(reply))
}
