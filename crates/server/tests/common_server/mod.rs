//! The server under test: `toll_server::serve` on port 0 over a fresh store of each engine
//! (the store harness), a tariff, a prepaid line, and a client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::oneshot;
use toll_core::{Currency, Micros};
use toll_ingest::Cleansing;
use toll_ingest::pipeline::RetryPolicy;
use toll_ingest::pipeline::feed::PipelineSettings;
use toll_ingest::pipeline::rating::{DefaultRate, Payer};
use toll_rating::Tariff;
use toll_rating::source::SourceFile;
use toll_server::{AppState, IngestToken, ServerConfig};
use toll_store::accounts::AccountMode;
use toll_store::users::{NewUser, Role};
use toll_store::{Store, Tenant};

pub const TOKEN: &str = "test-ingest-token-0123456789";
/// The paying line (100.00 on its wallet).
pub const PAYER: &str = "13800138000";
/// A line whose wallet holds 0.05.
pub const POOR: &str = "13900139000";

/// Beijing fixed lines at 0.12 per started minute; mobiles at 0.10/min in 6 s steps.
pub const TARIFF: &str = r#"
name = "server-test"
currency = "CNY"
timezone = "Asia/Shanghai"
numbering = "cn"

[destinations]
CN_FIXED_BJ = ["010"]
CN_MOBILE = ["13"]

[rates]
FIXED = { rate = "0.12", unit = "60s", increment = "60s" }
MOBILE = { rate = "0.10", unit = "60s", increment = "6s" }

[destination_rates]
DR = [
    { destination = "CN_FIXED_BJ", rate = "FIXED", rounding = "*up", decimals = 2 },
    { destination = "CN_MOBILE", rate = "MOBILE", rounding = "*up", decimals = 2 },
]

[plans]
P = { destination_rates = "DR" }

[[profiles]]
tenant = "acme"
category = "call"
subject = "*any"
plan = "P"
"#;

pub fn tariff() -> Arc<Tariff> {
    let files = [SourceFile {
        name: "tariff.toml".into(),
        bytes: TARIFF.as_bytes().to_vec(),
    }];
    let mut diags = toll_rating::Diagnostics::default();
    let def = toll_rating::source::parse(&files, &mut diags);
    assert!(!diags.has_errors(), "{diags:?}");
    let (t, _) = Tariff::compile(&def, Arc::new(toll_rating::NumberRanges::builtin_cn())).unwrap();
    Arc::new(t)
}

pub fn settings() -> PipelineSettings {
    PipelineSettings {
        tariff: Some(tariff()),
        tariff_tenant: None,
        category: "call".into(),
        default_rate: DefaultRate::default(),
        payer: Payer::Caller,
        cleansing: Cleansing::default(),
        retry: RetryPolicy::default(),
    }
}

pub fn m(s: &str) -> Micros {
    s.parse().unwrap()
}

/// Tenant `acme` with account `a1` (100.00, line [`PAYER`]) and `a2` (0.05, line [`POOR`]).
pub async fn acme(s: &Store) -> Tenant {
    let t = s
        .create_tenant("acme", "Acme", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    s.create_customer(t.id, "c1", "张三").await.unwrap();
    for (acct, amount, line) in [("a1", "100", PAYER), ("a2", "0.05", POOR)] {
        s.create_account(t.id, "c1", acct, AccountMode::Prepaid)
            .await
            .unwrap();
        s.top_up(t.id, acct, m(amount), &format!("pay-{acct}"), "")
            .await
            .unwrap();
        s.add_subscriber(t.id, acct, line).await.unwrap();
    }
    t
}

pub async fn balance(s: &Store, t: &Tenant, account: &str) -> Micros {
    s.account(t.id, account).await.unwrap().balance
}

pub const PASSWORD: &str = "correct horse battery";

/// Users of every role in `acme` (login = role name) and an admin `beta-admin` of tenant
/// `beta`.
pub async fn people(s: &Store) {
    let t = acme(s).await;
    let hash = toll_server::secrets::hash_password(PASSWORD.into())
        .await
        .unwrap();
    for role in Role::ALL {
        let account = (role == Role::Customer).then_some("a1");
        s.create_user(
            t.id,
            &NewUser {
                login: role.as_str(),
                display_name: &format!("{role} 用户"),
                password_hash: &hash,
                role,
                account_code: account,
            },
        )
        .await
        .unwrap();
    }
    let beta = s
        .create_tenant("beta", "Beta", Currency::CNY, "Asia/Shanghai")
        .await
        .unwrap();
    s.create_user(
        beta.id,
        &NewUser {
            login: "beta-admin",
            display_name: "Beta admin",
            password_hash: &hash,
            role: Role::Admin,
            account_code: None,
        },
    )
    .await
    .unwrap();
}

/// A client signed in as `login` (its cookie jar holds the session).
pub struct Session {
    pub client: reqwest::Client,
    pub base: String,
}

impl Session {
    pub async fn login(srv: &Server, login: &str) -> Session {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let r = client
            .post(srv.at("/api/v1/session"))
            .json(&json!({"login": login, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let (status, body) = read(r).await;
        assert_eq!(status, 200, "{login}: {body}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        Session {
            client,
            base: srv.url.clone(),
        }
    }

    pub fn req(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client.request(m, format!("{}{path}", self.base))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.req("GET", path).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        read(self.req("POST", path).json(body).send().await.unwrap()).await
    }
}

/// A running server.
pub struct Server {
    pub url: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub dead_letters: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Serves `store` on 127.0.0.1, port 0, with the test token and `tune`'s changes.
    pub async fn start(store: &Store, tune: impl FnOnce(&mut ServerConfig)) -> Server {
        let dead_letters = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            ingest_token: Some(IngestToken::new(TOKEN).unwrap()),
            dead_letter_dir: dead_letters.path().to_path_buf(),
            ..ServerConfig::default()
        };
        tune(&mut config);
        let state = AppState::new(store.clone(), settings(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(toll_server::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Server {
            url,
            state,
            client: reqwest::Client::new(),
            dead_letters,
            stop: Some(stop),
            task,
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A POST with the token.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.at(path)).bearer_auth(TOKEN)
    }

    /// POSTs `body` as JSON with the token; the status and the body as JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = self.post(path).json(body).send().await.unwrap();
        read(r).await
    }

    /// Stops accepting, finishes requests in flight, flushes the batchers.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

/// The status and the body as JSON (`null` when it is not JSON).
pub async fn read(r: reqwest::Response) -> (u16, serde_json::Value) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{status} {text}");
        assert!(v["code"].is_string(), "{text}");
        assert_eq!(v["status"], status, "{text}");
    }
    (status, v)
}
