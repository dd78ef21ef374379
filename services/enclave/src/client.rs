//! The client side of `enclave apply` and `enclave review`: one login over
//! the gRPC API, then calls carrying the bearer token.

use std::io::Read;

use enclave_api::proto;
use enclave_api::proto::applications_client::ApplicationsClient;
use enclave_api::proto::bring_ins_client::BringInsClient;
use enclave_api::proto::output_releases_client::OutputReleasesClient;
use enclave_api::proto::session_client::SessionClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use crate::commands::CommandError;

/// Where and as whom to connect.
#[derive(Debug, clap::Args)]
pub(crate) struct Connection {
    /// The enclave server (`enclave serve`).
    #[arg(long, env = "ENCLAVE_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Your user name.
    #[arg(long, env = "ENCLAVE_USER")]
    user: String,
    /// Read the password from standard input (otherwise from ENCLAVE_PASSWORD).
    #[arg(long)]
    password_stdin: bool,
}

/// Adds `authorization: Bearer …` to every call.
#[derive(Debug, Clone)]
pub(crate) struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub(crate) type Authorized = InterceptedService<Channel, Bearer>;

/// A logged-in connection.
#[derive(Debug)]
pub(crate) struct Client {
    channel: Channel,
    bearer: Bearer,
}

impl Connection {
    pub(crate) async fn login(&self) -> Result<Client, CommandError> {
        let password = self.password()?;
        let channel = Endpoint::from_shared(self.server.clone())
            .map_err(|error| CommandError::Client(format!("server address: {error}")))?
            .connect()
            .await
            .map_err(|error| {
                CommandError::Client(format!("cannot reach {}: {error}", self.server))
            })?;
        let token = SessionClient::new(channel.clone())
            .login(proto::LoginRequest {
                user: self.user.clone(),
                password,
            })
            .await?
            .into_inner()
            .token;
        let bearer = format!("Bearer {token}")
            .parse()
            .map_err(|_| CommandError::Client("the server sent a malformed token".into()))?;
        Ok(Client {
            channel,
            bearer: Bearer(bearer),
        })
    }

    fn password(&self) -> Result<String, CommandError> {
        if !self.password_stdin {
            return std::env::var("ENCLAVE_PASSWORD").map_err(|_| {
                CommandError::Client(
                    "give the password on standard input (--password-stdin) or in ENCLAVE_PASSWORD"
                        .into(),
                )
            });
        }
        password_from_stdin()
    }

    /// Logs in and adds `text` to the messages of application `id`.
    pub(crate) async fn send_message(
        &self,
        id: String,
        text: String,
    ) -> Result<tonic::Response<proto::Application>, CommandError> {
        let request = proto::SendMessageRequest { id, text };
        Ok(self
            .login()
            .await?
            .applications()
            .send_message(request)
            .await?)
    }
}

/// A password given on standard input, without its line ending.
pub(crate) fn password_from_stdin() -> Result<String, CommandError> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|source| CommandError::WorkDir {
            path: "standard input".into(),
            source,
        })?;
    Ok(password.trim_end_matches(['\r', '\n']).to_string())
}

impl Client {
    pub(crate) fn applications(&self) -> ApplicationsClient<Authorized> {
        ApplicationsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub(crate) fn outputs(&self) -> OutputReleasesClient<Authorized> {
        OutputReleasesClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }

    pub(crate) fn bring_ins(&self) -> BringInsClient<Authorized> {
        BringInsClient::with_interceptor(self.channel.clone(), self.bearer.clone())
    }
}

/// A brought-in table as the terminal shows it.
pub(crate) fn print_bring_in(bring_in: &proto::BringIn) {
    if bring_in.kind == "analysis" {
        outln!(
            "analysis {}\t{}\tproject {}\t{}\tsha256 {}\tby {}",
            bring_in.id,
            bring_in.status,
            bring_in.project_id,
            bring_in.name,
            bring_in.sha256,
            bring_in.requested_by
        );
        outln!("  sql: {}", bring_in.sql);
    } else {
        outln!(
            "bring-in {}\t{}\tproject {}\tref.{}\t{} rows\tby {}",
            bring_in.id,
            bring_in.status,
            bring_in.project_id,
            bring_in.name,
            bring_in.rows,
            bring_in.requested_by
        );
        outln!("  columns: {}", bring_in.columns.join(", "));
    }
    for finding in &bring_in.findings {
        outln!("  screening: {}", finding.message);
    }
    for approval in &bring_in.approvals {
        outln!("  approved by {}: {}", approval.by, approval.note);
    }
}

/// An application as the terminal shows it.
pub(crate) fn print_application(application: &proto::Application, detail: bool) {
    let proposal = application.proposal.clone().unwrap_or_default();
    outln!(
        "application {}\t{}\tproject {}\t{}",
        application.id,
        application.status,
        proposal.project_id,
        proposal.title
    );
    if !detail {
        return;
    }
    outln!("  applicant: {}", application.applicant);
    outln!("  purpose: {}", proposal.purpose);
    outln!("  public interest: {}", proposal.public_interest);
    outln!("  planned outputs: {}", proposal.planned_outputs);
    outln!("  planned bring-ins: {}", proposal.planned_bring_ins);
    outln!("  security measures: {}", proposal.security_measures);
    if application.pledged_by.is_empty() {
        outln!("  no-matching pledge (照合禁止): not accepted");
    } else {
        outln!(
            "  no-matching pledge (照合禁止): accepted by {} at {}",
            application.pledged_by,
            application.pledged_at
        );
    }
    if let Some(terms) = &proposal.terms {
        print_terms("requested", terms);
    }
    if let Some(terms) = application
        .approved
        .as_ref()
        .filter(|_| application.amendment)
    {
        print_terms("in force", terms);
    }
    for condition in &application.conditions {
        outln!("  condition: {condition}");
    }
    outln!("  eligible votes: {}", application.eligible_votes);
    for reviewer in &application.reviewers {
        let state = match (&reviewer.conflict, &reviewer.vote) {
            (conflict, _) if !conflict.is_empty() => format!("conflict declared: {conflict}"),
            (_, Some(vote)) => format!("voted {}: {}", vote_name(vote.choice), vote.opinion),
            _ => "no vote yet".to_string(),
        };
        outln!("  reviewer {}: {state}", reviewer.user);
    }
    for message in &application.messages {
        outln!("  message from {}: {}", message.from, message.text);
    }
    for step in &application.history {
        outln!(
            "  {} {} → {} by {}: {}",
            enclave_core::date::utc_minute(step.at),
            step.from,
            step.to,
            step.by,
            step.note
        );
    }
}

fn print_terms(label: &str, terms: &proto::Terms) {
    let members: Vec<String> = terms
        .members
        .iter()
        .map(|m| format!("{} ({})", m.user, m.affiliation))
        .collect();
    outln!("  {label} members: {}", members.join(", "));
    for table in &terms.tables {
        let columns = if table.columns.is_empty() {
            "all columns".to_string()
        } else {
            table.columns.join(",")
        };
        outln!("  {label} table: {} [{columns}]", table.table);
    }
    outln!(
        "  {label} period: {}..{} until {}, linkage [{}], k={}, rounding {}",
        terms.period_first,
        terms.period_last,
        terms.valid_until,
        terms.linkage.join(","),
        terms.k,
        terms.rounding
    );
}

fn vote_name(choice: i32) -> &'static str {
    match proto::VoteChoice::try_from(choice) {
        Ok(proto::VoteChoice::Approve) => "approve",
        Ok(proto::VoteChoice::Reject) => "reject",
        Ok(proto::VoteChoice::Return) => "return",
        _ => "?",
    }
}

/// An output release as the terminal shows it.
pub(crate) fn print_output(release: &proto::OutputRelease) {
    let findings = release.findings.clone().unwrap_or_default();
    outln!(
        "output {}\t{}\tproject {}\t{}",
        release.id,
        release.status,
        release.project_id,
        release.title
    );
    outln!(
        "  automatic check: {} ({}); {} groups released, k={}, rounding {}",
        if findings.passed { "passed" } else { "refused" },
        findings.message,
        findings.released_groups,
        findings.k,
        findings.rounding
    );
    if !release.reviewed_by.is_empty() {
        outln!(
            "  reviewed by {}: {}",
            release.reviewed_by,
            release.review_note
        );
    }
}
