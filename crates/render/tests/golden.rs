//! Golden tests: each scenario invoice as JSON (the document), as HTML and as the text of its
//! PDF (`pdftotext -layout`), compared byte for byte with `tests/snapshots/`. Run with
//! `UPDATE_SNAPSHOTS=1` to rewrite the snapshots after an intended change, then review the
//! diff. The PDFs, and a Chinese and an English page as PNG, are left in
//! `<target>/invoice-artifacts/` to be looked at.
//!
//! Needs poppler-utils (`pdftotext`, `pdftoppm`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// `<target>/invoice-artifacts`: CARGO_TARGET_DIR when it is absolute, else found from the
/// test binary's own path (`<target>/<profile>/deps/golden-…`).
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.ancestors().nth(3).unwrap().to_path_buf()
        });
    let dir = target.join("invoice-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compares `actual` with the snapshot `name`, or writes it under UPDATE_SNAPSHOTS=1.
fn snapshot(name: &str, actual: &str) -> Result<(), String> {
    let path = snapshots().join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(snapshots()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; run with UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    })?;
    if expected == actual {
        return Ok(());
    }
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
    Err(format!(
        "{name} differs from its snapshot from line {}:\n  expected: {:?}\n  actual:   {:?}\n\
         (UPDATE_SNAPSHOTS=1 rewrites the snapshots)",
        line + 1,
        expected.lines().nth(line).unwrap_or("<end>"),
        actual.lines().nth(line).unwrap_or("<end>"),
    ))
}

/// Runs a poppler tool, failing clearly where it is not installed.
fn poppler(tool: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {tool} ({e}): install poppler-utils (apt-get install poppler-utils)")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn scenarios_match_their_snapshots() {
    let dir = artifacts();
    let mut failures = Vec::new();
    for (name, doc) in common::scenarios() {
        let json = serde_json::to_string_pretty(&doc).unwrap() + "\n";
        let html = toll_render::html(&doc).unwrap();
        let pdf = toll_render::pdf(&doc).unwrap();
        // Same document, same bytes: nothing in the PDF depends on the clock.
        assert_eq!(
            pdf,
            toll_render::pdf(&doc).unwrap(),
            "{name}: PDF not reproducible"
        );
        let pdf_path = dir.join(format!("{name}.pdf"));
        std::fs::write(&pdf_path, &pdf).unwrap();
        let text = poppler(
            "pdftotext",
            &["-layout", "-enc", "UTF-8", pdf_path.to_str().unwrap(), "-"],
        );
        let text = String::from_utf8(text).unwrap();
        for (file, actual) in [
            (format!("{name}.json"), json),
            (format!("{name}.html"), html),
            (format!("{name}.pdf.txt"), text),
        ] {
            if let Err(e) = snapshot(&file, &actual) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A Chinese and an English page as PNG, kept to be looked at: CI's artifacts, and what a
/// reviewer opens after a change to the templates.
#[test]
fn pages_render_to_png() {
    let dir = artifacts();
    for (lang, doc) in [
        ("zh", common::tax_inclusive()),
        ("en", common::tax_exclusive()),
    ] {
        let pdf_path = dir.join(format!("invoice-{lang}.pdf"));
        std::fs::write(&pdf_path, toll_render::pdf(&doc).unwrap()).unwrap();
        let prefix = dir.join(format!("invoice-{lang}"));
        poppler(
            "pdftoppm",
            &[
                "-png",
                "-r",
                "100",
                "-singlefile",
                pdf_path.to_str().unwrap(),
                prefix.to_str().unwrap(),
            ],
        );
        let png = std::fs::read(prefix.with_extension("png")).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{lang}");
    }
}
