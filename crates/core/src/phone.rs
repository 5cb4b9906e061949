//! Phone numbers, normalised to the national dialled form used in mainland China.
//!
//! CDRs and API calls spell the same number many ways (`+86 138 0013 8000`, `0086138…`,
//! `17951138…`, `(010) 1234-5678`). Tariffs and the number-range table
//! (`cn_number_ranges.csv`, see `docs/cdr-formats.md` §5) match on **one** spelling: the number
//! *as dialled from mainland China*:
//!
//! | kind            | form                              | example          | E.164             |
//! |-----------------|-----------------------------------|------------------|-------------------|
//! | mobile          | 11 digits `1[3-9]…`               | `13800138000`    | `+8613800138000`  |
//! | fixed           | trunk `0` + area code + local     | `01012345678`    | `+861012345678`   |
//! | international   | IDD `00` + country code + number  | `0085212345678`  | `+85212345678`    |
//! | service         | as dialled                        | `10086`, `95588` | none              |
//! | other           | as dialled                        | `12345678`       | none              |
//!
//! [`PhoneNumber`] is used on the rating hot path (millions of numbers per second), so it never
//! allocates: the normalised form lives in an inline `[u8; MAX_NUMBER_LEN]` buffer and the type
//! is `Copy`. Parsing is a single pass over the bytes (no regex) and never panics.
//!
//! # Rules of [`PhoneNumber::parse_cn`], applied in order
//!
//! 1. **Clean-up.** Trim ASCII whitespace and remove the visual separators space, `-`, `.`, `(`
//!    and `)` anywhere. Nothing left → [`PhoneError::Empty`]. A single leading `+` is allowed.
//!    Any other character: if the string contains an ASCII letter, `*` or `#` (`voicemail`,
//!    `*100#`, SIP users) the trimmed string is kept unchanged with kind [`NumberKind::Other`],
//!    because such destinations are routed and rated as dialled; otherwise
//!    [`PhoneError::InvalidChar`] with the first offending character.
//! 2. **Carrier-selection / IP-dial prefixes** `17951`, `17911`, `17909`, `12593`, `10193` are
//!    stripped when what follows is at least 3 digits starting with `0`, or is an 11-digit mobile
//!    number (`1795113800138000` → `13800138000`, `17951008613800138000` → `13800138000`,
//!    `1795100852…` → `00852…`). They are not stripped otherwise (`17911` alone stays), and a
//!    string that is itself an 11-digit mobile number (`17951012345`) is never stripped, so that
//!    normalising is idempotent.
//! 3. **`+86…` / `0086…`** → the national number: an 11-digit mobile `1[3-9]d{9}` → mobile;
//!    otherwise a number starting with a non-zero digit gets the trunk `0` (`+861012345678` →
//!    `01012345678`, fixed); a redundant trunk zero is accepted (`+86010…` → `010…`,
//!    `+86 0138…` → `138…`). Anything else after the country code (nothing, `00…`) is kept as
//!    `0086…` with kind other.
//! 4. **`86` + an 11-digit mobile** (13 digits in total) → mobile.
//! 5. **International.** `+CC…` (CC ≠ 86) → `00CC…`; `00…` (not `0086`) is kept. Country codes
//!    never start with `0`, so `+0…` / `000…` are kind other. The length after the IDD prefix
//!    is not validated (E.164's 15-digit limit is not enforced), but the result must fit
//!    [`MAX_NUMBER_LEN`].
//! 6. **Trunk `0` + non-zero digit** → fixed, kept as is. One refinement: `0` followed by an
//!    11-digit mobile (`013800138000`, the old "dial 0 before an out-of-town mobile" habit) is
//!    the mobile number, because no area code starts with `01[3-9]`.
//! 7. **11 digits starting `1[3-9]`** → mobile.
//! 8. **Service / short codes**, kept as dialled with kind service: 3-digit `11x`/`12x`
//!    (110, 112, 114, 119, 120, 122), 5-digit `100xx` carrier codes (10086, 10010, 10000, 10099),
//!    5-digit `12xxx` hotlines, 5-digit `95xxx`, `950` + 7–8 digits, `96xxx(x)` (5–6 digits),
//!    `400`/`800` + 7 digits, `106…` SMS ports, `16[08]` + 5 digits premium rate.
//! 9. **Anything else** (e.g. a 7–8-digit local number without its area code) is kept as is
//!    with kind other: the area code has to come from the call's context, not from the number.
//!
//! **Length.** The *normalised* form must fit in [`MAX_NUMBER_LEN`] bytes, otherwise
//! [`PhoneError::TooLong`]; dialled prefixes that are stripped (`+`, `17951`, `0086`) do not
//! count against it.

use std::fmt;
use std::str::FromStr;

/// Longest normalised number (in bytes) a [`PhoneNumber`] can hold.
///
/// E.164 numbers have at most 15 digits; 32 leaves room for the `00` IDD prefix, over-long
/// numbers from foreign networks and SIP-ish strings kept as dialled, while keeping the type
/// small enough to copy freely on the rating hot path.
pub const MAX_NUMBER_LEN: usize = 32;

/// Scratch space for the digits of a dialled string before normalisation: prefixes such as
/// `17951 0086` are stripped afterwards, so the raw digits may be longer than the result.
const SCRATCH_LEN: usize = 2 * MAX_NUMBER_LEN;

/// Carrier-selection / IP-dial prefixes that are stripped before number analysis
/// (libphonenumber's CN `nationalPrefixForParsing`).
const IP_PREFIXES: [&[u8]; 5] = [b"17951", b"17911", b"17909", b"12593", b"10193"];
// `strip_ip_prefix` relies on it.
const _: () = {
    let mut i = 0;
    while i < IP_PREFIXES.len() {
        assert!(IP_PREFIXES[i][0] == b'1');
        i += 1;
    }
};

/// What a normalised number is, which decides how it is rated and whether it has an E.164 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// A mainland mobile number, 11 digits `1[3-9]…`.
    Mobile,
    /// A mainland fixed-line number: trunk `0` + area code + local number.
    Fixed,
    /// A number abroad (including Hong Kong, Macao and Taiwan): `00` + country code + number.
    International,
    /// An emergency, carrier, hotline, shared-cost, toll-free, premium or SMS service number,
    /// kept as dialled because it only has meaning inside the mainland network.
    Service,
    /// Anything that could not be classified (local numbers without area code, SIP users,
    /// USSD codes, [`PhoneNumber::raw`] strings), kept as dialled.
    Other,
}

/// A phone number in the national dialled form (see the [module docs](self)), stored inline.
///
/// `Copy` and allocation-free so the rating engine can pass numbers around by value. Invariant:
/// `buf[..len]` is valid UTF-8 and the bytes after `len` are zero, so the derived `PartialEq`
/// and `Hash` compare exactly the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    buf: [u8; MAX_NUMBER_LEN],
    len: u8,
    kind: NumberKind,
}

/// Why a dialled string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing left after trimming whitespace and separators.
    #[error("empty number")]
    Empty,
    /// The normalised number does not fit the inline buffer.
    #[error("number longer than {MAX_NUMBER_LEN} characters")]
    TooLong,
    /// A character that is neither a digit, a separator nor a leading `+`, in a string that does
    /// not look like a name or a USSD code (no letters, `*` or `#`).
    #[error("invalid character {0:?} in number")]
    InvalidChar(char),
}

impl PhoneNumber {
    /// Normalise a dialled string from a CDR or an API call.
    ///
    /// Returns the national dialled form as dialled from mainland China, following the rules in
    /// the [module docs](self), so that every spelling of a number matches the same tariff and
    /// number-range entries.
    pub fn parse_cn(dialled: &str) -> Result<PhoneNumber, PhoneError> {
        let s = dialled.trim_ascii();
        // The common case, a plain string of digits, needs no separator removal.
        if !s.is_empty() && s.len() <= SCRATCH_LEN && all_digits(s.as_bytes()) {
            return Self::from_digits(s.as_bytes());
        }
        let mut scratch = [0u8; SCRATCH_LEN];
        let mut n = 0usize;
        let mut plus = false;
        for (i, &b) in s.as_bytes().iter().enumerate() {
            match b {
                b'0'..=b'9' => {
                    let Some(slot) = scratch.get_mut(n) else {
                        return Err(PhoneError::TooLong);
                    };
                    *slot = b;
                    n += 1;
                }
                b' ' | b'-' | b'.' | b'(' | b')' => {}
                b'+' if n == 0 && !plus => plus = true,
                _ => return Self::not_numeric(s, i),
            }
        }
        let digits = scratch.get(..n).unwrap_or_default();
        if digits.is_empty() {
            return Err(PhoneError::Empty);
        }
        if plus {
            Self::from_plus(digits)
        } else {
            Self::from_digits(digits)
        }
    }

    /// [`PhoneNumber::parse_cn`] without the copy, for the common dialled string: digits only,
    /// whose national form is a slice of it (nothing to strip but a prefix, nothing to prepend).
    /// Returns that slice and its kind, exactly what `parse_cn` would hold; `None` when
    /// `parse_cn` is needed (separators, `+`, letters, a trunk zero to add, or an error).
    ///
    /// Rating normalises every callee; skipping the inline copy and the 34-byte result is a
    /// measurable part of its fixed cost.
    #[inline]
    pub fn parse_cn_borrowed(dialled: &str) -> Option<(&[u8], NumberKind)> {
        let s = dialled.trim_ascii();
        if s.is_empty() || s.len() > SCRATCH_LEN || !all_digits(s.as_bytes()) {
            return None;
        }
        match classify_digits(s.as_bytes()) {
            ([], body, kind) if body.len() <= MAX_NUMBER_LEN => Some((body, kind)),
            _ => None,
        }
    }

    /// Keep the string as it is (after trimming), kind Other — for tariffs that match numbers as
    /// dialled.
    pub fn raw(dialled: &str) -> Result<PhoneNumber, PhoneError> {
        Self::build(b"", Self::raw_borrowed(dialled)?, NumberKind::Other)
    }

    /// The bytes [`PhoneNumber::raw`] would hold, as a slice of `dialled` (same checks, no copy).
    #[inline]
    pub fn raw_borrowed(dialled: &str) -> Result<&[u8], PhoneError> {
        let s = dialled.trim_ascii();
        if s.is_empty() {
            return Err(PhoneError::Empty);
        }
        if s.len() > MAX_NUMBER_LEN {
            return Err(PhoneError::TooLong);
        }
        Ok(s.as_bytes())
    }

    /// The number's bytes (ASCII), without the UTF-8 check of [`PhoneNumber::as_str`].
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The national dialled form (or the raw form), e.g. `13800138000`, `01012345678`,
    /// `0085212345678`, `10086`.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..usize::from(self.len)).unwrap_or_default();
        // Always valid: built only from a `&str` or from ASCII digits.
        std::str::from_utf8(bytes).unwrap_or_default()
    }

    /// What kind of number this is, which decides how it is rated.
    pub fn kind(&self) -> NumberKind {
        self.kind
    }

    /// E.164 form (`+8613800138000`, `+861012345678`, `+85212345678`) written into `out`, or
    /// None for service/other numbers.
    ///
    /// The digits are *appended* to `out` (nothing is written when the result is `None`), so a
    /// caller on the hot path can reuse one buffer: `out.clear()` then `write_e164(&mut out)`.
    /// Service and other numbers have no E.164 form: they are only meaningful inside the
    /// mainland network or need context (the caller's area code) to be completed.
    pub fn write_e164(&self, out: &mut String) -> Option<()> {
        let s = self.as_str();
        let (cc, national) = match self.kind {
            NumberKind::Mobile => ("+86", s),
            NumberKind::Fixed => ("+86", s.strip_prefix('0')?),
            NumberKind::International => ("+", s.strip_prefix("00")?),
            NumberKind::Service | NumberKind::Other => return None,
        };
        out.reserve(cc.len() + national.len());
        out.push_str(cc);
        out.push_str(national);
        Some(())
    }

    /// Rule 1, a character that is not a digit, separator or leading `+` at byte `i` of the
    /// trimmed string `s`: pass names and USSD codes through, reject anything else.
    fn not_numeric(s: &str, i: usize) -> Result<PhoneNumber, PhoneError> {
        if s.bytes()
            .any(|b| b.is_ascii_alphabetic() || b == b'*' || b == b'#')
        {
            return Self::build(b"", s.as_bytes(), NumberKind::Other);
        }
        // Every byte before `i` is ASCII, so `i` is a character boundary.
        let c = s
            .get(i..)
            .and_then(|rest| rest.chars().next())
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        Err(PhoneError::InvalidChar(c))
    }

    /// Rules 3 and 5 for `+` followed by `digits`.
    fn from_plus(digits: &[u8]) -> Result<PhoneNumber, PhoneError> {
        match digits {
            [b'8', b'6', rest @ ..] => Self::from_cn_national(rest),
            [b'1'..=b'9', ..] => Self::build(b"00", digits, NumberKind::International),
            _ => Self::build(b"00", digits, NumberKind::Other),
        }
    }

    /// Rules 2 to 9 for a string of digits dialled without `+`.
    fn from_digits(digits: &[u8]) -> Result<PhoneNumber, PhoneError> {
        let (prefix, body, kind) = classify_digits(digits);
        Self::build(prefix, body, kind)
    }

    /// Rule 3: `rest` is what follows the country code 86 (after `+86` or `0086`).
    fn from_cn_national(rest: &[u8]) -> Result<PhoneNumber, PhoneError> {
        let (prefix, body, kind) = classify_cn_national(rest);
        Self::build(prefix, body, kind)
    }

    /// Store `prefix` + `body` inline; the zeroed tail keeps the derived `Eq`/`Hash` exact.
    fn build(prefix: &[u8], body: &[u8], kind: NumberKind) -> Result<PhoneNumber, PhoneError> {
        let len = prefix.len() + body.len();
        let Ok(len_u8) = u8::try_from(len) else {
            return Err(PhoneError::TooLong);
        };
        if len > MAX_NUMBER_LEN {
            return Err(PhoneError::TooLong);
        }
        let mut buf = [0u8; MAX_NUMBER_LEN];
        // In bounds: `prefix.len() <= len <= MAX_NUMBER_LEN`, checked above.
        buf[..prefix.len()].copy_from_slice(prefix);
        buf[prefix.len()..len].copy_from_slice(body);
        Ok(PhoneNumber {
            buf,
            len: len_u8,
            kind,
        })
    }
}

/// Whether every byte is an ASCII digit, eight bytes per step: every rated callee is checked,
/// and a byte-by-byte test was a measurable share of normalising it.
#[inline]
pub fn all_digits(s: &[u8]) -> bool {
    /// A byte is a digit when its high nibble is 3 and adding 6 does not carry out of its low
    /// nibble (a carry between bytes only comes from a byte that already fails the first test).
    #[inline]
    fn eight(b: &[u8; 8]) -> bool {
        const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
        let w = u64::from_le_bytes(*b);
        (w & HIGH) | ((w.wrapping_add(0x0606_0606_0606_0606) & HIGH) >> 4) == 0x3333_3333_3333_3333
    }
    match (s.first_chunk::<8>(), s.last_chunk::<8>()) {
        // 8 to 16 bytes (every national and international number): two overlapping words.
        (Some(head), Some(tail)) if s.len() <= 16 => eight(head) && eight(tail),
        (Some(_), Some(tail)) => {
            let (words, _) = s.as_chunks::<8>();
            words.iter().all(eight) && eight(tail)
        }
        _ => s.iter().all(u8::is_ascii_digit),
    }
}

/// Rules 2 to 9 for a string of digits dialled without `+`: the normalised number is
/// `prefix` + `body`, where `body` is a slice of `digits`.
#[inline]
fn classify_digits(digits: &[u8]) -> (&'static [u8], &[u8], NumberKind) {
    // The most common callee first: a mobile number is kept as it is (no IP-dial prefix is
    // stripped from it, and every rule below that could apply starts with `0` or `8`).
    if is_mobile(digits) {
        return (b"", digits, NumberKind::Mobile);
    }
    let d = strip_ip_prefix(digits);
    match d {
        [b'0', b'0', b'8', b'6', rest @ ..] => classify_cn_national(rest),
        [b'8', b'6', rest @ ..] if is_mobile(rest) => (b"", rest, NumberKind::Mobile),
        [b'0', b'0', b'1'..=b'9', ..] => (b"", d, NumberKind::International),
        [b'0', b'0', ..] => (b"", d, NumberKind::Other),
        [b'0', rest @ ..] if is_mobile(rest) => (b"", rest, NumberKind::Mobile),
        [b'0', b'1'..=b'9', ..] => (b"", d, NumberKind::Fixed),
        _ if is_mobile(d) => (b"", d, NumberKind::Mobile),
        _ if is_service(d) => (b"", d, NumberKind::Service),
        _ => (b"", d, NumberKind::Other),
    }
}

/// Rule 3: `rest` is what follows the country code 86 (after `+86` or `0086`).
fn classify_cn_national(rest: &[u8]) -> (&'static [u8], &[u8], NumberKind) {
    match rest {
        _ if is_mobile(rest) => (b"", rest, NumberKind::Mobile),
        [b'1'..=b'9', ..] => (b"0", rest, NumberKind::Fixed),
        // Redundant trunk zero: `+86 (0)10 …`, `+86 0138…`.
        [b'0', national @ ..] if is_mobile(national) => (b"", national, NumberKind::Mobile),
        [b'0', b'1'..=b'9', ..] => (b"", rest, NumberKind::Fixed),
        // `+86` alone, `+86 00…`: not a mainland number; keep what was dialled.
        _ => (b"0086", rest, NumberKind::Other),
    }
}

/// `1[3-9]` followed by 9 more digits (the caller guarantees all bytes are ASCII digits).
fn is_mobile(d: &[u8]) -> bool {
    d.len() == 11 && matches!(d, [b'1', b'3'..=b'9', ..])
}

/// Rule 2: strip one carrier-selection / IP-dial prefix if a dialable number follows it.
fn strip_ip_prefix(d: &[u8]) -> &[u8] {
    if is_mobile(d) {
        // `17951012345` is (syntactically) a mobile number; normalised mobiles must parse back
        // to themselves.
        return d;
    }
    // Every IP-dial prefix starts with `1`: numbers that do not (fixed lines, international)
    // skip the comparisons.
    if d.first() != Some(&b'1') {
        return d;
    }
    for prefix in IP_PREFIXES {
        if let Some(rest) = d.strip_prefix(prefix)
            && ((rest.len() >= 3 && rest.first() == Some(&b'0')) || is_mobile(rest))
        {
            return rest;
        }
    }
    d
}

/// Rule 8: short codes and service numbers kept as dialled.
fn is_service(d: &[u8]) -> bool {
    let by_length = match d.len() {
        3 => matches!(d, [b'1', b'1' | b'2', _]),
        5 => matches!(
            d,
            [b'1', b'0', b'0', ..] | [b'1', b'2', ..] | [b'9', b'5', ..] | [b'9', b'6', ..]
        ),
        6 => matches!(d, [b'9', b'6', ..]),
        8 => matches!(d, [b'1', b'6', b'0' | b'8', ..]),
        10 => matches!(
            d,
            [b'4', b'0', b'0', ..] | [b'8', b'0', b'0', ..] | [b'9', b'5', b'0', ..]
        ),
        11 => matches!(d, [b'9', b'5', b'0', ..]),
        _ => false,
    };
    by_length || (d.len() > 3 && d.starts_with(b"106"))
}

impl fmt::Display for PhoneNumber {
    /// Writes the national dialled form, the key tariffs and number ranges match on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhoneNumber {
    type Err = PhoneError;

    /// Same as [`PhoneNumber::parse_cn`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse_cn(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use NumberKind::{Fixed, International, Mobile, Other, Service};
    use proptest::prelude::*;

    fn e164(p: &PhoneNumber) -> Option<String> {
        let mut out = String::new();
        p.write_e164(&mut out).map(|()| out)
    }

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, NumberKind, Option<&str>)] = &[
            // Rule 7: plain mobile, with separators and whitespace (rule 1).
            ("13800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("138-0013-8000", "13800138000", Mobile, Some("+8613800138000")),
            ("138.0013.8000", "13800138000", Mobile, Some("+8613800138000")),
            (" \t13800138000\r\n", "13800138000", Mobile, Some("+8613800138000")),
            ("(138) 0013 8000", "13800138000", Mobile, Some("+8613800138000")),
            ("19912345678", "19912345678", Mobile, Some("+8619912345678")),
            // Rule 3: +86 / 0086.
            ("+8613800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("+86 138 0013 8000", "13800138000", Mobile, Some("+8613800138000")),
            ("0086 13800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("+861012345678", "01012345678", Fixed, Some("+861012345678")),
            ("+86 755 1234 5678", "075512345678", Fixed, Some("+8675512345678")),
            ("0086 21 1234 5678", "02112345678", Fixed, Some("+862112345678")),
            ("+86 (0)10 1234 5678", "01012345678", Fixed, Some("+861012345678")),
            ("+86010 12345678", "01012345678", Fixed, Some("+861012345678")),
            ("+86 013800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("+86", "0086", Other, None),
            ("+86 00852 1234", "0086008521234", Other, None),
            // Rule 4: 86 + mobile.
            ("8613800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("861012345678", "861012345678", Other, None),
            // Rule 2: IP-dial / carrier-selection prefixes.
            ("1795113800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("17951008613800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("17951 00852 2345 6789", "0085223456789", International, Some("+85223456789")),
            ("17911 010 12345678", "01012345678", Fixed, Some("+861012345678")),
            ("17909075512345678", "075512345678", Fixed, Some("+8675512345678")),
            ("12593 0086 10 12345678", "01012345678", Fixed, Some("+861012345678")),
            ("1019313912345678", "13912345678", Mobile, Some("+8613912345678")),
            ("17911", "17911", Other, None),
            ("1795100", "1795100", Other, None),
            ("17951 12345678", "1795112345678", Other, None),
            ("17951012345", "17951012345", Mobile, Some("+8617951012345")),
            // Rule 5: international.
            ("0085212345678", "0085212345678", International, Some("+85212345678")),
            ("+852 1234 5678", "0085212345678", International, Some("+85212345678")),
            ("+853 2812 3456", "0085328123456", International, Some("+85328123456")),
            ("+886 912 345 678", "00886912345678", International, Some("+886912345678")),
            ("+39 06 1234 5678", "00390612345678", International, Some("+390612345678")),
            ("+1 (650) 253-0000", "0016502530000", International, Some("+16502530000")),
            ("00 44 20 7946 0000", "00442079460000", International, Some("+442079460000")),
            ("+49 1234 5678 9012 3456 78", "0049123456789012345678", International,
                Some("+49123456789012345678")),
            ("+0123", "000123", Other, None),
            ("00", "00", Other, None),
            // Rule 6: trunk 0 + area code.
            ("01012345678", "01012345678", Fixed, Some("+861012345678")),
            ("(010) 1234 5678", "01012345678", Fixed, Some("+861012345678")),
            ("0755-1234567", "07551234567", Fixed, Some("+867551234567")),
            ("013800138000", "13800138000", Mobile, Some("+8613800138000")),
            ("0", "0", Other, None),
            // Rule 8: service numbers.
            ("110", "110", Service, None),
            ("112", "112", Service, None),
            ("114", "114", Service, None),
            ("119", "119", Service, None),
            ("120", "120", Service, None),
            ("122", "122", Service, None),
            ("10086", "10086", Service, None),
            ("10010", "10010", Service, None),
            ("10000", "10000", Service, None),
            ("10099", "10099", Service, None),
            ("12345", "12345", Service, None),
            ("12315", "12315", Service, None),
            ("12593", "12593", Service, None),
            ("95588", "95588", Service, None),
            ("9501234567", "9501234567", Service, None),
            ("95012345678", "95012345678", Service, None),
            ("96110", "96110", Service, None),
            ("961234", "961234", Service, None),
            ("400-123-4567", "4001234567", Service, None),
            ("800 810 8888", "8008108888", Service, None),
            ("10690000", "10690000", Service, None),
            ("1065502012345678", "1065502012345678", Service, None),
            ("16012345", "16012345", Service, None),
            ("16812345", "16812345", Service, None),
            // Rule 9: other.
            ("12345678", "12345678", Other, None),
            ("1234567", "1234567", Other, None),
            ("100", "100", Other, None),
            ("1380013800", "1380013800", Other, None),
            ("12012345678", "12012345678", Other, None),
            ("4001234", "4001234", Other, None),
            // Rule 1: names and USSD codes pass through unchanged.
            ("voicemail", "voicemail", Other, None),
            ("*100#", "*100#", Other, None),
            (" *#06# ", "*#06#", Other, None),
            ("sip:alice@example.com", "sip:alice@example.com", Other, None),
            ("alice.smith-(home)", "alice.smith-(home)", Other, None),
            ("13800138000#", "13800138000#", Other, None),
            // Longest accepted number.
            ("+123456789012345678901234567890", "00123456789012345678901234567890",
                International, Some("+123456789012345678901234567890")),
        ];
        assert!(cases.len() >= 40);
        for &(input, want, kind, want_e164) in cases {
            let p = PhoneNumber::parse_cn(input)
                .unwrap_or_else(|e| panic!("{input:?} should parse, got {e}"));
            assert_eq!(p.as_str(), want, "as_str of {input:?}");
            assert_eq!(p.kind(), kind, "kind of {input:?}");
            assert_eq!(e164(&p).as_deref(), want_e164, "e164 of {input:?}");
            assert_eq!(p.to_string(), want, "Display of {input:?}");
            assert_eq!(input.parse::<PhoneNumber>(), Ok(p), "FromStr of {input:?}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&str, PhoneError)] = &[
            ("", PhoneError::Empty),
            ("   \t ", PhoneError::Empty),
            ("--()..", PhoneError::Empty),
            ("+", PhoneError::Empty),
            ("13800¥", PhoneError::InvalidChar('¥')),
            ("１３８００１３８０００", PhoneError::InvalidChar('１')),
            ("138\t0013", PhoneError::InvalidChar('\t')),
            ("138/0013", PhoneError::InvalidChar('/')),
            ("++86138", PhoneError::InvalidChar('+')),
            ("86+138", PhoneError::InvalidChar('+')),
            ("138,0013", PhoneError::InvalidChar(',')),
            // 33 digits.
            ("123456789012345678901234567890123", PhoneError::TooLong),
            // 31 digits after `+` become 33 with `00`.
            ("+1234567890123456789012345678901", PhoneError::TooLong),
            // A pass-through name longer than 32 bytes.
            ("sip:a-very-long-user-name@example.com", PhoneError::TooLong),
            // Far more digits than the scratch buffer.
            (&"1".repeat(1000), PhoneError::TooLong),
        ];
        for (input, want) in cases {
            assert_eq!(
                PhoneNumber::parse_cn(input).as_ref(),
                Err(want),
                "{input:?}"
            );
        }
    }

    #[test]
    fn ip_prefix_does_not_count_against_the_length() {
        // 5 + 2 + 30 digits dialled, 32 stored.
        let dialled = format!("17951 00 {}", "4".repeat(30));
        let p = PhoneNumber::parse_cn(&dialled).unwrap();
        assert_eq!(p.as_str().len(), MAX_NUMBER_LEN);
        assert_eq!(p.kind(), International);
    }

    #[test]
    fn error_messages() {
        assert_eq!(PhoneError::Empty.to_string(), "empty number");
        assert_eq!(
            PhoneError::TooLong.to_string(),
            "number longer than 32 characters"
        );
        assert_eq!(
            PhoneError::InvalidChar('¥').to_string(),
            "invalid character '¥' in number"
        );
    }

    #[test]
    fn raw_keeps_the_string() {
        let p = PhoneNumber::raw("  +86 138-0013-8000 ").unwrap();
        assert_eq!(p.as_str(), "+86 138-0013-8000");
        assert_eq!(p.kind(), Other);
        assert_eq!(e164(&p), None);
        assert_eq!(PhoneNumber::raw("13800¥").unwrap().as_str(), "13800¥");
        assert_eq!(PhoneNumber::raw(" \n"), Err(PhoneError::Empty));
        assert_eq!(PhoneNumber::raw(&"1".repeat(33)), Err(PhoneError::TooLong));
        assert_eq!(
            PhoneNumber::raw(&"1".repeat(32)).unwrap().as_str().len(),
            32
        );
        // The borrowed form holds the same bytes and refuses the same input.
        for s in [
            "  +86 138-0013-8000 ",
            "13800¥",
            " \n",
            &"1".repeat(33),
            &"1".repeat(32),
        ] {
            assert_eq!(
                PhoneNumber::raw_borrowed(s),
                PhoneNumber::raw(s)
                    .as_ref()
                    .map(|p| p.as_bytes())
                    .map_err(|e| e.clone())
            );
        }
        // Same digits, different kind: not equal.
        assert_ne!(
            PhoneNumber::raw("13800138000").unwrap(),
            PhoneNumber::parse_cn("13800138000").unwrap()
        );
    }

    #[test]
    fn write_e164_appends_and_leaves_out_alone_on_none() {
        let mut out = String::from("x");
        assert_eq!(
            PhoneNumber::parse_cn("10086").unwrap().write_e164(&mut out),
            None
        );
        assert_eq!(out, "x");
        out.clear();
        let p = PhoneNumber::parse_cn("0085212345678").unwrap();
        assert_eq!(p.write_e164(&mut out), Some(()));
        assert_eq!(out, "+85212345678");
    }

    #[test]
    fn equal_spellings_are_equal_values() {
        let a = PhoneNumber::parse_cn("+86 138 0013 8000").unwrap();
        let b = PhoneNumber::parse_cn("1795100861380013-8000").unwrap();
        assert_eq!(a, b);
        let mut set = std::collections::HashSet::new();
        set.insert(a);
        assert!(set.contains(&b));
        assert!(std::mem::size_of::<PhoneNumber>() <= MAX_NUMBER_LEN + 2);
    }

    fn check_idempotent(input: &str) -> Result<(), TestCaseError> {
        if let Ok(p) = PhoneNumber::parse_cn(input) {
            prop_assert!(!p.as_str().is_empty());
            prop_assert!(p.as_str().len() <= MAX_NUMBER_LEN);
            let again = PhoneNumber::parse_cn(p.as_str());
            prop_assert_eq!(again, Ok(p), "{:?} -> {:?}", input, p.as_str());
            let mut out = String::new();
            let has_e164 = p.write_e164(&mut out).is_some();
            prop_assert_eq!(
                has_e164,
                matches!(p.kind(), Mobile | Fixed | International),
                "{:?}",
                p
            );
            if has_e164 {
                prop_assert!(out.starts_with('+'));
                prop_assert!(out[1..].bytes().all(|b| b.is_ascii_digit()));
            }
        }
        Ok(())
    }

    /// Dialled-looking strings: a prefix that exercises the rules, then digits and separators.
    fn dialled() -> impl Strategy<Value = String> {
        let prefix = prop_oneof![
            Just(""),
            Just("+"),
            Just("+86"),
            Just("+860"),
            Just("0086"),
            Just("86"),
            Just("00"),
            Just("0"),
            Just("17951"),
            Just("1795100"),
            Just("179510086"),
            Just("12593"),
            Just("10193"),
            Just("17909 0"),
            Just("1"),
            Just("13"),
            Just("95"),
            Just("400"),
        ];
        (prefix, "[0-9 ()+.-]{0,36}").prop_map(|(p, rest)| format!("{p}{rest}"))
    }

    proptest! {
        #[test]
        fn all_digits_agrees_with_the_byte_test(bytes in proptest::collection::vec(any::<u8>(), 0..40), digits in "[0-9]{0,40}", pos in any::<usize>(), b in any::<u8>()) {
            prop_assert_eq!(all_digits(&bytes), bytes.iter().all(u8::is_ascii_digit));
            // Digit strings with at most one byte changed: the near misses (`/`, `:`, 0xB0..).
            let mut d = digits.into_bytes();
            prop_assert!(all_digits(&d));
            if !d.is_empty() {
                let i = pos % d.len();
                d[i] = b;
                prop_assert_eq!(all_digits(&d), d.iter().all(u8::is_ascii_digit));
            }
        }

        #[test]
        fn never_panics_and_is_idempotent(input in any::<String>()) {
            check_idempotent(&input)?;
        }

        #[test]
        fn dialled_strings_are_idempotent(input in dialled()) {
            check_idempotent(&input)?;
        }

        #[test]
        fn separators_do_not_matter(digits in "[0-9]{1,20}", plus in any::<bool>()) {
            let plain = format!("{}{digits}", if plus { "+" } else { "" });
            let mut spaced = String::from(if plus { "( +" } else { "(" });
            for (i, c) in digits.chars().enumerate() {
                spaced.push(c);
                spaced.push(['-', ' ', '.', ')'][i % 4]);
            }
            prop_assert_eq!(PhoneNumber::parse_cn(&plain), PhoneNumber::parse_cn(&spaced));
        }

        #[test]
        fn borrowed_form_is_parse_cn(input in prop_oneof![dialled(), "[0-9]{0,70}", " ?(0086|86|00|0|17951|1[3-9])[0-9]{0,14} ?"]) {
            check_borrowed(&input)?;
        }
    }

    /// Whenever `parse_cn_borrowed` answers, it is what `parse_cn` holds.
    fn check_borrowed(input: &str) -> Result<(), TestCaseError> {
        if let Some((bytes, kind)) = PhoneNumber::parse_cn_borrowed(input) {
            let n = PhoneNumber::parse_cn(input);
            prop_assert!(n.is_ok(), "{input:?}: {n:?}");
            if let Ok(n) = n {
                prop_assert_eq!(n.as_bytes(), bytes);
                prop_assert_eq!(n.kind(), kind);
            }
        }
        Ok(())
    }

    #[test]
    fn borrowed_form_covers_plain_digits() {
        for (input, national) in [
            ("13800138000", Some("13800138000")),
            (" 8613800138000", Some("13800138000")),
            ("01012345678", Some("01012345678")),
            ("0085212345678", Some("0085212345678")),
            ("17951013800138000", Some("13800138000")),
            ("10086", Some("10086")),
            ("00861012345678", None), // a trunk zero is prepended: parse_cn copies
            ("+8613800138000", None),
            ("138 0013 8000", None),
        ] {
            let got = PhoneNumber::parse_cn_borrowed(input).map(|(b, _)| b);
            assert_eq!(got, national.map(str::as_bytes), "{input}");
            check_borrowed(input).unwrap();
        }
    }
}
