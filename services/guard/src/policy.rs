//! The publication rules as data: `policies/disclosure.toml`, built in.
//! Thresholds every release applies (minimum persons, facilities,
//! dominance), the columns whose totals have a minimum of their own (NDB
//! drug volumes), and the population tiers of municipality groups (介護DB).
//! The file is parsed and checked once; a rule the engine cannot apply as
//! written is an error, not a silent default.

use std::collections::HashMap;
use std::sync::LazyLock;

use enclave_catalog::{AgeBandRule, Generalization};
use enclave_core::masters::Masters;
use serde::Deserialize;

use crate::disclosure::DisclosureRules;

const EMBEDDED: &str = include_str!("../../../policies/disclosure.toml");

static POLICY: LazyLock<Result<PublicationPolicy, PolicyError>> =
    LazyLock::new(|| PublicationPolicy::parse(EMBEDDED));

/// Why the policy file cannot be applied.
#[derive(Debug, Clone, thiserror::Error)]
#[error("policies/disclosure.toml: {0}")]
pub struct PolicyError(String);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicationPolicy {
    pub thresholds: Thresholds,
    #[serde(default)]
    pub volumes: Vec<VolumeRule>,
    #[serde(default)]
    pub municipalities: MunicipalityRule,
    pub care_ages: CareAges,
    /// Each municipality's least persons per group, from its population.
    #[serde(skip)]
    pub municipality_limits: MunicipalityLimits,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub min_persons: u32,
    pub min_facilities: u32,
    pub dominance_persons: u32,
    pub dominance_share: f64,
}

/// Totals of `column` (`schema.table.column`) under `minimum` are withheld.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeRule {
    pub column: String,
    pub minimum: f64,
}

/// The schema of care data and the only age bands its results may show.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CareAges {
    pub schema: String,
    pub bands: AgeBandRule,
}

/// The municipality code columns and the population tiers of their groups.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MunicipalityRule {
    pub columns: Vec<String>,
    pub tiers: Vec<PopulationTier>,
}

/// Groups of a municipality with fewer than `population_below` inhabitants
/// are withheld (`withhold`) or need `min_persons` persons.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationTier {
    pub population_below: u64,
    #[serde(default)]
    pub withhold: bool,
    pub min_persons: Option<u32>,
}

/// What a group of one municipality needs, by municipality code.
#[derive(Debug, Clone, Default)]
pub struct MunicipalityLimits {
    by_code: HashMap<String, GroupLimit>,
}

/// What a group of one municipality needs beyond the project's k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupLimit {
    /// No counts are shown.
    Withheld,
    /// At least this many persons.
    AtLeast(u32),
}

impl MunicipalityLimits {
    fn from_tiers(tiers: &[PopulationTier]) -> MunicipalityLimits {
        let by_code = Masters::get()
            .municipalities
            .iter()
            .map(|municipality| {
                let tier = tiers
                    .iter()
                    .find(|tier| municipality.population < tier.population_below);
                let limit = match tier {
                    Some(tier) if tier.withhold => GroupLimit::Withheld,
                    Some(tier) => GroupLimit::AtLeast(tier.min_persons.unwrap_or(0)),
                    None => GroupLimit::AtLeast(0),
                };
                (municipality.code.clone(), limit)
            })
            .collect();
        MunicipalityLimits { by_code }
    }

    /// The limit of a group of municipality `code`: a code without a known
    /// population is withheld.
    pub fn of(&self, code: &str) -> GroupLimit {
        self.by_code
            .get(code)
            .copied()
            .unwrap_or(GroupLimit::Withheld)
    }
}

impl PublicationPolicy {
    /// The built-in policy.
    pub fn embedded() -> Result<&'static PublicationPolicy, PolicyError> {
        POLICY.as_ref().map_err(Clone::clone)
    }

    pub fn parse(text: &str) -> Result<PublicationPolicy, PolicyError> {
        let mut policy: PublicationPolicy =
            toml::from_str(text).map_err(|error| PolicyError(error.to_string()))?;
        policy.check()?;
        policy.municipality_limits = MunicipalityLimits::from_tiers(&policy.municipalities.tiers);
        Ok(policy)
    }

    fn check(&self) -> Result<(), PolicyError> {
        let thresholds = &self.thresholds;
        if thresholds.min_persons < 2 {
            return Err(PolicyError("min_persons must be at least 2".into()));
        }
        if thresholds.dominance_persons != 2 {
            return Err(PolicyError(
                "dominance_persons: the engine computes the two largest contributions; only 2 is supported".into(),
            ));
        }
        if !(thresholds.dominance_share > 0.0 && thresholds.dominance_share <= 1.0) {
            return Err(PolicyError("dominance_share must be in (0, 1]".into()));
        }
        for volume in &self.volumes {
            if volume.column.split('.').count() != 3 || !volume.minimum.is_finite() {
                return Err(PolicyError(format!(
                    "volume rule `{}`: give schema.table.column and a finite minimum",
                    volume.column
                )));
            }
        }
        self.municipalities.check()
    }

    /// The release thresholds for a project with minimum `k` persons (never
    /// below the policy's).
    pub fn rules(&'static self, k: u32) -> DisclosureRules {
        DisclosureRules {
            min_facilities: self.thresholds.min_facilities,
            dominance_share: self.thresholds.dominance_share,
            volume_minimum: self.volume_floor(),
            municipalities: Some(&self.municipality_limits),
            ..DisclosureRules::new(k.max(self.thresholds.min_persons))
        }
    }

    /// Whether `schema` holds care data (its results show care age bands).
    pub fn is_care(&self, schema: &str) -> bool {
        self.care_ages.schema == schema
    }

    /// Whether a column generalized by `generalization` holds ages banded
    /// otherwise than care data may show.
    pub fn is_finer_than_care_ages(&self, generalization: Option<&Generalization>) -> bool {
        matches!(generalization, Some(Generalization::AgeBand(rule)) if *rule != self.care_ages.bands)
    }

    /// Whether `schema.table`'s `column` holds municipality codes.
    pub fn is_municipality(&self, table: &str, column: &str) -> bool {
        let name = format!("{table}.{column}");
        self.municipalities.columns.contains(&name)
    }

    /// The minimum a total of any volume column must reach: the largest of
    /// the rules' (a total's column is followed, not which rule it came
    /// from).
    fn volume_floor(&self) -> f64 {
        self.volumes
            .iter()
            .map(|volume| volume.minimum)
            .fold(0.0, f64::max)
    }

    /// The minimum of totals of `schema.table.column`, if it has one.
    pub fn volume_minimum(&self, table: &str, column: &str) -> Option<f64> {
        self.volumes
            .iter()
            .find(|volume| volume.column == format!("{table}.{column}"))
            .map(|volume| volume.minimum)
    }
}

impl MunicipalityRule {
    /// Columns as schema.table.column; tiers by rising population, each
    /// either withheld or with a minimum.
    fn check(&self) -> Result<(), PolicyError> {
        if let Some(column) = self.columns.iter().find(|c| c.split('.').count() != 3) {
            return Err(PolicyError(format!(
                "municipality column `{column}`: give schema.table.column"
            )));
        }
        let rising = self
            .tiers
            .windows(2)
            .all(|pair| pair[0].population_below < pair[1].population_below);
        let decided = self
            .tiers
            .iter()
            .all(|tier| tier.withhold != tier.min_persons.is_some());
        if !(rising && decided) {
            return Err(PolicyError(
                "municipality tiers: list them by rising population_below, each with `withhold = true` or `min_persons`".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_holds_the_published_rules() {
        let policy = PublicationPolicy::embedded().unwrap();
        let rules = policy.rules(10);
        assert_eq!((rules.k, rules.min_facilities), (10, 3));
        assert_eq!(rules.dominance_share, 0.90);
        assert_eq!(rules.volume_minimum, 1000.0);
        assert_eq!(policy.rules(20).k, 20);
        assert_eq!(policy.volume_minimum("ndb.drugs", "quantity"), Some(1000.0));
        assert_eq!(policy.volume_minimum("ndb.drugs", "points"), None);
        assert!(policy.is_municipality("care.claims", "municipality_code"));
        assert!(!policy.is_municipality("care.claims", "prefecture_code"));
        let catalog = enclave_catalog::Catalog::embedded();
        let age = |table: &str| {
            let (_, table) = catalog.table(table).unwrap();
            policy.is_finer_than_care_ages(table.generalization("age_band"))
        };
        assert!(
            age("ndb.receipts"),
            "NDB bands under 65 are finer than care's"
        );
        assert!(!age("care.claims"));
        assert!(policy.is_care("care") && !policy.is_care("ndb"));
    }

    #[test]
    fn municipalities_take_the_tier_of_their_population() {
        let limits = &PublicationPolicy::embedded().unwrap().municipality_limits;
        let masters = &Masters::get().municipalities;
        for municipality in masters {
            let expected = match municipality.population {
                ..2_000 => GroupLimit::Withheld,
                2_000..25_000 => GroupLimit::AtLeast(20),
                _ => GroupLimit::AtLeast(0),
            };
            assert_eq!(
                limits.of(&municipality.code),
                expected,
                "{}",
                municipality.code
            );
        }
        let tiers: std::collections::HashSet<_> =
            masters.iter().map(|m| limits.of(&m.code)).collect();
        assert_eq!(
            tiers.len(),
            3,
            "the synthetic municipalities span every tier"
        );
        assert_eq!(limits.of("999999"), GroupLimit::Withheld);
    }

    #[test]
    fn rules_the_engine_cannot_apply_are_errors() {
        let base = "[care_ages]\nschema = \"care\"\nbands = { width = 5 }\n[thresholds]\nmin_persons = 10\nmin_facilities = 3\ndominance_share = 0.9\n";
        for bad in [
            format!("{base}dominance_persons = 3\n"),
            format!("{base}dominance_persons = 2\nextra = 1\n"),
            format!(
                "{base}dominance_persons = 2\n[[volumes]]\ncolumn = \"quantity\"\nminimum = 1\n"
            ),
            format!("{base}dominance_persons = 2\n").replace("min_persons = 10", "min_persons = 1"),
            format!(
                "{base}dominance_persons = 2\n[municipalities]\ncolumns = []\ntiers = [{{ population_below = 10, withhold = true, min_persons = 5 }}]\n"
            ),
            format!(
                "{base}dominance_persons = 2\n[municipalities]\ncolumns = []\ntiers = [{{ population_below = 10, min_persons = 5 }}, {{ population_below = 5, min_persons = 9 }}]\n"
            ),
        ] {
            assert!(PublicationPolicy::parse(&bad).is_err(), "{bad}");
        }
    }
}
