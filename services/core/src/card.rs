//! Insurer numbers (保険者番号) and insurance card symbols/numbers (記号・番号).
//!
//! An insurer number is 8 digits, 法別番号(2) + 都道府県(2) + 保険者別番号(3) +
//! 検証番号(1), except 国民健康保険 (and care insurers), which have no 法別番号
//! and so 6 digits. Receipts write a 6-digit number right-justified and
//! space-padded to 8; some systems zero-pad it instead. The check digit is
//! computed from the rightmost body digit with weights 2,1,2,1,…, adding the
//! two digits of any product of 10 or more; the check is (10 − sum mod 10) mod 10.
//!
//! Card symbols and numbers are free text on the card; receipts convert them to
//! full-width, health-check systems to half-width. [`normalize_card_text`]
//! maps both to one form.

use std::fmt;

/// Why an insurer number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("insurer number must have 6 or 8 digits")]
    InsurerLength,
    #[error("insurer number has a non-digit character")]
    InsurerNotDigits,
    #[error("insurer number check digit does not match")]
    InsurerCheckDigit,
    #[error("insurer number names no prefecture 01-47")]
    InsurerPrefecture,
}

/// A validated insurer number in canonical form (6 or 8 ASCII digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InsurerNumber(String);

/// The check digit for the body digits of an insurer number.
pub fn check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let product = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            product / 10 + product % 10
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

impl InsurerNumber {
    /// Builds a number from its body digits (5 or 7) by appending the check digit.
    pub fn from_body(body: &str) -> Result<InsurerNumber, CardError> {
        let full = format!("{body}{}", check_digit(body));
        InsurerNumber::parse(&full)
    }

    /// Reads an insurer number as written in an extract: full-width or
    /// half-width digits, space-padded or zero-padded 国保 numbers.
    pub fn parse(raw: &str) -> Result<InsurerNumber, CardError> {
        let text = normalize_card_text(raw);
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::InsurerNotDigits);
        }
        let digits = match text.len() {
            8 if text.starts_with("00") => &text[2..],
            6 | 8 => &text[..],
            _ => return Err(CardError::InsurerLength),
        };
        let (body, check) = digits.split_at(digits.len() - 1);
        if check_digit(body) != check.as_bytes()[0] - b'0' {
            return Err(CardError::InsurerCheckDigit);
        }
        let number = InsurerNumber(digits.to_owned());
        if !(1..=47).contains(&number.prefecture_code()) {
            return Err(CardError::InsurerPrefecture);
        }
        Ok(number)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the 6-digit numbers of 国民健康保険 and care insurers.
    pub fn is_municipal(&self) -> bool {
        self.0.len() == 6
    }

    /// 法別番号, absent for municipal insurers.
    pub fn law_code(&self) -> Option<&str> {
        (!self.is_municipal()).then(|| &self.0[..2])
    }

    /// The insurer's prefecture (JIS X 0401 code).
    pub fn prefecture_code(&self) -> u8 {
        let start = if self.is_municipal() { 0 } else { 2 };
        self.0[start..start + 2].parse().unwrap_or(0)
    }

    /// The 8-character field of a receipt HO record: 6-digit numbers
    /// right-justified with spaces.
    pub fn to_receipt_field(&self) -> String {
        format!("{:>8}", self.0)
    }
}

impl fmt::Display for InsurerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The category of insurance a number belongs to, from its 法別番号.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InsurerKind {
    /// 協会けんぽ (01) and 船員保険 (02).
    KyokaiKenpo,
    /// 健康保険組合 (06) and 日雇 (03/04).
    HealthInsuranceSociety,
    /// 共済組合 (07, 31-34) and 特例退職 (63, 72-75).
    MutualAid,
    /// 後期高齢者医療 (39).
    LateElderly,
    /// 国民健康保険 (6-digit numbers).
    NationalHealthInsurance,
    /// Any other 法別番号.
    Other,
}

impl InsurerKind {
    pub fn of(number: &InsurerNumber) -> InsurerKind {
        match number.law_code() {
            None => InsurerKind::NationalHealthInsurance,
            Some("01" | "02") => InsurerKind::KyokaiKenpo,
            Some("03" | "04" | "06") => InsurerKind::HealthInsuranceSociety,
            Some("07" | "31" | "32" | "33" | "34" | "63" | "72" | "73" | "74" | "75") => {
                InsurerKind::MutualAid
            }
            Some("39") => InsurerKind::LateElderly,
            Some(_) => InsurerKind::Other,
        }
    }

    /// The code published in the `insurer_type` column.
    pub fn code(self) -> &'static str {
        match self {
            InsurerKind::KyokaiKenpo => "kyokai",
            InsurerKind::HealthInsuranceSociety => "kumiai",
            InsurerKind::MutualAid => "kyosai",
            InsurerKind::LateElderly => "koki",
            InsurerKind::NationalHealthInsurance => "kokuho",
            InsurerKind::Other => "other",
        }
    }
}

/// Card symbols and numbers in one form: full-width ASCII (digits, letters,
/// hyphens) as half-width, letters upper-case, all spaces removed. Kanji in a
/// symbol (e.g. `京都`) are kept as they are.
pub fn normalize_card_text(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, ' ' | '\u{3000}' | '\t'))
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '‐' | '―' | 'ー' => '-',
            _ => c,
        })
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Renders ASCII digits, letters and hyphens full-width, as receipts write card
/// symbols and numbers.
pub fn to_fullwidth_ascii(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
            ' ' => '\u{3000}',
            _ => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digit_matches_the_published_example() {
        assert_eq!(check_digit("0113001"), 2);
        assert!(InsurerNumber::parse("01130012").is_ok());
        assert_eq!(
            InsurerNumber::parse("01130013"),
            Err(CardError::InsurerCheckDigit)
        );
    }

    #[test]
    fn padded_municipal_numbers_normalize_to_six_digits() {
        let six = InsurerNumber::from_body("13810").unwrap();
        assert_eq!(six.as_str().len(), 6);
        let space_padded = six.to_receipt_field();
        assert_eq!(space_padded.len(), 8);
        assert!(space_padded.starts_with("  "));
        assert_eq!(InsurerNumber::parse(&space_padded).unwrap(), six);
        assert_eq!(InsurerNumber::parse(&format!("00{six}")).unwrap(), six);
        assert_eq!(
            InsurerNumber::parse(&to_fullwidth_ascii(six.as_str())).unwrap(),
            six
        );
        assert!(six.is_municipal());
        assert_eq!(six.prefecture_code(), 13);
        assert_eq!(InsurerKind::of(&six), InsurerKind::NationalHealthInsurance);
    }

    #[test]
    fn malformed_insurer_numbers_are_refused() {
        assert_eq!(
            InsurerNumber::parse("1234567"),
            Err(CardError::InsurerLength)
        );
        assert_eq!(
            InsurerNumber::parse("0113001X"),
            Err(CardError::InsurerNotDigits)
        );
        let no_such_prefecture = format!("0199001{}", check_digit("0199001"));
        assert_eq!(
            InsurerNumber::parse(&no_such_prefecture),
            Err(CardError::InsurerPrefecture)
        );
    }

    #[test]
    fn eight_digit_numbers_carry_law_and_prefecture() {
        let number = InsurerNumber::parse("01130012").unwrap();
        assert_eq!(number.law_code(), Some("01"));
        assert_eq!(number.prefecture_code(), 13);
        assert_eq!(InsurerKind::of(&number), InsurerKind::KyokaiKenpo);
        let late = InsurerNumber::from_body("3913001").unwrap();
        assert_eq!(InsurerKind::of(&late), InsurerKind::LateElderly);
    }

    #[test]
    fn card_text_normalizes_width_case_and_spaces() {
        assert_eq!(normalize_card_text("１２３４－５６"), "1234-56");
        assert_eq!(normalize_card_text("1234-56"), "1234-56");
        assert_eq!(normalize_card_text("ａｂ　１２"), "AB12");
        assert_eq!(normalize_card_text("京都 12"), "京都12");
        assert_eq!(normalize_card_text(&to_fullwidth_ascii("7012-3")), "7012-3");
    }
}
