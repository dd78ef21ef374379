//! How a query error reaches a Flight SQL client: one gRPC code per kind
//! of error, the user message, and for a refusal the rule's id in the
//! response metadata (`x-enclave-rule`), so clients can act on the rule
//! without parsing the message.

use enclave_query::{QueryError, Rule};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// The metadata key that names the rule a statement was refused by.
pub const RULE_HEADER: &str = "x-enclave-rule";

/// Maps a query error to its gRPC status; the message is the user message.
pub fn status(error: QueryError) -> Status {
    let message = error.user_message();
    let code = match &error {
        QueryError::Refused { rule, .. } => refusal_code(*rule),
        QueryError::Invalid(_) => Code::InvalidArgument,
        QueryError::ResourcesExhausted(_) => Code::ResourceExhausted,
        QueryError::Timeout(_) => Code::DeadlineExceeded,
        QueryError::Internal(_) => Code::Internal,
    };
    let mut status = Status::new(code, message);
    if let QueryError::Refused { rule, .. } = &error {
        status
            .metadata_mut()
            .insert(RULE_HEADER, MetadataValue::from_static(rule.id()));
    }
    status
}

/// The code of a refusal: the project's state denies permission, the
/// server's limits are exhausted, anything else is a statement the rules
/// do not allow.
fn refusal_code(rule: Rule) -> Code {
    match rule {
        Rule::NoProject | Rule::ProjectExpired | Rule::ProjectClosed | Rule::NotGranted => {
            Code::PermissionDenied
        }
        Rule::TooManyQueries | Rule::WorkspaceQuota | Rule::FreshValueBudget => {
            Code::ResourceExhausted
        }
        Rule::Statement
        | Rule::Ddl
        | Rule::Dml
        | Rule::Copy
        | Rule::Explain
        | Rule::RowLevel
        | Rule::IdentifyingGroup
        | Rule::ValueRevealingAggregate
        | Rule::PersonJoin
        | Rule::NestedAggregate
        | Rule::Unsupported
        | Rule::ScalarSubquery
        | Rule::ReservedName
        | Rule::PaddedSum
        | Rule::Publication
        | Rule::PersonSubquery
        | Rule::KeyValue
        | Rule::InputLimit
        | Rule::Workspace => Code::InvalidArgument,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_header(status: &Status) -> Option<&str> {
        status
            .metadata()
            .get(RULE_HEADER)
            .map(|value| value.to_str().expect("ASCII rule id"))
    }

    #[test]
    fn every_refusal_names_its_rule_in_metadata() {
        for &rule in Rule::ALL {
            let status = status(QueryError::refused(rule, "because"));
            assert_eq!(rule_header(&status), Some(rule.id()));
            assert_eq!(
                status.message(),
                format!("refused ({}): because", rule.id())
            );
            let expected = match rule {
                Rule::NoProject | Rule::ProjectExpired | Rule::ProjectClosed | Rule::NotGranted => {
                    Code::PermissionDenied
                }
                Rule::TooManyQueries | Rule::WorkspaceQuota | Rule::FreshValueBudget => {
                    Code::ResourceExhausted
                }
                _ => Code::InvalidArgument,
            };
            assert_eq!(status.code(), expected, "{rule}");
        }
    }

    #[test]
    fn other_errors_map_to_their_codes_without_a_rule() {
        let cases = [
            (
                QueryError::Invalid("No field named x".into()),
                Code::InvalidArgument,
            ),
            (
                QueryError::ResourcesExhausted("memory".into()),
                Code::ResourceExhausted,
            ),
            (QueryError::Timeout(300), Code::DeadlineExceeded),
            (QueryError::internal("a value 'C18.9'"), Code::Internal),
        ];
        for (error, code) in cases {
            let status = status(error);
            assert_eq!(status.code(), code);
            assert_eq!(rule_header(&status), None);
        }
    }

    #[test]
    fn internal_detail_never_reaches_the_client() {
        let status = status(QueryError::internal("cast of 'C18.9' failed"));
        assert!(!status.message().contains("C18.9"), "{}", status.message());
    }
}
