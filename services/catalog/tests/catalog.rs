//! The shipped catalog definitions, loading, validation and Arrow schemas.

use std::path::Path;

use arrow::datatypes::DataType;
use enclave_catalog::{
    AgeBandRule, Catalog, CatalogError, ColumnClass, ColumnType, Generalization, RuleError,
};

/// Every table the ingest pipeline writes, with its columns in order.
const TABLES: [(&str, &[&str]); 9] = [
    (
        "ndb.receipts",
        &[
            "receipt_id",
            "person_id",
            "sex",
            "age_band",
            "prefecture_code",
            "service_month",
            "facility_id",
            "setting",
            "receipt_type",
            "insurer_type",
            "admission_month",
            "days",
            "total_points",
            "public_expense",
        ],
    ),
    (
        "ndb.diagnoses",
        &[
            "receipt_id",
            "person_id",
            "sex",
            "age_band",
            "prefecture_code",
            "service_month",
            "facility_id",
            "disease_code",
            "icd10",
            "is_primary",
            "start_month",
            "outcome",
        ],
    ),
    (
        "ndb.procedures",
        &[
            "receipt_id",
            "person_id",
            "sex",
            "age_band",
            "prefecture_code",
            "service_month",
            "facility_id",
            "category",
            "procedure_code",
            "quantity",
            "points",
            "times",
        ],
    ),
    (
        "ndb.drugs",
        &[
            "receipt_id",
            "person_id",
            "sex",
            "age_band",
            "prefecture_code",
            "service_month",
            "facility_id",
            "setting",
            "category",
            "drug_code",
            "quantity",
            "points",
            "times",
        ],
    ),
    (
        "dpc.admissions",
        &[
            "admission_id",
            "person_id",
            "facility_id",
            "sex",
            "age_band",
            "prefecture_code",
            "postcode3",
            "service_month",
            "admission_month",
            "length_of_stay",
            "admission_route",
            "emergency",
            "ambulance",
            "discharge_destination",
            "outcome",
            "death_within_24h",
            "icd10",
            "icd10_trigger",
            "icd10_resource",
            "comorbidity_count",
            "total_points",
        ],
    ),
    (
        "dpc.details",
        &[
            "admission_id",
            "person_id",
            "facility_id",
            "sex",
            "age_band",
            "prefecture_code",
            "service_month",
            "data_category",
            "code_kind",
            "procedure_code",
            "drug_code",
            "quantity",
            "points",
            "times",
        ],
    ),
    (
        "care.claims",
        &[
            "claim_id",
            "person_id",
            "facility_id",
            "sex",
            "age_band",
            "prefecture_code",
            "municipality_code",
            "service_month",
            "care_level",
            "total_units",
            "unit_price",
            "insurance_yen",
            "copay_yen",
        ],
    ),
    (
        "care.services",
        &[
            "claim_id",
            "person_id",
            "facility_id",
            "sex",
            "age_band",
            "prefecture_code",
            "service_month",
            "care_level",
            "service_type",
            "service_code",
            "units",
            "count",
            "service_units",
        ],
    ),
    (
        "care.certifications",
        &[
            "certification_id",
            "person_id",
            "sex",
            "age_band",
            "prefecture_code",
            "postcode3",
            "service_month",
            "application_month",
            "care_level",
            "valid_from_month",
            "valid_to_month",
            "application_type",
        ],
    ),
];

const NDB_AGE: AgeBandRule = AgeBandRule {
    width: 5,
    pool_below: None,
    pool_from: Some(95),
};
const CARE_AGE: AgeBandRule = AgeBandRule {
    width: 5,
    pool_below: Some(65),
    pool_from: Some(95),
};

#[test]
fn embedded_catalog_is_valid() {
    let catalog = Catalog::embedded();
    catalog.validate().unwrap();
    let names: Vec<&str> = catalog.schemas.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["ndb", "dpc", "care"]);
    let tables: Vec<String> = catalog.table_names().collect();
    assert_eq!(tables, TABLES.map(|(name, _)| name));
}

#[test]
fn every_table_has_its_columns_in_order() {
    for (qualified, columns) in TABLES {
        let (_, table) = Catalog::embedded().table(qualified).unwrap();
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, columns, "{qualified}");
        assert_eq!(
            table.partition_by.as_deref(),
            Some("service_month"),
            "{qualified}"
        );
        assert_eq!(table.sort_by, ["person_id"], "{qualified}");
    }
}

#[test]
fn common_columns_agree_across_tables() {
    for (qualified, _) in TABLES {
        let (schema, table) = Catalog::embedded().table(qualified).unwrap();
        let column = |name| table.column(name).unwrap();
        assert_eq!(column("person_id").class, ColumnClass::PersonKey);
        assert_eq!(column("person_id").data_type, ColumnType::Int64);
        assert_eq!(
            table.columns[0].class,
            ColumnClass::RecordKey,
            "{qualified}"
        );
        for name in ["sex", "age_band", "prefecture_code", "service_month"] {
            assert_eq!(
                column(name).data_type,
                ColumnType::Utf8,
                "{qualified}.{name}"
            );
            assert_eq!(
                column(name).class,
                ColumnClass::QuasiIdentifier,
                "{qualified}.{name}"
            );
            assert!(!column(name).nullable, "{qualified}.{name}");
        }
        assert_eq!(
            column("prefecture_code").code_system.as_deref(),
            Some("JIS X 0401")
        );
        let age_rule = if schema.name == "care" {
            CARE_AGE
        } else {
            NDB_AGE
        };
        assert_eq!(
            table.generalization("age_band"),
            Some(&Generalization::AgeBand(age_rule))
        );
        if let Some(facility) = table.column("facility_id") {
            assert_eq!(facility.class, ColumnClass::QuasiIdentifier, "{qualified}");
        }
    }
}

#[test]
fn columns_are_classified_as_specified() {
    let catalog = Catalog::embedded();
    let column = |qualified: &str, name: &str| {
        let (_, table) = catalog.table(qualified).unwrap();
        table.column(name).unwrap().clone()
    };
    let outcome = column("ndb.diagnoses", "outcome");
    assert_eq!(
        (outcome.class, outcome.nullable),
        (ColumnClass::Sensitive, true)
    );
    assert_eq!(
        column("ndb.diagnoses", "icd10").code_system.as_deref(),
        Some("ICD-10 (2013)")
    );
    assert_eq!(
        column("ndb.receipts", "insurer_type").class,
        ColumnClass::QuasiIdentifier
    );
    assert_eq!(
        column("ndb.receipts", "public_expense").data_type,
        ColumnType::Bool
    );
    assert_eq!(
        column("ndb.procedures", "quantity").data_type,
        ColumnType::Float64
    );
    assert_eq!(
        column("dpc.admissions", "total_points").class,
        ColumnClass::Measure
    );
    assert_eq!(
        column("dpc.admissions", "death_within_24h").class,
        ColumnClass::Sensitive
    );
    assert_eq!(
        column("care.claims", "care_level").class,
        ColumnClass::Sensitive
    );
    assert_eq!(
        column("care.services", "units").data_type,
        ColumnType::Int32
    );
    assert_eq!(
        column("dpc.admissions", "postcode3").generalization,
        Some(Generalization::PostcodePrefix { digits: 3 })
    );
    let valid_to = column("care.certifications", "valid_to_month");
    assert_eq!(valid_to.generalization, Some(Generalization::Month));
    assert!(valid_to.nullable);
    for (_, table) in catalog.tables() {
        for column in &table.columns {
            assert!(!column.description_ja.is_empty() && !column.description_en.is_empty());
        }
    }
}

#[test]
fn load_dir_reads_the_shipped_definitions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../catalog");
    let loaded = Catalog::load_dir(dir).unwrap();
    for schema in &Catalog::embedded().schemas {
        assert_eq!(loaded.schema(&schema.name), Some(schema));
    }
    assert_eq!(loaded.schemas.len(), 3);
}

#[test]
fn load_dir_reports_missing_and_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Catalog::load_dir(dir.path()),
        Err(CatalogError::NoDefinitions { .. })
    ));
    std::fs::write(dir.path().join("x.toml"), "name = ").unwrap();
    let error = Catalog::load_dir(dir.path()).unwrap_err();
    assert!(matches!(&error, CatalogError::Parse { origin, .. } if origin.ends_with("x.toml")));
    let missing = dir.path().join("absent");
    assert!(matches!(
        Catalog::load_dir(missing),
        Err(CatalogError::Read { .. })
    ));
}

/// Schema `s` holding the given tables.
fn schema_with(tables: &str) -> String {
    format!(
        r#"
name = "s"
title_ja = "t"
title_en = "t"
description_ja = "d"
description_en = "d"
{tables}
"#
    )
}

/// Table `name` with the given settings and columns.
fn table_toml(name: &str, table_settings: &str, columns: &str) -> String {
    format!(
        r#"
[[tables]]
name = "{name}"
description_ja = "d"
description_en = "d"
{table_settings}
{columns}
"#
    )
}

/// A one-table schema `s.t` with the given columns and table settings.
fn schema_toml(table_settings: &str, columns: &str) -> String {
    schema_with(&table_toml("t", table_settings, columns))
}

fn column_toml(name: &str, data_type: &str, class: &str, extra: &str) -> String {
    format!(
        r#"
[[tables.columns]]
name = "{name}"
type = "{data_type}"
class = "{class}"
description_ja = "d"
description_en = "d"
{extra}
"#
    )
}

fn person_id() -> String {
    column_toml("person_id", "int64", "person_key", "")
}

fn load(text: &str) -> Result<Catalog, CatalogError> {
    Catalog::from_toml([("s.toml", text)])
}

#[test]
fn a_minimal_schema_loads() {
    let sex = column_toml("sex", "utf8", "quasi_identifier", "");
    let catalog = load(&schema_toml(
        "sort_by = [\"person_id\"]",
        &(person_id() + &sex),
    ))
    .unwrap();
    let (_, table) = catalog.table("s.t").unwrap();
    assert_eq!(table.columns.len(), 2);
    assert!(catalog.table("s.u").is_none());
    assert!(catalog.table("st").is_none());
}

#[test]
fn duplicate_columns_are_rejected() {
    let sex = column_toml("sex", "utf8", "quasi_identifier", "");
    let text = schema_toml("", &(person_id() + &sex + &sex));
    let error = load(&text).unwrap_err();
    assert!(
        matches!(&error, CatalogError::DuplicateColumn { table, column } if table == "s.t" && column == "sex")
    );
    assert_eq!(
        error.to_string(),
        "s.t: column sex is defined more than once"
    );
}

#[test]
fn duplicate_tables_and_schemas_are_rejected() {
    let table = table_toml("t", "", &person_id());
    let twice = schema_with(&format!("{table}{table}"));
    assert!(matches!(
        load(&twice),
        Err(CatalogError::DuplicateTable { schema, table }) if schema == "s" && table == "t"
    ));
    let text = schema_toml("", &person_id());
    let error =
        Catalog::from_toml([("a.toml", text.as_str()), ("b.toml", text.as_str())]).unwrap_err();
    assert!(matches!(error, CatalogError::DuplicateSchema { schema } if schema == "s"));
}

#[test]
fn a_table_without_person_id_is_rejected() {
    let text = schema_toml("", &column_toml("sex", "utf8", "quasi_identifier", ""));
    let error = load(&text).unwrap_err();
    assert!(matches!(&error, CatalogError::MissingPersonId { table } if table == "s.t"));
    let wrong_class = schema_toml("", &column_toml("person_id", "int64", "record_key", ""));
    assert!(matches!(
        load(&wrong_class),
        Err(CatalogError::InvalidPersonId { .. })
    ));
    let nullable = schema_toml(
        "",
        &column_toml("person_id", "int64", "person_key", "nullable = true"),
    );
    assert!(matches!(
        load(&nullable),
        Err(CatalogError::InvalidPersonId { .. })
    ));
}

#[test]
fn unknown_partition_and_sort_columns_are_rejected() {
    let text = schema_toml("partition_by = \"service_month\"", &person_id());
    let error = load(&text).unwrap_err();
    assert!(
        matches!(&error, CatalogError::UnknownPartitionColumn { table, column } if table == "s.t" && column == "service_month")
    );
    assert!(
        error
            .to_string()
            .contains("s.t: partition column service_month")
    );
    let text = schema_toml("sort_by = [\"person_id\", \"receipt_id\"]", &person_id());
    assert!(
        matches!(load(&text), Err(CatalogError::UnknownSortColumn { column, .. }) if column == "receipt_id")
    );
}

#[test]
fn generalization_only_on_sane_utf8_rules() {
    let band = |data_type, rule: &str| {
        let age = column_toml(
            "age_band",
            data_type,
            "quasi_identifier",
            &format!("generalization = {rule}"),
        );
        load(&schema_toml("", &(person_id() + &age)))
    };
    let ndb = "{ kind = \"age_band\", width = 5, pool_from = 95 }";
    assert!(band("utf8", ndb).is_ok());
    assert!(matches!(
        band("int32", ndb),
        Err(CatalogError::GeneralizationType { column, data_type: ColumnType::Int32, .. }) if column == "age_band"
    ));
    let error = band("utf8", "{ kind = \"age_band\", width = 0 }").unwrap_err();
    assert!(matches!(
        error,
        CatalogError::InvalidGeneralization {
            source: RuleError::AgeBandWidth,
            ..
        }
    ));
    assert_eq!(
        error.to_string(),
        "s.t.age_band: age_band width must be greater than 0"
    );
    let crossed = band(
        "utf8",
        "{ kind = \"age_band\", width = 5, pool_below = 95, pool_from = 65 }",
    );
    assert!(matches!(
        crossed,
        Err(CatalogError::InvalidGeneralization {
            source: RuleError::AgeBandPools { .. },
            ..
        })
    ));
    let postcode = band("utf8", "{ kind = \"postcode_prefix\", digits = 0 }");
    assert!(matches!(
        postcode,
        Err(CatalogError::InvalidGeneralization {
            source: RuleError::PostcodeDigits { digits: 0 },
            ..
        })
    ));
}

#[test]
fn unknown_keys_and_values_are_parse_errors() {
    let typo = schema_toml(
        "",
        &column_toml("person_id", "int64", "person_key", "nulable = true"),
    );
    assert!(matches!(load(&typo), Err(CatalogError::Parse { origin, .. }) if origin == "s.toml"));
    let bad_type = schema_toml("", &column_toml("person_id", "integer", "person_key", ""));
    assert!(matches!(load(&bad_type), Err(CatalogError::Parse { .. })));
    let bad_class = schema_toml("", &column_toml("person_id", "int64", "identifier", ""));
    assert!(matches!(load(&bad_class), Err(CatalogError::Parse { .. })));
}

#[test]
fn names_must_be_identifiers() {
    let text = schema_toml("", &(person_id() + &column_toml("Sex", "utf8", "code", "")));
    assert!(matches!(
        load(&text),
        Err(CatalogError::InvalidName { kind: "column", name, .. }) if name == "Sex"
    ));
    let dotted = schema_with(&table_toml("t.x", "", &person_id()));
    assert!(matches!(
        load(&dotted),
        Err(CatalogError::InvalidName { kind: "table", .. })
    ));
}

#[test]
fn arrow_schemas_match_the_definitions() {
    for (_, table) in Catalog::embedded().tables() {
        let schema = table.arrow_schema();
        assert_eq!(schema.fields().len(), table.columns.len());
        for (field, column) in schema.fields().iter().zip(&table.columns) {
            assert_eq!(field.name(), &column.name);
            assert_eq!(field.is_nullable(), column.nullable);
            let expected = match column.data_type {
                ColumnType::Int64 => DataType::Int64,
                ColumnType::Int32 => DataType::Int32,
                ColumnType::Float64 => DataType::Float64,
                ColumnType::Utf8 => DataType::Utf8,
                ColumnType::Bool => DataType::Boolean,
            };
            assert_eq!(field.data_type(), &expected);
        }
    }
    let (_, receipts) = Catalog::embedded().table("ndb.receipts").unwrap();
    let schema = receipts.arrow_schema();
    let admission = schema.field_with_name("admission_month").unwrap();
    assert!(admission.is_nullable());
    assert_eq!(
        schema.field_with_name("total_points").unwrap().data_type(),
        &DataType::Int64
    );
    assert_eq!(
        schema
            .field_with_name("public_expense")
            .unwrap()
            .data_type(),
        &DataType::Boolean
    );
}
