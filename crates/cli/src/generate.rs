//! `toll gen`: seeded generators for large tariffs and event files (benchmarks, load tests).
//!
//! Everything derives from a seed through a tiny PRNG (splitmix64) written here, so the same
//! `--prefixes`/`--seed` give byte-identical files on every machine, and `toll gen cdrs`
//! regenerates exactly the prefix set of `toll gen tariff` without reading the tariff back.
//!
//! The tariff looks like a Chinese operator's: mobile H-code blocks (13x–19x, 4 to 7 digits),
//! fixed-line area codes (`010`, `02x`, `0xxx`) with local exchange blocks, and international
//! `00CC…` blocks, grouped into about one destination per 20 prefixes. Three bands (PEAK
//! weekdays from 08:00, OFFPEAK weekdays from 00:00 and 19:00, WEEKEND), a dated HOLIDAY timing
//! of higher weight, rate groups (first 60 s whole, then per 6 s, priced per minute), connect
//! fees on fixed tier 3 and international rates, `*up` rounding to 4 decimals, and a few
//! profiles with fallback subjects.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use toll_core::civil::civil_from_days;
use toll_rating::source::SourceFile;

/// Seed used when `--seed` is not given.
pub const DEFAULT_SEED: u64 = 0x70_11;
/// Tenant of every generated profile and event.
pub const TENANT: &str = "bench";
/// Default `--start` of `toll gen cdrs`.
pub const DEFAULT_START: &str = "2026-11-01T00:00:00+08:00";

#[derive(clap::Subcommand, Debug)]
pub enum GenCmd {
    /// Write a CGRateS CSV tariff folder with N prefixes (the six files).
    Tariff(TariffArgs),
    /// Write an events CSV whose numbers fall under the prefixes of `toll gen tariff`
    /// (same --prefixes and --seed), with ~1 % unratable rows.
    Cdrs(CdrArgs),
}

#[derive(clap::Args, Debug)]
pub struct TariffArgs {
    /// Number of prefixes (1 to 10,000,000).
    #[arg(long, default_value_t = 50_000, value_parser = prefix_count)]
    pub prefixes: usize,
    /// Folder to write (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

#[derive(clap::Args, Debug)]
pub struct CdrArgs {
    /// Number of prefixes of the tariff the events are for (1 to 10,000,000).
    #[arg(long, default_value_t = 50_000, value_parser = prefix_count)]
    pub prefixes: usize,
    /// Number of events.
    #[arg(long)]
    pub count: u64,
    /// Events CSV; `-` for standard output.
    #[arg(long)]
    pub out: String,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// First day (RFC 3339 with offset); every start is written with this offset.
    #[arg(long, default_value = DEFAULT_START)]
    pub start: String,
    /// Number of days the starts are spread over (at least 1).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
}

pub fn run(cmd: &GenCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        GenCmd::Tariff(a) => {
            fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
            let files = tariff_files(a.prefixes, a.seed);
            for f in &files {
                let p = a.out.join(&f.name);
                fs::write(&p, &f.bytes).with_context(|| format!("writing {}", p.display()))?;
            }
            eprintln!(
                "wrote {} prefixes (seed {}) to {}",
                a.prefixes,
                a.seed,
                a.out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        GenCmd::Cdrs(a) => {
            let opts = CdrOptions::new(&a.start, a.days)?;
            let set = PrefixSet::generate(a.prefixes, a.seed);
            let stats = if a.out == "-" {
                write_cdrs_for(io::stdout().lock(), &set, a.count, a.seed, &opts)?
            } else {
                let f = fs::File::create(&a.out).with_context(|| format!("creating {}", a.out))?;
                write_cdrs_for(f, &set, a.count, a.seed, &opts)?
            };
            eprintln!(
                "wrote {} events: {} voice, {} sms, {} to unknown numbers",
                stats.events, stats.voice, stats.sms, stats.unknown
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// splitmix64: tiny, fast, and good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// Index drawn with the given weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }

    fn digit(&mut self) -> u8 {
        b'0' + self.below(10) as u8
    }
}

/// Kind of number a destination covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Mobile,
    Fixed,
    Intl,
}

impl Class {
    const ALL: [Class; 3] = [Class::Mobile, Class::Fixed, Class::Intl];

    fn tag(self) -> char {
        match self {
            Class::Mobile => 'M',
            Class::Fixed => 'F',
            Class::Intl => 'I',
        }
    }

    /// Peak price per minute of each tier, in 1/10000 of the currency unit.
    fn peak_tiers(self) -> &'static [u32] {
        match self {
            Class::Mobile => &[1000, 1200, 1500, 1900],
            Class::Fixed => &[700, 1000, 1400, 2200],
            Class::Intl => &[8000, 12000, 16000, 24000, 32000, 48000, 64000, 96000],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub class: Class,
    pub tier: u8,
}

#[derive(Debug, Clone)]
pub struct Prefix {
    pub digits: String,
    pub dest: u32,
    /// Length of a full number under this prefix.
    pub number_len: u8,
}

/// The prefixes of a generated tariff: prefixes of one class are contiguous.
#[derive(Debug, Clone)]
pub struct PrefixSet {
    pub destinations: Vec<Destination>,
    pub prefixes: Vec<Prefix>,
    /// `prefixes[class_ranges[c].0..class_ranges[c].1]` are of `Class::ALL[c]`.
    pub class_ranges: [(usize, usize); 3],
}

const MOBILE_SEGMENTS: &[&str] = &[
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "145", "147", "149",
    "150", "151", "152", "153", "155", "156", "157", "158", "159", "162", "165", "166", "167",
    "170", "171", "172", "173", "175", "176", "177", "178", "180", "181", "182", "183", "184",
    "185", "186", "187", "188", "189", "190", "191", "192", "193", "195", "196", "197", "198",
    "199",
];

/// (country code, national number length).
const COUNTRIES: &[(&str, u8)] = &[
    ("1", 10),
    ("7", 10),
    ("33", 9),
    ("34", 9),
    ("39", 10),
    ("44", 10),
    ("49", 11),
    ("55", 11),
    ("60", 9),
    ("61", 9),
    ("62", 10),
    ("63", 10),
    ("64", 9),
    ("65", 8),
    ("66", 9),
    ("81", 10),
    ("82", 10),
    ("84", 9),
    ("86", 11),
    ("91", 10),
    ("852", 8),
    ("853", 8),
    ("855", 9),
    ("856", 10),
    ("880", 10),
    ("886", 9),
    ("971", 9),
    ("966", 9),
    ("20", 10),
    ("27", 9),
    ("234", 10),
    ("52", 10),
];

/// Share of prefixes per class, in percent.
const CLASS_SHARE: [usize; 3] = [60, 30, 10];

impl PrefixSet {
    /// The prefix set for `n` prefixes and `seed`: a pure function of both.
    pub fn generate(n: usize, seed: u64) -> PrefixSet {
        let mut rng = Rng::new(seed);
        let mut g = Gen {
            rng: &mut rng,
            seen: HashSet::with_capacity(n),
            set: PrefixSet::empty(),
        };
        let mobile = n * CLASS_SHARE[0] / 100;
        let fixed = n * CLASS_SHARE[1] / 100;
        let counts = [mobile, fixed, n - mobile - fixed];
        for (ci, class) in Class::ALL.into_iter().enumerate() {
            let from = g.set.prefixes.len();
            let want = from + counts[ci];
            while g.set.prefixes.len() < want {
                let left = want - g.set.prefixes.len();
                g.destination(class, left);
            }
            g.set.class_ranges[ci] = (from, g.set.prefixes.len());
        }
        g.set
    }

    fn empty() -> PrefixSet {
        PrefixSet {
            destinations: Vec::new(),
            prefixes: Vec::new(),
            class_ranges: [(0, 0); 3],
        }
    }
}

struct Gen<'r> {
    rng: &'r mut Rng,
    /// (length, value) of every prefix so far, packed.
    seen: HashSet<u64>,
    set: PrefixSet,
}

impl Gen<'_> {
    /// Adds one destination of `class` with up to `left` prefixes.
    fn destination(&mut self, class: Class, left: usize) {
        let size = (self.rng.range(5, 35) as usize).min(left);
        let (parent, number_len, min_len, max_len): (String, u8, usize, usize) = match class {
            Class::Mobile => {
                let seg = MOBILE_SEGMENTS[self.rng.below(MOBILE_SEGMENTS.len() as u64) as usize];
                let mut p = seg.to_string();
                p.push(self.rng.digit() as char);
                (p, 11, 4, 7)
            }
            Class::Fixed => {
                let code = if self.rng.below(5) == 0 {
                    // 010, 020..029: the large cities, 8-digit local numbers.
                    let c = self.rng.below(11);
                    if c == 10 {
                        "010".to_string()
                    } else {
                        format!("02{c}")
                    }
                } else {
                    format!(
                        "0{}{}{}",
                        self.rng.range(3, 9),
                        self.rng.range(1, 9),
                        self.rng.below(10)
                    )
                };
                let local = if code.len() == 3 || self.rng.below(2) == 0 {
                    8
                } else {
                    7
                };
                let len = code.len();
                (code, (len + local) as u8, len + 1, len + 4)
            }
            Class::Intl => {
                let (cc, nat) = COUNTRIES[self.rng.below(COUNTRIES.len() as u64) as usize];
                let p = format!("00{cc}");
                let len = p.len();
                (p, (len + usize::from(nat)) as u8, len + 1, len + 4)
            }
        };
        let dest = self.set.destinations.len() as u32;
        let tiers = class.peak_tiers().len() as u64;
        let tier = self.rng.below(tiers) as u8;
        let kind = match class {
            Class::Mobile => "MOB",
            Class::Fixed => "FIX",
            Class::Intl => "INT",
        };
        let id = format!("{kind}_{parent}_{dest}");
        let mut added = 0;
        let mut misses = 0;
        let mut max_len = max_len;
        while added < size {
            // Mobile blocks: mostly 7-digit H-codes, some shorter.
            let len = match class {
                Class::Mobile => [4, 5, 6, 7, 7, 7, 7, 7][self.rng.below(8) as usize].min(max_len),
                _ => self.rng.range(min_len as u64, max_len as u64) as usize,
            };
            let mut p = parent.clone();
            while p.len() < len {
                p.push(self.rng.digit() as char);
            }
            if self.seen.insert(pack(&p)) {
                self.set.prefixes.push(Prefix {
                    digits: p,
                    dest,
                    number_len,
                });
                added += 1;
                misses = 0;
            } else {
                misses += 1;
                if misses > 32 {
                    // This parent is crowded: allow longer blocks, or give up on it.
                    if max_len + 1 >= usize::from(number_len) {
                        break;
                    }
                    max_len += 1;
                    misses = 0;
                }
            }
        }
        if added > 0 {
            self.set.destinations.push(Destination { id, class, tier });
        }
    }
}

/// A prefix's digits and length packed into one integer (at most 16 digits).
fn pack(p: &str) -> u64 {
    let v = p.bytes().fold(0u64, |a, b| {
        a.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
    });
    (p.len() as u64) << 56 | v
}

/// A price in 1/10000 units as a decimal string.
fn price(out: &mut String, v: u32) {
    let _ = write!(out, "{}.{:04}", v / 10_000, v % 10_000);
}

/// Bands of the standard plan: (rate-id suffix, DR id, percent of the peak price).
const BANDS: [(&str, &str, u32); 3] = [
    ("PEAK", "DR_PEAK", 100),
    ("OFF", "DR_OFFPEAK", 60),
    ("WKD", "DR_WEEKEND", 50),
];

/// The six CSV files of a CGRateS tariff plan with `prefixes` prefixes, in memory.
pub fn tariff_files(prefixes: usize, seed: u64) -> Vec<SourceFile> {
    tariff_files_for(&PrefixSet::generate(prefixes, seed), seed)
}

/// The CSV files for an already generated prefix set.
pub fn tariff_files_for(set: &PrefixSet, seed: u64) -> Vec<SourceFile> {
    let n = set.prefixes.len();
    let banner = format!("# generated by `toll gen tariff --prefixes {n} --seed {seed}`\n");

    let mut dst = String::with_capacity(n * 24 + 64);
    dst.push_str(&banner);
    dst.push_str("#Id,Prefix\n");
    for p in &set.prefixes {
        let _ = writeln!(dst, "{},{}", set.destinations[p.dest as usize].id, p.digits);
    }

    let mut rates = String::new();
    rates.push_str(&banner);
    rates.push_str("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n");
    for class in Class::ALL {
        for (tier, &peak) in class.peak_tiers().iter().enumerate() {
            let fee = match class {
                Class::Intl => 500 + 500 * (tier as u32 % 4),
                Class::Fixed if tier == 3 => 1000,
                _ => 0,
            };
            for (band, _, pct) in BANDS {
                let r = peak * pct / 100;
                let id = format!("RT_{}{tier}_{band}", class.tag());
                // First minute whole, then per 6 seconds; priced per minute.
                rates.push_str(&id);
                rates.push(',');
                if fee == 0 {
                    rates.push('0');
                } else {
                    price(&mut rates, fee);
                }
                rates.push(',');
                price(&mut rates, r);
                rates.push_str(",60s,60s,0s\n");
                rates.push_str(&id);
                rates.push_str(",0,");
                price(&mut rates, r);
                rates.push_str(",60s,6s,60s\n");
            }
        }
    }
    rates.push_str("RT_VIP,0,0.0800,60s,6s,0s\n");
    rates.push_str("RT_CORP,0,0.0500,60s,60s,0s\n");
    rates.push_str("RT_SMS,0,0.1000,1,1,0\n");
    rates.push_str("RT_SMS_INTL,0,1.0000,1,1,0\n");

    let mut drs = String::with_capacity(set.destinations.len() * 3 * 40);
    drs.push_str(&banner);
    drs.push_str(
        "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n",
    );
    for (band, dr, _) in BANDS {
        for d in &set.destinations {
            let cap = if d.class == Class::Intl {
                "200,*free"
            } else {
                "0,"
            };
            let _ = writeln!(
                drs,
                "{dr},{},RT_{}{}_{band},*up,4,{cap}",
                d.id,
                d.class.tag(),
                d.tier
            );
        }
    }
    for d in &set.destinations {
        match d.class {
            Class::Mobile => {
                let _ = writeln!(drs, "DR_VIP,{},RT_VIP,*up,4,0,", d.id);
            }
            Class::Fixed => {
                let _ = writeln!(drs, "DR_CORP,{},RT_CORP,*up,4,0,", d.id);
            }
            Class::Intl => {
                let _ = writeln!(drs, "DR_SMS,{},RT_SMS_INTL,*up,4,0,", d.id);
            }
        }
    }
    drs.push_str("DR_SMS,*any,RT_SMS,*up,4,0,\n");

    let timings = format!(
        "{banner}#Tag,Years,Months,MonthDays,WeekDays,Time\n\
         PEAK,*any,*any,*any,1;2;3;4;5,08:00:00\n\
         OFFPEAK_NIGHT,*any,*any,*any,1;2;3;4;5,00:00:00\n\
         OFFPEAK_EVENING,*any,*any,*any,1;2;3;4;5,19:00:00\n\
         WEEKEND,*any,*any,*any,6;7,00:00:00\n\
         # New Year and National Day: priced like the weekend\n\
         HOLIDAY,2026;2027,1;10,1;2;3,*any,00:00:00\n"
    );
    let plans = format!(
        "{banner}#Id,DestinationRatesId,TimingTag,Weight\n\
         RP_STD,DR_PEAK,PEAK,10\n\
         RP_STD,DR_OFFPEAK,OFFPEAK_NIGHT,10\n\
         RP_STD,DR_OFFPEAK,OFFPEAK_EVENING,10\n\
         RP_STD,DR_WEEKEND,WEEKEND,10\n\
         RP_STD,DR_WEEKEND,HOLIDAY,20\n\
         RP_VIP,DR_VIP,*any,10\n\
         RP_CORP,DR_CORP,*any,10\n\
         RP_SMS,DR_SMS,*any,10\n"
    );
    let profiles = format!(
        "{banner}#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n\
         {TENANT},call,*any,,RP_STD,\n\
         {TENANT},call,standard,,RP_STD,\n\
         {TENANT},call,vip,2025-01-01T00:00:00Z,RP_VIP,standard\n\
         {TENANT},call,corp_a,,RP_CORP,standard\n\
         {TENANT},call,corp_b,2025-06-01T00:00:00Z,RP_CORP,vip;standard\n\
         {TENANT},sms,*any,,RP_SMS,\n"
    );
    [
        ("Destinations.csv", dst),
        ("Rates.csv", rates),
        ("DestinationRates.csv", drs),
        ("Timings.csv", timings),
        ("RatingPlans.csv", plans),
        ("RatingProfiles.csv", profiles),
    ]
    .into_iter()
    .map(|(name, text)| SourceFile {
        name: name.to_string(),
        bytes: text.into_bytes(),
    })
    .collect()
}

/// Where and when generated events start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CdrOptions {
    /// First local day, in days since 1970-01-01.
    pub first_day: i64,
    /// UTC offset every start is written with.
    pub offset_seconds: i32,
    pub days: u32,
}

impl Default for CdrOptions {
    fn default() -> Self {
        // 2026-11-01, +08:00
        CdrOptions {
            first_day: 20_758,
            offset_seconds: 8 * 3600,
            days: 30,
        }
    }
}

impl CdrOptions {
    /// From an RFC 3339 start (its local date and offset are used) and a number of days.
    pub fn new(start: &str, days: u32) -> anyhow::Result<CdrOptions> {
        let p =
            toll_core::civil::parse_rfc3339(start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
        let local = p.epoch_ns / 1_000_000_000 + i64::from(p.offset_seconds);
        Ok(CdrOptions {
            first_day: local.div_euclid(86_400),
            offset_seconds: p.offset_seconds,
            days: days.max(1),
        })
    }
}

/// Counts of what [`write_cdrs`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CdrStats {
    pub events: u64,
    pub voice: u64,
    pub sms: u64,
    /// Events to numbers under no prefix of the tariff (unratable).
    pub unknown: u64,
}

/// The events CSV header.
pub const CDR_HEADER: &str = "id,tenant,category,subject,destination,start,usage,tor\n";

/// Relative call volume per local hour.
const HOUR_WEIGHTS: [u32; 24] = [
    2, 1, 1, 1, 1, 2, 4, 8, 14, 18, 19, 18, 15, 16, 18, 18, 17, 15, 13, 12, 11, 9, 6, 4,
];
/// Voice duration buckets (seconds, inclusive) and their weights: a lognormal-like mix,
/// 70 % under three minutes, a long tail up to an hour.
const DURATIONS: [(u64, u64, u32); 6] = [
    (1, 9, 10),
    (10, 59, 30),
    (60, 179, 30),
    (180, 599, 18),
    (600, 1799, 9),
    (1800, 3600, 3),
];
/// Band boundaries (seconds after local midnight) that boundary calls start shortly before.
const BOUNDARIES: [u64; 3] = [8 * 3600, 19 * 3600, 24 * 3600];
const SUBJECTS: [&str; 4] = ["standard", "vip", "corp_a", "corp_b"];

/// Writes `count` events for the tariff of [`tariff_files`]`(prefixes, seed)`.
pub fn write_cdrs<W: Write>(
    w: W,
    prefixes: usize,
    count: u64,
    seed: u64,
    opts: &CdrOptions,
) -> io::Result<CdrStats> {
    write_cdrs_for(w, &PrefixSet::generate(prefixes, seed), count, seed, opts)
}

fn push_num(buf: &mut Vec<u8>, v: u64, width: usize) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for _ in (tmp.len() - i)..width {
        buf.push(b'0');
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// [`write_cdrs`] for an already generated prefix set. Streams: memory stays flat.
pub fn write_cdrs_for<W: Write>(
    w: W,
    set: &PrefixSet,
    count: u64,
    seed: u64,
    opts: &CdrOptions,
) -> io::Result<CdrStats> {
    let mut w = BufWriter::with_capacity(1 << 20, w);
    let mut rng = Rng::new(seed ^ 0xC0DE_CAFE_F00D_5EED);
    let mut stats = CdrStats::default();
    let off = opts.offset_seconds;
    let offset_text = format!(
        "{}{:02}:{:02}",
        if off < 0 { '-' } else { '+' },
        off.unsigned_abs() / 3600,
        off.unsigned_abs() % 3600 / 60
    );
    let nonempty: Vec<usize> = (0..3)
        .filter(|&c| set.class_ranges[c].1 > set.class_ranges[c].0)
        .collect();
    let class_weights = [65u32, 28, 7];
    let weights: Vec<u32> = nonempty.iter().map(|&c| class_weights[c]).collect();
    let span = i64::from(opts.days.max(1)) * 86_400;
    let mut line = Vec::with_capacity(160);
    w.write_all(CDR_HEADER.as_bytes())?;
    for i in 0..count {
        line.clear();
        let roll = rng.below(100);
        let sms = roll < 5;
        let boundary = (5..15).contains(&roll);
        let unknown = nonempty.is_empty() || rng.below(100) == 0;
        push_num(&mut line, i + 1, 0);
        line.push(b',');
        line.extend_from_slice(TENANT.as_bytes());
        line.extend_from_slice(if sms { b",sms," } else { b",call," });
        let s = rng.below(100);
        if s < 70 {
            line.extend_from_slice(b"acct");
            push_num(&mut line, rng.below(20_000), 5);
        } else {
            line.extend_from_slice(SUBJECTS[((s - 70) / 8).min(3) as usize].as_bytes());
        }
        line.push(b',');
        // The dialled number.
        if unknown {
            stats.unknown += 1;
            line.extend_from_slice(b"999");
            for _ in 0..8 {
                line.push(rng.digit());
            }
        } else {
            let c = nonempty[rng.weighted(&weights)];
            let (from, to) = set.class_ranges[c];
            let p = &set.prefixes[from + rng.below((to - from) as u64) as usize];
            line.extend_from_slice(p.digits.as_bytes());
            let len = usize::from(p.number_len).max(p.digits.len() + 2);
            for _ in p.digits.len()..len {
                line.push(rng.digit());
            }
        }
        line.push(b',');
        // Start (local) and usage.
        let day = opts.first_day + rng.below(u64::from(opts.days.max(1))) as i64;
        let dur = {
            let (lo, hi, _) = DURATIONS[rng.weighted(&DURATIONS.map(|d| d.2))];
            rng.range(lo, hi)
        };
        let tod = if boundary {
            // Shortly before a band boundary or midnight, so that many of these calls cross it.
            let b = BOUNDARIES[rng.below(3) as usize];
            b - rng.range(1, 1800)
        } else {
            rng.weighted(&HOUR_WEIGHTS) as u64 * 3600 + rng.below(3600)
        };
        let local = (day * 86_400 + tod as i64).min(opts.first_day * 86_400 + span - 1);
        let date = civil_from_days(local.div_euclid(86_400));
        let secs = local.rem_euclid(86_400) as u64;
        push_num(&mut line, u64::try_from(date.year).unwrap_or(0), 4);
        line.push(b'-');
        push_num(&mut line, u64::from(date.month), 2);
        line.push(b'-');
        push_num(&mut line, u64::from(date.day), 2);
        line.push(b'T');
        push_num(&mut line, secs / 3600, 2);
        line.push(b':');
        push_num(&mut line, secs / 60 % 60, 2);
        line.push(b':');
        push_num(&mut line, secs % 60, 2);
        line.extend_from_slice(offset_text.as_bytes());
        line.push(b',');
        if sms {
            stats.sms += 1;
            line.extend_from_slice(b"1,sms\n");
        } else {
            stats.voice += 1;
            push_num(&mut line, dur, 0);
            line.extend_from_slice(b"s,voice\n");
        }
        w.write_all(&line)?;
        stats.events += 1;
    }
    w.flush()?;
    Ok(stats)
}

/// A tariff of no prefixes rates nothing, and a generator run that large is a typo.
fn prefix_count(text: &str) -> Result<usize, String> {
    let n: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a whole number"))?;
    if (1..=10_000_000).contains(&n) {
        Ok(n)
    } else {
        Err(format!("{n} is outside 1..=10000000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load;
    use crate::ratefile::rate_stream_with;

    #[test]
    fn same_seed_same_bytes() {
        let a = tariff_files(3_000, 7);
        let b = tariff_files(3_000, 7);
        let c = tariff_files(3_000, 8);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.name, y.name);
            assert_eq!(x.bytes, y.bytes);
        }
        assert_ne!(a[0].bytes, c[0].bytes);
        let opts = CdrOptions::default();
        let mut x = Vec::new();
        let mut y = Vec::new();
        write_cdrs(&mut x, 3_000, 2_000, 7, &opts).unwrap();
        write_cdrs(&mut y, 3_000, 2_000, 7, &opts).unwrap();
        assert_eq!(x, y);
        assert_eq!(x.iter().filter(|&&b| b == b'\n').count(), 2_001);
    }

    #[test]
    fn default_options_are_the_default_start() {
        assert_eq!(
            CdrOptions::new(DEFAULT_START, 30).unwrap(),
            CdrOptions::default()
        );
    }

    #[test]
    fn prefix_set_is_exact_and_unique() {
        let set = PrefixSet::generate(20_000, 1);
        assert_eq!(set.prefixes.len(), 20_000);
        let unique: HashSet<&str> = set.prefixes.iter().map(|p| p.digits.as_str()).collect();
        assert_eq!(unique.len(), 20_000);
        let per_dest = set.prefixes.len() / set.destinations.len();
        assert!(
            (10..=30).contains(&per_dest),
            "{per_dest} prefixes per destination"
        );
    }

    #[test]
    fn tariff_compiles_and_events_rate() {
        let loaded =
            load::compile_files(&tariff_files(10_000, 3)).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(loaded.tariff.stats.prefixes, 10_000);
        assert_eq!(loaded.warnings.errors().count(), 0);
        let opts = CdrOptions::new("2026-12-28T00:00:00+08:00", 10).unwrap();
        let mut input = Vec::new();
        let stats = write_cdrs(&mut input, 10_000, 20_000, 3, &opts).unwrap();
        let (mut out, mut rej) = (Vec::new(), Vec::new());
        let s = rate_stream_with(&loaded.tariff, &input[..], &mut out, &mut rej, None, 2).unwrap();
        assert_eq!(s.rated + s.rejected, 20_000);
        assert!(
            s.rated * 100 >= 95 * 20_000,
            "only {} of 20000 rated",
            s.rated
        );
        assert!(
            s.rejected >= stats.unknown / 2 && s.rejected > 0,
            "{s:?} {stats:?}"
        );
        let rej = String::from_utf8(rej).unwrap();
        let other = rej
            .lines()
            .skip(1)
            .filter(|l| !l.contains("unauthorized destination"))
            .count();
        assert_eq!(other, 0, "unexpected rejects:\n{rej}");
    }
}
