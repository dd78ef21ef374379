//! Release-local record ids: `receipt_id`, `admission_id`, `claim_id`,
//! `certification_id`.
//!
//! A source's records are ranked within each directory of extracts (a month
//! of UKE, DPC or care files; the certification files together) by
//! (`person_id`, canonical position), and the directories follow one
//! another. So ids follow the published sort order of each month's files,
//! say nothing about file order or facilities, and do not depend on how the
//! ingest was cut into chunks.

use std::ops::Range;

use crate::extract::ExtractPlan;

/// The records of one source in one directory.
#[derive(Debug, Clone)]
struct Group {
    records: Range<usize>,
    first_id: i64,
}

/// Every directory's records, in canonical order.
#[derive(Debug, Clone)]
pub(crate) struct RecordGroups {
    groups: Vec<Group>,
}

impl RecordGroups {
    /// Groups of the units of `plan`, given each unit's records, numbered
    /// from `first_record`; each source's ids continue after `ids_before`
    /// (the records of the release an append adds months to, numbered
    /// before them; none for a full ingest).
    pub(crate) fn new(
        plan: &ExtractPlan,
        unit_records: &[u64],
        ids_before: [u64; 4],
        first_record: usize,
    ) -> RecordGroups {
        let mut groups: Vec<Group> = Vec::new();
        let mut keys: Vec<(usize, &str)> = Vec::new();
        let mut ids_of_source = ids_before.map(|ids| ids as i64);
        let mut next = first_record;
        for ((unit, _), &records) in plan.units.iter().zip(unit_records) {
            let key = (unit.source(), unit.directory());
            if keys.last() != Some(&key) {
                keys.push(key);
                groups.push(Group {
                    records: next..next,
                    first_id: ids_of_source[key.0] + 1,
                });
            }
            let group = groups.last_mut().expect("pushed");
            group.records.end += records as usize;
            ids_of_source[key.0] += records as i64;
            next += records as usize;
        }
        RecordGroups { groups }
    }

    /// The ids of `records`, given each record's `person_id`.
    pub(crate) fn ids(&self, records: Range<usize>, person_of: impl Fn(usize) -> i64) -> Vec<i64> {
        let mut ids = vec![0; records.len()];
        let overlapping = self
            .groups
            .iter()
            .filter(|g| g.records.start < records.end && records.start < g.records.end);
        for group in overlapping {
            let mut order: Vec<(i64, usize)> = group
                .records
                .clone()
                .map(|record| (person_of(record), record))
                .collect();
            order.sort_unstable();
            for (rank, (_, record)) in order.into_iter().enumerate() {
                if records.contains(&record) {
                    ids[record - records.start] = group.first_id + rank as i64;
                }
            }
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(sizes: &[(usize, u64)]) -> RecordGroups {
        let mut next = 0;
        let mut ids = [0i64; 4];
        let groups = sizes
            .iter()
            .map(|&(source, size)| {
                let group = Group {
                    records: next..next + size as usize,
                    first_id: ids[source] + 1,
                };
                next += size as usize;
                ids[source] += size as i64;
                group
            })
            .collect();
        RecordGroups { groups }
    }

    #[test]
    fn ids_rank_persons_within_a_directory_whatever_the_chunks() {
        // Two NDB directories of 3 and 2 records, then DPC's 2.
        let groups = groups(&[(0, 3), (0, 2), (1, 2)]);
        let persons = [9, 4, 7, 5, 1, 3, 2];
        let person_of = |r: usize| persons[r];
        let whole = groups.ids(0..7, person_of);
        assert_eq!(whole, vec![3, 1, 2, 5, 4, 2, 1]);
        let mut pieces = groups.ids(0..2, person_of);
        pieces.extend(groups.ids(2..4, person_of));
        pieces.extend(groups.ids(4..7, person_of));
        assert_eq!(pieces, whole);
    }
}
