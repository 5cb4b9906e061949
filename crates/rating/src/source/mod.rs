//! Tariff file formats. Pure: they read bytes that the caller (CLI, server upload) supplies.
//!
//! - [`cgrates`]: the classic CGRateS tariff-plan folder (`Destinations.csv`, `Rates.csv`, ...).
//! - [`toll`]: Toll's own single TOML file (`tariff.toml`), human-writable, with time zone,
//!   currency and holiday calendars.
//!
//! Both produce a [`TariffDef`]; problems go into [`Diagnostics`] with file, line and column.

pub mod cgrates;
pub mod compile;
pub mod fields;
pub mod toll;

use crate::def::TariffDef;
use crate::diag::Diagnostics;

/// One file of a tariff folder.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The file name relative to the folder, e.g. `Rates.csv` or `tariff.toml`.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Which format a set of files is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Cgrates,
    Toll,
}

/// The name Toll's own tariff file has inside a folder.
pub const TOLL_FILE: &str = "tariff.toml";

/// The six files of a classic CGRateS tariff plan.
pub const CGRATES_FILES: [&str; 6] = [
    "Destinations.csv",
    "Rates.csv",
    "DestinationRates.csv",
    "Timings.csv",
    "RatingPlans.csv",
    "RatingProfiles.csv",
];

/// Decides the format from the file names: `tariff.toml` means Toll's format; otherwise any of
/// the CGRateS files means that layout (an unrelated `.toml` beside them is ignored); a lone
/// `.toml` file is Toll's format.
pub fn detect(files: &[SourceFile]) -> Format {
    let named = |n: &str| files.iter().any(|f| f.name.eq_ignore_ascii_case(n));
    if named(TOLL_FILE) {
        Format::Toll
    } else if CGRATES_FILES.iter().any(|n| named(n)) {
        Format::Cgrates
    } else if files.iter().any(|f| f.name.ends_with(".toml")) {
        Format::Toll
    } else {
        Format::Cgrates
    }
}

/// Parses whatever format the files are in. The definition is returned even when there are
/// errors, so that compilation can add its own diagnostics to the same list.
pub fn parse(files: &[SourceFile], diags: &mut Diagnostics) -> TariffDef {
    match detect(files) {
        Format::Cgrates => cgrates::parse(files, diags),
        Format::Toll => {
            let main = files
                .iter()
                .position(|f| f.name == TOLL_FILE)
                .or_else(|| files.iter().position(|f| f.name.ends_with(".toml")));
            let Some(main) = main else {
                return TariffDef::empty("tariff");
            };
            let mut def = toll::parse(&files[main].name, &files[main].bytes, diags);
            // Further `.toml` files add rows (e.g. messaging and data rates kept apart from
            // the call tariff); the main file's name, currency, zone and numbering rule.
            let mut extra: Vec<&SourceFile> = files
                .iter()
                .enumerate()
                .filter(|(i, f)| *i != main && f.name.ends_with(".toml"))
                .map(|(_, f)| f)
                .collect();
            extra.sort_by(|a, b| a.name.cmp(&b.name));
            for f in extra {
                let more = toll::parse(&f.name, &f.bytes, diags);
                def.destinations.extend(more.destinations);
                def.rates.extend(more.rates);
                def.destination_rates.extend(more.destination_rates);
                def.timings.extend(more.timings);
                def.calendars.extend(more.calendars);
                def.plans.extend(more.plans);
                def.profiles.extend(more.profiles);
            }
            def
        }
    }
}
