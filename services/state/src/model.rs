//! The records kept in the state store.

use std::fmt;
use std::str::FromStr;

use enclave_core::date::{CivilDate, YearMonth};
use serde::{Deserialize, Serialize};

use crate::StateError;

/// The publication threshold of the NDB guidelines: a project may raise it,
/// never lower it.
pub const DEFAULT_K: u32 = 10;

/// How many values a project may have answered fresh by the release ledger
/// unless its approval says otherwise (docs/query-rules.md, "Fresh-value
/// budget"). Values that repeat earlier answers are not counted.
pub const DEFAULT_FRESH_VALUE_BUDGET: u64 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Applies for data and queries approved projects.
    Researcher,
    /// Member of the review committee: reviews applications and outputs.
    Reviewer,
    /// Committee chair: a reviewer who also assigns reviewers and decides.
    Chair,
    /// Data steward: ingests extracts, holds the key, records opt-outs.
    Steward,
    /// Operator: audits access, watches and closes projects.
    Operator,
    /// Administrator: an operator who also manages accounts.
    Admin,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Researcher,
        Role::Reviewer,
        Role::Chair,
        Role::Steward,
        Role::Operator,
        Role::Admin,
    ];

    /// The name used on the command line, in the API and in policy lines.
    pub fn name(self) -> &'static str {
        match self {
            Role::Researcher => "researcher",
            Role::Reviewer => "reviewer",
            Role::Chair => "chair",
            Role::Steward => "steward",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = StateError;
    fn from_str(text: &str) -> Result<Role, StateError> {
        Role::ALL
            .into_iter()
            .find(|role| role.name() == text)
            .ok_or_else(|| {
                StateError::invalid(
                    "role",
                    "expected researcher, reviewer, chair, steward, operator or admin",
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// PHC string of an argon2id hash.
    pub password_hash: String,
    pub disabled: bool,
}

/// How released counts are rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    None,
    To5,
    To10,
}

impl Rounding {
    /// The multiple counts are rounded to (1 = unrounded).
    pub fn base(self) -> i64 {
        match self {
            Rounding::None => 1,
            Rounding::To5 => 5,
            Rounding::To10 => 10,
        }
    }
}

impl FromStr for Rounding {
    type Err = StateError;
    fn from_str(text: &str) -> Result<Rounding, StateError> {
        match text {
            "none" => Ok(Rounding::None),
            "5" => Ok(Rounding::To5),
            "10" => Ok(Rounding::To10),
            _ => Err(StateError::invalid("rounding", "expected none, 5 or 10")),
        }
    }
}

/// How a project's answers are protected across its queries (and every
/// other project's): docs/query-rules.md, "Across queries".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protection {
    /// The release ledger: a cell within k-1 persons of any cell released
    /// before repeats that answer; fresh answers carry sticky noise.
    #[default]
    Ledger,
    /// The single-query rules alone: exact (rounded) answers, open to
    /// differencing across queries. Only for projects whose every output
    /// is checked by hand before it is used.
    SingleQuery,
}

impl Protection {
    pub fn name(self) -> &'static str {
        match self {
            Protection::Ledger => "ledger",
            Protection::SingleQuery => "single-query",
        }
    }
}

impl FromStr for Protection {
    type Err = StateError;
    fn from_str(text: &str) -> Result<Protection, StateError> {
        match text {
            "ledger" => Ok(Protection::Ledger),
            "single-query" => Ok(Protection::SingleQuery),
            _ => Err(StateError::invalid(
                "protection",
                "expected ledger or single-query",
            )),
        }
    }
}

/// One granted table and the columns of it the project may use
/// (`None` = every column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `schema.table`, e.g. `ndb.receipts`.
    pub table: String,
    pub columns: Option<Vec<String>>,
}

impl Grant {
    /// Every column of `table`.
    pub fn whole_table(table: impl Into<String>) -> Grant {
        Grant {
            table: table.into(),
            columns: None,
        }
    }

    /// The schema part of `schema.table` (`ndb`, `dpc`, `care`, …).
    pub fn schema(&self) -> &str {
        self.table.split_once('.').map_or("", |(schema, _)| schema)
    }

    pub fn allows_column(&self, column: &str) -> bool {
        self.columns
            .as_ref()
            .is_none_or(|columns| columns.iter().any(|c| c == column))
    }
}

/// Parses `schema.table` or `schema.table:col,col`.
impl FromStr for Grant {
    type Err = StateError;
    fn from_str(text: &str) -> Result<Grant, StateError> {
        let (table, columns) = match text.split_once(':') {
            Some((table, columns)) => {
                let columns: Vec<String> = columns
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect();
                if columns.is_empty() {
                    return Err(StateError::invalid("grant", "empty column list"));
                }
                (table, Some(columns))
            }
            None => (text, None),
        };
        if table.split('.').count() != 2 || table.split('.').any(str::is_empty) {
            return Err(StateError::invalid(
                "grant",
                "expected schema.table[:column,column]",
            ));
        }
        Ok(Grant {
            table: table.to_string(),
            columns,
        })
    }
}

/// The service months a project may see, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub first: YearMonthText,
    pub last: YearMonthText,
}

/// A month kept as `YYYY-MM` (the form of the `service_month` columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct YearMonthText(YearMonth);

impl YearMonthText {
    pub fn month(self) -> YearMonth {
        self.0
    }
}

impl TryFrom<String> for YearMonthText {
    type Error = StateError;
    fn try_from(text: String) -> Result<YearMonthText, StateError> {
        parse_month(&text).map(YearMonthText)
    }
}

impl From<YearMonthText> for String {
    fn from(month: YearMonthText) -> String {
        month.0.to_string()
    }
}

fn parse_month(text: &str) -> Result<YearMonth, StateError> {
    let bad = || StateError::invalid("period", "months are written YYYY-MM");
    let (year, month) = text.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    YearMonth::new(
        year.parse().map_err(|_| bad())?,
        month.parse().map_err(|_| bad())?,
    )
    .map_err(|_| bad())
}

/// Parses `YYYY-MM..YYYY-MM`.
impl FromStr for Period {
    type Err = StateError;
    fn from_str(text: &str) -> Result<Period, StateError> {
        let (first, last) = text
            .split_once("..")
            .ok_or_else(|| StateError::invalid("period", "expected YYYY-MM..YYYY-MM"))?;
        let period = Period {
            first: YearMonthText(parse_month(first)?),
            last: YearMonthText(parse_month(last)?),
        };
        if period.first > period.last {
            return Err(StateError::invalid(
                "period",
                "the first month is after the last",
            ));
        }
        Ok(period)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.first.0, self.last.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    Active,
    Closed,
}

/// An approved project: who may query what, when, under which rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub title: String,
    pub members: Vec<String>,
    pub grants: Vec<Grant>,
    pub period: Period,
    /// The last day queries are allowed (`YYYY-MM-DD`, inclusive).
    pub valid_until: String,
    pub k: u32,
    pub rounding: Rounding,
    /// Stored projects from before the ledger read as protected by it.
    #[serde(default)]
    pub protection: Protection,
    /// Values the release ledger may answer fresh for this project, over
    /// its life; stored projects from before the budget read the default.
    #[serde(default = "default_fresh_value_budget")]
    pub fresh_value_budget: u64,
    pub workspace_quota_bytes: u64,
    pub status: ProjectStatus,
}

/// [`DEFAULT_FRESH_VALUE_BUDGET`], for fields stored before the budget.
pub fn default_fresh_value_budget() -> u64 {
    DEFAULT_FRESH_VALUE_BUDGET
}

/// The scope a Flight SQL session names (instead of a project) to query the
/// audit log; no project may take this id.
pub const AUDIT_SCOPE: &str = "audit";

/// The built-in, never-stored project the public dashboard's statistics run
/// in; no project may take this id.
pub const PUBLIC_STATISTICS_SCOPE: &str = "public-statistics";

impl Project {
    /// Checks what the store does not: threshold, ids, dates, grants.
    pub fn validate(&self) -> Result<(), StateError> {
        if self.k < DEFAULT_K {
            return Err(StateError::invalid(
                "k",
                format!("a project may raise k above {DEFAULT_K}, never lower it"),
            ));
        }
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(StateError::invalid(
                "id",
                "use 1-64 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        if self.id == AUDIT_SCOPE {
            return Err(StateError::invalid(
                "id",
                format!("`{AUDIT_SCOPE}` names the operators' audit schema; choose another id"),
            ));
        }
        if self.id == PUBLIC_STATISTICS_SCOPE {
            return Err(StateError::invalid(
                "id",
                format!(
                    "`{PUBLIC_STATISTICS_SCOPE}` names the public dashboard's project; choose another id"
                ),
            ));
        }
        if self.members.is_empty() {
            return Err(StateError::invalid("members", "a project needs a member"));
        }
        if self.grants.is_empty() {
            return Err(StateError::invalid(
                "grants",
                "a project needs a granted table",
            ));
        }
        if self.fresh_value_budget == 0 {
            return Err(StateError::invalid(
                "fresh-values",
                "a project needs a fresh-value budget of at least 1",
            ));
        }
        self.valid_until_date()?;
        Ok(())
    }

    pub fn valid_until_date(&self) -> Result<CivilDate, StateError> {
        let digits: String = self.valid_until.chars().filter(|c| *c != '-').collect();
        if self.valid_until.len() != 10 {
            return Err(StateError::invalid("until", "expected YYYY-MM-DD"));
        }
        CivilDate::parse_yyyymmdd(&digits)
            .map_err(|_| StateError::invalid("until", "expected YYYY-MM-DD"))
    }

    /// True while queries are allowed on `today`.
    pub fn is_current(&self, today: CivilDate) -> bool {
        self.valid_until_date().is_ok_and(|until| today <= until)
    }

    /// True when the project is active and its grant runs on `today`.
    pub fn is_open_on(&self, today: CivilDate) -> bool {
        self.status == ProjectStatus::Active && self.is_current(today)
    }

    pub fn grant(&self, table: &str) -> Option<&Grant> {
        self.grants.iter().find(|grant| grant.table == table)
    }
}

/// A table a project brought in and the committee approved: `ref.<name>`
/// in that project's sessions, read from `object` in the data store.
/// Destroyed (when the project closes) it stays recorded, unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceTable {
    pub project: String,
    pub name: String,
    pub object: String,
    pub available: bool,
}

impl ReferenceTable {
    /// The key a reference table is stored under.
    pub fn key(&self) -> String {
        format!("{}/{}", self.project, self.name)
    }
}

/// Something a closed project held, destroyed: what it was, its name, size
/// and SHA-256, never its contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destroyed {
    /// `workspace_table` or `output`.
    pub kind: String,
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Destroyed {
    /// The record of `content`, about to be destroyed.
    pub fn of(kind: &str, name: &str, content: &[u8]) -> Destroyed {
        let digest = ring::digest::digest(&ring::digest::SHA256, content);
        Destroyed {
            kind: kind.to_string(),
            name: name.to_string(),
            bytes: content.len() as u64,
            sha256: digest
                .as_ref()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect(),
        }
    }
}

/// One opt-out: a keyed lookup value of the person (never an identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutEntry {
    /// Hex of the keyed lookup hash.
    pub lookup: String,
    /// `YYYY-MM-DD` the request was recorded.
    pub recorded_on: String,
}
