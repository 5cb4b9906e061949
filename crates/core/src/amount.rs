//! Ledger amounts: exact integers of micro-units (10⁻⁶ of a currency unit).
//!
//! Balances and ledger entries are stored as integers so that both storage engines (SQLite has no
//! safe decimal type) add them exactly and so that a balance is a plain `SUM`. Six decimals hold
//! every rated price Toll produces after its tariff's rounding (rated costs are rounded to at most
//! four decimals in practice) while `i64` still spans ±9.2 × 10¹² currency units. A decimal with
//! more than six decimals is refused rather than silently rounded: the caller must round it with
//! a named [`Rounding`](crate::Rounding) first.

use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

/// Number of decimals a [`Micros`] amount carries.
pub const MICROS_SCALE: u32 = 6;
const MICROS_PER_UNIT: i64 = 1_000_000;

/// An exact amount in micro-units of some currency (the currency is held by the ledger account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0} has more than 6 decimals; round it first")]
    TooPrecise(Decimal),
    #[error("amount {0} is out of range for the ledger")]
    OutOfRange(Decimal),
    #[error("amount {0:?} is not a decimal number")]
    NotANumber(String),
    #[error("amount arithmetic overflowed")]
    Overflow,
}

impl Micros {
    pub const ZERO: Micros = Micros(0);

    /// Converts exactly; refuses more than six decimals or values beyond the `i64` range.
    pub fn from_decimal(d: Decimal) -> Result<Micros, AmountError> {
        let scaled = d
            .checked_mul(Decimal::from(MICROS_PER_UNIT))
            .ok_or(AmountError::OutOfRange(d))?;
        if scaled.fract() != Decimal::ZERO {
            return Err(AmountError::TooPrecise(d));
        }
        let int = scaled.trunc();
        i64::try_from(int.mantissa() / 10_i128.pow(int.scale()))
            .map(Micros)
            .map_err(|_| AmountError::OutOfRange(d))
    }

    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, MICROS_SCALE).normalize()
    }

    pub fn checked_add(self, o: Micros) -> Result<Micros, AmountError> {
        self.0
            .checked_add(o.0)
            .map(Micros)
            .ok_or(AmountError::Overflow)
    }

    pub fn checked_sub(self, o: Micros) -> Result<Micros, AmountError> {
        self.0
            .checked_sub(o.0)
            .map(Micros)
            .ok_or(AmountError::Overflow)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl FromStr for Micros {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d = Decimal::from_str(s.trim()).map_err(|_| AmountError::NotANumber(s.to_string()))?;
        Micros::from_decimal(d)
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

impl serde::Serialize for Micros {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_exactly_both_ways() {
        let m = Micros::from_str("12.3456").unwrap();
        assert_eq!(m, Micros(12_345_600));
        assert_eq!(m.to_string(), "12.3456");
        assert_eq!(Micros::from_str("-0.000001").unwrap(), Micros(-1));
        assert_eq!(Micros::from_str("1.500000000").unwrap(), Micros(1_500_000));
    }

    #[test]
    fn refuses_what_it_cannot_hold() {
        assert!(matches!(
            Micros::from_str("0.0000001"),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            Micros::from_str("99999999999999999"),
            Err(AmountError::OutOfRange(_))
        ));
        assert!(matches!(
            Micros::from_str("abc"),
            Err(AmountError::NotANumber(_))
        ));
        assert_eq!(
            Micros(i64::MAX).checked_add(Micros(1)),
            Err(AmountError::Overflow)
        );
    }
}
