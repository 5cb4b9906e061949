#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web UI's foundation over real HTTP: `toll_server::ui::ui_router` on port 0 over a fresh
//! SQLite store. Embedded files are the vendored bytes with the right types and caching; the
//! language comes from the cookie, else Accept-Language; the switcher sets the cookie and is
//! no open redirect; the dashboard carries its chart data and escapes what it shows.

mod common_server;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, ETAG,
    IF_NONE_MATCH, LOCATION, SET_COOKIE,
};
use toll_server::ui::{self, assets, i18n};
use toll_server::{AppState, ServerConfig};
use toll_store::Store;

/// The UI router alone, served on 127.0.0.1 port 0; the store is kept alive with it.
struct Ui {
    url: String,
    client: reqwest::Client,
    _db: tempfile::TempDir,
}

impl Ui {
    async fn start() -> Ui {
        // SQLite only: the UI's routes so far read nothing from the store.
        let db = tempfile::tempdir().unwrap();
        let store = Store::connect(db.path().join("toll.db").to_str().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let state = AppState::new(store, common_server::settings(), ServerConfig::default());
        let app = ui::ui_router().with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        // No redirects followed: the tests look at them.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Ui {
            url,
            client,
            _db: db,
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.url))
    }

    async fn text(&self, req: reqwest::RequestBuilder) -> (StatusCode, String) {
        let r = req.send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

fn header(r: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

fn vendored(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/assets/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[tokio::test]
async fn assets_are_the_vendored_bytes_with_types_and_caching() {
    let ui = Ui::start().await;
    for (path, ctype) in [
        ("vendor/bootstrap.min.css", "text/css; charset=utf-8"),
        (
            "vendor/bootstrap.bundle.min.js",
            "text/javascript; charset=utf-8",
        ),
        ("vendor/htmx.min.js", "text/javascript; charset=utf-8"),
        ("vendor/echarts.min.js", "text/javascript; charset=utf-8"),
        ("toll.css", "text/css; charset=utf-8"),
        ("toll.js", "text/javascript; charset=utf-8"),
        ("vendor/VERSIONS", "text/plain; charset=utf-8"),
    ] {
        // The versioned URL pages link to: immutable for a year.
        let r = ui.get(&assets::url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, CONTENT_TYPE), ctype, "{path}");
        assert_eq!(header(&r, CACHE_CONTROL), assets::IMMUTABLE, "{path}");
        assert_eq!(
            header(&r, "x-content-type-options".parse().unwrap()),
            "nosniff"
        );
        let etag = header(&r, ETAG);
        assert!(etag.starts_with('"') && etag.len() > 10, "{path}: {etag}");
        let body = r.bytes().await.unwrap();
        assert!(
            body.as_ref() == vendored(path).as_slice(),
            "{path}: bytes differ"
        );

        // The bare URL: cached but revalidated, and the ETag answers 304.
        let r = ui.get(&format!("/assets/{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, CACHE_CONTROL), assets::REVALIDATE);
        let r = ui
            .get(&format!("/assets/{path}"))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "{path}");
        assert_eq!(header(&r, ETAG), etag);
        assert!(r.bytes().await.unwrap().is_empty());
    }
    // A stale version is not immutable: its bytes are the current ones.
    let r = ui
        .get("/assets/toll.css?v=0000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, CACHE_CONTROL), assets::REVALIDATE);
}

#[tokio::test]
async fn unknown_assets_are_404() {
    let ui = Ui::start().await;
    for path in [
        "/assets/nope.js",
        "/assets/vendor/",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/vendor/../../src/lib.rs",
    ] {
        let r = ui.get(path).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn vendored_files_are_listed_in_versions() {
    let versions = String::from_utf8(vendored("vendor/VERSIONS")).unwrap();
    for (pkg, file) in [
        ("bootstrap 5.3.", "bootstrap.min.css"),
        ("htmx.org 4.", "htmx.min.js"),
        ("echarts 6.", "echarts.min.js"),
    ] {
        let line = versions
            .lines()
            .find(|l| l.starts_with(pkg))
            .unwrap_or_else(|| panic!("{pkg} missing from VERSIONS"));
        assert!(line.contains(" sha512-") && line.contains(file), "{line}");
    }
}

#[tokio::test]
async fn login_page_in_the_language_of_the_cookie_or_the_browser() {
    let ui = Ui::start().await;
    let zh = i18n::ZH_CN.login_heading;
    let en = i18n::EN.login_heading;

    // No hint: English.
    let r = ui.get("/ui/login").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, CONTENT_TYPE), "text/html; charset=utf-8");
    assert!(header(&r, CONTENT_SECURITY_POLICY).contains("script-src 'self'"));
    assert_eq!(header(&r, CACHE_CONTROL), "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains(en) && !html.contains(zh));
    assert!(html.contains(r#"<form method="post" action="/ui/login""#));
    assert!(html.contains(r#"name="username""#) && html.contains(r#"type="password""#));
    assert!(html.contains(i18n::EN.login_password));

    // The browser prefers Chinese.
    let (st, html) = ui
        .text(
            ui.get("/ui/login")
                .header(ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9,en;q=0.8"),
        )
        .await;
    assert_eq!(st, 200);
    assert!(html.contains(r#"<html lang="zh-CN">"#));
    assert!(html.contains(zh) && html.contains(i18n::ZH_CN.login_password));
    assert!(html.contains("登录"));
    assert!(!html.contains(en));

    // A remembered choice wins over the browser.
    let (_, html) = ui
        .text(
            ui.get("/ui/login")
                .header(ACCEPT_LANGUAGE, "zh-CN")
                .header(COOKIE, "toll_lang=en"),
        )
        .await;
    assert!(html.contains(r#"<html lang="en">"#) && html.contains(en));
    let (_, html) = ui
        .text(
            ui.get("/ui/login")
                .header(ACCEPT_LANGUAGE, "en-US")
                .header(COOKIE, "other=1; toll_lang=zh-CN"),
        )
        .await;
    assert!(html.contains(r#"<html lang="zh-CN">"#) && html.contains(zh));

    // Only a safe `next` is carried by the form.
    let (_, html) = ui.text(ui.get("/ui/login?next=/ui/accounts")).await;
    assert!(html.contains(r#"name="next" value="/ui/accounts""#));
    let (_, html) = ui.text(ui.get("/ui/login?next=//evil.example")).await;
    assert!(!html.contains(r#"name="next""#));
}

#[tokio::test]
async fn every_asset_a_page_links_to_is_served() {
    let ui = Ui::start().await;
    for page in ["/ui/login", "/ui/preview/dashboard"] {
        let (_, html) = ui.text(ui.get(page)).await;
        let links: Vec<&str> = html
            .split('"')
            .filter(|s| s.starts_with("/assets/"))
            .collect();
        assert!(links.len() >= 4, "{page}: {links:?}");
        for link in links {
            let link = link.replace("&#38;", "&");
            let r = ui.get(&link).send().await.unwrap();
            assert_eq!(r.status(), 200, "{page}: {link}");
            assert_eq!(header(&r, CACHE_CONTROL), assets::IMMUTABLE, "{link}");
        }
    }
}

#[tokio::test]
async fn the_switcher_sets_the_cookie_and_is_no_open_redirect() {
    let ui = Ui::start().await;
    let r = ui
        .get("/ui/lang/zh-CN?next=/ui/accounts%3Fpage%3D2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, LOCATION), "/ui/accounts?page=2");
    let cookie = header(&r, SET_COOKIE);
    assert!(cookie.starts_with("toll_lang=zh-CN;"), "{cookie}");
    for attr in ["Path=/", "Max-Age=31536000", "SameSite=Lax"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }

    let r = ui.get("/ui/lang/en?next=/ui/").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(header(&r, SET_COOKIE).starts_with("toll_lang=en;"));

    for evil in [
        "//evil.example/",
        "https://evil.example/",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "%2F%09%2Fevil.example",
        "javascript:alert(1)",
        "evil.example",
    ] {
        let r = ui
            .get(&format!("/ui/lang/en?next={evil}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{evil}");
        assert_eq!(header(&r, LOCATION), i18n::DEFAULT_NEXT, "{evil}");
    }
    // No `next` at all: home.
    let r = ui.get("/ui/lang/zh-CN").send().await.unwrap();
    assert_eq!(header(&r, LOCATION), i18n::DEFAULT_NEXT);
    // An unknown language sets nothing.
    let r = ui.get("/ui/lang/xx?next=/ui/").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(header(&r, SET_COOKIE).is_empty());
}

#[tokio::test]
async fn dashboard_preview_has_the_chart_data_and_escapes_the_user() {
    let ui = Ui::start().await;
    let hostile = "<script>alert('x')</script>&\"";
    let (st, html) = ui
        .text(
            ui.get(&format!(
                "/ui/preview/dashboard?user={}",
                percent_encoding::utf8_percent_encode(hostile, percent_encoding::NON_ALPHANUMERIC)
            ))
            .header(COOKIE, "toll_lang=zh-CN"),
        )
        .await;
    assert_eq!(st, 200);
    assert!(!html.contains("<script>alert"), "user shown raw");
    assert!(html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;&#38;&#34;"));

    // The chart's data, as JSON in a non-executed script tag.
    let open = r#"<script type="application/json" id="traffic-data">"#;
    let start = html.find(open).unwrap() + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    let chart: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    let sample = toll_server::ui::pages::DashboardData::sample();
    let calls: Vec<u64> = sample.traffic_per_hour.iter().map(|(_, n)| *n).collect();
    assert_eq!(chart["calls"], serde_json::json!(calls));
    assert_eq!(chart["hours"][0], "00");
    assert_eq!(chart["hours"][23], "23");
    assert_eq!(chart["locale"], "ZH");
    assert_eq!(chart["series"], i18n::ZH_CN.traffic_series);

    // Cards and navigation, in Chinese.
    let t = &i18n::ZH_CN;
    for text in [
        t.calls_today,
        t.revenue_today,
        t.suspense_open,
        t.traffic_title,
        t.nav_tariffs,
        t.nav_plans,
        t.nav_accounts,
        t.nav_cdrs,
        t.nav_suspense,
        t.nav_audit,
        t.logout,
        t.preview_banner,
    ] {
        assert!(html.contains(text), "missing {text}");
    }
    assert!(html.contains("¥18,426.30"));
    assert!(html.contains(r#"<form method="post" action="/ui/logout""#));
    // The switcher comes back here, the query encoded.
    assert!(html.contains("/ui/lang/en?next=/ui/preview/dashboard%3Fuser%3D"));

    // In English, ECharts' English locale.
    let (_, html) = ui
        .text(
            ui.get("/ui/preview/dashboard")
                .header(ACCEPT_LANGUAGE, "en"),
        )
        .await;
    assert!(html.contains(r#""locale":"EN""#));
    assert!(html.contains(i18n::EN.calls_today));
}
