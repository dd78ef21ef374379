//! The casbin enforcer: the fixed model and base policy from `policies/`,
//! plus role lines generated from the state.

use std::fmt;

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};

use crate::AccessError;

/// `policies/model.conf`, built into the binary so a deployment cannot
/// drift from the model the tests ran.
pub const MODEL: &str = include_str!("../../../policies/model.conf");
/// `policies/policy.csv`: what each role may do.
pub const BASE_POLICY: &str = include_str!("../../../policies/policy.csv");

/// Where a role holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Domain {
    /// Account roles: researcher, reviewer, chair, steward, operator, admin.
    System,
    /// The applicant, members and assigned reviewers of one application.
    Application(String),
    /// The members of an approved project while its grant is current.
    Project(String),
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::System => f.write_str("system"),
            Domain::Application(id) => write!(f, "application:{id}"),
            Domain::Project(id) => write!(f, "project:{id}"),
        }
    }
}

/// One generated `g` line: `user` holds `role` in `domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLine {
    pub user: String,
    pub role: &'static str,
    pub domain: Domain,
}

impl RoleLine {
    pub fn new(user: impl Into<String>, role: &'static str, domain: Domain) -> RoleLine {
        RoleLine {
            user: user.into(),
            role,
            domain,
        }
    }
}

/// An object and an action of the base policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub object: &'static str,
    pub action: &'static str,
}

impl Permission {
    pub const fn new(object: &'static str, action: &'static str) -> Permission {
        Permission { object, action }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.object)
    }
}

/// A built enforcer. Checks are synchronous and cost a few policy-line
/// evaluations: permissions are a fixed list, role lines are hash lookups.
pub struct Authorizer {
    enforcer: Enforcer,
    role_lines: usize,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("role_lines", &self.role_lines)
            .finish_non_exhaustive()
    }
}

impl Authorizer {
    /// The base policy plus `lines`.
    pub async fn build(lines: &[RoleLine]) -> Result<Authorizer, AccessError> {
        let base = parse_base_policy(BASE_POLICY)?;
        let model = DefaultModel::from_str(MODEL).await.map_err(policy_error)?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
            .await
            .map_err(policy_error)?;
        enforcer
            .add_policies(base.permissions)
            .await
            .map_err(policy_error)?;
        let mut roles = base.roles;
        roles.extend(lines.iter().map(|line| {
            vec![
                line.user.clone(),
                line.role.to_string(),
                line.domain.to_string(),
            ]
        }));
        roles.sort();
        roles.dedup();
        let role_lines = roles.len();
        enforcer
            .add_grouping_policies(roles)
            .await
            .map_err(policy_error)?;
        Ok(Authorizer {
            enforcer,
            role_lines,
        })
    }

    /// Whether `user` holds a role in `domain` that grants `permission`.
    pub fn allows(
        &self,
        user: &str,
        domain: &Domain,
        permission: Permission,
    ) -> Result<bool, AccessError> {
        self.enforcer
            .enforce((
                user,
                domain.to_string().as_str(),
                permission.object,
                permission.action,
            ))
            .map_err(policy_error)
    }
}

struct BasePolicy {
    permissions: Vec<Vec<String>>,
    roles: Vec<Vec<String>>,
}

/// `p, …` and `g, …` lines; blank lines and `#` comments are skipped,
/// anything else is an error rather than a silently ignored rule.
fn parse_base_policy(text: &str) -> Result<BasePolicy, AccessError> {
    let mut policy = BasePolicy {
        permissions: Vec::new(),
        roles: Vec::new(),
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<String> = line.split(',').map(|f| f.trim().to_string()).collect();
        let bad = || AccessError::Policy(format!("policy.csv line {}: {line}", number + 1));
        match (fields.first().map(String::as_str), fields.len()) {
            (Some("p"), 5) => policy.permissions.push(fields[1..].to_vec()),
            (Some("g"), 4) => policy.roles.push(fields[1..].to_vec()),
            _ => return Err(bad()),
        }
    }
    Ok(policy)
}

fn policy_error(error: casbin::Error) -> AccessError {
    AccessError::Policy(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: Permission = Permission::new("data", "query");
    const DECIDE: Permission = Permission::new("application", "decide");
    const REVIEW_OUTPUT: Permission = Permission::new("output", "review");

    #[test]
    fn malformed_policy_lines_are_errors() {
        assert!(parse_base_policy("p, a, b, c").is_err());
        assert!(parse_base_policy("x, a, b, c, d").is_err());
        assert!(parse_base_policy("# comment\n\ng, a, b, system\n").is_ok());
    }

    #[tokio::test]
    async fn roles_hold_only_in_their_domain() {
        let lines = [
            RoleLine::new("alice", "project_member", Domain::Project("p1".into())),
            RoleLine::new("carol", "chair", Domain::System),
            RoleLine::new("otto", "operator", Domain::System),
            RoleLine::new("adam", "admin", Domain::System),
        ];
        let authorizer = Authorizer::build(&lines).await.unwrap();
        let p1 = Domain::Project("p1".into());
        let p2 = Domain::Project("p2".into());
        assert!(authorizer.allows("alice", &p1, QUERY).unwrap());
        assert!(!authorizer.allows("alice", &p2, QUERY).unwrap());
        assert!(!authorizer.allows("alice", &Domain::System, QUERY).unwrap());
        assert!(authorizer.allows("carol", &Domain::System, DECIDE).unwrap());
        assert!(
            authorizer
                .allows("carol", &Domain::System, REVIEW_OUTPUT)
                .unwrap(),
            "the chair inherits the reviewer's permissions"
        );
        for operator in ["otto", "adam"] {
            assert!(
                !authorizer
                    .allows(operator, &Domain::System, DECIDE)
                    .unwrap(),
                "{operator} cannot approve"
            );
        }
        assert!(
            authorizer
                .allows("adam", &Domain::System, Permission::new("user", "list"))
                .unwrap(),
            "the admin inherits the operator's permissions"
        );
    }
}
