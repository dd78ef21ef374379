//! How enclave's gRPC services (Flight SQL and the review/grant API) speak
//! gRPC, in one place:
//! - [`status`]: a user-facing error ([`UserFacing`]) as a gRPC status: the
//!   code of its [`ErrorKind`], its user message, and for a refusal the
//!   rule's id in the `x-enclave-rule` metadata, so clients can act on the
//!   rule without parsing the message, and its hint in `x-enclave-hint`;
//! - the credentials of a call: HTTP Basic ([`basic_credentials`]), the
//!   bearer token ([`bearer_token`]) and the client's address
//!   ([`client_address`], or [`ClientAddress`] set by an in-process front
//!   end such as the portal).
//!
//! The services' own crates (access, audit, query) know nothing of gRPC.

use std::net::IpAddr;

use enclave_access::{parse_basic, parse_bearer};
use enclave_core::error::{ErrorKind, UserFacing};
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Status};

/// The metadata key that names the rule a call was refused by.
pub const RULE_HEADER: &str = "x-enclave-rule";
/// The metadata key of the error's hint (where to learn what to do instead).
pub const HINT_HEADER: &str = "x-enclave-hint";

/// The gRPC status of `error`.
pub fn status(error: impl UserFacing) -> Status {
    let mut status = Status::new(code(error.kind()), error.user_message());
    if let Some(rule) = error.rule() {
        status
            .metadata_mut()
            .insert(RULE_HEADER, MetadataValue::from_static(rule));
    }
    if let Some(hint) = error
        .hint()
        .and_then(|hint| MetadataValue::try_from(hint).ok())
    {
        status.metadata_mut().insert(HINT_HEADER, hint);
    }
    status
}

/// The tonic code of `kind`.
pub fn code(kind: ErrorKind) -> Code {
    Code::from_i32(kind.grpc_code())
}

/// User name and password from `authorization: Basic …`.
pub fn basic_credentials(metadata: &MetadataMap) -> Result<(String, String), Status> {
    authorization(metadata)
        .and_then(parse_basic)
        .ok_or_else(|| {
            Status::unauthenticated("send a user name and password (HTTP Basic) to log in")
        })
}

/// The token from `authorization: Bearer …`.
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    authorization(metadata).and_then(parse_bearer)
}

fn authorization(metadata: &MetadataMap) -> Option<&str> {
    metadata.get("authorization")?.to_str().ok()
}

/// The address of the client a call comes from, set by a front end that
/// calls the API in-process for a remote visitor (the portal); it takes
/// precedence over the connection's peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client address of a call: [`ClientAddress`] when a front end set
/// one, else the peer of its connection.
pub fn client_address<T>(request: &Request<T>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ClientAddress>()
        .map(|client| client.0)
        .or_else(|| request.remote_addr().map(|peer| peer.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sample(ErrorKind, Option<&'static str>);

    impl std::fmt::Display for Sample {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    impl UserFacing for Sample {
        fn kind(&self) -> ErrorKind {
            self.0
        }
        fn user_message(&self) -> String {
            "what the user reads".into()
        }
        fn rule(&self) -> Option<&'static str> {
            self.1
        }
        fn hint(&self) -> Option<String> {
            self.1.map(|rule| format!("see rule {rule}"))
        }
    }

    #[test]
    fn each_kind_has_its_code_and_a_refusal_names_its_rule() {
        let expected = [
            (ErrorKind::Unauthenticated, Code::Unauthenticated),
            (ErrorKind::PermissionDenied, Code::PermissionDenied),
            (ErrorKind::InvalidArgument, Code::InvalidArgument),
            (ErrorKind::NotFound, Code::NotFound),
            (ErrorKind::AlreadyExists, Code::AlreadyExists),
            (ErrorKind::FailedPrecondition, Code::FailedPrecondition),
            (ErrorKind::ResourceExhausted, Code::ResourceExhausted),
            (ErrorKind::Timeout, Code::DeadlineExceeded),
            (ErrorKind::Unavailable, Code::Unavailable),
            (ErrorKind::Internal, Code::Internal),
        ];
        assert_eq!(expected.len(), ErrorKind::ALL.len());
        for (kind, code) in expected {
            let plain = status(Sample(kind, None));
            assert_eq!(plain.code(), code);
            assert_eq!(plain.message(), "what the user reads");
            assert!(plain.metadata().get(RULE_HEADER).is_none());
            assert!(plain.metadata().get(HINT_HEADER).is_none());
            let refused = status(Sample(kind, Some("row-level")));
            assert_eq!(refused.metadata().get(RULE_HEADER).unwrap(), "row-level");
            assert_eq!(
                refused.message(),
                "what the user reads",
                "the hint stays apart"
            );
            assert_eq!(
                refused.metadata().get(HINT_HEADER).unwrap(),
                "see rule row-level"
            );
        }
    }

    #[test]
    fn basic_credentials_accept_unpadded_base64() {
        for encoded in ["YWxpY2U6cHc=", "YWxpY2U6cHc"] {
            let mut metadata = MetadataMap::new();
            metadata.insert("authorization", format!("Basic {encoded}").parse().unwrap());
            assert_eq!(
                basic_credentials(&metadata).unwrap(),
                ("alice".to_string(), "pw".to_string())
            );
        }
        let mut bearer = MetadataMap::new();
        bearer.insert("authorization", "Bearer t0ken".parse().unwrap());
        assert!(basic_credentials(&bearer).is_err());
        assert_eq!(bearer_token(&bearer), Some("t0ken"));
    }
}
