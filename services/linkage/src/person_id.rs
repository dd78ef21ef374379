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
}
