//! `person_id`: a dense int64 per linked person.
//!
//! Dense ids (1..=persons) keep the person column compact, so counting
//! distinct persons, the costliest part of disclosure control, stays cheap.
//! Their order carries no information: persons are ranked by a keyed hash of
//! their cluster's representative key, so the same secret and the same data
//! always give the same ids, and another secret gives an unrelated order.

use crate::keys::{KeyHash, LinkageKeys, Purpose};
use crate::link::{LinkRecord, Linkage};

/// The `person_id` of every record.
pub fn assign_person_ids(
    linkage: &Linkage,
    records: &[LinkRecord],
    keys: &LinkageKeys,
) -> Vec<i64> {
    let clusters = linkage.report.clusters as usize;
    let mut representative: Vec<Option<(bool, KeyHash)>> = vec![None; clusters];
    for (record, &cluster) in records.iter().zip(&linkage.cluster_of_record) {
        for (kind, hash) in record.keys() {
            // Prefer keys owned by this person alone; `false` sorts first.
            let candidate = (linkage.is_ambiguous(kind, hash), hash);
            let slot = &mut representative[cluster as usize];
            if slot.is_none_or(|current| candidate < current) {
                *slot = Some(candidate);
            }
        }
    }
    let mut order: Vec<(KeyHash, usize)> = representative
        .iter()
        .enumerate()
        .map(|(cluster, rep)| {
            let rep = rep.map(|(_, hash)| hash).unwrap_or(KeyHash([0; 16]));
            (keys.hash(Purpose::PersonOrder, &[&rep.0]), cluster)
        })
        .collect();
    order.sort_unstable();
    let mut id_of_cluster = vec![0i64; clusters];
    for (rank, (_, cluster)) in order.into_iter().enumerate() {
        id_of_cluster[cluster] = rank as i64 + 1;
    }
    linkage
        .cluster_of_record
        .iter()
        .map(|&cluster| id_of_cluster[cluster as usize])
        .collect()
}
