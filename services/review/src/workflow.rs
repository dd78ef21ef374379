//! The workflow over the state store: every step loads a record, applies
//! one transition and writes the record (with the project it grants or
//! closes) in one transaction.

use std::sync::{Arc, Mutex, PoisonError};

use enclave_access::{Domain, RoleLine, RoleSource};
use enclave_catalog::Catalog;
use enclave_state::{
    Clock, Collection, Destroyed, Project, ReferenceTable, Role, StateError, StateStore, Write,
};

use crate::WorkflowError;
use crate::application::{Act, Application, Proposal};
use crate::bring_in::{BringIn, BringInKind, BringInStatus, Finding, Upload};
use crate::output::{CheckFindings, OutputRelease};

/// Applications and output releases, kept in the state store.
#[derive(Debug)]
pub struct Workflow {
    state: Arc<StateStore>,
    catalog: Arc<Catalog>,
    clock: Clock,
    /// One read-modify-write at a time in this process.
    turn: Mutex<()>,
}

impl Workflow {
    pub fn new(state: Arc<StateStore>, catalog: Arc<Catalog>, clock: Clock) -> Workflow {
        Workflow {
            state,
            catalog,
            clock,
            turn: Mutex::new(()),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn state(&self) -> &Arc<StateStore> {
        &self.state
    }

    /// A new draft application by `by`.
    pub fn create(&self, by: &str, proposal: Proposal) -> Result<Application, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        self.check_members_exist(&proposal)?;
        self.check_project_id_free(&proposal.project_id, None)?;
        let id = self.state.next_id(Collection::Applications)?.to_string();
        let application = Application::draft(id, proposal, &self.catalog, self.act(by))?;
        self.state.write(&[application_write(&application)?])?;
        Ok(application)
    }

    pub fn application(&self, id: &str) -> Result<Application, WorkflowError> {
        self.state
            .record(Collection::Applications, id)?
            .ok_or_else(|| WorkflowError::NoApplication(id.to_string()))
    }

    pub fn applications(&self) -> Result<Vec<Application>, WorkflowError> {
        let mut all: Vec<Application> = self.state.records(Collection::Applications)?;
        all.sort_by_key(|a| a.id.parse::<u64>().unwrap_or(u64::MAX));
        Ok(all)
    }

    /// Replaces a draft's proposal.
    pub fn edit(
        &self,
        id: &str,
        by: &str,
        proposal: Proposal,
    ) -> Result<Application, WorkflowError> {
        self.check_members_exist(&proposal)?;
        self.check_project_id_free(&proposal.project_id, Some(id))?;
        self.change(id, by, |application, act| {
            application
                .edit(proposal, &self.catalog, act)
                .map(|()| None)
        })
    }

    /// Asks for new terms on an approved application.
    pub fn amend(
        &self,
        id: &str,
        by: &str,
        terms: crate::application::Terms,
    ) -> Result<Application, WorkflowError> {
        self.check_users_exist(terms.members.iter().map(|m| m.user.as_str()))?;
        self.change(id, by, |application, act| {
            application.amend(terms, &self.catalog, act).map(|()| None)
        })
    }

    /// The chair assigns reviewers; each must hold a reviewer or chair role.
    pub fn assign(
        &self,
        id: &str,
        by: &str,
        reviewers: &[String],
    ) -> Result<Application, WorkflowError> {
        if reviewers.is_empty() {
            return Err(WorkflowError::invalid(
                "reviewers",
                "name at least one reviewer",
            ));
        }
        for name in reviewers {
            let role = self
                .state
                .user(name)?
                .filter(|u| !u.disabled)
                .map(|u| u.role);
            if !matches!(role, Some(Role::Reviewer | Role::Chair)) {
                return Err(WorkflowError::invalid(
                    "reviewers",
                    format!("`{name}` is not an active committee member"),
                ));
            }
        }
        self.change(id, by, |application, act| {
            application.assign(reviewers, act).map(|()| None)
        })
    }

    /// Applies one transition to application `id`, writing it and the
    /// project the transition returns in one transaction.
    pub fn change(
        &self,
        id: &str,
        by: &str,
        transition: impl FnOnce(&mut Application, Act<'_>) -> Result<Option<Project>, WorkflowError>,
    ) -> Result<Application, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut application = self.application(id)?;
        let project = transition(&mut application, self.act(by))?;
        let mut writes = vec![application_write(&application)?];
        writes.extend(project.map(Write::Project));
        self.state.write(&writes)?;
        Ok(application)
    }

    /// Whether an approved application's grant has ended (a read: the
    /// sweep that expires it is audited only when there is one).
    pub fn any_due(&self) -> Result<bool, WorkflowError> {
        let today = self.clock.today().to_string();
        Ok(self
            .applications()?
            .iter()
            .any(|application| grant_ended(application, &today)))
    }

    /// Expires approved applications whose grant ended; returns the ids of
    /// the projects closed (their workspaces are the caller's to delete).
    pub fn expire_due(&self) -> Result<Vec<String>, WorkflowError> {
        let today = self.clock.today().to_string();
        let mut closed = Vec::new();
        for application in self.applications()? {
            if !grant_ended(&application, &today) {
                continue;
            }
            let mut project = None;
            self.change(&application.id, "system", |application, act| {
                project = application.expire_if_due(&today, act);
                Ok(project.clone())
            })?;
            closed.extend(project.map(|p| p.id));
        }
        Ok(closed)
    }

    /// Records an output release request whose automatic check has run.
    pub fn request_output(
        &self,
        by: &str,
        project_id: &str,
        title: &str,
        sql: &str,
        findings: CheckFindings,
        csv: Option<String>,
    ) -> Result<OutputRelease, WorkflowError> {
        let id = self.state.next_id(Collection::OutputReleases)?.to_string();
        let release =
            OutputRelease::checked(id, project_id, title, sql, findings, csv, self.act(by))?;
        self.state.write(&[output_write(&release)?])?;
        Ok(release)
    }

    pub fn output(&self, id: &str) -> Result<OutputRelease, WorkflowError> {
        self.state
            .record(Collection::OutputReleases, id)?
            .ok_or_else(|| WorkflowError::NoOutputRelease(id.to_string()))
    }

    pub fn outputs(&self) -> Result<Vec<OutputRelease>, WorkflowError> {
        let mut all: Vec<OutputRelease> = self.state.records(Collection::OutputReleases)?;
        all.sort_by_key(|r| r.id.parse::<u64>().unwrap_or(u64::MAX));
        Ok(all)
    }

    /// Destroys the results held for `project`'s outputs (it has closed),
    /// in one write; returns what they were.
    pub fn destroy_outputs(
        &self,
        project: &str,
        by: &str,
    ) -> Result<Vec<Destroyed>, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut destroyed = Vec::new();
        let mut writes = Vec::new();
        for mut output in self.outputs()? {
            if output.project_id != project {
                continue;
            }
            if let Some(record) = output.destroy(self.act(by)) {
                destroyed.push(record);
                writes.push(output_write(&output)?);
            }
        }
        if !writes.is_empty() {
            self.state.write(&writes)?;
        }
        Ok(destroyed)
    }

    /// Records a screened table `project` brings in as `ref.<name>`; a name
    /// already held (quarantined or approved) in the project is refused.
    pub fn bring_in(
        &self,
        (project, name): (&str, &str),
        purpose: &str,
        by: &str,
        (upload, findings): (Upload, Vec<Finding>),
    ) -> Result<BringIn, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        self.check_name_free(project, name)?;
        let id = self.state.next_id(Collection::BringIns)?.to_string();
        let bring_in =
            BringIn::screened(id, (project, name), purpose, upload, findings, self.act(by))?;
        self.state.write(&[bring_in_write(&bring_in)?])?;
        Ok(bring_in)
    }

    /// Records an analysis definition `project` registers as `name`; a
    /// name already held in the project is refused.
    pub fn register_analysis(
        &self,
        (project, name): (&str, &str),
        purpose: &str,
        by: &str,
        sql: &str,
    ) -> Result<BringIn, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        self.check_name_free(project, name)?;
        let id = self.state.next_id(Collection::BringIns)?.to_string();
        let analysis = BringIn::analysis(id, (project, name), purpose, sql, self.act(by))?;
        self.state.write(&[bring_in_write(&analysis)?])?;
        Ok(analysis)
    }

    /// The approved analysis `name` of `project`.
    pub fn approved_analysis(&self, project: &str, name: &str) -> Result<BringIn, WorkflowError> {
        self.bring_ins()?
            .into_iter()
            .find(|analysis| {
                analysis.kind == BringInKind::Analysis
                    && analysis.project_id == project
                    && analysis.name == name
                    && analysis.status == BringInStatus::Approved
            })
            .ok_or_else(|| {
                WorkflowError::NoBringIn(format!("approved analysis `{name}` in project {project}"))
            })
    }

    fn check_name_free(&self, project: &str, name: &str) -> Result<(), WorkflowError> {
        let taken = self.bring_ins()?.into_iter().any(|other| {
            other.project_id == project && other.name == name && other.status.holds_file()
        });
        if taken {
            return Err(WorkflowError::invalid(
                "name",
                format!("`{name}` is already brought in to project {project}"),
            ));
        }
        Ok(())
    }

    /// Whether a table has waited in quarantine too long (a read: the sweep
    /// that expires it is audited only when there is one).
    pub fn any_quarantine_overdue(&self) -> Result<bool, WorkflowError> {
        let now = self.clock.now();
        Ok(self.bring_ins()?.iter().any(|b| b.is_overdue(now)))
    }

    /// Expires tables left in quarantine past `QUARANTINE_DAYS`, in one
    /// write; returns the objects the caller must delete.
    pub fn expire_quarantine(&self) -> Result<Vec<String>, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now();
        let (mut objects, mut writes) = (Vec::new(), Vec::new());
        for mut bring_in in self.bring_ins()? {
            if bring_in.is_overdue(now) {
                objects.extend(bring_in.expire(self.act("system")));
                writes.push(bring_in_write(&bring_in)?);
            }
        }
        if !writes.is_empty() {
            self.state.write(&writes)?;
        }
        Ok(objects)
    }

    pub fn bring_ins(&self) -> Result<Vec<BringIn>, WorkflowError> {
        let mut all: Vec<BringIn> = self.state.records(Collection::BringIns)?;
        all.sort_by_key(|b| b.id.parse::<u64>().unwrap_or(u64::MAX));
        Ok(all)
    }

    /// A committee member approves or rejects a quarantined table; returns
    /// it and, when rejected, the object the caller must delete.
    pub fn review_bring_in(
        &self,
        id: &str,
        by: &str,
        approve: bool,
        note: &str,
    ) -> Result<(BringIn, Option<String>), WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut bring_in: BringIn = self
            .state
            .record(Collection::BringIns, id)?
            .ok_or_else(|| WorkflowError::NoBringIn(id.to_string()))?;
        let members = self.project_members(&bring_in.project_id)?;
        let object = bring_in.review(approve, note, &members, self.act(by))?;
        let mut writes = vec![bring_in_write(&bring_in)?];
        writes.extend(reference(&bring_in).map(Write::Reference));
        self.state.write(&writes)?;
        Ok((bring_in, object))
    }

    /// Destroys the tables `project` brought in (it has closed); returns
    /// what they were and the objects the caller must delete.
    pub fn destroy_bring_ins(
        &self,
        project: &str,
        by: &str,
    ) -> Result<Vec<(Destroyed, String)>, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut destroyed = Vec::new();
        let mut writes = Vec::new();
        for mut bring_in in self.bring_ins()? {
            if bring_in.project_id != project {
                continue;
            }
            let was_approved = bring_in.status == BringInStatus::Approved;
            if let Some((record, object)) = bring_in.destroy(self.act(by)) {
                if was_approved {
                    let table = ReferenceTable {
                        project: bring_in.project_id.clone(),
                        name: bring_in.name.clone(),
                        object: object.clone(),
                        available: false,
                    };
                    writes.push(Write::Reference(table));
                }
                destroyed.push((record, object));
                writes.push(bring_in_write(&bring_in)?);
            }
        }
        if !writes.is_empty() {
            self.state.write(&writes)?;
        }
        Ok(destroyed)
    }

    /// The second person approves or rejects an output.
    pub fn review_output(
        &self,
        id: &str,
        by: &str,
        approve: bool,
        note: &str,
    ) -> Result<OutputRelease, WorkflowError> {
        let _turn = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let mut release = self.output(id)?;
        let members = self.project_members(&release.project_id)?;
        release.review(approve, note, &members, self.act(by))?;
        self.state.write(&[output_write(&release)?])?;
        Ok(release)
    }

    fn project_members(&self, project: &str) -> Result<Vec<String>, WorkflowError> {
        Ok(self
            .state
            .project(project)?
            .map(|p| p.members)
            .unwrap_or_default())
    }

    fn act<'a>(&self, by: &'a str) -> Act<'a> {
        Act {
            by,
            at: self.clock.now(),
        }
    }

    fn check_members_exist(&self, proposal: &Proposal) -> Result<(), WorkflowError> {
        self.check_users_exist(proposal.terms.members.iter().map(|m| m.user.as_str()))
    }

    fn check_users_exist<'a>(
        &self,
        mut users: impl Iterator<Item = &'a str>,
    ) -> Result<(), WorkflowError> {
        users.try_for_each(|user| match self.state.user(user)? {
            Some(_) => Ok(()),
            None => Err(WorkflowError::State(StateError::NoUser(user.to_string()))),
        })
    }

    /// A project id belongs to one application and no existing project.
    fn check_project_id_free(
        &self,
        project_id: &str,
        own: Option<&str>,
    ) -> Result<(), WorkflowError> {
        let taken_by_application = self
            .applications()?
            .iter()
            .any(|a| a.proposal.project_id == project_id && Some(a.id.as_str()) != own);
        let own_project = own
            .map(|id| self.application(id))
            .transpose()?
            .is_some_and(|a| a.approved.is_some() && a.proposal.project_id == project_id);
        if taken_by_application || (self.state.project(project_id)?.is_some() && !own_project) {
            return Err(WorkflowError::invalid(
                "project_id",
                format!("project id `{project_id}` is already in use"),
            ));
        }
        Ok(())
    }
}

fn application_write(application: &Application) -> Result<Write, StateError> {
    Write::record(Collection::Applications, &application.id, application)
}

/// The reference table an approved bring-in makes.
fn reference(bring_in: &BringIn) -> Option<ReferenceTable> {
    if bring_in.status != BringInStatus::Approved {
        return None;
    }
    Some(ReferenceTable {
        project: bring_in.project_id.clone(),
        name: bring_in.name.clone(),
        object: bring_in.upload.object.clone()?,
        available: true,
    })
}

fn bring_in_write(bring_in: &BringIn) -> Result<Write, StateError> {
    Write::record(Collection::BringIns, &bring_in.id, bring_in)
}

fn output_write(release: &OutputRelease) -> Result<Write, StateError> {
    Write::record(Collection::OutputReleases, &release.id, release)
}

/// The access roles applications give: `applicant` and `member` in the
/// application's domain, `assigned_reviewer` for reviewers of the current
/// round (a declared conflict is refused by the workflow, which says so).
#[derive(Debug, Default)]
pub struct ApplicationRoles;

impl RoleSource for ApplicationRoles {
    fn role_lines(&self, state: &StateStore) -> Result<Vec<RoleLine>, StateError> {
        let applications: Vec<Application> = state.records(Collection::Applications)?;
        let mut lines = Vec::new();
        for application in applications {
            let domain = Domain::Application(application.id.clone());
            lines.push(RoleLine::new(
                &application.applicant,
                "applicant",
                domain.clone(),
            ));
            let members = application
                .proposal
                .terms
                .members
                .iter()
                .chain(application.approved.iter().flat_map(|t| &t.members));
            lines.extend(members.map(|m| RoleLine::new(&m.user, "member", domain.clone())));
            lines.extend(
                application
                    .round
                    .reviewers
                    .iter()
                    .map(|r| RoleLine::new(&r.user, "assigned_reviewer", domain.clone())),
            );
        }
        Ok(lines)
    }
}

/// Whether `application` was approved with a last day before `today`.
fn grant_ended(application: &Application, today: &str) -> bool {
    application
        .approved
        .as_ref()
        .is_some_and(|terms| terms.valid_until.as_str() < today)
}
