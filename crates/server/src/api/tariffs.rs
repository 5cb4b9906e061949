//! Tariffs: upload (a CGRateS CSV folder as a zip, or Toll's own TOML file), versions,
//! activation. An upload is compiled before it is stored: a tariff with errors is refused with
//! every error (file, line, column, reason), never stored half-valid.

use std::io::Read;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use toll_rating::source::SourceFile;
use toll_rating::source::compile::compile_files;
use toll_store::audit::AuditEntry;
use toll_store::tariffs::{MAX_TARIFF_FILES, TariffFile, TariffVersion};
use utoipa::{IntoParams, ToSchema};

use crate::api::types::rfc3339;
use crate::error::ApiError;
use crate::principal::Principal;
use crate::state::AppState;

/// Largest uncompressed size of an uploaded tariff: a zip bomb stops here.
pub const MAX_TARIFF_BYTES: u64 = 256 << 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct Tariff {
    pub code: String,
    pub version: i64,
    /// `toll` or `cgrates`.
    pub format: String,
    /// Counts of the compiled tariff: destinations, prefixes, rates, plans, …
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    pub uploaded_by: String,
    pub uploaded_at: String,
    pub active: bool,
    pub activated_by: Option<String>,
    pub activated_at: Option<String>,
}

impl From<TariffVersion> for Tariff {
    fn from(v: TariffVersion) -> Tariff {
        Tariff {
            code: v.code,
            version: v.version,
            format: v.format,
            summary: v.summary,
            uploaded_by: v.uploaded_by,
            uploaded_at: rfc3339(v.uploaded_ms),
            active: v.active,
            activated_by: v.activated_by,
            activated_at: v.activated_ms.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TariffUploaded {
    pub tariff: Tariff,
    /// Warnings of the check (the tariff was stored).
    pub warnings: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The tariff's code; each upload of a code is its next version.
    pub code: String,
    /// The file name of a single uploaded file (default `tariff.toml`).
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TariffFileInfo {
    pub name: String,
    pub bytes: usize,
    /// The content, when it is text (a tariff's files are).
    pub text: Option<String>,
}

/// Every version of every tariff.
#[utoipa::path(get, path = "/api/v1/tariffs", tag = "tariffs",
    responses((status = 200, body = Vec<Tariff>)))]
pub async fn list(
    State(state): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<Tariff>>, ApiError> {
    let v = state.store().tariff_versions(p.tenant_id()).await?;
    Ok(Json(v.into_iter().map(Tariff::from).collect()))
}

/// One version of a tariff.
#[utoipa::path(get, path = "/api/v1/tariffs/{code}/versions/{version}", tag = "tariffs",
    params(("code" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = Tariff),
        (status = 404, description = "no such tariff version", content_type = "application/problem+json")))]
pub async fn version(
    State(state): State<AppState>,
    p: Principal,
    Path((code, version)): Path<(String, i64)>,
) -> Result<Json<Tariff>, ApiError> {
    let v = state
        .store()
        .tariff_version(p.tenant_id(), &code, Some(version))
        .await?;
    Ok(Json(v.into()))
}

/// The source files of a version.
#[utoipa::path(get, path = "/api/v1/tariffs/{code}/versions/{version}/files", tag = "tariffs",
    params(("code" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = Vec<TariffFileInfo>),
        (status = 404, description = "no such tariff version", content_type = "application/problem+json")))]
pub async fn files(
    State(state): State<AppState>,
    p: Principal,
    Path((code, version)): Path<(String, i64)>,
) -> Result<Json<Vec<TariffFileInfo>>, ApiError> {
    let v = state
        .store()
        .tariff_version(p.tenant_id(), &code, Some(version))
        .await?;
    let files = state.store().tariff_files(p.tenant_id(), v.id).await?;
    Ok(Json(
        files
            .into_iter()
            .map(|f| TariffFileInfo {
                bytes: f.content.len(),
                text: String::from_utf8(f.content).ok(),
                name: f.name,
            })
            .collect(),
    ))
}

/// Uploads a tariff as the next version of `code`: a zip of a CGRateS CSV folder (or of a
/// folder with `tariff.toml`) as `application/zip`, or one Toll TOML file as
/// `application/toml` / `text/plain`. It is compiled first; errors are all reported.
#[utoipa::path(post, path = "/api/v1/tariffs", tag = "tariffs",
    params(UploadQuery),
    request_body(description = "a zip of the tariff's files, or one Toll TOML file",
        content(
            (Vec<u8> = "application/zip"),
            (String = "application/toml"),
            (String = "text/plain"),
        )),
    responses((status = 201, body = TariffUploaded),
        (status = 400, description = "bad zip or query", content_type = "application/problem+json"),
        (status = 415, description = "neither zip nor TOML", content_type = "application/problem+json"),
        (status = 422, description = "the tariff has errors, each with file, line, column", content_type = "application/problem+json")))]
pub async fn upload(
    State(state): State<AppState>,
    p: Principal,
    q: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<TariffUploaded>), ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad("code", e.body_text()))?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let files = match ctype.as_str() {
        "application/zip" | "application/x-zip-compressed" => unzip_upload(body.to_vec()).await?,
        "application/toml" | "text/plain" | "application/octet-stream" => {
            let name = q.name.clone().unwrap_or_else(|| "tariff.toml".into());
            if name.contains(['/', '\\']) || name.is_empty() {
                return Err(ApiError::bad("name", "a plain file name"));
            }
            vec![SourceFile {
                name,
                bytes: body.to_vec(),
            }]
        }
        other => return Err(ApiError::UnsupportedMediaType(other.to_string())),
    };
    let uploaded = store_upload(&state, &p, &q.code, files).await?;
    Ok((StatusCode::CREATED, Json(uploaded)))
}

/// Unpacks an uploaded zip off the async threads ([`unzip`]).
pub async fn unzip_upload(body: Vec<u8>) -> Result<Vec<SourceFile>, ApiError> {
    tokio::task::spawn_blocking(move || unzip(&body))
        .await
        .map_err(|e| ApiError::bad("body", e.to_string()))?
}

/// Compiles uploaded files and stores them as the next version of `code`, with its audit
/// entry: the one path of every tariff upload (API and UI), so that nothing reaches the store
/// without being compiled first.
pub async fn store_upload(
    state: &AppState,
    p: &Principal,
    code: &str,
    files: Vec<SourceFile>,
) -> Result<TariffUploaded, ApiError> {
    if files.is_empty() {
        return Err(ApiError::bad("body", "no .csv or .toml file in the upload"));
    }
    let (files, loaded) = tokio::task::spawn_blocking(move || {
        let r = compile_files(&files);
        (files, r)
    })
    .await
    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let loaded = loaded.map_err(|d| ApiError::InvalidTariff(d.errors().cloned().collect()))?;
    let format = match loaded.format {
        toll_rating::source::Format::Cgrates => "cgrates",
        toll_rating::source::Format::Toll => "toll",
    };
    let mut summary = serde_json::to_value(loaded.tariff.stats)
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    if let Some(obj) = summary.as_object_mut() {
        if let Some(c) = loaded.tariff.currency {
            obj.insert("currency".into(), c.as_str().into());
        }
        obj.insert("name".into(), loaded.tariff.name.clone().into());
    }
    let stored: Vec<TariffFile> = files
        .into_iter()
        .map(|f| TariffFile {
            name: f.name,
            content: f.bytes,
        })
        .collect();
    let v = state
        .store()
        .add_tariff_version(
            p.tenant_id(),
            code.trim(),
            format,
            &summary,
            &stored,
            &p.actor,
        )
        .await?;
    let t = Tariff::from(v);
    let after = serde_json::to_value(&t).unwrap_or_default();
    state
        .store()
        .audit(
            p.tenant_id(),
            &AuditEntry {
                actor: &p.actor,
                action: "tariff.upload",
                entity: "tariff",
                entity_key: &format!("{} v{}", t.code, t.version),
                before: None,
                after: Some(&after),
            },
        )
        .await?;
    Ok(TariffUploaded {
        tariff: t,
        warnings: loaded
            .warnings
            .items
            .iter()
            .map(|d| d.to_string())
            .collect(),
    })
}

/// The `.csv` and `.toml` files of a zip, by base name (folders inside it are flattened).
fn unzip(body: &[u8]) -> Result<Vec<SourceFile>, ApiError> {
    let bad = |e: &dyn std::fmt::Display| ApiError::bad("body", format!("not a readable zip: {e}"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).map_err(|e| bad(&e))?;
    let mut files: Vec<SourceFile> = Vec::new();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| bad(&e))?;
        if entry.is_dir() {
            continue;
        }
        let full = entry.name().map_err(|e| bad(&e))?.to_string();
        let name = full.rsplit(['/', '\\']).next().unwrap_or("").to_string();
        let wanted = name.ends_with(".csv") || name.ends_with(".toml");
        if !wanted || name.starts_with('.') || full.starts_with("__MACOSX") {
            continue;
        }
        if files.iter().any(|f| f.name == name) {
            return Err(ApiError::bad("body", format!("{name} is in the zip twice")));
        }
        if files.len() >= MAX_TARIFF_FILES {
            return Err(ApiError::bad(
                "body",
                format!("more than {MAX_TARIFF_FILES} files"),
            ));
        }
        let mut bytes = Vec::new();
        let room = MAX_TARIFF_BYTES.saturating_sub(total);
        (&mut entry)
            .take(room + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(&e))?;
        total += bytes.len() as u64;
        if total > MAX_TARIFF_BYTES {
            return Err(ApiError::TooLarge(format!(
                "the tariff is larger than {MAX_TARIFF_BYTES} bytes uncompressed"
            )));
        }
        files.push(SourceFile { name, bytes });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Makes a version the active tariff: the server rates with it from now on.
#[utoipa::path(post, path = "/api/v1/tariffs/{code}/versions/{version}/activate", tag = "tariffs",
    params(("code" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = Tariff),
        (status = 404, description = "no such tariff version", content_type = "application/problem+json")))]
pub async fn activate(
    State(state): State<AppState>,
    p: Principal,
    Path((code, version)): Path<(String, i64)>,
) -> Result<Json<Tariff>, ApiError> {
    Ok(Json(activate_version(&state, &p, &code, version).await?))
}

/// Makes `code` v`version` the active tariff, drops the cached one and records who did it:
/// shared by the API and the UI.
pub async fn activate_version(
    state: &AppState,
    p: &Principal,
    code: &str,
    version: i64,
) -> Result<Tariff, ApiError> {
    let before = state.store().active_tariff(p.tenant_id()).await?;
    let v = state
        .store()
        .activate_tariff(p.tenant_id(), code, version, &p.actor)
        .await?;
    state.tariffs().invalidate(p.tenant_id());
    let t = Tariff::from(v);
    let before =
        before.map(|b| serde_json::json!({"active": format!("{} v{}", b.code, b.version)}));
    let after = serde_json::json!({"active": format!("{} v{}", t.code, t.version)});
    state
        .store()
        .audit(
            p.tenant_id(),
            &AuditEntry {
                actor: &p.actor,
                action: "tariff.activate",
                entity: "tariff",
                entity_key: &format!("{} v{}", t.code, t.version),
                before: before.as_ref(),
                after: Some(&after),
            },
        )
        .await?;
    Ok(t)
}
