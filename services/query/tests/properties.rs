//! Property tests of the guard: random released queries over random
//! populations (subsets of the fixture's persons), checked against the
//! release's Parquet files read without the guard.
//!
//! - Every released group covers at least k persons, and every released
//!   value has at least k contributors (persons with a row that value
//!   aggregates, after FILTER and NULLs).
//! - Whether a query fails, and how, does not depend on one person's data:
//!   a query conditioned on an existing person and on nobody ends alike.

mod common;

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use arrow::util::display::array_value_to_string;
use datafusion::prelude::SessionContext;
use enclave_core::error::UserFacing;
use enclave_query::{Outcome, QueryEngine, QueryError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const K: i64 = 10;

/// One released aggregate the generator picks: its SQL and the argument
/// whose non-NULL rows make a person contribute.
#[derive(Debug, Clone)]
struct Aggregate {
    sql: &'static str,
    argument: &'static str,
}

const AGGREGATES: &[Aggregate] = &[
    Aggregate {
        sql: "count(*)",
        argument: "1",
    },
    Aggregate {
        sql: "count(DISTINCT person_id)",
        argument: "person_id",
    },
    Aggregate {
        sql: "sum(total_points)",
        argument: "total_points",
    },
    Aggregate {
        sql: "avg(days)",
        argument: "days",
    },
    Aggregate {
        sql: "avg(total_points)",
        argument: "total_points",
    },
];

const GROUPS: &[&str] = &[
    "sex",
    "age_band",
    "prefecture_code",
    "setting",
    "service_month",
];

#[derive(Debug, Clone)]
struct Released {
    group: &'static str,
    aggregate: Aggregate,
    /// The population: persons whose receipts total `t` points with
    /// `t % modulus = remainder` and `t <= last` (keys are no dial: a
    /// cohort by a per-person measure is how a researcher picks persons).
    modulus: i64,
    remainder: i64,
    last: i64,
    /// The value's FILTER: rows with `total_points % filter_modulus = 0`.
    filter_modulus: i64,
}

impl Released {
    /// The population over `table` (the guarded `ndb.receipts` or the
    /// unguarded `receipts`).
    fn population(&self, table: &str) -> String {
        format!(
            "person_id IN (SELECT person_id FROM {table} GROUP BY person_id \
             HAVING sum(total_points) % {m} = {r} AND sum(total_points) <= {last})",
            m = self.modulus,
            r = self.remainder,
            last = self.last
        )
    }

    fn guarded_sql(&self) -> String {
        format!(
            "SELECT {g}, {a} FILTER (WHERE total_points % {f} = 0) AS v FROM ndb.receipts WHERE {p} GROUP BY {g}",
            g = self.group,
            a = self.aggregate.sql,
            f = self.filter_modulus,
            p = self.population("ndb.receipts")
        )
    }

    /// Persons per group and contributors to the value, without the guard
    /// (and without the person who opted out).
    fn truth_sql(&self) -> String {
        format!(
            "SELECT CAST({g} AS VARCHAR) AS g, count(DISTINCT person_id) AS persons, \
             count(DISTINCT person_id) FILTER (WHERE total_points % {f} = 0 AND {arg} IS NOT NULL) AS contributors \
             FROM receipts WHERE {p} AND person_id <> {o} GROUP BY {g}",
            g = self.group,
            f = self.filter_modulus,
            arg = self.aggregate.argument,
            p = self.population("receipts"),
            o = common::OPTED_OUT,
        )
    }
}

fn released_queries() -> impl Strategy<Value = Released> {
    (
        0..GROUPS.len(),
        0..AGGREGATES.len(),
        1i64..6,
        0i64..6,
        300i64..40_000,
        1i64..40,
    )
        .prop_map(
            |(group, aggregate, modulus, remainder, last, filter_modulus)| Released {
                group: GROUPS[group],
                aggregate: AGGREGATES[aggregate].clone(),
                modulus,
                remainder: remainder % modulus,
                last,
                filter_modulus,
            },
        )
}

async fn run(engine: &QueryEngine, sql: &str) -> Result<Outcome, QueryError> {
    engine
        .session("alice", Some("main"))
        .await?
        .execute(sql, None)
        .await
}

/// Group key → (persons, contributors) from the Parquet files.
async fn truth(unguarded: &SessionContext, sql: &str) -> HashMap<String, (i64, i64)> {
    let batches = unguarded.sql(sql).await.unwrap().collect().await.unwrap();
    let mut groups = HashMap::new();
    for batch in batches {
        let keys = batch.column(0);
        let persons = batch.column(1).as_primitive::<Int64Type>();
        let contributors = batch.column(2).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let key = if keys.is_null(row) {
                "NULL".to_string()
            } else {
                array_value_to_string(keys, row).unwrap()
            };
            groups.insert(key, (persons.value(row), contributors.value(row)));
        }
    }
    groups
}

async fn check_released(
    engine: &QueryEngine,
    unguarded: &SessionContext,
    case: &Released,
) -> Result<(), TestCaseError> {
    let Outcome::Rows(released) = run(engine, &case.guarded_sql())
        .await
        .map_err(|error| TestCaseError::fail(format!("{}: {error}", case.guarded_sql())))?
    else {
        return Err(TestCaseError::fail("not a result"));
    };
    let truth = truth(unguarded, &case.truth_sql()).await;
    for batch in &released.batches {
        for row in 0..batch.num_rows() {
            let key = if batch.column(0).is_null(row) {
                "NULL".to_string()
            } else {
                array_value_to_string(batch.column(0), row).unwrap()
            };
            let (persons, contributors) = truth.get(&key).copied().unwrap_or_default();
            prop_assert!(
                persons >= K,
                "group {key} of {persons} persons released: {case:?}"
            );
            if !batch.column(1).is_null(row) {
                prop_assert!(
                    contributors >= K,
                    "value of group {key} from {contributors} contributors released: {case:?}"
                );
            }
        }
    }
    Ok(())
}

/// Expressions that would fail on some value, evaluated only on one
/// person's rows.
const FRAGILE: &[&str] = &[
    "CAST(icd10 AS INT)",
    "CAST(age_band AS BIGINT)",
    "1 / (CASE WHEN sex = '1' THEN 0 ELSE 1 END)",
    "length(icd10) % (CASE WHEN sex = '2' THEN 0 ELSE 2 END)",
    "CAST(service_month AS DATE)",
];

async fn outcome_text(engine: &QueryEngine, sql: &str) -> String {
    match run(engine, sql).await {
        Ok(_) => "ok".to_string(),
        Err(error) => error.user_message(),
    }
}

#[test]
fn released_values_have_k_contributors_and_errors_do_not_depend_on_data() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let fixture = runtime.block_on(common::fixture());
    let unguarded = runtime.block_on(fixture.unguarded());
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&released_queries(), |case| {
            runtime.block_on(check_released(&fixture.engine, &unguarded, &case))
        })
        .unwrap();
    runner
        .run(&(0..FRAGILE.len(), 1i64..3000), |(fragile, target)| {
            let sql = |person: i64| {
                format!(
                    "SELECT sex, count(*) FROM ndb.diagnoses \
                     WHERE (CASE WHEN person_id IN (SELECT person_id FROM ndb.receipts \
                     WHERE total_points = {person}) THEN {} ELSE 1 END) IS NOT NULL GROUP BY sex",
                    FRAGILE[fragile]
                )
            };
            let present = runtime.block_on(outcome_text(&fixture.engine, &sql(target)));
            let absent = runtime.block_on(outcome_text(&fixture.engine, &sql(-1)));
            prop_assert!(!absent.contains("refused"), "{absent}");
            prop_assert_eq!(present, absent, "{}", FRAGILE[fragile]);
            Ok(())
        })
        .unwrap();
}
