//! Screening of the tables researchers bring into a project (持込審査).
//!
//! A brought-in table (a code list, a reference table) is screened before
//! it is kept in quarantine for the committee: [`screen`] reads every
//! column and returns the [`Finding`]s that refuse it, each naming the
//! column and the [`ScreenRule`], never a value. The rules look for:
//!
//! - direct identifiers: column names that say so, and values shaped like
//!   kana or kanji names, insurer numbers with a valid check digit, full
//!   dates (of birth or otherwise), postcodes, phone numbers, addresses;
//! - person keys of the enclave (照合禁止): an integer that is a person id
//!   of any project ([`enclave_guard::pseudonym`]) would let the table be
//!   matched to persons;
//! - shapes a reference table has no need of: types other than text,
//!   numbers and booleans, too many rows or columns.
//!
//! Screening is a first line; two committee members read every table that
//! passes it before a project may use it.

use std::sync::LazyLock;

use arrow::array::{ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use enclave_core::card::InsurerNumber;
use enclave_core::masters::Masters;
use enclave_guard::pseudonym::ProjectIds;
use regex::Regex;

/// Most rows a brought-in table may have.
pub const MAX_ROWS: usize = 1_000_000;
/// Most columns a brought-in table may have.
pub const MAX_COLUMNS: usize = 64;
/// Most bytes of Arrow data a brought-in table may have.
pub const MAX_BYTES: usize = 64 << 20;

/// Why a column is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScreenRule {
    /// The column's name says it holds a direct identifier.
    IdentifierName,
    /// Values shaped like personal names (kana or kanji).
    PersonName,
    /// Values that are insurer numbers with a valid check digit.
    InsurerNumber,
    /// Dates to the day (a date type, or text such as `1955-12-20`).
    FullDate,
    Postcode,
    PhoneNumber,
    Address,
    /// Values that are person ids of a project (照合禁止).
    PersonKey,
    /// A type a reference table has no need of (binary, nested, time).
    ColumnType,
    /// More rows or columns than a reference table may have.
    Size,
}

impl ScreenRule {
    pub fn id(self) -> &'static str {
        match self {
            ScreenRule::IdentifierName => "identifier-name",
            ScreenRule::PersonName => "person-name",
            ScreenRule::InsurerNumber => "insurer-number",
            ScreenRule::FullDate => "full-date",
            ScreenRule::Postcode => "postcode",
            ScreenRule::PhoneNumber => "phone-number",
            ScreenRule::Address => "address",
            ScreenRule::PersonKey => "person-key",
            ScreenRule::ColumnType => "column-type",
            ScreenRule::Size => "size",
        }
    }

    /// What the rule found, in words for the researcher.
    pub fn meaning(self) -> &'static str {
        match self {
            ScreenRule::IdentifierName => "the column's name says it holds a direct identifier",
            ScreenRule::PersonName => "values look like personal names",
            ScreenRule::InsurerNumber => "values are insurer numbers with a valid check digit",
            ScreenRule::FullDate => "values are dates to the day; bring months (YYYY-MM) as text",
            ScreenRule::Postcode => "values look like postcodes",
            ScreenRule::PhoneNumber => "values look like phone numbers",
            ScreenRule::Address => "values look like addresses",
            ScreenRule::PersonKey => {
                "values are person ids of a project; tables may not be matched to persons (照合禁止)"
            }
            ScreenRule::ColumnType => {
                "only text, integer, decimal and boolean columns can be brought in"
            }
            ScreenRule::Size => "reference tables are limited to 1,000,000 rows and 64 columns",
        }
    }
}

/// One refusal: a column (empty for the whole table) and its rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub column: String,
    pub rule: ScreenRule,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(formatter, "{}: {}", self.rule.id(), self.rule.meaning())
        } else {
            write!(
                formatter,
                "column `{}`: {}: {}",
                self.column,
                self.rule.id(),
                self.rule.meaning()
            )
        }
    }
}

/// The person ids a brought-in table must not hold.
#[derive(Debug)]
pub struct PersonKeys {
    /// Every project's id permutation.
    pub projects: Vec<ProjectIds>,
    /// The largest `person_id` of the served release (its ids are 1 … this,
    /// with the holes merges leave).
    pub max_person_id: i64,
}

impl PersonKeys {
    /// Whether `value` is a person's id in some project.
    fn holds(&self, value: i64) -> bool {
        self.projects.iter().any(|ids| {
            ids.release_id(value)
                .is_some_and(|id| (1..=self.max_person_id).contains(&id))
        })
    }
}

/// Screens a table: every finding, in column order (none: it passes).
pub fn screen(schema: &Schema, batches: &[RecordBatch], keys: &PersonKeys) -> Vec<Finding> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows > MAX_ROWS || schema.fields().len() > MAX_COLUMNS {
        return vec![Finding {
            column: String::new(),
            rule: ScreenRule::Size,
        }];
    }
    let mut findings = Vec::new();
    for (index, field) in schema.fields().iter().enumerate() {
        let columns: Vec<&ArrayRef> = batches.iter().map(|batch| batch.column(index)).collect();
        for rule in column_rules(field.name(), field.data_type(), &columns, keys) {
            findings.push(Finding {
                column: field.name().clone(),
                rule,
            });
        }
    }
    findings
}

fn column_rules(
    name: &str,
    data_type: &DataType,
    columns: &[&ArrayRef],
    keys: &PersonKeys,
) -> Vec<ScreenRule> {
    let mut rules = Vec::new();
    if is_identifier_name(name) {
        rules.push(ScreenRule::IdentifierName);
    }
    match ValueKind::of(data_type) {
        ValueKind::Text => rules.extend(text_rules(columns, keys)),
        ValueKind::Integer => rules.extend(integer_rules(columns, keys)),
        ValueKind::Other => {}
        ValueKind::Date => rules.push(ScreenRule::FullDate),
        ValueKind::Refused => rules.push(ScreenRule::ColumnType),
    }
    rules
}

enum ValueKind {
    Text,
    Integer,
    /// Decimals and booleans: nothing to look for.
    Other,
    Date,
    Refused,
}

impl ValueKind {
    fn of(data_type: &DataType) -> ValueKind {
        match data_type {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ValueKind::Text,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => ValueKind::Integer,
            DataType::Float32
            | DataType::Float64
            | DataType::Decimal128(_, _)
            | DataType::Boolean
            | DataType::Null => ValueKind::Other,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) => ValueKind::Date,
            _ => ValueKind::Refused,
        }
    }
}

/// Column names that say what they hold, compared without case, spaces,
/// hyphens or underscores.
fn is_identifier_name(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "name",
        "fullname",
        "kana",
        "kananame",
        "kanjiname",
        "patientname",
        "personname",
        "氏名",
        "名前",
        "カナ氏名",
        "漢字氏名",
        "address",
        "住所",
        "phone",
        "tel",
        "telephone",
        "phonenumber",
        "電話番号",
        "birthdate",
        "dateofbirth",
        "dob",
        "birthday",
        "生年月日",
        "postcode",
        "postalcode",
        "zip",
        "zipcode",
        "郵便番号",
        "insurernumber",
        "保険者番号",
        "cardnumber",
        "cardsymbol",
        "記号",
        "番号",
        "被保険者番号",
        "email",
        "mail",
        "personid",
        "patientid",
        "mynumber",
        "個人番号",
    ];
    let folded: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '\u{3000}'))
        .flat_map(char::to_lowercase)
        .collect();
    NAMES.contains(&folded.as_str())
}

/// Whether a column's matches are enough to refuse it: a few values, or a
/// tenth of them (one stray value in a long code list is left to the
/// committee; a table of one row is screened whole).
fn refused_by_share(matches: usize, values: usize) -> bool {
    matches > 0 && (matches >= 3 || matches * 10 >= values)
}

/// Shapes of text values that identify someone.
struct TextPatterns {
    kana_name: Regex,
    kanji_name: Regex,
    full_date: Regex,
    wareki_date: Regex,
    postcode: Regex,
    phone: Regex,
    address: Regex,
}

static PATTERNS: LazyLock<TextPatterns> = LazyLock::new(|| {
    let prefectures: Vec<String> = Masters::get()
        .prefectures
        .iter()
        .map(|prefecture| regex::escape(&prefecture.name_ja))
        .collect();
    let compile = |pattern: &str| Regex::new(pattern).expect("static pattern");
    TextPatterns {
        kana_name: compile(r"^[\p{Katakana}ー･ｰ]{1,12}[ 　][\p{Katakana}ー･ｰ]{1,12}$"),
        kanji_name: compile(r"^\p{Han}{1,4}[ 　]\p{Han}{1,4}$"),
        full_date: compile(
            r"^(1[89]|20)\d\d[-/年.]?(0?[1-9]|1[0-2])[-/月.]?(0?[1-9]|[12]\d|3[01])日?$",
        ),
        wareki_date: compile(r"^[1-5]\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"),
        postcode: compile(r"^〒?\s?\d{3}-?\d{4}$"),
        phone: compile(r"^(\+81[- ]?|0)\d{1,4}[- ]?\d{1,4}[- ]?\d{3,4}$"),
        address: compile(&format!(
            r"^({})?.*[市区町村郡].*(\d|[０-９]|丁目|番地|番|号)",
            prefectures.join("|")
        )),
    }
});

/// Whether one text value matches a rule.
type ValueCheck<'a> = dyn Fn(&str) -> bool + 'a;

fn text_rules(columns: &[&ArrayRef], keys: &PersonKeys) -> Vec<ScreenRule> {
    let patterns = &*PATTERNS;
    let checks: [(ScreenRule, &ValueCheck<'_>); 7] = [
        (ScreenRule::PersonName, &|v| {
            patterns.kana_name.is_match(v) || patterns.kanji_name.is_match(v)
        }),
        (ScreenRule::InsurerNumber, &|v| is_insurer_number(v)),
        (ScreenRule::FullDate, &|v| {
            patterns.full_date.is_match(v) || patterns.wareki_date.is_match(v)
        }),
        (ScreenRule::Postcode, &|v| patterns.postcode.is_match(v)),
        (ScreenRule::PhoneNumber, &|v| patterns.phone.is_match(v)),
        (ScreenRule::Address, &|v| patterns.address.is_match(v)),
        (ScreenRule::PersonKey, &|v| {
            v.trim().parse::<i64>().is_ok_and(|n| keys.holds(n))
        }),
    ];
    let mut matches = [0usize; 7];
    let mut values = 0usize;
    for column in columns {
        let Ok(text) = cast(column, &DataType::Utf8) else {
            return vec![ScreenRule::ColumnType];
        };
        for value in text.as_string::<i32>().iter().flatten() {
            values += 1;
            let value = value.trim();
            for (count, (_, check)) in matches.iter_mut().zip(&checks) {
                *count += usize::from(check(value));
            }
        }
    }
    checks
        .iter()
        .zip(matches)
        .filter(|((rule, _), count)| {
            // One person id anywhere is enough: it is never there by chance.
            if *rule == ScreenRule::PersonKey {
                *count > 0
            } else {
                refused_by_share(*count, values)
            }
        })
        .map(|((rule, _), _)| *rule)
        .collect()
}

fn is_insurer_number(value: &str) -> bool {
    matches!(value.len(), 6 | 8)
        && value.bytes().all(|b| b.is_ascii_digit())
        && InsurerNumber::parse(value).is_ok()
}

fn integer_rules(columns: &[&ArrayRef], keys: &PersonKeys) -> Vec<ScreenRule> {
    let (mut values, mut person_keys, mut insurers, mut dates) = (0usize, 0usize, 0usize, 0usize);
    for column in columns {
        let Ok(numbers) = cast(column, &DataType::Int64) else {
            return vec![ScreenRule::ColumnType];
        };
        for value in numbers.as_primitive::<Int64Type>().iter().flatten() {
            values += 1;
            person_keys += usize::from(keys.holds(value));
            let text = value.to_string();
            insurers += usize::from(is_insurer_number(&text));
            dates += usize::from(
                PATTERNS.full_date.is_match(&text) || PATTERNS.wareki_date.is_match(&text),
            );
        }
    }
    let mut rules = Vec::new();
    if person_keys > 0 {
        rules.push(ScreenRule::PersonKey);
    }
    // Numeric codes pass a check digit one time in ten: only a column of
    // mostly valid numbers is refused.
    if insurers > 0 && insurers * 2 >= values {
        rules.push(ScreenRule::InsurerNumber);
    }
    if dates > 0 && dates * 2 >= values {
        rules.push(ScreenRule::FullDate);
    }
    rules
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use enclave_guard::pseudonym::KEY_BYTES;

    use super::*;

    fn keys() -> PersonKeys {
        PersonKeys {
            projects: vec![ProjectIds::new([7; KEY_BYTES])],
            max_person_id: 1_000,
        }
    }

    fn text_table(name: &str, values: &[&str]) -> (Schema, Vec<RecordBatch>) {
        let schema = Schema::new(vec![Field::new(name, DataType::Utf8, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(StringArray::from(values.to_vec()))],
        )
        .unwrap();
        (schema, vec![batch])
    }

    fn rules(schema: &Schema, batches: &[RecordBatch]) -> Vec<&'static str> {
        screen(schema, batches, &keys())
            .iter()
            .map(|finding| finding.rule.id())
            .collect()
    }

    #[test]
    fn a_code_list_passes() {
        let (schema, batches) = text_table("icd10", &["E11", "E110", "E119", "I10", "C189"]);
        assert!(rules(&schema, &batches).is_empty());
        let (schema, batches) = text_table(
            "drug_name",
            &[
                "アムロジピン錠5mg",
                "メトホルミン塩酸塩錠",
                "ロキソプロフェン",
            ],
        );
        assert!(rules(&schema, &batches).is_empty());
    }

    #[test]
    fn direct_identifiers_are_refused_by_column_and_rule() {
        let cases = [
            ("who", vec!["ヤマダ タロウ", "スズキ ハナコ"], "person-name"),
            ("who", vec!["山田 太郎", "鈴木 花子"], "person-name"),
            ("insurer", vec!["06131236", "01130012"], "insurer-number"),
            ("born", vec!["1955-12-20", "1960/01/02"], "full-date"),
            ("born", vec!["3301220", "4010203"], "full-date"),
            ("zip", vec!["100-0001", "060-0001"], "postcode"),
            (
                "contact",
                vec!["03-1234-5678", "090-1234-5678"],
                "phone-number",
            ),
            (
                "lives",
                vec!["東京都千代田区千代田1-1", "札幌市中央区北1条西2丁目"],
                "address",
            ),
        ];
        for (column, values, rule) in cases {
            let (schema, batches) = text_table(column, &values);
            let findings = screen(&schema, &batches, &keys());
            assert!(
                findings
                    .iter()
                    .any(|f| f.rule.id() == rule && f.column == column),
                "{column} {values:?}: {findings:?}"
            );
            // The finding names the column and the rule, never a value.
            for finding in &findings {
                let text = finding.to_string();
                assert!(values.iter().all(|value| !text.contains(value)), "{text}");
            }
        }
        let (schema, batches) = text_table("氏名", &["a"]);
        assert_eq!(rules(&schema, &batches), ["identifier-name"]);
    }

    #[test]
    fn person_ids_of_any_project_are_refused() {
        let ids = ProjectIds::new([7; KEY_BYTES]);
        let values: Vec<i64> = vec![5, 17, ids.project_id(42).unwrap()];
        let schema = Schema::new(vec![Field::new("code", DataType::Int64, false)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Int64Array::from(values))],
        )
        .unwrap();
        assert_eq!(rules(&schema, &[batch]), ["person-key"]);
        let text = ids.project_id(7).unwrap().to_string();
        let (schema, batches) = text_table("code", &["x", &text]);
        assert_eq!(rules(&schema, &batches), ["person-key"]);
        // Small integers are codes, not ids: release ids never reach a session.
        let schema = Schema::new(vec![Field::new("code", DataType::Int64, false)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Int64Array::from(vec![1_i64, 2, 3, 999]))],
        )
        .unwrap();
        assert!(rules(&schema, &[batch]).is_empty());
        // Every id up to the release's largest is a person's (ids after a
        // merge run past the number of persons); beyond it, none.
        for (release_id, refused) in [(1_000, true), (1_001, false), (0, false)] {
            let value = ids.project_id(release_id).unwrap();
            let batch = RecordBatch::try_new(
                Arc::new(schema.clone()),
                vec![Arc::new(Int64Array::from(vec![value]))],
            )
            .unwrap();
            assert_eq!(
                !rules(&schema, &[batch]).is_empty(),
                refused,
                "release id {release_id}"
            );
        }
    }

    #[test]
    fn date_types_and_sizes_are_refused() {
        let schema = Schema::new(vec![Field::new("day", DataType::Date32, false)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(Date32Array::from(vec![1]))],
        )
        .unwrap();
        assert_eq!(rules(&schema, &[batch]), ["full-date"]);
        let wide = Schema::new(
            (0..=MAX_COLUMNS)
                .map(|i| Field::new(format!("c{i}"), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        );
        assert_eq!(rules(&wide, &[]), ["size"]);
    }
}
