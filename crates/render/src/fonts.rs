//! The fonts compiled into the binary: Noto Sans CJK SC, Regular and Bold, subset to GB2312 and
//! Latin (see `fonts/README.md` for how they were made and `fonts/LICENSE-OFL.txt`).
//!
//! Embedded rather than looked up on the system so that a PDF comes out the same on every
//! server, in a container with no fonts at all, and so that [`crate::check_glyphs`] knows
//! exactly which characters can be drawn. Noto Sans CJK has its own Latin letters and digits,
//! so one family serves both languages.

/// The family name the templates ask for.
#[cfg(feature = "pdf")]
pub const FAMILY: &str = "Noto Sans CJK SC";

/// Every embedded font: its file name (for error messages) and its bytes.
pub const ALL: [(&str, &[u8]); 2] = [
    (
        "NotoSansCJKsc-Regular-subset.otf",
        include_bytes!("../fonts/NotoSansCJKsc-Regular-subset.otf"),
    ),
    (
        "NotoSansCJKsc-Bold-subset.otf",
        include_bytes!("../fonts/NotoSansCJKsc-Bold-subset.otf"),
    ),
];
