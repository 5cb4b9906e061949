//! Calls in progress, from real-time call events (`toll serve`): a start is kept until its end
//! or until the sweeper closes it at the maximum duration (migration `0005_open_calls`).
//!
//! Recording and closing a call never charges anything: the charge is the pipeline's, keyed by
//! `source/call_id`, so an end and the sweeper racing each other charge the call once, and a
//! call whose charge committed but whose close did not (a crash in between) is found again by
//! the sweeper and charged nothing more.

use std::collections::HashMap;

use toll_core::Micros;

use crate::db::{Col, DbRow, Tx, q, q_composed};
use crate::{Store, StoreError, TenantId, now_ms};

/// Longest source name or call id kept (switch call ids are UUIDs or `uniqueid`s).
pub const MAX_ID_LEN: usize = 256;
/// Most calls one [`Store::expired_calls`] call returns.
pub const MAX_PAGE: usize = 10_000;

/// A call start as announced by a switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    pub source: String,
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub start_ms: i64,
    pub utc_offset_s: i32,
    pub category: Option<String>,
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Open,
    /// Its end event came.
    Ended,
    /// The sweeper closed it at the maximum duration.
    Swept,
}

/// An open call that a record of a charging batch ends: closed in the batch's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallClose {
    pub source: String,
    pub call_id: String,
    /// `Ended` or `Swept`.
    pub status: CallStatus,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Open => "open",
            CallStatus::Ended => "ended",
            CallStatus::Swept => "swept",
        }
    }

    fn parse(s: &str) -> Result<CallStatus, StoreError> {
        Ok(match s {
            "open" => CallStatus::Open,
            "ended" => CallStatus::Ended,
            "swept" => CallStatus::Swept,
            other => return Err(StoreError::Corrupt(format!("call status {other:?}"))),
        })
    }
}

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OpenCall {
    pub source: String,
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub start_ms: i64,
    pub utc_offset_s: i32,
    pub category: Option<String>,
    pub status: CallStatus,
    pub closed_ms: Option<i64>,
}

/// What a call start is authorised against, for a line without a plan (whose calls are
/// priced by the tariff alone): whether the line has a plan, and what its wallet may still pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFunds {
    /// The line has an active or suspended subscription: its plan decides
    /// ([`crate::charging::Charger::authorize`]).
    pub has_plan: bool,
    /// What may still be charged to the line's wallet; `None`: unlimited.
    pub available: Option<Micros>,
}

const COLUMNS: &str =
    "source, call_id, caller, callee, start_ms, utc_offset_s, category, status, closed_ms";

fn call(r: &DbRow) -> Result<OpenCall, StoreError> {
    Ok(OpenCall {
        source: r.text(0)?,
        call_id: r.text(1)?,
        caller: r.text(2)?,
        callee: r.text(3)?,
        start_ms: r.i64(4)?,
        utc_offset_s: i32::try_from(r.i64(5)?)
            .map_err(|_| StoreError::Corrupt("call UTC offset out of range".into()))?,
        category: r.opt_text(6)?,
        status: CallStatus::parse(&r.text(7)?)?,
        closed_ms: r.opt_i64(8)?,
    })
}

fn check_id(field: &'static str, v: &str) -> Result<(), StoreError> {
    if v.trim().is_empty() {
        return Err(StoreError::invalid(field, "missing"));
    }
    if v.len() > MAX_ID_LEN {
        return Err(StoreError::invalid(
            field,
            format!("longer than {MAX_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

impl Store {
    /// Records a call start. Returns whether it is new: a start seen before (same source and
    /// call id) changes nothing, whatever it says now.
    pub async fn start_call(&self, tenant: TenantId, c: &NewCall) -> Result<bool, StoreError> {
        check_id("source", &c.source)?;
        check_id("call_id", &c.call_id)?;
        check_id("caller", &c.caller)?;
        let mut tx = self.begin().await?;
        let n = tx
            .exec(
                q(
                    "INSERT INTO open_calls (tenant_id, source, call_id, caller, callee, start_ms, \
                   utc_offset_s, category, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                   ON CONFLICT (tenant_id, source, call_id) DO NOTHING",
                )
                .i64(tenant.0)
                .text(c.source.as_str())
                .text(c.call_id.as_str())
                .text(c.caller.as_str())
                .text(c.callee.as_str())
                .i64(c.start_ms)
                .i64(i64::from(c.utc_offset_s))
                .opt_text(c.category.as_deref())
                .i64(now_ms()),
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The recorded calls among `keys` (source, call id), open or closed.
    pub async fn calls(
        &self,
        tenant: TenantId,
        keys: &[(String, String)],
    ) -> Result<HashMap<(String, String), OpenCall>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx
            .bulk(
                keys,
                &[Col::Text, Col::Text],
                |values| {
                    format!(
                        "SELECT {COLUMNS} FROM open_calls WHERE tenant_id = {} \
                         AND (source, call_id) IN ({values})",
                        tenant.0
                    )
                },
                |s, (source, call_id)| {
                    s.push_text(source.as_str());
                    s.push_text(call_id.as_str());
                },
            )
            .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for r in &rows {
            let c = call(r)?;
            out.insert((c.source.clone(), c.call_id.clone()), c);
        }
        Ok(out)
    }

    /// Closes the open calls among `keys` as `status` (`Ended` or `Swept`); closed ones stay as
    /// they are (an end after the sweep does not make a swept call ended).
    pub async fn close_calls(
        &self,
        tenant: TenantId,
        keys: &[(String, String)],
        status: CallStatus,
    ) -> Result<(), StoreError> {
        if status == CallStatus::Open {
            return Err(StoreError::invalid(
                "status",
                "a call closes as ended or swept",
            ));
        }
        if keys.is_empty() {
            return Ok(());
        }
        let keys: Vec<(&str, &str)> = keys.iter().map(|(s, c)| (s.as_str(), c.as_str())).collect();
        let mut tx = self.begin().await?;
        close_in(&mut tx, tenant, &keys, status).await?;
        tx.commit().await
    }

    /// Open calls that started before `started_before_ms`, oldest first, at most `limit`.
    pub async fn expired_calls(
        &self,
        tenant: TenantId,
        started_before_ms: i64,
        limit: usize,
    ) -> Result<Vec<OpenCall>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut tx = self.read().await?;
        let rows = tx
            .all(
                q_composed(format!(
                    "SELECT {COLUMNS} FROM open_calls WHERE tenant_id = $1 AND status = 'open' \
                     AND start_ms < $2 ORDER BY start_ms, source, call_id LIMIT {limit}"
                ))
                .i64(tenant.0)
                .i64(started_before_ms),
            )
            .await?;
        rows.iter().map(call).collect()
    }

    /// How many calls of a tenant are open.
    pub async fn open_call_count(&self, tenant: TenantId) -> Result<i64, StoreError> {
        let mut tx = self.read().await?;
        tx.one(
            q("SELECT COUNT(*) FROM open_calls WHERE tenant_id = $1 AND status = 'open'")
                .i64(tenant.0),
        )
        .await?
        .i64(0)
    }

    /// The slugs of the tenants with open calls: whom the sweeper visits. (The one query here
    /// across tenants; it reads no tenant's data but whether it has open calls.)
    pub async fn tenants_with_open_calls(&self) -> Result<Vec<String>, StoreError> {
        let mut tx = self.read().await?;
        let rows = tx
            .all(q("SELECT t.slug FROM tenants t WHERE EXISTS \
                 (SELECT 1 FROM open_calls c WHERE c.tenant_id = t.id AND c.status = 'open') \
                 ORDER BY t.slug"))
            .await?;
        rows.iter().map(|r| r.text(0)).collect()
    }

    /// What a call from `number` is authorised against; `None`: no active line has it.
    pub async fn line_funds(
        &self,
        tenant: TenantId,
        number: &str,
    ) -> Result<Option<LineFunds>, StoreError> {
        let number = crate::accounts::normalise_number(number)?;
        let mut tx = self.read().await?;
        let Some(r) = tx
            .opt(
                q("SELECT l.floor_kind, l.floor_micros, l.debits, l.credits, \
                   (SELECT COUNT(*) FROM subscription_lines sl \
                    JOIN subscriptions s ON s.id = sl.subscription_id \
                    WHERE sl.tenant_id = $1 AND sl.subscriber_id = sub.id \
                    AND s.status IN ('active', 'suspended')) \
                   FROM subscribers sub JOIN accounts a ON a.id = sub.account_id \
                   JOIN ledger_accounts l ON l.id = a.wallet_id \
                   WHERE sub.tenant_id = $1 AND sub.number = $2 AND sub.status = 'active'")
                .i64(tenant.0)
                .text(number),
            )
            .await?
        else {
            return Ok(None);
        };
        let balance = Micros(r.i64(3)?).checked_sub(Micros(r.i64(2)?))?;
        let (_, available) =
            crate::accounts::wallet_available(&r.text(0)?, Micros(r.i64(1)?), balance)?;
        Ok(Some(LineFunds {
            has_plan: r.i64(4)? > 0,
            available,
        }))
    }
}

/// [`Store::close_calls`] inside the caller's transaction: the charging transaction of the
/// calls' end records closes them too, so a call is charged and closed together or not at
/// all. `status` is `Ended` or `Swept`.
pub(crate) async fn close_in(
    tx: &mut Tx,
    tenant: TenantId,
    keys: &[(&str, &str)],
    status: CallStatus,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let at = now_ms();
    tx.bulk(
        keys,
        &[Col::Text, Col::Text],
        |values| {
            // The status is one of two constants and the instant an integer: no input is
            // spliced into the text.
            format!(
                "UPDATE open_calls SET status = '{}', closed_ms = {at} WHERE tenant_id = {} \
                 AND status = 'open' AND (source, call_id) IN ({values})",
                status.as_str(),
                tenant.0
            )
        },
        |s, &(source, call_id)| {
            s.push_text(source);
            s.push_text(call_id);
        },
    )
    .await?;
    Ok(())
}
