//! `Catalog`: the published tables and columns of the served release.

use enclave_access::{Domain, permissions};
use tonic::{Request, Response, Status};

use crate::Api;
use crate::proto::catalog_server::Catalog;
use crate::proto::{CatalogColumn, CatalogTable, ListTablesRequest, ListTablesResponse};

#[tonic::async_trait]
impl Catalog for Api {
    async fn list_tables(
        &self,
        request: Request<ListTablesRequest>,
    ) -> Result<Response<ListTablesResponse>, Status> {
        let user = self.caller(&request).await?;
        self.check(&user, &Domain::System, permissions::CATALOG_READ)
            .await?;
        let keyword = request.into_inner().keyword.to_lowercase();
        let tables = self
            .engine()
            .catalog()
            .tables()
            .map(|(schema, table)| CatalogTable {
                name: format!("{}.{}", schema.name, table.name),
                dataset_title_ja: schema.title_ja.clone(),
                dataset_title_en: schema.title_en.clone(),
                description_ja: table.description_ja.clone(),
                description_en: table.description_en.clone(),
                columns: table
                    .columns
                    .iter()
                    .map(|column| CatalogColumn {
                        name: column.name.clone(),
                        data_type: column.data_type.name().to_string(),
                        class: column.class.name().to_string(),
                        code_system: column.code_system.clone().unwrap_or_default(),
                        description_ja: column.description_ja.clone(),
                        description_en: column.description_en.clone(),
                    })
                    .collect(),
            })
            .filter(|table| keyword.is_empty() || mentions(table, &keyword))
            .collect();
        Ok(Response::new(ListTablesResponse { tables }))
    }
}

fn mentions(table: &CatalogTable, keyword: &str) -> bool {
    [&table.name, &table.description_ja, &table.description_en]
        .iter()
        .any(|text| text.to_lowercase().contains(keyword))
}
