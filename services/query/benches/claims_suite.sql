-- The claims-analytics suite: what a health-services researcher asks of
-- claims data. Each query is a `-- name` line, then SQL ending in a semicolon.
-- Read by claims_queries.rs (guarded vs DataFusion vs DuckDB) and by
-- services/cluster/benches/cluster_scaling.py (embedded vs Ballista).

-- persons by prefecture x age band
SELECT prefecture_code, age_band, count(DISTINCT person_id) AS persons
  FROM ndb.receipts
  GROUP BY prefecture_code, age_band;

-- diabetes prevalence by prefecture x age
SELECT prefecture_code, age_band, count(DISTINCT person_id) AS persons
  FROM ndb.diagnoses
  WHERE icd10 LIKE 'E11%'
  GROUP BY prefecture_code, age_band;

-- receipts and points by prefecture x month
SELECT prefecture_code, service_month, count(*) AS receipts, sum(total_points) AS points
  FROM ndb.receipts
  GROUP BY prefecture_code, service_month;

-- drug use by month x category
SELECT service_month, category, count(DISTINCT person_id) AS persons, sum(points) AS points
  FROM ndb.drugs
  GROUP BY service_month, category;

-- inpatient days by age band x sex
SELECT age_band, sex, sum(days) AS days, avg(total_points) AS mean_points
  FROM ndb.receipts
  WHERE setting = 'inpatient'
  GROUP BY age_band, sex;

-- visits-per-person histogram
SELECT visits, count(*) AS persons
  FROM (SELECT person_id, count(*) AS visits FROM ndb.receipts GROUP BY person_id) AS per_person
  GROUP BY visits;

-- polypharmacy (6+ drugs) by age band
SELECT age_band, count(*) AS persons
  FROM (SELECT person_id, age_band, count(DISTINCT drug_code) AS drugs FROM ndb.drugs
        WHERE service_month = '2024-01' GROUP BY person_id, age_band) AS per_person
  WHERE drugs >= 6
  GROUP BY age_band;

-- care level transitions
SELECT a.care_level AS from_level, b.care_level AS to_level, count(DISTINCT a.person_id) AS persons
  FROM care.certifications a
  JOIN care.certifications b ON a.person_id = b.person_id
  WHERE b.valid_from_month > a.valid_from_month
  GROUP BY a.care_level, b.care_level;

-- NDB x care linked: care level x age band (care results show the care bands)
SELECT c.care_level, c.age_band, count(DISTINCT r.person_id) AS persons
  FROM ndb.receipts r
  JOIN care.claims c ON r.person_id = c.person_id AND r.service_month = c.service_month
  GROUP BY c.care_level, c.age_band;

-- hypertension patients' procedures
SELECT p.category, count(DISTINCT p.person_id) AS persons, sum(p.quantity) AS quantity
  FROM ndb.procedures p
  WHERE p.person_id IN (SELECT person_id FROM ndb.diagnoses WHERE icd10 = 'I10')
  GROUP BY p.category;
