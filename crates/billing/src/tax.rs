//! VAT: a named rate and whether the prices it applies to already include it.
//!
//! Rates are held in parts per million so that tax arithmetic is integer and exact (6 % is
//! 60,000 ppm; China's telecom rates are 9 % for basic and 6 % for value-added services).
//! Tax is computed once per rate over an invoice's exact amounts, then rounded with the
//! invoice's named rounding, never per line, so an invoice of many small calls carries no
//! accumulated rounding error.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// 100 % in parts per million.
pub const PPM: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaxError {
    #[error("tax rate {0}% must be between 0 and 100 with at most 4 decimals")]
    BadRate(Decimal),
    #[error("tax name must be 1 to 40 characters")]
    BadName,
    #[error("{0:?} is not a tax mode: inclusive or exclusive")]
    BadMode(String),
}

/// Whether prices include the tax (consumer prices in China: the tax is *of which*) or have it
/// added on top (business invoices in much of the world).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxMode {
    Inclusive,
    Exclusive,
}

impl TaxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TaxMode::Inclusive => "inclusive",
            TaxMode::Exclusive => "exclusive",
        }
    }
}

impl std::str::FromStr for TaxMode {
    type Err = TaxError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inclusive" => Ok(TaxMode::Inclusive),
            "exclusive" => Ok(TaxMode::Exclusive),
            other => Err(TaxError::BadMode(other.to_string())),
        }
    }
}

/// A named tax rate, e.g. `VAT 6%` at 60,000 ppm.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct TaxRate {
    name: String,
    ppm: u32,
}

impl TaxRate {
    /// A rate from its percentage (`6`, `9`, `6.5`, at most 4 decimals, 0–100).
    pub fn percent(name: &str, percent: Decimal) -> Result<TaxRate, TaxError> {
        let ppm = percent
            .checked_mul(Decimal::from(10_000))
            .filter(|p| p.fract().is_zero() && *p >= Decimal::ZERO && *p <= Decimal::from(PPM))
            .and_then(|p| p.to_u32())
            .ok_or(TaxError::BadRate(percent))?;
        TaxRate::from_ppm(name, ppm)
    }

    pub fn from_ppm(name: &str, ppm: u32) -> Result<TaxRate, TaxError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 40 {
            return Err(TaxError::BadName);
        }
        if i64::from(ppm) > PPM {
            return Err(TaxError::BadRate(Decimal::new(i64::from(ppm), 4)));
        }
        Ok(TaxRate {
            name: name.to_string(),
            ppm,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ppm(&self) -> u32 {
        self.ppm
    }

    /// The rate as a percentage (`6`, `6.5`).
    pub fn percent_value(&self) -> Decimal {
        Decimal::new(i64::from(self.ppm), 4).normalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_exact_percentages() {
        let r = TaxRate::percent("VAT", Decimal::new(65, 1)).unwrap();
        assert_eq!(r.ppm(), 65_000);
        assert_eq!(r.percent_value().to_string(), "6.5");
        assert_eq!(
            TaxRate::percent("VAT", Decimal::from(9)).unwrap().ppm(),
            90_000
        );
        for bad in [
            Decimal::new(-1, 0),
            Decimal::new(101, 0),
            Decimal::new(1, 5),
        ] {
            assert!(TaxRate::percent("VAT", bad).is_err(), "{bad}");
        }
        assert_eq!(TaxRate::percent(" ", Decimal::ONE), Err(TaxError::BadName));
    }
}
