//! What the renderers refuse or neutralise: characters the fonts cannot draw, markup in
//! customer strings, invoices that do not add up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use toll_render::RenderError;

#[test]
fn a_character_outside_the_fonts_is_refused_with_its_field() {
    let mut doc = common::tax_inclusive();
    doc.buyer.name = "𠀀科技有限公司".into();
    let err = toll_render::check_glyphs(&doc).unwrap_err();
    assert_eq!(
        err.to_string(),
        "buyer.name: character '𠀀' (U+20000) is not in the invoice fonts"
    );
    // The PDF is refused for the same reason rather than printed without the character.
    assert!(matches!(
        toll_render::pdf(&doc),
        Err(RenderError::MissingGlyph { .. })
    ));

    let mut doc = common::tax_exclusive();
    doc.invoice.lines[2].label = "Germany 🇩🇪".into();
    assert_eq!(
        toll_render::check_glyphs(&doc).unwrap_err().to_string(),
        "lines[3].label: character '🇩' (U+1F1E9) is not in the invoice fonts"
    );

    let mut doc = common::tax_exclusive();
    doc.seller.address[1] = "Straße 1 😀".into();
    assert_eq!(
        toll_render::check_glyphs(&doc).unwrap_err().to_string(),
        "seller.address[2]: character '😀' (U+1F600) is not in the invoice fonts"
    );
}

#[test]
fn every_scenario_passes_the_glyph_check() {
    for (name, doc) in common::scenarios() {
        toll_render::check_glyphs(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn html_escapes_customer_strings() {
    let mut doc = common::tax_exclusive();
    doc.invoice.lines[0].label = "<script>alert('x')</script>".into();
    doc.buyer.name = "A & B \"Trading\" <Ltd>".into();
    let html = toll_render::html(&doc).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("<Ltd"),
        "{html}"
    );
    assert!(
        html.contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;"),
        "{html}"
    );
    assert!(
        html.contains("A &#38; B &#34;Trading&#34; &#60;Ltd&#62;"),
        "{html}"
    );
    // Markup in a string is text in the PDF too (it reaches typst as JSON data).
    doc.buyer.name = "#panic(\"x\") *bold* $x$ [link]".into();
    toll_render::pdf(&doc).unwrap();
}

#[test]
fn an_invoice_that_does_not_add_up_is_not_rendered() {
    let mut doc = common::tax_exclusive();
    doc.invoice.lines[0].amount.0 += 10_000;
    assert!(matches!(
        toll_render::html(&doc),
        Err(RenderError::Invoice(_))
    ));
    assert!(matches!(
        toll_render::pdf(&doc),
        Err(RenderError::Invoice(_))
    ));
}

#[test]
fn a_note_may_run_over_lines_but_a_tab_is_refused() {
    let mut doc = common::late_usage();
    doc.note =
        Some("Re-rated after the carrier's correction.\nQuestions: billing@example.com".into());
    toll_render::check_glyphs(&doc).unwrap();
    toll_render::pdf(&doc).unwrap();
    doc.note = Some("a\tb".into());
    assert_eq!(
        toll_render::check_glyphs(&doc).unwrap_err().to_string(),
        "note: character '\\t' (U+0009) is not in the invoice fonts"
    );
}
