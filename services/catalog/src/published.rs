//! The published catalog: what researchers see of a release before they apply.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::CatalogError;
use crate::model::{Catalog, ColumnDef, SchemaDef, TableDef, qualified_name};

/// What a release holds of one table, as the ingest pipeline counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStats {
    pub rows: u64,
    /// First and last `service_month` (`YYYY-MM`) with rows.
    pub first_month: Option<String>,
    pub last_month: Option<String>,
}

/// The catalog of one release, safe to show to anyone: descriptions,
/// coverage and rounded row counts, no count below 10.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedCatalog {
    pub release_id: String,
    pub schemas: Vec<PublishedSchema>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedSchema {
    pub name: String,
    pub title_ja: String,
    pub title_en: String,
    pub description_ja: String,
    pub description_en: String,
    pub tables: Vec<PublishedTable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedTable {
    pub name: String,
    /// `schema.table`, the name used in queries.
    pub qualified_name: String,
    pub description_ja: String,
    pub description_en: String,
    pub partition_by: Option<String>,
    /// Rows rounded to the nearest 10; `None` for 1–9 rows (see [`round_count`]).
    pub rows_rounded: Option<u64>,
    /// The rounded count for display: `"0"`, `"<10"`, `"1,230"`.
    pub rows_display: String,
    pub first_month: Option<String>,
    pub last_month: Option<String>,
    pub columns: Vec<ColumnDef>,
}

/// The language of descriptions in a text listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

/// A row count as it may be published: 0 stays 0, 1–9 is withheld (`None`),
/// anything else is rounded to the nearest 10 (halves up, so 15 → 20).
pub fn round_count(rows: u64) -> Option<u64> {
    match rows {
        0 => Some(0),
        1..=9 => None,
        _ => Some(rows.saturating_add(5) / 10 * 10),
    }
}

/// [`round_count`] for display: `"0"`, `"<10"`, or the rounded count with
/// thousands separators (`"1,230"`).
pub fn display_count(rows: u64) -> String {
    match round_count(rows) {
        Some(rounded) => group_thousands(rounded),
        None => "<10".to_owned(),
    }
}

/// `n` with thousands separators (`1,234,567`).
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() * 4 / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

impl PublishedCatalog {
    /// The published catalog of a release. `stats` is keyed by qualified
    /// table name; a table without stats is published with 0 rows.
    pub fn build(
        catalog: &Catalog,
        stats: &BTreeMap<String, TableStats>,
        release_id: &str,
    ) -> PublishedCatalog {
        let schemas = catalog
            .schemas
            .iter()
            .map(|schema| PublishedSchema::build(schema, stats))
            .collect();
        PublishedCatalog {
            release_id: release_id.to_owned(),
            schemas,
        }
    }

    /// A listing for the terminal, with descriptions in `lang`.
    pub fn render_text(&self, lang: Lang) -> String {
        Listing {
            catalog: self,
            lang,
        }
        .to_string()
    }
}

impl PublishedSchema {
    fn build(schema: &SchemaDef, stats: &BTreeMap<String, TableStats>) -> PublishedSchema {
        let tables = schema
            .tables
            .iter()
            .map(|table| {
                let qualified = qualified_name(&schema.name, &table.name);
                let table_stats = stats.get(&qualified).cloned().unwrap_or_default();
                PublishedTable::build(qualified, table, table_stats)
            })
            .collect();
        PublishedSchema {
            name: schema.name.clone(),
            title_ja: schema.title_ja.clone(),
            title_en: schema.title_en.clone(),
            description_ja: schema.description_ja.clone(),
            description_en: schema.description_en.clone(),
            tables,
        }
    }
}

impl PublishedTable {
    fn build(qualified_name: String, table: &TableDef, stats: TableStats) -> PublishedTable {
        PublishedTable {
            name: table.name.clone(),
            qualified_name,
            description_ja: table.description_ja.clone(),
            description_en: table.description_en.clone(),
            partition_by: table.partition_by.clone(),
            rows_rounded: round_count(stats.rows),
            rows_display: display_count(stats.rows),
            first_month: stats.first_month,
            last_month: stats.last_month,
            columns: table.columns.clone(),
        }
    }
}

impl Lang {
    fn pick<'a>(self, ja: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }
}

impl FromStr for Lang {
    type Err = CatalogError;

    /// `ja` or `en`.
    fn from_str(code: &str) -> Result<Lang, CatalogError> {
        match code {
            "ja" => Ok(Lang::Ja),
            "en" => Ok(Lang::En),
            _ => Err(CatalogError::UnknownLanguage(code.to_owned())),
        }
    }
}

/// The text listing of a published catalog.
struct Listing<'a> {
    catalog: &'a PublishedCatalog,
    lang: Lang,
}

impl Listing<'_> {
    fn write_table(&self, f: &mut fmt::Formatter<'_>, table: &PublishedTable) -> fmt::Result {
        let lang = self.lang;
        write!(f, "\n-- {}: {}", table.qualified_name, table.rows_display)?;
        f.write_str(lang.pick(" 行", " rows"))?;
        if let (Some(first), Some(last)) = (&table.first_month, &table.last_month) {
            write!(
                f,
                "{}{first}{}{last}",
                lang.pick("、期間 ", ", "),
                lang.pick("〜", " to ")
            )?;
        }
        if let Some(partition) = &table.partition_by {
            write!(
                f,
                "{}{partition}",
                lang.pick("、パーティション ", ", partitioned by ")
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "{}",
            lang.pick(&table.description_ja, &table.description_en)
        )?;
        self.write_columns(f, &table.columns)
    }

    fn write_columns(&self, f: &mut fmt::Formatter<'_>, columns: &[ColumnDef]) -> fmt::Result {
        let types: Vec<String> = columns.iter().map(type_label).collect();
        let name_width = columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let type_width = types.iter().map(String::len).max().unwrap_or(0);
        let class_width = columns
            .iter()
            .map(|c| c.class.as_str().len())
            .max()
            .unwrap_or(0);
        for (column, data_type) in columns.iter().zip(&types) {
            let description = self
                .lang
                .pick(&column.description_ja, &column.description_en);
            write!(
                f,
                "  {:<name_width$}  {data_type:<type_width$}  {:<class_width$}  {description}",
                column.name,
                column.class.as_str(),
            )?;
            match &column.code_system {
                Some(code_system) => writeln!(f, " [{code_system}]")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

/// The column type, with `?` when the column may be null.
fn type_label(column: &ColumnDef) -> String {
    let nullable = if column.nullable { "?" } else { "" };
    format!("{}{nullable}", column.data_type)
}

impl fmt::Display for Listing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lang = self.lang;
        writeln!(
            f,
            "{}{}",
            lang.pick("リリース ", "Release "),
            self.catalog.release_id
        )?;
        writeln!(
            f,
            "{}",
            lang.pick(
                "行数は10単位に丸め、1〜9行は「<10」と表示する。型の後の「?」は null を含みうる列を示す。",
                "Row counts are rounded to the nearest 10; 1 to 9 rows show as \"<10\". A \"?\" after a type marks a nullable column.",
            )
        )?;
        for schema in &self.catalog.schemas {
            let title = lang.pick(&schema.title_ja, &schema.title_en);
            writeln!(f, "\n== {}: {title}", schema.name)?;
            writeln!(
                f,
                "{}",
                lang.pick(&schema.description_ja, &schema.description_en)
            )?;
            for table in &schema.tables {
                self.write_table(f, table)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_below_ten_are_never_shown() {
        let cases = [
            (0, Some(0), "0"),
            (1, None, "<10"),
            (9, None, "<10"),
            (10, Some(10), "10"),
            (14, Some(10), "10"),
            (15, Some(20), "20"),
            (1234, Some(1230), "1,230"),
            (1_234_567, Some(1_234_570), "1,234,570"),
        ];
        for (rows, rounded, display) in cases {
            assert_eq!(round_count(rows), rounded, "{rows} rows");
            assert_eq!(display_count(rows), display, "{rows} rows");
        }
        assert_eq!(round_count(u64::MAX).map(|n| n % 10), Some(0));
    }

    #[test]
    fn languages_parse() {
        assert_eq!("ja".parse::<Lang>().unwrap(), Lang::Ja);
        assert_eq!("en".parse::<Lang>().unwrap(), Lang::En);
        assert!(
            matches!("fr".parse::<Lang>(), Err(CatalogError::UnknownLanguage(code)) if code == "fr")
        );
    }

    fn stats(rows: u64) -> TableStats {
        TableStats {
            rows,
            first_month: Some("2023-04".to_owned()),
            last_month: Some("2024-03".to_owned()),
        }
    }

    fn published() -> PublishedCatalog {
        let stats = BTreeMap::from([
            ("ndb.receipts".to_owned(), stats(123_456)),
            ("ndb.diagnoses".to_owned(), stats(7)),
            ("care.claims".to_owned(), stats(15)),
        ]);
        PublishedCatalog::build(Catalog::embedded(), &stats, "r-test")
    }

    #[test]
    fn build_rounds_counts_and_keeps_coverage() {
        let catalog = published();
        let table = |name: &str| {
            catalog
                .schemas
                .iter()
                .flat_map(|schema| &schema.tables)
                .find(|table| table.qualified_name == name)
                .unwrap()
        };
        assert_eq!(catalog.release_id, "r-test");
        assert_eq!(table("ndb.receipts").rows_rounded, Some(123_460));
        assert_eq!(table("ndb.receipts").rows_display, "123,460");
        assert_eq!(
            table("ndb.receipts").first_month.as_deref(),
            Some("2023-04")
        );
        assert_eq!(table("ndb.diagnoses").rows_rounded, None);
        assert_eq!(table("ndb.diagnoses").rows_display, "<10");
        assert_eq!(table("care.claims").rows_rounded, Some(20));
        assert_eq!(table("dpc.details").rows_rounded, Some(0));
        assert_eq!(table("dpc.details").last_month, None);
        let receipts = Catalog::embedded().table("ndb.receipts").unwrap().1;
        assert_eq!(table("ndb.receipts").columns, receipts.columns);
    }

    #[test]
    fn json_shows_no_small_count() {
        let json = serde_json::to_value(published()).unwrap();
        let diagnoses = &json["schemas"][0]["tables"][1];
        assert_eq!(diagnoses["qualified_name"], "ndb.diagnoses");
        assert_eq!(diagnoses["rows_rounded"], serde_json::Value::Null);
        assert_eq!(diagnoses["rows_display"], "<10");
        assert!(diagnoses.get("rows").is_none());
        let column = &json["schemas"][0]["tables"][0]["columns"][3];
        assert_eq!(column["name"], "age_band");
        assert_eq!(column["type"], "utf8");
        assert_eq!(column["class"], "quasi_identifier");
        assert_eq!(column["generalization"]["kind"], "age_band");
    }

    #[test]
    fn text_listing_in_both_languages() {
        let catalog = published();
        let en = catalog.render_text(Lang::En);
        assert!(en.contains("Release r-test"));
        assert!(en.contains(
            "-- ndb.receipts: 123,460 rows, 2023-04 to 2024-03, partitioned by service_month"
        ));
        assert!(en.contains("-- ndb.diagnoses: <10 rows"));
        assert!(!en.contains(": 7 rows"));
        assert!(en.contains("[ICD-10 (2013)]"));
        assert!(en.contains("outcome"));
        let ja = catalog.render_text(Lang::Ja);
        assert!(ja.contains("-- ndb.receipts: 123,460 行、期間 2023-04〜2024-03"));
        assert!(ja.contains("RE 男女区分('1' 男, '2' 女)"));
        assert!(ja.contains("utf8?"));
    }
}
