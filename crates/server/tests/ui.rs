#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web UI's foundation over real HTTP: `toll_server::ui::ui_router` on port 0 over a fresh
//! SQLite store. Embedded files are the vendored bytes with the right types and caching; the
//! language comes from the cookie, else Accept-Language; the switcher sets the cookie and is
//! no open redirect; the dashboard carries its chart data and escapes what it shows.

mod common_server;
#[path = "../../store/tests/common/fixtures.rs"]
mod fixtures;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_LANGUAGE, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, ETAG,
    IF_NONE_MATCH, LOCATION, SET_COOKIE,
};
use toll_server::ui::{assets, i18n};
use toll_server::{AppState, ServerConfig};
use toll_store::Store;
use toll_store::users::{NewUser, Role};

/// The whole application (`toll_server::router`, CSRF layer included) on 127.0.0.1 port 0
/// over a fresh SQLite store with tenant `acme` (accounts `a1` with 100.00, `a2`), one user per
/// role (login = the role's name, display name "<role> 用户"; the customer is bound to `a1`).
struct Ui {
    url: String,
    client: reqwest::Client,
    state: AppState,
    _db: tempfile::TempDir,
}

const PASSWORD: &str = "correct horse battery staple";

impl Ui {
    async fn start() -> Ui {
        Ui::start_with_admin_name("admin 用户").await
    }

    async fn start_with_admin_name(admin_name: &str) -> Ui {
        let db = tempfile::tempdir().unwrap();
        let store = Store::connect(db.path().join("toll.db").to_str().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let t = common_server::acme(&store).await;
        let hash = toll_server::secrets::hash_password(PASSWORD.into())
            .await
            .unwrap();
        for role in Role::ALL {
            let name = if role == Role::Admin {
                admin_name.to_string()
            } else {
                format!("{role} 用户")
            };
            store
                .create_user(
                    t.id,
                    &NewUser {
                        login: role.as_str(),
                        display_name: &name,
                        password_hash: &hash,
                        role,
                        account_code: (role == Role::Customer).then_some("a1"),
                    },
                )
                .await
                .unwrap();
        }
        let state = AppState::new(store, common_server::settings(), ServerConfig::default());
        let app = toll_server::router(state.clone());
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
            state,
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

    /// Signs in with the form and returns the session's `Cookie` header value.
    async fn sign_in(&self, login: &str) -> String {
        let r = self
            .client
            .post(format!("{}/ui/login", self.url))
            .form(&[("username", login), ("password", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{login} signs in");
        let cookie = header(&r, SET_COOKIE);
        cookie.split(';').next().unwrap().to_string()
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
    let admin = ui.sign_in("admin").await;
    for page in ["/ui/login", "/ui/", "/ui/tariffs"] {
        let (_, html) = ui.text(ui.get(page).header(COOKIE, &admin)).await;
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
async fn dashboard_has_the_chart_data_and_escapes_the_user() {
    let hostile = "<script>alert('x')</script>&\"";
    let ui = Ui::start_with_admin_name(hostile).await;
    let admin = ui.sign_in("admin").await;
    let (st, html) = ui
        .text(
            ui.get("/ui/")
                .header(COOKIE, format!("{admin}; toll_lang=zh-CN")),
        )
        .await;
    assert_eq!(st, 200);
    assert!(!html.contains("<script>alert"), "user shown raw");
    assert!(html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;&#38;&#34;"));

    // The chart's data, as JSON in a non-executed script tag: today's hours from the store
    // (no CDRs yet, so all zero).
    let open = r#"<script type="application/json" id="traffic-data">"#;
    let start = html.find(open).unwrap() + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    let chart: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(chart["calls"], serde_json::json!(vec![0u64; 24]));
    assert_eq!(chart["hours"][0], "00");
    assert_eq!(chart["hours"][23], "23");
    assert_eq!(chart["locale"], "ZH");
    assert_eq!(chart["series"], i18n::ZH_CN.traffic_series);

    // Cards and navigation, in Chinese; real figures, no preview banner.
    let t = &i18n::ZH_CN;
    for text in [
        t.calls_today,
        t.revenue_today,
        t.suspense_open,
        t.traffic_empty,
        t.nav_tariffs,
        t.nav_plans,
        t.nav_accounts,
        t.nav_cdrs,
        t.nav_suspense,
        t.nav_audit,
        t.logout,
    ] {
        assert!(html.contains(text), "missing {text}");
    }
    assert!(!html.contains(t.preview_banner));
    assert!(
        html.contains(r#"id="kpi-revenue">CNY 0.00<"#),
        "revenue from the store"
    );
    assert!(html.contains(r#"<form method="post" action="/ui/logout""#));
    assert!(html.contains("/ui/lang/en?next=/ui/"));

    // In English, ECharts' English locale.
    let (_, html) = ui
        .text(
            ui.get("/ui/")
                .header(COOKIE, &admin)
                .header(ACCEPT_LANGUAGE, "en"),
        )
        .await;
    assert!(html.contains(r#""locale":"EN""#));
    assert!(html.contains(i18n::EN.calls_today));
}

#[tokio::test]
async fn signed_out_pages_redirect_to_the_sign_in_form_and_back() {
    let ui = Ui::start().await;
    for (page, next) in [
        ("/ui/", "%2Fui%2F"),
        ("/ui/tariffs", "%2Fui%2Ftariffs"),
        ("/ui/accounts?q=a", "%2Fui%2Faccounts%3Fq%3Da"),
        ("/portal", "%2Fportal"),
    ] {
        let r = ui.get(page).send().await.unwrap();
        assert_eq!(r.status(), 303, "{page}");
        assert_eq!(
            header(&r, LOCATION),
            format!("/ui/login?next={next}"),
            "{page}"
        );
    }
    // A signed-out POST changes nothing: it is sent to the form too.
    let r = ui
        .client
        .post(format!("{}/ui/accounts/a1/topup", ui.url))
        .form(&[("amount", "5"), ("key", "k1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let a1 = ui.state.store().tenant("acme").await.unwrap();
    let bal = ui.state.store().account(a1.id, "a1").await.unwrap().balance;
    assert_eq!(bal, common_server::m("100"));

    // Signing in comes back to `next`; a bad password re-renders the form with the reason.
    let r = ui
        .client
        .post(format!("{}/ui/login", ui.url))
        .form(&[
            ("username", "operator"),
            ("password", PASSWORD),
            ("next", "/ui/tariffs"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, LOCATION), "/ui/tariffs");
    assert!(header(&r, SET_COOKIE).contains("HttpOnly"));
    let (st, html) = ui
        .text(
            ui.client
                .post(format!("{}/ui/login", ui.url))
                .header(COOKIE, "toll_lang=zh-CN")
                .form(&[("username", "operator"), ("password", "wrong")]),
        )
        .await;
    assert_eq!(st, 401);
    assert!(html.contains(i18n::ZH_CN.login_error_invalid), "{html}");
    assert!(html.contains(r#"value="operator""#));
}

#[tokio::test]
async fn a_customer_gets_403_on_staff_pages_and_sees_the_portal() {
    let ui = Ui::start().await;
    // Signing in lands on the portal, whatever `next` says.
    let r = ui
        .client
        .post(format!("{}/ui/login", ui.url))
        .form(&[
            ("username", "customer"),
            ("password", PASSWORD),
            ("next", "/ui/audit"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, LOCATION), "/portal");
    let customer = ui.sign_in("customer").await;
    for page in [
        "/ui/tariffs",
        "/ui/accounts/a2",
        "/ui/audit",
        "/ui/suspense",
    ] {
        let (st, html) = ui
            .text(
                ui.get(page)
                    .header(COOKIE, format!("{customer}; toll_lang=en")),
            )
            .await;
        assert_eq!(st, 403, "{page}");
        assert!(html.contains(i18n::EN.forbidden_text), "{page}");
        assert!(
            !html.contains(i18n::EN.nav_tariffs),
            "{page}: no staff links"
        );
    }
    let r = ui
        .get("/ui/")
        .header(COOKIE, &customer)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, LOCATION), "/portal");
    let (st, html) = ui
        .text(
            ui.get("/portal")
                .header(COOKIE, format!("{customer}; toll_lang=zh-CN")),
        )
        .await;
    assert_eq!(st, 200);
    assert!(
        html.contains(r#"id="account-balance">CNY 100.00<"#),
        "{html}"
    );
    assert!(html.contains(i18n::ZH_CN.portal_request_topup));

    // A top-up request is recorded in the audit log, and credits nothing.
    let r = ui
        .client
        .post(format!("{}/portal/topup-request", ui.url))
        .header(COOKIE, &customer)
        .form(&[("amount", "50"), ("comment", "please")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let t = ui.state.store().tenant("acme").await.unwrap();
    let log = ui.state.store().audit_log(t.id, None, 10).await.unwrap();
    assert_eq!(log[0].action, "account.top_up_request");
    assert_eq!(log[0].actor, "user:customer");
    assert_eq!(log[0].entity_key, "a1");
    assert_eq!(
        ui.state.store().account(t.id, "a1").await.unwrap().balance,
        common_server::m("100")
    );
}

#[tokio::test]
async fn a_tariff_uploaded_by_form_is_activated_and_rates_in_the_tester() {
    let ui = Ui::start().await;
    let op = ui.sign_in("operator").await;
    let form = reqwest::multipart::Form::new().text("code", "std").part(
        "file",
        reqwest::multipart::Part::bytes(common_server::TARIFF.as_bytes().to_vec())
            .file_name("tariff.toml"),
    );
    let r = ui
        .client
        .post(format!("{}/ui/tariffs", ui.url))
        .header(COOKIE, &op)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, LOCATION), "/ui/tariffs?ok=uploaded");
    let r = ui
        .client
        .post(format!("{}/ui/tariffs/std/1/activate", ui.url))
        .header(COOKIE, &op)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = ui.text(ui.get("/ui/tariffs").header(COOKIE, &op)).await;
    assert!(html.contains(r#"data-tariff="std-1""#));
    assert!(html.contains("toll-active"));

    // The tester, as htmx asks for it: the fragment with the cost. 150 s to a Beijing fixed
    // line at 0.12 per started minute is 3 minutes: 0.36.
    let (st, html) = ui
        .text(
            ui.client
                .post(format!("{}/ui/tariffs/rate", ui.url))
                .header(COOKIE, &op)
                .header("HX-Request", "true")
                .form(&[
                    ("destination", "01088886666"),
                    ("start", "2026-11-23T10:00:00+08:00"),
                    ("usage", "150s"),
                    ("category", "call"),
                    ("subject", "alice"),
                ]),
        )
        .await;
    assert_eq!(st, 200);
    assert!(!html.contains("<html"), "a fragment");
    assert!(html.contains(r#"id="tester-cost">CNY 0.36<"#), "{html}");

    // Both were audited.
    let t = ui.state.store().tenant("acme").await.unwrap();
    let actions: Vec<String> = ui
        .state
        .store()
        .audit_log(t.id, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, ["tariff.activate", "tariff.upload"]);
}

#[tokio::test]
async fn an_author_cannot_approve_their_own_plan_and_is_told_why() {
    let ui = Ui::start().await;
    let admin = ui.sign_in("admin").await;
    let def = "code = \"solo\"\nname = \"Solo\"\nclass = \"base\"\nkind = \"voice\"\n\
               currency = \"CNY\"\nbase_fee = \"0\"\nvalidity = \"calendar_month\"\n";
    let post = |path: &str, form: Vec<(&str, String)>| {
        ui.client
            .post(format!("{}{path}", ui.url))
            .header(COOKIE, format!("{admin}; toll_lang=en"))
            .form(&form)
    };
    let r = post("/ui/plans", vec![("definition", def.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let submit = vec![("action", "submit".into()), ("version", "1".into())];
    let r = post("/ui/plans/solo/action", submit).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let approve = vec![("action", "approve".into()), ("version", "1".into())];
    let (st, html) = ui.text(post("/ui/plans/solo/action", approve)).await;
    assert_eq!(st, 409);
    assert!(html.contains(i18n::EN.plan_four_eyes), "{html}");
    assert!(html.contains(r#"data-status="pending_approval""#));
    // An operator may not approve at all: the button's permission is checked on the POST.
    let op = ui.sign_in("operator").await;
    let r = ui
        .client
        .post(format!("{}/ui/plans/solo/action", ui.url))
        .header(COOKIE, &op)
        .form(&[("action", "approve"), ("version", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, html) = ui.text(ui.get("/ui/plans/solo").header(COOKIE, &op)).await;
    assert!(
        !html.contains(r#"data-action="approve""#),
        "no approve button"
    );
}

#[tokio::test]
async fn staff_pages_render_from_the_store() {
    let ui = Ui::start().await;
    let admin = ui.sign_in("admin").await;
    let get = |path: &str| {
        ui.get(path)
            .header(COOKIE, format!("{admin}; toll_lang=en"))
    };
    // Account search: by code, and by a line's digits.
    let (st, html) = ui.text(get("/ui/accounts?q=a1")).await;
    assert_eq!(st, 200);
    assert!(html.contains(r#"href="/ui/accounts/a1""#) && !html.contains("/ui/accounts/a2"));
    let (_, html) = ui
        .text(get(&format!(
            "/ui/accounts?q={}",
            &common_server::POOR[..7]
        )))
        .await;
    assert!(html.contains("/ui/accounts/a2") && !html.contains(r#"href="/ui/accounts/a1""#));
    let (_, html) = ui.text(get("/ui/accounts?q=%25")).await;
    assert!(
        html.contains(i18n::EN.none_yet),
        "% is literal, not a wildcard"
    );

    // The account page, with the top-up form; a top-up credits the wallet once per form.
    let (st, html) = ui.text(get("/ui/accounts/a1")).await;
    assert_eq!(st, 200);
    assert!(html.contains(r#"id="account-balance">CNY 100.00<"#));
    for _ in 0..2 {
        let r = ui
            .client
            .post(format!("{}/ui/accounts/a1/topup", ui.url))
            .header(COOKIE, &admin)
            .form(&[("amount", "20.50"), ("key", "form-1")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
    }
    let (_, html) = ui.text(get("/ui/accounts/a1")).await;
    assert!(
        html.contains(r#"id="account-balance">CNY 120.50<"#),
        "{html}"
    );

    for (page, text) in [
        (
            "/ui/cdrs?number=13800138000&from=2026-01-01&to=2026-12-31",
            i18n::EN.cdr_export,
        ),
        ("/ui/suspense", i18n::EN.suspense_status_open),
        ("/ui/audit", "account.top_up"),
        ("/ui/plans", i18n::EN.plan_new),
        ("/ui/accounts/nope", i18n::EN.not_found_text),
    ] {
        let (st, html) = ui.text(get(page)).await;
        let want = if page.ends_with("nope") { 404 } else { 200 };
        assert_eq!(st, want, "{page}");
        assert!(html.contains(text), "{page}: {text}");
    }
    let r = get("/ui/cdrs.csv?account=a1").send().await.unwrap();
    assert_eq!(header(&r, CONTENT_TYPE), "text/csv; charset=utf-8");
    assert!(r.text().await.unwrap().starts_with("event_key,account,"));
    // A bad date is said on the page, not a 500.
    let (st, html) = ui.text(get("/ui/cdrs?from=yesterday")).await;
    assert_eq!(st, 200);
    assert!(html.contains("a date, YYYY-MM-DD"));
}

/// The account page's plan change: the proration preview (an htmx fragment, and the same
/// figures on the page without JavaScript), the change itself (wallet, subscription, history,
/// audit), a refusal re-rendered with the form as it was, and the roles that may not.
#[tokio::test]
async fn a_plan_change_is_previewed_with_its_proration_then_made() {
    let ui = Ui::start().await;
    let store = ui.state.store();
    let t = store.tenant("acme").await.unwrap();
    fixtures::active_plan(store, &t, "m30", "30").await;
    fixtures::active_plan(store, &t, "m60", "60").await;
    let sub = store
        .subscribe(
            &t,
            &toll_store::subscriptions::SubscribeRequest {
                account: "a1",
                plan: "m30",
                lines: &[common_server::PAYER.to_string()],
                start: jiff::civil::date(2026, 11, 1),
            },
            &fixtures::actor("alice"),
        )
        .await
        .unwrap();
    let id = sub.id;
    let operator = ui.sign_in("operator").await;
    let cookie = format!("{operator}; toll_lang=en");
    let (st, html) = ui
        .text(ui.get("/ui/accounts/a1").header(COOKIE, &cookie))
        .await;
    assert_eq!(st, 200);
    assert!(
        html.contains(r#"id="account-balance">CNY 70.00<"#),
        "{html}"
    );
    assert!(html.contains(&format!(r#"id="plan-change-{id}""#)));
    assert!(html.contains(r#"<option value="m60">m60</option>"#));
    assert!(
        !html.contains(r#"<option value="m30">"#),
        "the current plan is not offered"
    );

    // Day 16 of a 30-day month: 15 days left; 30 → 60 credits 15.00 and charges 30.00.
    let preview =
        format!("/ui/subscriptions/{id}/plan-change/preview?plan=m60&date=2026-11-16&when=now");
    let (st, frag) = ui
        .text(
            ui.get(&preview)
                .header(COOKIE, &cookie)
                .header("hx-request", "true"),
        )
        .await;
    assert_eq!(st, 200);
    assert!(!frag.contains("<html"), "a fragment: {frag}");
    for want in [
        r#"preview-days">15 / 30<"#,
        r#"preview-credit">CNY 15.00<"#,
        r#"preview-charge">CNY 30.00<"#,
        r#"preview-net fw-semibold">CNY 15.00<"#,
        "2026-11-01 – 2026-12-01",
    ] {
        assert!(frag.contains(want), "{want}: {frag}");
    }
    // Without JavaScript: the account page, the figures in place, the form as it was.
    let (st, html) = ui.text(ui.get(&preview).header(COOKIE, &cookie)).await;
    assert_eq!(st, 200);
    assert!(html.contains(r#"preview-credit">CNY 15.00<"#), "{html}");
    assert!(html.contains(r#"<option value="m60" selected>"#));
    assert!(html.contains(r#"value="2026-11-16""#));
    // A plan that is not active is said in the fragment.
    let (_, frag) = ui
        .text(
            ui.get(&format!(
                "/ui/subscriptions/{id}/plan-change/preview?plan=nope"
            ))
            .header(COOKIE, &cookie)
            .header("hx-request", "true"),
        )
        .await;
    assert!(frag.contains("plan-preview-error"), "{frag}");
    // The preview changed nothing.
    assert_eq!(
        common_server::balance(store, &t, "a1").await,
        "70".parse().unwrap()
    );

    // The change: 15.00 net from the wallet, the subscription on m60, the history, the audit.
    let change = format!("{}/ui/subscriptions/{id}/plan-change", ui.url);
    let r = ui
        .client
        .post(&change)
        .header(COOKIE, &cookie)
        .form(&[
            ("plan", "m60"),
            ("date", "2026-11-16"),
            ("when", "now"),
            ("comment", "upgrade 升级"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(header(&r, LOCATION), "/ui/accounts/a1?ok=plan_change");
    assert_eq!(
        common_server::balance(store, &t, "a1").await,
        "55".parse().unwrap()
    );
    let s = store.subscription(t.id, id).await.unwrap();
    assert_eq!((s.plan.as_str(), s.version), ("m60", 1));
    let (_, html) = ui
        .text(
            ui.get("/ui/accounts/a1?ok=plan_change")
                .header(COOKIE, &cookie),
        )
        .await;
    assert!(html.contains(i18n::EN.change_ok));
    assert!(html.contains("m30 v1 → m60 v1"), "{html}");
    assert!(html.contains("user:operator"));
    let audit = store.audit_log(t.id, None, 10).await.unwrap();
    let e = audit
        .iter()
        .find(|e| e.action == "subscription.change_plan")
        .expect("audited");
    assert_eq!(e.actor, "user:operator");
    assert_eq!(e.after.as_ref().unwrap()["credit"], "15.00");

    // Changing back before the last change is refused: 422, the reason, the form kept.
    let r = ui
        .client
        .post(&change)
        .header(COOKIE, &cookie)
        .form(&[
            ("plan", "m30"),
            ("date", "2026-11-10"),
            ("when", "now"),
            ("comment", "oops"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("before the last change"), "{html}");
    assert!(html.contains(r#"value="oops""#));
    assert_eq!(
        common_server::balance(store, &t, "a1").await,
        "55".parse().unwrap()
    );

    // An auditor reads but has no form and may not post; a customer may not even preview.
    let auditor = ui.sign_in("auditor").await;
    let (st, html) = ui
        .text(ui.get("/ui/accounts/a1").header(COOKIE, &auditor))
        .await;
    assert_eq!(st, 200);
    assert!(html.contains("m30 v1 → m60 v1") && !html.contains("plan-change-"));
    let r = ui
        .client
        .post(&change)
        .header(COOKIE, &auditor)
        .form(&[("plan", "m30"), ("date", "2026-11-20")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let customer = ui.sign_in("customer").await;
    let (st, _) = ui.text(ui.get(&preview).header(COOKIE, &customer)).await;
    assert_eq!(st, 403);
    // Another tenant's subscription does not exist here.
    let (st, _) = ui
        .text(
            ui.get("/ui/subscriptions/999999/plan-change/preview?plan=m60")
                .header(COOKIE, &cookie),
        )
        .await;
    assert_eq!(st, 404);
}
