//! `person_id`: a dense int64 per linked person.
//!
//! Dense ids (1..=persons) keep the person column compact, so counting
//! distinct persons, the costliest part of disclosure control, stays cheap.
//! Their order carries no information: persons are ranked by a keyed hash of
//! their cluster's representative key, so the same secret and the same data
//! always give the same ids, and another secret gives an unrelated order.

use crate::keys::{KeyHash, LinkageKeys, Purpose};
use crate::link::{KeyOccurrence, LinkRecord, Linkage};

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

/// Each cluster's representative key, fed key occurrences in any order and
/// in any number of parts.
#[derive(Debug)]
pub struct Representatives {
    /// Per cluster: whether the key is shared by two people (`false` sorts
    /// first, so keys owned by this person alone are preferred), and the key.
    best: Vec<Option<(bool, KeyHash)>>,
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
            linkage.is_ambiguous(occurrence.kind, occurrence.hash),
            occurrence.hash,
        );
        let slot = &mut self.best[cluster];
        if slot.is_none_or(|current| candidate < current) {
            *slot = Some(candidate);
        }
    }

    /// The `person_id` of every cluster: its rank by the keyed hash of its
    /// representative key, from 1.
    pub fn person_ids(self, keys: &LinkageKeys) -> Vec<i64> {
        let mut order: Vec<(KeyHash, usize)> = self
            .best
            .iter()
            .enumerate()
            .map(|(cluster, rep)| {
                let rep = rep.map(|(_, hash)| hash).unwrap_or(KeyHash([0; 16]));
                (keys.hash(Purpose::PersonOrder, &[&rep.0]), cluster)
            })
            .collect();
        order.sort_unstable();
        let mut id_of_cluster = vec![0i64; self.best.len()];
        for (rank, (_, cluster)) in order.into_iter().enumerate() {
            id_of_cluster[cluster] = rank as i64 + 1;
        }
        id_of_cluster
    }
}
