//! `toll rerate`: re-prices a period's CDRs with the current tariff and posts the differences
//! as ledger adjustments, idempotently, with a report of what changed.

use anyhow::Context;
use clap::Args;
use toll_ingest::pipeline::rerate::{RerateReport, Window, rerate};

use crate::admin::DbArgs;
use crate::importfile::{PipelineArgs, build};

#[derive(Args, Debug)]
pub struct RerateArgs {
    /// First day (in the tenant's zone) or instant (RFC 3339) of the period, inclusive.
    #[arg(long)]
    pub from: String,
    /// End of the period, exclusive: a day (its start) or an instant.
    #[arg(long)]
    pub to: String,
    /// Only this account's CDRs.
    #[arg(long)]
    pub account: Option<String>,
    /// Report what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[arg(long)]
    pub json: bool,
}

/// A day in `zone` (its first instant) or an RFC 3339 instant, as Unix milliseconds.
fn instant(text: &str, zone: &jiff::tz::TimeZone, flag: &str) -> anyhow::Result<i64> {
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return Ok(d
            .to_zoned(zone.clone())
            .with_context(|| format!("--{flag} {text}"))?
            .timestamp()
            .as_millisecond());
    }
    let p = toll_core::civil::parse_rfc3339(text)
        .map_err(|e| anyhow::anyhow!("--{flag} {text:?}: a day (2026-11-01) or RFC 3339: {e}"))?;
    Ok(p.epoch_ns.div_euclid(1_000_000))
}

pub async fn run(db: &DbArgs, args: &RerateArgs) -> anyhow::Result<RerateReport> {
    let built = build(db, &args.pipeline).await?;
    let tariff = built
        .pipeline
        .tariff()
        .context("--tariff is required: re-rating prices with the current tariff")?;
    let zone = built.tenant.zone()?;
    let from_ms = instant(&args.from, &zone, "from")?;
    let to_ms = instant(&args.to, &zone, "to")?;
    if to_ms <= from_ms {
        anyhow::bail!("--to must be after --from");
    }
    let account_id = match &args.account {
        Some(code) => Some(built.store.account(built.tenant.id, code).await?.id),
        None => None,
    };
    let report = rerate(
        &built.store,
        &built.tenant,
        &tariff,
        built.pipeline.rating_context(),
        Window {
            from_ms,
            to_ms,
            account_id,
            dry_run: args.dry_run,
        },
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in report.changes.iter().take(50) {
            println!(
                "{}  {} → {}  {}",
                c.event_key,
                c.old.to_decimal().normalize(),
                c.new.to_decimal().normalize(),
                c.status
            );
        }
        if report.changes.len() > 50 {
            println!("… {} more (--json lists them)", report.changes.len() - 50);
        }
        println!(
            "examined {}: adjusted {}{}, unchanged {}, refused {}, plan-priced {}, unratable {}; difference {}",
            report.examined,
            report.adjusted,
            if args.dry_run { " (dry run)" } else { "" },
            report.unchanged,
            report.refused,
            report.plan_priced,
            report.unratable,
            report.delta.to_decimal().normalize()
        );
    }
    Ok(report)
}
