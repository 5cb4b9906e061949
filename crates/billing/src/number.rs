//! Invoice numbers: gapless per tenant and series, as tax law in China and the EU expects.
//!
//! The number is `{series}-{year}-{sequence:06}` (`INV-2026-000042`; credit notes use their own
//! series, `CN-…`). The sequence is the store's counter for (tenant, series, year), taken in the
//! same transaction that finalizes the invoice, so a crash or a rollback never burns a number
//! and two bill-run workers never take the same one.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("series {0:?} must be 1 to 8 ASCII capital letters")]
    BadSeries(String),
    #[error("invoice number {0:?} is not SERIES-YEAR-SEQUENCE")]
    BadNumber(String),
}

/// A numbering series: `INV` for invoices, `CN` for credit notes, or a tenant's own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Series(String);

impl Series {
    pub fn new(s: &str) -> Result<Series, NumberError> {
        if s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(NumberError::BadSeries(s.to_string()));
        }
        Ok(Series(s.to_string()))
    }

    pub fn invoices() -> Series {
        Series("INV".to_string())
    }

    pub fn credit_notes() -> Series {
        Series("CN".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A finalized document's number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InvoiceNumber {
    series: String,
    year: i16,
    sequence: u32,
}

impl InvoiceNumber {
    pub fn new(series: &Series, year: i16, sequence: u32) -> InvoiceNumber {
        InvoiceNumber {
            series: series.0.clone(),
            year,
            sequence,
        }
    }

    pub fn series(&self) -> &str {
        &self.series
    }

    pub fn year(&self) -> i16 {
        self.year
    }

    pub fn sequence(&self) -> u32 {
        self.sequence
    }
}

impl std::str::FromStr for InvoiceNumber {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NumberError::BadNumber(s.to_string());
        let mut parts = s.split('-');
        let (Some(series), Some(year), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let series = Series::new(series).map_err(|_| bad())?;
        if year.len() != 4 || seq.len() < 6 {
            return Err(bad());
        }
        Ok(InvoiceNumber::new(
            &series,
            year.parse().map_err(|_| bad())?,
            seq.parse().map_err(|_| bad())?,
        ))
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:04}-{:06}", self.series, self.year, self.sequence)
    }
}

impl serde::Serialize for InvoiceNumber {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_and_parse() {
        let n = InvoiceNumber::new(&Series::invoices(), 2026, 42);
        assert_eq!(n.to_string(), "INV-2026-000042");
        assert_eq!("INV-2026-000042".parse::<InvoiceNumber>().unwrap(), n);
        assert_eq!(
            "CN-2027-1234567"
                .parse::<InvoiceNumber>()
                .unwrap()
                .sequence(),
            1_234_567
        );
        for bad in [
            "INV-2026-42",
            "inv-2026-000042",
            "INV-26-000042",
            "INV2026000042",
        ] {
            assert!(bad.parse::<InvoiceNumber>().is_err(), "{bad}");
        }
        assert!(Series::new("TOOLONGXX").is_err());
    }
}
