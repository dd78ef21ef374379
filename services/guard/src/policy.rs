//! The publication rules as data: `policies/disclosure.toml`, built in.
//! Thresholds every release applies (minimum persons, facilities,
//! dominance) and the columns whose totals have a minimum of their own (NDB
//! drug volumes). The file is parsed and checked once; a rule the engine
//! cannot apply as written is an error, not a silent default.

use std::sync::LazyLock;

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

impl PublicationPolicy {
    /// The built-in policy.
    pub fn embedded() -> Result<&'static PublicationPolicy, PolicyError> {
        POLICY.as_ref().map_err(Clone::clone)
    }

    pub fn parse(text: &str) -> Result<PublicationPolicy, PolicyError> {
        let policy: PublicationPolicy =
            toml::from_str(text).map_err(|error| PolicyError(error.to_string()))?;
        policy.check()?;
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
        Ok(())
    }

    /// The release thresholds for a project with minimum `k` persons (never
    /// below the policy's).
    pub fn rules(&self, k: u32) -> DisclosureRules {
        DisclosureRules {
            min_facilities: self.thresholds.min_facilities,
            dominance_share: self.thresholds.dominance_share,
            volume_minimum: self.volume_floor(),
            ..DisclosureRules::new(k.max(self.thresholds.min_persons))
        }
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
    }

    #[test]
    fn rules_the_engine_cannot_apply_are_errors() {
        let base = "[thresholds]\nmin_persons = 10\nmin_facilities = 3\ndominance_share = 0.9\n";
        for bad in [
            format!("{base}dominance_persons = 3\n"),
            format!("{base}dominance_persons = 2\nextra = 1\n"),
            format!(
                "{base}dominance_persons = 2\n[[volumes]]\ncolumn = \"quantity\"\nminimum = 1\n"
            ),
            "[thresholds]\nmin_persons = 1\nmin_facilities = 3\ndominance_persons = 2\ndominance_share = 0.9\n".to_string(),
        ] {
            assert!(PublicationPolicy::parse(&bad).is_err(), "{bad}");
        }
    }
}
