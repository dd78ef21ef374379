//! `person_id`: a dense int64 per linked person.
//!
//! Dense ids (1..=persons) keep the person column compact, so counting
//! distinct persons, the costliest part of disclosure control, stays cheap.
//! Persons are ranked by the month they first appear in, then by a keyed
//! hash of their representative key (a key of theirs from that month), so
//! the same secret and the same data always give the same ids, another
//! secret gives an unrelated order within each month, and a release with
//! one more month keeps every earlier person's id: the new month's persons
//! rank after them. Only new evidence that merges or splits earlier persons
//! moves ids.

use crate::keys::{KeyHash, LinkageKeys, Purpose};
use crate::link::{KeyKind, KeyOccurrence, LinkRecord, Linkage};

/// The `person_id` of every record, in memory.
pub fn assign_person_ids(
    linkage: &Linkage,
    records: &[LinkRecord],
    keys: &LinkageKeys,
) -> Vec<i64> {
    let mut representatives = Representatives::new(linkage);
    for (index, record) in records.iter().enumerate() {
        for occurrence in record.occurrences(index as u32) {
            representatives.add(linkage, &occurrence);
        }
    }
    let id_of_cluster = representatives.person_ids(keys);
    linkage
        .cluster_of_record
        .iter()
        .map(|&cluster| id_of_cluster[cluster as usize])
        .collect()
}

/// A cluster's candidate representative: smaller is better.
type Candidate = (i32, bool, KeyHash, KeyKind);

/// Each cluster's first month and representative key, fed key occurrences
/// in any order and in any number of parts.
#[derive(Debug)]
pub struct Representatives {
    /// Per cluster: the month of the occurrence, whether the key is shared
    /// by two people (`false` sorts first, so keys owned by this person
    /// alone are preferred), and the key.
    best: Vec<Option<Candidate>>,
}

impl Representatives {
    /// No representative yet for any cluster of `linkage`.
    pub fn new(linkage: &Linkage) -> Representatives {
        Representatives {
            best: vec![None; linkage.report.clusters as usize],
        }
    }

    /// Offers one occurrence's key to its record's cluster.
    pub fn add(&mut self, linkage: &Linkage, occurrence: &KeyOccurrence) {
        let cluster = linkage.cluster_of_record[occurrence.record as usize] as usize;
        let candidate = (
            occurrence.month,
            linkage.is_ambiguous(occurrence.kind, occurrence.hash),
            occurrence.hash,
            occurrence.kind,
        );
        let slot = &mut self.best[cluster];
        if slot.is_none_or(|current| candidate < current) {
            *slot = Some(candidate);
        }
    }

    /// The representative key of `cluster` (none for a cluster never offered one).
    pub fn key_of(&self, cluster: usize) -> Option<(KeyKind, KeyHash)> {
        self.best[cluster].map(|(_, _, hash, kind)| (kind, hash))
    }

    /// The `person_id` of every cluster: its rank by its first month, then
    /// by the keyed hash of its representative key, from 1.
    pub fn person_ids(&self, keys: &LinkageKeys) -> Vec<i64> {
        let mut id_of_cluster = vec![0i64; self.best.len()];
        for (rank, cluster) in self.order(keys).into_iter().enumerate() {
            id_of_cluster[cluster] = rank as i64 + 1;
        }
        id_of_cluster
    }

    /// The `person_id` of every cluster when a previous release's persons
    /// are known by their keys: each match says a cluster holds a key of a
    /// previous person (and whether it was that person's representative).
    ///
    /// A previous person keeps its id in the first cluster (in `person_id`
    /// order) holding its representative key, or any of its keys when none
    /// does. A cluster keeping several previous persons (new evidence merged
    /// them) keeps the smallest id; the others are retired. Clusters keeping
    /// none get ids from `next_id` on, in `person_id` order. Such a cluster
    /// holding keys of a previous person and records of the previous
    /// release's months (up to `previous_last_month`) was split from that
    /// person by new evidence; one seen only later is a new person.
    pub fn person_ids_after(
        &self,
        keys: &LinkageKeys,
        mut matches: Vec<PreviousMatch>,
        next_id: i64,
        previous_last_month: i32,
    ) -> (Vec<i64>, IdChanges) {
        let order = self.order(keys);
        let mut rank = vec![0usize; self.best.len()];
        for (position, &cluster) in order.iter().enumerate() {
            rank[cluster] = position;
        }
        matches.sort_unstable_by_key(|m| (m.id, !m.representative, rank[m.cluster as usize]));
        let mut changes = IdChanges::default();
        let mut id_of_cluster = vec![0i64; self.best.len()];
        let mut split_off: Vec<(usize, i64)> = Vec::new();
        let mut keeper = 0usize;
        for (index, m) in matches.iter().enumerate() {
            let cluster = m.cluster as usize;
            if index > 0 && matches[index - 1].id == m.id {
                if cluster != keeper {
                    split_off.push((cluster, m.id));
                }
                continue;
            }
            keeper = cluster;
            // Ids come in ascending order: a cluster's first is its smallest.
            match id_of_cluster[cluster] {
                0 => id_of_cluster[cluster] = m.id,
                kept => changes.merged.push((m.id, kept)),
            }
        }
        let kept = id_of_cluster.clone();
        let mut next = next_id;
        for &cluster in &order {
            if kept[cluster] != 0 {
                changes.kept += 1;
                continue;
            }
            id_of_cluster[cluster] = next;
            next += 1;
        }
        let seen_before = |cluster: usize| {
            self.best[cluster].is_some_and(|(month, ..)| month <= previous_last_month)
        };
        split_off.retain(|&(cluster, _)| kept[cluster] == 0 && seen_before(cluster));
        split_off.sort_unstable();
        split_off.dedup_by_key(|&mut (cluster, _)| cluster);
        changes.new = id_of_cluster.len() as u64 - changes.kept - split_off.len() as u64;
        changes.split = split_off
            .into_iter()
            .map(|(cluster, previous)| (previous, id_of_cluster[cluster]))
            .collect();
        changes.highest_id = next - 1;
        (id_of_cluster, changes)
    }

    /// Clusters in `person_id` order: first month, then the keyed hash of
    /// the representative key.
    fn order(&self, keys: &LinkageKeys) -> Vec<usize> {
        let mut order: Vec<(i32, KeyHash, usize)> = self
            .best
            .iter()
            .enumerate()
            .map(|(cluster, rep)| {
                let (month, _, rep, _) =
                    rep.unwrap_or((i32::MAX, false, KeyHash([0; 16]), KeyKind::Name));
                (month, keys.hash(Purpose::PersonOrder, &[&rep.0]), cluster)
            })
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, _, cluster)| cluster).collect()
    }
}

/// A cluster holding a key of a previous release's person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousMatch {
    pub cluster: u32,
    /// The previous person's `person_id`.
    pub id: i64,
    /// Whether the key was that person's representative key.
    pub representative: bool,
}

/// How a release's `person_id`s relate to the previous release's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdChanges {
    /// Persons that kept their previous id.
    pub kept: u64,
    /// Persons holding no key of the previous release's persons.
    pub new: u64,
    /// (previous id, the id it was merged into).
    pub merged: Vec<(i64, i64)>,
    /// (previous id, the id of a person holding some of its keys that
    /// another person kept): records of the previous person now there.
    pub split: Vec<(i64, i64)>,
    /// The largest id ever given, retired ones included: the next release
    /// gives new persons ids after it, so an id never names two persons.
    pub highest_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{Strategy, link};

    const SECRET: &[u8] = b"a steward secret of more than 32 bytes";

    /// One person's record: its own card and name keys, in `month`.
    fn record(month: i32, person: u8) -> LinkRecord {
        let mut record = LinkRecord::new(month);
        record.card_health = Some(KeyHash([person; 16]));
        record.name = Some(KeyHash([person + 100; 16]));
        record
    }

    fn matched(cluster: u32, id: i64, representative: bool) -> PreviousMatch {
        PreviousMatch {
            cluster,
            id,
            representative,
        }
    }

    #[test]
    fn previous_persons_keep_their_ids_merged_keep_the_smallest_and_split_parts_get_new_ones() {
        // Five persons; the last first seen in month 5, after the previous
        // release's months (0 to 3).
        let records: Vec<LinkRecord> = (0..4)
            .map(|person| record(0, person))
            .chain([record(5, 4)])
            .collect();
        let linkage = link(&records, Strategy::Union);
        let cluster = |record: usize| linkage.cluster_of_record[record];
        let keys = LinkageKeys::derive(SECRET).unwrap();
        let mut representatives = Representatives::new(&linkage);
        for (index, record) in records.iter().enumerate() {
            for occurrence in record.occurrences(index as u32) {
                representatives.add(&linkage, &occurrence);
            }
        }
        let matches = vec![
            // Person 0 holds previous person 7's representative key.
            matched(cluster(0), 7, true),
            // Person 1 holds the representative keys of previous 3 and 5.
            matched(cluster(1), 5, true),
            matched(cluster(1), 3, true),
            // Person 2, seen in the previous months, holds another key of 7.
            matched(cluster(2), 7, false),
            // Person 4, first seen after them, holds a key of 3.
            matched(cluster(4), 3, false),
            // Person 3 holds no previous key.
        ];
        let (ids, changes) = representatives.person_ids_after(&keys, matches, 10, 3);
        assert_eq!(changes.highest_id, 12);
        let id = |record: usize| ids[cluster(record) as usize];
        assert_eq!((id(0), id(1)), (7, 3));
        let mut month_zero_new = [id(2), id(3)];
        month_zero_new.sort_unstable();
        assert_eq!(month_zero_new, [10, 11], "new ids in order, month 0 first");
        assert_eq!(id(4), 12);
        assert_eq!(changes.kept, 2);
        assert_eq!(changes.new, 2, "persons 3 and 4");
        assert_eq!(changes.merged, vec![(5, 3)]);
        assert_eq!(changes.split, vec![(7, id(2))]);
    }

    #[test]
    fn without_a_previous_release_ids_rank_persons_by_first_month() {
        let records = vec![record(3, 0), record(0, 1), record(1, 2), record(0, 3)];
        let keys = LinkageKeys::derive(SECRET).unwrap();
        let linkage = link(&records, Strategy::Union);
        let ids = assign_person_ids(&linkage, &records, &keys);
        assert_eq!(ids[0], 4, "first seen last");
        assert_eq!(ids[2], 3);
        let mut first_month = [ids[1], ids[3]];
        first_month.sort_unstable();
        assert_eq!(first_month, [1, 2]);
    }
}
