//! Amounts, quantities, dates and rates as printed, from exact integers.
//!
//! Amounts are [`Micros`] (10⁻⁶ of a unit) and are cut to the currency's minor unit by integer
//! arithmetic on their digits: a float would print 0.1 + 0.2 as 0.30000000000000004 somewhere
//! down the line, and an invoice must print exactly what the ledger holds.

use jiff::civil::Date;
use toll_billing::Lang;
use toll_billing::invoice::{Quantity, QuantityUnit};
use toll_core::{Currency, Micros};

const BYTES_PER_MB: i128 = 1 << 20;
const BYTES_PER_GB: i128 = 1 << 30;

/// `n` with its digits grouped by thousands: `1234567` → `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed count with thousands grouped.
fn count(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}", grouped(n.unsigned_abs()))
}

/// An amount at the currency's minor units, thousands grouped: `-1234.5` CNY → `-1,234.50`.
///
/// Invoice amounts are whole minor units ([`toll_billing::Invoice::check`]); should one not be,
/// the extra digits are printed rather than hidden.
pub fn amount(m: Micros, currency: Currency) -> String {
    let minor = currency.minor_units().min(6) as usize;
    let abs = m.0.unsigned_abs();
    let whole = abs / 1_000_000;
    let frac = format!("{:06}", abs % 1_000_000);
    // Keep the minor digits, and any non-zero digit beyond them.
    let keep = frac.trim_end_matches('0').len().max(minor);
    let sign = if m.0 < 0 { "-" } else { "" };
    if keep == 0 {
        format!("{sign}{}", grouped(whole))
    } else {
        format!("{sign}{}.{}", grouped(whole), &frac[..keep])
    }
}

/// A tax rate in parts per million as a percentage: 90,000 → `9%`, 65,000 → `6.5%`.
pub fn percent(ppm: u32) -> String {
    let whole = ppm / 10_000;
    let frac = format!("{:04}", ppm % 10_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{whole}%")
    } else {
        format!("{whole}.{frac}%")
    }
}

/// `num / den` to two decimals, rounded half up (`den` > 0, `num` ≥ 0).
fn two_decimals(num: i128, den: i128) -> String {
    let hundredths = (num * 100 + den / 2) / den;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// A quantity as a reader counts it: call time in minutes and seconds, data in MB or GB
/// (binary: 1 MB = 1,048,576 bytes, as operators bill), messages and events as counts.
pub fn quantity(q: Quantity, lang: Lang) -> String {
    let zh = lang == Lang::Zh;
    let sign = if q.value < 0 { "-" } else { "" };
    let v = q.value.unsigned_abs();
    let body = match q.unit {
        QuantityUnit::Seconds => {
            let (min, s) = (grouped(v / 60), v % 60);
            match (v < 60, s == 0, zh) {
                (true, _, false) => format!("{s} s"),
                (true, _, true) => format!("{s}秒"),
                (false, true, false) => format!("{min} min"),
                (false, true, true) => format!("{min}分钟"),
                (false, false, false) => format!("{min} min {s} s"),
                (false, false, true) => format!("{min}分{s}秒"),
            }
        }
        QuantityUnit::Bytes => {
            let b = i128::from(v);
            if b >= BYTES_PER_GB {
                format!("{} GB", two_decimals(b, BYTES_PER_GB))
            } else {
                format!("{} MB", two_decimals(b, BYTES_PER_MB))
            }
        }
        QuantityUnit::Messages => counted(v, lang, "message", "messages", "条"),
        QuantityUnit::Days => counted(v, lang, "day", "days", "天"),
        QuantityUnit::Events => counted(v, lang, "event", "events", "次"),
        QuantityUnit::Units => grouped(v),
    };
    format!("{sign}{body}")
}

/// `n` of something: `1 day`, `15 days`, `15天`.
fn counted(n: u64, lang: Lang, one: &str, many: &str, zh: &str) -> String {
    match lang {
        Lang::Zh => format!("{}{zh}", grouped(n)),
        Lang::En if n == 1 => format!("1 {one}"),
        Lang::En => format!("{} {many}", grouped(n)),
    }
}

/// How many calls (or other events) a usage line sums: `12 calls`, `12次通话`.
pub fn events(n: i64, unit: Option<QuantityUnit>, lang: Lang) -> String {
    let calls = unit == Some(QuantityUnit::Seconds);
    match (lang, calls) {
        (Lang::Zh, true) => format!("{}次通话", count(n)),
        (Lang::Zh, false) => format!("{}次", count(n)),
        (Lang::En, true) if n == 1 => "1 call".to_string(),
        (Lang::En, true) => format!("{} calls", count(n)),
        (Lang::En, false) if n == 1 => "1 event".to_string(),
        (Lang::En, false) => format!("{} events", count(n)),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `5 Nov 2026` or `2026年11月5日`: unambiguous in either language, unlike 05/11/2026.
pub fn date(d: Date, lang: Lang) -> String {
    match lang {
        Lang::Zh => format!("{}年{}月{}日", d.year(), d.month(), d.day()),
        Lang::En => {
            let month = usize::try_from(d.month() - 1)
                .ok()
                .and_then(|i| MONTHS.get(i))
                .copied()
                .unwrap_or("?");
            format!("{} {month} {}", d.day(), d.year())
        }
    }
}

/// A billing period from its first to its last day.
pub fn period(first: Date, last: Date, lang: Lang) -> String {
    match lang {
        Lang::Zh => format!("{} 至 {}", date(first, lang), date(last, lang)),
        Lang::En => format!("{} – {}", date(first, lang), date(last, lang)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn q(value: i64, unit: QuantityUnit) -> Quantity {
        Quantity { value, unit }
    }

    #[test]
    fn amounts_print_at_minor_units_from_the_integer() {
        let cny = Currency::CNY;
        assert_eq!(amount(Micros(12_300_000), cny), "12.30");
        assert_eq!(amount(Micros(0), cny), "0.00");
        assert_eq!(amount(Micros(-10_000), cny), "-0.01");
        assert_eq!(amount(Micros(1_234_567_890_000), cny), "1,234,567.89");
        assert_eq!(amount(Micros(i64::MIN), cny), "-9,223,372,036,854.775808");
        let jpy: Currency = "JPY".parse().unwrap();
        assert_eq!(amount(Micros(111_000_000), jpy), "111");
        let kwd: Currency = "KWD".parse().unwrap();
        assert_eq!(amount(Micros(1_500_000), kwd), "1.500");
        // Not whole minor units: nothing is hidden.
        assert_eq!(amount(Micros(1_234_500), cny), "1.2345");
    }

    #[test]
    fn quantities_read_as_people_count_them() {
        assert_eq!(
            quantity(q(7308, QuantityUnit::Seconds), Lang::En),
            "121 min 48 s"
        );
        assert_eq!(
            quantity(q(7308, QuantityUnit::Seconds), Lang::Zh),
            "121分48秒"
        );
        assert_eq!(
            quantity(q(7200, QuantityUnit::Seconds), Lang::En),
            "120 min"
        );
        assert_eq!(
            quantity(q(7200, QuantityUnit::Seconds), Lang::Zh),
            "120分钟"
        );
        assert_eq!(quantity(q(45, QuantityUnit::Seconds), Lang::Zh), "45秒");
        assert_eq!(
            quantity(q(1_572_864, QuantityUnit::Bytes), Lang::En),
            "1.50 MB"
        );
        assert_eq!(
            quantity(q(5 << 30, QuantityUnit::Bytes), Lang::Zh),
            "5.00 GB"
        );
        assert_eq!(
            quantity(q(1023 << 20, QuantityUnit::Bytes), Lang::En),
            "1023.00 MB"
        );
        assert_eq!(
            quantity(q(1, QuantityUnit::Messages), Lang::En),
            "1 message"
        );
        assert_eq!(
            quantity(q(1200, QuantityUnit::Messages), Lang::En),
            "1,200 messages"
        );
        assert_eq!(quantity(q(25, QuantityUnit::Messages), Lang::Zh), "25条");
        assert_eq!(quantity(q(15, QuantityUnit::Days), Lang::Zh), "15天");
        assert_eq!(quantity(q(-15, QuantityUnit::Days), Lang::En), "-15 days");
        assert_eq!(quantity(q(3, QuantityUnit::Units), Lang::En), "3");
        assert_eq!(
            events(12, Some(QuantityUnit::Seconds), Lang::Zh),
            "12次通话"
        );
        assert_eq!(events(1, Some(QuantityUnit::Seconds), Lang::En), "1 call");
    }

    #[test]
    fn rates_and_dates() {
        assert_eq!(percent(90_000), "9%");
        assert_eq!(percent(65_000), "6.5%");
        assert_eq!(percent(0), "0%");
        assert_eq!(percent(1_000_000), "100%");
        let d = jiff::civil::date(2026, 11, 5);
        assert_eq!(date(d, Lang::En), "5 Nov 2026");
        assert_eq!(date(d, Lang::Zh), "2026年11月5日");
    }
}
