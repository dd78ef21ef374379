//! The one application and review workflow of the enclave.
//!
//! Owns applications (what is asked: purpose, public interest, members,
//! tables and columns from the catalog, linkage, period, disclosure
//! parameters), their life (draft → submitted → under review → approved /
//! conditionally approved / rejected / returned; amendments, withdrawal,
//! expiry, closing), committee review (assigned reviewers, conflicts of
//! interest, opinions and votes, quorum, the chair's decision and
//! conditions, messages), the project an approval grants, output release
//! review (automatic check, then a second person), and bring-in review
//! (screening, quarantine, two committee members).
//!
//! Separation of duties is enforced here, where the members are known:
//! nobody named on an application assigns, reviews, votes on or decides it,
//! and nobody in a project reviews its outputs or what it brings in. Which roles may attempt a
//! step at all is the casbin policy's business (`enclave-access`); the
//! gRPC API (`enclave-api`) asks both.

mod application;
mod bring_in;
mod error;
mod output;
mod workflow;

pub use application::{
    Act, Application, DATASETS, Decision, Member, Message, Pledge, Proposal, QUORUM, Reviewer,
    Round, Status, Step, Terms, Transition, Vote, VoteChoice, WORKSPACE_QUOTA_BYTES,
};
pub use bring_in::{
    APPROVALS, Approval, BringIn, BringInKind, BringInStatus, Finding, Upload, is_valid_name,
};
pub use error::WorkflowError;
pub use output::{CheckFindings, OutputRelease, ReleaseStatus};
pub use workflow::{ApplicationRoles, Workflow};
