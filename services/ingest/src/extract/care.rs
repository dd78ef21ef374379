//! 介護DB files: care claims (KYUFU, 介護給付費明細書) and care-level
//! certifications (NINTEI, 要介護認定).

use enclave_core::card::InsurerNumber;
use enclave_core::date::{CivilDate, YearMonth};
use enclave_core::person::Sex;

use super::fields::{ExtractError, Fields, lines};

const SEPARATOR: u8 = b',';

/// 要介護状態区分 codes a claim may carry (a claim needs a certified level).
const CLAIM_CARE_LEVELS: [&str; 7] = ["12", "13", "21", "22", "23", "24", "25"];

/// One KYUFU file: one insurer's claims for one service month.
#[derive(Debug, Clone)]
pub struct CareClaimFile {
    pub path: String,
    pub claims: Vec<CareClaim>,
}

/// Who a care record is about: insurer, insured number, kana name, birth, sex
/// (consecutive fields in both KYUFU H1 and NINTEI rows).
#[derive(Debug, Clone)]
pub struct CareIdentity {
    pub insurer: InsurerNumber,
    /// 被保険者番号 as written (full- or half-width).
    pub care_number: String,
    pub kana_name: String,
    pub birth: CivilDate,
    pub sex: Sex,
}

/// One claim (H1 and its D1/T1 records).
#[derive(Debug, Clone)]
pub struct CareClaim {
    /// Line of the H1 record.
    pub line: usize,
    pub identity: CareIdentity,
    pub care_level: String,
    pub certified_from: CivilDate,
    pub certified_to: CivilDate,
    /// 事業所番号 (10 digits).
    pub provider: String,
    pub service_month: YearMonth,
    pub services: Vec<CareServiceLine>,
    pub total_units: i64,
    pub unit_price: f64,
    pub insurance_yen: i64,
    pub copay_yen: i64,
}

/// A D1 record.
#[derive(Debug, Clone)]
pub struct CareServiceLine {
    /// サービスコード: 種類 (2) + 項目 (4).
    pub code: String,
    pub units: i64,
    pub count: i64,
    pub service_units: i64,
}

/// One NINTEI file: one insurer's certifications.
#[derive(Debug, Clone)]
pub struct CertificationFile {
    pub path: String,
    pub rows: Vec<Certification>,
}

/// One certification.
#[derive(Debug, Clone)]
pub struct Certification {
    pub line: usize,
    pub identity: CareIdentity,
    pub postcode: String,
    pub applied: CivilDate,
    pub certified: CivilDate,
    pub care_level: String,
    pub valid_from: CivilDate,
    pub valid_to: Option<CivilDate>,
    pub application_type: String,
}

/// Parses a KYUFU file.
pub fn parse_care_claims(path: &str, bytes: &[u8]) -> Result<CareClaimFile, ExtractError> {
    let mut claims: Vec<CareClaim> = Vec::new();
    let mut totals_seen = true;
    for (line, bytes) in lines(bytes) {
        match bytes.get(..2).unwrap_or_default() {
            b"H1" => {
                check_totals(path, claims.last(), totals_seen)?;
                claims.push(parse_h1(&Fields::split(
                    path, line, "H1", bytes, SEPARATOR, 12,
                )?)?);
                totals_seen = false;
            }
            b"D1" => {
                let f = Fields::split(path, line, "D1", bytes, SEPARATOR, 5)?;
                let claim = claims
                    .last_mut()
                    .ok_or_else(|| f.record_error("D1 record before any H1"))?;
                claim.services.push(parse_d1(&f)?);
            }
            b"T1" => {
                let f = Fields::split(path, line, "T1", bytes, SEPARATOR, 5)?;
                let claim = claims
                    .last_mut()
                    .ok_or_else(|| f.record_error("T1 record before any H1"))?;
                if totals_seen {
                    return Err(f.record_error("a second T1 record in one claim"));
                }
                apply_t1(&f, claim)?;
                totals_seen = true;
            }
            _ => {
                return Err(Fields::split(path, line, "?", bytes, SEPARATOR, 0)?
                    .record_error("unknown record"));
            }
        }
    }
    check_totals(path, claims.last(), totals_seen)?;
    Ok(CareClaimFile {
        path: path.to_owned(),
        claims,
    })
}

fn check_totals(
    path: &str,
    claim: Option<&CareClaim>,
    totals_seen: bool,
) -> Result<(), ExtractError> {
    match claim {
        Some(claim) if !totals_seen => Err(ExtractError {
            file: path.to_owned(),
            line: claim.line,
            record: "H1".into(),
            field: String::new(),
            problem: "claim has no T1 record".into(),
        }),
        _ => Ok(()),
    }
}

fn parse_h1(f: &Fields<'_>) -> Result<CareClaim, ExtractError> {
    let care_level = f.required(7, "要介護状態区分")?;
    if !CLAIM_CARE_LEVELS.contains(&care_level) {
        return Err(f.error(7, "要介護状態区分", "expected 12, 13 or 21-25"));
    }
    Ok(CareClaim {
        line: f.line(),
        identity: care_identity(f, 2)?,
        care_level: care_level.to_owned(),
        certified_from: f.wareki_date(8, "認定有効期間開始")?,
        certified_to: f.wareki_date(9, "認定有効期間終了")?,
        provider: f.digits(10, "事業所番号", 10)?.to_owned(),
        service_month: f.wareki_month(11, "サービス提供年月")?,
        services: Vec::new(),
        total_units: 0,
        unit_price: 0.0,
        insurance_yen: 0,
        copay_yen: 0,
    })
}

fn parse_d1(f: &Fields<'_>) -> Result<CareServiceLine, ExtractError> {
    let code = f.required(2, "サービスコード")?;
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(f.error(2, "サービスコード", "expected 6 characters"));
    }
    Ok(CareServiceLine {
        code: code.to_owned(),
        units: f.integer(3, "単位数")?,
        count: f.integer(4, "日数・回数")?,
        service_units: f.integer(5, "サービス単位数")?,
    })
}

fn apply_t1(f: &Fields<'_>, claim: &mut CareClaim) -> Result<(), ExtractError> {
    claim.total_units = f.integer(2, "サービス単位数合計")?;
    claim.unit_price = f
        .decimal(3, "単位数単価")?
        .ok_or_else(|| f.error(3, "単位数単価", "is empty"))?;
    claim.insurance_yen = f.integer(4, "保険請求額")?;
    claim.copay_yen = f.integer(5, "利用者負担額")?;
    Ok(())
}

/// Parses a NINTEI file.
pub fn parse_certifications(path: &str, bytes: &[u8]) -> Result<CertificationFile, ExtractError> {
    let rows = lines(bytes)
        .map(|(line, bytes)| {
            parse_certification(&Fields::split(path, line, "NINTEI", bytes, SEPARATOR, 12)?)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CertificationFile {
        path: path.to_owned(),
        rows,
    })
}

fn parse_certification(f: &Fields<'_>) -> Result<Certification, ExtractError> {
    let care_level = f.required(9, "要介護状態区分")?;
    if care_level != "01" && !CLAIM_CARE_LEVELS.contains(&care_level) {
        return Err(f.error(9, "要介護状態区分", "expected 01, 12, 13 or 21-25"));
    }
    let application_type = f.required(12, "申請区分")?;
    if !matches!(application_type, "1" | "2" | "3") {
        return Err(f.error(12, "申請区分", "expected 1, 2 or 3"));
    }
    Ok(Certification {
        line: f.line(),
        identity: care_identity(f, 1)?,
        postcode: f.digits(6, "郵便番号", 7)?.to_owned(),
        applied: f.wareki_date(7, "申請年月日")?,
        certified: f.wareki_date(8, "認定年月日")?,
        care_level: care_level.to_owned(),
        valid_from: f.wareki_date(10, "有効期間開始")?,
        valid_to: f.optional_wareki_date(11, "有効期間終了")?,
        application_type: application_type.to_owned(),
    })
}

/// The five identity fields starting at field `first`.
fn care_identity(f: &Fields<'_>, first: usize) -> Result<CareIdentity, ExtractError> {
    Ok(CareIdentity {
        insurer: municipal_insurer(f, first)?,
        care_number: care_number(f, first + 1)?,
        kana_name: f.text(first + 2, "カナ氏名")?,
        birth: f.wareki_date(first + 3, "生年月日")?,
        sex: f.sex(first + 4, "性別")?,
    })
}

/// A 6-digit care insurer (保険者番号).
fn municipal_insurer(f: &Fields<'_>, number: usize) -> Result<InsurerNumber, ExtractError> {
    let insurer = f.insurer(number, "保険者番号")?;
    if !insurer.is_municipal() {
        return Err(f.error(
            number,
            "保険者番号",
            "expected a 6-digit care insurer number",
        ));
    }
    Ok(insurer)
}

/// 被保険者番号: 10 digits, full- or half-width.
fn care_number(f: &Fields<'_>, number: usize) -> Result<String, ExtractError> {
    let text = f.text(number, "被保険者番号")?;
    let normalized = enclave_core::card::normalize_card_text(&text);
    if normalized.len() != 10 || !normalized.bytes().all(|b| b.is_ascii_digit()) {
        return Err(f.error(number, "被保険者番号", "expected 10 digits"));
    }
    Ok(text)
}
