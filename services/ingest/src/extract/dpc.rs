//! DPC survey data: K (identity), FF1 (様式1) and EFn (EF details) files of
//! one facility and month, joined into admissions.

use std::collections::HashMap;

use enclave_core::card::InsurerNumber;
use enclave_core::date::CivilDate;
use enclave_core::person::Sex;

use super::fields::{Digits, ExtractError, Fields, lines};

const SEPARATOR: u8 = b'\t';

/// The three files of one facility-month (any may be absent but K).
#[derive(Debug, Clone, Copy)]
pub struct DpcFiles<'a> {
    /// `(relative path, bytes)` of the K file.
    pub k: (&'a str, &'a [u8]),
    pub ff1: Option<(&'a str, &'a [u8])>,
    pub ef: Option<(&'a str, &'a [u8])>,
}

/// The admissions of one facility discharged in one month.
#[derive(Debug, Clone)]
pub struct DpcFacilityMonth {
    /// Path of the K file.
    pub path: String,
    /// 施設コード (9 digits).
    pub facility_code: String,
    pub admissions: Vec<DpcAdmission>,
}

/// Identity fields of a K row.
#[derive(Debug, Clone)]
pub struct DpcIdentity {
    pub kana_name: String,
    pub birth: CivilDate,
    pub sex: Sex,
    pub insurer: InsurerNumber,
    pub symbol: String,
    pub number: String,
    pub branch: String,
}

/// One admission: its K row, 様式1 items and EF lines.
#[derive(Debug, Clone)]
pub struct DpcAdmission {
    /// Line of the K row.
    pub line: usize,
    pub facility_code: String,
    /// データ識別番号: the facility's patient number.
    pub data_id: String,
    pub admitted: CivilDate,
    pub discharged: CivilDate,
    pub identity: DpcIdentity,
    /// 患者住所地域の郵便番号 (7 digits).
    pub postcode: String,
    pub route: String,
    pub emergency: bool,
    pub ambulance: bool,
    pub destination: String,
    pub outcome: String,
    pub death_within_24h: bool,
    pub icd10_main: Option<String>,
    pub icd10_trigger: Option<String>,
    pub icd10_resource: Option<String>,
    pub comorbidities: Vec<String>,
    pub details: Vec<EfLine>,
}

/// One EF line.
#[derive(Debug, Clone)]
pub struct EfLine {
    pub data_category: Digits<2>,
    /// レセプト電算コード.
    pub code: Digits<9>,
    pub quantity: Option<f64>,
    /// 出来高実績点数.
    pub points: f64,
    pub times: u32,
    pub performed: CivilDate,
}

/// `(施設コード, データ識別番号, 退院年月日, 入院年月日)`, the key of every DPC row.
type AdmissionKey = (String, String, CivilDate, CivilDate);

fn admission_key(f: &Fields<'_>) -> Result<AdmissionKey, ExtractError> {
    Ok((
        f.digits(1, "施設コード", 9)?.to_owned(),
        f.digits(2, "データ識別番号", 10)?.to_owned(),
        f.date(3, "退院年月日")?,
        f.date(4, "入院年月日")?,
    ))
}

/// Parses and joins the files of one facility-month.
pub fn parse_dpc(files: DpcFiles<'_>) -> Result<DpcFacilityMonth, ExtractError> {
    let (k_path, k_bytes) = files.k;
    let mut admissions = Vec::new();
    let mut index: HashMap<AdmissionKey, usize> = HashMap::new();
    for (line, bytes) in lines(k_bytes) {
        let f = Fields::split(k_path, line, "K", bytes, SEPARATOR, 11)?;
        let key = admission_key(&f)?;
        if index.insert(key.clone(), admissions.len()).is_some() {
            return Err(f.record_error("a second K row for one admission"));
        }
        admissions.push(parse_k(&f, key)?);
    }
    let facility_code = admissions
        .first()
        .map(|a: &DpcAdmission| a.facility_code.clone())
        .unwrap_or_default();
    if let Some((path, bytes)) = files.ff1 {
        for (line, bytes) in lines(bytes) {
            let f = Fields::split(path, line, "FF1", bytes, SEPARATOR, 10)?;
            let admission = find(&f, &index, &mut admissions)?;
            apply_ff1_item(&f, admission)?;
        }
    }
    if let Some((path, bytes)) = files.ef {
        for (line, bytes) in lines(bytes) {
            let f = Fields::split(path, line, "EF", bytes, SEPARATOR, 25)?;
            let detail = parse_ef(&f)?;
            find(&f, &index, &mut admissions)?.details.push(detail);
        }
    }
    if let Some(incomplete) = admissions.iter().find(|a| a.icd10_main.is_none()) {
        return Err(ExtractError {
            file: k_path.to_owned(),
            line: incomplete.line,
            record: "K".into(),
            field: String::new(),
            problem: "admission has no 様式1 主傷病名 (A006010)".into(),
        });
    }
    Ok(DpcFacilityMonth {
        path: k_path.to_owned(),
        facility_code,
        admissions,
    })
}

fn find<'v>(
    f: &Fields<'_>,
    index: &HashMap<AdmissionKey, usize>,
    admissions: &'v mut [DpcAdmission],
) -> Result<&'v mut DpcAdmission, ExtractError> {
    let key = admission_key(f)?;
    let position = index
        .get(&key)
        .ok_or_else(|| f.record_error("row refers to an admission with no K row"))?;
    Ok(&mut admissions[*position])
}

fn parse_k(f: &Fields<'_>, key: AdmissionKey) -> Result<DpcAdmission, ExtractError> {
    let (facility_code, data_id, discharged, admitted) = key;
    if discharged < admitted {
        return Err(f.error(3, "退院年月日", "is before the admission date"));
    }
    Ok(DpcAdmission {
        line: f.line(),
        facility_code,
        data_id,
        admitted,
        discharged,
        identity: DpcIdentity {
            birth: f.date(5, "生年月日")?,
            sex: f.sex(6, "性別")?,
            kana_name: f.text(7, "カナ氏名")?,
            insurer: f.insurer(8, "保険者番号")?,
            symbol: f.text(9, "被保険者証記号")?,
            number: f.text(10, "被保険者証番号")?,
            branch: f.optional_digits(11, "枝番", 2)?.to_owned(),
        },
        postcode: String::new(),
        route: String::new(),
        emergency: false,
        ambulance: false,
        destination: String::new(),
        outcome: String::new(),
        death_within_24h: false,
        icd10_main: None,
        icd10_trigger: None,
        icd10_resource: None,
        comorbidities: Vec::new(),
        details: Vec::new(),
    })
}

/// 様式1 payload `n` (1-based) is field `9 + n`.
const fn payload(n: usize) -> usize {
    9 + n
}

fn apply_ff1_item(f: &Fields<'_>, admission: &mut DpcAdmission) -> Result<(), ExtractError> {
    match f.required(7, "項目コード")? {
        "A000010" => {
            if f.date(payload(1), "生年月日")? != admission.identity.birth
                || f.sex(payload(2), "性別")? != admission.identity.sex
            {
                return Err(f.record_error("様式1 birth date or sex differs from the K row"));
            }
        }
        "A000020" => admission.postcode = f.digits(payload(1), "郵便番号", 7)?.to_owned(),
        "A000030" => {
            admission.route = f.required(payload(1), "入院経路")?.to_owned();
            admission.emergency = f
                .required(payload(2), "予定・救急医療入院")?
                .starts_with('2');
            admission.ambulance = f.flag(payload(3), "救急車による搬送")?;
        }
        "A000040" => {
            admission.destination = f.required(payload(1), "退院先")?.to_owned();
            admission.outcome = f.required(payload(2), "退院時転帰")?.to_owned();
            admission.death_within_24h = f.flag(payload(3), "24時間以内の死亡")?;
        }
        "A006010" => admission.icd10_main = Some(icd10(f)?),
        "A006020" => admission.icd10_trigger = Some(icd10(f)?),
        "A006030" => admission.icd10_resource = Some(icd10(f)?),
        "A006040" => admission.comorbidities.push(icd10(f)?),
        _ => return Err(f.error(7, "項目コード", "unknown 様式1 item code")),
    }
    Ok(())
}

/// An ICD-10 code written without the dot (`I639`), returned dotted (`I63.9`).
fn icd10(f: &Fields<'_>) -> Result<String, ExtractError> {
    let code = f.required(payload(1), "ICD10コード")?;
    let bytes = code.as_bytes();
    let well_formed = (3..=5).contains(&code.len())
        && bytes[0].is_ascii_uppercase()
        && bytes[1..3].iter().all(u8::is_ascii_digit)
        && bytes[3..].iter().all(u8::is_ascii_alphanumeric);
    if !well_formed {
        return Err(f.error(
            payload(1),
            "ICD10コード",
            "expected an ICD-10 code such as I639",
        ));
    }
    Ok(if code.len() > 3 {
        format!("{}.{}", &code[..3], &code[3..])
    } else {
        code.to_owned()
    })
}

fn parse_ef(f: &Fields<'_>) -> Result<EfLine, ExtractError> {
    Ok(EfLine {
        data_category: f.code(5, "データ区分")?,
        code: f.code(9, "レセプト電算コード")?,
        quantity: f.decimal(12, "使用量")?,
        points: f.decimal(18, "出来高実績点数")?.unwrap_or(0.0),
        times: f.integer_or_zero(22, "行為回数")? as u32,
        performed: f.date(25, "実施年月日")?,
    })
}
