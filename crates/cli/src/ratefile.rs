//! `toll rate`: a CSV of events in, a rated CSV out, rejects beside it.
//!
//! Streams: one input record and one output record buffer are reused for the whole file, so
//! memory stays flat whatever the file's size. A row that cannot be rated goes to the rejects
//! file with its line number and reason and the run goes on.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rust_decimal::Decimal;
use toll_rating::Tariff;

use crate::event_args::EventText;
use crate::load;
use crate::view::write_usage;

#[derive(clap::Args, Debug)]
pub struct RateArgs {
    /// Tariff folder (CGRateS CSV or tariff.toml) or .toml file.
    #[arg(long, env = "TOLL_TARIFF")]
    pub tariff: PathBuf,
    /// Events CSV with header id,tenant,category,subject,destination,start,usage,tor
    /// (optional: carrier); `-` for standard input.
    #[arg(long)]
    pub cdrs: String,
    /// Rated CSV; `-` for standard output.
    #[arg(long, default_value = "-")]
    pub out: String,
    /// Where rejected rows go (default: OUT.rejects.csv, or rejects.csv when OUT is `-`).
    #[arg(long)]
    pub rejects: Option<PathBuf>,
    /// Never show a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// The columns `toll rate` appends to each input row.
pub const OUTPUT_COLUMNS: [&str; 6] = [
    "cost",
    "rated_usage",
    "carrier",
    "region",
    "destination_id",
    "matched_prefix",
];

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub rated: u64,
    pub rejected: u64,
    pub total_cost: Decimal,
    pub elapsed: Duration,
}

impl Summary {
    pub fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        #[expect(clippy::float_arithmetic, reason = "a throughput figure, not money")]
        if secs > 0.0 {
            (self.rated + self.rejected) as f64 / secs
        } else {
            0.0
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateFileError {
    #[error("the events file has no header line")]
    NoHeader,
    #[error(
        "the events file's header lacks the column {0:?} (needs tenant, category, subject, destination, start, usage)"
    )]
    MissingColumn(&'static str),
    #[error("reading events: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing: {0}")]
    Io(#[from] io::Error),
}

struct Columns {
    id: Option<usize>,
    tenant: usize,
    category: usize,
    subject: usize,
    destination: usize,
    start: usize,
    usage: usize,
    tor: Option<usize>,
    carrier: Option<usize>,
}

impl Columns {
    fn from_header(h: &csv::ByteRecord) -> Result<Columns, RateFileError> {
        let find = |name: &str| {
            h.iter()
                .position(|f| f.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
        };
        let need = |name: &'static str| find(name).ok_or(RateFileError::MissingColumn(name));
        Ok(Columns {
            id: find("id"),
            tenant: need("tenant")?,
            category: need("category")?,
            subject: need("subject")?,
            destination: need("destination")?,
            start: need("start")?,
            usage: need("usage")?,
            tor: find("tor"),
            carrier: find("carrier"),
        })
    }
}

/// Records per chunk handed to a rating worker: large enough to amortise the hand-over,
/// small enough that memory stays a few megabytes whatever the file's size.
pub const CHUNK_RECORDS: usize = 4096;
/// Most rating workers used, whatever the machine.
pub const MAX_WORKERS: usize = 16;

/// A CSV record that could not be read, kept in file order.
struct Broken {
    before: usize,
    line: u64,
    message: String,
}

struct Chunk {
    seq: u64,
    records: Vec<csv::ByteRecord>,
    len: usize,
    broken: Vec<Broken>,
    last_byte: u64,
}

struct Done {
    seq: u64,
    out: Vec<u8>,
    rej: Vec<u8>,
    summary: Summary,
    records: Vec<csv::ByteRecord>,
    last_byte: u64,
}

/// Appends one CSV field, quoted only when it must be (RFC 4180).
fn put_field(buf: &mut Vec<u8>, first: bool, f: &[u8]) {
    if !first {
        buf.push(b',');
    }
    if f.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        buf.push(b'"');
        for &b in f {
            if b == b'"' {
                buf.push(b'"');
            }
            buf.push(b);
        }
        buf.push(b'"');
    } else {
        buf.extend_from_slice(f);
    }
}

fn put_row<'a>(buf: &mut Vec<u8>, fields: impl Iterator<Item = &'a [u8]>) {
    for (i, f) in fields.enumerate() {
        put_field(buf, i == 0, f);
    }
    buf.push(b'\n');
}

/// Rates every record of `input` into `out`; bad rows go to `rejects`. Uses every core.
pub fn rate_stream<R: Read, W: Write + Send, J: Write + Send>(
    tariff: &Tariff,
    input: R,
    out: W,
    rejects: J,
    progress: Option<&ProgressBar>,
) -> Result<Summary, RateFileError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, MAX_WORKERS);
    rate_stream_with(tariff, input, out, rejects, progress, workers)
}

/// [`rate_stream`] with a chosen number of rating workers. Output order is input order.
pub fn rate_stream_with<R: Read, W: Write + Send, J: Write + Send>(
    tariff: &Tariff,
    input: R,
    mut out: W,
    mut rejects: J,
    progress: Option<&ProgressBar>,
    workers: usize,
) -> Result<Summary, RateFileError> {
    let started = Instant::now();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let mut rec = csv::ByteRecord::new();
    if !rdr.read_byte_record(&mut rec)? {
        return Err(RateFileError::NoHeader);
    }
    let cols = Columns::from_header(&rec)?;
    let width = rec.len();
    let mut head = Vec::new();
    put_row(
        &mut head,
        rec.iter()
            .chain(OUTPUT_COLUMNS.iter().map(|s| s.as_bytes())),
    );
    out.write_all(&head)?;
    head.clear();
    put_row(
        &mut head,
        [&b"line"[..], b"reason"].into_iter().chain(rec.iter()),
    );
    rejects.write_all(&head)?;

    let workers = workers.clamp(1, MAX_WORKERS);
    let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(workers * 2);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<Done>(workers * 2);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<csv::ByteRecord>>();

    let result = std::thread::scope(|scope| -> Result<Summary, RateFileError> {
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            let cols = &cols;
            scope.spawn(move || {
                loop {
                    let chunk = match work_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(chunk) = chunk else { return };
                    let done = rate_chunk(tariff, cols, width, chunk);
                    if done_tx.send(done).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let writer = scope.spawn(move || -> Result<Summary, RateFileError> {
            let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
            let mut next = 0u64;
            let mut total = Summary::default();
            for done in done_rx {
                pending.insert(done.seq, done);
                while let Some(d) = pending.remove(&next) {
                    out.write_all(&d.out)?;
                    rejects.write_all(&d.rej)?;
                    total.rated += d.summary.rated;
                    total.rejected += d.summary.rejected;
                    total.total_cost += d.summary.total_cost;
                    if let Some(pb) = progress {
                        pb.set_position(d.last_byte);
                    }
                    let _ = recycle_tx.send(d.records);
                    next += 1;
                }
            }
            out.flush()?;
            rejects.flush()?;
            Ok(total)
        });

        // The reader: this thread.
        let mut seq = 0u64;
        let mut read_error = None;
        'read: loop {
            let mut records = recycle_rx.try_recv().unwrap_or_default();
            let mut chunk = Chunk {
                seq,
                records: Vec::new(),
                len: 0,
                broken: Vec::new(),
                last_byte: 0,
            };
            while chunk.len < CHUNK_RECORDS {
                if records.len() <= chunk.len {
                    records.push(csv::ByteRecord::new());
                }
                match rdr.read_byte_record(&mut records[chunk.len]) {
                    Ok(true) => {
                        chunk.last_byte =
                            records[chunk.len].position().map_or(0, csv::Position::byte);
                        chunk.len += 1;
                    }
                    Ok(false) => break,
                    Err(e) => {
                        let line = e.position().map_or(0, csv::Position::line);
                        let io = matches!(e.kind(), csv::ErrorKind::Io(_));
                        chunk.broken.push(Broken {
                            before: chunk.len,
                            line,
                            message: format!("unreadable CSV record: {e}"),
                        });
                        if io {
                            read_error = Some(e);
                            break;
                        }
                    }
                }
            }
            let finished = chunk.len < CHUNK_RECORDS;
            chunk.records = records;
            if chunk.len > 0 || !chunk.broken.is_empty() {
                if work_tx.send(chunk).is_err() {
                    break 'read;
                }
                seq += 1;
            }
            if finished {
                break;
            }
        }
        drop(work_tx);
        let total = writer
            .join()
            .map_err(|_| RateFileError::Io(io::Error::other("writer thread panicked")))??;
        if let Some(e) = read_error {
            return Err(RateFileError::Csv(e));
        }
        Ok(total)
    });
    let mut summary = result?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A record the CSV reader could not read: its line and the reader's reason.
fn reject_broken(rej: &mut Vec<u8>, b: &mut RowBufs, br: &Broken, summary: &mut Summary) {
    summary.rejected += 1;
    b.line.clear();
    let _ = write!(b.line, "{}", br.line);
    put_row(rej, [b.line.as_bytes(), br.message.as_bytes()].into_iter());
}

fn rate_chunk(tariff: &Tariff, cols: &Columns, width: usize, chunk: Chunk) -> Done {
    let mut out = Vec::with_capacity(chunk.len * 128);
    let mut rej = Vec::new();
    let mut summary = Summary::default();
    let mut b = RowBufs::default();
    let mut broken = chunk.broken.iter().peekable();
    for (i, rec) in chunk.records[..chunk.len].iter().enumerate() {
        while let Some(br) = broken.next_if(|br| br.before <= i) {
            reject_broken(&mut rej, &mut b, br, &mut summary);
        }
        b.reason.clear();
        match rate_record(tariff, cols, width, rec, &mut b) {
            Some((cost, carrier, region, dest_id)) => {
                summary.rated += 1;
                summary.total_cost += cost;
                put_row(
                    &mut out,
                    rec.iter().chain([
                        b.cost.as_bytes(),
                        b.usage.as_bytes(),
                        carrier.as_bytes(),
                        region.as_bytes(),
                        dest_id.as_bytes(),
                        b.prefix.as_bytes(),
                    ]),
                );
            }
            None => {
                summary.rejected += 1;
                b.line.clear();
                let _ = write!(b.line, "{}", rec.position().map_or(0, csv::Position::line));
                put_row(
                    &mut rej,
                    [b.line.as_bytes(), b.reason.as_bytes()]
                        .into_iter()
                        .chain(rec.iter()),
                );
            }
        }
    }
    for br in broken {
        reject_broken(&mut rej, &mut b, br, &mut summary);
    }
    Done {
        seq: chunk.seq,
        out,
        rej,
        summary,
        records: chunk.records,
        last_byte: chunk.last_byte,
    }
}

/// Text buffers reused for every row of a chunk.
#[derive(Default)]
struct RowBufs {
    cost: String,
    usage: String,
    prefix: String,
    reason: String,
    line: String,
}

/// Rates one record. On success fills the cost, usage and prefix buffers and returns the
/// other output fields; on failure writes the reason and returns `None`.
fn rate_record<'t>(
    tariff: &'t Tariff,
    cols: &Columns,
    width: usize,
    rec: &'t csv::ByteRecord,
    bufs: &mut RowBufs,
) -> Option<(Decimal, &'t str, &'t str, &'t str)> {
    if rec.len() != width {
        let _ = write!(bufs.reason, "expected {width} fields, found {}", rec.len());
        return None;
    }
    let reason = &mut bufs.reason;
    let field = |i: usize, name: &str, reason: &mut String| -> Option<&'t str> {
        match std::str::from_utf8(rec.get(i).unwrap_or(b"")) {
            Ok(s) => Some(s),
            Err(_) => {
                let _ = write!(reason, "{name}: not valid UTF-8");
                None
            }
        }
    };
    let text = EventText {
        tenant: field(cols.tenant, "tenant", reason)?,
        category: field(cols.category, "category", reason)?,
        subject: field(cols.subject, "subject", reason)?,
        destination: field(cols.destination, "destination", reason)?,
        start: field(cols.start, "start", reason)?,
        usage: field(cols.usage, "usage", reason)?,
        tor: match cols.tor {
            Some(i) => field(i, "tor", reason)?,
            None => "",
        },
        route_carrier: match cols.carrier {
            Some(i) => Some(field(i, "carrier", reason)?),
            None => None,
        },
    };
    let _ = cols.id;
    let ev = match text.parse() {
        Ok(ev) => ev,
        Err(e) => {
            let _ = write!(reason, "{e}");
            return None;
        }
    };
    match toll_rating::rate(tariff, &ev) {
        Ok(r) => {
            bufs.cost.clear();
            let _ = write!(bufs.cost, "{}", r.cost.normalize());
            bufs.usage.clear();
            write_usage(&mut bufs.usage, r.rated_usage, ev.tor);
            let carrier = tariff.carrier_slug(ev.route_carrier, &r);
            let region = tariff.region(&r).unwrap_or("");
            let dest = tariff.destination_id(r.destination);
            matched_prefix(tariff, text.destination, &r, &mut bufs.prefix);
            Some((r.cost, carrier, region, dest))
        }
        Err(e) => {
            let _ = write!(bufs.reason, "{e}");
            None
        }
    }
}

/// Writes the matched prefix: a slice of the number as the tariff matched it (normalised when
/// the tariff normalises).
fn matched_prefix(tariff: &Tariff, dialled: &str, r: &toll_rating::Rated, out: &mut String) {
    out.clear();
    match tariff.numbering {
        toll_rating::def::Numbering::AsDialled => out.push_str(r.matched_prefix(dialled.trim())),
        toll_rating::def::Numbering::ChinaNational => {
            if let Ok(n) = toll_core::phone::PhoneNumber::parse_cn(dialled) {
                out.push_str(r.matched_prefix(n.as_str()));
            }
        }
    }
}

fn open_input(path: &str) -> anyhow::Result<(Box<dyn Read>, Option<u64>)> {
    if path == "-" {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let f = File::open(path).with_context(|| format!("opening {path}"))?;
    let len = f.metadata().ok().map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
}

fn open_output(path: &str) -> anyhow::Result<Box<dyn Write + Send>> {
    if path == "-" {
        return Ok(Box::new(BufWriter::with_capacity(1 << 20, io::stdout())));
    }
    let f = File::create(path).with_context(|| format!("creating {path}"))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

fn rejects_path(args: &RateArgs) -> PathBuf {
    match &args.rejects {
        Some(p) => p.clone(),
        None if args.out == "-" => PathBuf::from("rejects.csv"),
        None => PathBuf::from(format!("{}.rejects.csv", args.out)),
    }
}

pub fn run(args: &RateArgs) -> anyhow::Result<ExitCode> {
    let loaded = load::load(&args.tariff)
        .with_context(|| format!("loading tariff {}", args.tariff.display()))?;
    let (input, len) = open_input(&args.cdrs)?;
    let out = open_output(&args.out)?;
    let rej_path = rejects_path(args);
    let rej = BufWriter::new(
        File::create(&rej_path).with_context(|| format!("creating {}", rej_path.display()))?,
    );
    let progress = (!args.quiet && io::stderr().is_terminal()).then(|| {
        let pb = ProgressBar::new(len.unwrap_or(0));
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} rating [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    });
    let summary = rate_stream(&loaded.tariff, input, out, rej, progress.as_ref())?;
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    let currency = loaded
        .tariff
        .currency
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    eprintln!(
        "rated {}  rejected {}  total cost {}{}  in {:.2?} ({:.0} events/s){}",
        summary.rated,
        summary.rejected,
        summary.total_cost.normalize(),
        currency,
        summary.elapsed,
        summary.per_second(),
        if summary.rejected > 0 {
            format!("  rejects: {}", rej_path.display())
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
