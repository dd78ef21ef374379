//! Patterns operators should look at, found in the events: repeated
//! refusals, failed logins, and many queries that differ only in their
//! literals (the shape of a differencing attack).

use std::collections::{BTreeMap, BTreeSet};

use crate::log::Event;
use crate::{Action, Outcome};

/// The window the thresholds count in.
pub const WINDOW_MS: i64 = 10 * 60 * 1000;
pub const REFUSALS: usize = 5;
pub const FAILED_LOGINS: usize = 5;
pub const NEAR_IDENTICAL: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub kind: &'static str,
    pub actor: String,
    /// Sequence numbers of the first and last event in the pattern.
    pub first_seq: u64,
    pub last_seq: u64,
    pub count: usize,
    pub summary: String,
}

pub fn alerts(events: &[Event]) -> Vec<Alert> {
    let mut found = Vec::new();
    let refusals = events
        .iter()
        .filter(|e| e.is(Action::Query, Outcome::Refused));
    found.extend(
        bursts(refusals, |_| String::new(), REFUSALS).map(|(actor, _, window)| {
            alert("repeated-refusals", actor, &window, "queries refused")
        }),
    );
    let failed_logins = events
        .iter()
        .filter(|e| e.is(Action::Login, Outcome::Refused));
    found.extend(
        bursts(failed_logins, |_| String::new(), FAILED_LOGINS)
            .map(|(actor, _, window)| alert("failed-logins", actor, &window, "failed logins")),
    );
    let answered = events
        .iter()
        .filter(|e| e.is(Action::Query, Outcome::Ok) && e.detail["phase"] == "execute");
    found.extend(
        bursts(
            answered,
            |e| shape(e.detail["sql"].as_str().unwrap_or("")),
            NEAR_IDENTICAL,
        )
        .filter(|(_, _, window)| distinct_sql(window) >= NEAR_IDENTICAL)
        .map(|(actor, shape, window)| {
            let what = format!("queries of one shape with different literals: {shape}");
            alert("near-identical-queries", actor, &window, &what)
        }),
    );
    found.sort_by_key(|a| a.first_seq);
    found
}

fn alert(kind: &'static str, actor: String, window: &[&Event], what: &str) -> Alert {
    Alert {
        kind,
        actor,
        first_seq: window[0].seq,
        last_seq: window[window.len() - 1].seq,
        count: window.len(),
        summary: format!(
            "{} {what} within {} minutes",
            window.len(),
            WINDOW_MS / 60_000
        ),
    }
}

fn distinct_sql(window: &[&Event]) -> usize {
    window
        .iter()
        .map(|e| e.detail["sql"].as_str().unwrap_or(""))
        .collect::<BTreeSet<_>>()
        .len()
}

/// For each (actor, key): the first window of at least `threshold` events
/// within [`WINDOW_MS`], grown to every event that still fits it.
fn bursts<'a>(
    events: impl Iterator<Item = &'a Event>,
    key: impl Fn(&Event) -> String,
    threshold: usize,
) -> impl Iterator<Item = (String, String, Vec<&'a Event>)> {
    let mut groups: BTreeMap<(String, String), Vec<&'a Event>> = BTreeMap::new();
    for event in events {
        groups
            .entry((event.actor.clone(), key(event)))
            .or_default()
            .push(event);
    }
    groups.into_iter().filter_map(move |((actor, key), group)| {
        let mut start = 0;
        for end in 0..group.len() {
            while group[end].at_ms - group[start].at_ms > WINDOW_MS {
                start += 1;
            }
            if end + 1 - start >= threshold {
                let last = group[end..]
                    .iter()
                    .take_while(|e| e.at_ms - group[start].at_ms <= WINDOW_MS)
                    .count();
                return Some((actor, key, group[start..end + last].to_vec()));
            }
        }
        None
    })
}

/// SQL with its literals replaced by `?` and whitespace folded.
pub fn shape(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut previous_word = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            while let Some(inner) = chars.next() {
                if inner == '\'' && chars.peek() != Some(&'\'') {
                    break;
                }
                if inner == '\'' {
                    chars.next();
                }
            }
            out.push('?');
        } else if c.is_ascii_digit() && !previous_word {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                chars.next();
            }
            out.push('?');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
        previous_word = c.is_alphanumeric() || c == '_';
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, minute: i64, actor: &str, action: &str, outcome: &str, sql: &str) -> Event {
        Event {
            seq,
            at_ms: minute * 60_000,
            actor: actor.into(),
            action: action.into(),
            outcome: outcome.into(),
            detail: serde_json::json!({ "sql": sql, "phase": "execute" }),
        }
    }

    #[test]
    fn literals_are_folded_but_names_kept() {
        assert_eq!(
            shape("SELECT count(*) FROM t WHERE age_band = '65-69'  AND  x2 > 10.5"),
            "select count(*) from t where age_band = ? and x2 > ?"
        );
        assert_eq!(shape("WHERE name = 'O''Brien'"), "where name = ?");
    }

    #[test]
    fn a_differencing_pattern_raises_one_alert() {
        let mut events: Vec<Event> = (0..12)
            .map(|i| {
                let sql =
                    format!("SELECT sex, count(*) FROM t WHERE total_points <> {i} GROUP BY sex");
                event(i, i as i64 / 3, "mallory", "query", "ok", &sql)
            })
            .collect();
        // The same statement repeated is not a differencing pattern.
        events.extend((12..30).map(|i| event(i, 1, "alice", "query", "ok", "SELECT 1 FROM t")));
        let found = alerts(&events);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].kind, found[0].actor.as_str()),
            ("near-identical-queries", "mallory")
        );
        assert_eq!(
            (found[0].first_seq, found[0].last_seq, found[0].count),
            (0, 11, 12)
        );
    }

    #[test]
    fn refusals_and_failed_logins_count_within_the_window() {
        let spread: Vec<Event> = (0..5)
            .map(|i| event(i, i as i64 * 11, "bob", "query", "refused", "SELECT *"))
            .collect();
        assert!(
            alerts(&spread).is_empty(),
            "five refusals an hour apart are not a burst"
        );
        let burst: Vec<Event> = (0..6)
            .map(|i| event(i, 2, "eve", "login", "refused", ""))
            .chain((6..11).map(|i| event(i, 3, "bob", "query", "refused", "SELECT *")))
            .collect();
        let found = alerts(&burst);
        let kinds: Vec<(&str, &str)> = found.iter().map(|a| (a.kind, a.actor.as_str())).collect();
        assert_eq!(
            kinds,
            [("failed-logins", "eve"), ("repeated-refusals", "bob")]
        );
    }
}
