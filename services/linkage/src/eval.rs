//! Pairwise linkage quality against ground truth.
//!
//! Two records form a *pair* when they belong to one person. Precision is
//! the share of predicted pairs that are true pairs, recall the share of
//! true pairs that were predicted; both are computed in one pass from the
//! contingency counts of (predicted, true) labels.

use hashbrown::HashMap;
use serde::Serialize;

/// Pairwise scores of a clustering.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairwiseScores {
    pub records: u64,
    pub true_persons: u64,
    pub predicted_persons: u64,
    pub true_pairs: u64,
    pub predicted_pairs: u64,
    pub correct_pairs: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

fn pairs(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

fn counts<K: std::hash::Hash + Eq>(labels: impl Iterator<Item = K>) -> HashMap<K, u64> {
    let mut counts = HashMap::new();
    for label in labels {
        *counts.entry(label).or_default() += 1;
    }
    counts
}

/// Scores `predicted` labels against `truth` labels (one of each per record).
/// With no predicted pairs precision is 1; with no true pairs recall is 1.
pub fn pairwise_scores(predicted: &[u64], truth: &[u64]) -> PairwiseScores {
    assert_eq!(
        predicted.len(),
        truth.len(),
        "one predicted and one true label per record"
    );
    let predicted_counts = counts(predicted.iter().copied());
    let true_counts = counts(truth.iter().copied());
    let joint_counts = counts(predicted.iter().copied().zip(truth.iter().copied()));
    let predicted_pairs: u64 = predicted_counts.values().map(|&n| pairs(n)).sum();
    let true_pairs: u64 = true_counts.values().map(|&n| pairs(n)).sum();
    let correct_pairs: u64 = joint_counts.values().map(|&n| pairs(n)).sum();
    let ratio = |num: u64, den: u64| {
        if den == 0 {
            1.0
        } else {
            num as f64 / den as f64
        }
    };
    let precision = ratio(correct_pairs, predicted_pairs);
    let recall = ratio(correct_pairs, true_pairs);
    let f1 = if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    };
    PairwiseScores {
        records: predicted.len() as u64,
        true_persons: true_counts.len() as u64,
        predicted_persons: predicted_counts.len() as u64,
        true_pairs,
        predicted_pairs,
        correct_pairs,
        precision,
        recall,
        f1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_clustering_scores_one() {
        let s = pairwise_scores(&[7, 7, 9], &[1, 1, 2]);
        assert_eq!((s.precision, s.recall, s.f1), (1.0, 1.0, 1.0));
        assert_eq!(
            (s.true_pairs, s.predicted_pairs, s.correct_pairs),
            (1, 1, 1)
        );
    }

    #[test]
    fn a_split_costs_recall_and_a_merge_costs_precision() {
        // truth: {0,1,2} one person, {3} another.
        let split = pairwise_scores(&[1, 1, 2, 3], &[1, 1, 1, 2]);
        assert_eq!(
            (split.true_pairs, split.predicted_pairs, split.correct_pairs),
            (3, 1, 1)
        );
        assert_eq!(split.precision, 1.0);
        assert!((split.recall - 1.0 / 3.0).abs() < 1e-12);
        let merged = pairwise_scores(&[1, 1, 1, 1], &[1, 1, 1, 2]);
        assert_eq!((merged.predicted_pairs, merged.correct_pairs), (6, 3));
        assert_eq!(merged.precision, 0.5);
        assert_eq!(merged.recall, 1.0);
        assert!((merged.f1 - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn singletons_have_no_pairs() {
        let s = pairwise_scores(&[1, 2, 3], &[1, 2, 3]);
        assert_eq!((s.precision, s.recall, s.f1), (1.0, 1.0, 1.0));
    }
}
