//! The UI's static files (`crates/server/assets/`: Toll's own CSS and JavaScript, and the
//! vendored Bootstrap, htmx and ECharts listed in `assets/vendor/VERSIONS`), embedded in the
//! binary and served at `GET /assets/{*path}`.
//!
//! Embedded with rust-embed rather than a hand-kept `include_bytes!` table: the folder is the
//! table (a new file needs no code), and it hashes every file at compile time, which gives the
//! versioned URLs and ETags below for free. Its `debug-embed` feature is on, so debug builds and
//! tests serve the same embedded bytes as a release does instead of reading the folder at run
//! time (the binary is deployed alone; a test that passed against the disk would prove less).
//!
//! Caching: pages link to [`url`]s that carry the file's content hash (`?v=…`), and a request
//! with the current hash is answered `immutable` for a year — a new build changes the hash and
//! so the URL, never the bytes behind an old URL. A request without it (or with a stale one)
//! gets `no-cache`: the browser revalidates with the ETag and usually gets a 304.

use std::borrow::Cow;
use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

/// Where the files are served.
pub const PREFIX: &str = "/assets/";

/// `Cache-Control` of a versioned URL: the bytes behind it never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of an unversioned URL: cache, but ask (with the ETag) before each use.
pub const REVALIDATE: &str = "public, no-cache";

/// Hex digits of the content hash in a versioned URL: 64 bits, ample to tell builds apart.
const VERSION_HEX_LEN: usize = 16;

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Embedded;

/// The routes: `GET` (and so `HEAD`) `/assets/{*path}`. Generic over the state, since files
/// need none.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/assets/{*path}", get(serve))
}

/// The URL to link to a file at (`/assets/vendor/htmx.min.js?v=…`), with its content hash.
/// A path that is not embedded gets an unversioned URL (which answers 404): a typo in a
/// template shows as a missing file in the browser and in the test that loads every link.
pub fn url(path: &str) -> String {
    match version(path) {
        Some(v) => format!("{PREFIX}{path}?v={v}"),
        None => format!("{PREFIX}{path}"),
    }
}

/// The bytes of an embedded file.
pub fn get_bytes(path: &str) -> Option<Cow<'static, [u8]>> {
    Embedded::get(path).map(|f| f.data)
}

/// Every embedded path, for tests and diagnostics.
pub fn paths() -> impl Iterator<Item = Cow<'static, str>> {
    Embedded::iter()
}

/// The version tag of a file: the first hex digits of its SHA-256.
fn version(path: &str) -> Option<String> {
    Embedded::get(path).map(|f| {
        let mut hex = hex(&f.metadata.sha256_hash());
        hex.truncate(VERSION_HEX_LEN);
        hex
    })
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The `Content-Type` of a file, by its extension. A short table of our own rather than a
/// MIME database: these are the only kinds the UI ships, and a file of another kind is served
/// as bytes (with `nosniff`), so it can never run as a script or style.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        // LICENSE, NOTICE, VERSIONS: the vendored files' terms, worth serving as text.
        "" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The query of a versioned URL.
#[derive(Debug, Deserialize)]
struct VersionQuery {
    v: Option<String>,
}

async fn serve(
    Path(path): Path<String>,
    Query(query): Query<VersionQuery>,
    request: HeaderMap,
) -> Response {
    let Some(file) = Embedded::get(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let digest = hex(&file.metadata.sha256_hash());
    let versioned = query
        .v
        .as_deref()
        .is_some_and(|v| v.len() == VERSION_HEX_LEN && digest.starts_with(v));
    let etag = format!("\"{}\"", &digest[..32]);

    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if versioned { IMMUTABLE } else { REVALIDATE }),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if if_none_match(&request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    (headers, file.data).into_response()
}

/// Whether the client's `If-None-Match` names `etag` (or is `*`), weak or strong alike, as
/// RFC 9110 says a GET compares them.
fn if_none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_files_and_our_own_are_embedded() {
        for p in [
            "vendor/bootstrap.min.css",
            "vendor/bootstrap.bundle.min.js",
            "vendor/htmx.min.js",
            "vendor/echarts.min.js",
            "vendor/VERSIONS",
            "toll.css",
            "toll.js",
        ] {
            assert!(get_bytes(p).is_some(), "{p} not embedded");
            let u = url(p);
            assert!(u.starts_with("/assets/") && u.contains("?v="), "{u}");
        }
        assert_eq!(url("nope.js"), "/assets/nope.js");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("a/b.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("x.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("vendor/VERSIONS"), "text/plain; charset=utf-8");
        assert_eq!(content_type("x.exe"), "application/octet-stream");
    }
}
