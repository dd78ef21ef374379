//! The public catalog: datasets, tables and columns of the served release,
//! with descriptions, classes, code systems, coverage and rounded counts;
//! keyword search in Japanese or English. No sign-in needed.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use enclave_catalog::{ColumnDef, PublishedSchema, PublishedTable};
use maud::{Markup, html};

use crate::i18n::Lang;
use crate::page::{self, Section};
use crate::session::Visitor;
use crate::{Portal, PortalError};

pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/catalog", get(catalog_page))
        .route("/catalog/{table}", get(table_page))
}

#[derive(Debug, serde::Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

async fn catalog_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Query(search): Query<Search>,
) -> impl IntoResponse {
    let lang = visitor.lang;
    let keyword = search.q.trim().to_lowercase();
    let published = portal.published();
    let found: Vec<(&PublishedSchema, Vec<&PublishedTable>)> = published
        .schemas
        .iter()
        .map(|schema| {
            let tables = schema
                .tables
                .iter()
                .filter(|table| keyword.is_empty() || mentions(schema, table, &keyword))
                .collect();
            (schema, tables)
        })
        .filter(|(_, tables): &(_, Vec<_>)| !tables.is_empty())
        .collect();
    let hits: usize = found.iter().map(|(_, tables)| tables.len()).sum();
    let body = html! {
        form method="get" action="/catalog" class="search" role="search" {
            label for="q" { (lang.t("キーワード検索(日本語・英語)", "Search by keyword (Japanese or English)")) }
            div class="row" {
                input id="q" name="q" type="search" value=(search.q) placeholder=(lang.t("例: 傷病名, ICD-10, care level", "e.g. 傷病名, ICD-10, care level"));
                button type="submit" { (lang.t("検索", "Search")) }
            }
        }
        p class="muted" {
            (lang.t("リリース", "Release")) " " code { (published.release_id) } " · "
            @if keyword.is_empty() {
                (hits) (lang.t(" テーブル", " tables"))
            } @else {
                (hits) (lang.t(" 件のテーブルが該当", " tables match"))
            }
        }
        @if found.is_empty() {
            (page::empty(lang.t("該当するテーブルはありません。", "No table matches.")))
        }
        @for (schema, tables) in &found {
            section class="dataset" {
                h2 { (lang.t(&schema.title_ja, &schema.title_en)) }
                p { (lang.t(&schema.description_ja, &schema.description_en)) }
                table class="list" {
                    thead { tr {
                        th scope="col" { (lang.t("テーブル", "Table")) }
                        th scope="col" { (lang.t("説明", "Description")) }
                        th scope="col" class="num" { (lang.t("件数", "Rows")) }
                        th scope="col" { (lang.t("収載期間", "Coverage")) }
                    } }
                    tbody {
                        @for table in tables {
                            tr {
                                td { a href={ "/catalog/" (table.qualified_name) } { code { (table.qualified_name) } } }
                                td { (lang.t(&table.description_ja, &table.description_en)) }
                                td class="num" { (table.rows_display) }
                                td { (coverage(table)) }
                            }
                        }
                    }
                }
            }
        }
    };
    page::render(
        &visitor,
        Section::Catalog,
        lang.t("データカタログ", "Data catalog"),
        body,
    )
}

async fn table_page(
    State(portal): State<Portal>,
    visitor: Visitor,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, PortalError> {
    let lang = visitor.lang;
    let (schema, table) = portal
        .published()
        .schemas
        .iter()
        .find_map(|schema| {
            let table = schema.tables.iter().find(|t| t.qualified_name == name)?;
            Some((schema, table))
        })
        .ok_or_else(|| {
            PortalError::not_found(
                format!("データカタログにテーブル `{name}` はありません。"),
                format!("the catalog has no table `{name}`"),
            )
        })?;
    let body = html! {
        p class="crumbs" { a href="/catalog" { (lang.t("データカタログ", "Data catalog")) } " › " (lang.t(&schema.title_ja, &schema.title_en)) }
        p { (lang.t(&table.description_ja, &table.description_en)) }
        (page::facts(&[
            (lang.t("件数(10件単位に丸め)", "Rows (rounded to 10)"), html! { (table.rows_display) }),
            (lang.t("収載期間", "Coverage"), coverage(table)),
            (lang.t("分割", "Partitioned by"), html! { (table.partition_by.as_deref().unwrap_or("—")) }),
        ]))
        p { a class="button" href={ "/applications/new?table=" (table.qualified_name) } { (lang.t("このテーブルで利用申請する", "Apply for this table")) } }
        h2 { (lang.t("列", "Columns")) }
        (columns_table(lang, &table.columns, &[]))
    };
    Ok(page::render(
        &visitor,
        Section::Catalog,
        &table.qualified_name,
        body,
    ))
}

/// The columns of a table; those in `highlighted` are marked as requested.
pub(crate) fn columns_table(lang: Lang, columns: &[ColumnDef], highlighted: &[String]) -> Markup {
    html! {
        table class="list columns" {
            thead { tr {
                th scope="col" { (lang.t("列名", "Column")) }
                th scope="col" { (lang.t("型", "Type")) }
                th scope="col" { (lang.t("区分", "Class")) }
                th scope="col" { (lang.t("コード体系", "Code system")) }
                th scope="col" { (lang.t("説明", "Description")) }
            } }
            tbody {
                @for column in columns {
                    @let requested = highlighted.contains(&column.name);
                    tr class=[requested.then_some("requested")] {
                        td { code { (column.name) } @if requested { " " span class="badge requested" { (lang.t("申請", "requested")) } } }
                        td { (column.data_type.name()) }
                        td { span class={ "class class-" (column.class.name()) } { (lang.column_class(column.class.name())) } }
                        td { (column.code_system.as_deref().unwrap_or("—")) }
                        td { (lang.t(&column.description_ja, &column.description_en)) }
                    }
                }
            }
        }
    }
}

fn coverage(table: &PublishedTable) -> Markup {
    match (&table.first_month, &table.last_month) {
        (Some(first), Some(last)) => html! { (first) " – " (last) },
        _ => html! { "—" },
    }
}

/// Whether `keyword` (lower case) appears in the table's names or texts,
/// its columns', or its dataset's title.
fn mentions(schema: &PublishedSchema, table: &PublishedTable, keyword: &str) -> bool {
    let table_texts = [
        &table.qualified_name,
        &table.description_ja,
        &table.description_en,
        &schema.title_ja,
        &schema.title_en,
    ];
    let column_texts = table.columns.iter().flat_map(|column| {
        [&column.name, &column.description_ja, &column.description_en]
            .into_iter()
            .chain(column.code_system.as_ref())
    });
    table_texts
        .into_iter()
        .chain(column_texts)
        .any(|text| text.to_lowercase().contains(keyword))
}
