"""A first session with the enclave over Arrow Flight SQL (ADBC).

Start the demo in another terminal (`cargo run --release -- demo`), then:

    scripts/python-env.sh            # creates the venv, prints its path
    ~/.cache/enclave-venv/bin/python examples/adbc_quickstart.py

Each step is a cell of a notebook: run them one by one in Jupyter if you like.
"""

import json
import os

import adbc_driver_flightsql.dbapi as flight_sql

# The demo's address (`enclave demo --listen` moves it).
URI = os.environ.get("ENCLAVE_URI", "grpc://127.0.0.1:50051")

# %% Log in: user name and password become a bearer token in the handshake.
#    A member of several projects picks one with the call header
#    x-enclave-project; the demo researcher has only the project `demo`.
conn = flight_sql.connect(
    URI,
    db_kwargs={
        "username": "researcher",
        "password": "researcher-demo",
        "adbc.flight.sql.rpc.call_header.x-enclave-project": "demo",
    },
)

# %% Browse what the project may see: catalogs → schemas → tables → columns.
objects = conn.adbc_get_objects(depth="columns").read_all().to_pylist()
for catalog in objects:
    for schema in catalog["catalog_db_schemas"]:
        for table in schema["db_schema_tables"]:
            columns = [c["column_name"] for c in table["table_columns"]]
            print(f'{schema["db_schema_name"]}.{table["table_name"]}: {", ".join(columns)}')

# %% An aggregate over persons: released, every group has at least 10 persons,
#    counts rounded to 10 (the demo project's rule).
cur = conn.cursor()
cur.execute(
    """
    SELECT age_band, count(DISTINCT person_id) AS persons, count(*) AS receipts
    FROM ndb.receipts
    GROUP BY age_band
    ORDER BY age_band
    """
)
table = cur.fetch_arrow_table()
print(table)  # an Arrow table; table.to_pandas() with pandas installed
# Groups of fewer than 10 persons are withheld without a word: how many were
# is not told, since that would say a small group exists.

# %% Row-level results never leave: this is refused, and says what to do.
try:
    cur.execute("SELECT * FROM ndb.receipts")
    cur.fetch_arrow_table()
except Exception as error:  # adbc_driver_manager.ProgrammingError
    print("refused:", str(error).splitlines()[0])

# %% Save a cohort inside the enclave (project workspace), then aggregate over it.
cur.execute("DROP TABLE IF EXISTS work.diabetes")
cur.fetch_arrow_table()
cur.execute(
    "CREATE TABLE work.diabetes AS "
    "SELECT DISTINCT person_id FROM ndb.diagnoses WHERE icd10 LIKE 'E11%'"
)
cur.fetch_arrow_table()
cur.execute(
    """
    SELECT c.care_level, count(DISTINCT c.person_id) AS persons
    FROM care.certifications c JOIN work.diabetes e ON c.person_id = e.person_id
    GROUP BY c.care_level ORDER BY c.care_level
    """
)
print(cur.fetch_arrow_table())

# %% Prepared statements with parameters work as in any Flight SQL client.
cur.execute(
    "SELECT sex, count(*) AS receipts FROM ndb.receipts WHERE service_month = ? GROUP BY sex",
    parameters=("2024-04",),
)
print(cur.fetch_arrow_table())

# %% A value computed from fewer than 10 persons is NULL, even in a large group:
#    here the receipts of persons aged 95+ within each prefecture's count.
cur.execute(
    """
    SELECT prefecture_code, count(*) AS receipts,
           count(*) FILTER (WHERE age_band = '95+') AS receipts_95_plus
    FROM ndb.receipts
    GROUP BY prefecture_code
    ORDER BY prefecture_code
    """
)
print(cur.fetch_arrow_table())
cur.close()
conn.close()
print(json.dumps({"done": True}))
