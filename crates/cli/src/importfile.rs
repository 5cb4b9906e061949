//! `toll import`: CDR files from switches through the whole pipeline (read, cleanse, rate,
//! charge, persist), a batch per transaction, with a progress bar and a summary.
//!
//! A file whose bytes were imported whole before (same SHA-256) is skipped unless `--force`.
//! A run that crashed left its file unfinished, so running it again imports it: the records
//! charged before the crash are duplicates, the rest are charged now. Batches the database
//! does not take after the retries go to the dead-letter directory (`toll ingest replay`).

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use toll_core::usage::parse_voice_usage;
use toll_ingest::Cleansing;
use toll_ingest::pipeline::feed::{Fed, PipelineSettings};
use toll_ingest::pipeline::formats::{Format, ReaderSpec};
use toll_ingest::pipeline::rating::{DefaultRate, Payer};
use toll_ingest::pipeline::{BatchReport, Item, Origin, Pipeline, RetryPolicy};
use toll_store::charging::MAX_BATCH;
use toll_store::{Store, Tenant};

use crate::admin::{DbArgs, open};

/// What every command that runs the pipeline for one tenant shares: the tenant and the rules.
#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// The tenant (its slug).
    #[arg(long, env = "TOLL_TENANT")]
    pub tenant: String,
    #[command(flatten)]
    pub rules: PipelineRules,
}

/// The pipeline's rules, for any tenant: the tariff, rating, cleansing, batching and dead
/// letters (`toll serve` takes these for every tenant it serves).
#[derive(Args, Debug, Clone)]
pub struct PipelineRules {
    /// Tariff folder (CGRateS CSV or tariff.toml) or .toml file that rates the records.
    #[arg(long, env = "TOLL_TARIFF")]
    pub tariff: Option<PathBuf>,
    /// The tariff's tenant name (CGRateS tenant), when it differs from Toll's tenant slug.
    #[arg(long)]
    pub tariff_tenant: Option<String>,
    /// The category of records that name none.
    #[arg(long, default_value = "call")]
    pub category: String,
    /// Prices for records no tariff rule rates: `voice=0.30,sms=0.10,data=0.50` (per started
    /// minute, per message, per started MB). Such records are marked default-rated.
    #[arg(long)]
    pub default_rate: Option<String>,
    /// Which party pays: the caller's line, or the record's account field.
    #[arg(long, value_parser = ["caller", "account"], default_value = "caller")]
    pub payer: String,
    /// Voice records shorter than this are not billed.
    #[arg(long, default_value = "1s")]
    pub min_duration: String,
    /// Bill records that were not answered too (by their usage, usually zero).
    #[arg(long)]
    pub keep_unanswered: bool,
    /// Calls between numbers of at most this many digits are internal and not billed.
    #[arg(long)]
    pub internal_digits: Option<u8>,
    /// Records per database transaction.
    #[arg(long, default_value_t = toll_ingest::pipeline::DEFAULT_BATCH)]
    pub batch: usize,
    /// Where batches the database did not take go.
    #[arg(
        long,
        env = "TOLL_DEAD_LETTER_DIR",
        default_value = "toll-dead-letters"
    )]
    pub dead_letter_dir: PathBuf,
    /// Retries of a batch before it is dead-lettered.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// CDR files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// asterisk, freeswitch, freeswitch-json, cgrates, cdr-json (Toll's JSON lines), or a mapping file (.toml).
    #[arg(long)]
    pub format: String,
    /// The feed's name (one per switch): with the record's own id it identifies a record, so
    /// the same record from the same feed is charged once. Default: the format's name.
    #[arg(long)]
    pub source: Option<String>,
    /// The switch's time zone, for times written without an offset (default: the tenant's).
    #[arg(long)]
    pub zone: Option<String>,
    /// FreeSWITCH CSV template: default, example, snom, linksys, asterisk.
    #[arg(long)]
    pub template: Option<String>,
    /// Import a file again even though the same bytes were imported before.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What happened to one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileSummary {
    pub file: String,
    /// `imported`, or `skipped` (imported before, by content hash).
    pub status: &'static str,
    pub import_id: Option<i64>,
    pub sha256: String,
    #[serde(flatten)]
    pub report: BatchReport,
    /// Dead-letter files written for batches the database did not take.
    pub dead_letters: Vec<String>,
    pub seconds: f64,
}

/// A ready pipeline and what it was built from.
#[derive(Debug)]
pub struct Built {
    pub store: Store,
    pub tenant: Tenant,
    pub pipeline: Pipeline,
}

impl PipelineRules {
    /// The rules as the pipeline takes them, the tariff loaded.
    pub fn settings(&self) -> anyhow::Result<PipelineSettings> {
        if self.batch == 0 || self.batch > MAX_BATCH {
            anyhow::bail!("--batch must be 1..={MAX_BATCH}");
        }
        let tariff = match &self.tariff {
            Some(dir) => Some(
                crate::load::load(dir)
                    .with_context(|| format!("loading tariff {}", dir.display()))?
                    .tariff,
            ),
            None => None,
        };
        let min = parse_voice_usage(&self.min_duration)
            .map_err(|e| anyhow::anyhow!("--min-duration: {e}"))?;
        let default_rate: DefaultRate = match &self.default_rate {
            Some(t) => t
                .parse()
                .map_err(|e| anyhow::anyhow!("--default-rate: {e}"))?,
            None => DefaultRate::default(),
        };
        Ok(PipelineSettings {
            tariff,
            tariff_tenant: self.tariff_tenant.clone(),
            category: self.category.clone(),
            default_rate,
            payer: if self.payer == "account" {
                Payer::Account
            } else {
                Payer::Caller
            },
            cleansing: Cleansing {
                min_voice_ns: min.raw(),
                skip_unanswered: !self.keep_unanswered,
                internal_max_digits: self.internal_digits,
            },
            retry: RetryPolicy {
                retries: self.retries,
                ..RetryPolicy::default()
            },
        })
    }
}

pub async fn build(db: &DbArgs, args: &PipelineArgs) -> anyhow::Result<Built> {
    let settings = args.rules.settings()?;
    let store = open(db).await?;
    let tenant = store.tenant(&args.tenant).await?;
    let pipeline = settings.pipeline(store.clone(), tenant.clone())?;
    Ok(Built {
        store,
        tenant,
        pipeline,
    })
}

fn spec_for(args: &ImportArgs, zone: &str) -> anyhow::Result<ReaderSpec> {
    reader_spec(&args.format, args.template.clone(), zone)
}

/// The reader for `--format` (a preset's name or a mapping file), `--template` and the zone:
/// shared by `toll import` and `toll stream publish`.
pub fn reader_spec(
    format_arg: &str,
    template: Option<String>,
    zone: &str,
) -> anyhow::Result<ReaderSpec> {
    let format = match format_arg {
        "asterisk" => Format::Asterisk,
        "freeswitch" => Format::Freeswitch,
        "freeswitch-json" => Format::FreeswitchJson,
        "cgrates" => Format::Cgrates,
        "cdr-json" => Format::CdrJson,
        path if path.ends_with(".toml") => Format::Mapping,
        other => anyhow::bail!(
            "--format {other:?}: expected asterisk, freeswitch, freeswitch-json, cgrates or a mapping file (.toml)"
        ),
    };
    let mut spec = ReaderSpec::new(format, zone);
    spec.template = template;
    if format == Format::Mapping {
        let p = PathBuf::from(format_arg);
        // Kept with suspense items: an absolute path still resolves when they are re-read.
        spec.mapping = Some(std::fs::canonicalize(&p).unwrap_or(p));
    }
    Ok(spec)
}

fn sha256_file(path: &Path) -> anyhow::Result<[u8; 32]> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Feeds one batch, dead-lettering it if the database does not take it
/// (`toll_ingest::pipeline::feed`, shared with the server and the stream worker).
pub async fn feed(
    built: &Built,
    dead_letter_dir: &Path,
    items: Vec<Item>,
    origin: &Origin,
    report: &mut BatchReport,
    dead: &mut Vec<String>,
) -> anyhow::Result<()> {
    match toll_ingest::pipeline::feed::feed(&built.pipeline, dead_letter_dir, items, origin).await?
    {
        Fed::Committed(r, _) => report.add(&r),
        Fed::DeadLettered(d) => {
            eprintln!(
                "warning: a batch of {} records failed after {} attempts ({}); kept in {}",
                d.records,
                d.attempts,
                d.error,
                d.path.display()
            );
            dead.push(d.path.display().to_string());
        }
    }
    Ok(())
}

async fn import_file(
    built: &Built,
    args: &ImportArgs,
    path: &Path,
    zone: &str,
) -> anyhow::Result<FileSummary> {
    let started = std::time::Instant::now();
    let hash = sha256_file(path)?;
    let file = path.display().to_string();
    let t = built.tenant.id;
    if !args.force
        && let Some(before) = built.store.finished_import(t, &hash).await?
    {
        return Ok(FileSummary {
            file,
            status: "skipped",
            import_id: Some(before.id),
            sha256: hex::encode(hash),
            report: BatchReport::default(),
            dead_letters: Vec::new(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let mut spec = spec_for(args, zone)?;
    let source = args
        .source
        .clone()
        .unwrap_or_else(|| spec.format.as_str().to_string());
    let import_id = built
        .store
        .start_import(t, &hash, &file, &args.format, &source)
        .await?;
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let read = Arc::new(AtomicU64::new(0));
    let input = Counting {
        inner: std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        read: Arc::clone(&read),
    };
    // Reading and parsing run on their own thread, a batch ahead of charging.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Item>>(2);
    let batch = args.pipeline.rules.batch;
    let reader_source = source.clone();
    let (spec_tx, spec_rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
    let reader = tokio::task::spawn_blocking(move || {
        let mut stream = match spec.open(input, &reader_source) {
            Ok(s) => {
                let _ = spec_tx.send(Ok(spec.to_json()));
                s
            }
            Err(e) => {
                let _ = spec_tx.send(Err(e.to_string()));
                return;
            }
        };
        let mut buf = Vec::with_capacity(batch);
        for r in stream.by_ref() {
            buf.push(Item::new(r));
            if buf.len() == batch {
                let full = std::mem::replace(&mut buf, Vec::with_capacity(batch));
                if tx.blocking_send(full).is_err() {
                    return;
                }
            }
        }
        if !buf.is_empty() {
            let _ = tx.blocking_send(buf);
        }
    });
    let reader_json = match spec_rx.await {
        Ok(Ok(j)) => j,
        Ok(Err(e)) => anyhow::bail!("{}: {e}", path.display()),
        Err(_) => anyhow::bail!("{}: the reader stopped", path.display()),
    };
    let origin = Origin {
        reader: reader_json,
        source,
        import_id: Some(import_id),
    };
    let progress = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let pb = ProgressBar::new(len);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_message(file.clone());
        pb
    });
    let mut report = BatchReport::default();
    let mut dead = Vec::new();
    while let Some(items) = rx.recv().await {
        feed(
            built,
            &args.pipeline.rules.dead_letter_dir,
            items,
            &origin,
            &mut report,
            &mut dead,
        )
        .await?;
        if let Some(pb) = &progress {
            pb.set_position(read.load(Ordering::Relaxed));
        }
    }
    reader.await.context("the reader thread failed")?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    // A file with dead-lettered batches is not imported whole: importing it again (or
    // replaying the letters) must stay possible.
    if dead.is_empty() {
        built.store.finish_import(t, import_id).await?;
    }
    Ok(FileSummary {
        file,
        status: "imported",
        import_id: Some(import_id),
        sha256: hex::encode(hash),
        report,
        dead_letters: dead,
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub async fn run(db: &DbArgs, args: &ImportArgs) -> anyhow::Result<Vec<FileSummary>> {
    let built = build(db, &args.pipeline).await?;
    run_with(&built, args).await
}

/// Imports `args.files` with a pipeline built already.
pub async fn run_with(built: &Built, args: &ImportArgs) -> anyhow::Result<Vec<FileSummary>> {
    let zone = match &args.zone {
        Some(z) => z.clone(),
        None => built.tenant.time_zone.clone(),
    };
    let mut out = Vec::with_capacity(args.files.len());
    for f in &args.files {
        let s = import_file(built, args, f, &zone).await?;
        if !args.json {
            print_summary(&s);
        }
        out.push(s);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(out)
}

#[allow(clippy::float_arithmetic)] // a display rate, not money
fn print_summary(s: &FileSummary) {
    if s.status == "skipped" {
        println!(
            "{}: skipped, imported before (import {}, sha256 {}); --force imports it again",
            s.file,
            s.import_id.unwrap_or(0),
            &s.sha256[..16]
        );
        return;
    }
    let r = &s.report;
    let list = |pairs: Vec<(String, u64)>| -> String {
        if pairs.is_empty() {
            String::new()
        } else {
            let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k} {v}")).collect();
            format!(" ({})", inner.join(", "))
        }
    };
    println!(
        "{}: {} records: charged {} (default-rated {}), duplicate {}, skipped {}{}, suspended {}{}; amount {}; {:.2} s ({:.0} records/s)",
        s.file,
        r.records,
        r.charged,
        r.default_rated,
        r.duplicate,
        r.skipped,
        list(
            r.skipped_by
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect()
        ),
        r.suspended,
        list(
            r.suspended_by
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect()
        ),
        r.amount.to_decimal().normalize(),
        s.seconds,
        r.records as f64 / s.seconds.max(1e-9)
    );
    for d in &s.dead_letters {
        println!("  dead letter: {d} (toll ingest replay)");
    }
}
