//! What an event says was done and how it ended: one list of actions with
//! their dotted names, so every writer and every reader (alerts, the
//! operator's searches, the docs) uses the same words.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`Action`] from `Variant => "dotted.name"` pairs, with
/// [`Action::name`], [`Action::from_name`] and [`Action::ALL`] agreeing by
/// construction.
macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// What was done. Names are `object.verb`, dotted.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action {
            $($(#[$doc])* $variant,)*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &[Action] = &[$(Action::$variant,)*];

            /// The name stored in the log.
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }

            /// The action stored under `name`.
            pub fn from_name(name: &str) -> Option<Action> {
                match name {
                    $($name => Some(Action::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    /// A sign-in, over Flight SQL or the portal.
    Login => "login",
    /// A bearer token refused.
    Token => "token",
    /// A statement of a project session.
    Query => "query",
    /// A statement over the audit schema.
    AuditQuery => "audit.query",
    /// An operator's search on the portal's audit page.
    PortalAudit => "portal.audit",
    ServerStart => "server.start",
    ServerStop => "server.stop",
    /// A torn tail cut off after a crash.
    AuditRecovered => "audit.recovered",
    AuditArchived => "audit.archived",
    AuditArchiveFailed => "audit.archive_failed",
    AuditArchiveMismatch => "audit.archive_mismatch",
    UserAdd => "user.add",
    UserList => "user.list",
    UserSuspend => "user.suspend",
    UserRestore => "user.restore",
    ProjectAdd => "project.add",
    ProjectClose => "project.close",
    /// What a closed project held, destroyed: each workspace table and held
    /// output by name, size and SHA-256 (never contents).
    ProjectDestroy => "project.destroy",
    OptOutAdd => "optout.add",
    ReleaseIngest => "release.ingest",
    GrantList => "grant.list",
    /// The sweep that ends grants whose period is over.
    GrantExpire => "grant.expire",
    LedgerRead => "ledger.read",
    ApplicationCreate => "application.create",
    ApplicationRead => "application.read",
    ApplicationList => "application.list",
    ApplicationEdit => "application.edit",
    ApplicationSubmit => "application.submit",
    ApplicationWithdraw => "application.withdraw",
    ApplicationAmend => "application.amend",
    ApplicationAssign => "application.assign",
    ApplicationDeclareConflict => "application.declare_conflict",
    ApplicationVote => "application.vote",
    ApplicationDecide => "application.decide",
    ApplicationMessage => "application.message",
    ApplicationClose => "application.close",
    OutputRequest => "output.request",
    OutputList => "output.list",
    OutputRead => "output.read",
    OutputReview => "output.review",
    OutputDownload => "output.download",
    /// A table sent to a project's `ref` schema: screened, quarantined.
    BringInUpload => "bring_in.upload",
    BringInList => "bring_in.list",
    /// A committee member's approval or rejection of a brought-in table.
    BringInReview => "bring_in.review",
    /// The sweep that destroys tables left in quarantine too long.
    BringInExpire => "bring_in.expire",
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Written before a change is made (write-ahead); its outcome follows.
    Requested,
    Ok,
    /// Refused by a rule, a check or the caller's rights.
    Refused,
    /// Could not be done (a fault, not a refusal).
    Failed,
}

impl Outcome {
    pub const ALL: &[Outcome] = &[
        Outcome::Requested,
        Outcome::Ok,
        Outcome::Refused,
        Outcome::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Requested => "requested",
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.iter().copied().find(|o| o.name() == name)
    }
}

/// Both are stored (and spooled to the inbox) as their names.
macro_rules! named {
    ($($kind:ident),*) => {$(
        impl fmt::Display for $kind {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl Serialize for $kind {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $kind {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = String::deserialize(deserializer)?;
                $kind::from_name(&name).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        concat!("unknown ", stringify!($kind), " `{}`"),
                        name
                    ))
                })
            }
        }
    )*};
}

named!(Action, Outcome);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_dotted_and_read_back() {
        let mut seen = std::collections::HashSet::new();
        for action in Action::ALL {
            let name = action.name();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{name}"
            );
            assert_eq!(Action::from_name(name), Some(*action));
            let json = serde_json::to_string(action).unwrap();
            assert_eq!(serde_json::from_str::<Action>(&json).unwrap(), *action);
        }
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::from_name(outcome.name()), Some(*outcome));
        }
        assert!(serde_json::from_str::<Action>("\"decide application\"").is_err());
    }
}
