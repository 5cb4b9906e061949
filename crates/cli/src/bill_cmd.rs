//! `toll bill` and `toll invoice`: bill runs, the nightly sums they add up, invoicing settings,
//! and invoices (list, show, finalize, void, credit).

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;
use rust_decimal::Decimal;
use toll_billing::{PeriodLabel, TaxMode, TaxRate};
use toll_core::RoundingMethod;
use toll_store::billing::invoices::StoredInvoice;
use toll_store::billing::run::{BillRunOptions, DEFAULT_BATCH};
use toll_store::{Store, Tenant};

use crate::admin::{DbArgs, open};
use toll_server::api::types::money;

#[derive(Subcommand, Debug)]
pub enum BillCmd {
    /// Invoice every account of the tenant for a period: one invoice each, numbered without
    /// gaps; safe to run again or after a crash (accounts already invoiced are skipped).
    Run(BillRunArgs),
    /// Sum the daily usage and postings that bill runs add up (the nightly job): the last
    /// --days days, so late records of those days are caught.
    Sum(BillSumArgs),
    /// How the tenant's invoices treat VAT: inclusive or exclusive prices, rates per product.
    Tax(TaxArgs),
}

#[derive(Args, Debug)]
pub struct BillRunArgs {
    #[arg(long)]
    pub tenant: String,
    /// The month the period starts in: 2026-10.
    #[arg(long)]
    pub period: String,
    /// Leave the invoices as drafts (no numbers yet) for review.
    #[arg(long)]
    pub draft: bool,
    /// Accounts per transaction.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: usize,
    /// The date the run is made on (default: today in the tenant's zone).
    #[arg(long)]
    pub today: Option<Date>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BillSumArgs {
    #[arg(long)]
    pub tenant: String,
    /// How many days back from yesterday to recompute.
    #[arg(long, default_value_t = toll_store::billing::sums::NIGHTLY_WINDOW_DAYS)]
    pub days: u32,
    /// The date the job runs on (default: today in the tenant's zone).
    #[arg(long)]
    pub today: Option<Date>,
}

#[derive(Args, Debug)]
pub struct TaxArgs {
    #[arg(long)]
    pub tenant: String,
    /// Whether prices include the tax: inclusive or exclusive.
    #[arg(long)]
    pub mode: Option<TaxMode>,
    /// How invoices round: *up, *middle (half away from zero) or *down.
    #[arg(long)]
    pub rounding: Option<String>,
    /// A rate: PRODUCT=NAME:PERCENT, e.g. voice=增值税:9 or '*=VAT:6'. Repeatable.
    #[arg(long = "rate")]
    pub rates: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum InvoiceCmd {
    /// Invoices, newest first.
    List {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        period: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// One invoice by number (INV-2026-000001) or id, checked as it is read.
    Show {
        #[arg(long)]
        tenant: String,
        invoice: String,
        #[arg(long)]
        json: bool,
    },
    /// Finalize a draft: number it and post its tax.
    Finalize {
        #[arg(long)]
        tenant: String,
        id: i64,
    },
    /// Void a draft (its usage goes on the next run).
    Void {
        #[arg(long)]
        tenant: String,
        id: i64,
    },
    /// Credit a finalized invoice in full with a credit note.
    Credit {
        #[arg(long)]
        tenant: String,
        invoice: String,
        #[arg(long)]
        reason: String,
    },
}

fn today_in(tenant: &Tenant, given: Option<Date>) -> anyhow::Result<Date> {
    match given {
        Some(d) => Ok(d),
        None => Ok(jiff::Timestamp::now().to_zoned(tenant.zone()?).date()),
    }
}

pub async fn bill(db: &DbArgs, cmd: &BillCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        BillCmd::Run(a) => run(&store, a).await,
        BillCmd::Sum(a) => {
            let tenant = store.tenant(&a.tenant).await?;
            let today = today_in(&tenant, a.today)?;
            let to = today.yesterday()?;
            let from =
                to.checked_sub(jiff::Span::new().days(i64::from(a.days.saturating_sub(1))))?;
            let days = store.sum_days(&tenant, from, to).await?;
            println!("summed {days} day(s), {from} to {to}");
            Ok(ExitCode::SUCCESS)
        }
        BillCmd::Tax(a) => {
            let tenant = store.tenant(&a.tenant).await?;
            let current = store.tax_settings(tenant.id).await?;
            let rounding = match a.rounding.as_deref() {
                None => current.rounding,
                Some("*up") => RoundingMethod::Up,
                Some("*middle") => RoundingMethod::Middle,
                Some("*down") => RoundingMethod::Down,
                Some(other) => anyhow::bail!("--rounding {other:?}: *up, *middle or *down"),
            };
            store
                .set_invoicing(tenant.id, a.mode.unwrap_or(current.mode), rounding)
                .await?;
            for r in &a.rates {
                let (product, rest) = r
                    .split_once('=')
                    .with_context(|| format!("--rate {r:?}: PRODUCT=NAME:PERCENT"))?;
                let (name, pct) = rest
                    .rsplit_once(':')
                    .with_context(|| format!("--rate {r:?}: PRODUCT=NAME:PERCENT"))?;
                let pct: Decimal = pct
                    .trim()
                    .parse()
                    .with_context(|| format!("--rate {r:?}: {pct:?} is not a percentage"))?;
                let rate = TaxRate::percent(name, pct)?;
                store.set_tax_rule(tenant.id, product.trim(), &rate).await?;
            }
            let s = store.tax_settings(tenant.id).await?;
            println!(
                "prices {} of tax; invoices round {}",
                s.mode.as_str(),
                s.rounding
            );
            for (product, rate) in &s.rules {
                println!("  {product:<8} {} {}%", rate.name(), rate.percent_value());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run(store: &Store, a: &BillRunArgs) -> anyhow::Result<ExitCode> {
    let tenant = store.tenant(&a.tenant).await?;
    let label: PeriodLabel = a.period.parse()?;
    let today = today_in(&tenant, a.today)?;
    let pb = (!a.quiet && !a.json).then(|| {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} bill run {msg} [{bar:40}] {pos}/{len} accounts {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_message(label.to_string());
        pb
    });
    let opts = BillRunOptions {
        finalize: !a.draft,
        batch: a.batch,
        today,
    };
    let started = std::time::Instant::now();
    let summary = store
        .bill_run(&tenant, label, &opts, |done, all| {
            if let Some(pb) = &pb {
                pb.set_length(all);
                pb.set_position(done);
            }
        })
        .await?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    // Credit left by earlier overpayments settles the new invoices.
    let settled = store.allocate_all_credit(tenant.id).await?;
    let secs = started.elapsed().as_secs_f64();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "bill run {}: {} account(s), {} invoice(s) created, {} already invoiced, {} not due, \
             {} day(s) summed, in {secs:.1} s",
            summary.period,
            summary.accounts,
            summary.created,
            summary.existing,
            summary.not_due,
            summary.days_summed
        );
        println!("  total {} {}", summary.total, tenant.currency);
        if !settled.is_empty() {
            println!("  {} invoice(s) settled from earlier credit", settled.len());
        }
        if let (Some(f), Some(l)) = (&summary.first_number, &summary.last_number) {
            println!("  numbers {f} to {l}");
        }
        for (account, why) in &summary.failed {
            eprintln!("  not invoiced: {account}: {why}");
        }
    }
    // 2: some accounts could not be invoiced (listed), as `toll import` does for records.
    Ok(if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn find(store: &Store, tenant: &Tenant, key: &str) -> anyhow::Result<StoredInvoice> {
    Ok(match key.parse::<i64>() {
        Ok(id) => store.invoice(tenant.id, id).await?,
        Err(_) => store.invoice_by_number(tenant.id, key).await?,
    })
}

fn print_invoice(i: &StoredInvoice) {
    let c = i.invoice.currency;
    println!(
        "{} {}  account {} ({})  period {} to {}  {}",
        match i.invoice.kind {
            toll_billing::InvoiceKind::Invoice => "invoice",
            toll_billing::InvoiceKind::CreditNote { .. } => "credit note",
        },
        i.number.as_deref().unwrap_or("(draft)"),
        i.account,
        i.customer,
        i.period_start,
        i.period_end,
        i.status
    );
    for l in &i.invoice.lines {
        let qty = l
            .quantity
            .map(|q| format!("{} {}", q.value, q.unit.as_str()))
            .unwrap_or_default();
        println!(
            "  {:<14} {:<32} {:<16} {:>14}",
            l.kind.as_str(),
            match &l.detail {
                Some(d) => format!("{} ({d})", l.label),
                None => l.label.clone(),
            },
            qty,
            money(l.amount, c)
        );
    }
    for t in &i.invoice.taxes {
        println!(
            "  tax {} {}% on {}: {}",
            t.rate.name(),
            t.rate.percent_value(),
            money(t.base, c),
            money(t.tax, c)
        );
    }
    println!("  total {} {}", money(i.invoice.total, c), c);
    if c == toll_core::Currency::CNY
        && let Ok(words) = toll_billing::capital::capitals(i.invoice.total)
    {
        println!("  大写 {words}");
    }
}

pub async fn invoice(db: &DbArgs, cmd: &InvoiceCmd) -> anyhow::Result<ExitCode> {
    let store = open(db).await?;
    match cmd {
        InvoiceCmd::List {
            tenant,
            account,
            period,
            limit,
            json,
        } => {
            let t = store.tenant(tenant).await?;
            let list = store
                .invoices(t.id, account.as_deref(), period.as_deref(), None, *limit)
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for i in &list {
                    let c: toll_core::Currency = i.currency.parse()?;
                    println!(
                        "{:>6}  {:<16} {:<11} {:<8} {:<10} {:<9} {:>14} {}",
                        i.id,
                        i.number.as_deref().unwrap_or("(draft)"),
                        i.kind,
                        i.period,
                        i.account,
                        i.status,
                        money(i.total, c),
                        c
                    );
                }
            }
        }
        InvoiceCmd::Show {
            tenant,
            invoice,
            json,
        } => {
            let t = store.tenant(tenant).await?;
            let i = find(&store, &t, invoice).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&i)?);
            } else {
                print_invoice(&i);
            }
        }
        InvoiceCmd::Finalize { tenant, id } => {
            let t = store.tenant(tenant).await?;
            let i = store
                .finalize_invoice(t.id, *id, today_in(&t, None)?)
                .await?;
            store.allocate_credit(t.id, &i.account).await?;
            print_invoice(&store.invoice(t.id, i.id).await?);
        }
        InvoiceCmd::Void { tenant, id } => {
            let t = store.tenant(tenant).await?;
            store.void_invoice(t.id, *id).await?;
            println!("invoice {id} voided");
        }
        InvoiceCmd::Credit {
            tenant,
            invoice,
            reason,
        } => {
            let t = store.tenant(tenant).await?;
            let i = find(&store, &t, invoice).await?;
            let cn = store
                .credit_invoice(t.id, i.id, reason, today_in(&t, None)?)
                .await?;
            print_invoice(&cn);
        }
    }
    Ok(ExitCode::SUCCESS)
}
