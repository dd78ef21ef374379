//! Reading catalog definitions: compiled in, from a directory, or from text.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::CatalogError;
use crate::model::{Catalog, SchemaDef};
use crate::validate;

/// The definitions shipped in `catalog/`, in publication order.
const EMBEDDED: [(&str, &str); 3] = [
    (
        "catalog/ndb.toml",
        include_str!("../../../catalog/ndb.toml"),
    ),
    (
        "catalog/dpc.toml",
        include_str!("../../../catalog/dpc.toml"),
    ),
    (
        "catalog/care.toml",
        include_str!("../../../catalog/care.toml"),
    ),
];

impl Catalog {
    /// A validated catalog of the given schemas.
    pub fn new(schemas: Vec<SchemaDef>) -> Result<Catalog, CatalogError> {
        let catalog = Catalog { schemas };
        catalog.validate()?;
        Ok(catalog)
    }

    /// The catalog compiled into the binary from `catalog/{ndb,dpc,care}.toml`.
    ///
    /// # Panics
    ///
    /// If the compiled-in definitions are invalid, which the crate's tests rule out.
    pub fn embedded() -> &'static Catalog {
        static CATALOG: OnceLock<Catalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::from_toml(EMBEDDED)
                .unwrap_or_else(|error| panic!("embedded catalog is invalid: {error}"))
        })
    }

    /// Every `*.toml` file directly in `dir` (sub-directories such as
    /// `masters/` are ignored), one schema per file, in file-name order.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let dir = dir.as_ref();
        let paths = definition_files(dir)?;
        if paths.is_empty() {
            return Err(CatalogError::NoDefinitions {
                path: dir.to_owned(),
            });
        }
        let schemas = paths
            .iter()
            .map(|path| read_schema(path))
            .collect::<Result<Vec<_>, _>>()?;
        Catalog::new(schemas)
    }

    /// A validated catalog from `(origin, TOML text)` pairs, one schema each;
    /// `origin` (usually a path) names the text in parse errors.
    pub fn from_toml<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Catalog, CatalogError> {
        let schemas = sources
            .into_iter()
            .map(|(origin, text)| SchemaDef::from_toml(origin, text))
            .collect::<Result<Vec<_>, _>>()?;
        Catalog::new(schemas)
    }

    /// Checks every catalog rule; see [`CatalogError`] for what can fail.
    pub fn validate(&self) -> Result<(), CatalogError> {
        validate::catalog(self)
    }
}

impl SchemaDef {
    /// Parses one schema definition (not yet validated: see [`Catalog::new`]).
    pub fn from_toml(origin: &str, text: &str) -> Result<SchemaDef, CatalogError> {
        toml::from_str(text).map_err(|source| CatalogError::Parse {
            origin: origin.to_owned(),
            source,
        })
    }
}

fn definition_files(dir: &Path) -> Result<Vec<PathBuf>, CatalogError> {
    let read_error = |source| CatalogError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "toml") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn read_schema(path: &Path) -> Result<SchemaDef, CatalogError> {
    let text = fs::read_to_string(path).map_err(|source| CatalogError::Read {
        path: path.to_owned(),
        source,
    })?;
    SchemaDef::from_toml(&path.display().to_string(), &text)
}
