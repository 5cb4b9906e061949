//! Rating benchmarks (see `docs/BENCHMARKS.md`).
//!
//! - `rate/one_core`: `rate()` over 200,000 pre-parsed events of a realistic mix against a
//!   50,000-prefix tariff (3 bands + holiday, rate groups, fallback subjects).
//! - `load_compile/200k_prefixes`: `source::parse` of the CGRateS CSV bytes + `Tariff::compile`.
//! - `linear_scan/seed_find_rate`: the seed's `find_rate` (first rule whose prefix starts the
//!   number and whose time range holds the start) over the same prefixes (one rule per prefix ×
//!   3 bands) and the same events; `rate/same_sample` rates that very sample for a direct ratio.
//!
//! The rating crate cannot use `toll gen` (toll-cli depends on it), so a trimmed copy of its
//! generator lives here: same shape (mobile H-code blocks, area codes, `00CC` blocks, ~20
//! prefixes per destination), not the same bytes.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use jiff::tz::Offset;
use rust_decimal::Decimal;
use toll_core::usage::Tor;
use toll_rating::source::{self, SourceFile};
use toll_rating::{Diagnostics, Event, NumberRanges, Tariff, rate};

const SEED: u64 = 0x70_11;
const RATE_PREFIXES: usize = 50_000;
const RATE_EVENTS: usize = 200_000;
const COMPILE_PREFIXES: usize = 200_000;
/// Events of the linear-scan sample (it scans up to 150,000 rules per event).
const SCAN_EVENTS: usize = 2_000;
/// 2026-11-02 00:00 local (+08:00), a Monday.
const FIRST_LOCAL_SECOND: i64 = 20_759 * 86_400;
const OFFSET: i32 = 8 * 3600;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn digits(&mut self, s: &mut String, to_len: usize) {
        while s.len() < to_len {
            s.push(char::from(b'0' + self.below(10) as u8));
        }
    }
}

/// Peak price per minute in 1/10000 per class (mobile, fixed, international) and tier.
const TIERS: [&[u32]; 3] = [
    &[1000, 1200, 1500, 1900],
    &[700, 1000, 1400, 2200],
    &[8000, 16000, 32000, 64000],
];
/// (rate-id suffix, destination-rate id, percent of peak).
const BANDS: [(&str, &str, u32); 3] = [
    ("PEAK", "DR_PEAK", 100),
    ("OFF", "DR_OFFPEAK", 60),
    ("WKD", "DR_WEEKEND", 50),
];
const COUNTRIES: [&str; 12] = [
    "1", "7", "33", "44", "49", "61", "65", "81", "82", "852", "886", "971",
];

struct Prefixes {
    /// (digits, destination, full number length)
    list: Vec<(String, usize, usize)>,
    /// (class, tier) of each destination.
    dests: Vec<(usize, usize)>,
}

/// `n` unique prefixes: 60 % mobile blocks (4–7 digits under 13x–19x), 30 % fixed (area code
/// + local block), 10 % international (`00CC` + block), about 20 per destination.
fn prefixes(n: usize, seed: u64) -> Prefixes {
    let mut rng = Rng(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut p = Prefixes {
        list: Vec::with_capacity(n),
        dests: Vec::new(),
    };
    for (class, share) in [(0, 60), (1, 30), (2, 10)] {
        let want = if class == 2 {
            n
        } else {
            p.list.len() + n * share / 100
        };
        while p.list.len() < want {
            let (parent, len) = match class {
                0 => (format!("1{}{}", rng.range(3, 9), rng.below(10)), 11),
                1 if rng.below(5) == 0 => (format!("02{}", rng.below(10)), 11),
                1 => (format!("0{}{:02}", rng.range(3, 9), rng.range(10, 99)), 12),
                _ => {
                    let cc = COUNTRIES[rng.below(COUNTRIES.len() as u64) as usize];
                    (format!("00{cc}"), 13)
                }
            };
            let dest = p.dests.len();
            let tier = rng.below(TIERS[class].len() as u64) as usize;
            let (mut added, mut misses) = (0, 0);
            let size = rng.range(5, 35) as usize;
            while added < size && p.list.len() < want && misses < 64 {
                let mut s = parent.clone();
                let prefix_len = parent.len() + rng.range(1, 4) as usize;
                rng.digits(&mut s, prefix_len);
                if seen.insert(s.clone()) {
                    p.list.push((s, dest, len));
                    added += 1;
                } else {
                    misses += 1;
                }
            }
            if added > 0 {
                p.dests.push((class, tier));
            }
        }
    }
    p
}

fn price(v: u32) -> String {
    format!("{}.{:04}", v / 10_000, v % 10_000)
}

fn dest_id(d: usize) -> String {
    format!("D{d}")
}

/// The tariff as CGRateS CSV files (same plan layout as `toll gen tariff`).
fn tariff_files(p: &Prefixes) -> Vec<SourceFile> {
    let mut dst = String::from("#Id,Prefix\n");
    for (digits, d, _) in &p.list {
        let _ = writeln!(dst, "{},{digits}", dest_id(*d));
    }
    let mut rates = String::from("#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n");
    for (class, tiers) in TIERS.iter().enumerate() {
        for (tier, &peak) in tiers.iter().enumerate() {
            let fee = if class == 2 { "0.5000" } else { "0" };
            for (band, _, pct) in BANDS {
                let r = price(peak * pct / 100);
                let _ = writeln!(rates, "RT_{class}{tier}_{band},{fee},{r},60s,60s,0s");
                let _ = writeln!(rates, "RT_{class}{tier}_{band},0,{r},60s,6s,60s");
            }
        }
    }
    rates.push_str("RT_VIP,0,0.0800,60s,6s,0s\nRT_SMS,0,0.1000,1,1,0\n");
    let mut drs = String::from(
        "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n",
    );
    for (band, dr, _) in BANDS {
        for (d, (class, tier)) in p.dests.iter().enumerate() {
            let _ = writeln!(drs, "{dr},{},RT_{class}{tier}_{band},*up,4,0,", dest_id(d));
        }
    }
    for (d, _) in p.dests.iter().enumerate().filter(|(_, (c, _))| *c == 0) {
        let _ = writeln!(drs, "DR_VIP,{},RT_VIP,*up,4,0,", dest_id(d));
    }
    drs.push_str("DR_SMS,*any,RT_SMS,*up,4,0,\n");
    let timings = "#Tag,Years,Months,MonthDays,WeekDays,Time\n\
        PEAK,*any,*any,*any,1;2;3;4;5,08:00:00\n\
        OFFPEAK_NIGHT,*any,*any,*any,1;2;3;4;5,00:00:00\n\
        OFFPEAK_EVENING,*any,*any,*any,1;2;3;4;5,19:00:00\n\
        WEEKEND,*any,*any,*any,6;7,00:00:00\n\
        HOLIDAY,2026;2027,1;10,1;2;3,*any,00:00:00\n";
    let plans = "#Id,DestinationRatesId,TimingTag,Weight\n\
        RP_STD,DR_PEAK,PEAK,10\nRP_STD,DR_OFFPEAK,OFFPEAK_NIGHT,10\n\
        RP_STD,DR_OFFPEAK,OFFPEAK_EVENING,10\nRP_STD,DR_WEEKEND,WEEKEND,10\n\
        RP_STD,DR_WEEKEND,HOLIDAY,20\nRP_VIP,DR_VIP,*any,10\nRP_SMS,DR_SMS,*any,10\n";
    let profiles = "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n\
        bench,call,*any,,RP_STD,\nbench,call,standard,,RP_STD,\n\
        bench,call,vip,,RP_VIP,standard\nbench,sms,*any,,RP_SMS,\n";
    [
        ("Destinations.csv", dst),
        ("Rates.csv", rates),
        ("DestinationRates.csv", drs),
        ("Timings.csv", timings.to_string()),
        ("RatingPlans.csv", plans.to_string()),
        ("RatingProfiles.csv", profiles.to_string()),
    ]
    .into_iter()
    .map(|(name, text)| SourceFile {
        name: name.to_string(),
        bytes: text.into_bytes(),
    })
    .collect()
}

fn file(name: &str, body: &str) -> SourceFile {
    SourceFile {
        name: name.to_string(),
        bytes: body.as_bytes().to_vec(),
    }
}

fn compile(files: &[SourceFile]) -> Tariff {
    let mut diags = Diagnostics::default();
    let def = source::parse(files, &mut diags);
    assert!(!diags.has_errors(), "{diags}");
    match Tariff::compile(&def, Arc::new(NumberRanges::builtin_cn())) {
        Ok((t, _)) => t,
        Err(d) => panic!("{d}"),
    }
}

/// An event with owned text, and the local start second (for the seed's time ranges).
struct OwnedEvent {
    subject: String,
    number: String,
    local: i64,
    usage: i64,
    tor: Tor,
}

/// 5 % SMS, 10 % calls started shortly before a band boundary or midnight, 85 % ordinary calls;
/// 1 % to unknown numbers; durations from a lognormal-like bucket mix (1 s to 1 h).
fn events(p: &Prefixes, n: usize, seed: u64) -> Vec<OwnedEvent> {
    const DURATIONS: [(u64, u64); 10] = [
        (1, 9),
        (10, 59),
        (10, 59),
        (10, 59),
        (60, 179),
        (60, 179),
        (60, 179),
        (180, 599),
        (180, 599),
        (600, 3600),
    ];
    let mut rng = Rng(seed ^ 0xC0DE);
    (0..n)
        .map(|_| {
            let roll = rng.below(100);
            let number = if rng.below(100) == 0 {
                let mut s = String::from("999");
                rng.digits(&mut s, 11);
                s
            } else {
                let (digits, _, len) = &p.list[rng.below(p.list.len() as u64) as usize];
                let mut s = digits.clone();
                rng.digits(&mut s, *len);
                s
            };
            let subject = match rng.below(10) {
                0..7 => format!("acct{:05}", rng.below(20_000)),
                7 | 8 => "vip".to_string(),
                _ => "standard".to_string(),
            };
            let day = rng.below(28) as i64;
            let tod = if (5..15).contains(&roll) {
                [8 * 3600, 19 * 3600, 24 * 3600][rng.below(3) as usize] - rng.range(1, 1800) as i64
            } else {
                rng.range(6 * 3600, 23 * 3600) as i64
            };
            let (lo, hi) = DURATIONS[rng.below(10) as usize];
            let (usage, tor) = if roll < 5 {
                (1, Tor::Sms)
            } else {
                (rng.range(lo, hi) as i64 * 1_000_000_000, Tor::Voice)
            };
            OwnedEvent {
                subject,
                number,
                local: FIRST_LOCAL_SECOND + day * 86_400 + tod,
                usage,
                tor,
            }
        })
        .collect()
}

fn as_events(owned: &[OwnedEvent]) -> Vec<Event<'_>> {
    let offset = Offset::from_seconds(OFFSET).unwrap_or(Offset::UTC);
    owned
        .iter()
        .map(|e| Event {
            tenant: "bench",
            category: if e.tor == Tor::Sms { "sms" } else { "call" },
            subject: &e.subject,
            destination: &e.number,
            start: Timestamp::from_second(e.local - i64::from(OFFSET))
                .unwrap_or(Timestamp::UNIX_EPOCH),
            offset,
            usage: e.usage,
            tor: e.tor,
            route_carrier: None,
        })
        .collect()
}

/// The seed's rule: `RateRule(prefix, time_range "09:00-18:00", rate_per_min)`.
struct RateRule {
    prefix: String,
    start_minute: u16,
    end_minute: u16,
    rate_per_min: Decimal,
}

/// The seed's `find_rate`: the first rule whose prefix starts the number and whose time range
/// holds the start time wins; else the default rate.
fn find_rate(rules: &[RateRule], number: &str, minute: u16, default_rate: Decimal) -> Decimal {
    for rule in rules {
        let in_range = if rule.start_minute <= rule.end_minute {
            (rule.start_minute..rule.end_minute).contains(&minute)
        } else {
            minute >= rule.start_minute || minute < rule.end_minute
        };
        if number.starts_with(rule.prefix.as_str()) && in_range {
            return rule.rate_per_min;
        }
    }
    default_rate
}

/// Seed cost: rate per minute × started minutes.
fn seed_cost(rules: &[RateRule], e: &OwnedEvent) -> Decimal {
    let minute = (e.local.rem_euclid(86_400) / 60) as u16;
    let secs = if e.tor == Tor::Voice {
        e.usage / 1_000_000_000
    } else {
        e.usage
    };
    let rate = find_rate(rules, &e.number, minute, Decimal::ZERO);
    rate * Decimal::from((secs + 59) / 60)
}

/// One rule per prefix × 3 bands (00:00–08:00 and 19:00–24:00 off-peak, 08:00–19:00 peak).
fn seed_rules(p: &Prefixes) -> Vec<RateRule> {
    let mut rules = Vec::with_capacity(p.list.len() * 3);
    for (digits, d, _) in &p.list {
        let (class, tier) = p.dests[*d];
        let peak = TIERS[class][tier];
        for (start, end, pct) in [(0, 480, 60), (480, 1140, 100), (1140, 1440, 60)] {
            rules.push(RateRule {
                prefix: digits.clone(),
                start_minute: start,
                end_minute: end,
                rate_per_min: Decimal::new(i64::from(peak * pct / 100), 4),
            });
        }
    }
    rules
}

/// Hash of the `Debug` form of every result of `rate/one_core` (`Ok` and `Err`), recorded at
/// commit `e1fcac8`: a speed-up must not change a single rated value or error.
const ONE_CORE_CHECKSUM: u64 = 0x5821_189f_f5f9_080c;
/// The same for `rate/one_prefix_tariff`.
const ONE_PREFIX_CHECKSUM: u64 = 0xe756_5692_1f94_e637;

/// Hashes the `Debug` form of every result and stops the bench if it differs from `expected`
/// (`TOLL_BENCH_PRINT_CHECKSUM=1` only prints it, to record a deliberate change).
fn check_results(name: &str, tariff: &Tariff, evs: &[Event<'_>], expected: u64) {
    let mut h = std::hash::DefaultHasher::new();
    let mut line = String::new();
    for e in evs {
        line.clear();
        let _ = write!(line, "{:?}", rate(tariff, e));
        line.hash(&mut h);
    }
    let sum = h.finish();
    eprintln!("{name}: checksum of {} results {sum:#018x}", evs.len());
    if std::env::var_os("TOLL_BENCH_PRINT_CHECKSUM").is_none() {
        assert_eq!(sum, expected, "{name}: rating results changed");
    }
}

/// The same events on a tariff with one destination (every first digit) and one band: the
/// fixed cost of rating an event, whatever the tariff's size.
fn one_prefix_tariff() -> Tariff {
    compile(&[
        file(
            "Destinations.csv",
            "D,0\nD,1\nD,2\nD,3\nD,4\nD,5\nD,6\nD,7\nD,8\nD,9\n",
        ),
        file("Rates.csv", "R,0,0.1,60s,60s,0s\nR,0,0.1,60s,6s,60s\n"),
        file("DestinationRates.csv", "DR,D,R,*up,4,0,\n"),
        file("Timings.csv", "ALWAYS,*any,*any,*any,*any,00:00:00\n"),
        file("RatingPlans.csv", "P,DR,ALWAYS,10\n"),
        file(
            "RatingProfiles.csv",
            "bench,call,*any,,P,\nbench,sms,*any,,P,\n",
        ),
    ])
}

/// `TOLL_BENCH_PROBE=1`: wall time per event over 40 passes (`TOLL_BENCH_PASSES`), minimum
/// and median. The minimum is
/// the pass least disturbed by other work on a shared machine: compare A/B pairs run back to
/// back.
fn time_probe(name: &str, tariff: &Tariff, evs: &[Event<'_>]) {
    // Tenths of a nanosecond per event (integers: the workspace warns on float arithmetic).
    let passes = std::env::var("TOLL_BENCH_PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(40usize)
        .max(1);
    let mut per_event: Vec<u128> = (0..passes)
        .map(|_| {
            let t0 = std::time::Instant::now();
            let n: usize = evs
                .iter()
                .map(|e| usize::from(rate(tariff, black_box(e)).is_ok()))
                .sum();
            black_box(n);
            t0.elapsed().as_nanos() * 10 / evs.len() as u128
        })
        .collect();
    per_event.sort_unstable();
    let show = |t: u128| format!("{}.{}", t / 10, t % 10);
    eprintln!(
        "{name}: ns/event min {} median {}",
        show(per_event[0]),
        show(per_event[passes / 2])
    );
}

fn benches(c: &mut Criterion) {
    let p = prefixes(RATE_PREFIXES, SEED);
    let tariff = compile(&tariff_files(&p));
    let owned = events(&p, RATE_EVENTS, SEED);
    let evs = as_events(&owned);
    let ok = evs.iter().filter(|e| rate(&tariff, e).is_ok()).count();
    eprintln!(
        "rate: {} prefixes, {} destinations, {} events, {ok} rate ({} per mille)",
        p.list.len(),
        p.dests.len(),
        evs.len(),
        ok * 1000 / evs.len()
    );
    assert!(ok * 100 >= evs.len() * 95, "only {ok} events rate");
    check_results("rate/one_core", &tariff, &evs, ONE_CORE_CHECKSUM);

    let tiny = one_prefix_tariff();
    check_results("rate/one_prefix_tariff", &tiny, &evs, ONE_PREFIX_CHECKSUM);
    if let Some(which) = std::env::var_os("TOLL_BENCH_PROBE") {
        // `TOLL_BENCH_PROBE=one_core` or `=one_prefix` probes only that one (for `perf`).
        if which != "one_prefix" {
            time_probe("rate/one_core", &tariff, &evs);
        }
        if which != "one_core" {
            time_probe("rate/one_prefix_tariff", &tiny, &evs);
        }
        return;
    }

    let mut g = c.benchmark_group("rate");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function("one_core", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &evs {
                n += usize::from(rate(&tariff, black_box(e)).is_ok());
            }
            n
        })
    });
    g.bench_function("one_prefix_tariff", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &evs {
                n += usize::from(rate(&tiny, black_box(e)).is_ok());
            }
            n
        })
    });
    let sample = &evs[..SCAN_EVENTS];
    g.throughput(Throughput::Elements(SCAN_EVENTS as u64));
    g.bench_function("same_sample", |b| {
        b.iter(|| {
            sample
                .iter()
                .filter(|e| rate(&tariff, black_box(e)).is_ok())
                .count()
        })
    });
    g.finish();

    let rules = seed_rules(&p);
    let mut g = c.benchmark_group("linear_scan");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(2));
    g.throughput(Throughput::Elements(SCAN_EVENTS as u64));
    g.bench_function("seed_find_rate", |b| {
        b.iter(|| {
            owned[..SCAN_EVENTS]
                .iter()
                .map(|e| seed_cost(&rules, black_box(e)))
                .sum::<Decimal>()
        })
    });
    g.finish();
    drop(rules);
    drop(evs);
    drop(owned);
    drop(tariff);

    let big = tariff_files(&prefixes(COMPILE_PREFIXES, SEED));
    let mut g = c.benchmark_group("load_compile");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2));
    g.bench_function("200k_prefixes", |b| b.iter(|| compile(black_box(&big))));
    g.finish();
}

criterion_group!(rating, benches);
criterion_main!(rating);
