//! Loading a tariff from disk: a CGRateS CSV folder, a folder with `tariff.toml`, or a `.toml`
//! file. The parsing itself is pure (`toll_rating::source`); this module only reads the files.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toll_rating::Tariff;
use toll_rating::carriers::NumberRanges;
use toll_rating::diag::Diagnostics;
use toll_rating::source::{self, Format, SourceFile};

/// A folder's optional number-range table (else the bundled Chinese table is used).
pub const RANGES_FILE: &str = "NumberRanges.csv";
/// Files larger than this are refused rather than read into memory.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("the tariff has errors:\n{0}")]
    Invalid(Diagnostics),
}

/// A compiled tariff with the warnings its check produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub tariff: Arc<Tariff>,
    pub warnings: Diagnostics,
    pub format: Format,
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    let meta = fs::metadata(path).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(LoadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    fs::read(path).map_err(|e| LoadError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Reads the files of a tariff folder (not recursive), or a single `.toml` file.
pub fn read_files(path: &Path) -> Result<Vec<SourceFile>, LoadError> {
    let io = |e| LoadError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let meta = fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(vec![SourceFile {
            name,
            bytes: read(path)?,
        }]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let wanted = name.ends_with(".csv") || name.ends_with(".toml");
        if wanted && p.is_file() {
            files.push(SourceFile {
                name,
                bytes: read(&p)?,
            });
        }
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
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

/// Reads, parses and compiles a tariff folder or file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let files = read_files(path)?;
    compile_files(&files).map_err(LoadError::Invalid)
}
