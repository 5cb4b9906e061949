//! Amounts in Chinese capital numerals (大写金额), as Chinese invoices and receipts print them
//! beside the figures so that an amount cannot be altered by adding a stroke.
//!
//! The rules are those of the People's Bank of China's 《支付结算办法》 (附一): the digits
//! 零壹贰叁肆伍陆柒捌玖, the units 拾佰仟万亿, 元/角/分; one 零 for any run of zeros inside the
//! number; 整 after 元 when there are no 角 and 分; 零 before 分 when 角 is zero; 壹拾 (never a
//! bare 拾) at the head. A negative amount (a credit note) is prefixed with 负.

use toll_core::Micros;

const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
const PLACES: [&str; 4] = ["", "拾", "佰", "仟"];
const GROUPS: [&str; 3] = ["", "万", "亿"];
/// Micro-units in one 分 (0.01).
const MICROS_PER_FEN: i64 = 10_000;
/// The largest integer part written: 9,999 亿 9,999 万 9,999 元.
const MAX_YUAN: u64 = 999_999_999_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapitalError {
    #[error("{0} is not a whole number of fen (0.01): round it to the currency's minor unit first")]
    NotWholeFen(Micros),
    #[error("{0} is beyond what Chinese capitals are written for here (under 1 万亿)")]
    TooLarge(Micros),
}

/// The amount in capitals, e.g. `1,004.50` → `壹仟零肆元伍角`.
pub fn capitals(amount: Micros) -> Result<String, CapitalError> {
    if amount.0 % MICROS_PER_FEN != 0 {
        return Err(CapitalError::NotWholeFen(amount));
    }
    let fen_total = amount.0.unsigned_abs() / MICROS_PER_FEN.unsigned_abs();
    let yuan = fen_total / 100;
    if yuan > MAX_YUAN {
        return Err(CapitalError::TooLarge(amount));
    }
    let jiao = (fen_total / 10 % 10) as usize;
    let fen = (fen_total % 10) as usize;
    let mut out = String::with_capacity(64);
    if amount.0 < 0 {
        out.push('负');
    }
    if yuan == 0 && fen_total == 0 {
        out.push_str("零元整");
        return Ok(out);
    }
    if yuan > 0 {
        integer(yuan, &mut out);
        out.push('元');
    }
    match (jiao, fen) {
        (0, 0) => out.push('整'),
        (0, f) => {
            if yuan > 0 {
                out.push('零');
            }
            out.push(DIGITS[f]);
            out.push('分');
        }
        (j, 0) => {
            out.push(DIGITS[j]);
            out.push('角');
        }
        (j, f) => {
            out.push(DIGITS[j]);
            out.push('角');
            out.push(DIGITS[f]);
            out.push('分');
        }
    }
    Ok(out)
}

/// Writes `n` (1 ≤ n ≤ [`MAX_YUAN`]) in groups of four digits (元, 万, 亿).
fn integer(n: u64, out: &mut String) {
    let groups = [n % 10_000, n / 10_000 % 10_000, n / 100_000_000];
    let mut started = false;
    // A zero was passed since the last digit written: the next digit is preceded by one 零.
    let mut zero = false;
    for gi in (0..groups.len()).rev() {
        let g = groups[gi];
        if g == 0 {
            zero |= started;
            continue;
        }
        // A group under 1,000 after a higher one starts with zeros (1,0500 → 壹万零伍佰).
        zero |= started && g < 1_000;
        for place in (0..4).rev() {
            let d = (g / 10u64.pow(place as u32) % 10) as usize;
            if d == 0 {
                zero |= started;
                continue;
            }
            if zero {
                out.push('零');
                zero = false;
            }
            out.push(DIGITS[d]);
            out.push_str(PLACES[place]);
            started = true;
        }
        out.push_str(GROUPS[gi]);
        // Zeros at the end of a group are absorbed by its 万/亿 (10,1000 → 壹拾万壹仟).
        zero = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(yuan_fen: i64) -> String {
        capitals(Micros(yuan_fen * MICROS_PER_FEN)).unwrap()
    }

    #[test]
    fn writes_the_textbook_examples() {
        // Amounts in fen.
        let cases = [
            (0, "零元整"),
            (5, "伍分"),
            (50, "伍角"),
            (55, "伍角伍分"),
            (100, "壹元整"),
            (1_000, "壹拾元整"),
            (1_050, "壹拾元伍角"),
            (1_205, "壹拾贰元零伍分"),
            (100_400, "壹仟零肆元整"),
            (104_000, "壹仟零肆拾元整"),
            (101_000, "壹仟零壹拾元整"),
            (168_032, "壹仟陆佰捌拾元叁角贰分"),
            (1_000_500, "壹万零伍元整"),
            (1_005_000, "壹万零伍拾元整"),
            (10_000_000, "壹拾万元整"),
            (10_100_000, "壹拾万壹仟元整"),
            (10_000_500, "壹拾万零伍元整"),
            (10_040_000, "壹拾万零肆佰元整"),
            (100_000_400, "壹佰万零肆元整"),
            (1_234_567_891, "壹仟贰佰叁拾肆万伍仟陆佰柒拾捌元玖角壹分"),
            (10_000_000_000, "壹亿元整"),
            (10_000_000_100, "壹亿零壹元整"),
            (10_002_000_000, "壹亿零贰万元整"),
            (10_200_000_000, "壹亿零贰佰万元整"),
            (10_000_100_000, "壹亿零壹仟元整"),
            (12_000_000_000, "壹亿贰仟万元整"),
            (
                99_999_999_999_999,
                "玖仟玖佰玖拾玖亿玖仟玖佰玖拾玖万玖仟玖佰玖拾玖元玖角玖分",
            ),
            (-12_345, "负壹佰贰拾叁元肆角伍分"),
        ];
        for (fen, want) in cases {
            assert_eq!(cap(fen), want, "{fen} fen");
        }
    }

    #[test]
    fn refuses_fractions_of_a_fen_and_huge_amounts() {
        assert!(matches!(
            capitals(Micros(1_005_000)),
            Err(CapitalError::NotWholeFen(_))
        ));
        assert!(matches!(
            capitals(Micros(1_000_000_000_000 * 1_000_000)),
            Err(CapitalError::TooLarge(_))
        ));
    }

    proptest::proptest! {
        /// Every amount is written with one 零 at most between two other digits, never ends
        /// in 零, and reads back to the same number of fen.
        #[test]
        fn reads_back(fen in -99_999_999_999_999i64..99_999_999_999_999) {
            let s = capitals(Micros(fen * MICROS_PER_FEN)).unwrap();
            proptest::prop_assert!(!s.contains("零零"), "{s}");
            proptest::prop_assert_eq!(read_back(&s), fen, "{}", s);
        }
    }

    /// A reader of capitals, independent of the writer: the sum of digit × place, with 万 and
    /// 亿 multiplying what came before them in their group.
    fn read_back(s: &str) -> i64 {
        let (neg, s) = match s.strip_prefix('负') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (mut total, mut section, mut digit) = (0i64, 0i64, 0i64);
        let mut fen = 0i64;
        for c in s.chars() {
            if let Some(d) = DIGITS.iter().position(|&x| x == c) {
                digit = d as i64;
                continue;
            }
            match c {
                '拾' => section += digit * 10,
                '佰' => section += digit * 100,
                '仟' => section += digit * 1_000,
                '万' => {
                    total += (section + digit) * 10_000;
                    section = 0;
                }
                '亿' => {
                    total = (total + section + digit) * 100_000_000;
                    section = 0;
                }
                '元' => {
                    total += section + digit;
                    fen = total * 100;
                    section = 0;
                }
                '角' => fen += digit * 10,
                '分' => fen += digit,
                '整' => {}
                other => panic!("unexpected {other}"),
            }
            digit = 0;
        }
        if neg { -fen } else { fen }
    }
}
