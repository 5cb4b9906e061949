//! Compiling a tariff from its source files, already read (from disk, an upload or the
//! database): parse, load the number ranges (a `NumberRanges.csv` among the files, else the
//! bundled Chinese table), compile. Pure: the callers do the reading.

use std::sync::Arc;

use crate::Tariff;
use crate::carriers::NumberRanges;
use crate::diag::Diagnostics;
use crate::source::{self, Format, SourceFile};

/// A folder's optional number-range table (else the bundled Chinese table is used).
pub const RANGES_FILE: &str = "NumberRanges.csv";

/// A compiled tariff with the warnings its check produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub tariff: Arc<Tariff>,
    pub warnings: Diagnostics,
    pub format: Format,
}

/// Parses and compiles already-read files; every problem is in the returned diagnostics.
pub fn compile_files(files: &[SourceFile]) -> Result<Loaded, Diagnostics> {
    let mut diags = Diagnostics::default();
    let format = source::detect(files);
    let def = source::parse(files, &mut diags);
    let ranges = match files
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(RANGES_FILE))
    {
        Some(f) => NumberRanges::parse_csv(&f.name, &f.bytes, &mut diags),
        None => NumberRanges::builtin_cn(),
    };
    match Tariff::compile(&def, Arc::new(ranges)) {
        Ok((tariff, warnings)) => {
            diags.extend(warnings);
            if diags.has_errors() {
                Err(diags)
            } else {
                Ok(Loaded {
                    tariff: Arc::new(tariff),
                    warnings: diags,
                    format,
                })
            }
        }
        Err(errors) => {
            diags.extend(errors);
            Err(diags)
        }
    }
}
