-- Realistic studies, finer than the claims suite: many small cells over
-- months, drug use over time, and NDB x care database linkage. Same format
-- as claims_suite.sql; read by guard_utility.py.

-- diabetes prevalence by prefecture x age band x sex x month
SELECT prefecture_code, age_band, sex, service_month, count(DISTINCT person_id) AS persons
  FROM ndb.diagnoses
  WHERE icd10 LIKE 'E11%'
  GROUP BY prefecture_code, age_band, sex, service_month;

-- hypertension prevalence by age band x sex x month
SELECT age_band, sex, service_month, count(DISTINCT person_id) AS persons
  FROM ndb.diagnoses
  WHERE icd10 = 'I10'
  GROUP BY age_band, sex, service_month;

-- drug use trajectories: persons by first month of each drug category
SELECT first_month, category, count(*) AS persons
  FROM (SELECT person_id, category, min(service_month) AS first_month FROM ndb.drugs
        GROUP BY person_id, category) AS starts
  GROUP BY first_month, category;

-- drug use trajectories: months on each drug category, by age band
SELECT category, age_band, months, count(*) AS persons
  FROM (SELECT person_id, category, age_band, count(DISTINCT service_month) AS months FROM ndb.drugs
        GROUP BY person_id, category, age_band) AS spans
  GROUP BY category, age_band, months;

-- NDB x care linked: diabetes patients receiving care, by care level x month
SELECT c.care_level, c.service_month, count(DISTINCT c.person_id) AS persons
  FROM care.claims c
  WHERE c.person_id IN (SELECT person_id FROM ndb.diagnoses WHERE icd10 LIKE 'E11%')
  GROUP BY c.care_level, c.service_month;

-- NDB x care linked: receipts and points of persons in care, by sex x month
-- (a result reading care data shows no finer age than the care bands)
SELECT r.sex, r.service_month, count(*) AS receipts, sum(r.total_points) AS points
  FROM ndb.receipts r
  WHERE r.person_id IN (SELECT person_id FROM care.claims)
  GROUP BY r.sex, r.service_month;
