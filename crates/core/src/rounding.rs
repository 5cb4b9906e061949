//! Named rounding of money amounts.
//!
//! Tariffs say how a total is rounded (`*up`, `*middle`, `*down` plus a number of decimals, as in
//! CGRateS). The rounding happens once, on a call's total, never per increment: per-increment
//! rounding is what makes CGRateS report 0.3001 where 0.30 is right.

use rust_decimal::{Decimal, RoundingStrategy};
use std::fmt;
use std::str::FromStr;

/// How an amount is brought to a fixed number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum RoundingMethod {
    /// `*up`: toward +∞ (any remainder rounds up).
    #[serde(rename = "*up")]
    Up,
    /// `*middle`: half away from zero (commercial rounding; 0.125 → 0.13).
    #[serde(rename = "*middle")]
    Middle,
    /// `*down`: toward −∞ (any remainder is dropped).
    #[serde(rename = "*down")]
    Down,
}

impl RoundingMethod {
    pub fn strategy(self) -> RoundingStrategy {
        match self {
            RoundingMethod::Up => RoundingStrategy::ToPositiveInfinity,
            RoundingMethod::Middle => RoundingStrategy::MidpointAwayFromZero,
            RoundingMethod::Down => RoundingStrategy::ToNegativeInfinity,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RoundingMethod::Up => "*up",
            RoundingMethod::Middle => "*middle",
            RoundingMethod::Down => "*down",
        }
    }
}

impl fmt::Display for RoundingMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundingError {
    #[error("unknown rounding method {0:?} (expected *up, *middle or *down)")]
    UnknownMethod(String),
    #[error("rounding decimals {0} out of range (0..={max})", max = Rounding::MAX_DECIMALS)]
    Decimals(u32),
    #[error("amount out of range while rounding")]
    Overflow,
}

impl FromStr for RoundingMethod {
    type Err = RoundingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "*up" | "up" => Ok(RoundingMethod::Up),
            "*middle" | "middle" | "*half_up" => Ok(RoundingMethod::Middle),
            "*down" | "down" => Ok(RoundingMethod::Down),
            other => Err(RoundingError::UnknownMethod(other.to_string())),
        }
    }
}

/// A rounding rule: method and number of decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rounding {
    pub method: RoundingMethod,
    pub decimals: u32,
}

impl Rounding {
    /// More decimals than this are never meaningful for money and would risk overflow.
    pub const MAX_DECIMALS: u32 = 12;

    pub fn new(method: RoundingMethod, decimals: u32) -> Result<Self, RoundingError> {
        if decimals > Self::MAX_DECIMALS {
            return Err(RoundingError::Decimals(decimals));
        }
        Ok(Rounding { method, decimals })
    }

    /// Rounds a decimal amount.
    pub fn apply(self, amount: Decimal) -> Decimal {
        amount.round_dp_with_strategy(self.decimals, self.method.strategy())
    }

    /// Rounds the exact quotient `numerator / denominator` without ever materialising an inexact
    /// intermediate: the remainder of an integer division decides the last digit. This is what
    /// lets a total like 1/3 + 2/3 round to exactly 1 with `*up`.
    pub fn apply_ratio(
        self,
        numerator: Decimal,
        denominator: u128,
    ) -> Result<Decimal, RoundingError> {
        exact_ratio_round(numerator, denominator, self.decimals, self.method)
    }
}

/// `round(numerator / denominator, decimals, method)` computed with integer arithmetic.
pub fn exact_ratio_round(
    numerator: Decimal,
    denominator: u128,
    decimals: u32,
    method: RoundingMethod,
) -> Result<Decimal, RoundingError> {
    if decimals > Rounding::MAX_DECIMALS {
        return Err(RoundingError::Decimals(decimals));
    }
    let den = i128::try_from(denominator).map_err(|_| RoundingError::Overflow)?;
    let q = fixed_ratio_round(
        numerator.mantissa(),
        den,
        numerator.scale(),
        decimals,
        method,
    )
    .ok_or(RoundingError::Overflow)?;
    Decimal::try_from_i128_with_scale(q, decimals).map_err(|_| RoundingError::Overflow)
}

/// Rounds `q + r/den` (floor quotient and remainder, `0 <= r < den`) to an integer.
fn round_quotient(
    q: i128,
    r: i128,
    den: i128,
    method: RoundingMethod,
) -> Result<i128, RoundingError> {
    if r == 0 {
        return Ok(q);
    }
    Ok(match method {
        RoundingMethod::Down => q,
        RoundingMethod::Up => q + 1,
        RoundingMethod::Middle => {
            // Half away from zero.
            let twice = r.checked_mul(2).ok_or(RoundingError::Overflow)?;
            match twice.cmp(&den) {
                std::cmp::Ordering::Greater => q + 1,
                std::cmp::Ordering::Less => q,
                std::cmp::Ordering::Equal => {
                    if q >= 0 {
                        q + 1
                    } else {
                        q
                    }
                }
            }
        }
    })
}

/// Integer form of [`exact_ratio_round`] for fixed-point hot paths: `num` is an amount with
/// `scale` decimals, divided by `den`, rounded to `decimals` decimals; returns the mantissa at
/// `decimals`. `None` on overflow or a non-positive denominator.
pub fn fixed_ratio_round(
    num: i128,
    den: i128,
    scale: u32,
    decimals: u32,
    method: RoundingMethod,
) -> Option<i128> {
    if den <= 0 {
        return None;
    }
    // Almost every call total fits in 64 bits: one hardware division instead of the two
    // software 128-bit ones below. Same arithmetic, so the same answer; on overflow the
    // 128-bit path decides.
    if let (Ok(n), Ok(d)) = (i64::try_from(num), i64::try_from(den))
        && let Some(q) = fixed_ratio_round_64(n, d, scale, decimals, method)
    {
        return Some(i128::from(q));
    }
    fixed_ratio_round_i128(num, den, scale, decimals, method)
}

/// [`fixed_ratio_round`] for 64-bit operands: `None` when `den <= 0` or when an intermediate
/// does not fit in 64 bits (then [`fixed_ratio_round`] may still have an answer). When it
/// answers, the answer is [`fixed_ratio_round`]'s.
#[inline]
pub fn fixed_ratio_round_64(
    num: i64,
    den: i64,
    scale: u32,
    decimals: u32,
    method: RoundingMethod,
) -> Option<i64> {
    if den <= 0 {
        return None;
    }
    let (num, den) = if decimals >= scale {
        (num.checked_mul(pow10_64(decimals - scale)?)?, den)
    } else {
        (num, den.checked_mul(pow10_64(scale - decimals)?)?)
    };
    let (q, r) = (num.div_euclid(den), num.rem_euclid(den));
    if r == 0 {
        return Some(q);
    }
    Some(match method {
        RoundingMethod::Down => q,
        RoundingMethod::Up => q + 1,
        RoundingMethod::Middle => match r.checked_mul(2)?.cmp(&den) {
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Equal if q >= 0 => q + 1,
            std::cmp::Ordering::Equal => q,
        },
    })
}

/// `10^e` from a table (`checked_pow` is a loop, and this runs for every rated call); `None`
/// beyond `i64`.
#[inline]
fn pow10_64(e: u32) -> Option<i64> {
    const POW10: [i64; 19] = {
        let mut t = [1i64; 19];
        let mut i = 1;
        while i < 19 {
            t[i] = t[i - 1] * 10;
            i += 1;
        }
        t
    };
    POW10.get(usize::try_from(e).ok()?).copied()
}

/// [`fixed_ratio_round`] in 128 bits, for totals beyond 64 bits (`den > 0`).
fn fixed_ratio_round_i128(
    num: i128,
    den: i128,
    scale: u32,
    decimals: u32,
    method: RoundingMethod,
) -> Option<i128> {
    let (num, den) = if decimals >= scale {
        (num.checked_mul(10i128.checked_pow(decimals - scale)?)?, den)
    } else {
        (num, den.checked_mul(10i128.checked_pow(scale - decimals)?)?)
    };
    round_quotient(num.div_euclid(den), num.rem_euclid(den), den, method).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn the_power_table_is_checked_pow() {
        for e in 0..40 {
            assert_eq!(pow10_64(e), 10i64.checked_pow(e), "10^{e}");
        }
    }

    #[test]
    fn methods_round_as_named() {
        let up = Rounding::new(RoundingMethod::Up, 2).unwrap();
        let mid = Rounding::new(RoundingMethod::Middle, 2).unwrap();
        let down = Rounding::new(RoundingMethod::Down, 2).unwrap();
        assert_eq!(up.apply(d("0.169992")), d("0.17"));
        assert_eq!(up.apply(d("-0.169992")), d("-0.16"));
        assert_eq!(mid.apply(d("0.125")), d("0.13"));
        assert_eq!(mid.apply(d("-0.125")), d("-0.13"));
        assert_eq!(mid.apply(d("0.1249")), d("0.12"));
        assert_eq!(down.apply(d("0.179")), d("0.17"));
        assert_eq!(down.apply(d("-0.171")), d("-0.18"));
    }

    #[test]
    fn ratio_rounding_is_exact() {
        // 1/3 + 2/3 over a common denominator: exactly 1, even with *up.
        assert_eq!(
            exact_ratio_round(d("3"), 3, 2, RoundingMethod::Up).unwrap(),
            d("1.00")
        );
        // 0.05 per 60 s for 24 s, plus 0.15: (0.05*24 + 0.15*60)/60 = 0.17 exactly.
        assert_eq!(
            exact_ratio_round(d("10.2"), 60, 2, RoundingMethod::Up).unwrap(),
            d("0.17")
        );
        // 7/60 = 0.11666..: *middle 4 → 0.1167, *down → 0.1166, *up → 0.1167.
        assert_eq!(
            exact_ratio_round(d("7"), 60, 4, RoundingMethod::Middle).unwrap(),
            d("0.1167")
        );
        assert_eq!(
            exact_ratio_round(d("7"), 60, 4, RoundingMethod::Down).unwrap(),
            d("0.1166")
        );
        assert_eq!(
            exact_ratio_round(d("7"), 60, 4, RoundingMethod::Up).unwrap(),
            d("0.1167")
        );
        // exact midpoint: 1/8 = 0.125
        assert_eq!(
            exact_ratio_round(d("1"), 8, 2, RoundingMethod::Middle).unwrap(),
            d("0.13")
        );
        assert_eq!(
            exact_ratio_round(d("-1"), 8, 2, RoundingMethod::Middle).unwrap(),
            d("-0.13")
        );
        assert_eq!(
            exact_ratio_round(d("-1"), 3, 2, RoundingMethod::Up).unwrap(),
            d("-0.33")
        );
        assert_eq!(
            exact_ratio_round(d("-1"), 3, 2, RoundingMethod::Down).unwrap(),
            d("-0.34")
        );
    }

    #[test]
    fn fixed_ratio_round_matches_decimal() {
        // 10.2 (scale 1) / 60 at 2 decimals *up = 0.17
        assert_eq!(
            fixed_ratio_round(102, 60, 1, 2, RoundingMethod::Up),
            Some(17)
        );
        // 7/60 at 4 decimals
        assert_eq!(
            fixed_ratio_round(7, 60, 0, 4, RoundingMethod::Middle),
            Some(1167)
        );
        assert_eq!(
            fixed_ratio_round(-1, 8, 0, 2, RoundingMethod::Middle),
            Some(-13)
        );
        // more scale than decimals: 0.125 (scale 3) at 2 decimals
        assert_eq!(
            fixed_ratio_round(125, 1, 3, 2, RoundingMethod::Middle),
            Some(13)
        );
        assert_eq!(
            fixed_ratio_round(125, 1, 3, 2, RoundingMethod::Down),
            Some(12)
        );
        assert_eq!(fixed_ratio_round(1, 0, 0, 2, RoundingMethod::Down), None);
    }

    #[test]
    fn parses_cgrates_names() {
        assert_eq!(RoundingMethod::from_str("*up").unwrap(), RoundingMethod::Up);
        assert_eq!(
            RoundingMethod::from_str("*middle").unwrap(),
            RoundingMethod::Middle
        );
        assert!(RoundingMethod::from_str("*sideways").is_err());
        assert!(Rounding::new(RoundingMethod::Up, 13).is_err());
    }

    proptest::proptest! {
        #[test]
        fn ratio_round_matches_decimal_when_exact(m in -1_000_000_000i64..1_000_000_000, den_pow in 0u32..6, dec in 0u32..6) {
            let den = 10u128.pow(den_pow);
            let num = Decimal::from(m);
            let exact = num / Decimal::from_i128_with_scale(den as i128, 0);
            for method in [RoundingMethod::Up, RoundingMethod::Middle, RoundingMethod::Down] {
                let want = Rounding::new(method, dec).unwrap().apply(exact);
                let got = exact_ratio_round(num, den, dec, method).unwrap();
                proptest::prop_assert_eq!(want, got);
            }
        }
    }

    proptest::proptest! {
        /// The 64-bit fast path gives exactly the 128-bit answer, or defers to it.
        #[test]
        fn fast_path_equals_128_bit(
            num in proptest::prop_oneof![-1_000_000_000i64..1_000_000_000, proptest::num::i64::ANY],
            den in proptest::prop_oneof![1i64..100_000, 1i64..=i64::MAX],
            scale in 0u32..=20,
            decimals in 0u32..=12,
            method in proptest::prop_oneof![
                proptest::strategy::Just(RoundingMethod::Up),
                proptest::strategy::Just(RoundingMethod::Middle),
                proptest::strategy::Just(RoundingMethod::Down),
            ],
        ) {
            let wide = fixed_ratio_round_i128(i128::from(num), i128::from(den), scale, decimals, method);
            if let Some(q) = fixed_ratio_round_64(num, den, scale, decimals, method) {
                proptest::prop_assert_eq!(Some(i128::from(q)), wide);
            }
            proptest::prop_assert_eq!(fixed_ratio_round(i128::from(num), i128::from(den), scale, decimals, method), wide);
        }
    }
}
