//! `toll charge`: charges a CSV file of usage events against the stored subscribers, in batches
//! of one database transaction each.
//!
//! Input header: `key,number,usage,service,start,quantity,destination,rated_cost` (the last
//! three may be empty; `service`, `destination` and `rated_cost` columns may be absent). Voice
//! quantities are durations (`73s`, `1m13s`) or bare seconds, rounded up to whole seconds; other
//! kinds are whole base units (messages, bytes, custom units).
//!
//! Crash safety comes from the store: a batch commits whole or not at all, and every charged
//! event's key is recorded with it, so running the same file again after a crash (or `kill -9`)
//! charges exactly the events that were not yet charged.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use rust_decimal::Decimal;
use toll_core::UsageKind;
use toll_core::usage::Tor;
use toll_ingest::pipeline::rating::TariffRater;
use toll_store::charging::{ChargeOutcome, Charger, MAX_BATCH, UsageEvent};

use crate::admin::{DbArgs, open};
use crate::event_args;

#[derive(Args, Debug)]
pub struct ChargeArgs {
    /// The tenant (its slug).
    #[arg(long, env = "TOLL_TENANT")]
    pub tenant: String,
    /// CSV of usage events, or - for standard input.
    #[arg(long)]
    pub events: PathBuf,
    /// Tariff for the parts of calls beyond the allowances of plans that price them by tariff.
    #[arg(long)]
    pub tariff: Option<PathBuf>,
    /// The tariff's own tenant name (CGRateS tenant), when it differs from Toll's tenant slug.
    #[arg(long)]
    pub tariff_tenant: Option<String>,
    /// Events per database transaction.
    #[arg(long, default_value_t = 5000)]
    pub batch: usize,
    /// Where refused rows go (line, key, reason); standard error when absent.
    #[arg(long)]
    pub refused: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize)]
pub struct ChargeSummary {
    pub charged: u64,
    pub duplicate: u64,
    pub refused: u64,
    /// Sum of the charged amounts.
    pub amount: Decimal,
    pub seconds: f64,
}

/// Parses one CSV record into an event; the error names the field.
fn parse_row(
    header: &csv::StringRecord,
    row: &csv::StringRecord,
) -> Result<UsageEvent, event_args::FieldError> {
    let field = |name: &'static str| -> Option<&str> {
        header
            .iter()
            .position(|h| h == name)
            .and_then(|i| row.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let need = |name: &'static str| {
        field(name).ok_or(event_args::FieldError {
            field: name,
            reason: "missing".into(),
        })
    };
    let bad = |name: &'static str, reason: String| event_args::FieldError {
        field: name,
        reason,
    };
    let usage: UsageKind = need("usage")?
        .parse()
        .map_err(|e| bad("usage", format!("{e}")))?;
    let (start, _) = event_args::start(need("start")?)?;
    let quantity_text = need("quantity")?;
    let quantity = match usage {
        UsageKind::Voice => {
            let ns = event_args::usage(quantity_text, Tor::Voice)
                .map_err(|e| bad("quantity", e.reason))?;
            // Whole seconds, a started second counting.
            ns / 1_000_000_000 + i64::from(ns % 1_000_000_000 != 0)
        }
        _ => quantity_text.parse::<i64>().map_err(|_| {
            bad(
                "quantity",
                format!("{quantity_text:?} is not a whole number"),
            )
        })?,
    };
    let rated_cost = match field("rated_cost") {
        None => None,
        Some(t) => Some(
            t.parse::<Decimal>()
                .map_err(|_| bad("rated_cost", format!("{t:?} is not a decimal")))?,
        ),
    };
    Ok(UsageEvent {
        key: need("key")?.to_string(),
        number: need("number")?.to_string(),
        usage,
        service: field("service").map(str::to_string),
        at_ms: start.as_millisecond(),
        quantity,
        destination: field("destination").map(str::to_string),
        rated_cost,
    })
}

pub async fn run(db: &DbArgs, args: &ChargeArgs) -> anyhow::Result<ChargeSummary> {
    if args.batch == 0 || args.batch > MAX_BATCH {
        anyhow::bail!("--batch must be 1..={MAX_BATCH}");
    }
    let started = std::time::Instant::now();
    let store = open(db).await?;
    let tenant = store.tenant(&args.tenant).await?;
    let mut charger = Charger::new(store, tenant.clone())?;
    if let Some(dir) = &args.tariff {
        let loaded =
            crate::load::load(dir).with_context(|| format!("loading tariff {}", dir.display()))?;
        charger = charger.with_rater(Arc::new(TariffRater {
            tariff: loaded.tariff,
            tenant: args
                .tariff_tenant
                .clone()
                .unwrap_or_else(|| tenant.slug.clone()),
        }));
    }
    let input: Box<dyn std::io::Read> = if args.events.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(&args.events)
                .with_context(|| format!("opening {}", args.events.display()))?,
        )
    };
    let mut refused_out: Box<dyn Write> = match &args.refused {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stderr()),
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader.headers().context("reading the header")?.clone();
    let mut summary = ChargeSummary::default();
    let mut batch: Vec<UsageEvent> = Vec::with_capacity(args.batch);
    let mut lines: Vec<u64> = Vec::with_capacity(args.batch);
    let mut record = csv::StringRecord::new();
    loop {
        let more = reader.read_record(&mut record).context("reading events")?;
        if more {
            let line = record.position().map_or(0, |p| p.line());
            match parse_row(&header, &record) {
                Ok(ev) => {
                    batch.push(ev);
                    lines.push(line);
                }
                Err(e) => {
                    summary.refused += 1;
                    writeln!(refused_out, "line {line}: {e}")?;
                }
            }
        }
        if batch.len() == args.batch || (!more && !batch.is_empty()) {
            let outcomes = charger.charge_batch(&batch).await?;
            for ((o, ev), line) in outcomes.iter().zip(&batch).zip(&lines) {
                match o {
                    ChargeOutcome::Charged { amount, .. } => {
                        summary.charged += 1;
                        summary.amount += amount.to_decimal();
                    }
                    ChargeOutcome::Duplicate => summary.duplicate += 1,
                    ChargeOutcome::Refused { reason, .. } => {
                        summary.refused += 1;
                        writeln!(refused_out, "line {line}: key {}: {reason}", ev.key)?;
                    }
                }
            }
            batch.clear();
            lines.clear();
        }
        if !more {
            break;
        }
    }
    refused_out.flush()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

#[derive(Args, Debug)]
pub struct AuthorizeArgs {
    /// The tenant (its slug).
    #[arg(long, env = "TOLL_TENANT")]
    pub tenant: String,
    /// The subscriber line.
    #[arg(long)]
    pub number: String,
    /// voice, sms, data or a custom usage type.
    #[arg(long, default_value = "voice")]
    pub usage: String,
    /// The most usage asked for: a duration for voice (`1h`), base units otherwise.
    #[arg(long)]
    pub quantity: String,
    /// Start, RFC 3339 with offset.
    #[arg(long)]
    pub start: String,
    #[arg(long)]
    pub service: Option<String>,
    /// The number called, when the plan prices calls beyond its allowances by tariff.
    #[arg(long)]
    pub destination: Option<String>,
    #[arg(long)]
    pub tariff: Option<PathBuf>,
    #[arg(long)]
    pub tariff_tenant: Option<String>,
    #[arg(long)]
    pub json: bool,
}

/// `toll authorize`: how much of a usage the line's allowances and balance allow now.
pub async fn authorize(
    db: &DbArgs,
    args: &AuthorizeArgs,
) -> anyhow::Result<toll_store::charging::Authorization> {
    let header = csv::StringRecord::from(vec![
        "key",
        "number",
        "usage",
        "service",
        "start",
        "quantity",
        "destination",
    ]);
    let row = csv::StringRecord::from(vec![
        "authorize",
        args.number.as_str(),
        args.usage.as_str(),
        args.service.as_deref().unwrap_or(""),
        args.start.as_str(),
        args.quantity.as_str(),
        args.destination.as_deref().unwrap_or(""),
    ]);
    let ev =
        parse_row(&header, &row).map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.reason))?;
    let store = open(db).await?;
    let tenant = store.tenant(&args.tenant).await?;
    let mut charger = Charger::new(store, tenant.clone())?;
    if let Some(dir) = &args.tariff {
        let loaded =
            crate::load::load(dir).with_context(|| format!("loading tariff {}", dir.display()))?;
        charger = charger.with_rater(Arc::new(TariffRater {
            tariff: loaded.tariff,
            tenant: args
                .tariff_tenant
                .clone()
                .unwrap_or_else(|| tenant.slug.clone()),
        }));
    }
    Ok(charger.authorize(&ev).await?)
}
