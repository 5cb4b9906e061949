#![allow(dead_code)]
use std::fs::File;
use std::path::PathBuf;

use jiff::Timestamp;

pub fn fixture(path: &str) -> File {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    File::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

pub const S: i64 = 1_000_000_000;
