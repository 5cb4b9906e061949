//! Invoices in the admin UI and the portal: the list with its filters and the bill-run form,
//! one invoice as it is printed (its HTML document framed in the page, the same document the
//! PDF is typeset from) with the actions its status allows, and the customer's own invoices.
//!
//! Every action goes through the store services the API uses, with the same audit entries.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use toll_store::billing::invoices::{InvoiceSummary, StoredInvoice};
use toll_store::billing::payments::{PaymentMethod, PaymentRequest};
use toll_store::billing::run::{BillRunOptions, DEFAULT_BATCH};

use super::i18n::{Lang, Messages};
use super::pages::{Flash, FlashKind, Layout, Nav, render};
use super::paths;
use super::session::{require, see_other};
use super::views::{audit, danger, error_page, frame, guarded, money, path_of, when};
use crate::access::Perm;
use crate::error::ApiError;
use crate::invoice_docs;
use crate::principal::Principal;
use crate::state::AppState;

/// Invoices per page of the list.
const PAGE: i64 = 50;

/// One row of an invoice list.
#[derive(Debug)]
pub struct InvoiceRow {
    pub href: String,
    pub pdf: String,
    pub number: String,
    pub kind: &'static str,
    pub account: String,
    pub period: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub total: String,
    pub paid: String,
}

fn status_text(t: &'static Messages, s: &str) -> (&'static str, &'static str) {
    match s {
        "draft" => (t.inv_status_draft, "text-bg-secondary"),
        "finalized" => (t.inv_status_finalized, "text-bg-primary"),
        "paid" => (t.inv_status_paid, "text-bg-success"),
        _ => (t.inv_status_void, "text-bg-dark"),
    }
}

fn kind_text(t: &'static Messages, k: &str) -> &'static str {
    if k == "credit_note" {
        t.inv_kind_credit_note
    } else {
        t.inv_kind_invoice
    }
}

/// A row of the portal's list: the printed invoice and its PDF, under `/portal/invoices`.
pub(super) fn portal_invoice_row(t: &'static Messages, i: &InvoiceSummary) -> InvoiceRow {
    let base = format!("{}/{}", paths::PORTAL, "invoices");
    let mut row = invoice_row(t, i, &base);
    row.href = format!("{base}/{}/document", i.id);
    row
}

pub(super) fn invoice_row(t: &'static Messages, i: &InvoiceSummary, base: &str) -> InvoiceRow {
    let (status, status_class) = status_text(t, &i.status);
    InvoiceRow {
        href: format!("{base}/{}", i.id),
        pdf: format!("{base}/{}/pdf", i.id),
        number: i
            .number
            .clone()
            .unwrap_or_else(|| t.inv_status_draft.to_string()),
        kind: kind_text(t, &i.kind),
        account: i.account.clone(),
        period: i.period.clone(),
        status,
        status_class,
        total: money(&i.currency, i.total),
        paid: money(&i.currency, i.paid),
    }
}

#[derive(Debug, Template)]
#[template(path = "invoices.html")]
pub struct InvoicesPage {
    pub layout: Layout,
    pub rows: Vec<InvoiceRow>,
    pub account: String,
    pub period: String,
    pub next: Option<String>,
    pub can_run: bool,
    pub run_action: &'static str,
    pub run_period: String,
}

impl IntoResponse for InvoicesPage {
    fn into_response(self) -> Response {
        render(&self, "invoices.html")
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub period: String,
    pub before: Option<i64>,
    pub ok: Option<String>,
    /// The bill run's summary, shown with `ok=bill_run`.
    pub created: Option<u64>,
    pub existing: Option<u64>,
}

fn last_month(p: &Principal) -> String {
    let today = jiff::Timestamp::now()
        .to_zoned(p.tenant.zone().unwrap_or(jiff::tz::TimeZone::UTC))
        .date();
    toll_billing::PeriodLabel::of(today)
        .previous()
        .map(|l| l.to_string())
        .unwrap_or_default()
}

async fn list_page(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    uri: &Uri,
    q: &ListQuery,
    flashes: Vec<Flash>,
) -> Result<InvoicesPage, ApiError> {
    let t = lang.messages();
    let account = q.account.trim();
    let period = q.period.trim();
    if !period.is_empty() {
        period
            .parse::<toll_billing::PeriodLabel>()
            .map_err(|e| ApiError::bad("period", e.to_string()))?;
    }
    let rows = state
        .store()
        .invoices(
            p.tenant_id(),
            (!account.is_empty()).then_some(account),
            (!period.is_empty()).then_some(period),
            q.before,
            PAGE + 1,
        )
        .await?;
    let more = rows.len() as i64 > PAGE;
    let shown: Vec<&InvoiceSummary> = rows.iter().take(PAGE as usize).collect();
    let next = more
        .then(|| {
            shown.last().map(|r| {
                format!(
                    "{}?account={}&period={}&before={}",
                    paths::INVOICES,
                    enc(account),
                    enc(period),
                    r.id
                )
            })
        })
        .flatten();
    Ok(InvoicesPage {
        layout: frame(
            Some(p),
            lang,
            &path_of(uri),
            Nav::Invoices,
            |t| t.invoices_title,
            flashes,
        ),
        rows: shown
            .iter()
            .map(|i| invoice_row(t, i, paths::INVOICES))
            .collect(),
        account: account.to_string(),
        period: period.to_string(),
        next,
        can_run: p.can(Perm::InvoiceWrite),
        run_action: paths::BILL_RUN,
        run_period: last_month(p),
    })
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn ok_flash(t: &'static Messages, q: &ListQuery) -> Vec<Flash> {
    let text = match q.ok.as_deref() {
        Some("bill_run") => format!(
            "{}{} / {}",
            t.bill_run_ok,
            q.created.unwrap_or(0),
            q.created.unwrap_or(0) + q.existing.unwrap_or(0)
        ),
        Some("finalized") => t.inv_finalized_ok.to_string(),
        Some("voided") => t.inv_voided_ok.to_string(),
        Some("credited") => t.inv_credited_ok.to_string(),
        Some("payment") => t.inv_payment_ok.to_string(),
        _ => return vec![],
    };
    vec![Flash {
        kind: FlashKind::Success,
        text,
    }]
}

/// `GET /ui/invoices?account=&period=&before=`: newest first.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceRead);
    let lang = Lang::from_headers(&headers);
    match list_page(&state, &p, lang, &uri, &q, ok_flash(lang.messages(), &q)).await {
        Ok(page) => page.into_response(),
        Err(e) => error_page(lang, &p, e),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct BillRunForm {
    #[serde(default)]
    pub period: String,
    /// A checkbox: present when ticked.
    pub draft: Option<String>,
}

/// `POST /ui/invoices/bill-run`: invoices every account for the period, then back to the
/// period's invoices.
pub async fn bill_run(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Form(f): Form<BillRunForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceWrite);
    let lang = Lang::from_headers(&headers);
    let period = f.period.trim().to_string();
    let done = async {
        let label: toll_billing::PeriodLabel = period
            .parse()
            .map_err(|e: toll_billing::cycle::CycleError| ApiError::bad("period", e.to_string()))?;
        let opts = BillRunOptions {
            finalize: f.draft.is_none(),
            batch: DEFAULT_BATCH,
            today: crate::api::invoices::today(&p)?,
        };
        let s = state
            .store()
            .bill_run(&p.tenant, label, &opts, |_, _| {})
            .await?;
        state.store().allocate_all_credit(p.tenant_id()).await?;
        if s.created > 0 {
            audit(&p, "bill_run", "period", &s.period)
                .after(
                    serde_json::json!({"created": s.created, "first_number": s.first_number,
                    "last_number": s.last_number, "draft": f.draft.is_some()}),
                )
                .write(&state, &p)
                .await?;
        }
        Ok::<_, ApiError>(s)
    }
    .await;
    match done {
        Ok(s) => see_other(&format!(
            "{}?period={period}&ok=bill_run&created={}&existing={}",
            paths::INVOICES,
            s.created,
            s.existing
        )),
        Err(e) => {
            let q = ListQuery::default();
            let flashes = vec![danger(lang.messages(), &e)];
            match list_page(&state, &p, lang, &uri, &q, flashes).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
                Err(e) => error_page(lang, &p, e),
            }
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "invoice.html")]
pub struct InvoicePage {
    pub layout: Layout,
    pub id: i64,
    pub title: String,
    pub kind: &'static str,
    pub account: String,
    pub account_href: String,
    pub customer: String,
    pub period: String,
    pub status: &'static str,
    pub status_class: &'static str,
    pub total: String,
    pub paid: String,
    pub created: String,
    pub document_src: String,
    pub pdf_zh: String,
    pub pdf_en: String,
    /// What the status and the principal's role allow.
    pub can_finalize: bool,
    pub can_credit: bool,
    pub can_pay: bool,
    pub base: String,
}

impl IntoResponse for InvoicePage {
    fn into_response(self) -> Response {
        render(&self, "invoice.html")
    }
}

async fn invoice_page(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    uri: &Uri,
    id: i64,
    flashes: Vec<Flash>,
) -> Result<InvoicePage, ApiError> {
    let t = lang.messages();
    let inv = state.store().invoice(p.tenant_id(), id).await?;
    let (status, status_class) = status_text(t, &inv.status);
    let is_invoice = inv.corrects.is_none();
    let base = format!("{}/{id}", paths::INVOICES);
    let cur = inv.invoice.currency.to_string();
    Ok(InvoicePage {
        layout: frame(
            Some(p),
            lang,
            &path_of(uri),
            Nav::Invoices,
            |t| t.invoices_title,
            flashes,
        ),
        id,
        title: inv
            .number
            .clone()
            .unwrap_or_else(|| t.inv_status_draft.to_string()),
        kind: if is_invoice {
            t.inv_kind_invoice
        } else {
            t.inv_kind_credit_note
        },
        account_href: format!("{}/{}", paths::ACCOUNTS, enc(&inv.account)),
        account: inv.account.clone(),
        customer: inv.customer.clone(),
        period: format!("{} – {}", inv.period_start, inv.period_end),
        status,
        status_class,
        total: money(&cur, inv.invoice.total),
        paid: money(&cur, inv.paid),
        created: when(p, inv.created_ms),
        document_src: format!("{base}/document?lang={}", doc_lang(lang).as_str()),
        pdf_zh: format!("{base}/pdf?lang=zh-CN"),
        pdf_en: format!("{base}/pdf?lang=en"),
        can_finalize: inv.status == "draft" && p.can(Perm::InvoiceWrite),
        can_credit: is_invoice
            && matches!(inv.status.as_str(), "finalized" | "paid")
            && p.can(Perm::InvoiceWrite),
        can_pay: is_invoice && inv.status == "finalized" && p.can(Perm::TopUp),
        base,
    })
}

fn doc_lang(lang: Lang) -> toll_billing::Lang {
    match lang {
        Lang::ZhCn => toll_billing::Lang::Zh,
        _ => toll_billing::Lang::En,
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct OkOnly {
    pub ok: Option<String>,
}

/// `GET /ui/invoices/{id}`: the invoice as printed, its figures and actions.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<OkOnly>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceRead);
    let lang = Lang::from_headers(&headers);
    let flashes = ok_flash(
        lang.messages(),
        &ListQuery {
            ok: q.ok,
            ..ListQuery::default()
        },
    );
    match invoice_page(&state, &p, lang, &uri, id, flashes).await {
        Ok(page) => page.into_response(),
        Err(e) => error_page(lang, &p, e),
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct DocQuery {
    pub lang: Option<String>,
}

fn requested_lang(q: &DocQuery, ui: Lang) -> toll_billing::Lang {
    q.lang
        .as_deref()
        .and_then(|l| l.parse().ok())
        .unwrap_or(doc_lang(ui))
}

fn doc_response(r: Result<Response, ApiError>, lang: Lang, p: &Principal) -> Response {
    r.unwrap_or_else(|e| error_page(lang, p, e))
}

/// `GET /ui/invoices/{id}/document?lang=`: the printable page, framed by the invoice page.
pub async fn document(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<DocQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceRead);
    let lang = Lang::from_headers(&headers);
    let r = async {
        let inv = state.store().invoice(p.tenant_id(), id).await?;
        invoice_docs::html_response(&invoice_docs::document(
            &p.tenant,
            &inv,
            requested_lang(&q, lang),
        )?)
    }
    .await;
    doc_response(r, lang, &p)
}

/// `GET /ui/invoices/{id}/pdf?lang=`: the PDF download.
pub async fn pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<DocQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceRead);
    let lang = Lang::from_headers(&headers);
    let r = async {
        let inv = state.store().invoice(p.tenant_id(), id).await?;
        invoice_docs::pdf_response(invoice_docs::document(
            &p.tenant,
            &inv,
            requested_lang(&q, lang),
        )?)
        .await
    }
    .await;
    doc_response(r, lang, &p)
}

/// After an action: back to the invoice with its message, or the invoice page again with the
/// reason it failed (422).
async fn after_action(
    state: &AppState,
    p: &Principal,
    lang: Lang,
    uri: &Uri,
    id: i64,
    done: Result<&str, ApiError>,
) -> Response {
    match done {
        Ok(ok) => see_other(&format!("{}/{id}?ok={ok}", paths::INVOICES)),
        Err(e) => {
            let flashes = vec![danger(lang.messages(), &e)];
            match invoice_page(state, p, lang, uri, id, flashes).await {
                Ok(page) => (StatusCode::UNPROCESSABLE_ENTITY, page).into_response(),
                Err(e) => error_page(lang, p, e),
            }
        }
    }
}

/// `POST /ui/invoices/{id}/finalize`.
pub async fn finalize(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceWrite);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let inv = state
            .store()
            .finalize_invoice(p.tenant_id(), id, crate::api::invoices::today(&p)?)
            .await?;
        state
            .store()
            .allocate_credit(p.tenant_id(), &inv.account)
            .await?;
        audit(&p, "invoice.finalize", "invoice", &id.to_string())
            .after(serde_json::json!({"number": inv.number}))
            .write(&state, &p)
            .await?;
        Ok("finalized")
    }
    .await;
    after_action(&state, &p, lang, &uri, id, done).await
}

/// `POST /ui/invoices/{id}/void`.
pub async fn void(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceWrite);
    let lang = Lang::from_headers(&headers);
    let done = async {
        state.store().void_invoice(p.tenant_id(), id).await?;
        audit(&p, "invoice.void", "invoice", &id.to_string())
            .after(serde_json::json!({"status": "void"}))
            .write(&state, &p)
            .await?;
        Ok("voided")
    }
    .await;
    after_action(&state, &p, lang, &uri, id, done).await
}

#[derive(Debug, Deserialize, Default)]
pub struct CreditForm {
    #[serde(default)]
    pub reason: String,
}

/// `POST /ui/invoices/{id}/credit`: a credit note for the whole invoice; on to the note.
pub async fn credit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Form(f): Form<CreditForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::InvoiceWrite);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let cn = state
            .store()
            .credit_invoice(
                p.tenant_id(),
                id,
                &f.reason,
                crate::api::invoices::today(&p)?,
            )
            .await?;
        audit(&p, "invoice.credit", "invoice", &id.to_string())
            .after(serde_json::json!({"credit_note": cn.number, "reason": f.reason.trim()}))
            .write(&state, &p)
            .await?;
        Ok::<_, ApiError>(cn.id)
    }
    .await;
    match done {
        Ok(cn) => see_other(&format!("{}/{cn}?ok=credited", paths::INVOICES)),
        Err(e) => after_action(&state, &p, lang, &uri, id, Err(e)).await,
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct PaymentForm {
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub amount: String,
    #[serde(default)]
    pub reference: String,
    /// A key the form was rendered with: a double submit records one payment.
    #[serde(default)]
    pub key: String,
}

/// `POST /ui/invoices/{id}/payment`: money received for the invoice's account, allocated to
/// its unpaid invoices oldest first.
pub async fn payment(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Form(f): Form<PaymentForm>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::TopUp);
    let lang = Lang::from_headers(&headers);
    let done = async {
        let method = match f.method.as_str() {
            "bank_transfer" => PaymentMethod::BankTransfer,
            "cash" => PaymentMethod::Cash,
            "card" => PaymentMethod::Card,
            other => return Err(ApiError::bad("method", format!("{other:?}"))),
        };
        let amount = crate::api::types::parse_money("amount", &f.amount)?;
        if f.key.trim().is_empty() {
            return Err(ApiError::bad("key", "required"));
        }
        let inv = state.store().invoice(p.tenant_id(), id).await?;
        let req = PaymentRequest {
            account: inv.account.clone(),
            method,
            currency: inv.invoice.currency,
            amount,
            reference: f.reference.trim().to_string(),
            key: format!("ui-{}", f.key.trim()),
            received_ms: toll_store::now_ms(),
        };
        let r = state.store().record_payment(p.tenant_id(), &req).await?;
        if !r.duplicate {
            audit(&p, "payment.record", "account", &inv.account)
                .after(serde_json::json!({"payment": r.payment.id,
                    "amount": r.payment.amount.to_string(), "method": f.method}))
                .write(&state, &p)
                .await?;
        }
        Ok("payment")
    }
    .await;
    after_action(&state, &p, lang, &uri, id, done).await
}

async fn own(state: &AppState, p: &Principal, id: i64) -> Result<StoredInvoice, ApiError> {
    crate::api::invoices::own_invoice(state, p, id).await
}

/// `GET /portal/invoices/{id}/document?lang=`: the customer's own invoice as printed.
pub async fn portal_document(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<DocQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SelfService);
    let lang = Lang::from_headers(&headers);
    let r = async {
        let inv = own(&state, &p, id).await?;
        invoice_docs::html_response(&invoice_docs::document(
            &p.tenant,
            &inv,
            requested_lang(&q, lang),
        )?)
    }
    .await;
    doc_response(r, lang, &p)
}

/// `GET /portal/invoices/{id}/pdf?lang=`: the customer's own invoice as a PDF.
pub async fn portal_pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<i64>,
    Query(q): Query<DocQuery>,
) -> Response {
    let p = guarded!(state, headers, uri, Perm::SelfService);
    let lang = Lang::from_headers(&headers);
    let r = async {
        let inv = own(&state, &p, id).await?;
        invoice_docs::pdf_response(invoice_docs::document(
            &p.tenant,
            &inv,
            requested_lang(&q, lang),
        )?)
        .await
    }
    .await;
    doc_response(r, lang, &p)
}
