//! Loading a tariff from disk: a CGRateS CSV folder, a folder with `tariff.toml`, or a `.toml`
//! file. The parsing itself is pure (`toll_rating::source`); this module only reads the files.

use std::fs;
use std::path::{Path, PathBuf};

use toll_rating::diag::Diagnostics;
use toll_rating::source::SourceFile;

pub use toll_rating::source::compile::{Loaded, RANGES_FILE, compile_files};
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

/// Reads, parses and compiles a tariff folder or file.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let files = read_files(path)?;
    compile_files(&files).map_err(LoadError::Invalid)
}
