//! Which characters the embedded fonts can draw, and the check that a document uses no other.
//!
//! typst draws a character that no font has as nothing (with at most a warning), so a
//! customer's name with a rare hanzi outside GB2312 or an emoji would silently print wrong.
//! [`check_glyphs`] finds such characters before typesetting and names the field they are in,
//! so the operator can correct the record or the font set can be extended.

use std::collections::HashSet;
use std::sync::OnceLock;

use toll_billing::{InvoiceDocument, Party};

use crate::error::RenderError;
use crate::fonts;

/// The characters every embedded font maps: built from the fonts' `cmap` tables at first use
/// (a few milliseconds) and kept for the life of the process.
fn coverage() -> Result<&'static HashSet<char>, RenderError> {
    static COVERAGE: OnceLock<Result<HashSet<char>, &'static str>> = OnceLock::new();
    COVERAGE
        .get_or_init(|| {
            let mut common: Option<HashSet<char>> = None;
            for (name, data) in fonts::ALL {
                let face = ttf_parser::Face::parse(data, 0).map_err(|_| name)?;
                let cmap = face.tables().cmap.ok_or(name)?;
                let mut chars = HashSet::new();
                for sub in cmap.subtables.into_iter().filter(|s| s.is_unicode()) {
                    sub.codepoints(|cp| {
                        if let Some(c) = char::from_u32(cp)
                            && sub.glyph_index(cp).is_some_and(|g| g.0 != 0)
                        {
                            chars.insert(c);
                        }
                    });
                }
                // Text may be set in either weight: a character must be in all of them.
                common = Some(match common {
                    None => chars,
                    Some(prev) => prev.intersection(&chars).copied().collect(),
                });
            }
            common.ok_or("no font")
        })
        .as_ref()
        .map_err(|name| RenderError::Font(name))
}

/// The first character of `text` that the fonts cannot draw, as an error naming `field`.
fn check(
    set: &HashSet<char>,
    field: impl FnOnce() -> String,
    text: &str,
) -> Result<(), RenderError> {
    match text.chars().find(|c| !set.contains(c)) {
        Some(ch) => Err(RenderError::MissingGlyph { field: field(), ch }),
        None => Ok(()),
    }
}

fn check_party(set: &HashSet<char>, role: &str, p: &Party) -> Result<(), RenderError> {
    check(set, || format!("{role}.name"), &p.name)?;
    for (i, line) in p.address.iter().enumerate() {
        check(set, || format!("{role}.address[{}]", i + 1), line)?;
    }
    if let Some(t) = &p.tax_id {
        check(set, || format!("{role}.tax_id"), t)?;
    }
    Ok(())
}

/// Checks that the embedded fonts can draw every character of every string the document
/// brings (party names, addresses and tax IDs, the account, status and note, line labels and
/// details, tax names); the first one that cannot be drawn is the error, e.g.
/// `buyer.name: character '𠀀' (U+20000) is not in the invoice fonts`. Indices in field names
/// count from 1. Control characters are refused too (a tab would vanish), except newlines in
/// the note. [`crate::pdf`] calls it first; call it on its own to validate a record when it
/// is entered.
pub fn check_glyphs(doc: &InvoiceDocument) -> Result<(), RenderError> {
    let set = coverage()?;
    if let Some(n) = &doc.number {
        check(set, || "number".into(), n)?;
    }
    check_party(set, "seller", &doc.seller)?;
    check_party(set, "buyer", &doc.buyer)?;
    check(set, || "account".into(), &doc.account)?;
    check(set, || "status".into(), &doc.status)?;
    if let Some(n) = &doc.note {
        // A note may run over several lines: both templates break the line at a newline.
        for part in n.split('\n') {
            check(set, || "note".into(), part)?;
        }
    }
    for (i, l) in doc.invoice.lines.iter().enumerate() {
        check(set, || format!("lines[{}].label", i + 1), &l.label)?;
        if let Some(d) = &l.detail {
            check(set, || format!("lines[{}].detail", i + 1), d)?;
        }
        if let Some(t) = &l.tax {
            check(set, || format!("lines[{}].tax", i + 1), t.name())?;
        }
    }
    for (i, t) in doc.invoice.taxes.iter().enumerate() {
        check(set, || format!("taxes[{}].name", i + 1), t.rate.name())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_fonts_cover_what_chinese_and_english_invoices_print() {
        let set = coverage().unwrap();
        // GB2312's hanzi (6,763) and symbols, ASCII, Latin-1, full-width forms.
        assert!(set.len() > 7_500, "{}", set.len());
        for c in "壹贰叁肆伍陆柒捌玖拾佰仟万亿元角分整负（）：；，。、￥¥€→–—·×é ".chars()
        {
            assert!(set.contains(&c), "{c:?}");
        }
        for c in ['𠀀', '😀', '\u{7}'] {
            assert!(!set.contains(&c), "{c:?}");
        }
    }

    #[test]
    fn every_fixed_word_is_drawable() {
        for word in crate::labels::all_fixed_words() {
            for c in word.chars() {
                assert!(coverage().unwrap().contains(&c), "{word:?}: {c:?}");
            }
        }
    }
}
