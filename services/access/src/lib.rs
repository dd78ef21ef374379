//! Who may do what: logins and bearer tokens, and authorization through a
//! casbin enforcer (RBAC with domains; `policies/model.conf` and
//! `policies/policy.csv`).
//!
//! Account roles hold system-wide; applicants, members and assigned
//! reviewers hold roles in their application's domain; members of an
//! approved project hold `project_member` in the project's domain only while
//! its grant is current. Every front end (Flight SQL, the gRPC API) asks
//! [`Access`] before it acts. Logins are bounded (names, password length)
//! and throttled per account and per client address
//! (`throttle`).

mod access;
mod error;
mod policy;
mod throttle;
mod token;

pub use access::{Access, MAX_PASSWORD_BYTES, RoleSource, TOKEN_LIFETIME};
pub use error::AccessError;
pub use policy::{Authorizer, BASE_POLICY, Domain, MODEL, Permission, RoleLine};
pub use token::{Signer, parse_basic, parse_bearer};

/// The permissions front ends check (objects and actions of `policy.csv`).
pub mod permissions {
    use crate::Permission;

    pub const CATALOG_READ: Permission = Permission::new("catalog", "read");
    pub const APPLICATION_CREATE: Permission = Permission::new("application", "create");
    pub const APPLICATION_READ: Permission = Permission::new("application", "read");
    pub const APPLICATION_LIST: Permission = Permission::new("application", "list");
    pub const APPLICATION_EDIT: Permission = Permission::new("application", "edit");
    pub const APPLICATION_SUBMIT: Permission = Permission::new("application", "submit");
    pub const APPLICATION_WITHDRAW: Permission = Permission::new("application", "withdraw");
    pub const APPLICATION_AMEND: Permission = Permission::new("application", "amend");
    pub const APPLICATION_CLOSE: Permission = Permission::new("application", "close");
    pub const APPLICATION_MESSAGE: Permission = Permission::new("application", "message");
    pub const APPLICATION_ASSIGN: Permission = Permission::new("application", "assign");
    pub const APPLICATION_DECLARE_CONFLICT: Permission =
        Permission::new("application", "declare_conflict");
    pub const APPLICATION_VOTE: Permission = Permission::new("application", "vote");
    pub const APPLICATION_DECIDE: Permission = Permission::new("application", "decide");
    pub const DATA_QUERY: Permission = Permission::new("data", "query");
    pub const AUDIT_QUERY: Permission = Permission::new("audit", "query");
    /// The committee's pages of the portal (queue, review, output checks).
    pub const COMMITTEE_VIEW: Permission = Permission::new("committee", "view");
    pub const OUTPUT_REQUEST: Permission = Permission::new("output", "request");
    pub const OUTPUT_READ: Permission = Permission::new("output", "read");
    pub const OUTPUT_LIST: Permission = Permission::new("output", "list");
    pub const OUTPUT_REVIEW: Permission = Permission::new("output", "review");
    pub const OUTPUT_DOWNLOAD: Permission = Permission::new("output", "download");
    /// A project member brings a table in (quarantined until reviewed).
    pub const BRING_IN_UPLOAD: Permission = Permission::new("bring_in", "upload");
    pub const BRING_IN_LIST: Permission = Permission::new("bring_in", "list");
    pub const BRING_IN_REVIEW: Permission = Permission::new("bring_in", "review");
    pub const USER_LIST: Permission = Permission::new("user", "list");
    pub const USER_MANAGE: Permission = Permission::new("user", "manage");
}
