//! `toll`: Toll's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use rust_decimal::Decimal;
use toll_cli::event_args::EventText;
use toll_cli::load::{self, LoadError};
use toll_cli::{admin, generate, ratefile, view};

#[derive(Parser, Debug)]
#[command(name = "toll", version, about = "Toll: telecom and usage billing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    db: admin::DbArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Tariff tools.
    #[command(subcommand)]
    Tariff(TariffCmd),
    /// The cost of one event.
    Cost(EventFlags),
    /// The longest usage an available balance pays for (prepaid authorisation).
    MaxUsage(MaxUsageFlags),
    /// Rate a CSV file of events into a rated CSV file.
    Rate(ratefile::RateArgs),
    /// Price a quantity with a usage pricing definition (graduated, volume, package, ...).
    Price(PriceFlags),
    /// Generate seeded test data: a large tariff or a file of events.
    #[command(subcommand)]
    Gen(generate::GenCmd),
    /// The database: `toll db migrate`.
    #[command(subcommand)]
    Db(admin::DbCmd),
    /// Tenants (operators whose data is kept apart).
    #[command(subcommand)]
    Tenant(admin::TenantCmd),
    /// Customers.
    #[command(subcommand)]
    Customer(admin::CustomerCmd),
    /// Billing accounts (prepaid or postpaid) and their balances.
    #[command(subcommand)]
    Account(admin::AccountCmd),
    /// Subscriber lines (phone numbers) of accounts.
    #[command(subcommand)]
    Subscriber(admin::SubscriberCmd),
    /// Plans (资费套餐) and their maker–checker lifecycle.
    #[command(subcommand)]
    Plan(admin::PlanCmd),
    /// Subscriptions and plan changes.
    #[command(subcommand)]
    Subscription(admin::SubscriptionCmd),
    /// Credit an account's wallet (idempotent by --key).
    Topup(admin::TopUpArgs),
    /// Charge a CSV file of usage events (allowances, overage, wallet, ledger).
    Charge(toll_cli::chargefile::ChargeArgs),
    /// How much of a usage a line may have now (allowances, then balance): prepaid authorisation.
    Authorize(toll_cli::chargefile::AuthorizeArgs),
    /// The ledger: `toll ledger verify`.
    #[command(subcommand)]
    Ledger(admin::LedgerCmd),
    /// Bill runs (`toll bill run --period 2026-10`), the nightly sums, invoicing settings.
    #[command(subcommand)]
    Bill(toll_cli::bill_cmd::BillCmd),
    /// Invoices and credit notes: list, show, finalize, void, credit.
    #[command(subcommand)]
    Invoice(toll_cli::bill_cmd::InvoiceCmd),
    /// Import CDR files from switches: read, cleanse, rate, charge and store every record.
    Import(toll_cli::importfile::ImportArgs),
    /// The suspense queue: records that could not be charged, to fix and re-process.
    #[command(subcommand)]
    Suspense(toll_cli::suspense_cmd::SuspenseCmd),
    /// Re-price a period's CDRs with the current tariff; differences become ledger adjustments.
    Rerate(toll_cli::rerate_cmd::RerateArgs),
    /// Ingestion tools: `toll ingest replay` feeds dead-lettered batches again.
    #[command(subcommand)]
    Ingest(toll_cli::suspense_cmd::IngestCmd),
    /// Consume the tenant's CDR stream (NATS JetStream) through the pipeline until SIGTERM.
    Worker(toll_cli::stream_cmd::WorkerArgs),
    /// CDR streams: `toll stream publish FILE` sends a file's records to NATS.
    #[command(subcommand)]
    Stream(toll_cli::stream_cmd::StreamCmd),
    /// The HTTP server: REST API, web UI, CDR ingestion (batches, real-time call events),
    /// health and metrics.
    Serve(toll_cli::serve::ServeArgs),
    /// Users who sign in to `toll serve`: `toll user add --tenant T LOGIN --role R --name N`.
    #[command(subcommand)]
    User(toll_cli::user_cmd::UserCmd),
    /// Toll with a demo operator in one command: seeds a SQLite file (once) and serves the web
    /// UI and API with demo logins.
    Demo(toll_cli::demo_cmd::DemoArgs),
    /// Seed an empty database with the demo operator (plans, lines, a month of CDRs): the
    /// data `toll demo` serves, to try by hand. Hidden until `toll demo` is released.
    #[command(hide = true)]
    DemoSeed(toll_cli::demo_data::DemoSeedArgs),
}

#[derive(Subcommand, Debug)]
enum TariffCmd {
    /// Validate a tariff folder or file; print counts, or every error and exit 1.
    Check {
        /// A CGRateS CSV folder, a folder with tariff.toml, or a .toml file.
        dir: PathBuf,
        /// Print the counts as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct EventFlags {
    /// Tariff folder (CGRateS CSV or tariff.toml) or .toml file.
    #[arg(long, env = "TOLL_TARIFF")]
    tariff: PathBuf,
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    category: String,
    #[arg(long)]
    subject: String,
    /// The dialled number.
    #[arg(long)]
    destination: String,
    /// Start time, RFC 3339 with offset (e.g. 2026-11-22T10:00:00+08:00).
    #[arg(long)]
    start: String,
    /// Voice: a duration (90s, 1m30s); SMS and data: a unit count.
    #[arg(long)]
    usage: String,
    /// voice, sms or data (default: from the category: sms/mms → sms, data → data, else voice).
    #[arg(long, default_value = "")]
    tor: String,
    /// Carrier of the route used (overrides the callee's number range).
    #[arg(long)]
    carrier: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct PriceFlags {
    /// A pricing definition in TOML, written as plans embed it (docs/pricing.md).
    #[arg(long)]
    pricing: PathBuf,
    /// The quantity to price (for `percentage`: one event's amount).
    #[arg(long, allow_hyphen_values = true)]
    quantity: String,
    /// Print JSON: `amount` as a decimal string and the breakdown per tier.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct MaxUsageFlags {
    #[command(flatten)]
    event: EventFlags,
    /// Available balance.
    #[arg(long, allow_hyphen_values = true)]
    balance: String,
}

/// Exit codes: 0 ok, 1 invalid tariff or input, 2 event cannot be rated.
const EXIT_INVALID: u8 = 1;
const EXIT_UNRATABLE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Tariff(TariffCmd::Check { dir, json }) => tariff_check(&dir, json),
        Command::Cost(flags) => cost(&flags),
        Command::MaxUsage(flags) => max_usage(&flags),
        Command::Rate(args) => ratefile::run(&args),
        Command::Price(flags) => price(&flags),
        Command::Gen(cmd) => generate::run(&cmd),
        Command::Db(cmd) => admin::runtime()?.block_on(admin::db(&cli.db, &cmd)),
        Command::Tenant(cmd) => admin::runtime()?.block_on(admin::tenant_cmd(&cli.db, &cmd)),
        Command::Customer(cmd) => admin::runtime()?.block_on(admin::customer_cmd(&cli.db, &cmd)),
        Command::Account(cmd) => admin::runtime()?.block_on(admin::account_cmd(&cli.db, &cmd)),
        Command::Subscriber(cmd) => {
            admin::runtime()?.block_on(admin::subscriber_cmd(&cli.db, &cmd))
        }
        Command::Plan(cmd) => admin::runtime()?.block_on(admin::plan_cmd(&cli.db, &cmd)),
        Command::Subscription(cmd) => {
            admin::runtime()?.block_on(admin::subscription_cmd(&cli.db, &cmd))
        }
        Command::Topup(args) => admin::runtime()?.block_on(admin::top_up(&cli.db, &args)),
        Command::Charge(args) => admin::runtime()?.block_on(admin::charge(&cli.db, &args)),
        Command::Authorize(args) => admin::runtime()?.block_on(async {
            let a = toll_cli::chargefile::authorize(&cli.db, &args).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                println!(
                    "allowed {} (allowances {}, balance {}), limited by {}",
                    a.allowed, a.from_allowances, a.from_balance, a.limited_by
                );
            }
            Ok(if a.allowed == 0 {
                ExitCode::from(EXIT_UNRATABLE)
            } else {
                ExitCode::SUCCESS
            })
        }),
        Command::Ledger(cmd) => admin::runtime()?.block_on(admin::ledger_cmd(&cli.db, &cmd)),
        Command::Import(args) => admin::runtime()?.block_on(async {
            let files = toll_cli::importfile::run(&cli.db, &args).await?;
            let suspended: u64 = files.iter().map(|f| f.report.suspended).sum();
            let dead = files.iter().any(|f| !f.dead_letters.is_empty());
            // 0: every record charged, skipped or a duplicate; 2: some wait in the suspense
            // queue or a dead letter (the run itself completed).
            Ok(if suspended > 0 || dead {
                ExitCode::from(EXIT_UNRATABLE)
            } else {
                ExitCode::SUCCESS
            })
        }),
        Command::Rerate(args) => admin::runtime()?.block_on(async {
            let r = toll_cli::rerate_cmd::run(&cli.db, &args).await?;
            // 2: some increases were refused (insufficient balance) and wait for a re-run.
            Ok(if r.refused > 0 {
                ExitCode::from(EXIT_UNRATABLE)
            } else {
                ExitCode::SUCCESS
            })
        }),
        Command::Suspense(cmd) => admin::runtime()?.block_on(async {
            toll_cli::suspense_cmd::suspense(&cli.db, &cmd).await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Ingest(cmd) => admin::runtime()?.block_on(async {
            toll_cli::suspense_cmd::ingest(&cli.db, &cmd).await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Bill(cmd) => admin::runtime()?.block_on(toll_cli::bill_cmd::bill(&cli.db, &cmd)),
        Command::Invoice(cmd) => {
            admin::runtime()?.block_on(toll_cli::bill_cmd::invoice(&cli.db, &cmd))
        }
        Command::Worker(args) => admin::runtime()?.block_on(async {
            toll_cli::stream_cmd::worker(&cli.db, &args).await?;
            Ok(ExitCode::SUCCESS)
        }),
        Command::Stream(toll_cli::stream_cmd::StreamCmd::Publish(args)) => {
            admin::runtime()?.block_on(async {
                let s = toll_cli::stream_cmd::publish(&cli.db, &args).await?;
                println!("published {}, unreadable {}", s.published, s.unreadable);
                // 2: some records could not be read (listed on stderr), as `toll import`.
                Ok(if s.unreadable > 0 {
                    ExitCode::from(EXIT_UNRATABLE)
                } else {
                    ExitCode::SUCCESS
                })
            })
        }
        Command::DemoSeed(args) => admin::runtime()?
            .block_on(toll_cli::demo_data::demo_seed(&cli.db, &args))
            .map(|()| ExitCode::SUCCESS),
        Command::User(cmd) => admin::runtime()?.block_on(toll_cli::user_cmd::run(&cli.db, &cmd)),
        Command::Demo(args) => admin::runtime()?
            .block_on(toll_cli::demo_cmd::run(&args))
            .map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => admin::runtime()?
            .block_on(toll_cli::serve::run(&cli.db, &args))
            .map(|()| ExitCode::SUCCESS),
    }
}

fn tariff_check(dir: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    match load::load(dir) {
        Ok(loaded) => {
            for w in loaded.warnings.warnings() {
                eprintln!("{w}");
            }
            let s = loaded.tariff.stats;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!("tariff {} ({:?} format): OK", dir.display(), loaded.format);
                println!("  destinations       {}", s.destinations);
                println!("  prefixes           {}", s.prefixes);
                println!("  rates              {}", s.rates);
                println!("  destination rates  {}", s.destination_rates);
                println!("  timings            {}", s.timings);
                println!("  rating plans       {}", s.plans);
                println!("  rating profiles    {}", s.profiles);
                println!(
                    "  warnings           {}",
                    loaded.warnings.warnings().count()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid(diags)) => {
            for d in &diags.items {
                eprintln!("{d}");
            }
            eprintln!(
                "{} error(s), {} warning(s)",
                diags.errors().count(),
                diags.warnings().count()
            );
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e) => Err(e.into()),
    }
}

fn load_for_event(flags: &EventFlags) -> anyhow::Result<load::Loaded> {
    load::load(&flags.tariff).with_context(|| format!("loading tariff {}", flags.tariff.display()))
}

fn event_text(flags: &EventFlags) -> EventText<'_> {
    EventText {
        tenant: &flags.tenant,
        category: &flags.category,
        subject: &flags.subject,
        destination: &flags.destination,
        start: &flags.start,
        usage: &flags.usage,
        tor: &flags.tor,
        route_carrier: flags.carrier.as_deref(),
    }
}

fn cost(flags: &EventFlags) -> anyhow::Result<ExitCode> {
    let loaded = load_for_event(flags)?;
    let ev = event_text(flags).parse()?;
    match toll_rating::rate(&loaded.tariff, &ev) {
        Ok(rated) => {
            let v = view::rated_view(&loaded.tariff, &ev, &rated);
            if flags.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "cost {}{}",
                    v.cost,
                    v.currency
                        .as_deref()
                        .map(|c| format!(" {c}"))
                        .unwrap_or_default()
                );
                println!(
                    "  connect fee {}  usage {}  rated {}  rounding {}",
                    v.connect_fee, v.usage, v.rated_usage, v.rounding
                );
                println!(
                    "  destination {} (prefix {:?} of {})  plan {}  carrier {}  region {}",
                    v.destination_id,
                    v.matched_prefix,
                    v.number,
                    v.plan,
                    v.carrier,
                    v.region.as_deref().unwrap_or("unknown")
                );
                for p in &v.pieces {
                    println!(
                        "  {}  real {:>8}  rated {:>8}  {} / {} / {}#{}  {}",
                        p.start,
                        p.real_usage,
                        p.rated_usage,
                        p.timing,
                        p.destination_rate,
                        p.rate,
                        p.rate_group,
                        p.cost
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if flags.json {
                println!("{}", serde_json::json!({ "error": e.to_string() }));
            }
            eprintln!("cannot rate: {e}");
            Ok(ExitCode::from(EXIT_UNRATABLE))
        }
    }
}

fn max_usage(flags: &MaxUsageFlags) -> anyhow::Result<ExitCode> {
    let loaded = load_for_event(&flags.event)?;
    let ev = event_text(&flags.event).parse()?;
    let balance: Decimal =
        flags.balance.trim().parse().map_err(|_| {
            anyhow::anyhow!("--balance {:?} is not a decimal amount", flags.balance)
        })?;
    match toll_rating::max_usage(&loaded.tariff, &ev, balance) {
        Ok(m) => {
            let v = view::max_usage_view(&ev, &m);
            if flags.event.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "max usage {} (cost {}, limited by {})",
                    v.max_usage, v.cost, v.limited_by
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if flags.event.json {
                println!("{}", serde_json::json!({ "error": e.to_string() }));
            }
            eprintln!("cannot rate: {e}");
            Ok(ExitCode::from(EXIT_UNRATABLE))
        }
    }
}

fn price(flags: &PriceFlags) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&flags.pricing)
        .with_context(|| format!("reading {}", flags.pricing.display()))?;
    let pricing: toll_catalog::pricing::Pricing = match text.parse() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}: {e}", flags.pricing.display());
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    let quantity: Decimal =
        flags.quantity.trim().parse().map_err(|_| {
            anyhow::anyhow!("--quantity {:?} is not a decimal number", flags.quantity)
        })?;
    let price = match pricing.price(quantity) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot price: {e}");
            return Ok(ExitCode::from(EXIT_INVALID));
        }
    };
    if flags.json {
        let lines: Vec<serde_json::Value> = price
            .lines
            .iter()
            .map(|l| {
                serde_json::json!({
                    "tier": l.tier + 1,
                    "quantity": l.quantity.normalize().to_string(),
                    "unit_price": l.unit_price.normalize().to_string(),
                    "flat_fee": l.flat_fee.normalize().to_string(),
                    "amount": l.amount.normalize().to_string(),
                })
            })
            .collect();
        let out =
            serde_json::json!({ "amount": price.amount.normalize().to_string(), "tiers": lines });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("amount {}", price.amount.normalize());
        for l in &price.lines {
            println!(
                "  tier {:>3}  quantity {:>12}  × {:>10}  + flat {:>8}  = {}",
                l.tier + 1,
                l.quantity.normalize(),
                l.unit_price.normalize(),
                l.flat_fee.normalize(),
                l.amount.normalize()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
