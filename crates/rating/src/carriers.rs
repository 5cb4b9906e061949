//! Number ranges: which carrier and region a number belongs to, from a prefix table.
//!
//! Seed 001 rates calls per carrier (移动, 联通, 电信...) and needs the callee's carrier and region
//! on every rated call. The table maps prefixes in the Chinese national dialled form (`138`,
//! `010`, `00852`, `10086`) to a kind, a carrier and a region. Since number portability
//! (携号转网) exists, a carrier found this way is the *original* carrier: an estimate, and the
//! event can override it with the carrier of the route actually used.
//!
//! Two CSV layouts are read:
//! - `prefix,kind,carrier_or_region,notes` (the bundled `cn_number_ranges.csv`): for `mobile`
//!   rows the third column is the carrier; for others it is the region (a service row may name
//!   its carrier after ` — `);
//! - `prefix,kind,carrier,region[,notes]`: explicit columns, for operators' own tables (for
//!   example 7-digit mobile H-code blocks with their cities).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::diag::{Diagnostics, Pos};
use crate::trie::{FrozenTrie, PrefixIndex, PrefixTrie};

/// The table shipped with Toll (copied from the project's shared reference data).
pub const BUILTIN_CN_CSV: &str = include_str!("../data/cn_number_ranges.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeKind {
    Mobile,
    Fixed,
    International,
    Service,
}

impl RangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RangeKind::Mobile => "mobile",
            RangeKind::Fixed => "fixed",
            RangeKind::International => "international",
            RangeKind::Service => "service",
        }
    }
}

/// A carrier known to the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carrier {
    /// Stable identifier used in tariffs and outputs, e.g. `china_mobile`.
    pub slug: Box<str>,
    /// Display name as written in the table, e.g. `China Mobile (中国移动)`.
    pub name: Box<str>,
}

/// What a prefix says about a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub prefix: Box<str>,
    pub kind: RangeKind,
    pub carrier: Option<u32>,
    pub region: Option<Box<str>>,
}

/// A compiled number-range table.
#[derive(Debug, Clone, Default)]
pub struct NumberRanges {
    trie: PrefixTrie<u32>,
    frozen: FrozenTrie,
    /// The same prefixes hashed per length (all digits, as in the bundled table), if possible.
    index: Option<PrefixIndex>,
    ranges: Vec<Range>,
    carriers: Vec<Carrier>,
    aliases: FxHashMap<Box<str>, u32>,
}

/// `China Mobile (中国移动)` → `china_mobile`.
pub fn carrier_slug(name: &str) -> String {
    let base = name.split('(').next().unwrap_or(name).trim();
    let base = if base.is_empty() { name.trim() } else { base };
    let mut out = String::with_capacity(base.len());
    let mut sep = false;
    for c in base.chars() {
        if c.is_alphanumeric() {
            if sep && !out.is_empty() {
                out.push('_');
            }
            sep = false;
            out.extend(c.to_lowercase());
        } else {
            sep = true;
        }
    }
    out
}

impl NumberRanges {
    /// The bundled Chinese table.
    pub fn builtin_cn() -> NumberRanges {
        let mut diags = Diagnostics::default();
        let r = Self::parse_csv(
            "builtin:cn_number_ranges.csv",
            BUILTIN_CN_CSV.as_bytes(),
            &mut diags,
        );
        debug_assert!(!diags.has_errors(), "bundled ranges must parse: {diags}");
        r
    }

    /// Parses a range table; bad rows are reported and skipped.
    pub fn parse_csv(file: &str, bytes: &[u8], diags: &mut Diagnostics) -> NumberRanges {
        let file: Arc<str> = Arc::from(file);
        let mut out = NumberRanges::default();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let mut rec = csv::ByteRecord::new();
        let mut explicit = false;
        let mut first = true;
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line() as u32).unwrap_or(0);
                    diags.error(Pos::new(&file, line, 1), format!("unreadable CSV: {e}"));
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                    continue;
                }
            }
            let line = rec.position().map(|p| p.line() as u32).unwrap_or(0);
            let field = |i: usize| -> Result<&str, String> {
                std::str::from_utf8(rec.get(i).unwrap_or(b""))
                    .map_err(|_| format!("field {} is not valid UTF-8", i + 1))
            };
            if first {
                first = false;
                if field(0)
                    .map(|f| f.eq_ignore_ascii_case("prefix"))
                    .unwrap_or(false)
                {
                    explicit = field(2)
                        .map(|f| f.eq_ignore_ascii_case("carrier"))
                        .unwrap_or(false);
                    continue;
                }
            }
            if rec.len() < 3 {
                diags.error(
                    Pos::new(&file, line, 1),
                    format!(
                        "expected at least 3 fields (prefix, kind, carrier/region), found {}",
                        rec.len()
                    ),
                );
                continue;
            }
            let (prefix, kind, third, fourth) = match (field(0), field(1), field(2), field(3)) {
                (Ok(a), Ok(b), Ok(c), Ok(d)) => (a, b, c, d),
                (Err(e), ..) | (_, Err(e), ..) | (_, _, Err(e), _) | (.., Err(e)) => {
                    diags.error(Pos::new(&file, line, 1), e);
                    continue;
                }
            };
            if prefix.is_empty()
                || prefix.len() > 32
                || !prefix.bytes().all(|b| b.is_ascii_digit() || b == b'+')
            {
                diags.error(
                    Pos::new(&file, line, 1),
                    format!("prefix {prefix:?} is not 1-32 digits"),
                );
                continue;
            }
            let kind = match kind.to_ascii_lowercase().as_str() {
                "mobile" => RangeKind::Mobile,
                "fixed" => RangeKind::Fixed,
                "international" => RangeKind::International,
                "service" => RangeKind::Service,
                other => {
                    diags.error(
                        Pos::new(&file, line, 2),
                        format!("kind {other:?} is not mobile, fixed, international or service"),
                    );
                    continue;
                }
            };
            let (carrier, region) = if explicit {
                (non_empty(third), non_empty(fourth))
            } else {
                match kind {
                    RangeKind::Mobile => (non_empty(third), None),
                    RangeKind::Service => match third.split_once(" — ") {
                        Some((desc, carrier)) => (non_empty(carrier), non_empty(desc)),
                        None => (None, non_empty(third)),
                    },
                    _ => (None, non_empty(third)),
                }
            };
            let carrier = carrier.map(|c| out.intern_carrier(c));
            let idx = out.ranges.len() as u32;
            let slot = out.trie.entry(prefix.as_bytes(), || idx);
            if *slot != idx {
                diags.warning(
                    Pos::new(&file, line, 1),
                    format!("prefix {prefix} listed twice; the later row wins"),
                );
                let existing = *slot as usize;
                out.ranges[existing] = Range {
                    prefix: prefix.into(),
                    kind,
                    carrier,
                    region: region.map(Into::into),
                };
                continue;
            }
            out.ranges.push(Range {
                prefix: prefix.into(),
                kind,
                carrier,
                region: region.map(Into::into),
            });
        }
        out.frozen = FrozenTrie::freeze(&out.trie);
        out.index = PrefixIndex::build(&out.trie);
        out
    }

    fn intern_carrier(&mut self, name: &str) -> u32 {
        let slug = carrier_slug(name);
        if let Some(&id) = self.aliases.get(slug.as_str()) {
            return id;
        }
        let id = self.carriers.len() as u32;
        self.carriers.push(Carrier {
            slug: slug.clone().into(),
            name: name.into(),
        });
        let mut alias = |a: &str| {
            let a = a.trim().to_lowercase();
            if !a.is_empty() {
                self.aliases.entry(a.into()).or_insert(id);
            }
        };
        alias(&slug);
        alias(name);
        if let Some((en, rest)) = name.split_once('(') {
            alias(en);
            alias(rest.trim_end_matches(')'));
        }
        id
    }

    /// The range of the longest prefix of a number in national dialled form.
    pub fn lookup(&self, national: &str) -> Option<&Range> {
        self.lookup_indexed_bytes(national.as_bytes())
            .map(|(_, r)| r)
    }

    /// Finds a carrier by slug, display name, or either half of a bilingual name
    /// (`china_mobile`, `China Mobile`, `中国移动`), ignoring ASCII case.
    pub fn carrier_by_name(&self, text: &str) -> Option<u32> {
        let t = text.trim();
        if let Some(&id) = self.aliases.get(t) {
            return Some(id);
        }
        self.aliases.get(t.to_lowercase().as_str()).copied()
    }

    pub fn carrier(&self, id: u32) -> &Carrier {
        &self.carriers[id as usize]
    }

    pub fn carriers(&self) -> &[Carrier] {
        &self.carriers
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty()).then_some(t)
}

impl NumberRanges {
    /// Like [`NumberRanges::lookup`], on bytes and with the range's index.
    pub fn lookup_indexed_bytes(&self, national: &[u8]) -> Option<(u32, &Range)> {
        let i = match &self.index {
            Some(idx) => idx.longest(national)?.1,
            None => self.frozen.longest(national)?.1,
        };
        Some((i, &self.ranges[i as usize]))
    }

    /// The range at an index returned by [`NumberRanges::lookup_indexed`].
    pub fn range(&self, i: u32) -> &Range {
        &self.ranges[i as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_identifies_carriers_and_regions() {
        let r = NumberRanges::builtin_cn();
        assert!(r.len() > 400);
        let cm = r.lookup("13800138000").unwrap();
        assert_eq!(cm.kind, RangeKind::Mobile);
        assert_eq!(&*r.carrier(cm.carrier.unwrap()).slug, "china_mobile");
        let sat = r.lookup("13491234567").unwrap();
        assert_eq!(&*r.carrier(sat.carrier.unwrap()).slug, "china_telecom");
        let bj = r.lookup("01012345678").unwrap();
        assert_eq!(bj.kind, RangeKind::Fixed);
        assert_eq!(bj.carrier, None);
        assert_eq!(bj.region.as_deref(), Some("Beijing (北京市)"));
        let hk = r.lookup("0085212345678").unwrap();
        assert_eq!(hk.kind, RangeKind::International);
        assert_eq!(hk.region.as_deref(), Some("Hong Kong SAR"));
        let cs = r.lookup("10086").unwrap();
        assert_eq!(&*r.carrier(cs.carrier.unwrap()).slug, "china_mobile");
        assert!(r.lookup("99999").is_none());
        assert_eq!(
            r.carrier_by_name("中国联通"),
            r.carrier_by_name("china_unicom")
        );
        assert_eq!(
            r.carrier_by_name("China Unicom"),
            r.carrier_by_name("CHINA_UNICOM")
        );
        assert!(r.carrier_by_name("china_unicom").is_some());
        assert!(r.carrier_by_name("acme").is_none());
    }

    #[test]
    fn explicit_layout_and_bad_rows() {
        let csv = "prefix,kind,carrier,region\n1380013,mobile,China Mobile (中国移动),Beijing\nxx,mobile,a,b\n139,alien,a,b\n";
        let mut d = Diagnostics::default();
        let r = NumberRanges::parse_csv("r.csv", csv.as_bytes(), &mut d);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r.lookup("13800138000").unwrap().region.as_deref(),
            Some("Beijing")
        );
        let errs: Vec<_> = d.errors().map(|e| e.pos.line).collect();
        assert_eq!(errs, vec![3, 4]);
    }

    #[test]
    fn slugs() {
        assert_eq!(carrier_slug("China Mobile (中国移动)"), "china_mobile");
        assert_eq!(carrier_slug("中国广电"), "中国广电");
        assert_eq!(carrier_slug("AT&T Wireless"), "at_t_wireless");
    }
}
