//! A query error as a Flight SQL client receives it: its gRPC code and
//! HTTP status (one mapping, `enclave_core::error`), its message, and for a
//! refusal the rule's id in the `x-enclave-rule` metadata.

use enclave_core::error::{ErrorKind, UserFacing};
use enclave_query::{QueryError, Rule};
use enclave_rpc::{RULE_HEADER, status};
use tonic::{Code, Status};

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
        let http = match expected {
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            _ => 400,
        };
        assert_eq!(rule.kind().http_status(), http, "{rule}");
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
        assert_eq!(ErrorKind::from_grpc_code(code as i32), error.kind());
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
