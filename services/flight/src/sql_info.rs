//! What the server tells clients about itself (`GetSqlInfo`) and the types
//! it has (`GetXdbcTypeInfo`): every id the Arrow Flight SQL JDBC driver's
//! `DatabaseMetaData` reads (DBeaver calls most of them on connecting),
//! answered truthfully for the guarded SQL a project session accepts.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlSupportedTransaction, XdbcDataType, XdbcDatetimeSubcode,
};
use enclave_guard::bounds::MAX_SQL_BYTES;
use enclave_guard::expressions::allowed_scalar_functions;
use enclave_state::MAX_USER_NAME_BYTES;

/// Functions JDBC lists as numeric; the others the guard allows are
/// string functions, but for these, which JDBC calls system functions.
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "ceil", "floor", "round", "trunc", "signum", "isnan", "iszero", "greatest", "least",
];
const SYSTEM_FUNCTIONS: &[&str] = &["coalesce", "nullif", "nvl", "nvl2"];

/// Keywords of ours that are not SQL:2003 keywords (JDBC's getSQLKeywords).
const KEYWORDS: &[&str] = &["SHOW", "TABLES", "COLUMNS"];

/// A bitmask with the bits of `options` set (the SqlInfo bitmask values).
fn bits(options: &[i32]) -> i32 {
    options.iter().fold(0, |mask, option| mask | (1 << option))
}

fn functions(keep: impl Fn(&str) -> bool) -> Vec<String> {
    allowed_scalar_functions()
        .filter(|name| keep(name))
        .map(str::to_string)
        .collect()
}

pub(crate) static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut info = SqlInfoDataBuilder::new();
    server(&mut info);
    syntax(&mut info);
    limits(&mut info);
    transactions(&mut info);
    info.build().expect("static SqlInfo is valid")
});

fn server(info: &mut SqlInfoDataBuilder) {
    info.append(SqlInfo::FlightSqlServerName, "enclave");
    info.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    info.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    // Workspace tables can be created; nothing else is written.
    info.append(SqlInfo::FlightSqlServerReadOnly, false);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    info.append(SqlInfo::FlightSqlServerCancel, true);
    info.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, false);
    info.append(SqlInfo::SqlDdlTable, true);
    info.append(SqlInfo::SqlAllTablesAreSelectable, true);
    info.append(SqlInfo::SqlSchemaTerm, "schema");
    info.append(SqlInfo::SqlProcedureTerm, "procedure");
    info.append(SqlInfo::SqlCatalogTerm, "catalog");
    info.append(SqlInfo::SqlCatalogAtStart, false);
    info.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
    info.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    info.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    info.append(SqlInfo::SqlSelectForUpdateSupported, false);
    info.append(SqlInfo::SqlStoredProceduresSupported, false);
    info.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    info.append(SqlInfo::SqlBatchUpdatesSupported, false);
    info.append(SqlInfo::SqlNamedParametersSupported, false);
    info.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    // SqlSupportedResultSetType: forward only (1).
    info.append(SqlInfo::SqlSupportedResultSetTypes, bits(&[1]));
}

fn syntax(info: &mut SqlInfoDataBuilder) {
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    // SqlSupportedCaseSensitivity: case-insensitive (1) unquoted, as given
    // quoted (3).
    info.append(SqlInfo::SqlIdentifierCase, 2i32);
    info.append(SqlInfo::SqlQuotedIdentifierCase, 3i32);
    info.append(SqlInfo::SqlKeywords, KEYWORDS);
    info.append(
        SqlInfo::SqlNumericFunctions,
        functions(|f| NUMERIC_FUNCTIONS.contains(&f)),
    );
    info.append(
        SqlInfo::SqlStringFunctions,
        functions(|f| !NUMERIC_FUNCTIONS.contains(&f) && !SYSTEM_FUNCTIONS.contains(&f)),
    );
    info.append(
        SqlInfo::SqlSystemFunctions,
        functions(|f| SYSTEM_FUNCTIONS.contains(&f)),
    );
    info.append(SqlInfo::SqlDatetimeFunctions, Vec::<String>::new());
    info.append(SqlInfo::SqlSearchStringEscape, "\\");
    info.append(SqlInfo::SqlExtraNameCharacters, "");
    info.append(SqlInfo::SqlSupportsColumnAliasing, true);
    info.append(SqlInfo::SqlNullPlusNullIsNull, true);
    info.append(
        SqlInfo::SqlSupportsConvert,
        BTreeMap::<i32, Vec<i32>>::new(),
    );
    info.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    info.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    info.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    info.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // SqlSupportedGroupBy: unrelated (0) and beyond the select list (1).
    info.append(SqlInfo::SqlSupportedGroupBy, bits(&[0, 1]));
    info.append(SqlInfo::SqlSupportsLikeEscapeClause, false);
    info.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    // SupportedSqlGrammar: minimum (0) and core (1); ANSI-92 entry (0).
    info.append(SqlInfo::SqlSupportedGrammar, bits(&[0, 1]));
    info.append(SqlInfo::SqlAnsi92SupportedLevel, bits(&[0]));
    info.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    // SqlOuterJoinsSupportLevel: limited (1).
    info.append(SqlInfo::SqlOuterJoinsSupportLevel, bits(&[1]));
    // SqlSupportedSubqueries: in IN lists (2) only (`person_id IN (…)`).
    info.append(SqlInfo::SqlSupportedSubqueries, bits(&[2]));
    info.append(SqlInfo::SqlCorrelatedSubqueriesSupported, false);
    // SqlSupportedUnions: UNION (0) and UNION ALL (1).
    info.append(SqlInfo::SqlSupportedUnions, bits(&[0, 1]));
}

/// Limits; 0 means none or not known, as JDBC reads it.
fn limits(info: &mut SqlInfoDataBuilder) {
    info.append(SqlInfo::SqlMaxStatementLength, MAX_SQL_BYTES as i64);
    info.append(SqlInfo::SqlMaxUsernameLength, MAX_USER_NAME_BYTES as i64);
    info.append(SqlInfo::SqlMaxColumnNameLength, 255i64);
    info.append(SqlInfo::SqlMaxTableNameLength, 63i64);
    info.append(SqlInfo::SqlDbSchemaNameLength, 63i64);
    for unknown in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTablesInSelect,
    ] {
        info.append(unknown, 0i64);
    }
    info.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
}

/// No transactions: every statement stands alone.
fn transactions(info: &mut SqlInfoDataBuilder) {
    info.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    info.append(SqlInfo::SqlTransactionsSupported, false);
    // SqlTransactionIsolationLevel: none (0).
    info.append(SqlInfo::SqlDefaultTransactionIsolation, 0i64);
    info.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, bits(&[0]));
    info.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    info.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    info.append(SqlInfo::SqlSavepointsSupported, false);
}

/// The types tables and results have.
pub(crate) static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut types = XdbcTypeInfoDataBuilder::new();
    for (name, data_type, column_size, radix) in [
        ("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None),
        ("INT", XdbcDataType::XdbcInteger, Some(10), Some(10)),
        ("BIGINT", XdbcDataType::XdbcBigint, Some(19), Some(10)),
        ("DOUBLE", XdbcDataType::XdbcDouble, Some(15), Some(2)),
        ("VARCHAR", XdbcDataType::XdbcVarchar, None, None),
        ("DATE", XdbcDataType::XdbcDate, Some(10), None),
    ] {
        let text = data_type == XdbcDataType::XdbcVarchar;
        types.append(XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            column_size,
            literal_prefix: text.then(|| "'".into()),
            literal_suffix: text.then(|| "'".into()),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: text,
            searchable: Searchable::Full,
            unsigned_attribute: radix.map(|_| false),
            fixed_prec_scale: false,
            auto_increment: None,
            local_type_name: Some(name.into()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: (data_type == XdbcDataType::XdbcDate)
                // 1: XDBC_SUBCODE_DATE, an alias the generated enum names
                // by its first name, YEAR.
                .then_some(XdbcDatetimeSubcode::XdbcSubcodeYear),
            num_prec_radix: radix,
            interval_precision: None,
        });
    }
    types.build().expect("static type info is valid")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_functions_are_the_ones_the_guard_allows() {
        let allowed: Vec<&str> = allowed_scalar_functions().collect();
        for name in NUMERIC_FUNCTIONS.iter().chain(SYSTEM_FUNCTIONS) {
            assert!(allowed.contains(name), "{name} is listed but refused");
        }
    }

    #[test]
    fn bitmasks_set_the_options_bits() {
        assert_eq!(bits(&[0, 1]), 3);
        assert_eq!(bits(&[2]), 4);
        assert_eq!(bits(&[]), 0);
    }
}
