//! `toll user add|list`: the people who sign in to `toll serve`. The password is read from
//! `TOLL_PASSWORD` or the first line of standard input — never a flag, which would land in the
//! shell history and the process list.

use std::io::BufRead as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use toll_store::users::{NewUser, Role};

use crate::admin::{DbArgs, TenantArg, open};

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user (password from TOLL_PASSWORD or the first line of stdin).
    Add {
        #[command(flatten)]
        t: TenantArg,
        login: String,
        /// admin, operator, approver, auditor, provider or customer.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: String,
        /// A customer's account.
        #[arg(long)]
        account: Option<String>,
    },
    /// The tenant's users.
    List {
        #[command(flatten)]
        t: TenantArg,
    },
}

fn password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("TOLL_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(db: &DbArgs, cmd: &UserCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        UserCmd::Add {
            t,
            login,
            role,
            name,
            account,
        } => {
            let tenant = store.tenant(&t.tenant).await?;
            let role: Role = role.parse()?;
            let hash = toll_server::secrets::hash_password(password()?).await?;
            if let Some(a) = account {
                store.account(tenant.id, a).await?;
            }
            store
                .create_user(
                    tenant.id,
                    &NewUser {
                        login,
                        display_name: name,
                        password_hash: &hash,
                        role,
                        account_code: account.as_deref(),
                    },
                )
                .await?;
            println!("user {login} ({role}) created in tenant {}", tenant.slug);
        }
        UserCmd::List { t } => {
            let tenant = store.tenant(&t.tenant).await?;
            let users = store.users(tenant.id).await?;
            if t.json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                for u in users {
                    println!(
                        "{:<20} {:<9} {}{}",
                        u.login,
                        u.role,
                        u.display_name,
                        if u.locked { "  (locked)" } else { "" }
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
