//! Bounds on what one event holds, so that no input (a 2 MB user name, a
//! 1 MB SQL statement) can make an event the log refuses. A string longer
//! than its bound is stored as a prefix and a SHA-256 of the whole:
//! `<prefix>… [<N> bytes, sha256 <hex>]`; operators still see what it
//! began with and can match the original by its hash. A detail that stays
//! too large once every string is bounded (thousands of fields) is stored
//! as the same kind of prefix of its JSON text.

use ring::digest::{SHA256, digest};
use serde_json::Value;

use crate::checkpoint::hex;
use crate::log::NewEvent;
use crate::segment::MAX_EVENT_BYTES;

/// Longest actor, action or outcome stored whole.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest string in an event's detail (an SQL text, a message) stored whole.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Room left in a frame for the fields the log adds (`seq`, `at_ms`).
const STORED_FIELDS_BYTES: usize = 128;

/// `event` with every string within its bound and the whole within what
/// a segment frame holds.
pub fn bound_event(event: NewEvent) -> NewEvent {
    let mut detail = event.detail;
    bound_strings(&mut detail);
    let mut bounded = NewEvent {
        actor: bound_text(event.actor, MAX_NAME_BYTES),
        action: event.action,
        outcome: event.outcome,
        detail,
    };
    if encoded_len(&bounded) + STORED_FIELDS_BYTES > MAX_EVENT_BYTES {
        let text = bounded.detail.to_string();
        bounded.detail =
            serde_json::json!({ "detail_truncated": bound_text(text, MAX_TEXT_BYTES) });
    }
    bounded
}

/// Bytes of `event` as JSON.
pub(crate) fn encoded_len(event: &NewEvent) -> usize {
    serde_json::to_vec(event).map_or(usize::MAX, |bytes| bytes.len())
}

fn bound_strings(value: &mut Value) {
    match value {
        Value::String(text) => *text = bound_text(std::mem::take(text), MAX_TEXT_BYTES),
        Value::Array(items) => items.iter_mut().for_each(bound_strings),
        Value::Object(fields) => {
            let long_keys = fields.keys().any(|key| key.len() > MAX_NAME_BYTES);
            if long_keys {
                *fields = std::mem::take(fields)
                    .into_iter()
                    .map(|(key, value)| (bound_text(key, MAX_NAME_BYTES), value))
                    .collect();
            }
            fields.values_mut().for_each(bound_strings);
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` if it fits in `limit` bytes, else its prefix (cut at a character
/// boundary), its length and its SHA-256.
pub fn bound_text(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let hash = hex(digest(&SHA256, text.as_bytes()).as_ref());
    format!("{}… [{} bytes, sha256 {hash}]", &text[..cut], text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(actor: String, detail: Value) -> NewEvent {
        NewEvent::new(actor, crate::Action::Login, crate::Outcome::Refused, detail)
    }

    #[test]
    fn short_fields_are_kept_whole() {
        let original = event(
            "alice".into(),
            serde_json::json!({ "sql": "SELECT 1", "n": 3 }),
        );
        assert_eq!(bound_event(original.clone()), original);
    }

    #[test]
    fn a_long_name_keeps_a_prefix_its_length_and_its_hash() {
        let name = "a".repeat(2_000_000);
        let bounded = bound_event(event(name.clone(), Value::Null));
        let hash = hex(digest(&SHA256, name.as_bytes()).as_ref());
        assert!(bounded.actor.starts_with(&"a".repeat(MAX_NAME_BYTES)));
        assert!(
            bounded
                .actor
                .ends_with(&format!("… [2000000 bytes, sha256 {hash}]"))
        );
        assert!(bounded.actor.len() < MAX_NAME_BYTES + 100);
    }

    #[test]
    fn long_strings_anywhere_in_the_detail_are_bounded() {
        let sql = "SELECT ".to_string() + &"1,".repeat(700_000);
        let bounded = bound_event(event(
            "alice".into(),
            serde_json::json!({ "sql": sql.clone(), "list": [sql.clone()], "nested": { "m": sql } }),
        ));
        for text in [
            &bounded.detail["sql"],
            &bounded.detail["list"][0],
            &bounded.detail["nested"]["m"],
        ] {
            let text = text.as_str().unwrap();
            assert!(text.starts_with("SELECT 1,1,") && text.len() < MAX_TEXT_BYTES + 100);
        }
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let bounded = bound_text("名".repeat(100), 10);
        assert!(bounded.starts_with("名名名…"), "{bounded}");
    }

    #[test]
    fn a_detail_of_many_fields_is_kept_as_a_prefix_of_its_json() {
        let many: Vec<String> = (0..100)
            .map(|i| format!("{i}{}", "x".repeat(60_000)))
            .collect();
        let bounded = bound_event(event("alice".into(), serde_json::json!({ "many": many })));
        assert!(encoded_len(&bounded) + STORED_FIELDS_BYTES <= MAX_EVENT_BYTES);
        let kept = bounded.detail["detail_truncated"].as_str().unwrap();
        assert!(kept.starts_with("{\"many\":[\"0xxx"), "{}", &kept[..40]);
    }
}
