//! NDB receipt files (UKE: レセプト電算処理システム記録条件仕様).

use enclave_core::card::InsurerNumber;
use enclave_core::date::{CivilDate, YearMonth};
use enclave_core::person::Sex;

use super::fields::{Digits, ExtractError, Fields, lines};

const SEPARATOR: u8 = b',';

/// Which claims a UKE file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UkeKind {
    /// 医科 inpatient and outpatient receipts (`MED_`).
    Medical,
    /// DPC receipts (`DPC_`), with a BU record.
    Dpc,
    /// 調剤 receipts (`PHA_`).
    Pharmacy,
}

impl UkeKind {
    /// The kind named by a file name prefix.
    pub fn from_file_name(name: &str) -> Option<UkeKind> {
        match name.split('_').next()? {
            "MED" => Some(UkeKind::Medical),
            "DPC" => Some(UkeKind::Dpc),
            "PHA" => Some(UkeKind::Pharmacy),
            _ => None,
        }
    }

    /// The IR 点数表 code the kind requires.
    fn fee_table(self) -> &'static str {
        match self {
            UkeKind::Medical | UkeKind::Dpc => "1",
            UkeKind::Pharmacy => "4",
        }
    }
}

/// One UKE file: one facility's receipts for one billing month.
#[derive(Debug, Clone)]
pub struct UkeFile {
    /// Path relative to the extract root.
    pub path: String,
    pub kind: UkeKind,
    pub prefecture_code: u8,
    /// 都道府県(2) + 点数表(1) + 医療機関コード(7).
    pub facility_code: String,
    pub billing_month: YearMonth,
    pub receipts: Vec<Receipt>,
}

/// One receipt (RE and the records up to the next RE).
#[derive(Debug, Clone)]
pub struct Receipt {
    /// Line of the RE record.
    pub line: usize,
    /// レセプト種別.
    pub receipt_type: Digits<4>,
    pub service_month: YearMonth,
    pub kanji_name: String,
    pub kana_name: String,
    pub sex: Sex,
    pub birth: CivilDate,
    pub admission_date: Option<CivilDate>,
    pub chart_number: String,
    pub insurance: HealthInsurance,
    pub public_expense: Option<PublicExpense>,
    pub dpc: Option<DpcReceiptBlock>,
    pub diagnoses: Vec<DiagnosisLine>,
    pub procedures: Vec<ServiceLine>,
    pub drugs: Vec<ServiceLine>,
}

/// The HO record: health insurance.
#[derive(Debug, Clone)]
pub struct HealthInsurance {
    pub insurer: InsurerNumber,
    pub symbol: String,
    pub number: String,
    pub branch: String,
    pub days: u32,
    pub total_points: i64,
}

/// The KO record: a public expense programme paying part of the claim.
#[derive(Debug, Clone)]
pub struct PublicExpense {
    /// 法別番号 of the 負担者番号 (the programme, not the person).
    pub programme: String,
    pub total_points: i64,
}

/// The BU record of a DPC receipt.
#[derive(Debug, Clone)]
pub struct DpcReceiptBlock {
    pub dpc_code: String,
    pub admitted: CivilDate,
    pub discharged: Option<CivilDate>,
    pub outcome: String,
}

/// 転帰区分 of a diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosisOutcome {
    Cured,
    Died,
    Stopped,
}

/// An SY record.
#[derive(Debug, Clone)]
pub struct DiagnosisLine {
    pub disease_code: Digits<7>,
    pub start: CivilDate,
    pub outcome: Option<DiagnosisOutcome>,
    pub primary: bool,
}

/// An SI (procedure) or IY (drug) record.
#[derive(Debug, Clone)]
pub struct ServiceLine {
    /// 診療識別.
    pub category: Digits<2>,
    /// 診療行為コード or 医薬品コード.
    pub code: Digits<9>,
    pub quantity: Option<f64>,
    pub points: i64,
    pub times: u32,
}

/// How much of a file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Every record, checked.
    Full,
    /// The records that identify persons (UKE: IR, RE, HO and GO), checked;
    /// the receipts' detail records are skipped unread. What an ingest's
    /// first pass needs: a malformed detail record stops its second pass,
    /// before the release is published.
    Identities,
    /// Every record, checked, except the identifying text fields only
    /// linkage reads (names, chart number, card symbol, number and branch),
    /// left empty and undecoded. What an ingest's second pass needs: its
    /// first pass checked them.
    Tables,
}

impl Depth {
    /// Whether this depth decodes the identifying fields only linkage reads.
    fn reads_identities(self) -> bool {
        self != Depth::Tables
    }

    /// A text field only linkage reads: decoded and checked unless `self`
    /// is [`Depth::Tables`].
    fn identifying_text(
        self,
        f: &Fields<'_>,
        number: usize,
        name: &str,
    ) -> Result<String, ExtractError> {
        if self.reads_identities() {
            f.text(number, name)
        } else {
            Ok(String::new())
        }
    }
}

/// Parses one UKE file; `path` is its path relative to the extract root.
pub fn parse_uke(path: &str, bytes: &[u8]) -> Result<UkeFile, ExtractError> {
    parse_uke_to(path, bytes, Depth::Full)
}

/// Parses one UKE file to `depth`.
pub fn parse_uke_to(path: &str, bytes: &[u8], depth: Depth) -> Result<UkeFile, ExtractError> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let kind = UkeKind::from_file_name(name)
        .ok_or_else(|| ExtractError::file(path, "unknown UKE file kind"))?;
    let mut lines = lines(bytes);
    let (line, first) = lines
        .next()
        .ok_or_else(|| ExtractError::file(path, "file is empty"))?;
    let mut file = parse_ir(path, line, first, kind)?;
    let mut current: Option<Receipt> = None;
    let mut awaiting_ho: Option<ReRecord> = None;
    let mut closed = false;
    for (line, bytes) in lines {
        if closed {
            return Err(Fields::split(path, line, "GO", bytes, SEPARATOR, 0)?
                .record_error("records after GO"));
        }
        if let Some(re) = awaiting_ho.take() {
            if !bytes.starts_with(b"HO,") {
                let f = Fields::split(path, line, "HO", bytes, SEPARATOR, 0)?;
                return Err(f.record_error("receipt has no HO record right after its RE record"));
            }
            let ho = Fields::split(path, line, "HO", bytes, SEPARATOR, 16)?;
            let insurance = parse_ho(&ho, depth)?;
            current = Some(re.with_insurance(insurance));
            continue;
        }
        match bytes.get(..2).unwrap_or_default() {
            b"RE" => {
                finish_receipt(path, &mut file, current.take(), depth)?;
                let re = Fields::split(path, line, "RE", bytes, SEPARATOR, 21)?;
                awaiting_ho = Some(parse_re(&re, depth)?);
            }
            b"GO" => {
                finish_receipt(path, &mut file, current.take(), depth)?;
                check_go(
                    &Fields::split(path, line, "GO", bytes, SEPARATOR, 4)?,
                    file.receipts.len(),
                )?;
                closed = true;
            }
            _ if depth == Depth::Identities => {}
            _ => parse_detail(path, line, bytes, kind, current.as_mut())?,
        }
    }
    if awaiting_ho.is_some() {
        return Err(ExtractError::file(
            path,
            "the last receipt has no HO record",
        ));
    }
    if !closed {
        return Err(ExtractError::file(
            path,
            "file does not end with a GO record",
        ));
    }
    Ok(file)
}

fn parse_ir(path: &str, line: usize, bytes: &[u8], kind: UkeKind) -> Result<UkeFile, ExtractError> {
    if !bytes.starts_with(b"IR,") {
        return Err(ExtractError::file(
            path,
            "file does not start with an IR record",
        ));
    }
    let f = Fields::split(path, line, "IR", bytes, SEPARATOR, 9)?;
    let prefecture = f.digits(3, "都道府県コード", 2)?;
    let fee_table = f.digits(4, "点数表", 1)?;
    if fee_table != kind.fee_table() {
        return Err(f.error(4, "点数表", "does not match the file kind"));
    }
    let code = f.digits(5, "医療機関コード", 7)?;
    let prefecture_code: u8 = prefecture.parse().unwrap_or(0);
    if !(1..=47).contains(&prefecture_code) {
        return Err(f.error(3, "都道府県コード", "expected 01-47"));
    }
    Ok(UkeFile {
        path: path.to_owned(),
        kind,
        prefecture_code,
        facility_code: format!("{prefecture}{fee_table}{code}"),
        billing_month: f.wareki_month(8, "請求年月")?,
        receipts: Vec::new(),
    })
}

/// The RE record, until its HO record completes the receipt.
#[derive(Debug)]
struct ReRecord {
    line: usize,
    receipt_type: Digits<4>,
    service_month: YearMonth,
    kanji_name: String,
    kana_name: String,
    sex: Sex,
    birth: CivilDate,
    admission_date: Option<CivilDate>,
    chart_number: String,
}

impl ReRecord {
    fn with_insurance(self, insurance: HealthInsurance) -> Receipt {
        Receipt {
            line: self.line,
            receipt_type: self.receipt_type,
            service_month: self.service_month,
            kanji_name: self.kanji_name,
            kana_name: self.kana_name,
            sex: self.sex,
            birth: self.birth,
            admission_date: self.admission_date,
            chart_number: self.chart_number,
            insurance,
            public_expense: None,
            dpc: None,
            diagnoses: Vec::new(),
            procedures: Vec::new(),
            drugs: Vec::new(),
        }
    }
}

fn parse_re(f: &Fields<'_>, depth: Depth) -> Result<ReRecord, ExtractError> {
    Ok(ReRecord {
        line: f.line(),
        receipt_type: f.code(3, "レセプト種別")?,
        service_month: f.wareki_month(4, "診療年月")?,
        kanji_name: depth.identifying_text(f, 5, "氏名")?,
        sex: f.sex(6, "男女区分")?,
        birth: f.wareki_date(7, "生年月日")?,
        admission_date: f.optional_wareki_date(9, "入院年月日")?,
        chart_number: depth.identifying_text(f, 14, "カルテ番号等")?,
        kana_name: depth.identifying_text(f, 21, "カタカナ氏名")?,
    })
}

/// A finished receipt joins the file; a DPC receipt read in full needs its
/// BU record.
fn finish_receipt(
    path: &str,
    file: &mut UkeFile,
    receipt: Option<Receipt>,
    depth: Depth,
) -> Result<(), ExtractError> {
    let Some(receipt) = receipt else {
        return Ok(());
    };
    if depth != Depth::Identities && file.kind == UkeKind::Dpc && receipt.dpc.is_none() {
        return Err(ExtractError {
            file: path.to_owned(),
            line: receipt.line,
            record: "RE".into(),
            field: String::new(),
            problem: "DPC receipt has no BU record".into(),
        });
    }
    file.receipts.push(receipt);
    Ok(())
}

fn check_go(f: &Fields<'_>, receipts: usize) -> Result<(), ExtractError> {
    if f.integer(2, "総件数")? != receipts as i64 {
        return Err(f.error(2, "総件数", "does not match the number of receipts"));
    }
    Ok(())
}

/// The records inside a receipt, with the fields each must have.
fn parse_detail(
    path: &str,
    line: usize,
    bytes: &[u8],
    kind: UkeKind,
    receipt: Option<&mut Receipt>,
) -> Result<(), ExtractError> {
    let (record, min_fields): (&'static str, usize) = match bytes.get(..2).unwrap_or_default() {
        b"HO" => ("HO", 0),
        b"KO" => ("KO", 12),
        b"BU" => ("BU", 5),
        b"SY" => ("SY", 8),
        b"SI" => ("SI", 7),
        b"IY" => ("IY", 7),
        b"IR" => ("IR", 0),
        _ => ("?", 0),
    };
    let f = Fields::split(path, line, record, bytes, SEPARATOR, min_fields)?;
    let Some(receipt) = receipt else {
        return Err(f.record_error(match record {
            "?" => "unknown record",
            "IR" => "a second IR record",
            _ => "record outside a receipt",
        }));
    };
    match record {
        "KO" => parse_ko(&f, receipt),
        "BU" if kind == UkeKind::Dpc => parse_bu(&f, receipt),
        "BU" => Err(f.record_error("BU record outside a DPC file")),
        "SY" => parse_sy(&f).map(|line| receipt.diagnoses.push(line)),
        "SI" => parse_service(&f, "診療行為コード").map(|line| receipt.procedures.push(line)),
        "IY" => parse_service(&f, "医薬品コード").map(|line| receipt.drugs.push(line)),
        "HO" => Err(f.record_error("a second HO record in one receipt")),
        "IR" => Err(f.record_error("a second IR record")),
        _ => Err(f.record_error("unknown record")),
    }
}

fn parse_ho(f: &Fields<'_>, depth: Depth) -> Result<HealthInsurance, ExtractError> {
    let number = depth.identifying_text(f, 4, "被保険者証番号")?;
    if depth.reads_identities() && number.trim().is_empty() {
        return Err(f.error(4, "被保険者証番号", "is empty"));
    }
    let branch = if depth.reads_identities() {
        f.optional_digits(16, "枝番", 2)?.to_owned()
    } else {
        String::new()
    };
    Ok(HealthInsurance {
        insurer: f.insurer(2, "保険者番号")?,
        symbol: depth.identifying_text(f, 3, "被保険者証記号")?,
        number,
        branch,
        days: f.integer_or_zero(5, "診療実日数")? as u32,
        total_points: f.integer_or_zero(6, "合計点数")?,
    })
}

fn parse_ko(f: &Fields<'_>, receipt: &mut Receipt) -> Result<(), ExtractError> {
    let payer = f.digits(2, "負担者番号", 8)?;
    receipt.public_expense = Some(PublicExpense {
        programme: payer[..2].to_owned(),
        total_points: f.integer_or_zero(6, "合計点数")?,
    });
    Ok(())
}

fn parse_bu(f: &Fields<'_>, receipt: &mut Receipt) -> Result<(), ExtractError> {
    let dpc_code = f.required(2, "診断群分類番号")?;
    if dpc_code.len() != 14 {
        return Err(f.error(2, "診断群分類番号", "expected 14 characters"));
    }
    receipt.dpc = Some(DpcReceiptBlock {
        dpc_code: dpc_code.to_owned(),
        admitted: f.wareki_date(3, "今回入院年月日")?,
        discharged: f.optional_wareki_date(4, "今回退院年月日")?,
        outcome: f.ascii(5, "DPC転帰区分")?.to_owned(),
    });
    Ok(())
}

fn parse_sy(f: &Fields<'_>) -> Result<DiagnosisLine, ExtractError> {
    let outcome = match f.ascii(4, "転帰区分")? {
        "" => None,
        "1" => Some(DiagnosisOutcome::Cured),
        "2" => Some(DiagnosisOutcome::Died),
        "3" => Some(DiagnosisOutcome::Stopped),
        _ => return Err(f.error(4, "転帰区分", "expected 1, 2, 3 or empty")),
    };
    let primary = match f.ascii(7, "主傷病")? {
        "01" => true,
        "" => false,
        _ => return Err(f.error(7, "主傷病", "expected 01 or empty")),
    };
    Ok(DiagnosisLine {
        disease_code: f.code(2, "傷病名コード")?,
        start: f.wareki_date(3, "診療開始日")?,
        outcome,
        primary,
    })
}

fn parse_service(f: &Fields<'_>, code_name: &str) -> Result<ServiceLine, ExtractError> {
    Ok(ServiceLine {
        category: f.code(2, "診療識別")?,
        code: f.code(4, code_name)?,
        quantity: f.decimal(5, "数量データ")?,
        points: f.integer_or_zero(6, "点数")?,
        times: f.integer(7, "回数")? as u32,
    })
}
