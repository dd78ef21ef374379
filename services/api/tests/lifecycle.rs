//! The application lifecycle through the gRPC API, with every refusal, and
//! what each step means for the researcher's Flight SQL session: a real
//! server on a local port, real gRPC and Flight SQL clients, a small
//! synthetic release, and a clock the test moves past the grant's end.

use std::net::SocketAddr;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use enclave_access::Access;
use enclave_api::proto::applications_client::ApplicationsClient;
use enclave_api::proto::grants_client::GrantsClient;
use enclave_api::proto::output_releases_client::OutputReleasesClient;
use enclave_api::proto::session_client::SessionClient;
use enclave_api::proto::{self, DecisionKind, VoteChoice};
use enclave_api::{Api, ServerConfig};
use enclave_audit::{Action, AuditLog, CheckpointSigner, LogPolicy, Outcome};
use enclave_query::execution::Execution;
use enclave_query::{Limits, QueryEngine};
use enclave_review::{ApplicationRoles, Workflow};
use enclave_state::{Clock, Role, StateStore};
use enclave_store::DataStore;
use futures::TryStreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

const USERS: [(&str, Role); 9] = [
    ("alice", Role::Researcher),
    ("roy", Role::Reviewer),
    ("bob", Role::Researcher),
    ("rita", Role::Reviewer),
    ("rex", Role::Reviewer),
    ("ruth", Role::Reviewer),
    ("carol", Role::Chair),
    ("otto", Role::Operator),
    ("sam", Role::Steward),
];

fn password(user: &str) -> String {
    format!("{user}-password")
}

struct Server {
    dir: tempfile::TempDir,
    address: SocketAddr,
    clock: Clock,
}

impl Server {
    /// How many expiry sweeps the audit log records.
    fn expiry_sweeps(&self) -> usize {
        enclave_audit::read_events(&self.dir.path().join("audit"))
            .unwrap()
            .iter()
            .filter(|event| event.is(Action::GrantExpire, Outcome::Requested))
            .count()
    }
}

async fn start_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let extracts = dir.path().join("extracts");
    enclave_synth::generate(&enclave_synth::SynthConfig::new(2_000, 11, &extracts)).unwrap();
    let keys = enclave_linkage::LinkageKeys::derive(&[9u8; 32]).unwrap();
    let data = dir.path().join("data");
    let store = DataStore::open_local(&data).unwrap();
    let catalog = enclave_catalog::Catalog::embedded();
    enclave_ingest::ingest(&store, &extracts, &keys, catalog, &Default::default())
        .await
        .unwrap();
    let state = Arc::new(StateStore::open(&dir.path().join("state")).unwrap());
    for (user, role) in USERS {
        state.add_user(user, role, &password(user)).unwrap();
    }
    let clock = Clock::offset();
    let engine = QueryEngine::open_on(
        store,
        Arc::clone(&state),
        Limits::default(),
        Execution::InProcess,
        clock.clone(),
    )
    .await
    .unwrap();
    let signer = CheckpointSigner::create(&dir.path().join("audit.key")).unwrap();
    let audit = AuditLog::open(&dir.path().join("audit"), signer, LogPolicy::default());
    let access = Arc::new(Access::new(
        Arc::clone(&state),
        clock.clone(),
        vec![Arc::new(ApplicationRoles)],
        Arc::new(audit.unwrap()),
    ));
    let workflow = Arc::new(Workflow::new(
        state,
        Arc::new(engine.catalog().clone()),
        clock.clone(),
    ));
    let api = Api::new(Arc::clone(&access), workflow, engine.clone());
    let routes =
        api.routes()
            .add_service(enclave_flight::flight_service(engine, access, api.clone()));
    let (bound, address) = tokio::sync::oneshot::channel();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: None,
    };
    tokio::spawn(async move {
        enclave_api::serve(
            config,
            routes,
            |address| bound.send(address).unwrap(),
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    Server {
        dir,
        address: address.await.unwrap(),
        clock,
    }
}

/// A logged-in user's API clients.
struct User {
    name: &'static str,
    channel: Channel,
    token: String,
    server: SocketAddr,
}

impl User {
    async fn login(server: &Server, name: &'static str) -> User {
        let channel = Channel::from_shared(format!("http://{}", server.address))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let token = SessionClient::new(channel.clone())
            .login(proto::LoginRequest {
                user: name.into(),
                password: password(name),
            })
            .await
            .unwrap()
            .into_inner()
            .token;
        User {
            name,
            channel,
            token,
            server: server.address,
        }
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    fn applications(&self) -> ApplicationsClient<Channel> {
        ApplicationsClient::new(self.channel.clone())
    }

    fn outputs(&self) -> OutputReleasesClient<Channel> {
        OutputReleasesClient::new(self.channel.clone())
    }

    async fn create(&self, proposal: proto::Proposal) -> Result<proto::Application, Status> {
        let request = self.request(proto::CreateApplicationRequest {
            proposal: Some(proposal),
        });
        Ok(self.applications().create(request).await?.into_inner())
    }

    async fn submit(&self, id: &str) -> Result<proto::Application, Status> {
        let request = self.request(proto::ApplicationRef { id: id.into() });
        Ok(self.applications().submit(request).await?.into_inner())
    }

    async fn assign(&self, id: &str, reviewers: &[&str]) -> Result<proto::Application, Status> {
        let request = self.request(proto::AssignReviewersRequest {
            id: id.into(),
            reviewers: reviewers.iter().map(|r| r.to_string()).collect(),
        });
        Ok(self
            .applications()
            .assign_reviewers(request)
            .await?
            .into_inner())
    }

    async fn vote(&self, id: &str, choice: VoteChoice) -> Result<proto::Application, Status> {
        let request = self.request(proto::VoteRequest {
            id: id.into(),
            choice: choice as i32,
            opinion: format!("{} has read the application", self.name),
        });
        Ok(self.applications().vote(request).await?.into_inner())
    }

    async fn decide(&self, id: &str, decision: DecisionKind) -> Result<proto::Application, Status> {
        let request = self.request(proto::DecideRequest {
            id: id.into(),
            decision: decision as i32,
            conditions: Vec::new(),
            note: "decided in committee".into(),
        });
        Ok(self.applications().decide(request).await?.into_inner())
    }

    /// What the user sees of `project`'s release ledger.
    async fn ledger(&self, project: &str) -> Result<proto::GrantLedger, Status> {
        let request = self.request(proto::GrantLedgerRequest {
            project_id: project.into(),
        });
        let mut grants = GrantsClient::new(self.channel.clone());
        Ok(grants.ledger(request).await?.into_inner())
    }

    async fn get(&self, id: &str) -> Result<proto::Application, Status> {
        let request = self.request(proto::ApplicationRef { id: id.into() });
        Ok(self.applications().get(request).await?.into_inner())
    }

    /// Runs `sql` over Flight SQL in `project`.
    async fn query(&self, project: &str, sql: &str) -> Result<Vec<RecordBatch>, String> {
        let channel = Channel::from_shared(format!("http://{}", self.server))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut client = FlightSqlServiceClient::new(channel);
        client
            .handshake(self.name, &password(self.name))
            .await
            .map_err(|e| e.to_string())?;
        client.set_header("x-enclave-project", project);
        let info = client
            .execute(sql.to_string(), None)
            .await
            .map_err(|e| e.to_string())?;
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let stream = client.do_get(ticket).await.map_err(|e| e.to_string())?;
        stream.try_collect().await.map_err(|e| e.to_string())
    }
}

fn terms(members: &[&str], columns: &[&str], valid_until: &str) -> proto::Terms {
    proto::Terms {
        members: members
            .iter()
            .map(|user| proto::Member {
                user: user.to_string(),
                affiliation: "Test University".into(),
            })
            .collect(),
        tables: vec![proto::TableRequest {
            table: "ndb.receipts".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }],
        linkage: vec!["ndb".into()],
        period_first: "2000-01".into(),
        period_last: "2099-12".into(),
        valid_until: valid_until.into(),
        k: 10,
        rounding: "none".into(),
        fresh_values: Some(5_000),
    }
}

fn proposal(project_id: &str, terms: proto::Terms) -> proto::Proposal {
    proto::Proposal {
        project_id: project_id.into(),
        title: "Receipts by sex".into(),
        purpose: "Count persons with claims by sex and age band.".into(),
        public_interest: "Baseline statistics for health policy.".into(),
        planned_outputs: "One table of counts.".into(),
        terms: Some(terms),
        planned_bring_ins: String::new(),
        security_measures: "Analysis only from the university's locked room.".into(),
        no_matching_pledge: true,
    }
}

/// `days` from the test clock's today, `YYYY-MM-DD`.
fn date_in(server: &Server, days: i32) -> String {
    enclave_core::date::CivilDate::from_days_since_epoch(
        server.clock.today().days_since_epoch() + days,
    )
    .to_string()
}

fn assert_refused<T: std::fmt::Debug>(result: Result<T, Status>, code: Code, says: &str) {
    let status = result.expect_err("the call should be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(says),
        "`{}` should say `{says}`",
        status.message()
    );
}

const BY_SEX: &str =
    "SELECT sex, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY sex";
const BY_AGE: &str =
    "SELECT age_band, count(DISTINCT person_id) AS persons FROM ndb.receipts GROUP BY age_band";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_through_the_api_with_every_refusal() {
    let server = start_server().await;
    let alice = User::login(&server, "alice").await;
    let bob = User::login(&server, "bob").await;
    let rita = User::login(&server, "rita").await;
    let rex = User::login(&server, "rex").await;
    let ruth = User::login(&server, "ruth").await;
    let carol = User::login(&server, "carol").await;
    let otto = User::login(&server, "otto").await;

    // Only researchers apply; a reviewer cannot.
    let until = date_in(&server, 30);
    let columns = ["person_id", "sex"];
    assert_refused(
        rita.create(proposal("p1", terms(&["rita"], &columns, &until)))
            .await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    // Bad input changes nothing: an unknown column, an unknown member.
    assert_refused(
        alice
            .create(proposal(
                "p1",
                terms(&["alice"], &["no_such_column"], &until),
            ))
            .await,
        Code::InvalidArgument,
        "no column `no_such_column`",
    );
    assert_refused(
        alice
            .create(proposal(
                "p1",
                terms(&["alice", "nobody"], &columns, &until),
            ))
            .await,
        Code::InvalidArgument,
        "nobody",
    );
    let no_budget = proto::Terms {
        fresh_values: Some(0),
        ..terms(&["alice"], &columns, &until)
    };
    assert_refused(
        alice.create(proposal("p1", no_budget)).await,
        Code::InvalidArgument,
        "fresh-value budget",
    );
    // Rita the reviewer is named as a member: she may not review it.
    let application = alice
        .create(proposal("p1", terms(&["alice", "rita"], &columns, &until)))
        .await
        .unwrap();
    let id = application.id.clone();
    assert_eq!(application.status, "draft");
    // Another researcher cannot submit or read it.
    assert_refused(
        bob.submit(&id).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    assert_refused(
        bob.get(&id).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    assert_eq!(alice.submit(&id).await.unwrap().status, "submitted");

    // Query before approval: no project yet.
    let refused = alice.query("p1", BY_SEX).await.unwrap_err();
    assert!(
        refused.contains("not a member of project `p1`"),
        "{refused}"
    );

    // Only the chair assigns; nobody assigns a member (self-review).
    assert_refused(
        rex.assign(&id, &["rex"]).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    assert_refused(
        carol.assign(&id, &["rita", "rex"]).await,
        Code::PermissionDenied,
        "separation of duties",
    );
    assert_refused(
        carol.assign(&id, &["bob"]).await,
        Code::InvalidArgument,
        "not an active committee member",
    );
    let assigned = carol.assign(&id, &["rex", "ruth"]).await.unwrap();
    assert_eq!(assigned.status, "under_review");

    // An unassigned reviewer and a researcher cannot vote.
    assert_refused(
        rita.vote(&id, VoteChoice::Approve).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    assert_refused(
        alice.vote(&id, VoteChoice::Approve).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    // A conflicted reviewer cannot vote.
    let conflict = proto::DeclareConflictRequest {
        id: id.clone(),
        reason: "co-author of the applicant".into(),
    };
    ruth.applications()
        .declare_conflict(ruth.request(conflict))
        .await
        .unwrap();
    assert_refused(
        ruth.vote(&id, VoteChoice::Approve).await,
        Code::PermissionDenied,
        "conflict of interest",
    );
    rex.vote(&id, VoteChoice::Approve).await.unwrap();

    // No quorum with one eligible vote; operators and researchers never decide.
    assert_refused(
        carol.decide(&id, DecisionKind::Approve).await,
        Code::FailedPrecondition,
        "no quorum",
    );
    assert_refused(
        otto.decide(&id, DecisionKind::Approve).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    assert_refused(
        alice.decide(&id, DecisionKind::Approve).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    // A second eligible reviewer brings the quorum.
    let roy = User::login(&server, "roy").await;
    assert_eq!(
        carol.assign(&id, &["roy"]).await.unwrap().reviewers.len(),
        3
    );
    roy.vote(&id, VoteChoice::Approve).await.unwrap();
    let approved = carol.decide(&id, DecisionKind::Approve).await.unwrap();
    assert_eq!(approved.status, "approved");
    assert_eq!(approved.eligible_votes, 2);

    // Approved: exactly the approved columns, under the approved budget.
    let by_sex = alice.query("p1", BY_SEX).await.unwrap();
    assert!(by_sex.iter().map(RecordBatch::num_rows).sum::<usize>() >= 1);
    let ledger = alice.ledger("p1").await.unwrap();
    assert_eq!(ledger.fresh_value_budget, 5_000);
    assert!(ledger.fresh_values >= 1, "{ledger:?}");
    let outside = alice.query("p1", BY_AGE).await.unwrap_err();
    assert!(outside.contains("age_band"), "{outside}");
    assert!(
        bob.query("p1", BY_SEX).await.is_err(),
        "bob is not a member"
    );

    // An amendment asks for age_band; it takes effect only once approved.
    let amend = proto::AmendApplicationRequest {
        id: id.clone(),
        terms: Some(terms(
            &["alice", "rita"],
            &["person_id", "sex", "age_band"],
            &until,
        )),
    };
    let amended = alice
        .applications()
        .amend(alice.request(amend))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (amended.status.as_str(), amended.amendment),
        ("submitted", true)
    );
    assert!(
        alice.query("p1", BY_AGE).await.is_err(),
        "not before approval"
    );
    assert!(
        alice.query("p1", BY_SEX).await.is_ok(),
        "the approved terms stay in force"
    );
    carol.assign(&id, &["rex", "ruth"]).await.unwrap();
    rex.vote(&id, VoteChoice::Approve).await.unwrap();
    ruth.vote(&id, VoteChoice::Approve).await.unwrap();
    assert_eq!(
        carol
            .decide(&id, DecisionKind::Approve)
            .await
            .unwrap()
            .status,
        "approved"
    );
    assert!(
        alice.query("p1", BY_AGE).await.is_ok(),
        "the amendment is in force"
    );

    // Expiry: past the last day, queries are refused and the application
    // expires. The query engine keeps the server's clock, so it names the
    // rule (with the system clock it saw the project open, and only the
    // access check refused).
    // Listing applications sweeps expired grants first; with none due the
    // sweep is not recorded.
    let list = || async {
        alice
            .applications()
            .list(alice.request(proto::ListApplicationsRequest {
                status: String::new(),
            }))
            .await
    };
    list().await.unwrap();
    assert_eq!(server.expiry_sweeps(), 0);
    server.clock.advance_days(31);
    let expired = alice.query("p1", BY_SEX).await.unwrap_err();
    assert!(
        expired.contains("refused (project-expired): project `p1` ended on"),
        "{expired}"
    );
    let listed = list().await.unwrap().into_inner();
    assert_eq!(server.expiry_sweeps(), 1, "one sweep expired the grant");
    assert_eq!(
        listed.applications.len(),
        1,
        "alice sees her own application only"
    );
    assert_eq!(listed.applications[0].status, "expired");
    let history: Vec<&str> = listed.applications[0]
        .history
        .iter()
        .map(|t| t.to.as_str())
        .collect();
    assert_eq!(history.first(), Some(&"draft"));
    assert!(
        history
            .windows(2)
            .any(|w| w == ["under_review", "approved"])
    );
    assert_eq!(history.last(), Some(&"expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_is_released_only_after_a_second_person_approves() {
    let server = start_server().await;
    let alice = User::login(&server, "alice").await;
    let rex = User::login(&server, "rex").await;
    let ruth = User::login(&server, "ruth").await;
    let carol = User::login(&server, "carol").await;
    let until = date_in(&server, 30);
    let id = alice
        .create(proposal(
            "p2",
            terms(&["alice"], &["person_id", "sex"], &until),
        ))
        .await
        .unwrap()
        .id;
    alice.submit(&id).await.unwrap();
    carol.assign(&id, &["rex", "ruth"]).await.unwrap();
    rex.vote(&id, VoteChoice::Approve).await.unwrap();
    ruth.vote(&id, VoteChoice::Approve).await.unwrap();
    carol.decide(&id, DecisionKind::Approve).await.unwrap();

    let request = |sql: &str| proto::RequestOutputRequest {
        project_id: "p2".into(),
        title: "persons by sex".into(),
        sql: sql.into(),
    };
    // Row-level data fails the automatic check and is never held.
    let row_level = alice
        .outputs()
        .request(alice.request(request("SELECT person_id FROM ndb.receipts")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(row_level.status, "refused_by_check");
    assert_eq!(row_level.findings.unwrap().refused_rule, "row-level");
    // Someone outside the project cannot ask for its outputs.
    let outsider = rex.outputs().request(rex.request(request(BY_SEX))).await;
    assert_refused(outsider, Code::PermissionDenied, "project `p2`");

    let release = alice
        .outputs()
        .request(alice.request(request(BY_SEX)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(release.status, "awaiting_review");
    let download = |user: &User, id: &str| {
        let request = user.request(proto::OutputRef { id: id.into() });
        let mut client = user.outputs();
        async move {
            client
                .download(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_refused(
        download(&alice, &release.id).await,
        Code::PermissionDenied,
        "once approved",
    );
    // Nobody reviews their own output; researchers do not review at all.
    let review = |user: &User, approve: bool| {
        let request = user.request(proto::ReviewOutputRequest {
            id: release.id.clone(),
            approve,
            note: "checked against the rules".into(),
        });
        let mut client = user.outputs();
        async move {
            client
                .review(request)
                .await
                .map(tonic::Response::into_inner)
        }
    };
    assert_refused(
        review(&alice, true).await,
        Code::PermissionDenied,
        "roles do not allow",
    );
    let approved = review(&rex, true).await.unwrap();
    assert_eq!(
        (approved.status.as_str(), approved.reviewed_by.as_str()),
        ("approved", "rex")
    );
    let file = download(&alice, &release.id).await.unwrap();
    let csv = String::from_utf8(file.content).unwrap();
    assert!(csv.starts_with("sex,persons\n"), "{csv}");
    assert!(csv.lines().count() >= 2, "{csv}");
    // Reviewed once only.
    assert_refused(
        review(&ruth, false).await,
        Code::PermissionDenied,
        "approved",
    );
}
