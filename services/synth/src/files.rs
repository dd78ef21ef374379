//! Writing one prefecture's activity as identified extract files
//! (`docs/extract-formats.md`), with the true person of every record.

use std::fmt::Write as _;
use std::path::Path;

use enclave_core::card::{InsurerNumber, to_fullwidth_ascii};
use enclave_core::date::{CivilDate, YearMonth};
use enclave_core::kana::to_halfwidth;
use enclave_core::masters::Masters;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::SynthError;
use crate::activity::{Activity, CertificationEvent, ReceiptEvent, ReceiptKind};
use crate::names::{FAMILY, TYPO_KANA};
use crate::population::{Card, Facilities, Facility, Person, Style};

/// Share of receipts with a public expense programme (KO record), here 難病 (法別 54).
const PUBLIC_EXPENSE_RATE: f64 = 0.04;

/// Share of records whose kana name carries a one-character typo.
const TYPO_RATE: f64 = 0.005;

/// Which truth file a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TruthSource {
    Ndb,
    Dpc,
    CareClaims,
    CareCertifications,
}

impl TruthSource {
    pub(crate) const ALL: [TruthSource; 4] = [
        TruthSource::Ndb,
        TruthSource::Dpc,
        TruthSource::CareClaims,
        TruthSource::CareCertifications,
    ];

    pub(crate) fn file_name(self) -> &'static str {
        match self {
            TruthSource::Ndb => "ndb.csv",
            TruthSource::Dpc => "dpc.csv",
            TruthSource::CareClaims => "care_claims.csv",
            TruthSource::CareCertifications => "care_certifications.csv",
        }
    }
}

/// The records of one written file: its path and the person of each record.
#[derive(Debug)]
pub(crate) struct WrittenFile {
    pub(crate) path: String,
    pub(crate) source: TruthSource,
    pub(crate) persons: Vec<u64>,
}

/// Writes one prefecture's files.
pub(crate) struct ShardWriter<'a> {
    pub(crate) out: &'a Path,
    pub(crate) rng: &'a mut ChaCha8Rng,
    pub(crate) prefecture: u8,
    pub(crate) start: YearMonth,
    pub(crate) persons: &'a [Person],
    pub(crate) facilities: &'a Facilities,
    /// The service months whose files are saved (all when `None`).
    pub(crate) written_months: Option<(YearMonth, YearMonth)>,
    pub(crate) written: Vec<WrittenFile>,
}

fn month_of(start: YearMonth, month: i32) -> YearMonth {
    YearMonth::from_index(start.index() + month)
}

impl ShardWriter<'_> {
    pub(crate) fn write_all(&mut self, activity: &Activity) -> Result<(), SynthError> {
        for (&(kind, facility, month), events) in &activity.receipts {
            self.write_uke(kind, facility, month, events)?;
        }
        for (&(hospital, month), events) in &activity.dpc {
            self.write_dpc(hospital, month, events)?;
        }
        for ((insurer, month), persons) in &activity.care_claims {
            self.write_care_claims(insurer, *month, persons)?;
        }
        for (insurer, events) in &activity.certifications {
            self.write_certifications(insurer, events)?;
        }
        Ok(())
    }

    /// Whether the files of service month `month` are saved.
    fn writes_month(&self, month: YearMonth) -> bool {
        self.written_months
            .is_none_or(|(first, last)| (first..=last).contains(&month))
    }

    /// Whether the file at `path` is saved: a month directory's file when
    /// its month is cut in, a file outside month directories always.
    fn writes_path(&self, path: &str) -> bool {
        let month = path
            .split('/')
            .nth(1)
            .and_then(|dir| YearMonth::parse_yyyymm(dir).ok());
        month.is_none_or(|month| self.writes_month(month))
    }

    /// Writes `text` as CP932 to `path` under the output directory, with
    /// the `persons` of its identity-bearing records in order, unless the
    /// month cut leaves it out (it is composed all the same, so the random
    /// stream and every other file stay as in the whole run).
    fn save(
        &mut self,
        path: String,
        text: &str,
        source: TruthSource,
        persons: Vec<u64>,
    ) -> Result<(), SynthError> {
        if self.write_file(&path, text)? {
            self.written.push(WrittenFile {
                path,
                source,
                persons,
            });
        }
        Ok(())
    }

    /// A file with no identity-bearing records of its own.
    fn save_plain(&mut self, path: String, text: &str) -> Result<(), SynthError> {
        self.write_file(&path, text).map(|_| ())
    }

    /// Writes the file unless the month cut leaves it out; whether it did.
    fn write_file(&self, path: &str, text: &str) -> Result<bool, SynthError> {
        if !self.writes_path(path) {
            return Ok(false);
        }
        let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
        if unmappable {
            return Err(SynthError::Encoding(path.to_owned()));
        }
        let full = self.out.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|source| SynthError::Write {
                path: dir.display().to_string(),
                source,
            })?;
        }
        std::fs::write(&full, &bytes).map_err(|source| SynthError::Write {
            path: path.to_owned(),
            source,
        })?;
        Ok(true)
    }

    /// Kanji and kana names as the facility writes them, with the odd typo.
    fn names(&mut self, person: &Person, month: i32, style: Style) -> (String, String) {
        let (family_kanji, family_kana) = FAMILY[person.family_at(month)];
        let (given_kanji, given_kana) = person.given_name();
        let separator = if style.kana_space { "\u{3000}" } else { "" };
        let kanji = format!("{family_kanji}{separator}{given_kanji}");
        let mut kana = format!("{family_kana}{separator}{given_kana}");
        if self.rng.random_bool(TYPO_RATE) {
            kana = typo(self.rng, &kana);
        }
        if style.halfwidth_kana {
            kana = to_halfwidth(&kana);
        }
        (kanji, kana)
    }

    fn medical_facility(&self, kind: ReceiptKind, index: usize) -> (&Facility, &'static str) {
        match kind {
            ReceiptKind::Pharmacy => (&self.facilities.pharmacies[index], "4"),
            ReceiptKind::Dpc => (&self.facilities.hospitals[index], "1"),
            ReceiptKind::Medical if index < self.facilities.clinics.len() => {
                (&self.facilities.clinics[index], "1")
            }
            ReceiptKind::Medical => (
                &self.facilities.hospitals[index - self.facilities.clinics.len()],
                "1",
            ),
        }
    }

    fn write_uke(
        &mut self,
        kind: ReceiptKind,
        facility: usize,
        month: i32,
        events: &[ReceiptEvent],
    ) -> Result<(), SynthError> {
        let (place, table) = self.medical_facility(kind, facility);
        let (code, style) = (place.code.clone(), place.style);
        let service_month = month_of(self.start, month);
        let prefix = match kind {
            ReceiptKind::Medical => "MED",
            ReceiptKind::Dpc => "DPC",
            ReceiptKind::Pharmacy => "PHA",
        };
        let billing = month_of(self.start, month + 1);
        let mut text = String::with_capacity(events.len() * 900);
        let _ = write!(
            text,
            "IR,1,{:02},{table},{code},,医療機関{code},{},00,0312345678\r\n",
            self.prefecture,
            billing.to_wareki()
        );
        let mut total = 0;
        let mut persons = Vec::with_capacity(events.len());
        for (number, event) in events.iter().enumerate() {
            let person = &self.persons[event.person];
            persons.push(person.id);
            total += self.receipt(
                &mut text,
                number + 1,
                kind,
                person,
                event,
                month,
                service_month,
                style,
            );
        }
        let _ = write!(text, "GO,{},{total},99\r\n", events.len());
        let path = format!(
            "ndb/{}/{prefix}_{:02}{table}{code}.UKE",
            service_month.to_yyyymm(),
            self.prefecture
        );
        self.save(path, &text, TruthSource::Ndb, persons)
    }

    /// Writes one receipt; returns its total points.
    #[allow(clippy::too_many_arguments)]
    fn receipt(
        &mut self,
        text: &mut String,
        number: usize,
        kind: ReceiptKind,
        person: &Person,
        event: &ReceiptEvent,
        month: i32,
        service_month: YearMonth,
        style: Style,
    ) -> i64 {
        let card = person.card_at(month).clone();
        let age = person.age_at(service_month);
        let (kanji, kana) = self.names(person, month, style);
        let details = self.details(kind, event, age);
        let points: i64 = details.iter().map(|d| d.points * i64::from(d.times)).sum();
        let admitted = event.stay.map(|(a, _)| a.to_wareki()).unwrap_or_default();
        let public_expense = self.rng.random_bool(PUBLIC_EXPENSE_RATE);
        let receipt_type = receipt_type(
            kind,
            &card.insurer,
            age,
            event.stay.is_some(),
            public_expense,
        );
        let _ = write!(
            text,
            "RE,{number},{receipt_type},{},{kanji},{},{},{},{admitted},,,,,{},,,,,,,{kana}\r\n",
            service_month.to_wareki(),
            person.sex.code(),
            person.birth.to_wareki(),
            if age >= 70 { "80" } else { "70" },
            person.id + 1,
        );
        let days = event
            .stay
            .map_or(1, |(a, d)| d.days_since_epoch() - a.days_since_epoch() + 1);
        let _ = write!(
            text,
            "HO,{},{},{},{days},{points},,,,,,,,,,{}\r\n",
            insurer_field(&card.insurer, style),
            card_text(&card.symbol, style),
            card_text(&card.number, style),
            branch(self.rng, &card)
        );
        if public_expense {
            let payer = InsurerNumber::from_body(&format!("54{:02}001", self.prefecture))
                .unwrap_or_else(|_| unreachable!("prefecture codes are 01-47"));
            let recipient = self.rng.random_range(1_000_000..9_999_999);
            let _ = write!(text, "KO,{payer},{recipient},,{days},{points},0,,,,,\r\n");
        }
        if let (ReceiptKind::Dpc, Some((admitted, discharged))) = (kind, event.stay) {
            let _ = write!(
                text,
                "BU,{},{},{},1\r\n",
                dpc_code(self.rng),
                admitted.to_wareki(),
                discharged.to_wareki()
            );
        }
        if kind != ReceiptKind::Pharmacy {
            self.diagnoses(text, person, service_month, age);
        }
        for detail in &details {
            let _ = write!(
                text,
                "{},{},1,{},{},{},{}",
                detail.record,
                detail.category,
                detail.code,
                detail.quantity,
                detail.points,
                detail.times
            );
            text.push_str(",,,,,,");
            for day in 1..=31 {
                text.push(',');
                if day == detail.day {
                    let _ = write!(text, "{}", detail.times);
                }
            }
            text.push_str("\r\n");
        }
        points
    }

    fn diagnoses(
        &mut self,
        text: &mut String,
        person: &Person,
        service_month: YearMonth,
        age: i32,
    ) {
        let diseases = &Masters::get().diseases;
        let mut codes: Vec<usize> = person.chronic.clone();
        if codes.is_empty() || self.rng.random_bool(0.3) {
            let mut acute = self.rng.random_range(0..diseases.len());
            if (diseases[acute].typical_age as i32 - age).abs() > 30 {
                acute = self.rng.random_range(0..diseases.len());
            }
            codes.push(acute);
        }
        for (i, &disease) in codes.iter().enumerate() {
            let start = CivilDate::from_days_since_epoch(
                service_month.first_day().days_since_epoch() - self.rng.random_range(0..400),
            );
            let primary = if i == 0 { "01" } else { "" };
            let _ = write!(
                text,
                "SY,{},{},,,,{primary},\r\n",
                diseases[disease].code,
                start.to_wareki()
            );
        }
    }

    fn details(&mut self, kind: ReceiptKind, event: &ReceiptEvent, age: i32) -> Vec<Detail> {
        let masters = Masters::get();
        let mut details = Vec::new();
        let day = self.rng.random_range(1..=28);
        let mut procedure = |code: &str, times: u32| {
            let points = masters
                .procedures
                .iter()
                .find(|p| p.code == code)
                .map_or(10, |p| i64::from(p.points));
            details.push(Detail {
                record: "SI",
                category: "13",
                code: code.to_owned(),
                quantity: String::new(),
                points,
                times,
                day,
            });
        };
        match (kind, event.stay) {
            (ReceiptKind::Pharmacy, _) => {}
            (_, Some((admitted, discharged))) => {
                let days = (discharged.days_since_epoch() - admitted.days_since_epoch() + 1) as u32;
                procedure("190077410", days);
                procedure("160008010", 1);
                if age > 60 {
                    procedure("180027410", days.min(6));
                }
            }
            _ => {
                procedure(
                    if self.rng.random_bool(0.2) {
                        "111000110"
                    } else {
                        "112007410"
                    },
                    1,
                );
                if self.rng.random_bool(0.4) {
                    procedure(
                        [
                            "160000310",
                            "160008010",
                            "160019010",
                            "160061810",
                            "170011810",
                        ][self.rng.random_range(0..5)],
                        1,
                    );
                }
                if event.prescription {
                    procedure("120000710", 1);
                }
            }
        }
        let takes_drugs = kind == ReceiptKind::Pharmacy
            || event.stay.is_some()
            || (!event.prescription && self.rng.random_bool(0.3));
        if takes_drugs {
            for _ in 0..self.rng.random_range(1..4) {
                let drug = &masters.drugs[self.rng.random_range(0..masters.drugs.len())];
                let quantity = self.rng.random_range(1..4);
                let points = ((drug.points_per_unit * f64::from(quantity)).round() as i64).max(1);
                let times = if kind == ReceiptKind::Pharmacy {
                    self.rng.random_range(7..31)
                } else {
                    1
                };
                details.push(Detail {
                    record: "IY",
                    category: "21",
                    code: drug.code.clone(),
                    quantity: quantity.to_string(),
                    points,
                    times,
                    day,
                });
            }
        }
        details
    }

    fn write_dpc(
        &mut self,
        hospital: usize,
        month: i32,
        events: &[ReceiptEvent],
    ) -> Result<(), SynthError> {
        let place = &self.facilities.hospitals[hospital];
        let style = place.style;
        let facility = format!("{:02}{}", self.prefecture, place.code);
        let service_month = month_of(self.start, month);
        let yymm = &service_month.to_yyyymm()[2..];
        let (mut k, mut ff1, mut ef) = (String::new(), String::new(), String::new());
        let mut persons = Vec::new();
        for event in events {
            let person = &self.persons[event.person];
            let Some((admitted, discharged)) = event.stay else {
                continue;
            };
            persons.push(person.id);
            let key = format!(
                "{facility}\t{:010}\t{}\t{}",
                person.id + 1,
                discharged.to_yyyymmdd(),
                admitted.to_yyyymmdd()
            );
            let card = person.card_at(month).clone();
            let (_, kana) = self.names(person, month, style);
            let _ = write!(
                k,
                "{key}\t{}\t{}\t{kana}\t{}\t{}\t{}\t{}\r\n",
                person.birth.to_yyyymmdd(),
                person.sex.code(),
                card.insurer,
                card_text(&card.symbol, style),
                card_text(&card.number, style),
                card.branch
            );
            self.form1(&mut ff1, &key, person);
            self.ef_lines(&mut ef, &key, &card.insurer, admitted, discharged);
        }
        let dir = format!("dpc/{}", service_month.to_yyyymm());
        self.save(
            format!("{dir}/K_{facility}_{yymm}.txt"),
            &k,
            TruthSource::Dpc,
            persons,
        )?;
        self.save_plain(format!("{dir}/FF1_{facility}_{yymm}.txt"), &ff1)?;
        self.save_plain(format!("{dir}/EFn_{facility}_{yymm}.txt"), &ef)
    }

    fn form1(&mut self, ff1: &mut String, key: &str, person: &Person) {
        let diseases = &Masters::get().diseases;
        let mut item = |code: &str, seq: usize, payloads: &[&str]| {
            let _ = write!(ff1, "{key}\t0\t0\t{code}\t202404\t{seq}");
            for i in 0..9 {
                ff1.push('\t');
                ff1.push_str(payloads.get(i).copied().unwrap_or(""));
            }
            ff1.push_str("\r\n");
        };
        item(
            "A000010",
            0,
            &[&person.birth.to_yyyymmdd(), person.sex.code()],
        );
        let postcode = format!(
            "{:03}{:04}",
            (u32::from(self.prefecture) * 20 + self.rng.random_range(0..20)) % 1000,
            self.rng.random_range(0..10_000)
        );
        item("A000020", 0, &[&postcode]);
        let emergency = self.rng.random_bool(0.4);
        item(
            "A000030",
            0,
            &[
                "1",
                if emergency { "200" } else { "100" },
                if emergency && self.rng.random_bool(0.5) {
                    "1"
                } else {
                    "0"
                },
            ],
        );
        let died = self.rng.random_bool(0.03);
        item(
            "A000040",
            0,
            &[
                if died { "6" } else { "1" },
                if died { "6" } else { "1" },
                "0",
            ],
        );
        let main = person
            .chronic
            .first()
            .copied()
            .unwrap_or_else(|| self.rng.random_range(0..diseases.len()));
        let icd = diseases[main].icd10.replace('.', "");
        let name = diseases[main].name_ja.as_str();
        item("A006010", 0, &[&icd, name]);
        item("A006020", 0, &[&icd, name]);
        item("A006030", 0, &[&icd, name]);
        for (seq, &other) in person.chronic.iter().skip(1).enumerate() {
            item(
                "A006040",
                seq + 1,
                &[
                    &diseases[other].icd10.replace('.', ""),
                    &diseases[other].name_ja,
                ],
            );
        }
    }

    fn ef_lines(
        &mut self,
        ef: &mut String,
        key: &str,
        insurer: &InsurerNumber,
        admitted: CivilDate,
        discharged: CivilDate,
    ) {
        let days = discharged.days_since_epoch() - admitted.days_since_epoch() + 1;
        for (order, offset) in (0..days).enumerate() {
            let date = CivilDate::from_days_since_epoch(admitted.days_since_epoch() + offset);
            let _ = write!(
                ef,
                "{key}\t93\t{}\t1\t190077410\t190077410\tA100\t急性期一般入院料１\t\t\t1650\t0\t0\t0\t1650\t1650\t0\t0\t1\t{insurer}\t1111\t{}\t01\t01\t00001\t001\t1\t0\t1\r\n",
                order + 1,
                date.to_yyyymmdd()
            );
        }
        let drugs = &Masters::get().drugs;
        let drug = &drugs[self.rng.random_range(0..drugs.len())];
        let _ = write!(
            ef,
            "{key}\t33\t{}\t1\t{}\t{}\t\t{}\t1\t1\t0\t{:.0}\t0\t0\t{:.0}\t0\t{:.0}\t0\t1\t{insurer}\t1111\t{}\t01\t01\t00001\t001\t1\t0\t1\r\n",
            days + 1,
            drug.code,
            drug.code,
            drug.name_ja,
            drug.points_per_unit,
            drug.points_per_unit,
            drug.points_per_unit,
            admitted.to_yyyymmdd()
        );
    }

    fn care_provider_code(&self, index: usize) -> String {
        format!(
            "{:02}7{}",
            self.prefecture, self.facilities.providers[index].code
        )
    }

    fn write_care_claims(
        &mut self,
        insurer: &str,
        month: i32,
        persons: &[usize],
    ) -> Result<(), SynthError> {
        let service_month = month_of(self.start, month);
        let services = &Masters::get().care_services;
        let mut text = String::new();
        let mut ids = Vec::new();
        for (number, &index) in persons.iter().enumerate() {
            let person = &self.persons[index];
            let Some(care) = &person.care else { continue };
            ids.push(person.id);
            let style = self.facilities.providers[care.provider].style;
            let (_, kana) = self.names(
                person,
                month,
                Style {
                    kana_space: true,
                    ..style
                },
            );
            let from = service_month.first_day();
            let to = CivilDate::from_days_since_epoch(from.days_since_epoch() + 364);
            let _ = write!(
                text,
                "H1,{insurer},{},{kana},{},{},{},{},{},{},{},{}\r\n",
                card_text(&care.number, style),
                person.birth.to_wareki(),
                person.sex.code(),
                care.level,
                from.to_wareki(),
                to.to_wareki(),
                self.care_provider_code(care.provider),
                service_month.to_wareki(),
                number + 1
            );
            let service = &services[care.service];
            let count = self.rng.random_range(1..21);
            let units = i64::from(service.units_per_use);
            let total = units * count;
            let _ = write!(
                text,
                "D1,{}1111,{units},{count},{total}\r\n",
                service.service_type
            );
            let insurance = (total as f64 * 10.9 * 0.9).round() as i64;
            let copay = (total as f64 * 10.9).round() as i64 - insurance;
            let _ = write!(text, "T1,{total},10.90,{insurance},{copay}\r\n");
        }
        let path = format!("care/{}/KYUFU_{insurer}.csv", service_month.to_yyyymm());
        self.save(path, &text, TruthSource::CareClaims, ids)
    }

    fn write_certifications(
        &mut self,
        insurer: &str,
        events: &[CertificationEvent],
    ) -> Result<(), SynthError> {
        let mut text = String::new();
        let mut ids = Vec::new();
        for event in events {
            let person = &self.persons[event.person];
            let Some(care) = &person.care else { continue };
            let month = event.certified.year_month().index() - self.start.index();
            let style = Style {
                halfwidth_kana: false,
                kana_space: true,
                fullwidth_card: false,
                zero_padded_kokuho: false,
            };
            let (_, kana) = self.names(person, month, style);
            let applied = CivilDate::from_days_since_epoch(event.certified.days_since_epoch() - 30);
            let valid_to =
                CivilDate::from_days_since_epoch(event.certified.days_since_epoch() + 364);
            let postcode = format!(
                "{:03}{:04}",
                (u32::from(self.prefecture) * 20 + self.rng.random_range(0..20)) % 1000,
                self.rng.random_range(0..10_000)
            );
            // A certification outside the month cut is composed all the same;
            // one from before the first month belongs to the first month.
            if !self.writes_month(event.certified.year_month().max(self.start)) {
                continue;
            }
            ids.push(person.id);
            let _ = write!(
                text,
                "{insurer},{},{kana},{},{},{postcode},{},{},{},{},{},{}\r\n",
                care.number,
                person.birth.to_wareki(),
                person.sex.code(),
                applied.to_wareki(),
                event.certified.to_wareki(),
                care.level,
                event.certified.to_wareki(),
                valid_to.to_wareki(),
                event.application_type
            );
        }
        self.save(
            format!("care/NINTEI_{insurer}.csv"),
            &text,
            TruthSource::CareCertifications,
            ids,
        )
    }
}

/// One SI or IY line.
#[derive(Debug)]
struct Detail {
    record: &'static str,
    category: &'static str,
    code: String,
    quantity: String,
    points: i64,
    times: u32,
    day: u32,
}

/// レセプト種別: 医科/調剤, 医保/後期, 単独/公費併用, then inpatient (odd) or outpatient (even)
/// by who the patient is (本人, 未就学, 家族, 高齢).
fn receipt_type(
    kind: ReceiptKind,
    insurer: &InsurerNumber,
    age: i32,
    inpatient: bool,
    public_expense: bool,
) -> String {
    let system = if kind == ReceiptKind::Pharmacy {
        '4'
    } else {
        '1'
    };
    let late_elderly = insurer.law_code() == Some("39");
    let scheme = if late_elderly { '3' } else { '1' };
    let pair = match age {
        _ if late_elderly || age >= 70 => 7,
        ..6 => 3,
        6..20 => 5,
        _ => 1,
    };
    let last = if inpatient { pair } else { (pair + 1) % 10 };
    let combined = if public_expense { '2' } else { '1' };
    format!("{system}{scheme}{combined}{last}")
}

/// The HO insurer field: 8 digits, or a 6-digit number padded as the facility does.
fn insurer_field(insurer: &InsurerNumber, style: Style) -> String {
    match (insurer.is_municipal(), style.zero_padded_kokuho) {
        (true, true) => format!("00{insurer}"),
        _ => insurer.to_receipt_field(),
    }
}

fn card_text(text: &str, style: Style) -> String {
    if style.fullwidth_card {
        to_fullwidth_ascii(text)
    } else {
        text.to_owned()
    }
}

/// 枝番 is on about half of receipts.
fn branch(rng: &mut ChaCha8Rng, card: &Card) -> String {
    if rng.random_bool(0.5) {
        card.branch.clone()
    } else {
        String::new()
    }
}

fn dpc_code(rng: &mut ChaCha8Rng) -> String {
    const CODES: [&str; 5] = [
        "010060x2990401",
        "040081xx99x00x",
        "050130xx9900xx",
        "160800xx01xxxx",
        "110310xx99xxxx",
    ];
    CODES[rng.random_range(0..CODES.len())].to_owned()
}

/// Replaces one kana (not a space) with another.
fn typo(rng: &mut ChaCha8Rng, kana: &str) -> String {
    let mut chars: Vec<char> = kana.chars().collect();
    let positions: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i] != '\u{3000}')
        .collect();
    let at = positions[rng.random_range(0..positions.len())];
    let replacement = TYPO_KANA[rng.random_range(0..TYPO_KANA.len())];
    chars[at] = if chars[at] == replacement {
        'ネ'
    } else {
        replacement
    };
    chars.into_iter().collect()
}
