//! Reading lines and fields of CP932 extract files.
//!
//! Lines end in CRLF (a bare LF is accepted); fields are split on a
//! separator byte. Neither `,`, TAB, CR nor LF occurs inside a CP932
//! multi-byte character, so splitting works on raw bytes and only text fields
//! are decoded. Every accessor names the record and field in its error and
//! never the value.

use std::fmt;

use enclave_core::card::InsurerNumber;
use enclave_core::date::{CivilDate, YearMonth};
use enclave_core::person::Sex;

/// Why an extract was refused: file, line, record, field and problem, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExtractError {
    /// Path relative to the extract root.
    pub file: String,
    /// 1-based line number, 0 for problems of the whole file.
    pub line: usize,
    /// The record or row kind (`RE`, `K`, `NINTEI`, …).
    pub record: String,
    /// The field's name and 1-based number, empty for record-level problems.
    pub field: String,
    pub problem: String,
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, " line {}", self.line)?;
        }
        if !self.record.is_empty() {
            write!(f, ", record {}", self.record)?;
        }
        if !self.field.is_empty() {
            write!(f, ", field {}", self.field)?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl ExtractError {
    /// A problem of a whole file.
    pub(crate) fn file(file: &str, problem: impl Into<String>) -> ExtractError {
        ExtractError {
            file: file.to_owned(),
            line: 0,
            record: String::new(),
            field: String::new(),
            problem: problem.into(),
        }
    }
}

/// A code of exactly `N` ASCII digits (傷病名コード, 診療行為コード, …),
/// held inline: a receipt's lines carry several, and a `String` each
/// would be an allocation each.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digits<const N: usize>([u8; N]);

impl<const N: usize> Digits<N> {
    /// `None` unless `text` is exactly `N` ASCII digits.
    pub fn parse(text: &str) -> Option<Digits<N>> {
        let bytes: [u8; N] = text.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_digit)
            .then_some(Digits(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Digits are ASCII, so this never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl<const N: usize> std::ops::Deref for Digits<N> {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> AsRef<str> for Digits<N> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<const N: usize> fmt::Debug for Digits<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> fmt::Display for Digits<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lines of a file with their 1-based numbers, without line endings;
/// a final empty line (after the last CRLF) is dropped.
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let ends = memchr::memchr_iter(b'\n', body).chain([body.len()]);
    let mut start = 0;
    ends.enumerate()
        .filter(move |_| !bytes.is_empty())
        .map(move |(i, end)| {
            let line = &body[start..end];
            start = end + 1;
            (i + 1, line.strip_suffix(b"\r").unwrap_or(line))
        })
}

/// Most fields any record has (SI and IY: 13 fields plus 31 day fields).
const MAX_FIELDS: usize = 48;

/// The fields of one line of one record kind.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    file: &'a str,
    line: usize,
    record: &'static str,
    bytes: &'a [u8],
    /// Where each field ends (its separator, or the end of the line).
    ends: [u32; MAX_FIELDS],
    count: usize,
}

impl<'a> Fields<'a> {
    /// Splits `line` on `separator`, requiring at least `min_fields` fields.
    /// Splitting stops after `MAX_FIELDS`; no reader needs a later field.
    pub(crate) fn split(
        file: &'a str,
        line: usize,
        record: &'static str,
        bytes: &'a [u8],
        separator: u8,
        min_fields: usize,
    ) -> Result<Fields<'a>, ExtractError> {
        let mut fields = Fields {
            file,
            line,
            record,
            bytes,
            ends: [0; MAX_FIELDS],
            count: 0,
        };
        let Ok(length) = u32::try_from(bytes.len()) else {
            return Err(fields.record_error("line longer than 4 GiB"));
        };
        // Fields are a few bytes long: a plain scan beats a vectorized search.
        for (end, _) in bytes.iter().enumerate().filter(|(_, b)| **b == separator) {
            if fields.count == MAX_FIELDS - 1 {
                break;
            }
            fields.ends[fields.count] = end as u32;
            fields.count += 1;
        }
        fields.ends[fields.count] = length;
        fields.count += 1;
        if fields.count < min_fields {
            let count = fields.count;
            return Err(fields.record_error(format!("expected {min_fields} fields, found {count}")));
        }
        Ok(fields)
    }

    /// An error about the record as a whole.
    pub(crate) fn record_error(&self, problem: impl Into<String>) -> ExtractError {
        ExtractError {
            file: self.file.to_owned(),
            line: self.line,
            record: self.record.to_owned(),
            field: String::new(),
            problem: problem.into(),
        }
    }

    /// An error about field `number` (1-based).
    pub(crate) fn error(
        &self,
        number: usize,
        name: &str,
        problem: impl fmt::Display,
    ) -> ExtractError {
        ExtractError {
            file: self.file.to_owned(),
            line: self.line,
            record: self.record.to_owned(),
            field: format!("{name} ({number})"),
            problem: problem.to_string(),
        }
    }

    pub(crate) fn line(&self) -> usize {
        self.line
    }

    fn raw(&self, number: usize) -> &'a [u8] {
        let Some(index) = number.checked_sub(1).filter(|&i| i < self.count) else {
            return &[];
        };
        let start = match index {
            0 => 0,
            _ => self.ends[index - 1] as usize + 1,
        };
        &self.bytes[start..self.ends[index] as usize]
    }

    /// An ASCII field, trimmed of spaces.
    pub(crate) fn ascii(&self, number: usize, name: &str) -> Result<&'a str, ExtractError> {
        let raw = self.raw(number);
        if !raw.is_ascii() {
            return Err(self.error(number, name, "expected ASCII characters"));
        }
        let text = std::str::from_utf8(raw)
            .map_err(|_| self.error(number, name, "expected ASCII characters"))?;
        Ok(text.trim_matches(' '))
    }

    /// A required ASCII field.
    pub(crate) fn required(&self, number: usize, name: &str) -> Result<&'a str, ExtractError> {
        let text = self.ascii(number, name)?;
        if text.is_empty() {
            return Err(self.error(number, name, "is empty"));
        }
        Ok(text)
    }

    /// Exactly `len` ASCII digits.
    pub(crate) fn digits(
        &self,
        number: usize,
        name: &str,
        len: usize,
    ) -> Result<&'a str, ExtractError> {
        let text = self.ascii(number, name)?;
        if text.len() != len || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(number, name, format!("expected {len} digits")));
        }
        Ok(text)
    }

    /// Exactly `N` ASCII digits, held inline.
    pub(crate) fn code<const N: usize>(
        &self,
        number: usize,
        name: &str,
    ) -> Result<Digits<N>, ExtractError> {
        Digits::parse(self.ascii(number, name)?)
            .ok_or_else(|| self.error(number, name, format!("expected {N} digits")))
    }

    /// Digits of any length up to `max_len`, or empty.
    pub(crate) fn optional_digits(
        &self,
        number: usize,
        name: &str,
        max_len: usize,
    ) -> Result<&'a str, ExtractError> {
        let text = self.ascii(number, name)?;
        if text.len() > max_len || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.error(number, name, format!("expected at most {max_len} digits")));
        }
        Ok(text)
    }

    /// A CP932 text field decoded to UTF-8 (may be empty).
    pub(crate) fn text(&self, number: usize, name: &str) -> Result<String, ExtractError> {
        let raw = self.raw(number);
        if raw.is_ascii() {
            return Ok(String::from_utf8_lossy(raw).into_owned());
        }
        let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(raw);
        if had_errors {
            return Err(self.error(number, name, "not valid CP932"));
        }
        Ok(text.into_owned())
    }

    /// A non-negative integer.
    pub(crate) fn integer(&self, number: usize, name: &str) -> Result<i64, ExtractError> {
        let text = self.required(number, name)?;
        parse_integer(text).ok_or_else(|| self.error(number, name, "expected a whole number"))
    }

    /// A non-negative integer, 0 when empty.
    pub(crate) fn integer_or_zero(&self, number: usize, name: &str) -> Result<i64, ExtractError> {
        match self.ascii(number, name)? {
            "" => Ok(0),
            text => parse_integer(text)
                .ok_or_else(|| self.error(number, name, "expected a whole number")),
        }
    }

    /// A decimal number, `None` when empty.
    pub(crate) fn decimal(&self, number: usize, name: &str) -> Result<Option<f64>, ExtractError> {
        match self.ascii(number, name)? {
            "" => Ok(None),
            text => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| self.error(number, name, "expected a decimal number")),
        }
    }

    /// `1`/`0` as a flag.
    pub(crate) fn flag(&self, number: usize, name: &str) -> Result<bool, ExtractError> {
        match self.ascii(number, name)? {
            "1" => Ok(true),
            "0" | "" => Ok(false),
            _ => Err(self.error(number, name, "expected 0 or 1")),
        }
    }

    pub(crate) fn sex(&self, number: usize, name: &str) -> Result<Sex, ExtractError> {
        Sex::from_code(self.ascii(number, name)?)
            .ok_or_else(|| self.error(number, name, "expected 1 or 2"))
    }

    /// Era date `GYYMMDD`.
    pub(crate) fn wareki_date(&self, number: usize, name: &str) -> Result<CivilDate, ExtractError> {
        CivilDate::parse_wareki(self.ascii(number, name)?).map_err(|e| self.error(number, name, e))
    }

    /// Era date `GYYMMDD`, `None` when empty.
    pub(crate) fn optional_wareki_date(
        &self,
        number: usize,
        name: &str,
    ) -> Result<Option<CivilDate>, ExtractError> {
        match self.ascii(number, name)? {
            "" => Ok(None),
            text => CivilDate::parse_wareki(text)
                .map(Some)
                .map_err(|e| self.error(number, name, e)),
        }
    }

    /// Era month `GYYMM`.
    pub(crate) fn wareki_month(
        &self,
        number: usize,
        name: &str,
    ) -> Result<YearMonth, ExtractError> {
        YearMonth::parse_wareki(self.ascii(number, name)?).map_err(|e| self.error(number, name, e))
    }

    /// Gregorian date `YYYYMMDD`.
    pub(crate) fn date(&self, number: usize, name: &str) -> Result<CivilDate, ExtractError> {
        CivilDate::parse_yyyymmdd(self.ascii(number, name)?)
            .map_err(|e| self.error(number, name, e))
    }

    /// An insurer number as written (padded, full-width digits), validated.
    pub(crate) fn insurer(&self, number: usize, name: &str) -> Result<InsurerNumber, ExtractError> {
        let text = self.text(number, name)?;
        InsurerNumber::parse(&text).map_err(|e| self.error(number, name, e))
    }
}

fn parse_integer(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.bytes().fold(0i64, |n, b| n * 10 + i64::from(b - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(line: &[u8]) -> Vec<Vec<u8>> {
        let f = Fields::split("f", 1, "SI", line, b',', 0).unwrap();
        (1..=f.count).map(|n| f.raw(n).to_vec()).collect()
    }

    #[test]
    fn fields_split_on_every_separator_keeping_empty_ones() {
        assert_eq!(fields(b""), [b""]);
        assert_eq!(fields(b"SI,,12"), [&b"SI"[..], b"", b"12"]);
        assert_eq!(fields(b",a,"), [&b""[..], b"a", b""]);
        let f = Fields::split("f", 1, "SI", b"SI,1", b',', 0).unwrap();
        assert_eq!((f.raw(0), f.raw(3)), (&b""[..], &b""[..]), "no such field");
    }

    #[test]
    fn fields_after_the_last_one_read_stay_in_it() {
        let line = vec![b','; MAX_FIELDS + 5];
        let split = fields(&line);
        assert_eq!(split.len(), MAX_FIELDS);
        assert_eq!(split[MAX_FIELDS - 1], vec![b','; 6]);
    }

    #[test]
    fn too_few_fields_name_the_counts() {
        let error = Fields::split("f", 3, "SY", b"SY,1", b',', 8).unwrap_err();
        assert_eq!(
            error.to_string(),
            "f line 3, record SY: expected 8 fields, found 2"
        );
    }

    #[test]
    fn lines_end_in_crlf_or_lf_and_a_final_newline_adds_none() {
        let all = |bytes: &'static [u8]| lines(bytes).collect::<Vec<_>>();
        assert_eq!(all(b""), []);
        assert_eq!(all(b"a\r\nb\n"), [(1, &b"a"[..]), (2, b"b")]);
        assert_eq!(all(b"a\n\nb"), [(1, &b"a"[..]), (2, b""), (3, b"b")]);
        assert_eq!(all(b"\n"), [(1, &b""[..])]);
    }
}
