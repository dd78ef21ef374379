//! Cost of an authorization check with many projects loaded.
//!
//! Run: `cargo bench -p enclave-access --bench enforce [-- PROJECTS]`.
//! Builds the enforcer from the base policy plus role lines for PROJECTS
//! projects (three members each, one application each with an applicant and
//! two assigned reviewers, one account per user) and times single-threaded
//! checks: the project query check every Flight SQL statement makes, a
//! denied query (another project) and a system-domain check.

use std::hint::black_box;
use std::time::{Duration, Instant};

use enclave_access::{Authorizer, Domain, RoleLine, permissions};

const DEFAULT_PROJECTS: usize = 1_000;
const MEMBERS_PER_PROJECT: usize = 3;

fn role_lines(projects: usize) -> Vec<RoleLine> {
    let mut lines = Vec::new();
    for project in 0..projects {
        let domain = Domain::Project(format!("project-{project}"));
        let application = Domain::Application(project.to_string());
        for member in 0..MEMBERS_PER_PROJECT {
            let user = format!("user-{project}-{member}");
            lines.push(RoleLine::new(&user, "researcher", Domain::System));
            lines.push(RoleLine::new(&user, "project_member", domain.clone()));
            lines.push(RoleLine::new(&user, "member", application.clone()));
        }
        lines.push(RoleLine::new(
            format!("user-{project}-0"),
            "applicant",
            application.clone(),
        ));
        for reviewer in 0..2 {
            lines.push(RoleLine::new(
                format!("reviewer-{}", (project + reviewer) % 40),
                "assigned_reviewer",
                application.clone(),
            ));
        }
    }
    for reviewer in 0..40 {
        lines.push(RoleLine::new(
            format!("reviewer-{reviewer}"),
            "reviewer",
            Domain::System,
        ));
    }
    lines
}

fn rate(label: &str, checks: usize, elapsed: Duration) {
    let per_second = checks as f64 / elapsed.as_secs_f64();
    let micros = elapsed.as_secs_f64() * 1e6 / checks as f64;
    println!("{label:<34} {per_second:>12.0} checks/s  {micros:>8.2} µs/check");
}

fn time_checks(label: &str, checks: usize, mut check: impl FnMut(usize) -> bool) {
    let started = Instant::now();
    let mut allowed = 0usize;
    for i in 0..checks {
        allowed += usize::from(black_box(check(i)));
    }
    rate(label, checks, started.elapsed());
    black_box(allowed);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let projects = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(DEFAULT_PROJECTS);
    let lines = role_lines(projects);
    let started = Instant::now();
    let authorizer = Authorizer::build(&lines).await.expect("policy builds");
    println!(
        "{projects} projects, {} role lines: enforcer built in {:.1} ms",
        lines.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let checks = 100_000;
    let domains: Vec<Domain> = (0..projects)
        .map(|p| Domain::Project(format!("project-{p}")))
        .collect();
    let users: Vec<String> = (0..projects).map(|p| format!("user-{p}-1")).collect();
    time_checks("query, member (allowed)", checks, |i| {
        let p = i % projects;
        authorizer
            .allows(&users[p], &domains[p], permissions::DATA_QUERY)
            .unwrap()
    });
    time_checks("query, other project (denied)", checks, |i| {
        let p = i % projects;
        authorizer
            .allows(
                &users[p],
                &domains[(p + 1) % projects],
                permissions::DATA_QUERY,
            )
            .unwrap()
    });
    time_checks("decide, reviewer (denied)", checks, |i| {
        authorizer
            .allows(
                &format!("reviewer-{}", i % 40),
                &Domain::System,
                permissions::APPLICATION_DECIDE,
            )
            .unwrap()
    });
}
