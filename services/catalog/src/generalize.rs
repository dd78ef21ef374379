//! Generalization rules: how a quasi-identifier is coarsened before it is written.

use enclave_core::date::CivilDate;
use serde::{Deserialize, Serialize};

use crate::error::RuleError;

/// Digits of a Japanese postcode (郵便番号), without the hyphen.
const POSTCODE_DIGITS: usize = 7;

/// How a column's published value is derived from the identified one.
/// Written in TOML as `{ kind = "age_band", width = 5, pool_from = 95 }`,
/// `{ kind = "postcode_prefix", digits = 3 }` or `{ kind = "month" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Generalization {
    /// Age in years → band label; see [`age_band`].
    AgeBand(AgeBandRule),
    /// Full postcode → its first `digits` digits; see [`postcode_prefix`].
    PostcodePrefix { digits: u32 },
    /// A date → its month `YYYY-MM`; see [`month_of`].
    Month,
}

/// Age bands of `width` years, optionally pooling every age below
/// `pool_below` into one band and every age from `pool_from` into another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeBandRule {
    pub width: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_below: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_from: Option<u32>,
}

impl Generalization {
    /// Checks that the rule can be applied consistently.
    pub(crate) fn check(&self) -> Result<(), RuleError> {
        match self {
            Generalization::AgeBand(rule) => rule.check(),
            Generalization::PostcodePrefix { digits } => check_postcode_digits(*digits),
            Generalization::Month => Ok(()),
        }
    }
}

impl AgeBandRule {
    /// Width above 0, `pool_below < pool_from`, pool bounds on band edges.
    fn check(&self) -> Result<(), RuleError> {
        if self.width == 0 {
            return Err(RuleError::AgeBandWidth);
        }
        if let (Some(pool_below), Some(pool_from)) = (self.pool_below, self.pool_from)
            && pool_below >= pool_from
        {
            return Err(RuleError::AgeBandPools {
                pool_below,
                pool_from,
            });
        }
        let misaligned = [self.pool_below, self.pool_from]
            .into_iter()
            .flatten()
            .find(|bound| !bound.is_multiple_of(self.width));
        match misaligned {
            Some(bound) => Err(RuleError::AgeBandAlignment {
                bound,
                width: self.width,
            }),
            None => Ok(()),
        }
    }
}

fn check_postcode_digits(digits: u32) -> Result<(), RuleError> {
    match usize::try_from(digits) {
        Ok(1..=POSTCODE_DIGITS) => Ok(()),
        _ => Err(RuleError::PostcodeDigits { digits }),
    }
}

/// The band label of an age: `"00-04"`, `"65-69"`, the pooled `"00-64"`
/// (below `pool_below` = 65) or `"95+"` (from `pool_from` = 95).
/// Negative ages (a birth date after the service date) count as 0.
pub fn age_band(rule: &AgeBandRule, age_years: i32) -> String {
    let age = u32::try_from(age_years).unwrap_or(0);
    if let Some(pool_from) = rule.pool_from
        && age >= pool_from
    {
        return format!("{pool_from}+");
    }
    if let Some(pool_below) = rule.pool_below
        && age < pool_below
    {
        return format!("00-{:02}", pool_below - 1);
    }
    let width = rule.width.max(1);
    let start = age / width * width;
    format!("{start:02}-{:02}", start + width - 1)
}

/// The first `digits` digits of a 7-digit postcode (`"1000001"` or
/// `"100-0001"`), or `None` if the postcode is malformed or `digits` is not 1–7.
pub fn postcode_prefix(digits: u32, postcode: &str) -> Option<String> {
    let digits = usize::try_from(digits)
        .ok()
        .filter(|digits| (1..=POSTCODE_DIGITS).contains(digits))?;
    let postcode: String = postcode.trim().chars().filter(|c| *c != '-').collect();
    let well_formed =
        postcode.len() == POSTCODE_DIGITS && postcode.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| postcode[..digits].to_owned())
}

/// A date published as its month, `YYYY-MM`.
pub fn month_of(date: CivilDate) -> String {
    date.year_month().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NDB: AgeBandRule = AgeBandRule {
        width: 5,
        pool_below: None,
        pool_from: Some(95),
    };
    const CARE: AgeBandRule = AgeBandRule {
        width: 5,
        pool_below: Some(65),
        pool_from: Some(95),
    };

    #[test]
    fn ndb_age_bands() {
        let cases = [
            (0, "00-04"),
            (4, "00-04"),
            (5, "05-09"),
            (64, "60-64"),
            (65, "65-69"),
            (94, "90-94"),
            (95, "95+"),
            (103, "95+"),
            (-1, "00-04"),
        ];
        for (age, band) in cases {
            assert_eq!(age_band(&NDB, age), band, "age {age}");
        }
    }

    #[test]
    fn care_age_bands() {
        let cases = [
            (0, "00-64"),
            (40, "00-64"),
            (64, "00-64"),
            (65, "65-69"),
            (94, "90-94"),
            (95, "95+"),
            (103, "95+"),
        ];
        for (age, band) in cases {
            assert_eq!(age_band(&CARE, age), band, "age {age}");
        }
    }

    #[test]
    fn unpooled_ages_keep_going() {
        let rule = AgeBandRule {
            width: 10,
            pool_below: None,
            pool_from: None,
        };
        assert_eq!(age_band(&rule, 7), "00-09");
        assert_eq!(age_band(&rule, 104), "100-109");
    }

    #[test]
    fn postcode_prefixes() {
        assert_eq!(postcode_prefix(3, "1000001").as_deref(), Some("100"));
        assert_eq!(postcode_prefix(3, "100-0001").as_deref(), Some("100"));
        assert_eq!(postcode_prefix(3, " 0600000 ").as_deref(), Some("060"));
        assert_eq!(postcode_prefix(7, "1000001").as_deref(), Some("1000001"));
        assert_eq!(postcode_prefix(3, "100001"), None);
        assert_eq!(postcode_prefix(3, "10000012"), None);
        assert_eq!(postcode_prefix(3, "１００0001"), None);
        assert_eq!(postcode_prefix(3, ""), None);
        assert_eq!(postcode_prefix(0, "1000001"), None);
        assert_eq!(postcode_prefix(8, "1000001"), None);
    }

    #[test]
    fn months_of_dates() {
        let date = CivilDate::new(2024, 3, 31).unwrap();
        assert_eq!(month_of(date), "2024-03");
    }

    #[test]
    fn rules_are_checked() {
        assert_eq!(NDB.check(), Ok(()));
        assert_eq!(CARE.check(), Ok(()));
        let zero = AgeBandRule { width: 0, ..NDB };
        assert_eq!(zero.check(), Err(RuleError::AgeBandWidth));
        let crossed = AgeBandRule {
            width: 5,
            pool_below: Some(95),
            pool_from: Some(65),
        };
        assert!(matches!(
            crossed.check(),
            Err(RuleError::AgeBandPools { .. })
        ));
        let misaligned = AgeBandRule {
            width: 5,
            pool_below: Some(63),
            pool_from: None,
        };
        assert_eq!(
            misaligned.check(),
            Err(RuleError::AgeBandAlignment {
                bound: 63,
                width: 5
            })
        );
        let postcode = Generalization::PostcodePrefix { digits: 9 };
        assert_eq!(
            postcode.check(),
            Err(RuleError::PostcodeDigits { digits: 9 })
        );
    }

    #[test]
    fn rules_read_from_toml() {
        #[derive(Deserialize)]
        struct Holder {
            generalization: Generalization,
        }
        let parse = |text: &str| toml::from_str::<Holder>(text).map(|h| h.generalization);
        let care = parse(
            "generalization = { kind = \"age_band\", width = 5, pool_below = 65, pool_from = 95 }",
        );
        assert_eq!(care.unwrap(), Generalization::AgeBand(CARE));
        let postcode = parse("generalization = { kind = \"postcode_prefix\", digits = 3 }");
        assert_eq!(
            postcode.unwrap(),
            Generalization::PostcodePrefix { digits: 3 }
        );
        assert_eq!(
            parse("generalization = { kind = \"month\" }").unwrap(),
            Generalization::Month
        );
        assert!(
            parse("generalization = { kind = \"age_band\", width = 5, pool_over = 95 }").is_err()
        );
        assert!(parse("generalization = { kind = \"decade\" }").is_err());
    }
}
