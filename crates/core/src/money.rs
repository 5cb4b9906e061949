//! Exact money: an amount in a currency.

use rust_decimal::Decimal;
use std::fmt;
use std::str::FromStr;

use crate::rounding::Rounding;

/// An ISO 4217 currency code (three ASCII upper-case letters), stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("currency {0:?} is not three letters A-Z")]
    Invalid(String),
}

impl Currency {
    pub const CNY: Currency = Currency(*b"CNY");
    pub const USD: Currency = Currency(*b"USD");
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn as_str(&self) -> &str {
        // Only constructed from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Decimals of the currency's minor unit (ISO 4217), used when an invoice rounds to cents.
    pub fn minor_units(&self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" | b"VND" | b"CLP" | b"ISK" | b"XAF" | b"XOF" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" | b"LYD" | b"IQD" => 3,
            _ => 2,
        }
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let b = t.as_bytes();
        if b.len() == 3 && b.iter().all(|c| c.is_ascii_alphabetic()) {
            Ok(Currency([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
                b[2].to_ascii_uppercase(),
            ]))
        } else {
            Err(CurrencyError::Invalid(t.to_string()))
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Currency::from_str(&s).map_err(serde::de::Error::custom)
    }
}

/// An exact amount of money in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount: Decimal,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: Decimal::ZERO,
            currency,
        }
    }

    /// Adds two amounts of the same currency; `None` for a currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money {
            amount: self.amount.checked_add(other.amount)?,
            currency: self.currency,
        })
    }

    pub fn round(self, rounding: Rounding) -> Money {
        Money {
            amount: rounding.apply(self.amount),
            currency: self.currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount.normalize(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parses_and_rejects() {
        assert_eq!(Currency::from_str("cny").unwrap(), Currency::CNY);
        assert!(Currency::from_str("CN").is_err());
        assert!(Currency::from_str("C1Y").is_err());
        assert_eq!(Currency::from_str("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::CNY.minor_units(), 2);
    }

    #[test]
    fn money_adds_only_same_currency() {
        let a = Money::new(Decimal::new(10, 1), Currency::CNY);
        let b = Money::new(Decimal::new(20, 1), Currency::CNY);
        let c = Money::new(Decimal::new(20, 1), Currency::USD);
        assert_eq!(a.checked_add(b).unwrap().amount, Decimal::new(30, 1));
        assert!(a.checked_add(c).is_none());
        assert_eq!(a.to_string(), "1 CNY");
    }
}
