//! Who is calling and whether they may: the service every front end asks.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use enclave_audit::{Action, AuditLog, NewEvent, Outcome};
use enclave_core::date::CivilDate;
use enclave_state::{Clock, Snapshot, StateError, StateStore, User, is_valid_user_name};
use tokio::sync::Mutex;

use crate::AccessError;
use crate::policy::{Authorizer, Domain, Permission, RoleLine};
use crate::throttle::LoginThrottle;
use crate::token::Signer;

/// How long a login token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Longest password accepted at login: hashing a longer one would be work
/// anybody could make the server do.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Role lines kept outside this crate (the applicants, members and assigned
/// reviewers of applications), read from the same state store.
pub trait RoleSource: Send + Sync + fmt::Debug {
    fn role_lines(&self, state: &StateStore) -> Result<Vec<RoleLine>, StateError>;
}

/// Logins, tokens and authorization over one state store.
///
/// The enforcer is rebuilt when the state changes (its change counter
/// moves) or the date does (grants end at midnight), so a decision always
/// reflects committed state.
#[derive(Debug)]
pub struct Access {
    state: Arc<StateStore>,
    clock: Clock,
    signer: Signer,
    sources: Vec<Arc<dyn RoleSource>>,
    current: Mutex<Option<Built>>,
    audit: Arc<AuditLog>,
    throttle: LoginThrottle,
}

#[derive(Debug)]
struct Built {
    version: u64,
    day: CivilDate,
    authorizer: Arc<Authorizer>,
}

impl Access {
    pub fn new(
        state: Arc<StateStore>,
        clock: Clock,
        sources: Vec<Arc<dyn RoleSource>>,
        audit: Arc<AuditLog>,
    ) -> Access {
        Access {
            state,
            clock,
            signer: Signer::new(),
            sources,
            current: Mutex::new(None),
            audit,
            throttle: LoginThrottle::default(),
        }
    }

    /// The audit log front ends record their actions in.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    pub fn state(&self) -> &Arc<StateStore> {
        &self.state
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Checks a password (off the I/O threads: hashing is slow on purpose)
    /// and issues a token. Names and passwords out of bounds, and accounts
    /// or addresses throttled after failures (`throttle`), are
    /// refused before any hashing. Every attempt is recorded first.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> Result<String, AccessError> {
        if let Err(error) = check_credentials(user, password) {
            self.throttle.failed(None, address);
            self.record_login(user, Outcome::Refused, address, error.to_string())
                .await?;
            return Err(error);
        }
        if let Some(wait) = self.throttle.refuse(user, address) {
            let error = AccessError::Throttled(wait.as_millis().div_ceil(1000) as u64);
            tracing::warn!(user, ?address, "login throttled");
            self.record_login(user, Outcome::Refused, address, "throttled".into())
                .await?;
            return Err(error);
        }
        let state = Arc::clone(&self.state);
        let (name, secret) = (user.to_string(), password.to_string());
        let account = blocking(move || state.authenticate(&name, &secret)).await?;
        if account.is_none() {
            self.throttle.failed(Some(user), address);
            self.record_login(
                user,
                Outcome::Refused,
                address,
                "wrong name or password".into(),
            )
            .await?;
            tracing::warn!(user, ?address, "login failed");
            return Err(AccessError::BadCredentials);
        }
        self.throttle.succeeded(user);
        self.record_login(user, Outcome::Ok, address, String::new())
            .await?;
        tracing::info!(user, "login");
        Ok(self.signer.issue_token(user, TOKEN_LIFETIME))
    }

    /// Records one login attempt: the name given, the client's address and
    /// why a refused one was refused.
    async fn record_login(
        &self,
        user: &str,
        outcome: Outcome,
        address: Option<IpAddr>,
        reason: String,
    ) -> Result<(), AccessError> {
        let mut detail = serde_json::Map::new();
        if let Some(address) = address {
            detail.insert("address".into(), address.to_string().into());
        }
        if !reason.is_empty() {
            detail.insert("reason".into(), reason.into());
        }
        self.audit
            .record(NewEvent::new(user, Action::Login, outcome, detail.into()))
            .await?;
        Ok(())
    }

    /// The enabled account a call's bearer token (if it has one) was
    /// issued to. A refused token (missing, forged, expired, or of a
    /// suspended account) is recorded before the call is refused; an
    /// accepted one is recorded by the event of the action it authorizes.
    pub async fn caller(&self, token: Option<&str>) -> Result<User, AccessError> {
        let (reason, actor) = match token {
            None => ("missing", None),
            Some(token) => match self.signer.check_token(token) {
                None => ("invalid or expired", None),
                Some(user) => match self.snapshot().await?.user(&user) {
                    Some(account) if !account.disabled => return Ok(account.clone()),
                    Some(_) => ("account suspended", Some(user)),
                    None => ("unknown account", Some(user)),
                },
            },
        };
        tracing::warn!(reason, "token refused");
        self.audit
            .record(NewEvent::new(
                actor.unwrap_or_else(|| "unknown".into()),
                Action::Token,
                Outcome::Refused,
                serde_json::json!({ "reason": reason }),
            ))
            .await?;
        Err(AccessError::Unauthenticated)
    }

    /// Refuses unless `user` holds a role in `domain` granting `permission`.
    pub async fn check(
        &self,
        user: &str,
        domain: &Domain,
        permission: Permission,
    ) -> Result<(), AccessError> {
        if self.allows(user, domain, permission).await? {
            return Ok(());
        }
        tracing::warn!(user, %domain, %permission, "access denied");
        Err(AccessError::Denied(match domain {
            Domain::Project(id) => {
                format!("your access to project `{id}` is not approved, has ended or was closed")
            }
            _ => format!("your roles do not allow you to {permission} here"),
        }))
    }

    /// Whether `user` may; for checks whose refusal the caller words itself.
    pub async fn allows(
        &self,
        user: &str,
        domain: &Domain,
        permission: Permission,
    ) -> Result<bool, AccessError> {
        self.authorizer().await?.allows(user, domain, permission)
    }

    /// The enforcer for the current state and date.
    async fn authorizer(&self) -> Result<Arc<Authorizer>, AccessError> {
        let snapshot = self.snapshot().await?;
        let version = snapshot.version();
        let day = self.clock.today();
        let mut current = self.current.lock().await;
        if let Some(built) = current.as_ref()
            && built.version == version
            && built.day == day
        {
            return Ok(Arc::clone(&built.authorizer));
        }
        let lines = self.role_lines(snapshot, day).await?;
        let authorizer = Arc::new(Authorizer::build(&lines).await?);
        tracing::debug!(version, role_lines = lines.len(), "access policy rebuilt");
        *current = Some(Built {
            version,
            day,
            authorizer: Arc::clone(&authorizer),
        });
        Ok(authorizer)
    }

    /// Accounts, projects and opt-outs as of the store's latest change
    /// (read from the store only when it changed).
    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, AccessError> {
        Ok(self.state.snapshot().await?)
    }

    async fn role_lines(
        &self,
        snapshot: Arc<Snapshot>,
        day: CivilDate,
    ) -> Result<Vec<RoleLine>, AccessError> {
        let state = Arc::clone(&self.state);
        let sources = self.sources.clone();
        blocking(move || {
            let mut lines = account_lines(&snapshot);
            lines.extend(project_lines(&snapshot, day));
            for source in &sources {
                lines.extend(source.role_lines(&state)?);
            }
            Ok(lines)
        })
        .await
    }
}

/// Refuses a name no account can have and an overlong password.
fn check_credentials(user: &str, password: &str) -> Result<(), AccessError> {
    if !is_valid_user_name(user) {
        return Err(AccessError::Invalid(
            "user names are 1-64 characters of letters, digits, '.', '-' and '_'",
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AccessError::Invalid("passwords are at most 1024 bytes"));
    }
    Ok(())
}

/// One line per enabled account: its role in the system domain.
fn account_lines(snapshot: &Snapshot) -> Vec<RoleLine> {
    snapshot
        .users()
        .filter(|user| !user.disabled)
        .map(|user| RoleLine::new(user.name.clone(), user.role.name(), Domain::System))
        .collect()
}

/// One line per member of a project that is open on `day`: a closed or
/// expired grant gives its members nothing.
fn project_lines(snapshot: &Snapshot, day: CivilDate) -> Vec<RoleLine> {
    snapshot
        .projects()
        .iter()
        .filter(|project| project.is_open_on(day))
        .flat_map(|project| {
            let domain = Domain::Project(project.id.clone());
            project
                .members
                .iter()
                .map(move |member| RoleLine::new(member.clone(), "project_member", domain.clone()))
        })
        .collect()
}

/// Runs blocking state-store work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StateError> + Send + 'static,
) -> Result<T, AccessError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| AccessError::Internal(error.to_string()))?
        .map_err(AccessError::from)
}
