//! The PRECIS OpaqueString profile (RFC 8265 §4.2) over the FreeformClass
//! (RFC 8264 §4.3), implemented here with current Unicode tables.
//!
//! RFC 7622 §3.4 prepares resourceparts with OpaqueString. The `precis-core`
//! 0.1 tables stop at Unicode 6.3, which rejects every emoji assigned since
//! (🦀, 🤔, 🥰, …) as unassigned; resources and MUC nicknames with such emoji
//! are common, so this module derives the PRECIS properties itself from
//! `unicode-general-category` (General_Category) and `unicode-normalization`
//! (NFC, NFKC, Canonical_Combining_Class).
//!
//! Enforcement (RFC 8265 §4.2.2, RFC 8264 §7):
//!
//! 1. width mapping: none;
//! 2. additional mapping: non-ASCII space separators (`Zs`) become U+0020;
//! 3. case mapping: none;
//! 4. normalisation: NFC;
//! 5. directionality: none;
//!
//! then every code point must be PVALID or FREE_PVAL in the FreeformClass,
//! CONTEXTJ/CONTEXTO code points must satisfy their RFC 5892 Appendix A
//! rule, and the result must not be empty.
//!
//! The derived property follows RFC 8264 §8 in order: Exceptions (RFC 5892
//! §2.6), Unassigned, ASCII7, JoinControl (CONTEXTJ), OldHangulJamo,
//! PrecisIgnorableProperties (Default_Ignorable_Code_Point or
//! Noncharacter_Code_Point), Controls (all DISALLOWED), then HasCompat,
//! letters/digits/marks, other letters/numbers, spaces, symbols and
//! punctuation (all allowed in the FreeformClass); everything else (`Cf`,
//! `Co`, `Zl`, `Zp`) is DISALLOWED.
//!
//! Approximations (no Script or Joining_Type tables are available):
//!
//! * The Script tests of the CONTEXTO rules (Greek keraia, Hebrew
//!   geresh/gershayim, katakana middle dot) use hand-listed script ranges.
//! * The Joining_Type regular expression of the ZERO WIDTH NON-JOINER rule
//!   treats letters in the cursive-joining script blocks as dual-joining,
//!   except a hand-listed set of right-joining Arabic and Syriac letters and
//!   a few non-joining ones, and treats `Mn`/`Me` as transparent. The virama
//!   part of both CONTEXTJ rules is exact.
//!
//! Deliberate deviations from RFC 8264, so that emoji work:
//!
//! * U+200D ZERO WIDTH JOINER is also allowed between an emoji-ish code point
//!   (`So`/`Sk`, or an allowed U+FE0E/U+FE0F that follows one) and an `So`
//!   code point, which covers emoji ZWJ sequences such as 👩‍💻, 🏳️‍🌈 and
//!   🫱🏻‍🫲🏼. (RFC 5892 only allows it after a virama.)
//! * U+FE0E/U+FE0F (text/emoji presentation selectors) are
//!   Default_Ignorable and thus DISALLOWED by RFC 8264, but are allowed
//!   directly after a symbol (`Sm`/`Sc`/`Sk`/`So`) or one of the other
//!   emoji variation bases (`#`, `*`, ASCII digits for keycaps, U+203C,
//!   U+2049, U+2139, U+3030, U+303D). Other variation selectors stay
//!   DISALLOWED.
//! * Tag characters are allowed only as the three RGI subdivision flags
//!   (🏴 + `gbeng`/`gbsct`/`gbwls` + CANCEL TAG), so they cannot carry
//!   arbitrary invisible text.

use std::fmt;

use unicode_general_category::{get_general_category, GeneralCategory as Gc};
use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::UnicodeNormalization;

/// Why a string fails OpaqueString enforcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpaqueError {
    /// The string is empty.
    Empty,
    /// A code point is not allowed (in its context).
    Disallowed {
        /// The offending code point (after mapping and NFC).
        cp: char,
        /// Which rule rejected it.
        why: &'static str,
    },
}

impl fmt::Display for OpaqueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpaqueError::Empty => f.write_str("empty string"),
            OpaqueError::Disallowed { cp, why } => {
                write!(f, "code point U+{:04X} is {why}", u32::from(*cp))
            }
        }
    }
}

/// Apply the OpaqueString profile: map, normalise, then validate.
pub(crate) fn enforce(s: &str) -> Result<String, OpaqueError> {
    if s.is_empty() {
        return Err(OpaqueError::Empty);
    }
    // Printable ASCII is PVALID (or U+0020, FREE_PVAL) and NFC-stable.
    if s.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Ok(s.to_owned());
    }
    let out: String = s
        .chars()
        .map(|c| {
            if c != ' ' && get_general_category(c) == Gc::SpaceSeparator {
                ' '
            } else {
                c
            }
        })
        .nfc()
        .collect();
    if out.is_empty() {
        return Err(OpaqueError::Empty);
    }
    validate(&out)?;
    Ok(out)
}

/// The FreeformClass property of one code point, before context rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    /// PVALID or FREE_PVAL.
    Valid,
    /// CONTEXTJ (U+200C, U+200D).
    ContextJ,
    /// CONTEXTO (RFC 5892 §2.6 exceptions).
    ContextO,
    /// Default_Ignorable or noncharacter: DISALLOWED, but some are let
    /// through by the emoji deviations.
    Ignorable,
    /// DISALLOWED or UNASSIGNED.
    Disallowed(&'static str),
}

/// RFC 5892 §2.6 Exceptions (F), applied first by RFC 8264 §8.
fn exception(c: char) -> Option<Prop> {
    Some(match u32::from(c) {
        0x00DF | 0x03C2 | 0x06FD | 0x06FE | 0x0F0B | 0x3007 => Prop::Valid,
        0x00B7 | 0x0375 | 0x05F3 | 0x05F4 | 0x30FB | 0x0660..=0x0669 | 0x06F0..=0x06F9 => {
            Prop::ContextO
        }
        0x0640 | 0x07FA | 0x302E | 0x302F | 0x3031..=0x3035 | 0x303B => {
            Prop::Disallowed("disallowed by the IDNA2008 exceptions")
        }
        _ => return None,
    })
}

/// Default_Ignorable_Code_Point, from Unicode 16.0 DerivedCoreProperties.txt
/// (it is stable: code points are not removed from it).
const DEFAULT_IGNORABLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// Hangul_Syllable_Type L, V or T (RFC 5892 OldHangulJamo, RFC 8264 §9.9),
/// from Unicode 16.0 HangulSyllableType.txt.
const OLD_HANGUL_JAMO: &[(u32, u32)] = &[
    (0x1100, 0x11FF),
    (0xA960, 0xA97C),
    (0xD7B0, 0xD7C6),
    (0xD7CB, 0xD7FB),
];

fn in_ranges(c: char, ranges: &[(u32, u32)]) -> bool {
    let c = u32::from(c);
    ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

fn is_noncharacter(c: char) -> bool {
    let c = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&c) || c & 0xFFFE == 0xFFFE
}

/// toNFKC(cp) != cp (RFC 8264 §9.17).
fn has_compat(c: char) -> bool {
    std::iter::once(c).nfkc().ne(std::iter::once(c))
}

/// The FreeformClass derived property (RFC 8264 §8).
fn property(c: char) -> Prop {
    if let Some(p) = exception(c) {
        return p;
    }
    // BackwardCompatible (G) is empty.
    let gc = get_general_category(c);
    if gc == Gc::Unassigned && !is_noncharacter(c) {
        return Prop::Disallowed("unassigned");
    }
    if ('\u{21}'..='\u{7E}').contains(&c) {
        return Prop::Valid;
    }
    if c == '\u{200C}' || c == '\u{200D}' {
        return Prop::ContextJ;
    }
    if in_ranges(c, OLD_HANGUL_JAMO) {
        return Prop::Disallowed("an old Hangul jamo");
    }
    if in_ranges(c, DEFAULT_IGNORABLE) || is_noncharacter(c) {
        return Prop::Ignorable;
    }
    if gc == Gc::Control {
        return Prop::Disallowed("a control character");
    }
    match gc {
        // LetterDigits (A), OtherLetterDigits (R), Spaces (N), Symbols (O),
        // Punctuation (Q): PVALID or FREE_PVAL in the FreeformClass.
        Gc::LowercaseLetter
        | Gc::UppercaseLetter
        | Gc::OtherLetter
        | Gc::DecimalNumber
        | Gc::ModifierLetter
        | Gc::NonspacingMark
        | Gc::SpacingMark
        | Gc::TitlecaseLetter
        | Gc::LetterNumber
        | Gc::OtherNumber
        | Gc::EnclosingMark
        | Gc::SpaceSeparator
        | Gc::MathSymbol
        | Gc::CurrencySymbol
        | Gc::ModifierSymbol
        | Gc::OtherSymbol
        | Gc::ConnectorPunctuation
        | Gc::DashPunctuation
        | Gc::OpenPunctuation
        | Gc::ClosePunctuation
        | Gc::InitialPunctuation
        | Gc::FinalPunctuation
        | Gc::OtherPunctuation => Prop::Valid,
        // HasCompat (P) is FREE_PVAL whatever the category; it is checked
        // before the categories in RFC 8264 §8 but only matters here.
        _ if has_compat(c) => Prop::Valid,
        _ => Prop::Disallowed("not in the FreeformClass"),
    }
}

fn validate(s: &str) -> Result<(), OpaqueError> {
    let cps: Vec<char> = s.chars().collect();
    let tags_ok = rgi_tag_positions(&cps);
    for (i, &c) in cps.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| cps[j]);
        let next = cps.get(i + 1).copied();
        let why = match property(c) {
            Prop::Valid => continue,
            Prop::Disallowed(why) => why,
            Prop::ContextJ => {
                if contextj_ok(&cps, i) {
                    continue;
                }
                "a joiner outside its allowed context"
            }
            Prop::ContextO => {
                if contexto_ok(&cps, c, prev, next) {
                    continue;
                }
                "outside its allowed context"
            }
            Prop::Ignorable => {
                if is_presentation_selector(c) && prev.is_some_and(is_variation_base) {
                    continue;
                }
                if tags_ok.contains(&i) {
                    continue;
                }
                "default-ignorable or a noncharacter"
            }
        };
        return Err(OpaqueError::Disallowed { cp: c, why });
    }
    Ok(())
}

fn is_presentation_selector(c: char) -> bool {
    c == '\u{FE0E}' || c == '\u{FE0F}'
}

/// Bases after which U+FE0E/U+FE0F are accepted (emoji deviation).
fn is_variation_base(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::MathSymbol | Gc::CurrencySymbol | Gc::ModifierSymbol | Gc::OtherSymbol
    ) || matches!(
        c,
        '#' | '*' | '0'..='9' | '\u{203C}' | '\u{2049}' | '\u{2139}' | '\u{3030}' | '\u{303D}'
    )
}

/// Indices of tag characters forming an RGI subdivision flag (emoji
/// deviation): U+1F3F4, tag letters `gbeng`/`gbsct`/`gbwls`, U+E007F.
fn rgi_tag_positions(cps: &[char]) -> Vec<usize> {
    const FLAGS: [&str; 3] = ["gbeng", "gbsct", "gbwls"];
    let mut ok = Vec::new();
    for (i, _) in cps.iter().enumerate().filter(|(_, &c)| c == '\u{1F3F4}') {
        for flag in FLAGS {
            let end = i + 1 + flag.len();
            if cps.get(end) != Some(&'\u{E007F}') {
                continue;
            }
            let matches = flag
                .bytes()
                .zip(&cps[i + 1..end])
                .all(|(b, &t)| u32::from(t) == 0xE0000 + u32::from(b));
            if matches {
                ok.extend(i + 1..=end);
            }
        }
    }
    ok
}

/// RFC 5892 Appendix A.1/A.2, plus the emoji ZWJ deviation.
fn contextj_ok(cps: &[char], i: usize) -> bool {
    let Some(before) = i.checked_sub(1).map(|j| cps[j]) else {
        return false;
    };
    // Canonical_Combining_Class(Before(cp)) == Virama.
    if canonical_combining_class(before) == 9 {
        return true;
    }
    if cps[i] == '\u{200D}' {
        let emoji_before = matches!(
            get_general_category(before),
            Gc::OtherSymbol | Gc::ModifierSymbol
        ) || is_presentation_selector(before);
        let emoji_after = cps
            .get(i + 1)
            .is_some_and(|&c| get_general_category(c) == Gc::OtherSymbol);
        return emoji_before && emoji_after;
    }
    // ZWNJ: (Joining_Type:{L,D})(Joining_Type:T)*\u200C
    //       (Joining_Type:T)*(Joining_Type:{R,D}), approximated.
    let left = cps[..i].iter().rev().find(|&&c| !is_transparent(c));
    let right = cps[i + 1..].iter().find(|&&c| !is_transparent(c));
    left.is_some_and(|&c| is_joining_letter(c) && !in_ranges(c, RIGHT_JOINING))
        && right.is_some_and(|&c| is_joining_letter(c))
}

/// Approximates Joining_Type T.
fn is_transparent(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::NonspacingMark | Gc::EnclosingMark
    )
}

/// Blocks of the cursive-joining scripts (Arabic, Syriac, NKo, Mandaic,
/// Mongolian, Phags-pa, Manichaean, Psalter Pahlavi, Hanifi Rohingya,
/// Sogdian, Old Uyghur, Chorasmian, Adlam).
const JOINING_BLOCKS: &[(u32, u32)] = &[
    (0x0620, 0x08FF),
    (0x1800, 0x18AF),
    (0xA840, 0xA87F),
    (0x10AC0, 0x10AFF),
    (0x10B80, 0x10BAF),
    (0x10D00, 0x10D3F),
    (0x10F30, 0x10FDF),
    (0x1E900, 0x1E95F),
];

/// Non-joining (Joining_Type U) letters in those blocks.
const NON_JOINING: &[(u32, u32)] = &[(0x0621, 0x0621), (0x0674, 0x0674), (0x1880, 0x1884)];

/// Right-joining (Joining_Type R) Arabic and Syriac letters, from
/// ArabicShaping.txt.
const RIGHT_JOINING: &[(u32, u32)] = &[
    (0x0622, 0x0625),
    (0x0627, 0x0627),
    (0x0629, 0x0629),
    (0x062F, 0x0632),
    (0x0648, 0x0648),
    (0x0671, 0x0673),
    (0x0675, 0x0677),
    (0x0688, 0x0699),
    (0x06C0, 0x06C0),
    (0x06C3, 0x06CB),
    (0x06CD, 0x06CD),
    (0x06CF, 0x06CF),
    (0x06D2, 0x06D3),
    (0x06D5, 0x06D5),
    (0x06EE, 0x06EF),
    (0x0710, 0x0710),
    (0x0715, 0x0719),
    (0x071E, 0x071E),
    (0x0728, 0x0728),
    (0x072A, 0x072A),
    (0x072C, 0x072C),
    (0x072F, 0x072F),
    (0x074D, 0x074D),
    (0x0759, 0x075B),
    (0x076B, 0x076C),
    (0x0771, 0x0771),
    (0x0773, 0x0774),
    (0x0778, 0x0779),
];

fn is_joining_letter(c: char) -> bool {
    matches!(
        get_general_category(c),
        Gc::OtherLetter | Gc::ModifierLetter | Gc::UppercaseLetter | Gc::LowercaseLetter
    ) && in_ranges(c, JOINING_BLOCKS)
        && !in_ranges(c, NON_JOINING)
}

/// Script=Greek, approximately (Scripts.txt).
const GREEK: &[(u32, u32)] = &[
    (0x0370, 0x0373),
    (0x0375, 0x037D),
    (0x037F, 0x0384),
    (0x0386, 0x0386),
    (0x0388, 0x03E1),
    (0x03F0, 0x03FF),
    (0x1D26, 0x1D2A),
    (0x1D5D, 0x1D61),
    (0x1D66, 0x1D6A),
    (0x1DBF, 0x1DBF),
    (0x1F00, 0x1FFE),
    (0x2126, 0x2126),
    (0xAB65, 0xAB65),
    (0x10140, 0x1018E),
    (0x101A0, 0x101A0),
    (0x1D200, 0x1D245),
];

/// Script=Hebrew, approximately.
const HEBREW: &[(u32, u32)] = &[(0x0591, 0x05F4), (0xFB1D, 0xFB4F)];

/// Script=Hiragana, Katakana or Han, approximately (U+30FB and U+30FC are
/// Common and left out).
const KANA_HAN: &[(u32, u32)] = &[
    (0x2E80, 0x2FDF),
    (0x3005, 0x3005),
    (0x3007, 0x3007),
    (0x3021, 0x3029),
    (0x3038, 0x303B),
    (0x3041, 0x30FA),
    (0x30FD, 0x30FF),
    (0x31F0, 0x31FF),
    (0x32D0, 0x32FE),
    (0x3300, 0x3357),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF66, 0xFF6F),
    (0xFF71, 0xFF9D),
    (0x16FE2, 0x16FE3),
    (0x16FF0, 0x16FF1),
    (0x1AFF0, 0x1B16F),
    (0x1F200, 0x1F200),
    (0x20000, 0x323AF),
];

/// RFC 5892 Appendix A.3–A.9.
fn contexto_ok(cps: &[char], c: char, before: Option<char>, after: Option<char>) -> bool {
    match c {
        // MIDDLE DOT: between two 'l' (Catalan ela geminada).
        '\u{00B7}' => before == Some('l') && after == Some('l'),
        // GREEK LOWER NUMERAL SIGN (KERAIA): followed by Greek.
        '\u{0375}' => after.is_some_and(|a| in_ranges(a, GREEK)),
        // HEBREW PUNCTUATION GERESH and GERSHAYIM: preceded by Hebrew.
        '\u{05F3}' | '\u{05F4}' => before.is_some_and(|b| in_ranges(b, HEBREW)),
        // KATAKANA MIDDLE DOT: some Hiragana, Katakana or Han in the string.
        '\u{30FB}' => cps.iter().any(|&x| in_ranges(x, KANA_HAN)),
        // ARABIC-INDIC DIGITS: not mixed with Extended Arabic-Indic digits.
        '\u{0660}'..='\u{0669}' => !cps.iter().any(|x| ('\u{06F0}'..='\u{06F9}').contains(x)),
        '\u{06F0}'..='\u{06F9}' => !cps.iter().any(|x| ('\u{0660}'..='\u{0669}').contains(x)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        enforce(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn bad(s: &str) {
        assert!(enforce(s).is_err(), "{s:?} accepted as {:?}", enforce(s));
    }

    #[test]
    fn mapping_and_normalisation() {
        assert_eq!(ok("plain ASCII ~!"), "plain ASCII ~!");
        assert_eq!(ok("a\u{A0}b\u{3000}c\u{2009}d"), "a b c d");
        assert_eq!(ok("cafe\u{301}"), "caf\u{E9}");
        // No width or case mapping.
        assert_eq!(ok("\u{FF21}Bc"), "\u{FF21}Bc");
        assert_eq!(enforce(""), Err(OpaqueError::Empty));
        for s in ["x\u{2003}y", "e\u{301}\u{3000}", "🦀 ok", "Ⅻ"] {
            let once = ok(s);
            assert_eq!(ok(&once), once, "idempotent");
        }
    }

    #[test]
    fn modern_emoji() {
        // Unicode 8 (🦀, 🤔), 11 (🥰), 14 (🫠), 15 (🪿), 16 (🫩).
        for s in ["🦀", "🤔", "🥰", "🫠", "🪿", "\u{1FAE9}", "🇫🇷", "👍🏽"] {
            assert_eq!(ok(s), s);
        }
    }

    #[test]
    fn emoji_sequences() {
        for s in [
            "👩\u{200D}💻",
            "🏳\u{FE0F}\u{200D}🌈",
            "❤\u{FE0F}\u{200D}🔥",
            "👨\u{200D}👩\u{200D}👧",
            "🫱🏻\u{200D}🫲🏼",
            "🏃\u{200D}♂\u{FE0F}",
            "1\u{FE0F}\u{20E3}",
            "#\u{FE0F}\u{20E3}",
            "\u{2139}\u{FE0F}",
            "\u{2764}\u{FE0E}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
        ] {
            assert_eq!(ok(s), s);
        }
        for s in [
            "a\u{200D}b",
            "\u{200D}",
            "👩\u{200D}",
            "\u{200D}💻",
            "👩\u{200D}x",
            "a\u{FE0F}",
            "\u{FE0F}",
            "🦀\u{FE0F}\u{FE0F}",
            "🦀\u{FE00}",
            // Tags only as RGI subdivision flags.
            "\u{1F3F4}\u{E0061}\u{E0062}\u{E0063}\u{E007F}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}",
            "a\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            "\u{E007F}",
        ] {
            bad(s);
        }
    }

    #[test]
    fn disallowed() {
        for s in [
            "\u{0}",
            "a\u{7}",
            "\u{7F}",
            "\u{85}",
            "\u{200B}",
            "a\u{AD}b",
            "\u{2060}",
            "\u{FEFF}x",
            "x\u{202E}y",
            "\u{2028}",
            "\u{E000}",
            "\u{F0000}",
            "\u{FFFF}",
            "\u{FFFE}",
            "\u{FDD0}",
            "\u{1FFFE}",
            "\u{378}",
            "\u{E0FFF}",
            "\u{1100}",
            "\u{3164}",
            "a\u{640}b",
            "\u{302E}",
        ] {
            bad(s);
        }
    }

    #[test]
    fn freeform_allows_compat_symbols_and_punctuation() {
        for s in ["Ⅻ", "\u{FB01}", "½", "™", "…", "ǅ", "x²", "Ⓐ", "€$"] {
            assert_eq!(ok(s), s);
        }
        // Exceptions that are PVALID.
        assert_eq!(ok("ß〇"), "ß〇");
        // Modern jamo compose to a syllable under NFC.
        assert_eq!(ok("\u{1112}\u{1161}\u{11AB}"), "\u{D55C}");
    }

    #[test]
    fn context_rules() {
        // Virama before ZWJ/ZWNJ (Devanagari).
        ok("\u{915}\u{94D}\u{200D}\u{937}");
        ok("\u{915}\u{94D}\u{200C}\u{937}");
        // Persian ZWNJ between dual-joining letters: می‌خواهم.
        ok("\u{645}\u{6CC}\u{200C}\u{62E}\u{648}\u{627}\u{647}\u{645}");
        // After a right-joining letter or a non-Arabic letter: rejected.
        bad("\u{648}\u{200C}\u{628}");
        bad("a\u{200C}b");
        ok("l\u{B7}l");
        bad("a\u{B7}b");
        bad("\u{B7}");
        ok("\u{375}\u{3B1}");
        bad("\u{375}a");
        ok("\u{5D0}\u{5F3}");
        bad("a\u{5F4}");
        ok("\u{30AB}\u{30FB}\u{30AB}");
        ok("\u{6F1}\u{30FB}\u{4E00}");
        bad("a\u{30FB}b");
        ok("\u{660}\u{661}");
        ok("\u{6F0}\u{6F1}");
        bad("\u{660}\u{6F1}");
    }
}
