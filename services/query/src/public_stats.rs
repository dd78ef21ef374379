//! Open statistics for the portal's public dashboard.
//!
//! Each statistic is a fixed statement run in a built-in project that is
//! never stored (so no Flight SQL user can name it): the whole coverage of
//! the served release, only the columns the statement needs, k = 10 persons
//! per group and counts rounded to 10. It runs through
//! [`ProjectSession::execute`] like any researcher's query, so the guard
//! (period, opt-outs, person lineage, the released aggregate) and disclosure
//! control apply unchanged. Disclosure control drops the groups it
//! suppresses; a statistic lists the released groups and counts the others.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use arrow::record_batch::RecordBatch;
use enclave_core::masters::{Masters, care_level_name};
use enclave_state::{DEFAULT_K, Grant, Project, ProjectStatus, Protection, Rounding};

use crate::engine::{Outcome, ProjectSession, QueryEngine};
use enclave_guard::disclosure::Released;
use enclave_guard::error::QueryError;

/// The id and user name of the public-statistics project (reserved: no
/// stored project may take it).
pub use enclave_state::PUBLIC_STATISTICS_SCOPE as PUBLIC_PROJECT;

/// The public project never expires; it exists only while the engine runs.
const NEVER_EXPIRES: &str = "9999-12-31";

impl QueryEngine {
    /// A session of the public-statistics project over `grants`: the whole
    /// coverage of the served release, k = [`DEFAULT_K`], counts rounded to
    /// 10, no members and no workspace. Only Rust callers reach it: the
    /// project is not in the state store, so [`QueryEngine::session`] never
    /// finds it.
    pub fn public_session(&self, grants: Vec<Grant>) -> Result<ProjectSession, QueryError> {
        let period = self.coverage().ok_or_else(|| {
            QueryError::Invalid("the served release holds no service months".into())
        })?;
        let project = Project {
            id: PUBLIC_PROJECT.into(),
            title: "Public statistics".into(),
            members: Vec::new(),
            grants,
            period,
            valid_until: NEVER_EXPIRES.into(),
            k: DEFAULT_K,
            rounding: Rounding::To10,
            protection: Protection::Ledger,
            // The dashboard asks its fixed statistics again and again: the
            // same sets, answered by repeats after their first release.
            fresh_value_budget: u64::MAX,
            workspace_quota_bytes: 0,
            status: ProjectStatus::Active,
        };
        Ok(ProjectSession::new(self.clone(), PUBLIC_PROJECT, project))
    }
}

/// One published statistic with its bilingual labels and released groups.
#[derive(Debug, Clone)]
pub struct PublicStatistic {
    /// Stable identifier (for URLs and file names).
    pub id: &'static str,
    pub title_ja: &'static str,
    pub title_en: &'static str,
    /// What was counted and how it was protected.
    pub note_ja: &'static str,
    pub note_en: &'static str,
    /// Name of the category axis.
    pub category_ja: &'static str,
    pub category_en: &'static str,
    /// Name of the series dimension, when rows have one.
    pub series_ja: Option<&'static str>,
    pub series_en: Option<&'static str>,
    /// Name of the counted value.
    pub value_ja: &'static str,
    pub value_en: &'static str,
    /// Released groups, ordered by category then series.
    pub rows: Vec<StatisticRow>,
    /// Groups disclosure control withheld (not among `rows`).
    pub suppressed_groups: usize,
}

/// One released group of a statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticRow {
    pub category: String,
    pub series: Option<String>,
    /// A count of at least k persons' records, rounded to 10. Withheld
    /// groups are not rows (see [`PublicStatistic::suppressed_groups`]).
    pub value: i64,
}

/// The sentence every note ends with.
macro_rules! protection_ja {
    () => {
        "10人未満の区分は秘匿し(表に含めない)、件数は10件単位に丸めています。"
    };
}
macro_rules! protection_en {
    () => {
        "Groups of fewer than 10 persons are withheld (left out); counts are rounded to the nearest 10."
    };
}

/// A statistic's statement, the columns it is granted and its labels.
struct Definition {
    /// `schema.table` and the columns the statement names.
    table: &'static str,
    columns: &'static [&'static str],
    /// Returns `category`, optionally `series`, and `value`.
    sql: &'static str,
    /// The shown category and series for released values.
    category: fn(String) -> String,
    series: fn(String) -> String,
    /// The labels, with no rows yet.
    labels: PublicStatistic,
}

const DEFINITIONS: [Definition; 3] = [
    Definition {
        table: "ndb.receipts",
        columns: &["service_month"],
        sql: "SELECT service_month AS category, count(*) AS value \
              FROM ndb.receipts GROUP BY service_month ORDER BY category",
        category: std::convert::identity,
        series: std::convert::identity,
        labels: PublicStatistic {
            id: "receipts_by_month",
            title_ja: "診療月別のレセプト件数",
            title_en: "Receipts by service month",
            note_ja: concat!("NDB の医科・DPC・調剤レセプト(全国)。", protection_ja!()),
            note_en: concat!(
                "NDB medical, DPC and pharmacy receipts, national. ",
                protection_en!()
            ),
            category_ja: "診療年月",
            category_en: "Service month",
            series_ja: None,
            series_en: None,
            value_ja: "レセプト件数",
            value_en: "Receipts",
            rows: Vec::new(),
            suppressed_groups: 0,
        },
    },
    Definition {
        table: "ndb.receipts",
        columns: &["prefecture_code"],
        sql: "SELECT prefecture_code AS category, count(*) AS value \
              FROM ndb.receipts GROUP BY prefecture_code ORDER BY category",
        category: prefecture_label,
        series: std::convert::identity,
        labels: PublicStatistic {
            id: "receipts_by_prefecture",
            title_ja: "都道府県別のレセプト件数",
            title_en: "Receipts by prefecture",
            note_ja: concat!(
                "NDB の医科・DPC・調剤レセプト、医療機関所在地の都道府県別、公開期間全体。",
                protection_ja!()
            ),
            note_en: concat!(
                "NDB medical, DPC and pharmacy receipts by the facility's prefecture, over the whole period. ",
                protection_en!()
            ),
            category_ja: "都道府県",
            category_en: "Prefecture",
            series_ja: None,
            series_en: None,
            value_ja: "レセプト件数",
            value_en: "Receipts",
            rows: Vec::new(),
            suppressed_groups: 0,
        },
    },
    Definition {
        table: "care.certifications",
        columns: &["age_band", "care_level"],
        sql: "SELECT age_band AS category, care_level AS series, count(*) AS value \
              FROM care.certifications GROUP BY age_band, care_level ORDER BY category, series",
        category: std::convert::identity,
        series: care_level_label,
        labels: PublicStatistic {
            id: "certifications_by_age_band",
            title_ja: "年齢階級・要介護状態区分別の要介護認定件数",
            title_en: "Care-level certifications by age band and care level",
            note_ja: concat!(
                "介護DB の要介護認定、公開期間全体。要介護状態区分は '01' 非該当、'12' 要支援1、'13' 要支援2、'21'〜'25' 要介護1〜5。",
                protection_ja!()
            ),
            note_en: concat!(
                "Care-level certifications of the care database over the whole period. Care levels: '01' not eligible, '12' support 1, '13' support 2, '21'–'25' care levels 1–5. ",
                protection_en!()
            ),
            category_ja: "年齢階級",
            category_en: "Age band",
            series_ja: Some("要介護状態区分"),
            series_en: Some("Care level"),
            value_ja: "認定件数",
            value_en: "Certifications",
            rows: Vec::new(),
            suppressed_groups: 0,
        },
    },
];

/// Every public statistic of the served release, in dashboard order.
pub async fn compute(engine: &QueryEngine) -> Result<Vec<PublicStatistic>, QueryError> {
    let mut statistics = Vec::with_capacity(DEFINITIONS.len());
    for definition in &DEFINITIONS {
        statistics.push(definition.compute(engine).await?);
    }
    Ok(statistics)
}

impl Definition {
    fn grant(&self) -> Grant {
        Grant {
            table: self.table.to_string(),
            columns: Some(self.columns.iter().map(|c| c.to_string()).collect()),
        }
    }

    async fn compute(&self, engine: &QueryEngine) -> Result<PublicStatistic, QueryError> {
        let session = engine.public_session(vec![self.grant()])?;
        let Outcome::Rows(released) = session.execute(self.sql, None).await? else {
            return Err(QueryError::internal(
                "a public statistic's statement released no rows",
            ));
        };
        let rows = self.rows(&released)?;
        let withheld_values = released.released_groups - rows.len();
        Ok(PublicStatistic {
            rows,
            suppressed_groups: released.suppressed_groups + withheld_values,
            ..self.labels.clone()
        })
    }

    /// The released groups whose value was released.
    fn rows(&self, released: &Released) -> Result<Vec<StatisticRow>, QueryError> {
        let mut rows = Vec::with_capacity(released.released_groups);
        for batch in &released.batches {
            let categories = text_column(batch, "category")?;
            let series = match batch.column_by_name("series") {
                Some(_) => text_column(batch, "series")?,
                None => vec![None; batch.num_rows()],
            };
            let values = count_column(batch, "value")?;
            for ((category, series), value) in categories.into_iter().zip(series).zip(values) {
                // A group shown with its value withheld (the release ledger
                // repeats a group's answer for a group near it).
                let Some(value) = value else {
                    continue;
                };
                rows.push(StatisticRow {
                    category: (self.category)(category.unwrap_or_default()),
                    series: series.map(self.series),
                    value,
                });
            }
        }
        Ok(rows)
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a dyn Array, QueryError> {
    batch
        .column_by_name(name)
        .map(|column| column.as_ref())
        .ok_or_else(|| QueryError::internal(format!("public statistic has no column {name}")))
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>, QueryError> {
    let text = arrow::compute::cast(column(batch, name)?, &DataType::Utf8)
        .map_err(QueryError::internal)?;
    Ok(text
        .as_string::<i32>()
        .iter()
        .map(|value| value.map(str::to_string))
        .collect())
}

fn count_column(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>, QueryError> {
    let counts = arrow::compute::cast(column(batch, name)?, &DataType::Int64)
        .map_err(QueryError::internal)?;
    Ok(counts.as_primitive::<Int64Type>().iter().collect())
}

/// `13 東京都` for `13`; codes the prefecture master lacks stay as they are.
/// `12` → `12 要支援1`: the code with its name from the care-level master.
fn care_level_label(code: String) -> String {
    match care_level_name(&code) {
        Some(name) => format!("{code} {name}"),
        None => code,
    }
}

fn prefecture_label(code: String) -> String {
    let prefecture = code.parse::<u8>().ok().and_then(|number| {
        Masters::get()
            .prefectures
            .iter()
            .find(|prefecture| prefecture.code == number)
    });
    match prefecture {
        Some(prefecture) => format!("{code} {}", prefecture.name_ja),
        None => code,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use datafusion::prelude::{ParquetReadOptions, SessionContext};
    use enclave_state::StateStore;
    use enclave_store::DataStore;

    use super::*;
    use crate::limits::Limits;
    use enclave_guard::error::Rule;

    #[test]
    fn care_levels_are_shown_with_their_names() {
        assert_eq!(care_level_label("12".into()), "12 要支援1");
        assert_eq!(care_level_label("25".into()), "25 要介護5");
        assert_eq!(care_level_label("99".into()), "99");
    }

    struct Release {
        dir: tempfile::TempDir,
        engine: QueryEngine,
    }

    async fn release(persons: u64) -> Release {
        let dir = tempfile::tempdir().unwrap();
        let extracts = dir.path().join("extracts");
        enclave_synth::generate(&enclave_synth::SynthConfig::new(persons, 3, &extracts)).unwrap();
        let keys = enclave_linkage::LinkageKeys::derive(&[7u8; 32]).unwrap();
        let store = DataStore::open_local(&dir.path().join("data")).unwrap();
        let catalog = enclave_catalog::Catalog::embedded();
        enclave_ingest::ingest(&store, &extracts, &keys, catalog, &Default::default())
            .await
            .unwrap();
        let state = StateStore::open(&dir.path().join("state")).unwrap();
        // A fixed noise key: the ledger's noise is the same every run.
        state
            .secret(
                enclave_state::Secret::LedgerNoise,
                "public-statistics-test-key",
            )
            .unwrap();
        let engine = QueryEngine::open(store, Arc::new(state), Limits::default())
            .await
            .unwrap();
        Release { dir, engine }
    }

    /// The Parquet files of `table` in the release, found on disk.
    fn table_files(release: &Release, table: &str) -> Vec<String> {
        let root = release
            .dir
            .path()
            .join("data/releases")
            .join(release.engine.release_id())
            .join("tables")
            .join(table);
        let mut files = Vec::new();
        collect_parquet(&root, &mut files);
        assert!(
            !files.is_empty(),
            "no Parquet files under {}",
            root.display()
        );
        files
    }

    fn collect_parquet(dir: &Path, files: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                collect_parquet(&path, files);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                files.push(path.display().to_string());
            }
        }
    }

    /// What a statistic counts, restated for a direct count.
    fn counted(id: &str) -> (&'static str, &'static str, Option<&'static str>) {
        match id {
            "receipts_by_month" => ("ndb.receipts", "service_month", None),
            "receipts_by_prefecture" => ("ndb.receipts", "prefecture_code", None),
            "certifications_by_age_band" => ("care.certifications", "age_band", Some("care_level")),
            other => panic!("no direct count for {other}"),
        }
    }

    type Groups = BTreeMap<(String, Option<String>), (i64, i64)>;

    /// Rows and distinct persons per group, read straight from the
    /// release's Parquet files without the engine.
    async fn direct_groups(release: &Release, id: &str) -> Groups {
        let (table, category, series) = counted(id);
        let context = SessionContext::new();
        let rows = context
            .read_parquet(table_files(release, table), ParquetReadOptions::default())
            .await
            .unwrap();
        context.register_table("t", rows.into_view()).unwrap();
        let series = series.map_or("CAST(NULL AS VARCHAR)".to_string(), |s| s.to_string());
        let sql = format!(
            "SELECT {category}, {series}, count(*), count(DISTINCT person_id) FROM t GROUP BY 1, 2"
        );
        let batches = context.sql(&sql).await.unwrap().collect().await.unwrap();
        let mut groups = Groups::new();
        for batch in &batches {
            let categories = text_column(batch, batch.schema().field(0).name()).unwrap();
            let series = text_column(batch, batch.schema().field(1).name()).unwrap();
            let rows = count_column(batch, batch.schema().field(2).name())
                .unwrap()
                .into_iter()
                .map(Option::unwrap)
                .collect::<Vec<i64>>();
            let persons = count_column(batch, batch.schema().field(3).name())
                .unwrap()
                .into_iter()
                .map(Option::unwrap)
                .collect::<Vec<i64>>();
            for (index, category) in categories.into_iter().enumerate() {
                let key = (category.unwrap(), series[index].clone());
                groups.insert(key, (rows[index], persons[index]));
            }
        }
        groups
    }

    /// The rows and suppressed count a k = 10, round-to-10 project must
    /// get, with categories as released (before labelling).
    fn expected(groups: &Groups) -> (Vec<(String, Option<String>, i64)>, usize) {
        let k = i64::from(DEFAULT_K);
        let released = groups
            .iter()
            .filter(|(_, (_, persons))| *persons >= k)
            .map(|((category, series), (rows, _))| {
                (category.clone(), series.clone(), (rows + 5) / 10 * 10)
            })
            .collect();
        let suppressed = groups.values().filter(|(_, persons)| *persons < k).count();
        (released, suppressed)
    }

    /// A statistic's rows as codes (the code in front of each label).
    fn as_released(statistic: &PublicStatistic) -> Vec<(String, Option<String>, i64)> {
        let code = |label: &str| label.split(' ').next().unwrap().to_string();
        statistic
            .rows
            .iter()
            .map(|row| {
                (
                    code(&row.category),
                    row.series.as_deref().map(code),
                    row.value,
                )
            })
            .collect()
    }

    /// The same groups as a direct count, each value within the release
    /// ledger's noise (a few rows) and rounding of the exact count.
    async fn assert_equals_direct_count(release: &Release, statistic: &PublicStatistic) {
        let groups = direct_groups(release, statistic.id).await;
        let (rows, suppressed) = expected(&groups);
        let released = as_released(statistic);
        let keys = |rows: &[(String, Option<String>, i64)]| -> Vec<(String, Option<String>)> {
            rows.iter()
                .map(|(c, s, _)| (c.clone(), s.clone()))
                .collect()
        };
        assert_eq!(keys(&released), keys(&rows), "{}", statistic.id);
        for ((_, _, value), (category, _, exact)) in released.iter().zip(&rows) {
            // Five standard deviations of the noise for a few receipts per
            // person, and the rounding.
            let tolerance = 40 + exact / 5;
            assert!(
                (value - exact).abs() <= tolerance,
                "{} {category}: {value} vs {exact}",
                statistic.id
            );
        }
        assert_eq!(statistic.suppressed_groups, suppressed, "{}", statistic.id);
    }

    fn by_id<'a>(statistics: &'a [PublicStatistic], id: &str) -> &'a PublicStatistic {
        statistics.iter().find(|s| s.id == id).unwrap()
    }

    /// The `service_month=` partitions of a table.
    fn months_on_disk(release: &Release, table: &str) -> Vec<String> {
        let mut months: Vec<String> = table_files(release, table)
            .iter()
            .filter_map(|file| {
                let (_, rest) = file.split_once("service_month=")?;
                Some(rest.split('/').next()?.to_string())
            })
            .collect();
        months.sort();
        months.dedup();
        months
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn public_statistics_match_a_rounded_direct_count_of_the_release() {
        let release = release(3_000).await;
        let statistics = compute(&release.engine).await.unwrap();
        let ids: Vec<&str> = statistics.iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "receipts_by_month",
                "receipts_by_prefecture",
                "certifications_by_age_band"
            ]
        );
        for statistic in &statistics {
            assert!(!statistic.rows.is_empty(), "{} has no rows", statistic.id);
            for row in &statistic.rows {
                assert!(
                    row.value >= 10 && row.value % 10 == 0,
                    "{}: {row:?}",
                    statistic.id
                );
                assert_eq!(row.series.is_some(), statistic.series_ja.is_some());
            }
            let order: Vec<_> = statistic
                .rows
                .iter()
                .map(|r| (&r.category, &r.series))
                .collect();
            assert!(order.is_sorted(), "{} rows out of order", statistic.id);
            assert_equals_direct_count(&release, statistic).await;
        }
        let months: Vec<String> = by_id(&statistics, "receipts_by_month")
            .rows
            .iter()
            .map(|row| row.category.clone())
            .collect();
        assert_eq!(months, months_on_disk(&release, "ndb.receipts"));
        assert_eq!(months.len(), 24);
        let prefectures = &by_id(&statistics, "receipts_by_prefecture").rows;
        assert!(prefectures.iter().any(|row| row.category == "13 東京都"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_under_k_persons_are_withheld_not_released() {
        let release = release(60).await;
        let statistics = compute(&release.engine).await.unwrap();
        // In so small a release the ledger may show a group under k by
        // repeating the answer of a group a few persons from it (released
        // before, so it tells nothing new); values stay at 10 or more.
        for statistic in &statistics {
            assert!(statistic.rows.iter().all(|row| row.value >= 10));
            let groups = direct_groups(&release, statistic.id).await;
            for row in as_released(statistic) {
                assert!(
                    groups.contains_key(&(row.0.clone(), row.1.clone())),
                    "{row:?}"
                );
            }
        }
        let certifications = by_id(&statistics, "certifications_by_age_band");
        assert!(certifications.rows.is_empty(), "{certifications:?}");
        assert!(certifications.suppressed_groups > 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_public_project_runs_the_guard_and_no_user_can_open_it() {
        let release = release(200).await;
        let engine = &release.engine;
        let grants = vec![Grant::whole_table("ndb.receipts")];
        let rows = engine
            .public_session(grants)
            .unwrap()
            .execute("SELECT * FROM ndb.receipts", None)
            .await;
        assert!(
            matches!(
                rows,
                Err(QueryError::Refused {
                    rule: Rule::RowLevel,
                    ..
                })
            ),
            "{rows:?}"
        );
        let narrow = vec!["ndb.receipts:service_month".parse().unwrap()];
        let hidden = engine
            .public_session(narrow)
            .unwrap()
            .execute("SELECT sex, count(*) FROM ndb.receipts GROUP BY sex", None)
            .await;
        assert!(
            matches!(
                hidden,
                Err(QueryError::Refused {
                    rule: Rule::NotGranted,
                    ..
                })
            ),
            "{hidden:?}"
        );
        let by_name = engine.session(PUBLIC_PROJECT, Some(PUBLIC_PROJECT)).await;
        assert!(
            matches!(
                by_name,
                Err(QueryError::Refused {
                    rule: Rule::NoProject,
                    ..
                })
            ),
            "{by_name:?}"
        );
    }
}
