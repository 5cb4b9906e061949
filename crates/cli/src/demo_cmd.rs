//! `toll demo`: Toll with a realistic Chinese operator in one command. Creates (or reuses) a
//! SQLite database, seeds it (tariff, five plans in every lifecycle state, 1,000 lines, a
//! month of CDRs, a suspense queue), stores the tariff as the tenant's active one, creates a
//! user per role, and serves the API and web UI until Ctrl-C.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use jiff::Timestamp;
use toll_server::{AppState, ServerConfig};
use toll_store::Store;
use toll_store::tariffs::TariffFile;
use toll_store::users::{NewUser, Role};

use crate::demo_data::{self, DemoOptions, TENANT};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The demo's SQLite file; kept between runs.
    #[arg(long = "file", default_value = "toll-demo.db")]
    pub file: PathBuf,
    /// Delete the file first and seed anew.
    #[arg(long)]
    pub fresh: bool,
    /// Lines to create.
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: usize,
    /// CDRs over the last 30 days.
    #[arg(long, default_value_t = 100_000)]
    pub cdrs: usize,
    /// Seed, stop before serving (for scripts and tests).
    #[arg(long)]
    pub no_serve: bool,
}

/// The demo's users: login, role, display name, password. Passwords are printed at start-up:
/// this is a demo on loopback, not a deployment.
pub const USERS: [(&str, Role, &str, &str); 5] = [
    ("admin", Role::Admin, "系统管理员 Admin", "demo-admin"),
    ("operator", Role::Operator, "运营 李娜", "demo-operator"),
    ("approver", Role::Approver, "审批 王强", "demo-approver"),
    ("auditor", Role::Auditor, "审计 赵敏", "demo-auditor"),
    ("customer", Role::Customer, "客户 张伟", "demo-customer"),
];

/// The account the demo customer signs in to.
pub const CUSTOMER_ACCOUNT: &str = "acct-000001";

/// The tariff code the demo stores.
pub const TARIFF_CODE: &str = "cn-demo";

pub async fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .try_init();
    if args.fresh {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = args.file.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
    }
    let url = args.file.to_string_lossy().into_owned();
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("opening {}", args.file.display()))?;
    store.migrate().await.context("migrating the database")?;
    prepare(&store, args.subscribers, args.cdrs).await?;
    if args.no_serve {
        store.close().await;
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!();
    println!("Toll demo is running: http://{addr}/ui/");
    println!("  API docs: http://{addr}/api/docs   OpenAPI: http://{addr}/api/openapi.json");
    println!("  Sign in as (login / password):");
    for (login, role, _, password) in USERS {
        println!("    {login:<9} / {password:<14} ({role})");
    }
    println!(
        "  Database: {}  (Ctrl-C stops; `toll demo` again reuses it, --fresh recreates it)",
        args.file.display()
    );
    let settings = demo_data::pipeline_settings()?;
    let state = AppState::new(store.clone(), settings, ServerConfig::default());
    toll_server::serve(listener, state, crate::serve::shutdown_signal())
        .await
        .context("serving")?;
    store.close().await;
    Ok(())
}

/// Seeds the demo once (a database that has it is reused), then makes sure the tariff is
/// stored and active and the users exist.
pub async fn prepare(store: &Store, subscribers: usize, cdrs: usize) -> anyhow::Result<()> {
    let tenant = match store.tenant(TENANT).await {
        Ok(t) => {
            println!("Reusing the demo in this database (--fresh starts anew).");
            t
        }
        Err(toll_store::StoreError::NotFound { .. }) => {
            println!("Creating the demo operator: {subscribers} lines, {cdrs} CDRs over 30 days …");
            let started = std::time::Instant::now();
            let summary = demo_data::seed(
                store,
                &DemoOptions {
                    subscribers,
                    cdrs,
                    ..DemoOptions::full(Timestamp::now())
                },
            )
            .await?;
            print!("{}", summary.to_text());
            println!("seeded in {:.1} s", started.elapsed().as_secs_f64());
            store.tenant(TENANT).await?
        }
        Err(e) => return Err(e.into()),
    };
    if store.active_tariff(tenant.id).await?.is_none() {
        let files = demo_data::tariff_files();
        let loaded = toll_rating::source::compile::compile_files(&files)
            .map_err(|d| anyhow::anyhow!("the demo tariff: {d}"))?;
        let mut summary = serde_json::to_value(loaded.tariff.stats)?;
        if let Some(o) = summary.as_object_mut() {
            o.insert("currency".into(), "CNY".into());
            o.insert("name".into(), loaded.tariff.name.clone().into());
        }
        let files: Vec<TariffFile> = files
            .into_iter()
            .map(|f| TariffFile {
                name: f.name,
                content: f.bytes,
            })
            .collect();
        let v = store
            .add_tariff_version(
                tenant.id,
                TARIFF_CODE,
                "toll",
                &summary,
                &files,
                "user:operator",
            )
            .await?;
        store
            .activate_tariff(tenant.id, TARIFF_CODE, v.version, "user:admin")
            .await?;
    }
    for (login, role, name, password) in USERS {
        if store.user_by_login(login).await?.is_some() {
            continue;
        }
        let hash = toll_server::secrets::hash_password(password.to_string()).await?;
        store
            .create_user(
                tenant.id,
                &NewUser {
                    login,
                    display_name: name,
                    password_hash: &hash,
                    role,
                    account_code: (role == Role::Customer).then_some(CUSTOMER_ACCOUNT),
                },
            )
            .await?;
    }
    Ok(())
}
