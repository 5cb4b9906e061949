//! `toll suspense …` (list, show, edit, discard, retry) and `toll ingest replay`: the operator's
//! side of records that could not be charged.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use toll_ingest::pipeline::deadletter::{self, DeadLetter};
use toll_ingest::pipeline::reprocess::{Selection, reprocess};
use toll_ingest::pipeline::{BatchReport, record::CdrJson};
use toll_store::suspense::SuspenseFilter;

use crate::admin::{DbArgs, open};
use crate::importfile::{PipelineArgs, build, feed};

#[derive(Subcommand, Debug)]
pub enum SuspenseCmd {
    /// Open items (or others with --status), oldest first.
    List {
        #[arg(long, env = "TOLL_TENANT")]
        tenant: String,
        /// open, resolved, discarded or any.
        #[arg(long, default_value = "open")]
        status: String,
        /// Only this class (parse_error, unknown_subscriber, no_rate, ...).
        #[arg(long)]
        class: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One item with its raw record and its editable JSON form.
    Show {
        #[arg(long, env = "TOLL_TENANT")]
        tenant: String,
        id: i64,
    },
    /// Replace an open item's record before it is re-processed.
    Edit {
        #[arg(long, env = "TOLL_TENANT")]
        tenant: String,
        id: i64,
        /// The corrected raw record (one line as the switch writes it).
        #[arg(long, conflicts_with_all = ["record", "set"])]
        raw: Option<String>,
        /// The corrected record as JSON (the form `show` prints).
        #[arg(long, conflicts_with = "set")]
        record: Option<String>,
        /// Change fields of the JSON form: `--set callee=01088886666 --set usage=73s`.
        #[arg(long)]
        set: Vec<String>,
    },
    /// Give up on an open item; it stays listed as discarded.
    Discard {
        #[arg(long, env = "TOLL_TENANT")]
        tenant: String,
        id: i64,
    },
    /// Re-process open items (all, a class, or some ids) after a fix.
    Retry {
        /// Only these ids.
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// Only this class.
        #[arg(long)]
        class: Option<String>,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum IngestCmd {
    /// Feed dead-lettered batches through the pipeline again; a letter is deleted once its
    /// batch committed.
    Replay {
        /// Letters to replay; default: every letter in --dead-letter-dir for the tenant.
        files: Vec<PathBuf>,
        #[command(flatten)]
        pipeline: PipelineArgs,
        #[arg(long)]
        json: bool,
    },
}

fn print_report(r: &BatchReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!(
            "{} records: charged {}, duplicate {}, skipped {}, suspended {} {:?}; amount {}",
            r.records,
            r.charged,
            r.duplicate,
            r.skipped,
            r.suspended,
            r.suspended_by,
            r.amount.to_decimal().normalize()
        );
    }
    Ok(())
}

/// Applies `field=value` edits to a record's JSON form.
fn apply_sets(json: &str, sets: &[String]) -> anyhow::Result<String> {
    let mut v: serde_json::Value =
        serde_json::from_str(json).context("the item's record is not JSON")?;
    let obj = v
        .as_object_mut()
        .context("the item's record is not a JSON object")?;
    for s in sets {
        let (k, val) = s
            .split_once('=')
            .with_context(|| format!("--set {s:?}: expected field=value"))?;
        obj.insert(
            k.trim().to_string(),
            serde_json::Value::String(val.to_string()),
        );
    }
    let text = serde_json::to_string(&v)?;
    // Checked now, not at re-processing: a typo is reported while the operator is here.
    let rec: CdrJson = serde_json::from_str(&text).context("the edited record")?;
    rec.to_cdr(Vec::new())
        .map_err(|e| anyhow::anyhow!("the edited record: {e}"))?;
    Ok(text)
}

pub async fn suspense(db: &DbArgs, cmd: &SuspenseCmd) -> anyhow::Result<()> {
    match cmd {
        SuspenseCmd::List {
            tenant,
            status,
            class,
            limit,
            json,
        } => {
            let store = open(db).await?;
            let t = store.tenant(tenant).await?;
            let items = store
                .suspense_items(
                    t.id,
                    &SuspenseFilter {
                        status: Some(status.clone()),
                        class: class.clone(),
                        after_id: None,
                        limit: *limit,
                    },
                )
                .await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&items)?);
            } else {
                for i in &items {
                    println!(
                        "{:>6}  {:<9} {:<22} {:<10} line {:<7} {}  [{}]",
                        i.id,
                        i.status,
                        i.class,
                        i.stage.as_str(),
                        i.line.map(|l| l.to_string()).unwrap_or_default(),
                        i.reason,
                        i.item_key
                    );
                }
                for (class, n) in store.suspense_counts(t.id).await? {
                    println!("open {class}: {n}");
                }
            }
        }
        SuspenseCmd::Show { tenant, id } => {
            let store = open(db).await?;
            let t = store.tenant(tenant).await?;
            let item = store.suspense_item(t.id, *id).await?;
            println!("{}", serde_json::to_string_pretty(&item)?);
        }
        SuspenseCmd::Edit {
            tenant,
            id,
            raw,
            record,
            set,
        } => {
            let store = open(db).await?;
            let t = store.tenant(tenant).await?;
            let record = match (record, set.is_empty()) {
                (Some(r), _) => Some(apply_sets(r, &[])?),
                (None, false) => {
                    let item = store.suspense_item(t.id, *id).await?;
                    let base = item.record.context(
                        "this item never parsed, so it has no JSON form: fix it with --raw",
                    )?;
                    Some(apply_sets(&base, set)?)
                }
                (None, true) => None,
            };
            store
                .suspense_edit(
                    t.id,
                    *id,
                    raw.as_deref().map(str::as_bytes),
                    record.as_deref(),
                )
                .await?;
            println!("item {id} updated; re-process it with: toll suspense retry --id {id}");
        }
        SuspenseCmd::Discard { tenant, id } => {
            let store = open(db).await?;
            let t = store.tenant(tenant).await?;
            store.suspense_discard(t.id, *id).await?;
            println!("item {id} discarded");
        }
        SuspenseCmd::Retry {
            ids,
            class,
            pipeline,
            json,
        } => {
            let built = build(db, pipeline).await?;
            let r = reprocess(
                &built.pipeline,
                &built.store,
                built.tenant.id,
                &Selection {
                    ids: ids.clone(),
                    class: class.clone(),
                },
            )
            .await?;
            print_report(&r, *json)?;
        }
    }
    Ok(())
}

pub async fn ingest(db: &DbArgs, cmd: &IngestCmd) -> anyhow::Result<BatchReport> {
    match cmd {
        IngestCmd::Replay {
            files,
            pipeline,
            json,
        } => {
            let built = build(db, pipeline).await?;
            let files = if files.is_empty() {
                deadletter::list(&pipeline.rules.dead_letter_dir)?
            } else {
                files.clone()
            };
            let mut total = BatchReport::default();
            for f in files {
                let letter = DeadLetter::read(&f)?;
                if letter.tenant != built.tenant.slug {
                    continue;
                }
                let origin = letter.origin();
                let mut dead = Vec::new();
                let mut report = BatchReport::default();
                feed(
                    &built,
                    &pipeline.rules.dead_letter_dir,
                    letter.items(),
                    &origin,
                    &mut report,
                    &mut dead,
                )
                .await?;
                if dead.is_empty() {
                    std::fs::remove_file(&f)
                        .with_context(|| format!("removing replayed letter {}", f.display()))?;
                    if !*json {
                        println!("{}: replayed", f.display());
                    }
                } else {
                    // Still failing: the new letter holds the same records; drop the old one
                    // so each record is in one letter.
                    std::fs::remove_file(&f)
                        .with_context(|| format!("removing {}", f.display()))?;
                }
                total.add(&report);
            }
            print_report(&total, *json)?;
            Ok(total)
        }
    }
}
