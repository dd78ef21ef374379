//! The operators' audit pages: search and filter events, one event's full
//! record (a query's SQL, plan fingerprint, tables, columns, rows scanned,
//! what was released), the alerts, and whether the log verifies against
//! the checkpoint key (re-read at most once a minute), with the latest
//! signed checkpoint. Reads go through the same read-only `audit` SQL schema
//! operators query over Flight SQL, under its limits; each page view is
//! itself recorded (`portal.audit`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::TimestampMillisecondType;
use arrow::util::display::array_value_to_string;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use axum::routing::get;
use datafusion::common::{ParamValues, ScalarValue};
use enclave_access::{Domain, permissions};
use enclave_audit::{Action, NewEvent, Outcome as AuditOutcome, VerifyReport};
use enclave_query::{AuditSession, Outcome};
use maud::{Markup, html};
use tokio::sync::Mutex;

use crate::i18n::Lang;
use crate::page::{self, Section};
use crate::session::{SignedIn, Visitor};
use crate::{Portal, PortalError};

/// Most events one search shows; narrow the filters for older ones.
const EVENTS_SHOWN: usize = 200;

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/audit", get(search_page))
        .route("/audit/events/{seq}", get(event_page))
}

#[derive(Debug, Default, serde::Deserialize)]
struct Filters {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    project: String,
    /// Words in the SQL or the detail.
    #[serde(default)]
    text: String,
}

impl Filters {
    fn params(&self) -> ParamValues {
        let values = [
            &self.actor,
            &self.action,
            &self.outcome,
            &self.project,
            &self.text,
        ]
        .into_iter()
        .map(|value| ScalarValue::Utf8(Some(value.trim().to_string())).into())
        .collect();
        ParamValues::List(values)
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "actor": self.actor, "action": self.action, "outcome": self.outcome,
            "project": self.project, "text": self.text,
        })
    }
}

const SEARCH_SQL: &str = "SELECT seq, at, actor, action, outcome, project, rule, sql FROM audit.events \
    WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR action = $2) AND ($3 = '' OR outcome = $3) \
    AND ($4 = '' OR project = $4) \
    AND ($5 = '' OR strpos(lower(coalesce(sql, '') || ' ' || detail), lower($5)) > 0) \
    ORDER BY seq DESC LIMIT 200";
const ALERTS_SQL: &str = "SELECT kind, actor, first_seq, last_seq, count, summary FROM audit.alerts \
    ORDER BY last_seq DESC LIMIT 100";
const EVENT_SQL: &str = "SELECT * FROM audit.events WHERE seq = $1";

/// The signed-in operator's audit session, once the policy allows it and
/// the view is recorded.
async fn operator_session(
    portal: &Portal,
    user: &SignedIn,
    view: &str,
    detail: serde_json::Value,
) -> Result<AuditSession, PortalError> {
    portal
        .access()
        .check(&user.name, &Domain::System, permissions::AUDIT_QUERY)
        .await?;
    let audit = portal.access().audit();
    audit
        .record(NewEvent::new(
            &user.name,
            Action::PortalAudit,
            AuditOutcome::Ok,
            serde_json::json!({ "view": view, "filters": detail }),
        ))
        .await
        .map_err(PortalError::of)?;
    Ok(portal
        .engine()
        .audit_session(&user.name, audit.dir().to_path_buf()))
}

/// The rows of one audit statement.
async fn rows(
    session: &AuditSession,
    sql: &str,
    params: ParamValues,
) -> Result<Vec<RecordBatch>, PortalError> {
    match session.execute(sql, Some(params)).await {
        Ok(Outcome::Rows(released)) => Ok(released.batches),
        Ok(Outcome::Updated(_)) => Err(PortalError::internal(&"an audit read changed something")),
        Err(error) => Err(PortalError::of(error)),
    }
}

async fn search_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Query(filters): Query<Filters>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let session = operator_session(&portal, user, "search", filters.to_json()).await?;
    let events = rows(&session, SEARCH_SQL, filters.params()).await?;
    let alerts = rows(&session, ALERTS_SQL, ParamValues::List(Vec::new())).await?;
    let verified = verify(&portal).await?;
    let body = html! {
        (verification(lang, &verified))
        section {
            h2 { (lang.t("イベントの検索", "Search events")) }
            form method="get" action="/audit" class="filters" role="search" {
                @for (name, value, ja, en) in [
                    ("actor", &filters.actor, "操作者", "Actor"),
                    ("action", &filters.action, "操作", "Action"),
                    ("outcome", &filters.outcome, "結果", "Outcome"),
                    ("project", &filters.project, "プロジェクト", "Project"),
                    ("text", &filters.text, "SQL・詳細の語句", "Words in SQL or detail"),
                ] {
                    div { label for=(name) { (lang.t(ja, en)) } input id=(name) name=(name) value=(value); }
                }
                button type="submit" { (lang.t("検索", "Search")) }
            }
            p class="muted" { (lang.t("新しい順に最大 ", "Newest first, at most ")) (EVENTS_SHOWN) (lang.t(" 件。", " events.")) }
            (results_table(lang, &events, Some("seq")))
        }
        section {
            h2 { (lang.t("アラート", "Alerts")) }
            (results_table(lang, &alerts, None))
        }
    };
    Ok(page::render(
        &visitor,
        Section::Audit,
        lang.t("監査ログ", "Audit log"),
        body,
    ))
}

async fn event_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(seq): Path<i64>,
) -> Result<Html<String>, PortalError> {
    let user = visitor.signed_in()?;
    let lang = visitor.lang;
    let session =
        operator_session(&portal, user, "event", serde_json::json!({ "seq": seq })).await?;
    let batches = rows(
        &session,
        EVENT_SQL,
        ParamValues::List(vec![ScalarValue::Int64(Some(seq)).into()]),
    )
    .await?;
    let batch = batches
        .iter()
        .find(|batch| batch.num_rows() > 0)
        .ok_or_else(|| {
            PortalError::not_found(
                format!("監査ログに番号 {seq} のイベントはありません。"),
                format!("the audit log has no event {seq}"),
            )
        })?;
    let schema = batch.schema();
    let body = html! {
        p class="crumbs" { a href="/audit" { (lang.t("監査ログ", "Audit log")) } }
        dl class="facts record" {
            @for (index, field) in schema.fields().iter().enumerate() {
                dt { (column_label(lang, field.name())) }
                dd {
                    @let value = cell(batch, index, 0);
                    @if field.name() == "detail" || field.name() == "sql" { pre class="code" { (pretty_json(&value)) } }
                    @else { (value) }
                }
            }
        }
    };
    let title = format!("{} {seq}", lang.t("監査イベント", "Audit event"));
    Ok(page::render(&visitor, Section::Audit, &title, body))
}

/// JSON re-indented for reading; other text as it is.
fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|value| serde_json::to_string_pretty(&value))
        .unwrap_or_else(|_| text.to_string())
}

/// How long one verification of the whole log is shown before a page view
/// re-reads the log (verification reads every event: seconds for millions).
const VERIFY_EVERY: Duration = Duration::from_secs(60);

/// The latest verification of the log, shared by operators' page views.
#[derive(Debug, Default)]
pub(crate) struct LastVerification {
    verified: Mutex<Option<Verified>>,
}

#[derive(Debug, Clone)]
struct Verified {
    at: Instant,
    unix_seconds: i64,
    report: VerifyReport,
}

/// The log verified within [`VERIFY_EVERY`], verifying it again if older.
async fn verify(portal: &Portal) -> Result<Verified, PortalError> {
    let mut last = portal.inner.verification.verified.lock().await;
    if let Some(verified) = last.as_ref().filter(|v| v.at.elapsed() < VERIFY_EVERY) {
        return Ok(verified.clone());
    }
    let dir = portal.access().audit().dir().to_path_buf();
    let key: Arc<[u8]> = portal.audit_public_key().into();
    let report = tokio::task::spawn_blocking(move || enclave_audit::verify(&dir, &key))
        .await
        .map_err(|error| PortalError::internal(&error))?
        .map_err(|error| PortalError::internal(&error))?;
    let unix_seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64);
    let verified = Verified {
        at: Instant::now(),
        unix_seconds,
        report,
    };
    *last = Some(verified.clone());
    Ok(verified)
}

fn verification(lang: Lang, verified: &Verified) -> Markup {
    let report = &verified.report;
    let checkpoint = report.latest_checkpoint.as_ref();
    html! {
        section class={ "verification " (if report.is_valid() { "passed" } else { "failed" }) } {
            h2 { (lang.t("ログの検証", "Log verification")) }
            @match &report.problem {
                None => p role="status" { strong { (lang.t("検証済み: 改ざんは見つかりません。", "Verified: no tampering found.")) } },
                Some(problem) => p role="alert" { strong { (lang.t("検証失敗: ", "Verification failed: ")) } (problem) },
            }
            (page::facts(&[
                (lang.t("検証日時", "Verified at"), page::time(verified.unix_seconds)),
                (lang.t("イベント数", "Events"), html! { (report.events) }),
                (lang.t("署名付きチェックポイント数", "Signed checkpoints"), html! { (report.checkpoints) }),
                (lang.t("最新チェックポイント", "Latest checkpoint"), html! {
                    @if let Some(checkpoint) = checkpoint {
                        (lang.t("先頭 ", "first ")) (checkpoint.size) (lang.t(" 件 · ", " events · ")) (page::time(checkpoint.at_ms.div_euclid(1000)))
                    } @else { "—" }
                }),
                (lang.t("木の根(Merkle root)", "Tree root (Merkle)"), html! { @if let Some(c) = checkpoint { code class="hash" { (c.root) } } @else { "—" } }),
                (lang.t("Ed25519 署名", "Ed25519 signature"), html! { @if let Some(c) = checkpoint { code class="hash" { (c.signature) } } @else { "—" } }),
            ]))
        }
    }
}

/// Columns of long text, wrapped; the others stay on one line.
const WRAPPED_COLUMNS: [&str; 3] = ["sql", "summary", "detail"];

/// Batches as a table; with `link`, that column's values link to the event.
/// The heading of an audit column (the `audit` schema's column names, as
/// docs/audit.md lists them).
fn column_label(lang: Lang, column: &str) -> &str {
    let (ja, en) = match column {
        "seq" => ("番号", "Seq"),
        "at" => ("日時", "Time"),
        "actor" => ("操作者", "Actor"),
        "action" => ("操作", "Action"),
        "outcome" => ("結果", "Outcome"),
        "project" => ("プロジェクト", "Project"),
        "sql" => ("SQL", "SQL"),
        "rule" => ("規則", "Rule"),
        "duration_ms" => ("所要時間 (ms)", "Duration (ms)"),
        "released_groups" => ("公表した区分", "Groups released"),
        "suppressed_groups" => ("秘匿した区分", "Groups withheld"),
        "rows_scanned" => ("読んだ行数", "Rows scanned"),
        "fingerprint" => ("クエリの型", "Fingerprint"),
        "query_id" => ("クエリID", "Query id"),
        "detail" => ("詳細", "Detail"),
        "kind" => ("種類", "Kind"),
        "first_seq" => ("最初の番号", "First seq"),
        "last_seq" => ("最後の番号", "Last seq"),
        "count" => ("件数", "Count"),
        "summary" => ("概要", "Summary"),
        _ => return column,
    };
    lang.t(ja, en)
}

fn results_table(lang: Lang, batches: &[RecordBatch], link: Option<&str>) -> Markup {
    let Some(first) = batches.first() else {
        return page::empty("—");
    };
    let schema = first.schema();
    let link_column = link.and_then(|name| schema.index_of(name).ok());
    html! {
        div class="scroll" {
            table class="list compact" {
                thead { tr { @for field in schema.fields() { th scope="col" { (column_label(lang, field.name())) } } } }
                // The log's values (actions, outcomes, names) are codes, not prose.
                tbody translate="no" {
                    @for batch in batches {
                        @for row in 0..batch.num_rows() {
                            tr {
                                @for column in 0..batch.num_columns() {
                                    @let value = cell(batch, column, row);
                                    @if Some(column) == link_column {
                                        td { a href={ "/audit/events/" (value) } { (value) } }
                                    } @else if WRAPPED_COLUMNS.contains(&schema.field(column).name().as_str()) {
                                        td class="wrap" { (value) }
                                    } @else {
                                        td { (value) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One value as text; a time in Japan Standard Time.
fn cell(batch: &RecordBatch, column: usize, row: usize) -> String {
    let values = batch.column(column);
    if let Some(times) = values.as_primitive_opt::<TimestampMillisecondType>()
        && times.is_valid(row)
    {
        return enclave_core::date::jst_minute(times.value(row).div_euclid(1000));
    }
    array_value_to_string(values, row).unwrap_or_default()
}
