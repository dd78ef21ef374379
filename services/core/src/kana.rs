//! Katakana names as linkage sees them.
//!
//! The same person's kana name reaches us in several spellings: full-width
//! (`ヤマダ　タロウ`), half-width (`ﾔﾏﾀﾞ ﾀﾛｳ`, where a voiced kana is two
//! characters), with or without the space between family and given name,
//! occasionally in hiragana or with a separate combining voicing mark.
//! [`normalize_name`] maps all of these to one string; it deliberately does
//! *not* fold ヅ/ズ, ヂ/ジ or small kana, which would merge distinct names.
//! [`to_halfwidth`] renders a full-width name the way legacy systems write it.

/// Half-width katakana U+FF66..=U+FF9D mapped to full-width, in code order.
const HALFWIDTH_TO_FULLWIDTH: [char; 56] = [
    'ヲ', 'ァ', 'ィ', 'ゥ', 'ェ', 'ォ', 'ャ', 'ュ', 'ョ', 'ッ', 'ー', 'ア', 'イ', 'ウ', 'エ', 'オ',
    'カ', 'キ', 'ク', 'ケ', 'コ', 'サ', 'シ', 'ス', 'セ', 'ソ', 'タ', 'チ', 'ツ', 'テ', 'ト', 'ナ',
    'ニ', 'ヌ', 'ネ', 'ノ', 'ハ', 'ヒ', 'フ', 'ヘ', 'ホ', 'マ', 'ミ', 'ム', 'メ', 'モ', 'ヤ', 'ユ',
    'ヨ', 'ラ', 'リ', 'ル', 'レ', 'ロ', 'ワ', 'ン',
];

const HALFWIDTH_VOICED: char = '\u{FF9E}';
const HALFWIDTH_SEMI_VOICED: char = '\u{FF9F}';
const COMBINING_VOICED: char = '\u{3099}';
const COMBINING_SEMI_VOICED: char = '\u{309A}';
const SPACING_VOICED: char = '\u{309B}';
const SPACING_SEMI_VOICED: char = '\u{309C}';

fn is_voicing_mark(c: char) -> bool {
    matches!(c, HALFWIDTH_VOICED | COMBINING_VOICED | SPACING_VOICED)
}

fn is_semi_voicing_mark(c: char) -> bool {
    matches!(
        c,
        HALFWIDTH_SEMI_VOICED | COMBINING_SEMI_VOICED | SPACING_SEMI_VOICED
    )
}

/// ガ from カ, ヴ from ウ; `None` when the kana takes no voicing mark.
fn voiced(base: char) -> Option<char> {
    let code = base as u32;
    let takes_mark = matches!(code, 0x30AB..=0x30C8 if (code < 0x30C3 && !code.is_multiple_of(2)) || (code > 0x30C3 && code.is_multiple_of(2)))
        || matches!(code, 0x30CF..=0x30DB if (code - 0x30CF).is_multiple_of(3));
    match base {
        'ウ' => Some('ヴ'),
        _ if takes_mark => char::from_u32(code + 1),
        _ => None,
    }
}

/// パ from ハ; `None` when the kana takes no semi-voicing mark.
fn semi_voiced(base: char) -> Option<char> {
    let code = base as u32;
    match code {
        0x30CF..=0x30DB if (code - 0x30CF).is_multiple_of(3) => char::from_u32(code + 2),
        _ => None,
    }
}

/// One character mapped to full-width katakana; separators map to `None`.
fn fullwidth_katakana(c: char) -> Option<char> {
    match c {
        ' ' | '\u{3000}' | '\t' | '・' | '･' => None,
        '\u{FF66}'..='\u{FF9D}' => Some(HALFWIDTH_TO_FULLWIDTH[c as usize - 0xFF66]),
        '-' | '－' | '‐' | '―' | '─' => Some('ー'),
        // Hiragana ぁ..ゖ sit 0x60 below their katakana.
        '\u{3041}'..='\u{3096}' => char::from_u32(c as u32 + 0x60),
        other => Some(other),
    }
}

/// The canonical form of a kana name used for linkage keys: full-width
/// katakana, voicing marks composed, hiragana as katakana, long-vowel variants
/// as `ー`, and no spaces or middle dots.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if is_voicing_mark(c) || is_semi_voicing_mark(c) {
            let composed = out.pop().and_then(|base| {
                let result = if is_voicing_mark(c) {
                    voiced(base)
                } else {
                    semi_voiced(base)
                };
                result.or_else(|| {
                    out.push(base);
                    None
                })
            });
            if let Some(composed) = composed {
                out.push(composed);
            }
            continue;
        }
        if let Some(full) = fullwidth_katakana(c) {
            out.push(full);
        }
    }
    out
}

/// Full-width katakana (and the ideographic space) rendered half-width, as
/// legacy receipt software writes names: `ガ` becomes `ｶﾞ`. Other characters
/// pass through unchanged.
pub fn to_halfwidth(name: &str) -> String {
    let mut out = String::with_capacity(name.len() * 2);
    for c in name.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            'ー' => out.push('\u{FF70}'),
            'ヴ' => out.extend(['\u{FF73}', HALFWIDTH_VOICED]),
            _ => push_halfwidth(&mut out, c),
        }
    }
    out
}

fn push_halfwidth(out: &mut String, c: char) {
    let halfwidth_of = |plain: char| {
        HALFWIDTH_TO_FULLWIDTH
            .iter()
            .position(|&full| full == plain)
            .and_then(|i| char::from_u32(0xFF66 + i as u32))
    };
    if let Some(half) = halfwidth_of(c) {
        out.push(half);
        return;
    }
    let code = c as u32;
    let unvoiced = char::from_u32(code.wrapping_sub(1)).filter(|&b| voiced(b) == Some(c));
    let unsemi = char::from_u32(code.wrapping_sub(2)).filter(|&b| semi_voiced(b) == Some(c));
    match (
        unvoiced.and_then(halfwidth_of),
        unsemi.and_then(halfwidth_of),
    ) {
        (Some(base), _) => out.extend([base, HALFWIDTH_VOICED]),
        (None, Some(base)) => out.extend([base, HALFWIDTH_SEMI_VOICED]),
        (None, None) => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halfwidth_and_fullwidth_spellings_normalize_alike() {
        assert_eq!(normalize_name("ﾔﾏﾀﾞ ﾀﾛｳ"), "ヤマダタロウ");
        assert_eq!(normalize_name("ヤマダ　タロウ"), "ヤマダタロウ");
        assert_eq!(normalize_name("ヤマダタロウ"), "ヤマダタロウ");
        assert_eq!(normalize_name("ﾔﾏﾀﾞﾀﾛｳ"), "ヤマダタロウ");
    }

    #[test]
    fn voicing_marks_compose_in_every_encoding() {
        assert_eq!(normalize_name("ﾊﾟｸ ｼﾞｭﾝ"), "パクジュン");
        assert_eq!(normalize_name("カ\u{3099}"), "ガ");
        assert_eq!(normalize_name("ハ\u{309A}"), "パ");
        assert_eq!(normalize_name("ト\u{309B}イ"), "ドイ");
        assert_eq!(normalize_name("ｳﾞｨｯｸ"), "ヴィック");
        // A mark that cannot combine is dropped rather than kept dangling.
        assert_eq!(normalize_name("ア\u{FF9E}"), "ア");
    }

    #[test]
    fn hiragana_long_vowels_and_separators_fold() {
        assert_eq!(normalize_name("さとう　はなこ"), "サトウハナコ");
        assert_eq!(normalize_name("ｽﾐｽ･ｼﾞｮｰﾝ"), "スミスジョーン");
        assert_eq!(normalize_name("スミス・ジョ－ン"), "スミスジョーン");
    }

    #[test]
    fn distinct_sounds_stay_distinct() {
        assert_ne!(normalize_name("ミズノ"), normalize_name("ミヅノ"));
        assert_ne!(normalize_name("キョウコ"), normalize_name("キヨウコ"));
    }

    #[test]
    fn halfwidth_rendering_round_trips() {
        for name in [
            "ヤマダ　タロウ",
            "ワタナベ　ジュンペイ",
            "ヴィック",
            "パク　ミンジ",
            "ヲ",
        ] {
            let half = to_halfwidth(name);
            assert!(
                half.chars()
                    .all(|c| c.is_ascii() || ('\u{FF61}'..='\u{FF9F}').contains(&c)),
                "{half}"
            );
            assert_eq!(normalize_name(&half), normalize_name(name));
        }
        assert_eq!(to_halfwidth("ガッコウ"), "ｶﾞｯｺｳ");
    }
}
