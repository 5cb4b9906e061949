//! The server the browser tests (`tests/browser/`) drive: a fresh SQLite database in a temp
//! folder with tenant `acme` and what the scenarios need, served on 127.0.0.1 at a free port.
//!
//! Prints one line, `listening http://127.0.0.1:PORT`, once it accepts connections, and serves
//! until killed or until its stdin closes (so that a crashed test run does not leave it behind).
//!
//! Seeded: users `admin`, `operator`, `approver` and `customer` (bound to account `a1`), all
//! with the password [`PASSWORD`]; account `a1` (prepaid, 100.00, line 13800138000) with an
//! active plan's allowance partly used; plan `plus` (60.00 a month) active for a plan change;
//! plan `promo` submitted by `operator` and waiting for
//! approval; today's CDRs for the dashboard; one record from an unknown line (13700137000) in
//! the suspense queue. The pipeline rates with `examples/cn-demo/tariff.toml`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;

use toll_catalog::lifecycle::{Actor, PlanAction};
use toll_core::Currency;
use toll_ingest::Cleansing;
use toll_ingest::pipeline::RetryPolicy;
use toll_ingest::pipeline::feed::PipelineSettings;
use toll_ingest::pipeline::rating::{DefaultRate, Payer};
use toll_rating::source::SourceFile;
use toll_server::{AppState, IngestToken, ServerConfig};
use toll_store::Store;
use toll_store::accounts::AccountMode;
use toll_store::subscriptions::SubscribeRequest;
use toll_store::users::{NewUser, Role};

/// Every seeded user's password.
pub const PASSWORD: &str = "browser-test-password";
const INGEST_TOKEN: &str = "browser-fixture-ingest-token-0123456789";

/// A plan with a voice allowance: the portal's progress bar.
const BASE_PLAN: &str = r#"
code = "basic"
name = "Basic 100"
class = "base"
kind = "voice"
currency = "CNY"
base_fee = "0"
validity = "calendar_month"

[[allowances]]
usage = "voice"
quantity = 100
unit = "minutes"

[[overage]]
usage = "voice"
unit = "minute"
per_event = "up"
[overage.pricing]
model = "graduated"
tiers = [{ unit_price = "0.15" }]
"#;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn tariff(root: &std::path::Path) -> Res<Arc<toll_rating::Tariff>> {
    let bytes = std::fs::read(root.join("examples/cn-demo/tariff.toml"))?;
    let files = [SourceFile {
        name: "tariff.toml".into(),
        bytes,
    }];
    let loaded = toll_rating::source::compile::compile_files(&files)
        .map_err(|d| format!("cn-demo tariff: {:?}", d.errors().collect::<Vec<_>>()))?;
    Ok(loaded.tariff)
}

/// An Asterisk CSV row (the format `toll import` and the ingest endpoint read).
fn asterisk_row(uid: &str, src: &str, dst: &str, start: &str, billsec: u32) -> String {
    format!(
        r#""","{src}","{dst}","from-internal","""x"" <{src}>","PJSIP/1001-0001","PJSIP/trunk-0002","Dial","PJSIP/{dst}@trunk","{start}","{start}","{start}",{billsec},{billsec},"ANSWERED","BILLING","{uid}","""#
    )
}

async fn seed(store: &Store) -> Res<()> {
    let t = store
        .create_tenant("acme", "Acme 电信", Currency::CNY, "Asia/Shanghai")
        .await?;
    store.create_customer(t.id, "c1", "张三").await?;
    store
        .create_account(t.id, "c1", "a1", AccountMode::Prepaid)
        .await?;
    store
        .top_up(t.id, "a1", "100".parse()?, "fixture-a1", "opening balance")
        .await?;
    store.add_subscriber(t.id, "a1", "13800138000").await?;
    let hash = toll_server::secrets::hash_password(PASSWORD.into()).await?;
    for (login, name, role) in [
        ("admin", "管理员 Admin", Role::Admin),
        ("operator", "Olga Operator", Role::Operator),
        ("approver", "Arthur Approver", Role::Approver),
        ("customer", "张三", Role::Customer),
    ] {
        store
            .create_user(
                t.id,
                &NewUser {
                    login,
                    display_name: name,
                    password_hash: &hash,
                    role,
                    account_code: (role == Role::Customer).then_some("a1"),
                },
            )
            .await?;
    }
    let (op, ap) = (Actor::new("user:operator")?, Actor::new("user:approver")?);
    // `basic`: active, with a subscription for a1's allowance.
    store.create_plan(t.id, BASE_PLAN, &op).await?;
    for (action, who) in [
        (PlanAction::Submit, &op),
        (PlanAction::Approve, &ap),
        (PlanAction::Activate, &op),
    ] {
        store
            .plan_action(t.id, "basic", None, action, who, "fixture")
            .await?;
    }
    let today = jiff::Timestamp::now()
        .to_zoned(t.zone()?)
        .date()
        .first_of_month();
    store
        .subscribe(
            &t,
            &SubscribeRequest {
                account: "a1",
                plan: "basic",
                lines: &["13800138000".to_string()],
                start: today,
            },
            &op,
        )
        .await?;
    // `plus`: active at 60.00 a month, what a1 can change to (the proration preview).
    let plus = BASE_PLAN
        .replace("code = \"basic\"", "code = \"plus\"")
        .replace("Basic 100", "Plus 300")
        .replace("base_fee = \"0\"", "base_fee = \"60\"")
        .replace("quantity = 100", "quantity = 300");
    store.create_plan(t.id, &plus, &op).await?;
    for (action, who) in [
        (PlanAction::Submit, &op),
        (PlanAction::Approve, &ap),
        (PlanAction::Activate, &op),
    ] {
        store
            .plan_action(t.id, "plus", None, action, who, "fixture")
            .await?;
    }
    // `promo`: submitted by the operator, waiting for a second person.
    let promo = BASE_PLAN
        .replace("code = \"basic\"", "code = \"promo\"")
        .replace("Basic 100", "Promo 200")
        .replace("quantity = 100", "quantity = 200");
    store.create_plan(t.id, &promo, &op).await?;
    store
        .plan_action(
            t.id,
            "promo",
            None,
            PlanAction::Submit,
            &op,
            "please review",
        )
        .await?;
    Ok(())
}

/// Today's calls (charged) and one from an unknown line (suspended), through the real
/// ingest endpoint.
async fn ingest(url: &str) -> Res<()> {
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai")?);
    // Half an hour ago, but never before the tenant's midnight: the dashboard counts today's
    // calls, and a run just after midnight in Shanghai (16:00 UTC) put them on yesterday.
    let midnight = now.start_of_day()?;
    let earlier = now.checked_sub(jiff::Span::new().minutes(30))?;
    let earlier = if earlier.timestamp() < midnight.timestamp() {
        midnight
    } else {
        earlier
    };
    let start = earlier.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let csv = [
        asterisk_row("fx.1", "13800138000", "01088886666", &start, 61),
        asterisk_row("fx.2", "13800138000", "13912345678", &start, 125),
        asterisk_row("fx.3", "13700137000", "01088886666", &start, 42),
    ]
    .join("\n")
        + "\n";
    let r = reqwest::Client::new()
        .post(format!(
            "{url}/api/v1/ingest/acme/cdrs?source=pbx&format=asterisk"
        ))
        .bearer_auth(INGEST_TOKEN)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("ingest: {} {}", r.status(), r.text().await?).into());
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir()?;
    let store = Store::connect(
        dir.path()
            .join("toll.db")
            .to_str()
            .ok_or("temp path is not UTF-8")?,
    )
    .await?;
    store.migrate().await?;
    seed(&store).await?;
    let settings = PipelineSettings {
        tariff: Some(tariff(&root)?),
        tariff_tenant: None,
        category: "call".into(),
        default_rate: DefaultRate::default(),
        payer: Payer::Caller,
        cleansing: Cleansing::default(),
        retry: RetryPolicy::default(),
    };
    let config = ServerConfig {
        ingest_token: Some(IngestToken::new(INGEST_TOKEN).map_err(|_| "weak token")?),
        dead_letter_dir: dir.path().join("dead-letters"),
        ..ServerConfig::default()
    };
    let state = AppState::new(store, settings, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Stops when stdin closes: the test runner that started us is gone.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        let _ = stop_tx.send(());
    });
    let server = tokio::spawn(toll_server::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    ingest(&url).await?;
    println!("listening {url}");
    server.await??;
    drop(dir);
    Ok(())
}
