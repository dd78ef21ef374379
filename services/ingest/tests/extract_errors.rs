//! Malformed extracts are refused with an error naming file, line, record and
//! field, and never repeating the value (the files are identified).

use enclave_ingest::extract::{
    Depth, UkeKind, parse_care_claims, parse_certifications, parse_uke, parse_uke_to,
};

const PATH: &str = "ndb/202304/MED_1310000001.UKE";

/// A well-formed medical UKE file: two receipts, one with a 6-digit 国保 number.
fn lines() -> Vec<String> {
    [
        "IR,1,13,1,0000001,,テスト医院,50505,00,0312345678",
        "RE,1,1112,50504,山田　太郎,1,3450612,70,,,,,,1001,,,,,,,ﾔﾏﾀﾞ ﾀﾛｳ",
        "HO,01130012,１２３４,５６７８,1,75,,,,,,,,,,01",
        "SY,4019004,5050401,,,,01,",
        "SI,13,1,112007410,,75,1",
        "IY,21,1,620004856,1,10,14",
        "RE,2,1118,50504,佐藤　花子,2,3200101,80,,,,,,1002,,,,,,,サトウ　ハナコ",
        "HO,  138107,7,12,1,75,,,,,,,,,,",
        "SY,2500015,5050401,,,,01,",
        "GO,2,150,99",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn encode(lines: &[String]) -> Vec<u8> {
    let text = lines.join("\r\n") + "\r\n";
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(&text);
    assert!(!unmappable);
    bytes.into_owned()
}

fn with_line(index: usize, line: &str) -> Vec<u8> {
    let mut lines = lines();
    lines[index] = line.to_owned();
    encode(&lines)
}

#[test]
fn the_tables_depth_reads_every_record_but_no_identifying_text() {
    let full = parse_uke(PATH, &encode(&lines())).unwrap();
    let tables = parse_uke_to(PATH, &encode(&lines()), Depth::Tables).unwrap();
    assert!(!full.receipts.is_empty());
    assert_eq!(full.receipts.len(), tables.receipts.len());
    for (full, tables) in full.receipts.iter().zip(&tables.receipts) {
        assert_eq!(
            [&tables.kanji_name, &tables.kana_name, &tables.chart_number],
            [""; 3]
        );
        let card = &tables.insurance;
        assert_eq!([&card.symbol, &card.number, &card.branch], [""; 3]);
        assert_eq!(
            card.insurer, full.insurance.insurer,
            "insurer_type needs it"
        );
        assert_eq!(
            format!("{:?}", tables.diagnoses),
            format!("{:?}", full.diagnoses)
        );
        assert_eq!(format!("{:?}", tables.drugs), format!("{:?}", full.drugs));
        assert_eq!((tables.birth, tables.sex), (full.birth, full.sex));
    }
    // A malformed detail record is refused at this depth too.
    let error = parse_uke_to(
        PATH,
        &with_line(3, "SY,4019004,5050401,9,,,01,"),
        Depth::Tables,
    );
    assert!(error.unwrap_err().to_string().contains("転帰区分"));
}

#[test]
fn a_well_formed_file_parses_with_normalized_values() {
    let file = parse_uke(PATH, &encode(&lines())).unwrap();
    assert_eq!(file.kind, UkeKind::Medical);
    assert_eq!(file.facility_code, "1310000001");
    assert_eq!(file.receipts.len(), 2);
    let first = &file.receipts[0];
    assert_eq!(first.birth.to_string(), "1970-06-12", "昭和45年6月12日");
    assert_eq!(first.service_month.to_string(), "2023-04");
    assert_eq!(first.kana_name, "ﾔﾏﾀﾞ ﾀﾛｳ");
    assert_eq!(first.insurance.number, "５６７８");
    assert_eq!(first.diagnoses.len(), 1);
    assert_eq!(first.procedures[0].code.as_str(), "112007410");
    assert_eq!(first.drugs[0].times, 14);
    assert_eq!(
        file.receipts[1].insurance.insurer.as_str(),
        "138107",
        "space-padded 国保 number"
    );
}

/// Asserts the error names the line, record and field and hides `value`.
fn assert_refused(bytes: &[u8], line: usize, record: &str, field: &str, value: &str) {
    let error = parse_uke(PATH, bytes).unwrap_err();
    let message = error.to_string();
    assert_eq!(error.file, PATH);
    assert_eq!(error.line, line, "{message}");
    assert_eq!(error.record, record, "{message}");
    assert!(error.field.contains(field), "{message}");
    assert!(
        message.contains(PATH) && message.contains(&format!("line {line}")),
        "{message}"
    );
    assert!(
        !message.contains(value),
        "the error repeats the value: {message}"
    );
}

#[test]
fn field_errors_name_file_line_record_and_field() {
    let re = "RE,1,1112,50504,山田　太郎,1,{birth},70,,,,,,1001,,,,,,,ﾔﾏﾀﾞ ﾀﾛｳ";
    assert_refused(
        &with_line(1, &re.replace("{birth}", "4310501")),
        2,
        "RE",
        "生年月日",
        "4310501",
    );
    assert_refused(
        &with_line(1, &re.replace("{birth}", "3451312")),
        2,
        "RE",
        "生年月日",
        "3451312",
    );
    assert_refused(
        &with_line(1, &re.replace("{birth}", "9450612")),
        2,
        "RE",
        "生年月日",
        "9450612",
    );
    let bad_sex = "RE,1,1112,50504,山田　太郎,3,3450612,70,,,,,,1001,,,,,,,ﾔﾏﾀﾞ ﾀﾛｳ";
    assert_refused(&with_line(1, bad_sex), 2, "RE", "男女区分", "山田");
    assert_refused(
        &with_line(2, "HO,01130013,1234,5678,1,75,,,,,,,,,,"),
        3,
        "HO",
        "保険者番号",
        "01130013",
    );
    assert_refused(
        &with_line(4, "SI,13,1,11200741,,75,1"),
        5,
        "SI",
        "診療行為コード",
        "11200741",
    );
    assert_refused(
        &with_line(3, "SY,4019004,5050401,9,,,01,"),
        4,
        "SY",
        "転帰区分",
        "4019004",
    );
}

#[test]
fn structural_errors_are_refused() {
    let no_ho = with_line(2, "SY,4019004,5050401,,,,01,");
    let error = parse_uke(PATH, &no_ho).unwrap_err();
    assert!(error.problem.contains("no HO record"), "{error}");

    let wrong_count = with_line(9, "GO,3,150,99");
    assert!(
        parse_uke(PATH, &wrong_count)
            .unwrap_err()
            .to_string()
            .contains("総件数")
    );

    let mut no_go = lines();
    no_go.pop();
    assert!(
        parse_uke(PATH, &encode(&no_go))
            .unwrap_err()
            .problem
            .contains("GO")
    );

    let mut no_ir = lines();
    no_ir.remove(0);
    assert!(
        parse_uke(PATH, &encode(&no_ir))
            .unwrap_err()
            .problem
            .contains("IR")
    );

    let unknown = with_line(5, "ZZ,1,2,3");
    assert_eq!(
        parse_uke(PATH, &unknown).unwrap_err().problem,
        "unknown record"
    );

    let mut after_go = lines();
    after_go.push("SY,4019004,5050401,,,,01,".into());
    assert!(
        parse_uke(PATH, &encode(&after_go))
            .unwrap_err()
            .problem
            .contains("after GO")
    );

    let too_few = with_line(1, "RE,1,1112,50504");
    assert!(
        parse_uke(PATH, &too_few)
            .unwrap_err()
            .problem
            .contains("expected 21 fields")
    );
}

#[test]
fn invalid_cp932_in_a_name_is_refused() {
    let mut bytes = encode(&lines());
    let (name, _, _) = encoding_rs::SHIFT_JIS.encode("山田");
    let at = bytes
        .windows(name.len())
        .position(|w| w == &name[..])
        .unwrap();
    bytes[at + 1] = 0x20; // a lead byte followed by a byte that cannot trail it
    let error = parse_uke(PATH, &bytes).unwrap_err();
    assert!(
        error.field.contains("氏名") && error.problem.contains("CP932"),
        "{error}"
    );
}

fn care_claim(h1: &str) -> Vec<u8> {
    encode(&[
        h1.to_owned(),
        "D1,151111,650,4,2600".into(),
        "T1,2600,10.90,25506,2834".into(),
    ])
}

#[test]
fn care_files_parse_and_refuse_bad_levels() {
    let h1 = "H1,138107,０１２３４５６７８９,ヤマダ　ハナ,3100101,2,{level},5050401,5060331,1370000001,50504,1";
    let claims = parse_care_claims(
        "care/202304/KYUFU_138107.csv",
        &care_claim(&h1.replace("{level}", "23")),
    )
    .unwrap();
    assert_eq!(claims.claims.len(), 1);
    assert_eq!(claims.claims[0].services[0].service_units, 2600);
    assert_eq!(claims.claims[0].care_level, "23");
    let error = parse_care_claims(
        "care/202304/KYUFU_138107.csv",
        &care_claim(&h1.replace("{level}", "99")),
    )
    .unwrap_err();
    assert!(error.field.contains("要介護状態区分"), "{error}");

    let row = "138107,0123456789,ヤマダ　ハナ,3100101,2,1000001,5050301,5050401,01,5050401,,1";
    let rows = parse_certifications("care/NINTEI_138107.csv", &encode(&[row.to_owned()])).unwrap();
    assert_eq!(rows.rows[0].care_level, "01");
    assert!(rows.rows[0].valid_to.is_none());
    let short_postcode = row.replace("1000001", "100001");
    let error =
        parse_certifications("care/NINTEI_138107.csv", &encode(&[short_postcode])).unwrap_err();
    assert!(
        error.field.contains("郵便番号") && !error.to_string().contains("100001"),
        "{error}"
    );
}
