//! The public dashboard: open statistics computed through the same guard
//! and disclosure control as researchers' queries (no group under 10
//! persons; counts rounded to 10), each drawn as an SVG chart with its
//! table beside it and a CSV download of exactly what is shown. Computed
//! on first view, and again after new opt-outs.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use enclave_query::public_stats::{self, PublicStatistic};
use maud::{Markup, PreEscaped, html};
use tokio::sync::Mutex;

use crate::chart::{self, Bar};
use crate::i18n::Lang;
use crate::page::{self, Section};
use crate::session::Visitor;
use crate::{Portal, PortalError};

/// The statistics of the served release, computed on first view and again
/// once more persons have opted out (opt-outs only grow).
#[derive(Debug, Default)]
pub(crate) struct Cache {
    computed: Mutex<Option<Computed>>,
}

#[derive(Debug)]
struct Computed {
    opt_outs: usize,
    statistics: Arc<Vec<PublicStatistic>>,
}

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/dashboard", get(dashboard_page))
        .route("/dashboard/{file}", get(download_csv))
}

async fn statistics(portal: &Portal) -> Result<Arc<Vec<PublicStatistic>>, PortalError> {
    let opt_outs = portal
        .access()
        .snapshot()
        .await
        .map_err(|error| PortalError::internal(&error))?
        .opt_outs()
        .len();
    // Held while computing, so concurrent first views compute once.
    let mut computed = portal.inner.dashboard.computed.lock().await;
    if let Some(current) = computed.as_ref().filter(|c| c.opt_outs == opt_outs) {
        return Ok(Arc::clone(&current.statistics));
    }
    let statistics = public_stats::compute(portal.engine())
        .await
        .map(Arc::new)
        .map_err(PortalError::of)?;
    *computed = Some(Computed {
        opt_outs,
        statistics: Arc::clone(&statistics),
    });
    Ok(statistics)
}

async fn dashboard_page(
    State(portal): State<Portal>,
    visitor: Visitor,
) -> Result<Html<String>, PortalError> {
    let lang = visitor.lang;
    let statistics = statistics(&portal).await?;
    let body = html! {
        p class="lead" { (lang.t(
            "以下の統計は、研究者の集計と同じ開示統制を経て計算しています。10人未満の区分は表示せず、件数は10件単位に丸めています。",
            "These statistics are computed through the same disclosure control as researchers' queries: no group of fewer than 10 persons is shown, and counts are rounded to the nearest 10.",
        )) }
        @for statistic in statistics.iter() {
            (statistic_section(lang, statistic))
        }
    };
    Ok(page::render(
        &visitor,
        Section::Dashboard,
        lang.t("公開統計", "Open statistics"),
        body,
    ))
}

fn statistic_section(lang: Lang, statistic: &PublicStatistic) -> Markup {
    let title = lang.t(statistic.title_ja, statistic.title_en);
    let bars: Vec<Bar<'_>> = statistic
        .rows
        .iter()
        .map(|row| Bar {
            category: &row.category,
            series: row.series.as_deref(),
            value: Some(row.value),
        })
        .collect();
    let svg = chart::bar_chart_svg(
        title,
        lang.t(statistic.value_ja, statistic.value_en),
        &bars,
        lang.t("秘匿", "withheld"),
    );
    let (header, rows) = table_of(lang, statistic);
    html! {
        section class="statistic" id=(statistic.id) {
            h2 { (title) }
            p class="muted" { (lang.t(statistic.note_ja, statistic.note_en)) }
            @if statistic.suppressed_groups > 0 {
                p class="muted" { (lang.t("秘匿した区分: ", "Groups withheld: ")) (statistic.suppressed_groups) }
            }
            div class="chart-and-table" {
                figure { (PreEscaped(svg)) }
                div class="scroll tall" {
                    table class="list compact" {
                        caption { (title) }
                        thead { tr { @for name in &header { th scope="col" { (name) } } } }
                        tbody { @for row in &rows { tr {
                            @for (index, value) in row.iter().enumerate() {
                                td class=[(index + 1 == row.len()).then_some("num")] { (value) }
                            }
                        } } }
                    }
                }
            }
            p { a href={ "/dashboard/" (statistic.id) ".csv" } download { (lang.t("表を CSV でダウンロード", "Download the table as CSV")) } }
        }
    }
}

/// The table shown beside the chart: header and rows in `lang`.
fn table_of(lang: Lang, statistic: &PublicStatistic) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let mut header = vec![lang.t(statistic.category_ja, statistic.category_en)];
    let series = lang.t(
        statistic.series_ja.unwrap_or(""),
        statistic.series_en.unwrap_or(""),
    );
    if !series.is_empty() {
        header.push(series);
    }
    header.push(lang.t(statistic.value_ja, statistic.value_en));
    let rows = statistic
        .rows
        .iter()
        .map(|row| {
            let mut cells = vec![row.category.clone()];
            if !series.is_empty() {
                cells.push(row.series.clone().unwrap_or_default());
            }
            cells.push(row.value.to_string());
            cells
        })
        .collect();
    (header, rows)
}

/// `/dashboard/<id>.csv`: the table of one statistic as shown.
async fn download_csv(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(file): Path<String>,
) -> Result<Response, PortalError> {
    let not_found = || {
        PortalError::not_found(
            format!("公開統計 `{file}` はありません。"),
            format!("no statistic `{file}`"),
        )
    };
    let id = file.strip_suffix(".csv").ok_or_else(not_found)?;
    let statistics = statistics(&portal).await?;
    let statistic = statistics
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(not_found)?;
    let (header, rows) = table_of(visitor.lang, statistic);
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{}.csv\"",
        statistic.id,
        visitor.lang.code()
    ))
    .map_err(|error| PortalError::internal(&error))?;
    Ok((
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (CONTENT_DISPOSITION, disposition),
        ],
        chart::csv(&header, &rows),
    )
        .into_response())
}
