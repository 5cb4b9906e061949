//! `GET /api/docs`: the API reference, Swagger UI (vendored from npm, embedded) rendering
//! `/api/openapi.json`. Public, like the document: it describes routes, not data.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::ui::assets::url;

/// Scripts only from our own files; Swagger UI styles some elements inline.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

pub async fn page() -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Toll API</title>
<link rel="stylesheet" href="{css}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{bundle}"></script>
<script src="{init}"></script>
</body>
</html>
"#,
        css = url("vendor/swagger-ui.css"),
        bundle = url("vendor/swagger-ui-bundle.js"),
        init = url("api-docs.js"),
    );
    let mut res = Html(html).into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    res
}
