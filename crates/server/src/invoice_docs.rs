//! Invoices as documents: the [`InvoiceDocument`] of a stored invoice, and its HTML page or
//! PDF as an HTTP response (for the API, the admin UI and the customers' portal alike).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use toll_billing::{InvoiceDocument, Lang, Party};
use toll_store::billing::invoices::StoredInvoice;
use toll_store::{StoreError, Tenant};

use crate::error::ApiError;

/// The document of `inv`, issued by `tenant`, in `lang`: dated the day it was finalized (the
/// day it was made, for a draft) in the tenant's zone.
pub fn document(
    tenant: &Tenant,
    inv: &StoredInvoice,
    lang: Lang,
) -> Result<InvoiceDocument, ApiError> {
    let zone = tenant.zone()?;
    let corrupt = |what: &str| ApiError::Store(StoreError::Corrupt(format!("invoice {what}")));
    let issued = jiff::Timestamp::from_millisecond(inv.finalized_ms.unwrap_or(inv.created_ms))
        .map_err(|_| corrupt("time"))?
        .to_zoned(zone)
        .date();
    let start: jiff::civil::Date = inv.period_start.parse().map_err(|_| corrupt("period"))?;
    let end: jiff::civil::Date = inv.period_end.parse().map_err(|_| corrupt("period"))?;
    Ok(InvoiceDocument {
        number: inv.number.clone(),
        issue_date: issued,
        period_start: start,
        period_last_day: end.yesterday().map_err(|_| corrupt("period"))?,
        seller: Party {
            name: tenant.name.clone(),
            address: Vec::new(),
            tax_id: None,
        },
        buyer: Party {
            name: inv.customer.clone(),
            address: Vec::new(),
            tax_id: None,
        },
        account: inv.account.clone(),
        status: inv.status.clone(),
        lang,
        note: (!inv.note.is_empty()).then(|| inv.note.clone()),
        invoice: inv.invoice.clone(),
    })
}

/// The file name a download is saved under.
fn file_name(doc: &InvoiceDocument, ext: &str) -> String {
    let base = doc.number.clone().unwrap_or_else(|| "draft".to_string());
    format!("{base}-{}.{ext}", doc.lang.as_str())
}

fn refused(e: toll_render::RenderError) -> ApiError {
    ApiError::Store(StoreError::Refused(e.to_string()))
}

/// The invoice's printable HTML page. It may be framed by the UI's own pages only, and runs no
/// script: every customer string in it is escaped, and the policy forbids scripts anyway.
pub fn html_response(doc: &InvoiceDocument) -> Result<Response, ApiError> {
    let html = toll_render::html(doc).map_err(refused)?;
    let mut res = html.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
             frame-ancestors 'self'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}

/// The invoice as a PDF download. Typesetting takes milliseconds of CPU: it runs on the
/// blocking pool, not on the threads that serve requests.
pub async fn pdf_response(doc: InvoiceDocument) -> Result<Response, ApiError> {
    let name = file_name(&doc, "pdf");
    let bytes = tokio::task::spawn_blocking(move || toll_render::pdf(&doc))
        .await
        .map_err(|e| ApiError::Unavailable(format!("rendering stopped: {e}")))?
        .map_err(refused)?;
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
