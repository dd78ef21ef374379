//! What each ledger release was — the project and the query whose result
//! made it, when, and how many values of released groups it answered fresh
//! or repeated — and what a project's members may see of that.

use std::collections::{BTreeMap, HashMap};

use enclave_guard::disclosure::{Repeated, ValueCounts};

/// Releases of a project listed newest first on its page.
const RECENT_RELEASES: usize = 20;

/// Who made one release. `None` fields: a release stored before releases
/// named their query.
#[derive(Debug, Clone)]
pub(crate) struct Made {
    pub(crate) project: String,
    pub(crate) query_id: Option<String>,
    pub(crate) at_ms: Option<i64>,
    pub(crate) values: Option<ValueCounts>,
    /// Made by cells of withheld groups alone (see
    /// `enclave_guard::ledger::shows_new_cells`).
    pub(crate) unshown: bool,
}

/// The releases held, by number and by project.
#[derive(Debug, Default)]
pub(crate) struct Releases {
    made: BTreeMap<u64, Made>,
    by_project: HashMap<String, Vec<u64>>,
}

/// What a project's members see of the ledger: only releases its own
/// queries made, and of those only the values of released groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectLedger {
    /// Ledger releases the project's results made.
    pub releases: u64,
    /// Values of released groups answered fresh, over those releases.
    pub fresh_values: u64,
    /// Values of released groups that repeated an earlier answer.
    pub repeated_values: u64,
    /// The newest releases first, at most 20 (`RECENT_RELEASES`).
    pub recent: Vec<LedgerRelease>,
}

/// One of a project's ledger releases. `None`: stored before releases
/// named their query (their values are not in the totals either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRelease {
    pub number: u64,
    pub at_ms: Option<i64>,
    pub query_id: Option<String>,
    pub fresh_values: Option<u64>,
    pub repeated_values: Option<u64>,
}

impl Releases {
    /// Remembers release `number`; one made by cells of withheld groups
    /// alone ([`Made::unshown`]) is not listed to its project.
    pub(crate) fn insert(&mut self, number: u64, made: Made) {
        if made.unshown {
            self.made.insert(number, made);
            return;
        }
        self.by_project
            .entry(made.project.clone())
            .or_default()
            .push(number);
        self.made.insert(number, made);
    }

    /// How release `number` is named to the members of `project`.
    pub(crate) fn origin(&self, number: u64, project: &str) -> Repeated {
        match self.made.get(&number) {
            Some(made) if made.project == project => Repeated::ThisProject {
                release: number,
                query_id: made.query_id.clone(),
            },
            _ => Repeated::AnotherProject,
        }
    }

    /// Values of released groups answered fresh for `project` so far.
    pub(crate) fn fresh_values(&self, project: &str) -> u64 {
        self.by_project
            .get(project)
            .into_iter()
            .flatten()
            .filter_map(|number| self.made.get(number)?.values)
            .map(|values| values.fresh_values as u64)
            .sum()
    }

    /// What the members of `project` see.
    pub(crate) fn project(&self, project: &str) -> ProjectLedger {
        let numbers = self.by_project.get(project).map_or(&[][..], Vec::as_slice);
        let releases: Vec<LedgerRelease> = numbers
            .iter()
            .filter_map(|number| Some(release(*number, self.made.get(number)?)))
            .collect();
        ProjectLedger {
            releases: releases.len() as u64,
            fresh_values: releases.iter().filter_map(|r| r.fresh_values).sum(),
            repeated_values: releases.iter().filter_map(|r| r.repeated_values).sum(),
            recent: releases.into_iter().rev().take(RECENT_RELEASES).collect(),
        }
    }
}

fn release(number: u64, made: &Made) -> LedgerRelease {
    LedgerRelease {
        number,
        at_ms: made.at_ms,
        query_id: made.query_id.clone(),
        fresh_values: made.values.map(|v| v.fresh_values as u64),
        repeated_values: made.values.map(|v| v.repeated_values as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn made(project: &str, query_id: Option<&str>, fresh: usize, repeated: usize) -> Made {
        Made {
            project: project.into(),
            query_id: query_id.map(Into::into),
            at_ms: query_id.map(|_| 1_700_000_000_000),
            values: query_id.map(|_| ValueCounts {
                fresh_values: fresh,
                repeated_values: repeated,
            }),
            unshown: false,
        }
    }

    #[test]
    fn another_projects_release_is_not_named() {
        let mut releases = Releases::default();
        releases.insert(1, made("a", Some("q-1"), 3, 0));
        releases.insert(2, made("b", Some("q-2"), 1, 0));
        assert_eq!(
            releases.origin(1, "a"),
            Repeated::ThisProject {
                release: 1,
                query_id: Some("q-1".into())
            }
        );
        assert_eq!(releases.origin(2, "a"), Repeated::AnotherProject);
        assert_eq!(releases.origin(3, "a"), Repeated::AnotherProject);
    }

    #[test]
    fn a_project_sees_its_own_releases_newest_first() {
        let mut releases = Releases::default();
        releases.insert(1, made("a", None, 0, 0));
        releases.insert(2, made("b", Some("q-2"), 7, 0));
        releases.insert(3, made("a", Some("q-3"), 2, 1));
        releases.insert(4, made("a", Some("q-4"), 0, 3));
        releases.insert(
            5,
            Made {
                unshown: true,
                ..made("a", Some("q-5"), 0, 0)
            },
        );
        let seen = releases.project("a");
        // Release 5 holds cells of withheld groups alone: not listed.
        assert_eq!(
            (seen.releases, seen.fresh_values, seen.repeated_values),
            (3, 2, 4)
        );
        // The budget counts the same values the project sees.
        assert_eq!(releases.fresh_values("a"), seen.fresh_values);
        assert_eq!(releases.fresh_values("b"), 7);
        assert_eq!(releases.fresh_values("c"), 0);
        let numbers: Vec<u64> = seen.recent.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [4, 3, 1]);
        assert_eq!(seen.recent[2].query_id, None);
        assert_eq!(releases.project("c"), ProjectLedger::default());
    }

    #[test]
    fn only_the_recent_releases_are_listed() {
        let mut releases = Releases::default();
        for number in 1..=30 {
            releases.insert(number, made("a", Some("q"), 1, 0));
        }
        let seen = releases.project("a");
        assert_eq!(seen.releases, 30);
        assert_eq!(seen.recent.len(), RECENT_RELEASES);
        assert_eq!(seen.recent[0].number, 30);
    }
}
