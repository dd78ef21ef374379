"""DuckDB's side of the claims_queries benchmark.

Reads a JSON request on stdin: {"tables": {"ndb.receipts": "<dir>", ...},
"threads": n, "runs": r, "queries": [sql, ...]}; prints a JSON list with the
median seconds of each query (one warm-up, then r timed runs).
"""

import json
import statistics
import sys
import time

import duckdb


def main() -> None:
    request = json.load(sys.stdin)
    con = duckdb.connect()
    con.execute(f"SET threads = {int(request['threads'])}")
    for name, directory in request["tables"].items():
        schema, _ = name.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM "
            f"read_parquet('{directory}/*/*.parquet', hive_partitioning = false)"
        )
    medians = []
    for sql in request["queries"]:
        con.sql(sql).to_arrow_table()
        times = []
        for _ in range(int(request["runs"])):
            started = time.perf_counter()
            con.sql(sql).to_arrow_table()
            times.append(time.perf_counter() - started)
        medians.append(statistics.median(times))
    json.dump(medians, sys.stdout)


if __name__ == "__main__":
    main()
