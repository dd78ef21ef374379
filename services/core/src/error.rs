//! One error contract for every surface. Each error a user can meet says
//! what kind it is ([`ErrorKind`]), what the user is shown (never a data
//! value; masked for faults that are the operator's), for a refusal by
//! a disclosure or access rule the rule's id, and apart from the message a
//! hint on where to learn what to do instead. Each kind maps once to a
//! gRPC code (Flight SQL and the API) and once to an HTTP status (the
//! portal), here, so the two cannot drift apart.

/// What kind of failure, as every surface reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No valid credentials or token.
    Unauthenticated,
    /// The caller's rights, grant or project state do not allow it.
    PermissionDenied,
    /// The request itself is wrong: a refused statement, a type mistake, a
    /// bad field. The user can correct it.
    InvalidArgument,
    NotFound,
    AlreadyExists,
    /// Not possible in the record's current state (e.g. deciding an
    /// application not yet reviewed).
    FailedPrecondition,
    /// A limit or budget is used up (concurrency, quota, login attempts).
    ResourceExhausted,
    /// Took longer than its time limit.
    Timeout,
    /// The service cannot take it now (the audit log cannot record it).
    Unavailable,
    /// A fault of the service; the detail is in the operator's log.
    Internal,
}

impl ErrorKind {
    pub const ALL: &[ErrorKind] = &[
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidArgument,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::FailedPrecondition,
        ErrorKind::ResourceExhausted,
        ErrorKind::Timeout,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The gRPC status code (the numbers of `google.rpc.Code`).
    pub fn grpc_code(self) -> i32 {
        match self {
            ErrorKind::InvalidArgument => 3,
            ErrorKind::Timeout => 4,
            ErrorKind::NotFound => 5,
            ErrorKind::AlreadyExists => 6,
            ErrorKind::PermissionDenied => 7,
            ErrorKind::ResourceExhausted => 8,
            ErrorKind::FailedPrecondition => 9,
            ErrorKind::Internal => 13,
            ErrorKind::Unavailable => 14,
            ErrorKind::Unauthenticated => 16,
        }
    }

    /// The kind a gRPC status code stands for; codes no error of ours
    /// carries count as internal.
    pub fn from_grpc_code(code: i32) -> ErrorKind {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.grpc_code() == code)
            .unwrap_or(ErrorKind::Internal)
    }

    /// The HTTP status.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::FailedPrecondition => 409,
            ErrorKind::ResourceExhausted => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
            ErrorKind::Timeout => 504,
        }
    }
}

/// An error that can reach a user.
pub trait UserFacing: std::fmt::Display {
    fn kind(&self) -> ErrorKind;

    /// What the user is shown. Never a data value; for [`ErrorKind::Internal`]
    /// and [`ErrorKind::Unavailable`] a fixed text (the detail is logged).
    fn user_message(&self) -> String;

    /// The id of the rule that refused it, if a rule did.
    fn rule(&self) -> Option<&'static str> {
        None
    }

    /// Where the user learns what to do instead, kept apart from the
    /// message (which says what is wrong). ASCII, so every surface can
    /// carry it; never a data value.
    fn hint(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_grpc_code_and_an_http_error_status() {
        let mut codes = std::collections::HashSet::new();
        for &kind in ErrorKind::ALL {
            assert!(codes.insert(kind.grpc_code()), "{kind:?}");
            assert_eq!(ErrorKind::from_grpc_code(kind.grpc_code()), kind);
            assert!((400..600).contains(&kind.http_status()), "{kind:?}");
        }
        // gRPC OK, CANCELLED, UNKNOWN are no error of ours.
        for code in [0, 1, 2] {
            assert_eq!(ErrorKind::from_grpc_code(code), ErrorKind::Internal);
        }
    }

    #[test]
    fn the_users_mistakes_are_4xx_and_the_services_faults_5xx() {
        for &kind in ErrorKind::ALL {
            let fault = matches!(
                kind,
                ErrorKind::Internal | ErrorKind::Unavailable | ErrorKind::Timeout
            );
            assert_eq!(kind.http_status() >= 500, fault, "{kind:?}");
        }
    }
}
