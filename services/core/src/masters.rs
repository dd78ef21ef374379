//! Code masters shipped in `catalog/masters/`, compiled into the binary.
//!
//! They are small, curated subsets in the shape of the official masters
//! (支払基金 傷病名/医薬品/診療行為 masters, JIS X 0401 prefectures, 介護
//! サービス種類). The synthetic generator draws codes from them, and ingest
//! maps 7-digit disease codes to ICD-10 through them. The municipalities
//! are those of the synthetic release (six per prefecture, codes in the
//! form of 全国地方公共団体コード with their check digit, populations chosen
//! to span the publication tiers); a deployment over real extracts ships
//! the 住民基本台帳 populations in the same shape.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A 傷病名 master row: 7-digit disease code and its ICD-10 code.
#[derive(Debug, Clone)]
pub struct Disease {
    pub code: String,
    pub icd10: String,
    pub name_ja: String,
    pub name_en: String,
    /// The age around which the disease is most common (drives the generator).
    pub typical_age: u32,
}

/// A 医薬品 master row (9-digit receipt code, YJ code).
#[derive(Debug, Clone)]
pub struct Drug {
    pub code: String,
    pub yj_code: String,
    pub name_ja: String,
    pub name_en: String,
    /// `oral`, `topical` or `injection`.
    pub route: String,
    /// Points per unit dose, before rounding.
    pub points_per_unit: f64,
}

/// A 診療行為 master row (9-digit receipt code).
#[derive(Debug, Clone)]
pub struct Procedure {
    pub code: String,
    pub name_ja: String,
    pub name_en: String,
    pub points: u32,
    /// `outpatient`, `inpatient` or `any`.
    pub setting: String,
}

/// A prefecture (都道府県) with its population, for realistic weights.
#[derive(Debug, Clone)]
pub struct Prefecture {
    pub code: u8,
    pub name_ja: String,
    pub name_en: String,
    pub population_thousands: u32,
}

/// A municipality (市区町村): the insurer of long-term care, with the
/// population its publication tier follows.
#[derive(Debug, Clone)]
pub struct Municipality {
    /// 6 digits: prefecture, municipality, check digit (the care insurer
    /// number of a municipality).
    pub code: String,
    pub prefecture: u8,
    pub name_ja: String,
    pub name_en: String,
    pub population: u64,
}

/// A care service type (サービス種類コード, 2 characters).
#[derive(Debug, Clone)]
pub struct CareService {
    pub service_type: String,
    pub name_ja: String,
    pub name_en: String,
    pub units_per_use: u32,
    /// `home`, `short_stay` or `facility`.
    pub setting: String,
}

/// 要介護状態区分 (care level, H1) codes and names, in order of need.
pub const CARE_LEVELS: &[(&str, &str)] = &[
    ("01", "非該当"),
    ("12", "要支援1"),
    ("13", "要支援2"),
    ("21", "要介護1"),
    ("22", "要介護2"),
    ("23", "要介護3"),
    ("24", "要介護4"),
    ("25", "要介護5"),
];

/// The name of a care level code (`12` → 要支援1).
pub fn care_level_name(code: &str) -> Option<&'static str> {
    CARE_LEVELS
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, name)| *name)
}

/// All masters, parsed once.
#[derive(Debug)]
pub struct Masters {
    pub diseases: Vec<Disease>,
    pub drugs: Vec<Drug>,
    pub procedures: Vec<Procedure>,
    pub prefectures: Vec<Prefecture>,
    pub care_services: Vec<CareService>,
    pub municipalities: Vec<Municipality>,
    disease_index: HashMap<String, usize>,
}

const DISEASES_CSV: &str = include_str!("../../../catalog/masters/diseases.csv");
const DRUGS_CSV: &str = include_str!("../../../catalog/masters/drugs.csv");
const PROCEDURES_CSV: &str = include_str!("../../../catalog/masters/procedures.csv");
const PREFECTURES_CSV: &str = include_str!("../../../catalog/masters/prefectures.csv");
const CARE_SERVICES_CSV: &str = include_str!("../../../catalog/masters/care_services.csv");
const MUNICIPALITIES_CSV: &str = include_str!("../../../catalog/masters/municipalities.csv");

/// Data rows of a master file, split on commas (masters hold no quoted commas).
fn rows(csv: &str) -> impl Iterator<Item = Vec<&str>> {
    csv.lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').collect())
}

fn number<T: std::str::FromStr>(field: &str) -> T {
    field
        .parse()
        .unwrap_or_else(|_| panic!("master field {field:?} is not a number"))
}

impl Masters {
    /// The masters compiled into this binary.
    pub fn get() -> &'static Masters {
        static MASTERS: OnceLock<Masters> = OnceLock::new();
        MASTERS.get_or_init(Masters::parse)
    }

    fn parse() -> Masters {
        let diseases: Vec<Disease> = rows(DISEASES_CSV)
            .map(|f| Disease {
                code: f[0].into(),
                icd10: f[1].into(),
                name_ja: f[2].into(),
                name_en: f[3].into(),
                typical_age: number(f[4]),
            })
            .collect();
        let drugs = rows(DRUGS_CSV)
            .map(|f| Drug {
                code: f[0].into(),
                yj_code: f[1].into(),
                name_ja: f[2].into(),
                name_en: f[3].into(),
                route: f[4].into(),
                points_per_unit: number(f[5]),
            })
            .collect();
        let procedures = rows(PROCEDURES_CSV)
            .map(|f| Procedure {
                code: f[0].into(),
                name_ja: f[1].into(),
                name_en: f[2].into(),
                points: number(f[3]),
                setting: f[4].into(),
            })
            .collect();
        let prefectures = rows(PREFECTURES_CSV)
            .map(|f| Prefecture {
                code: number(f[0]),
                name_ja: f[1].into(),
                name_en: f[2].into(),
                population_thousands: number(f[3]),
            })
            .collect();
        let care_services = rows(CARE_SERVICES_CSV)
            .map(|f| CareService {
                service_type: f[0].into(),
                name_ja: f[1].into(),
                name_en: f[2].into(),
                units_per_use: number(f[3]),
                setting: f[4].into(),
            })
            .collect();
        let municipalities = rows(MUNICIPALITIES_CSV)
            .map(|f| Municipality {
                code: f[0].into(),
                prefecture: number(f[1]),
                name_ja: f[2].into(),
                name_en: f[3].into(),
                population: number(f[4]),
            })
            .collect();
        let disease_index = diseases
            .iter()
            .enumerate()
            .map(|(i, d)| (d.code.clone(), i))
            .collect();
        Masters {
            diseases,
            drugs,
            procedures,
            prefectures,
            care_services,
            municipalities,
            disease_index,
        }
    }

    /// The master row of a 7-digit disease code.
    pub fn disease(&self, code: &str) -> Option<&Disease> {
        self.disease_index.get(code).map(|&i| &self.diseases[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_parse_and_have_the_expected_shapes() {
        let m = Masters::get();
        assert_eq!(m.prefectures.len(), 47);
        assert!(m.municipalities.iter().all(|municipality| {
            let code = &municipality.code;
            code.len() == 6
                && crate::card::check_digit(&code[..5]).to_string() == code[5..]
                && code[..2] == format!("{:02}", municipality.prefecture)
        }));
        assert!(
            m.diseases
                .iter()
                .all(|d| d.code.len() == 7 && d.code.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(
            m.drugs
                .iter()
                .all(|d| d.code.len() == 9 && d.code.starts_with('6'))
        );
        assert!(
            m.procedures
                .iter()
                .all(|p| p.code.len() == 9 && p.code.starts_with('1'))
        );
        assert!(m.care_services.iter().all(|s| s.service_type.len() == 2));
        assert_eq!(m.disease("4019004").unwrap().icd10, "I10");
    }
}
