//! The invoice as a PDF, typeset by typst.
//!
//! typst compiles a project through a [`World`] that hands it files and fonts. This one holds
//! three things: the template (`templates/invoice.typ`, compiled into the binary), the page's
//! data as the virtual file `/invoice.json`, and the embedded fonts. It reads nothing from
//! disk, has no packages and no system fonts, so a PDF depends on the document alone. The
//! library, the parsed template and the fonts are built once per process and shared by every
//! render; only the JSON differs from one invoice to the next.

use std::sync::OnceLock;

use toll_billing::InvoiceDocument;
use typst::diag::{FileError, FileResult, SourceDiagnostic};
use typst::ecow::EcoVec;
use typst::foundations::{Bytes, Datetime, Duration, Smart};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World, WorldExt};
use typst_layout::PagedDocument;
use typst_pdf::PdfOptions;

use crate::error::RenderError;
use crate::fonts;
use crate::glyphs::check_glyphs;
use crate::page::Page;

const TEMPLATE: &str = include_str!("../templates/invoice.typ");

/// typst memoizes layout across compilations (comemo); entries unused for this many renders
/// are dropped after each one, so a long-running server's memory stays bounded while
/// consecutive invoices still share the font and template work.
const CACHE_AGE: usize = 16;

/// What every render shares, built at first use.
struct Shared {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    main: Source,
    data: FileId,
}

fn file_id(path: &str) -> Result<FileId, String> {
    let vpath = VirtualPath::new(path).map_err(|e| format!("{path}: {e}"))?;
    Ok(RootedPath::new(VirtualRoot::Project, vpath).intern())
}

fn shared() -> Result<&'static Shared, RenderError> {
    static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let mut loaded = Vec::with_capacity(fonts::ALL.len());
            for (name, data) in fonts::ALL {
                let font = Font::new(Bytes::new(data), 0)
                    .ok_or_else(|| format!("embedded font {name} cannot be read"))?;
                if font.info().family != fonts::FAMILY {
                    return Err(format!("embedded font {name} is not {}", fonts::FAMILY));
                }
                loaded.push(font);
            }
            Ok(Shared {
                library: LazyHash::new(Library::default()),
                book: LazyHash::new(FontBook::from_fonts(&loaded)),
                fonts: loaded,
                main: Source::new(file_id("/invoice.typ")?, TEMPLATE.to_string()),
                data: file_id("/invoice.json")?,
            })
        })
        .as_ref()
        .map_err(|e| RenderError::Typeset(e.clone()))
}

/// One invoice's view of the shared world: the shared parts and its own data.
struct InvoiceWorld {
    shared: &'static Shared,
    data: Bytes,
}

impl InvoiceWorld {
    fn not_found(id: FileId) -> FileError {
        FileError::NotFound(id.vpath().get_with_slash().into())
    }
}

impl World for InvoiceWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.shared.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.shared.book
    }

    fn main(&self) -> FileId {
        self.shared.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.shared.main.id() {
            Ok(self.shared.main.clone())
        } else {
            Err(Self::not_found(id))
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == self.shared.data {
            Ok(self.data.clone())
        } else if id == self.shared.main.id() {
            Ok(Bytes::from_string(TEMPLATE))
        } else {
            Err(Self::not_found(id))
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.shared.fonts.get(index).cloned()
    }

    /// The template never asks for today: an invoice prints its own dates.
    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        None
    }
}

/// typst's diagnostics as one line, each with the template line it points at.
fn messages(world: &InvoiceWorld, diags: &EcoVec<SourceDiagnostic>) -> String {
    diags
        .iter()
        .map(|d| {
            let hints = d.hints.iter().map(|h| format!(" (hint: {})", h.v));
            let at = world
                .range(d.span)
                .and_then(|r| TEMPLATE.get(..r.start))
                .map(|before| format!(" (invoice.typ line {})", before.lines().count().max(1)))
                .unwrap_or_default();
            format!("{}{at}{}", d.message, hints.collect::<String>())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The PDF and typst's warnings (which the tests require to be none).
fn typeset(doc: &InvoiceDocument) -> Result<(Vec<u8>, Vec<String>), RenderError> {
    check_glyphs(doc)?;
    let page = Page::new(doc)?;
    let world = InvoiceWorld {
        shared: shared()?,
        data: Bytes::new(serde_json::to_vec(&page)?),
    };
    let compiled = typst::compile::<PagedDocument>(&world);
    let warnings = compiled
        .warnings
        .iter()
        .map(|w| w.message.to_string())
        .collect();
    let document = compiled
        .output
        .map_err(|e| RenderError::Typeset(messages(&world, &e)))?;
    let options = PdfOptions {
        creator: Smart::Custom(Some("Toll".into())),
        ..PdfOptions::default()
    };
    let pdf =
        typst_pdf::pdf(&document, &options).map_err(|e| RenderError::Typeset(messages(&world, &e)));
    typst::comemo::evict(CACHE_AGE);
    Ok((pdf?, warnings))
}

/// The invoice as a PDF (A4), in the document's language.
///
/// Checks first that the embedded fonts can draw every character ([`check_glyphs`]), and
/// refuses an invoice that breaks its invariants. The file's creation date is the issue date,
/// so the same document always gives the same bytes.
pub fn pdf(doc: &InvoiceDocument) -> Result<Vec<u8>, RenderError> {
    typeset(doc).map(|(pdf, _warnings)| pdf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_scenario_typesets_without_warnings() {
        for (name, doc) in crate::scenarios::scenarios() {
            let (pdf, warnings) = typeset(&doc).unwrap();
            assert!(pdf.starts_with(b"%PDF-"), "{name}");
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
        }
    }
}
