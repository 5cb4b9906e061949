#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Money code never uses binary floating point. Clippy's `float_arithmetic` lint (denied in CI)
//! catches arithmetic; this test also catches a float *type* creeping into the money crates —
//! a field, a conversion, a parameter — where no arithmetic is visible yet.

use std::path::{Path, PathBuf};

/// The crates that hold money: amounts, prices, balances, the ledger and their storage.
const MONEY_CRATES: [&str; 4] = ["core", "catalog", "charging", "store"];

/// The one sanctioned mention: the pricing reader refuses a TOML float with an error.
const ALLOWED: [&str; 1] = ["fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Dec, E> {"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn money_crates_have_no_float_types() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for name in MONEY_CRATES {
        rust_files(&crates.join(name).join("src"), &mut files);
    }
    assert!(files.len() > 20, "found the sources");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let has_float = code
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|w| w == "f64" || w == "f32");
            if has_float && !ALLOWED.contains(&line.trim()) {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "floats in money code:\n{}",
        found.join("\n")
    );
}
