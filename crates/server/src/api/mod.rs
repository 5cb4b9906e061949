//! The REST API under `/api/v1`: its routes grouped by the permission they need, and the
//! OpenAPI document built from the same handlers.
//!
//! Why groups: each group's routes get the guard of its permission as a route layer *and* that
//! permission written into their OpenAPI operations (`x-toll-permission`, `security`). The
//! document is thus generated from what is enforced, and [`route_table`] — the list the
//! role tests walk — is read back from it; a route cannot be mounted without a guard or
//! documented with a permission it does not check.

pub mod accounts;
pub mod audit;
pub mod cdrs;
pub mod idempotency;
pub mod invoices;
pub mod keys;
pub mod ledger;
pub mod me;
pub mod payments;
pub mod plans;
pub mod rating;
pub mod session;
pub mod suspense;
pub mod tariffs;
pub mod types;
pub mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, SecurityRequirement};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::Perm;
use crate::principal::{Guard, guard};
use crate::state::AppState;

/// The OpenAPI extension naming an operation's permission (`public` for none).
pub const PERMISSION_EXT: &str = "x-toll-permission";

/// One route of the API, as the role tests enumerate them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDef {
    pub method: String,
    pub path: String,
    /// `None`: public (the login).
    pub perm: Option<String>,
}

/// The API's routes (guarded) and its OpenAPI document.
pub fn api(state: &AppState) -> (Router<AppState>, OpenApi) {
    let mut doc = base_doc();
    let mut router = Router::new();
    let mut add = |perm: Option<Perm>, r: OpenApiRouter<AppState>| {
        let (r, mut d) = r.split_for_parts();
        mark(&mut d, perm);
        let r = match perm {
            Some(perm) => r
                .route_layer(from_fn_with_state(state.clone(), idempotency::idempotent))
                .route_layer(from_fn_with_state(
                    Guard {
                        state: state.clone(),
                        perm,
                    },
                    guard,
                )),
            None => r,
        };
        router = std::mem::take(&mut router).merge(r);
        doc.merge(d);
    };
    add(None, OpenApiRouter::new().routes(routes!(session::login)));
    // Authenticated by the provider's signature, not by a session or key.
    add(
        None,
        OpenApiRouter::new().routes(routes!(payments::stripe_webhook)),
    );
    add(
        Some(Perm::Authenticated),
        OpenApiRouter::new().routes(routes!(session::logout, session::me)),
    );
    add(
        Some(Perm::UserAdmin),
        OpenApiRouter::new()
            .routes(routes!(users::list, users::create))
            .routes(routes!(keys::list, keys::create))
            .routes(routes!(keys::revoke)),
    );
    add(
        Some(Perm::TariffRead),
        OpenApiRouter::new()
            .routes(routes!(tariffs::list))
            .routes(routes!(tariffs::version))
            .routes(routes!(tariffs::files)),
    );
    add(
        Some(Perm::TariffWrite),
        // A zipped CGRateS folder of 200,000 prefixes is megabytes: the ingestion limit, not
        // the 2 MB default of JSON bodies.
        OpenApiRouter::new()
            .routes(routes!(tariffs::upload))
            .routes(routes!(tariffs::activate))
            .layer(DefaultBodyLimit::max(state.config().max_body_bytes)),
    );
    add(
        Some(Perm::Rate),
        OpenApiRouter::new()
            .routes(routes!(rating::rate))
            .routes(routes!(rating::authorize)),
    );
    add(
        Some(Perm::AuditRead),
        OpenApiRouter::new().routes(routes!(audit::list)),
    );
    add(
        Some(Perm::PlanRead),
        OpenApiRouter::new()
            .routes(routes!(plans::list))
            .routes(routes!(plans::versions))
            .routes(routes!(plans::history)),
    );
    add(
        Some(Perm::PlanEdit),
        OpenApiRouter::new()
            .routes(routes!(plans::create))
            .routes(routes!(plans::edit))
            .routes(routes!(plans::submit)),
    );
    add(
        Some(Perm::PlanApprove),
        OpenApiRouter::new()
            .routes(routes!(plans::approve))
            .routes(routes!(plans::reject)),
    );
    add(
        Some(Perm::PlanPublish),
        OpenApiRouter::new()
            .routes(routes!(plans::activate))
            .routes(routes!(plans::retire)),
    );
    add(
        Some(Perm::AccountRead),
        OpenApiRouter::new()
            .routes(routes!(accounts::list))
            .routes(routes!(accounts::get))
            .routes(routes!(accounts::subscription))
            .routes(routes!(accounts::preview_change))
            .routes(routes!(accounts::changes))
            .routes(routes!(me::list_requests)),
    );
    add(
        Some(Perm::AccountWrite),
        OpenApiRouter::new()
            .routes(routes!(accounts::create_customer))
            .routes(routes!(accounts::create_account))
            .routes(routes!(accounts::add_subscriber))
            .routes(routes!(accounts::subscribe))
            .routes(routes!(accounts::change_plan)),
    );
    add(
        Some(Perm::TopUp),
        OpenApiRouter::new()
            .routes(routes!(ledger::top_up))
            .routes(routes!(payments::record)),
    );
    add(
        Some(Perm::LedgerRead),
        OpenApiRouter::new()
            .routes(routes!(ledger::entries))
            .routes(routes!(ledger::verify)),
    );
    add(
        Some(Perm::CdrRead),
        OpenApiRouter::new()
            .routes(routes!(cdrs::list))
            .routes(routes!(cdrs::csv)),
    );
    // A CDR file is larger than a JSON request: the ingestion limit applies.
    add(
        Some(Perm::CdrWrite),
        OpenApiRouter::new()
            .routes(routes!(cdrs::upload))
            .layer(DefaultBodyLimit::max(state.config().max_body_bytes)),
    );
    add(
        Some(Perm::SuspenseRead),
        OpenApiRouter::new()
            .routes(routes!(suspense::list))
            .routes(routes!(suspense::get)),
    );
    add(
        Some(Perm::SuspenseWrite),
        OpenApiRouter::new()
            .routes(routes!(suspense::edit))
            .routes(routes!(suspense::reprocess))
            .routes(routes!(suspense::discard)),
    );
    add(
        Some(Perm::InvoiceRead),
        OpenApiRouter::new()
            .routes(routes!(invoices::list))
            .routes(routes!(invoices::get))
            .routes(routes!(invoices::pdf))
            .routes(routes!(invoices::html))
            .routes(routes!(payments::list))
            .routes(routes!(payments::statement)),
    );
    add(
        Some(Perm::InvoiceWrite),
        OpenApiRouter::new()
            .routes(routes!(invoices::run))
            .routes(routes!(invoices::finalize))
            .routes(routes!(invoices::void))
            .routes(routes!(invoices::credit)),
    );
    add(
        Some(Perm::SelfService),
        OpenApiRouter::new()
            .routes(routes!(me::account))
            .routes(routes!(me::usage))
            .routes(routes!(me::request_top_up))
            .routes(routes!(invoices::my_list))
            .routes(routes!(invoices::my_get))
            .routes(routes!(invoices::my_pdf))
            .routes(routes!(payments::my_statement)),
    );
    (router, doc)
}

fn base_doc() -> OpenApi {
    let mut doc = OpenApi::default();
    doc.openapi = utoipa::openapi::OpenApiVersion::Version31;
    doc.info.title = "Toll API".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Toll's REST API: tariffs, rating, plans, accounts, CDRs, suspense, ledger and audit. \
         Errors are RFC 9457 problem documents (`application/problem+json`) with a stable \
         `code`. Authenticate with the `toll_session` cookie (POST /api/v1/session) or an API \
         key (`Authorization: Bearer toll_…`). Each operation's `x-toll-permission` names what \
         it needs."
            .into(),
    );
    doc.info.license = Some(utoipa::openapi::License::new("Apache-2.0"));
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "api_key",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("toll_<prefix>_<secret>")
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
            crate::principal::SESSION_COOKIE,
        ))),
    );
    doc
}

/// Writes the permission into every operation of a group's document.
fn mark(doc: &mut OpenApi, perm: Option<Perm>) {
    let name = perm_name(perm);
    for item in doc.paths.paths.values_mut() {
        for op in operations(item) {
            let ext = ExtensionsBuilder::new()
                .add(PERMISSION_EXT, serde_json::Value::String(name.clone()))
                .build();
            match op.extensions.as_mut() {
                Some(e) => e.merge(ext),
                None => op.extensions = Some(ext),
            }
            if perm.is_some() {
                op.security = Some(vec![
                    SecurityRequirement::new("session", Vec::<String>::new()),
                    SecurityRequirement::new("api_key", Vec::<String>::new()),
                ]);
            }
        }
    }
}

fn perm_name(perm: Option<Perm>) -> String {
    match perm {
        None => "public".into(),
        Some(p) => serde_json::to_value(p)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Every route of the API with its permission, read from the document as served (JSON).
pub fn route_table(doc: &serde_json::Value) -> Vec<RouteDef> {
    let mut out = Vec::new();
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return out;
    };
    for (path, item) in paths {
        for method in ["get", "put", "post", "delete", "patch"] {
            let Some(op) = item.get(method) else { continue };
            let perm = op
                .get(PERMISSION_EXT)
                .and_then(|v| v.as_str())
                .filter(|p| *p != "public")
                .map(str::to_string);
            out.push(RouteDef {
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                perm,
            });
        }
    }
    out
}
