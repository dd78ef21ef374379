//! A hand-built population with the life events that break NDB linkage.

use enclave_linkage::eval::pairwise_scores;
use enclave_linkage::{
    KeyOccurrence, LinkRecord, LinkageKeys, Linker, Representatives, Strategy, assign_person_ids,
    link, partition_of,
};

const SECRET: &[u8] = b"a steward secret of more than 32 bytes";
const MONTHS: i32 = 24;

/// One identity-bearing record and the true person behind it.
struct Population {
    records: Vec<LinkRecord>,
    truth: Vec<u64>,
    keys: LinkageKeys,
}

impl Population {
    fn new() -> Population {
        Population {
            records: Vec::new(),
            truth: Vec::new(),
            keys: LinkageKeys::derive(SECRET).unwrap(),
        }
    }

    /// A health-insurance record: card number, kana name, birth date, month.
    fn health(&mut self, person: u64, card: &str, name: &str, birth: &str, month: i32) {
        let p = &self.keys;
        let mut record = LinkRecord::new(month);
        record.card_health = Some(p.health_card_key("01130012", "12", card, birth, "2"));
        record.name = Some(p.name_key(name, birth, "2"));
        self.records.push(record);
        self.truth.push(person);
    }

    /// A care record: care insured number, kana name.
    fn care(&mut self, person: u64, number: &str, name: &str, birth: &str, month: i32) {
        let p = &self.keys;
        let mut record = LinkRecord::new(month);
        record.card_care = Some(p.care_card_key("131011", number, birth, "2"));
        record.name = Some(p.name_key(name, birth, "2"));
        self.records.push(record);
        self.truth.push(person);
    }

    fn clusters(&self, strategy: Strategy) -> Vec<u64> {
        link(&self.records, strategy)
            .cluster_of_record
            .iter()
            .map(|&c| u64::from(c))
            .collect()
    }

    fn same_cluster(&self, strategy: Strategy, a: u64, b: u64) -> bool {
        let clusters = self.clusters(strategy);
        let of = |person| clusters[self.truth.iter().position(|&t| t == person).unwrap()];
        of(a) == of(b)
    }

    fn persons_clusters(&self, strategy: Strategy, person: u64) -> usize {
        let clusters = self.clusters(strategy);
        let mut mine: Vec<u64> = self
            .truth
            .iter()
            .zip(&clusters)
            .filter(|(t, _)| **t == person)
            .map(|(_, c)| *c)
            .collect();
        mine.sort_unstable();
        mine.dedup();
        mine.len()
    }
}

fn population() -> Population {
    let mut p = Population::new();
    for month in 0..MONTHS {
        // 1: job change at month 12 (new card), same name.
        p.health(
            1,
            if month < 12 { "1001" } else { "2001" },
            "サトウイチロウ",
            "19700101",
            month,
        );
        // 2: marriage at month 10 (new name), same card; a clinic lags one month.
        let name = if month < 10 {
            "タナカハナコ"
        } else {
            "スズキハナコ"
        };
        p.health(2, "1002", name, "19900202", month);
        if month == 10 {
            p.health(2, "1002", "タナカハナコ", "19900202", month);
        }
        // 3 and 4: same-sex twins, dependents on one card, visiting together.
        p.health(3, "1003", "ヤマダアオイ", "20150303", month);
        p.health(4, "1003", "ヤマダアカリ", "20150303", month);
        // 5 and 6: strangers sharing name and birthday, each with a card.
        p.health(5, "1005", "タカハシユウコ", "19800505", month);
        p.health(6, "1006", "タカハシユウコ", "19800505", month);
        // 7: 75th birthday at month 8: moves to 後期高齢者医療; care from month 5.
        p.health(
            7,
            if month < 8 { "1007" } else { "3907" },
            "イトウキヨ",
            "19490806",
            month,
        );
        if month >= 5 {
            p.care(7, "0000000007", "イトウキヨ", "19490806", month);
        }
    }
    // 8: a typo in the name on one receipt.
    for month in 0..6 {
        p.health(8, "1008", "ワタナベミキ", "19850808", month);
    }
    p.health(8, "1008", "ワタナベミケ", "19850808", 3);
    p
}

#[test]
fn union_beats_both_baselines() {
    let p = population();
    let score = |strategy| pairwise_scores(&p.clusters(strategy), &p.truth).f1;
    let (union, card_only, name_only) = (
        score(Strategy::Union),
        score(Strategy::CardOnly),
        score(Strategy::NameOnly),
    );
    assert!(union > card_only, "union {union} vs ID1-only {card_only}");
    assert!(union > name_only, "union {union} vs ID2-only {name_only}");
    assert_eq!(union, 1.0);
}

#[test]
fn twins_on_one_card_are_not_merged() {
    let p = population();
    assert!(
        p.same_cluster(Strategy::CardOnly, 3, 4),
        "the ID1 baseline merges twins"
    );
    assert!(!p.same_cluster(Strategy::Union, 3, 4));
}

#[test]
fn strangers_sharing_name_and_birthday_are_not_merged() {
    let p = population();
    assert!(
        p.same_cluster(Strategy::NameOnly, 5, 6),
        "the ID2 baseline merges them"
    );
    assert!(!p.same_cluster(Strategy::Union, 5, 6));
}

#[test]
fn each_life_event_keeps_one_person_together() {
    let p = population();
    for person in [1, 2, 7, 8] {
        assert_eq!(
            p.persons_clusters(Strategy::Union, person),
            1,
            "person {person} split"
        );
    }
    assert_eq!(
        p.persons_clusters(Strategy::CardOnly, 1),
        2,
        "a job change splits ID1"
    );
    assert_eq!(
        p.persons_clusters(Strategy::NameOnly, 2),
        2,
        "a marriage splits ID2"
    );
}

#[test]
fn person_ids_are_dense_deterministic_and_key_dependent() {
    let p = population();
    let linkage = link(&p.records, Strategy::Union);
    let ids = assign_person_ids(&linkage, &p.records, &p.keys);
    let again = assign_person_ids(&linkage, &p.records, &LinkageKeys::derive(SECRET).unwrap());
    assert_eq!(ids, again);
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(
        distinct,
        (1..=linkage.report.clusters as i64).collect::<Vec<_>>()
    );
    let other = LinkageKeys::derive(b"a different secret, also long enough!").unwrap();
    let other_ids = assign_person_ids(&linkage, &p.records, &other);
    assert_ne!(ids, other_ids, "another key must reorder persons");
}

/// Links `records` partition by partition, each occurrence through its
/// encoding, as an ingest larger than memory does.
fn link_in_partitions(records: &[LinkRecord], strategy: Strategy, partitions: usize) -> Vec<u32> {
    let mut by_partition: Vec<Vec<KeyOccurrence>> = vec![Vec::new(); partitions];
    for (index, record) in records.iter().enumerate() {
        for occurrence in record.occurrences(index as u32) {
            let mut bytes = Vec::new();
            occurrence.encode(&mut bytes);
            assert_eq!(bytes.len(), KeyOccurrence::ENCODED_BYTES);
            let decoded = KeyOccurrence::decode(&bytes).unwrap();
            assert_eq!(decoded, occurrence);
            by_partition[partition_of(&decoded.hash, partitions)].push(decoded);
        }
    }
    let mut linker = Linker::new(records.len(), strategy).unwrap();
    for partition in &mut by_partition {
        linker.add_partition(partition);
    }
    let linkage = linker.finish();
    let whole = link(records, strategy);
    assert_eq!(linkage.report.clusters, whole.report.clusters);
    assert_eq!(linkage.report.keys_by_kind, whole.report.keys_by_kind);
    assert_eq!(
        linkage.report.ambiguous_keys_by_kind,
        whole.report.ambiguous_keys_by_kind
    );
    assert_eq!(
        linkage.report.records_without_usable_key,
        whole.report.records_without_usable_key
    );
    linkage.cluster_of_record
}

#[test]
fn linking_partition_by_partition_gives_the_same_persons_and_ids() {
    let p = population();
    for strategy in [Strategy::Union, Strategy::CardOnly, Strategy::NameOnly] {
        let whole = link(&p.records, strategy).cluster_of_record;
        for partitions in [1, 2, 7, 64] {
            assert_eq!(
                link_in_partitions(&p.records, strategy, partitions),
                whole,
                "{strategy:?} over {partitions} partitions"
            );
        }
    }
    // Representatives offered in any order give the same person ids.
    let linkage = link(&p.records, Strategy::Union);
    let mut occurrences: Vec<KeyOccurrence> = p
        .records
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.occurrences(i as u32))
        .collect();
    occurrences.reverse();
    let mut representatives = Representatives::new(&linkage);
    for occurrence in &occurrences {
        representatives.add(&linkage, occurrence);
    }
    let id_of_cluster = representatives.person_ids(&p.keys);
    let reversed: Vec<i64> = linkage
        .cluster_of_record
        .iter()
        .map(|&c| id_of_cluster[c as usize])
        .collect();
    assert_eq!(reversed, assign_person_ids(&linkage, &p.records, &p.keys));
}
